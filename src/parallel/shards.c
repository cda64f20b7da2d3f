/* Shards gathered to and scattered from tp rank 0, tensor by tensor, and
 * pipeline stages' tensors to and from pp rank 0. */
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
        dlm_shard_layout lay = m->layout; /* the same stage, tp rank r */
        lay.tp_rank = r;
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

/* Stage s's tensors as one rank of its tp group would hold them alone. */
static dlm_status stage_table(const dlm_model *m, int first, int count, dlm_param_info **t, int *n,
                              size_t *floats)
{
    int staged = first != 0 || count != m->cfg.n_layer;
    dlm_shard_layout lay = {0, 1, staged, staged ? first : 0, staged ? first + count : 0};
    return dlm_param_table_create(&m->cfg, &lay, t, n, floats);
}

/* to_full: stage's tensors (laid out by t) into full by id; else the reverse. */
static void place_stage(const dlm_param_info *t, int n, float *stage,
                        const dlm_param_info *full_table, float *full, int to_full)
{
    for (int i = 0; i < n; i++) {
        const dlm_param_info *f = &full_table[t[i].id];
        if (to_full) memcpy(full + f->offset, stage + t[i].offset, t[i].numel * sizeof *full);
        else memcpy(stage + t[i].offset, full + f->offset, t[i].numel * sizeof *full);
    }
}

/* On pp rank 0's tp rank 0: stage q's tensors between full and a buffer
 * laid out by stage q's own table, received from (gather) or sent to stage
 * q's tp rank 0; own: stage 0's buffer, moved in place. */
static dlm_status root_move(MPI_Comm pp_comm, const dlm_model *m, const int *first,
                            const int *count, int q, float *own, const dlm_param_info *full_table,
                            float *full, int gather)
{
    dlm_param_info *t = NULL;
    int n;
    size_t fl;
    DLM_CALL(stage_table(m, first[q], count[q], &t, &n, &fl));
    float *buf = own ? own : calloc(fl + 1, sizeof *buf);
    dlm_status st = buf ? DLM_OK : dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                                                  "stage %d's %zu floats", q, fl);
    int e = MPI_SUCCESS;
    if (st == DLM_OK && gather && q > 0)
        e = MPI_Recv(buf, (int)fl, MPI_FLOAT, q, 0, pp_comm, MPI_STATUS_IGNORE);
    if (st == DLM_OK && e == MPI_SUCCESS) place_stage(t, n, buf, full_table, full, gather);
    if (st == DLM_OK && e == MPI_SUCCESS && !gather && q > 0)
        e = MPI_Send(buf, (int)fl, MPI_FLOAT, q, 0, pp_comm);
    if (e != MPI_SUCCESS) st = dlm_mpi_error(e, __FILE__, __LINE__, __func__, "stage tensors");
    if (!own) free(buf);
    free(t);
    return st;
}

static dlm_status exchange_stages(MPI_Comm tp_comm, MPI_Comm pp_comm, const dlm_model *m,
                                  const int *first, const int *count, float *local,
                                  const dlm_param_info *full_table, float *full, int gather)
{
    int pp = 1, s = 0, tp_rank = 0;
    if (pp_comm != MPI_COMM_NULL) {
        DLM_MPI(MPI_Comm_size(pp_comm, &pp));
        DLM_MPI(MPI_Comm_rank(pp_comm, &s));
    }
    if (pp == 1) return exchange(tp_comm, m, local, full_table, full, gather);
    if (tp_comm != MPI_COMM_NULL) DLM_MPI(MPI_Comm_rank(tp_comm, &tp_rank));
    /* this stage whole on its tp rank 0, laid out by the stage's own table */
    dlm_param_info *mine = NULL;
    int n_mine;
    size_t floats;
    DLM_CALL(stage_table(m, first[s], count[s], &mine, &n_mine, &floats));
    float *stage = tp_rank == 0 ? calloc(floats + 1, sizeof *stage) : NULL;
    dlm_status st = tp_rank == 0 && !stage ? DLM_ERR_NOMEM : DLM_OK;
    if (st == DLM_OK && gather) st = exchange(tp_comm, m, local, mine, stage, 1);
    /* the stages' tp ranks 0 and pp rank 0, in stage order */
    for (int q = 0; st == DLM_OK && tp_rank == 0 && s == 0 && q < pp; q++)
        st = root_move(pp_comm, m, first, count, q, q == 0 ? stage : NULL, full_table, full, gather);
    if (st == DLM_OK && tp_rank == 0 && s > 0) {
        int e = gather ? MPI_Send(stage, (int)floats, MPI_FLOAT, 0, 0, pp_comm)
                       : MPI_Recv(stage, (int)floats, MPI_FLOAT, 0, 0, pp_comm, MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS) st = dlm_mpi_error(e, __FILE__, __LINE__, __func__, "stage tensors");
    }
    if (st == DLM_OK && !gather) st = exchange(tp_comm, m, local, mine, stage, 0);
    free(stage);
    free(mine);
    if (st != DLM_OK)
        return dlm_error_push(st, __FILE__, __LINE__, __func__,
                              "moving pipeline stage %d's tensors to or from rank 0", s);
    return DLM_OK;
}

dlm_status dlm_shards_gather_stages(MPI_Comm tp_comm, MPI_Comm pp_comm, const dlm_model *m,
                                    const int *stage_first, const int *stage_count,
                                    const float *local, const dlm_param_info *full_table,
                                    float *full)
{
    return exchange_stages(tp_comm, pp_comm, m, stage_first, stage_count, (float *)local,
                           full_table, full, 1);
}

dlm_status dlm_shards_scatter_stages(MPI_Comm tp_comm, MPI_Comm pp_comm, const dlm_model *m,
                                     const int *stage_first, const int *stage_count, float *local,
                                     const dlm_param_info *full_table, const float *full)
{
    return exchange_stages(tp_comm, pp_comm, m, stage_first, stage_count, local, full_table,
                           (float *)full, 0);
}
