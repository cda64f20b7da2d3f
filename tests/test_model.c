/* The transformer as a whole: gradients against central finite
 * differences for both objectives, the loss at initialisation, MASK and
 * padding columns, the parameter table and FLOP count, micro-batching. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "diffusion/objective.h"
#include "harness.h"
#include "model/kvcache.h"
#include "model/model.h"
#include "train/step.h"

#define LN257 5.54907608489522

typedef struct {
    dlm_model *m;
    dlm_step_buffers buf;
    dlm_objective obj;
    int32_t *x0;
    int G;
} fixture;

static void fixture_make(fixture *f, dlm_objective_kind kind, int G, int micro, int L, int C,
                         int H, int T, int tied)
{
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, L, C, H, T);
    cfg.tied_head = tied;
    DLM_TEST_OK(dlm_model_create(&cfg, &f->m));
    dlm_model_init(f->m, 7);
    DLM_TEST_OK(dlm_step_buffers_create(f->m, micro, &f->buf));
    f->obj = (dlm_objective){.kind = kind, .seed = 3, .bos_id = DLM_BYTE_SEP, .mask_id = DLM_BYTE_VOCAB};
    dlm_schedule_default(&f->obj.schedule, DLM_SCHEDULE_LOGLINEAR);
    f->G = G;
    f->x0 = malloc((size_t)G * T * sizeof *f->x0);
    for (int i = 0; i < G * T; i++) /* all byte values and the separator */
        f->x0[i] = (int32_t)(dlm_rng_uniform(5, 0, 0, (uint32_t)i, DLM_RNG_TEST) * 257);
}

static void fixture_free(fixture *f)
{
    free(f->x0);
    dlm_step_buffers_destroy(&f->buf);
    dlm_model_destroy(&f->m);
}

/* Loss (nats/token) of the global batch; gradients into m->grads if backward. */
static double batch_loss(fixture *f, int backward)
{
    double loss = NAN;
    DLM_TEST_OK(dlm_batch_loss(f->m, &f->buf, &f->obj, f->x0, f->G, 0, backward, &loss));
    return loss;
}

/* For every tensor, the derivative along its normalised gradient direction
 * u = g / |g| must equal |g|: central difference (L(p + h u) - L(p - h u)) / 2h.
 * With h = 1e-2, fp32 roundoff in the loss (about 1e-6 relative on a loss
 * near 5.5) contributes about 1e-4 and curvature O(h^2); in practice the largest error seen
 * over all tensors is 0.08% (a dropped rotary backward gives 3-25%), so the
 * bound is 0.5% relative plus 2e-4 absolute. A second check along one
 * random direction over all parameters at once catches a missing
 * contribution that a per-tensor direction could hide. Weights are first
 * scaled up so every path carries a gradient well above that noise. */
