/* Token shards in llm.c's format: a 256 x int32 header (magic, version,
 * token count) then the tokens, uint16 (magic 20240520, version 1) or
 * uint32 (magic 20240801, version 7). Header-less uint16 files (nanoGPT's
 * .bin) are read only when the caller says so (DLM_SHARD_RAW_U16).
 *
 * Opening maps the file and checks everything a later step would trip on
 * (header, size, every token id against the vocabulary), so a bad shard
 * fails at start with its path and the offset at fault. Writing goes to a
 * temporary name renamed into place when complete. */
#ifndef DLM_SHARD_H
#define DLM_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"

#define DLM_SHARD_HEADER_INTS 256
#define DLM_SHARD_HEADER_BYTES (DLM_SHARD_HEADER_INTS * 4)
#define DLM_SHARD_MAGIC_U16 20240520
#define DLM_SHARD_VERSION_U16 1
#define DLM_SHARD_MAGIC_U32 20240801
#define DLM_SHARD_VERSION_U32 7

typedef enum {
    DLM_SHARD_LLMC = 0, /* llm.c header required (the default) */
    DLM_SHARD_RAW_U16   /* no header: the whole file is uint16 tokens */
} dlm_shard_format;

/* Names in files, indexed by dlm_shard_format, NULL-ended. */
extern const char *const dlm_shard_format_names[];
dlm_status dlm_shard_format_parse(const char *name, dlm_shard_format *fmt);

typedef struct {
    char path[4096];
    void *map;
    size_t map_bytes;
    int token_bytes;       /* 2 or 4 */
    int64_t n_tokens;
    const uint8_t *tokens; /* start of the token data inside the map */
    uint64_t content_hash; /* FNV-1a 64 of the token bytes (when scanned) */
    int scanned;           /* 1: every token was checked and hashed */
} dlm_shard;

/* How much of a shard opening reads: everything (the token ids against
 * the vocabulary and the content hash), or the header and size only, for
 * ranks whose node has one reader that scanned the same file. */
typedef enum { DLM_SCAN_ALL = 0, DLM_SCAN_HEADER } dlm_scan;

/* Maps and validates path; every token must be < vocab_size. */
dlm_status dlm_shard_open(const char *path, dlm_shard_format fmt, int vocab_size, dlm_shard *out);
dlm_status dlm_shard_open_scan(const char *path, dlm_shard_format fmt, int vocab_size,
                               dlm_scan scan, dlm_shard *out);
void dlm_shard_close(dlm_shard *s);

static inline int32_t dlm_shard_token(const dlm_shard *s, int64_t i)
{
    if (s->token_bytes == 2) {
        uint16_t v;
        __builtin_memcpy(&v, s->tokens + 2 * i, 2);
        return v;
    }
    uint32_t v;
    __builtin_memcpy(&v, s->tokens + 4 * i, 4);
    return (int32_t)v;
}

/* Streaming writer: tokens are appended, the header's count is written at
 * close, and the file appears under its name only then. */
typedef struct {
    char path[4096], tmp_path[4200];
    FILE *f;
    int token_bytes;
    int64_t n_tokens;
    uint64_t content_hash;
} dlm_shard_writer;

/* token_bytes 2 (uint16, version 1) or 4 (uint32, version 7). */
dlm_status dlm_shard_writer_open(const char *path, int token_bytes, dlm_shard_writer *w);
dlm_status dlm_shard_writer_append(dlm_shard_writer *w, const int32_t *tokens, int64_t n);
dlm_status dlm_shard_writer_close(dlm_shard_writer *w);
/* Drops an unfinished shard (error paths): its temporary file is removed. */
void dlm_shard_writer_abort(dlm_shard_writer *w);

#endif
