/* Noise schedules of absorbing-state (masked) diffusion.
 *
 * alpha(t) is the probability that a token is still clean at time t in
 * [0, 1]; a token is masked with probability 1 - alpha(t). The
 * continuous-time ELBO weights the cross-entropy at masked positions by
 *   w(t) = -alpha'(t) / (1 - alpha(t)).
 *
 *   loglinear (MDLM's default): alpha = 1 - t,             w = 1 / t
 *   cosine:      alpha = cos(pi t / 2) (exactly 0 at t = 1),
 *                w = (pi/2) sin(pi t / 2) / (1 - cos(pi t / 2))
 *   linear-sigma (MDLM's "linear"): sigma(t) = s0 + t (s1 - s0), s0 = 1e-3,
 *                s1 = 7; alpha = exp(-sigma), w = (s1 - s0) / (exp(sigma) - 1).
 *                alpha(1) = e^-7 > 0: that prior mass is not covered by the
 *                bound and is reported by dlm_schedule_prior_gap.
 *   power:       alpha = 1 - t^g (g = `power`, default 3), w = g / t. The mask
 *                rate is small for most t, so training sees few-mask inputs
 *                more often; the bound itself is the same for every schedule.
 */
#ifndef DLM_SCHEDULE_H
#define DLM_SCHEDULE_H

#include "core/status.h"

typedef enum {
    DLM_SCHEDULE_LOGLINEAR = 0,
    DLM_SCHEDULE_COSINE,
    DLM_SCHEDULE_LINEAR_SIGMA,
    DLM_SCHEDULE_POWER
} dlm_schedule_kind;

typedef struct {
    dlm_schedule_kind kind;
    double eps;        /* training draws t from [eps, 1] */
    double sigma_min;  /* linear-sigma only */
    double sigma_max;
    double power;      /* power only: the mask rate is t^power */
} dlm_schedule;

/* Defaults: eps = 1e-3, sigma from 1e-3 to 7, power 3. */
void dlm_schedule_default(dlm_schedule *s, dlm_schedule_kind kind);
/* Names in files, indexed by dlm_schedule_kind, NULL-ended. */
extern const char *const dlm_schedule_names[];
dlm_status dlm_schedule_parse(const char *name, dlm_schedule_kind *kind);
const char *dlm_schedule_name(dlm_schedule_kind kind);

double dlm_schedule_alpha(const dlm_schedule *s, double t);
double dlm_schedule_mask_prob(const dlm_schedule *s, double t); /* 1 - alpha(t) */
double dlm_schedule_weight(const dlm_schedule *s, double t);    /* -alpha'(t) / (1 - alpha(t)) */
/* alpha(1): the probability a token is never masked, outside the bound. */
double dlm_schedule_prior_gap(const dlm_schedule *s);

#endif
