/* The run configuration's schema (see run_config.h): the key table, the
 * defaults, the defaults that follow other keys, and the checks that tie
 * keys together. Reading, overrides and messages are core/config.c's. */
#include "train/run_config.h"

#include <stdio.h>
#include <string.h>

#include "parallel/stages.h"

const char *const dlm_data_source_names[] = {"shards", "synthetic", NULL};

/* Enum fields are written through int pointers. */
_Static_assert(sizeof(dlm_objective_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_schedule_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_train_estimator) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_k_proposal) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_lr_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_shard_format) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_data_source) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_optimizer_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_muon_scale) == sizeof(int), "enum size");

#define NUM(g, n, t, field, ...) DLM_KEY_NUM(g, n, DLM_KEY_##t, dlm_run_config, field, __VA_ARGS__)
#define ENUM(g, n, field, names) DLM_KEY_ENUM(g, n, dlm_run_config, field, names)
#define PATHS(g, n, field, count) DLM_KEY_PATHS(g, n, dlm_run_config, field, count)

static const dlm_config_key keys[] = {
    NUM("model", "layers", INT, model.layers, DLM_GE(1)),
    NUM("model", "width", INT, model.width, DLM_GE(1)),
    NUM("model", "heads", INT, model.heads, DLM_GE(1)),
    NUM("model", "seq_len", INT, model.seq_len, DLM_GE(2)),
    NUM("model", "tied_head", BOOL, model.tied_head, DLM_ANY),
    NUM("model", "rope_theta", DOUBLE, model.rope_theta, DLM_GT(0)),
    ENUM("objective", "kind", objective.kind, dlm_objective_names),
    ENUM("objective", "schedule", objective.schedule, dlm_schedule_names),
    NUM("objective", "eps", DOUBLE, objective.eps, DLM_IN_OO(0, 1)),
    NUM("objective", "power", DOUBLE, objective.power, DLM_IN_OC(0, 64)),
    ENUM("objective", "estimator", objective.estimator, dlm_train_estimator_names),
    ENUM("objective", "k_proposal", objective.k_proposal, dlm_k_proposal_names),
    NUM("objective", "k_power", DOUBLE, objective.k_power, DLM_IN_CC(-8, 8)),
    NUM("train", "steps", INT, train.steps, DLM_GE(1)),
    NUM("train", "batch", INT, train.batch, DLM_GE(1)),
    NUM("train", "micro_batch", INT, train.micro_batch, DLM_GE(1)),
    NUM("train", "lr", DOUBLE, train.lr, DLM_GT(0)),
    NUM("train", "min_lr", DOUBLE, train.min_lr, DLM_GE(0)),
    NUM("train", "warmup", INT, train.warmup, DLM_GE(0)),
    ENUM("train", "lr_schedule", train.lr_schedule, dlm_lr_kind_names),
    NUM("train", "decay_fraction", DOUBLE, train.decay_fraction, DLM_IN_OC(0, 1)),
    NUM("train", "weight_decay", DOUBLE, train.weight_decay, DLM_GE(0)),
    NUM("train", "beta1", DOUBLE, train.beta1, DLM_IN_CO(0, 1)),
    NUM("train", "beta2", DOUBLE, train.beta2, DLM_IN_CO(0, 1)),
    NUM("train", "adam_eps", DOUBLE, train.adam_eps, DLM_GT(0)),
    NUM("train", "grad_clip", DOUBLE, train.grad_clip, DLM_GE(0)),
    NUM("train", "ema_decay", DOUBLE, train.ema_decay, DLM_IN_CO(0, 1)),
    NUM("train", "seed", U64, train.seed, DLM_GE(0)),
    NUM("train", "log_every", INT, train.log_every, DLM_GE(1)),
    NUM("train", "val_every", INT, train.val_every, DLM_GE(1)),
    NUM("train", "val_chunks", INT, train.val_chunks, DLM_GE(1)),
    NUM("train", "checkpoint_every", INT, train.checkpoint_every, DLM_GE(1)),
    NUM("train", "keep_checkpoints", INT, train.keep_checkpoints, DLM_GE(1)),
    NUM("train", "threads", INT, train.threads, DLM_GE(0)),
    ENUM("train", "optimizer", train.optimizer, dlm_optimizer_kind_names),
    NUM("muon", "lr", DOUBLE, muon.lr, DLM_GT(0)),
    NUM("muon", "momentum", DOUBLE, muon.momentum, DLM_IN_CO(0, 1)),
    NUM("muon", "nesterov", BOOL, muon.nesterov, DLM_ANY),
    NUM("muon", "ns_steps", INT, muon.ns_steps, DLM_IN_CC(1, 20)),
    ENUM("muon", "scale", muon.scale, dlm_muon_scale_names),
    PATHS("data", "train", data.train_paths, data.n_train_paths),
    PATHS("data", "val", data.val_paths, data.n_val_paths),
    ENUM("data", "format", data.format, dlm_shard_format_names),
    ENUM("data", "source", data.source, dlm_data_source_names),
    NUM("data", "unique_tokens", U64, data.unique_tokens, DLM_GE(0)),
    NUM("parallel", "dp", INT, parallel.dp, DLM_GE(1)),
    NUM("parallel", "tp", INT, parallel.tp, DLM_GE(1)),
    NUM("parallel", "pp", INT, parallel.pp, DLM_GE(1)),
    NUM("parallel", "bucket_mb", DOUBLE, parallel.bucket_mb, DLM_GT(0)),
    NUM("parallel", "check_every", INT, parallel.check_every, DLM_GE(1)),
    NUM("parallel", "zero", INT, parallel.zero, DLM_IN_CC(0, 1)),
    DLM_KEY_INTS("parallel", "stage_layers", dlm_run_config, parallel.stage_layers,
                 parallel.n_stage_layers),
    NUM("run", "dir", STRING, run.dir, DLM_ANY),
};

