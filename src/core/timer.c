/* Monotonic wall clock. */
#define _POSIX_C_SOURCE 199309L
#include "core/timer.h"

#include <time.h>

double dlm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *dlm_phase_name(dlm_phase p)
{
    static const char *const names[DLM_PHASE_COUNT] = {
        "embed", "attn", "mlp", "head", "head_bwd", "mlp_bwd", "attn_bwd", "embed_bwd", "optim"};
    return p < DLM_PHASE_COUNT ? names[p] : "unknown";
}
