/* The runs of a plan on disk, and the local runner (see runs.h). */
#define _GNU_SOURCE
#include "sweep/runs.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"
#include "io/h5.h"
#include "io/runfile.h"

extern char **environ;

const char *const dlm_run_state_names[] = {"missing", "unfinished", "failed", "done", NULL};

static herr_t attr_f64(hid_t g, const char *name, double *v)
{
    *v = NAN;
    hid_t a = H5Aopen(g, name, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t e = H5Aread(a, H5T_NATIVE_DOUBLE, v);
    H5Aclose(a);
    return e;
}

typedef struct {
    int64_t step;
    const char *weights;
    dlm_run_state *s;
    int found;
} eval_scan;

/* One evaluation group: done when it is of the final step with the
 * sweep's weights (a sweep never mixes EMA and raw numbers). */
static herr_t eval_group(hid_t root, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    eval_scan *e = arg;
    hid_t g = H5Gopen2(root, name, H5P_DEFAULT);
    if (g < 0) return 0;
    int64_t step = -1;
    char *w = NULL, *est = NULL;
    if (dlm_h5_attr_read_i64(g, "step", &step) >= 0 && step == e->step &&
        dlm_h5_attr_read_str(g, "weights", &w) >= 0 && dlm_h5_attr_read_str(g, "estimator", &est) >= 0 &&
        strcmp(w, e->weights) == 0) {
        {
            dlm_run_state *s = e->s;
            attr_f64(g, "estimate_nats_per_token", &s->estimate);
            attr_f64(g, "stderr_nats_per_token", &s->stderr_);
            attr_f64(g, "bits_per_byte", &s->bits_per_byte);
            attr_f64(g, "stderr_bits_per_byte", &s->stderr_bpb);
            snprintf(s->estimator, sizeof s->estimator, "%s", est);
            snprintf(s->weights, sizeof s->weights, "%s", w);
            e->found = 1;
        }
    }
    free(w), free(est);
    H5Gclose(g);
    return e->found; /* the first match ends the scan */
}

void dlm_sweep_run_state(const dlm_sweep_plan *p, int i, dlm_run_state *s)
{
    const dlm_sweep_run *r = &p->runs[i];
    *s = (dlm_run_state){.kind = DLM_RUN_MISSING, .last_step = -1, .train_loss = NAN, .val_loss = NAN,
                         .estimate = NAN, .stderr_ = NAN, .bits_per_byte = NAN, .stderr_bpb = NAN};
    char dir[DLM_CONFIG_PATH_MAX + 200], path[DLM_CONFIG_PATH_MAX + 300];
    dlm_sweep_run_dir(p, i, dir, sizeof dir);
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(s->detail, sizeof s->detail, "not started (no run folder)");
        return;
    }
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    snprintf(path, sizeof path, "%s/run.h5", dir);
    dlm_train_row *tr = NULL;
    dlm_val_row *vr = NULL;
    int64_t nt = 0, nv = 0;
    if (stat(path, &st) == 0) {
        if (dlm_runfile_read(path, &tr, &nt, &vr, &nv) == DLM_OK) {
            if (nt > 0) s->last_step = tr[nt - 1].step, s->train_loss = tr[nt - 1].loss;
            if (nv > 0) s->val_loss = vr[nv - 1].loss;
        } else {
            dlm_error_clear();
        }
        free(tr), free(vr);
    }
    snprintf(path, sizeof path, "%s/eval.h5", dir);
    const char *weights = dlm_eval_weight_names[p->cfg.eval.weights];
    eval_scan e = {.step = r->steps, .weights = weights, .s = s};
    int has_eval = stat(path, &st) == 0;
    hid_t f = has_eval ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f >= 0) {
        H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, eval_group, &e);
        H5Fclose(f);
    }
    dlm_h5_quiet_end(&q);
    if (e.found) {
        s->kind = DLM_RUN_DONE;
        return;
    }
    snprintf(path, sizeof path, "%s/failed", dir);
    char *why = NULL;
    size_t len;
    if (dlm_read_file(path, &why, &len) == DLM_OK) {
        while (len > 0 && (why[len - 1] == '\n' || why[len - 1] == ' ')) why[--len] = '\0';
        s->kind = DLM_RUN_FAILED;
        snprintf(s->detail, sizeof s->detail, "%s", why);
        free(why);
        return;
    }
    dlm_error_clear();
    if (has_eval && (s->last_step < 0 || s->last_step >= r->steps)) {
        s->kind = DLM_RUN_UNFINISHED;
        snprintf(s->detail, sizeof s->detail, "eval.h5 holds no evaluation of its final step %lld with %s weights",
                 (long long)r->steps, weights);
    } else if (s->last_step >= 0) {
        s->kind = DLM_RUN_UNFINISHED;
        if (s->last_step < r->steps)
            snprintf(s->detail, sizeof s->detail, "trained to step %lld of %lld", (long long)s->last_step,
                     (long long)r->steps);
        else
            snprintf(s->detail, sizeof s->detail, "trained, not evaluated (no evaluation of step %lld in eval.h5)",
                     (long long)r->steps);
    } else {
        snprintf(s->detail, sizeof s->detail, "no training step logged yet");
    }
}

