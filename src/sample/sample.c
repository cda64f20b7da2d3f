/* Samplers and sample measures: see sample.h. */
#define _GNU_SOURCE
#include "sample/sample.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/timer.h"
#include "core/mpicall.h"
#include "model/kvcache.h"
#include "parallel/pipeline.h"

struct dlm_sampler {
    dlm_model *m;
    dlm_acts *acts;        /* one window's activations, forward only */
    dlm_sample_config c;
    int T, V, Vp;          /* sequence length, data ids, logits row stride */
    int32_t *x;            /* (L) the sample being built; MASK where not yet generated */
    int32_t *inputs;       /* (T) the window the network sees */
    double *work;          /* (V) probabilities */
    int *idx;              /* (V) sort order */
    struct cand {
        double key;        /* confidence or random priority; larger goes first */
        int pos;
        int32_t tok;
    } *cand;               /* (T) positions that may unmask this step */
    dlm_kv_cache *kv;      /* AR only: incremental causal inference */
    float *step_logits;    /* AR only: (Vp) the cached step's logits */
    float *logits;         /* (T, Vp) whole rows of the last forward: acts->logits, or under
                              tp gathered from the vocabulary shards into whole */
    float *whole, *gather; /* gather: the all-gather's scratch */
    MPI_Comm pp_comm;      /* the model's pipeline stages (a staged model) */
};

void dlm_sampler_set_pipeline(dlm_sampler *s, MPI_Comm pp_comm) { s->pp_comm = pp_comm; }

void dlm_sample_config_default(dlm_sample_config *c, int T)
{
    memset(c, 0, sizeof *c);
    c->kind = DLM_SAMPLER_ANCESTRAL;
    c->steps = T;
    c->cache = 1;
    c->temperature = 1.0;
    c->top_k = 0;
    c->top_p = 1.0;
    c->length = T;
    c->block = T;
    c->seed = 1;
}

dlm_status dlm_sample_config_check(const dlm_sample_config *c, int T)
{
    DLM_CHECK(c->steps >= 1, DLM_ERR_ARG, "steps must be >= 1, got %d", c->steps);
    DLM_CHECK(c->temperature >= 0.0 && isfinite(c->temperature), DLM_ERR_ARG,
              "temperature must be >= 0 (0 = most probable token), got %g", c->temperature);
    DLM_CHECK(c->top_k >= 0, DLM_ERR_ARG, "top-k must be >= 0 (0 = off), got %d", c->top_k);
    DLM_CHECK(c->top_p > 0.0 && c->top_p <= 1.0, DLM_ERR_ARG,
              "top-p must be in (0, 1] (1 = off), got %g", c->top_p);
    DLM_CHECK(c->length >= 1, DLM_ERR_ARG, "length must be >= 1, got %d", c->length);
    int bmax = c->length < T ? c->length : T;
    DLM_CHECK(c->kind == DLM_SAMPLER_AR || (c->block >= 1 && c->block <= bmax), DLM_ERR_ARG,
              "block must be in 1..min(length %d, T %d) = %d, got %d", c->length, T, bmax,
              c->block);
    return DLM_OK;
}

static const char *const sampler_names[] = {"ancestral", "confidence", "random", "ar"};

dlm_status dlm_sampler_parse(const char *name, dlm_sampler_kind *kind)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, sampler_names[i])) {
            *kind = (dlm_sampler_kind)i;
            return DLM_OK;
        }
    DLM_CHECK(0, DLM_ERR_ARG, "unknown sampler '%s' (expected ancestral, confidence, random or ar)",
              name);
    return DLM_ERR_ARG;
}

const char *dlm_sampler_name(dlm_sampler_kind kind)
{
    return (unsigned)kind < 4 ? sampler_names[kind] : "?";
}

/* ---- one window through the network, whole logits on every rank ---- */

typedef struct {
    const dlm_model *m;
    dlm_acts *a;
    const int32_t *in;
    int causal;
    float *whole, *gather;
} window_pass;

/* A pipeline stage's forward of the window (the runner's, one micro-batch);
 * the last stage gathers its tp shards into whole rows. */
