/* Submitting a sweep's runs as Slurm job arrays (see submit.h). */
#define _GNU_SOURCE
#include "sweep/submit.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "sweep/runs.h"

extern char **environ;

#define MAX_GROUPS 64
#define MAX_ARGS 96

typedef struct {
    int dp, tp, pp, minutes;
    int n, *runs;
} group;

static int time_class(double seconds)
{
    int m = 5;
    while (m * 60.0 < seconds) m *= 2;
    return m;
}

/* sbatch's --time: minutes as [D-]HH:MM:00. */
static void slurm_time(int minutes, char *buf, size_t n)
{
    if (minutes >= 24 * 60) snprintf(buf, n, "%d-%02d:%02d:00", minutes / 1440, minutes % 1440 / 60, minutes % 60);
    else snprintf(buf, n, "%02d:%02d:00", minutes / 60, minutes % 60);
}

static void print_command(FILE *out, const char *const *argv)
{
    for (int i = 0; argv[i]; i++) {
        int plain = strpbrk(argv[i], " \"'$;&|<>*?()") == NULL;
        fprintf(out, plain ? "%s%s" : "%s'%s'", i ? " " : "", argv[i]);
    }
    fprintf(out, "\n");
}

/* Runs sbatch --parsable: the job id it prints. */
static dlm_status sbatch(const char *const *argv, char *id, size_t n)
{
    int fd[2];
    DLM_CHECK(pipe(fd) == 0, DLM_ERR_IO, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (e != 0) {
        close(fd[0]);
        DLM_CHECK(0, DLM_ERR_IO, "cannot run %s: %s (is Slurm installed and on PATH?)", argv[0], strerror(e));
    }
    size_t len = 0;
    ssize_t got;
    while (len + 1 < n && (got = read(fd[0], id + len, n - 1 - len)) != 0) {
        if (got < 0) {
            if (errno == EINTR) continue;
            break;
        }
        len += (size_t)got;
    }
    close(fd[0]);
    id[len] = '\0';
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) DLM_CHECK(0, DLM_ERR_IO, "waiting for sbatch: %s", strerror(errno));
    char *semi = strpbrk(id, ";\n");
    if (semi) *semi = '\0'; /* "<id>;<cluster>" */
    DLM_CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && id[0], DLM_ERR_IO,
              "sbatch failed (exit %d; its message is above) for job %s", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1,
              argv[2]);
    return DLM_OK;
}

