/* run.h5: metric rows kept in memory, the whole file rewritten to a
 * temporary name and renamed into place at each flush. */
#define _GNU_SOURCE
#include "io/runfile.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fault.h"
#include "io/checkpoint.h"
#include "io/h5.h"

#define PATH_LEN 4096

/* One column: a dataset of a group, one field of the row struct (8 bytes). */
typedef struct {
    const char *name;
    size_t offset;
    int is_int; /* int64 (else float64) */
    const char *units;
} column;

typedef struct {
    const char *group;
    const column *cols;
    int n_cols;
    size_t row_size;
} table_desc;

static const column train_cols[] = {
    {"step", offsetof(dlm_train_row, step), 1, "optimizer steps"},
    {"tokens", offsetof(dlm_train_row, tokens), 1, "training tokens seen"},
    {"loss", offsetof(dlm_train_row, loss), 0, "nats/token"},
    {"lr", offsetof(dlm_train_row, lr), 0, "learning rate"},
    {"grad_norm", offsetof(dlm_train_row, grad_norm), 0, "global L2 norm before clipping"},
    {"tokens_per_s", offsetof(dlm_train_row, tokens_per_s), 0, "tokens/s"},
    {"gflops", offsetof(dlm_train_row, gflops), 0, "GFLOP/s"},
    {"step_ms", offsetof(dlm_train_row, step_ms), 0, "ms"},
};
static const column val_cols[] = {
    {"step", offsetof(dlm_val_row, step), 1, "optimizer steps"},
    {"loss", offsetof(dlm_val_row, loss), 0, "nats/token"},
    {"bits_per_byte", offsetof(dlm_val_row, bits_per_byte), 0, "bits/byte"},
    {"stderr", offsetof(dlm_val_row, stderr_), 0, "nats/token (standard error of loss; NaN: not an estimate)"},
};
static const table_desc tables[2] = {
    {"train", train_cols, (int)(sizeof train_cols / sizeof *train_cols), sizeof(dlm_train_row)},
    {"val", val_cols, (int)(sizeof val_cols / sizeof *val_cols), sizeof(dlm_val_row)},
};

static const char *const attr_names[5] = {"config", "layout", "code_revision", "hosts",
                                          "start_time"};

typedef struct {
    unsigned char *rows;
    int64_t n, cap;
} row_buf;

struct dlm_runfile {
    char path[PATH_LEN], tmp[PATH_LEN + 8];
    char *attrs[5];   /* in attr_names order */
    row_buf t[2];     /* train, val */
    unsigned char *scratch; /* one column while writing */
};

static int64_t row_step(const table_desc *d, const unsigned char *row)
{
    int64_t s;
    memcpy(&s, row + d->cols[0].offset, sizeof s); /* column 0 is step in both tables */
    (void)d;
    return s;
}

static dlm_status rows_append(row_buf *b, const table_desc *d, const void *row)
{
    if (b->n == b->cap) {
        int64_t cap = b->cap ? 2 * b->cap : 1024;
        unsigned char *g = realloc(b->rows, (size_t)cap * d->row_size);
        DLM_CHECK(g != NULL, DLM_ERR_NOMEM, "growing the /%s rows to %" PRId64, d->group, cap);
        b->rows = g;
        b->cap = cap;
    }
    memcpy(b->rows + (size_t)b->n * d->row_size, row, d->row_size);
    b->n++;
    return DLM_OK;
}

/* ---- reading ------------------------------------------------------------ */

