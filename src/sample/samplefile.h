/* samples.h5: what dlm-sample drew, one group per sampler and step count,
 * written whole to <path>.tmp and renamed into place (a reader never sees
 * a partial file; a later dlm-sample run replaces the file).
 *
 * Layout (h5py: f["ancestral_S128"]["tokens"][0]):
 *   root attributes: format "dlm-samples 1", checkpoint, step, weights, config
 *   /<sampler>_S<steps> (the AR baseline: /ar) attributes: sampler, steps,
 *       cache, temperature, top_k, top_p, length, block, seed, prompt, infill,
 *       scored_with, and the means: nfe_per_sample, tokens_per_s,
 *       gen_ppl (NaN without a scoring model), unigram_entropy, repeat_rate_4
 *     tokens (n, L) int32       the samples' token ids
 *     nfe (n) int64             network evaluations per sample
 *     steps (n) int64           sampler steps taken per sample
 *     seconds (n) float64       wall time per sample
 *     unigram_entropy (n) float64  nats
 *     repeat_rate_4 (n) float64    1 - distinct / total 4-grams
 *     nll (n) float64           nats under the scoring AR model (NaN without one)
 */
#ifndef DLM_SAMPLEFILE_H
#define DLM_SAMPLEFILE_H

#include <stdint.h>

#include "core/status.h"
#include "sample/sample.h"

typedef struct {
    dlm_sample_config cfg;
    const char *prompt, *infill, *scored_with; /* "" when absent */
    int n;                     /* samples */
    const int32_t *tokens;     /* (n, L) */
    const int64_t *nfe, *steps;
    const double *seconds, *entropy, *repeat4, *nll;
    double gen_ppl, tokens_per_s;
} dlm_sample_group;

typedef struct {
    const char *checkpoint, *weights, *config_text;
    int64_t step;
} dlm_sample_file_attrs;

dlm_status dlm_samplefile_write(const char *path, const dlm_sample_file_attrs *a,
                                const dlm_sample_group *groups, int n_groups);

#endif
