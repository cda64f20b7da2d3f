/* The end of every program's main: one exit policy for all of them. */
#ifndef DLM_PROGRAM_H
#define DLM_PROGRAM_H

#include "core/status.h"

/* On error prints "[rank] <name> failed: <error stack>" and, when other
 * ranks may be waiting, aborts the MPI job; otherwise finalizes MPI.
 * Returns the exit status: 1 on error, ok_status on success. Call only
 * from main, after MPI_Init. */
int dlm_program_finish(const char *name, dlm_status st, int ok_status);

#endif
