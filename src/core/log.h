/* Logging with the MPI rank in front of every line, so interleaved output
 * from many ranks can be told apart. */
#ifndef DLM_LOG_H
#define DLM_LOG_H

typedef enum { DLM_LOG_ERROR = 0, DLM_LOG_WARN, DLM_LOG_INFO, DLM_LOG_DEBUG } dlm_log_level;

/* Set once by main (and by tests) after MPI_Init. Defaults: rank 0, INFO. */
void dlm_log_set_rank(int rank);
void dlm_log_set_level(dlm_log_level level);
void dlm_log(dlm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define DLM_INFO(...) dlm_log(DLM_LOG_INFO, __VA_ARGS__)
#define DLM_WARN(...) dlm_log(DLM_LOG_WARN, __VA_ARGS__)
#define DLM_ERROR(...) dlm_log(DLM_LOG_ERROR, __VA_ARGS__)
#define DLM_DEBUG(...) dlm_log(DLM_LOG_DEBUG, __VA_ARGS__)

#endif
