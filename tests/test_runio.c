/* Run file and checkpoints: exact round trips, resume trimming, checksum
 * and completion checks, and crash safety with real processes killed by
 * SIGKILL (at the fault points and at random moments) while a reader
 * holds run.h5 open.
 *
 * The child processes are this program re-executed as
 * `test_runio --writer DIR STEPS FLUSH_EVERY CKPT_EVERY KEEP_LAST`: a
 * stand-in for the training loop whose every value is a function of the
 * step, so the parent can check any file it finds after a kill. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/rng.h"
#include "core/status.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/h5.h"
#include "io/runfile.h"
#include "model/model.h"

/* ---- the deterministic run both sides agree on ------------------------ */

#define VAL_EVERY 5
static const char *const RUN_CONFIG = "model = { layers = 2; width = 64; heads = 4; };\n"
                                      "train = { lr = 3e-4; steps = 1000; };\n";

/* A real parameter table: L=2 d=64 H=4 T=64, untied head (~127k floats). */
static dlm_status make_table(int n_layer, dlm_param_info **t, int *n, size_t *floats,
                             char *shape, size_t len)
{
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, n_layer, 64, 4, 64);
    DLM_CALL(dlm_param_table_create(&cfg, DLM_LAYOUT_SERIAL, t, n, floats));
    snprintf(shape, len, "L=%d d=%d H=%d T=%d V=%d tied=%d", cfg.n_layer, cfg.d_model,
             cfg.n_head, cfg.seq_len, cfg.vocab_padded, cfg.tied_head);
    return DLM_OK;
}

/* Array k (0 params, 1 ema, 2 adam_m, 3 adam_v) at step s, arena index i. */
static float value_at(int64_t s, int k, size_t i)
{
    return (float)((double)s + 0.25 * k + 1e-3 * (double)(i % 977));
}

static void fill_arrays(const dlm_param_info *t, int n, int64_t s, float *a[4])
{
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < t[i].numel; j++)
                a[k][t[i].offset + j] = value_at(s, k, t[i].offset + j);
}

static int arrays_hold(const dlm_param_info *t, int n, int64_t s, float *a[4])
{
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < t[i].numel; j++)
                if (a[k][t[i].offset + j] != value_at(s, k, t[i].offset + j)) return 0;
    return 1;
}

static dlm_train_row train_row(int64_t s)
{
    dlm_train_row r = {.step = s, .tokens = 4096 * s, .loss = 10.0 / (double)(s + 1),
                       .lr = 1e-3 * (double)(s % 7), .grad_norm = 0.5 * (double)s,
                       .tokens_per_s = 1e5 + (double)s, .gflops = 2.5,
                       .step_ms = 30.0 + (double)(s % 3)};
    return r;
}

static dlm_val_row val_row(int64_t s)
{
    dlm_val_row r = {.step = s, .loss = 3.0 / (double)(s + 1), .bits_per_byte = 1.5 / (double)(s + 1),
                     .stderr_ = (s / VAL_EVERY) % 2 ? NAN : 0.01};
    return r;
}

/* ---- the writer child ---------------------------------------------------- */

static int writer_fail(const char *what)
{
    fprintf(stderr, "runio writer: %s failed:\n%s", what, dlm_error_text());
    return 1;
}

/* Resumes from the newest checkpoint that verifies; each step appends a
 * row; run.h5 is flushed every flush_every steps and before every
 * checkpoint (as the real loop must: rows only in memory at a checkpoint
 * would be lost by a resume from it). Prints "start S" once resumed and
 * "flush S" / "ckpt S" after each finished one. Exit 0 done, 1 dlm error,
 * 2 usage, 3 wrong values. */
static int writer_main(int argc, char **argv)
{
    if (argc != 6) return 2;
    const char *dir = argv[1];
    int64_t steps = atoll(argv[2]), flush_every = atoll(argv[3]), ckpt_every = atoll(argv[4]);
    int keep = atoi(argv[5]);
    if (steps < 1 || flush_every < 1 || ckpt_every < 1) return 2;
    dlm_param_info *t;
    int n;
    size_t floats;
    char shape[128], path[4096];
    if (make_table(2, &t, &n, &floats, shape, sizeof shape) != DLM_OK) return writer_fail("table");
    float *arena = calloc(4 * floats, sizeof *arena);
    if (!arena) return 1;
    float *a[4] = {arena, arena + floats, arena + 2 * floats, arena + 3 * floats};
    int found;
    int64_t start = 0;
    if (dlm_ckpt_find_latest(dir, path, sizeof path, &found) != DLM_OK)
        return writer_fail("find_latest");
    if (found) {
        dlm_ckpt_state st;
        if (dlm_ckpt_read(path, t, n, shape, a[0], a[1], a[2], a[3], &st) != DLM_OK)
            return writer_fail("ckpt_read");
        start = st.step;
        int ok = arrays_hold(t, n, start, a) && st.tokens == 4096 * start && st.adam_t == start &&
                 st.loader_step == (uint64_t)start && !strcmp(st.config_text, RUN_CONFIG);
        dlm_ckpt_state_free(&st);
        if (!ok) return 3;
    }
    dlm_runfile_attrs attrs = {.config = RUN_CONFIG, .layout = "dp=1 tp=1 pp=1",
                               .code_revision = "test", .hosts = "localhost",
                               .start_time = "2025-01-01T00:00:00Z"};
    dlm_runfile *rf;
    if (dlm_runfile_open(dir, &attrs, found ? start : -1, &rf) != DLM_OK) return writer_fail("open");
    printf("start %" PRId64 "\n", start);
    fflush(stdout);
    for (int64_t s = start + 1; s <= steps; s++) {
        dlm_train_row tr = train_row(s);
        if (dlm_runfile_add_train(rf, &tr) != DLM_OK) return writer_fail("add_train");
        if (s % VAL_EVERY == 0) {
            dlm_val_row vr = val_row(s);
            if (dlm_runfile_add_val(rf, &vr) != DLM_OK) return writer_fail("add_val");
        }
        int ckpt = s % ckpt_every == 0;
        if (s % flush_every == 0 || ckpt) {
            if (dlm_runfile_flush(rf) != DLM_OK) return writer_fail("flush");
            printf("flush %" PRId64 "\n", s);
            fflush(stdout);
        }
        if (ckpt) {
            fill_arrays(t, n, s, a);
            dlm_ckpt_state st = {.step = s, .tokens = 4096 * s, .adam_t = s, .loader_seed = 7,
                                 .loader_step = (uint64_t)s, .rng_seed = 11,
                                 .config_text = RUN_CONFIG, .shape = shape};
            if (dlm_ckpt_write(dir, t, n, a[0], a[1], a[2], a[3], &st, keep, NULL, 0) != DLM_OK)
                return writer_fail("ckpt_write");
            printf("ckpt %" PRId64 "\n", s);
            fflush(stdout);
        }
    }
    dlm_runfile_close(&rf);
    free(arena);
    free(t);
    printf("done\n");
    return 0;
}

