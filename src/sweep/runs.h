/* The runs of a plan on disk: each in its own folder <sweep.dir>/<name>
 * holding run.cfg (its whole run config, written before it starts),
 * dlm-train's run.h5 and checkpoints, and dlm-eval's eval.h5. A run is
 * done when eval.h5 holds an evaluation of its final step; its state is
 * read from the folder alone, so `run`, `submit` and `collect` agree
 * whoever ran it and however often it was restarted.
 *
 * The local runner executes runs here: `jobs` at a time, each dlm-train
 * (under mpiexec when it has more than one rank) then dlm-eval, output to
 * <run>/run.log; a failure writes <run>/failed (the stage and exit status)
 * and the others go on. Finished runs are skipped, failed and unfinished
 * ones run again (dlm-train resumes from their newest checkpoint). A run
 * folder's `lock` (flock) is held by whatever trains it, the local runner
 * or a Slurm task: a second one on the same run leaves it alone. */
#ifndef DLM_SWEEP_RUNS_H
#define DLM_SWEEP_RUNS_H

#include <stdint.h>

#include "core/status.h"
#include "sweep/plan.h"

typedef enum {
    DLM_RUN_MISSING = 0, /* no folder, or nothing trained yet */
    DLM_RUN_UNFINISHED,  /* trained part of the way (stopped, killed, or still going) */
    DLM_RUN_FAILED,      /* the runner recorded a failure */
    DLM_RUN_DONE         /* eval.h5 holds its final step */
} dlm_run_state_kind;
extern const char *const dlm_run_state_names[]; /* "missing", "unfinished", "failed", "done" */

typedef struct {
    dlm_run_state_kind kind;
    int64_t last_step;     /* newest training row in run.h5, -1 without */
    double train_loss;     /* at last_step, NaN without */
    double val_loss;       /* newest validation row, NaN without */
    double estimate, stderr_, bits_per_byte, stderr_bpb; /* the final evaluation, NaN unless done */
    char estimator[32], weights[8];
    char detail[256];      /* why it is not done */
} dlm_run_state;

/* Reads run i's folder. Never fails on what a run left behind: an
 * unreadable file is a state with a detail. */
void dlm_sweep_run_state(const dlm_sweep_plan *p, int i, dlm_run_state *s);

/* Creates run i's folder and writes run.cfg (the run config text; an
 * existing run.cfg must say the same: a changed sweep file is refused
 * rather than mixing two plans in one folder). */
dlm_status dlm_sweep_materialize(const dlm_sweep_plan *p, int i);

/* dlm-eval's options for run i's evaluation (exact-k for diffusion, AR
 * exact anyway; the run's tp and pp): NULL-ended pointers into buf.
 * Returns the ranks it runs on (tp x pp): the local runner and the Slurm
 * arrays evaluate alike. */
#define DLM_SWEEP_EVAL_ARGS 14
int dlm_sweep_eval_args(const dlm_sweep_plan *p, int i, char buf[DLM_SWEEP_EVAL_ARGS][DLM_CONFIG_PATH_MAX],
                        const char **argv);

typedef struct {
    const char *bin_dir;  /* holding dlm-train and dlm-eval */
    const char *mpiexec;  /* the launcher for runs of several ranks, split at spaces
                             ("mpiexec --oversubscribe --bind-to none") */
    int jobs;             /* runs side by side */
    int threads;          /* BLIS threads per rank */
    int only;             /* -1: every run, else just this one */
} dlm_sweep_local_options;

/* Runs every run that is not done; returns DLM_OK when all are done, else
 * an error naming how many failed. Progress lines go to the log. */
dlm_status dlm_sweep_run_local(const dlm_sweep_plan *p, const dlm_sweep_local_options *o);

#endif
