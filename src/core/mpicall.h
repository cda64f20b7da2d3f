/* DLM_MPI: an MPI call whose failure climbs to main as DLM_ERR_MPI with
 * the call and MPI's own reason. Communicators must return errors rather
 * than abort (dlm_program_start sets MPI_ERRORS_RETURN on the world; a
 * communicator made from it inherits that).
 *
 *   DLM_MPI(MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_SUM, comm));
 */
#ifndef DLM_MPICALL_H
#define DLM_MPICALL_H

#include <mpi.h>

#include "core/status.h"

/* Pushes DLM_ERR_MPI naming the failed call and MPI's error string for code. */
dlm_status dlm_mpi_error(int code, const char *file, int line, const char *func,
                         const char *call);

#define DLM_MPI(x)                                                                    \
    do {                                                                              \
        int dlm_m_ = (x);                                                             \
        if (dlm_m_ != MPI_SUCCESS) return dlm_mpi_error(dlm_m_, __FILE__, __LINE__, __func__, #x); \
    } while (0)

#endif
