/* The evaluation behind dlm-eval: one model, or two paired on the same
 * chunks and masks, scored on one chunk set; K grown in blocks until the
 * standard error reaches a target; the results written to eval.h5. It owns
 * the models, the chunk set and the per-sample results; report.h prints them.
 * Collective over a grid's world, data parallel: each rank scores its share
 * of the chunks, every rank gathers all the samples in chunk order, so the
 * statistics and every number in the file are the one-rank run's, bit for
 * bit; rank 0 writes the file (and the caller has it alone report).
 *
 *   dlm_eval_options o;
 *   dlm_eval_options_default(&o);
 *   o.ckpt = "runs/a";
 *   DLM_CALL(dlm_eval_options_check(&o));      // the settings alone, before any work
 *   dlm_eval_session *s;
 *   DLM_CALL(dlm_eval_session_create(grid, &o, &s)); // checkpoints, chunks, models
 *   DLM_CALL(dlm_eval_session_run(s));         // scores; grows K for o.target_se
 *   DLM_CALL(dlm_eval_session_write(s));       // eval.h5 from rank 0, unless o.no_out
 *   if (grid->rank == 0) dlm_eval_report_text(stdout, s);
 *   dlm_eval_session_destroy(&s);
 */
#ifndef DLM_EVAL_SESSION_H
#define DLM_EVAL_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "eval/chunks.h"
#include "eval/evalmodel.h"
#include "eval/nelbo.h"
#include "parallel/dp.h"
#include "parallel/grid.h"
#include "parallel/tp.h"

typedef struct {
    const char *ckpt;    /* checkpoint file or run folder */
    const char *compare; /* a second one, paired with the first; NULL: none */
    const char *out;     /* results file; NULL: eval.h5 in the checkpoint's folder */
    int no_out;          /* write no file */
    const char *data[DLM_CONFIG_MAX_PATHS]; /* shards; none: the run's data.val */
    int n_data;
    const char *data_format; /* NULL: the run's */
    const char *estimator;   /* exact-k, mc-t, quadrature, discrete (AR models: exact) */
    const char *schedule;    /* NULL: the run's */
    const char *weights;     /* "ema", "raw"; NULL: ema when the checkpoint has it */
    int64_t chunks;          /* 0: all */
    int K;                   /* 0: 16 (quadrature: nodes) */
    int max_K;               /* cap when growing K */
    int nodes, steps, batch; /* batch 0: the run's micro_batch */
    double target_se;        /* > 0: grow K until the standard error is at most this */
    double eps;              /* > 0: overrides the run's */
    uint64_t seed;
} dlm_eval_options;

/* 256 chunks, exact-k, max_K 1024, 16 nodes, 1000 steps, seed 1. */
void dlm_eval_options_default(dlm_eval_options *o);
/* The settings that can be checked before a checkpoint is read (estimator,
 * schedule, format, K against nodes and max_K); fills K's default. */
dlm_status dlm_eval_options_check(dlm_eval_options *o);

/* One model under evaluation. */
typedef struct {
    dlm_ckpt_info info;
    dlm_model *m;
    uint64_t hash;          /* FNV-1a of the whole weights read */
    dlm_evaluator *ev;
    dlm_estimator est;
    int use_ema;
    int K;                     /* samples scored so far per chunk */
    dlm_sample_result *res;    /* (n, ld) */
    size_t ld;
    double *chunk_values;      /* (n) */
    dlm_estimate nats;
    int64_t tokens;            /* forward tokens over all ranks (set by run) */
    double seconds;            /* the forward time of the slowest rank (set by run) */
    char group[300];           /* its group in the results file (set when written) */
    double train_tokens_per_s; /* median in the run's run.h5; NAN when there is none */
} dlm_eval_model;

typedef struct {
    dlm_eval_options opt;
    const dlm_grid *grid; /* borrowed; every rank holds the whole session */
    int root;             /* world rank 0: writes the file, warns */
    dlm_dp *dp;           /* the ordered gathers over grid->dp_comm */
    dlm_tp *tp;           /* the models' tensor-parallel group (grid->tp_comm) */
    dlm_chunk_set cs;
    char hash[64];       /* the chunk set's, as text */
    size_t ld;           /* room for samples per chunk: K, or with target_se max_K */
    dlm_eval_model a, b; /* b with opt.compare */
    double *diff;        /* (n) a - b per chunk, with opt.compare */
    dlm_estimate d;      /* the paired difference, with opt.compare */
    int target_reached;  /* the standard error reached opt.target_se */
    char out[4200];      /* the results file written; "" when none */
} dlm_eval_session;

/* Resolves the checkpoints (a run folder once, on rank 0: a checkpoint
 * written meanwhile does not change the model), builds the chunk set and
 * loads the models on every rank; fails on every rank together when one
 * rank cannot. o must have passed dlm_eval_options_check. The grid is
 * data parallel only (dp = its size); it must outlive the session.
 * Collective over grid->world. */
dlm_status dlm_eval_session_create(const dlm_grid *grid, const dlm_eval_options *o,
                                   dlm_eval_session **out);
/* Scores K samples per chunk (AR: one), doubling K up to max_K while the
 * standard error (with compare: of the difference) is above target_se, and
 * stopping early with a warning when more samples cannot reach it. Each
 * round's verdict is rank 0's. Collective. */
dlm_status dlm_eval_session_run(dlm_eval_session *s);
/* Adds the results to the results file from rank 0 (unless no_out); sets
 * s->out on every rank. Collective: a failed write fails every rank. */
dlm_status dlm_eval_session_write(dlm_eval_session *s);
/* Safe on NULL; sets *s to NULL. */
void dlm_eval_session_destroy(dlm_eval_session **s);

const char *dlm_eval_model_objective(const dlm_eval_model *em);
int dlm_eval_model_is_ar(const dlm_eval_model *em);
/* Forward tokens/s of the whole job: em->tokens / em->seconds (NAN before any). */
double dlm_eval_model_tokens_per_s(const dlm_eval_model *em);

#endif
