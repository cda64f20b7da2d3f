/* Loaded-BLIS description and thread control. */
#define _GNU_SOURCE
#include "kernels/blis_info.h"

#include <blis.h>
#include <dlfcn.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* BLIS's arch ids differ between versions, so find skx's id by name. */
static int arch_id_by_name(const char *name)
{
    for (int i = 0; i < BLIS_NUM_ARCHS; i++) {
        const char *s = bli_arch_string((arch_t)i);
        if (s && strcmp(s, name) == 0) return i;
    }
    return -1;
}

static int cpus_online(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

dlm_status dlm_threads_check(int n, const char *source)
{
    int cpus = cpus_online();
    DLM_CHECK(n >= 1 && n <= cpus, DLM_ERR_ARG,
              "%s asks for %d threads, but this machine has %d CPUs online: ask for 1 to %d",
              source, n, cpus, cpus);
    return DLM_OK;
}

dlm_status dlm_blis_init(int threads, const char *source)
{
    if (threads > 0) DLM_CALL(dlm_threads_check(threads, source));
    if (!getenv("BLIS_ARCH_TYPE")) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
            int id = arch_id_by_name("skx");
            char v[16];
            snprintf(v, sizeof v, "%d", id);
            if (id >= 0) setenv("BLIS_ARCH_TYPE", v, 0);
        }
    }
    if (threads > 0) dlm_threads_set(threads);
    return DLM_OK;
}

int dlm_threads_default(const char **source)
{
    const char *e = getenv("OMP_NUM_THREADS");
    if (source) *source = e && atoi(e) > 0 ? "OMP_NUM_THREADS" : "the CPU count";
    if (e && atoi(e) > 0) return atoi(e);
    return cpus_online();
}

void dlm_threads_set(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    bli_thread_set_num_threads((dim_t)n);
}

dlm_status dlm_blis_describe(char *buf, size_t len)
{
    Dl_info info;
    const char *path = "unknown";
    if (dladdr((void *)bli_sgemm, &info) && info.dli_fname) path = info.dli_fname;
    char real[4096];
    const char *shown = realpath(path, real) ? real : path;
    snprintf(buf, len, "BLIS %s, %s build (%s), kernels %s, %ld threads (OpenMP pool %d)",
             bli_info_get_version_str(), DLM_BLIS_FLAVOR, shown,
             bli_arch_string(bli_arch_query_id()), (long)bli_thread_get_num_threads(),
             omp_get_max_threads());
    DLM_CHECK(strstr(shown, DLM_BLIS_DIR) == shown, DLM_ERR_STATE,
              "loaded BLIS is %s, but dlm was built against %s; rebuild, or check "
              "LD_PRELOAD and the library path",
              shown, DLM_BLIS_DIR);
    return DLM_OK;
}
