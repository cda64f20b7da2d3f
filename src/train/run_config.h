/* The run configuration: the schema of a training run's libconfig file (its
 * keys, defaults and the checks that tie them together), read by the generic
 * machinery of core/config.h. One file per run, every key overridable on the
 * command line, validated completely before any work starts.
 *
 *   dlm_run_config cfg;
 *   const char *sets[] = {"train.lr=3e-4", "data.train=[\"a.bin\", \"b.bin\"]"};
 *   DLM_CALL(dlm_run_config_load("configs/quickstart-mdlm.cfg", sets, 2, &cfg));
 *       // errors read like
 *       // "configs/x.cfg line 12: train.lr must be > 0, got -1"
 *       // "--set train.lr=abc: train.lr expects a number, got 'abc'"
 *   DLM_CALL(dlm_run_config_check_layout(&cfg, n_ranks));  // dp x tp x pp == ranks
 *   char *text;
 *   DLM_CALL(dlm_run_config_to_text(&cfg, &text));        // every key with its final value
 *   ... store text as the "config" attribute of run.h5 ...
 *   dlm_run_config again;                             // later, from the run file:
 *   DLM_CALL(dlm_run_config_load_text(text, "run.h5", NULL, 0, &again)); // memcmp-equal to cfg
 *   free(text);
 *
 * Schema (defaults in brackets):
 *   model     { layers [2]; width [64]; heads [4]; seq_len [64]; tied_head [false];
 *               rope_theta [10000.0]; }
 *   objective { kind ["mdlm"]; schedule ["loglinear"]; eps [1e-3];
 *               estimator ["mc-t"] or "exact-k"; k_proposal ["uniform"],
 *               "inverse" or "power"; k_power [2]: P(k) ~ k^-k_power }
 *   train     { steps [300]; batch [16]; micro_batch [= batch / parallel.dp]; lr [3e-3];
 *               min_lr [= lr / 10]; warmup [20]; lr_schedule ["cosine"];
 *               decay_fraction [0.2]; weight_decay [0.1]; beta1 [0.9]; beta2 [0.95];
 *               adam_eps [1e-8]; grad_clip [1.0]; ema_decay [0.9999]; seed [1];
 *               log_every [10]; val_every [= log_every]; val_chunks [64];
 *               checkpoint_every [100]; keep_checkpoints [3]; threads [0 = auto];
 *               optimizer ["adamw"] or "muon" (Muon on the hidden weight matrices,
 *               AdamW with the keys above for the rest) }
 *   muon      { lr [0.02]: Muon's peak learning rate (the schedule's shape is
 *               train's); momentum [0.95]; nesterov [true]; ns_steps [5];
 *               scale ["rms"]: sqrt(max(1, out/in)), or "moonlight": 0.2
 *               sqrt(max(out, in)), AdamW's update size (use muon.lr = train.lr) }
 *   data      { train [required unless source = "synthetic"]: "path" or ["a", "b"];
 *               val [none]: the same; format ["llmc"]; source ["shards"];
 *               unique_tokens [0 = all]: train only on the first U tokens of
 *               data.train (repeated for as many epochs as the run needs) }
 *   parallel  { dp [1]; tp [1]; pp [1]; bucket_mb [25]: gradient all-reduce bucket size;
 *               check_every [100]: steps between replica checksum checks;
 *               stage_layers [[ ] = balanced by FLOPs]: blocks per pipeline stage;
 *               zero [0]: 1 shards the AdamW moments and the EMA over the
 *               data-parallel ranks (ZeRO-1) }
 *   run       { dir ["runs/default"]; }
 *
 * The general rules (unknown keys, integers and floats, 64-bit literals,
 * overrides, @include, several errors at once) are those of core/config.h.
 * This schema adds: data.train is required for source "shards" and refused
 * for "synthetic" (as is data.val), so no setting is silently ignored;
 * consistency errors point at the line of the key to change and say where
 * the other value came from.
 */
#ifndef DLM_RUN_CONFIG_H
#define DLM_RUN_CONFIG_H

#include <stdint.h>

#include "core/config.h"
#include "core/status.h"
#include "diffusion/objective.h"
#include "diffusion/schedule.h"
#include "io/shard.h"
#include "optim/optim.h"

