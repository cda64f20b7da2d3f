/* The error frame of a failed MPI call. */
#include "core/mpicall.h"

dlm_status dlm_mpi_error(int code, const char *file, int line, const char *func, const char *call)
{
    char reason[MPI_MAX_ERROR_STRING] = "unknown MPI error";
    int len = 0;
    if (MPI_Error_string(code, reason, &len) != MPI_SUCCESS) len = 0;
    reason[len > 0 && len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = '\0';
    return dlm_error_push(DLM_ERR_MPI, file, line, func, "%s failed: %s", call,
                          len > 0 ? reason : "unknown MPI error");
}
