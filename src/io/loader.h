/* Batches of T-token chunks from one or more shards.
 *
 * Sequence g of the global batch at a step starts at a window drawn by the
 * counter-based RNG from (seed, step, g), so a data-parallel rank that
 * takes global indices [g0, g0 + B) sees exactly the sequences the serial
 * run sees at those indices, whatever the layout. The loader's whole state
 * is (seed, step): nothing to save but two integers. Windows never cross a
 * shard boundary. */
#ifndef DLM_LOADER_H
#define DLM_LOADER_H

#include <stdint.h>

#include "core/status.h"
#include "io/meta.h"
#include "io/shard.h"

/* Opens a shard with its metadata (without one, llm.c's default: GPT-2's
 * vocabulary), checks that they agree and that every token id fits the
 * vocabulary. */
dlm_status dlm_dataset_open(const char *path, dlm_shard_format fmt, dlm_shard *shard,
                            dlm_shard_meta *meta);
/* As above, reading only what scan says (see dlm_shard_open_scan); without
 * a full scan the metadata's hash is taken on trust (another rank checked). */
dlm_status dlm_dataset_open_scan(const char *path, dlm_shard_format fmt, dlm_scan scan,
                                 dlm_shard *shard, dlm_shard_meta *meta);

typedef struct {
    int n_shards;
    dlm_shard *shards;
    dlm_shard_meta meta;   /* the first shard's; the others must match its vocabulary */
    int T;
    uint64_t seed;
    int64_t *first_window; /* (n_shards + 1) cumulative counts of T-token windows */
    int64_t span_tokens;   /* of the shards' tokens, those windows are drawn from */
} dlm_loader;

dlm_status dlm_loader_open(const char *const *paths, int n_paths, dlm_shard_format fmt, int T,
                           uint64_t seed, dlm_loader *out);
dlm_status dlm_loader_open_scan(const char *const *paths, int n_paths, dlm_shard_format fmt,
                                int T, uint64_t seed, dlm_scan scan, dlm_loader *out);
void dlm_loader_close(dlm_loader *L);
/* Draws windows only from the first U tokens of the shards taken in order
 * (a data-constrained run repeats them for as many epochs as it needs); a
 * window never crosses the prefix's end. Fails when no window fits. */
dlm_status dlm_loader_limit(dlm_loader *L, int64_t U);
/* The tokens windows are drawn from: U, or every token. */
int64_t dlm_loader_span_tokens(const dlm_loader *L);

/* Sequences g0 .. g0+B-1 of the global batch at step: out (B,T). */
void dlm_loader_batch(const dlm_loader *L, uint32_t step, int64_t g0, int B, int32_t *out);
/* The number of non-overlapping T-token chunks (for fixed evaluation sets). */
int64_t dlm_loader_n_chunks(const dlm_loader *L);
/* Non-overlapping chunk i, in shard order: out (T). */
void dlm_loader_chunk(const dlm_loader *L, int64_t i, int32_t *out);

#endif
