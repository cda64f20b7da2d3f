/* The AdamW update and the pieces of global-norm clipping. */
#include <math.h>

#include "kernels/kernels.h"

void dlm_adamw_update(float *p, const float *grad, float grad_scale, float *m, float *v,
                      int64_t n, float lr, float beta1, float beta2, float eps, float wd, int64_t t)
{
    float c1 = 1.0f - powf(beta1, (float)t), c2 = 1.0f - powf(beta2, (float)t);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float g = grad_scale * grad[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / c1, vhat = vi / c2;
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
    }
}

#define SUMSQ_CHUNKS 256

double dlm_sum_squares(const float *x, int64_t n)
{
    /* The chunking depends only on n, so the sum is the same on any thread count. */
    double part[SUMSQ_CHUNKS];
    int64_t chunk = (n + SUMSQ_CHUNKS - 1) / SUMSQ_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < SUMSQ_CHUNKS; c++) {
        int64_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        double s = 0.0;
        for (int64_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
        part[c] = s;
    }
    double total = 0.0;
    for (int c = 0; c < SUMSQ_CHUNKS; c++) total += part[c];
    return total;
}

float dlm_clip_factor(double norm, double max_norm)
{
    if (max_norm <= 0.0 || !(norm > max_norm)) return 1.0f;
    return (float)(max_norm / norm);
}
