/* The run file <run_dir>/run.h5: one row of training metrics per logged
 * step and one row per validation, kept in memory and written whole at
 * each log interval to run.h5.tmp, which is fsynced and renamed over
 * run.h5 (then the folder is fsynced).
 *
 * So run.h5 is always a complete file, the old one or the new one: a kill
 * at any moment leaves every row up to the last finished flush; a reader
 * (h5py, h5dump) that holds run.h5 open keeps reading the file it opened,
 * and never takes a lock the writer needs; a resumed run loads the rows,
 * drops those after its checkpoint's step and appends from there.
 *
 *   dlm_runfile_attrs a = {.config = cfg_text, .layout = "dp=1 tp=1 pp=1", ...};
 *   dlm_runfile *rf;
 *   DLM_CALL(dlm_runfile_open(run_dir, &a, resumed ? ckpt_step : -1, &rf));
 *   ... each step:   dlm_runfile_add_train(rf, &row);
 *   ... each log:    DLM_CALL(dlm_runfile_flush(rf));
 *   ... checkpoint:  DLM_CALL(dlm_runfile_flush(rf)); then dlm_ckpt_save
 *   dlm_runfile_close(&rf);
 *
 * Flush before every checkpoint: a resume from checkpoint S keeps the
 * file's rows up to S, so rows up to S that were only in memory when the
 * checkpoint was written would be missing after a kill.
 *
 * File layout (h5py: f["train/loss"][:], f.attrs["config"]):
 *   /train/{step, tokens} int64, /train/{loss, lr, grad_norm, tokens_per_s,
 *       gflops, step_ms} float64: one row per logged training step
 *   /val/step int64, /val/{loss, bits_per_byte, stderr} float64 (stderr NaN
 *       where not an estimate)
 *   each dataset has a string attribute "units"
 *   root attributes (strings): format, config, layout, code_revision,
 *       hosts, start_time
 * One writer per run folder (rank 0). */
#ifndef DLM_RUNFILE_H
#define DLM_RUNFILE_H

#include <stdint.h>

#include "core/status.h"

typedef struct {
    int64_t step, tokens;
    double loss;          /* nats per token */
    double lr, grad_norm; /* grad_norm before clipping */
    double tokens_per_s, gflops, step_ms;
} dlm_train_row;

typedef struct {
    int64_t step;
    double loss;          /* nats per token */
    double bits_per_byte;
    double stderr_;       /* standard error of loss; NaN when not an estimate */
} dlm_val_row;

/* The root attributes. A NULL field keeps the value in an existing run.h5
 * (or is written as "" for a new one). */
typedef struct {
    const char *config;        /* the resolved config text */
    const char *layout;        /* e.g. "dp=1 tp=1 pp=1" */
    const char *code_revision;
    const char *hosts;
    const char *start_time;
} dlm_runfile_attrs;

typedef struct dlm_runfile dlm_runfile;

/* Opens dir/run.h5's in-memory image, loading its rows when the file
 * exists and dropping those with step > keep_through_step (INT64_MAX: keep
 * all; -1: a fresh run that replaces the old rows). Nothing is written
 * until the first flush. attrs may be NULL. */
dlm_status dlm_runfile_open(const char *dir, const dlm_runfile_attrs *attrs,
                            int64_t keep_through_step, dlm_runfile **out);

/* Appends a row; steps must increase strictly within each table, so a
 * resumed run that forgot to drop rows fails here instead of duplicating. */
dlm_status dlm_runfile_add_train(dlm_runfile *rf, const dlm_train_row *row);
dlm_status dlm_runfile_add_val(dlm_runfile *rf, const dlm_val_row *row);

/* Writes every row to run.h5.tmp and atomically replaces run.h5. */
dlm_status dlm_runfile_flush(dlm_runfile *rf);

/* Rows held in memory. */
void dlm_runfile_counts(const dlm_runfile *rf, int64_t *n_train, int64_t *n_val);

/* Frees the image (does not flush); safe on NULL, sets *rf to NULL. */
void dlm_runfile_close(dlm_runfile **rf);

/* Reads a run file's rows (malloc'd arrays, NULL when empty; free()
 * them). train/n_train or val/n_val may be NULL to skip that table. */
dlm_status dlm_runfile_read(const char *path, dlm_train_row **train, int64_t *n_train,
                            dlm_val_row **val, int64_t *n_val);

/* One root string attribute of a run file (malloc'd; free() it). */
dlm_status dlm_runfile_read_attr(const char *path, const char *name, char **value);

#endif
