/* Objectives and noise schedules: weights and mask probabilities against
 * their closed forms, the stratified time sampler, the masks, and the
 * exact zero loss at unmasked positions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "diffusion/objective.h"
#include "diffusion/schedule.h"
#include "harness.h"
#include "model/model.h"
#include "train/grad_noise.h"
#include "train/step.h"

/* w(t) = -alpha'(t) / (1 - alpha(t)) with alpha' by a central difference in
 * double (h = 1e-6: truncation ~1e-12, rounding ~1e-10 relative), and the
 * mask probability = 1 - alpha(t). */
static void test_schedule_closed_forms(void)
{
    for (int k = 0; k < 4; k++) {
        dlm_schedule s;
        dlm_schedule_default(&s, (dlm_schedule_kind)k);
        for (double t = 0.01; t < 0.995; t += 0.0137) {
            double h = 1e-6;
            double da = (dlm_schedule_alpha(&s, t + h) - dlm_schedule_alpha(&s, t - h)) / (2 * h);
            double w = -da / (1.0 - dlm_schedule_alpha(&s, t));
            DLM_TEST_NEAR(dlm_schedule_weight(&s, t), w, 1e-6 * w, dlm_schedule_name(s.kind));
            DLM_TEST_NEAR(dlm_schedule_mask_prob(&s, t), 1.0 - dlm_schedule_alpha(&s, t), 1e-15,
                          "mask probability = 1 - alpha");
        }
    }
    dlm_schedule s;
    dlm_schedule_default(&s, DLM_SCHEDULE_LOGLINEAR);
    CU_ASSERT(dlm_schedule_weight(&s, 0.25) == 4.0);
    CU_ASSERT(dlm_schedule_prior_gap(&s) == 0.0);
    dlm_schedule_default(&s, DLM_SCHEDULE_COSINE);
    CU_ASSERT(dlm_schedule_alpha(&s, 1.0) == 0.0); /* clamped: no prior gap */
    DLM_TEST_NEAR(dlm_schedule_alpha(&s, 0.5), sqrt(0.5), 1e-15, "cosine alpha(1/2)");
    dlm_schedule_default(&s, DLM_SCHEDULE_LINEAR_SIGMA);
    DLM_TEST_NEAR(dlm_schedule_prior_gap(&s), exp(-7.0), 1e-15, "linear-sigma prior gap e^-7");
    dlm_schedule_default(&s, DLM_SCHEDULE_POWER);
    CU_ASSERT(dlm_schedule_mask_prob(&s, 0.5) == 0.125 && dlm_schedule_weight(&s, 0.5) == 6.0);
    CU_ASSERT(dlm_schedule_prior_gap(&s) == 0.0);
    s.power = 1.0; /* = loglinear */
    CU_ASSERT(dlm_schedule_alpha(&s, 0.3) == 1.0 - 0.3 && dlm_schedule_weight(&s, 0.25) == 4.0);
    dlm_schedule_kind kind;
    CU_ASSERT(dlm_schedule_parse("cosine", &kind) == DLM_OK && kind == DLM_SCHEDULE_COSINE);
    CU_ASSERT(dlm_schedule_parse("linear", &kind) == DLM_ERR_ARG);
    dlm_error_clear();
}

/* van der Corput radical inverse in base 2 as a 64-bit fraction. */
static uint64_t radical_inverse(uint64_t g)
{
    uint64_t r = 0;
    for (int b = 0; b < 64; b++, g >>= 1) r = (r << 1) | (g & 1);
    return r;
}

/* The stratum map is a permutation; for G a power of two it is the bit
 * reversal; for every G up to 300 (and a few large ones at sampled g) it is
 * the rank of g's radical inverse among those of 0..G-1, counted directly. */
