/* Checkpoints as one HDF5 file each, written to a temporary name and
 * renamed into place when complete; verification by completion attribute
 * and per-dataset checksums. */
#define _GNU_SOURCE
#include "io/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/log.h"
#include "io/h5.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint checksums are defined on little-endian float bytes; add a byte swap here"
#endif

#define PATH_MAX_LEN 4096
#define WHY_LEN 1024

/* The groups of one checkpoint, in the order they are written. */
static const char *const ckpt_groups[4] = {"params", "ema", "adam_m", "adam_v"};

/* ---- checksum --------------------------------------------------------- */

static inline uint64_t mix64(uint64_t z)
{
    z ^= z >> 30;
    z *= UINT64_C(0xbf58476d1ce4e5b9);
    z ^= z >> 27;
    z *= UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    return z;
}

uint64_t dlm_ckpt_checksum(const float *x, size_t n, uint64_t first)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b);
        s += mix64(((first + i) << 32) ^ b);
    }
    return s;
}

/* ---- names -------------------------------------------------------------- */

dlm_status dlm_ckpt_path(const char *run_dir, int64_t step, char *out, size_t len)
{
    DLM_CHECK(step >= 0, DLM_ERR_ARG, "checkpoint step must be >= 0, got %" PRId64, step);
    int n = snprintf(out, len, "%s/checkpoints/step-%08" PRId64 ".h5", run_dir, step);
    DLM_CHECK(n > 0 && (size_t)n < len, DLM_ERR_ARG, "checkpoint path too long for run dir %s",
              run_dir);
    return DLM_OK;
}

/* "step-<digits>.h5" (tmp = 0) or "step-<digits>.h5.tmp" (tmp = 1); 0 if neither. */
static int parse_name(const char *name, int64_t *step, int *tmp)
{
    if (strncmp(name, "step-", 5) != 0) return 0;
    const char *p = name + 5;
    int64_t v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (v > (INT64_MAX - 9) / 10) return 0;
        v = 10 * v + (*p - '0');
    }
    if (digits == 0) return 0;
    if (!strcmp(p, ".h5")) *tmp = 0;
    else if (!strcmp(p, ".h5.tmp")) *tmp = 1;
    else return 0;
    *step = v;
    return 1;
}

typedef struct {
    int64_t step;
    int tmp;
    char name[256];
} ckpt_entry;

static int entry_newest_first(const void *a, const void *b)
{
    int64_t x = ((const ckpt_entry *)a)->step, y = ((const ckpt_entry *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The checkpoint files of dir (final and temporary), newest first; *n = 0
 * and no error when dir does not exist. Free *out. */
static dlm_status list_checkpoints(const char *dir, ckpt_entry **out, int *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d && errno == ENOENT) return DLM_OK;
    DLM_CHECK(d != NULL, DLM_ERR_IO, "cannot list checkpoint folder %s: %s", dir, strerror(errno));
    ckpt_entry *e = NULL;
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t step;
        int tmp;
        if (!parse_name(de->d_name, &step, &tmp) || strlen(de->d_name) >= sizeof e->name) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            ckpt_entry *g = realloc(e, (size_t)cap * sizeof *e);
            if (!g) {
                free(e);
                closedir(d);
                DLM_CHECK(0, DLM_ERR_NOMEM, "listing checkpoints in %s", dir);
            }
            e = g;
        }
        e[*n].step = step;
        e[*n].tmp = tmp;
        snprintf(e[*n].name, sizeof e[*n].name, "%s", de->d_name);
        (*n)++;
    }
    closedir(d);
    if (*n > 1) qsort(e, (size_t)*n, sizeof *e, entry_newest_first);
    *out = e;
    return DLM_OK;
}

/* ---- writing ------------------------------------------------------------ */

