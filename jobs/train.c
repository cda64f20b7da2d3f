/* dlm-train: trains a masked-diffusion (mdlm) or autoregressive (ar) model
 * from a libconfig run file; resumes from the run folder's newest good
 * checkpoint; SIGTERM or SIGUSR1 checkpoint and stop. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/args.h"
#include "core/log.h"
#include "core/mpicall.h"
#include "core/program.h"
#include "core/status.h"
#include "kernels/blis_info.h"
#include "parallel/placement.h"
#include "train/trainer.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char usage[] =
    "usage: dlm-train [RUN.cfg] [--set group.key=value]... [--threads N]\n"
    "                 [--stop-at-step N]\n"
    "Trains the model a run file describes (configs/ has examples; without one, the\n"
    "defaults: a tiny model on the built-in synthetic source). Every key can be\n"
    "overridden: --set train.lr=3e-4 --set data.train=[\"a.bin\",\"b.bin\"].\n\n"
    "The run folder (run.dir) gets run.h5 (metrics, readable while the run goes)\n"
    "and checkpoints/step-NNNNNNNN.h5. If it already holds checkpoints, training\n"
    "resumes from the newest that verifies, exactly where it stopped.\n\n"
    "Under MPI (mpiexec -n 4 dlm-train run.cfg --set parallel.dp=4) every rank\n"
    "trains its share of each global batch (parallel.tp, parallel.pp split the model;\n"
    "parallel.zero=1 shards the optimizer state); rank 0 logs and writes run.h5, and\n"
    "every rank writes its part of each checkpoint, which resumes at any layout.\n"
    "Each rank runs --threads BLIS threads (default: its share of the cores it is\n"
    "bound to); bind ranks to as many cores as threads (Open MPI: --map-by\n"
    "slot:PE=N, or --bind-to none).\n\n";

#define STR_(x) #x
#define STR(x) STR_(x)
static const char epilog[] =
    "\nExit status: 0 finished; 1 error (bad config, bad data, non-finite loss:\n"
    "the message says which); " STR(DLM_EXIT_STOPPED) " stopped by SIGTERM/SIGUSR1 after writing a\n"
    "checkpoint (run the same command to resume).\n";

typedef struct {
    const char *cfg_path;
    const char **sets; /* (argc + 1): room for the synthetic default in front */
    int n_sets, threads, grad_noise;
    dlm_trainer_options opt;
} train_args;

/* Collective over the world from the start: a bad config or layout fails
 * every rank together, with one message. */
static dlm_status run(train_args *a, int *stopped)
{
    if (!a->cfg_path) /* no run file: the defaults on the built-in synthetic source */
        memmove(a->sets + 1, a->sets, (size_t)a->n_sets++ * sizeof *a->sets),
            a->sets[0] = "data.source=synthetic";
    dlm_run_config cfg;
    int n_ranks;
    DLM_MPI(MPI_Comm_size(MPI_COMM_WORLD, &n_ranks));
    dlm_status st = dlm_run_config_load(a->cfg_path, a->sets, a->n_sets, &cfg);
    if (st == DLM_OK) st = dlm_run_config_check_layout(&cfg, n_ranks);
    DLM_CALL(dlm_agree(MPI_COMM_WORLD, st));
    dlm_grid *grid;
    DLM_CALL(dlm_grid_create(MPI_COMM_WORLD, cfg.parallel.dp, cfg.parallel.tp, cfg.parallel.pp,
                             &grid));
    const char *source = "--threads";
    int threads = a->threads;
    if (!threads && cfg.train.threads > 0) threads = cfg.train.threads, source = "train.threads";
    st = dlm_placement_threads(grid, threads, source, &threads, &source);
    if (st == DLM_OK) st = dlm_blis_init(threads, source);
    char blis[512], hosts[4096];
    if (st == DLM_OK) st = dlm_blis_describe(blis, sizeof blis);
    st = dlm_agree(grid->world, st);
    if (st == DLM_OK) {
        DLM_INFO("%s", blis);
        st = dlm_placement_report(grid, threads, hosts, sizeof hosts);
    }
    dlm_trainer *t = NULL;
    a->opt.hosts = hosts;
    if (st == DLM_OK) st = dlm_trainer_create(grid, &cfg, &a->opt, &t);
    if (st == DLM_OK && a->grad_noise) st = dlm_trainer_grad_noise(t, a->grad_noise);
    else if (st == DLM_OK) st = dlm_trainer_run(t, stopped);
    dlm_trainer_destroy(&t);
    dlm_grid_destroy(&grid);
    DLM_CALL(st);
    return DLM_OK;
}

int main(int argc, char **argv)
{
    train_args a = {.sets = calloc((size_t)argc + 1, sizeof *a.sets),
                    .opt = {.stop = &stop_requested}};
    const dlm_arg_opt opts[] = {
        DLM_OPT_LIST("set", a.sets, &a.n_sets, argc, 0, "K=V",
                     "override one config key (repeatable)"),
        DLM_OPT_INT("threads", &a.threads, 1, INT_MAX, "N",
                    "BLIS and OpenMP threads (default: train.threads, else\n"
                    "OMP_NUM_THREADS, else all cores); at most the CPUs online"),
        DLM_OPT_INT("grad-noise", &a.grad_noise, 2, INT_MAX, "N",
                    "measure the gradient noise of the run's estimator at its\n"
                    "newest checkpoint over N sequences (tr Cov, noise scale)\n"
                    "and exit without training; one rank"),
        DLM_OPT_INT64("stop-at-step", &a.opt.stop_at_step, 1, INT64_MAX, "N",
                      "act as if SIGTERM arrived during step N: checkpoint\n"
                      "and exit " STR(DLM_EXIT_STOPPED) " after it (for tests and preemption drills)"),
        DLM_OPT_END};
    const dlm_args_spec spec = {.opts = opts, .usage = usage, .epilog = epilog,
                                .positional = &a.cfg_path, .max_positional = 1,
                                .positional_name = "run file"};
    /* first: a batch system's stop signal during MPI's start-up must not kill the rank */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    int rank = 0;
    dlm_status st = dlm_program_start(&argc, &argv, &rank, NULL);
    int stopped = 0, help = 0;
    if (st == DLM_OK && !a.sets)
        st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__, "parsing arguments");
    if (st == DLM_OK) st = dlm_args_parse(&spec, argc, argv, &help);
    if (st == DLM_OK && help && rank == 0) dlm_args_help(&spec, stdout);
    else if (st == DLM_OK && !help) st = run(&a, &stopped);
    free(a.sets);
    return dlm_program_finish("dlm-train", st, stopped ? DLM_EXIT_STOPPED : 0);
}