static void gradient_check(dlm_objective_kind kind, int tied)
{
    fixture f;
    fixture_make(&f, kind, 2, 2, 2, 16, 2, 8, tied);
    dlm_model *m = f.m;
    size_t n = m->n_params;
    float *p = m->param_arena.base;
    for (size_t i = 0; i < n; i++) /* larger weights than GPT-2's init: stronger gradients */
        p[i] += 0.3f * (float)(2 * dlm_rng_uniform(9, 1, 0, (uint32_t)i, DLM_RNG_TEST) - 1);
    batch_loss(&f, 1);
    float *g = malloc(n * sizeof *g), *p0 = malloc(n * sizeof *p0);
    memcpy(g, m->grad_arena.base, n * sizeof *g);
    memcpy(p0, p, n * sizeof *p0);
    const double h = 1e-2;
    int checked = 0;
    for (int k = 0; k < m->n_tensors; k++) {
        const dlm_param_info *t = &m->table[k];
        double gn = 0.0;
        for (size_t i = 0; i < t->numel; i++) gn += (double)g[t->offset + i] * g[t->offset + i];
        gn = sqrt(gn);
        if (gn < 1e-3) {
            /* only padding rows of the head/embedding may have no gradient */
            printf("\n  %s has gradient norm %.3g", t->name, gn);
            CU_FAIL("a parameter tensor has (almost) no gradient");
            continue;
        }
        double lp, lm;
        for (size_t i = 0; i < t->numel; i++)
            p[t->offset + i] = (float)(p0[t->offset + i] + h * g[t->offset + i] / gn);
        lp = batch_loss(&f, 0);
        for (size_t i = 0; i < t->numel; i++)
            p[t->offset + i] = (float)(p0[t->offset + i] - h * g[t->offset + i] / gn);
        lm = batch_loss(&f, 0);
        memcpy(p + t->offset, p0 + t->offset, t->numel * sizeof *p);
        double fd = (lp - lm) / (2 * h);
        char what[96];
        snprintf(what, sizeof what, "d loss / d %s along its gradient", t->name);
        DLM_TEST_NEAR(fd, gn, 0.005 * gn + 2e-4, what);
        checked++;
    }
    CU_ASSERT(checked == m->n_tensors);
    /* one random direction over everything */
    double dot = 0.0, vn = 0.0;
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i] = (float)(2 * dlm_rng_uniform(11, 2, 0, (uint32_t)i, DLM_RNG_TEST) - 1);
        vn += (double)v[i] * v[i];
    }
    vn = sqrt(vn);
    for (size_t i = 0; i < n; i++) dot += (double)g[i] * v[i] / vn;
    for (size_t i = 0; i < n; i++) p[i] = (float)(p0[i] + h * v[i] / vn);
    double lp = batch_loss(&f, 0);
    for (size_t i = 0; i < n; i++) p[i] = (float)(p0[i] - h * v[i] / vn);
    double lm = batch_loss(&f, 0);
    DLM_TEST_NEAR((lp - lm) / (2 * h), dot, 0.005 * fabs(dot) + 2e-4, "random direction");
    free(v);
    free(g);
    free(p0);
    fixture_free(&f);
}

static void test_grad_ar(void) { gradient_check(DLM_OBJECTIVE_AR, 0); }
static void test_grad_mdlm(void) { gradient_check(DLM_OBJECTIVE_MDLM, 0); }
static void test_grad_mdlm_tied(void) { gradient_check(DLM_OBJECTIVE_MDLM, 1); }

/* GPT-2 init gives near-uniform predictions: AR loss within 2% of ln(257). */
static void test_init_loss(void)
{
    fixture f;
    fixture_make(&f, DLM_OBJECTIVE_AR, 4, 4, 2, 32, 4, 32, 0);
    double loss = batch_loss(&f, 0);
    DLM_TEST_NEAR(loss, LN257, 0.02 * LN257, "AR loss at initialisation");
    fixture_free(&f);
}

/* A zero head predicts uniformly over the 257 data ids: loss is ln(257)
 * (fp32 rounding only), however large the MASK and padding logits would be
 * in the rows that cannot receive probability. */
static void test_mask_and_padding_get_no_probability(void)
{
    fixture f;
    fixture_make(&f, DLM_OBJECTIVE_MDLM, 2, 2, 1, 16, 2, 16, 0);
    dlm_model *m = f.m;
    int C = m->cfg.d_model, V = m->cfg.vocab_padded;
    f.obj.t_fixed = 1.0; /* every token masked: every position scored with weight 1 */
    memset(m->params.lm_head, 0, (size_t)V * C * sizeof(float));
    double uniform = batch_loss(&f, 0);
    DLM_TEST_NEAR(uniform, LN257, 1e-5, "loss of a uniform predictor");
    for (int v = m->cfg.vocab_size; v < V; v++) /* MASK row and padding rows: huge logits */
        for (int c = 0; c < C; c++) m->params.lm_head[(int64_t)v * C + c] = 100.0f;
    double again = batch_loss(&f, 1);
    CU_ASSERT(again == uniform);
    double gsum = 0.0;
    for (int v = m->cfg.vocab_size; v < V; v++)
        for (int c = 0; c < C; c++) gsum += fabs(m->grads.lm_head[(int64_t)v * C + c]);
    CU_ASSERT(gsum == 0.0);
    fixture_free(&f);
}