static void test_strata_permutation(void)
{
    int64_t wrong = 0;
    for (int64_t G = 1; G <= 300; G++)
        for (int64_t g = 0; g < G; g++) {
            int64_t rank = 0;
            for (int64_t j = 0; j < G; j++) rank += radical_inverse((uint64_t)j) < radical_inverse((uint64_t)g);
            wrong += dlm_stratum_of(g, G) != rank;
        }
    const int64_t big[] = {8192, 10000, 65537};
    for (int k = 0; k < 3; k++)
        for (int64_t g = 0; g < big[k]; g += 997) {
            int64_t rank = 0;
            for (int64_t j = 0; j < big[k]; j++) rank += radical_inverse((uint64_t)j) < radical_inverse((uint64_t)g);
            wrong += dlm_stratum_of(g, big[k]) != rank;
        }
    CU_ASSERT(wrong == 0);
    const int sizes[] = {1, 2, 3, 5, 8, 12, 16, 37, 64};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int G = sizes[k];
        char *seen = calloc((size_t)G, 1);
        for (int g = 0; g < G; g++) {
            int64_t s = dlm_stratum_of(g, G);
            CU_ASSERT(s >= 0 && s < G);
            if (s >= 0 && s < G) seen[s]++;
        }
        for (int s = 0; s < G; s++) CU_ASSERT(seen[s] == 1);
        free(seen);
    }
    for (int g = 0; g < 16; g++) {
        int rev = ((g & 1) << 3) | ((g & 2) << 1) | ((g & 4) >> 1) | ((g & 8) >> 3);
        CU_ASSERT(dlm_stratum_of(g, 16) == rev);
    }
}

/* Exactly one t per stratum of [eps, 1] at every step, for any batch size;
 * and any contiguous half of a batch of 16 has t on both sides of 1/2. */
static void test_stratified_times(void)
{
    dlm_objective o = {.kind = DLM_OBJECTIVE_MDLM, .seed = 21};
    dlm_schedule_default(&o.schedule, DLM_SCHEDULE_LOGLINEAR);
    const int sizes[] = {1, 3, 4, 7, 16, 64};
    double eps = o.schedule.eps;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int G = sizes[k];
        for (uint32_t step = 0; step < 20; step++) {
            int *count = calloc((size_t)G, sizeof *count);
            for (int g = 0; g < G; g++) {
                double t = dlm_diffusion_time(&o, step, g, G);
                CU_ASSERT(t >= eps && t < 1.0);
                int s = (int)floor((t - eps) / (1.0 - eps) * G);
                if (s >= 0 && s < G) count[s]++;
            }
            for (int s = 0; s < G; s++) CU_ASSERT(count[s] == 1);
            free(count);
        }
    }
    for (int half = 0; half < 2; half++) {
        int lo = 0, hi = 0;
        for (int g = 8 * half; g < 8 * half + 8; g++) {
            double t = dlm_diffusion_time(&o, 3, g, 16);
            lo += t < 0.5, hi += t >= 0.5;
        }
        CU_ASSERT(lo == 4 && hi == 4);
    }
}

/* At fixed t the masked fraction is 1 - alpha(t): 40000 draws at mask
 * probability 0.3 have standard error 0.0023; bound 4 standard errors. */
static void test_mask_fraction(void)
{
    enum { B = 50, T = 800 };
    dlm_objective o = {.kind = DLM_OBJECTIVE_MDLM, .seed = 8, .t_fixed = 0.3, .bos_id = 256,
                       .mask_id = 257};
    dlm_schedule_default(&o.schedule, DLM_SCHEDULE_LOGLINEAR);
    int32_t *x = malloc(B * T * sizeof *x), *in = malloc(B * T * sizeof *in),
            *tg = malloc(B * T * sizeof *tg);
    float *w = malloc(B * T * sizeof *w);
    for (int i = 0; i < B * T; i++) x[i] = i % 256;
    dlm_objective_prepare(&o, x, B, T, 0, 0, B, in, tg, w, NULL);
    int masked = 0;
    for (int i = 0; i < B * T; i++) {
        int m = in[i] == 257;
        masked += m;
        CU_ASSERT(tg[i] == x[i]);
        CU_ASSERT(m ? w[i] == (float)(1.0 / 0.3) : (w[i] == 0.0f && in[i] == x[i]));
    }
    double frac = (double)masked / (B * T);
    DLM_TEST_NEAR(frac, 0.3, 4 * sqrt(0.3 * 0.7 / (B * T)), "masked fraction at t = 0.3");
    /* power 3 at t = 0.6: masked with probability 0.216, weight 3/0.6 = 5 */
    dlm_schedule_default(&o.schedule, DLM_SCHEDULE_POWER);
    o.t_fixed = 0.6;
    dlm_objective_prepare(&o, x, B, T, 0, 0, B, in, tg, w, NULL);
    masked = 0;
    for (int i = 0; i < B * T; i++) {
        int m = in[i] == 257;
        masked += m;
        CU_ASSERT(m ? w[i] == 5.0f : (w[i] == 0.0f && in[i] == x[i]));
    }
    frac = (double)masked / (B * T);
    DLM_TEST_NEAR(frac, 0.216, 4 * sqrt(0.216 * 0.784 / (B * T)), "masked fraction, power 3");
    free(x), free(in), free(tg), free(w);
}

