/* dlm-train as a process: stopping and resuming gives the same bits as a
 * run straight through, and so does a run killed (SIGKILL) again and again,
 * at random moments and at injected points inside checkpoint and run-file
 * writes, while another process holds run.h5 open. Every step lands in
 * run.h5 exactly once. */
#define _GNU_SOURCE
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/rng.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/runfile.h"
#include "model/model.h"

#define STEPS 200 /* about 0.6 s of training after about 0.5 s of start-up (2026 machines) */
static char root[256];

/* Runs dlm-train on the tiny synthetic setup in dir with extra environment
 * (NAME=VALUE or NULL) and, if stop_at > 0, --stop-at-step stop_at;
 * kill_after_ms > 0 sends SIGKILL after that long. Returns the exit status,
 * or 128 + signal. */
static int train(const char *dir, const char *env, int stop_at, int kill_after_ms)
{
    char rundir[400], stop[32];
    snprintf(rundir, sizeof rundir, "run.dir=\"%s\"", dir);
    snprintf(stop, sizeof stop, "%d", stop_at);
    char *args[] = {DLM_TRAIN_BIN, "--threads", "1", "--set", "train.steps=200", "--set",
                    "train.log_every=4", "--set", "train.val_every=8", "--set",
                    "train.checkpoint_every=6", "--set", "train.keep_checkpoints=2", "--set",
                    "model.layers=1", "--set", "model.width=32", "--set", "model.heads=2", "--set",
                    "model.seq_len=32", "--set", "train.batch=4", "--set", "train.warmup=2", "--set",
                    "train.ema_decay=0.99", "--set", "train.val_chunks=8", "--set", rundir,
                    stop_at > 0 ? "--stop-at-step" : NULL, stop, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        if (env) putenv((char *)env);
        int devnull = open("/dev/null", 1);
        if (devnull >= 0) dup2(devnull, 1);
        execv(DLM_TRAIN_BIN, args);
        _exit(127);
    }
    int status;
    if (kill_after_ms > 0) {
        struct timespec d = {0, 1000000L}; /* poll every millisecond */
        for (int ms = 0; ms < kill_after_ms; ms++) {
            if (waitpid(pid, &status, WNOHANG) == pid) goto done;
            nanosleep(&d, NULL);
        }
        kill(pid, SIGKILL);
    }
    waitpid(pid, &status, 0);
done:
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs until dlm-train exits 0 (each run resuming), at most `tries` times. */
static int finish(const char *dir, int tries)
{
    for (int i = 0; i < tries; i++)
        if (train(dir, NULL, 0, 0) == 0) return 1;
    return 0;
}

typedef struct {
    float *params, *ema, *m, *v;
    size_t n;
    dlm_train_row *rows;
    dlm_val_row *val;
    int64_t n_rows, n_val;
} run_result;

static void load_result(const char *dir, run_result *r)
{
    memset(r, 0, sizeof *r);
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 1, 32, 2, 32);
    dlm_param_info *table;
    int n;
    DLM_TEST_OK(dlm_param_table_create(&cfg, DLM_LAYOUT_SERIAL, &table, &n, &r->n));
    r->params = calloc(r->n, sizeof(float));
    r->ema = calloc(r->n, sizeof(float));
    r->m = calloc(r->n, sizeof(float));
    r->v = calloc(r->n, sizeof(float));
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoints/step-%08d.h5", dir, STEPS);
    dlm_ckpt_state st = {0};
    DLM_TEST_OK(dlm_ckpt_read(path, table, n, NULL, r->params, r->ema, r->m, r->v, &st));
    CU_ASSERT(st.step == STEPS && st.tokens == (int64_t)STEPS * 4 * 32);
    dlm_ckpt_state_free(&st);
    free(table);
    snprintf(path, sizeof path, "%s/run.h5", dir);
    DLM_TEST_OK(dlm_runfile_read(path, &r->rows, &r->n_rows, &r->val, &r->n_val));
}

static void free_result(run_result *r)
{
    free(r->params), free(r->ema), free(r->m), free(r->v), free(r->rows), free(r->val);
}

/* Bit-identical state and identical loss rows; each logged step once. */
static void compare(const run_result *a, const run_result *b, const char *what)
{
    int same = a->n == b->n && !memcmp(a->params, b->params, a->n * sizeof(float)) &&
               !memcmp(a->ema, b->ema, a->n * sizeof(float)) &&
               !memcmp(a->m, b->m, a->n * sizeof(float)) && !memcmp(a->v, b->v, a->n * sizeof(float));
    if (!same) printf("\n  %s: parameters, EMA or moments differ", what);
    CU_ASSERT(same);
    CU_ASSERT(a->n_rows == STEPS / 4 && b->n_rows == STEPS / 4);
    for (int64_t i = 0; i < a->n_rows && i < b->n_rows; i++) {
        CU_ASSERT(b->rows[i].step == 4 * (i + 1)); /* every step once, in order */
        CU_ASSERT(a->rows[i].loss == b->rows[i].loss && a->rows[i].lr == b->rows[i].lr &&
                  a->rows[i].grad_norm == b->rows[i].grad_norm &&
                  a->rows[i].tokens == b->rows[i].tokens);
    }
    CU_ASSERT(a->n_val == STEPS / 8 && b->n_val == STEPS / 8);
    for (int64_t i = 0; i < a->n_val && i < b->n_val; i++)
        CU_ASSERT(a->val[i].step == b->val[i].step && a->val[i].loss == b->val[i].loss);
}

