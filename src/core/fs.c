/* mkdir -p. */
#include "core/fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

dlm_status dlm_mkdir_p(const char *path)
{
    char tmp[4096];
    DLM_CHECK(strlen(path) < sizeof tmp && path[0], DLM_ERR_ARG, "bad folder name '%s'", path);
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            DLM_CHECK(0, DLM_ERR_IO, "cannot create folder %s: %s", tmp, strerror(errno));
        *p = c;
        if (c == '\0') break;
    }
    struct stat st;
    DLM_CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode), DLM_ERR_IO, "%s is not a folder", path);
    return DLM_OK;
}