/* AR shifts by one behind BOS with weight 1; the masks and times of mdlm
 * do not depend on how the global batch is cut into micro-batches. */
static void test_prepare_layout(void)
{
    enum { G = 4, T = 6 };
    int32_t x[G * T], in[G * T], tg[G * T], in1[G * T], tg1[G * T];
    float w[G * T], w1[G * T];
    double t[G], t1[G];
    for (int i = 0; i < G * T; i++) x[i] = 10 + i;
    dlm_objective ar = {.kind = DLM_OBJECTIVE_AR, .bos_id = 256, .mask_id = 257};
    dlm_objective_prepare(&ar, x, G, T, 0, 0, G, in, tg, w, NULL);
    for (int b = 0; b < G; b++)
        for (int i = 0; i < T; i++) {
            CU_ASSERT(in[b * T + i] == (i == 0 ? 256 : x[b * T + i - 1]));
            CU_ASSERT(tg[b * T + i] == x[b * T + i] && w[b * T + i] == 1.0f);
        }
    dlm_objective md = {.kind = DLM_OBJECTIVE_MDLM, .seed = 4, .bos_id = 256, .mask_id = 257};
    dlm_schedule_default(&md.schedule, DLM_SCHEDULE_LOGLINEAR);
    dlm_objective_prepare(&md, x, G, T, 9, 0, G, in, tg, w, t);
    for (int b = 0; b < G; b++)
        dlm_objective_prepare(&md, x + b * T, 1, T, 9, b, G, in1 + b * T, tg1 + b * T, w1 + b * T,
                              t1 + b);
    CU_ASSERT(memcmp(in, in1, sizeof in) == 0);
    CU_ASSERT(memcmp(w, w1, sizeof w) == 0);
    CU_ASSERT(memcmp(t, t1, sizeof t) == 0);
}

/* Through the model: at unmasked positions the weighted loss is exactly 0
 * and so is every logit gradient in that row. */
static void test_unmasked_loss_is_zero(void)
{
    enum { B = 2, T = 16 };
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 1, 16, 2, T);
    dlm_model *m;
    DLM_TEST_OK(dlm_model_create(&cfg, &m));
    dlm_model_init(m, 1);
    dlm_step_buffers buf;
    DLM_TEST_OK(dlm_step_buffers_create(m, B, &buf));
    buf.all_rows = 1; /* the head on every row, so unmasked rows have logits to look at */
    dlm_objective o = {.kind = DLM_OBJECTIVE_MDLM, .seed = 2, .t_fixed = 0.5, .bos_id = 256,
                       .mask_id = 257};
    dlm_schedule_default(&o.schedule, DLM_SCHEDULE_LOGLINEAR);
    int32_t x[B * T];
    for (int i = 0; i < B * T; i++) x[i] = 'a' + i % 26;
    double s;
    DLM_TEST_OK(dlm_step_micro(m, &buf, &o, x, B, 0, 0, B, 1, NULL, &s));
    int n_masked = 0;
    double recomputed = 0.0;
    for (int i = 0; i < B * T; i++) {
        int masked = buf.inputs[i] == 257;
        n_masked += masked;
        if (!masked) {
            CU_ASSERT(buf.weights[i] == 0.0f);
            double row = 0.0;
            for (int v = 0; v < cfg.vocab_padded; v++) row += fabs(buf.acts->logits[(int64_t)i * cfg.vocab_padded + v]);
            CU_ASSERT(row == 0.0);
        } else {
            recomputed += 2.0 * buf.tok_loss[i];
        }
    }
    CU_ASSERT(n_masked > 0 && n_masked < B * T);
    DLM_TEST_NEAR(s, recomputed, 1e-9 * recomputed, "loss = sum over masked of w(t) CE");
    dlm_step_buffers_destroy(&buf);
    dlm_model_destroy(&m);
}


