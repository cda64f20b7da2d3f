/* Which blocks each pipeline stage runs: the embedding with the first
 * stage, the final norm, head and loss with the last, the L blocks split
 * into pp contiguous runs, either as the user lists them
 * (parallel.stage_layers) or balanced by FLOPs (the split whose most
 * expensive stage is cheapest; on a tie, the one with the fewest blocks
 * in earlier stages, which hold more micro-batches under 1F1B).
 *
 *   dlm_stage_costs costs;
 *   dlm_stages_costs(&model_cfg, &costs);
 *   int first[8], count[8];
 *   DLM_CALL(dlm_stages_split(L, pp, NULL, 0, &costs, first, count));
 *   // stage s runs blocks first[s] .. first[s] + count[s] - 1
 */
#ifndef DLM_STAGES_H
#define DLM_STAGES_H

#include "core/status.h"
#include "model/model.h"

/* Training FLOPs per token of each piece (the terms of
 * dlm_model_flops_per_token): a block, the embedding (nothing but a
 * lookup: 0), the head (final norm and LM head). */
typedef struct {
    double block, embed, head;
} dlm_stage_costs;

void dlm_stages_costs(const dlm_model_config *cfg, dlm_stage_costs *out);

/* first[s], count[s] for s < pp. list (n_list entries, or NULL / 0 for
 * balanced): the user's blocks per stage, which must have pp entries, each
 * >= 1, summing to L. Every stage gets at least one block, so pp > L is
 * refused. Messages name parallel.pp and parallel.stage_layers. */
dlm_status dlm_stages_split(int L, int pp, const int *list, int n_list,
                            const dlm_stage_costs *costs, int *first, int *count);

/* Stage pp_rank's model of cfg under tp (NULL: one rank): the split by
 * FLOPs, or the user's list (as dlm_stages_split) into first and count (pp
 * entries each), then dlm_model_create_stage of this rank's blocks. */
dlm_status dlm_stages_model_create(const dlm_model_config *cfg, dlm_tp *tp, int pp_rank, int pp,
                                   const int *list, int n_list, int *first, int *count,
                                   dlm_model **out);

/* "stage 0: embedding, blocks 0-2, stage 1: blocks 3-5, head": a split
 * for the log. */
void dlm_stages_describe(int pp, const int *first, const int *count, char *buf, int len);

#endif