static dlm_status window_stage(void *ctx, int k, const float *in, float *out)
{
    (void)k;
    window_pass *w = ctx;
    const dlm_model_config *c = &w->m->cfg;
    DLM_CALL(dlm_model_stage_forward(w->m, w->a, w->in, in, 1, w->causal, NULL, 0));
    if (out) {
        memcpy(out, dlm_stage_output(w->m, w->a), (size_t)c->seq_len * c->d_model * sizeof *out);
        return DLM_OK;
    }
    return dlm_model_whole_logits(w->m, w->a->logits, c->seq_len, w->whole, w->gather);
}

/* The window in through the model; whole (T, Vp) gets its logits on every
 * rank: gathered over tp (gather: scratch, or NULL), and under pipeline
 * stages (pp_comm) through them and sent from the last to all. Without
 * either, whole is not written: the logits are a->logits. */
static dlm_status window_logits(const dlm_model *m, dlm_acts *a, MPI_Comm pp_comm,
                                const int32_t *in, int causal, float *whole, float *gather)
{
    const dlm_model_config *c = &m->cfg;
    if (!m->layout.staged) {
        DLM_CALL(dlm_model_forward(m, a, in, 1, causal));
        if (m->layout.tp_size > 1)
            DLM_CALL(dlm_model_whole_logits(m, a->logits, c->seq_len, whole, gather));
        return DLM_OK;
    }
    int pp;
    DLM_MPI(MPI_Comm_size(pp_comm, &pp));
    window_pass w = {m, a, in, causal, whole, gather};
    dlm_pipe_stage st = {.ctx = &w, .forward = window_stage, .backward = NULL};
    DLM_CALL(dlm_pipe_run(pp_comm, &st, DLM_PIPE_FORWARD_ONLY, 1,
                          (size_t)c->seq_len * c->d_model, NULL));
    int64_t n = (int64_t)c->seq_len * c->vocab_padded;
    DLM_CHECK(n <= INT_MAX, DLM_ERR_ARG, "%lld logits per window: more than one message", (long long)n);
    DLM_MPI(MPI_Bcast(whole, (int)n, MPI_FLOAT, pp - 1, pp_comm));
    return DLM_OK;
}

dlm_status dlm_sampler_create(dlm_model *m, const dlm_sample_config *c, dlm_sampler **out)
{
    *out = NULL;
    int T = m->cfg.seq_len;
    DLM_CALL(dlm_sample_config_check(c, T));
    dlm_sampler *s = calloc(1, sizeof *s);
    DLM_CHECK(s != NULL, DLM_ERR_NOMEM, "allocating the sampler");
    s->m = m;
    s->c = *c;
    s->T = T;
    s->V = m->cfg.vocab_size;
    s->Vp = m->cfg.vocab_padded;
    s->x = malloc((size_t)c->length * sizeof *s->x);
    s->inputs = malloc((size_t)T * sizeof *s->inputs);
    s->work = malloc((size_t)s->V * sizeof *s->work);
    s->idx = malloc((size_t)s->V * sizeof *s->idx);
    s->cand = malloc((size_t)T * sizeof *s->cand);
    if (!s->x || !s->inputs || !s->work || !s->idx || !s->cand ||
        dlm_acts_create(m, 1, 0, &s->acts) != DLM_OK) {
        dlm_sampler_destroy(&s);
        DLM_CHECK(0, DLM_ERR_NOMEM, "sampler buffers for L = %d, T = %d", c->length, T);
    }
    s->logits = s->acts->logits;
    s->pp_comm = MPI_COMM_NULL;
    if (m->layout.tp_size > 1 || m->layout.staged) {
        s->logits = s->whole = malloc((size_t)T * s->Vp * sizeof *s->whole);
        s->gather = malloc((size_t)T * s->Vp * sizeof *s->gather);
        if (!s->whole || !s->gather) {
            dlm_sampler_destroy(&s);
            DLM_CHECK(0, DLM_ERR_NOMEM, "whole logits for T = %d", T);
        }
    }
    if (c->kind == DLM_SAMPLER_AR && c->cache && !m->layout.staged) { /* a stage: uncached */
        dlm_status st = dlm_kv_cache_create(m, &s->kv);
        s->step_logits = st == DLM_OK ? malloc((size_t)s->Vp * sizeof *s->step_logits) : NULL;
        if (!s->step_logits) {
            dlm_sampler_destroy(&s);
            DLM_CHECK(0, DLM_ERR_NOMEM, "the AR sampler's key/value cache");
        }
    }
    *out = s;
    return DLM_OK;
}

