/* Run configuration: defaults, a full file, --set overrides, every kind of
 * error naming file, line, key and what was expected, the text written back
 * into run files, the rank layout check, and every file in configs/; and the
 * generic machinery under it with a schema of the test's own. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/names.h"
#include "core/status.h"
#include "harness.h"
#include "sweep/sweep_config.h"
#include "train/run_config.h"

#ifndef DLM_SOURCE_DIR
#error "tests/CMakeLists.txt defines DLM_SOURCE_DIR for test_config"
#endif

/* ---- helpers ---- */

static char tmp_dir[256];

static void remove_tmp_dir(void)
{
    if (tmp_dir[0]) rmdir(tmp_dir);
}

/* Writes text to <tmp>/name; path gets the file's path. */
static void write_cfg(const char *name, const char *text, char *path, size_t n)
{
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/dlm_test_config_XXXXXX");
        CU_ASSERT_FATAL(mkdtemp(tmp_dir) != NULL);
        atexit(remove_tmp_dir);
    }
    snprintf(path, n, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Loads text written to a file, with overrides; the file is removed after. */
static dlm_status load_cfg(const char *text, const char *const *sets, int n, dlm_run_config *c,
                           char *path, size_t path_n)
{
    write_cfg("run.cfg", text, path, path_n);
    dlm_status st = dlm_run_config_load(path, sets, n, c);
    unlink(path);
    return st;
}

/* Asserts st failed and the error text holds every needle (NULL-terminated). */
static void expect_error_v(dlm_status st, const char *const *needles, const char *where)
{
    const char *t = dlm_error_text();
    if (st == DLM_OK) printf("\n  %s: expected an error, got none\n", where);
    CU_ASSERT(st != DLM_OK);
    for (const char *const *n = needles; *n; n++) {
        if (!strstr(t, *n)) printf("\n  %s: missing \"%s\" in:\n%s\n", where, *n, t);
        CU_ASSERT(strstr(t, *n) != NULL);
    }
    dlm_error_clear();
}
/* st is evaluated first: the needles may name the file it writes. */
#define EXPECT_ERROR(st, ...)                                                        \
    do {                                                                             \
        dlm_status est_ = (st);                                                      \
        const char *const needles_[] = {__VA_ARGS__, NULL};                          \
        char where_[64];                                                             \
        snprintf(where_, sizeof where_, "%s:%d", __func__, __LINE__);                \
        expect_error_v(est_, needles_, where_);                                      \
    } while (0)

/* "<path> line <n>: " as an error starts; four may be in use at once. */
static const char *at_line(const char *path, int line)
{
    static char buf[4][600];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s line %d: ", path, line);
    return b;
}

static const char *const SYNTH[] = {"data.source=synthetic"};

/* ---- defaults and files ---- */

static void test_defaults(void)
{
    dlm_run_config d, c;
    dlm_run_config_defaults(&d);
    CU_ASSERT(d.model.layers == 2 && d.model.width == 64 && d.model.heads == 4);
    CU_ASSERT(d.model.seq_len == 64 && d.model.tied_head == 0 && d.model.rope_theta == 10000.0);
    CU_ASSERT(d.objective.kind == DLM_OBJECTIVE_MDLM);
    CU_ASSERT(d.objective.schedule == DLM_SCHEDULE_LOGLINEAR && d.objective.eps == 1e-3);
    CU_ASSERT(d.train.steps == 300 && d.train.batch == 16 && d.train.micro_batch == 16);
    CU_ASSERT(d.train.lr == 3e-3 && d.train.min_lr == 3e-3 / 10 && d.train.warmup == 20);
    CU_ASSERT(d.train.lr_schedule == DLM_LR_COSINE && d.train.decay_fraction == 0.2);
    CU_ASSERT(d.train.weight_decay == 0.1 && d.train.beta1 == 0.9 && d.train.beta2 == 0.95);
    CU_ASSERT(d.train.adam_eps == 1e-8 && d.train.grad_clip == 1.0 && d.train.ema_decay == 0.9999);
    CU_ASSERT(d.train.seed == 1 && d.train.log_every == 10 && d.train.val_every == 10);
    CU_ASSERT(d.train.val_chunks == 64 && d.train.checkpoint_every == 100);
    CU_ASSERT(d.train.keep_checkpoints == 3 && d.train.threads == 0);
    CU_ASSERT(d.data.n_train_paths == 0 && d.data.n_val_paths == 0);
    CU_ASSERT(d.data.format == DLM_SHARD_LLMC && d.data.source == DLM_DATA_SHARDS);
    CU_ASSERT(d.parallel.dp == 1 && d.parallel.tp == 1 && d.parallel.pp == 1);
    CU_ASSERT(strcmp(d.run.dir, "runs/default") == 0);

    /* no file: the defaults, which need a data source */
    DLM_TEST_OK(dlm_run_config_load(NULL, SYNTH, 1, &c));
    d.data.source = DLM_DATA_SYNTHETIC;
    CU_ASSERT(memcmp(&c, &d, sizeof c) == 0);
    EXPECT_ERROR(dlm_run_config_load(NULL, NULL, 0, &c), "(no config file): data.train is required",
                 "data.source = \"synthetic\"");
}

static const char FULL[] =
    "# every key\n"
    "model = { layers = 3; width = 96; heads = 6; seq_len = 32; tied_head = true;\n"
    "          rope_theta = 500000.0; };\n"
    "objective = { kind = \"ar\"; schedule = \"linear-sigma\"; eps = 0.01; };\n"
    "train = {\n"
    "  steps = 1000; batch = 24; micro_batch = 6; lr = 6e-4; min_lr = 6e-5; warmup = 100;\n"
    "  lr_schedule = \"wsd\"; decay_fraction = 0.25; weight_decay = 0.05;\n"
    "  beta1 = 0.8; beta2 = 0.99; adam_eps = 1e-10; grad_clip = 0.5; ema_decay = 0.0;\n"
    "  seed = 123456789012L; log_every = 7; val_every = 70; val_chunks = 9;\n"
    "  checkpoint_every = 250; keep_checkpoints = 2; threads = 3;\n"
    "};\n"
    "data = { train = [\"a/s0.bin\", \"a/s1.bin\", \"a/s2.bin\"]; val = (\"a/v.bin\");\n"
    "         format = \"raw-u16\"; source = \"shards\"; };\n"
    "parallel = { dp = 1; tp = 1; pp = 1; };\n"
    "run = { dir = \"runs/full\"; };\n";

static void check_full(const dlm_run_config *c)
{
    CU_ASSERT(c->model.layers == 3 && c->model.width == 96 && c->model.heads == 6);
    CU_ASSERT(c->model.seq_len == 32 && c->model.tied_head == 1 && c->model.rope_theta == 500000.0);
    CU_ASSERT(c->objective.kind == DLM_OBJECTIVE_AR);
    CU_ASSERT(c->objective.schedule == DLM_SCHEDULE_LINEAR_SIGMA && c->objective.eps == 0.01);
    CU_ASSERT(c->train.steps == 1000 && c->train.batch == 24 && c->train.micro_batch == 6);
    CU_ASSERT(c->train.lr == 6e-4 && c->train.min_lr == 6e-5 && c->train.warmup == 100);
    CU_ASSERT(c->train.lr_schedule == DLM_LR_WSD && c->train.decay_fraction == 0.25);
    CU_ASSERT(c->train.weight_decay == 0.05 && c->train.beta1 == 0.8 && c->train.beta2 == 0.99);
    CU_ASSERT(c->train.adam_eps == 1e-10 && c->train.grad_clip == 0.5 && c->train.ema_decay == 0.0);
    CU_ASSERT(c->train.seed == UINT64_C(123456789012));
    CU_ASSERT(c->train.log_every == 7 && c->train.val_every == 70 && c->train.val_chunks == 9);
    CU_ASSERT(c->train.checkpoint_every == 250 && c->train.keep_checkpoints == 2);
    CU_ASSERT(c->train.threads == 3);
    CU_ASSERT(c->data.n_train_paths == 3 && strcmp(c->data.train_paths[2], "a/s2.bin") == 0);
    CU_ASSERT(strcmp(c->data.train_paths[0], "a/s0.bin") == 0);
    CU_ASSERT(c->data.n_val_paths == 1 && strcmp(c->data.val_paths[0], "a/v.bin") == 0);
    CU_ASSERT(c->data.format == DLM_SHARD_RAW_U16 && c->data.source == DLM_DATA_SHARDS);
    CU_ASSERT(strcmp(c->run.dir, "runs/full") == 0);
}

static void test_full_file(void)
{
    dlm_run_config c;
    char path[512];
    DLM_TEST_OK(load_cfg(FULL, NULL, 0, &c, path, sizeof path));
    check_full(&c);
}

/* lr = 1 is 1.0; plain and L-suffixed integers are both integers. */
static void test_integers_for_floats(void)
{
    dlm_run_config c;
    char path[512];
    DLM_TEST_OK(load_cfg("train = { lr = 1; min_lr = 0; weight_decay = 0; grad_clip = 2L;\n"
                         "  warmup = 10L; seed = 7; };\n"
                         "model = { rope_theta = 500000; };\n"
                         "data = { source = \"synthetic\"; };\n",
                         NULL, 0, &c, path, sizeof path));
    CU_ASSERT(c.train.lr == 1.0 && c.train.min_lr == 0.0 && c.train.weight_decay == 0.0);
    CU_ASSERT(c.train.grad_clip == 2.0 && c.train.warmup == 10 && c.train.seed == 7);
    CU_ASSERT(c.model.rope_theta == 500000.0);
    /* a 64-bit seed needs the L suffix: libconfig 1.5 wraps a plain one silently */
    DLM_TEST_OK(load_cfg("train = { seed = 5000000000L; };\ndata = { source = \"synthetic\"; };\n",
                         NULL, 0, &c, path, sizeof path));
    CU_ASSERT(c.train.seed == UINT64_C(5000000000));
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\ntrain = { seed = 5000000000; };\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 2), "5000000000 does not fit", "write 5000000000L");
}