static dlm_status write_group(hid_t f, const char *path, const char *gname,
                              const dlm_param_info *table, int n_tensors, const float *arr)
{
    dlm_status st = DLM_OK;
    hid_t g = H5I_INVALID_HID, space = H5I_INVALID_HID, d = H5I_INVALID_HID;
    DLM_H5_GOTO(st, g = H5Gcreate2(f, gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), done,
                "%s: creating group /%s", path, gname);
    for (int i = 0; i < n_tensors; i++) {
        const dlm_param_info *p = &table[i];
        hsize_t dims[2] = {(hsize_t)p->shape[0], (hsize_t)p->shape[1]};
        DLM_H5_GOTO(st, space = H5Screate_simple(p->ndim, dims, NULL), done,
                    "%s: dataspace for /%s/%s", path, gname, p->name);
        DLM_H5_GOTO(st, d = H5Dcreate2(g, p->name, H5T_IEEE_F32LE, space, H5P_DEFAULT,
                                       H5P_DEFAULT, H5P_DEFAULT),
                    done, "%s: creating dataset /%s/%s", path, gname, p->name);
        /* MPI-IO later: the file gets H5Pset_fapl_mpio, each rank selects its
         * hyperslab of `space` (H5Sselect_hyperslab) and writes its shard
         * with an H5FD_MPIO_COLLECTIVE transfer list; the checksum is the
         * MPI_Allreduce(SUM) of dlm_ckpt_checksum over each shard with its
         * global first index. Only this loop body changes. */
        const float *x = arr + p->offset;
        DLM_H5_GOTO(st, H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x), done,
                    "%s: writing dataset /%s/%s", path, gname, p->name);
        DLM_H5_GOTO(st, dlm_h5_attr_write_u64(d, "checksum", dlm_ckpt_checksum(x, p->numel, 0)),
                    done, "%s: checksum attribute of /%s/%s", path, gname, p->name);
        H5Dclose(d);
        H5Sclose(space);
        d = space = H5I_INVALID_HID;
    }
done:
    if (d >= 0) H5Dclose(d);
    if (space >= 0) H5Sclose(space);
    if (g >= 0 && H5Gclose(g) < 0 && st == DLM_OK)
        st = dlm_h5_error(__FILE__, __LINE__, __func__, "%s: closing group /%s", path, gname);
    return st;
}

static dlm_status write_root_attrs(hid_t f, const char *path, const dlm_ckpt_state *s)
{
    dlm_status st = DLM_OK;
    DLM_H5_GOTO(st, dlm_h5_attr_write_str(f, "format", "dlm-checkpoint 1"), done,
                "%s: attribute format", path);
    DLM_H5_GOTO(st, dlm_h5_attr_write_i64(f, "step", s->step), done, "%s: attribute step", path);
    DLM_H5_GOTO(st, dlm_h5_attr_write_i64(f, "tokens", s->tokens), done, "%s: attribute tokens",
                path);
    DLM_H5_GOTO(st, dlm_h5_attr_write_i64(f, "adam_t", s->adam_t), done, "%s: attribute adam_t",
                path);
    DLM_H5_GOTO(st, dlm_h5_attr_write_u64(f, "loader_seed", s->loader_seed), done,
                "%s: attribute loader_seed", path);
    DLM_H5_GOTO(st, dlm_h5_attr_write_u64(f, "loader_step", s->loader_step), done,
                "%s: attribute loader_step", path);
    DLM_H5_GOTO(st, dlm_h5_attr_write_u64(f, "rng_seed", s->rng_seed), done,
                "%s: attribute rng_seed", path);
    DLM_H5_GOTO(st, dlm_h5_attr_write_str(f, "config", s->config_text), done,
                "%s: attribute config", path);
    DLM_H5_GOTO(st, dlm_h5_attr_write_str(f, "shape", s->shape), done, "%s: attribute shape",
                path);
    DLM_H5_GOTO(st, dlm_h5_attr_write_str(f, "checksum_algorithm", DLM_CKPT_CHECKSUM_ALGORITHM),
                done, "%s: attribute checksum_algorithm", path);
done:
    return st;
}

