/* Parameter table, allocation, initialisation, FLOP count, and the
 * forward/backward passes of the transformer (one block at a time). */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    dlm_param_info *t;
    int n, cap;
    size_t offset;
} table_builder;

static dlm_status table_add(table_builder *tb, const char *name, int layer, int64_t rows,
                            int64_t cols, int embedding, dlm_init_kind init)
{
    if (tb->n == tb->cap) {
        int cap = tb->cap ? 2 * tb->cap : 64;
        dlm_param_info *t = realloc(tb->t, (size_t)cap * sizeof *t);
        DLM_CHECK(t != NULL, DLM_ERR_NOMEM, "growing the parameter table");
        tb->t = t, tb->cap = cap;
    }
    dlm_param_info *p = &tb->t[tb->n++];
    memset(p, 0, sizeof *p);
    if (layer >= 0) snprintf(p->name, sizeof p->name, "blocks.%d.%s", layer, name);
    else snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = cols > 0 ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols > 0 ? cols : 1;
    p->numel = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    p->offset = tb->offset;
    p->layer = layer;
    p->embedding = embedding;
    p->decay = p->ndim == 2;
    p->init = init;
    tb->offset += dlm_arena_round(p->numel);
    return DLM_OK;
}

/* Order matters: dlm_block_params' fields follow the same order. */
static dlm_status build_table(const dlm_model_config *c, table_builder *tb)
{
    int64_t C = c->d_model, V = c->vocab_padded;
    DLM_CALL(table_add(tb, "wte", -1, V, C, 1, DLM_INIT_NORMAL));
    for (int l = 0; l < c->n_layer; l++) {
        DLM_CALL(table_add(tb, "ln1.weight", l, C, 0, 0, DLM_INIT_ONE));
        DLM_CALL(table_add(tb, "ln1.bias", l, C, 0, 0, DLM_INIT_ZERO));
        DLM_CALL(table_add(tb, "attn.qkv.weight", l, 3 * C, C, 0, DLM_INIT_NORMAL));
        DLM_CALL(table_add(tb, "attn.qkv.bias", l, 3 * C, 0, 0, DLM_INIT_ZERO));
        DLM_CALL(table_add(tb, "attn.proj.weight", l, C, C, 0, DLM_INIT_RESIDUAL));
        DLM_CALL(table_add(tb, "attn.proj.bias", l, C, 0, 0, DLM_INIT_ZERO));
        DLM_CALL(table_add(tb, "ln2.weight", l, C, 0, 0, DLM_INIT_ONE));
        DLM_CALL(table_add(tb, "ln2.bias", l, C, 0, 0, DLM_INIT_ZERO));
        DLM_CALL(table_add(tb, "mlp.fc.weight", l, 4 * C, C, 0, DLM_INIT_NORMAL));
        DLM_CALL(table_add(tb, "mlp.fc.bias", l, 4 * C, 0, 0, DLM_INIT_ZERO));
        DLM_CALL(table_add(tb, "mlp.proj.weight", l, C, 4 * C, 0, DLM_INIT_RESIDUAL));
        DLM_CALL(table_add(tb, "mlp.proj.bias", l, C, 0, 0, DLM_INIT_ZERO));
    }
    DLM_CALL(table_add(tb, "lnf.weight", -1, C, 0, 0, DLM_INIT_ONE));
    DLM_CALL(table_add(tb, "lnf.bias", -1, C, 0, 0, DLM_INIT_ZERO));
    if (!c->tied_head) DLM_CALL(table_add(tb, "lm_head", -1, V, C, 1, DLM_INIT_NORMAL));
    return DLM_OK;
}

#define BLOCK_TENSORS 12

