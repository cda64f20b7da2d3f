/* The files of a run's checkpoints/ folder, for the checkpoint reader and
 * writer (io/checkpoint.c): step-NNNNNNNN.h5 and the .h5.tmp a writer
 * leaves while it works. */
#ifndef DLM_CKPT_FOLDER_H
#define DLM_CKPT_FOLDER_H

#include <stdint.h>

#include "core/status.h"

typedef struct {
    int64_t step;
    int tmp; /* a .h5.tmp */
    char name[256];
} ckpt_entry;

/* The checkpoint files of dir (final and temporary), newest first; *n = 0
 * and no error when dir does not exist. Free *out. */
dlm_status dlm_ckpt_folder_list(const char *dir, ckpt_entry **out, int *n);

/* Keeps the keep_last newest checkpoints up to step (keep_last <= 0: all),
 * removes older ones and leftover temporary files; a newer one is left
 * with a warning. Failures only warn: the new checkpoint is already safe. */
void dlm_ckpt_folder_prune(const char *dir, int64_t step, int keep_last);

#endif
