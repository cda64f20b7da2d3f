/* Synthetic token sources with exact entropy: i.i.d. with given
 * probabilities, and order-k Markov chains with Dirichlet-drawn rows, their
 * stationary distribution, entropy rate, window entropy and true log-likelihood. */
#include "io/synthetic.h"

#include <math.h>
#include <stdlib.h>

#include "core/rng.h"

/* Counter steps of the Markov streams (see the header's table). */
#define STEP_ROWS 0xFFFFFFFFu  /* Marsaglia-Tsang normals and uniforms */
#define STEP_BOOST 0xFFFFFFFEu /* the U^(1/alpha) of the alpha < 1 boost */
#define STEP_CHAIN 0xFFFFFFFDu /* the long chain of dlm_markov_generate */
#define FILL_TAG 0x80000000u   /* position bit: Markov fill, not i.i.d. fill */

/* Power iteration stops when ||pi P - pi||_1 < TOL: about what "pi P = pi"
 * can mean in double over up to 65536 states. */
#define STATIONARY_TOL 1e-14

/* ---- any source ---- */

double dlm_source_window_entropy(const dlm_source_info *info, int T)
{
    if (T < 1) return NAN;
    int k = info->order;
    if (T < k) return info->joint_entropy[T] / T;
    return (info->joint_entropy[k] + (double)(T - k) * info->entropy_rate) / T;
}

/* ---- i.i.d. source ---- */

dlm_status dlm_iid_source_init(dlm_iid_source *s, const double *prob, int n, int32_t first_id,
                               uint64_t seed)
{
    DLM_CHECK(n >= 1 && n <= DLM_IID_MAX_SYMBOLS, DLM_ERR_ARG,
              "i.i.d. source needs 1..%d symbols, got %d", DLM_IID_MAX_SYMBOLS, n);
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        DLM_CHECK(prob[i] >= 0.0 && isfinite(prob[i]), DLM_ERR_ARG,
                  "probability %d of the i.i.d. source is %g", i, prob[i]);
        total += prob[i];
    }
    DLM_CHECK(total > 0.0, DLM_ERR_ARG, "i.i.d. source probabilities sum to 0");
    s->n_symbols = n;
    s->first_id = first_id;
    s->seed = seed;
    double c = 0.0;
    for (int i = 0; i < n; i++) {
        s->prob[i] = prob[i] / total;
        c += s->prob[i];
        s->cdf[i] = c;
    }
    s->cdf[n - 1] = 1.0;
    return DLM_OK;
}

void dlm_iid_source_default(dlm_iid_source *s, uint64_t seed)
{
    double p[16];
    for (int i = 0; i < 16; i++) p[i] = pow(0.75, i);
    dlm_iid_source_init(s, p, 16, 'a', seed);
}

double dlm_iid_entropy(const dlm_iid_source *s)
{
    double h = 0.0;
    for (int i = 0; i < s->n_symbols; i++)
        if (s->prob[i] > 0.0) h -= s->prob[i] * log(s->prob[i]);
    return h;
}

double dlm_iid_entropy_rate(const dlm_iid_source *s) { return dlm_iid_entropy(s); }

double dlm_iid_window_entropy(const dlm_iid_source *s, int T)
{
    return T < 1 ? NAN : dlm_iid_entropy(s);
}

void dlm_iid_describe(const dlm_iid_source *s, dlm_source_info *out)
{
    *out = (dlm_source_info){.kind = "iid", .n_symbols = s->n_symbols, .order = 0,
                             .alpha = 0.0, .first_id = s->first_id, .seed = s->seed,
                             .entropy_rate = dlm_iid_entropy(s)};
}

void dlm_iid_fill(const dlm_iid_source *s, uint64_t sample, int T, int32_t *out)
{
    for (int i = 0; i < T; i++) {
        double u = dlm_rng_uniform(s->seed, (uint32_t)(sample >> 32), (uint32_t)sample,
                                   (uint32_t)i, DLM_RNG_DATA);
        int k = 0;
        while (k < s->n_symbols - 1 && u >= s->cdf[k]) k++;
        out[i] = s->first_id + k;
    }
}

