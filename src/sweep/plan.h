/* A sweep's run table: for each objective, budget C, size and seed one run,
 * with its shape, tokens, steps, FLOPs, learning rate, layout and the wall
 * time it should take. Nothing runs here.
 *
 * Sizes: per budget, `sweep.sizes` target N spaced evenly in log N over
 * `sweep.span`, centred on N* = sqrt(C / (6 tokens_per_param)) (times
 * center.mdlm_factor for diffusion recipes); each target becomes the
 * shape (layers, width = a multiple of head_dim, width / layers near
 * shape.aspect) whose N is nearest in log. N is the non-embedding
 * parameter count (dlm_model_nonembedding_params: all but the token
 * embedding and the LM head).
 * Tokens: D = C / F with F the FLOPs per token of `sweep.flops`: "engine"
 * (dlm_model_flops_per_token, which counts attention and the LM head) or
 * "6N" (Kaplan's and SMDM's C = 6 N D); rounded to whole steps of the base
 * run's batch x seq_len, so a run's FLOPs are within half a step of C.
 *
 *   dlm_sweep_plan *p;
 *   DLM_CALL(dlm_sweep_plan_create(&sweep_cfg, &p));
 *   dlm_sweep_plan_print(p, stdout);
 *   DLM_CALL(dlm_sweep_plan_write(p, "runs/s/plan.h5"));
 *   dlm_run_config rc;
 *   DLM_CALL(dlm_sweep_run_config(p, 3, &rc)); // the 4th run's whole config
 *   dlm_sweep_plan_destroy(&p);
 */
#ifndef DLM_SWEEP_PLAN_H
#define DLM_SWEEP_PLAN_H

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"
#include "sweep/sweep_config.h"
#include "train/run_config.h"

typedef struct {
    char name[160];          /* <objective>_C<budget>_L<layers>-d<width>_s<seed>: its folder */
    int objective;           /* index into sweep.objectives */
    double budget;           /* C, FLOPs by the sweep's definition */
    int size_index;          /* 0 .. sizes - 1 within its budget, by target N */
    int seed;
    int layers, width, heads;
    double target_params;    /* the target N of the size */
    int64_t n_params;        /* N of the shape */
    double flops_per_token;  /* by the sweep's definition */
    double engine_flops_per_token;
    int64_t steps, tokens;
    double flops, engine_flops; /* steps x batch x T x the FLOPs per token */
    double epochs;           /* tokens / sweep.unique_tokens, 0 without one */
    double lr;
    int warmup;
    int dp, tp, pp;
    double est_seconds;      /* engine FLOPs / (time.flops_per_s x ranks) + overhead */
    double time_limit_s;     /* safety x estimate + overhead, whole minutes */
} dlm_sweep_run;

typedef struct {
    dlm_sweep_config cfg;
    dlm_run_config base;     /* the base run config, data paths made absolute */
    int vocab_size, bos_id;  /* of the base's training data */
    int n;
    dlm_sweep_run *runs;     /* objective, then budget, size, seed */
} dlm_sweep_plan;

dlm_status dlm_sweep_plan_create(const dlm_sweep_config *cfg, dlm_sweep_plan **out);
void dlm_sweep_plan_destroy(dlm_sweep_plan **p);

/* Run i's whole run config (the base with the run's recipe, shape, steps,
 * learning rate, seed, layout, folder), validated as dlm-train would. */
dlm_status dlm_sweep_run_config(const dlm_sweep_plan *p, int i, dlm_run_config *out);
/* The folder of run i: <sweep.dir>/<name>. */
void dlm_sweep_run_dir(const dlm_sweep_plan *p, int i, char *buf, size_t n);

/* The table, one row per run, with what N and the FLOPs count. */
void dlm_sweep_plan_print(const dlm_sweep_plan *p, FILE *f);
/* plan.h5: /runs/<column> 1-D datasets, one row per run, and the resolved
 * sweep file and the definitions as attributes; written whole to a
 * temporary name and renamed into place. */
dlm_status dlm_sweep_plan_write(const dlm_sweep_plan *p, const char *path);

/* For the files that extend the table (sweep.h5): writes path whole with
 * the format attribute, the plan's attributes and /runs columns, then
 * body(p, runs_group, tmp_path, arg) adds its own columns. */
dlm_status dlm_sweep_write_file(const dlm_sweep_plan *p, const char *path, const char *format,
                                dlm_status (*body)(const dlm_sweep_plan *, hid_t, const char *, const void *),
                                const void *arg);

#endif
