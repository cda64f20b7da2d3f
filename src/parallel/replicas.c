/* Per-tensor FNV-1a checksums compared by min/max all-reduces. */
#include "parallel/replicas.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/hash.h"
#include "core/mpicall.h"

/* The first tensor (of those with want set) whose checksum differs over
 * comm, as its id in the whole model (a pipeline stage's indices are its
 * own), or -1. */
static dlm_status first_mismatch(MPI_Comm comm, const dlm_model *m, const int *want, int *bad)
{
    int n = m->n_tensors;
    uint64_t *lo = malloc((size_t)n * 2 * sizeof *lo);
    DLM_CHECK(lo != NULL, DLM_ERR_NOMEM, "checksums of %d tensors", n);
    uint64_t *hi = lo + n;
    for (int i = 0; i < n; i++) {
        const dlm_param_info *p = &m->table[i];
        lo[i] = want[i] ? dlm_fnv1a(DLM_FNV_OFFSET, m->param_arena.base + p->offset,
                                    p->numel * sizeof(float))
                        : 0;
        hi[i] = lo[i];
    }
    int e = MPI_Allreduce(MPI_IN_PLACE, lo, n, MPI_UINT64_T, MPI_MIN, comm);
    if (e == MPI_SUCCESS) e = MPI_Allreduce(MPI_IN_PLACE, hi, n, MPI_UINT64_T, MPI_MAX, comm);
    *bad = -1;
    for (int i = 0; e == MPI_SUCCESS && i < n && *bad < 0; i++)
        if (lo[i] != hi[i]) *bad = m->table[i].id;
    free(lo);
    if (e != MPI_SUCCESS) return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Allreduce");
    return DLM_OK;
}

/* The whole model's tensor name of id (whatever this rank's stage holds). */
static void name_of(const dlm_model *m, int id, char *name, size_t len)
{
    dlm_param_info *t = NULL;
    int n = 0;
    size_t floats;
    if (dlm_param_table_create(&m->cfg, DLM_LAYOUT_SERIAL, &t, &n, &floats) == DLM_OK && id < n)
        snprintf(name, len, "%s", t[id].name);
    else
        snprintf(name, len, "tensor %d", id);
    dlm_error_clear();
    free(t);
}

dlm_status dlm_replicas_check(const dlm_grid *g, const dlm_model *m, int64_t step)
{
    if (g->size == 1) return DLM_OK;
    int *want = malloc((size_t)m->n_tensors * sizeof *want);
    DLM_CHECK(want != NULL, DLM_ERR_NOMEM, "checksums of %d tensors", m->n_tensors);
    int bad_dp = -1, bad_tp = -1;
    for (int i = 0; i < m->n_tensors; i++) want[i] = 1; /* dp replicas: every tensor */
    dlm_status st = g->dp > 1 ? first_mismatch(g->dp_comm, m, want, &bad_dp) : DLM_OK;
    for (int i = 0; i < m->n_tensors; i++) want[i] = m->table[i].shard.split == DLM_SPLIT_NONE;
    if (st == DLM_OK && g->tp > 1) st = first_mismatch(g->tp_comm, m, want, &bad_tp);
    free(want);
    DLM_CALL(st);
    /* a verdict every rank shares: any group's mismatch stops all */
    int bad[2] = {bad_dp, bad_tp};
    DLM_MPI(MPI_Allreduce(MPI_IN_PLACE, bad, 2, MPI_INT, MPI_MAX, g->world));
    /* every rank sees the same verdict; agreed, so rank 0 alone speaks */
    char name[64];
    if (bad[0] >= 0 || bad[1] >= 0) name_of(m, bad[0] >= 0 ? bad[0] : bad[1], name, sizeof name);
    if (bad[0] >= 0)
        st = dlm_error_push(DLM_ERR_STATE, __FILE__, __LINE__, __func__,
                            "after step %lld the data-parallel replicas hold different values of "
                            "%s (the gradient sum went wrong); the last checkpoint is untouched, "
                            "please report it",
                            (long long)step, name);
    else if (bad[1] >= 0)
        st = dlm_error_push(DLM_ERR_STATE, __FILE__, __LINE__, __func__,
                            "after step %lld the tensor-parallel ranks hold different copies of "
                            "%s, a replicated tensor; the last checkpoint is untouched, please "
                            "report it",
                            (long long)step, name);
    return dlm_agree(g->world, st);
}
