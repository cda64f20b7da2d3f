/* Turns documents into byte-level train/val/test shards with metadata.
 *
 * A document's split is decided by a hash of (source, key) alone: 90% train,
 * 5% val, 5% test, so adding a source never moves an existing document.
 * Exact duplicates (same bytes) are dropped, the first occurrence kept.
 * Each document is written as the separator id followed by its bytes. */
#ifndef DLM_CORPUS_WRITER_H
#define DLM_CORPUS_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "io/meta.h"
#include "io/shard.h"

enum { DLM_SPLIT_TRAIN = 0, DLM_SPLIT_VAL, DLM_SPLIT_TEST, DLM_SPLITS };
const char *dlm_split_name(int split);
/* The split of a document: FNV-1a of "source\0key" modulo 100 (< 90 train, < 95 val). */
int dlm_split_of(const char *source, const char *key);

typedef struct dlm_corpus_writer dlm_corpus_writer;

/* Shards go to out_dir/<name>_<split>.bin, metadata beside them. */
dlm_status dlm_corpus_writer_create(const char *out_dir, const char *name,
                                    dlm_corpus_writer **out);
/* A document sink (the signature dlm_corpus_extract calls): ctx is the writer. */
dlm_status dlm_corpus_writer_add(void *ctx, const char *source, const char *key, const char *text,
                                 size_t len);
/* Describes a source for the metadata (package, version, licence); call
 * before finish for every source that was added. */
dlm_status dlm_corpus_writer_describe(dlm_corpus_writer *w, const dlm_meta_source *src);
/* Closes the shards and writes their metadata; prints a summary. */
dlm_status dlm_corpus_writer_finish(dlm_corpus_writer *w);
/* Frees the writer; an unfinished one leaves no shard behind. */
void dlm_corpus_writer_destroy(dlm_corpus_writer **w);

/* Documents from user text: each file (folders are walked recursively, in
 * name order) becomes documents keyed by its path below the given root;
 * files over 1 MB are cut at blank lines into documents of about 64 KB. */
dlm_status dlm_corpus_add_text_path(dlm_corpus_writer *w, const char *path);

#endif
