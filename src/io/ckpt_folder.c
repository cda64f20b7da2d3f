/* The checkpoint folder: file names, the listing, pruning (see ckpt_folder.h). */
#define _GNU_SOURCE
#include "io/ckpt_folder.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "io/checkpoint.h"

#define PATH_MAX_LEN 4096

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


static int entry_newest_first(const void *a, const void *b)
{
    int64_t x = ((const ckpt_entry *)a)->step, y = ((const ckpt_entry *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The checkpoint files of dir (final and temporary), newest first; *n = 0
 * and no error when dir does not exist. Free *out. */
dlm_status dlm_ckpt_folder_list(const char *dir, ckpt_entry **out, int *n)
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

/* Keeps the keep_last newest checkpoints up to step, removes older ones and
 * leftover temporary files. Failures here only warn: the new checkpoint is
 * already safe. */
void dlm_ckpt_folder_prune(const char *dir, int64_t step, int keep_last)
{
    ckpt_entry *e;
    int n;
    if (dlm_ckpt_folder_list(dir, &e, &n) != DLM_OK) {
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

