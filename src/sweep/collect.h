/* sweep.h5: every planned run's final numbers next to its plan row. The
 * plan's /runs columns, plus per run: state ("done", "failed",
 * "unfinished", "missing"), detail (why not done), estimate_nats_per_token
 * and stderr_nats_per_token of the final evaluation (diffusion: the
 * exact-k NELBO, an upper bound; AR: exact), bits_per_byte and its
 * stderr, estimator, weights, last_step, train_loss, val_loss (NaN where a
 * run has none). No run is dropped: those not done are listed by name. */
#ifndef DLM_SWEEP_COLLECT_H
#define DLM_SWEEP_COLLECT_H

#include <stdio.h>

#include "core/status.h"
#include "sweep/plan.h"

/* Writes path and prints a line per run that is not done to out; *n_done
 * gets how many are. */
dlm_status dlm_sweep_collect(const dlm_sweep_plan *p, const char *path, FILE *out, int *n_done);

/* A table of every run's state (dlm-sweep status). */
void dlm_sweep_print_status(const dlm_sweep_plan *p, FILE *out);

#endif
