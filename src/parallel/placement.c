/* Threads per rank from the affinity masks, and the placement report. */
#define _GNU_SOURCE
#include "parallel/placement.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mpicall.h"
#include "kernels/blis_info.h"

#define HOST_LEN 64
#define CORES_LEN 64

static void my_mask(cpu_set_t *set)
{
    CPU_ZERO(set);
    if (sched_getaffinity(0, sizeof *set, set) != 0) /* unknown: assume every CPU online */
        for (long c = 0, n = sysconf(_SC_NPROCESSORS_ONLN); c < n && c < CPU_SETSIZE; c++)
            CPU_SET((int)c, set);
}

/* "0-3,8" */
static void mask_text(const cpu_set_t *set, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE && used < len; c++) {
        if (!CPU_ISSET(c, set)) continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set)) e++;
        int n = e > c ? snprintf(buf + used, len - used, "%s%d-%d", used ? "," : "", c, e)
                      : snprintf(buf + used, len - used, "%s%d", used ? "," : "", c);
        if (n > 0) used += (size_t)n;
        c = e;
    }
}

dlm_status dlm_placement_threads(const dlm_grid *g, int requested, const char *source,
                                 int *threads, const char **chosen)
{
    cpu_set_t mine;
    my_mask(&mine);
    cpu_set_t *all = malloc((size_t)g->node_size * sizeof *all);
    DLM_CHECK(all != NULL, DLM_ERR_NOMEM, "affinity masks of %d ranks", g->node_size);
    int e = MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE,
                          g->node_comm);
    int sharing = 0;
    for (int r = 0; e == MPI_SUCCESS && r < g->node_size; r++) {
        cpu_set_t both;
        CPU_AND(&both, &mine, &all[r]);
        sharing += CPU_COUNT(&both) > 0;
    }
    free(all);
    if (e != MPI_SUCCESS) return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Allgather");
    if (requested > 0) {
        *threads = requested;
        *chosen = source;
        return DLM_OK;
    }
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && atoi(env) > 0) {
        *threads = atoi(env);
        *chosen = "OMP_NUM_THREADS";
        return DLM_OK;
    }
    int share = CPU_COUNT(&mine) / (sharing > 0 ? sharing : 1);
    *threads = share > 0 ? share : 1;
    *chosen = "this rank's share of its cores";
    return DLM_OK;
}

typedef struct {
    char host[HOST_LEN];
    char cores[CORES_LEN];
    int n_cores, threads;
} rank_place;

dlm_status dlm_placement_report(const dlm_grid *g, int threads, char *hosts, int hosts_len)
{
    rank_place me = {.threads = threads};
    gethostname(me.host, sizeof me.host);
    me.host[HOST_LEN - 1] = '\0';
    cpu_set_t set;
    my_mask(&set);
    me.n_cores = CPU_COUNT(&set);
    mask_text(&set, me.cores, sizeof me.cores);
    rank_place *all = malloc((size_t)g->size * sizeof *all);
    DLM_CHECK(all != NULL, DLM_ERR_NOMEM, "placement of %d ranks", g->size);
    int e = MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, g->world);
    if (e != MPI_SUCCESS) {
        free(all);
        return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Allgather");
    }
    size_t used = 0;
    if (hosts && hosts_len > 0) hosts[0] = '\0';
    for (int r = 0; r < g->size; r++) {
        const rank_place *p = &all[r];
        if (hosts && used < (size_t)hosts_len) {
            int n = snprintf(hosts + used, (size_t)hosts_len - used, "%sr%d=%s", r ? " " : "", r,
                             p->host);
            if (n > 0) used += (size_t)n;
        }
        if (g->rank != 0) continue;
        DLM_INFO("rank %d (dp %d tp %d pp %d): host %s, cores %s, %d BLIS threads", r,
                 r / g->tp % g->dp, r % g->tp, r / (g->tp * g->dp), p->host, p->cores, p->threads);
        if (p->threads > p->n_cores)
            DLM_WARN("rank %d runs %d BLIS threads on %d core(s) (%s): the threads take turns; "
                     "bind each rank to as many cores as threads (Open MPI: --map-by "
                     "slot:PE=%d, or --bind-to none) or lower --threads",
                     r, p->threads, p->n_cores, p->cores, p->threads);
    }
    /* ranks of one host whose threads exceed that host's cores (any rank's mask bounds it) */
    if (g->rank == 0) {
        for (int r = 0; r < g->size; r++) {
            int first = 1, load = 0;
            for (int q = 0; q < g->size; q++) {
                if (strcmp(all[q].host, all[r].host)) continue;
                if (q < r) first = 0;
                load += all[q].threads;
            }
            long online = sysconf(_SC_NPROCESSORS_ONLN);
            if (first && !strcmp(all[r].host, me.host) && load > online)
                DLM_WARN("host %s runs %d BLIS threads in all on %ld cores: ranks oversubscribe "
                         "the cores and every product slows down", all[r].host, load, online);
        }
    }
    free(all);
    return DLM_OK;
}

dlm_status dlm_placement_start(MPI_Comm world, int tp, int pp, int requested, dlm_grid **out)
{
    *out = NULL;
    int size;
    DLM_MPI(MPI_Comm_size(world, &size));
    /* the same verdict on every rank: agreed, printed once */
    DLM_CALL(dlm_agree(world, tp >= 1 && pp >= 1 && size % (tp * pp) == 0
                                       ? DLM_OK
                                       : dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                                        "--tp %d x --pp %d must divide the %d MPI "
                                                        "ranks (mpiexec -n): the rest of the "
                                                        "ranks share the work data-parallel",
                                                        tp, pp, size)));
    dlm_grid *g;
    DLM_CALL(dlm_grid_create(world, size / (tp * pp), tp, pp, &g));
    const char *source = "--threads";
    int threads = 0;
    char blis[512];
    dlm_status st = dlm_placement_threads(g, requested, source, &threads, &source);
    if (st == DLM_OK) st = dlm_blis_init(threads, source);
    if (st == DLM_OK) st = dlm_blis_describe(blis, sizeof blis);
    st = dlm_agree(g->world, st);
    if (st == DLM_OK) DLM_INFO("%s", blis);
    if (st == DLM_OK && size > 1) st = dlm_placement_report(g, threads, NULL, 0);
    if (st != DLM_OK) {
        dlm_grid_destroy(&g);
        return dlm_error_push(st, __FILE__, __LINE__, __func__, NULL);
    }
    *out = g;
    return DLM_OK;
}
