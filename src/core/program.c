/* Program start (MPI with its thread level, the log's rank) and exit (error report, MPI_Abort or
 * MPI_Finalize). */
#include "core/program.h"

#include <mpi.h>
#include <stdio.h>

#include "core/log.h"
#include "core/mpicall.h"

dlm_status dlm_program_start(int *argc, char ***argv, int *rank, int *size)
{
    if (rank) *rank = 0;
    if (size) *size = 1;
    int provided = MPI_THREAD_SINGLE;
    DLM_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    DLM_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    int r = 0, s = 1;
    DLM_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &r));
    DLM_MPI(MPI_Comm_size(MPI_COMM_WORLD, &s));
    dlm_log_set_rank(r);
    if (r != 0) dlm_log_set_level(DLM_LOG_WARN); /* rank 0 speaks for the job */
    if (rank) *rank = r;
    if (size) *size = s;
    /* MPI's thread levels are ordered: SINGLE < FUNNELED < SERIALIZED < MULTIPLE */
    DLM_CHECK(provided >= MPI_THREAD_FUNNELED, DLM_ERR_MPI,
              "the MPI library gives thread level %d, below MPI_THREAD_FUNNELED (%d) that "
              "BLIS and OpenMP threads beside MPI need; use an MPI built with thread support",
              provided, MPI_THREAD_FUNNELED);
    return DLM_OK;
}

int dlm_program_finish(const char *name, dlm_status st, int ok_status)
{
    int rank = 0, size = 1, up = 0;
    MPI_Initialized(&up); /* not when MPI_Init_thread itself failed */
    if (up) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    if (st != DLM_OK) {
        /* an agreed error: every rank is on its way out, the lowest failing
         * one speaks and the others (DLM_ERR_PEER) stay quiet */
        int agreed = dlm_error_agreed();
        if (st != DLM_ERR_PEER || !agreed)
            fprintf(stderr, "[%d] %s failed: %s", rank, name, dlm_error_text());
        if (size > 1 && !agreed) MPI_Abort(MPI_COMM_WORLD, 1); /* the other ranks may be waiting */
        if (up) MPI_Finalize();
        return 1;
    }
    MPI_Finalize();
    return ok_status;
}