typedef enum {
    DLM_DATA_SHARDS = 0, /* token shards listed in data.train / data.val */
    DLM_DATA_SYNTHETIC   /* the built-in synthetic source of known entropy */
} dlm_data_source;

typedef struct {
    struct {
        int layers, width, heads, seq_len; /* L, C, H, T */
        int tied_head;                     /* 0 or 1 */
        double rope_theta;
    } model;
    struct {
        dlm_objective_kind kind;
        dlm_schedule_kind schedule; /* mdlm only */
        double eps;                 /* mdlm draws t from [eps, 1] */
        double power;               /* schedule "power": the mask rate is t^power */
        dlm_train_estimator estimator; /* mdlm's training estimator */
        dlm_k_proposal k_proposal;     /* exact-k: P(k) */
        double k_power;                /* exact-k, proposal "power": P(k) ~ k^-k_power */
    } objective;
    struct {
        int steps;
        int batch;       /* global sequences per step */
        int micro_batch; /* sequences per forward pass; divides batch */
        double lr, min_lr;
        int warmup;
        dlm_lr_kind lr_schedule;
        double decay_fraction; /* wsd: fraction of the steps in the final decay */
        double weight_decay, beta1, beta2, adam_eps;
        double grad_clip; /* 0 disables */
        double ema_decay; /* 0 disables the EMA */
        uint64_t seed;
        int log_every, val_every, val_chunks;
        int checkpoint_every, keep_checkpoints;
        int threads; /* 0: automatic */
        dlm_optimizer_kind optimizer;
    } train;
    struct {
        double lr, momentum;
        int nesterov, ns_steps;
        dlm_muon_scale scale;
    } muon;
    struct {
        char train_paths[DLM_CONFIG_MAX_PATHS][DLM_CONFIG_PATH_MAX];
        int n_train_paths;
        char val_paths[DLM_CONFIG_MAX_PATHS][DLM_CONFIG_PATH_MAX];
        int n_val_paths; /* 0: no validation shards (the trainer decides what that means) */
        dlm_shard_format format;
        dlm_data_source source;
        uint64_t unique_tokens; /* 0: all of data.train */
    } data;
    struct {
        int dp, tp, pp;
        double bucket_mb; /* MB (2^20 bytes) of gradients per data-parallel all-reduce */
        int check_every;  /* steps between comparisons of the replicas' checksums */
        int stage_layers[DLM_CONFIG_MAX_INTS], n_stage_layers; /* 0: balanced */
        int zero;         /* 1: ZeRO-1 (moments and EMA sharded over dp) */
    } parallel;
    struct {
        char dir[DLM_CONFIG_PATH_MAX];
    } run;
} dlm_run_config;

/* The defaults above, with every byte of c set (strings zero-padded, so two
 * configurations compare with memcmp). Derived keys take their sources'
 * defaults (micro_batch 16, min_lr 3e-4, val_every 10). Not a valid run on
 * its own: data.train is empty and data.source is "shards". */
void dlm_run_config_defaults(dlm_run_config *c);

/* Loads path (NULL = defaults only), applies overrides "group.key=value" in
 * order, validates. On error *out is left untouched. */
dlm_status dlm_run_config_load(const char *path, const char *const *overrides, int n_overrides,
                               dlm_run_config *out);

/* Same from text in memory; origin names it in messages (e.g. "run.h5"). */
dlm_status dlm_run_config_load_text(const char *text, const char *origin,
                                    const char *const *overrides, int n_overrides,
                                    dlm_run_config *out);

/* The resolved configuration as libconfig text, every key with its final
 * value; dlm_run_config_load_text of it gives back an identical struct.
 * *text is malloc'd; the caller frees it. */
dlm_status dlm_run_config_to_text(const dlm_run_config *c, char **text);

/* Fails unless parallel.dp * tp * pp == n_ranks, the global batch splits
 * into whole micro-batches on every data-parallel rank, tp divides the
 * heads and the MLP width (the padded vocabulary is checked with the
 * model, whose size the data decides), the blocks split over pp stages
 * (parallel.stage_layers, if given, has pp entries >= 1 summing to
 * model.layers; pp <= model.layers). */
dlm_status dlm_run_config_check_layout(const dlm_run_config *c, int n_ranks);

/* Names used in files, indexed by dlm_data_source, NULL-ended. */
extern const char *const dlm_data_source_names[];
const char *dlm_data_source_name(dlm_data_source s);

#endif
