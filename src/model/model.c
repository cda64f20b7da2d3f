/* Parameter table, allocation, initialisation, FLOP count, and the
 * forward/backward passes of the transformer (one block at a time). */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/rng.h"
#include "kernels/kernels.h"

void dlm_model_config_vocab(dlm_model_config *cfg, int vocab_size, int bos_id)
{
    cfg->vocab_size = vocab_size;
    cfg->mask_id = vocab_size;
    cfg->bos_id = bos_id;
    cfg->vocab_padded = (vocab_size + 1 + DLM_VOCAB_ALIGN - 1) / DLM_VOCAB_ALIGN * DLM_VOCAB_ALIGN;
}

void dlm_model_config_bytes(dlm_model_config *cfg, int n_layer, int d_model, int n_head,
                            int seq_len)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->n_layer = n_layer;
    cfg->d_model = d_model;
    cfg->n_head = n_head;
    cfg->seq_len = seq_len;
    cfg->tied_head = 0;
    cfg->rope_theta = 10000.0;
    dlm_model_config_vocab(cfg, DLM_BYTE_VOCAB, DLM_BYTE_SEP);
}

dlm_status dlm_model_config_check(const dlm_model_config *c)
{
    DLM_CHECK(c->n_layer >= 1, DLM_ERR_ARG, "model.layers must be >= 1, got %d", c->n_layer);
    DLM_CHECK(c->d_model >= 2, DLM_ERR_ARG, "model.width must be >= 2, got %d", c->d_model);
    DLM_CHECK(c->n_head >= 1 && c->d_model % c->n_head == 0, DLM_ERR_ARG,
              "model.heads (%d) must divide model.width (%d)", c->n_head, c->d_model);
    DLM_CHECK((c->d_model / c->n_head) % 2 == 0, DLM_ERR_ARG,
              "head size width/heads = %d must be even for rotary embedding",
              c->d_model / c->n_head);
    DLM_CHECK(c->seq_len >= 1, DLM_ERR_ARG, "seq_len must be >= 1, got %d", c->seq_len);
    DLM_CHECK(c->vocab_size >= 2 && c->mask_id == c->vocab_size, DLM_ERR_ARG,
              "vocabulary of %d ids with MASK id %d: MASK must follow the data ids",
              c->vocab_size, c->mask_id);
    DLM_CHECK(c->vocab_padded > c->mask_id && c->vocab_padded % DLM_VOCAB_ALIGN == 0,
              DLM_ERR_ARG, "padded vocabulary %d must exceed MASK id %d and be a multiple of %d",
              c->vocab_padded, c->mask_id, DLM_VOCAB_ALIGN);
    DLM_CHECK(c->bos_id >= 0 && c->bos_id < c->vocab_size, DLM_ERR_ARG,
              "BOS id %d outside the vocabulary of %d", c->bos_id, c->vocab_size);
    return DLM_OK;
}

/* ---- the parameter table ---- */

typedef struct {
    const dlm_shard_layout *lay;
    dlm_param_info *t;
    int n, cap;
    int next_id; /* the whole model's index of the next tensor, kept or not */
    size_t offset;
} table_builder;

/* keep: the tensor is this stage's (else only its id is used up). */
static dlm_status table_add(table_builder *tb, int keep, const char *name, int layer, int64_t rows,
                            int64_t cols, int embedding, dlm_init_kind init, dlm_split_kind split)
{
    int id = tb->next_id++;
    if (!keep) return DLM_OK;
    if (tb->n == tb->cap) {
        int cap = tb->cap ? 2 * tb->cap : 64;
        dlm_param_info *t = realloc(tb->t, (size_t)cap * sizeof *t);
        DLM_CHECK(t != NULL, DLM_ERR_NOMEM, "growing the parameter table");
        tb->t = t, tb->cap = cap;
    }
    dlm_param_info *p = &tb->t[tb->n];
    memset(p, 0, sizeof *p);
    tb->n++;
    p->id = id;
    if (layer >= 0) snprintf(p->name, sizeof p->name, "blocks.%d.%s", layer, name);
    else snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = cols > 0 ? 2 : 1;
    p->shape[0] = p->local[0] = rows;
    p->shape[1] = p->local[1] = cols > 0 ? cols : 1;
    int tp = tb->lay->tp_size, r = tb->lay->tp_rank;
    int dim = split == DLM_SPLIT_COLS ? 1 : 0;
    p->shard = (dlm_shard_spec){split, 0, p->shape[dim], split == DLM_SPLIT_NONE ? 0 : -1};
    if (split != DLM_SPLIT_NONE) {
        DLM_CHECK(p->shape[dim] % tp == 0, DLM_ERR_ARG,
                  "%s: %lld %s do not split evenly over %d tensor-parallel ranks", p->name,
                  (long long)p->shape[dim], dim ? "columns" : "rows", tp);
        p->shard.count = p->shape[dim] / tp;
        p->shard.start = (int64_t)r * p->shard.count;
        p->local[dim] = p->shard.count;
    }
    p->numel = (size_t)p->local[0] * (size_t)p->local[1];
    p->offset = tb->offset;
    p->layer = layer;
    p->embedding = embedding;
    p->decay = p->ndim == 2;
    p->init = init;
    tb->offset += dlm_arena_round(p->numel);
    return DLM_OK;
}

