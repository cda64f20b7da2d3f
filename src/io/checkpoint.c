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

#include "core/agree.h"
#include "core/fault.h"
#include "core/fs.h"
#include "core/mpicall.h"
#include "core/timer.h"
#include "core/log.h"
#include "io/ckpt_folder.h"
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

/* ---- pieces ------------------------------------------------------------- */

static dlm_ckpt_piece piece_whole(const dlm_param_info *p)
{
    return (dlm_ckpt_piece){.offset = p->offset, .row0 = 0, .rows = p->shape[0], .col0 = 0,
                            .cols = p->shape[1], .own0 = 0, .own_rows = p->shape[0]};
}

/* The checksum terms of the rows of c that this rank owns. */
static uint64_t owned_checksum(const dlm_param_info *p, const dlm_ckpt_piece *c, const float *arr)
{
    uint64_t s = 0;
    for (int64_t r = c->own0; r < c->own0 + c->own_rows; r++)
        s += dlm_ckpt_checksum(arr + c->offset + (size_t)(r * c->cols), (size_t)c->cols,
                               (uint64_t)((c->row0 + r) * p->shape[1] + c->col0));
    return s;
}

/* Selects rows [r0, r0 + nr) x the piece's columns of p's dataset space
 * (a 1-D space takes the first of each pair: elements; nr = 0: nothing). */
static herr_t select_rows(hid_t space, const dlm_ckpt_piece *c, int64_t r0, int64_t nr)
{
    if (nr == 0) return H5Sselect_none(space);
    hsize_t start[2] = {(hsize_t)(c->row0 + r0), (hsize_t)c->col0};
    hsize_t count[2] = {(hsize_t)nr, (hsize_t)c->cols};
    return H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
}

/* A memory space of n floats, all selected (n = 0: one float, none selected). */
static hid_t mem_space(int64_t n)
{
    hsize_t dim = (hsize_t)(n > 0 ? n : 1);
    hid_t s = H5Screate_simple(1, &dim, NULL);
    if (s >= 0 && n == 0 && H5Sselect_none(s) < 0) {
        H5Sclose(s);
        return H5I_INVALID_HID;
    }
    return s;
}

static int comm_rank(MPI_Comm comm)
{
    int r = 0;
    if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &r);
    return r;
}

/* dlm_agree over comm, or st itself for one process. */
static dlm_status agree(MPI_Comm comm, dlm_status st)
{
    return comm == MPI_COMM_NULL ? st : dlm_agree(comm, st);
}

/* ---- writing ------------------------------------------------------------ */

