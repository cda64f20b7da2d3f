/* Likelihood of a chunk under a trained model: the exact NLL of an AR
 * model and Monte Carlo estimates of the masked-diffusion bound (NELBO),
 * with the per-chunk values that standard errors are computed from.
 *
 *   dlm_estimator e;
 *   dlm_estimator_default(&e, DLM_EST_EXACT_K);      // K = 16, seed 1
 *   DLM_CALL(dlm_estimator_check(&e, T));            // validates, fills the quadrature rule
 *   dlm_evaluator *ev;
 *   DLM_CALL(dlm_evaluator_create(model, batch, &ev));
 *   dlm_sample_result *r = ...;                      // (n_chunks, K)
 *   DLM_CALL(dlm_evaluator_run(ev, &e, &chunks, 0, chunks.n, 0, e.K, r, e.K));
 *   double *v = ...;                                 // (n_chunks)
 *   dlm_chunk_means(r, chunks.n, e.K, e.K, v);       // each chunk's mean over its samples
 *   dlm_estimate est;
 *   dlm_estimate_from(v, chunks.n, &est);            // mean, standard error, 95% interval
 *   dlm_evaluator_destroy(&ev);
 *
 * Definitions (a chunk x is T tokens; CE_i(M) = -log q(x_i | x with the
 * positions M replaced by MASK), bidirectional attention; nats/token):
 *
 *   NELBO(x) = int_0^1 (1/t) E_{M ~ Bernoulli(t)^T} [ sum_{i in M} CE_i(M) ] / T dt
 *            = (1/T) sum_{k=1..T} (1/k) S_k,   S_k = E_{|M| = k} [ sum_{i in M} CE_i(M) ]
 *   because int_0^1 (1/t) C(T,k) t^k (1-t)^(T-k) dt = 1/k. (alpha(t) = 1 - t;
 *   any schedule with alpha(0) = 1, alpha(1) = 0 gives the same integral.)
 *
 * One sample j of chunk c gives value = scale * sum_{i in M_j} CE_i(M_j):
 *   exact-k     k = 1 + floor(T v), k positions uniformly without replacement;
 *               scale = 1/k (the mean CE over the masked tokens).
 *               E[value] = NELBO exactly: no eps, finite variance.
 *   mc-t        t = eps + (1 - eps) v under the model's schedule, each token
 *               masked with probability 1 - alpha(t); scale = (1 - eps) w(t) / T.
 *               E[value] = the integral over [eps, 1] only: below the NELBO
 *               by int_0^{p(eps)} g (about eps * CE with one token masked,
 *               loglinear) and, when alpha(1) > 0, by the part above p(1).
 *   quadrature  Gauss-Legendre in p = t (loglinear) on [0, 1] with M nodes;
 *               sample j uses node j mod M; scale = M w_m / (t_m T).
 *               E[value] = sum_m w_m g(t_m), = NELBO exactly when M >= T/2
 *               (g is a polynomial of degree T - 1).
 *   discrete    the S-step bound (MDLM's discrete time, alpha = 1 - t):
 *               s = 1 + floor(S v), p = s/S, Bernoulli(p) masks;
 *               scale = 1/(p T). E[value] = (1/S) sum_s g(s/S) >= NELBO.
 *   ar          the exact NLL: inputs BOS, x_0 .. x_{T-2}, causal; all T
 *               tokens scored, scale = 1/T; one sample (no randomness).
 * where g(p) = (1/p) E_{M ~ Bernoulli(p)^T} [ sum_{i in M} CE_i ] / T and
 * v in [0, 1) is stratified: v = (j mod strata + u_j) / strata, u_j uniform.
 * Any block of `strata` consecutive samples covers (0, 1) once, so a chunk's
 * mean over K samples (K a multiple of strata) is unbiased and K can grow
 * by whole blocks.
 *
 * Randomness is keyed by (seed, the chunk's index in its source, j): the
 * same chunk gets the same masks whatever else is evaluated, and two
 * models evaluated with one seed see identical masks (paired comparison).
 */
#ifndef DLM_NELBO_H
#define DLM_NELBO_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "diffusion/schedule.h"
#include "eval/chunks.h"
#include "model/model.h"

typedef enum {
    DLM_EST_EXACT_K = 0,
    DLM_EST_MC_T,
    DLM_EST_QUADRATURE,
    DLM_EST_DISCRETE,
    DLM_EST_AR
} dlm_estimator_kind;

#define DLM_QUAD_MAX_NODES 512

typedef struct {
    dlm_estimator_kind kind;
    int K;                 /* samples per chunk (ar: 1) */
    int strata;            /* v is stratified within blocks of this many samples; divides K */
    uint64_t seed;
    dlm_schedule schedule; /* mc-t: the schedule and its eps */
    int nodes;             /* quadrature: M; divides K */
    int steps;             /* discrete: S */
    /* filled by dlm_estimator_check (quadrature) */
    double quad_t[DLM_QUAD_MAX_NODES], quad_w[DLM_QUAD_MAX_NODES];
} dlm_estimator;

/* Names on the command line and in files: exact-k, mc-t, quadrature, discrete, ar. */
const char *dlm_estimator_name(dlm_estimator_kind kind);
dlm_status dlm_estimator_parse(const char *name, dlm_estimator_kind *kind);

/* K = strata = 16 (ar: 1), seed 1, loglinear schedule with eps 1e-3,
 * 16 quadrature nodes (K = 16), S = 1000 steps. */
void dlm_estimator_default(dlm_estimator *e, dlm_estimator_kind kind);

