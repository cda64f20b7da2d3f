/* Whole tensors from tensor-parallel shards and back: the tp group's rank
 * 0 assembles every tensor of the model in the serial table's layout (for
 * the checkpoint writer), or cuts its shards out of whole ones (resume).
 * A stopgap until checkpoints are written collectively: rank 0 holds the
 * whole model once per arena. */
#ifndef DLM_SHARDS_H
#define DLM_SHARDS_H

#include <mpi.h>

#include "core/status.h"
#include "model/model.h"

/* The serial table of cfg and an arena for it (free both with free()). */
dlm_status dlm_shards_full_table(const dlm_model_config *cfg, dlm_param_info **table, int *n,
                                 size_t *floats);

/* Collective over tp_comm (rank r holds the shards of layout {r, size}):
 * on rank 0, full (laid out by the serial table full_table) gets every
 * tensor whole from each rank's local arena (laid out by m's table). full
 * and full_table are only read on rank 0. */
dlm_status dlm_shards_gather(MPI_Comm tp_comm, const dlm_model *m, const float *local,
                             const dlm_param_info *full_table, float *full);
/* The reverse: each rank's local arena gets its shards of rank 0's full. */
dlm_status dlm_shards_scatter(MPI_Comm tp_comm, const dlm_model *m, float *local,
                              const dlm_param_info *full_table, const float *full);

#endif
