/* dlm-sweep: scaling-law studies. Plans the run table of a sweep file
 * (objectives x budgets x sizes x seeds), runs it here or submits it to
 * Slurm as job arrays, and collects every run's final numbers into
 * sweep.h5. It sends no MPI messages itself (it is no MPI program): runs of
 * several ranks go through mpiexec or srun. */
#define _GNU_SOURCE
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/args.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/status.h"
#include "sweep/collect.h"
#include "sweep/plan.h"
#include "sweep/runs.h"
#include "sweep/submit.h"

#ifndef DLM_SLURM_SCRIPTS
#define DLM_SLURM_SCRIPTS "slurm"
#endif

static const char usage[] =
    "usage: dlm-sweep <plan|run|submit|status|collect> SWEEP.cfg [options]\n"
    "Scaling-law studies: per objective and compute budget C, models of several\n"
    "sizes N trained on D = C / (FLOPs per token) tokens, each evaluated on the\n"
    "validation data (diffusion: the exact-k NELBO with its standard error).\n\n"
    "  plan     print the run table (shape, N, tokens, steps, FLOPs, learning rate,\n"
    "           layout, estimated wall time) and write it to <sweep.dir>/plan.h5;\n"
    "           runs nothing\n"
    "  run      train and evaluate here the runs not done yet, --jobs at a time;\n"
    "           a failed run is recorded and the others go on; run again to retry\n"
    "  submit   submit the runs not done to Slurm: per (layout, time) group a\n"
    "           training job array (throttled), an evaluation array after it, and\n"
    "           a collect job after all (slurm/sweep-*.sbatch)\n"
    "  status   one line per run: done (with its number), unfinished, failed or\n"
    "           missing, and why\n"
    "  collect  every run's final numbers into <sweep.dir>/sweep.h5; the runs not\n"
    "           done are listed by name (and kept in the file with their state)\n\n"
    "N is the non-embedding parameter count; budgets are in the FLOPs of\n"
    "sweep.flops (\"engine\": the engine's full count, or \"6N\"). Each run lives in\n"
    "<sweep.dir>/<name> with its own run.cfg, run.h5, checkpoints and eval.h5.\n\n";

static const char epilog[] =
    "\nThe sweep file's keys are listed in src/sweep/sweep_config.h and the README.\n";

static dlm_status exe_dir(char *buf, size_t n)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    DLM_CHECK(len > 0, DLM_ERR_IO, "cannot find this program's folder (/proc/self/exe)");
    self[len] = '\0';
    snprintf(buf, n, "%s", dirname(self));
    return DLM_OK;
}

/* <sweep.dir>/plan.h5 (or out), the folder made first; the path written
 * goes to path. */
static dlm_status write_plan(const dlm_sweep_plan *p, const char *out, char *path, size_t n)
{
    if (out) snprintf(path, n, "%s", out);
    else snprintf(path, n, "%s/plan.h5", p->cfg.sweep.dir);
    DLM_CALL(dlm_mkdir_p(p->cfg.sweep.dir));
    DLM_CALL(dlm_sweep_plan_write(p, path));
    return DLM_OK;
}

typedef struct {
    const char *cmd, *file, *out, *mpiexec, *scripts, *only;
    const char *sets[64];
    int n_sets, jobs, threads, dry_run, strict;
} options;