/* Table order is the views' order (make_views) and the tensor ids. */
/* Which tensors a stage holds (every one when unstaged). */
static int has_wte(const dlm_model_config *c, const dlm_shard_layout *lay)
{
    return dlm_layout_is_first(lay) || (c->tied_head && dlm_layout_is_last(lay, c->n_layer));
}

static dlm_status build_table(const dlm_model_config *c, table_builder *tb)
{
    int64_t C = c->d_model, V = c->vocab_padded;
    const dlm_shard_layout *lay = tb->lay;
    int last = dlm_layout_is_last(lay, c->n_layer);
    DLM_CALL(table_add(tb, has_wte(c, lay), "wte", -1, V, C, 1, DLM_INIT_NORMAL, DLM_SPLIT_VOCAB));
    for (int l = 0; l < c->n_layer; l++) {
        int keep = dlm_layout_has_block(lay, l);
#define DLM_X_ADD(field, name, rows, cols, init, split) \
    DLM_CALL(table_add(tb, keep, name, l, (rows) * C, (cols) * C, 0, init, split));
        DLM_BLOCK_TENSORS(DLM_X_ADD)
#undef DLM_X_ADD
    }
    DLM_CALL(table_add(tb, last, "lnf.weight", -1, C, 0, 0, DLM_INIT_ONE, DLM_SPLIT_NONE));
    DLM_CALL(table_add(tb, last, "lnf.bias", -1, C, 0, 0, DLM_INIT_ZERO, DLM_SPLIT_NONE));
    if (!c->tied_head)
        DLM_CALL(table_add(tb, last, "lm_head", -1, V, C, 1, DLM_INIT_NORMAL, DLM_SPLIT_VOCAB));
    return DLM_OK;
}

int64_t dlm_param_global_index(const dlm_param_info *p, int64_t j)
{
    int64_t r = j / p->local[1], c = j % p->local[1];
    if (p->shard.split == DLM_SPLIT_COLS) c += p->shard.start;
    else if (p->shard.split != DLM_SPLIT_NONE) r += p->shard.start;
    return r * p->shape[1] + c;
}

int dlm_param_counts_in_norm(const dlm_param_info *p, const dlm_shard_layout *lay)
{
    /* a tied head's copy of the embedding on the last stage: the first stage's counts */
    if (p->id == 0 && !dlm_layout_is_first(lay)) return 0;
    return p->shard.norm_owner < 0 || p->shard.norm_owner == lay->tp_rank;
}

/* The views walk the table in build_table's order; what a stage does not
 * hold stays NULL. */
static dlm_status make_views(const dlm_model_config *c, const dlm_shard_layout *lay,
                             const dlm_param_info *t, float *base, dlm_model_views *v)
{
    v->blocks = calloc((size_t)c->n_layer, sizeof *v->blocks);
    DLM_CHECK(v->blocks != NULL, DLM_ERR_NOMEM, "allocating block views");
    int i = 0, last = dlm_layout_is_last(lay, c->n_layer);
    v->wte = has_wte(c, lay) ? base + t[i++].offset : NULL;
    for (int l = 0; l < c->n_layer; l++) {
        if (!dlm_layout_has_block(lay, l)) continue;
#define DLM_X_VIEW(field, ...) v->blocks[l].field = base + t[i++].offset;
        DLM_BLOCK_TENSORS(DLM_X_VIEW)
#undef DLM_X_VIEW
    }
    v->lnf_w = last ? base + t[i++].offset : NULL;
    v->lnf_b = last ? base + t[i++].offset : NULL;
    v->lm_head = !last ? NULL : c->tied_head ? v->wte : base + t[i++].offset;
    return DLM_OK;
}

