/* alpha(t), mask probability and ELBO weight of each schedule (formulas in schedule.h). */
#include "diffusion/schedule.h"

#include <math.h>
#include <string.h>

#include "core/names.h"

#define PI 3.14159265358979323846

void dlm_schedule_default(dlm_schedule *s, dlm_schedule_kind kind)
{
    s->kind = kind;
    s->eps = 1e-3;
    s->sigma_min = 1e-3;
    s->sigma_max = 7.0;
    s->power = 3.0;
}

const char *const dlm_schedule_names[] = {"loglinear", "cosine", "linear-sigma", "power", NULL};

dlm_status dlm_schedule_parse(const char *name, dlm_schedule_kind *kind)
{
    int v;
    DLM_CALL(dlm_names_parse(dlm_schedule_names, "noise schedule", name, &v));
    *kind = (dlm_schedule_kind)v;
    return DLM_OK;
}

const char *dlm_schedule_name(dlm_schedule_kind kind) { return dlm_schedule_names[kind]; }

double dlm_schedule_alpha(const dlm_schedule *s, double t)
{
    switch (s->kind) {
    case DLM_SCHEDULE_LOGLINEAR: return 1.0 - t;
    case DLM_SCHEDULE_COSINE: return t >= 1.0 ? 0.0 : cos(0.5 * PI * t);
    case DLM_SCHEDULE_LINEAR_SIGMA:
        return exp(-(s->sigma_min + t * (s->sigma_max - s->sigma_min)));
    case DLM_SCHEDULE_POWER: return 1.0 - pow(t, s->power);
    }
    return NAN;
}

double dlm_schedule_mask_prob(const dlm_schedule *s, double t)
{
    switch (s->kind) {
    case DLM_SCHEDULE_LOGLINEAR: return t;
    case DLM_SCHEDULE_COSINE: return t >= 1.0 ? 1.0 : 1.0 - cos(0.5 * PI * t);
    case DLM_SCHEDULE_LINEAR_SIGMA:
        return -expm1(-(s->sigma_min + t * (s->sigma_max - s->sigma_min)));
    case DLM_SCHEDULE_POWER: return pow(t, s->power);
    }
    return NAN;
}

double dlm_schedule_weight(const dlm_schedule *s, double t)
{
    switch (s->kind) {
    case DLM_SCHEDULE_LOGLINEAR: return 1.0 / t;
    case DLM_SCHEDULE_COSINE: {
        double a = 0.5 * PI * t;
        return 0.5 * PI * sin(a) / (1.0 - cos(a));
    }
    case DLM_SCHEDULE_LINEAR_SIGMA: {
        double sigma = s->sigma_min + t * (s->sigma_max - s->sigma_min);
        return (s->sigma_max - s->sigma_min) / expm1(sigma);
    }
    case DLM_SCHEDULE_POWER: return s->power / t;
    }
    return NAN;
}

double dlm_schedule_prior_gap(const dlm_schedule *s) { return dlm_schedule_alpha(s, 1.0); }
