/* Collective decisions on errors and flags, so error paths stay
 * collective: every rank learns whether any rank failed, and one rank's
 * message speaks for the job.
 *
 *   st = dlm_agree(comm, st);   // every rank learns if any failed
 */
#ifndef DLM_AGREE_H
#define DLM_AGREE_H

#include <mpi.h>

#include "core/status.h"

/* Collective over comm: DLM_OK when no rank failed. Otherwise the lowest
 * failing rank gets st back (its message is the job's one message) and
 * every other rank DLM_ERR_PEER, a quiet error naming that rank; the error
 * is marked agreed (dlm_error_agreed), so main ends all ranks together
 * without MPI_Abort. A rank whose st is already DLM_ERR_PEER (agreed in a
 * smaller group first) speaks only if no rank holds a real error. One
 * MPI_Allreduce of an int (two queries of comm). */
dlm_status dlm_agree(MPI_Comm comm, dlm_status st);

/* Collective over comm: 1 when flag is non-zero on any rank. */
dlm_status dlm_any(MPI_Comm comm, int flag, int *any);

#endif
