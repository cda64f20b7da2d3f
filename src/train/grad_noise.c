/* Per-sequence gradients and their spread: see grad_noise.h. */
#include "train/grad_noise.h"

#include <stdlib.h>
#include <string.h>

dlm_status dlm_grad_noise_measure(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                                  const int32_t *x, int n, uint32_t step, dlm_grad_noise *r)
{
    DLM_CHECK(n >= 2, DLM_ERR_ARG, "the gradient noise needs at least 2 sequences, got %d", n);
    DLM_CHECK(m->layout.tp_size == 1 && !m->layout.staged, DLM_ERR_ARG,
              "the gradient noise is measured on one rank holding the whole model");
    size_t np = m->n_params;
    int T = m->cfg.seq_len;
    double *mean = calloc(np, sizeof *mean);
    DLM_CHECK(mean != NULL, DLM_ERR_NOMEM, "the mean gradient (%zu doubles)", np);
    const float *g = m->grad_arena.base;
    double sum_sq = 0.0, wsum_total = 0.0;
    dlm_status st = DLM_OK;
    for (int i = 0; i < n && st == DLM_OK; i++) {
        double wsum;
        dlm_model_zero_grad(m);
        /* sequence i of a batch of n: its gradient scaled by 1/(n T); times n, the
         * gradient of its own loss per token */
        st = dlm_step_micro(m, buf, o, x + (int64_t)i * T, 1, step, i, n, 1, NULL, &wsum);
        if (st != DLM_OK) break;
        wsum_total += wsum;
        double s = 0.0;
        for (size_t j = 0; j < np; j++) {
            double gi = (double)n * g[j];
            mean[j] += gi / n;
            s += gi * gi;
        }
        sum_sq += s;
    }
    if (st == DLM_OK) {
        double msq = 0.0;
        float *gw = m->grad_arena.base;
        for (size_t j = 0; j < np; j++) {
            msq += mean[j] * mean[j];
            gw[j] = (float)mean[j];
        }
        r->n = n;
        r->loss = wsum_total / ((double)n * T);
        r->mean_sq = msq;
        r->trace_cov = (sum_sq - n * msq) / (n - 1);
        r->noise_scale = msq > 0.0 ? r->trace_cov / msq : 0.0;
    }
    free(mean);
    DLM_CALL(st);
    return DLM_OK;
}