dlm_status dlm_param_table_create(const dlm_model_config *cfg, const dlm_shard_layout *lay,
                                  dlm_param_info **table, int *n, size_t *floats)
{
    *table = NULL;
    DLM_CALL(dlm_model_config_check(cfg));
    DLM_CHECK(lay->tp_size >= 1 && lay->tp_rank >= 0 && lay->tp_rank < lay->tp_size, DLM_ERR_ARG,
              "tensor-parallel rank %d of %d", lay->tp_rank, lay->tp_size);
    DLM_CHECK(!lay->staged || (lay->layer0 >= 0 && lay->layer0 < lay->layer1 &&
                               lay->layer1 <= cfg->n_layer),
              DLM_ERR_ARG, "a pipeline stage of blocks %d .. %d in a model of %d", lay->layer0,
              lay->layer1 - 1, cfg->n_layer);
    DLM_CHECK(cfg->n_head % lay->tp_size == 0, DLM_ERR_ARG,
              "model.heads (%d) must be a multiple of the tensor-parallel size %d", cfg->n_head,
              lay->tp_size);
    DLM_CHECK(cfg->vocab_padded % lay->tp_size == 0, DLM_ERR_ARG,
              "the padded vocabulary (%d ids) must be a multiple of the tensor-parallel size %d",
              cfg->vocab_padded, lay->tp_size);
    table_builder tb = {.lay = lay};
    dlm_status st = build_table(cfg, &tb);
    if (st != DLM_OK) {
        free(tb.t);
        DLM_CALL(st);
    }
    *table = tb.t;
    *n = tb.n;
    *floats = tb.offset;
    return DLM_OK;
}

void dlm_param_init(const dlm_param_info *table, int n, int n_layer, float *base, uint64_t seed)
{
    const double std = 0.02, std_res = 0.02 / sqrt(2.0 * n_layer);
    for (int i = 0; i < n; i++) {
        const dlm_param_info *p = &table[i];
        float *x = base + p->offset;
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < p->numel; j++) {
            switch (p->init) {
            case DLM_INIT_ZERO: x[j] = 0.0f; break;
            case DLM_INIT_ONE: x[j] = 1.0f; break;
            case DLM_INIT_NORMAL:
            case DLM_INIT_RESIDUAL: {
                double s = p->init == DLM_INIT_NORMAL ? std : std_res;
                uint32_t e = (uint32_t)dlm_param_global_index(p, (int64_t)j);
                x[j] = (float)(s * dlm_rng_normal(seed, 0, (uint32_t)p->id, e, DLM_RNG_INIT));
                break;
            }
            }
        }
    }
}

/* ---- the model ---- */

dlm_status dlm_model_create(const dlm_model_config *cfg, dlm_model **out)
{
    return dlm_model_create_tp(cfg, NULL, out);
}

dlm_status dlm_model_create_tp(const dlm_model_config *cfg, dlm_tp *tp, dlm_model **out)
{
    return dlm_model_create_stage(cfg, tp, 0, cfg->n_layer, out);
}

dlm_status dlm_model_create_stage(const dlm_model_config *cfg, dlm_tp *tp, int layer0, int layer1,
                                  dlm_model **out)
{
    *out = NULL;
    DLM_CALL(dlm_model_config_check(cfg));
    dlm_model *m = calloc(1, sizeof *m);
    DLM_CHECK(m != NULL, DLM_ERR_NOMEM, "allocating the model");
    dlm_status st = DLM_OK;
    m->cfg = *cfg;
    m->tp = tp;
    int staged = layer0 != 0 || layer1 != cfg->n_layer;
    m->layout = (dlm_shard_layout){dlm_tp_rank(tp), dlm_tp_size(tp), staged, staged ? layer0 : 0,
                                   staged ? layer1 : 0};
    DLM_CALL_GOTO(st, dlm_param_table_create(cfg, &m->layout, &m->table, &m->n_tensors,
                                             &m->n_params), fail);
    DLM_CALL_GOTO(st, dlm_arena_create(m->n_params, &m->param_arena), fail);
    DLM_CALL_GOTO(st, dlm_arena_create(m->n_params, &m->grad_arena), fail);
    m->param_arena.used = m->grad_arena.used = m->n_params;
    DLM_CALL_GOTO(st, make_views(cfg, &m->layout, m->table, m->param_arena.base, &m->params),
                  fail);
    DLM_CALL_GOTO(st, make_views(cfg, &m->layout, m->table, m->grad_arena.base, &m->grads), fail);
    size_t half = (size_t)cfg->seq_len * (size_t)(cfg->d_model / cfg->n_head / 2);
    m->rope_cos = malloc(half * sizeof *m->rope_cos);
    m->rope_sin = malloc(half * sizeof *m->rope_sin);
    st = m->rope_cos && m->rope_sin ? DLM_OK : DLM_ERR_NOMEM;
    DLM_CALL_GOTO(st, st, fail);
    dlm_rope_table(m->rope_cos, m->rope_sin, cfg->seq_len, cfg->d_model / cfg->n_head,
                   cfg->rope_theta);
    *out = m;
    return DLM_OK;
fail:
    dlm_model_destroy(&m);
    return st;
}