/* micro_batch, min_lr and val_every follow their sources unless set. */
static void test_derived_defaults(void)
{
    dlm_run_config c;
    char path[512];
    DLM_TEST_OK(load_cfg("train = { batch = 32; lr = 1e-3; log_every = 5; };\n"
                         "data = { source = \"synthetic\"; };\n",
                         NULL, 0, &c, path, sizeof path));
    CU_ASSERT(c.train.micro_batch == 32 && c.train.val_every == 5);
    CU_ASSERT(c.train.min_lr == 1e-3 / 10);
    const char *sets[] = {"train.lr=2e-3", "train.micro_batch=8"};
    DLM_TEST_OK(load_cfg("train = { batch = 32; };\ndata = { source = \"synthetic\"; };\n", sets, 2,
                         &c, path, sizeof path));
    CU_ASSERT(c.train.min_lr == 2e-3 / 10 && c.train.micro_batch == 8);
}

/* @include is read relative to the including file's folder. */
static void test_include(void)
{
    dlm_run_config c;
    char inc[512], path[512];
    write_cfg("shared.inc", "model = { layers = 5; };\ndata = { source = \"synthetic\"; };\n", inc,
              sizeof inc);
    write_cfg("top.cfg", "@include \"shared.inc\"\ntrain = { steps = 50; };\n", path, sizeof path);
    dlm_status st = dlm_run_config_load(path, NULL, 0, &c);
    DLM_TEST_OK(st);
    CU_ASSERT(c.model.layers == 5 && c.train.steps == 50);
    /* an error inside the included file names that file */
    write_cfg("shared.inc", "model = { layers = 0; };\ndata = { source = \"synthetic\"; };\n", inc,
              sizeof inc);
    EXPECT_ERROR(dlm_run_config_load(path, NULL, 0, &c), at_line(inc, 1),
                 "model.layers must be >= 1, got 0");
    unlink(inc);
    unlink(path);
}