static const char *const groups[] = {"model", "objective", "train", "muon", "data", "parallel", "run"};

void dlm_run_config_defaults(dlm_run_config *c)
{
    memset(c, 0, sizeof *c);
    c->model.layers = 2;
    c->model.width = 64;
    c->model.heads = 4;
    c->model.seq_len = 64;
    c->model.tied_head = 0;
    c->model.rope_theta = 10000.0;
    c->objective.kind = DLM_OBJECTIVE_MDLM;
    c->objective.schedule = DLM_SCHEDULE_LOGLINEAR;
    c->objective.eps = 1e-3;
    c->objective.power = 3.0;
    c->objective.estimator = DLM_TRAIN_MC_T;
    c->objective.k_proposal = DLM_K_UNIFORM;
    c->objective.k_power = 2.0;
    c->train.steps = 300;
    c->train.batch = 16;
    c->train.micro_batch = 16;
    c->train.lr = 3e-3;
    c->train.min_lr = 3e-3 / 10;
    c->train.warmup = 20;
    c->train.lr_schedule = DLM_LR_COSINE;
    c->train.decay_fraction = 0.2;
    c->train.weight_decay = 0.1;
    c->train.beta1 = 0.9;
    c->train.beta2 = 0.95;
    c->train.adam_eps = 1e-8;
    c->train.grad_clip = 1.0;
    c->train.ema_decay = 0.9999;
    c->train.seed = 1;
    c->train.log_every = 10;
    c->train.val_every = 10;
    c->train.val_chunks = 64;
    c->train.checkpoint_every = 100;
    c->train.keep_checkpoints = 3;
    c->train.threads = 0;
    c->train.optimizer = DLM_OPTIMIZER_ADAMW;
    c->muon.lr = 0.02;
    c->muon.momentum = 0.95;
    c->muon.nesterov = 1;
    c->muon.ns_steps = 5;
    c->muon.scale = DLM_MUON_SCALE_RMS;
    c->data.format = DLM_SHARD_LLMC;
    c->data.source = DLM_DATA_SHARDS;
    c->parallel.dp = c->parallel.tp = c->parallel.pp = 1;
    c->parallel.bucket_mb = 25.0;
    c->parallel.check_every = 100;
    snprintf(c->run.dir, sizeof c->run.dir, "%s", "runs/default");
}

const char *dlm_data_source_name(dlm_data_source s) { return dlm_data_source_names[s]; }

static void defaults(void *c) { dlm_run_config_defaults(c); }