/* Keeps the keep_last newest checkpoints up to step, removes older ones and
 * leftover temporary files. Failures here only warn: the new checkpoint is
 * already safe. */
static void prune(const char *dir, int64_t step, int keep_last)
{
    ckpt_entry *e;
    int n;
    if (list_checkpoints(dir, &e, &n) != DLM_OK) {
        DLM_WARN("not pruning checkpoints: %s", dlm_error_text());
        dlm_error_clear();
        return;
    }
    int kept = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX_LEN + 256];
        snprintf(path, sizeof path, "%s/%s", dir, e[i].name);
        int remove_it = 0;
        if (e[i].tmp) {
            remove_it = 1; /* only a killed writer leaves one (one writer per run folder) */
        } else if (e[i].step > step) {
            DLM_WARN("checkpoint %s is newer than the step %" PRId64
                     " just written (left from an earlier attempt of this run); "
                     "dlm_ckpt_find_latest will prefer it while it verifies",
                     path, step);
        } else if (keep_last > 0 && ++kept > keep_last) {
            remove_it = 1;
        }
        if (remove_it && unlink(path) != 0 && errno != ENOENT)
            DLM_WARN("cannot delete old checkpoint file %s: %s", path, strerror(errno));
    }
    free(e);
}

dlm_status dlm_ckpt_write(const char *run_dir, const dlm_param_info *table, int n_tensors,
                          const float *params, const float *ema, const float *adam_m,
                          const float *adam_v, const dlm_ckpt_state *s, int keep_last,
                          char *path_out, size_t path_len)
{
    DLM_CHECK(run_dir && table && n_tensors > 0 && params && adam_m && adam_v && s, DLM_ERR_ARG,
              "dlm_ckpt_write needs a run dir, a table, params, adam_m, adam_v and a state");
    for (int i = 0; i < n_tensors; i++)
        DLM_CHECK(table[i].name[0] && !strchr(table[i].name, '/') && table[i].ndim >= 1 &&
                      table[i].ndim <= 2,
                  DLM_ERR_ARG, "tensor %d ('%s') cannot be a checkpoint dataset (empty name, "
                  "'/' in the name, or ndim %d not 1 or 2)", i, table[i].name, table[i].ndim);
    char dir[PATH_MAX_LEN], final[PATH_MAX_LEN], tmp[PATH_MAX_LEN + 8];
    int n = snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DLM_CHECK(n > 0 && (size_t)n < sizeof dir, DLM_ERR_ARG, "run dir path too long: %s", run_dir);
    DLM_CHECK(mkdir(dir, 0777) == 0 || errno == EEXIST, DLM_ERR_IO,
              "cannot create checkpoint folder %s: %s", dir, strerror(errno));
    DLM_CALL(dlm_ckpt_path(run_dir, s->step, final, sizeof final));
    snprintf(tmp, sizeof tmp, "%s.tmp", final);

    dlm_status st = DLM_OK;
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    hid_t fapl = H5I_INVALID_HID, f = H5I_INVALID_HID;
    DLM_H5_GOTO(st, fapl = dlm_h5_fapl(), fail, "%s: file access list", tmp);
    DLM_H5_GOTO(st, f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), fail,
                "cannot create checkpoint file %s", tmp);
    DLM_CALL_GOTO(st, write_root_attrs(f, tmp, s), fail);
    const float *arrays[4] = {params, ema, adam_m, adam_v};
    for (int k = 0; k < 4; k++) {
        if (!arrays[k]) continue;
        DLM_CALL_GOTO(st, write_group(f, tmp, ckpt_groups[k], table, n_tensors, arrays[k]), fail);
        if (k == 0) dlm_fault_point("ckpt.write");
    }
    /* last: a file without it never verifies */
    DLM_H5_GOTO(st, dlm_h5_attr_write_i64(f, "complete", 1), fail, "%s: attribute complete", tmp);
    herr_t rc = H5Fclose(f);
    f = H5I_INVALID_HID;
    DLM_H5_GOTO(st, rc, fail, "closing checkpoint file %s", tmp);
    H5Pclose(fapl);
    fapl = H5I_INVALID_HID;
    dlm_h5_quiet_end(&q);

    st = dlm_durable_replace(tmp, final, "ckpt.rename");
    if (st != DLM_OK) {
        unlink(tmp);
        return dlm_error_push(st, __FILE__, __LINE__, __func__,
                              "checkpoint step %" PRId64 " not saved", s->step);
    }
    if (path_out) snprintf(path_out, path_len, "%s", final);
    prune(dir, s->step, keep_last);
    return DLM_OK;