static dlm_status make_views(const dlm_model_config *c, const dlm_param_info *t, float *base,
                             dlm_model_views *v)
{
    v->blocks = calloc((size_t)c->n_layer, sizeof *v->blocks);
    DLM_CHECK(v->blocks != NULL, DLM_ERR_NOMEM, "allocating block views");
    int i = 0;
    v->wte = base + t[i++].offset;
    for (int l = 0; l < c->n_layer; l++) {
        float **f = (float **)&v->blocks[l];
        for (int k = 0; k < BLOCK_TENSORS; k++) f[k] = base + t[i++].offset;
    }
    v->lnf_w = base + t[i++].offset;
    v->lnf_b = base + t[i++].offset;
    v->lm_head = c->tied_head ? v->wte : base + t[i++].offset;
    return DLM_OK;
}

/* ---- activations ---- */

static size_t block_act_floats(const dlm_model_config *c, int B)
{
    size_t N = (size_t)B * c->seq_len, C = c->d_model, T = c->seq_len, H = c->n_head;
    size_t r = dlm_arena_round(N * C), rn = dlm_arena_round(N);
    return 2 * (r + 2 * rn) + dlm_arena_round(N * 3 * C) + dlm_arena_round((size_t)B * H * T * T) +
           2 * r + 2 * dlm_arena_round(N * 4 * C) + r;
}

static size_t act_floats(const dlm_model_config *c, int B)
{
    size_t N = (size_t)B * c->seq_len, C = c->d_model, T = c->seq_len;
    size_t r = dlm_arena_round(N * C), rn = dlm_arena_round(N);
    size_t hs = (size_t)(C / c->n_head);
    size_t total = 2 * dlm_arena_round(T * hs / 2);            /* rope tables */
    total += r + (size_t)c->n_layer * block_act_floats(c, B);  /* embed + blocks */
    total += r + 2 * rn + dlm_arena_round(N * c->vocab_padded); /* lnf + logits */
    total += 5 * r + dlm_arena_round(N * 3 * C) + dlm_arena_round(N * 4 * C) +
             dlm_arena_round((size_t)B * c->n_head * T * T); /* scratch */
    return total;
}

static dlm_status take_acts(dlm_model *m)
{
    const dlm_model_config *c = &m->cfg;
    size_t N = (size_t)m->max_batch * c->seq_len, C = c->d_model, T = c->seq_len;
    size_t hs = C / (size_t)c->n_head;
    dlm_arena *a = &m->act_arena;
    DLM_CALL(dlm_arena_take(a, T * hs / 2, &m->rope_cos));
    DLM_CALL(dlm_arena_take(a, T * hs / 2, &m->rope_sin));
    DLM_CALL(dlm_arena_take(a, N * C, &m->embed));
    for (int l = 0; l < c->n_layer; l++) {
        dlm_block_acts *b = &m->acts[l];
        DLM_CALL(dlm_arena_take(a, N * C, &b->ln1));
        DLM_CALL(dlm_arena_take(a, N, &b->ln1_mean));
        DLM_CALL(dlm_arena_take(a, N, &b->ln1_rstd));
        DLM_CALL(dlm_arena_take(a, N * 3 * C, &b->qkv));
        DLM_CALL(dlm_arena_take(a, (size_t)m->max_batch * c->n_head * T * T, &b->att));
        DLM_CALL(dlm_arena_take(a, N * C, &b->atty));
        DLM_CALL(dlm_arena_take(a, N * C, &b->res_mid));
        DLM_CALL(dlm_arena_take(a, N * C, &b->ln2));
        DLM_CALL(dlm_arena_take(a, N, &b->ln2_mean));
        DLM_CALL(dlm_arena_take(a, N, &b->ln2_rstd));
        DLM_CALL(dlm_arena_take(a, N * 4 * C, &b->fch));
        DLM_CALL(dlm_arena_take(a, N * 4 * C, &b->fch_gelu));
        DLM_CALL(dlm_arena_take(a, N * C, &b->res_out));
    }
    DLM_CALL(dlm_arena_take(a, N * C, &m->lnf));
    DLM_CALL(dlm_arena_take(a, N, &m->lnf_mean));
    DLM_CALL(dlm_arena_take(a, N, &m->lnf_rstd));
    DLM_CALL(dlm_arena_take(a, N * (size_t)c->vocab_padded, &m->logits));
    dlm_block_scratch *s = &m->scratch;
    DLM_CALL(dlm_arena_take(a, N * C, &s->dres_a));
    DLM_CALL(dlm_arena_take(a, N * C, &s->dres_b));
    DLM_CALL(dlm_arena_take(a, N * C, &s->dres_mid));
    DLM_CALL(dlm_arena_take(a, N * C, &s->dln));
    DLM_CALL(dlm_arena_take(a, N * 3 * C, &s->dqkv));
    DLM_CALL(dlm_arena_take(a, N * C, &s->datty));
    DLM_CALL(dlm_arena_take(a, N * 4 * C, &s->dfch));
    DLM_CALL(dlm_arena_take(a, (size_t)m->max_batch * c->n_head * T * T, &s->datt));
    return DLM_OK;
}

