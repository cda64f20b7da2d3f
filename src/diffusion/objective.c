/* AR and masked-diffusion input preparation (see objective.h). */
#include "diffusion/objective.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/names.h"
#include "core/rng.h"

const char *const dlm_objective_names[] = {"ar", "mdlm", NULL};
const char *const dlm_train_estimator_names[] = {"mc-t", "exact-k", NULL};
const char *const dlm_k_proposal_names[] = {"uniform", "inverse", "power", NULL};

dlm_status dlm_objective_parse(const char *name, dlm_objective_kind *kind)
{
    int v;
    DLM_CALL(dlm_names_parse(dlm_objective_names, "objective", name, &v));
    *kind = (dlm_objective_kind)v;
    return DLM_OK;
}

const char *dlm_objective_name(dlm_objective_kind kind) { return dlm_objective_names[kind]; }

int64_t dlm_stratum_of(int64_t g, int64_t G)
{
    /* radical_inverse(j) < radical_inverse(g) exactly when, at the lowest bit
     * where j and g differ, g has the 1. So for each set bit b of g, count
     * the j < G that agree with g below b and have 0 at b: the j = r mod
     * 2^(b+1), r = g's bits below b. O(log G) instead of a pass over G. */
    int64_t rank = 0;
    for (int b = 0; b < 63 && (g >> b) != 0; b++) {
        if (!((g >> b) & 1)) continue;
        int64_t period = INT64_C(1) << (b + 1), r = g & ((INT64_C(1) << b) - 1);
        if (r < G) rank += (G - 1 - r) / period + 1;
    }
    return rank;
}

double dlm_diffusion_time(const dlm_objective *o, uint32_t step, int64_t g, int64_t G)
{
    if (o->t_fixed > 0.0) return o->t_fixed;
    double u = dlm_rng_uniform(o->seed, step, 0, 0, DLM_RNG_TIME);
    double f = u + (double)dlm_stratum_of(g, G) / (double)G;
    f -= floor(f);
    double eps = o->schedule.eps;
    return eps + (1.0 - eps) * f;
}

double dlm_k_proposal_exponent(const dlm_objective *o)
{
    return o->k_proposal == DLM_K_UNIFORM ? 0.0 : o->k_proposal == DLM_K_INVERSE ? 1.0 : o->k_power;
}

void dlm_k_proposal_probs(const dlm_objective *o, int T, double *p)
{
    double a = dlm_k_proposal_exponent(o), z = 0.0;
    for (int k = 1; k <= T; k++) z += p[k - 1] = pow((double)k, -a);
    for (int k = 0; k < T; k++) p[k] /= z;
}

int dlm_exact_k_draw(const dlm_objective *o, uint32_t step, int64_t g, int64_t G, int T)
{
    double u = dlm_rng_uniform(o->seed, step, 0, 0, DLM_RNG_TIME);
    double v = u + (double)dlm_stratum_of(g, G) / (double)G;
    v -= floor(v);
    /* the inverse CDF, in the order the probabilities are summed for the weight */
    double a = dlm_k_proposal_exponent(o), z = 0.0, acc = 0.0;
    for (int k = 1; k <= T; k++) z += pow((double)k, -a);
    for (int k = 1; k < T; k++) {
        acc += pow((double)k, -a) / z;
        if (v < acc) return k;
    }
    return T;
}

void dlm_mask_k_positions(uint64_t key, uint32_t a, uint32_t b, int k, int T, uint8_t *mask)
{
    if (T <= 0) return;
    memset(mask, 0, (size_t)T);
    for (int i = T - k; i < T; i++) {
        double u = dlm_rng_uniform(key, a, b, (uint32_t)i, DLM_RNG_MASK);
        int r = (int)(u * (i + 1));
        if (r > i) r = i;
        mask[mask[r] ? i : r] = 1;
    }
}

void dlm_objective_prepare(const dlm_objective *o, const int32_t *x0, int B, int T,
                           uint32_t step, int64_t g0, int64_t G, int32_t *inputs,
                           int32_t *targets, float *weights, double *t_out)
{
    for (int b = 0; b < B; b++) {
        const int32_t *x = x0 + (int64_t)b * T;
        int32_t *in = inputs + (int64_t)b * T, *tg = targets + (int64_t)b * T;
        float *w = weights + (int64_t)b * T;
        memcpy(tg, x, (size_t)T * sizeof *x);
        if (o->kind == DLM_OBJECTIVE_AR) {
            in[0] = o->bos_id;
            memcpy(in + 1, x, (size_t)(T - 1) * sizeof *x);
            for (int i = 0; i < T; i++) w[i] = 1.0f;
            if (t_out) t_out[b] = 0.0;
            continue;
        }
        int64_t g = g0 + b;
        if (o->estimator == DLM_TRAIN_EXACT_K) {
            uint8_t mask[DLM_OBJECTIVE_MAX_T];
            int k = dlm_exact_k_draw(o, step, g, G, T);
            double a = dlm_k_proposal_exponent(o), z = 0.0;
            for (int j = 1; j <= T; j++) z += pow((double)j, -a);
            /* 1 / (P(k) k) = z k^a / k */
            float wk = (float)(z * pow((double)k, a) / k);
            dlm_mask_k_positions(o->seed, step, (uint32_t)g, k, T, mask);
            for (int i = 0; i < T; i++) {
                in[i] = mask[i] ? o->mask_id : x[i];
                w[i] = mask[i] ? wk : 0.0f;
            }
            if (t_out) t_out[b] = (double)k / T;
            continue;
        }
        double t = dlm_diffusion_time(o, step, g, G);
        double p = dlm_schedule_mask_prob(&o->schedule, t);
        float wt = (float)dlm_schedule_weight(&o->schedule, t);
        for (int i = 0; i < T; i++) {
            int masked = dlm_rng_uniform(o->seed, step, (uint32_t)g, (uint32_t)i, DLM_RNG_MASK) < p;
            in[i] = masked ? o->mask_id : x[i];
            w[i] = masked ? wt : 0.0f;
        }
        if (t_out) t_out[b] = t;
    }
}
