/* Wall-clock time for progress lines and per-phase timers. */
#ifndef DLM_TIMER_H
#define DLM_TIMER_H

/* Seconds on a monotonic clock. */
double dlm_now(void);

/* Where a training step spends its time. A model or step given a
 * dlm_phase_timers adds each phase's wall time to it; NULL costs nothing. */
typedef enum {
    DLM_PHASE_EMBED = 0,
    DLM_PHASE_ATTN,      /* ln1, qkv, rotary, attention, projection, residual */
    DLM_PHASE_MLP,       /* ln2, fc, GELU, projection, residual */
    DLM_PHASE_HEAD,      /* final LayerNorm, LM head, cross-entropy */
    DLM_PHASE_HEAD_BWD,
    DLM_PHASE_MLP_BWD,
    DLM_PHASE_ATTN_BWD,
    DLM_PHASE_EMBED_BWD,
    DLM_PHASE_OPTIM,     /* norm, clipping, AdamW */
    DLM_PHASE_COUNT
} dlm_phase;

typedef struct {
    double seconds[DLM_PHASE_COUNT];
} dlm_phase_timers;

const char *dlm_phase_name(dlm_phase p);

/* Adds the time since *t0 to phase p and restarts *t0; no-op on NULL timers. */
static inline void dlm_phase_lap(dlm_phase_timers *pt, dlm_phase p, double *t0)
{
    if (!pt) return;
    double now = dlm_now();
    pt->seconds[p] += now - *t0;
    *t0 = now;
}

#endif