/* ---- process and folder helpers ------------------------------------------ */

typedef struct {
    pid_t pid;
    int fd;          /* the child's stdout */
    char out[16384]; /* what it printed */
    size_t len;
    int status;      /* from waitpid */
} child;

static void spawn_writer(child *c, const char *dir, int64_t steps, int flush_every,
                         int ckpt_every, int keep, const char *fault)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CU_ASSERT_FATAL(len > 0);
    exe[len] = '\0';
    char a_steps[32], a_flush[32], a_ckpt[32], a_keep[32];
    snprintf(a_steps, sizeof a_steps, "%" PRId64, steps);
    snprintf(a_flush, sizeof a_flush, "%d", flush_every);
    snprintf(a_ckpt, sizeof a_ckpt, "%d", ckpt_every);
    snprintf(a_keep, sizeof a_keep, "%d", keep);
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    memset(c, 0, sizeof *c);
    c->pid = fork();
    CU_ASSERT_FATAL(c->pid >= 0);
    if (c->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (fault) setenv("DLM_FAULT", fault, 1);
        else unsetenv("DLM_FAULT");
        execl(exe, exe, "--writer", dir, a_steps, a_flush, a_ckpt, a_keep, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    c->fd = fds[0];
}

/* Reads the child's output until a line starting with `line` (NULL: to
 * EOF); returns 1 if found. */
static int read_child(child *c, const char *line)
{
    ssize_t r;
    while (c->len < sizeof c->out - 1) {
        r = read(c->fd, c->out + c->len, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        c->len++;
        c->out[c->len] = '\0';
        if (line && c->out[c->len - 1] == '\n') {
            char *start = c->out + c->len - 1;
            while (start > c->out && start[-1] != '\n') start--;
            if (!strncmp(start, line, strlen(line))) return 1;
        }
    }
    return 0;
}

/* Reads the child's output to EOF and reaps it. */
static void finish_child(child *c)
{
    read_child(c, NULL);
    close(c->fd);
    while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR) {
    }
}

static int killed_by_sigkill(const child *c)
{
    return WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGKILL;
}

static int exited_ok(const child *c) { return WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0; }

/* The step of the last "<what> S" line, or -1. */
static int64_t last_report(const child *c, const char *what)
{
    int64_t v = -1;
    size_t wl = strlen(what);
    for (const char *p = c->out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, what, wl) && p[wl] == ' ') v = atoll(p + wl + 1);
    return v;
}

