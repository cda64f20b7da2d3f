/* Samplers: the categorical draw, determinism, conditioning (prefix,
 * infilling, blocks), the cache (same output, fewer network calls), and a
 * statistical check that ancestral sampling from a model trained on an
 * order-1 Markov source reproduces the source's bigram law.
 * Suite "rules" uses an untrained model (its predictions are near-uniform:
 * enough for properties that must hold for any model); suite "bigram"
 * trains one. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "diffusion/objective.h"
#include "harness.h"
#include "io/synthetic.h"
#include "model/model.h"
#include "optim/optim.h"
#include "sample/sample.h"
#include "train/step.h"

/* ---- the categorical draw ---- */

/* Temperature 0, top-k 1 and a tiny top-p all give the argmax; with no
 * filter the draw inverts the double-precision CDF, so u just below a
 * cumulative boundary picks the token before it. */
static void test_categorical_rules(void)
{
    enum { V = 6 };
    float lg[V] = {0.1f, 2.0f, -1.0f, 1.5f, 0.0f, -3.0f};
    double work[V], p;
    int idx[V];
    CU_ASSERT_EQUAL(dlm_sample_categorical(lg, V, 0.0, 0, 1.0, 0.99, &p, work, idx), 1);
    CU_ASSERT_EQUAL(dlm_sample_categorical(lg, V, 1.0, 1, 1.0, 0.99, &p, work, idx), 1);
    DLM_TEST_NEAR(p, 1.0, 1e-15, "top-1 probability");
    CU_ASSERT_EQUAL(dlm_sample_categorical(lg, V, 1.0, 0, 1e-6, 0.99, &p, work, idx), 1);
    double z = 0.0, q[V];
    for (int j = 0; j < V; j++) z += exp((double)lg[j]);
    for (int j = 0; j < V; j++) q[j] = exp((double)lg[j]) / z;
    double c = 0.0;
    for (int j = 0; j < V; j++) {
        int got = dlm_sample_categorical(lg, V, 1.0, 0, 1.0, c + 0.5 * q[j], &p, work, idx);
        CU_ASSERT_EQUAL(got, j);
        DLM_TEST_NEAR(p, q[j], 1e-12, "probability of the drawn token");
        c += q[j];
    }
    /* top-k 2 keeps ids 1 and 3 renormalised: u below q1/(q1+q3) gives 1, above gives 3 */
    double b = q[1] / (q[1] + q[3]);
    CU_ASSERT_EQUAL(dlm_sample_categorical(lg, V, 1.0, 2, 1.0, b - 1e-9, NULL, work, idx), 1);
    CU_ASSERT_EQUAL(dlm_sample_categorical(lg, V, 1.0, 2, 1.0, b + 1e-9, NULL, work, idx), 3);
    /* top-p = q1 + tiny keeps ids 1 and 3 (the fewest with mass >= p) */
    CU_ASSERT_EQUAL(dlm_sample_categorical(lg, V, 1.0, 0, q[1] + 1e-6, 0.999, NULL, work, idx), 3);
    /* temperature 2 halves the logits: the probability of id 1 is its tempered softmax */
    double z2 = 0.0;
    for (int j = 0; j < V; j++) z2 += exp((double)lg[j] / 2);
    dlm_sample_categorical(lg, V, 2.0, 0, 1.0, 0.0, &p, work, idx);
    DLM_TEST_NEAR(p, exp((double)lg[0] / 2) / z2, 1e-12, "tempered probability of id 0");
}

/* Measures on inputs whose values are known by hand. */
static void test_measures(void)
{
    int32_t x[8] = {1, 2, 1, 2, 1, 2, 1, 2};
    DLM_TEST_NEAR(dlm_sample_unigram_entropy(x, 8), log(2.0), 1e-12, "entropy of 1212...");
    /* 7 bigrams, 2 distinct (12, 21): 1 - 2/7 */
    DLM_TEST_NEAR(dlm_sample_repeat_rate(x, 8, 2), 1.0 - 2.0 / 7, 1e-12, "repeat rate n=2");
    int32_t y[5] = {3, 4, 5, 6, 7};
    DLM_TEST_NEAR(dlm_sample_repeat_rate(y, 5, 2), 0.0, 0.0, "repeat rate, all distinct");
    DLM_TEST_NEAR(dlm_sample_unigram_entropy(y, 5), log(5.0), 1e-12, "entropy of 5 distinct");
}

