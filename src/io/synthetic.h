/* Built-in synthetic token sources whose entropy is known exactly, so a
 * trained model's loss (or a likelihood bound) can be checked against the
 * truth: an i.i.d. source with given probabilities, and order-k Markov
 * chains whose transition rows are drawn from a seeded Dirichlet.
 *
 *     dlm_markov_source *src;
 *     DLM_CALL(dlm_markov_source_create(16, 2, 0.2, 'a', seed, &src));
 *     dlm_markov_fill(src, sample, T, x);            // x is (T), stationary start
 *     double h  = dlm_markov_entropy_rate(src);       // nats/token, T -> infinity
 *     double hT = dlm_markov_window_entropy(src, T);  // H(x_1..x_T) / T, what a
 *                                                     // perfect model scores on x
 *     DLM_CALL(dlm_markov_logprob(src, x, T, nll));   // -log p_true per token
 *     dlm_markov_source_destroy(&src);
 *
 * Randomness: every draw is dlm_rng_* with purpose DLM_RNG_DATA keyed by the
 * source's seed. Counter fields (step, sample, position):
 *   i.i.d. sequence s, token t:     (s >> 32, s, t)            t < 2^31
 *   Markov fill, sequence s, t:     (s >> 32, s, 2^31 | t)     t < 2^31
 *   Markov long chain, token i:     (0xFFFFFFFD, i >> 32, i)
 *   Markov rows (Gamma variates):   (0xFFFFFFFE / 0xFFFFFFFF, attempt, entry)
 * so none of these streams overlaps another for sequence indices s < 2^63. */
#ifndef DLM_SYNTHETIC_H
#define DLM_SYNTHETIC_H

#include <stdint.h>

#include "core/status.h"

/* Held-out sequences start here, far from any training sample index. */
#define DLM_HELDOUT_SAMPLE0 (UINT64_C(1) << 40)

/* ---- what any source is, for run metadata ---- */

#define DLM_MARKOV_MAX_ORDER 16                /* n >= 2 and n^k <= 65536 bound k */
#define DLM_MARKOV_MAX_STATES 65536            /* contexts n^k */
#define DLM_MARKOV_MAX_ENTRIES (INT64_C(1) << 24) /* transition table n^(k+1) */

typedef struct {
    const char *kind;    /* "iid" or "markov" (a static string) */
    int n_symbols;       /* n: token ids first_id .. first_id+n-1 */
    int order;           /* k: symbols of context; 0 for "iid" */
    double alpha;        /* Dirichlet concentration of the rows; meaningful for "markov"
                          * only (an "iid" source's probabilities are given, reported as 0) */
    int32_t first_id;
    uint64_t seed;
    double entropy_rate; /* h, nats per token: lim H(x_1..x_T) / T */
    /* H(x_1..x_t) in nats (a total, not per token) for t = 0..order, of the
     * stationary start; beyond the order every token adds entropy_rate. */
    double joint_entropy[DLM_MARKOV_MAX_ORDER + 1];
} dlm_source_info;

/* H(x_1..x_T) / T in nats per token for a window of T >= 1 tokens from a
 * stationary start: what a perfect model of the source scores on that
 * window. NAN if T < 1. */
double dlm_source_window_entropy(const dlm_source_info *info, int T);

/* ---- i.i.d. source ---- */

#define DLM_IID_MAX_SYMBOLS 256

/* Tokens i.i.d. from a fixed distribution over ids first_id .. first_id+n-1. */
typedef struct {
    int n_symbols;
    int32_t first_id;
    double prob[DLM_IID_MAX_SYMBOLS];
    double cdf[DLM_IID_MAX_SYMBOLS];
    uint64_t seed;
} dlm_iid_source;

dlm_status dlm_iid_source_init(dlm_iid_source *s, const double *prob, int n, int32_t first_id,
                               uint64_t seed);
/* The default demo source: 16 letters 'a'..'p' with p_i proportional to 0.75^i. */
void dlm_iid_source_default(dlm_iid_source *s, uint64_t seed);
/* Entropy in nats per token: what a perfect model scores. */
double dlm_iid_entropy(const dlm_iid_source *s);
/* The same number under the names every source has (any T >= 1). */
double dlm_iid_entropy_rate(const dlm_iid_source *s);
double dlm_iid_window_entropy(const dlm_iid_source *s, int T);
void dlm_iid_describe(const dlm_iid_source *s, dlm_source_info *out);
/* The T tokens of sequence `sample` (a pure function of seed and sample). */
void dlm_iid_fill(const dlm_iid_source *s, uint64_t sample, int T, int32_t *out);
/* per_token (n) = -log p(x_i); DLM_ERR_ARG naming the index if a token is
 * outside the source's ids (or has probability 0). */
dlm_status dlm_iid_logprob(const dlm_iid_source *s, const int32_t *x, int64_t n,
                           double *per_token);

