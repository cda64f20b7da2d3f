/* Which BLIS build is loaded, and its thread count. Debian's serial,
 * pthread and OpenMP builds share one SONAME, so the build is pinned at
 * link time and checked here at start. */
#ifndef DLM_BLIS_INFO_H
#define DLM_BLIS_INFO_H

#include <stddef.h>

#include "core/status.h"

/* Call before any BLIS use. Debian's BLIS 0.9 does not recognise every
 * current CPU and then falls back to its slow 'generic' kernels (measured
 * here on AMD Zen 4: 60 GFLOP/s generic, 190-310 with skx kernels, 2
 * threads). Unless BLIS_ARCH_TYPE is already set, this selects the 'skx'
 * kernels on CPUs with AVX-512 (F, DQ, BW, VL) and leaves BLIS's own
 * choice otherwise. threads > 0 also sets the thread count, after
 * dlm_threads_check (source says where the count came from). */
dlm_status dlm_blis_init(int threads, const char *source);
/* The thread count a program uses unless told: OMP_NUM_THREADS when set,
 * else the cores online; *source (may be NULL) gets which. */
int dlm_threads_default(const char **source);
/* Refuses a thread count beyond the CPUs online (more only oversubscribes
 * the cores, and huge counts crash OpenMP's pool), naming source ("--threads",
 * "train.threads", "OMP_NUM_THREADS") and the limit; call before any
 * thread pool starts. */
dlm_status dlm_threads_check(int n, const char *source);
/* Sets the BLIS and OpenMP thread counts together (one shared pool). */
void dlm_threads_set(int n);
/* Describes the loaded BLIS (version, build folder, kernel set, threads)
 * into buf; fails if the loaded library is not the build dlm was linked
 * against (DLM_BLIS_DIR). */
dlm_status dlm_blis_describe(char *buf, size_t len);

#endif