void dlm_model_destroy(dlm_model **pm)
{
    dlm_model *m = *pm;
    if (!m) return;
    dlm_arena_destroy(&m->param_arena);
    dlm_arena_destroy(&m->grad_arena);
    free(m->params.blocks);
    free(m->grads.blocks);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m->table);
    free(m);
    *pm = NULL;
}

void dlm_model_init(dlm_model *m, uint64_t seed)
{
    dlm_param_init(m->table, m->n_tensors, m->cfg.n_layer, m->param_arena.base, seed);
}

/* ---- activations ---- */

/* Under tensor parallelism the per-head and per-hidden-unit activations
 * are this rank's share: C / tp attention channels, 4C / tp hidden units,
 * H / tp heads, V / tp vocabulary columns; the residual stream stays (N,C). */
static dlm_act_dims act_dims(const dlm_model *m, int B)
{
    const dlm_model_config *c = &m->cfg;
    size_t tp = (size_t)m->layout.tp_size;
    size_t N = (size_t)B * c->seq_len, C = c->d_model, T = c->seq_len;
    return (dlm_act_dims){N, N * C, N * 3 * C / tp, N * 4 * C / tp,
                          (size_t)B * c->n_head / tp * T * T, N * C / tp,
                          N * (size_t)c->vocab_padded / tp};
}

/* Gives every activation buffer its place after base (NULL: only counts)
 * and returns the floats they take: the one walk behind both the size and
 * the views. */
static size_t lay_out_acts(const dlm_model *m, dlm_acts *a, float *base)
{
    const dlm_model_config *c = &m->cfg;
    dlm_act_dims d = act_dims(m, a->max_batch);
    size_t off = 0;
#define TAKE(ptr, n)                         \
    do {                                     \
        if (base) (ptr) = base + off;        \
        off += dlm_arena_round(n);           \
    } while (0)
    TAKE(a->embed, d.NC); /* a later stage's input, received */
    for (int l = 0; l < c->n_layer; l++) {
        if (!dlm_layout_has_block(&m->layout, l)) continue;
#define DLM_X_TAKE(field, size) TAKE(a->blocks[l].field, d.size);
        DLM_BLOCK_ACTS(DLM_X_TAKE)
#undef DLM_X_TAKE
    }
    if (dlm_layout_is_last(&m->layout, c->n_layer)) {
        TAKE(a->head_x, d.NC);
        TAKE(a->lnf, d.NC);
        TAKE(a->lnf_mean, d.N);
        TAKE(a->lnf_rstd, d.N);
        TAKE(a->logits, d.NV);
    }
    if (a->backward) {
#define DLM_X_TAKE(field, size) TAKE(a->scratch.field, d.size);
        DLM_BLOCK_SCRATCH(DLM_X_TAKE)
#undef DLM_X_TAKE
    }
#undef TAKE
    return off;
}

dlm_status dlm_acts_create(const dlm_model *m, int max_batch, int backward, dlm_acts **out)
{
    *out = NULL;
    DLM_CHECK(max_batch >= 1, DLM_ERR_ARG, "batch size must be >= 1, got %d", max_batch);
    dlm_acts *a = calloc(1, sizeof *a);
    DLM_CHECK(a != NULL, DLM_ERR_NOMEM, "allocating activations");
    a->max_batch = max_batch;
    a->backward = backward;
    int l1;
    dlm_layout_blocks(&m->layout, m->cfg.n_layer, &a->layer0, &l1);
    dlm_status st = DLM_OK;
    size_t N = (size_t)max_batch * m->cfg.seq_len;
    a->blocks = calloc((size_t)m->cfg.n_layer, sizeof *a->blocks);
    a->rows = malloc(N * sizeof *a->rows);
    st = a->blocks && a->rows ? DLM_OK : DLM_ERR_NOMEM;
    DLM_CALL_GOTO(st, st, fail);
    DLM_CALL_GOTO(st, dlm_arena_create(lay_out_acts(m, a, NULL), &a->arena), fail);
    a->arena.used = lay_out_acts(m, a, a->arena.base);
    *out = a;
    return DLM_OK;
fail:
    dlm_acts_destroy(&a);
    return st;
}