/* ---- order-k Markov source ---- */

/* x_i depends on the k tokens before it (its context). A context is the
 * base-n number of its symbols (ids minus first_id), oldest most significant:
 * s = x_{i-k} n^(k-1) + ... + x_{i-1}. Every table is filled by create and
 * read-only afterwards; all probabilities are > 0, so every log p is finite. */
typedef struct {
    int n_symbols;        /* n */
    int order;            /* k (0 is an i.i.d. source with a Dirichlet-drawn distribution) */
    double alpha;         /* symmetric Dirichlet concentration of each row */
    int32_t first_id;
    uint64_t seed;
    int64_t n_states;     /* n^k contexts */
    double *rows;         /* (n_states, n): rows[s*n + x] = p(x | context s), each row sums to 1 */
    double *stationary;   /* (n_states): pi, the stationary distribution of the k-tuple */
    /* marginal[t] is (n^t): the law of the first t symbols of the stationary
     * k-tuple, t = 0..k (marginal[0] = {1}, marginal[k] = stationary). */
    double *marginal[DLM_MARKOV_MAX_ORDER + 1];
    double entropy_rate;  /* h = sum_s pi(s) H(rows[s]), nats */
    double joint_entropy[DLM_MARKOV_MAX_ORDER + 1]; /* H(marginal[t]), nats */
    int power_iterations; /* how many pi took; 0: solved exactly by elimination */
    double *table_;       /* the one allocation the pointers above view */
} dlm_markov_source;

/* Draws the n^k rows from Dirichlet(alpha, ..., alpha) keyed by seed and
 * solves for the stationary distribution. DLM_ERR_ARG (naming the argument)
 * unless n >= 1, 0 <= k <= DLM_MARKOV_MAX_ORDER, alpha > 0, n^k <=
 * DLM_MARKOV_MAX_STATES, n^(k+1) <= DLM_MARKOV_MAX_ENTRIES and the ids fit in
 * int32. pi is exact (GTH elimination) up to 1024 contexts, or 4096 when
 * n <= 4; power iteration above, which fails with DLM_ERR_NUMERIC on a chain
 * that mixes extremely slowly (a near-deterministic cycle: likely with small
 * n and alpha). alpha around 0.1-0.3 makes context matter. */
dlm_status dlm_markov_source_create(int n, int k, double alpha, int32_t first_id, uint64_t seed,
                                    dlm_markov_source **out);
/* Safe on NULL; sets *s to NULL. */
void dlm_markov_source_destroy(dlm_markov_source **s);

double dlm_markov_entropy_rate(const dlm_markov_source *s);
/* H(x_1..x_T) / T for a stationary start, T >= 1 (NAN otherwise):
 * [H(pi) + (T-k) h] / T for T >= k, H(first T symbols of pi) / T below. */
double dlm_markov_window_entropy(const dlm_markov_source *s, int T);
void dlm_markov_describe(const dlm_markov_source *s, dlm_source_info *out);

/* Tokens start .. start+n-1 of the source's one long chain (stationary start
 * at token 0). Token i's draw is keyed by i, so the chain does not depend on
 * how it is cut into calls: to continue, pass in prev the min(start, k)
 * tokens just before start (prev may be NULL when start is 0). */
dlm_status dlm_markov_generate(const dlm_markov_source *s, int64_t start, int64_t n,
                               const int32_t *prev, int32_t *out);
/* Sequence `sample`: an independent T-token chain from a stationary start
 * (a pure function of seed and sample; like dlm_iid_fill). */
void dlm_markov_fill(const dlm_markov_source *s, uint64_t sample, int T, int32_t *out);
/* per_token (n) = -log p_true(x_i | x_0..x_{i-1}) for the window x treated as
 * starting from the stationary k-tuple: the chain's row for i >= k, the exact
 * conditional of the stationary marginal for i < k; so the sum is
 * -log p(x_0..x_{n-1}). DLM_ERR_ARG naming the index if a token is outside
 * the source's ids. */
dlm_status dlm_markov_logprob(const dlm_markov_source *s, const int32_t *x, int64_t n,
                              double *per_token);
/* The Bayes-optimal denoiser of a T-token window (stationary start): for
 * each position i with masked[i] != 0, logpost[i * n + v] = log p(x_i = first_id
 * + v | the tokens at the unmasked positions), exactly, by forward-backward
 * over the chain's contexts (T n^(k+1) work, 2 T n^k doubles of scratch);
 * other rows are left as they are. x at masked positions is ignored. A perfect masked-diffusion model
 * predicts these, so its NELBO of every window is the window's NLL: the
 * yardstick for evaluators and trained models. DLM_ERR_ARG naming the index
 * of an unmasked token outside the source's ids. */
dlm_status dlm_markov_posterior(const dlm_markov_source *s, const int32_t *x,
                                const uint8_t *masked, int T, double *logpost);

#endif
