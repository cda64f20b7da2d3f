/* The sweep file: a scaling-law study in one libconfig file, read against
 * this schema (core/config.h: unknown keys, bad values and contradictions
 * are errors naming the file, line and key). Defaults in brackets.
 *
 *   sweep  { name [required]; dir [required]: run folders go under it;
 *            base [""]: the run config every run starts from (data, batch,
 *              seq_len, optimizer), relative to the sweep file's folder;
 *            objectives [required]: recipe names (sweep/recipe.h);
 *            budgets [required]: FLOPs per run; sizes [5] per budget;
 *            span [8.0]: largest / smallest target N of a budget (>= 8);
 *            seeds [[1]]; flops ["engine"] or "6N": the FLOPs per token
 *              that turn a budget into tokens;
 *            unique_tokens [0 = all]: data-constrained runs (data.unique_tokens);
 *            checkpoints [4]: per run; min_sizes [5]: for tests only }
 *   center { tokens_per_param [20.0]: N* = sqrt(C / (6 r)) (Chinchilla);
 *            mdlm_factor [0.5]: diffusion's N* relative to that (SMDM) }
 *   shape  { aspect [32.0]: width / layers; head_dim [16]: width is a
 *            multiple, heads = width / head_dim; min_layers [1]; max_layers [48] }
 *   lr     { base [2e-3] at ref_params [1e6] non-embedding parameters;
 *            exponent [0.0]: lr = base (N / ref_params)^-exponent;
 *            warmup_fraction [0.05] of the steps, at least warmup_min [10] }
 *   layout { from_params [[0.0]]: the smallest N of each class, ascending
 *            from 0; dp [[1]], tp [[1]], pp [[1]]: one per class }
 *   time   { flops_per_s [1e11]: training FLOP/s per rank, measured
 *            (dlm-bench); overhead_s [60]: start, checkpoints, evaluation;
 *            safety [1.5]: Slurm --time = safety x estimate + overhead }
 *   submit { throttle [4]: array tasks at once (%k); partition [""];
 *            cpus_per_rank [1]: BLIS threads per rank (-c) }
 *   eval   { data [""]: shards (default: each run's data.val); chunks [256];
 *            K [8]; weights ["ema"] or "raw" }
 */
#ifndef DLM_SWEEP_CONFIG_H
#define DLM_SWEEP_CONFIG_H

#include <stdint.h>

#include "core/config.h"
#include "core/status.h"

typedef enum { DLM_FLOPS_ENGINE = 0, DLM_FLOPS_6N = 1 } dlm_flops_def;
extern const char *const dlm_flops_def_names[]; /* "engine", "6N" */
extern const char *const dlm_eval_weight_names[]; /* "ema", "raw" */

typedef struct {
    struct {
        char name[DLM_CONFIG_PATH_MAX], dir[DLM_CONFIG_PATH_MAX], base[DLM_CONFIG_PATH_MAX];
        char objectives[DLM_CONFIG_MAX_PATHS][DLM_CONFIG_PATH_MAX];
        int n_objectives;
        double budgets[DLM_CONFIG_MAX_INTS];
        int n_budgets;
        int sizes;
        double span;
        int seeds[DLM_CONFIG_MAX_INTS], n_seeds;
        dlm_flops_def flops;
        uint64_t unique_tokens;
        int checkpoints, min_sizes;
    } sweep;
    struct {
        double tokens_per_param, mdlm_factor;
    } center;
    struct {
        double aspect;
        int head_dim, min_layers, max_layers;
    } shape;
    struct {
        double base, ref_params, exponent, warmup_fraction;
        int warmup_min;
    } lr;
    struct {
        double from_params[DLM_CONFIG_MAX_INTS];
        int n_from_params;
        int dp[DLM_CONFIG_MAX_INTS], n_dp, tp[DLM_CONFIG_MAX_INTS], n_tp, pp[DLM_CONFIG_MAX_INTS], n_pp;
    } layout;
    struct {
        double flops_per_s, overhead_s, safety;
    } time;
    struct {
        int throttle, cpus_per_rank;
        char partition[DLM_CONFIG_PATH_MAX];
    } submit;
    struct {
        char data[DLM_CONFIG_PATH_MAX];
        int chunks, K, weights; /* weights: 0 ema, 1 raw */
    } eval;
    char file_dir[DLM_CONFIG_PATH_MAX]; /* the sweep file's folder (not a key) */
} dlm_sweep_config;

/* Reads path with overrides ("sweep.sizes=3"); every objective name is
 * checked here. */
dlm_status dlm_sweep_config_load(const char *path, const char *const *sets, int n_sets,
                                 dlm_sweep_config *out);
/* The resolved sweep as libconfig text (malloc'd), stored in plan.h5. */
dlm_status dlm_sweep_config_text(const dlm_sweep_config *c, char **text);

#endif