static dlm_status read_table(hid_t f, const char *path, const table_desc *d, void **out,
                             int64_t *n_out)
{
    dlm_status st = DLM_OK;
    hid_t g = H5I_INVALID_HID, ds = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    unsigned char *rows = NULL;
    int64_t n = -1;
    *out = NULL;
    *n_out = 0;
    htri_t has = H5Lexists(f, d->group, H5P_DEFAULT);
    DLM_H5_GOTO(st, has, done, "%s: looking for group /%s", path, d->group);
    if (!has) {
        st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                            "%s: group /%s is missing (not a dlm run file?)", path, d->group);
        goto done;
    }
    DLM_H5_GOTO(st, g = H5Gopen2(f, d->group, H5P_DEFAULT), done, "%s: opening group /%s", path,
                d->group);
    for (int c = 0; c < d->n_cols; c++) {
        const column *col = &d->cols[c];
        htri_t e = H5Lexists(g, col->name, H5P_DEFAULT);
        DLM_H5_GOTO(st, e, done, "%s: looking for dataset /%s/%s", path, d->group, col->name);
        if (!e) {
            st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                "%s: dataset /%s/%s is missing", path, d->group, col->name);
            goto done;
        }
        DLM_H5_GOTO(st, ds = H5Dopen2(g, col->name, H5P_DEFAULT), done,
                    "%s: opening dataset /%s/%s", path, d->group, col->name);
        DLM_H5_GOTO(st, sp = H5Dget_space(ds), done, "%s: dataspace of /%s/%s", path, d->group,
                    col->name);
        hsize_t dim = 0;
        int nd = H5Sget_simple_extent_ndims(sp);
        if (nd != 1 || H5Sget_simple_extent_dims(sp, &dim, NULL) < 0) {
            st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                "%s: dataset /%s/%s is not 1-D (rank %d)", path, d->group,
                                col->name, nd);
            goto done;
        }
        if (c == 0) {
            n = (int64_t)dim;
            if (n > 0) {
                rows = calloc((size_t)n, d->row_size);
                if (!rows) {
                    st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                                        "%s: %" PRId64 " rows of /%s", path, n, d->group);
                    goto done;
                }
            }
        } else if ((int64_t)dim != n) {
            st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                "%s: dataset /%s/%s has %llu rows but /%s/step has %" PRId64,
                                path, d->group, col->name, (unsigned long long)dim, d->group, n);
            goto done;
        }
        if (n > 0) {
            /* every column is 8 bytes wide: read it, then scatter into the rows */
            unsigned char *colbuf = malloc((size_t)n * 8);
            if (!colbuf) {
                st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                                    "%s: reading /%s/%s", path, d->group, col->name);
                goto done;
            }
            herr_t rc = H5Dread(ds, col->is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, H5S_ALL,
                                H5S_ALL, H5P_DEFAULT, colbuf);
            if (rc < 0) {
                st = dlm_h5_error(__FILE__, __LINE__, __func__, "%s: reading dataset /%s/%s",
                                  path, d->group, col->name);
                free(colbuf);
                goto done;
            }
            for (int64_t i = 0; i < n; i++)
                memcpy(rows + (size_t)i * d->row_size + col->offset, colbuf + 8 * i, 8);
            free(colbuf);
        }
        H5Sclose(sp);
        H5Dclose(ds);
        sp = ds = H5I_INVALID_HID;
    }
    *out = rows;
    *n_out = n;
    rows = NULL;
done:
    free(rows);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    if (g >= 0) H5Gclose(g);
    return st;
}

dlm_status dlm_runfile_read(const char *path, dlm_train_row **train, int64_t *n_train,
                            dlm_val_row **val, int64_t *n_val)
{
    DLM_CHECK(path != NULL, DLM_ERR_ARG, "dlm_runfile_read: no path");
    if (train) *train = NULL;
    if (val) *val = NULL;
    if (n_train) *n_train = 0;
    if (n_val) *n_val = 0;
    void *rows[2] = {NULL, NULL};
    int64_t counts[2] = {0, 0};
    int want[2] = {train && n_train, val && n_val};
    dlm_status st = DLM_OK;
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    hid_t f = H5I_INVALID_HID;
    /* default access, as any reader opens it: see dlm_h5_fapl */
    DLM_H5_GOTO(st, f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), done,
                "cannot open run file %s", path);
    for (int k = 0; k < 2; k++)
        if (want[k]) DLM_CALL_GOTO(st, read_table(f, path, &tables[k], &rows[k], &counts[k]), done);
    if (want[0]) *train = rows[0], *n_train = counts[0];
    if (want[1]) *val = rows[1], *n_val = counts[1];
done:
    if (st != DLM_OK) free(rows[0]), free(rows[1]);
    if (f >= 0) H5Fclose(f);
    dlm_h5_quiet_end(&q);
    return st;
}

dlm_status dlm_runfile_read_attr(const char *path, const char *name, char **value)
{
    *value = NULL;
    dlm_status st = DLM_OK;
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    hid_t f = H5I_INVALID_HID;
    /* default access, as any reader opens it: see dlm_h5_fapl */
    DLM_H5_GOTO(st, f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), done,
                "cannot open run file %s", path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_str(f, name, value), done,
                "%s: reading root attribute '%s'", path, name);
done:
    if (f >= 0) H5Fclose(f);
    dlm_h5_quiet_end(&q);
    return st;
}

/* ---- the in-memory image ----------------------------------------------- */