/* ---- exact-k ---------------------------------------------------------- */

/* A fixed positive "cross-entropy" of position i under mask m (T bits):
 * the estimand's stand-in for a model, so expectations are exact sums. */
static double ce_of(unsigned m, int i) { return 0.5 + dlm_rng_uniform(99, m, (uint32_t)i, 0, DLM_RNG_TEST); }

/* E_{|m| = k}[sum_{i in m} CE(m, i)] over every mask of k of T positions. */
static double mean_ce_sum(int T, int k)
{
    double sum = 0.0;
    int n = 0;
    for (unsigned m = 0; m < (1u << T); m++) {
        if (__builtin_popcount(m) != k) continue;
        for (int i = 0; i < T; i++)
            if (m >> i & 1) sum += ce_of(m, i);
        n++;
    }
    return sum / n;
}

/* The NELBO per token, (1/T) sum_k (1/k) E_{|m| = k}[sum_{i in m} CE(m, i)],
 * by enumerating every mask of T positions. */
static double nelbo_enumerated(int T)
{
    double s = 0.0;
    for (int k = 1; k <= T; k++) s += mean_ce_sum(T, k) / k;
    return s / T;
}

static dlm_objective exact_k_objective(dlm_k_proposal kp, double a)
{
    return (dlm_objective){.kind = DLM_OBJECTIVE_MDLM, .estimator = DLM_TRAIN_EXACT_K,
                           .k_proposal = kp, .k_power = a, .seed = 7, .bos_id = 0, .mask_id = 99};
}

/* Estimand: the expected batch loss sum w CE / (G T). For every proposal,
 * the weight the trainer puts on a masked position (read from
 * dlm_objective_prepare for each k it draws) times P(k), with the masks of
 * each size enumerated, gives the NELBO exactly (1e-12 relative). */
static void test_exact_k_expectation(void)
{
    enum { T = 6, G = 4096 };
    static const dlm_k_proposal kps[] = {DLM_K_UNIFORM, DLM_K_INVERSE, DLM_K_POWER, DLM_K_POWER};
    static const double as[] = {0, 0, 2.0, -0.5};
    double nelbo = nelbo_enumerated(T);
    for (int c = 0; c < 4; c++) {
        dlm_objective o = exact_k_objective(kps[c], as[c]);
        double p[T], w_of_k[T + 1] = {0};
        dlm_k_proposal_probs(&o, T, p);
        double ptot = 0.0;
        for (int k = 0; k < T; k++) ptot += p[k];
        DLM_TEST_NEAR(ptot, 1.0, 1e-12, "P(k) sums to 1");
        int32_t x[T] = {1, 2, 3, 4, 5, 6}, in[T], tg[T];
        float w[T];
        int seen = 0;
        for (int g = 0; g < G && seen < T; g++) { /* the weight of each k the sampler draws */
            dlm_objective_prepare(&o, x, 1, T, 3, g, G, in, tg, w, NULL);
            int k = 0;
            float wk = 0.0f;
            for (int i = 0; i < T; i++)
                if (in[i] == o.mask_id) k++, wk = w[i];
            CU_ASSERT(k >= 1 && k <= T);
            for (int i = 0; i < T; i++) CU_ASSERT(in[i] == o.mask_id ? w[i] == wk : w[i] == 0.0f);
            if (w_of_k[k] == 0.0) w_of_k[k] = wk, seen++;
            else CU_ASSERT(w_of_k[k] == wk);
        }
        CU_ASSERT_FATAL(seen == T); /* every k drawn (P(k) >= 1/4096 here) */
        double expect = 0.0;
        for (int k = 1; k <= T; k++) expect += p[k - 1] * w_of_k[k] * mean_ce_sum(T, k) / T;
        /* the weights are floats: 1e-7 relative */
        if (fabs(expect - nelbo) > 2e-7 * nelbo) printf("\n    proposal %d: E[loss] %.9f, NELBO %.9f", c, expect, nelbo);
        DLM_TEST_NEAR(expect, nelbo, 2e-7 * nelbo, "E[loss] = NELBO");
    }
}

