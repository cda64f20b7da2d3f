/* Estimators of the masked-diffusion bound and the AR likelihood, the
 * batched scoring loop, enumeration for small T, and chunk statistics
 * (definitions in nelbo.h). */
#include "eval/nelbo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/timer.h"
#include "diffusion/objective.h"
#include "kernels/kernels.h"
#include "core/mpicall.h"
#include "parallel/pipeline.h"
#include "parallel/tp.h"

#define PI 3.14159265358979323846

static const char *const estimator_names[] = {"exact-k", "mc-t", "quadrature", "discrete", "ar"};
#define N_ESTIMATORS 5

const char *dlm_estimator_name(dlm_estimator_kind kind) { return estimator_names[kind]; }

dlm_status dlm_estimator_parse(const char *name, dlm_estimator_kind *kind)
{
    for (int k = 0; k < N_ESTIMATORS; k++)
        if (!strcmp(name, estimator_names[k])) {
            *kind = (dlm_estimator_kind)k;
            return DLM_OK;
        }
    DLM_CHECK(0, DLM_ERR_ARG,
              "unknown estimator '%s' (expected exact-k, mc-t, quadrature, discrete or ar)", name);
}

void dlm_estimator_default(dlm_estimator *e, dlm_estimator_kind kind)
{
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->K = kind == DLM_EST_AR ? 1 : 16;
    e->strata = e->K;
    e->seed = 1;
    dlm_schedule_default(&e->schedule, DLM_SCHEDULE_LOGLINEAR);
    e->nodes = 16;
    e->steps = 1000;
}

void dlm_gauss_legendre(int n, double a, double b, double *t, double *w)
{
    double mid = 0.5 * (a + b), half = 0.5 * (b - a);
    for (int i = 0; i < (n + 1) / 2; i++) {
        /* Newton on P_n from Tricomi's initial guess; converges in a few steps */
        double z = cos(PI * (i + 0.75) / (n + 0.5)), pp = 1.0;
        for (int it = 0; it < 100; it++) {
            double p1 = 1.0, p2 = 0.0;
            for (int j = 1; j <= n; j++) {
                double p3 = p2;
                p2 = p1;
                p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
            }
            pp = n * (z * p1 - p2) / (z * z - 1.0);
            double z1 = z;
            z = z1 - p1 / pp;
            if (fabs(z - z1) <= 1e-15) break;
        }
        double wi = 2.0 / ((1.0 - z * z) * pp * pp) * half;
        t[i] = mid - half * z;
        t[n - 1 - i] = mid + half * z;
        w[i] = w[n - 1 - i] = wi;
    }
}

dlm_status dlm_estimator_check(dlm_estimator *e, int T)
{
    const char *name = dlm_estimator_name(e->kind);
    DLM_CHECK(T >= 1, DLM_ERR_ARG, "chunk length T must be >= 1, got %d", T);
    DLM_CHECK(e->K >= 1, DLM_ERR_ARG, "K (samples per chunk) must be >= 1, got %d", e->K);
    if (e->kind == DLM_EST_AR) {
        DLM_CHECK(e->K == 1, DLM_ERR_ARG,
                  "the AR likelihood is exact: one sample per chunk, not K = %d", e->K);
        e->strata = 1;
        return DLM_OK;
    }
    DLM_CHECK(e->strata >= 1 && e->K % e->strata == 0, DLM_ERR_ARG,
              "%s: the stratification block (%d samples) must divide K = %d", name, e->strata,
              e->K);
    if (e->kind == DLM_EST_MC_T) {
        double eps = e->schedule.eps;
        DLM_CHECK(eps > 0.0 && eps < 1.0, DLM_ERR_ARG,
                  "mc-t: eps must be in (0, 1), got %g (t is drawn from [eps, 1]; eps > 0 "
                  "because w(t) ~ 1/t gives Monte Carlo over t no finite variance)", eps);
    }
    if (e->kind == DLM_EST_QUADRATURE) {
        DLM_CHECK(e->nodes >= 1 && e->nodes <= DLM_QUAD_MAX_NODES, DLM_ERR_ARG,
                  "quadrature: nodes must be in 1..%d, got %d", DLM_QUAD_MAX_NODES, e->nodes);
        DLM_CHECK(e->K % e->nodes == 0, DLM_ERR_ARG,
                  "quadrature: K = %d must be a multiple of the %d nodes (mask draws per node = "
                  "K / nodes)", e->K, e->nodes);
        dlm_gauss_legendre(e->nodes, 0.0, 1.0, e->quad_t, e->quad_w);
    }
    if (e->kind == DLM_EST_DISCRETE)
        DLM_CHECK(e->steps >= 1, DLM_ERR_ARG, "discrete: steps S must be >= 1, got %d", e->steps);
    return DLM_OK;
}

