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
 * Writing goes to step-NNNNNNNN.h5.tmp, which is flushed, closed, renamed
 * into place, and the folder fsynced: a crash of any rank at any moment
 * leaves the previous checkpoints as they were. A checkpoint "verifies"
 * when it has the completion attribute and every dataset's checksum
 * matches its data. Many ranks write one file together (dlm_ckpt_save),
 * each its own rows; one run (one set of ranks) writes a run folder. */
#ifndef DLM_CHECKPOINT_H
#define DLM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

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

/* What one rank holds of one tensor of one group, and what of it is its
 * own to write. The full tensor is seen as rows x cols (a 1-D tensor as n
 * x 1); the rank holds rows [row0, row0 + rows) x columns [col0, col0 +
 * cols), row-major in its array from offset (rows = 0: nothing). Of those,
 * held rows [own0, own0 + own_rows) are this rank's to write, and to count
 * in the checksum when loading: over the ranks sharing a file every element
 * has exactly one owner. */
typedef struct {
    size_t offset;
    int64_t row0, rows, col0, cols;
    int64_t own0, own_rows;
} dlm_ckpt_piece;

/* One rank's part of a checkpoint. Every rank sharing the file passes the
 * same table (the whole model's: names and full shapes, in file order) and
 * the same set of groups; a rank's pieces say what of each tensor it holds. */
typedef struct {
    MPI_Comm comm;                   /* the ranks sharing the file; MPI_COMM_NULL: this process */
    const dlm_param_info *table;     /* the whole model */
    int n_tensors;
    float *arrays[4];                /* params, EMA (NULL: none), AdamW m, v: this rank's arrays */
    const dlm_ckpt_piece *pieces[4]; /* n_tensors each, for every array given */
} dlm_ckpt_layout;

/* Writes checkpoint st->step of run_dir (checkpoints/ is created if
 * needed), collectively over L->comm, whose ranks must share the file
 * system (checked: each finds what rank 0 wrote into the temporary file
 * first). The file is created with the MPI-IO
 * driver, datasets and attributes created by every rank alike, each rank
 * writing its own rows of each tensor (a collective transfer; the other
 * ranks select nothing); each dataset's checksum is the sum of the ranks'
 * partial checksums (one reduction). Then a global flush and close, and
 * rank 0 renames the file into place, syncs the folder, keeps the
 * keep_last newest checkpoints with a step up to st->step (keep_last <= 0:
 * keep all), deletes the older ones and any *.h5.tmp a killed writer
 * left; checkpoints with a later step (from an earlier attempt of the run)
 * are left in place with a warning. The outcome is agreed, except that a
 * failure inside the collective write (an I/O error on one rank) cannot
 * be and returns unagreed: main then ends the job, and the previous
 * checkpoints are untouched. path_out (may be NULL) gets the final path. */
dlm_status dlm_ckpt_save(const char *run_dir, const dlm_ckpt_layout *L, const dlm_ckpt_state *st,
                         int keep_last, char *path_out, size_t path_len);

/* Loads the checkpoint at path into each rank's pieces, collectively over
 * L->comm (each rank opens the file for reading on its own and reads only
 * the rectangles it holds); the groups read are those with an array. The
 * ranks' partial checksums of the rows they own are summed and compared
 * with each dataset's; the verdict is agreed. Refuses a file whose shape
 * summary differs from expected_shape (NULL: no check), a table tensor
 * missing or of another shape, and a tensor of the first group read that
 * the table lacks. *unverified (may be NULL) is set on every rank when the
 * failure is the file's integrity (incomplete, unreadable, a checksum
 * mismatch) rather than a model that does not match, a file some rank
 * cannot open (run.dir not shared) or memory. st may be NULL. */
dlm_status dlm_ckpt_load(const char *path, const dlm_ckpt_layout *L, const char *expected_shape,
                         dlm_ckpt_state *st, int *unverified);

/* The newest checkpoint of run_dir that loads, collectively (rank 0 lists
 * the folder): each newer one that does not verify is named in a warning
 * with its reason and skipped; any other failure stops. *found = 0 (and
 * DLM_OK) when there is none; the arrays may then hold a skipped file's
 * values. path_out gets the path loaded. */
dlm_status dlm_ckpt_load_latest(const char *run_dir, const dlm_ckpt_layout *L,
                                const char *expected_shape, dlm_ckpt_state *st, char *path_out,
                                size_t len, int *found);

/* One process, whole tensors: dlm_ckpt_save and dlm_ckpt_load with every
 * tensor whole at its table offset in each array (MPI_COMM_NULL). */
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

/* Loads a checkpoint into whole-tensor arenas (see dlm_ckpt_write); each
 * of params, ema, adam_m, adam_v may be NULL and that group is then not
 * read at all (evaluation reads one group of four), but one must be given.
 * On an error the arrays may be partly overwritten. */
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
