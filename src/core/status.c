/* Per-thread error text: frames appended by dlm_error_push, read by main. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DLM_ERROR_TEXT_MAX 4096

static _Thread_local char error_text[DLM_ERROR_TEXT_MAX];
static _Thread_local size_t error_len;
static _Thread_local int error_agreed;

const char *dlm_status_name(dlm_status s)
{
    switch (s) {
    case DLM_OK: return "ok";
    case DLM_ERR_ARG: return "invalid argument";
    case DLM_ERR_NOMEM: return "out of memory";
    case DLM_ERR_IO: return "I/O error";
    case DLM_ERR_FORMAT: return "bad format";
    case DLM_ERR_MPI: return "MPI error";
    case DLM_ERR_SCALAPACK: return "ScaLAPACK error";
    case DLM_ERR_HDF5: return "HDF5 error";
    case DLM_ERR_NUMERIC: return "non-finite number";
    case DLM_ERR_STATE: return "invalid state";
    case DLM_ERR_PEER: return "failed on another rank";
    }
    return "unknown status";
}

dlm_status dlm_error_push(dlm_status code, const char *file, int line, const char *func,
                          const char *fmt, ...)
{
    if (error_len >= DLM_ERROR_TEXT_MAX - 1) return code;
    char *p = error_text + error_len;
    size_t room = DLM_ERROR_TEXT_MAX - error_len;
    int n;
    if (fmt) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        n = snprintf(p, room, "%s (%s)\n    at %s:%d %s()\n", msg, dlm_status_name(code), file,
                     line, func);
    } else {
        n = snprintf(p, room, "    at %s:%d %s()\n", file, line, func);
    }
    if (n > 0) error_len += (size_t)n < room ? (size_t)n : room - 1;
    return code;
}

const char *dlm_error_text(void) { return error_text; }

void dlm_error_clear(void)
{
    error_len = 0;
    error_text[0] = '\0';
    error_agreed = 0;
}

void dlm_error_mark_agreed(void) { error_agreed = 1; }
int dlm_error_agreed(void) { return error_agreed; }
