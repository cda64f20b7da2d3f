/* The sampling run behind dlm-sample: loads a checkpoint (and optionally
 * an AR model that scores the samples), draws n samples for each sampler
 * and step count asked for, writes their text, a table of the measures
 * (NFE, tokens/s, generative perplexity, unigram entropy, repeated
 * 4-grams) and samples.h5.
 *
 *   dlm_sample_driver_options o;
 *   dlm_sample_driver_options_default(&o);
 *   o.ckpt = "runs/a";
 *   o.samplers = "ancestral,confidence";
 *   o.steps = "8,32";
 *   DLM_CALL(dlm_sample_driver_run(grid, &o, stdout));  // collective over grid->world
 *
 * Under several ranks each draws a contiguous share of every group's
 * samples (sample i is a pure function of the seed and i) and all are
 * gathered in sample order, so rank 0 writes the text, the table and
 * samples.h5 of a one-rank run (the timings aside).
 */
#ifndef DLM_SAMPLE_DRIVER_H
#define DLM_SAMPLE_DRIVER_H

#include <stdint.h>
#include <stdio.h>

#include "core/status.h"
#include "parallel/grid.h"

typedef struct {
    const char *ckpt;     /* checkpoint file or run folder */
    const char *samplers; /* comma list of sampler names; NULL: ancestral (AR models: ar) */
    const char *steps;    /* comma list of steps per block; NULL: T */
    const char *prompt;   /* fixed prefix (byte-level text); NULL: none */
    const char *infill;   /* "pos:text,pos:text"; NULL: none */
    const char *out;      /* the text; NULL: the report stream */
    const char *h5;       /* samples file; NULL: samples.h5 by the checkpoint; "none": no file */
    const char *score;    /* an AR checkpoint or run folder scoring the samples; NULL: none */
    const char *weights;  /* "ema", "raw"; NULL: ema when the checkpoint has it */
    int n;                /* samples per sampler and step count */
    int length, block;    /* 0: T, and L if L <= T else T/2 */
    int top_k, no_cache;
    double temperature, top_p;
    uint64_t seed;
} dlm_sample_driver_options;

/* 4 samples, temperature 1, top-p 1, seed 1, the rest 0 or NULL. */
void dlm_sample_driver_options_default(dlm_sample_driver_options *o);

/* Draws and measures the samples: each sample's text goes to o->out (or
 * report), then the table and the samples file's name to report, all from
 * rank 0. The grid is data parallel only (dp = its size). Collective over
 * grid->world; an error on any rank fails every rank. */
dlm_status dlm_sample_driver_run(const dlm_grid *grid, const dlm_sample_driver_options *o,
                                 FILE *report);

#endif