/* The sampler: over a global batch the k are the proposal's (stratified:
 * each k's count within 1 of G P(k) + the boundary), and given k the
 * masked positions are uniform: each position masked with frequency k/T
 * within 3 binomial standard errors; and the batch loss of the fixed CE
 * table averages to the NELBO within 3 standard errors over many steps,
 * while the uniform proposal's weight under the inverse proposal's draws
 * (a wrong weight) is far outside them. */
static void test_exact_k_sampler(void)
{
    enum { T = 6, G = 1000, STEPS = 400 };
    dlm_objective o = exact_k_objective(DLM_K_INVERSE, 0);
    double p[T];
    dlm_k_proposal_probs(&o, T, p);
    int32_t x[T] = {1, 2, 3, 4, 5, 6}, in[T], tg[T];
    float w[T];
    long count[T + 1] = {0}, pos[T + 1][T];
    memset(pos, 0, sizeof pos);
    double sum = 0.0, sum2 = 0.0, wrong = 0.0;
    for (uint32_t s = 0; s < STEPS; s++) {
        long step_count[T + 1] = {0};
        double loss = 0.0, loss_wrong = 0.0;
        for (int g = 0; g < G; g++) {
            dlm_objective_prepare(&o, x, 1, T, s, g, G, in, tg, w, NULL);
            unsigned m = 0;
            int k = 0;
            for (int i = 0; i < T; i++)
                if (in[i] == o.mask_id) m |= 1u << i, k++;
            step_count[k]++;
            count[k]++;
            for (int i = 0; i < T; i++) pos[k][i] += m >> i & 1;
            for (int i = 0; i < T; i++)
                if (m >> i & 1) loss += w[i] * ce_of(m, i), loss_wrong += (double)T / k * ce_of(m, i);
        }
        for (int k = 1; k <= T; k++) CU_ASSERT(fabs(step_count[k] - G * p[k - 1]) <= 2.0);
        loss /= (double)G * T;
        loss_wrong /= (double)G * T;
        sum += loss, sum2 += loss * loss, wrong += loss_wrong;
    }
    double mean = sum / STEPS, se = sqrt((sum2 / STEPS - mean * mean) / (STEPS - 1));
    double nelbo = nelbo_enumerated(T);
    printf("\n    inverse proposal: mean loss %.6f +- %.6f, NELBO %.6f, with the uniform weight %.6f\n",
           mean, se, nelbo, wrong / STEPS);
    CU_ASSERT(fabs(mean - nelbo) < 3 * se);
    CU_ASSERT(fabs(wrong / STEPS - nelbo) > 10 * se);
    for (int k = 1; k <= T; k++)
        for (int i = 0; i < T; i++) {
            double q = (double)k / T, n = (double)count[k];
            CU_ASSERT(k == T || fabs(pos[k][i] - n * q) <= 3 * sqrt(n * q * (1 - q)) + 1e-9);
        }
}

static double binom(int n, int k)
{
    double c = 1.0;
    for (int j = 1; j <= k; j++) c = c * (n - k + j) / j;
    return c;
}

/* mc-t's expected training loss in closed form, for the fixed CE table:
 * t uniform on [eps, 1] (density 1/(1 - eps)), mask probability u = t^a
 * and weight a/t (loglinear a = 1, power a), so (a/t) dt = du/u and
 *   E = 1/((1 - eps) T) sum_k C(T,k) E_k[sum CE] int_{eps^a}^1 u^(k-1) (1-u)^(T-k) du,
 * the integral expanded in powers of u. At eps = 0 it is the NELBO. */
