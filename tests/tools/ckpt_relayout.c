/* ckpt_relayout FROM_RUN TO_RUN [--set group.key=value | --threads N]...: loads the
 * newest checkpoint of FROM_RUN at the layout the settings give
 * (parallel.dp/tp/pp over the ranks of mpiexec -n) and writes it unchanged
 * as a checkpoint of TO_RUN at that layout: a round trip through layouts
 * with no training step between (tests/parallel_train.sh). The settings
 * must be the run's own (its model and data), as for dlm-train. Like
 * dlm-train it opens FROM_RUN's run.h5 (rows after the checkpoint's step
 * are dropped); FROM_RUN must hold a checkpoint that loads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mpicall.h"
#include "core/program.h"
#include "parallel/grid.h"
#include "train/run_config.h"
#include "train/trainer.h"

static dlm_status relayout(const char *from, const char *to, const char **sets, int n_sets)
{
    dlm_run_config cfg;
    int n_ranks;
    DLM_MPI(MPI_Comm_size(MPI_COMM_WORLD, &n_ranks));
    dlm_status st = dlm_run_config_load(NULL, sets, n_sets, &cfg);
    if (st == DLM_OK) st = dlm_run_config_check_layout(&cfg, n_ranks);
    if (st == DLM_OK && snprintf(cfg.run.dir, sizeof cfg.run.dir, "%s", from) >= (int)sizeof cfg.run.dir)
        st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__, "path too long: %s", from);
    DLM_CALL(dlm_agree(MPI_COMM_WORLD, st));
    dlm_grid *g;
    DLM_CALL(dlm_grid_create(MPI_COMM_WORLD, cfg.parallel.dp, cfg.parallel.tp, cfg.parallel.pp, &g));
    dlm_trainer *t = NULL;
    st = dlm_trainer_create(g, &cfg, NULL, &t);
    if (st == DLM_OK && dlm_trainer_step(t) == 0) /* nothing loaded: it initialised */
        st = dlm_agree(MPI_COMM_WORLD,
                       dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                      "%s holds no checkpoint that loads", from));
    if (st == DLM_OK) st = dlm_trainer_save(t, to);
    dlm_trainer_destroy(&t);
    dlm_grid_destroy(&g);
    return st;
}

int main(int argc, char **argv)
{
    dlm_status st = dlm_program_start(&argc, &argv, NULL, NULL);
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int n = 0;
    sets[n++] = "data.source=synthetic";
    int bad = argc < 3;
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 < argc && !strcmp(argv[i], "--set")) sets[n++] = argv[i + 1];
        else if (i + 1 >= argc || strcmp(argv[i], "--threads") != 0) bad = 1; /* --threads: no use here */
    }
    if (st == DLM_OK && bad)
        st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                            "usage: ckpt_relayout FROM_RUN TO_RUN [--set group.key=value | --threads N]...");
    if (st == DLM_OK) st = relayout(argv[1], argv[2], sets, n);
    free(sets);
    return dlm_program_finish("ckpt_relayout", st, 0);
}
