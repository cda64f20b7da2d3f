/* The JSON metadata file written next to each shard: vocabulary and
 * special ids, where the text came from (Debian packages and versions),
 * document counts, a content hash, and for synthetic sources their exact
 * entropy. A shard without one (from llm.c) gets GPT-2's defaults. */
#ifndef DLM_META_H
#define DLM_META_H

#include <stdint.h>

#include "core/status.h"
#include "io/shard.h"

#define DLM_META_MAX_SOURCES 16

typedef struct {
    char name[32], package[64], version[64], licence[96];
    int64_t documents, bytes;
} dlm_meta_source;

typedef struct {
    char split[16];      /* train, val, test */
    char tokenizer[32];  /* "bytes" or "gpt2" */
    int vocab_size;      /* ids that can occur (data ids, separator included) */
    int separator_id;    /* document separator, also BOS */
    int mask_id;         /* = vocab_size */
    int token_bytes;
    int64_t n_tokens;
    int64_t documents;
    uint64_t content_hash; /* FNV-1a 64 of the token bytes, as in dlm_shard */
    int n_sources;
    dlm_meta_source sources[DLM_META_MAX_SOURCES];
    /* synthetic sources only (synthetic = 1) */
    int synthetic;
    char synth_kind[16]; /* "iid" or "markov" */
    int synth_symbols, synth_order;
    double synth_alpha;
    uint64_t synth_seed;
    int32_t synth_first_id; /* the id of symbol 0; -1 when the file does not say */
    double entropy_rate;   /* nats/token */
    int window_T;          /* the T the window entropy is for */
    double window_entropy; /* H(x_1..x_T) / T, nats/token: what a perfect model scores */
} dlm_shard_meta;

/* GPT-2's vocabulary, for llm.c shards that come without metadata:
 * 50257 ids, separator <|endoftext|> = 50256, MASK = 50257. */
void dlm_meta_defaults_gpt2(dlm_shard_meta *m);
/* The byte-level vocabulary: 257 ids, separator 256, MASK 257. */
void dlm_meta_defaults_bytes(dlm_shard_meta *m);

/* "<dir>/name.bin" -> "<dir>/name.json" (other names get ".json" appended). */
void dlm_meta_path(const char *shard_path, char *out, size_t len);

dlm_status dlm_meta_write(const char *path, const dlm_shard_meta *m);
/* *found = 0 (and defaults untouched) when the file does not exist. */
dlm_status dlm_meta_read(const char *path, dlm_shard_meta *m, int *found);
/* Fails, naming the field, when the metadata disagrees with the shard. */
dlm_status dlm_meta_check(const dlm_shard_meta *m, const char *meta_path, const dlm_shard *s);

#endif
