/* Training objectives on chunks of T tokens: they turn clean tokens x0
 * into the model's inputs, targets and per-token loss weights.
 *
 *   ar:   inputs = [BOS, x0[0..T-2]], targets = x0, weight 1, causal attention.
 *   mdlm: bidirectional, targets = x0, weight 0 at unmasked positions, and
 *         one of two training estimators of the NELBO:
 *         mc-t:    time t per sequence, stratified over the global batch;
 *                  each token masked with probability 1 - alpha(t); weight
 *                  w(t) at masked positions;
 *         exact-k: k masked positions per sequence, k drawn from a proposal
 *                  P(k) proportional to k^-a over 1..T (stratified over the
 *                  global batch like t), the k positions uniform; weight
 *                  1 / (P(k) k) at each, so that the expected batch loss is
 *                  the NELBO per token, (1/T) sum_k (1/k) E_k[sum CE],
 *                  exactly, for every proposal.
 *
 * The batch loss is sum_i weight_i * CE_i / (G * T) in nats/token, G the
 * global batch. Every random choice is keyed by (seed, step, global sample
 * index, position), so micro-batching and the parallel layout cannot
 * change it.
 */
#ifndef DLM_OBJECTIVE_H
#define DLM_OBJECTIVE_H

#include <stdint.h>

#include "core/status.h"
#include "diffusion/schedule.h"

typedef enum { DLM_OBJECTIVE_AR = 0, DLM_OBJECTIVE_MDLM } dlm_objective_kind;
/* mdlm's training estimator, and exact-k's proposal over k. */
typedef enum { DLM_TRAIN_MC_T = 0, DLM_TRAIN_EXACT_K } dlm_train_estimator;
typedef enum { DLM_K_UNIFORM = 0, DLM_K_INVERSE, DLM_K_POWER } dlm_k_proposal;

typedef struct {
    dlm_objective_kind kind;
    dlm_schedule schedule; /* mdlm */
    double t_fixed;        /* mdlm: > 0 puts every sequence at this t (tests, diagnostics) */
    dlm_train_estimator estimator; /* mdlm; mc-t by default (zeroed) */
    dlm_k_proposal k_proposal;     /* exact-k */
    double k_power;                /* exact-k with DLM_K_POWER: P(k) proportional to k^-k_power */
    uint64_t seed;
    int32_t bos_id, mask_id;
} dlm_objective;

/* Names in files, indexed by their enums, NULL-ended. */
extern const char *const dlm_objective_names[];
extern const char *const dlm_train_estimator_names[]; /* "mc-t", "exact-k" */
extern const char *const dlm_k_proposal_names[];      /* "uniform", "inverse", "power" */
dlm_status dlm_objective_parse(const char *name, dlm_objective_kind *kind);
const char *dlm_objective_name(dlm_objective_kind kind);
static inline int dlm_objective_causal(const dlm_objective *o) { return o->kind == DLM_OBJECTIVE_AR; }

/* Rank of sample g in bit-reversed (van der Corput) order among 0..G-1: a
 * permutation of 0..G-1 under which any contiguous run of samples spreads
 * over the whole of (0, 1). */
int64_t dlm_stratum_of(int64_t g, int64_t G);

/* Time of global sample g of G at this step:
 * eps + (1 - eps) * frac(u_step + stratum(g) / G), u_step one draw per step. */
double dlm_diffusion_time(const dlm_objective *o, uint32_t step, int64_t g, int64_t G);

/* exact-k's proposal: the exponent a of P(k) proportional to k^-a. */
double dlm_k_proposal_exponent(const dlm_objective *o);
/* P(k) for k = 1..T into p[0..T-1]. */
void dlm_k_proposal_probs(const dlm_objective *o, int T, double *p);
/* The number of masked positions of global sample g of G at this step,
 * in 1..T: the proposal's inverse CDF at frac(u_step + stratum(g) / G). */
int dlm_exact_k_draw(const dlm_objective *o, uint32_t step, int64_t g, int64_t G, int T);

/* A uniform k-subset of 0..T-1 into mask (T bytes, 1 = chosen), by Floyd's
 * algorithm with one draw dlm_rng_uniform(key, a, b, i, DLM_RNG_MASK) per
 * element i >= T - k. */
void dlm_mask_k_positions(uint64_t key, uint32_t a, uint32_t b, int k, int T, uint8_t *mask);

/* Prepares B sequences, global indices g0 .. g0+B-1 of a global batch of G.
 * x0, inputs, targets, weights are (B,T); t_out (B) may be NULL (mc-t: t;
 * exact-k: k / T). T is at most DLM_OBJECTIVE_MAX_T. */
#define DLM_OBJECTIVE_MAX_T 65536
void dlm_objective_prepare(const dlm_objective *o, const int32_t *x0, int B, int T,
                           uint32_t step, int64_t g0, int64_t G, int32_t *inputs,
                           int32_t *targets, float *weights, double *t_out);

#endif