static void make_dir(char *dir)
{
    strcpy(dir, "/tmp/dlm-runio-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_dir(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ---- checks on what a kill left ------------------------------------------ */

/* run.h5 opens as a plain reader opens it (default property list, so HDF5's
 * file locking is on, as in h5py) and holds steps 1..n with exactly the
 * values written, and the val rows of those steps. Returns n, or -1. */
static int64_t check_runfile(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/run.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT(f >= 0);
    if (f < 0) return -1;
    H5Fclose(f);
    dlm_train_row *tr;
    dlm_val_row *vr;
    int64_t nt, nv;
    dlm_status st = dlm_runfile_read(path, &tr, &nt, &vr, &nv);
    if (st != DLM_OK) dlm_test_print_error("dlm_runfile_read");
    CU_ASSERT(st == DLM_OK);
    if (st != DLM_OK) return -1;
    int ok = nv == nt / VAL_EVERY;
    for (int64_t i = 0; ok && i < nt; i++) {
        dlm_train_row want = train_row(i + 1);
        ok = memcmp(&tr[i], &want, sizeof want) == 0;
    }
    for (int64_t i = 0; ok && i < nv; i++) {
        dlm_val_row want = val_row((i + 1) * VAL_EVERY);
        ok = memcmp(&vr[i], &want, sizeof want) == 0;
    }
    if (!ok) printf("\n  %s: rows are not steps 1..%" PRId64 " as written\n", path, nt);
    CU_ASSERT(ok);
    free(tr);
    free(vr);
    return ok ? nt : -1;
}

/* Every final-named checkpoint verifies; find_latest's choice holds its
 * step's values. Returns that step, 0 when there is none, -1 on failure. */
static int64_t check_checkpoints(const char *dir)
{
    char cdir[4200];
    snprintf(cdir, sizeof cdir, "%s/checkpoints", dir);
    DIR *d = opendir(cdir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t l = strlen(de->d_name);
            if (strncmp(de->d_name, "step-", 5) || l < 4 || strcmp(de->d_name + l - 3, ".h5"))
                continue;
            char path[4500], why[1024];
            snprintf(path, sizeof path, "%s/%s", cdir, de->d_name);
            dlm_status st = dlm_ckpt_verify(path, why, sizeof why);
            if (st != DLM_OK) printf("\n  %s does not verify: %s\n", path, why);
            CU_ASSERT(st == DLM_OK);
            dlm_error_clear();
        }
        closedir(d);
    }
    dlm_param_info *t;
    int n, found;
    size_t floats;
    char shape[128], path[4500];
    DLM_TEST_OK(make_table(2, &t, &n, &floats, shape, sizeof shape));
    DLM_TEST_OK(dlm_ckpt_find_latest(dir, path, sizeof path, &found));
    int64_t step = 0;
    if (found) {
        float *arena = calloc(4 * floats, sizeof *arena);
        float *a[4] = {arena, arena + floats, arena + 2 * floats, arena + 3 * floats};
        dlm_ckpt_state st;
        DLM_TEST_OK(dlm_ckpt_read(path, t, n, shape, a[0], a[1], a[2], a[3], &st));
        step = st.step;
        int ok = arrays_hold(t, n, step, a);
        CU_ASSERT(ok);
        if (!ok) step = -1;
        dlm_ckpt_state_free(&st);
        free(arena);
    }
    free(t);
    return step;
}

/* ---- run file ----------------------------------------------------------- */

static void add_rows(dlm_runfile *rf, int64_t from, int64_t to)
{
    for (int64_t s = from; s <= to; s++) {
        dlm_train_row r = train_row(s);
        DLM_TEST_OK(dlm_runfile_add_train(rf, &r));
        if (s % VAL_EVERY == 0) {
            dlm_val_row v = val_row(s);
            DLM_TEST_OK(dlm_runfile_add_val(rf, &v));
        }
    }
}

/* Rows written over several flushes read back bit for bit (NaN stderr
 * included); an empty run file is valid. */
static void test_runfile_roundtrip(void)
{
    char dir[64];
    make_dir(dir);
    dlm_runfile *rf;
    DLM_TEST_OK(dlm_runfile_open(dir, NULL, INT64_MAX, &rf));
    DLM_TEST_OK(dlm_runfile_flush(rf));
    CU_ASSERT(check_runfile(dir) == 0);
    for (int64_t upto = 10; upto <= 40; upto += 10) {
        add_rows(rf, upto - 9, upto);
        DLM_TEST_OK(dlm_runfile_flush(rf));
        CU_ASSERT(check_runfile(dir) == upto);
    }
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/run.h5.tmp", dir);
    CU_ASSERT(!file_exists(tmp)); /* renamed away */
    dlm_runfile_close(&rf);
    CU_ASSERT(rf == NULL);
    dlm_runfile_close(&rf); /* safe on NULL */
    remove_dir(dir);
}

/* Reopening with keep_through_step drops later rows (train and val), the
 * run continues from there, and a repeated step is refused. */
static void test_runfile_resume(void)
{
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/run.h5", dir);
    dlm_runfile *rf;
    DLM_TEST_OK(dlm_runfile_open(dir, NULL, INT64_MAX, &rf));
    add_rows(rf, 1, 30);
    DLM_TEST_OK(dlm_runfile_flush(rf));
    dlm_runfile_close(&rf);

    DLM_TEST_OK(dlm_runfile_open(dir, NULL, 12, &rf));
    int64_t nt, nv;
    dlm_runfile_counts(rf, &nt, &nv);
    CU_ASSERT(nt == 12 && nv == 2); /* val at 5 and 10 */
    /* nothing is written until the flush: the file still has 30 rows */
    CU_ASSERT(check_runfile(dir) == 30);
    dlm_train_row dup = train_row(12);
    CU_ASSERT(dlm_runfile_add_train(rf, &dup) == DLM_ERR_STATE);
    CU_ASSERT(strstr(dlm_error_text(), "row for step 12 after step 12") != NULL);
    dlm_error_clear();
    add_rows(rf, 13, 17);
    DLM_TEST_OK(dlm_runfile_flush(rf));
    CU_ASSERT(check_runfile(dir) == 17);
    dlm_runfile_close(&rf);

    /* keep everything, and -1 (a fresh run in an old folder) keeps nothing */
    DLM_TEST_OK(dlm_runfile_open(dir, NULL, INT64_MAX, &rf));
    dlm_runfile_counts(rf, &nt, &nv);
    CU_ASSERT(nt == 17 && nv == 3);
    dlm_runfile_close(&rf);
    DLM_TEST_OK(dlm_runfile_open(dir, NULL, -1, &rf));
    dlm_runfile_counts(rf, &nt, &nv);
    CU_ASSERT(nt == 0 && nv == 0);
    dlm_runfile_close(&rf);
    remove_dir(dir);
}

/* A root attribute read with plain HDF5: a variable-length UTF-8 string. */
static char *read_root_attr(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    CU_ASSERT_FATAL(a >= 0);
    hid_t t = H5Aget_type(a);
    CU_ASSERT(H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0);
    CU_ASSERT(H5Tget_cset(t) == H5T_CSET_UTF8);
    char *s = NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    CU_ASSERT(H5Aread(a, mt, &s) >= 0);
    char *copy = strdup(s ? s : "");
    H5free_memory(s);
    H5Tclose(mt);
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(f);
    return copy;
}

/* The root attributes as a reader sees them, a config larger than HDF5's
 * 64 KiB object-header limit, kept across a reopen without attrs; units on
 * the datasets. */
static void test_runfile_attrs(void)
{
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/run.h5", dir);
    size_t big = 100000;
    char *config = malloc(big + 1);
    for (size_t i = 0; i < big; i++) config[i] = (char)('a' + i % 26);
    config[big] = '\0';
    dlm_runfile_attrs at = {.config = config, .layout = "dp=2 tp=1 pp=1",
                            .code_revision = "abc123", .hosts = "node1,node2",
                            .start_time = "2025-06-01T12:00:00Z"};
    dlm_runfile *rf;
    DLM_TEST_OK(dlm_runfile_open(dir, &at, INT64_MAX, &rf));
    add_rows(rf, 1, 5);
    DLM_TEST_OK(dlm_runfile_flush(rf));
    dlm_runfile_close(&rf);
    const char *names[5] = {"config", "layout", "code_revision", "hosts", "start_time"};
    const char *want[5] = {config, at.layout, at.code_revision, at.hosts, at.start_time};
    for (int i = 0; i < 5; i++) {
        char *s = read_root_attr(path, names[i]);
        CU_ASSERT(strcmp(s, want[i]) == 0);
        free(s);
    }
    /* reopen: NULL fields keep the file's values, given ones replace them */
    dlm_runfile_attrs at2 = {.layout = "dp=1 tp=2 pp=1"};
    DLM_TEST_OK(dlm_runfile_open(dir, &at2, INT64_MAX, &rf));
    DLM_TEST_OK(dlm_runfile_flush(rf));
    dlm_runfile_close(&rf);
    char *s = read_root_attr(path, "layout");
    CU_ASSERT(strcmp(s, "dp=1 tp=2 pp=1") == 0);
    free(s);
    DLM_TEST_OK(dlm_runfile_read_attr(path, "config", &s));
    CU_ASSERT(strcmp(s, config) == 0);
    free(s);
    DLM_TEST_OK(dlm_runfile_read_attr(path, "hosts", &s));
    CU_ASSERT(strcmp(s, "node1,node2") == 0);
    free(s);
    /* the loss column says its unit and type */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/train/loss", H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    char *units;
    CU_ASSERT(dlm_h5_attr_read_str(d, "units", &units) >= 0);
    CU_ASSERT(strcmp(units, "nats/token") == 0);
    free(units);
    hid_t t = H5Dget_type(d);
    CU_ASSERT(H5Tequal(t, H5T_IEEE_F64LE) > 0);
    H5Tclose(t);
    H5Dclose(d);
    d = H5Dopen2(f, "/val/step", H5P_DEFAULT);
    t = H5Dget_type(d);
    CU_ASSERT(H5Tequal(t, H5T_STD_I64LE) > 0);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    free(config);
    remove_dir(dir);
}

/* ---- checkpoints ---------------------------------------------------------- */

typedef struct {
    dlm_param_info *t;
    int n;
    size_t floats;
    char shape[128];
    float *mem;
    float *a[4]; /* params, ema, adam_m, adam_v */
} ckpt_fixture;

static void fixture_make(ckpt_fixture *fx, uint32_t stream)
{
    DLM_TEST_OK(make_table(2, &fx->t, &fx->n, &fx->floats, fx->shape, sizeof fx->shape));
    fx->mem = calloc(4 * fx->floats, sizeof(float));
    CU_ASSERT_FATAL(fx->mem != NULL);
    for (int k = 0; k < 4; k++) {
        fx->a[k] = fx->mem + (size_t)k * fx->floats;
        dlm_test_fill(fx->a[k], (int64_t)fx->floats, 2.0f, stream + (uint32_t)k);
    }
}

static void fixture_free(ckpt_fixture *fx)
{
    free(fx->t);
    free(fx->mem);
}

static dlm_ckpt_state fixture_state(const ckpt_fixture *fx, int64_t step)
{
    dlm_ckpt_state st = {.step = step, .tokens = 1000 * step + 17, .adam_t = step + 3,
                         .loader_seed = UINT64_C(0xfedcba9876543210), .loader_step = 5 * (uint64_t)step,
                         .rng_seed = UINT64_C(0x8000000000000001), .config_text = RUN_CONFIG,
                         .shape = fx->shape};
    return st;
}

static void write_ckpt(const char *dir, const ckpt_fixture *fx, int64_t step, int keep)
{
    dlm_ckpt_state st = fixture_state(fx, step);
    DLM_TEST_OK(dlm_ckpt_write(dir, fx->t, fx->n, fx->a[0], fx->a[1], fx->a[2], fx->a[3], &st,
                               keep, NULL, 0));
}

/* Parameters, EMA, both moments and the state come back bit for bit, odd
 * values included (-0, infinities, a NaN payload, a subnormal); a run
 * saved without EMA loads without it and refuses a request for it. */
static void test_ckpt_roundtrip(void)
{
    char dir[64], path[4096];
    make_dir(dir);
    ckpt_fixture fx;
    fixture_make(&fx, 100);
    uint32_t nan_bits = 0x7fc01234;
    fx.a[0][0] = -0.0f;
    fx.a[1][1] = INFINITY;
    fx.a[2][2] = -INFINITY;
    memcpy(&fx.a[3][3], &nan_bits, 4);
    fx.a[0][fx.t[1].offset] = 1e-45f;
    dlm_ckpt_state st = fixture_state(&fx, 1234);
    DLM_TEST_OK(dlm_ckpt_write(dir, fx.t, fx.n, fx.a[0], fx.a[1], fx.a[2], fx.a[3], &st, 3, path,
                               sizeof path));
    CU_ASSERT(strstr(path, "/checkpoints/step-00001234.h5") != NULL);
    DLM_TEST_OK(dlm_ckpt_verify(path, NULL, 0));

    float *back = calloc(4 * fx.floats, sizeof(float));
    float *b[4] = {back, back + fx.floats, back + 2 * fx.floats, back + 3 * fx.floats};
    dlm_ckpt_state got;
    DLM_TEST_OK(dlm_ckpt_read(path, fx.t, fx.n, fx.shape, b[0], b[1], b[2], b[3], &got));
    int same = 1;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < fx.n; i++)
            same &= memcmp(b[k] + fx.t[i].offset, fx.a[k] + fx.t[i].offset,
                           fx.t[i].numel * sizeof(float)) == 0;
    CU_ASSERT(same);
    CU_ASSERT(got.step == st.step && got.tokens == st.tokens && got.adam_t == st.adam_t);
    CU_ASSERT(got.loader_seed == st.loader_seed && got.loader_step == st.loader_step);
    CU_ASSERT(got.rng_seed == st.rng_seed);
    CU_ASSERT(strcmp(got.config_text, RUN_CONFIG) == 0 && strcmp(got.shape, fx.shape) == 0);
    dlm_ckpt_state_free(&got);
    CU_ASSERT(got.config_text == NULL && got.shape == NULL);

    /* a 2-D tensor is stored with the table's shape */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char name[128];
    snprintf(name, sizeof name, "/adam_v/%s", fx.t[3].name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    CU_ASSERT(H5Sget_simple_extent_ndims(sp) == 2);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    CU_ASSERT(dims[0] == (hsize_t)fx.t[3].shape[0] && dims[1] == (hsize_t)fx.t[3].shape[1]);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);

    /* without EMA */
    st.step = 1300;
    DLM_TEST_OK(dlm_ckpt_write(dir, fx.t, fx.n, fx.a[0], NULL, fx.a[2], fx.a[3], &st, 3, path,
                               sizeof path));
    DLM_TEST_OK(dlm_ckpt_verify(path, NULL, 0));
    DLM_TEST_OK(dlm_ckpt_read(path, fx.t, fx.n, fx.shape, b[0], NULL, b[2], b[3], NULL));
    CU_ASSERT(dlm_ckpt_read(path, fx.t, fx.n, fx.shape, b[0], b[1], b[2], b[3], NULL) ==
              DLM_ERR_FORMAT);
    CU_ASSERT(strstr(dlm_error_text(), "group /ema is missing") != NULL);
    dlm_error_clear();
    free(back);
    fixture_free(&fx);
    remove_dir(dir);
}

