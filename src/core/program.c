/* Program start (MPI, the log's rank) and exit (error report, MPI_Abort or
 * MPI_Finalize). */
#include "core/program.h"

#include <mpi.h>
#include <stdio.h>

#include "core/log.h"

void dlm_program_start(int *argc, char ***argv, int *rank, int *size)
{
    MPI_Init(argc, argv);
    int r = 0, s = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    dlm_log_set_rank(r);
    if (rank) *rank = r;
    if (size) *size = s;
}

int dlm_program_finish(const char *name, dlm_status st, int ok_status)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (st != DLM_OK) {
        fprintf(stderr, "[%d] %s failed: %s", rank, name, dlm_error_text());
        if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1); /* the other ranks may be waiting */
        MPI_Finalize();
        return 1;
    }
    MPI_Finalize();
    return ok_status;
}