dlm_status dlm_iid_logprob(const dlm_iid_source *s, const int32_t *x, int64_t n,
                           double *per_token)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)x[i] - s->first_id;
        DLM_CHECK(v >= 0 && v < s->n_symbols && s->prob[v] > 0.0, DLM_ERR_ARG,
                  "token %lld of the window is %d, which the i.i.d. source (ids %d..%d) "
                  "never emits", (long long)i, (int)x[i], (int)s->first_id,
                  (int)(s->first_id + s->n_symbols - 1));
        per_token[i] = -log(s->prob[v]);
    }
    return DLM_OK;
}

/* ---- Markov source: the rows ---- */

/* log of a Gamma(a, 1) variate for table entry `entry`. Marsaglia & Tsang
 * (2000) for shape >= 1; for a < 1 the boost Gamma(a) = Gamma(a+1) U^(1/a),
 * kept in logs because U^(1/a) underflows for small a. */
static double log_gamma_variate(uint64_t seed, uint32_t entry, double a)
{
    double shape = a < 1.0 ? a + 1.0 : a;
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    double lg;
    for (uint32_t attempt = 0;; attempt++) {
        double x = dlm_rng_normal(seed, STEP_ROWS, 2 * attempt, entry, DLM_RNG_DATA);
        double v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = dlm_rng_uniform(seed, STEP_ROWS, 2 * attempt + 1, entry, DLM_RNG_DATA);
        if (u < 1.0 - 0.0331 * (x * x) * (x * x) ||
            log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) {
            lg = log(d * v);
            break;
        }
    }
    if (a < 1.0) {
        double u = 1.0 - dlm_rng_uniform(seed, STEP_BOOST, 0, entry, DLM_RNG_DATA); /* (0, 1] */
        lg += log(u) / a;
    }
    return lg;
}

/* Row s = normalised Gamma variates: a Dirichlet(alpha) draw. Normalised
 * from the largest log so a row never underflows to all zeros, and floored
 * at 1e-300 so every log p is finite. */
static void draw_row(dlm_markov_source *m, int64_t s, double *lg)
{
    int n = m->n_symbols;
    double *row = m->rows + s * n;
    double top = -INFINITY;
    for (int x = 0; x < n; x++) {
        lg[x] = log_gamma_variate(m->seed, (uint32_t)(s * n + x), m->alpha);
        if (lg[x] > top) top = lg[x];
    }
    double total = 0.0;
    for (int x = 0; x < n; x++) {
        row[x] = fmax(exp(lg[x] - top), 1e-300);
        total += row[x];
    }
    for (int x = 0; x < n; x++) row[x] /= total;
}

/* ---- Markov source: the stationary distribution ---- */

/* pi by GTH elimination (Grassmann, Taksar & Heyman 1985) on the dense
 * N x N k-tuple chain: no subtraction anywhere, so every pi(s) comes out
 * with full relative accuracy even for the nearly decomposable chains small
 * alpha makes (a near-deterministic cycle that traps the chain for 1e5 steps
 * stalls power iteration for as long). O(N^3) at worst, but the fill-in
 * grows with n: used up to GTH_MAX_STATES contexts, and up to
 * GTH_MAX_STATES_SMALL_N for n <= 4, the alphabets whose chains trap (at 4096
 * contexts ~1 s and 128 MB for n = 4; n = 64, k = 2 would take 4 s and power
 * iteration handles it in ~50 sweeps). */
#define GTH_MAX_STATES 1024
#define GTH_MAX_STATES_SMALL_N 4096

