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

#include <hdf5.h>
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

/* Loads a checkpoint into the arenas (ema may be NULL: not read). Refuses
 * one whose shape summary differs from expected_shape (NULL: no check)
 * with both in the message, and names any tensor of the table that is
 * missing or has another shape, and any /params tensor the table lacks.
 * Every dataset read is checked against its checksum. st may be NULL.
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

/* ---- helpers shared by the io writers (run.h5, checkpoints) ----------- */

/* The file-access list for creating a writer's private temporary file:
 * serial sec2 driver, strong close, HDF5's file locking off (nobody else
 * opens a .tmp, and flock fails or is slow on some cluster filesystems).
 * Close it with H5Pclose.
 * Reads open with H5P_DEFAULT instead: HDF5 1.10 refuses to open a file
 * already open in the same process with another locking or close-degree
 * setting ("file locking flag values don't match"), so a reader matches
 * what h5py and other callers use. A read-only open takes a shared flock,
 * which never blocks other readers or the writer (it writes another inode). */
hid_t dlm_h5_fapl(void);

/* HDF5 error printing off for the duration of a call: errors are turned
 * into dlm_status with HDF5's innermost message instead. */
typedef struct {
    H5E_auto2_t func;
    void *data;
} dlm_h5_quiet;
void dlm_h5_quiet_begin(dlm_h5_quiet *q);
void dlm_h5_quiet_end(const dlm_h5_quiet *q);

/* Pushes an error (DLM_ERR_HDF5) with the message and HDF5's innermost
 * description from the current error stack; call right after the failing
 * HDF5 call, before any other. */
dlm_status dlm_h5_error(const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* For functions with a cleanup label: a negative HDF5 result sets st and jumps. */
#define DLM_H5_GOTO(st, expr, label, ...)                                              \
    do {                                                                               \
        if ((expr) < 0) {                                                              \
            (st) = dlm_h5_error(__FILE__, __LINE__, __func__, __VA_ARGS__);            \
            goto label;                                                                \
        }                                                                              \
    } while (0)

/* Scalar attributes on any object. Strings are variable-length UTF-8 (no
 * 64 KiB header limit; h5py reads them as str). *out is malloc'd. */
herr_t dlm_h5_attr_write_str(hid_t obj, const char *name, const char *value);
herr_t dlm_h5_attr_write_i64(hid_t obj, const char *name, int64_t value);
herr_t dlm_h5_attr_write_u64(hid_t obj, const char *name, uint64_t value);
herr_t dlm_h5_attr_read_str(hid_t obj, const char *name, char **out);
herr_t dlm_h5_attr_read_i64(hid_t obj, const char *name, int64_t *value);
herr_t dlm_h5_attr_read_u64(hid_t obj, const char *name, uint64_t *value);

/* Makes a closed temporary file durable and puts it in place: fsync(tmp),
 * the fault point (e.g. "ckpt.rename"), rename(tmp, final), fsync of the
 * folder. */
dlm_status dlm_durable_replace(const char *tmp, const char *final, const char *fault_point);

#endif
