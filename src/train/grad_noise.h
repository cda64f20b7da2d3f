/* How noisy a training estimator's gradient is: per-sequence gradients g_i
 * of n sequences at one step (sequence i is global sample i of a batch of
 * n, so its masks are the trainer's), their mean g_bar (the batch
 * gradient), tr Cov(g) = sum_i |g_i - g_bar|^2 / (n - 1) and the noise
 * scale tr Cov / |g_bar|^2 (McCandlish et al. 2018's B_simple: the batch
 * size, in sequences, at which the gradient's noise equals its signal).
 * Compare estimators on the same model and sequences before spending
 * compute. One rank: the model whole.
 *
 *   dlm_grad_noise r;
 *   DLM_CALL(dlm_grad_noise_measure(m, &buf, &obj, x, n, step, &r));
 */
#ifndef DLM_GRAD_NOISE_H
#define DLM_GRAD_NOISE_H

#include <stdint.h>

#include "core/status.h"
#include "diffusion/objective.h"
#include "model/model.h"
#include "train/step.h"

typedef struct {
    int n;              /* sequences */
    double loss;        /* the batch loss, nats/token */
    double trace_cov;   /* tr Cov(g_i), unbiased */
    double mean_sq;     /* |g_bar|^2 */
    double noise_scale; /* trace_cov / mean_sq */
} dlm_grad_noise;

/* x: (n, T) tokens, n >= 2; buf with max_batch >= 1. Leaves m->grads
 * holding g_bar. */
dlm_status dlm_grad_noise_measure(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                                  const int32_t *x, int n, uint32_t step, dlm_grad_noise *r);

#endif