void dlm_runfile_close(dlm_runfile **rf)
{
    if (!rf || !*rf) return;
    dlm_runfile *r = *rf;
    for (int i = 0; i < 5; i++) free(r->attrs[i]);
    for (int k = 0; k < 2; k++) free(r->t[k].rows);
    free(r->scratch);
    free(r);
    *rf = NULL;
}

dlm_status dlm_runfile_open(const char *dir, const dlm_runfile_attrs *attrs,
                            int64_t keep_through_step, dlm_runfile **out)
{
    *out = NULL;
    DLM_CHECK(dir != NULL, DLM_ERR_ARG, "dlm_runfile_open: no run folder");
    dlm_runfile *r = calloc(1, sizeof *r);
    DLM_CHECK(r != NULL, DLM_ERR_NOMEM, "allocating the run file image");
    dlm_status st = DLM_OK;
    int n = snprintf(r->path, sizeof r->path, "%s/run.h5", dir);
    if (n <= 0 || (size_t)n >= sizeof r->path) {
        st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__, "run folder path too long: %s",
                            dir);
        goto fail;
    }
    snprintf(r->tmp, sizeof r->tmp, "%s.tmp", r->path);
    struct stat sb;
    int exists = stat(r->path, &sb) == 0;
    if (exists) {
        dlm_train_row *tr;
        dlm_val_row *vr;
        int64_t counts[2];
        st = dlm_runfile_read(r->path, &tr, &counts[0], &vr, &counts[1]);
        if (st != DLM_OK) {
            dlm_error_push(st, __FILE__, __LINE__, __func__,
                           "loading the rows of %s to continue it (move it away to start afresh)",
                           r->path);
            goto fail;
        }
        for (int k = 0; k < 2; k++) {
            int64_t keep = 0;
            unsigned char *p = k == 0 ? (unsigned char *)tr : (unsigned char *)vr;
            while (keep < counts[k] &&
                   row_step(&tables[k], p + (size_t)keep * tables[k].row_size) <= keep_through_step)
                keep++;
            /* rows are in step order (add_* enforces it), so the kept ones are a prefix */
            r->t[k].rows = p;
            r->t[k].n = keep;
            r->t[k].cap = counts[k];
        }
    }
    const char *given[5] = {NULL};
    if (attrs) {
        given[0] = attrs->config, given[1] = attrs->layout, given[2] = attrs->code_revision;
        given[3] = attrs->hosts, given[4] = attrs->start_time;
    }
    for (int i = 0; i < 5; i++) {
        if (given[i]) {
            r->attrs[i] = strdup(given[i]);
        } else if (exists && dlm_runfile_read_attr(r->path, attr_names[i], &r->attrs[i]) != DLM_OK) {
            dlm_error_clear(); /* an attribute an older file lacks is written as "" */
            r->attrs[i] = strdup("");
        } else if (!exists) {
            r->attrs[i] = strdup("");
        }
        if (!r->attrs[i]) {
            st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__, "copying attribute %s",
                                attr_names[i]);
            goto fail;
        }
    }
    *out = r;
    return DLM_OK;
fail:
    dlm_runfile_close(&r);
    return st;
}

static dlm_status add_row(dlm_runfile *rf, int k, const void *row)
{
    const table_desc *d = &tables[k];
    row_buf *b = &rf->t[k];
    int64_t step = row_step(d, row);
    if (b->n > 0) {
        int64_t last = row_step(d, b->rows + (size_t)(b->n - 1) * d->row_size);
        DLM_CHECK(step > last, DLM_ERR_STATE,
                  "%s: /%s row for step %" PRId64 " after step %" PRId64
                  " (steps must increase; a resumed run opens the run file with its "
                  "checkpoint's step so later rows are dropped)",
                  rf->path, d->group, step, last);
    }
    DLM_CALL(rows_append(b, d, row));
    return DLM_OK;
}

dlm_status dlm_runfile_add_train(dlm_runfile *rf, const dlm_train_row *row)
{
    DLM_CALL(add_row(rf, 0, row));
    return DLM_OK;
}

dlm_status dlm_runfile_add_val(dlm_runfile *rf, const dlm_val_row *row)
{
    DLM_CALL(add_row(rf, 1, row));
    return DLM_OK;
}

void dlm_runfile_counts(const dlm_runfile *rf, int64_t *n_train, int64_t *n_val)
{
    if (n_train) *n_train = rf->t[0].n;
    if (n_val) *n_val = rf->t[1].n;
}

/* ---- writing ------------------------------------------------------------ */