fail:
    if (f >= 0) H5Fclose(f);
    if (fapl >= 0) H5Pclose(fapl);
    dlm_h5_quiet_end(&q);
    unlink(tmp);
    return dlm_error_push(st, __FILE__, __LINE__, __func__,
                          "checkpoint step %" PRId64 " not saved", s->step);
}

/* ---- reading and verifying ----------------------------------------------- */

/* Opens path read-only; on failure says whether it is missing or not HDF5. */
static dlm_status open_ckpt(const char *path, hid_t *f, char *why, size_t why_len)
{
    /* default access, as any reader opens it: see dlm_h5_fapl */
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f >= 0) return DLM_OK;
    char detail[256];
    dlm_h5_detail(detail, sizeof detail);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(why, why_len, "%s: cannot open: %s", path, strerror(errno));
        return DLM_ERR_IO;
    }
    snprintf(why, why_len, "%s: not a readable HDF5 file (HDF5: %s)", path, detail);
    return DLM_ERR_FORMAT;
}

static dlm_status check_complete(hid_t f, const char *path, char *why, size_t why_len)
{
    htri_t has = H5Aexists(f, "complete");
    int64_t v = 0;
    if (has <= 0) {
        snprintf(why, why_len, "%s: no completion attribute 'complete' (the write did not finish)",
                 path);
        return DLM_ERR_FORMAT;
    }
    if (dlm_h5_attr_read_i64(f, "complete", &v) < 0 || v != 1) {
        snprintf(why, why_len, "%s: completion attribute 'complete' is %" PRId64 ", expected 1",
                 path, v);
        return DLM_ERR_FORMAT;
    }
    return DLM_OK;
}

/* Reads one float32 dataset (expected dims if ndim > 0) into dst and checks
 * its checksum. Fills why and returns non-OK on any mismatch; pushes no
 * error frame, so find_latest can skip quietly. */