/* The table against numbers computed by hand: GPT-2 small (L=12, d=768,
 * V=50257) has 124,439,808 parameters with its 1024 x 768 position table;
 * dlm has none (rotary) but pads the vocabulary to 50304 (47 more rows). */
static void test_param_table_and_flops(void)
{
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 12, 768, 12, 1024);
    dlm_model_config_vocab(&cfg, 50257, 50256);
    cfg.tied_head = 1;
    CU_ASSERT(cfg.vocab_padded == 50304);
    dlm_param_info *t;
    int n;
    size_t floats;
    DLM_TEST_OK(dlm_param_table_create(&cfg, DLM_LAYOUT_SERIAL, &t, &n, &floats));
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        total += (int64_t)t[i].numel;
        CU_ASSERT(t[i].offset % 16 == 0);
        if (i > 0) CU_ASSERT(t[i].offset >= t[i - 1].offset + t[i - 1].numel);
        CU_ASSERT(t[i].decay == (t[i].ndim == 2));
    }
    CU_ASSERT(total == 124439808 - 1024 * 768 + 47 * 768);
    CU_ASSERT(dlm_model_nonembedding_params(&cfg) == total - 50304 * 768);
    CU_ASSERT(n == 1 + 12 * 12 + 2); /* tied: no separate head */
    double want = 6.0 * 85056000 + 6.0 * 768 * 50304 + 12.0 * 12 * 768 * 1024;
    CU_ASSERT(dlm_model_flops_per_token(&cfg) == want);
    free(t);
    /* byte vocabulary: 257 data ids + MASK padded to 320 */
    dlm_model_config_bytes(&cfg, 1, 8, 2, 4);
    CU_ASSERT(cfg.vocab_padded == 320 && cfg.mask_id == 257 && cfg.bos_id == 256);
    /* a bad shape is refused with the key named */
    cfg.n_head = 3;
    CU_ASSERT(dlm_model_config_check(&cfg) == DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "model.heads") != NULL);
    dlm_error_clear();
}

/* Initialisation is a function of (seed, tensor, global element), so each
 * rank of a pretend 2-way tensor-parallel split builds a table of shards
 * whose initial values are exactly the slice of the whole tensor: qkv and
 * fc by rows (a rank's heads are one block of qkv rows), the projections
 * by columns, wte and the head by vocabulary rows, the rest replicated and
 * counted in the gradient norm by rank 0 only. A split that is not even is
 * refused. */
