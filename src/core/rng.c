/* Philox4x32-10 (Random123's, header-only) and the uniform/normal draws
 * built on it. */
#include "core/rng.h"

#include <Random123/philox.h>
#include <math.h>

void dlm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    const philox4x32_ctr_t c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
    const philox4x32_key_t k = {{key[0], key[1]}};
    const philox4x32_ctr_t r = philox4x32_R(10, c, k);
    out[0] = r.v[0], out[1] = r.v[1], out[2] = r.v[2], out[3] = r.v[3];
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
