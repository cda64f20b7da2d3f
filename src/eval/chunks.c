/* Chunk sets for evaluation: from shards (evenly spread), from the built-in
 * i.i.d. source, or filled by the caller; hashed and counted in bytes. */
#include "eval/chunks.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "io/loader.h"
#include "io/meta.h"

dlm_status dlm_chunk_set_alloc(int64_t n, int T, dlm_chunk_set *out)
{
    memset(out, 0, sizeof *out);
    DLM_CHECK(n >= 1 && T >= 1, DLM_ERR_ARG, "a chunk set needs n >= 1 and T >= 1, got n = %lld, T = %d",
              (long long)n, T);
    out->T = T;
    out->n = n;
    out->available = n;
    out->text_bytes = -1;
    out->entropy = NAN;
    out->tokens = malloc((size_t)n * (size_t)T * sizeof *out->tokens);
    out->index = malloc((size_t)n * sizeof *out->index);
    if (!out->tokens || !out->index) {
        dlm_chunk_set_free(out);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating %lld chunks of %d tokens", (long long)n, T);
    }
    for (int64_t c = 0; c < n; c++) out->index[c] = c;
    return DLM_OK;
}

dlm_status dlm_chunk_set_seal(dlm_chunk_set *cs)
{
    DLM_CHECK(cs->tokens && cs->vocab_size > 0, DLM_ERR_ARG,
              "sealing a chunk set without tokens or vocabulary");
    uint64_t h = DLM_FNV_OFFSET;
    int32_t T32 = cs->T;
    h = dlm_fnv1a(h, &T32, sizeof T32);
    int64_t N = cs->n * cs->T, bytes = 0;
    for (int64_t i = 0; i < N; i++) {
        int32_t x = cs->tokens[i];
        DLM_CHECK(x >= 0 && x < cs->vocab_size, DLM_ERR_FORMAT,
                  "%s: token %d in chunk %lld is outside the vocabulary of %d ids", cs->source, x,
                  (long long)(i / cs->T), cs->vocab_size);
        bytes += x != cs->separator_id;
    }
    h = dlm_fnv1a(h, cs->tokens, (size_t)N * sizeof *cs->tokens);
    cs->hash = h;
    cs->text_bytes = cs->byte_level ? bytes : -1;
    return DLM_OK;
}

void dlm_chunk_set_free(dlm_chunk_set *cs)
{
    free(cs->tokens);
    free(cs->index);
    free(cs->true_nll);
    cs->tokens = NULL;
    cs->index = NULL;
    cs->true_nll = NULL;
    cs->n = 0;
}

/* -log p of each token of a window under a synthetic source (the source's
 * logprob function behind one signature). */
typedef dlm_status (*window_logprob)(const void *src, const int32_t *x, int64_t n,
                                     double *per_token);
static dlm_status iid_logprob(const void *src, const int32_t *x, int64_t n, double *per_token)
{
    return dlm_iid_logprob(src, x, n, per_token);
}
static dlm_status markov_logprob(const void *src, const int32_t *x, int64_t n,
                                 double *per_token)
{
    return dlm_markov_logprob(src, x, n, per_token);
}

/* cs->true_nll[c] = -log p(chunk c) / T under src; left NULL on error. */
static dlm_status fill_true_nll(dlm_chunk_set *cs, window_logprob logprob, const void *src)
{
    double *per_token = malloc((size_t)cs->T * sizeof *per_token);
    cs->true_nll = malloc((size_t)cs->n * sizeof *cs->true_nll);
    dlm_status st = DLM_OK;
    if (!per_token || !cs->true_nll)
        st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                            "per-chunk NLL of %lld chunks", (long long)cs->n);
    for (int64_t c = 0; st == DLM_OK && c < cs->n; c++) {
        st = logprob(src, cs->tokens + c * cs->T, cs->T, per_token);
        double sum = 0.0;
        for (int i = 0; i < cs->T; i++) sum += per_token[i];
        cs->true_nll[c] = sum / cs->T;
    }
    free(per_token);
    if (st != DLM_OK) {
        free(cs->true_nll);
        cs->true_nll = NULL;
    }
    return st;
}

/* Each chunk's exact NLL per token under a Markov source rebuilt from the
 * metadata; left NULL (not an error) when the metadata cannot name the
 * source exactly: no first_id, or a rebuilt entropy rate that differs. */