static dlm_status stationary_gth(dlm_markov_source *m)
{
    int n = m->n_symbols;
    int64_t N = m->n_states, stride = N / n; /* n^(k-1): weight of the oldest symbol */
    double *A = calloc((size_t)(N * N), sizeof *A); /* (N, N): A[s*N + t] = P(s -> t) */
    DLM_CHECK(A, DLM_ERR_NOMEM, "Markov source: no memory for the %lld x %lld elimination",
              (long long)N, (long long)N);
    for (int64_t s = 0; s < N; s++)
        for (int x = 0; x < n; x++) A[s * N + (s % stride) * n + x] = m->rows[s * n + x];
    /* fold state j into states 0..j-1; a state's row mass towards the lower
     * states is what it passes on when the chain leaves it */
    for (int64_t j = N - 1; j > 0; j--) {
        double *Aj = A + j * N, out = 0.0;
        for (int64_t i = 0; i < j; i++) out += Aj[i];
        if (!(out > 0.0)) {
            free(A);
            DLM_CHECK(0, DLM_ERR_NUMERIC,
                      "Markov source (n %d, k %d, alpha %g, seed %llu): context %lld cannot "
                      "leave the upper states in double precision; use a larger alpha",
                      n, m->order, m->alpha, (unsigned long long)m->seed, (long long)j);
        }
        for (int64_t i = 0; i < j; i++) {
            double *Ai = A + i * N;
            double f = Ai[j] / out;
            Ai[j] = f;
            if (f == 0.0) continue; /* the chain is sparse early on */
            for (int64_t t = 0; t < j; t++) Ai[t] += f * Aj[t];
        }
    }
    double *pi = m->stationary, total = 1.0;
    pi[0] = 1.0;
    for (int64_t j = 1; j < N; j++) {
        double v = 0.0;
        for (int64_t i = 0; i < j; i++) v += pi[i] * A[i * N + j];
        pi[j] = v;
        total += v;
    }
    for (int64_t s = 0; s < N; s++) pi[s] /= total;
    free(A);
    m->power_iterations = 0;
    return DLM_OK;
}

/* pi by power iteration on the lazy chain (I + P)/2 (the same fixed point,
 * but near-periodic chains converge instead of oscillating), stopping when
 * ||pi P - pi||_1 < STATIONARY_TOL. Pushed forward row by row: context s
 * emitting x moves to (s mod n^(k-1)) n + x, so the n targets of a row are
 * adjacent. The cap bounds the work (iterations x table entries) at ~2^32. */
static dlm_status stationary_power(dlm_markov_source *m, double *next)
{
    int n = m->n_symbols;
    int64_t N = m->n_states, stride = N / n;
    int64_t cap = ((int64_t)1 << 32) / (N * n);
    cap = cap < 1000 ? 1000 : cap > 200000 ? 200000 : cap;
    double *pi = m->stationary;
    for (int64_t s = 0; s < N; s++) pi[s] = 1.0 / (double)N;
    double resid = INFINITY;
    for (int64_t it = 1; it <= cap; it++) {
        for (int64_t t = 0; t < N; t++) next[t] = 0.0;
        for (int64_t s = 0; s < N; s++) {
            const double *row = m->rows + s * n;
            double *to = next + (s % stride) * n, w = pi[s];
            for (int x = 0; x < n; x++) to[x] += w * row[x];
        }
        resid = 0.0;
        for (int64_t t = 0; t < N; t++) resid += fabs(next[t] - pi[t]);
        if (resid < STATIONARY_TOL) {
            m->power_iterations = (int)it;
            return DLM_OK;
        }
        double total = 0.0;
        for (int64_t t = 0; t < N; t++) total += (next[t] = 0.5 * (pi[t] + next[t]));
        for (int64_t t = 0; t < N; t++) pi[t] = next[t] / total;
    }
    DLM_CHECK(0, DLM_ERR_NUMERIC,
              "Markov source (n %d, k %d, alpha %g, seed %llu): the stationary distribution "
              "did not converge in %lld power iterations (L1 residual %.3g, wanted < %.0e); "
              "this chain mixes too slowly (a near-deterministic cycle traps it): use a larger "
              "alpha, another seed, or at most %d contexts (%d for n <= 4), which are solved "
              "exactly", n, m->order, m->alpha, (unsigned long long)m->seed, (long long)cap,
              resid, STATIONARY_TOL, GTH_MAX_STATES, GTH_MAX_STATES_SMALL_N);
    return DLM_OK;
}

