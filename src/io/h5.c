/* HDF5 helpers shared by every writer and reader of dlm's files (run.h5,
 * checkpoints, eval.h5, samples.h5): file access, quiet errors turned into
 * dlm_status, scalar attributes, and the durable rename. */
#define _GNU_SOURCE
#include "io/h5.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fault.h"

#define PATH_MAX_LEN 4096


/* H5Pset_file_locking exists from 1.10.7 and 1.12.1; before that,
 * HDF5_USE_FILE_LOCKING=FALSE in the environment does the same. */
#if H5_VERSION_GE(1, 12, 1) || (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7)
#define DLM_H5_HAVE_FILE_LOCKING 1
#else
#define DLM_H5_HAVE_FILE_LOCKING 0
#endif

/* Strong close and no file locking on a list whose driver was set (bad:
 * that failed); closes the list on failure. */
static hid_t finish_fapl(hid_t fapl, int bad)
{
    bad = bad || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0;
#if DLM_H5_HAVE_FILE_LOCKING
    bad = bad || H5Pset_file_locking(fapl, 0, 1) < 0;
#endif
    if (bad) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

hid_t dlm_h5_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    return fapl < 0 ? fapl : finish_fapl(fapl, H5Pset_fapl_sec2(fapl) < 0);
}

hid_t dlm_h5_fapl_mpio(MPI_Comm comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    return fapl < 0 ? fapl : finish_fapl(fapl, H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0);
}

void dlm_h5_quiet_begin(dlm_h5_quiet *q)
{
    q->func = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void dlm_h5_quiet_end(const dlm_h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e->desc) snprintf((char *)data, 256, "%s", e->desc);
    return 0;
}

void dlm_h5_detail(char *buf, size_t len)
{
    char inner[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_cb, inner);
    snprintf(buf, len, "%s", inner[0] ? inner : "no detail from HDF5");
}

dlm_status dlm_h5_error(const char *file, int line, const char *func, const char *fmt, ...)
{
    char detail[256], msg[900];
    dlm_h5_detail(detail, sizeof detail);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dlm_error_push(DLM_ERR_HDF5, file, line, func, "%s (HDF5: %s)", msg, detail);
}

static hid_t vlen_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

static herr_t attr_write(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                         const void *buf)
{
    herr_t rc = -1;
    hid_t space = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    if (space < 0) return -1;
    htri_t exists = H5Aexists(obj, name);
    if (exists < 0 || (exists > 0 && H5Adelete(obj, name) < 0)) goto done;
    a = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) goto done;
    rc = H5Awrite(a, mem_type, buf);
done:
    if (a >= 0 && H5Aclose(a) < 0) rc = -1;
    H5Sclose(space);
    return rc;
}

herr_t dlm_h5_attr_write_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = vlen_str_type();
    if (t < 0) return -1;
    const char *v = value ? value : "";
    herr_t rc = attr_write(obj, name, t, t, &v);
    H5Tclose(t);
    return rc;
}

herr_t dlm_h5_attr_write_i64(hid_t obj, const char *name, int64_t value)
{
    return attr_write(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

herr_t dlm_h5_attr_write_u64(hid_t obj, const char *name, uint64_t value)
{
    return attr_write(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}

static herr_t attr_read(hid_t obj, const char *name, hid_t mem_type, void *buf)
{
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t rc = H5Aread(a, mem_type, buf);
    if (H5Aclose(a) < 0) rc = -1;
    return rc;
}

herr_t dlm_h5_attr_read_i64(hid_t obj, const char *name, int64_t *value)
{
    return attr_read(obj, name, H5T_NATIVE_INT64, value);
}

herr_t dlm_h5_attr_read_u64(hid_t obj, const char *name, uint64_t *value)
{
    return attr_read(obj, name, H5T_NATIVE_UINT64, value);
}

/* Reads variable-length strings (ours) and fixed-length ones (other writers). */
herr_t dlm_h5_attr_read_str(hid_t obj, const char *name, char **out)
{
    *out = NULL;
    herr_t rc = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    if (a < 0) return -1;
    ft = H5Aget_type(a);
    if (ft < 0 || H5Tget_class(ft) != H5T_STRING) goto done;
    htri_t vl = H5Tis_variable_str(ft);
    if (vl < 0) goto done;
    if (vl) {
        mt = vlen_str_type();
        char *s = NULL;
        if (mt < 0 || H5Aread(a, mt, &s) < 0) goto done;
        *out = strdup(s ? s : "");
        H5free_memory(s);
    } else {
        size_t n = H5Tget_size(ft);
        mt = H5Tcopy(ft);
        char *s = calloc(n + 1, 1);
        if (mt < 0 || !s || H5Tset_size(mt, n + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
            H5Aread(a, mt, s) < 0) {
            free(s);
            goto done;
        }
        *out = s;
    }
    rc = *out ? 0 : -1;
done:
    if (mt >= 0) H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

/* ---- durability --------------------------------------------------------- */

static dlm_status fsync_path(const char *path, int directory)
{
    int fd = open(path, O_RDONLY | (directory ? O_DIRECTORY : 0));
    DLM_CHECK(fd >= 0, DLM_ERR_IO, "cannot open %s to fsync it: %s", path, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        /* some filesystems refuse fsync on a folder; the rename is still atomic there */
        if (directory && (e == EINVAL || e == EBADF)) return DLM_OK;
        DLM_CHECK(0, DLM_ERR_IO, "fsync of %s failed: %s", path, strerror(e));
    }
    close(fd);
    return DLM_OK;
}

dlm_status dlm_durable_replace(const char *tmp, const char *final, const char *fault_point)
{
    DLM_CALL(fsync_path(tmp, 0));
    if (fault_point) dlm_fault_point(fault_point);
    DLM_CHECK(rename(tmp, final) == 0, DLM_ERR_IO, "cannot rename %s to %s: %s", tmp, final,
              strerror(errno));
    char dir[PATH_MAX_LEN];
    DLM_CHECK(strlen(final) < sizeof dir, DLM_ERR_ARG, "path too long: %s", final);
    snprintf(dir, sizeof dir, "%s", final);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    DLM_CALL(fsync_path(dir, 1));
    return DLM_OK;
}