dlm_status dlm_param_table_create(const dlm_model_config *cfg, dlm_param_info **table, int *n,
                                  size_t *floats)
{
    *table = NULL;
    DLM_CALL(dlm_model_config_check(cfg));
    table_builder tb = {0};
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

dlm_status dlm_model_create(const dlm_model_config *cfg, int max_batch, dlm_model **out)
{
    *out = NULL;
    DLM_CALL(dlm_model_config_check(cfg));
    DLM_CHECK(max_batch >= 1, DLM_ERR_ARG, "batch size must be >= 1, got %d", max_batch);
    dlm_model *m = calloc(1, sizeof *m);
    DLM_CHECK(m != NULL, DLM_ERR_NOMEM, "allocating the model");
    dlm_status st = DLM_OK;
    m->cfg = *cfg;
    m->max_batch = max_batch;
    DLM_CALL_GOTO(st, dlm_param_table_create(cfg, &m->table, &m->n_tensors, &m->n_params), fail);
    DLM_CALL_GOTO(st, dlm_arena_create(m->n_params, &m->param_arena), fail);
    DLM_CALL_GOTO(st, dlm_arena_create(m->n_params, &m->grad_arena), fail);
    m->param_arena.used = m->grad_arena.used = m->n_params;
    DLM_CALL_GOTO(st, make_views(cfg, m->table, m->param_arena.base, &m->params), fail);
    DLM_CALL_GOTO(st, make_views(cfg, m->table, m->grad_arena.base, &m->grads), fail);
    m->acts = calloc((size_t)cfg->n_layer, sizeof *m->acts);
    st = m->acts ? DLM_OK : DLM_ERR_NOMEM;
    DLM_CALL_GOTO(st, st, fail);
    DLM_CALL_GOTO(st, dlm_arena_create(act_floats(cfg, max_batch), &m->act_arena), fail);
    DLM_CALL_GOTO(st, take_acts(m), fail);
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
    dlm_arena_destroy(&m->act_arena);
    free(m->params.blocks);
    free(m->grads.blocks);
    free(m->acts);
    free(m->table);
    free(m);
    *pm = NULL;
}

void dlm_model_init(dlm_model *m, uint64_t seed)
{
    const double std = 0.02, std_res = 0.02 / sqrt(2.0 * m->cfg.n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const dlm_param_info *p = &m->table[i];
        float *x = m->param_arena.base + p->offset;
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < p->numel; j++) {
            switch (p->init) {
            case DLM_INIT_ZERO: x[j] = 0.0f; break;
            case DLM_INIT_ONE: x[j] = 1.0f; break;
            case DLM_INIT_NORMAL:
            case DLM_INIT_RESIDUAL: {
                double s = p->init == DLM_INIT_NORMAL ? std : std_res;
                x[j] = (float)(s * dlm_rng_normal(seed, 0, (uint32_t)i, (uint32_t)j, DLM_RNG_INIT));
                break;
            }
            }
        }
    }
}

int64_t dlm_model_nonembedding_params(const dlm_model_config *c)
{
    int64_t C = c->d_model;
    return (int64_t)c->n_layer * (12 * C * C + 13 * C) + 2 * C;
}

int64_t dlm_model_param_count(const dlm_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_tensors; i++) n += (int64_t)m->table[i].numel;
    return n;
}