static dlm_status write_group(hid_t f, hid_t dxpl, const char *path, int k,
                              const dlm_ckpt_layout *L, const uint64_t *sums, int par)
{
    static const float none = 0.0f; /* the buffer of a transfer that selects nothing */
    const char *gname = ckpt_groups[k];
    dlm_status st = DLM_OK;
    hid_t g = H5I_INVALID_HID, space = H5I_INVALID_HID, mem = H5I_INVALID_HID,
          d = H5I_INVALID_HID;
    DLM_H5_GOTO(st, g = H5Gcreate2(f, gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), done,
                "%s: creating group /%s", path, gname);
    for (int i = 0; i < L->n_tensors; i++) {
        const dlm_param_info *p = &L->table[i];
        const dlm_ckpt_piece *c = &L->pieces[k][i];
        hsize_t dims[2] = {(hsize_t)p->shape[0], (hsize_t)p->shape[1]};
        DLM_H5_GOTO(st, space = H5Screate_simple(p->ndim, dims, NULL), done,
                    "%s: dataspace for /%s/%s", path, gname, p->name);
        DLM_H5_GOTO(st, d = H5Dcreate2(g, p->name, H5T_IEEE_F32LE, space, H5P_DEFAULT,
                                       H5P_DEFAULT, H5P_DEFAULT),
                    done, "%s: creating dataset /%s/%s", path, gname, p->name);
        int64_t nr = c->rows ? c->own_rows : 0;
        DLM_H5_GOTO(st, select_rows(space, c, c->own0, nr), done,
                    "%s: selecting this rank's rows of /%s/%s", path, gname, p->name);
        DLM_H5_GOTO(st, mem = mem_space(nr * c->cols), done, "%s: memory space", path);
        const float *x = nr ? L->arrays[k] + c->offset + (size_t)(c->own0 * c->cols) : &none;
        herr_t rc = dlm_fault_error("ckpt.write_error")
                        ? -1 /* an injected failure, as of a full disk on this rank */
                        : H5Dwrite(d, H5T_NATIVE_FLOAT, mem, space, dxpl, x);
        DLM_H5_GOTO(st, rc, done, "%s: writing dataset /%s/%s", path, gname, p->name);
        DLM_H5_GOTO(st, dlm_h5_attr_write_u64(d, "checksum", sums[i]), done,
                    "%s: checksum attribute of /%s/%s", path, gname, p->name);
        H5Dclose(d);
        H5Sclose(space);
        H5Sclose(mem);
        d = space = mem = H5I_INVALID_HID;
    }
done:
    if (st != DLM_OK && par) return st; /* closing is collective: the job ends instead */
    if (d >= 0) H5Dclose(d);
    if (space >= 0) H5Sclose(space);
    if (mem >= 0) H5Sclose(mem);
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

static dlm_status check_layout(const dlm_ckpt_layout *L)
{
    DLM_CHECK(L && L->table && L->n_tensors > 0 && L->arrays[0] && L->arrays[2] && L->arrays[3],
              DLM_ERR_ARG, "a checkpoint needs a table, params, adam_m and adam_v");
    for (int k = 0; k < 4; k++)
        DLM_CHECK(!L->arrays[k] || L->pieces[k], DLM_ERR_ARG, "group /%s has no pieces",
                  ckpt_groups[k]);
    for (int i = 0; i < L->n_tensors; i++) {
        const dlm_param_info *p = &L->table[i];
        DLM_CHECK(p->name[0] && !strchr(p->name, '/') && p->ndim >= 1 && p->ndim <= 2,
                  DLM_ERR_ARG, "tensor %d ('%s') cannot be a checkpoint dataset (empty name, "
                  "'/' in the name, or ndim %d not 1 or 2)", i, p->name, p->ndim);
    }
    return DLM_OK;
}

/* The collective part: create, write every group, flush, close. A failure
 * here leaves the other ranks inside a collective call: not agreed, and
 * nothing collective is attempted after it. */
static dlm_status write_file(const char *tmp, const dlm_ckpt_layout *L, const dlm_ckpt_state *s,
                             const uint64_t *sums)
{
    dlm_status st = DLM_OK;
    hid_t fapl = H5I_INVALID_HID, dxpl = H5P_DEFAULT, f = H5I_INVALID_HID;
    int par = L->comm != MPI_COMM_NULL;
    DLM_H5_GOTO(st, fapl = par ? dlm_h5_fapl_mpio(L->comm) : dlm_h5_fapl(), done,
                "%s: file access list", tmp);
    if (par) {
        DLM_H5_GOTO(st, dxpl = H5Pcreate(H5P_DATASET_XFER), done, "%s: transfer list", tmp);
        DLM_H5_GOTO(st, H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), done,
                    "%s: collective transfers", tmp);
    }
    DLM_H5_GOTO(st, f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), done,
                "cannot create checkpoint file %s", tmp);
    DLM_CALL_GOTO(st, write_root_attrs(f, tmp, s), done);
    for (int k = 0; k < 4; k++) {
        if (!L->arrays[k]) continue;
        DLM_CALL_GOTO(st, write_group(f, dxpl, tmp, k, L, sums + (size_t)k * L->n_tensors, par),
                      done);
        if (k == 0) dlm_fault_point("ckpt.write");
    }
    /* last: a file without it never verifies */
    DLM_H5_GOTO(st, dlm_h5_attr_write_i64(f, "complete", 1), done, "%s: attribute complete", tmp);
    /* global: with MPI-IO this syncs the file (MPI_File_sync) on every rank */
    DLM_H5_GOTO(st, H5Fflush(f, H5F_SCOPE_GLOBAL), done, "flushing checkpoint file %s", tmp);
    herr_t rc = H5Fclose(f);
    f = H5I_INVALID_HID;
    DLM_H5_GOTO(st, rc, done, "closing checkpoint file %s", tmp);
