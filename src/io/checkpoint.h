/* Checkpoints: <run_dir>/checkpoints/step-NNNNNNNN.h5, one HDF5 file per
 * checkpoint holding every parameter tensor, its EMA and both AdamW moments
 * as full logical arrays, and the state that makes a resume exact.
 *
 *   char path[4096];
 *   dlm_ckpt_state st = {.step = step, .tokens = tokens, .adam_t = opt->t, ...,
 *                        .config_text = cfg_text, .shape = "L=2 d=64 H=4 T=64 V=320 tied=0"};
 *   DLM_CALL(dlm_ckpt_write(run_dir, m->table, m->n_tensors, params, ema, adam_m, adam_v,
 *                           &st, 3, path, sizeof path));        // keeps the 3 newest
 *   ... on resume:
 *   int found;
 *   DLM_CALL(dlm_ckpt_find_latest(run_dir, path, sizeof path, &found));
 *   if (found) DLM_CALL(dlm_ckpt_read(path, m->table, m->n_tensors, shape, params, ema,
 *                                     adam_m, adam_v, &st));
 *   dlm_ckpt_state_free(&st);
 *
 * One file:
 *   /params/<name>, /ema/<name>, /adam_m/<name>, /adam_v/<name>
 *       float32 (little-endian IEEE), the table's shape (1-D or 2-D), contiguous;
 *       attribute "checksum" (uint64, see dlm_ckpt_checksum)
 *   root attributes: format ("dlm-checkpoint 1"), step, tokens, adam_t (int64),
 *       loader_seed, loader_step, rng_seed (uint64), config, shape,
 *       checksum_algorithm (strings), and complete (int32 = 1) written last.
 *
 * Writing goes to step-NNNNNNNN.h5.tmp, which is closed, fsynced, renamed
 * into place, and the folder fsynced: a crash at any moment leaves the
 * previous checkpoints as they were. A checkpoint "verifies" when it has
 * the completion attribute and every dataset's checksum matches its data.
 * One writer per run folder (rank 0 today). */
#ifndef DLM_CHECKPOINT_H
#define DLM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "model/model.h"

typedef struct {
    int64_t step;          /* optimizer steps taken */
    int64_t tokens;        /* training tokens seen */
    int64_t adam_t;        /* AdamW's update count (bias correction) */
    uint64_t loader_seed, loader_step;
    uint64_t rng_seed;
    /* On write: owned by the caller. On read: malloc'd copies, released by
     * dlm_ckpt_state_free. */
    const char *config_text; /* the resolved config */
    const char *shape;       /* model shape summary, compared on load */
} dlm_ckpt_state;

/* Writes checkpoint st->step of run_dir (checkpoints/ is created if
 * needed). params, adam_m, adam_v (and ema unless NULL) are arenas laid
 * out by table: tensor i is arr[table[i].offset .. + table[i].numel).
 * After the rename, keeps the keep_last newest checkpoints with a step up
 * to st->step (keep_last <= 0: keep all), deletes the older ones and any
 * *.h5.tmp a killed writer left. Checkpoints with a later step (from an
 * earlier attempt of the run) are left in place with a warning.
 * path_out (may be NULL) gets the final path. */
dlm_status dlm_ckpt_write(const char *run_dir, const dlm_param_info *table, int n_tensors,
                          const float *params, const float *ema, const float *adam_m,
                          const float *adam_v, const dlm_ckpt_state *st, int keep_last,
                          char *path_out, size_t path_len);

/* DLM_OK when path verifies; otherwise DLM_ERR_FORMAT (or DLM_ERR_IO when
 * it cannot be opened) with the reason, naming the dataset at fault, also
 * copied to why (may be NULL). Reads the whole file. */
dlm_status dlm_ckpt_verify(const char *path, char *why, size_t why_len);

/* The newest checkpoint of run_dir that verifies; each newer one that does
 * not is named in a warning with its reason and skipped. *found = 0 (and
 * DLM_OK) when there is none. Temporary files are never candidates. */
dlm_status dlm_ckpt_find_latest(const char *run_dir, char *path_out, size_t len, int *found);

/* Loads a checkpoint into the arenas; each of params, ema, adam_m, adam_v
 * may be NULL and that group is then not read at all (evaluation reads one
 * group of four), but one must be given. Refuses one whose shape summary
 * differs from expected_shape (NULL: no check) with both in the message,
 * and names any tensor of the table that is missing or has another shape,
 * and any tensor of the first group read that the table lacks. Every
 * dataset read is checked against its checksum. st may be NULL. On an
 * error the arrays may be partly overwritten. */
dlm_status dlm_ckpt_read(const char *path, const dlm_param_info *table, int n_tensors,
                         const char *expected_shape, float *params, float *ema, float *adam_m,
                         float *adam_v, dlm_ckpt_state *st);

/* Frees the strings dlm_ckpt_read allocated; safe on a zeroed state. */
void dlm_ckpt_state_free(dlm_ckpt_state *st);

/* checkpoints/step-<8-digit step>.h5 under run_dir. */
dlm_status dlm_ckpt_path(const char *run_dir, int64_t step, char *out, size_t len);

/* The dataset checksum: sum over i (mod 2^64) of mix64((i << 32) ^ bits_i),
 * bits_i the IEEE bits of float i and mix64 SplitMix64's finaliser. Each
 * term is a bijection of bits_i, so any single changed value changes the
 * sum; and a sum of terms keyed by the global index is what each rank can
 * compute for its own hyperslab and MPI_Allreduce, when writes become
 * collective. first is the global index of x[0]. */
uint64_t dlm_ckpt_checksum(const float *x, size_t n, uint64_t first);
#define DLM_CKPT_CHECKSUM_ALGORITHM \
    "sum mod 2^64 over i of splitmix64_final((i << 32) ^ float32_bits[i]), i in C order"

#endif
