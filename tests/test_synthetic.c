/* Synthetic sources: the Markov chain's stationary distribution, Dirichlet
 * rows, window entropy against brute-force enumeration, entropy rate against
 * long generated samples (batch means), determinism of generation, and the
 * argument checks; the i.i.d. source against closed forms and samples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/synthetic.h"

/* Overall mean and its batch-means standard error, from nb batch means. For
 * a stationary chain that mixes within a batch the batch means are nearly
 * independent, so sd(batch means) / sqrt(nb) is the standard error of the
 * overall mean despite the correlation between neighbouring tokens. */
static void batch_stats(const double *batch_mean, int nb, double *mean, double *se)
{
    double m = 0.0, v = 0.0;
    for (int b = 0; b < nb; b++) m += batch_mean[b];
    m /= nb;
    for (int b = 0; b < nb; b++) v += (batch_mean[b] - m) * (batch_mean[b] - m);
    *mean = m;
    *se = sqrt(v / (nb - 1) / nb);
}

/* ---- Markov: the tables ---- */

static const struct {
    int n, k;
    double alpha;
    uint64_t seed;
} table_cases[] = {{16, 2, 0.2, 11}, {3, 2, 0.2, 12}, {2, 3, 0.1, 13}, {50, 1, 0.1, 14},
                   {5, 0, 0.3, 15},  {4, 5, 0.15, 16}, {16, 3, 0.2, 17}, {5, 5, 0.3, 18},
                   {2, 11, 0.3, 19}};

/* Every row sums to 1 and is > 0; pi sums to 1 and pi P = pi. 1e-12: pi is
 * solved exactly (elimination) for the small chains and for n 2, k 11;
 * for n 16 k 3 and n 5 k 5 power iteration stops at an L1 residual below
 * 1e-14. A row of n <= 50 entries sums to 1 within ~n * 1e-16. */
static void test_markov_stationary(void)
{
    for (size_t c = 0; c < sizeof table_cases / sizeof table_cases[0]; c++) {
        dlm_markov_source *m;
        DLM_TEST_OK(dlm_markov_source_create(table_cases[c].n, table_cases[c].k,
                                             table_cases[c].alpha, 'a', table_cases[c].seed, &m));
        int n = m->n_symbols;
        int64_t N = m->n_states;
        double worst_row = 0.0, min_p = 1.0, worst_fix = 0.0, pi_total = 0.0;
        for (int64_t s = 0; s < N; s++) {
            double total = 0.0;
            for (int x = 0; x < n; x++) {
                total += m->rows[s * n + x];
                min_p = fmin(min_p, m->rows[s * n + x]);
            }
            worst_row = fmax(worst_row, fabs(total - 1.0));
            pi_total += m->stationary[s];
        }
        /* (pi P)(t) sums over every s that moves to t: s's last k-1 symbols are
         * t's first k-1; computed here by pushing forward, not as the solver pulls */
        double *next = calloc((size_t)N, sizeof *next);
        for (int64_t s = 0; s < N; s++)
            for (int x = 0; x < n; x++)
                next[(s * n + x) % N] += m->stationary[s] * m->rows[s * n + x];
        for (int64_t s = 0; s < N; s++)
            worst_fix = fmax(worst_fix, fabs(next[s] - m->stationary[s]));
        free(next);
        DLM_TEST_BELOW(worst_row, 1e-12, "max |row sum - 1|");
        CU_ASSERT(min_p > 0.0);
        DLM_TEST_NEAR(pi_total, 1.0, 1e-12, "sum of pi");
        DLM_TEST_BELOW(worst_fix, 1e-12, "max |pi P - pi|");
        int exact = m->n_states <= 1024 || (n <= 4 && m->n_states <= 4096);
        CU_ASSERT(exact ? m->power_iterations == 0 : m->power_iterations > 0);
        dlm_markov_source_destroy(&m);
        CU_ASSERT(m == NULL);
    }
}

