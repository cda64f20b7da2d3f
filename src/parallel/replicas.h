/* Replicas must stay bit-identical: data-parallel ranks hold the same
 * shard, and tensor-parallel ranks the same copy of each replicated tensor
 * (LayerNorms, row-parallel biases). A drift would go unseen in the loss,
 * so the run compares checksums now and then and stops naming the tensor. */
#ifndef DLM_REPLICAS_H
#define DLM_REPLICAS_H

#include "core/status.h"
#include "model/model.h"
#include "parallel/grid.h"

/* Collective over g's dp and tp groups; DLM_ERR_STATE naming the first
 * tensor whose copies differ (the same verdict on every rank). */
dlm_status dlm_replicas_check(const dlm_grid *g, const dlm_model *m, int64_t step);

#endif