done:
    /* with MPI-IO, closing is collective and the other ranks are inside
     * another collective call: leave the handles, the job ends */
    if (f >= 0 && !par) H5Fclose(f);
    if (dxpl != H5P_DEFAULT) H5Pclose(dxpl);
    if (fapl >= 0) H5Pclose(fapl);
    return st;
}

#define NONCE_LEN 64

/* Rank 0's part before the collective write: the folder, and the
 * temporary file creatable, holding nonce (a read-only or full folder is
 * then one agreed message rather than a failure inside MPI-IO on every
 * rank). */
static dlm_status prepare_dir(const char *dir, const char *tmp, const char *nonce)
{
    DLM_CALL(dlm_mkdir_p(dir));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    DLM_CHECK(fd >= 0, DLM_ERR_IO, "cannot create checkpoint file %s: %s", tmp, strerror(errno));
    ssize_t n = write(fd, nonce, NONCE_LEN);
    int e = errno;
    close(fd);
    DLM_CHECK(n == NONCE_LEN, DLM_ERR_IO, "cannot write checkpoint file %s: %s", tmp,
              n < 0 ? strerror(e) : "short write");
    return DLM_OK;
}

/* Every rank finds rank 0's nonce in tmp: they share the file system. */
static dlm_status check_shared(MPI_Comm comm, const char *tmp, const char *nonce)
{
    char seen[NONCE_LEN] = "";
    int fd = open(tmp, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, seen, NONCE_LEN) : -1;
    if (fd >= 0) close(fd);
    DLM_CHECK(n == NONCE_LEN && !memcmp(seen, nonce, NONCE_LEN), DLM_ERR_IO,
              "rank %d does not see the checkpoint file %s as rank 0 wrote it: run.dir must be "
              "on a file system every rank shares", comm_rank(comm), tmp);
    return DLM_OK;
}

