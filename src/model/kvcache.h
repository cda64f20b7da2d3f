/* Incremental causal inference for AR sampling: a key/value cache per
 * layer, so each new token costs one row through every layer and attention
 * over the positions so far, O(T) instead of a full O(T^2) forward.
 *
 *   dlm_kv_cache *kv;
 *   dlm_kv_cache_create(m, &kv);
 *   dlm_kv_cache_reset(kv);
 *   dlm_model_forward_step(m, kv, bos, logits);   // logits predict token 0
 *   dlm_model_forward_step(m, kv, x0, logits);    // ... token 1, and so on
 *
 * The logits equal the matching row of a full causal dlm_model_forward
 * (to fp32 rounding; tested). */
#ifndef DLM_KVCACHE_H
#define DLM_KVCACHE_H

#include "core/status.h"
#include "model/model.h"

typedef struct {
    int len;        /* positions filled, 0..T */
    int T, C, L;
    int Cl;         /* this rank's attention channels: C / tp */
    float *qkv;     /* (L, T, 3 Cl) rotated q, k and v of this rank's heads, every position so far */
    float *x, *h, *h2, *row3, *row4, *att, *stat; /* one-row scratch */
    float *logits;  /* this rank's vocabulary shard of the logits (tp > 1) */
    float *gather;  /* (V_padded) the all-gather's scratch */
} dlm_kv_cache;

dlm_status dlm_kv_cache_create(const dlm_model *m, dlm_kv_cache **out);
void dlm_kv_cache_destroy(dlm_kv_cache **kv);
void dlm_kv_cache_reset(dlm_kv_cache *kv);

/* Appends token tok at position kv->len (< T) and writes the causal model's
 * logits for the next token to logits (V_padded floats: under tp every rank
 * gets the whole row, gathered). */
dlm_status dlm_model_forward_step(const dlm_model *m, dlm_kv_cache *kv, int32_t tok, float *logits);

#endif
