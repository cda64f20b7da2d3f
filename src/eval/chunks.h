/* The chunk set an evaluation scores: n non-overlapping T-token chunks,
 * named by a hash of their tokens so two evaluations can prove they saw
 * the same text. Chunks are taken evenly spread over the data (chunk
 * i of n is source chunk floor(i * available / n)), so a subset samples
 * the whole split rather than its first documents.
 *
 *   dlm_chunk_set cs;
 *   const char *paths[] = {"data/x_val.bin"};
 *   DLM_CALL(dlm_chunk_set_from_shards(paths, 1, DLM_SHARD_LLMC, 256, 512, &cs));
 *   ... cs.tokens (n, T), cs.hash, cs.text_bytes, cs.entropy ...
 *   dlm_chunk_set_free(&cs);
 */
#ifndef DLM_CHUNKS_H
#define DLM_CHUNKS_H

#include <stdint.h>

#include "core/status.h"
#include "io/shard.h"
#include "io/synthetic.h"

typedef struct {
    int T;
    int64_t n;
    int32_t *tokens;       /* (n, T) */
    int64_t *index;        /* (n) each chunk's index in its source: keys the masks */
    int64_t available;     /* chunks the source holds */
    int vocab_size;        /* ids that can occur (separator included) */
    int separator_id;      /* also BOS */
    int byte_level;        /* 1: ids 0..255 are bytes (tokenizer "bytes") */
    int64_t text_bytes;    /* byte-level: tokens that are not the separator; else -1 */
    uint64_t hash;         /* FNV-1a 64 over T (int32) and then every token (int32), in order */
    double entropy;        /* H(x_1..x_T)/T of a synthetic source in nats/token, else NAN */
    double *true_nll;      /* (n) -log p(chunk)/T under the synthetic source that made the
                            * data (exact, a stationary start), or NULL when not known */
    char source[512];      /* what the chunks came from, for messages and files */
} dlm_chunk_set;

/* Room for n chunks of T tokens; the caller fills tokens and index, sets
 * the vocabulary fields and calls dlm_chunk_set_seal. */
dlm_status dlm_chunk_set_alloc(int64_t n, int T, dlm_chunk_set *out);
/* Computes hash and text_bytes from the tokens (after checking every id
 * is below vocab_size). */
dlm_status dlm_chunk_set_seal(dlm_chunk_set *cs);
/* Safe on a zeroed or freed set. */
void dlm_chunk_set_free(dlm_chunk_set *cs);

/* max_chunks (<= 0: all) chunks evenly spread over the shards' non-overlapping
 * chunks, in shard order; metadata gives the vocabulary and, for synthetic
 * shards, the exact window entropy at T; for Markov shards whose metadata
 * names the source fully (first_id recorded, and the rebuilt source has the
 * recorded entropy rate) also each chunk's exact NLL. */
dlm_status dlm_chunk_set_from_shards(const char *const *paths, int n_paths, dlm_shard_format fmt,
                                     int T, int64_t max_chunks, dlm_chunk_set *out);

/* n held-out sequences of an i.i.d. source (sequence DLM_HELDOUT_SAMPLE0 + i
 * of the source, as dlm-train validates on the built-in synthetic data),
 * byte-level vocabulary; entropy and each chunk's exact NLL known. */
dlm_status dlm_chunk_set_from_iid(const dlm_iid_source *src, int T, int64_t n,
                                  dlm_chunk_set *out);

/* "fnv1a64:<16 hex digits>" */
void dlm_chunk_set_hash_text(const dlm_chunk_set *cs, char *buf, size_t len);

#endif
