/* Built-in synthetic token sources whose entropy is known exactly, so a
 * trained model's loss can be checked against the truth. */
#ifndef DLM_SYNTHETIC_H
#define DLM_SYNTHETIC_H

#include <stdint.h>

#include "core/status.h"

#define DLM_IID_MAX_SYMBOLS 256

/* Tokens i.i.d. from a fixed distribution over ids first_id .. first_id+n-1. */
typedef struct {
    int n_symbols;
    int32_t first_id;
    double prob[DLM_IID_MAX_SYMBOLS];
    double cdf[DLM_IID_MAX_SYMBOLS];
    uint64_t seed;
} dlm_iid_source;

dlm_status dlm_iid_source_init(dlm_iid_source *s, const double *prob, int n, int32_t first_id,
                               uint64_t seed);
/* The default demo source: 16 letters 'a'..'p' with p_i proportional to 0.75^i. */
void dlm_iid_source_default(dlm_iid_source *s, uint64_t seed);
/* Entropy in nats per token: what a perfect model scores. */
double dlm_iid_entropy(const dlm_iid_source *s);
/* The T tokens of sequence `sample` (a pure function of seed and sample). */
void dlm_iid_fill(const dlm_iid_source *s, uint64_t sample, int T, int32_t *out);

/* Held-out sequences start here, far from any training sample index. */
#define DLM_HELDOUT_SAMPLE0 (UINT64_C(1) << 40)

#endif
