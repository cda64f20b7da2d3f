/* HDF5 helpers shared by dlm's file writers and readers: the file-access
 * list, HDF5 errors turned into dlm_status with HDF5's own reason, scalar
 * attributes, and the durable replace of a finished temporary file.
 *
 *   DLM_H5(d = H5Dopen2(f, "/train/loss", H5P_DEFAULT), "%s: opening /train/loss", path);
 *   DLM_H5_GOTO(st, H5Dwrite(d, ...), done, "%s: writing %s", path, name);
 */
#ifndef DLM_H5_H
#define DLM_H5_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#include "core/status.h"

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

/* The file-access list for a file many ranks write together: the MPI-IO
 * driver over comm, strong close, file locking off as above. Every rank of
 * comm opens the file with it. */
hid_t dlm_h5_fapl_mpio(MPI_Comm comm);

/* HDF5 error printing off for the duration of a call: errors are turned
 * into dlm_status with HDF5's innermost message instead. */
typedef struct {
    H5E_auto2_t func;
    void *data;
} dlm_h5_quiet;
void dlm_h5_quiet_begin(dlm_h5_quiet *q);
void dlm_h5_quiet_end(const dlm_h5_quiet *q);

/* HDF5's innermost error description (where the failure was detected). */
void dlm_h5_detail(char *buf, size_t len);

/* Pushes an error (DLM_ERR_HDF5) with the message and HDF5's innermost
 * description from the current error stack; call right after the failing
 * HDF5 call, before any other. */
dlm_status dlm_h5_error(const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A negative HDF5 result returns DLM_ERR_HDF5 with the message and HDF5's reason. */
#define DLM_H5(expr, ...)                                                              \
    do {                                                                               \
        if ((expr) < 0) return dlm_h5_error(__FILE__, __LINE__, __func__, __VA_ARGS__); \
    } while (0)

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