/* keep_last = 2 leaves the two newest, and a leftover temporary file from
 * a killed writer is removed. */
static void test_ckpt_keep_last(void)
{
    char dir[64], path[4096];
    make_dir(dir);
    ckpt_fixture fx;
    fixture_make(&fx, 200);
    for (int64_t s = 100; s <= 400; s += 100) write_ckpt(dir, &fx, s, 2);
    char stale[4200];
    snprintf(stale, sizeof stale, "%s/checkpoints/step-00000450.h5.tmp", dir);
    FILE *fp = fopen(stale, "w");
    fputs("partial", fp);
    fclose(fp);
    write_ckpt(dir, &fx, 500, 2);
    for (int64_t s = 100; s <= 500; s += 100) {
        DLM_TEST_OK(dlm_ckpt_path(dir, s, path, sizeof path));
        CU_ASSERT(file_exists(path) == (s >= 400));
    }
    CU_ASSERT(!file_exists(stale));
    /* 0 keeps all */
    write_ckpt(dir, &fx, 600, 0);
    DLM_TEST_OK(dlm_ckpt_path(dir, 400, path, sizeof path));
    CU_ASSERT(file_exists(path));
    fixture_free(&fx);
    remove_dir(dir);
}

/* Flips one byte of a dataset's data in place (found with H5Dget_offset). */
static void flip_byte(const char *path, const char *dataset, size_t byte)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    haddr_t off = H5Dget_offset(d);
    CU_ASSERT_FATAL(off != HADDR_UNDEF);
    H5Dclose(d);
    H5Fclose(f);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    unsigned char c;
    CU_ASSERT_FATAL(pread(fd, &c, 1, (off_t)(off + byte)) == 1);
    c ^= 0x10;
    CU_ASSERT_FATAL(pwrite(fd, &c, 1, (off_t)(off + byte)) == 1);
    close(fd);
}

