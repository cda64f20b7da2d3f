/* Cross-entropy over the first n_valid vocabulary columns: MASK and the
 * padding columns never receive probability. */
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/vmath.h"

/* log sum_j exp(row[j]) over j < n_valid. Terms are float (vectorised
 * exp), summed in 16 float lanes over blocks of 256 and the blocks in
 * double, all in a fixed order. */
static double row_logsumexp(const float *row, int n_valid)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n_valid; j++) mx = row[j] > mx ? row[j] : mx;
    double sum = 0.0;
    for (int j0 = 0; j0 < n_valid; j0 += 256) {
        int j1 = j0 + 256 < n_valid ? j0 + 256 : n_valid;
        float lane[16] = {0};
        for (int j = j0; j < j1; j += 16) {
            int w = j1 - j < 16 ? j1 - j : 16;
            for (int l = 0; l < w; l++) lane[l] += dlm_expf(row[j + l] - mx);
        }
        float block = 0.0f;
        for (int l = 0; l < 16; l++) block += lane[l];
        sum += block;
    }
    return (double)mx + log(sum);
}

void dlm_xent_forward(float *loss, const float *logits, const int32_t *targets, int64_t N, int V,
                      int n_valid)
{
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *row = logits + n * V;
        loss[n] = (float)(row_logsumexp(row, n_valid) - (double)row[targets[n]]);
    }
}

void dlm_xent_backward(float *dlogits, const float *logits, const int32_t *targets,
                       const float *dloss, int64_t N, int V, int n_valid)
{
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *row = logits + n * V;
        float *drow = dlogits + n * V;
        float g = dloss[n];
        if (g == 0.0f) {
            for (int j = 0; j < V; j++) drow[j] = 0.0f;
            continue;
        }
        float lse = (float)row_logsumexp(row, n_valid); /* read the row before it is overwritten */
        int tgt = targets[n];
#pragma omp simd
        for (int j = 0; j < n_valid; j++) drow[j] = g * dlm_expf(row[j] - lse);
        drow[tgt] -= g;
        for (int j = n_valid; j < V; j++) drow[j] = 0.0f;
    }
}
