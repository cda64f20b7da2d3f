/* dlm-train: trains a masked-diffusion (mdlm) or autoregressive (ar) model
 * from a libconfig run file; resumes from the run folder's newest good
 * checkpoint; SIGTERM or SIGUSR1 checkpoint and stop. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/run_config.h"
#include "core/log.h"
#include "core/program.h"
#include "core/status.h"
#include "kernels/blis_info.h"
#include "train/trainer.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dlm-train [RUN.cfg] [--set group.key=value]... [--threads N]\n"
            "                 [--stop-at-step N]\n"
            "Trains the model a run file describes (configs/ has examples; without one, the\n"
            "defaults: a tiny model on the built-in synthetic source). Every key can be\n"
            "overridden: --set train.lr=3e-4 --set data.train=[\"a.bin\",\"b.bin\"].\n\n"
            "The run folder (run.dir) gets run.h5 (metrics, readable while the run goes)\n"
            "and checkpoints/step-NNNNNNNN.h5. If it already holds checkpoints, training\n"
            "resumes from the newest that verifies, exactly where it stopped.\n\n"
            "  --set K=V     override one config key (repeatable)\n"
            "  --threads N   BLIS and OpenMP threads (default: train.threads, else\n"
            "                OMP_NUM_THREADS, else all cores); at most the CPUs online\n"
            "  --stop-at-step N  act as if SIGTERM arrived during step N: checkpoint\n"
            "                and exit %d after it (for tests and preemption drills)\n"
            "  --help        this text\n\n"
            "Exit status: 0 finished; 1 error (bad config, bad data, non-finite loss:\n"
            "the message says which); %d stopped by SIGTERM/SIGUSR1 after writing a\n"
            "checkpoint (run the same command to resume).\n",
            DLM_EXIT_STOPPED, DLM_EXIT_STOPPED);
}

static dlm_status run(int argc, char **argv, int n_ranks, int *stopped, int *help)
{
    const char *cfg_path = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    DLM_CHECK(sets != NULL, DLM_ERR_NOMEM, "parsing arguments");
    int n_sets = 0, threads = 0;
    dlm_trainer_options opt = {.stop = &stop_requested};
    dlm_status st = DLM_OK;
    *help = 0;
    for (int i = 1; i < argc && st == DLM_OK; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
        } else if (!strcmp(a, "--set") || !strcmp(a, "--threads") ||
                   !strcmp(a, "--stop-at-step")) {
            if (i + 1 >= argc) {
                st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                    "%s needs a value (see --help)", a);
            } else if (!strcmp(a, "--set")) {
                sets[n_sets++] = argv[++i];
            } else {
                char *end;
                errno = 0;
                long long v = strtoll(argv[++i], &end, 10);
                if (*end || end == argv[i] || errno || v < 1 || (a[2] == 't' && v > INT_MAX))
                    st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                        "%s expects an integer >= 1, got '%s'", a, argv[i]);
                else if (a[2] == 't') threads = (int)v;
                else opt.stop_at_step = v;
            }
        } else if (a[0] == '-') {
            st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                "unknown option '%s' (see --help)", a);
        } else if (cfg_path) {
            st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                "one run file only: got '%s' and '%s'", cfg_path, a);
        } else {
            cfg_path = a;
        }
    }
    if (st != DLM_OK || *help) {
        free(sets);
        return st;
    }
    if (!cfg_path) /* no run file: the defaults on the built-in synthetic source */
        memmove(sets + 1, sets, (size_t)n_sets++ * sizeof *sets), sets[0] = "data.source=synthetic";
    dlm_run_config cfg;
    st = dlm_run_config_load(cfg_path, sets, n_sets, &cfg);
    free(sets);
    DLM_CALL(st);
    DLM_CALL(dlm_run_config_check_layout(&cfg, n_ranks));
    const char *source = "--threads";
    if (!threads && cfg.train.threads > 0) threads = cfg.train.threads, source = "train.threads";
    if (!threads) threads = dlm_threads_default(&source);
    DLM_CALL(dlm_blis_init(threads, source));
    char blis[512];
    DLM_CALL(dlm_blis_describe(blis, sizeof blis));
    DLM_INFO("%s", blis);
    dlm_trainer *t;
    DLM_CALL(dlm_trainer_create(&cfg, &opt, &t));
    st = dlm_trainer_run(t, stopped);
    dlm_trainer_destroy(&t);
    DLM_CALL(st);
    return DLM_OK;
}

int main(int argc, char **argv)
{
    int rank = 0, size = 1;
    dlm_status st = dlm_program_start(&argc, &argv, &rank, &size);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    int stopped = 0, help = 0;
    if (st == DLM_OK) st = run(argc, argv, size, &stopped, &help);
    if (st == DLM_OK && help && rank == 0) usage(stdout);
    return dlm_program_finish("dlm-train", st, stopped ? DLM_EXIT_STOPPED : 0);
}