/* ---- properties that hold for any model ---- */

enum { R_T = 16 };

static dlm_model *untrained(void)
{
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 1, 32, 2, R_T);
    dlm_model *m;
    DLM_TEST_OK(dlm_model_create(&cfg, &m));
    dlm_model_init(m, 7);
    /* scale up the head so predictions are far from uniform and differ by context */
    for (size_t i = 0; i < (size_t)m->cfg.vocab_padded * m->cfg.d_model; i++)
        m->params.lm_head[i] *= 60.0f;
    return m;
}

static void sample_one(dlm_model *m, const dlm_sample_config *c, uint64_t k, const int32_t *given,
                       const uint8_t *fixed, int32_t *out, dlm_sample_stats *st)
{
    dlm_sampler *s;
    DLM_TEST_OK(dlm_sampler_create(m, c, &s));
    DLM_TEST_OK(dlm_sampler_run(s, k, given, fixed, out, st));
    dlm_sampler_destroy(&s);
}

static const dlm_sampler_kind diffusion_kinds[] = {DLM_SAMPLER_ANCESTRAL, DLM_SAMPLER_CONFIDENCE,
                                                   DLM_SAMPLER_RANDOM};

/* Every sampler (also with blocks and top-k/top-p): the same seed gives the
 * same tokens, another seed others; no output id is MASK or padding. */
static void test_same_seed_same_samples(void)
{
    dlm_model *m = untrained();
    int V = m->cfg.vocab_size;
    for (int kind = 0; kind < 4; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            dlm_sample_config c;
            dlm_sample_config_default(&c, R_T);
            c.kind = (dlm_sampler_kind)kind;
            if (variant) { /* longer than T, blocks of T/2, filtered draws */
                c.length = 2 * R_T + 3, c.block = R_T / 2, c.top_k = 20, c.top_p = 0.9;
                c.temperature = 0.8;
            }
            int L = c.length;
            int32_t a[64], b[64], d[64];
            dlm_sample_stats st;
            sample_one(m, &c, 3, NULL, NULL, a, &st);
            sample_one(m, &c, 3, NULL, NULL, b, &st);
            CU_ASSERT(memcmp(a, b, (size_t)L * sizeof *a) == 0);
            c.seed = 2;
            sample_one(m, &c, 3, NULL, NULL, d, &st);
            CU_ASSERT(memcmp(a, d, (size_t)L * sizeof *a) != 0);
            int bad = 0;
            for (int i = 0; i < L; i++) bad += a[i] < 0 || a[i] >= V || d[i] < 0 || d[i] >= V;
            if (bad) printf("\n  %s: %d ids outside 0..%d\n", dlm_sampler_name(c.kind), bad, V - 1);
            CU_ASSERT_EQUAL(bad, 0);
        }
    }
    dlm_model_destroy(&m);
}

/* A prompt prefix and infilled tokens come out unchanged, under every
 * sampler, with and without blocks; nothing else is MASK or padding. */
static void test_given_tokens_stay(void)
{
    dlm_model *m = untrained();
    int V = m->cfg.vocab_size;
    int32_t given[64];
    uint8_t fixed[64];
    for (int kind = 0; kind < 4; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            dlm_sample_config c;
            dlm_sample_config_default(&c, R_T);
            c.kind = (dlm_sampler_kind)kind;
            if (variant) c.length = 40, c.block = 8;
            int L = c.length;
            memset(fixed, 0, sizeof fixed);
            for (int i = 0; i < L; i++) given[i] = -1;
            for (int i = 0; i < 5; i++) given[i] = 'a' + i, fixed[i] = 1; /* prefix "abcde" */
            for (int i = 9; i < L; i += 7) given[i] = 'Z', fixed[i] = 1;   /* infill */
            if (kind != DLM_SAMPLER_AR) given[L - 1] = DLM_BYTE_SEP, fixed[L - 1] = 1;
            for (uint64_t k = 0; k < 4; k++) {
                int32_t out[64];
                dlm_sample_stats st;
                sample_one(m, &c, k, given, fixed, out, &st);
                int changed = 0, bad = 0;
                for (int i = 0; i < L; i++) {
                    changed += fixed[i] && out[i] != given[i];
                    bad += out[i] < 0 || out[i] >= V;
                }
                CU_ASSERT_EQUAL(changed, 0);
                CU_ASSERT_EQUAL(bad, 0);
            }
        }
    }
    dlm_model_destroy(&m);
}

