/* mkdir -p. */
#include "core/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

dlm_status dlm_read_file(const char *path, char **data, size_t *len)
{
    return dlm_read_file_as(NULL, path, data, len);
}

dlm_status dlm_read_file_as(const char *what, const char *path, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    const char *sep = what ? " " : "";
    what = what ? what : "";
    FILE *f = fopen(path, "rb");
    DLM_CHECK(f != NULL, DLM_ERR_IO, "cannot read %s%s%s: %s", what, sep, path, strerror(errno));
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, 2 * cap);
            if (!nb) free(buf);
            buf = nb, cap *= 2;
        }
    }
    int failed = buf ? ferror(f) : 0; /* e.g. EISDIR: a folder opens but does not read */
    int err = errno;
    fclose(f);
    DLM_CHECK(buf != NULL, DLM_ERR_NOMEM, "reading %s%s%s (%zu bytes so far)", what, sep, path, n);
    if (failed) {
        free(buf);
        DLM_CHECK(0, DLM_ERR_IO, "cannot read %s%s%s: %s", what, sep, path, strerror(err));
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return DLM_OK;
}