void dlm_estimator_describe(const dlm_estimator *e, int T, char *buf, size_t len)
{
    switch (e->kind) {
    case DLM_EST_EXACT_K:
        snprintf(buf, len,
                 "exact-k: k uniform in 1..%d (stratified in blocks of %d), k tokens masked "
                 "uniformly, mean CE over them; unbiased for the continuous-time NELBO (no eps)",
                 T, e->strata);
        break;
    case DLM_EST_MC_T: {
        double gap = dlm_schedule_prior_gap(&e->schedule);
        snprintf(buf, len,
                 "mc-t: t in [%g, 1] (stratified in blocks of %d), %s schedule, weight "
                 "(1 - eps) w(t) / T; biased LOW by the bound's part below t = eps (about eps x "
                 "the CE with one token masked, loglinear)%s",
                 e->schedule.eps, e->strata, dlm_schedule_name(e->schedule.kind),
                 gap > 0 ? " and by the prior mass alpha(1) > 0 the schedule leaves unmasked" : "");
        break;
    }
    case DLM_EST_QUADRATURE:
        snprintf(buf, len,
                 "quadrature: Gauss-Legendre in t on [0, 1], %d nodes, %d mask draw(s) per node; "
                 "%s",
                 e->nodes, e->K / e->nodes,
                 2 * e->nodes >= T ? "the rule is exact for this T (nodes >= T/2)"
                                   : "a quadrature error remains (exact only for nodes >= T/2)");
        break;
    case DLM_EST_DISCRETE:
        snprintf(buf, len,
                 "discrete: the %d-step bound (s uniform in 1..S, stratified in blocks of %d); "
                 "above the continuous-time NELBO",
                 e->steps, e->strata);
        break;
    case DLM_EST_AR:
        snprintf(buf, len, "ar: exact NLL, all %d tokens scored, the first from BOS", T);
        break;
    }
}

/* The estimator's own stream: SplitMix64's finaliser of the seed and a tag,
 * so an evaluation seed equal to a training seed draws unrelated masks. */