/* The rows are Dirichlet(alpha): a component's variance is
 * (1/n)(1 - 1/n) / (n alpha + 1). Per row, v = mean_j (p_j - 1/n)^2 has that
 * expectation and the rows are independent, so the mean of v over 4096 rows
 * is compared within 4 standard errors. Alpha 0.2 takes the alpha < 1 boost
 * (without it the variance would be (n(alpha+1)+1)/(n alpha+1) = 4.8 times
 * smaller); alpha 2.5 the plain Marsaglia-Tsang path. */
static void test_markov_dirichlet_rows(void)
{
    const struct {
        int n, k;
        double alpha;
    } cases[] = {{16, 2, 0.2}, {8, 4, 2.5}};
    for (int c = 0; c < 2; c++) {
        dlm_markov_source *m;
        DLM_TEST_OK(dlm_markov_source_create(cases[c].n, cases[c].k, cases[c].alpha, 0, 21, &m));
        int n = m->n_symbols;
        double s = 0.0, s2 = 0.0;
        for (int64_t r = 0; r < m->n_states; r++) {
            double v = 0.0;
            for (int x = 0; x < n; x++) {
                double d = m->rows[r * n + x] - 1.0 / n;
                v += d * d / n;
            }
            s += v, s2 += v * v;
        }
        double R = (double)m->n_states, mean = s / R;
        double se = sqrt((s2 / R - mean * mean) / (R - 1));
        double want = (1.0 / n) * (1.0 - 1.0 / n) / (n * cases[c].alpha + 1.0);
        printf("\n  Dirichlet(%g) n %d: component variance %.6g, expected %.6g, se %.2g",
               cases[c].alpha, n, mean, want, se);
        DLM_TEST_NEAR(mean, want, 4 * se, "Dirichlet component variance");
        dlm_markov_source_destroy(&m);
    }
}

/* ---- Markov: exact window entropy ---- */

/* For tiny chains, enumerate all n^T windows, each probability by the chain
 * rule from the stationary start using only pi and the rows (below k tokens,
 * summing pi over the completions), and compare -sum p log p to
 * T * window_entropy(T). The probabilities sum to 1 within 1e-12 (a few
 * hundred terms of rounding); the entropies agree within 1e-10 (the same
 * sums in another order). Each window's summed dlm_markov_logprob must be
 * -log p: relative 1e-12. */
static void test_markov_window_entropy_brute_force(void)
{
    const struct {
        int n, k;
        uint64_t seed;
    } cases[] = {{3, 2, 31}, {2, 3, 32}, {4, 1, 33}};
    for (int c = 0; c < 3; c++) {
        dlm_markov_source *m;
        DLM_TEST_OK(dlm_markov_source_create(cases[c].n, cases[c].k, 0.2, 'a', cases[c].seed, &m));
        int n = m->n_symbols, k = m->order;
        int64_t N = m->n_states;
        for (int T = 1; T <= 6; T++) {
            int64_t count = 1;
            for (int t = 0; t < T; t++) count *= n;
            double total = 0.0, H = 0.0, worst_lp = 0.0;
            int32_t x[6];
            double nll[6];
            for (int64_t w = 0; w < count; w++) {
                int64_t r = w;
                for (int t = T - 1; t >= 0; t--, r /= n) x[t] = (int32_t)(r % n);
                double p;
                if (T >= k) {
                    int64_t ctx = 0;
                    for (int t = 0; t < k; t++) ctx = ctx * n + x[t];
                    p = m->stationary[ctx];
                    for (int t = k; t < T; t++) {
                        p *= m->rows[ctx * n + x[t]];
                        ctx = (ctx * n + x[t]) % N;
                    }
                } else {
                    int64_t prefix = 0, rest = 1;
                    for (int t = 0; t < T; t++) prefix = prefix * n + x[t];
                    for (int t = T; t < k; t++) rest *= n;
                    p = 0.0;
                    for (int64_t q = 0; q < rest; q++) p += m->stationary[prefix * rest + q];
                }
                total += p;
                H -= p * log(p);
                for (int t = 0; t < T; t++) x[t] += 'a';
                DLM_TEST_OK(dlm_markov_logprob(m, x, T, nll));
                double sum = 0.0;
                for (int t = 0; t < T; t++) sum += nll[t];
                worst_lp = fmax(worst_lp, fabs(sum + log(p)) / (1.0 + fabs(log(p))));
            }
            DLM_TEST_NEAR(total, 1.0, 1e-12, "sum of window probabilities");
            DLM_TEST_NEAR(dlm_markov_window_entropy(m, T) * T, H, 1e-10,
                          "T * window entropy vs enumeration");
            DLM_TEST_BELOW(worst_lp, 1e-12, "summed logprob vs -log p (relative)");
        }
        /* H(x_1..x_T)/T of a stationary process never increases with T and tends to h */
        double prev = INFINITY;
        for (int T = 1; T <= 64; T++) {
            double hT = dlm_markov_window_entropy(m, T);
            CU_ASSERT(hT <= prev + 1e-15);
            CU_ASSERT(hT >= m->entropy_rate - 1e-15);
            prev = hT;
        }
        CU_ASSERT(isnan(dlm_markov_window_entropy(m, 0)));
        dlm_markov_source_destroy(&m);
    }
}