/* ---- errors in files ---- */

static void test_unknown_key(void)
{
    dlm_run_config c;
    char path[512];
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\n"
                          "train = {\n"
                          "  steps = 10;\n"
                          "  lrr = 3e-4;\n"
                          "};\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 4), "unknown key train.lrr",
                 "(valid keys of train: steps, batch, micro_batch, lr, min_lr, warmup, lr_schedule, "
                 "decay_fraction, weight_decay, beta1, beta2, adam_eps, grad_clip, ema_decay, seed, "
                 "log_every, val_every, val_chunks, checkpoint_every, keep_checkpoints, threads, optimizer)",
                 "did you mean train.lr?");
    /* a key of another group is pointed to */
    EXPECT_ERROR(load_cfg("model = { lr = 1; };\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 1), "unknown key model.lr (valid keys of model: layers, width, "
                 "heads, seq_len, tied_head, rope_theta)", "did you mean train.lr or muon.lr?");
}

static void test_unknown_group(void)
{
    dlm_run_config c;
    char path[512];
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\noptim = { lr = 1; };\n", NULL, 0,
                          &c, path, sizeof path),
                 at_line(path, 2),
                 "unknown group optim (valid groups: model, objective, train, muon, data, parallel, run)");
    EXPECT_ERROR(load_cfg("lr = 1;\n", NULL, 0, &c, path, sizeof path), at_line(path, 1),
                 "unknown setting lr outside any group", "did you mean train.lr?");
    EXPECT_ERROR(load_cfg("model = 3;\n", NULL, 0, &c, path, sizeof path), at_line(path, 1),
                 "model must be a group");
}

static void test_wrong_type(void)
{
    dlm_run_config c;
    char path[512];
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\ntrain = { steps = \"300\"; };\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 2), "train.steps expects an integer, got \"300\"");
    /* a float where an integer is expected is an error, even a whole one */
    EXPECT_ERROR(load_cfg("train = {\n steps = 300.0;\n};\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 2), "train.steps expects an integer, got 300.0");
    EXPECT_ERROR(load_cfg("train = { lr = \"fast\"; };\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 1), "train.lr expects a number, got \"fast\"");
    EXPECT_ERROR(load_cfg("model = { tied_head = 1; };\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 1), "model.tied_head expects true or false, got 1");
    EXPECT_ERROR(load_cfg("run = { dir = 5; };\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 1), "run.dir expects a string, got 5");
    EXPECT_ERROR(load_cfg("data = { train = 3; };\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 1), "data.train expects a string or a list of strings, got 3");
    EXPECT_ERROR(load_cfg("data = { train = (\"a.bin\", 2); };\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 1), "data.train expects a list of strings, but element 2 is 2");
    EXPECT_ERROR(load_cfg("objective = { kind = \"sedd\"; };\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 1), "objective.kind must be one of \"ar\", \"mdlm\", got \"sedd\"");
    EXPECT_ERROR(load_cfg("train = { lr_schedule = \"step\"; };\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 1),
                 "train.lr_schedule must be one of \"cosine\", \"constant\", \"wsd\", got \"step\"");
    EXPECT_ERROR(load_cfg("model = { layers = 5000000000L; };\n", NULL, 0, &c, path, sizeof path),
                 at_line(path, 1), "model.layers must be an integer between");
}

static void test_out_of_range(void)
{
    dlm_run_config c;
    char path[512];
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\n"
                          "train = {\n"
                          "  steps = 10;\n"
                          "  lr = -1;\n"
                          "};\n",
                          NULL, 0, &c, path, sizeof path),
                 "line 4: train.lr must be > 0, got -1", at_line(path, 4));
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\nobjective = { eps = 1; };\n", NULL,
                          0, &c, path, sizeof path),
                 at_line(path, 2), "objective.eps must be > 0 and < 1, got 1");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\ntrain = { beta2 = 1.5; };\n", NULL,
                          0, &c, path, sizeof path),
                 at_line(path, 2), "train.beta2 must be >= 0 and < 1, got 1.5");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\ntrain = { decay_fraction = 0; };\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 2), "train.decay_fraction must be > 0 and <= 1, got 0");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\nmodel = { seq_len = 1; };\n", NULL,
                          0, &c, path, sizeof path),
                 at_line(path, 2), "model.seq_len must be >= 2, got 1");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\ntrain = { seed = -3; };\n", NULL, 0,
                          &c, path, sizeof path),
                 at_line(path, 2), "train.seed must be >= 0, got -3");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\nrun = { dir = \"\"; };\n", NULL, 0,
                          &c, path, sizeof path),
                 at_line(path, 2), "run.dir must not be empty");
    /* an unknown key does not hide a range error; a bad lr is reported
     * once, not again through the min_lr = lr / 10 it implies */
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\n"
                          "train = { lr = -1;\n  bach = 3; };\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 3), "unknown key train.bach", "did you mean train.batch?",
                 at_line(path, 2), "train.lr must be > 0, got -1", ": 2 errors in the configuration");
    /* several errors at once, each with its line */
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\n"
                          "train = { lr = 0; };\n"
                          "parallel = { dp = 0; };\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 2), "train.lr must be > 0, got 0", at_line(path, 3),
                 "parallel.dp must be >= 1, got 0", ": 2 errors in the configuration");
}