static dlm_status solve_stationary(dlm_markov_source *m, double *next)
{
    if (m->order == 0) {
        m->stationary[0] = 1.0;
        m->power_iterations = 0;
        return DLM_OK;
    }
    int exact = m->n_states <= GTH_MAX_STATES ||
                (m->n_symbols <= 4 && m->n_states <= GTH_MAX_STATES_SMALL_N);
    if (exact) DLM_CALL(stationary_gth(m));
    else DLM_CALL(stationary_power(m, next));
    return DLM_OK;
}

static double entropy(const double *p, int64_t n)
{
    double h = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (p[i] > 0.0) h -= p[i] * log(p[i]);
    return h;
}

/* ---- Markov source: create and destroy ---- */

dlm_status dlm_markov_source_create(int n, int k, double alpha, int32_t first_id, uint64_t seed,
                                    dlm_markov_source **out)
{
    *out = NULL;
    DLM_CHECK(n >= 1, DLM_ERR_ARG, "Markov source: the symbol count n must be >= 1, got %d", n);
    DLM_CHECK(k >= 0 && k <= DLM_MARKOV_MAX_ORDER, DLM_ERR_ARG,
              "Markov source: the order k must be 0..%d, got %d", DLM_MARKOV_MAX_ORDER, k);
    DLM_CHECK(alpha > 0.0 && isfinite(alpha), DLM_ERR_ARG,
              "Markov source: the Dirichlet concentration alpha must be > 0 and finite, got %g",
              alpha);
    DLM_CHECK((int64_t)first_id + n - 1 <= INT32_MAX, DLM_ERR_ARG,
              "Markov source: ids first_id %d .. first_id + n - 1 (n %d) overflow int32",
              (int)first_id, n);
    int64_t states = 1;
    for (int t = 0; t < k; t++) {
        states *= n;
        DLM_CHECK(states <= DLM_MARKOV_MAX_STATES, DLM_ERR_ARG,
                  "Markov source: n^k contexts (n %d, order k %d) exceed %d; lower the order k "
                  "or the symbol count n", n, k, DLM_MARKOV_MAX_STATES);
    }
    DLM_CHECK(states * n <= DLM_MARKOV_MAX_ENTRIES, DLM_ERR_ARG,
              "Markov source: the transition table n^(k+1) = %lld entries (n %d, order k %d) "
              "exceeds %lld; lower the symbol count n or the order k",
              (long long)(states * n), n, k, (long long)DLM_MARKOV_MAX_ENTRIES);

    dlm_markov_source *m = calloc(1, sizeof *m);
    DLM_CHECK(m, DLM_ERR_NOMEM, "Markov source: no memory for the source");
    m->n_symbols = n;
    m->order = k;
    m->alpha = alpha;
    m->first_id = first_id;
    m->seed = seed;
    m->n_states = states;
    /* one table: rows (N n), then marginal[k] = stationary (N), then marginal[0..k-1] */
    int64_t count = states * n + states, width = 1;
    for (int t = 0; t < k; t++, width *= n) count += width;
    m->table_ = malloc((size_t)count * sizeof(double));
    /* the draw_row logs (n) and then the power iteration's next vector (N) */
    double *scratch = malloc((size_t)(states > n ? states : n) * sizeof(double));
    dlm_status st = DLM_OK;
    if (!m->table_ || !scratch) {
        st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                            "Markov source: no memory for %lld table entries (n %d, k %d)",
                            (long long)count, n, k);
        goto fail;
    }
    m->rows = m->table_;
    m->stationary = m->rows + states * n;
    m->marginal[k] = m->stationary;
    double *p = m->stationary + states;
    width = 1;
    for (int t = 0; t < k; t++, width *= n) {
        m->marginal[t] = p;
        p += width;
    }

    for (int64_t s = 0; s < states; s++) draw_row(m, s, scratch);
    DLM_CALL_GOTO(st, solve_stationary(m, scratch), fail);

    /* marginal[t][prefix] sums the next finer marginal in symbol order, the
     * order generation scans it in, so a prefix's mass is exactly the sum of
     * its children's. */
    width = states;
    for (int t = k - 1; t >= 0; t--) {
        width /= n;
        for (int64_t q = 0; q < width; q++) {
            double total = 0.0;
            for (int x = 0; x < n; x++) total += m->marginal[t + 1][q * n + x];
            m->marginal[t][q] = total;
        }
    }
    m->entropy_rate = 0.0;
    for (int64_t s = 0; s < states; s++)
        m->entropy_rate += m->stationary[s] * entropy(m->rows + s * n, n);
    width = 1;
    for (int t = 0; t <= k; t++, width *= n) m->joint_entropy[t] = entropy(m->marginal[t], width);

    free(scratch);
    *out = m;
    return DLM_OK;
