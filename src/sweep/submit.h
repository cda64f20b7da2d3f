/* Submitting a sweep to Slurm: its runs that are not done, grouped by
 * layout and time class (the run's --time rounded up to 5, 10, 20, 40 ...
 * minutes), one training job array per group with a throttle (%k), an
 * evaluation array after it (aftercorr: task i starts when training task
 * i succeeded; --kill-on-invalid-dep, so a failed training cancels its
 * evaluation instead of leaving it pending), and one collect job after
 * every array (afterany). The arrays run slurm/sweep-train.sbatch and
 * sweep-eval.sbatch, which hand one run each to train.sbatch (checkpoint
 * and requeue at the time limit and on preemption) and eval.sbatch; the
 * task's run folder is line i of <sweep.dir>/slurm/<group>.runs. */
#ifndef DLM_SWEEP_SUBMIT_H
#define DLM_SWEEP_SUBMIT_H

#include <stdio.h>

#include "core/status.h"
#include "sweep/plan.h"

typedef struct {
    const char *sweep_file;       /* absolute; the collect job reads it again */
    const char *const *sets;      /* the overrides it was read with */
    int n_sets;
    const char *build_dir;        /* holding bin/ (DLM_BUILD of the scripts) */
    const char *scripts_dir;      /* slurm/ */
    int dry_run;                  /* print the sbatch commands, submit nothing */
} dlm_sweep_submit_options;

dlm_status dlm_sweep_submit(const dlm_sweep_plan *p, const dlm_sweep_submit_options *o, FILE *out);

#endif