static double mc_t_expected_loss(int T, double eps, double a)
{
    double lo = pow(eps, a), e = 0.0;
    for (int k = 1; k <= T; k++) {
        double J = 0.0;
        for (int j = 0; j <= T - k; j++)
            J += binom(T - k, j) * (j % 2 ? -1.0 : 1.0) * (1.0 - pow(lo, k + j)) / (k + j);
        e += binom(T, k) * mean_ce_sum(T, k) * J;
    }
    return e / ((1.0 - eps) * T);
}

/* Estimand: mc-t's expected batch loss sum w CE / (G T). The closed form
 * is checked exactly at eps = 0 (the NELBO by enumeration, 1e-12) and
 * its truncation against the README's first-order statement (NELBO -
 * (1 - eps) E = eps x the one-mask CE, to O(eps^2)); then the trainer's
 * own draws (dlm_objective_prepare over a stratified batch) average to
 * it within 3 standard errors at a large eps for loglinear and power 3,
 * where the NELBO is more than 10 standard errors away: exact-k is
 * unbiased for the NELBO, mc-t for its own truncated integral. */
static void test_mc_t_closed_form(void)
{
    enum { T = 6, G = 500, STEPS = 400 };
    double nelbo = nelbo_enumerated(T), one = mean_ce_sum(T, 1);
    DLM_TEST_NEAR(mc_t_expected_loss(T, 0.0, 1.0), nelbo, 1e-12 * nelbo, "eps = 0: the NELBO");
    DLM_TEST_NEAR(mc_t_expected_loss(T, 0.0, 3.0), nelbo, 1e-12 * nelbo, "eps = 0, power 3");
    double eps = 1e-3, gap = nelbo - (1.0 - eps) * mc_t_expected_loss(T, eps, 1.0);
    DLM_TEST_NEAR(gap, eps * one, 10 * eps * eps * one, "truncation = eps x one-mask CE");
    static const dlm_schedule_kind kinds[] = {DLM_SCHEDULE_LOGLINEAR, DLM_SCHEDULE_POWER};
    static const double eps_of[] = {0.5, 0.5};
    for (int c = 0; c < 2; c++) {
        dlm_objective o = {.kind = DLM_OBJECTIVE_MDLM, .estimator = DLM_TRAIN_MC_T, .seed = 11,
                           .bos_id = 0, .mask_id = 99};
        dlm_schedule_default(&o.schedule, kinds[c]);
        o.schedule.eps = eps_of[c];
        double a = kinds[c] == DLM_SCHEDULE_POWER ? o.schedule.power : 1.0;
        double closed = mc_t_expected_loss(T, o.schedule.eps, a);
        int32_t x[T] = {1, 2, 3, 4, 5, 6}, in[T], tg[T];
        float w[T];
        double sum = 0.0, sum2 = 0.0;
        for (uint32_t s = 0; s < STEPS; s++) {
            double loss = 0.0;
            for (int g = 0; g < G; g++) {
                dlm_objective_prepare(&o, x, 1, T, s, g, G, in, tg, w, NULL);
                unsigned m = 0;
                for (int i = 0; i < T; i++)
                    if (in[i] == o.mask_id) m |= 1u << i;
                for (int i = 0; i < T; i++)
                    if (m >> i & 1) loss += w[i] * ce_of(m, i);
            }
            loss /= (double)G * T;
            sum += loss, sum2 += loss * loss;
        }
        double mean = sum / STEPS, se = sqrt((sum2 / STEPS - mean * mean) / (STEPS - 1));
        printf("\n    mc-t %s eps %.1f: mean loss %.6f +- %.6f, closed form %.6f, NELBO %.6f",
               dlm_schedule_name(kinds[c]), o.schedule.eps, mean, se, closed, nelbo);
        CU_ASSERT(fabs(mean - closed) < 3 * se);
        CU_ASSERT(fabs(nelbo - closed) > 10 * se);
    }
    printf("\n");
}

/* The gradient-noise probe: the mean of its per-sequence gradients is the
 * batch gradient (dlm_batch_loss on the same n sequences, within fp32
 * accumulation, 1e-5 of the largest component), its loss the batch loss,
 * and its tr Cov the sum of squared deviations of the g_i computed apart
 * (1e-6 relative); for each estimator. */