/* ---- Markov: the entropy rate against a long sample ---- */

/* The estimand: for a chain in its stationary regime, E[-log p(x_i | the k
 * tokens before)] = sum_s pi(s) H(row s) = h exactly, for every i >= k. The
 * sample mean over 4,000,000 tokens (of one chain, generated 40,000 at a time
 * by continuation) has a batch-means standard error over 100 batches; with
 * 99 degrees of freedom |t| > 3 has probability ~0.3%, so a correct
 * implementation passes at 3 SE nearly always (and this seed is fixed).
 * So that the test can fail, the same tokens scored by the stationary
 * unigram law must be worse than h by more than 10 SE (context matters at
 * alpha 0.2), and their mean must match that law's entropy (the generated
 * unigram frequencies are right). */
static void test_markov_entropy_rate_sample(void)
{
    enum { NB = 100, B = 40000 };
    dlm_markov_source *m;
    DLM_TEST_OK(dlm_markov_source_create(16, 2, 0.2, 'a', 2024, &m));
    int k = m->order;
    int32_t *buf = malloc((size_t)(k + B) * sizeof *buf); /* k tokens of context, then a batch */
    double *nll = malloc((size_t)(k + B) * sizeof *nll);
    double bm[NB], bu[NB];
    DLM_TEST_OK(dlm_markov_generate(m, 0, k, NULL, buf));
    for (int b = 0; b < NB; b++) {
        int64_t start = k + (int64_t)b * B;
        DLM_TEST_OK(dlm_markov_generate(m, start, B, buf, buf + k));
        /* scored as a window: its first k conditionals are the marginal's, dropped */
        DLM_TEST_OK(dlm_markov_logprob(m, buf, k + B, nll));
        double s = 0.0, su = 0.0;
        for (int i = k; i < k + B; i++) {
            s += nll[i];
            su -= log(m->marginal[1][buf[i] - 'a']);
        }
        bm[b] = s / B;
        bu[b] = su / B;
        memmove(buf, buf + B, (size_t)k * sizeof *buf);
    }
    double mean, se, uni, se_uni;
    batch_stats(bm, NB, &mean, &se);
    batch_stats(bu, NB, &uni, &se_uni);
    double h = dlm_markov_entropy_rate(m), h1 = m->joint_entropy[1];
    printf("\n  n 16 k 2 alpha 0.2: h %.6f, sample mean %.6f, se %.2g (%.2f se); unigram H %.6f, "
           "sample %.6f, se %.2g; gap %.4f = %.0f se",
           h, mean, se, (mean - h) / se, h1, uni, se_uni, uni - h, (uni - h) / se_uni);
    DLM_TEST_NEAR(mean, h, 3 * se, "mean -log p_true vs entropy rate");
    CU_ASSERT(uni - h > 10 * se_uni);
    DLM_TEST_NEAR(uni, h1, 3 * se_uni, "mean -log p_unigram vs unigram entropy");
    free(buf);
    free(nll);
    dlm_markov_source_destroy(&m);
}

