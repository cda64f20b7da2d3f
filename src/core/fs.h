/* Small filesystem helpers shared by the writers. */
#ifndef DLM_FS_H
#define DLM_FS_H

#include <stddef.h>

#include "core/status.h"

/* Creates path and any missing parents (like mkdir -p). */
dlm_status dlm_mkdir_p(const char *path);

/* Reads the whole file into *data (malloc'd, NUL-terminated; *len excludes
 * the NUL). Errors name the file. */
dlm_status dlm_read_file(const char *path, char **data, size_t *len);

#endif