static dlm_status run(const options *o)
{
    dlm_sweep_config c;
    DLM_CALL(dlm_sweep_config_load(o->file, o->sets, o->n_sets, &c));
    dlm_sweep_plan *p;
    DLM_CALL(dlm_sweep_plan_create(&c, &p));
    dlm_status st = DLM_OK;
    char path[PATH_MAX], bin[PATH_MAX];
    if (strcmp(o->cmd, "plan") == 0) {
        dlm_sweep_plan_print(p, stdout);
        st = write_plan(p, o->out, path, sizeof path);
        if (st == DLM_OK) printf("plan written to %s\n", path);
    } else if (strcmp(o->cmd, "run") == 0) {
        int only = -1;
        if (o->only) {
            for (int i = 0; i < p->n; i++)
                if (strcmp(p->runs[i].name, o->only) == 0) only = i;
            if (only < 0)
                st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                    "--only %s: no such run in sweep %s (dlm-sweep plan lists them)", o->only,
                                    c.sweep.name);
        }
        if (st == DLM_OK) st = exe_dir(bin, sizeof bin);
        if (st == DLM_OK) st = write_plan(p, NULL, path, sizeof path);
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int threads = o->threads > 0 ? o->threads : (int)(cores / o->jobs > 0 ? cores / o->jobs : 1);
        dlm_sweep_local_options lo = {.bin_dir = bin, .mpiexec = o->mpiexec, .jobs = o->jobs,
                                      .threads = threads, .only = only};
        if (st == DLM_OK) st = dlm_sweep_run_local(p, &lo);
    } else if (strcmp(o->cmd, "submit") == 0) {
        char file[PATH_MAX], build[PATH_MAX];
        st = exe_dir(bin, sizeof bin);
        if (st == DLM_OK && !realpath(o->file, file))
            st = dlm_error_push(DLM_ERR_IO, __FILE__, __LINE__, __func__, "%s: not found", o->file);
        snprintf(build, sizeof build, "%s", dirname(bin));
        if (st == DLM_OK) st = exe_dir(bin, sizeof bin); /* dirname changed it */
        char scripts[PATH_MAX];
        if (st == DLM_OK && !realpath(o->scripts, scripts))
            st = dlm_error_push(DLM_ERR_IO, __FILE__, __LINE__, __func__,
                                "the sbatch scripts' folder %s: not found (--scripts)", o->scripts);
        if (st == DLM_OK) st = write_plan(p, NULL, path, sizeof path);
        dlm_sweep_submit_options so = {.sweep_file = file, .sets = o->sets, .n_sets = o->n_sets,
                                       .build_dir = build, .scripts_dir = scripts, .dry_run = o->dry_run};
        if (st == DLM_OK) st = dlm_sweep_submit(p, &so, stdout);
    } else if (strcmp(o->cmd, "status") == 0) {
        dlm_sweep_print_status(p, stdout);
    } else {
        snprintf(path, sizeof path, "%s/sweep.h5", c.sweep.dir);
        int done = 0;
        st = dlm_mkdir_p(c.sweep.dir);
        if (st == DLM_OK) st = dlm_sweep_collect(p, o->out ? o->out : path, stdout, &done);
        if (st == DLM_OK && o->strict && done < p->n)
            st = dlm_error_push(DLM_ERR_IO, __FILE__, __LINE__, __func__, "%d of %d runs are not done (--strict)",
                                p->n - done, p->n);
    }
    fflush(stdout);
    dlm_sweep_plan_destroy(&p);
    return st;
}

int main(int argc, char **argv)
{
    options o = {.jobs = 1, .mpiexec = "mpiexec --oversubscribe --bind-to none", .scripts = DLM_SLURM_SCRIPTS};
    const char *pos[3] = {NULL};
    int n_pos = 0, help = 0;
    const dlm_arg_opt opts[] = {
        DLM_OPT_LIST("set", o.sets, &o.n_sets, 64, 0, "KEY=VALUE",
                     "override a sweep file key (repeatable): --set sweep.sizes=3"),
        DLM_OPT_STRING("out", &o.out, "PATH", "plan, collect: the file (default: in sweep.dir)"),
        DLM_OPT_INT("jobs", &o.jobs, 1, 1024, "J", "run: runs side by side (default 1)"),
        DLM_OPT_INT("threads", &o.threads, 1, 4096, "N",
                    "run: BLIS threads per rank (default: the cores / --jobs)"),
        DLM_OPT_STRING("mpiexec", &o.mpiexec, "CMD",
                       "run: the launcher, words split at spaces; -n RANKS follows\n"
                       "(default \"mpiexec --oversubscribe --bind-to none\")"),
        DLM_OPT_STRING("only", &o.only, "NAME", "run: just this run"),
        DLM_OPT_STRING("scripts", &o.scripts, "DIR", "submit: the sbatch scripts (default: the source's slurm/)"),
        DLM_OPT_FLAG("dry-run", &o.dry_run, "submit: print the sbatch commands, submit nothing"),
        DLM_OPT_FLAG("strict", &o.strict, "collect: exit 1 unless every run is done"),
        DLM_OPT_END};
    const dlm_args_spec spec = {.opts = opts, .usage = usage, .epilog = epilog, .positional = pos,
                                .max_positional = 2, .n_positional = &n_pos,
                                .positional_name = "command and sweep file"};
    dlm_status st = dlm_args_parse(&spec, argc, argv, &help);
    if (st == DLM_OK && help) {
        dlm_args_help(&spec, stdout);
        return 0;
    }
    static const char *const cmds[] = {"plan", "run", "submit", "status", "collect"};
    int known = 0;
    for (int i = 0; n_pos > 0 && i < 5; i++) known |= strcmp(pos[0], cmds[i]) == 0;
    if (st == DLM_OK && (n_pos < 2 || !known))
        st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                            n_pos == 0 ? "no command given: plan, run, submit, status or collect (see --help)"
                            : !known   ? "unknown command '%s': expected plan, run, submit, status or collect"
                                       : "%s: no sweep file given (see --help)",
                            pos[0]);
    if (st == DLM_OK) {
        o.cmd = pos[0], o.file = pos[1];
        st = run(&o);
    }
    if (st != DLM_OK) {
        fprintf(stderr, "dlm-sweep failed: %s", dlm_error_text());
        return 1;
    }
    return 0;
}