/* One flipped bit in one tensor's moments fails verification and loading,
 * naming the dataset; a file without the completion attribute fails too. */
static void test_ckpt_corrupt(void)
{
    char dir[64], path[4096], why[1024], ds[128];
    make_dir(dir);
    ckpt_fixture fx;
    fixture_make(&fx, 300);
    write_ckpt(dir, &fx, 10, 0);
    float *ema = malloc(fx.floats * sizeof *ema);
    memcpy(ema, fx.a[1], fx.floats * sizeof *ema);
    DLM_TEST_OK(dlm_ckpt_path(dir, 10, path, sizeof path));
    DLM_TEST_OK(dlm_ckpt_verify(path, why, sizeof why));
    CU_ASSERT(why[0] == '\0');
    snprintf(ds, sizeof ds, "/adam_m/%s", fx.t[5].name); /* (C, C): 16 KiB */
    flip_byte(path, ds, 4 * 100 + 1);
    CU_ASSERT(dlm_ckpt_verify(path, why, sizeof why) == DLM_ERR_FORMAT);
    if (!strstr(why, "checksum mismatch") || !strstr(why, ds)) printf("\n  why: %s\n", why);
    CU_ASSERT(strstr(why, "checksum mismatch") != NULL && strstr(why, ds) != NULL);
    CU_ASSERT(strstr(dlm_error_text(), ds) != NULL);
    dlm_error_clear();
    CU_ASSERT(dlm_ckpt_read(path, fx.t, fx.n, fx.shape, fx.a[0], fx.a[1], fx.a[2], fx.a[3],
                            NULL) == DLM_ERR_FORMAT);
    CU_ASSERT(strstr(dlm_error_text(), ds) != NULL);
    dlm_error_clear();
    /* a reader that skips the moments (evaluation) never reads the bad byte:
     * it loads the weights it asked for, and leaves the rest untouched */
    for (int k = 0; k < 4; k++) memset(fx.a[k], 0, fx.floats * sizeof(float));
    DLM_TEST_OK(dlm_ckpt_read(path, fx.t, fx.n, fx.shape, NULL, fx.a[1], NULL, NULL, NULL));
    int ema_ok = 1, rest_zero = 1;
    for (int i = 0; i < fx.n; i++)
        for (size_t j = 0; j < fx.t[i].numel; j++) {
            size_t o = fx.t[i].offset + j;
            ema_ok &= fx.a[1][o] == ema[o];
            rest_zero &= fx.a[0][o] == 0.0f && fx.a[2][o] == 0.0f && fx.a[3][o] == 0.0f;
        }
    CU_ASSERT(ema_ok && rest_zero);
    free(ema);
    CU_ASSERT(dlm_ckpt_read(path, fx.t, fx.n, fx.shape, NULL, NULL, NULL, NULL, NULL) ==
              DLM_ERR_ARG); /* nothing to read */
    dlm_error_clear();

    /* incomplete: the attribute written last is absent */
    write_ckpt(dir, &fx, 20, 0);
    DLM_TEST_OK(dlm_ckpt_path(dir, 20, path, sizeof path));
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    CU_ASSERT(H5Adelete(f, "complete") >= 0);
    H5Fclose(f);
    CU_ASSERT(dlm_ckpt_verify(path, why, sizeof why) == DLM_ERR_FORMAT);
    CU_ASSERT(strstr(why, "no completion attribute") != NULL);
    dlm_error_clear();
    CU_ASSERT(dlm_ckpt_read(path, fx.t, fx.n, NULL, fx.a[0], fx.a[1], fx.a[2], fx.a[3], NULL) ==
              DLM_ERR_FORMAT);
    dlm_error_clear();

    /* a truncated file and a missing one */
    write_ckpt(dir, &fx, 30, 0);
    DLM_TEST_OK(dlm_ckpt_path(dir, 30, path, sizeof path));
    CU_ASSERT(truncate(path, 5000) == 0);
    CU_ASSERT(dlm_ckpt_verify(path, why, sizeof why) == DLM_ERR_FORMAT);
    dlm_error_clear();
    DLM_TEST_OK(dlm_ckpt_path(dir, 99, path, sizeof path));
    CU_ASSERT(dlm_ckpt_verify(path, why, sizeof why) == DLM_ERR_IO);
    dlm_error_clear();
    fixture_free(&fx);
    remove_dir(dir);
}