/* The cache changes no token and saves network calls. Ancestral with S
 * steps: uncached NFE = the steps taken (S per block, fewer when every
 * token of the block is drawn before the last step); cached NFE = the steps that unmask
 * something (<= min(S, T)); at S = 4T at least half the steps are empty
 * (T tokens over 4T steps), so cached NFE <= T < S. */
static void test_cache_same_output_fewer_calls(void)
{
    dlm_model *m = untrained();
    const int Ss[] = {R_T, 4 * R_T};
    for (int si = 0; si < 2; si++) {
        for (int kind = 0; kind < 3; kind++) {
            dlm_sample_config c;
            dlm_sample_config_default(&c, R_T);
            c.kind = diffusion_kinds[kind];
            c.steps = Ss[si];
            int64_t nfe[2] = {0, 0}, steps = 0;
            int same = 1;
            for (uint64_t k = 0; k < 8; k++) {
                int32_t a[R_T], b[R_T];
                dlm_sample_stats sa, sb;
                c.cache = 1;
                sample_one(m, &c, k, NULL, NULL, a, &sa);
                c.cache = 0;
                sample_one(m, &c, k, NULL, NULL, b, &sb);
                same &= memcmp(a, b, sizeof a) == 0;
                nfe[0] += sa.nfe, nfe[1] += sb.nfe, steps += sb.steps;
                CU_ASSERT(sa.nfe <= R_T);
            }
            printf("\n    %s S=%d: NFE over 8 samples cached %lld, uncached %lld",
                   dlm_sampler_name(c.kind), c.steps, (long long)nfe[0], (long long)nfe[1]);
            CU_ASSERT(same);
            if (c.kind == DLM_SAMPLER_ANCESTRAL) {
                /* a block can finish before its last step (every token already drawn) */
                CU_ASSERT_EQUAL(nfe[1], steps);
                CU_ASSERT(steps <= 8 * c.steps && steps > 7 * c.steps);
                CU_ASSERT(nfe[0] < nfe[1]);
                if (c.steps >= 4 * R_T) CU_ASSERT(nfe[0] <= 8 * R_T);
            } else {
                /* k = ceil(masked / steps left) unmasks >= 1 per step: min(S, T) calls each */
                int expect = c.steps < R_T ? c.steps : R_T;
                CU_ASSERT_EQUAL(nfe[0], 8 * expect);
            }
        }
    }
    dlm_model_destroy(&m);
}

/* AR with the key/value cache draws the same tokens as the uncached
 * full-forward sampler while the context windows agree (the first T
 * tokens; cached and full logits differ only by fp32 rounding, ~1e-6
 * relative, so a draw flips only if its uniform lands that close to a CDF
 * step); past T the cache restarts its window and still gives valid ids. */
static void test_ar_cache(void)
{
    dlm_model *m = untrained();
    dlm_sample_config c;
    dlm_sample_config_default(&c, R_T);
    c.kind = DLM_SAMPLER_AR;
    int same = 1;
    for (uint64_t k = 0; k < 8; k++) {
        int32_t a[R_T], b[R_T];
        dlm_sample_stats sa, sb;
        c.cache = 1;
        sample_one(m, &c, k, NULL, NULL, a, &sa);
        c.cache = 0;
        sample_one(m, &c, k, NULL, NULL, b, &sb);
        same &= memcmp(a, b, sizeof a) == 0;
        CU_ASSERT(sa.nfe == R_T && sb.nfe == R_T);
    }
    CU_ASSERT(same);
    c.cache = 1;
    c.length = 3 * R_T + 5;
    int32_t x[3 * R_T + 5];
    dlm_sample_stats st;
    sample_one(m, &c, 1, NULL, NULL, x, &st);
    int bad = 0;
    for (int i = 0; i < c.length; i++) bad += x[i] < 0 || x[i] >= m->cfg.vocab_size;
    CU_ASSERT_EQUAL(bad, 0);
    dlm_model_destroy(&m);
}

/* Confidence order at temperature 0 is deterministic given the model, and
 * with S = 1 unmasks everything in one call (k = T). */