static void test_grad_noise_probe(void)
{
    enum { N = 6, T = 16 };
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 1, 16, 2, T);
    dlm_model *m;
    DLM_TEST_OK(dlm_model_create(&cfg, &m));
    dlm_model_init(m, 3);
    dlm_step_buffers buf;
    DLM_TEST_OK(dlm_step_buffers_create(m, N, &buf));
    int32_t x[N * T];
    for (int i = 0; i < N * T; i++) x[i] = 'a' + (i * 7) % 26;
    size_t np = m->n_params;
    float *batch = malloc(np * sizeof *batch), *gi = malloc((size_t)N * np * sizeof *gi);
    CU_ASSERT_FATAL(batch && gi);
    for (int e = 0; e < 2; e++) {
        dlm_objective o = {.kind = DLM_OBJECTIVE_MDLM, .seed = 5, .bos_id = 256, .mask_id = 257,
                           .estimator = e ? DLM_TRAIN_EXACT_K : DLM_TRAIN_MC_T,
                           .k_proposal = DLM_K_INVERSE};
        dlm_schedule_default(&o.schedule, DLM_SCHEDULE_LOGLINEAR);
        double loss;
        DLM_TEST_OK(dlm_batch_loss(m, &buf, &o, x, N, 4, 1, &loss));
        memcpy(batch, m->grad_arena.base, np * sizeof *batch);
        for (int i = 0; i < N; i++) { /* each sequence's own gradient, apart */
            double ws;
            dlm_model_zero_grad(m);
            DLM_TEST_OK(dlm_step_micro(m, &buf, &o, x + i * T, 1, 4, i, N, 1, NULL, &ws));
            for (size_t j = 0; j < np; j++) gi[i * np + j] = N * m->grad_arena.base[j];
        }
        dlm_grad_noise r;
        DLM_TEST_OK(dlm_grad_noise_measure(m, &buf, &o, x, N, 4, &r));
        double big = 0.0, worst = 0.0, tc = 0.0;
        for (size_t j = 0; j < np; j++) {
            big = fmax(big, fabs(batch[j]));
            worst = fmax(worst, fabs(batch[j] - m->grad_arena.base[j]));
            double mean = 0.0;
            for (int i = 0; i < N; i++) mean += gi[i * np + j] / N;
            for (int i = 0; i < N; i++) tc += (gi[i * np + j] - mean) * (gi[i * np + j] - mean);
        }
        tc /= N - 1;
        CU_ASSERT(big > 0.0 && worst <= 1e-5 * big);
        DLM_TEST_NEAR(r.loss, loss, 1e-12 * loss, "the probe's loss is the batch loss");
        DLM_TEST_NEAR(r.trace_cov, tc, 1e-6 * tc, "tr Cov");
        CU_ASSERT(r.trace_cov > 0.0 && r.mean_sq > 0.0);
        DLM_TEST_NEAR(r.noise_scale, r.trace_cov / r.mean_sq, 1e-12 * r.noise_scale, "scale");
    }
    free(batch), free(gi);
    dlm_step_buffers_destroy(&buf);
    dlm_model_destroy(&m);
}

int main(int argc, char **argv)
{
    static const dlm_test_case sched[] = {{"weights and mask probabilities", test_schedule_closed_forms},
                                          {NULL, NULL}};
    static const dlm_test_case strat[] = {{"strata are a permutation", test_strata_permutation},
                                          {"one t per stratum", test_stratified_times},
                                          {NULL, NULL}};
    static const dlm_test_case masks[] = {{"masked fraction", test_mask_fraction},
                                          {"layout and micro-batch invariance", test_prepare_layout},
                                          {"unmasked positions carry zero loss", test_unmasked_loss_is_zero},
                                          {NULL, NULL}};
    static const dlm_test_case exact_k[] = {{"exact-k expectation = NELBO", test_exact_k_expectation},
                                            {"exact-k sampler", test_exact_k_sampler},
                                            {"mc-t: its own truncated closed form", test_mc_t_closed_form},
                                            {"gradient noise probe", test_grad_noise_probe},
                                            {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"schedules", sched}, {"stratified time", strat},
                                            {"masks", masks},     {"estimator", exact_k},
                                            {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