dlm_status dlm_ckpt_save(const char *run_dir, const dlm_ckpt_layout *L, const dlm_ckpt_state *s,
                         int keep_last, char *path_out, size_t path_len)
{
    DLM_CHECK(run_dir && s, DLM_ERR_ARG, "dlm_ckpt_save needs a run dir and a state");
    DLM_CALL(check_layout(L));
    char dir[PATH_MAX_LEN], final[PATH_MAX_LEN], tmp[PATH_MAX_LEN + 8];
    int n = snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DLM_CHECK(n > 0 && (size_t)n < sizeof dir, DLM_ERR_ARG, "run dir path too long: %s", run_dir);
    DLM_CALL(dlm_ckpt_path(run_dir, s->step, final, sizeof final));
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    int root = comm_rank(L->comm) == 0;
    char nonce[NONCE_LEN] = "";
    snprintf(nonce, sizeof nonce, "dlm checkpoint %ld %.9f", (long)getpid(), dlm_now());
    DLM_CALL(agree(L->comm, root ? prepare_dir(dir, tmp, nonce) : DLM_OK));
    if (L->comm != MPI_COMM_NULL) {
        DLM_MPI(MPI_Bcast(nonce, NONCE_LEN, MPI_CHAR, 0, L->comm));
        DLM_CALL(agree(L->comm, root ? DLM_OK : check_shared(L->comm, tmp, nonce)));
    }

    /* each dataset's checksum: the ranks' partial sums of the rows they own */
    size_t n_sums = 4 * (size_t)L->n_tensors;
    uint64_t *sums = calloc(n_sums, sizeof *sums);
    dlm_status got = agree(L->comm, sums ? DLM_OK : DLM_ERR_NOMEM);
    if (got != DLM_OK) {
        free(sums);
        DLM_CALL(got);
    }
    for (int k = 0; k < 4; k++)
        for (int i = 0; L->arrays[k] && i < L->n_tensors; i++)
            if (L->pieces[k][i].rows)
                sums[(size_t)k * L->n_tensors + i] =
                    owned_checksum(&L->table[i], &L->pieces[k][i], L->arrays[k]);
    int e = L->comm == MPI_COMM_NULL ? MPI_SUCCESS
                                     : MPI_Allreduce(MPI_IN_PLACE, sums, (int)n_sums, MPI_UINT64_T,
                                                     MPI_SUM, L->comm);
    dlm_status st = e == MPI_SUCCESS ? DLM_OK
                                     : dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Allreduce");
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    if (st == DLM_OK) st = write_file(tmp, L, s, sums);
    dlm_h5_quiet_end(&q);
    free(sums);
    if (st != DLM_OK) { /* unagreed (see above), except for one process */
        if (L->comm == MPI_COMM_NULL) unlink(tmp);
        return dlm_error_push(st, __FILE__, __LINE__, __func__,
                              "checkpoint step %" PRId64 " not saved", s->step);
    }
    /* every rank has closed the file: one rank puts it in place */
    DLM_CALL(agree(L->comm, DLM_OK));
    if (root) {
        st = dlm_durable_replace(tmp, final, "ckpt.rename");
        if (st != DLM_OK) {
            unlink(tmp);
            st = dlm_error_push(st, __FILE__, __LINE__, __func__,
                                "checkpoint step %" PRId64 " not saved", s->step);
        } else {
            dlm_ckpt_folder_prune(dir, s->step, keep_last);
        }
    }
    DLM_CALL(agree(L->comm, st));
    if (path_out) snprintf(path_out, path_len, "%s", final);
    return DLM_OK;
}

/* Whole tensors at their table offsets, for one process. Free *out. */
static dlm_status whole_pieces(const dlm_param_info *table, int n, dlm_ckpt_piece **out)
{
    dlm_ckpt_piece *c = malloc((size_t)(n > 0 ? n : 1) * sizeof *c);
    DLM_CHECK(c != NULL, DLM_ERR_NOMEM, "checkpoint pieces of %d tensors", n);
    for (int i = 0; i < n; i++) c[i] = piece_whole(&table[i]);
    *out = c;
    return DLM_OK;
}

dlm_status dlm_ckpt_write(const char *run_dir, const dlm_param_info *table, int n_tensors,
                          const float *params, const float *ema, const float *adam_m,
                          const float *adam_v, const dlm_ckpt_state *s, int keep_last,
                          char *path_out, size_t path_len)
{
    DLM_CHECK(table && n_tensors > 0, DLM_ERR_ARG, "dlm_ckpt_write needs a table");
    dlm_ckpt_piece *c = NULL;
    DLM_CALL(whole_pieces(table, n_tensors, &c));
    dlm_ckpt_layout L = {MPI_COMM_NULL, table, n_tensors,
                         {(float *)params, (float *)ema, (float *)adam_m, (float *)adam_v},
                         {c, c, c, c}};
    dlm_status st = dlm_ckpt_save(run_dir, &L, s, keep_last, path_out, path_len);
    free(c);
    return st;
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

/* Opens dataset name of parent and checks it: float32, the expected dims
 * if ndim > 0 (else *mismatch stays 0 and any shape goes), a checksum
 * attribute. *d, *count (elements) and *want_sum on success. Fills why
 * and sets *mismatch when the dataset is fine but not the model's tensor;
 * pushes no error frame, so find_latest can skip quietly. */
static dlm_status open_checked(hid_t parent, const char *path, const char *gname,
                               const char *name, int ndim, const int64_t *shape, hid_t *d,
                               size_t *count, uint64_t *want_sum, char *why, size_t why_len,
                               int *mismatch)
{
    dlm_status st = DLM_ERR_FORMAT;
    hid_t space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    char detail[256];
    *d = H5Dopen2(parent, name, H5P_DEFAULT);
    if (*d < 0) {
        dlm_h5_detail(detail, sizeof detail);
        snprintf(why, why_len, "%s: cannot open dataset /%s/%s (HDF5: %s)", path, gname, name,
                 detail);
        goto done;
    }
    type = H5Dget_type(*d);
    space = H5Dget_space(*d);
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
            *mismatch = 1;
            goto done;
        }
    }
    hssize_t npts = H5Sget_simple_extent_npoints(space);
    *count = npts > 0 ? (size_t)npts : 0;
    if (H5Aexists(*d, "checksum") <= 0 || dlm_h5_attr_read_u64(*d, "checksum", want_sum) < 0) {
        snprintf(why, why_len, "%s: dataset /%s/%s has no checksum attribute", path, gname, name);
        goto done;
    }
    st = DLM_OK;
done:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (st != DLM_OK && *d >= 0) H5Dclose(*d);
    return st;
}

static dlm_status checksum_mismatch(const char *path, const char *gname, const char *name,
                                    uint64_t want, uint64_t have, char *why, size_t why_len)
{
    snprintf(why, why_len,
             "%s: checksum mismatch in dataset /%s/%s (stored 0x%016" PRIx64
             ", data gives 0x%016" PRIx64 "): the data is corrupt",
             path, gname, name, want, have);
    return DLM_ERR_FORMAT;
}

/* Reads a whole float32 dataset of any shape into *buf (grown as needed)
 * and checks its checksum; for dlm_ckpt_verify. */
static dlm_status read_dataset(hid_t parent, const char *path, const char *gname,
                               const char *name, float **buf, size_t *cap, char *why,
                               size_t why_len)
{
    hid_t d;
    size_t count;
    uint64_t want_sum;
    int mismatch = 0;
    dlm_status st = open_checked(parent, path, gname, name, 0, NULL, &d, &count, &want_sum, why,
                                 why_len, &mismatch);
    if (st != DLM_OK) return st;
    if (count > *cap) {
        float *g = realloc(*buf, count * sizeof *g);
        if (!g) {
            snprintf(why, why_len, "%s: no memory to read dataset /%s/%s (%zu floats)", path,
                     gname, name, count);
            H5Dclose(d);
            return DLM_ERR_NOMEM;
        }
        *buf = g;
        *cap = count;
    }
    if (count && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *buf) < 0) {
        char detail[256];
        dlm_h5_detail(detail, sizeof detail);
        snprintf(why, why_len, "%s: cannot read dataset /%s/%s (HDF5: %s)", path, gname, name,
                 detail);
        st = DLM_ERR_FORMAT;
    }
    uint64_t have_sum = st == DLM_OK ? dlm_ckpt_checksum(*buf, count, 0) : 0;
    if (st == DLM_OK && have_sum != want_sum)
        st = checksum_mismatch(path, gname, name, want_sum, have_sum, why, why_len);
    H5Dclose(d);
    return st;
}

/* Reads the rectangle piece c of tensor p from its dataset into arr, and
 * the partial checksum of the rows this rank owns into *partial; *stored
 * gets the dataset's checksum. */
