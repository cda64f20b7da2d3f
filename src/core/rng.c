/* Philox4x32-10 and the uniform/normal draws built on it. */
#include "core/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void dlm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, c0, &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n1 = lo1;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        uint32_t n3 = lo0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void dlm_rng_u32x4(uint64_t seed, uint32_t step, uint32_t sample, uint32_t position,
                   dlm_rng_purpose purpose, uint32_t out[4])
{
    const uint32_t ctr[4] = {position, sample, step, (uint32_t)purpose};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    dlm_philox4x32_10(ctr, key, out);
}

static inline double u53(uint32_t a, uint32_t b)
{
    return ((double)(a >> 5) * 67108864.0 + (double)(b >> 6)) * (1.0 / 9007199254740992.0);
}

double dlm_rng_uniform(uint64_t seed, uint32_t step, uint32_t sample, uint32_t position,
                       dlm_rng_purpose purpose)
{
    uint32_t r[4];
    dlm_rng_u32x4(seed, step, sample, position, purpose, r);
    return u53(r[0], r[1]);
}

double dlm_rng_normal(uint64_t seed, uint32_t step, uint32_t sample, uint32_t position,
                      dlm_rng_purpose purpose)
{
    uint32_t r[4];
    dlm_rng_u32x4(seed, step, sample, position, purpose, r);
    double u1 = 1.0 - u53(r[0], r[1]); /* (0, 1]: log is finite */
    double u2 = u53(r[2], r[3]);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