static dlm_status read_dataset(hid_t parent, const char *path, const char *gname,
                               const char *name, int ndim, const int64_t *shape, float **buf,
                               size_t *cap, float *dst, char *why, size_t why_len)
{
    dlm_status st = DLM_ERR_FORMAT;
    hid_t d = H5I_INVALID_HID, space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    char detail[256];
    d = H5Dopen2(parent, name, H5P_DEFAULT);
    if (d < 0) {
        dlm_h5_detail(detail, sizeof detail);
        snprintf(why, why_len, "%s: cannot open dataset /%s/%s (HDF5: %s)", path, gname, name,
                 detail);
        goto done;
    }
    type = H5Dget_type(d);
    space = H5Dget_space(d);
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t dims[H5S_MAX_RANK];
    if (type < 0 || nd < 0 || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        dlm_h5_detail(detail, sizeof detail);
        snprintf(why, why_len, "%s: cannot read the type or shape of dataset /%s/%s (HDF5: %s)",
                 path, gname, name, detail);
        goto done;
    }
    if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 4) {
        snprintf(why, why_len, "%s: dataset /%s/%s is not float32", path, gname, name);
        goto done;
    }
    if (ndim > 0) {
        int same = nd == ndim;
        for (int k = 0; same && k < nd; k++) same = dims[k] == (hsize_t)shape[k];
        if (!same) {
            char have[64] = "", want[64] = "";
            for (int k = 0; k < nd && k < 2; k++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%llu", k ? ", " : "",
                         (unsigned long long)dims[k]);
            for (int k = 0; k < ndim; k++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? ", " : "",
                         (long long)shape[k]);
            snprintf(why, why_len, "%s: dataset /%s/%s has shape (%s%s) but the model's tensor is (%s)",
                     path, gname, name, have, nd > 2 ? ", ..." : "", want);
            goto done;
        }
    }
    hssize_t npts = H5Sget_simple_extent_npoints(space);
    size_t count = npts > 0 ? (size_t)npts : 0;
    float *x = dst;
    if (!x) {
        if (count > *cap) {
            float *g = realloc(*buf, count * sizeof *g);
            if (!g) {
                snprintf(why, why_len, "%s: no memory to read dataset /%s/%s (%zu floats)", path,
                         gname, name, count);
                st = DLM_ERR_NOMEM;
                goto done;
            }
            *buf = g;
            *cap = count;
        }
        x = *buf;
    }
    uint64_t want_sum = 0;
    if (H5Aexists(d, "checksum") <= 0 || dlm_h5_attr_read_u64(d, "checksum", &want_sum) < 0) {
        snprintf(why, why_len, "%s: dataset /%s/%s has no checksum attribute", path, gname, name);
        goto done;
    }
    if (count && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) {
        dlm_h5_detail(detail, sizeof detail);
        snprintf(why, why_len, "%s: cannot read dataset /%s/%s (HDF5: %s)", path, gname, name,
                 detail);
        goto done;
    }
    uint64_t have_sum = dlm_ckpt_checksum(x, count, 0);
    if (have_sum != want_sum) {
        snprintf(why, why_len,
                 "%s: checksum mismatch in dataset /%s/%s (stored 0x%016" PRIx64
                 ", data gives 0x%016" PRIx64 "): the data is corrupt",
                 path, gname, name, want_sum, have_sum);
        goto done;
    }
    st = DLM_OK;
done:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (d >= 0) H5Dclose(d);
    return st;
}

typedef struct {
    const char *path, *gname;
    float *buf;
    size_t cap;
    char *why;
    size_t why_len;
    dlm_status st;
    int n;
} verify_ctx;

static herr_t verify_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)info;
    verify_ctx *c = data;
    c->n++;
    c->st = read_dataset(g, c->path, c->gname, name, 0, NULL, &c->buf, &c->cap, NULL, c->why,
                         c->why_len);
    return c->st == DLM_OK ? 0 : 1;
}

/* dlm_ckpt_verify without an error frame: the reason goes to why. */
static dlm_status verify_quiet(const char *path, char *why, size_t why_len)
{
    hid_t f;
    dlm_status st = open_ckpt(path, &f, why, why_len);
    if (st != DLM_OK) return st;
    verify_ctx c = {.path = path, .why = why, .why_len = why_len};
    st = check_complete(f, path, why, why_len);
    for (int k = 0; st == DLM_OK && k < 4; k++) {
        htri_t has = H5Lexists(f, ckpt_groups[k], H5P_DEFAULT);
        if (has <= 0) {
            if (k == 1) continue; /* ema is optional */
            snprintf(why, why_len, "%s: group /%s is missing", path, ckpt_groups[k]);
            st = DLM_ERR_FORMAT;
            break;
        }
        hid_t g = H5Gopen2(f, ckpt_groups[k], H5P_DEFAULT);
        c.gname = ckpt_groups[k];
        c.n = 0;
        c.st = DLM_OK;
        herr_t rc = g >= 0 ? H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, verify_cb, &c) : -1;
        if (g >= 0) H5Gclose(g);
        if (c.st != DLM_OK) st = c.st;
        else if (rc < 0) {
            char detail[256];
            dlm_h5_detail(detail, sizeof detail);
            snprintf(why, why_len, "%s: cannot list group /%s (HDF5: %s)", path, ckpt_groups[k],
                     detail);
            st = DLM_ERR_FORMAT;
        } else if (k == 0 && c.n == 0) {
            snprintf(why, why_len, "%s: group /params holds no tensor", path);
            st = DLM_ERR_FORMAT;
        }
    }
    free(c.buf);
    H5Fclose(f);
    return st;
}

