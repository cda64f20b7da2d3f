/* Shard sets, random windows keyed by (seed, step, sample), fixed chunks. */
#include "io/loader.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

dlm_status dlm_dataset_open(const char *path, dlm_shard_format fmt, dlm_shard *shard,
                            dlm_shard_meta *meta)
{
    return dlm_dataset_open_scan(path, fmt, DLM_SCAN_ALL, shard, meta);
}

dlm_status dlm_dataset_open_scan(const char *path, dlm_shard_format fmt, dlm_scan scan,
                                 dlm_shard *shard, dlm_shard_meta *meta)
{
    char meta_path[4200];
    dlm_meta_path(path, meta_path, sizeof meta_path);
    int found;
    dlm_meta_defaults_gpt2(meta);
    DLM_CALL(dlm_meta_read(meta_path, meta, &found));
    DLM_CALL(dlm_shard_open_scan(path, fmt, meta->vocab_size, scan, shard));
    if (found) {
        dlm_status st = dlm_meta_check(meta, meta_path, shard);
        if (st != DLM_OK) {
            dlm_shard_close(shard);
            DLM_CALL(st);
        }
    } else {
        meta->n_tokens = shard->n_tokens;
        meta->token_bytes = shard->token_bytes;
        meta->content_hash = shard->content_hash;
    }
    return DLM_OK;
}

dlm_status dlm_loader_open(const char *const *paths, int n_paths, dlm_shard_format fmt, int T,
                           uint64_t seed, dlm_loader *out)
{
    return dlm_loader_open_scan(paths, n_paths, fmt, T, seed, DLM_SCAN_ALL, out);
}

dlm_status dlm_loader_open_scan(const char *const *paths, int n_paths, dlm_shard_format fmt,
                                int T, uint64_t seed, dlm_scan scan, dlm_loader *out)
{
    memset(out, 0, sizeof *out);
    DLM_CHECK(n_paths >= 1, DLM_ERR_ARG, "no shards given");
    DLM_CHECK(T >= 1, DLM_ERR_ARG, "sequence length must be >= 1, got %d", T);
    out->T = T;
    out->seed = seed;
    out->shards = calloc((size_t)n_paths, sizeof *out->shards);
    out->first_window = calloc((size_t)n_paths + 1, sizeof *out->first_window);
    dlm_status st = out->shards && out->first_window ? DLM_OK : DLM_ERR_NOMEM;
    if (st != DLM_OK) {
        dlm_loader_close(out);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating a loader for %d shards", n_paths);
    }
    for (int i = 0; i < n_paths; i++) {
        dlm_shard_meta meta;
        DLM_CALL_GOTO(st, dlm_dataset_open_scan(paths[i], fmt, scan, &out->shards[i], &meta), fail);
        out->n_shards = i + 1;
        if (i == 0) out->meta = meta;
        if (meta.vocab_size != out->meta.vocab_size ||
            meta.separator_id != out->meta.separator_id) {
            st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                "%s: vocabulary %d (separator %d) differs from %s's %d (separator %d)",
                                paths[i], meta.vocab_size, meta.separator_id, paths[0],
                                out->meta.vocab_size, out->meta.separator_id);
            goto fail;
        }
        if (out->shards[i].n_tokens < T) {
            st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                "%s: %lld tokens, fewer than one sequence of %d",
                                paths[i], (long long)out->shards[i].n_tokens, T);
            goto fail;
        }
        out->first_window[i + 1] = out->first_window[i] + out->shards[i].n_tokens - T + 1;
        out->span_tokens += out->shards[i].n_tokens;
    }
    return DLM_OK;
fail:
    dlm_loader_close(out);
    return st;
}

void dlm_loader_close(dlm_loader *L)
{
    for (int i = 0; i < L->n_shards; i++) dlm_shard_close(&L->shards[i]);
    free(L->shards);
    free(L->first_window);
    memset(L, 0, sizeof *L);
}

dlm_status dlm_loader_limit(dlm_loader *L, int64_t U)
{
    DLM_CHECK(U >= L->T, DLM_ERR_ARG, "a prefix of %lld tokens holds no sequence of %d",
              (long long)U, L->T);
    int64_t left = U, windows = 0;
    for (int i = 0; i < L->n_shards; i++) { /* checked first, so a failure changes nothing */
        int64_t n = L->shards[i].n_tokens < left ? L->shards[i].n_tokens : left;
        left -= n;
        windows += n >= L->T ? n - L->T + 1 : 0;
    }
    DLM_CHECK(left == 0, DLM_ERR_ARG, "a prefix of %lld tokens, but the shards hold only %lld tokens",
              (long long)U, (long long)(U - left));
    DLM_CHECK(windows > 0, DLM_ERR_ARG, "the first %lld tokens hold no whole sequence of %d inside one shard",
              (long long)U, L->T);
    left = U;
    for (int i = 0; i < L->n_shards; i++) {
        int64_t n = L->shards[i].n_tokens < left ? L->shards[i].n_tokens : left;
        left -= n;
        L->first_window[i + 1] = L->first_window[i] + (n >= L->T ? n - L->T + 1 : 0);
    }
    L->span_tokens = U;
    return DLM_OK;
}

int64_t dlm_loader_span_tokens(const dlm_loader *L) { return L->span_tokens; }

static void copy_tokens(const dlm_shard *s, int64_t start, int T, int32_t *out)
{
    for (int i = 0; i < T; i++) out[i] = dlm_shard_token(s, start + i);
}

void dlm_loader_batch(const dlm_loader *L, uint32_t step, int64_t g0, int B, int32_t *out)
{
    int64_t total = L->first_window[L->n_shards];
    for (int b = 0; b < B; b++) {
        int64_t g = g0 + b;
        double u = dlm_rng_uniform(L->seed, step, (uint32_t)g, (uint32_t)(g >> 32), DLM_RNG_DATA);
        int64_t w = (int64_t)(u * (double)total);
        if (w >= total) w = total - 1;
        int s = 0;
        while (w >= L->first_window[s + 1]) s++;
        copy_tokens(&L->shards[s], w - L->first_window[s], L->T, out + (int64_t)b * L->T);
    }
}

int64_t dlm_loader_n_chunks(const dlm_loader *L)
{
    int64_t n = 0;
    for (int s = 0; s < L->n_shards; s++) n += L->shards[s].n_tokens / L->T;
    return n;
}

void dlm_loader_chunk(const dlm_loader *L, int64_t i, int32_t *out)
{
    for (int s = 0; s < L->n_shards; s++) {
        int64_t n = L->shards[s].n_tokens / L->T;
        if (i < n) {
            copy_tokens(&L->shards[s], i * L->T, L->T, out);
            return;
        }
        i -= n;
    }
}
