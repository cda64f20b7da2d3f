/* Small filesystem helpers shared by the writers. */
#ifndef DLM_FS_H
#define DLM_FS_H

#include <stddef.h>

#include "core/status.h"

/* Creates path and any missing parents (like mkdir -p). */
dlm_status dlm_mkdir_p(const char *path);

/* Reads the whole file into *data (malloc'd, NUL-terminated; *len excludes
 * the NUL). Errors name the file and the cause ("cannot read x: Is a
 * directory"). */
dlm_status dlm_read_file(const char *path, char **data, size_t *len);

/* The same, with what the file is in the message ("cannot read config file
 * x: No such file or directory"). */
dlm_status dlm_read_file_as(const char *what, const char *path, char **data, size_t *len);

#endif
