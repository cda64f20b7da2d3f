/* Tables of runs as HDF5 columns (see table.h). */
#include "sweep/table.h"

#include <stdlib.h>
#include <string.h>

#include "io/h5.h"

static dlm_status write_column(hid_t g, const char *what, const char *name, hid_t type,
                               const void *buf, int64_t n)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = -1, ds = -1;
    dlm_status st = DLM_OK;
    DLM_H5_GOTO(st, sp = H5Screate_simple(1, dims, NULL), done, "%s: column %s", what, name);
    DLM_H5_GOTO(st, ds = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), done,
                "%s: creating column %s", what, name);
    if (n > 0) DLM_H5_GOTO(st, H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), done,
                           "%s: writing column %s", what, name);
done:
    if (ds >= 0) H5Dclose(ds);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

dlm_status dlm_table_write_strings(hid_t g, const char *what, const char *name,
                                   const char *const *v, int64_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    DLM_H5(t, "%s: string type", what);
    dlm_status st = DLM_OK;
    DLM_H5_GOTO(st, H5Tset_size(t, H5T_VARIABLE), done, "%s: string type", what);
    DLM_H5_GOTO(st, H5Tset_cset(t, H5T_CSET_UTF8), done, "%s: string type", what);
    st = write_column(g, what, name, t, v, n);
done:
    H5Tclose(t);
    return st;
}

/* one scratch buffer serves every kind of column */
_Static_assert(sizeof(const char *) <= sizeof(double) && sizeof(int64_t) <= sizeof(double), "column buffer");

dlm_status dlm_table_write(hid_t g, const char *what, const dlm_col *cols, int n_cols,
                           const void *rows, size_t stride, int64_t n)
{
    void *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    DLM_CHECK(buf != NULL, DLM_ERR_NOMEM, "%s: a column of %lld rows", what, (long long)n);
    dlm_status st = DLM_OK;
    for (int c = 0; c < n_cols && st == DLM_OK; c++) {
        const char *base = (const char *)rows + cols[c].offset;
        switch (cols[c].kind) {
        case DLM_COL_F64:
            for (int64_t i = 0; i < n; i++) memcpy((double *)buf + i, base + i * stride, sizeof(double));
            st = write_column(g, what, cols[c].name, H5T_NATIVE_DOUBLE, buf, n);
            break;
        case DLM_COL_I64:
        case DLM_COL_INT:
            for (int64_t i = 0; i < n; i++) {
                int64_t v;
                if (cols[c].kind == DLM_COL_I64) memcpy(&v, base + i * stride, sizeof v);
                else {
                    int x;
                    memcpy(&x, base + i * stride, sizeof x);
                    v = x;
                }
                ((int64_t *)buf)[i] = v;
            }
            st = write_column(g, what, cols[c].name, H5T_NATIVE_INT64, buf, n);
            break;
        case DLM_COL_CHARS:
            for (int64_t i = 0; i < n; i++) ((const char **)buf)[i] = base + i * stride;
            st = dlm_table_write_strings(g, what, cols[c].name, (const char *const *)buf, n);
            break;
        }
    }
    free(buf);
    return st;
}
