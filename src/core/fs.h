/* Small filesystem helpers shared by the writers. */
#ifndef DLM_FS_H
#define DLM_FS_H

#include "core/status.h"

/* Creates path and any missing parents (like mkdir -p). */
dlm_status dlm_mkdir_p(const char *path);

#endif