static run_result straight;
/* Measured by the straight run: the whole run, and a start that finds the
 * run finished (start-up, verifying and loading a checkpoint, exit). */
static double straight_s, startup_s;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_straight(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/straight", root);
    double t0 = now_s();
    CU_ASSERT_FATAL(train(dir, NULL, 0, 0) == 0);
    double t1 = now_s();
    CU_ASSERT(train(dir, NULL, 0, 0) == 0);
    straight_s = t1 - t0, startup_s = now_s() - t1;
    load_result(dir, &straight);
    CU_ASSERT(straight.n_rows == STEPS / 4);
}

/* A stop request after step 10 checkpoints and exits 75; the same command resumes. */
static void test_stop_and_resume(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/resumed", root);
    CU_ASSERT(train(dir, NULL, 10, 0) == 75);
    char p[400];
    snprintf(p, sizeof p, "%s/checkpoints/step-00000010.h5", dir);
    CU_ASSERT(dlm_ckpt_verify(p, NULL, 0) == DLM_OK);
    CU_ASSERT(train(dir, NULL, 0, 0) == 0);
    run_result r;
    load_result(dir, &r);
    compare(&straight, &r, "stop at 10 + resume");
    free_result(&r);
}

/* Kills at injected points inside checkpoint and run-file writes, then at
 * random moments, with run.h5 held open by this process throughout. */
static void test_kill_loop(void)
{
    char dir[300], runh5[400];
    snprintf(dir, sizeof dir, "%s/killed", root);
    snprintf(runh5, sizeof runh5, "%s/run.h5", dir);
    static const char *const faults[] = {"DLM_FAULT=ckpt.write:2", "DLM_FAULT=runfile.write:3",
                                         "DLM_FAULT=ckpt.rename:1", "DLM_FAULT=runfile.rename:2",
                                         "DLM_FAULT=ckpt.write:1"};
    hid_t reader = -1;
    int kills = 0;
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
        int rc = train(dir, faults[i], 0, 0);
        if (rc == 128 + SIGKILL) kills++;
        if (reader < 0 && access(runh5, F_OK) == 0) /* a reader that never lets go */
            reader = H5Fopen(runh5, H5F_ACC_RDONLY, H5P_DEFAULT);
    }
    CU_ASSERT(kills == 5); /* each injected point was reached */
    CU_ASSERT(reader >= 0);
    /* random moments: start-up, steps, checkpoint and run-file writes alike.
     * Kill times are uniform in [S/2, S + (D - S)/15] for start-up S and a
     * whole run D as measured here, so a kill lands in start-up or at most
     * a fifteenth of the training past it, and ten kills come before the
     * run can finish on a fast machine as on a slow one. */
    double lo = 0.5 * startup_s, hi = startup_s + (straight_s - startup_s) / 15.0;
    CU_ASSERT(straight_s > startup_s);
    int random_kills = 0;
    for (int i = 0; i < 40 && random_kills < 10; i++) {
        int ms = (int)(1e3 * (lo + (hi - lo) * dlm_rng_uniform(17, (uint32_t)i, 0, 0, DLM_RNG_TEST)));
        int rc = train(dir, NULL, 0, ms);
        random_kills += rc == 128 + SIGKILL;
        CU_ASSERT(rc == 0 || rc == 128 + SIGKILL);
        /* after every kill the newest checkpoint that verifies is there to resume from */
        char latest[600];
        int found = 0;
        DLM_TEST_OK(dlm_ckpt_find_latest(dir, latest, sizeof latest, &found));
    }
    printf("\n    %d injected and %d random kills between %.0f and %.0f ms (run %.0f ms, start-up "
           "%.0f ms)\n", kills, random_kills, 1e3 * lo, 1e3 * hi, 1e3 * straight_s, 1e3 * startup_s);
    CU_ASSERT(random_kills >= 10);
    CU_ASSERT_FATAL(finish(dir, 3));
    if (reader >= 0) H5Fclose(reader);
    run_result r;
    load_result(dir, &r);
    compare(&straight, &r, "killed and resumed");
    free_result(&r);
}

int main(int argc, char **argv)
{
    snprintf(root, sizeof root, "/tmp/dlm-test-resume-XXXXXX");
    if (!mkdtemp(root)) return 1;
    static const dlm_test_case cases[] = {{"straight run", test_straight},
                                          {"stop and resume", test_stop_and_resume},
                                          {"kill -9 loop", test_kill_loop},
                                          {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"resume", cases}, {NULL, NULL}};
    int rc = dlm_test_main(argc, argv, suites);
    free_result(&straight);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return rc;
}
