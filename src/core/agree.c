/* The collective agreement on errors: see agree.h. */
#include "core/agree.h"

#include <limits.h>

#include "core/mpicall.h"

dlm_status dlm_agree(MPI_Comm comm, dlm_status st)
{
    int rank, size;
    DLM_MPI(MPI_Comm_rank(comm, &rank));
    DLM_MPI(MPI_Comm_size(comm, &size));
    /* the lowest failing rank speaks for all: one message whether one rank
     * failed or all of them did the same (a bad layout, a bad config). A
     * rank holding a quiet peer error (from an agreement in a smaller
     * group) ranks after every real failure, so nested agreements keep the
     * message of the rank that failed. */
    int mine = st == DLM_OK ? INT_MAX : st == DLM_ERR_PEER ? size + rank : rank, speaker = mine;
    int e = MPI_Allreduce(&mine, &speaker, 1, MPI_INT, MPI_MIN, comm);
    if (e != MPI_SUCCESS) {
        /* the agreement itself failed: no rank can be sure of the others */
        if (st != DLM_OK) dlm_error_push(st, __FILE__, __LINE__, __func__, NULL);
        return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Allreduce (agreeing on errors)");
    }
    if (speaker == INT_MAX) return DLM_OK;
    if (speaker >= size) speaker -= size;
    dlm_error_mark_agreed();
    if (rank == speaker) return dlm_error_push(st, __FILE__, __LINE__, __func__, NULL);
    dlm_error_clear();
    dlm_error_mark_agreed();
    return dlm_error_push(DLM_ERR_PEER, __FILE__, __LINE__, __func__,
                          "rank %d failed (its message says why)", speaker);
}

dlm_status dlm_any(MPI_Comm comm, int flag, int *any)
{
    int mine = flag != 0;
    DLM_MPI(MPI_Allreduce(&mine, any, 1, MPI_INT, MPI_MAX, comm));
    return DLM_OK;
}