/* Values that default to another key's value follow it unless set. */
static void derive(const dlm_config_load_ctx *x, void *cv)
{
    dlm_run_config *c = cv;
    if (!dlm_config_is_set(x, "train.micro_batch")) /* one micro-batch per data-parallel rank */
        c->train.micro_batch = c->parallel.dp < 1 || c->train.batch % c->parallel.dp
                                   ? c->train.batch /* a bad dp is reported by the checks */
                                   : c->train.batch / c->parallel.dp;
    if (!dlm_config_is_set(x, "train.min_lr")) c->train.min_lr = c->train.lr / 10;
    if (!dlm_config_is_set(x, "train.val_every")) c->train.val_every = c->train.log_every;
}

static void check_paths(dlm_config_load_ctx *x, const dlm_run_config *c, const char *name, int n)
{
    char key[32];
    snprintf(key, sizeof key, "data.%s", name);
    if (c->data.source == DLM_DATA_SYNTHETIC && n > 0)
        dlm_config_pair_error(x, key, "data.source",
                              "data.%s lists %d file%s but data.source = \"%s\" reads no files; "
                              "remove data.%s (or --set data.%s=[])",
                              name, n, n == 1 ? "" : "s", dlm_data_source_name(c->data.source),
                              name, name);
}

static void check(dlm_config_load_ctx *x, const void *cv)
{
    const dlm_run_config *c = cv;
    char a[40], b[40];

    if (c->model.width % c->model.heads != 0)
        dlm_config_pair_error(x, "model.heads", "model.width",
                              "model.heads (%d) must divide model.width (%d)", c->model.heads,
                              c->model.width);
    else if ((c->model.width / c->model.heads) % 2 != 0)
        dlm_config_pair_error(x, "model.heads", "model.width",
                              "the head size model.width / model.heads = %d / %d = %d must be even "
                              "for the rotary embedding",
                              c->model.width, c->model.heads, c->model.width / c->model.heads);

    if (c->train.batch % c->train.micro_batch != 0)
        dlm_config_pair_error(x, "train.micro_batch", "train.batch",
                              "train.batch (%d) must be divisible by train.micro_batch (%d)",
                              c->train.batch, c->train.micro_batch);

    if (c->train.warmup >= c->train.steps)
        dlm_config_pair_error(x, "train.warmup", "train.steps",
                              "train.warmup (%d) must be < train.steps (%d)", c->train.warmup,
                              c->train.steps);

    if (c->train.min_lr > c->train.lr) {
        dlm_config_format_double(c->train.min_lr, a, sizeof a);
        dlm_config_format_double(c->train.lr, b, sizeof b);
        dlm_config_pair_error(x, "train.min_lr", "train.lr",
                              "train.min_lr (%s) must be <= train.lr (%s)", a, b);
    }

    /* wsd decays over the last decay_fraction of the steps; a warmup that
     * runs into that decay would jump down the ramp when it ends. */
    double decay_start = c->train.steps - c->train.decay_fraction * c->train.steps;
    if (c->train.lr_schedule == DLM_LR_WSD && c->train.warmup > decay_start) {
        dlm_config_format_double(c->train.decay_fraction, a, sizeof a);
        dlm_config_pair_error(x, "train.warmup", "train.decay_fraction",
                              "train.warmup (%d) runs into the wsd decay, which starts at step "
                              "%.0f (the last train.decay_fraction = %s of %d steps); shorten "
                              "one of them",
                              c->train.warmup, decay_start, a, c->train.steps);
    }

    if (c->data.source == DLM_DATA_SHARDS && c->data.n_train_paths == 0)
        dlm_config_key_error(x, "data.train", "data.source",
                             "data.train is required when data.source = \"shards\": give a path "
                             "(data.train = \"x.bin\";) or a list ([\"a.bin\", \"b.bin\"]), or "
                             "set data.source = \"synthetic\"");
    check_paths(x, c, "train", c->data.n_train_paths);
    if (c->data.source == DLM_DATA_SYNTHETIC && c->data.unique_tokens > 0)
        dlm_config_pair_error(x, "data.unique_tokens", "data.source",
                              "data.unique_tokens limits data.train, but data.source = \"synthetic\" "
                              "draws fresh tokens; remove data.unique_tokens");
    else if (c->data.unique_tokens > 0 && c->data.unique_tokens < (uint64_t)c->model.seq_len)
        dlm_config_pair_error(x, "data.unique_tokens", "model.seq_len",
                              "data.unique_tokens (%llu) must be 0 (all) or at least one sequence "
                              "of model.seq_len = %d tokens",
                              (unsigned long long)c->data.unique_tokens, c->model.seq_len);
    check_paths(x, c, "val", c->data.n_val_paths);
    /* Newton-Schulz needs the whole gradient of a matrix on the rank that
     * updates it (DeepSpeed's Muon broke on sharded ones) */
    if (c->train.optimizer == DLM_OPTIMIZER_MUON && c->parallel.zero)
        dlm_config_pair_error(x, "parallel.zero", "train.optimizer",
                              "parallel.zero = 1 (ZeRO-1) shards the optimizer over data-parallel "
                              "ranks, but train.optimizer = \"muon\" needs each weight matrix's "
                              "whole gradient on the rank that updates it; set parallel.zero = 0 "
                              "or train.optimizer = \"adamw\"");
}