dlm_status dlm_ckpt_verify(const char *path, char *why, size_t why_len)
{
    char reason[WHY_LEN] = "";
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    dlm_status st = verify_quiet(path, reason, sizeof reason);
    dlm_h5_quiet_end(&q);
    if (why && why_len) snprintf(why, why_len, "%s", st == DLM_OK ? "" : reason);
    DLM_CHECK(st == DLM_OK, st, "checkpoint does not verify: %s", reason);
    return DLM_OK;
}

dlm_status dlm_ckpt_find_latest(const char *run_dir, char *path_out, size_t len, int *found)
{
    *found = 0;
    char dir[PATH_MAX_LEN];
    int n = snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DLM_CHECK(n > 0 && (size_t)n < sizeof dir, DLM_ERR_ARG, "run dir path too long: %s", run_dir);
    ckpt_entry *e;
    int count;
    DLM_CALL(list_checkpoints(dir, &e, &count));
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    for (int i = 0; i < count && !*found; i++) {
        if (e[i].tmp) continue;
        char path[PATH_MAX_LEN + 256], why[WHY_LEN];
        snprintf(path, sizeof path, "%s/%s", dir, e[i].name);
        if (verify_quiet(path, why, sizeof why) != DLM_OK) {
            DLM_WARN("skipping checkpoint %s, it does not verify: %s; trying the previous one",
                     path, why);
            continue;
        }
        if ((size_t)snprintf(path_out, len, "%s", path) >= len) {
            dlm_h5_quiet_end(&q);
            free(e);
            DLM_CHECK(0, DLM_ERR_ARG, "checkpoint path %s does not fit in %zu bytes", path, len);
        }
        *found = 1;
    }
    dlm_h5_quiet_end(&q);
    free(e);
    return DLM_OK;
}

typedef struct {
    const dlm_param_info *table;
    int n;
    char extra[64];
} extra_ctx;

static herr_t extra_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)g, (void)info;
    extra_ctx *c = data;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->table[i].name, name)) return 0;
    snprintf(c->extra, sizeof c->extra, "%s", name);
    return 1;
}

static dlm_status read_state(hid_t f, const char *path, dlm_ckpt_state *s)
{
    dlm_status st = DLM_OK;
    char *config = NULL, *shape = NULL;
    DLM_H5_GOTO(st, dlm_h5_attr_read_i64(f, "step", &s->step), fail, "%s: attribute step", path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_i64(f, "tokens", &s->tokens), fail, "%s: attribute tokens",
                path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_i64(f, "adam_t", &s->adam_t), fail, "%s: attribute adam_t",
                path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_u64(f, "loader_seed", &s->loader_seed), fail,
                "%s: attribute loader_seed", path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_u64(f, "loader_step", &s->loader_step), fail,
                "%s: attribute loader_step", path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_u64(f, "rng_seed", &s->rng_seed), fail,
                "%s: attribute rng_seed", path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_str(f, "config", &config), fail, "%s: attribute config",
                path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_str(f, "shape", &shape), fail, "%s: attribute shape", path);
    s->config_text = config;
    s->shape = shape;
    return DLM_OK;
fail:
    free(config);
    free(shape);
    s->config_text = s->shape = NULL;
    return st;
}

