/* The rank grid's communicators and the collective agreement on errors. */
#include "parallel/grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mpicall.h"

static dlm_status split(MPI_Comm world, int color, int key, MPI_Comm *out)
{
    DLM_MPI(MPI_Comm_split(world, color, key, out));
    return DLM_OK;
}

dlm_status dlm_grid_create(MPI_Comm world, int dp, int tp, int pp, dlm_grid **out)
{
    *out = NULL;
    int size, rank;
    DLM_MPI(MPI_Comm_size(world, &size));
    DLM_MPI(MPI_Comm_rank(world, &rank));
    DLM_CHECK(dp >= 1 && tp >= 1 && pp >= 1, DLM_ERR_ARG,
              "layout dp %d x tp %d x pp %d: every size must be >= 1", dp, tp, pp);
    /* the same verdict on every rank: agreed, so the job prints it once */
    dlm_status bad = (long long)dp * tp * pp == size
                         ? DLM_OK
                         : dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                          "layout dp %d x tp %d x pp %d = %lld ranks, but the job "
                                          "has %d MPI ranks (mpiexec -n): the product must be "
                                          "the number of ranks",
                                          dp, tp, pp, (long long)dp * tp * pp, size);
    DLM_CALL(dlm_agree(world, bad));
    dlm_grid *g = calloc(1, sizeof *g);
    DLM_CHECK(g != NULL, DLM_ERR_NOMEM, "allocating the rank grid");
    g->size = size, g->rank = rank;
    g->dp = dp, g->tp = tp, g->pp = pp;
    g->tp_rank = rank % tp;
    g->dp_rank = rank / tp % dp;
    g->pp_rank = rank / (tp * dp);
    g->world = g->dp_comm = g->tp_comm = g->pp_comm = g->mp_comm = g->node_comm = MPI_COMM_NULL;
    dlm_status st;
    int e = MPI_Comm_dup(world, &g->world);
    if (e != MPI_SUCCESS) {
        free(g);
        return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Comm_dup");
    }
    /* colors name the coordinates a group shares; keys keep rank order */
    DLM_CALL_GOTO(st, split(g->world, g->pp_rank * tp + g->tp_rank, g->dp_rank, &g->dp_comm), fail);
    DLM_CALL_GOTO(st, split(g->world, g->pp_rank * dp + g->dp_rank, g->tp_rank, &g->tp_comm), fail);
    DLM_CALL_GOTO(st, split(g->world, g->dp_rank * tp + g->tp_rank, g->pp_rank, &g->pp_comm), fail);
    DLM_CALL_GOTO(st, split(g->world, g->dp_rank, g->pp_rank * tp + g->tp_rank, &g->mp_comm), fail);
    e = MPI_Comm_split_type(g->world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &g->node_comm);
    st = e == MPI_SUCCESS ? DLM_OK
                          : dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Comm_split_type");
    if (st != DLM_OK) goto fail;
    e = MPI_Comm_rank(g->node_comm, &g->node_rank);
    if (e == MPI_SUCCESS) e = MPI_Comm_size(g->node_comm, &g->node_size);
    st = e == MPI_SUCCESS ? DLM_OK : dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Comm_size");
    if (st != DLM_OK) goto fail;
    *out = g;
    return DLM_OK;
fail:
    dlm_grid_destroy(&g);
    return st;
}

void dlm_grid_destroy(dlm_grid **pg)
{
    dlm_grid *g = *pg;
    if (!g) return;
    MPI_Comm *c[] = {&g->dp_comm, &g->tp_comm, &g->pp_comm, &g->mp_comm, &g->node_comm, &g->world};
    for (size_t i = 0; i < sizeof c / sizeof *c; i++)
        if (*c[i] != MPI_COMM_NULL) MPI_Comm_free(c[i]);
    free(g);
    *pg = NULL;
}

const char *dlm_grid_name(const dlm_grid *g, char *buf, int len)
{
    int n = 0;
    buf[0] = '\0';
    if (g->dp > 1 || (g->tp == 1 && g->pp == 1)) n += snprintf(buf, (size_t)len, "dp%d", g->dp);
    if (g->tp > 1 && n < len) n += snprintf(buf + n, (size_t)(len - n), "tp%d", g->tp);
    if (g->pp > 1 && n < len) snprintf(buf + n, (size_t)(len - n), "pp%d", g->pp);
    return buf;
}

dlm_status dlm_grid_parse_layout(const char *what, const char *name, int *dp, int *tp, int *pp)
{
    *dp = *tp = *pp = 1;
    const char *p = name;
    int n = 0, ok = 1;
    if (!strncmp(p, "dp", 2)) ok = sscanf(p, "dp%d%n", dp, &n) == 1, p += n;
    if (ok && !strncmp(p, "tp", 2)) ok = sscanf(p, "tp%d%n", tp, &n) == 1, p += n;
    if (ok && !strncmp(p, "pp", 2)) ok = sscanf(p, "pp%d%n", pp, &n) == 1, p += n;
    DLM_CHECK(ok && *p == '\0' && p != name && *dp >= 1 && *tp >= 1 && *pp >= 1, DLM_ERR_ARG,
              "%s %s: expected dpN, tpM, ppK or a combination in that order (dp2tp2, "
              "dp2pp2, tp2pp2)", what, name);
    return DLM_OK;
}

dlm_status dlm_grid_check_same(MPI_Comm comm, uint64_t value, const char *what)
{
    uint64_t lo = value, hi = value;
    DLM_MPI(MPI_Allreduce(&value, &lo, 1, MPI_UINT64_T, MPI_MIN, comm));
    DLM_MPI(MPI_Allreduce(&value, &hi, 1, MPI_UINT64_T, MPI_MAX, comm));
    /* every rank sees the same lo and hi, so all fail or none: agreed */
    dlm_status st = DLM_OK;
    if (lo != hi)
        st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                            "the ranks hold different %s (hashes from %016llx to %016llx)", what,
                            (unsigned long long)lo, (unsigned long long)hi);
    return dlm_agree(comm, st);
}
