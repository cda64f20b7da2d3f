/* This rank's part of a checkpoint at any layout: for every tensor of the
 * whole model and each of the four groups (params, EMA, AdamW m and v),
 * the rectangle this rank holds (its tensor-parallel shard, if its
 * pipeline stage has the tensor) and the rows it writes. Within the
 * model-parallel group the tensor's owner writes (a split tensor's shards
 * each; a replicated tensor's tp rank 0; a tied head's first stage);
 * across data-parallel replicas the first one, or under ZeRO-1 the owner
 * of each row range.
 *
 *   dlm_ckpt_parts parts;
 *   float *arrays[4] = {params, ema, adam_m, adam_v};
 *   DLM_CALL(dlm_ckpt_parts_create(grid, model, zero, n_zero, arrays, &parts));
 *   DLM_CALL(dlm_ckpt_save(run_dir, &parts.layout, &state, 3, path, sizeof path));
 *   dlm_ckpt_parts_destroy(&parts);
 */
#ifndef DLM_CKPT_PARTS_H
#define DLM_CKPT_PARTS_H

#include "core/arena.h"
#include "io/checkpoint.h"
#include "model/model.h"
#include "parallel/grid.h"

typedef struct {
    dlm_param_info *full_table; /* the whole model's table: the file's datasets */
    int n_full;
    dlm_ckpt_piece *pieces[4];
    dlm_ckpt_layout layout;     /* over the grid's world; points into the above */
} dlm_ckpt_parts;

/* arrays: this rank's params (laid out by m's table), EMA (NULL: none),
 * AdamW m and v. zero (n_zero > 0): this rank's ZeRO-1 ranges of the
 * parameter arena, each within one run of whole rows; the EMA and moments
 * then hold only those, concatenated in this order, and each rank writes
 * every group's rows in its ranges. n_zero = 0: every array laid out like
 * the parameters, written by the first data-parallel replica. */
dlm_status dlm_ckpt_parts_create(const dlm_grid *g, const dlm_model *m, const dlm_range *zero,
                                 int n_zero, float *const arrays[4], dlm_ckpt_parts *out);
void dlm_ckpt_parts_destroy(dlm_ckpt_parts *p);

#endif