double dlm_model_flops_per_token(const dlm_model_config *c)
{
    double C = c->d_model;
    return 6.0 * (double)dlm_model_nonembedding_params(c) + 6.0 * C * c->vocab_padded +
           12.0 * c->n_layer * C * c->seq_len;
}

/* ---- forward and backward ---- */

void dlm_block_forward(const dlm_model *m, int layer, const float *x_in, int B, int causal)
{
    const dlm_model_config *c = &m->cfg;
    const dlm_block_params *p = &m->params.blocks[layer];
    dlm_block_acts *a = &m->acts[layer];
    int T = c->seq_len, C = c->d_model, H = c->n_head;
    int64_t N = (int64_t)B * T;
    double t0 = m->timers ? dlm_now() : 0.0;
    dlm_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x_in, p->ln1_w, p->ln1_b, N, C);
    dlm_linear_forward(a->qkv, a->ln1, p->qkv_w, p->qkv_b, N, C, 3 * C);
    dlm_rope_forward(a->qkv, m->rope_cos, m->rope_sin, B, T, C, H);
    dlm_attention_forward(a->atty, a->att, a->qkv, B, T, C, H, causal);
    dlm_linear_forward(a->res_mid, a->atty, p->proj_w, p->proj_b, N, C, C);
    dlm_accumulate(a->res_mid, x_in, N * C);
    dlm_phase_lap(m->timers, DLM_PHASE_ATTN, &t0);
    dlm_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res_mid, p->ln2_w, p->ln2_b, N, C);
    dlm_linear_forward(a->fch, a->ln2, p->fc_w, p->fc_b, N, C, 4 * C);
    dlm_gelu_forward(a->fch_gelu, a->fch, N * 4 * C);
    dlm_linear_forward(a->res_out, a->fch_gelu, p->fcp_w, p->fcp_b, N, 4 * C, C);
    dlm_accumulate(a->res_out, a->res_mid, N * C);
    dlm_phase_lap(m->timers, DLM_PHASE_MLP, &t0);
}

void dlm_block_backward(dlm_model *m, int layer, const float *x_in, const float *dres_out,
                        float *dx_in, int B, int causal)
{
    const dlm_model_config *c = &m->cfg;
    const dlm_block_params *p = &m->params.blocks[layer];
    dlm_block_params *g = &m->grads.blocks[layer];
    const dlm_block_acts *a = &m->acts[layer];
    dlm_block_scratch *s = &m->scratch;
    int T = c->seq_len, C = c->d_model, H = c->n_head;
    int64_t N = (int64_t)B * T;

    double t0 = m->timers ? dlm_now() : 0.0;
    /* MLP: res_out = res_mid + fcp(gelu(fc(ln2(res_mid)))) */
    memcpy(s->dres_mid, dres_out, (size_t)N * C * sizeof(float));
    dlm_linear_backward(s->dfch, 0.0f, g->fcp_w, g->fcp_b, dres_out, a->fch_gelu, p->fcp_w, N,
                        4 * C, C);
    dlm_gelu_backward(s->dfch, a->fch, s->dfch, N * 4 * C);
    dlm_linear_backward(s->dln, 0.0f, g->fc_w, g->fc_b, s->dfch, a->ln2, p->fc_w, N, C, 4 * C);
    dlm_layernorm_backward(s->dres_mid, g->ln2_w, g->ln2_b, s->dln, a->res_mid, p->ln2_w,
                           a->ln2_mean, a->ln2_rstd, N, C);
    dlm_phase_lap(m->timers, DLM_PHASE_MLP_BWD, &t0);
    /* attention: res_mid = x_in + proj(attn(rope(qkv(ln1(x_in))))) */
    memcpy(dx_in, s->dres_mid, (size_t)N * C * sizeof(float));
    dlm_linear_backward(s->datty, 0.0f, g->proj_w, g->proj_b, s->dres_mid, a->atty, p->proj_w, N,
                        C, C);
    dlm_attention_backward(s->dqkv, s->datt, s->datty, a->qkv, a->att, B, T, C, H, causal);
    dlm_rope_backward(s->dqkv, m->rope_cos, m->rope_sin, B, T, C, H);
    dlm_linear_backward(s->dln, 0.0f, g->qkv_w, g->qkv_b, s->dqkv, a->ln1, p->qkv_w, N, C, 3 * C);
    dlm_layernorm_backward(dx_in, g->ln1_w, g->ln1_b, s->dln, x_in, p->ln1_w, a->ln1_mean,
                           a->ln1_rstd, N, C);
    dlm_phase_lap(m->timers, DLM_PHASE_ATTN_BWD, &t0);
}