void dlm_acts_destroy(dlm_acts **pa)
{
    dlm_acts *a = *pa;
    if (!a) return;
    dlm_arena_destroy(&a->arena);
    free(a->blocks);
    free(a->rows);
    free(a);
    *pa = NULL;
}

int64_t dlm_model_nonembedding_params(const dlm_model_config *c)
{
    int64_t C = c->d_model, per_block = 0;
#define DLM_X_COUNT(field, name, rows, cols, ...) per_block += (rows) * C * ((cols) ? (cols) * C : 1);
    DLM_BLOCK_TENSORS(DLM_X_COUNT)
#undef DLM_X_COUNT
    return (int64_t)c->n_layer * per_block + 2 * C;
}

uint64_t dlm_model_hash(uint64_t h, const dlm_model *m)
{
    return dlm_fnv1a(h, m->param_arena.base, m->n_params * sizeof(float));
}

void dlm_model_cut_shards(const dlm_model *m, const dlm_param_info *full_table, const float *full,
                          float *base)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const dlm_param_info *p = &m->table[i];
        const float *whole = full + full_table[p->id].offset; /* a stage's ids are the model's */
        for (size_t j = 0; j < p->numel; j++)
            base[p->offset + j] = whole[dlm_param_global_index(p, (int64_t)j)];
    }
}

int64_t dlm_model_param_count(const dlm_model *m)
{
    const dlm_model_config *c = &m->cfg;
    int64_t embed = (int64_t)c->vocab_padded * c->d_model * (c->tied_head ? 1 : 2);
    return dlm_model_nonembedding_params(c) + embed;
}

int64_t dlm_model_stage_param_count(const dlm_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_tensors; i++) n += m->table[i].shape[0] * m->table[i].shape[1];
    return n;
}

double dlm_model_flops_per_token(const dlm_model_config *c)
{
    double C = c->d_model;
    return 6.0 * (double)dlm_model_nonembedding_params(c) + 6.0 * C * c->vocab_padded +
           12.0 * c->n_layer * C * c->seq_len;
}

/* ---- forward and backward ---- */

const float *dlm_block_input(const dlm_acts *a, int layer)
{
    return layer == a->layer0 ? a->embed : a->blocks[layer - 1].res_out;
}

/* This rank's vocabulary rows of wte and the LM head: [v0, v0 + nv). */
static void vocab_shard(const dlm_model *m, int32_t *v0, int32_t *nv)
{
    *nv = m->cfg.vocab_padded / m->layout.tp_size;
    *v0 = m->layout.tp_rank * *nv;
}

dlm_status dlm_embed_forward(const dlm_model *m, dlm_acts *a, const int32_t *inputs, int B)
{
    const dlm_model_config *c = &m->cfg;
    DLM_CHECK(B >= 1 && B <= a->max_batch, DLM_ERR_ARG,
              "batch of %d sequences, but the activations were sized for at most %d", B,
              a->max_batch);
    int64_t N = (int64_t)B * c->seq_len;
    for (int64_t n = 0; n < N; n++)
        DLM_CHECK(inputs[n] >= 0 && inputs[n] <= c->mask_id, DLM_ERR_ARG,
                  "input token %d at position %lld is outside the vocabulary (0..%d with MASK)",
                  inputs[n], (long long)n, c->mask_id);
    double t0 = a->timers ? dlm_now() : 0.0;
    if (m->layout.tp_size == 1) {
        dlm_embedding_forward(a->embed, inputs, m->params.wte, N, c->d_model);
    } else { /* vocabulary-parallel: each rank its rows, zeros elsewhere, summed */
        int32_t v0, nv;
        vocab_shard(m, &v0, &nv);
        dlm_embedding_forward_range(a->embed, inputs, m->params.wte, N, c->d_model, v0, nv);
        dlm_tp_reduce_forward(m->tp, a->embed, N * c->d_model);
    }
    dlm_phase_lap(a->timers, DLM_PHASE_EMBED, &t0);
    return DLM_OK;
}