void dlm_sampler_destroy(dlm_sampler **ps)
{
    dlm_sampler *s = *ps;
    if (!s) return;
    free(s->x);
    free(s->inputs);
    free(s->work);
    free(s->idx);
    free(s->cand);
    dlm_acts_destroy(&s->acts);
    dlm_kv_cache_destroy(&s->kv);
    free(s->step_logits);
    free(s->whole), free(s->gather);
    free(s);
    *ps = NULL;
}

/* ---- the categorical draw ---- */

static int by_prob_desc(const void *a, const void *b, void *ctx)
{
    const double *p = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (p[i] != p[j]) return p[i] > p[j] ? -1 : 1;
    return (i > j) - (i < j); /* ties: lower id first, so the order is total */
}

int32_t dlm_sample_categorical(const float *logits, int V, double temperature, int top_k,
                               double top_p, double u, double *prob, double *work, int *idx)
{
    if (temperature <= 0.0) {
        int best = 0;
        for (int j = 1; j < V; j++)
            if (logits[j] > logits[best]) best = j;
        if (prob) *prob = 1.0;
        return best;
    }
    /* double throughout: fp32 (Gumbel) sampling lowers the effective temperature */
    double mx = -INFINITY;
    for (int j = 0; j < V; j++) {
        work[j] = (double)logits[j] / temperature;
        if (work[j] > mx) mx = work[j];
    }
    double sum = 0.0;
    for (int j = 0; j < V; j++) sum += (work[j] = exp(work[j] - mx));
    int kept = V;
    int filter = (top_k > 0 && top_k < V) || top_p < 1.0;
    for (int j = 0; j < V; j++) idx[j] = j;
    if (filter) {
        qsort_r(idx, (size_t)V, sizeof *idx, by_prob_desc, work);
        if (top_k > 0 && top_k < kept) kept = top_k;
        double ksum = 0.0;
        for (int r = 0; r < kept; r++) ksum += work[idx[r]];
        if (top_p < 1.0) { /* nucleus of the top-k distribution */
            double acc = 0.0;
            for (int r = 0; r < kept; r++) {
                acc += work[idx[r]];
                if (acc >= top_p * ksum) {
                    kept = r + 1;
                    break;
                }
            }
        }
        sum = 0.0;
        for (int r = 0; r < kept; r++) sum += work[idx[r]];
    }
    double target = u * sum, acc = 0.0;
    int pick = -1;
    for (int r = 0; r < kept; r++) {
        double w = work[idx[r]];
        if (w <= 0.0) continue;
        pick = idx[r]; /* rounding can leave target >= the final sum: keep the last positive */
        acc += w;
        if (target < acc) break;
    }
    if (prob) *prob = work[pick] / sum;
    return pick;
}

/* ---- the samplers ---- */

/* The noise schedule the models are trained with: loglinear, alpha(t) = 1 - t. */
static double alpha_of(double t) { return 1.0 - t; }

/* One window through the network; s->logits gets its whole rows. */
static dlm_status forward(dlm_sampler *s, int causal)
{
    return window_logits(s->m, s->acts, s->pp_comm, s->inputs, causal, s->whole, s->gather);
}

static dlm_status network(dlm_sampler *s, int w0, dlm_sample_stats *st)
{
    int L = s->c.length;
    for (int q = 0; q < s->T; q++) {
        int p = w0 + q;
        s->inputs[q] = p < L ? s->x[p] : s->m->cfg.mask_id; /* beyond the output: unknown */
    }
    DLM_CALL(forward(s, 0));
    st->nfe++;
    return DLM_OK;
}