static void test_confidence_schedule(void)
{
    dlm_model *m = untrained();
    dlm_sample_config c;
    dlm_sample_config_default(&c, R_T);
    c.kind = DLM_SAMPLER_CONFIDENCE;
    c.steps = 1;
    int32_t out[R_T];
    dlm_sample_stats st;
    sample_one(m, &c, 0, NULL, NULL, out, &st);
    CU_ASSERT_EQUAL(st.nfe, 1);
    c.steps = 4; /* k = ceil(16/4) = 4 each step: 4 calls */
    sample_one(m, &c, 0, NULL, NULL, out, &st);
    CU_ASSERT_EQUAL(st.nfe, 4);
    c.steps = 5; /* k = 4, 3, 3, 3, 3: 5 calls */
    sample_one(m, &c, 0, NULL, NULL, out, &st);
    CU_ASSERT_EQUAL(st.nfe, 5);
    dlm_model_destroy(&m);
}

/* ---- bigram law of samples from a model trained on a Markov source ---- */

enum { BG_N = 8, BG_T = 32, BG_SAMPLES = 768 };

static void fill_markov(const dlm_markov_source *src, int step, int G, int32_t *x)
{
    for (int g = 0; g < G; g++) dlm_markov_fill(src, (uint64_t)step * G + g, BG_T, x + g * BG_T);
}

static double tv_of(const double *f, const double *p, int n)
{
    double tv = 0.0;
    for (int i = 0; i < n; i++) tv += fabs(f[i] - p[i]);
    return 0.5 * tv;
}

/* Bigram frequencies over all adjacent pairs of BG_SAMPLES ancestral
 * samples at S = 4T, compared with the source's joint pi(a) P(b|a) by
 * total variation distance TV = 1/2 sum_ab |f_ab - p_ab|.
 *
 * Tolerance = 2 * noise + 1/S * TV_iid + 0.02:
 * - noise: the expected TV of N independent bigram draws from p itself,
 *   1/2 sum sqrt(2 p (1-p) / (pi N)); doubled because bigrams within a
 *   sequence are correlated (fewer effective draws) and for the spread
 *   around the mean;
 * - two adjacent tokens unmask in the same step with probability
 *   sum_i (i/S)^2 (1/i)^2 = 1/S, and such a pair is drawn from a product
 *   of conditionals: at most a 1/S share of bigrams moves by at most
 *   TV_iid (about 1/4T here; at S = T it would be about 1/T);
 * - 0.05 for the model's own error after this short training run: the
 *   TV falls with training (0.07-0.08 after 400-500 steps, 0.042 after
 *   1500, noise included), so what is left is the model, not the sampler.
 * The test also computes the TV of an i.i.d. sampler from the stationary
 * marginal (what a model that ignored context would give, with no noise)
 * and requires it to exceed the tolerance several times over, so the
 * check can fail. */
