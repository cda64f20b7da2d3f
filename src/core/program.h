/* The start and end of every program's main: MPI set up the same way, and
 * one exit policy for all of them. */
#ifndef DLM_PROGRAM_H
#define DLM_PROGRAM_H

#include "core/status.h"

/* MPI_Init_thread asking for MPI_THREAD_FUNNELED (only the main thread
 * calls MPI; BLIS and OpenMP threads never do), refused if the library
 * gives less; errors on the world communicator return to the caller
 * (DLM_MPI) instead of aborting; then this process's rank and the job's
 * size (either pointer may be NULL), and the rank prefix of every log
 * line. On an error, pass it to dlm_program_finish. */
dlm_status dlm_program_start(int *argc, char ***argv, int *rank, int *size);

/* On error prints "[rank] <name> failed: <error stack>" and, when other
 * ranks may be waiting, aborts the MPI job; otherwise finalizes MPI. An
 * agreed error (dlm_agree: every rank knows) finalizes instead, and a
 * DLM_ERR_PEER one prints nothing (the failing rank's message is the one).
 * Ranks other than 0 log warnings and errors only.
 * Returns the exit status: 1 on error, ok_status on success. Call only
 * from main, after dlm_program_start. */
int dlm_program_finish(const char *name, dlm_status st, int ok_status);

#endif