/* dlm_markov_fill starts each sequence from the stationary k-tuple, so the
 * mean over sequences of -log p(window) / T estimates window_entropy(T)
 * (T = 8: H(pi_2)/8 + 6h/8, not h). Sequences are independent: plain
 * standard error over 50,000 of them, within 3 SE. */
static void test_markov_fill_window_sample(void)
{
    enum { S = 50000, T = 8 };
    dlm_markov_source *m;
    DLM_TEST_OK(dlm_markov_source_create(16, 2, 0.2, 'a', 2025, &m));
    double s = 0.0, s2 = 0.0, nll[T];
    int32_t x[T];
    for (int q = 0; q < S; q++) {
        dlm_markov_fill(m, DLM_HELDOUT_SAMPLE0 + (uint64_t)q, T, x);
        DLM_TEST_OK(dlm_markov_logprob(m, x, T, nll));
        double w = 0.0;
        for (int t = 0; t < T; t++) w += nll[t];
        w /= T;
        s += w, s2 += w * w;
    }
    double mean = s / S, se = sqrt((s2 / S - mean * mean) / (S - 1));
    double want = dlm_markov_window_entropy(m, T);
    printf("\n  fill T %d: window entropy %.6f (h %.6f), sample %.6f, se %.2g", T, want,
           m->entropy_rate, mean, se);
    DLM_TEST_NEAR(mean, want, 3 * se, "mean -log p(window)/T vs window entropy");
    dlm_markov_source_destroy(&m);
}

/* ---- Markov: generation ---- */

static int count_diff(const int32_t *a, const int32_t *b, int n)
{
    int d = 0;
    for (int i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

/* Same seed, same tokens; cutting the chain into calls changes nothing
 * (cuts below, at and above k); another seed or sample gives other tokens;
 * every token is an id of the source. */
static void test_markov_generate_determinism(void)
{
    enum { N = 1000 };
    const int32_t first = 1000;
    dlm_markov_source *m, *m2;
    DLM_TEST_OK(dlm_markov_source_create(16, 2, 0.2, first, 7, &m));
    DLM_TEST_OK(dlm_markov_source_create(16, 2, 0.2, first, 8, &m2));
    int32_t a[N], b[N], c[N];
    DLM_TEST_OK(dlm_markov_generate(m, 0, N, NULL, a));
    DLM_TEST_OK(dlm_markov_generate(m, 0, N, NULL, b));
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    const int cuts[] = {1, 2, 3, 500, 999};
    for (int j = 0; j < 5; j++) {
        int at = cuts[j], np = at < 2 ? at : 2;
        memset(c, 0, sizeof c);
        DLM_TEST_OK(dlm_markov_generate(m, 0, at, NULL, c));
        DLM_TEST_OK(dlm_markov_generate(m, at, N - at, c + at - np, c + at));
        CU_ASSERT(memcmp(a, c, sizeof a) == 0);
    }
    /* three pieces, the middle one shorter than k */
    DLM_TEST_OK(dlm_markov_generate(m, 0, 10, NULL, c));
    DLM_TEST_OK(dlm_markov_generate(m, 10, 1, c + 8, c + 10));
    DLM_TEST_OK(dlm_markov_generate(m, 11, N - 11, c + 9, c + 11));
    CU_ASSERT(memcmp(a, c, sizeof a) == 0);

    DLM_TEST_OK(dlm_markov_generate(m2, 0, N, NULL, b));
    CU_ASSERT(count_diff(a, b, N) > N / 2);
    int in_range = 1;
    for (int i = 0; i < N; i++) in_range &= a[i] >= first && a[i] < first + 16;
    for (int i = 0; i < N; i++) in_range &= b[i] >= first && b[i] < first + 16;

    /* fill: a pure function of (seed, sample), independent of the long chain */
    dlm_markov_fill(m, 5, N, b);
    dlm_markov_fill(m, 5, N, c);
    CU_ASSERT(memcmp(b, c, sizeof b) == 0);
    dlm_markov_fill(m, 6, N, c);
    CU_ASSERT(count_diff(b, c, N) > N / 2);
    CU_ASSERT(count_diff(a, b, N) > N / 2);
    dlm_markov_fill(m2, 5, N, c);
    CU_ASSERT(count_diff(b, c, N) > N / 2);
    for (int i = 0; i < N; i++) in_range &= b[i] >= first && b[i] < first + 16;
    for (int i = 0; i < N; i++) in_range &= c[i] >= first && c[i] < first + 16;
    CU_ASSERT(in_range);

    /* continuing without the context, or scoring a foreign id, is refused */
    CU_ASSERT(dlm_markov_generate(m, 5, 10, NULL, c) == DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "needs prev") != NULL);
    dlm_error_clear();
    a[3] = first + 16;
    double nll[N];
    CU_ASSERT(dlm_markov_logprob(m, a, N, nll) == DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "token 3 of the window is 1016") != NULL);
    dlm_error_clear();
    dlm_markov_source_destroy(&m);
    dlm_markov_source_destroy(&m2);
}