static dlm_status write_whole(const char *path, const char *text)
{
    char tmp[DLM_CONFIG_PATH_MAX + 400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    DLM_CHECK(f != NULL, DLM_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    DLM_CHECK(!bad, DLM_ERR_IO, "writing %s: %s", tmp, strerror(errno));
    DLM_CHECK(rename(tmp, path) == 0, DLM_ERR_IO, "renaming %s to %s: %s", tmp, path, strerror(errno));
    return DLM_OK;
}

dlm_status dlm_sweep_materialize(const dlm_sweep_plan *p, int i)
{
    char dir[DLM_CONFIG_PATH_MAX + 200], path[DLM_CONFIG_PATH_MAX + 300];
    dlm_sweep_run_dir(p, i, dir, sizeof dir);
    DLM_CALL(dlm_mkdir_p(dir));
    dlm_run_config rc;
    DLM_CALL(dlm_sweep_run_config(p, i, &rc));
    char *text = NULL;
    DLM_CALL(dlm_run_config_to_text(&rc, &text));
    snprintf(path, sizeof path, "%s/run.cfg", dir);
    char *old = NULL;
    size_t len;
    dlm_status st = DLM_OK;
    if (access(path, F_OK) == 0) {
        st = dlm_read_file(path, &old, &len);
        if (st == DLM_OK && strcmp(old, text) != 0)
            st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                "%s holds another run config than the sweep file now plans for %s (the "
                                "sweep file changed): give the sweep another sweep.dir, or remove %s",
                                path, p->runs[i].name, dir);
    } else {
        st = write_whole(path, text);
    }
    free(old);
    free(text);
    return st;
}

int dlm_sweep_eval_args(const dlm_sweep_plan *p, int i, char buf[DLM_SWEEP_EVAL_ARGS][DLM_CONFIG_PATH_MAX],
                        const char **argv)
{
    const dlm_sweep_config *c = &p->cfg;
    const dlm_sweep_run *r = &p->runs[i];
    int n = 0;
#define ARG(...) (snprintf(buf[n], DLM_CONFIG_PATH_MAX, __VA_ARGS__), argv[n] = buf[n], n++)
    ARG("--estimator"), ARG("exact-k");
    ARG("--K"), ARG("%d", c->eval.K);
    ARG("--chunks"), ARG("%d", c->eval.chunks);
    ARG("--weights"), ARG("%s", dlm_eval_weight_names[c->eval.weights]);
    if (c->eval.data[0]) ARG("--data"), ARG("%s", c->eval.data);
    if (r->tp > 1) ARG("--tp"), ARG("%d", r->tp);
    if (r->pp > 1) ARG("--pp"), ARG("%d", r->pp);
#undef ARG
    argv[n] = NULL;
    return r->tp * r->pp;
}

/* ---- the local runner ---- */

/* Runs argv with stdout and stderr appended to log; its exit status, or
 * 128 + the signal. */
static int run_child(const char *const *argv, const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        FILE *f = fopen(log, "a");
        if (f) fprintf(f, "dlm-sweep: cannot start %s: %s\n", argv[0], strerror(e)), fclose(f);
        return 127;
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return 127;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* One run, start to end, in a child process of the runner: train, then
 * evaluate; a failure is written to <run>/failed. Exit 0 when done. */
static int one_run(const dlm_sweep_plan *p, int i, const dlm_sweep_local_options *o)
{
    const dlm_sweep_run *r = &p->runs[i];
    char dir[DLM_CONFIG_PATH_MAX + 200], log[DLM_CONFIG_PATH_MAX + 300], cfg[DLM_CONFIG_PATH_MAX + 300];
    char failed[DLM_CONFIG_PATH_MAX + 300], train[PATH_MAX], eval[PATH_MAX], threads[16], ranks[16];
    dlm_sweep_run_dir(p, i, dir, sizeof dir);
    snprintf(log, sizeof log, "%s/run.log", dir);
    snprintf(cfg, sizeof cfg, "%s/run.cfg", dir);
    snprintf(failed, sizeof failed, "%s/failed", dir);
    snprintf(train, sizeof train, "%s/dlm-train", o->bin_dir);
    snprintf(eval, sizeof eval, "%s/dlm-eval", o->bin_dir);
    snprintf(threads, sizeof threads, "%d", o->threads);
    snprintf(ranks, sizeof ranks, "%d", r->dp * r->tp * r->pp);
    /* one process at a time per run folder: a second runner (or a Slurm
     * task) on the same run gives up at once; the lock goes with the process */
    char lock[DLM_CONFIG_PATH_MAX + 300];
    snprintf(lock, sizeof lock, "%s/lock", dir);
    int fd = open(lock, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        FILE *f = fopen(log, "a");
        if (f) fprintf(f, "dlm-sweep: %s is held by another process running this run; left alone\n", lock), fclose(f);
        return 2;
    }
    remove(failed);

    char launcher[512];
    const char *argv[64];
    int n = 0;
    snprintf(launcher, sizeof launcher, "%s", o->mpiexec);
    /* every run under the launcher: a singleton MPI process would start its
     * own runtime inside this one's */
    for (char *save = NULL, *w = strtok_r(launcher, " ", &save); w && n < 40; w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    argv[n++] = "-n", argv[n++] = ranks;
    int pre = n;
    argv[n++] = train, argv[n++] = cfg, argv[n++] = "--threads", argv[n++] = threads, argv[n] = NULL;
    int rc = run_child(argv, log);
    const char *stage = "dlm-train";
    if (rc == 0) {
        char ebuf[DLM_SWEEP_EVAL_ARGS][DLM_CONFIG_PATH_MAX], out[DLM_CONFIG_PATH_MAX + 300], eranks[16];
        const char *eargs[DLM_SWEEP_EVAL_ARGS + 1];
        snprintf(eranks, sizeof eranks, "%d", dlm_sweep_eval_args(p, i, ebuf, eargs));
        snprintf(out, sizeof out, "%s/eval.h5", dir);
        argv[pre - 1] = eranks; /* -n: the evaluation's ranks (tp x pp) */
        n = pre;
        argv[n++] = eval, argv[n++] = dir, argv[n++] = "--threads", argv[n++] = threads;
        argv[n++] = "--out", argv[n++] = out;
        for (int k = 0; eargs[k]; k++) argv[n++] = eargs[k];
        argv[n] = NULL;
        rc = run_child(argv, log);
        stage = "dlm-eval";
    }
    if (rc != 0) {
        FILE *f = fopen(failed, "w");
        if (f) fprintf(f, "%s exited with %d (see %s)\n", stage, rc, log), fclose(f);
    }
    return rc == 0 ? 0 : 1;
}

dlm_status dlm_sweep_run_local(const dlm_sweep_plan *p, const dlm_sweep_local_options *o)
{
    DLM_CHECK(o->jobs >= 1, DLM_ERR_ARG, "--jobs %d: at least one run at a time", o->jobs);
    int todo = 0, done = 0, failed = 0, running = 0;
    int *slot_run = calloc((size_t)o->jobs, sizeof *slot_run);
    pid_t *slot_pid = calloc((size_t)o->jobs, sizeof *slot_pid);
    if (!slot_run || !slot_pid) {
        free(slot_run), free(slot_pid);
        DLM_CHECK(0, DLM_ERR_NOMEM, "runner slots for --jobs %d", o->jobs);
    }
    dlm_status st = DLM_OK;
    for (int i = 0; i < p->n; i++) {
        if (o->only >= 0 && i != o->only) continue;
        dlm_run_state s;
        dlm_sweep_run_state(p, i, &s);
        if (s.kind == DLM_RUN_DONE) {
            done++;
            continue;
        }
        todo++;
    }
    DLM_INFO("sweep %s: %d runs, %d done, %d to run, %d at a time", p->cfg.sweep.name, p->n, done, todo, o->jobs);
    int started = 0, finished = 0;
    for (int i = 0; i < p->n || running > 0;) {
        if (i < p->n && running < o->jobs) {
            dlm_run_state s;
            dlm_sweep_run_state(p, i, &s);
            if ((o->only >= 0 && i != o->only) || s.kind == DLM_RUN_DONE) {
                i++;
                continue;
            }
            if ((st = dlm_sweep_materialize(p, i)) != DLM_OK) break;
            fflush(NULL);
            pid_t pid = fork();
            if (pid < 0) {
                st = dlm_error_push(DLM_ERR_IO, __FILE__, __LINE__, __func__, "fork: %s", strerror(errno));
                break;
            }
            if (pid == 0) _exit(one_run(p, i, o));
            int k = 0;
            while (slot_pid[k]) k++;
            slot_pid[k] = pid, slot_run[k] = i;
            running++, started++;
            DLM_INFO("[%d/%d] start %s (%s, %lld steps, %d rank%s, est. %.0f s)", started, todo, p->runs[i].name,
                     p->cfg.sweep.objectives[p->runs[i].objective], (long long)p->runs[i].steps,
                     p->runs[i].dp * p->runs[i].tp * p->runs[i].pp,
                     p->runs[i].dp * p->runs[i].tp * p->runs[i].pp > 1 ? "s" : "", p->runs[i].est_seconds);
            i++;
            continue;
        }
        int ws;
        pid_t pid = wait(&ws);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        int k = 0;
        while (k < o->jobs && slot_pid[k] != pid) k++;
        if (k == o->jobs) continue;
        slot_pid[k] = 0;
        running--, finished++;
        dlm_run_state s;
        dlm_sweep_run_state(p, slot_run[k], &s);
        if (WIFEXITED(ws) && WEXITSTATUS(ws) == 2) {
            failed++;
            DLM_WARN("[%d/%d] left alone %s: another process holds its lock (trains it now)", finished, todo,
                     p->runs[slot_run[k]].name);
        } else if (s.kind == DLM_RUN_DONE)
            DLM_INFO("[%d/%d] done %s: %.4f +- %.4f nats/token (%s)", finished, todo, p->runs[slot_run[k]].name,
                     s.estimate, s.stderr_, s.estimator);
        else {
            failed++;
            DLM_WARN("[%d/%d] %s %s: %s", finished, todo, dlm_run_state_names[s.kind], p->runs[slot_run[k]].name,
                     s.detail);
        }
    }
    while (running > 0) { /* after an error: let the started runs finish */
        if (wait(NULL) >= 0) running--;
        else if (errno != EINTR) break;
    }
    free(slot_run), free(slot_pid);
    DLM_CALL(st);
    DLM_CHECK(failed == 0, DLM_ERR_IO, "sweep %s: %d of %d runs did not finish (dlm-sweep status lists them; "
              "run again to retry them)", p->cfg.sweep.name, failed, todo);
    return DLM_OK;
}