/* Validates e for chunks of T tokens (K >= 1, strata and nodes divide K,
 * ranges) and fills the quadrature rule. Errors name the setting. */
dlm_status dlm_estimator_check(dlm_estimator *e, int T);

/* One line saying what the estimator is and whether it is biased. */
void dlm_estimator_describe(const dlm_estimator *e, int T, char *buf, size_t len);

/* Gauss-Legendre rule on [a, b]: n nodes (ascending) and weights; exact for
 * polynomials of degree <= 2n - 1. n <= DLM_QUAD_MAX_NODES. */
void dlm_gauss_legendre(int n, double a, double b, double *t, double *w);

typedef struct {
    int32_t n_masked; /* tokens scored */
    double coord;     /* exact-k: k; mc-t: t; quadrature: its node t; discrete: s/S; ar: 0 */
    double scale;     /* value = scale * sum of CE over the scored tokens */
} dlm_sample_info;

/* Sample j of the chunk with source index `chunk`: mask (T) gets 1 at the
 * scored positions (the MASK inputs, except for ar, where every position is
 * scored and nothing is masked). */
void dlm_estimator_draw(const dlm_estimator *e, int T, int64_t chunk, int j, uint8_t *mask,
                        dlm_sample_info *info);

/* What the estimator converges to on one chunk, from S (T + 1 entries):
 * S[k] = mean over the k-subsets M of sum_{i in M} CE_i(M), S[0] unused.
 * exact-k gives the NELBO itself; the others their biased versions (see
 * above). NAN for ar. */
double dlm_estimator_expectation(const dlm_estimator *e, int T, const double *S);

/* ---- scoring chunks ---- */

typedef struct {
    double value;   /* this sample's estimate of the chunk's value, nats/token */
    double coord;   /* as in dlm_sample_info */
    double ce_sum;  /* sum of CE over the scored tokens, nats */
    int32_t n_masked;
} dlm_sample_result;

typedef struct dlm_evaluator dlm_evaluator;

/* Activations and input buffers for batches of max_batch sequences of m->cfg.seq_len. */
dlm_status dlm_evaluator_create(dlm_model *m, int max_batch, dlm_evaluator **out);
/* m is a pipeline stage (dlm_model_create_stage): every forward goes
 * through the stages over pp_comm, and every stage gets the scores. Each
 * stage's evaluator must then run the same calls (collective over
 * pp_comm). */
void dlm_evaluator_set_pipeline(dlm_evaluator *ev, MPI_Comm pp_comm);
void dlm_evaluator_destroy(dlm_evaluator **ev);

/* Scores samples [j0, j1) of chunks [c0, c1) of cs; the result for (c, j)
 * goes to res[(c - c0) * ld + (j - j0)]. Samples with nothing masked are
 * 0 without a forward pass. Each chunk's numbers depend only on the model,
 * the chunk and the estimator, so data-parallel ranks can take disjoint
 * chunk ranges and gather the per-chunk means. No gradients. */
dlm_status dlm_evaluator_run(dlm_evaluator *ev, const dlm_estimator *e, const dlm_chunk_set *cs,
                             int64_t c0, int64_t c1, int j0, int j1, dlm_sample_result *res,
                             size_t ld);

/* Chunk boundaries for p ranks that score samples [j0, j1) of every chunk
 * of cs between them: rank r takes chunks [bounds[r], bounds[r + 1]),
 * bounds (p + 1) running from 0 to cs->n. A boundary is only placed where
 * one rank's dlm_evaluator_run over all the chunks would end a forward pass
 * (the rows staged so far fill whole batches), so every rank's forward
 * passes hold exactly the rows, in the same order, of the one-rank run's:
 * the numbers are bit-identical (a GEMM's rounding may depend on how many
 * rows it has). Among those places the rows are shared as evenly as they
 * allow; a rank may get none. Draws the masks (no forward pass); p = 1
 * draws nothing. The same inputs give the same bounds on every rank. */
dlm_status dlm_evaluator_split(const dlm_evaluator *ev, const dlm_estimator *e,
                               const dlm_chunk_set *cs, int j0, int j1, int p, int64_t *bounds);

/* Tokens through the model and seconds spent since creation. */
void dlm_evaluator_counters(const dlm_evaluator *ev, int64_t *tokens, double *seconds);

/* All 2^T masks of one chunk (T <= 16): sums[M] = sum_{i in M} CE_i(M) for
 * each bitset M (sums[0] = 0), and S (T + 1) as in
 * dlm_estimator_expectation. For tests and small-T diagnostics. */
dlm_status dlm_nelbo_enumerate(dlm_evaluator *ev, const int32_t *x, double *sums, double *S);

/* ---- statistics ---- */

/* Each chunk's mean over samples [0, K): out[c] = mean_j res[c * ld + j].value. */
void dlm_chunk_means(const dlm_sample_result *res, int64_t n, int K, size_t ld, double *out);

typedef struct {
    double mean;      /* mean over chunks */
    double sd;        /* sample standard deviation over chunks */
    double se;        /* sd / sqrt(n) */
    double lo, hi;    /* 95% interval: mean -+ t_{0.975, n-1} se */
    int64_t n;
} dlm_estimate;

/* From per-chunk values x (n >= 1; se and the interval are NAN when n < 2). */
void dlm_estimate_from(const double *x, int64_t n, dlm_estimate *out);
/* The same for the paired differences a[c] - b[c]. */
void dlm_estimate_difference(const double *a, const double *b, int64_t n, dlm_estimate *out);

/* The 0.975 quantile of Student's t with nu degrees of freedom. */
double dlm_t975(int64_t nu);

#endif
