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

/* The same across pipeline stages: each stage's tp group assembles its
 * tensors on its tp rank 0 (as above), which sends them over pp_comm to
 * pp rank 0, where full (the serial table's layout) gets every tensor of
 * every stage (found by its id). stage_first / stage_count: the split of
 * the blocks, pp entries. Collective over tp_comm, then over pp_comm among
 * the tp ranks 0; full and full_table are only used on pp rank 0's tp rank
 * 0. On one stage, dlm_shards_gather. */
dlm_status dlm_shards_gather_stages(MPI_Comm tp_comm, MPI_Comm pp_comm, const dlm_model *m,
                                    const int *stage_first, const int *stage_count,
                                    const float *local, const dlm_param_info *full_table,
                                    float *full);
/* The reverse: every stage's tp ranks get their shards of pp rank 0's full. */
dlm_status dlm_shards_scatter_stages(MPI_Comm tp_comm, MPI_Comm pp_comm, const dlm_model *m,
                                     const int *stage_first, const int *stage_count, float *local,
                                     const dlm_param_info *full_table, const float *full);

#endif