static void test_bigram_law(void)
{
    dlm_markov_source *src;
    DLM_TEST_OK(dlm_markov_source_create(BG_N, 1, 0.3, 'a', 11, &src));
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 2, 64, 4, BG_T);
    dlm_model *m;
    DLM_TEST_OK(dlm_model_create(&cfg, &m));
    dlm_model_init(m, 5);
    dlm_adamw_config oc;
    dlm_adamw_config_default(&oc);
    oc.weight_decay = 0.0f;
    dlm_optimizer *opt;
    DLM_TEST_OK(dlm_optimizer_create(m, &oc, &opt));
    dlm_step_buffers buf;
    DLM_TEST_OK(dlm_step_buffers_create(m, 32, &buf));
    dlm_objective obj = {.kind = DLM_OBJECTIVE_MDLM, .seed = 5, .bos_id = DLM_BYTE_SEP,
                         .mask_id = DLM_BYTE_VOCAB};
    dlm_schedule_default(&obj.schedule, DLM_SCHEDULE_LOGLINEAR);
    const int steps = 1500, G = 32;
    dlm_lr_schedule lrs = {.kind = DLM_LR_COSINE, .lr = 3e-3, .min_lr = 3e-4, .warmup = 20,
                           .total = steps};
    int32_t *x = malloc((size_t)G * BG_T * sizeof *x);
    double loss = 0, gnorm, t_train = dlm_now();
    for (int s = 0; s < steps; s++) {
        fill_markov(src, s, G, x);
        DLM_TEST_OK(dlm_train_step(m, opt, &buf, &obj, x, G, (uint32_t)s, dlm_lr_at(&lrs, s),
                                   &loss, &gnorm));
    }
    free(x);
    printf("\n    train time %.1f s", dlm_now() - t_train);
    printf("\n    trained %d steps, last loss %.4f (entropy rate %.4f nats/token)", steps, loss,
           dlm_markov_entropy_rate(src));

    double p[BG_N * BG_N], f[BG_N * BG_N] = {0}, iid[BG_N * BG_N];
    for (int a = 0; a < BG_N; a++)
        for (int b = 0; b < BG_N; b++) {
            p[a * BG_N + b] = src->stationary[a] * src->rows[a * BG_N + b];
            iid[a * BG_N + b] = src->stationary[a] * src->stationary[b];
        }
    dlm_sample_config c;
    dlm_sample_config_default(&c, BG_T);
    c.steps = 4 * BG_T;
    c.seed = 99;
    dlm_sampler *smp;
    DLM_TEST_OK(dlm_sampler_create(m, &c, &smp));
    int64_t nfe = 0, outside = 0, pairs = 0;
    for (int k = 0; k < BG_SAMPLES; k++) {
        int32_t y[BG_T];
        dlm_sample_stats st;
        DLM_TEST_OK(dlm_sampler_run(smp, (uint64_t)k, NULL, NULL, y, &st));
        nfe += st.nfe;
        for (int i = 0; i + 1 < BG_T; i++) {
            int a = y[i] - 'a', b = y[i + 1] - 'a';
            if (a < 0 || a >= BG_N || b < 0 || b >= BG_N) {
                outside++;
                continue;
            }
            f[a * BG_N + b] += 1.0;
            pairs++;
        }
    }
    dlm_sampler_destroy(&smp);
    for (int i = 0; i < BG_N * BG_N; i++) f[i] /= (double)(pairs > 0 ? pairs : 1);
    double noise = 0.0;
    for (int i = 0; i < BG_N * BG_N; i++)
        noise += 0.5 * sqrt(2.0 * p[i] * (1.0 - p[i]) / (M_PI * (double)pairs));
    double tv_iid = tv_of(iid, p, BG_N * BG_N);
    double tol = 2.0 * noise + tv_iid / c.steps + 0.05;
    double tv = tv_of(f, p, BG_N * BG_N), maxdev = 0.0;
    for (int i = 0; i < BG_N * BG_N; i++) maxdev = fmax(maxdev, fabs(f[i] - p[i]));
    printf("\n    %d samples at S=%d: %lld bigrams, %lld outside the source's symbols, "
           "%.1f NFE/sample;\n    TV to the source's bigram law %.4f (max |f-p| %.4f), tolerance "
           "%.4f (noise %.4f);\n    i.i.d. sampler from the marginal: TV %.4f",
           BG_SAMPLES, c.steps, (long long)pairs, (long long)outside, (double)nfe / BG_SAMPLES,
           tv, maxdev, tol, noise, tv_iid);
    /* a few stray symbols are the model's error; more than 1% is a broken sampler */
    DLM_TEST_BELOW((double)outside, 0.01 * (double)(pairs + outside), "bigrams outside the source");
    DLM_TEST_BELOW(tv, tol, "TV of sample bigrams to the source's joint");
    CU_ASSERT(tv_iid > 3.0 * tol);
    CU_ASSERT(nfe <= (int64_t)BG_SAMPLES * BG_T);
    dlm_step_buffers_destroy(&buf);
    dlm_optimizer_destroy(&opt);
    dlm_model_destroy(&m);
    dlm_markov_source_destroy(&src);
}

static const dlm_test_case rules_cases[] = {
    {"categorical draw: argmax limits, CDF inversion, top-k, top-p, temperature",
     test_categorical_rules},
    {"measures: unigram entropy and repeated n-gram rate", test_measures},
    {"same seed same samples, no MASK or padding (all samplers, blocks)",
     test_same_seed_same_samples},
    {"prefix and infilled tokens never change", test_given_tokens_stay},
    {"cache: identical output, fewer network evaluations", test_cache_same_output_fewer_calls},
    {"AR key/value cache", test_ar_cache},
    {"confidence sampler: k = ceil(masked / steps left)", test_confidence_schedule},
    {NULL, NULL}};

static const dlm_test_case bigram_cases[] = {
    {"ancestral samples at S = 4T reproduce a Markov source's bigrams", test_bigram_law},
    {NULL, NULL}};

int main(int argc, char **argv)
{
    const dlm_test_suite suites[] = {{"rules", rules_cases}, {"bigram", bigram_cases}, {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
