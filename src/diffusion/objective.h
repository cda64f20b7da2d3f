/* Training objectives on chunks of T tokens: they turn clean tokens x0
 * into the model's inputs, targets and per-token loss weights.
 *
 *   ar:   inputs = [BOS, x0[0..T-2]], targets = x0, weight 1, causal attention.
 *   mdlm: time t per sequence, stratified over the global batch; each token
 *         masked with probability 1 - alpha(t); targets = x0; weight w(t)
 *         at masked positions and exactly 0 elsewhere; bidirectional.
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

typedef struct {
    dlm_objective_kind kind;
    dlm_schedule schedule; /* mdlm */
    double t_fixed;        /* mdlm: > 0 puts every sequence at this t (tests, diagnostics) */
    uint64_t seed;
    int32_t bos_id, mask_id;
} dlm_objective;

/* Names in files, indexed by dlm_objective_kind, NULL-ended. */
extern const char *const dlm_objective_names[];
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

/* Prepares B sequences, global indices g0 .. g0+B-1 of a global batch of G.
 * x0, inputs, targets, weights are (B,T); t_out (B) may be NULL. */
void dlm_objective_prepare(const dlm_objective *o, const int32_t *x0, int B, int T,
                           uint32_t step, int64_t g0, int64_t G, int32_t *inputs,
                           int32_t *targets, float *weights, double *t_out);

#endif