static dlm_status write_table(dlm_runfile *rf, hid_t f, int k)
{
    const table_desc *d = &tables[k];
    const row_buf *b = &rf->t[k];
    dlm_status st = DLM_OK;
    hid_t g = H5I_INVALID_HID, sp = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    DLM_H5_GOTO(st, g = H5Gcreate2(f, d->group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), done,
                "%s: creating group /%s", rf->tmp, d->group);
    hsize_t dim = (hsize_t)b->n;
    DLM_H5_GOTO(st, sp = H5Screate_simple(1, &dim, NULL), done, "%s: dataspace of %" PRId64
                " rows for /%s", rf->tmp, b->n, d->group);
    for (int c = 0; c < d->n_cols; c++) {
        const column *col = &d->cols[c];
        DLM_H5_GOTO(st, ds = H5Dcreate2(g, col->name, col->is_int ? H5T_STD_I64LE : H5T_IEEE_F64LE,
                                        sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                    done, "%s: creating dataset /%s/%s", rf->tmp, d->group, col->name);
        if (b->n > 0) {
            for (int64_t i = 0; i < b->n; i++)
                memcpy(rf->scratch + 8 * i, b->rows + (size_t)i * d->row_size + col->offset, 8);
            DLM_H5_GOTO(st, H5Dwrite(ds, col->is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE,
                                     H5S_ALL, H5S_ALL, H5P_DEFAULT, rf->scratch),
                        done, "%s: writing dataset /%s/%s", rf->tmp, d->group, col->name);
        }
        DLM_H5_GOTO(st, dlm_h5_attr_write_str(ds, "units", col->units), done,
                    "%s: units attribute of /%s/%s", rf->tmp, d->group, col->name);
        DLM_H5_GOTO(st, H5Dclose(ds), done, "%s: closing dataset /%s/%s", rf->tmp, d->group,
                    col->name);
        ds = H5I_INVALID_HID;
    }
done:
    if (ds >= 0) H5Dclose(ds);
    if (sp >= 0) H5Sclose(sp);
    if (g >= 0 && H5Gclose(g) < 0 && st == DLM_OK)
        st = dlm_h5_error(__FILE__, __LINE__, __func__, "%s: closing group /%s", rf->tmp, d->group);
    return st;
}

dlm_status dlm_runfile_flush(dlm_runfile *rf)
{
    DLM_CHECK(rf != NULL, DLM_ERR_ARG, "dlm_runfile_flush: no run file");
    int64_t most = rf->t[0].n > rf->t[1].n ? rf->t[0].n : rf->t[1].n;
    unsigned char *s = realloc(rf->scratch, (size_t)(most > 0 ? most : 1) * 8);
    DLM_CHECK(s != NULL, DLM_ERR_NOMEM, "column buffer for %" PRId64 " rows", most);
    rf->scratch = s;

    dlm_status st = DLM_OK;
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    hid_t fapl = H5I_INVALID_HID, f = H5I_INVALID_HID;
    DLM_H5_GOTO(st, fapl = dlm_h5_fapl(), fail, "%s: file access list", rf->tmp);
    DLM_H5_GOTO(st, f = H5Fcreate(rf->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), fail,
                "cannot create %s", rf->tmp);
    DLM_H5_GOTO(st, dlm_h5_attr_write_str(f, "format", "dlm-run 1"), fail,
                "%s: root attribute format", rf->tmp);
    for (int i = 0; i < 5; i++)
        DLM_H5_GOTO(st, dlm_h5_attr_write_str(f, attr_names[i], rf->attrs[i]), fail,
                    "%s: root attribute %s", rf->tmp, attr_names[i]);
    DLM_CALL_GOTO(st, write_table(rf, f, 0), fail);
    dlm_fault_point("runfile.write");
    DLM_CALL_GOTO(st, write_table(rf, f, 1), fail);
    herr_t rc = H5Fclose(f);
    f = H5I_INVALID_HID;
    DLM_H5_GOTO(st, rc, fail, "closing %s", rf->tmp);
    H5Pclose(fapl);
    fapl = H5I_INVALID_HID;
    dlm_h5_quiet_end(&q);
    st = dlm_durable_replace(rf->tmp, rf->path, "runfile.rename");
    if (st != DLM_OK) {
        unlink(rf->tmp);
        return dlm_error_push(st, __FILE__, __LINE__, __func__, "run file not updated");
    }
    return DLM_OK;
fail:
    if (f >= 0) H5Fclose(f);
    if (fapl >= 0) H5Pclose(fapl);
    dlm_h5_quiet_end(&q);
    unlink(rf->tmp);
    return dlm_error_push(st, __FILE__, __LINE__, __func__, "run file %s not updated", rf->path);
}