static uint64_t eval_key(uint64_t seed)
{
    uint64_t z = seed ^ UINT64_C(0x646c6d2d6576616c); /* "dlm-eval" */
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int uniform_int(double u, int n) /* in 0..n-1 */
{
    int r = (int)(u * n);
    return r < n ? r : n - 1;
}

void dlm_estimator_draw(const dlm_estimator *e, int T, int64_t chunk, int j, uint8_t *mask,
                        dlm_sample_info *info)
{
    uint64_t key = eval_key(e->seed);
    uint32_t c = (uint32_t)chunk, jj = (uint32_t)j;
    memset(mask, 0, (size_t)T);
    if (e->kind == DLM_EST_AR) {
        memset(mask, 1, (size_t)T);
        *info = (dlm_sample_info){.n_masked = T, .coord = 0.0, .scale = 1.0 / T};
        return;
    }
    double u = dlm_rng_uniform(key, c, jj, 0, DLM_RNG_TIME);
    double v = ((double)(j % e->strata) + u) / e->strata; /* in [0, 1) */
    double p = 0.0, scale = 0.0, coord = 0.0;
    switch (e->kind) {
    case DLM_EST_EXACT_K: {
        int k = 1 + uniform_int(v, T);
        dlm_mask_k_positions(key, c, jj, k, T, mask); /* the trainer's exact-k draws alike */
        *info = (dlm_sample_info){.n_masked = k, .coord = k, .scale = 1.0 / k};
        return;
    }
    case DLM_EST_MC_T: {
        double eps = e->schedule.eps, t = eps + (1.0 - eps) * v;
        p = dlm_schedule_mask_prob(&e->schedule, t);
        scale = (1.0 - eps) * dlm_schedule_weight(&e->schedule, t) / T;
        coord = t;
        break;
    }
    case DLM_EST_QUADRATURE: {
        int m = j % e->nodes;
        p = coord = e->quad_t[m];
        scale = e->nodes * e->quad_w[m] / (p * T);
        break;
    }
    case DLM_EST_DISCRETE: {
        int s = 1 + uniform_int(v, e->steps);
        p = coord = (double)s / e->steps;
        scale = 1.0 / (p * T);
        break;
    }
    case DLM_EST_AR: break;
    }
    int n = 0;
    for (int i = 0; i < T; i++) {
        mask[i] = dlm_rng_uniform(key, c, jj, (uint32_t)i, DLM_RNG_MASK) < p;
        n += mask[i];
    }
    *info = (dlm_sample_info){.n_masked = n, .coord = coord, .scale = scale};
}

/* g(p) = (1/p) E_{Bernoulli(p)}[sum CE] / T = sum_k C(T,k) p^(k-1) (1-p)^(T-k) S_k / T;
 * lc[k] = log C(T,k). */
static double g_of_p(int T, const double *S, const double *lc, double p)
{
    if (p >= 1.0) return S[T] / T;
    double s = 0.0, lp = log(p), lq = log1p(-p);
    for (int k = 1; k <= T; k++) s += exp(lc[k] + (k - 1) * lp + (T - k) * lq) * S[k];
    return s / T;
}

double dlm_estimator_expectation(const dlm_estimator *e, int T, const double *S)
{
    if (e->kind == DLM_EST_AR) return NAN;
    if (e->kind == DLM_EST_EXACT_K) {
        double s = 0.0;
        for (int k = 1; k <= T; k++) s += S[k] / k;
        return s / T;
    }
    double *lc = malloc(((size_t)T + 1) * sizeof *lc), s = 0.0;
    if (!lc) return NAN;
    for (int k = 0; k <= T; k++) lc[k] = lgamma(T + 1.0) - lgamma(k + 1.0) - lgamma(T - k + 1.0);
    if (e->kind == DLM_EST_MC_T) {
        /* w(t) dt = dp / p with p = 1 - alpha(t): the integral of g over [p(eps), p(1)],
         * a polynomial of degree T - 1, exact with T/2 + 1 Gauss-Legendre nodes */
        double a = dlm_schedule_mask_prob(&e->schedule, e->schedule.eps);
        double b = dlm_schedule_mask_prob(&e->schedule, 1.0);
        int n = T / 2 + 1 < DLM_QUAD_MAX_NODES ? T / 2 + 1 : DLM_QUAD_MAX_NODES;
        double t[DLM_QUAD_MAX_NODES], w[DLM_QUAD_MAX_NODES];
        dlm_gauss_legendre(n, a, b, t, w);
        for (int i = 0; i < n; i++) s += w[i] * g_of_p(T, S, lc, t[i]);
    } else if (e->kind == DLM_EST_QUADRATURE) {
        for (int m = 0; m < e->nodes; m++) s += e->quad_w[m] * g_of_p(T, S, lc, e->quad_t[m]);
    } else if (e->kind == DLM_EST_DISCRETE) {
        for (int i = 1; i <= e->steps; i++) s += g_of_p(T, S, lc, (double)i / e->steps);
        s /= e->steps;
    }
    free(lc);
    return s;
}

/* ---- the scoring loop ---- */

struct dlm_evaluator {
    dlm_model *m;
    dlm_acts *acts;             /* forward only, for B sequences */
    int32_t *inputs, *targets;  /* (B,T) */
    float *tok_loss;            /* (B,T) CE of each head row */
    float *lse;                 /* (B,T) its log-sum-exp (the cross-entropy's scratch) */
    uint8_t *mask;              /* (B,T) scored positions */
    int32_t *rows, *row_targets; /* (B,T) the scored positions, gathered, and their targets */
    double *scale;              /* (B) */
    dlm_sample_result **slot;   /* (B) where each row's result goes */
    MPI_Comm pp_comm;           /* the model's pipeline stages (MPI_COMM_NULL: one) */
    double *sums;               /* (B) each row's CE sum, sent from the last stage */
    int nb, causal, gather;     /* the forward being run */
    int64_t n_head;
    int64_t tokens;
    double seconds;
};

dlm_status dlm_evaluator_create(dlm_model *m, int max_batch, dlm_evaluator **out)
{
    *out = NULL;
    dlm_evaluator *ev = calloc(1, sizeof *ev);
    DLM_CHECK(ev != NULL, DLM_ERR_NOMEM, "allocating the evaluator");
    size_t B = (size_t)max_batch, N = B * (size_t)m->cfg.seq_len;
    ev->m = m;
    ev->inputs = malloc(N * sizeof *ev->inputs);
    ev->targets = malloc(N * sizeof *ev->targets);
    ev->tok_loss = malloc(N * sizeof *ev->tok_loss);
    ev->lse = malloc(N * sizeof *ev->lse);
    ev->mask = malloc(N);
    ev->rows = malloc(N * sizeof *ev->rows);
    ev->row_targets = malloc(N * sizeof *ev->row_targets);
    ev->scale = malloc(B * sizeof *ev->scale);
    ev->slot = malloc(B * sizeof *ev->slot);
    ev->sums = malloc(B * sizeof *ev->sums);
    ev->pp_comm = MPI_COMM_NULL;
    if (!ev->sums || !ev->inputs || !ev->targets || !ev->tok_loss || !ev->lse || !ev->mask || !ev->rows ||
        !ev->row_targets || !ev->scale || !ev->slot ||
        dlm_acts_create(m, max_batch, 0, &ev->acts) != DLM_OK) {
        dlm_evaluator_destroy(&ev);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating evaluation buffers for %zu tokens", N);
    }
    *out = ev;
    return DLM_OK;
}

void dlm_evaluator_destroy(dlm_evaluator **pev)
{
    dlm_evaluator *ev = *pev;
    if (!ev) return;
    dlm_acts_destroy(&ev->acts);
    free(ev->inputs);
    free(ev->targets);
    free(ev->tok_loss);
    free(ev->lse);
    free(ev->mask);
    free(ev->rows);
    free(ev->row_targets);
    free(ev->scale);
    free(ev->slot);
    free(ev->sums);
    free(ev);
    *pev = NULL;
}

void dlm_evaluator_counters(const dlm_evaluator *ev, int64_t *tokens, double *seconds)
{
    *tokens = ev->tokens;
    *seconds = ev->seconds;
}

void dlm_evaluator_set_pipeline(dlm_evaluator *ev, MPI_Comm pp_comm) { ev->pp_comm = pp_comm; }

/* The last stage's part (the whole model's, unstaged): the head on the
 * staged rows, the cross-entropy, each row's sum (in double, in position
 * order) into ev->sums. */
static dlm_status head_sums(dlm_evaluator *ev)
{
    const dlm_model_config *c = &ev->m->cfg;
    int T = c->seq_len, nb = ev->nb, gather = ev->gather;
    int64_t n = ev->n_head;
    /* vocabulary-parallel under tp (this rank's columns [v0, v0 + V)); on one rank the
     * serial kernel's bits */
    int V = c->vocab_padded / ev->m->layout.tp_size, v0 = ev->m->layout.tp_rank * V;
    DLM_CALL(dlm_tp_xent_forward(ev->m->tp, ev->tok_loss, ev->lse, ev->acts->logits,
                                 gather ? ev->row_targets : ev->targets, n, V, v0,
                                 c->vocab_size));
    /* head row j is position rows[j] (gathered, ascending) or j; each
     * sequence's sum is added in position order either way */
    for (int b = 0; b < nb; b++) ev->sums[b] = 0.0;
    for (int64_t j = 0; j < n; j++) {
        int64_t i = gather ? ev->rows[j] : j;
        if (ev->mask[i]) ev->sums[i / T] += ev->tok_loss[j];
    }
    return DLM_OK;
}

/* One pipeline stage's forward of the staged rows (the runner's forward,
 * one micro-batch): in from the stage before (NULL on the first), out to
 * the next (NULL on the last, which computes the sums). */
static dlm_status stage_forward(void *ctx, int k, const float *in, float *out)
{
    (void)k;
    dlm_evaluator *ev = ctx;
    const dlm_model_config *c = &ev->m->cfg;
    DLM_CALL(dlm_model_stage_forward(ev->m, ev->acts, ev->inputs, in, ev->nb, ev->causal,
                                     ev->gather ? ev->rows : NULL, ev->n_head));
    if (out) {
        memcpy(out, dlm_stage_output(ev->m, ev->acts),
               (size_t)ev->nb * c->seq_len * c->d_model * sizeof *out);
        return DLM_OK;
    }
    return head_sums(ev);
}

/* Forward of the nb rows staged in ev; each row's CE summed (in double)
 * over its scored positions into its slot. The head runs on the scored
 * positions only (for AR: every position). Under pipeline stages the rows
 * go through them as one micro-batch and the last stage sends the sums to
 * every stage. */
static dlm_status flush(dlm_evaluator *ev, int nb, int causal)
{
    if (nb == 0) return DLM_OK;
    const dlm_model_config *c = &ev->m->cfg;
    int T = c->seq_len;
    int64_t N = (int64_t)nb * T, n = 0;
    double t0 = dlm_now();
    for (int64_t i = 0; i < N; i++)
        if (ev->mask[i]) ev->rows[n++] = (int32_t)i;
    ev->gather = n < N;
    ev->n_head = ev->gather ? n : N;
    ev->nb = nb, ev->causal = causal;
    for (int64_t j = 0; ev->gather && j < n; j++) ev->row_targets[j] = ev->targets[ev->rows[j]];
    if (!ev->m->layout.staged) {
        DLM_CALL(dlm_model_forward_rows(ev->m, ev->acts, ev->inputs, nb, causal,
                                        ev->gather ? ev->rows : NULL, ev->n_head));
        DLM_CALL(head_sums(ev));
    } else {
        int pp;
        DLM_MPI(MPI_Comm_size(ev->pp_comm, &pp));
        dlm_pipe_stage st = {.ctx = ev, .forward = stage_forward, .backward = NULL};
        size_t act = (size_t)ev->acts->max_batch * T * c->d_model;
        DLM_CALL(dlm_pipe_run(ev->pp_comm, &st, DLM_PIPE_FORWARD_ONLY, 1, act, NULL));
        DLM_MPI(MPI_Bcast(ev->sums, nb, MPI_DOUBLE, pp - 1, ev->pp_comm));
    }
    for (int b = 0; b < nb; b++) {
        double s = ev->sums[b];
        ev->slot[b]->ce_sum = s;
        DLM_CHECK(isfinite(s), DLM_ERR_NUMERIC,
                  "the model's cross-entropy is not finite (%g) on an evaluation sequence; "
                  "the checkpoint's weights may be corrupt", s);
        ev->slot[b]->value = ev->scale[b] * s;
    }
    ev->tokens += N;
    ev->seconds += dlm_now() - t0;
    return DLM_OK;
}

dlm_status dlm_evaluator_run(dlm_evaluator *ev, const dlm_estimator *e, const dlm_chunk_set *cs,
                             int64_t c0, int64_t c1, int j0, int j1, dlm_sample_result *res,
                             size_t ld)
{
    const dlm_model_config *mc = &ev->m->cfg;
    int T = mc->seq_len, B = ev->acts->max_batch;
    DLM_CHECK(cs->T == T, DLM_ERR_ARG, "chunks of %d tokens for a model of sequence length %d",
              cs->T, T);
    DLM_CHECK(0 <= c0 && c0 <= c1 && c1 <= cs->n && 0 <= j0 && j0 <= j1 &&
                  (size_t)(j1 - j0) <= ld,
              DLM_ERR_ARG, "chunk range [%lld, %lld) of %lld or sample range [%d, %d) (ld %zu) is invalid",
              (long long)c0, (long long)c1, (long long)cs->n, j0, j1, ld);
    DLM_CHECK(cs->vocab_size <= mc->vocab_size, DLM_ERR_ARG,
              "the chunks' vocabulary (%d ids) is larger than the model's (%d)", cs->vocab_size,
              mc->vocab_size);
    int causal = e->kind == DLM_EST_AR;
    int nb = 0;
    for (int64_t c = c0; c < c1; c++) {
        DLM_CHECK(cs->index[c] >= 0 && cs->index[c] <= (int64_t)UINT32_MAX, DLM_ERR_ARG,
                  "chunk index %lld does not fit the 32-bit RNG counter", (long long)cs->index[c]);
        const int32_t *x = cs->tokens + c * T;
        for (int j = j0; j < j1; j++) {
            dlm_sample_result *r = res + (size_t)(c - c0) * ld + (size_t)(j - j0);
            uint8_t *mk = ev->mask + (size_t)nb * T;
            dlm_sample_info info;
            dlm_estimator_draw(e, T, cs->index[c], j, mk, &info);
            r->coord = info.coord;
            r->n_masked = info.n_masked;
            r->value = r->ce_sum = 0.0;
            if (info.n_masked == 0) continue; /* nothing masked: the sample's value is 0 */
            int32_t *in = ev->inputs + (size_t)nb * T;
            memcpy(ev->targets + (size_t)nb * T, x, (size_t)T * sizeof *x);
            if (causal) {
                in[0] = mc->bos_id;
                memcpy(in + 1, x, (size_t)(T - 1) * sizeof *x);
            } else {
                for (int i = 0; i < T; i++) in[i] = mk[i] ? mc->mask_id : x[i];
            }
            ev->scale[nb] = info.scale;
            ev->slot[nb] = r;
            if (++nb == B) {
                DLM_CALL(flush(ev, nb, causal));
                nb = 0;
            }
        }
    }
    DLM_CALL(flush(ev, nb, causal));
    return DLM_OK;
}

dlm_status dlm_evaluator_split(const dlm_evaluator *ev, const dlm_estimator *e,
                               const dlm_chunk_set *cs, int j0, int j1, int p, int64_t *bounds)
{
    int64_t n = cs->n;
    bounds[0] = 0;
    for (int r = 1; r <= p; r++) bounds[r] = n;
    if (p == 1 || n == 0) return DLM_OK;
    int T = cs->T, B = ev->acts->max_batch;
    /* before[c]: rows dlm_evaluator_run stages before chunk c (samples with nothing
     * masked stage none); a forward pass ends wherever that is a multiple of B */
    int64_t *before = malloc(((size_t)n + 1) * sizeof *before);
    uint8_t *mask = malloc((size_t)T);
    if (!before || !mask) {
        free(before), free(mask);
        DLM_CHECK(0, DLM_ERR_NOMEM, "planning %lld chunks over %d ranks", (long long)n, p);
    }
    before[0] = 0;
    for (int64_t c = 0; c < n; c++) {
        int64_t rows = 0;
        for (int j = j0; j < j1; j++) {
            dlm_sample_info info;
            dlm_estimator_draw(e, T, cs->index[c], j, mask, &info);
            rows += info.n_masked > 0;
        }
        before[c + 1] = before[c] + rows;
    }
    /* boundary r at the allowed chunk whose rows before it are nearest r/p of
     * the total (the earlier one on a tie), never before boundary r - 1 */
    int64_t total = before[n];
    for (int r = 1; r < p; r++) {
        double want = (double)total * r / p;
        int64_t best = -1;
        for (int64_t c = bounds[r - 1]; c <= n; c++) {
            if (c < n && before[c] % B) continue; /* the end of the chunks is always one */
            if (best < 0 || fabs((double)before[c] - want) < fabs((double)before[best] - want))
                best = c;
            if ((double)before[c] >= want) break;
        }
        bounds[r] = best;
    }
    free(before), free(mask);
    return DLM_OK;
}

dlm_status dlm_nelbo_enumerate(dlm_evaluator *ev, const int32_t *x, double *sums, double *S)
{
    const dlm_model_config *mc = &ev->m->cfg;
    int T = mc->seq_len, B = ev->acts->max_batch;
    DLM_CHECK(T <= 16, DLM_ERR_ARG, "enumerating all 2^T masks needs T <= 16, got %d", T);
    int64_t n_masks = INT64_C(1) << T;
    dlm_sample_result *r = calloc((size_t)n_masks, sizeof *r);
    DLM_CHECK(r != NULL, DLM_ERR_NOMEM, "enumerating %lld masks", (long long)n_masks);
    dlm_status st = DLM_OK;
    int nb = 0;
    for (int64_t M = 1; M < n_masks && st == DLM_OK; M++) {
        uint8_t *mk = ev->mask + (size_t)nb * T;
        int32_t *in = ev->inputs + (size_t)nb * T;
        for (int i = 0; i < T; i++) {
            mk[i] = (M >> i) & 1;
            in[i] = mk[i] ? mc->mask_id : x[i];
        }
        memcpy(ev->targets + (size_t)nb * T, x, (size_t)T * sizeof *x);
        ev->scale[nb] = 1.0;
        ev->slot[nb] = &r[M];
        if (++nb == B || M == n_masks - 1) {
            st = flush(ev, nb, 0);
            nb = 0;
        }
    }
    if (st == DLM_OK) {
        int64_t count[17] = {0};
        for (int k = 0; k <= T; k++) S[k] = 0.0;
        sums[0] = 0.0;
        for (int64_t M = 1; M < n_masks; M++) {
            int k = __builtin_popcountll((unsigned long long)M);
            sums[M] = r[M].ce_sum;
            S[k] += r[M].ce_sum;
            count[k]++;
        }
        for (int k = 1; k <= T; k++) S[k] /= (double)count[k];
    }
    free(r);
    DLM_CALL(st);
    return DLM_OK;
}

/* ---- statistics ---- */

void dlm_chunk_means(const dlm_sample_result *res, int64_t n, int K, size_t ld, double *out)
{
    for (int64_t c = 0; c < n; c++) {
        double s = 0.0;
        for (int j = 0; j < K; j++) s += res[(size_t)c * ld + (size_t)j].value;
        out[c] = s / K;
    }
}

double dlm_t975(int64_t nu)
{
    static const double table[31] = {NAN,    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469,
                                     2.3646, 2.3060,  2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
                                     2.1448, 2.1314,  2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
                                     2.0796, 2.0739,  2.0687, 2.0639, 2.0595, 2.0555, 2.0518,
                                     2.0484, 2.0452,  2.0423};
    if (nu < 1) return NAN;
    if (nu <= 30) return table[nu];
    /* Cornish-Fisher expansion about the normal quantile: error < 1e-5 for nu > 30 */
    double z = 1.959963984540054, z2 = z * z, v = (double)nu;
    double g1 = (z2 + 1.0) * z / 4.0;
    double g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    double g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    return z + g1 / v + g2 / (v * v) + g3 / (v * v * v);
}

/* x - y elementwise (y NULL: x itself), in the two passes below */
static inline double term(const double *x, const double *y, int64_t i)
{
    return y ? x[i] - y[i] : x[i];
}

static void estimate(const double *x, const double *y, int64_t n, dlm_estimate *out)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += term(x, y, i);
    double mean = n > 0 ? s / (double)n : NAN, ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (term(x, y, i) - mean) * (term(x, y, i) - mean);
    out->n = n;
    out->mean = mean;
    out->sd = n > 1 ? sqrt(ss / (double)(n - 1)) : NAN;
    out->se = n > 1 ? out->sd / sqrt((double)n) : NAN;
    double h = n > 1 ? dlm_t975(n - 1) * out->se : NAN;
    out->lo = mean - h;
    out->hi = mean + h;
}

void dlm_estimate_from(const double *x, int64_t n, dlm_estimate *out) { estimate(x, NULL, n, out); }

void dlm_estimate_difference(const double *a, const double *b, int64_t n, dlm_estimate *out)
{
    estimate(a, b, n, out);
}
