/* Running a helper program (apt-get, dpkg-deb, gzip, rm) with its output
 * captured, for the corpus builder (private to src/io). */
#ifndef DLM_CORPUS_RUN_H
#define DLM_CORPUS_RUN_H

#include <stddef.h>

#include "core/status.h"
#include "io/corpus_tbuf.h"

typedef struct {
    int started; /* 0: the program could not be started (err_no says why) */
    int err_no;
    int status; /* exit status, or 128 + signal */
} run_result;

/* Runs argv[0] (found on PATH) with stdin from /dev/null, collecting stdout
 * into out and stderr into err (they may be the same buffer). posix_spawn,
 * not fork: the caller may be a large MPI process. A program that cannot be
 * started is not an error here: res->started says so. */
dlm_status dlm_corpus_run_capture(const char *const *argv, tbuf *out, tbuf *err, run_result *res);

/* The last cap - 1 bytes of a command's output, on one line, for messages; returns dst. */
const char *dlm_corpus_output_tail(const tbuf *b, char *dst, size_t cap);

#endif