/* The description carries what metadata needs and the same window entropies. */
static void test_markov_describe(void)
{
    dlm_markov_source *m;
    DLM_TEST_OK(dlm_markov_source_create(3, 2, 0.25, 'a', 99, &m));
    dlm_source_info info;
    dlm_markov_describe(m, &info);
    CU_ASSERT(strcmp(info.kind, "markov") == 0);
    CU_ASSERT(info.n_symbols == 3 && info.order == 2 && info.alpha == 0.25 &&
              info.first_id == 'a' && info.seed == 99);
    CU_ASSERT(info.entropy_rate == dlm_markov_entropy_rate(m));
    for (int T = 1; T <= 10; T++)
        CU_ASSERT(dlm_source_window_entropy(&info, T) == dlm_markov_window_entropy(m, T));
    dlm_markov_source_destroy(&m);
    dlm_markov_source_destroy(&m); /* safe twice: the pointer is NULL */
    /* order 0 is i.i.d.: every window scores h, exactly */
    DLM_TEST_OK(dlm_markov_source_create(5, 0, 0.3, 'a', 99, &m));
    CU_ASSERT(m->n_states == 1 && m->joint_entropy[0] == 0.0);
    for (int T = 1; T <= 10; T++)
        DLM_TEST_NEAR(dlm_markov_window_entropy(m, T), m->entropy_rate, 1e-15, "order-0 window");
    dlm_markov_source_destroy(&m);
}

