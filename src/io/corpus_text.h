/* Normalising a document to the rules of debian_corpus.h and handing it to
 * the sink: what every extractor ends with (private to the corpus builder). */
#ifndef DLM_CORPUS_TEXT_H
#define DLM_CORPUS_TEXT_H

#include <stddef.h>

#include "core/status.h"
#include "io/corpus_tbuf.h"
#include "io/debian_corpus.h"

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
size_t dlm_corpus_utf8_len(const unsigned char *s, size_t n);

/* Scratch shared by the emitting paths of one extractor call; start from {0}. */
typedef struct {
    tbuf doc, ws, key;
} emitter;

void dlm_corpus_emitter_free(emitter *e);

/* Normalises n bytes of text and hands them to sink under key, unless they
 * come out shorter than DLM_CORPUS_MIN_DOC_BYTES. */
dlm_status dlm_corpus_emit(emitter *e, dlm_doc_sink sink, void *ctx, const char *source,
                           const char *key, const char *text, size_t n);

#endif
