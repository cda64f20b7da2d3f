/* Counter-based randomness (Philox4x32-10, Salmon et al. 2011): every draw
 * is a pure function of (seed, step, global sample, position, purpose), so
 * a sequence's masks and times do not depend on how the batch is split
 * over micro-batches or ranks. */
#ifndef DLM_RNG_H
#define DLM_RNG_H

#include <stdint.h>

/* What a draw is for; part of the counter so purposes never share streams. */
typedef enum {
    DLM_RNG_INIT = 1,      /* parameter initialisation */
    DLM_RNG_TIME = 2,      /* diffusion time per step (the stratification offset) */
    DLM_RNG_MASK = 3,      /* which tokens are masked */
    DLM_RNG_DATA = 4,      /* batch positions and synthetic tokens */
    DLM_RNG_TEST = 5       /* tests and fixtures */
} dlm_rng_purpose;

/* The bare block function: 10 rounds on a 128-bit counter with a 64-bit key. */
void dlm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Counter layout: ctr = {position, sample, step, purpose}, key = seed. */
void dlm_rng_u32x4(uint64_t seed, uint32_t step, uint32_t sample, uint32_t position,
                   dlm_rng_purpose purpose, uint32_t out[4]);

/* Uniform double in [0, 1) with 53 random bits. */
double dlm_rng_uniform(uint64_t seed, uint32_t step, uint32_t sample, uint32_t position,
                       dlm_rng_purpose purpose);

/* Standard normal (Box-Muller on one block). */
double dlm_rng_normal(uint64_t seed, uint32_t step, uint32_t sample, uint32_t position,
                      dlm_rng_purpose purpose);

#endif