static int32_t draw(dlm_sampler *s, int row, uint32_t step, uint64_t sample, int pos, double *prob)
{
    double u = dlm_rng_uniform(s->c.seed, step, (uint32_t)sample, (uint32_t)pos,
                               DLM_RNG_SAMPLE_TOKEN);
    const float *logits = s->logits + (size_t)row * s->Vp;
    return dlm_sample_categorical(logits, s->V, s->c.temperature, s->c.top_k, s->c.top_p, u, prob,
                                  s->work, s->idx);
}

static int by_key_desc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Positions p0..p1-1 by diffusion in S steps, seeing the window of T
 * tokens that ends at p1 (or starts at 0): up to T - (p1 - p0) tokens
 * before the block, and given or still-masked tokens after it. */
static dlm_status diffuse_block(dlm_sampler *s, uint64_t sample, int p0, int p1, int64_t *gstep,
                                dlm_sample_stats *st)
{
    const dlm_sample_config *c = &s->c;
    const int32_t MASK = s->m->cfg.mask_id;
    int w0 = p1 - s->T > 0 ? p1 - s->T : 0;
    int fresh = 0; /* the last network output is for the current window and tokens */
    for (int i = c->steps; i >= 1; i--, (*gstep)++) {
        uint32_t step = (uint32_t)*gstep;
        int n_masked = 0;
        for (int p = p0; p < p1; p++) n_masked += s->x[p] == MASK;
        if (n_masked == 0) break;
        st->steps++;
        int n = 0; /* candidates in s->cand */
        if (c->kind == DLM_SAMPLER_ANCESTRAL) {
            /* from t = i/S to s = (i-1)/S: unmask with prob (alpha_s - alpha_t) / (1 - alpha_t);
             * at i = 1 that is 1: the final step leaves no MASK */
            double t = (double)i / c->steps, sv = (double)(i - 1) / c->steps;
            double pu = i == 1 ? 1.0 : (alpha_of(sv) - alpha_of(t)) / (1.0 - alpha_of(t));
            for (int p = p0; p < p1; p++)
                if (s->x[p] == MASK &&
                    dlm_rng_uniform(c->seed, step, (uint32_t)sample, (uint32_t)p,
                                    DLM_RNG_SAMPLE_UNMASK) < pu)
                    s->cand[n++] = (struct cand){0.0, p, 0};
        } else {
            for (int p = p0; p < p1; p++)
                if (s->x[p] == MASK) s->cand[n++] = (struct cand){0.0, p, 0};
        }
        /* the uncached sampler calls the network at every step, as MDLM's ddpm does */
        if (!c->cache || (n > 0 && !fresh)) {
            DLM_CALL(network(s, w0, st));
            fresh = 1;
        }
        if (n == 0) continue;
        if (c->kind != DLM_SAMPLER_ANCESTRAL) {
            int k = (n_masked + i - 1) / i; /* ceil(masked left / steps left) */
            for (int r = 0; r < n; r++) {
                struct cand *cd = &s->cand[r];
                if (c->kind == DLM_SAMPLER_CONFIDENCE) {
                    cd->tok = draw(s, cd->pos - w0, step, sample, cd->pos, &cd->key);
                } else {
                    cd->key = dlm_rng_uniform(c->seed, step, (uint32_t)sample, (uint32_t)cd->pos,
                                              DLM_RNG_SAMPLE_ORDER);
                    cd->tok = -1;
                }
            }
            qsort(s->cand, (size_t)n, sizeof *s->cand, by_key_desc);
            n = k;
        }
        for (int r = 0; r < n; r++) {
            struct cand *cd = &s->cand[r];
            s->x[cd->pos] = c->kind == DLM_SAMPLER_CONFIDENCE
                                ? cd->tok
                                : draw(s, cd->pos - w0, step, sample, cd->pos, NULL);
        }
        fresh = 0; /* tokens changed: the next step that unmasks needs the network */
    }
    return DLM_OK;
}

/* Left to right: token p from the causal model's row for it, inputs
 * [BOS, x[w..p-1]] with the window of up to T - 1 tokens before p, as the
 * AR objective trains ([BOS, x0..x_{T-2}] predicts x0..x_{T-1}). A full
 * forward per token (--no-cache; the reference the cached sampler is
 * tested against): a token costs O(T^2) attention, not O(T). */