static void test_contradictions(void)
{
    dlm_run_config c;
    char path[512];
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\n"
                          "model = {\n  width = 64;\n  heads = 5;\n};\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 4), "model.heads (5) must divide model.width (64)",
                 "(model.width is from line 3)");
    /* heads left at the default: the width's line is the one to change */
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\nmodel = { width = 30; };\n", NULL,
                          0, &c, path, sizeof path),
                 at_line(path, 2), "model.heads (4) must divide model.width (30)",
                 "(model.heads is the default)");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\nmodel = { width = 36; };\n", NULL,
                          0, &c, path, sizeof path),
                 at_line(path, 2), "width / model.heads = 36 / 4 = 9 must be even");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\n"
                          "train = {\n  batch = 6;\n  micro_batch = 4;\n};\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 4), "train.batch (6) must be divisible by train.micro_batch (4)");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\n"
                          "train = {\n  steps = 300;\n  warmup = 300;\n};\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 4), "train.warmup (300) must be < train.steps (300)");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\n"
                          "train = {\n  lr = 1e-3;\n  min_lr = 0.01;\n};\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 4), "train.min_lr (0.01) must be <= train.lr (0.001)");
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\n"
                          "train = { lr_schedule = \"wsd\"; decay_fraction = 1.0; warmup = 20; };\n",
                          NULL, 0, &c, path, sizeof path),
                 at_line(path, 2), "train.warmup (20) runs into the wsd decay");
    EXPECT_ERROR(load_cfg("model = { layers = 2; };\n", NULL, 0, &c, path, sizeof path),
                 path, ": data.train is required when data.source = \"shards\"");
    EXPECT_ERROR(load_cfg("data = {\n  train = \"x.bin\";\n  source = \"synthetic\";\n};\n", NULL,
                          0, &c, path, sizeof path),
                 at_line(path, 2),
                 "data.train lists 1 file but data.source = \"synthetic\" reads no files");
}

static void test_unreadable(void)
{
    dlm_run_config c;
    char path[512];
    EXPECT_ERROR(dlm_run_config_load("/nonexistent/dlm.cfg", NULL, 0, &c),
                 "cannot read config file /nonexistent/dlm.cfg");
    EXPECT_ERROR(dlm_run_config_load(DLM_SOURCE_DIR "/configs", NULL, 0, &c),
                 "cannot read config file " DLM_SOURCE_DIR "/configs: Is a directory");
    EXPECT_ERROR(load_cfg("model = {\n  layers = 2;\n  width = = 3;\n};\n", NULL, 0, &c, path,
                          sizeof path),
                 at_line(path, 3), "syntax error");
}

/* ---- overrides ---- */

static void test_override_values(void)
{
    dlm_run_config c;
    char path[512];
    const char *sets[] = {"train.lr=3e-4",
                          "train.steps=50",
                          "model.tied_head=true",
                          "data.format=raw-u16",
                          "run.dir=\"runs/with space\"",
                          "data.train=[\"a.bin\", \"b.bin\"]",
                          "data.val=(\"v1.bin\", \"v2.bin\")",
                          "objective.kind = ar",
                          "train.seed=5000000000"};
    DLM_TEST_OK(dlm_run_config_load(NULL, sets, 9, &c));
    CU_ASSERT(c.train.lr == 3e-4 && c.train.steps == 50 && c.model.tied_head == 1);
    CU_ASSERT(c.data.format == DLM_SHARD_RAW_U16);
    CU_ASSERT(strcmp(c.run.dir, "runs/with space") == 0);
    CU_ASSERT(c.data.n_train_paths == 2 && strcmp(c.data.train_paths[1], "b.bin") == 0);
    CU_ASSERT(c.data.n_val_paths == 2 && strcmp(c.data.val_paths[0], "v1.bin") == 0);
    CU_ASSERT(c.objective.kind == DLM_OBJECTIVE_AR);
    CU_ASSERT(c.train.seed == UINT64_C(5000000000));
    /* a bare path, and overrides apply in order: the last one wins */
    const char *paths[] = {"data.train=data/x.bin", "data.train=data/y.bin"};
    DLM_TEST_OK(dlm_run_config_load(NULL, paths, 2, &c));
    CU_ASSERT(c.data.n_train_paths == 1 && strcmp(c.data.train_paths[0], "data/y.bin") == 0);
    CU_ASSERT(c.data.train_paths[0][11] == '\0' && c.data.train_paths[1][0] == '\0');

    /* override beats file */
    const char *lr[] = {"train.lr=5e-4"};
    DLM_TEST_OK(load_cfg("data = { source = \"synthetic\"; };\ntrain = { lr = 1e-3; };\n", lr, 1,
                         &c, path, sizeof path));
    CU_ASSERT(c.train.lr == 5e-4 && c.train.min_lr == 5e-4 / 10);
    /* and can repair a file's bad value before validation */
    DLM_TEST_OK(load_cfg("data = { source = \"synthetic\"; };\ntrain = { lr = -1; };\n", lr, 1, &c,
                         path, sizeof path));
    CU_ASSERT(c.train.lr == 5e-4);
}