fail:
    free(scratch);
    dlm_markov_source_destroy(&m);
    return st;
}

void dlm_markov_source_destroy(dlm_markov_source **s)
{
    if (!s || !*s) return;
    free((*s)->table_);
    free(*s);
    *s = NULL;
}

/* ---- Markov source: entropies ---- */

double dlm_markov_entropy_rate(const dlm_markov_source *s) { return s->entropy_rate; }

void dlm_markov_describe(const dlm_markov_source *s, dlm_source_info *out)
{
    *out = (dlm_source_info){.kind = "markov", .n_symbols = s->n_symbols, .order = s->order,
                             .alpha = s->alpha, .first_id = s->first_id, .seed = s->seed,
                             .entropy_rate = s->entropy_rate};
    for (int t = 0; t <= s->order; t++) out->joint_entropy[t] = s->joint_entropy[t];
}

double dlm_markov_window_entropy(const dlm_markov_source *s, int T)
{
    dlm_source_info info;
    dlm_markov_describe(s, &info);
    return dlm_source_window_entropy(&info, T);
}

/* ---- Markov source: sampling and scoring ---- */

/* Where a chain is: how many symbols it has emitted (`len`) and the base-n
 * number of the last min(len, k) of them (`ctx`). Below k symbols the next
 * one follows the stationary marginal, above it the chain's row. */
typedef struct {
    int64_t len;
    int64_t ctx;
} chain_pos;

/* p(x | position) as the numerator and denominator of the exact conditional. */
static inline const double *next_law(const dlm_markov_source *m, chain_pos c, double *mass)
{
    int n = m->n_symbols;
    if (c.len < m->order) {
        *mass = m->marginal[c.len][c.ctx];
        return m->marginal[c.len + 1] + c.ctx * n;
    }
    *mass = 1.0;
    return m->rows + c.ctx * n;
}

static inline void advance(const dlm_markov_source *m, chain_pos *c, int x)
{
    c->ctx = c->ctx * m->n_symbols + x;
    if (c->len >= m->order) c->ctx %= m->n_states;
    c->len++;
}

/* Inverse CDF: the first symbol whose cumulative mass exceeds u * mass. If
 * rounding leaves u * mass above the row's total, the last symbol (every
 * row entry is > 0; a marginal's zero-mass tail is skipped). */
static inline int draw_symbol(const double *law, double mass, int n, double u)
{
    double target = u * mass, c = 0.0;
    int last = n - 1;
    for (int x = 0; x < n; x++) {
        if (law[x] <= 0.0) continue;
        c += law[x];
        last = x;
        if (target < c) return x;
    }
    return last;
}

