/* GELU (tanh form), embedding lookup, and the plain elementwise passes. */
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/vmath.h"

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_C 0.044715f

void dlm_gelu_forward(float *out, const float *inp, int64_t n)
{
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + dlm_tanhf(GELU_K * (x + GELU_C * x * x * x)));
    }
}

void dlm_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n)
{
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_C * x * x * x);
        float th = dlm_tanhf(u);
        float sech2 = 1.0f - th * th;
        float grad = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        dinp[i] = grad * dout[i];
    }
}

void dlm_embedding_forward(float *out, const int32_t *tokens, const float *wte, int64_t N, int C)
{
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *row = wte + (int64_t)tokens[n] * C;
        for (int c = 0; c < C; c++) out[n * C + c] = row[c];
    }
}

void dlm_embedding_backward(float *dwte, const int32_t *tokens, const float *dout, int64_t N,
                            int C)
{
    /* rows of dwte collide when tokens repeat: threads own channel blocks */
    const int blk = 64;
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += blk) {
        int c1 = c0 + blk < C ? c0 + blk : C;
        for (int64_t n = 0; n < N; n++) {
            float *row = dwte + (int64_t)tokens[n] * C;
            for (int c = c0; c < c1; c++) row[c] += dout[n * C + c];
        }
    }
}

void dlm_accumulate(float *dst, const float *src, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}