dlm_status dlm_model_forward(dlm_model *m, const int32_t *inputs, int B, int causal)
{
    const dlm_model_config *c = &m->cfg;
    DLM_CHECK(B >= 1 && B <= m->max_batch, DLM_ERR_ARG,
              "batch of %d sequences, but the model was sized for at most %d", B, m->max_batch);
    int64_t N = (int64_t)B * c->seq_len;
    for (int64_t n = 0; n < N; n++)
        DLM_CHECK(inputs[n] >= 0 && inputs[n] <= c->mask_id, DLM_ERR_ARG,
                  "input token %d at position %lld is outside the vocabulary (0..%d with MASK)",
                  inputs[n], (long long)n, c->mask_id);
    double t0 = m->timers ? dlm_now() : 0.0;
    dlm_embedding_forward(m->embed, inputs, m->params.wte, N, c->d_model);
    dlm_phase_lap(m->timers, DLM_PHASE_EMBED, &t0);
    const float *x = m->embed;
    for (int l = 0; l < c->n_layer; l++) {
        dlm_block_forward(m, l, x, B, causal);
        x = m->acts[l].res_out;
    }
    t0 = m->timers ? dlm_now() : 0.0;
    dlm_layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, x, m->params.lnf_w, m->params.lnf_b,
                          N, c->d_model);
    dlm_linear_forward(m->logits, m->lnf, m->params.lm_head, NULL, N, c->d_model,
                       c->vocab_padded);
    dlm_phase_lap(m->timers, DLM_PHASE_HEAD, &t0);
    return DLM_OK;
}

void dlm_model_backward(dlm_model *m, const int32_t *inputs, int B, int causal)
{
    const dlm_model_config *c = &m->cfg;
    dlm_block_scratch *s = &m->scratch;
    int C = c->d_model, L = c->n_layer;
    int64_t N = (int64_t)B * c->seq_len;
    double t0 = m->timers ? dlm_now() : 0.0;
    /* head: logits = lnf @ lm_head^T, with m->logits now holding dlogits */
    dlm_linear_backward(s->dln, 0.0f, m->grads.lm_head, NULL, m->logits, m->lnf,
                        m->params.lm_head, N, C, c->vocab_padded);
    float *dcur = s->dres_a, *dnext = s->dres_b;
    memset(dcur, 0, (size_t)N * C * sizeof(float));
    const float *x_last = m->acts[L - 1].res_out;
    dlm_layernorm_backward(dcur, m->grads.lnf_w, m->grads.lnf_b, s->dln, x_last, m->params.lnf_w,
                           m->lnf_mean, m->lnf_rstd, N, C);
    dlm_phase_lap(m->timers, DLM_PHASE_HEAD_BWD, &t0);
    for (int l = L - 1; l >= 0; l--) {
        const float *x_in = l == 0 ? m->embed : m->acts[l - 1].res_out;
        dlm_block_backward(m, l, x_in, dcur, dnext, B, causal);
        float *t = dcur;
        dcur = dnext, dnext = t;
    }
    t0 = m->timers ? dlm_now() : 0.0;
    dlm_embedding_backward(m->grads.wte, inputs, dcur, N, C);
    dlm_phase_lap(m->timers, DLM_PHASE_EMBED_BWD, &t0);
}

void dlm_model_zero_grad(dlm_model *m) { dlm_arena_zero(&m->grad_arena); }
