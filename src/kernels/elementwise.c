/* GELU (tanh form), embedding lookup, and the plain elementwise passes. */
#include <math.h>
#include <stdint.h>

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
    dlm_embedding_forward_range(out, tokens, wte, N, C, 0, INT32_MAX);
}

void dlm_embedding_forward_range(float *out, const int32_t *tokens, const float *wte, int64_t N,
                                 int C, int32_t v0, int32_t nv)
{
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        int64_t v = (int64_t)tokens[n] - v0;
        if (v < 0 || v >= nv) {
            for (int c = 0; c < C; c++) out[n * C + c] = 0.0f;
            continue;
        }
        const float *row = wte + v * C;
        for (int c = 0; c < C; c++) out[n * C + c] = row[c];
    }
}

void dlm_embedding_backward(float *dwte, const int32_t *tokens, const float *dout, int64_t N,
                            int C)
{
    dlm_embedding_backward_range(dwte, tokens, dout, N, C, 0, INT32_MAX);
}

void dlm_embedding_backward_range(float *dwte, const int32_t *tokens, const float *dout,
                                  int64_t N, int C, int32_t v0, int32_t nv)
{
    /* rows of dwte collide when tokens repeat: threads own channel blocks */
    const int blk = 64;
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += blk) {
        int c1 = c0 + blk < C ? c0 + blk : C;
        for (int64_t n = 0; n < N; n++) {
            int64_t v = (int64_t)tokens[n] - v0;
            if (v < 0 || v >= nv) continue;
            float *row = dwte + v * C;
            for (int c = c0; c < c1; c++) row[c] += dout[n * C + c];
        }
    }
}

void dlm_accumulate(float *dst, const float *src, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}