dlm_status dlm_ckpt_read(const char *path, const dlm_param_info *table, int n_tensors,
                         const char *expected_shape, float *params, float *ema, float *adam_m,
                         float *adam_v, dlm_ckpt_state *s)
{
    DLM_CHECK(path && table && n_tensors > 0 && (params || ema || adam_m || adam_v), DLM_ERR_ARG,
              "dlm_ckpt_read needs a path, a table and at least one group to read");
    if (s) memset(s, 0, sizeof *s);
    char why[WHY_LEN] = "";
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    hid_t f = H5I_INVALID_HID, g = H5I_INVALID_HID;
    char *shape = NULL;
    dlm_status st = open_ckpt(path, &f, why, sizeof why);
    if (st != DLM_OK) goto fail_why;
    st = check_complete(f, path, why, sizeof why);
    if (st != DLM_OK) goto fail_why;
    if (expected_shape) {
        DLM_H5_GOTO(st, dlm_h5_attr_read_str(f, "shape", &shape), fail,
                    "%s: reading the model shape attribute 'shape'", path);
        if (strcmp(shape, expected_shape) != 0) {
            snprintf(why, sizeof why,
                     "%s holds a model of shape '%s' but this model is '%s'; resume with the "
                     "model settings it was written with, or use another run folder",
                     path, shape, expected_shape);
            st = DLM_ERR_FORMAT;
            goto fail_why;
        }
    }
    float *arrays[4] = {params, ema, adam_m, adam_v};
    int listed = 0; /* the first group read is checked for tensors the table lacks */
    for (int k = 0; k < 4; k++) {
        if (!arrays[k]) continue;
        htri_t has = H5Lexists(f, ckpt_groups[k], H5P_DEFAULT);
        if (has <= 0) {
            snprintf(why, sizeof why, "%s: group /%s is missing%s", path, ckpt_groups[k],
                     k == 1 ? " (the run was saved without EMA weights)" : "");
            st = DLM_ERR_FORMAT;
            goto fail_why;
        }
        DLM_H5_GOTO(st, g = H5Gopen2(f, ckpt_groups[k], H5P_DEFAULT), fail, "%s: opening /%s",
                    path, ckpt_groups[k]);
        for (int i = 0; i < n_tensors; i++) {
            const dlm_param_info *p = &table[i];
            htri_t t = H5Lexists(g, p->name, H5P_DEFAULT);
            if (t <= 0) {
                snprintf(why, sizeof why,
                         "%s: tensor %s (dataset /%s/%s) is missing from the checkpoint", path,
                         p->name, ckpt_groups[k], p->name);
                st = DLM_ERR_FORMAT;
                goto fail_why;
            }
            st = read_dataset(g, path, ckpt_groups[k], p->name, p->ndim, p->shape, NULL, NULL,
                              arrays[k] + p->offset, why, sizeof why);
            if (st != DLM_OK) goto fail_why;
        }
        if (!listed++) {
            extra_ctx c = {.table = table, .n = n_tensors};
            herr_t rc;
            DLM_H5_GOTO(st, rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, extra_cb, &c),
                        fail, "%s: listing /%s", path, ckpt_groups[k]);
            if (rc > 0) {
                snprintf(why, sizeof why,
                         "%s: holds tensor /%s/%s, which this model's table does not have",
                         path, ckpt_groups[k], c.extra);
                st = DLM_ERR_FORMAT;
                goto fail_why;
            }
        }
        H5Gclose(g);
        g = H5I_INVALID_HID;
    }
    if (s) DLM_CALL_GOTO(st, read_state(f, path, s), fail);
    free(shape);
    H5Fclose(f);
    dlm_h5_quiet_end(&q);
    return DLM_OK;

fail_why:
    dlm_error_push(st, __FILE__, __LINE__, __func__, "%s", why);
fail:
    free(shape);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    dlm_h5_quiet_end(&q);
    return dlm_error_push(st, __FILE__, __LINE__, __func__, "loading checkpoint %s", path);
}

void dlm_ckpt_state_free(dlm_ckpt_state *s)
{
    if (!s) return;
    free((char *)s->config_text);
    free((char *)s->shape);
    s->config_text = s->shape = NULL;
}
