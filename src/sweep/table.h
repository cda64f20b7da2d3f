/* A table of runs as HDF5 columns: each column a 1-D dataset of n rows
 * (float64, int64 or variable-length UTF-8 strings), read straight from an
 * array of structs by offset and stride. plan.h5 and sweep.h5 use it, so
 * their columns read alike (h5py: f["runs/n_params"][:]). */
#ifndef DLM_SWEEP_TABLE_H
#define DLM_SWEEP_TABLE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum {
    DLM_COL_F64,  /* double field */
    DLM_COL_I64,  /* int64_t field */
    DLM_COL_INT,  /* int field, stored as int64 */
    DLM_COL_CHARS /* char[] field */
} dlm_col_kind;

typedef struct {
    const char *name;
    dlm_col_kind kind;
    size_t offset;
} dlm_col;

#define DLM_COL(st, kind, field) {#field, DLM_COL_##kind, offsetof(st, field)}

/* Writes each column of rows (n structs of stride bytes) into group g;
 * what names the file in messages. */
dlm_status dlm_table_write(hid_t g, const char *what, const dlm_col *cols, int n_cols,
                           const void *rows, size_t stride, int64_t n);
/* One column of strings given as pointers. */
dlm_status dlm_table_write_strings(hid_t g, const char *what, const char *name,
                                   const char *const *v, int64_t n);

#endif