static void test_override_errors(void)
{
    dlm_run_config c;
    char path[512];
    const char *unknown[] = {"data.source=synthetic", "train.lrr=1"};
    EXPECT_ERROR(dlm_run_config_load(NULL, unknown, 2, &c), "--set train.lrr=1: unknown key train.lrr",
                 "(valid keys of train: steps,", "did you mean train.lr?");
    const char *group[] = {"optim.lr=1"};
    EXPECT_ERROR(dlm_run_config_load(NULL, group, 1, &c), "--set optim.lr=1: unknown key optim.lr",
                 "valid groups: model, objective, train, muon, data, parallel, run");
    const char *abc[] = {"train.lr=abc"};
    EXPECT_ERROR(dlm_run_config_load(NULL, abc, 1, &c),
                 "--set train.lr=abc: train.lr expects a number, got 'abc'");
    const char *half[] = {"train.steps=1.5"};
    EXPECT_ERROR(dlm_run_config_load(NULL, half, 1, &c),
                 "--set train.steps=1.5: train.steps expects an integer, got 1.5");
    const char *list[] = {"data.train=[\"a.bin\", 3]"};
    EXPECT_ERROR(dlm_run_config_load(NULL, list, 1, &c), "--set data.train=[\"a.bin\", 3]: data.train");
    const char *sneak[] = {"train.lr=1; steps = 5"};
    EXPECT_ERROR(dlm_run_config_load(NULL, sneak, 1, &c),
                 "--set train.lr=1; steps = 5: train.lr expects a single value");
    const char *noeq[] = {"train.lr"};
    EXPECT_ERROR(dlm_run_config_load(NULL, noeq, 1, &c), "--set train.lr: expected group.key=value");
    const char *empty[] = {"train.lr="};
    EXPECT_ERROR(dlm_run_config_load(NULL, empty, 1, &c), "train.lr expects a number, got nothing");
    const char *kind[] = {"objective.kind=sedd"};
    EXPECT_ERROR(dlm_run_config_load(NULL, kind, 1, &c),
                 "--set objective.kind=sedd: objective.kind must be one of \"ar\", \"mdlm\"");
    /* range and consistency errors name the override that set the value */
    const char *neg[] = {"data.source=synthetic", "train.lr=-1"};
    EXPECT_ERROR(dlm_run_config_load(NULL, neg, 2, &c), "--set train.lr=-1: train.lr must be > 0, got -1");
    const char *heads[] = {"model.heads=5"};
    EXPECT_ERROR(load_cfg("data = { source = \"synthetic\"; };\nmodel = { width = 64; };\n", heads,
                          1, &c, path, sizeof path),
                 "--set model.heads=5: model.heads (5) must divide model.width (64)",
                 "(model.width is from ", path, " line 2)");
}

/* ---- the text stored in run files ---- */

static void round_trip(const dlm_run_config *c)
{
    char *text = NULL;
    dlm_run_config back;
    DLM_TEST_OK(dlm_run_config_to_text(c, &text));
    dlm_status st = dlm_run_config_load_text(text, "round trip", NULL, 0, &back);
    if (st != DLM_OK) printf("\n  text that did not load:\n%s\n", text);
    DLM_TEST_OK(st);
    CU_ASSERT(memcmp(&back, c, sizeof back) == 0);
    free(text);
}

static void test_text_round_trip(void)
{
    dlm_run_config c;
    char path[512];
    DLM_TEST_OK(load_cfg(FULL, NULL, 0, &c, path, sizeof path));
    round_trip(&c);
    char *text = NULL;
    DLM_TEST_OK(dlm_run_config_to_text(&c, &text));
    /* every key is written, derived ones included */
    CU_ASSERT(strstr(text, "  micro_batch = 6;\n") != NULL);
    CU_ASSERT(strstr(text, "  seed = 123456789012L;\n") != NULL);
    CU_ASSERT(strstr(text, "  rope_theta = 500000.0;\n") != NULL);
    CU_ASSERT(strstr(text, "  lr_schedule = \"wsd\";\n") != NULL);
    CU_ASSERT(strstr(text, "  train = [ \"a/s0.bin\", \"a/s1.bin\", \"a/s2.bin\" ];\n") != NULL);
    free(text);

    /* awkward strings, doubles that need 17 digits, derived defaults */
    const char *sets[] = {"data.train=[\"q\\\"uote.bin\", \"back\\\\slash.bin\", \"tab\\x09.bin\"]",
                          "train.lr=0.1", "train.beta2=0.30000000000000004",
                          "train.seed=9223372036854775807", "run.dir=runs/ü"};
    DLM_TEST_OK(dlm_run_config_load(NULL, sets, 5, &c));
    CU_ASSERT(strcmp(c.data.train_paths[0], "q\"uote.bin") == 0);
    CU_ASSERT(strcmp(c.data.train_paths[1], "back\\slash.bin") == 0);
    CU_ASSERT(strcmp(c.data.train_paths[2], "tab\t.bin") == 0);
    CU_ASSERT(c.train.seed == UINT64_C(9223372036854775807));
    round_trip(&c);

    /* overrides apply to stored text too */
    DLM_TEST_OK(dlm_run_config_to_text(&c, &text));
    const char *steps[] = {"train.steps=77"};
    dlm_run_config back;
    DLM_TEST_OK(dlm_run_config_load_text(text, "run.h5", steps, 1, &back));
    CU_ASSERT(back.train.steps == 77);
    free(text);
    EXPECT_ERROR(dlm_run_config_load_text("train = { lr = -1; };\n", "run.h5", NULL, 0, &back),
                 "run.h5 line 1: train.lr must be > 0, got -1");
}

/* ---- the rank layout ---- */

