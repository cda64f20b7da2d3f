/* The cache's layout, shared by fetching (corpus_fetch.c) and extracting
 * (debian_corpus.c): where a package is unpacked and the marker that says
 * the unpack is finished. */
#ifndef DLM_CORPUS_FETCH_H
#define DLM_CORPUS_FETCH_H

#include <stddef.h>

#include "core/status.h"

/* In a finished unpack; holds the version. */
#define DLM_CORPUS_MARKER ".dlm-unpacked"

/* cache_dir/<package>_<version> into out (cap bytes), ':' written as "%3a"
 * like apt's .deb names. */
dlm_status dlm_corpus_unpack_dir(const char *cache_dir, const char *package, const char *version,
                                 char *out, size_t cap);

#endif
