/* LayerNorm over the channel dimension, eps 1e-5. */
#include <math.h>

#include "kernels/kernels.h"

#define LN_EPS 1e-5f

void dlm_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int64_t N, int C)
{
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *y = out + n * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m += x[c];
        m /= (float)C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= (float)C;
        float s = 1.0f / sqrtf(v + LN_EPS);
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * w[c] + b[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

void dlm_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int64_t N, int C)
{
    /* rows are independent for dinp */
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *dy = dout + n * C;
        float m = mean[n], s = rstd[n];
        float sum_dn = 0.0f, sum_dn_xh = 0.0f;
        for (int c = 0; c < C; c++) {
            float dn = dy[c] * w[c];
            sum_dn += dn;
            sum_dn_xh += dn * (x[c] - m) * s;
        }
        sum_dn /= (float)C;
        sum_dn_xh /= (float)C;
        float *dx = dinp + n * C;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - m) * s;
            dx[c] += s * (dy[c] * w[c] - sum_dn - xh * sum_dn_xh);
        }
    }
    /* dw, db sum over rows: threads own channel blocks, rows in fixed order */
    const int blk = 64;
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += blk) {
        int c1 = c0 + blk < C ? c0 + blk : C;
        for (int64_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *dy = dout + n * C;
            float m = mean[n], s = rstd[n];
            for (int c = c0; c < c1; c++) {
                dw[c] += dy[c] * (x[c] - m) * s;
                db[c] += dy[c];
            }
        }
    }
}