static void test_layout(void)
{
    dlm_run_config c;
    dlm_run_config_defaults(&c);
    DLM_TEST_OK(dlm_run_config_check_layout(&c, 1));
    EXPECT_ERROR(dlm_run_config_check_layout(&c, 2), "1 x 1 x 1 = 1, but the job has 2 MPI ranks");
    c.parallel.dp = 2;
    c.train.micro_batch = 8;
    DLM_TEST_OK(dlm_run_config_check_layout(&c, 2));
    c.train.micro_batch = 16; /* 16 sequences do not make two micro-batches of 16 */
    EXPECT_ERROR(dlm_run_config_check_layout(&c, 2), "train.batch = 16 does not split over "
                 "parallel.dp = 2 ranks in micro-batches of train.micro_batch = 16");
    c.parallel.dp = 1;
    c.parallel.tp = 2;
    c.train.micro_batch = 16;
    DLM_TEST_OK(dlm_run_config_check_layout(&c, 2));
    c.parallel.tp = 3;
    EXPECT_ERROR(dlm_run_config_check_layout(&c, 3), "parallel.tp = 3 must divide model.heads = 4");
    c.parallel.tp = 1;
    c.parallel.pp = 2;
    DLM_TEST_OK(dlm_run_config_check_layout(&c, 2));
    /* the stage split is refused before "not built yet": more stages than blocks, a list
     * that does not sum to the layers, from a file and from --set */
    c.parallel.pp = 3;
    EXPECT_ERROR(dlm_run_config_check_layout(&c, 3),
                 "parallel.pp = 3 stages for model.layers = 2 blocks: every stage needs at least "
                 "one block");
    c.parallel.pp = 1;
    dlm_run_config e;
    const char *split[] = {"parallel.pp=2", "parallel.stage_layers=[1, 2]"};
    DLM_TEST_OK(dlm_run_config_load_text("data = { source = \"synthetic\"; };\n", "test", split, 2,
                                         &e));
    CU_ASSERT(e.parallel.n_stage_layers == 2 && e.parallel.stage_layers[1] == 2);
    EXPECT_ERROR(dlm_run_config_check_layout(&e, 2),
                 "parallel.stage_layers sums to 3 blocks, but model.layers = 2");
    e.parallel.stage_layers[1] = 1;
    DLM_TEST_OK(dlm_run_config_check_layout(&e, 2));
    /* the list survives the stored text, and a non-integer element is named */
    char *text = NULL;
    DLM_TEST_OK(dlm_run_config_to_text(&e, &text));
    CU_ASSERT(strstr(text, "stage_layers = [ 1, 1 ];") != NULL);
    dlm_run_config back;
    DLM_TEST_OK(dlm_run_config_load_text(text, "stored", NULL, 0, &back));
    CU_ASSERT(back.parallel.n_stage_layers == 2 && back.parallel.stage_layers[0] == 1);
    free(text);
    const char *bad[] = {"parallel.stage_layers=[1, 2.5]"};
    EXPECT_ERROR(dlm_run_config_load_text("data = { source = \"synthetic\"; };\n", "test", bad, 1,
                                          &e),
                 "parallel.stage_layers expects an array of integers");
    EXPECT_ERROR(dlm_run_config_load_text("data = { source = \"synthetic\"; };\n"
                                          "parallel = { stage_layers = (1, \"two\"); };\n",
                                          "list.cfg", NULL, 0, &e),
                 "list.cfg line 2", "element 2 is \"two\"");
    /* micro_batch follows batch / dp unless set */
    dlm_run_config d;
    const char *sets[] = {"parallel.dp=4", "train.batch=32"};
    DLM_TEST_OK(dlm_run_config_load_text("data = { source = \"synthetic\"; };\n", "test", sets, 2, &d));
    CU_ASSERT_EQUAL(d.train.micro_batch, 8);
    c.parallel.dp = 1;
    c.parallel.tp = 2;
    c.parallel.pp = 2;
    EXPECT_ERROR(dlm_run_config_check_layout(&c, 2), "1 x 2 x 2 = 4, but the job has 2 MPI ranks");
}

/* ---- configs/ ---- */

static void test_config_files(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/configs", DLM_SOURCE_DIR);
    DIR *d = opendir(dir);
    CU_ASSERT_FATAL(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".cfg") != 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (strstr(e->d_name, "sweep")) { /* a sweep file, not a run (its plan: dlm_sweep.plan_configs) */
            dlm_sweep_config sc;
            DLM_TEST_OK(dlm_sweep_config_load(path, NULL, 0, &sc));
            continue;
        }
        dlm_run_config c;
        dlm_status st = dlm_run_config_load(path, NULL, 0, &c);
        if (st != DLM_OK) printf("\n  %s does not load", e->d_name);
        DLM_TEST_OK(st);
        DLM_TEST_OK(dlm_run_config_check_layout(&c, 1));
        round_trip(&c);
        n++;
    }
    closedir(d);
    CU_ASSERT(n >= 6);

    /* the named shapes */
    dlm_run_config c, def;
    dlm_run_config_defaults(&def);
    DLM_TEST_OK(dlm_run_config_load(DLM_SOURCE_DIR "/configs/tiny.cfg", NULL, 0, &c));
    CU_ASSERT(c.data.source == DLM_DATA_SYNTHETIC);
    def.data.source = DLM_DATA_SYNTHETIC;
    memcpy(def.run.dir, c.run.dir, sizeof def.run.dir);
    CU_ASSERT(memcmp(&c, &def, sizeof c) == 0); /* the defaults apart from source and dir */
    DLM_TEST_OK(dlm_run_config_load(DLM_SOURCE_DIR "/configs/l6-d384.cfg", NULL, 0, &c));
    CU_ASSERT(c.model.layers == 6 && c.model.width == 384 && c.model.heads == 6);
    CU_ASSERT(c.model.seq_len == 256 && c.train.batch == 32 && c.train.micro_batch == 4);
    DLM_TEST_OK(dlm_run_config_load(DLM_SOURCE_DIR "/configs/gpt2-small.cfg", NULL, 0, &c));
    CU_ASSERT(c.model.layers == 12 && c.model.width == 768 && c.model.heads == 12);
    CU_ASSERT(c.model.seq_len == 1024 && c.model.tied_head == 1);
    DLM_TEST_OK(dlm_run_config_load(DLM_SOURCE_DIR "/configs/gpt2-medium.cfg", NULL, 0, &c));
    CU_ASSERT(c.model.layers == 24 && c.model.width == 1024 && c.model.heads == 16);
    CU_ASSERT(c.model.seq_len == 1024 && c.model.tied_head == 1);
    const char *objectives[2] = {"mdlm", "ar"};
    for (int i = 0; i < 2; i++) {
        char path[1024], dir_want[64];
        snprintf(path, sizeof path, "%s/configs/quickstart-%s.cfg", DLM_SOURCE_DIR, objectives[i]);
        DLM_TEST_OK(dlm_run_config_load(path, NULL, 0, &c));
        dlm_objective_kind kind;
        DLM_TEST_OK(dlm_objective_parse(objectives[i], &kind));
        CU_ASSERT(c.objective.kind == kind);
        CU_ASSERT(c.model.layers == 4 && c.model.width == 128 && c.model.heads == 4);
        CU_ASSERT(c.model.seq_len == 128 && c.train.batch == 32 && c.train.micro_batch == 8);
        CU_ASSERT(c.train.lr == 2e-3 && c.train.steps == 1500 && c.train.warmup == 50);
        CU_ASSERT(c.train.ema_decay == 0.999 && c.train.checkpoint_every == 100);
        CU_ASSERT(c.train.log_every == 25 && c.train.val_every == 100);
        CU_ASSERT(c.data.n_train_paths == 1 && c.data.n_val_paths == 1);
        CU_ASSERT(strcmp(c.data.train_paths[0], "data/corpus/debian_train.bin") == 0);
        CU_ASSERT(strcmp(c.data.val_paths[0], "data/corpus/debian_val.bin") == 0);
        snprintf(dir_want, sizeof dir_want, "runs/quickstart-%s", objectives[i]);
        CU_ASSERT(strcmp(c.run.dir, dir_want) == 0);
    }
}

