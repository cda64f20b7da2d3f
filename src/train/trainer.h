/* The training run behind dlm-train: data, model, AdamW, EMA, periodic
 * validation, the run file, checkpoints and exact resume.
 *
 *   dlm_trainer *t;
 *   dlm_trainer_options o = {.stop = &stop_flag};
 *   DLM_CALL(dlm_trainer_create(grid, &cfg, &o, &t));    // resumes if run.dir has checkpoints
 *   DLM_CALL(dlm_trainer_run(t, &stopped));              // stopped: a signal asked to stop
 *   dlm_trainer_destroy(&t);
 *
 * Order of writes at a step that logs and checkpoints: rows are added and
 * run.h5 is replaced first, then the checkpoint. A kill in between leaves
 * rows past the newest checkpoint; resuming drops them, so every step is
 * in run.h5 exactly once.
 *
 * Under data parallelism every rank runs its slice of each global batch;
 * rank 0 alone logs, writes run.h5 and (until checkpoints are written
 * collectively) the checkpoints of the replicated state. */
#ifndef DLM_TRAINER_H
#define DLM_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "parallel/grid.h"
#include "train/run_config.h"
#include "core/status.h"

/* dlm-train's exit status after a SIGTERM or SIGUSR1: the current step was
 * finished and checkpointed; the same command resumes. */
#define DLM_EXIT_STOPPED 75

typedef struct dlm_trainer dlm_trainer;

/* What the caller (main) decides about a run beyond its config. */
typedef struct {
    /* may be NULL; when it becomes non-zero the run finishes the current
     * step, writes a checkpoint and returns */
    volatile sig_atomic_t *stop;
    /* > 0: a stop request arrives during this step (tests, drills) */
    int64_t stop_at_step;
    /* every rank's host for run.h5 ("r0=node1 r1=node1 ..."); may be NULL */
    const char *hosts;
} dlm_trainer_options;

/* Collective over the grid's world, as is every call below: errors are
 * agreed (every rank returns one, the failing rank's message stands), the
 * stop request of any rank stops all at the same step. opt may be NULL (no
 * stop flag, no stop step). The grid must outlive the trainer. */
dlm_status dlm_trainer_create(const dlm_grid *grid, const dlm_run_config *cfg,
                              const dlm_trainer_options *opt, dlm_trainer **out);
dlm_status dlm_trainer_run(dlm_trainer *t, int *stopped);
/* Writes the current state as a checkpoint of run_dir (NULL: the run's
 * own), every rank its part of one file, after the replica check.
 * Collective; dlm_trainer_run calls it at every checkpoint. */
dlm_status dlm_trainer_save(dlm_trainer *t, const char *run_dir);
/* The gradient noise of the run's estimator at its current step (the
 * resumed checkpoint, or the initial model) over n sequences of the
 * step's training data, logged: see train/grad_noise.h. One rank only. */
dlm_status dlm_trainer_grad_noise(dlm_trainer *t, int n);
/* Optimizer steps taken (the resumed step right after create). */
int64_t dlm_trainer_step(const dlm_trainer *t);
void dlm_trainer_destroy(dlm_trainer **t);

#endif
