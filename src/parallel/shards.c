/* Shards gathered to and scattered from tp rank 0, tensor by tensor. */
#include "parallel/shards.h"

#include <stdlib.h>
#include <string.h>

#include "core/mpicall.h"

dlm_status dlm_shards_full_table(const dlm_model_config *cfg, dlm_param_info **table, int *n,
                                 size_t *floats)
{
    return dlm_param_table_create(cfg, DLM_LAYOUT_SERIAL, table, n, floats);
}

/* Every rank's table (rank 0 needs where each one's elements go). */
static dlm_status all_tables(const dlm_model *m, dlm_param_info ***out)
{
    int tp = m->layout.tp_size;
    dlm_param_info **t = calloc((size_t)tp, sizeof *t);
    DLM_CHECK(t != NULL, DLM_ERR_NOMEM, "tables of %d ranks", tp);
    for (int r = 0; r < tp; r++) {
        int n;
        size_t floats;
        dlm_shard_layout lay = {r, tp, 0, 0, 0};
        dlm_status st = dlm_param_table_create(&m->cfg, &lay, &t[r], &n, &floats);
        if (st != DLM_OK) {
            for (int q = 0; q < r; q++) free(t[q]);
            free(t);
            DLM_CALL(st);
        }
    }
    *out = t;
    return DLM_OK;
}

static void free_tables(dlm_param_info **t, int tp)
{
    for (int r = 0; t && r < tp; r++) free(t[r]);
    free(t);
}

/* to_full: shard (rank r's elements of tensor i) into whole; else the reverse. */
static void place(const dlm_param_info *shard_info, const dlm_param_info *full_info, float *shard,
                  float *whole, int to_full)
{
    for (size_t j = 0; j < shard_info->numel; j++) {
        int64_t g = dlm_param_global_index(shard_info, (int64_t)j);
        if (to_full) whole[full_info->offset + g] = shard[j];
        else shard[j] = whole[full_info->offset + g];
    }
}

static dlm_status exchange(MPI_Comm tp_comm, const dlm_model *m, float *local,
                           const dlm_param_info *full_table, float *full, int gather)
{
    int tp = m->layout.tp_size, rank = m->layout.tp_rank;
    if (tp == 1) { /* the serial table: the same layout (often the same arena) */
        if (full != local) memcpy(gather ? full : local, gather ? local : full,
                                  m->n_params * sizeof *full);
        return DLM_OK;
    }
    dlm_param_info **tables = NULL;
    size_t most = 0;
    for (int i = 0; i < m->n_tensors; i++) most = m->table[i].numel > most ? m->table[i].numel : most;
    float *buf = NULL;
    dlm_status st = DLM_OK;
    if (rank == 0) {
        st = all_tables(m, &tables);
        buf = st == DLM_OK ? malloc((size_t)tp * most * sizeof *buf) : NULL;
        if (st == DLM_OK && !buf) st = DLM_ERR_NOMEM;
    }
    /* rank 0's verdict before any message, so no rank waits alone */
    int ok = st == DLM_OK;
    DLM_MPI(MPI_Bcast(&ok, 1, MPI_INT, 0, tp_comm));
    if (!ok) {
        free(buf);
        free_tables(tables, tp);
        if (rank == 0) DLM_CHECK(0, st, "assembling whole tensors on tensor-parallel rank 0");
        return dlm_error_push(DLM_ERR_PEER, __FILE__, __LINE__, __func__,
                              "tensor-parallel rank 0 could not assemble whole tensors");
    }
    for (int i = 0; i < m->n_tensors && st == DLM_OK; i++) {
        const dlm_param_info *p = &m->table[i];
        int count = (int)p->numel; /* even splits: the same count on every rank */
        int e;
        if (gather) {
            e = MPI_Gather(local + p->offset, count, MPI_FLOAT, buf, count, MPI_FLOAT, 0, tp_comm);
            if (e == MPI_SUCCESS && rank == 0)
                for (int r = 0; r < tp; r++)
                    place(&tables[r][i], &full_table[i], buf + (size_t)r * count, full, 1);
        } else {
            if (rank == 0)
                for (int r = 0; r < tp; r++)
                    place(&tables[r][i], &full_table[i], buf + (size_t)r * count, (float *)full, 0);
            e = MPI_Scatter(buf, count, MPI_FLOAT, local + p->offset, count, MPI_FLOAT, 0, tp_comm);
        }
        if (e != MPI_SUCCESS) st = dlm_mpi_error(e, __FILE__, __LINE__, __func__, p->name);
    }
    free(buf);
    free_tables(tables, tp);
    DLM_CALL(st);
    return DLM_OK;
}

dlm_status dlm_shards_gather(MPI_Comm tp_comm, const dlm_model *m, const float *local,
                             const dlm_param_info *full_table, float *full)
{
    return exchange(tp_comm, m, (float *)local, full_table, full, 1);
}

dlm_status dlm_shards_scatter(MPI_Comm tp_comm, const dlm_model *m, float *local,
                              const dlm_param_info *full_table, const float *full)
{
    return exchange(tp_comm, m, local, full_table, (float *)full, 0);
}