static dlm_status markov_truth(const dlm_shard_meta *m, dlm_chunk_set *cs)
{
    if (!m->synthetic || strcmp(m->synth_kind, "markov") != 0 || m->synth_first_id < 0)
        return DLM_OK;
    dlm_markov_source *src = NULL;
    if (dlm_markov_source_create(m->synth_symbols, m->synth_order, m->synth_alpha,
                                 m->synth_first_id, m->synth_seed, &src) != DLM_OK) {
        dlm_error_clear();
        return DLM_OK;
    }
    dlm_status st = DLM_OK;
    if (fabs(dlm_markov_entropy_rate(src) - m->entropy_rate) <= 1e-9 * m->entropy_rate)
        st = fill_true_nll(cs, markov_logprob, src);
    dlm_markov_source_destroy(&src);
    return st;
}

/* H(x_1..x_T)/T at this T from the metadata's entropy rate h and window
 * entropy at window_T: for an order-k chain H(x_1..x_T) = H(pi) + (T - k) h
 * when T >= k, which pins H(pi). NAN when T < k or nothing is known. */
static double meta_window_entropy(const dlm_shard_meta *m, int T)
{
    if (!m->synthetic) return NAN;
    if (!strcmp(m->synth_kind, "iid")) return m->entropy_rate;
    int k = m->synth_order;
    if (m->window_T < k || T < k || !(m->window_entropy > 0)) return NAN;
    double h_pi = m->window_entropy * m->window_T - (double)(m->window_T - k) * m->entropy_rate;
    return (h_pi + (double)(T - k) * m->entropy_rate) / T;
}

dlm_status dlm_chunk_set_from_shards(const char *const *paths, int n_paths, dlm_shard_format fmt,
                                     int T, int64_t max_chunks, dlm_chunk_set *out)
{
    memset(out, 0, sizeof *out);
    dlm_loader L;
    DLM_CALL(dlm_loader_open(paths, n_paths, fmt, T, 0, &L));
    dlm_status st;
    int64_t avail = dlm_loader_n_chunks(&L);
    if (avail < 1) {
        st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                            "%s holds no chunk of %d tokens", paths[0], T);
        goto done;
    }
    int64_t n = max_chunks > 0 && max_chunks < avail ? max_chunks : avail;
    DLM_CALL_GOTO(st, dlm_chunk_set_alloc(n, T, out), done);
    out->available = avail;
    for (int64_t c = 0; c < n; c++) {
        /* evenly spread: floor(c * avail / n), exact in integers, increasing, < avail */
        int64_t src = c * (avail / n) + c * (avail % n) / n;
        out->index[c] = src;
        dlm_loader_chunk(&L, src, out->tokens + c * T);
    }
    out->vocab_size = L.meta.vocab_size;
    out->separator_id = L.meta.separator_id;
    out->byte_level = !strcmp(L.meta.tokenizer, "bytes");
    out->entropy = meta_window_entropy(&L.meta, T);
    DLM_CALL_GOTO(st, markov_truth(&L.meta, out), done);
    int w = snprintf(out->source, sizeof out->source, "%s", paths[0]);
    for (int i = 1; i < n_paths && w > 0 && (size_t)w < sizeof out->source; i++)
        w += snprintf(out->source + w, sizeof out->source - (size_t)w, ",%s", paths[i]);
    DLM_CALL_GOTO(st, dlm_chunk_set_seal(out), done);
    st = DLM_OK;
done:
    if (st != DLM_OK) dlm_chunk_set_free(out);
    dlm_loader_close(&L);
    return st;
}

dlm_status dlm_chunk_set_from_iid(const dlm_iid_source *src, int T, int64_t n,
                                  dlm_chunk_set *out)
{
    DLM_CALL(dlm_chunk_set_alloc(n, T, out));
    for (int64_t c = 0; c < n; c++)
        dlm_iid_fill(src, DLM_HELDOUT_SAMPLE0 + (uint64_t)c, T, out->tokens + c * T);
    out->vocab_size = 257; /* the byte-level vocabulary dlm-train uses for this source */
    out->separator_id = 256;
    out->byte_level = 1;
    out->entropy = dlm_iid_window_entropy(src, T);
    dlm_status st = fill_true_nll(out, iid_logprob, src);
    if (st != DLM_OK) dlm_chunk_set_free(out);
    DLM_CALL(st);
    snprintf(out->source, sizeof out->source,
             "built-in synthetic source (%d symbols i.i.d., seed %" PRIu64 "), held-out sequences",
             src->n_symbols, src->seed);
    st = dlm_chunk_set_seal(out);
    if (st != DLM_OK) dlm_chunk_set_free(out);
    DLM_CALL(st);
    return DLM_OK;
}

void dlm_chunk_set_hash_text(const dlm_chunk_set *cs, char *buf, size_t len)
{
    snprintf(buf, len, "fnv1a64:%016" PRIx64, cs->hash);
}