static dlm_status read_piece(hid_t g, const char *path, const char *gname, const dlm_param_info *p,
                             const dlm_ckpt_piece *c, float *arr, uint64_t *partial,
                             uint64_t *stored, char *why, size_t why_len, int *mismatch)
{
    hid_t d, space = H5I_INVALID_HID, mem = H5I_INVALID_HID;
    size_t count;
    dlm_status st = open_checked(g, path, gname, p->name, p->ndim, p->shape, &d, &count, stored,
                                 why, why_len, mismatch);
    if (st != DLM_OK || !c->rows) {
        if (st == DLM_OK) H5Dclose(d);
        return st;
    }
    space = H5Dget_space(d);
    mem = mem_space(c->rows * c->cols);
    if (space < 0 || mem < 0 || select_rows(space, c, 0, c->rows) < 0 ||
        H5Dread(d, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, arr + c->offset) < 0) {
        char detail[256];
        dlm_h5_detail(detail, sizeof detail);
        snprintf(why, why_len, "%s: cannot read rows %lld-%lld of dataset /%s/%s (HDF5: %s)", path,
                 (long long)c->row0, (long long)(c->row0 + c->rows - 1), gname, p->name, detail);
        st = DLM_ERR_FORMAT;
    } else {
        *partial = owned_checksum(p, c, arr);
    }
    if (mem >= 0) H5Sclose(mem);
    if (space >= 0) H5Sclose(space);
    H5Dclose(d);
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
    c->st = read_dataset(g, c->path, c->gname, name, &c->buf, &c->cap, c->why, c->why_len);
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
    DLM_CALL(dlm_ckpt_folder_list(dir, &e, &count));
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

/* Rank 0's list of checkpoint names, newest first, on every rank of comm.
 * Free *names. */
static dlm_status shared_list(MPI_Comm comm, const char *dir, char (**names)[256], int *n)
{
    ckpt_entry *e = NULL;
    int count = 0;
    dlm_status st = comm_rank(comm) == 0 ? dlm_ckpt_folder_list(dir, &e, &count) : DLM_OK;
    DLM_CALL(agree(comm, st));
    if (comm != MPI_COMM_NULL) DLM_MPI(MPI_Bcast(&count, 1, MPI_INT, 0, comm));
    char (*v)[256] = calloc((size_t)count + 1, sizeof *v);
    for (int i = 0; v && e && i < count; i++)
        snprintf(v[i], sizeof v[i], "%s", e[i].tmp ? "" : e[i].name);
    free(e);
    dlm_status got = agree(comm, v ? DLM_OK : DLM_ERR_NOMEM);
    if (got != DLM_OK) {
        free(v);
        DLM_CALL(got);
    }
    if (comm != MPI_COMM_NULL && count > 0) {
        int err = MPI_Bcast(v, 256 * count, MPI_CHAR, 0, comm);
        if (err != MPI_SUCCESS) {
            free(v);
            return dlm_mpi_error(err, __FILE__, __LINE__, __func__, "MPI_Bcast");
        }
    }
    *names = v;
    *n = count;
    return DLM_OK;
}

dlm_status dlm_ckpt_load_latest(const char *run_dir, const dlm_ckpt_layout *L,
                                const char *expected_shape, dlm_ckpt_state *s, char *path_out,
                                size_t len, int *found)
{
    *found = 0;
    char dir[PATH_MAX_LEN];
    int n = snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DLM_CHECK(n > 0 && (size_t)n < sizeof dir, DLM_ERR_ARG, "run dir path too long: %s", run_dir);
    char (*names)[256] = NULL;
    int count = 0;
    DLM_CALL(shared_list(L->comm, dir, &names, &count));
    dlm_status st = DLM_OK;
    for (int i = 0; i < count && !*found && st == DLM_OK; i++) {
        if (!names[i][0]) continue; /* a temporary file: never a candidate */
        char path[PATH_MAX_LEN + 256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int unverified = 0;
        st = dlm_ckpt_load(path, L, expected_shape, s, &unverified);
        if (st == DLM_OK) {
            *found = 1;
            if ((size_t)snprintf(path_out, len, "%s", path) >= len)
                st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                    "checkpoint path %s does not fit in %zu bytes", path, len);
        } else if (unverified) { /* the rank that found why says so; all skip it */
            if (st != DLM_ERR_PEER)
                DLM_WARN("skipping checkpoint %s, it does not verify: %s; trying the previous one",
                         path, dlm_error_text());
            dlm_error_clear();
            st = DLM_OK;
        }
    }
    free(names);
    return st;
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

/* This rank's part of dlm_ckpt_load: the file opened on its own, every
 * table tensor's dataset checked, the held rectangles read with the
 * partial checksums of the owned rows (partial, stored: 4 x n_tensors).
 * Fills why; *mismatch when the file is sound but not this model's. */
static dlm_status load_local(const char *path, const dlm_ckpt_layout *L, const char *expected_shape,
                             uint64_t *partial, uint64_t *stored, dlm_ckpt_state *s, char *why,
                             size_t why_len, int *mismatch)
{
    hid_t f = H5I_INVALID_HID, g = H5I_INVALID_HID;
    char *shape = NULL;
    dlm_status st = open_ckpt(path, &f, why, why_len);
    if (st != DLM_OK) return st;
    st = check_complete(f, path, why, why_len);
    if (st == DLM_OK && expected_shape) {
        if (dlm_h5_attr_read_str(f, "shape", &shape) < 0) {
            snprintf(why, why_len, "%s: cannot read the model shape attribute 'shape'", path);
            st = DLM_ERR_FORMAT;
        } else if (strcmp(shape, expected_shape) != 0) {
            snprintf(why, why_len,
                     "%s holds a model of shape '%s' but this model is '%s'; resume with the "
                     "model settings it was written with, or use another run folder",
                     path, shape, expected_shape);
            st = DLM_ERR_FORMAT;
            *mismatch = 1;
        }
    }
    int listed = 0; /* the first group read is checked for tensors the table lacks */
    for (int k = 0; st == DLM_OK && k < 4; k++) {
        if (!L->arrays[k]) continue;
        if (H5Lexists(f, ckpt_groups[k], H5P_DEFAULT) <= 0) {
            snprintf(why, why_len, "%s: group /%s is missing%s", path, ckpt_groups[k],
                     k == 1 ? " (the run was saved without EMA weights)" : "");
            *mismatch = k == 1;
            st = DLM_ERR_FORMAT;
            break;
        }
        g = H5Gopen2(f, ckpt_groups[k], H5P_DEFAULT);
        if (g < 0) {
            snprintf(why, why_len, "%s: cannot open group /%s", path, ckpt_groups[k]);
            st = DLM_ERR_FORMAT;
            break;
        }
        for (int i = 0; st == DLM_OK && i < L->n_tensors; i++) {
            const dlm_param_info *p = &L->table[i];
            size_t at = (size_t)k * L->n_tensors + i;
            if (H5Lexists(g, p->name, H5P_DEFAULT) <= 0) {
                snprintf(why, why_len,
                         "%s: tensor %s (dataset /%s/%s) is missing from the checkpoint", path,
                         p->name, ckpt_groups[k], p->name);
                *mismatch = 1;
                st = DLM_ERR_FORMAT;
                break;
            }
            st = read_piece(g, path, ckpt_groups[k], p, &L->pieces[k][i], L->arrays[k],
                            &partial[at], &stored[at], why, why_len, mismatch);
        }
        if (st == DLM_OK && !listed++) {
            extra_ctx c = {.table = L->table, .n = L->n_tensors};
            herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, extra_cb, &c);
            if (rc != 0) {
                if (rc > 0)
                    snprintf(why, why_len,
                             "%s: holds tensor /%s/%s, which this model's table does not have",
                             path, ckpt_groups[k], c.extra);
                else
                    snprintf(why, why_len, "%s: cannot list /%s", path, ckpt_groups[k]);
                *mismatch = rc > 0;
                st = DLM_ERR_FORMAT;
            }
        }
        H5Gclose(g);
        g = H5I_INVALID_HID;
    }
    if (st == DLM_OK && s && read_state(f, path, s) != DLM_OK) {
        snprintf(why, why_len, "%s: cannot read the run state attributes: %s", path,
                 dlm_error_text());
        dlm_error_clear();
        st = DLM_ERR_FORMAT;
    }
    free(shape);
    H5Fclose(f);
    return st;
}

dlm_status dlm_ckpt_load(const char *path, const dlm_ckpt_layout *L, const char *expected_shape,
                         dlm_ckpt_state *s, int *unverified)
{
    DLM_CHECK(path && L && L->table && L->n_tensors > 0 &&
                  (L->arrays[0] || L->arrays[1] || L->arrays[2] || L->arrays[3]),
              DLM_ERR_ARG, "dlm_ckpt_load needs a path, a table and at least one group to read");
    if (s) memset(s, 0, sizeof *s);
    if (unverified) *unverified = 0;
    size_t n_sums = 4 * (size_t)L->n_tensors;
    uint64_t *partial = calloc(2 * n_sums, sizeof *partial), *stored = partial + n_sums;
    char why[WHY_LEN] = "";
    int mismatch = 0;
    dlm_status st = partial ? DLM_OK : DLM_ERR_NOMEM;
    if (st == DLM_OK) {
        dlm_h5_quiet q;
        dlm_h5_quiet_begin(&q);
        st = load_local(path, L, expected_shape, partial, stored, s, why, sizeof why, &mismatch);
        dlm_h5_quiet_end(&q);
        if (st != DLM_OK) dlm_error_push(st, __FILE__, __LINE__, __func__, "%s", why);
        if (st == DLM_ERR_IO && L->comm != MPI_COMM_NULL)
            dlm_error_push(st, __FILE__, __LINE__, __func__,
                           "rank %d cannot read a checkpoint rank 0 listed: run.dir must be on "
                           "a file system every rank shares", comm_rank(L->comm));
    }
    /* only the file's integrity skips it; a missing file or memory stops */
    int bad_file = st == DLM_ERR_FORMAT && !mismatch, any_bad = bad_file;
    st = agree(L->comm, st);
    if (st != DLM_OK && L->comm != MPI_COMM_NULL) {
        /* agreed: was it the file's integrity on some rank? (collective: all got here) */
        if (MPI_Allreduce(&bad_file, &any_bad, 1, MPI_INT, MPI_MAX, L->comm) != MPI_SUCCESS)
            any_bad = 0;
    }
    if (st == DLM_OK && L->comm != MPI_COMM_NULL) { /* the partial sums of every owned row */
        int e = MPI_Allreduce(MPI_IN_PLACE, partial, (int)n_sums, MPI_UINT64_T, MPI_SUM, L->comm);
        if (e != MPI_SUCCESS) st = dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Allreduce");
        st = agree(L->comm, st);
    }
    /* every rank compares the same sums: all find the same first mismatch */
    for (int k = 0; st == DLM_OK && k < 4; k++)
        for (int i = 0; L->arrays[k] && i < L->n_tensors && st == DLM_OK; i++) {
            size_t at = (size_t)k * L->n_tensors + i;
            if (partial[at] != stored[at]) {
                checksum_mismatch(path, ckpt_groups[k], L->table[i].name, stored[at],
                                  partial[at], why, sizeof why);
                st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__, "%s", why);
                st = agree(L->comm, st); /* one message, from rank 0 */
                any_bad = 1;
            }
        }
    free(partial);
    if (st != DLM_OK) {
        if (s) dlm_ckpt_state_free(s);
        if (unverified) *unverified = any_bad;
        return dlm_error_push(st, __FILE__, __LINE__, __func__, "loading checkpoint %s", path);
    }
    return DLM_OK;
}

dlm_status dlm_ckpt_read(const char *path, const dlm_param_info *table, int n_tensors,
                         const char *expected_shape, float *params, float *ema, float *adam_m,
                         float *adam_v, dlm_ckpt_state *s)
{
    DLM_CHECK(table && n_tensors > 0, DLM_ERR_ARG, "dlm_ckpt_read needs a table");
    dlm_ckpt_piece *c = NULL;
    DLM_CALL(whole_pieces(table, n_tensors, &c));
    dlm_ckpt_layout L = {MPI_COMM_NULL, table, n_tensors, {params, ema, adam_m, adam_v},
                         {c, c, c, c}};
    dlm_status st = dlm_ckpt_load(path, &L, expected_shape, s, NULL);
    free(c);
    return st;
}

void dlm_ckpt_state_free(dlm_ckpt_state *s)
{
    if (!s) return;
    free((char *)s->config_text);
    free((char *)s->shape);
    s->config_text = s->shape = NULL;
}