static const dlm_config_schema schema = {
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .groups = groups,
    .n_groups = (int)(sizeof groups / sizeof groups[0]),
    .size = sizeof(dlm_run_config),
    .defaults = defaults,
    .derive = derive,
    .check = check,
};

dlm_status dlm_run_config_load(const char *path, const char *const *overrides, int n_overrides,
                               dlm_run_config *out)
{
    return dlm_config_load(&schema, path, overrides, n_overrides, out);
}

dlm_status dlm_run_config_load_text(const char *text, const char *origin,
                                    const char *const *overrides, int n_overrides,
                                    dlm_run_config *out)
{
    return dlm_config_load_text(&schema, text, origin, overrides, n_overrides, out);
}

dlm_status dlm_run_config_to_text(const dlm_run_config *c, char **text)
{
    return dlm_config_to_text(&schema, c, "dlm run configuration: every key with its final value",
                              text);
}

dlm_status dlm_run_config_check_layout(const dlm_run_config *c, int n_ranks)
{
    const int dp = c->parallel.dp, tp = c->parallel.tp, pp = c->parallel.pp;
    long long product = (long long)dp * tp * pp;
    DLM_CHECK(product == n_ranks, DLM_ERR_ARG,
              "parallel.dp x parallel.tp x parallel.pp = %d x %d x %d = %lld, but the job has %d "
              "MPI rank%s: the product must equal the number of ranks",
              dp, tp, pp, product, n_ranks, n_ranks == 1 ? "" : "s");
    /* the split is checked first: a wrong one is refused whatever else is missing */
    int first[DLM_CONFIG_MAX_INTS], count[DLM_CONFIG_MAX_INTS];
    const dlm_stage_costs unit = {1.0, 0.0, 0.0};
    DLM_CHECK(pp <= DLM_CONFIG_MAX_INTS, DLM_ERR_ARG, "parallel.pp = %d: at most %d stages", pp,
              DLM_CONFIG_MAX_INTS);
    DLM_CALL(dlm_stages_split(c->model.layers, pp, c->parallel.stage_layers,
                              c->parallel.n_stage_layers, &unit, first, count));
    const int C = c->model.width, H = c->model.heads;
    DLM_CHECK(H % tp == 0, DLM_ERR_ARG,
              "parallel.tp = %d must divide model.heads = %d (each tensor-parallel rank takes "
              "whole heads)", tp, H);
    DLM_CHECK((4 * C) % tp == 0, DLM_ERR_ARG,
              "parallel.tp = %d must divide the MLP's 4 x model.width = %d", tp, 4 * C);
    const int G = c->train.batch, b = c->train.micro_batch;
    DLM_CHECK(G % ((long long)dp * b) == 0, DLM_ERR_ARG,
              "train.batch = %d does not split over parallel.dp = %d ranks in micro-batches of "
              "train.micro_batch = %d: the batch must be a multiple of dp x micro_batch = %lld",
              G, dp, b, (long long)dp * b);
    return DLM_OK;
}
