/* A trained model for evaluation: the checkpoint (a file, or a run folder's
 * newest checkpoint that verifies), the run config stored in it (shape,
 * objective, schedule), and its raw or EMA weights.
 *
 *   char path[4096];
 *   DLM_CALL(dlm_eval_resolve_checkpoint(grid, "runs/a", path, sizeof path)); // collective
 *   dlm_ckpt_info info;
 *   DLM_CALL(dlm_eval_ckpt_info(path, &info));      // config, shape, step, has_ema
 *   dlm_model *m;
 *   uint64_t hash;
 *   DLM_CALL(dlm_eval_model_load(&info, 257, 256, info.has_ema, NULL, 0, 1, &m, &hash));
 *   ...
 *   dlm_model_destroy(&m);
 *   dlm_eval_ckpt_info_free(&info);
 */
#ifndef DLM_EVALMODEL_H
#define DLM_EVALMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "train/run_config.h"
#include "core/status.h"
#include "model/model.h"
#include "model/tp.h"
#include "parallel/grid.h"

typedef struct {
    char path[4096];
    int64_t step, tokens;
    char *config_text;  /* the run's resolved config (malloc'd) */
    dlm_run_config cfg; /* parsed from it */
    char shape[128];    /* "L=.. d=.. H=.. T=.. V=.. tied=..", V the padded vocabulary */
    int vocab_padded;
    int has_ema;        /* the checkpoint holds /ema */
} dlm_ckpt_info;

/* arg is a checkpoint file, or a run folder whose newest verifying
 * checkpoint is taken (the others are skipped with a warning). Collective
 * over g->world: rank 0 looks and every rank gets its answer, so all score
 * one file even if the run writes a checkpoint meanwhile; an error is
 * agreed. */
dlm_status dlm_eval_resolve_checkpoint(const dlm_grid *g, const char *arg, char *path, size_t len);

/* Reads the root attributes of a checkpoint (no tensors) and parses its config. */
dlm_status dlm_eval_ckpt_info(const char *path, dlm_ckpt_info *out);
void dlm_eval_ckpt_info_free(dlm_ckpt_info *info);

/* The vocabulary the run trained on: 257 bytes + separator for the
 * built-in synthetic source, else the metadata of its first training
 * shard. *found = 0 when that file is gone (the caller then trusts the
 * evaluation data, checked against the padded size in the shape). */
dlm_status dlm_eval_train_vocab(const dlm_ckpt_info *info, int *vocab_size, int *separator_id,
                                int *found);

/* Builds the model of info's shape for vocab_size data ids (BOS =
 * bos_id), this rank's shards under tp (NULL: serial) of pipeline stage
 * pp_rank of pp (the blocks split by FLOPs; 0 of 1: the whole model), and reads the EMA
 * (use_ema) or raw weights; every tensor is checked against its checksum.
 * *hash: FNV-1a of the whole weights read, the same on every rank that
 * read the same file whatever its tp rank. */
dlm_status dlm_eval_model_load(const dlm_ckpt_info *info, int vocab_size, int bos_id, int use_ema,
                               dlm_tp *tp, int pp_rank, int pp, dlm_model **out, uint64_t *hash);

#endif