dlm_status dlm_markov_generate(const dlm_markov_source *s, int64_t start, int64_t n,
                               const int32_t *prev, int32_t *out)
{
    DLM_CHECK(start >= 0 && n >= 0, DLM_ERR_ARG,
              "Markov generate: start (%lld) and n (%lld) must be >= 0", (long long)start,
              (long long)n);
    int64_t nprev = start < s->order ? start : s->order;
    DLM_CHECK(nprev == 0 || prev, DLM_ERR_ARG,
              "Markov generate: continuing at token %lld needs prev, the %lld tokens before it",
              (long long)start, (long long)nprev);
    chain_pos c = {.len = start - nprev, .ctx = 0};
    for (int64_t j = 0; j < nprev; j++) {
        int64_t v = (int64_t)prev[j] - s->first_id;
        DLM_CHECK(v >= 0 && v < s->n_symbols, DLM_ERR_ARG,
                  "Markov generate: prev[%lld] is %d, outside the source's ids %d..%d",
                  (long long)j, (int)prev[j], (int)s->first_id,
                  (int)(s->first_id + s->n_symbols - 1));
        advance(s, &c, (int)v);
    }
    for (int64_t j = 0; j < n; j++) {
        uint64_t i = (uint64_t)(start + j);
        double mass;
        const double *law = next_law(s, c, &mass);
        double u = dlm_rng_uniform(s->seed, STEP_CHAIN, (uint32_t)(i >> 32), (uint32_t)i,
                                   DLM_RNG_DATA);
        int x = draw_symbol(law, mass, s->n_symbols, u);
        out[j] = s->first_id + x;
        advance(s, &c, x);
    }
    return DLM_OK;
}

void dlm_markov_fill(const dlm_markov_source *s, uint64_t sample, int T, int32_t *out)
{
    chain_pos c = {0, 0};
    for (int t = 0; t < T; t++) {
        double mass;
        const double *law = next_law(s, c, &mass);
        double u = dlm_rng_uniform(s->seed, (uint32_t)(sample >> 32), (uint32_t)sample,
                                   FILL_TAG | (uint32_t)t, DLM_RNG_DATA);
        int x = draw_symbol(law, mass, s->n_symbols, u);
        out[t] = s->first_id + x;
        advance(s, &c, x);
    }
}

dlm_status dlm_markov_logprob(const dlm_markov_source *s, const int32_t *x, int64_t n,
                              double *per_token)
{
    chain_pos c = {0, 0};
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)x[i] - s->first_id;
        DLM_CHECK(v >= 0 && v < s->n_symbols, DLM_ERR_ARG,
                  "Markov logprob: token %lld of the window is %d, outside the source's ids "
                  "%d..%d", (long long)i, (int)x[i], (int)s->first_id,
                  (int)(s->first_id + s->n_symbols - 1));
        double mass;
        const double *law = next_law(s, c, &mass);
        /* a zero-mass prefix needs a stationary mass below 1e-308: not for sane alpha */
        per_token[i] = law[v] > 0.0 ? log(mass) - log(law[v]) : INFINITY;
        advance(s, &c, (int)v);
    }
    return DLM_OK;
}

/* ---- Markov source: the exact posterior of masked positions ---- */

/* 1 if symbol v may stand at position i (masked, or the token there). */
static inline int admits(const dlm_markov_source *s, const int32_t *x, const uint8_t *masked,
                         int i, int v)
{
    return masked[i] || x[i] - s->first_id == v;
}

/* The state at position i >= m-1 is the base-n number of x_{i-m+1..i}
 * (m = min(k, T)); fwd[i] and bwd[i] are the forward and backward messages
 * over those states, each normalised to sum 1 (only ratios matter). The first
 * m symbols follow the stationary marginal, the rest the chain's rows. */
