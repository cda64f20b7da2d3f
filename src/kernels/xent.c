/* Cross-entropy over the first n_valid vocabulary columns: MASK and the
 * padding columns never receive probability. */
#include <math.h>

#include "kernels/kernels.h"

/* log sum_j exp(row[j]) over j < n_valid, accumulated in double. */
static double row_logsumexp(const float *row, int n_valid)
{
    float mx = -INFINITY;
    for (int j = 0; j < n_valid; j++) mx = row[j] > mx ? row[j] : mx;
    double sum = 0.0;
    for (int j = 0; j < n_valid; j++) sum += exp((double)row[j] - (double)mx);
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
        double lse = row_logsumexp(row, n_valid); /* read the row before it is overwritten */
        int tgt = targets[n];
        for (int j = 0; j < n_valid; j++) {
            float p = (float)exp((double)row[j] - lse);
            drow[j] = g * (p - (j == tgt ? 1.0f : 0.0f));
        }
        for (int j = n_valid; j < V; j++) drow[j] = 0.0f;
    }
}
