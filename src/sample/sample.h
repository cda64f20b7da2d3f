/* Generation from a trained model: ancestral sampling of the absorbing
 * (masked) diffusion, confidence-ordered and random-ordered unmasking
 * (LLaDA), semi-autoregressive blocks with a sliding window, and the
 * left-to-right AR baseline; plus the measures samples are judged by.
 *
 *   dlm_sample_config c;
 *   dlm_sample_config_default(&c, m->cfg.seq_len);   // ancestral, S = T, cache on
 *   c.steps = 4 * m->cfg.seq_len;
 *   dlm_sampler *s;
 *   DLM_CALL(dlm_sampler_create(m, &c, &s));
 *   int32_t out[L];  dlm_sample_stats st;
 *   DLM_CALL(dlm_sampler_run(s, sample_index, given, fixed, out, &st));  // given/fixed may be NULL
 *   dlm_sampler_destroy(&s);
 *
 * Every random choice is dlm_rng_uniform(seed, step, sample, position,
 * purpose) with the purposes below, `step` the sampler step counted over
 * all blocks (the position for the AR sampler) and `position` the token's
 * index in the output. A sample is therefore a pure function of (model,
 * config, seed, sample index, conditioning), whatever order samples are
 * drawn in and whether the cache is on.
 *
 * The model has no time conditioning (the network sees only the tokens),
 * so when no token changed since the last network call its prediction is
 * the same: the cache reuses it. With alpha(t) = 1 - t a step unmasks each
 * masked token with probability 1/i at step i of S (i = S..1), so at S >= T
 * most steps change nothing and cost no network call.
 */
#ifndef DLM_SAMPLE_H
#define DLM_SAMPLE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"
#include "model/model.h"

typedef enum {
    DLM_SAMPLER_ANCESTRAL = 0, /* MDLM's reverse process (ddpm; ddpm_cache with the cache) */
    DLM_SAMPLER_CONFIDENCE,    /* LLaDA low-confidence remasking: keep the k most confident */
    DLM_SAMPLER_RANDOM,        /* the same schedule of k, positions in random order */
    DLM_SAMPLER_AR             /* left to right from an AR (causal) model */
} dlm_sampler_kind;

/* Purposes of the sampler's draws, after rng.h's own (1..5). */
#define DLM_RNG_SAMPLE_UNMASK ((dlm_rng_purpose)16) /* ancestral: does a token unmask now */
#define DLM_RNG_SAMPLE_TOKEN ((dlm_rng_purpose)17)  /* the categorical draw of a token */
#define DLM_RNG_SAMPLE_ORDER ((dlm_rng_purpose)18)  /* random-order sampler's priorities */

typedef struct {
    dlm_sampler_kind kind;
    int steps;          /* S per block (diffusion samplers); >= 1 */
    int cache;          /* 1: no network call when no token changed since the last one */
    double temperature; /* > 0 divides the logits; 0 takes the most probable token */
    int top_k;          /* keep the k most probable tokens; 0: all */
    double top_p;       /* nucleus: the fewest most probable tokens with mass >= p; 1: all */
    int length;         /* L tokens per sample; >= 1 */
    int block;          /* b: tokens generated per block, 1 <= b <= min(L, T) */
    uint64_t seed;
} dlm_sample_config;

/* Ancestral, S = T, cache on, temperature 1, no top-k/top-p, L = b = T, seed 1. */
void dlm_sample_config_default(dlm_sample_config *c, int T);
/* DLM_ERR_ARG with the offending field and what it must be. */
dlm_status dlm_sample_config_check(const dlm_sample_config *c, int T);

dlm_status dlm_sampler_parse(const char *name, dlm_sampler_kind *kind);
const char *dlm_sampler_name(dlm_sampler_kind kind);

typedef struct {
    int64_t nfe;     /* network evaluations (forward passes of one sequence) */
    int64_t steps;   /* sampler steps taken, the skipped ones included */
    double seconds;  /* wall time of the sample */
} dlm_sample_stats;

typedef struct dlm_sampler dlm_sampler;

/* m must have activations for at least one sequence; the sampler borrows
 * it (and writes its activations) until destroyed. An AR sampler needs a
 * model trained with causal attention; the others a masked-diffusion one:
 * the caller knows which (the run config says). */
dlm_status dlm_sampler_create(dlm_model *m, const dlm_sample_config *c, dlm_sampler **out);
/* m is a pipeline stage: every network evaluation goes through the stages
 * over pp_comm and every stage draws from the same whole logits (each
 * stage's sampler runs the same calls; no key/value cache). */
void dlm_sampler_set_pipeline(dlm_sampler *s, MPI_Comm pp_comm);
void dlm_sampler_destroy(dlm_sampler **s);

/* One sample of c->length tokens into out (L). given (L) and fixed (L)
 * may both be NULL; where fixed[i] != 0, out[i] = given[i] and that token
 * is never resampled (a prompt prefix is fixed[0..p-1]; infilling fixes
 * any positions). Given tokens must be data ids (< vocab_size). Output
 * ids are always < vocab_size: no MASK, no padding. */
dlm_status dlm_sampler_run(dlm_sampler *s, uint64_t sample, const int32_t *given,
                           const uint8_t *fixed, int32_t *out, dlm_sample_stats *st);

/* A categorical draw in double precision from logits (V), with temperature,
 * top-k and top-p applied, by inverting the CDF at u in [0, 1). *prob gets
 * the chosen token's probability under the filtered distribution (may be
 * NULL). work (V doubles) and idx (V ints) are scratch. */
int32_t dlm_sample_categorical(const float *logits, int V, double temperature, int top_k,
                               double top_p, double u, double *prob, double *work, int *idx);

/* ---- measures ---- */

/* Entropy (nats) of the empirical distribution of the n tokens of x: low
 * values flag a collapsed sample. */
double dlm_sample_unigram_entropy(const int32_t *x, int n);
/* Repeated n-gram rate: 1 - distinct / total over the len - n + 1 n-grams
 * of x (0 when there are none). n-grams are compared by a 64-bit hash. */
double dlm_sample_repeat_rate(const int32_t *x, int len, int n);
/* -log p(x) in nats under an AR model (causal), scored in consecutive
 * windows of up to T tokens, each window's inputs starting at BOS as the
 * AR objective trains them; acts are ar's, for one sequence. */
dlm_status dlm_sample_ar_nll(const dlm_model *ar, dlm_acts *acts, const int32_t *x, int len,
                             double *nll);
/* The same with ar a pipeline stage: every window through the stages over
 * pp_comm, every stage gets the score. Collective over pp_comm. */
dlm_status dlm_sample_ar_nll_pp(const dlm_model *ar, dlm_acts *acts, MPI_Comm pp_comm,
                                const int32_t *x, int len, double *nll);

#endif
