/* Branch-free float exp and tanh that the compiler vectorises (AVX-512
 * here), for the softmax, cross-entropy and GELU passes: libm's scalar
 * expf/tanhf keep those loops scalar and cost several times more.
 *
 * exp: x = n ln2 + r with |r| <= ln2/2, exp(r) by its Taylor series to r^7
 * (truncation below 6e-9 relative), 2^n built in the exponent bits.
 * Inputs are clamped to [-87.3, 88], so the result is always finite and
 * normal (e^-87.3 ~ 1.2e-38), except that NaN stays NaN (so a diverging
 * run is caught); relative error about 2e-7 in all.
 * tanh(u) = 1 - 2 / (exp(2u) + 1): absolute error about 2e-7. */
#ifndef DLM_VMATH_H
#define DLM_VMATH_H

#include <stdint.h>
#include <string.h>

static inline float dlm_expf(float in)
{
    const float lo = -87.3f, hi = 88.0f; /* keeps 2^n normal: -126 <= n <= 127 */
    float x = in > lo ? in : lo;           /* NaN goes to lo here (no UB below) ... */
    x = x < hi ? x : hi;
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693145751953125f, ln2_lo = 1.42860682030941723e-6f;
    /* round to nearest by adding and removing 1.5 * 2^23 (vectorises, unlike roundf) */
    float n = (x * log2e + 12582912.0f) - 12582912.0f;
    float r = (x - n * ln2_hi) - n * ln2_lo;
    /* Horner form of sum_{k<=7} r^k / k! */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return in == in ? p * scale : in; /* ... and comes back out as NaN */
}

static inline float dlm_tanhf(float u) { return 1.0f - 2.0f / (dlm_expf(2.0f * u) + 1.0f); }

#endif