/* find_latest passes over a corrupt newest checkpoint (and a leftover
 * .tmp newer still), warns naming it, and returns the previous one. */
static void test_ckpt_find_latest(void)
{
    char dir[64], path[4096], bad[4096], ds[128];
    make_dir(dir);
    int found = 1;
    DLM_TEST_OK(dlm_ckpt_find_latest(dir, path, sizeof path, &found)); /* no checkpoints/ yet */
    CU_ASSERT(found == 0);
    ckpt_fixture fx;
    fixture_make(&fx, 400);
    write_ckpt(dir, &fx, 10, 0);
    write_ckpt(dir, &fx, 20, 0);
    DLM_TEST_OK(dlm_ckpt_path(dir, 20, bad, sizeof bad));
    snprintf(ds, sizeof ds, "/params/%s", fx.t[0].name);
    flip_byte(bad, ds, 3);
    char stale[4200];
    snprintf(stale, sizeof stale, "%s/checkpoints/step-00000030.h5.tmp", dir);
    FILE *fp = fopen(stale, "w");
    fputs("partial", fp);
    fclose(fp);

    /* capture the warning on stderr */
    char log[128];
    snprintf(log, sizeof log, "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    dup2(fd, 2);
    close(fd);
    dlm_status st = dlm_ckpt_find_latest(dir, path, sizeof path, &found);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    DLM_TEST_OK(st);
    CU_ASSERT(found == 1);
    CU_ASSERT(strstr(path, "step-00000010.h5") != NULL);
    char text[4096] = "";
    fp = fopen(log, "r");
    size_t got = fread(text, 1, sizeof text - 1, fp);
    text[got] = '\0';
    fclose(fp);
    CU_ASSERT(strstr(text, bad) != NULL && strstr(text, ds) != NULL);
    CU_ASSERT(strstr(text, "step-00000030") == NULL);
    fixture_free(&fx);
    remove_dir(dir);
}

/* Loading refuses another model shape with both shapes in the message, a
 * missing tensor, a tensor of another shape, and a tensor the model lacks,
 * each named. */
static void test_ckpt_wrong_model(void)
{
    char dir[64], path[4096];
    make_dir(dir);
    ckpt_fixture fx;
    fixture_make(&fx, 500);
    write_ckpt(dir, &fx, 7, 0);
    DLM_TEST_OK(dlm_ckpt_path(dir, 7, path, sizeof path));
    float **a = fx.a;

    const char *other = "L=3 d=64 H=4 T=64 V=320 tied=0";
    CU_ASSERT(dlm_ckpt_read(path, fx.t, fx.n, other, a[0], a[1], a[2], a[3], NULL) ==
              DLM_ERR_FORMAT);
    CU_ASSERT(strstr(dlm_error_text(), other) && strstr(dlm_error_text(), fx.shape));
    dlm_error_clear();

    /* a model with one more layer: its tensors are missing */
    dlm_param_info *t3;
    int n3;
    size_t f3;
    char shape3[128];
    DLM_TEST_OK(make_table(3, &t3, &n3, &f3, shape3, sizeof shape3));
    float *big = calloc(4 * f3, sizeof(float));
    CU_ASSERT(dlm_ckpt_read(path, t3, n3, NULL, big, NULL, big + f3, big + 2 * f3, NULL) ==
              DLM_ERR_FORMAT);
    CU_ASSERT(strstr(dlm_error_text(), "tensor blocks.2.ln1.weight (dataset /params/blocks.2.ln1.weight) is missing") != NULL);
    dlm_error_clear();
    free(big);
    free(t3);

    /* one tensor of another shape: name and both shapes */
    dlm_param_info *t = malloc((size_t)fx.n * sizeof *t);
    memcpy(t, fx.t, (size_t)fx.n * sizeof *t);
    int w = 3; /* blocks.0.attn.qkv.weight (192, 64) */
    CU_ASSERT_FATAL(t[w].ndim == 2);
    int64_t r = t[w].shape[0];
    t[w].shape[0] = t[w].shape[1];
    t[w].shape[1] = r;
    CU_ASSERT(dlm_ckpt_read(path, t, fx.n, NULL, a[0], a[1], a[2], a[3], NULL) == DLM_ERR_FORMAT);
    char want[256];
    snprintf(want, sizeof want, "dataset /params/%s has shape (%lld, %lld) but the model's tensor is (%lld, %lld)",
             t[w].name, (long long)r, (long long)t[w].shape[0], (long long)t[w].shape[0], (long long)r);
    CU_ASSERT(strstr(dlm_error_text(), want) != NULL);
    dlm_error_clear();

    /* the checkpoint holds a tensor the table lacks (lm_head, last) */
    CU_ASSERT(dlm_ckpt_read(path, fx.t, fx.n - 1, NULL, a[0], a[1], a[2], a[3], NULL) ==
              DLM_ERR_FORMAT);
    snprintf(want, sizeof want, "/params/%s", fx.t[fx.n - 1].name);
    CU_ASSERT(strstr(dlm_error_text(), want) != NULL);
    dlm_error_clear();
    free(t);
    fixture_free(&fx);
    remove_dir(dir);
}

/* ---- kill safety ---------------------------------------------------------- */

/* Killed inside the third flush (after /train, before /val): run.h5 holds
 * exactly the rows of the second; a rerun starts it afresh (no checkpoint). */
static void test_kill_runfile_write(void)
{
    char dir[64], tmp[128];
    make_dir(dir);
    child c;
    spawn_writer(&c, dir, 20, 2, 1000, 2, "runfile.write:3");
    finish_child(&c);
    CU_ASSERT(killed_by_sigkill(&c));
    CU_ASSERT(last_report(&c, "flush") == 4);
    CU_ASSERT(check_runfile(dir) == 4);
    snprintf(tmp, sizeof tmp, "%s/run.h5.tmp", dir);
    CU_ASSERT(file_exists(tmp)); /* the half-written one */
    spawn_writer(&c, dir, 20, 2, 1000, 2, NULL);
    finish_child(&c);
    CU_ASSERT(exited_ok(&c));
    CU_ASSERT(check_runfile(dir) == 20);
    remove_dir(dir);
}

/* Killed after fsync of the complete run.h5.tmp, before the rename. */
static void test_kill_runfile_rename(void)
{
    char dir[64], tmp[128];
    make_dir(dir);
    child c;
    spawn_writer(&c, dir, 20, 2, 1000, 2, "runfile.rename:3");
    finish_child(&c);
    CU_ASSERT(killed_by_sigkill(&c));
    CU_ASSERT(check_runfile(dir) == 4);
    snprintf(tmp, sizeof tmp, "%s/run.h5.tmp", dir);
    int64_t n = 0;
    DLM_TEST_OK(dlm_runfile_read(tmp, NULL, NULL, NULL, NULL));
    dlm_train_row *rows;
    DLM_TEST_OK(dlm_runfile_read(tmp, &rows, &n, NULL, NULL));
    CU_ASSERT(n == 6); /* the complete next flush, never renamed */
    free(rows);
    remove_dir(dir);
}

/* Killed inside (or at the rename of) the second checkpoint: the first
 * still verifies and is the one found, the .tmp is ignored, and a rerun
 * resumes from it to the end with no missing or repeated step. */
static void kill_ckpt(const char *fault, int tmp_verifies)
{
    char dir[64], tmp[4200], path[4096];
    make_dir(dir);
    child c;
    spawn_writer(&c, dir, 12, 2, 4, 2, fault);
    finish_child(&c);
    CU_ASSERT(killed_by_sigkill(&c));
    CU_ASSERT(last_report(&c, "ckpt") == 4);
    CU_ASSERT(last_report(&c, "flush") == 8); /* run.h5 is flushed before each checkpoint */
    CU_ASSERT(check_runfile(dir) == 8);
    DLM_TEST_OK(dlm_ckpt_path(dir, 8, path, sizeof path));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CU_ASSERT(file_exists(tmp) && !file_exists(path));
    char why[1024];
    CU_ASSERT((dlm_ckpt_verify(tmp, why, sizeof why) == DLM_OK) == tmp_verifies);
    dlm_error_clear();
    CU_ASSERT(check_checkpoints(dir) == 4);

    spawn_writer(&c, dir, 12, 2, 4, 2, NULL);
    finish_child(&c);
    CU_ASSERT(exited_ok(&c));
    CU_ASSERT(check_runfile(dir) == 12);
    CU_ASSERT(check_checkpoints(dir) == 12);
    CU_ASSERT(!file_exists(tmp));
    DLM_TEST_OK(dlm_ckpt_path(dir, 4, path, sizeof path));
    CU_ASSERT(!file_exists(path)); /* keep_last = 2: 8 and 12 remain */
    remove_dir(dir);
}

static void test_kill_ckpt_write(void) { kill_ckpt("ckpt.write:2", 0); }
static void test_kill_ckpt_rename(void) { kill_ckpt("ckpt.rename:2", 1); }

/* Ten SIGKILLs at seeded random delays (0-200 ms after the child has
 * resumed) while it loops (flush every 2 steps, checkpoint every 6, keep
 * 2), each run resuming from the last: after each, run.h5 opens with
 * steps 1..n exactly, n no less than the resume step or the last flush the
 * child reported and at most one interval beyond that flush, every
 * checkpoint verifies, and the one found is no older than the last
 * reported and no newer than run.h5. */
static void test_kill_random(void)
{
    char dir[64];
    make_dir(dir);
    child c;
    spawn_writer(&c, dir, 6, 2, 6, 2, NULL); /* a run.h5 and a checkpoint to start from */
    finish_child(&c);
    CU_ASSERT_FATAL(exited_ok(&c));
    int64_t progress = 6;
    for (uint32_t k = 0; k < 10; k++) {
        double u = dlm_rng_uniform(2024, k, 0, 0, DLM_RNG_TEST);
        long ms = (long)(200.0 * u);
        spawn_writer(&c, dir, 100000000, 2, 6, 2, NULL);
        CU_ASSERT(read_child(&c, "start")); /* resumed: from here on it writes */
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        kill(c.pid, SIGKILL);
        finish_child(&c);
        CU_ASSERT(killed_by_sigkill(&c));
        int64_t n = check_runfile(dir), flushed = last_report(&c, "flush");
        int64_t ck = check_checkpoints(dir), ck_reported = last_report(&c, "ckpt");
        CU_ASSERT(n >= last_report(&c, "start"));
        if (flushed >= 0) {
            CU_ASSERT(n >= flushed && n <= flushed + 2);
        }
        CU_ASSERT(ck >= 0 && ck >= ck_reported && ck <= n);
        if (n > progress) progress = n;
        printf("%s%" PRId64 "/%" PRId64, k ? " " : "\n    kills at ms/rows/ckpt: ", (int64_t)ms, n);
        printf("/%" PRId64, ck);
    }
    printf("\n    ");
    /* the writer progressed across the kills, and a last run completes */
    CU_ASSERT(progress > 6);
    spawn_writer(&c, dir, progress + 10, 2, 6, 2, NULL);
    finish_child(&c);
    CU_ASSERT(exited_ok(&c));
    CU_ASSERT(check_runfile(dir) == progress + 10);
    remove_dir(dir);
}

/* A reader holds run.h5 open (default access: HDF5 file locking on, as
 * h5py opens it) while a writer process flushes 30 times: the writer
 * never fails, the held handle keeps reading the rows it opened, and
 * fresh opens during the run always succeed. */
static void test_reader_holds_file(void)
{
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/run.h5", dir);
    dlm_runfile *rf;
    DLM_TEST_OK(dlm_runfile_open(dir, NULL, INT64_MAX, &rf));
    add_rows(rf, 1, 10);
    DLM_TEST_OK(dlm_runfile_flush(rf));
    dlm_runfile_close(&rf);

    hid_t held = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(held >= 0);
    child c;
    spawn_writer(&c, dir, 60, 2, 1000, 2, NULL);
    int fresh_opens = 0, alive = 1;
    while (alive) {
        int status;
        pid_t r = waitpid(c.pid, &status, WNOHANG);
        alive = r == 0;
        /* the held file: still 10 rows with their values */
        hid_t d = H5Dopen2(held, "/train/loss", H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        hsize_t dim = 0;
        H5Sget_simple_extent_dims(sp, &dim, NULL);
        double loss[10] = {0};
        CU_ASSERT(dim == 10 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, loss) >= 0);
        CU_ASSERT(loss[9] == train_row(10).loss);
        H5Sclose(sp);
        H5Dclose(d);
        if (check_runfile(dir) >= 0) fresh_opens++;
        if (!alive) {
            c.status = status;
            c.pid = -1;
        }
    }
    read_child(&c, NULL); /* reaped above: what it printed */
    close(c.fd);
    CU_ASSERT(exited_ok(&c));
    CU_ASSERT(strstr(c.out, "flush 60") != NULL);
    CU_ASSERT(fresh_opens >= 1);
    CU_ASSERT(check_runfile(dir) == 60);
    H5Fclose(held);
    remove_dir(dir);
}

static dlm_status open_dataset(hid_t f, const char *path, const char *name)
{
    hid_t d;
    DLM_H5(d = H5Dopen2(f, name, H5P_DEFAULT), "%s: opening dataset %s", path, name);
    H5Dclose(d);
    return DLM_OK;
}

/* An HDF5 failure behind DLM_H5 climbs as DLM_ERR_HDF5 with the caller's
 * sentence and HDF5's own innermost reason. */
static void test_h5_errors_carry_reason(void)
{
    char dir[64], path[4096];
    make_dir(dir);
    ckpt_fixture fx;
    fixture_make(&fx, 7);
    write_ckpt(dir, &fx, 1, 0);
    DLM_TEST_OK(dlm_ckpt_path(dir, 1, path, sizeof path));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    char wte[64];
    snprintf(wte, sizeof wte, "/params/%s", fx.t[0].name);
    DLM_TEST_OK(open_dataset(f, path, wte));
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    CU_ASSERT(open_dataset(f, path, "/params/no_such_tensor") == DLM_ERR_HDF5);
    dlm_h5_quiet_end(&q);
    const char *t = dlm_error_text();
    CU_ASSERT(strstr(t, "opening dataset /params/no_such_tensor") != NULL);
    CU_ASSERT(strstr(t, "HDF5") != NULL && strstr(t, "open_dataset") != NULL);
    if (!strstr(t, "HDF5")) printf("\n  %s", t);
    dlm_error_clear();
    H5Fclose(f);
    fixture_free(&fx);
    remove_dir(dir);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--writer")) return writer_main(argc - 1, argv + 1);
    static const dlm_test_case runfile[] = {{"round trip over flushes", test_runfile_roundtrip},
                                            {"resume drops later rows", test_runfile_resume},
                                            {"root attributes", test_runfile_attrs},
                                            {NULL, NULL}};
    static const dlm_test_case checkpoint[] = {{"round trip bit-exact", test_ckpt_roundtrip},
                                               {"keep last", test_ckpt_keep_last},
                                               {"corrupt and incomplete", test_ckpt_corrupt},
                                               {"find latest skips corrupt", test_ckpt_find_latest},
                                               {"wrong model refused", test_ckpt_wrong_model},
                                               {"HDF5 errors carry their reason", test_h5_errors_carry_reason},
                                               {NULL, NULL}};
    static const dlm_test_case kill[] = {{"killed in runfile.write", test_kill_runfile_write},
                                         {"killed at runfile.rename", test_kill_runfile_rename},
                                         {"killed in ckpt.write", test_kill_ckpt_write},
                                         {"killed at ckpt.rename", test_kill_ckpt_rename},
                                         {"ten random kills", test_kill_random},
                                         {"reader holds run.h5", test_reader_holds_file},
                                         {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"runfile", runfile},
                                            {"checkpoint", checkpoint},
                                            {"kill", kill},
                                            {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