/* Each bad argument is refused with DLM_ERR_ARG and a message naming it. */
static void test_markov_bad_arguments(void)
{
    const struct {
        int n, k;
        double alpha;
        const char *names;
    } cases[] = {{16, 5, 0.2, "n^k contexts"},       /* 2^20 contexts */
                 {5000, 1, 0.2, "n^(k+1)"},           /* 2.5e7 table entries */
                 {16, 2, 0.0, "alpha"},
                 {16, 2, -1.0, "alpha"},
                 {16, 2, NAN, "alpha"},
                 {16, -1, 0.2, "order k"},
                 {16, 17, 0.2, "order k"},
                 {0, 1, 0.2, "symbol count n"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dlm_markov_source *m = (dlm_markov_source *)&m; /* create must set NULL */
        dlm_error_clear();
        CU_ASSERT(dlm_markov_source_create(cases[c].n, cases[c].k, cases[c].alpha, 0, 1, &m) ==
                  DLM_ERR_ARG);
        CU_ASSERT(m == NULL);
        if (!strstr(dlm_error_text(), cases[c].names))
            printf("\n  expected '%s' in: %s", cases[c].names, dlm_error_text());
        CU_ASSERT(strstr(dlm_error_text(), cases[c].names) != NULL);
        dlm_error_clear();
    }
}

/* ---- Markov: the exact posterior of masked positions ---- */

/* Against enumeration: for small chains (orders 0-3, windows shorter and
 * longer than the order) and every mask of a window, p(x_i = v | visible)
 * is the total probability of the windows that agree with the visible tokens
 * and have v at i, over that of those agreeing with the visible tokens
 * (window probabilities from the summed dlm_markov_logprob, itself checked
 * against the tables above). Agreement to 1e-11 in log space (the same
 * sums in another order). A bad unmasked id is refused with its index. */
static void test_markov_posterior_brute_force(void)
{
    const struct {
        int n, k, T;
        uint64_t seed;
    } cases[] = {{3, 2, 5, 41}, {2, 3, 6, 42}, {4, 1, 4, 43}, {3, 0, 3, 44}, {3, 3, 2, 45}};
    for (int c = 0; c < 5; c++) {
        dlm_markov_source *m;
        DLM_TEST_OK(dlm_markov_source_create(cases[c].n, cases[c].k, 0.3, 'a', cases[c].seed, &m));
        int n = m->n_symbols, T = cases[c].T;
        int64_t count = 1;
        for (int t = 0; t < T; t++) count *= n;
        double *pw = malloc((size_t)count * sizeof *pw), nll[8], post[8 * 4];
        int32_t x[8], y[8];
        for (int64_t w = 0; w < count; w++) { /* every window's probability */
            int64_t r = w;
            for (int t = T - 1; t >= 0; t--, r /= n) x[t] = 'a' + (int32_t)(r % n);
            DLM_TEST_OK(dlm_markov_logprob(m, x, T, nll));
            double lp = 0.0;
            for (int t = 0; t < T; t++) lp -= nll[t];
            pw[w] = exp(lp);
        }
        double worst = 0.0;
        for (int64_t w = 0; w < count; w += 3) /* a third of the windows, */
            for (int mask = 1; mask < 1 << T; mask++) { /* every mask of each */
                int64_t r = w;
                for (int t = T - 1; t >= 0; t--, r /= n) x[t] = 'a' + (int32_t)(r % n);
                uint8_t masked[8];
                for (int t = 0; t < T; t++) masked[t] = (mask >> t) & 1;
                int32_t shown[8];
                for (int t = 0; t < T; t++) shown[t] = masked[t] ? -7 : x[t]; /* ignored */
                DLM_TEST_OK(dlm_markov_posterior(m, shown, masked, T, post));
                for (int i = 0; i < T; i++) {
                    if (!masked[i]) continue;
                    double num[4] = {0}, den = 0.0;
                    for (int64_t u = 0; u < count; u++) {
                        int64_t q = u, ok = 1;
                        for (int t = T - 1; t >= 0; t--, q /= n) {
                            y[t] = 'a' + (int32_t)(q % n);
                            ok &= masked[t] || y[t] == x[t];
                        }
                        if (!ok) continue;
                        num[y[i] - 'a'] += pw[u];
                        den += pw[u];
                    }
                    for (int v = 0; v < n; v++)
                        worst = fmax(worst, fabs(post[i * n + v] - log(num[v] / den)));
                }
            }
        if (worst > 1e-11) printf("\n  n %d k %d T %d: worst %.3g", n, m->order, T, worst);
        DLM_TEST_BELOW(worst, 1e-11, "posterior vs enumeration (log)");
        uint8_t masked[8] = {1, 0};
        x[0] = 'a';
        x[1] = 'a' + n; /* outside the ids, and visible */
        dlm_error_clear();
        CU_ASSERT(dlm_markov_posterior(m, x, masked, T, post) == DLM_ERR_ARG);
        CU_ASSERT(strstr(dlm_error_text(), "unmasked token 1") != NULL);
        dlm_error_clear();
        free(pw);
        dlm_markov_source_destroy(&m);
    }
}

/* ---- i.i.d. ---- */

/* Uniform over 8 symbols has entropy ln 8: 1e-15 is a few ulps of 2.08. */
static void test_iid_closed_form(void)
{
    double p[8];
    for (int i = 0; i < 8; i++) p[i] = 1.0;
    dlm_iid_source s;
    DLM_TEST_OK(dlm_iid_source_init(&s, p, 8, 0, 3));
    DLM_TEST_NEAR(dlm_iid_entropy(&s), log(8.0), 1e-15, "entropy of uniform over 8");
    DLM_TEST_NEAR(dlm_iid_entropy_rate(&s), log(8.0), 1e-15, "entropy rate of uniform over 8");
    for (int T = 1; T <= 9; T += 4)
        DLM_TEST_NEAR(dlm_iid_window_entropy(&s, T), log(8.0), 1e-15, "window entropy");
    dlm_source_info info;
    dlm_iid_describe(&s, &info);
    CU_ASSERT(strcmp(info.kind, "iid") == 0 && info.order == 0 && info.n_symbols == 8);
    DLM_TEST_NEAR(dlm_source_window_entropy(&info, 5), log(8.0), 1e-15, "described window entropy");
    /* the default source: p_i = 0.75^i (1 - 0.75) / (1 - 0.75^16), H in closed form */
    dlm_iid_source d;
    dlm_iid_source_default(&d, 1);
    double r = 0.75, z = (1 - pow(r, 16)) / (1 - r), H = log(z), m1 = 0.0;
    for (int i = 0; i < 16; i++) m1 += i * pow(r, i) / z;
    H -= m1 * log(r);
    DLM_TEST_NEAR(dlm_iid_entropy(&d), H, 1e-14, "entropy of the default source");
}

/* The i.i.d. default source's mean -log p over 1,000,000 tokens (1000
 * sequences, batch = 10 sequences, 100 batches) matches H within 3 SE. */
static void test_iid_entropy_sample(void)
{
    enum { NB = 100, SEQ = 10, T = 1000 };
    dlm_iid_source s;
    dlm_iid_source_default(&s, 4);
    int32_t x[T];
    double nll[T], bm[NB];
    for (int b = 0; b < NB; b++) {
        double sum = 0.0;
        for (int q = 0; q < SEQ; q++) {
            dlm_iid_fill(&s, (uint64_t)(b * SEQ + q), T, x);
            DLM_TEST_OK(dlm_iid_logprob(&s, x, T, nll));
            for (int i = 0; i < T; i++) sum += nll[i];
        }
        bm[b] = sum / (SEQ * T);
    }
    double mean, se;
    batch_stats(bm, NB, &mean, &se);
    printf("\n  iid default: H %.6f, sample mean %.6f, se %.2g", dlm_iid_entropy(&s), mean, se);
    DLM_TEST_NEAR(mean, dlm_iid_entropy(&s), 3 * se, "mean -log p vs H");
    x[7] = 'a' + 16;
    CU_ASSERT(dlm_iid_logprob(&s, x, T, nll) == DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "token 7") != NULL);
    dlm_error_clear();
}

int main(int argc, char **argv)
{
    static const dlm_test_case markov[] = {
        {"rows sum to 1 and pi P = pi", test_markov_stationary},
        {"rows are Dirichlet(alpha)", test_markov_dirichlet_rows},
        {"window entropy vs enumeration", test_markov_window_entropy_brute_force},
        {"entropy rate vs a long sample", test_markov_entropy_rate_sample},
        {"fill windows vs window entropy", test_markov_fill_window_sample},
        {"generation is deterministic and resumable", test_markov_generate_determinism},
        {"description", test_markov_describe},
        {"bad arguments", test_markov_bad_arguments},
        {"posterior of masked positions vs enumeration", test_markov_posterior_brute_force},
        {NULL, NULL}};
    static const dlm_test_case iid[] = {{"entropy closed forms", test_iid_closed_form},
                                        {"entropy vs a sample", test_iid_entropy_sample},
                                        {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"markov", markov}, {"iid", iid}, {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