static dlm_status ar_sample_full(dlm_sampler *s, uint64_t sample, const uint8_t *fixed,
                                 dlm_sample_stats *st)
{
    int L = s->c.length, T = s->T;
    int32_t bos = s->m->cfg.bos_id;
    for (int p = 0; p < L; p++) {
        if (fixed && fixed[p]) continue;
        int w = p < T ? 0 : p - T + 1;
        s->inputs[0] = bos;
        for (int q = 1; q < T; q++) {
            int src = w + q - 1;
            s->inputs[q] = src < p ? s->x[src] : bos; /* after p: unseen under causal attention */
        }
        DLM_CALL(forward(s, 1));
        st->nfe++;
        st->steps++;
        s->x[p] = draw(s, p - w, (uint32_t)p, sample, p, NULL);
    }
    return DLM_OK;
}

/* Left to right with the key/value cache: each token is one cached step
 * through the causal model. The cache holds BOS and the tokens from the
 * window start w; when it is full the window restarts T/2 tokens back (and
 * is prefilled by cached steps), so a token sees between T/2 and T - 1
 * tokens of context, against T - 1 for the uncached sampler. Draws use the
 * same counters as the uncached sampler, so the two agree token for token
 * while the window is the same (the first T tokens). */
static dlm_status ar_sample_cached(dlm_sampler *s, uint64_t sample, const uint8_t *fixed,
                                   dlm_sample_stats *st)
{
    int L = s->c.length, T = s->T, w = -1, next = 0;
    for (int p = 0; p < L; p++) {
        if (w < 0 || p - w > T - 1) { /* empty or full: (re)start the window */
            w = p < T ? 0 : p - T / 2;
            dlm_kv_cache_reset(s->kv);
            DLM_CALL(dlm_model_forward_step(s->m, s->kv, s->m->cfg.bos_id, s->step_logits));
            next = w;
        }
        while (next < p) DLM_CALL(dlm_model_forward_step(s->m, s->kv, s->x[next++], s->step_logits));
        st->nfe++;
        st->steps++;
        if (fixed && fixed[p]) continue;
        double u = dlm_rng_uniform(s->c.seed, (uint32_t)p, (uint32_t)sample, (uint32_t)p,
                                   DLM_RNG_SAMPLE_TOKEN);
        s->x[p] = dlm_sample_categorical(s->step_logits, s->V, s->c.temperature, s->c.top_k,
                                         s->c.top_p, u, NULL, s->work, s->idx);
    }
    return DLM_OK;
}

dlm_status dlm_sampler_run(dlm_sampler *s, uint64_t sample, const int32_t *given,
                           const uint8_t *fixed, int32_t *out, dlm_sample_stats *st)
{
    const dlm_sample_config *c = &s->c;
    int L = c->length;
    DLM_CHECK(sample < (UINT64_C(1) << 32), DLM_ERR_ARG,
              "sample index %llu does not fit the 32-bit counter field",
              (unsigned long long)sample);
    DLM_CHECK(!fixed || given, DLM_ERR_ARG, "fixed positions need their given tokens");
    memset(st, 0, sizeof *st);
    double t0 = dlm_now();
    for (int p = 0; p < L; p++) {
        if (fixed && fixed[p]) {
            DLM_CHECK(given[p] >= 0 && given[p] < s->V, DLM_ERR_ARG,
                      "given token at position %d is %d, outside the data ids 0..%d", p,
                      (int)given[p], s->V - 1);
            s->x[p] = given[p];
        } else {
            s->x[p] = s->m->cfg.mask_id;
        }
    }
    if (c->kind == DLM_SAMPLER_AR) {
        DLM_CALL(s->kv ? ar_sample_cached(s, sample, fixed, st) : ar_sample_full(s, sample, fixed, st));
    } else {
        int64_t gstep = 0;
        for (int p0 = 0; p0 < L; p0 += c->block) {
            int p1 = p0 + c->block < L ? p0 + c->block : L;
            int64_t first = gstep;
            DLM_CALL(diffuse_block(s, sample, p0, p1, &gstep, st));
            gstep = first + c->steps; /* keyed by block and step, however early a block ends */
        }
    }
    memcpy(out, s->x, (size_t)L * sizeof *out);
    st->seconds = dlm_now() - t0;
    return DLM_OK;
}