static dlm_status write_list(const char *path, const dlm_sweep_plan *p, const group *g)
{
    char tmp[2 * PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    DLM_CHECK(f != NULL, DLM_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    for (int k = 0; k < g->n; k++) {
        char dir[DLM_CONFIG_PATH_MAX + 200], abs[PATH_MAX];
        dlm_sweep_run_dir(p, g->runs[k], dir, sizeof dir);
        fprintf(f, "%s\n", realpath(dir, abs) ? abs : dir);
    }
    int bad = fclose(f) != 0;
    DLM_CHECK(!bad && rename(tmp, path) == 0, DLM_ERR_IO, "writing %s: %s", path, strerror(errno));
    return DLM_OK;
}

dlm_status dlm_sweep_submit(const dlm_sweep_plan *p, const dlm_sweep_submit_options *o, FILE *out)
{
    const dlm_sweep_config *c = &p->cfg;
    group groups[MAX_GROUPS];
    int n_groups = 0, todo = 0;
    int *members = malloc((size_t)(p->n ? p->n : 1) * sizeof *members);
    char *done = malloc((size_t)(p->n ? p->n : 1));
    if (!members || !done) {
        free(members), free(done);
        DLM_CHECK(0, DLM_ERR_NOMEM, "submit lists");
    }
    for (int i = 0; i < p->n; i++) { /* read once: both passes below see the same states */
        dlm_run_state s;
        dlm_sweep_run_state(p, i, &s);
        done[i] = s.kind == DLM_RUN_DONE;
    }
    for (int pass = 0; pass < 2; pass++) { /* count the groups' runs, then list them */
        for (int g = 0; g < n_groups; g++) groups[g].n = 0;
        for (int i = 0; i < p->n; i++) {
            if (done[i]) continue;
            const dlm_sweep_run *r = &p->runs[i];
            int m = time_class(r->time_limit_s), g = 0;
            while (g < n_groups && !(groups[g].dp == r->dp && groups[g].tp == r->tp && groups[g].pp == r->pp &&
                                     groups[g].minutes == m))
                g++;
            if (g == n_groups) {
                if (n_groups == MAX_GROUPS) {
                    free(members), free(done);
                    DLM_CHECK(0, DLM_ERR_FORMAT, "sweep %s: more than %d (layout, time) groups", c->sweep.name,
                              MAX_GROUPS);
                }
                groups[n_groups++] = (group){r->dp, r->tp, r->pp, m, 0, NULL};
            }
            if (pass == 1) groups[g].runs[groups[g].n] = i;
            groups[g].n++;
            todo += pass == 0;
        }
        int off = 0;
        for (int g = 0; pass == 0 && g < n_groups; g++) groups[g].runs = members + off, off += groups[g].n;
    }
    dlm_status st = DLM_OK;
    if (todo == 0) {
        fprintf(out, "submit: every run of sweep %s is done; nothing to submit (dlm-sweep collect)\n", c->sweep.name);
        free(members), free(done);
        return DLM_OK;
    }
    char sdir[DLM_CONFIG_PATH_MAX + 16];
    snprintf(sdir, sizeof sdir, "%s/slurm", c->sweep.dir);
    if (!o->dry_run) {
        DLM_CALL_GOTO(st, dlm_mkdir_p(sdir), finish);
        for (int i = 0; i < p->n && st == DLM_OK; i++) st = dlm_sweep_materialize(p, i);
        if (st != DLM_OK) goto finish;
    }
    char abs_sdir[PATH_MAX];
    if (!realpath(o->dry_run ? c->sweep.dir : sdir, abs_sdir)) snprintf(abs_sdir, sizeof abs_sdir, "%s", sdir);
    else if (o->dry_run) strncat(abs_sdir, "/slurm", sizeof abs_sdir - strlen(abs_sdir) - 1);
    char deps[4096] = "afterany", submitted[4096] = "", partition[DLM_CONFIG_PATH_MAX + 16];
    snprintf(partition, sizeof partition, "--partition=%s", c->submit.partition); /* every job alike */
    /* each submission its own lists: a requeued or throttled task of an
     * earlier one still reads the list it was given */
    char stamp[64];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", gmtime(&now));
    snprintf(stamp + strlen(stamp), sizeof stamp - strlen(stamp), "-%ld", (long)getpid());
    fprintf(out, "submit: %d runs of sweep %s in %d group%s\n", todo, c->sweep.name, n_groups, n_groups > 1 ? "s" : "");
    for (int g = 0; g < n_groups && st == DLM_OK; g++) {
        group *G = &groups[g];
        char name[DLM_CONFIG_PATH_MAX + 64], list[PATH_MAX], array[64], ntasks[32], cpus[32], tlim[32], output[PATH_MAX];
        char exports[3 * PATH_MAX], script[PATH_MAX], dep[128], id[64] = "JOB";
        snprintf(name, sizeof name, "%s-r%d-tp%d-pp%d-t%dm", c->sweep.name, G->dp * G->tp * G->pp, G->tp, G->pp,
                 G->minutes);
        int w = snprintf(list, sizeof list, "%s/%s-%s.runs", abs_sdir, name, stamp);
        DLM_CHECK_GOTO(st, w > 0 && (size_t)w < sizeof list, DLM_ERR_FORMAT, finish, "%s/%s: path too long",
                       abs_sdir, name);
        if (!o->dry_run && (st = write_list(list, p, G)) != DLM_OK) break;
        snprintf(array, sizeof array, "--array=0-%d%%%d", G->n - 1, c->submit.throttle);
        snprintf(ntasks, sizeof ntasks, "--ntasks=%d", G->dp * G->tp * G->pp);
        snprintf(cpus, sizeof cpus, "--cpus-per-task=%d", c->submit.cpus_per_rank);
        char t[24];
        slurm_time(G->minutes, t, sizeof t);
        snprintf(tlim, sizeof tlim, "--time=%s", t);
        snprintf(output, sizeof output, "--output=%s/%%x-%%A_%%a.out", abs_sdir);
        snprintf(exports, sizeof exports, "--export=ALL,DLM_BUILD=%s,DLM_SLURM_DIR=%s,DLM_SWEEP_LIST=%s",
                 o->build_dir, o->scripts_dir, list);
        /* the warning before the limit: 2 minutes, or a fifth of short limits */
        char signal[32];
        snprintf(signal, sizeof signal, "--signal=B:USR1@%d", G->minutes >= 10 ? 120 : G->minutes * 12);
        const char *argv[MAX_ARGS];
        int n = 0;
        argv[n++] = "sbatch", argv[n++] = "--parsable";
        char jn[DLM_CONFIG_PATH_MAX + 80];
        snprintf(jn, sizeof jn, "--job-name=%s", name);
        argv[n++] = jn, argv[n++] = array, argv[n++] = ntasks, argv[n++] = cpus, argv[n++] = tlim;
        if (c->submit.partition[0]) argv[n++] = partition;
        argv[n++] = "--requeue", argv[n++] = signal, argv[n++] = "--open-mode=append";
        argv[n++] = output, argv[n++] = exports;
        snprintf(script, sizeof script, "%s/sweep-train.sbatch", o->scripts_dir);
        argv[n++] = script, argv[n] = NULL;
        print_command(out, argv);
        if (!o->dry_run && (st = sbatch(argv, id, sizeof id)) != DLM_OK) break;
        char train_id[64];
        snprintf(train_id, sizeof train_id, "%s", id);
        snprintf(submitted + strlen(submitted), sizeof submitted - strlen(submitted), " %s", id);
        char ebuf[DLM_SWEEP_EVAL_ARGS][DLM_CONFIG_PATH_MAX];
        const char *eargs[DLM_SWEEP_EVAL_ARGS + 1];
        int eval_ranks = dlm_sweep_eval_args(p, G->runs[0], ebuf, eargs); /* alike within a layout */

        /* evaluation: the run's tp x pp ranks, data parallel 1 */
        char ejn[DLM_CONFIG_PATH_MAX + 80], entasks[32], etlim[32], eoutput[PATH_MAX], escript[PATH_MAX];
        snprintf(ejn, sizeof ejn, "--job-name=%s-eval", name);
        snprintf(entasks, sizeof entasks, "--ntasks=%d", eval_ranks);
        slurm_time(G->minutes < 10 ? 10 : G->minutes / 2, t, sizeof t);
        snprintf(etlim, sizeof etlim, "--time=%s", t);
        snprintf(eoutput, sizeof eoutput, "--output=%s/%%x-%%A_%%a.out", abs_sdir);
        snprintf(dep, sizeof dep, "--dependency=aftercorr:%s", train_id);
        snprintf(escript, sizeof escript, "%s/sweep-eval.sbatch", o->scripts_dir);
        n = 0;
        argv[n++] = "sbatch", argv[n++] = "--parsable", argv[n++] = ejn, argv[n++] = array, argv[n++] = entasks;
        argv[n++] = cpus, argv[n++] = etlim;
        if (c->submit.partition[0]) argv[n++] = partition;
        argv[n++] = dep, argv[n++] = "--kill-on-invalid-dep=yes", argv[n++] = eoutput, argv[n++] = exports;
        argv[n++] = escript;
        for (int k = 0; eargs[k]; k++) argv[n++] = eargs[k];
        argv[n] = NULL;
        print_command(out, argv);
        if (!o->dry_run && (st = sbatch(argv, id, sizeof id)) != DLM_OK) break;
        snprintf(submitted + strlen(submitted), sizeof submitted - strlen(submitted), " %s", id);
        size_t len = strlen(deps);
        snprintf(deps + len, sizeof deps - len, ":%s:%s", train_id, id);
        fprintf(out, "  %d run%s: training %s, evaluation %s (%s)\n", G->n, G->n > 1 ? "s" : "", train_id, id, list);
    }
    if (st == DLM_OK) {
        char cjn[DLM_CONFIG_PATH_MAX + 80], cdep[4200], coutput[PATH_MAX], cscript[PATH_MAX], exports[2 * PATH_MAX], id[64];
        snprintf(cjn, sizeof cjn, "--job-name=%s-collect", c->sweep.name);
        snprintf(cdep, sizeof cdep, "--dependency=%s", deps);
        snprintf(coutput, sizeof coutput, "--output=%s/%%x-%%j.out", abs_sdir);
        snprintf(cscript, sizeof cscript, "%s/sweep-collect.sbatch", o->scripts_dir);
        snprintf(exports, sizeof exports, "--export=ALL,DLM_BUILD=%s", o->build_dir);
        const char *argv[MAX_ARGS];
        int n = 0;
        argv[n++] = "sbatch", argv[n++] = "--parsable", argv[n++] = cjn, argv[n++] = "--ntasks=1";
        argv[n++] = "--time=00:10:00";
        if (c->submit.partition[0]) argv[n++] = partition;
        argv[n++] = cdep, argv[n++] = coutput, argv[n++] = exports, argv[n++] = cscript;
        argv[n++] = o->sweep_file;
        DLM_CHECK_GOTO(st, n + 2 * o->n_sets < MAX_ARGS, DLM_ERR_ARG, finish,
                       "%d --set options: the collect job takes at most %d", o->n_sets, (MAX_ARGS - n - 1) / 2);
        for (int k = 0; k < o->n_sets; k++) argv[n++] = "--set", argv[n++] = o->sets[k];
        argv[n] = NULL;
        print_command(out, argv);
        if (!o->dry_run && (st = sbatch(argv, id, sizeof id)) == DLM_OK)
            fprintf(out, "  collect: job %s writes %s/sweep.h5 when every array has ended\n", id, c->sweep.dir);
    }
finish:
    free(members), free(done);
    if (st != DLM_OK && submitted[0])
        st = dlm_error_push(st, __FILE__, __LINE__, __func__,
                            "submitted before the failure (and still queued): jobs%s; scancel them before "
                            "submitting again", submitted);
    return st;
}