dlm_status dlm_markov_posterior(const dlm_markov_source *s, const int32_t *x,
                                const uint8_t *masked, int T, double *logpost)
{
    DLM_CHECK(T >= 1, DLM_ERR_ARG, "Markov posterior: window length %d must be >= 1", T);
    int n = s->n_symbols;
    for (int i = 0; i < T; i++)
        DLM_CHECK(masked[i] || (x[i] >= s->first_id && x[i] - s->first_id < n), DLM_ERR_ARG,
                  "Markov posterior: unmasked token %d of the window is %d, outside the "
                  "source's ids %d..%d", i, (int)x[i], (int)s->first_id,
                  (int)(s->first_id + n - 1));
    if (s->order == 0) { /* i.i.d.: the row itself, whatever else is seen */
        for (int i = 0; i < T; i++)
            if (masked[i])
                for (int v = 0; v < n; v++) logpost[(int64_t)i * n + v] = log(s->rows[v]);
        return DLM_OK;
    }
    int m = T < s->order ? T : s->order;
    int64_t S = 1;
    for (int j = 0; j < m; j++) S *= n;
    int64_t lead = S / n; /* n^(m-1): the weight of a state's oldest symbol */
    double *fwd = malloc((size_t)T * S * sizeof *fwd), *bwd = malloc((size_t)T * S * sizeof *bwd);
    dlm_status st = DLM_OK;
    if (!fwd || !bwd) {
        st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                            "Markov posterior: no memory for 2 x %d x %lld messages", T,
                            (long long)S);
        goto done;
    }
    /* forward: the first m symbols jointly, then one chain step per position */
    double *f = fwd + (int64_t)(m - 1) * S, z = 0.0;
    for (int64_t q = 0; q < S; q++) {
        int ok = 1;
        for (int64_t j = 0, scale = 1; j < m; j++, scale *= n) /* digit j from the right: x_{m-1-j} */
            ok &= admits(s, x, masked, (int)(m - 1 - j), (int)(q / scale % n));
        z += f[q] = ok ? s->marginal[m][q] : 0.0;
    }
    for (int i = m; i < T && z > 0.0; i++) { /* here m = k: the chain's rows apply */
        const double *prev = fwd + (int64_t)(i - 1) * S;
        f = fwd + (int64_t)i * S;
        for (int64_t q = 0; q < S; q++) f[q] = 0.0;
        for (int64_t q = 0; q < S; q++) {
            if (prev[q] == 0.0) continue;
            const double *row = s->rows + q * n;
            int64_t next = (q % lead) * n;
            for (int v = 0; v < n; v++)
                if (admits(s, x, masked, i, v)) f[next + v] += prev[q] * row[v];
        }
        z = 0.0;
        for (int64_t q = 0; q < S; q++) z += f[q];
        for (int64_t q = 0; q < S && z > 0.0; q++) f[q] /= z;
    }
    if (!(z > 0.0)) {
        st = dlm_error_push(DLM_ERR_NUMERIC, __FILE__, __LINE__, __func__,
                            "Markov posterior: the visible tokens have probability 0 under "
                            "the source (a stationary mass below double precision)");
        goto done;
    }
    double *b = bwd + (int64_t)(T - 1) * S;
    for (int64_t q = 0; q < S; q++) b[q] = 1.0;
    for (int i = T - 2; i >= m - 1; i--) {
        const double *after = bwd + (int64_t)(i + 1) * S;
        b = bwd + (int64_t)i * S;
        z = 0.0;
        for (int64_t q = 0; q < S; q++) {
            const double *row = s->rows + q * n;
            int64_t next = (q % lead) * n;
            double acc = 0.0;
            for (int v = 0; v < n; v++)
                if (admits(s, x, masked, i + 1, v)) acc += row[v] * after[next + v];
            z += b[q] = acc;
        }
        for (int64_t q = 0; q < S; q++) b[q] /= z;
    }
    /* posterior of x_i: position max(i, m-1)'s state marginal, grouped by x_i's digit */
    for (int i = 0; i < T; i++) {
        if (!masked[i]) continue;
        int at = i > m - 1 ? i : m - 1;
        int64_t scale = 1; /* x_i is digit at - i from the right of the state at `at` */
        for (int j = i; j < at; j++) scale *= n;
        double *out = logpost + (int64_t)i * n, total = 0.0;
        for (int v = 0; v < n; v++) out[v] = 0.0;
        const double *fa = fwd + (int64_t)at * S, *ba = bwd + (int64_t)at * S;
        for (int64_t q = 0; q < S; q++) out[q / scale % n] += fa[q] * ba[q];
        for (int v = 0; v < n; v++) total += out[v];
        for (int v = 0; v < n; v++) out[v] = log(out[v] / total);
    }
done:
    free(fwd);
    free(bwd);
    return st;
}
