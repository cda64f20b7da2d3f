/* Status codes and the checking macros every fallible dlm function uses.
 * An error climbs to main as a dlm_status; each frame adds file, line and
 * function to a per-thread message stack that main prints once. */
#ifndef DLM_STATUS_H
#define DLM_STATUS_H

typedef enum {
    DLM_OK = 0,
    DLM_ERR_ARG,      /* a caller passed something out of range */
    DLM_ERR_NOMEM,    /* an allocation failed */
    DLM_ERR_IO,       /* a file could not be read or written */
    DLM_ERR_FORMAT,   /* a file or config did not hold what was expected */
    DLM_ERR_MPI,      /* an MPI call failed */
    DLM_ERR_HDF5,     /* an HDF5 call failed */
    DLM_ERR_SCALAPACK, /* a BLACS or ScaLAPACK call failed */
    DLM_ERR_NUMERIC,  /* a non-finite loss or gradient */
    DLM_ERR_STATE,    /* an object was used in the wrong state */
    DLM_ERR_PEER      /* another MPI rank failed; its own message says why */
} dlm_status;

const char *dlm_status_name(dlm_status s);

/* Records one frame of an error (fmt may be NULL for a pass-through frame)
 * and returns code, so a macro can `return dlm_error_push(...)`. */
dlm_status dlm_error_push(dlm_status code, const char *file, int line, const char *func,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The recorded frames, newest message first, one per line. */
const char *dlm_error_text(void);
void dlm_error_clear(void);
/* Set when every rank of the job has learned of the error through a
 * collective agreement (dlm_agree): main may then end all ranks
 * together instead of aborting the job. Cleared by dlm_error_clear. */
void dlm_error_mark_agreed(void);
int dlm_error_agreed(void);

#define DLM_CHECK(cond, code, ...)                                                   \
    do {                                                                             \
        if (!(cond)) return dlm_error_push((code), __FILE__, __LINE__, __func__, __VA_ARGS__); \
    } while (0)

#define DLM_CALL(x)                                                                  \
    do {                                                                             \
        dlm_status dlm_s_ = (x);                                                     \
        if (dlm_s_ != DLM_OK) return dlm_error_push(dlm_s_, __FILE__, __LINE__, __func__, NULL); \
    } while (0)

/* For code that must clean up: jump to a label with `st` set. */
#define DLM_CALL_GOTO(st, x, label)                                                  \
    do {                                                                             \
        (st) = (x);                                                                  \
        if ((st) != DLM_OK) {                                                        \
            dlm_error_push((st), __FILE__, __LINE__, __func__, NULL);                \
            goto label;                                                              \
        }                                                                            \
    } while (0)

/* DLM_CHECK for code that must clean up: jump to a label with `st` set. */
#define DLM_CHECK_GOTO(st, cond, code, label, ...)                                   \
    do {                                                                             \
        if (!(cond)) {                                                               \
            (st) = dlm_error_push((code), __FILE__, __LINE__, __func__, __VA_ARGS__); \
            goto label;                                                              \
        }                                                                            \
    } while (0)

#endif