/* ---- measures ---- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

double dlm_sample_unigram_entropy(const int32_t *x, int n)
{
    if (n <= 0) return 0.0;
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (!y) return NAN;
    memcpy(y, x, (size_t)n * sizeof *y);
    qsort(y, (size_t)n, sizeof *y, cmp_i32);
    double h = 0.0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && y[j] == y[i]) j++;
        double p = (double)(j - i) / n;
        h -= p * log(p);
        i = j;
    }
    free(y);
    return h;
}

double dlm_sample_repeat_rate(const int32_t *x, int len, int n)
{
    int m = len - n + 1;
    if (n < 1 || m < 1) return 0.0;
    uint64_t *h = malloc((size_t)m * sizeof *h);
    if (!h) return NAN;
    for (int i = 0; i < m; i++) {
        /* FNV-1a over the n ids, each little-endian. The start value is DLM_FNV_OFFSET
         * (14695981039346656037) short of its last digit; kept so the hashes stay as they
         * were (only their equality is used). */
        uint64_t v = UINT64_C(1469598103934665603);
        for (int k = 0; k < n; k++) {
            uint32_t t = (uint32_t)x[i + k];
            uint8_t le[4] = {(uint8_t)t, (uint8_t)(t >> 8), (uint8_t)(t >> 16), (uint8_t)(t >> 24)};
            v = dlm_fnv1a(v, le, sizeof le);
        }
        h[i] = v;
    }
    qsort(h, (size_t)m, sizeof *h, cmp_u64);
    int distinct = 0;
    for (int i = 0; i < m; i++) distinct += i == 0 || h[i] != h[i - 1];
    free(h);
    return 1.0 - (double)distinct / m;
}

dlm_status dlm_sample_ar_nll(const dlm_model *ar, dlm_acts *acts, const int32_t *x, int len,
                             double *nll)
{
    return dlm_sample_ar_nll_pp(ar, acts, MPI_COMM_NULL, x, len, nll);
}

dlm_status dlm_sample_ar_nll_pp(const dlm_model *ar, dlm_acts *acts, MPI_Comm pp_comm,
                                const int32_t *x, int len, double *nll)
{
    int T = ar->cfg.seq_len, V = ar->cfg.vocab_size, Vp = ar->cfg.vocab_padded;
    int32_t *in = malloc((size_t)T * sizeof *in);
    /* under tp the head's vocabulary shards gathered into whole rows */
    int apart = ar->layout.tp_size > 1 || ar->layout.staged;
    float *whole = apart ? malloc((size_t)T * Vp * sizeof *whole) : NULL;
    if (!in || (apart && !whole)) {
        free(in), free(whole);
        DLM_CHECK(0, DLM_ERR_NOMEM, "scoring buffer");
    }
    double total = 0.0;
    dlm_status st = DLM_OK;
    for (int start = 0; start < len && st == DLM_OK; start += T) {
        int n = len - start < T ? len - start : T;
        in[0] = ar->cfg.bos_id;
        for (int q = 1; q < T; q++) in[q] = q < n ? x[start + q - 1] : ar->cfg.bos_id;
        st = window_logits(ar, acts, pp_comm, in, 1, whole, NULL);
        for (int q = 0; q < n && st == DLM_OK; q++) {
            const float *lg = (whole ? whole : acts->logits) + (size_t)q * Vp;
            int32_t y = x[start + q];
            if (y < 0 || y >= V) {
                st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                    "token %d at position %d is outside the scoring model's "
                                    "vocabulary of %d ids", (int)y, start + q, V);
                break;
            }
            double mx = -INFINITY, sum = 0.0;
            for (int j = 0; j < V; j++) mx = lg[j] > mx ? lg[j] : mx;
            for (int j = 0; j < V; j++) sum += exp((double)lg[j] - mx);
            total += mx + log(sum) - (double)lg[y];
        }
    }
    free(in), free(whole);
    DLM_CALL(st);
    *nll = total;
    return DLM_OK;
}