/* Megatron's block: QKV and the first MLP layer column-parallel (this
 * rank's heads, this rank's hidden units), the attention output projection
 * and the second MLP layer row-parallel (partial sums, then reduce); the
 * row-parallel bias is added once, by tp rank 0, before the sum. */
void dlm_block_forward(const dlm_model *m, dlm_acts *acts, int layer, int B, int causal)
{
    const dlm_model_config *c = &m->cfg;
    const dlm_block_params *p = &m->params.blocks[layer];
    dlm_block_acts *a = &acts->blocks[layer];
    const float *x_in = dlm_block_input(acts, layer);
    int tp = m->layout.tp_size, T = c->seq_len, C = c->d_model;
    int Cl = C / tp, Hl = c->n_head / tp; /* this rank's attention channels and heads */
    int64_t N = (int64_t)B * T;
    const float *proj_b = m->layout.tp_rank == 0 ? p->proj_b : NULL;
    const float *fcp_b = m->layout.tp_rank == 0 ? p->fcp_b : NULL;
    double t0 = acts->timers ? dlm_now() : 0.0;
    dlm_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x_in, p->ln1_w, p->ln1_b, N, C);
    dlm_linear_forward(a->qkv, a->ln1, p->qkv_w, p->qkv_b, N, C, 3 * Cl);
    dlm_rope_forward(a->qkv, m->rope_cos, m->rope_sin, B, T, Cl, Hl);
    dlm_attention_forward(a->atty, a->att, a->qkv, B, T, Cl, Hl, causal);
    dlm_linear_forward(a->res_mid, a->atty, p->proj_w, proj_b, N, Cl, C);
    dlm_tp_reduce_forward(m->tp, a->res_mid, N * C);
    dlm_accumulate(a->res_mid, x_in, N * C);
    dlm_phase_lap(acts->timers, DLM_PHASE_ATTN, &t0);
    dlm_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res_mid, p->ln2_w, p->ln2_b, N, C);
    dlm_linear_forward(a->fch, a->ln2, p->fc_w, p->fc_b, N, C, 4 * Cl);
    dlm_gelu_forward(a->fch_gelu, a->fch, N * 4 * Cl);
    dlm_linear_forward(a->res_out, a->fch_gelu, p->fcp_w, fcp_b, N, 4 * Cl, C);
    dlm_tp_reduce_forward(m->tp, a->res_out, N * C);
    dlm_accumulate(a->res_out, a->res_mid, N * C);
    dlm_phase_lap(acts->timers, DLM_PHASE_MLP, &t0);
}

/* The head's input rows: the last block's output itself, or its listed rows copied out. */
static const float *head_input(const dlm_model *m, const dlm_acts *a)
{
    return a->gathered ? a->head_x : dlm_block_input(a, m->cfg.n_layer);
}

void dlm_head_forward(const dlm_model *m, dlm_acts *a, int B, const int32_t *rows, int64_t n)
{
    const dlm_model_config *c = &m->cfg;
    int C = c->d_model;
    double t0 = a->timers ? dlm_now() : 0.0;
    const float *x = dlm_block_input(a, c->n_layer);
    a->gathered = rows != NULL;
    a->n_rows = rows ? n : (int64_t)B * c->seq_len;
    if (rows) {
        memcpy(a->rows, rows, (size_t)n * sizeof *rows);
        for (int64_t i = 0; i < n; i++)
            memcpy(a->head_x + i * C, x + (int64_t)rows[i] * C, (size_t)C * sizeof *x);
    }
    dlm_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, head_input(m, a), m->params.lnf_w,
                          m->params.lnf_b, a->n_rows, C);
    /* vocabulary-parallel under tp: this rank's columns of the logits */
    dlm_linear_forward(a->logits, a->lnf, m->params.lm_head, NULL, a->n_rows, C,
                       c->vocab_padded / m->layout.tp_size);
    dlm_phase_lap(a->timers, DLM_PHASE_HEAD, &t0);
}