static void test_shards_are_slices_of_the_whole(void)
{
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 2, 16, 2, 8);
    int n, ns;
    size_t floats, fs;
    dlm_param_info *whole, *t;
    DLM_TEST_OK(dlm_param_table_create(&cfg, DLM_LAYOUT_SERIAL, &whole, &n, &floats));
    float *w = calloc(floats, sizeof *w);
    dlm_param_init(whole, n, cfg.n_layer, w, 11);
    int64_t in_norm = 0, total = 0, split_rows = 0, split_cols = 0;
    for (int r = 0; r < 2; r++) {
        dlm_shard_layout lay = {r, 2, 0, 0, 0};
        DLM_TEST_OK(dlm_param_table_create(&cfg, &lay, &t, &ns, &fs));
        CU_ASSERT_FATAL(ns == n);
        float *x = calloc(fs, sizeof *x);
        dlm_param_init(t, ns, cfg.n_layer, x, 11);
        int64_t mismatches = 0;
        for (int i = 0; i < n; i++) {
            const dlm_param_info *p = &t[i], *q = &whole[i];
            CU_ASSERT(p->id == q->id && !strcmp(p->name, q->name) && p->shape[0] == q->shape[0] &&
                      p->shape[1] == q->shape[1]);
            int64_t r0 = 0, c0 = 0, rows = q->shape[0], cols = q->shape[1];
            /* the name within the block: "blocks.<l>.attn.qkv.weight" -> "attn.qkv.weight" */
            const char *nm = p->layer >= 0 ? strchr(p->name + 7, '.') + 1 : p->name;
            int by_rows = !strcmp(p->name, "wte") || !strcmp(p->name, "lm_head") ||
                          !strncmp(nm, "attn.qkv", 8) || !strncmp(nm, "mlp.fc.", 7);
            int by_cols = !strcmp(nm, "attn.proj.weight") || !strcmp(nm, "mlp.proj.weight");
            if (by_rows) rows /= 2, r0 = r * rows, split_rows++;
            if (by_cols) cols /= 2, c0 = r * cols, split_cols++;
            CU_ASSERT(p->local[0] == rows && p->local[1] == cols);
            CU_ASSERT(p->numel == (size_t)(rows * cols));
            if (!strcmp(nm, "attn.qkv.weight")) /* head r: its q, k, v rows (3 hs of them) */
                CU_ASSERT(p->shard.start == r * 3 * (cfg.d_model / cfg.n_head));
            for (int64_t a = 0; a < rows; a++)
                for (int64_t b = 0; b < cols; b++)
                    mismatches += x[p->offset + a * cols + b] !=
                                  w[q->offset + (r0 + a) * q->shape[1] + c0 + b];
            if (dlm_param_counts_in_norm(p, &lay)) in_norm += (int64_t)p->numel;
        }
        CU_ASSERT(mismatches == 0);
        free(x);
        free(t);
    }
    for (int i = 0; i < n; i++) total += (int64_t)whole[i].numel;
    CU_ASSERT(in_norm == total); /* every element counted once over the two ranks */
    CU_ASSERT(split_rows == 2 * (2 + 4 * cfg.n_layer) && split_cols == 2 * 2 * cfg.n_layer);
    /* 3 ranks cannot split 2 heads */
    dlm_shard_layout three = {0, 3, 0, 0, 0};
    CU_ASSERT(dlm_param_table_create(&cfg, &three, &t, &ns, &fs) == DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "tensor-parallel") != NULL);
    dlm_error_clear();
    free(w);
    free(whole);
}

/* Micro-batching only regroups the work: the loss agrees to fp32 rounding
 * (1e-6 relative) and so do the gradients (1e-4 relative to the largest). */
static void test_micro_batching(void)
{
    fixture a, b;
    fixture_make(&a, DLM_OBJECTIVE_MDLM, 4, 4, 1, 16, 2, 8, 0);
    fixture_make(&b, DLM_OBJECTIVE_MDLM, 4, 1, 1, 16, 2, 8, 0);
    double la = batch_loss(&a, 1), lb = batch_loss(&b, 1);
    DLM_TEST_NEAR(la, lb, 1e-6 * la, "loss with 1 vs 4 micro-batches");
    double e = dlm_test_rel_err_f(b.m->grad_arena.base, a.m->grad_arena.base,
                                  (int64_t)a.m->n_params, 1e-6);
    DLM_TEST_BELOW(e, 1e-4, "gradient difference, 1 vs 4 micro-batches");
    fixture_free(&a);
    fixture_free(&b);
}

/* mdlm's head runs on the masked rows only: the loss and every tensor's
 * gradient equal the every-row reference path within 1e-6 relative (to the
 * tensor's largest gradient element: the two paths differ only in the
 * head GEMMs' shapes, so by fp32 rounding, about 1e-7). */
static void test_masked_rows_head_matches_full_head(void)
{
    fixture a, b;
    fixture_make(&a, DLM_OBJECTIVE_MDLM, 8, 4, 2, 16, 2, 16, 0);
    fixture_make(&b, DLM_OBJECTIVE_MDLM, 8, 4, 2, 16, 2, 16, 0);
    b.buf.all_rows = 1;
    double la = batch_loss(&a, 1), lb = batch_loss(&b, 1);
    DLM_TEST_NEAR(la, lb, 1e-6 * fabs(lb), "loss, masked rows vs every row");
    int64_t masked = 0;
    for (int i = 0; i < 4 * 16; i++) masked += a.buf.weights[i] != 0.0f;
    CU_ASSERT(masked > 0 && masked < 4 * 16); /* the last micro-batch was really gathered */
    double worst = 0.0;
    for (int k = 0; k < a.m->n_tensors; k++) {
        const dlm_param_info *t = &a.m->table[k];
        double e = dlm_test_rel_err_f(a.m->grad_arena.base + t->offset,
                                      b.m->grad_arena.base + t->offset, (int64_t)t->numel, 1e-12);
        worst = e > worst ? e : worst;
        char what[96];
        snprintf(what, sizeof what, "gradient of %s, masked rows vs every row", t->name);
        DLM_TEST_BELOW(e, 1e-6, what);
    }
    printf("\n    loss %.9f vs %.9f, worst tensor gradient difference %.2g", la, lb, worst);
    fixture_free(&a);
    fixture_free(&b);
}