/* The names the config accepts map to what each module's own parser says. */
static void test_names_match_modules(void)
{
    const char *schedules[] = {"loglinear", "cosine", "linear-sigma", "power"};
    const char *lrs[] = {"cosine", "constant", "wsd"};
    const char *formats[] = {"llmc", "raw-u16"};
    char set[4][64];
    const char *sets[4] = {set[0], set[1], set[2], set[3]};
    for (int i = 0; i < 4; i++) {
        dlm_run_config c;
        snprintf(set[0], sizeof set[0], "data.source=synthetic");
        snprintf(set[1], sizeof set[1], "objective.schedule=%s", schedules[i]);
        snprintf(set[2], sizeof set[2], "train.lr_schedule=%s", lrs[i % 3]);
        snprintf(set[3], sizeof set[3], "data.format=%s", formats[i % 2]);
        DLM_TEST_OK(dlm_run_config_load(NULL, sets, 4, &c));
        dlm_schedule_kind sk;
        dlm_lr_kind lk;
        dlm_shard_format fk;
        DLM_TEST_OK(dlm_schedule_parse(schedules[i], &sk));
        DLM_TEST_OK(dlm_lr_kind_parse(lrs[i % 3], &lk));
        DLM_TEST_OK(dlm_shard_format_parse(formats[i % 2], &fk));
        CU_ASSERT(c.objective.schedule == sk && c.train.lr_schedule == lk && c.data.format == fk);
    }
}

/* ---- the generic machinery, with a schema of its own ---- */

static void test_names(void)
{
    const char *const three[] = {"a", "bb", "c", NULL}, *const two[] = {"x", "y", NULL};
    const char *const one[] = {"only", NULL};
    char buf[64];
    CU_ASSERT(dlm_names_find(three, "bb") == 1 && dlm_names_find(three, "d") == -1);
    CU_ASSERT(dlm_names_count(three) == 3 && dlm_names_count(one) == 1);
    dlm_names_or(three, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "a, bb or c");
    dlm_names_or(two, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "x or y");
    dlm_names_or(one, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "only");
}

typedef struct {
    int n;
    double x;
    int kind;
} toy_config;

static const char *const toy_kinds[] = {"plain", "fancy", NULL};
static const dlm_config_key toy_keys[] = {
    DLM_KEY_NUM("toy", "n", DLM_KEY_INT, toy_config, n, DLM_GE(1)),
    DLM_KEY_NUM("toy", "x", DLM_KEY_DOUBLE, toy_config, x, DLM_ANY),
    DLM_KEY_ENUM("toy", "kind", toy_config, kind, toy_kinds),
};
static const char *const toy_groups[] = {"toy"};

static void toy_defaults(void *c) { *(toy_config *)c = (toy_config){.n = 2, .x = 1.0, .kind = 0}; }

static void toy_derive(const dlm_config_load_ctx *x, void *cv)
{
    toy_config *c = cv;
    if (!dlm_config_is_set(x, "toy.x")) c->x = c->n / 2.0; /* x follows n */
}

static void toy_check(dlm_config_load_ctx *x, const void *cv)
{
    const toy_config *c = cv;
    if (c->x >= c->n) dlm_config_pair_error(x, "toy.x", "toy.n", "toy.x must be < toy.n");
}

/* A list of numbers: integers and floats read alike, bounds hold for
 * each element (naming it), the text form reads back to the same bits. */
typedef struct {
    double v[DLM_CONFIG_MAX_INTS];
    int n;
} toy_list;

static const dlm_config_key toy_list_keys[] = {
    DLM_KEY_DOUBLES("toy", "v", toy_list, v, n, DLM_GT(0)),
};

static void toy_list_defaults(void *c) { memset(c, 0, sizeof(toy_list)); }

