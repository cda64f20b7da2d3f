/* ScaLAPACK on the tensor-parallel shards where they are: two BLACS grids
 * over the tp communicator (1 x tp for column-parallel weights, tp x 1 for
 * row-parallel ones) and, on them, the operations that need a whole
 * sharded matrix: Muon's Newton-Schulz (PSGEMM).
 *
 * A row-major shard is the column-major transpose: a column-parallel
 * weight W (out x in, split by rows of out) is, column-major, the in x out
 * matrix W^T on the 1 x tp grid in blocks of in x out/tp; a row-parallel
 * one (split by columns of in) is W^T on the tp x 1 grid in blocks of
 * in/tp x out. No shard is gathered.
 *
 *   dlm_scalapack *sl;
 *   DLM_CALL(dlm_scalapack_create(grid->tp_comm, &sl));
 *   opt->ns = dlm_scalapack_ns(sl);                 // Muon across the shards
 *   ...
 *   dlm_scalapack_destroy(&sl);
 */
#ifndef DLM_PARALLEL_SCALAPACK_H
#define DLM_PARALLEL_SCALAPACK_H

#include <mpi.h>
#include <stdint.h>

#include "core/status.h"
#include "model/model.h"
#include "optim/muon.h"

typedef struct dlm_scalapack dlm_scalapack;

/* comm: the tensor-parallel group (MPI_COMM_NULL: a group of one).
 * Collective over comm. */
dlm_status dlm_scalapack_create(MPI_Comm comm, dlm_scalapack **out);
void dlm_scalapack_destroy(dlm_scalapack **s);

/* The Newton-Schulz handle Muon takes (muon.h); valid while s lives. */
dlm_ns_group *dlm_scalapack_ns(dlm_scalapack *s);

/* Newton-Schulz on W (rows x cols, row-major) of which this rank holds the
 * shard (split ROWS or COLS), in place. Collective over the group. */
dlm_status dlm_scalapack_newton_schulz(dlm_scalapack *s, float *shard, int64_t rows,
                                       int64_t cols, dlm_split_kind split, int steps);

/* The file behind sgemm_, the BLAS ScaLAPACK calls (it should be BLIS's
 * library): for the start-up log. */
const char *dlm_scalapack_blas_library(void);

#endif
