/* eval.h5: the results of dlm-eval, one group per evaluation, kept across
 * runs of the program (a group of the same name is replaced, the others
 * are copied over). The file is written whole to <path>.tmp and renamed
 * into place, so a reader always sees a complete file; it is never a file
 * a training run writes (run.h5, checkpoints).
 *
 * Layout (h5py: f["step-00000100_exact-k_ema"].attrs["estimate_nats_per_token"]):
 *   root attributes: format "dlm-eval 1"
 *   /<group> attributes: checkpoint, step, objective, estimator, definition,
 *       bound ("upper bound" or "exact"), weights, seed, K, strata, nodes,
 *       steps, eps, schedule, T, n_chunks, chunk_set_hash, data, config,
 *       estimate_nats_per_token, stderr_nats_per_token, sd_nats_per_token,
 *       ci95_low, ci95_high, bits_per_token, stderr_bits_per_token,
 *       bits_per_byte, stderr_bits_per_byte (NaN unless byte-level),
 *       perplexity, text_bytes, source_entropy_nats_per_token (NaN unless
 *       known), tokens_per_s, time
 *     chunk_index (n) int64       each chunk's index in its source
 *     chunk_value (n) float64     the chunk's mean over its K samples, nats/token
 *     sample_value (n, K) float64 each sample's estimate, nats/token
 *     sample_coord (n, K) float64 k (exact-k), t (mc-t, quadrature), s/S (discrete)
 *     sample_masked (n, K) int32  tokens scored
 *     sample_ce_sum (n, K) float64 CE summed over them, nats
 *     curve_coord, curve_mean_ce, curve_count: mean CE per masked token by k
 *       (exact-k: k = 1..T) or by t (20 bins of [0, 1], bin centres)
 *   /compare_<a>_vs_<b> attributes: a, b, chunk_set_hash, difference_nats_per_token,
 *       stderr_nats_per_token, ci95_low, ci95_high, n_chunks;
 *     chunk_difference (n) float64: a's chunk value minus b's
 */
#ifndef DLM_EVALFILE_H
#define DLM_EVALFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "eval/chunks.h"
#include "eval/nelbo.h"

typedef struct {
    const char *group;            /* e.g. "step-00000100_exact-k_ema" */
    const char *checkpoint;
    int64_t step;
    const char *objective;        /* "mdlm", "ar" */
    const char *weights;          /* "ema", "raw" */
    const char *config_text;
    const dlm_estimator *est;
    const dlm_chunk_set *cs;
    const dlm_sample_result *samples; /* (n, K) with row stride ld */
    int K;
    size_t ld;
    const double *chunk_values;   /* (n) */
    dlm_estimate nats;            /* nats/token over the chunks */
    double tokens_per_s;
} dlm_eval_record;

typedef struct {
    const char *group, *a, *b;
    const double *diff; /* (n) per-chunk a - b */
    dlm_estimate d;
} dlm_eval_pair;

/* bits/byte per nats/token for this chunk set: T n / (ln 2 * text bytes);
 * NAN unless byte-level. The ratio of totals, the same factor for the
 * estimate, its standard error and interval (the bytes are fixed by the chunks). */
double dlm_eval_bpb_factor(const dlm_chunk_set *cs);

/* Writes (or updates) path with n records and an optional pair (may be NULL). */
dlm_status dlm_evalfile_write(const char *path, const dlm_eval_record *recs, int n,
                              const dlm_eval_pair *pair);

#endif