/* Tokens outside the vocabulary are refused with their position. */
static void test_bad_token(void)
{
    fixture f;
    fixture_make(&f, DLM_OBJECTIVE_AR, 1, 1, 1, 16, 2, 8, 0);
    f.x0[3] = 300;
    double s;
    CU_ASSERT(dlm_step_micro(f.m, &f.buf, &f.obj, f.x0, 1, 0, 0, 1, 0, NULL, &s) == DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "position 3") != NULL);
    dlm_error_clear();
    fixture_free(&f);
}

/* The key/value cache gives the same logits as a full causal forward, row
 * by row (fp32 rounding of different summation orders: 1e-5 relative). */
static void test_kv_cache_matches_full_forward(void)
{
    fixture f;
    fixture_make(&f, DLM_OBJECTIVE_AR, 1, 1, 2, 16, 2, 8, 0);
    dlm_model *m = f.m;
    for (size_t i = 0; i < m->n_params; i++) /* weights large enough to matter */
        m->param_arena.base[i] += 0.2f * (float)(2 * dlm_rng_uniform(3, 4, 0, (uint32_t)i, DLM_RNG_TEST) - 1);
    int T = m->cfg.seq_len, V = m->cfg.vocab_padded;
    int32_t in[8];
    in[0] = m->cfg.bos_id;
    for (int i = 1; i < T; i++) in[i] = f.x0[i - 1];
    DLM_TEST_OK(dlm_model_forward(m, f.buf.acts, in, 1, 1));
    float *full = malloc((size_t)T * V * sizeof *full), *step = malloc((size_t)V * sizeof *step);
    memcpy(full, f.buf.acts->logits, (size_t)T * V * sizeof *full);
    dlm_kv_cache *kv;
    DLM_TEST_OK(dlm_kv_cache_create(m, &kv));
    for (int round = 0; round < 2; round++) { /* and again after a reset */
        dlm_kv_cache_reset(kv);
        for (int i = 0; i < T; i++) {
            DLM_TEST_OK(dlm_model_forward_step(m, kv, in[i], step));
            char what[64];
            snprintf(what, sizeof what, "cached logits, position %d", i);
            DLM_TEST_BELOW(dlm_test_rel_err_f(step, full + (size_t)i * V, V, 1e-3), 1e-5, what);
        }
    }
    CU_ASSERT(dlm_model_forward_step(m, kv, in[0], step) == DLM_ERR_STATE); /* full */
    dlm_error_clear();
    dlm_kv_cache_destroy(&kv);
    free(full), free(step);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    static const dlm_test_case grad[] = {{"AR gradients vs finite differences", test_grad_ar},
                                         {"mdlm gradients vs finite differences", test_grad_mdlm},
                                         {"mdlm, tied head", test_grad_mdlm_tied},
                                         {NULL, NULL}};
    static const dlm_test_case model[] = {
        {"AR loss at init near ln 257", test_init_loss},
        {"MASK and padding get zero probability", test_mask_and_padding_get_no_probability},
        {"parameter table and FLOPs", test_param_table_and_flops},
        {"tensor-parallel shards are slices of the whole", test_shards_are_slices_of_the_whole},
        {"micro-batching", test_micro_batching},
        {"mdlm head on masked rows = every row", test_masked_rows_head_matches_full_head},
        {"bad token refused", test_bad_token},
        {"key/value cache = full causal forward", test_kv_cache_matches_full_forward},
        {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"gradients", grad}, {"model", model}, {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
