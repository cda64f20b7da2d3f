/* This process's memory as the kernel counts it, for the figures a run
 * prints (the saving of ZeRO-1, the pipeline's pool). */
#ifndef DLM_MEMSTAT_H
#define DLM_MEMSTAT_H

/* Peak resident set size in bytes (VmHWM of /proc/self/status); 0 where
 * it cannot be read. */
double dlm_peak_rss_bytes(void);

#endif