static void test_number_lists(void)
{
    dlm_config_schema schema = {toy_list_keys, 1, toy_groups, 1, sizeof(toy_list),
                                toy_list_defaults, NULL, NULL};
    toy_list c;
    DLM_TEST_OK(dlm_config_load_text(&schema, "toy = { v = (1, 2.5, 1e13, 0.1); };", "t.cfg",
                                     NULL, 0, &c));
    CU_ASSERT(c.n == 4 && c.v[0] == 1.0 && c.v[1] == 2.5 && c.v[2] == 1e13 && c.v[3] == 0.1);
    char *text = NULL;
    DLM_TEST_OK(dlm_config_to_text(&schema, &c, "toy", &text));
    CU_ASSERT(text && strstr(text, "v = [ 1.0, 2.5, 10000000000000.0, 0.1 ];") != NULL);
    toy_list again;
    DLM_TEST_OK(dlm_config_load_text(&schema, text, "toy.txt", NULL, 0, &again));
    CU_ASSERT(memcmp(&again, &c, sizeof c) == 0);
    free(text);
    const char *set[] = {"toy.v=[3e12, 1e13]"};
    DLM_TEST_OK(dlm_config_load(&schema, NULL, set, 1, &c));
    CU_ASSERT(c.n == 2 && c.v[0] == 3e12 && c.v[1] == 1e13);
    EXPECT_ERROR(dlm_config_load_text(&schema, "toy = {\n v = [1.0, -2.0];\n};", "t.cfg", NULL, 0, &c),
                 "t.cfg line 2: toy.v element 2 must be > 0, got -2");
    EXPECT_ERROR(dlm_config_load_text(&schema, "toy = { v = (1, \"x\"); };", "t.cfg", NULL, 0, &c),
                 "toy.v expects an array of numbers, but element 2 is \"x\"");
    EXPECT_ERROR(dlm_config_load_text(&schema, "toy = { v = 3.0; };", "t.cfg", NULL, 0, &c),
                 "toy.v expects an array of numbers, [ ] for none, got 3");
}

/* A check naming a key the schema lacks: a schema bug, which fails loads. */
static void toy_bad_check(dlm_config_load_ctx *x, const void *cv)
{
    (void)cv;
    dlm_config_pair_error(x, "toy.x", "toy.missing", "never shown");
}

static void test_own_schema(void)
{
    dlm_config_schema schema = {toy_keys, 3, toy_groups, 1, sizeof(toy_config),
                                toy_defaults, toy_derive, toy_check};
    toy_config c;
    const char *sets[] = {"toy.n=8", "toy.kind=fancy"};
    DLM_TEST_OK(dlm_config_load(&schema, NULL, sets, 2, &c));
    CU_ASSERT(c.n == 8 && c.x == 4.0 && c.kind == 1); /* x derived from the n set */

    char *text = NULL;
    DLM_TEST_OK(dlm_config_to_text(&schema, &c, "toy", &text));
    const char *want = "# toy\ntoy = {\n  n = 8;\n  x = 4.0;\n  kind = \"fancy\";\n};\n";
    CU_ASSERT(text && strcmp(text, want) == 0);
    toy_config again;
    memset(&again, 0xff, sizeof again);
    DLM_TEST_OK(dlm_config_load_text(&schema, text, "toy.txt", NULL, 0, &again));
    CU_ASSERT(memcmp(&again, &c, sizeof c) == 0);
    free(text);

    EXPECT_ERROR(dlm_config_load_text(&schema, "toy = {\n  x = 9.0;\n  n = 3;\n};\n", "t.cfg",
                                      NULL, 0, &c),
                 "t.cfg line 2: toy.x must be < toy.n (toy.n is from line 3)");
    EXPECT_ERROR(dlm_config_load_text(&schema, "toy = { kind = \"odd\"; };", "t.cfg", NULL, 0, &c),
                 "toy.kind must be one of \"plain\", \"fancy\", got \"odd\"");
    EXPECT_ERROR(dlm_config_load_text(&schema, "toy = { y = 1; };", "t.cfg", NULL, 0, &c),
                 "unknown key toy.y (valid keys of toy: n, x, kind)");
    schema.check = toy_bad_check;
    EXPECT_ERROR(dlm_config_load(&schema, NULL, NULL, 0, &c),
                 "the configuration schema has no key toy.missing");
}

int main(int argc, char **argv)
{
    static const dlm_test_case load[] = {{"defaults", test_defaults},
                                         {"a full file", test_full_file},
                                         {"integers for floats, 64-bit seeds", test_integers_for_floats},
                                         {"derived defaults follow their sources", test_derived_defaults},
                                         {"@include relative to the file", test_include},
                                         {NULL, NULL}};
    static const dlm_test_case errors[] = {{"unknown key", test_unknown_key},
                                           {"unknown group", test_unknown_group},
                                           {"wrong type", test_wrong_type},
                                           {"out of range", test_out_of_range},
                                           {"contradictions", test_contradictions},
                                           {"unreadable or malformed file", test_unreadable},
                                           {NULL, NULL}};
    static const dlm_test_case overrides[] = {{"values", test_override_values},
                                              {"errors", test_override_errors},
                                              {NULL, NULL}};
    static const dlm_test_case text[] = {{"round trip", test_text_round_trip},
                                         {"rank layout", test_layout},
                                         {NULL, NULL}};
    static const dlm_test_case files[] = {{"configs/ all load", test_config_files},
                                          {"names match the modules", test_names_match_modules},
                                          {NULL, NULL}};
    static const dlm_test_case generic[] = {{"enum name tables", test_names},
                                            {"a schema of its own", test_own_schema},
                                            {"lists of numbers", test_number_lists},
                                            {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"load", load},           {"errors", errors},
                                            {"overrides", overrides}, {"text", text},
                                            {"files", files},         {"generic", generic},
                                            {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
