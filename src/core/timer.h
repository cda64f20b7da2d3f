/* Wall-clock time for progress lines and per-phase timers. */
#ifndef DLM_TIMER_H
#define DLM_TIMER_H

/* Seconds on a monotonic clock. */
double dlm_now(void);

#endif