void dlm_head_backward(dlm_model *m, dlm_acts *a, int B, float *dx)
{
    const dlm_model_config *c = &m->cfg;
    dlm_block_scratch *s = &a->scratch;
    int C = c->d_model;
    int64_t N = (int64_t)B * c->seq_len, n = a->n_rows;
    double t0 = a->timers ? dlm_now() : 0.0;
    /* logits = lnf @ lm_head^T, with a->logits now holding dlogits */
    dlm_linear_backward(s->dln, 0.0f, m->grads.lm_head, NULL, a->logits, a->lnf,
                        m->params.lm_head, n, C, c->vocab_padded / m->layout.tp_size);
    dlm_tp_copy_backward(m->tp, s->dln, n * C);
    /* gathered: the LayerNorm's input gradient goes to dres_mid, then to its rows of dx */
    float *dh = a->gathered ? s->dres_mid : dx;
    memset(dh, 0, (size_t)n * C * sizeof(float));
    dlm_layernorm_backward(dh, m->grads.lnf_w, m->grads.lnf_b, s->dln, head_input(m, a),
                           m->params.lnf_w, a->lnf_mean, a->lnf_rstd, n, C);
    if (a->gathered) {
        memset(dx, 0, (size_t)N * C * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            memcpy(dx + (int64_t)a->rows[i] * C, dh + i * C, (size_t)C * sizeof *dx);
    }
    dlm_phase_lap(a->timers, DLM_PHASE_HEAD_BWD, &t0);
}

void dlm_block_backward(dlm_model *m, dlm_acts *acts, int layer, const float *dres_out,
                        float *dx_in, int B, int causal)
{
    const dlm_model_config *c = &m->cfg;
    const dlm_block_params *p = &m->params.blocks[layer];
    dlm_block_params *g = &m->grads.blocks[layer];
    const dlm_block_acts *a = &acts->blocks[layer];
    dlm_block_scratch *s = &acts->scratch;
    const float *x_in = dlm_block_input(acts, layer);
    int tp = m->layout.tp_size, T = c->seq_len, C = c->d_model;
    int Cl = C / tp, Hl = c->n_head / tp;
    int64_t N = (int64_t)B * T;

    double t0 = acts->timers ? dlm_now() : 0.0;
    /* MLP: res_out = res_mid + fcp(gelu(fc(ln2(res_mid)))); the row-parallel
     * fcp sees the whole dres_out (reduce's backward is the identity), the
     * column-parallel fc's input gradient is summed over tp (copy's backward) */
    memcpy(s->dres_mid, dres_out, (size_t)N * C * sizeof(float));
    dlm_linear_backward(s->dfch, 0.0f, g->fcp_w, g->fcp_b, dres_out, a->fch_gelu, p->fcp_w, N,
                        4 * Cl, C);
    dlm_gelu_backward(s->dfch, a->fch, s->dfch, N * 4 * Cl);
    dlm_linear_backward(s->dln, 0.0f, g->fc_w, g->fc_b, s->dfch, a->ln2, p->fc_w, N, C, 4 * Cl);
    dlm_tp_copy_backward(m->tp, s->dln, N * C);
    dlm_layernorm_backward(s->dres_mid, g->ln2_w, g->ln2_b, s->dln, a->res_mid, p->ln2_w,
                           a->ln2_mean, a->ln2_rstd, N, C);
    dlm_phase_lap(acts->timers, DLM_PHASE_MLP_BWD, &t0);
    /* attention: res_mid = x_in + proj(attn(rope(qkv(ln1(x_in))))) */
    memcpy(dx_in, s->dres_mid, (size_t)N * C * sizeof(float));
    dlm_linear_backward(s->datty, 0.0f, g->proj_w, g->proj_b, s->dres_mid, a->atty, p->proj_w, N,
                        Cl, C);
    dlm_attention_backward(s->dqkv, s->datt, s->datty, a->qkv, a->att, B, T, Cl, Hl, causal);
    dlm_rope_backward(s->dqkv, m->rope_cos, m->rope_sin, B, T, Cl, Hl);
    dlm_linear_backward(s->dln, 0.0f, g->qkv_w, g->qkv_b, s->dqkv, a->ln1, p->qkv_w, N, C, 3 * Cl);
    dlm_tp_copy_backward(m->tp, s->dln, N * C);
    dlm_layernorm_backward(dx_in, g->ln1_w, g->ln1_b, s->dln, x_in, p->ln1_w, a->ln1_mean,
                           a->ln1_rstd, N, C);
    dlm_phase_lap(acts->timers, DLM_PHASE_ATTN_BWD, &t0);
}

void dlm_embed_backward(dlm_model *m, const dlm_acts *a, const int32_t *inputs, const float *dx,
                        int B)
{
    double t0 = a->timers ? dlm_now() : 0.0;
    int64_t N = (int64_t)B * m->cfg.seq_len;
    if (m->layout.tp_size == 1) {
        dlm_embedding_backward(m->grads.wte, inputs, dx, N, m->cfg.d_model);
    } else {
        int32_t v0, nv;
        vocab_shard(m, &v0, &nv);
        dlm_embedding_backward_range(m->grads.wte, inputs, dx, N, m->cfg.d_model, v0, nv);
    }
    dlm_phase_lap(a->timers, DLM_PHASE_EMBED_BWD, &t0);
}

dlm_status dlm_model_whole_logits(const dlm_model *m, const float *local, int64_t n, float *whole,
                                  float *work)
{
    int tp = m->layout.tp_size, Vp = m->cfg.vocab_padded, Vl = Vp / tp;
    if (tp == 1) {
        memcpy(whole, local, (size_t)n * Vp * sizeof *whole);
        return DLM_OK;
    }
    float *all = work ? work : malloc((size_t)n * Vp * sizeof *all); /* (tp, n, Vl): rank-major */
    DLM_CHECK(all != NULL, DLM_ERR_NOMEM, "%lld rows of logits", (long long)n);
    dlm_tp_allgather(m->tp, local, n * Vl, all);
    for (int r = 0; r < tp; r++)
        for (int64_t i = 0; i < n; i++)
            memcpy(whole + i * Vp + (int64_t)r * Vl, all + ((int64_t)r * n + i) * Vl,
                   (size_t)Vl * sizeof *whole);
    if (all != work) free(all);
    return dlm_tp_status(m->tp);
}

dlm_status dlm_model_stage_forward(const dlm_model *m, dlm_acts *a, const int32_t *inputs,
                                   const float *x_in, int B, int causal, const int32_t *rows,
                                   int64_t n)
{
    const dlm_model_config *c = &m->cfg;
    int l0, l1;
    dlm_layout_blocks(&m->layout, c->n_layer, &l0, &l1);
    if (dlm_layout_is_first(&m->layout)) {
        DLM_CALL(dlm_embed_forward(m, a, inputs, B));
    } else {
        DLM_CHECK(B >= 1 && B <= a->max_batch && x_in, DLM_ERR_ARG,
                  "stage input of %d sequences for activations of at most %d", B, a->max_batch);
        memcpy(a->embed, x_in, (size_t)B * c->seq_len * c->d_model * sizeof *a->embed);
    }
    for (int l = l0; l < l1; l++) dlm_block_forward(m, a, l, B, causal);
    if (dlm_layout_is_last(&m->layout, c->n_layer)) dlm_head_forward(m, a, B, rows, n);
    return dlm_tp_status(m->tp);
}

const float *dlm_stage_output(const dlm_model *m, const dlm_acts *a)
{
    int l0, l1;
    dlm_layout_blocks(&m->layout, m->cfg.n_layer, &l0, &l1);
    return dlm_block_input(a, l1);
}

dlm_status dlm_model_forward_rows(const dlm_model *m, dlm_acts *a, const int32_t *inputs, int B,
                                  int causal, const int32_t *rows, int64_t n)
{
    return dlm_model_stage_forward(m, a, inputs, NULL, B, causal, rows, n);
}

dlm_status dlm_model_forward(const dlm_model *m, dlm_acts *a, const int32_t *inputs, int B,
                             int causal)
{
    return dlm_model_forward_rows(m, a, inputs, B, causal, NULL, 0);
}

void dlm_model_backward(dlm_model *m, dlm_acts *a, const int32_t *inputs, int B, int causal)
{
    dlm_model_stage_backward(m, a, inputs, NULL, NULL, B, causal);
}

void dlm_model_stage_backward(dlm_model *m, dlm_acts *a, const int32_t *inputs, const float *dout,
                              float *din, int B, int causal)
{
    const dlm_model_config *c = &m->cfg;
    dlm_block_scratch *s = &a->scratch;
    float *dcur = s->dres_a, *dnext = s->dres_b;
    size_t NC = (size_t)B * c->seq_len * c->d_model;
    int l0, l1;
    dlm_layout_blocks(&m->layout, c->n_layer, &l0, &l1);
    if (dlm_layout_is_last(&m->layout, c->n_layer)) dlm_head_backward(m, a, B, dcur);
    else memcpy(dcur, dout, NC * sizeof *dcur);
    for (int l = l1 - 1; l >= l0; l--) {
        dlm_block_backward(m, a, l, dcur, dnext, B, causal);
        float *t = dcur;
        dcur = dnext, dnext = t;
    }
    if (dlm_layout_is_first(&m->layout)) dlm_embed_backward(m, a, inputs, dcur, B);
    else memcpy(din, dcur, NC * sizeof *din);
}

void dlm_model_zero_grad(dlm_model *m) { dlm_arena_zero(&m->grad_arena); }
