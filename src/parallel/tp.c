/* The tp handle's all-reduce and all-gather over MPI and the vocabulary-parallel cross-entropy. */
#include "parallel/tp.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "core/mpicall.h"
#include "core/timer.h"
#include "kernels/kernels.h"
#include "kernels/vmath.h"

typedef struct {
    MPI_Comm comm;
} tp_ctx;

static dlm_status tp_allreduce(dlm_tp *tp, void *x, int64_t n, int is_double, dlm_tp_op op)
{
    tp_ctx *c = tp->ctx;
    size_t w = is_double ? sizeof(double) : sizeof(float);
    double t0 = dlm_now();
    for (int64_t i = 0; i < n;) { /* MPI counts are int */
        int k = n - i > INT_MAX ? INT_MAX : (int)(n - i);
        DLM_MPI(MPI_Allreduce(MPI_IN_PLACE, (char *)x + i * w, k, is_double ? MPI_DOUBLE : MPI_FLOAT,
                              op == DLM_TP_MAX ? MPI_MAX : MPI_SUM, c->comm));
        i += k;
    }
    tp->comm_seconds += dlm_now() - t0;
    tp->bytes_sent += 2.0 * (tp->size - 1) / tp->size * (double)n * (double)w;
    return DLM_OK;
}

static dlm_status tp_allgather(dlm_tp *tp, const float *mine, int64_t n, float *all)
{
    tp_ctx *c = tp->ctx;
    DLM_CHECK(n <= INT_MAX, DLM_ERR_ARG, "gathering %lld floats per rank: more than one MPI call "
              "sends", (long long)n);
    double t0 = dlm_now();
    DLM_MPI(MPI_Allgather(mine, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, c->comm));
    tp->comm_seconds += dlm_now() - t0;
    tp->bytes_sent += (double)(tp->size - 1) * (double)n * sizeof(float);
    return DLM_OK;
}

dlm_status dlm_tp_create(MPI_Comm comm, dlm_tp **out)
{
    *out = NULL;
    dlm_tp *tp = calloc(1, sizeof *tp);
    tp_ctx *c = calloc(1, sizeof *c);
    if (!tp || !c) {
        free(tp), free(c);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating the tensor-parallel handle");
    }
    tp->size = 1;
    c->comm = comm;
    if (comm != MPI_COMM_NULL) {
        int e = MPI_Comm_size(comm, &tp->size);
        if (e == MPI_SUCCESS) e = MPI_Comm_rank(comm, &tp->rank);
        if (e != MPI_SUCCESS) {
            free(tp), free(c);
            return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Comm_size");
        }
    }
    tp->ctx = c;
    tp->allreduce = tp_allreduce;
    tp->allgather = tp_allgather;
    *out = tp;
    return DLM_OK;
}

void dlm_tp_destroy(dlm_tp **ptp)
{
    dlm_tp *tp = *ptp;
    if (!tp) return;
    free(tp->ctx);
    free(tp);
    *ptp = NULL;
}

dlm_status dlm_tp_xent_forward(dlm_tp *tp, float *loss, float *lse, const float *logits,
                               const int32_t *targets, int64_t N, int V, int v0, int n_valid)
{
    if (dlm_tp_size(tp) == 1) {
        dlm_xent_forward(loss, logits, targets, N, V, n_valid);
        return DLM_OK;
    }
    int nv = n_valid - v0; /* this rank's valid columns: [0, nv) */
    nv = nv < 0 ? 0 : nv > V ? V : nv;
    float *mx = malloc((size_t)N * sizeof *mx);
    double *st = malloc((size_t)N * 2 * sizeof *st); /* (sum of exponentials, target logit) */
    if (!mx || !st) {
        free(mx), free(st);
        DLM_CHECK(0, DLM_ERR_NOMEM, "cross-entropy scratch for %lld rows", (long long)N);
    }
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *row = logits + n * V;
        float m = -INFINITY; /* an all-padding shard stays at -inf */
        for (int j = 0; j < nv; j++) m = row[j] > m ? row[j] : m;
        mx[n] = m;
    }
    dlm_tp_allreduce(tp, mx, N, 0, DLM_TP_MAX);
    if (dlm_tp_status(tp) != DLM_OK) {
        free(mx), free(st);
        DLM_CALL(dlm_tp_status(tp));
    }
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *row = logits + n * V;
        double s = 0.0;
        for (int j = 0; j < nv; j++) s += (double)dlm_expf(row[j] - mx[n]);
        int t = targets[n] - v0;
        st[2 * n] = s;
        st[2 * n + 1] = t >= 0 && t < V ? (double)row[t] : 0.0;
    }
    dlm_tp_allreduce(tp, st, 2 * N, 1, DLM_TP_SUM);
    dlm_status status = dlm_tp_status(tp);
    for (int64_t n = 0; status == DLM_OK && n < N; n++) {
        double l = (double)mx[n] + log(st[2 * n]);
        lse[n] = (float)l;
        loss[n] = (float)(l - st[2 * n + 1]);
    }
    free(mx), free(st);
    DLM_CALL(status);
    return DLM_OK;
}

void dlm_tp_xent_backward(dlm_tp *tp, float *dlogits, const float *logits, const float *lse,
                          const int32_t *targets, const float *dloss, int64_t N, int V, int v0,
                          int n_valid)
{
    if (dlm_tp_size(tp) == 1) {
        dlm_xent_backward(dlogits, logits, targets, dloss, N, V, n_valid);
        return;
    }
    int nv = n_valid - v0;
    nv = nv < 0 ? 0 : nv > V ? V : nv;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *row = logits + n * V;
        float *drow = dlogits + n * V, g = dloss[n];
        if (g == 0.0f) {
            for (int j = 0; j < V; j++) drow[j] = 0.0f;
            continue;
        }
        for (int j = 0; j < nv; j++) drow[j] = g * dlm_expf(row[j] - lse[n]);
        for (int j = nv; j < V; j++) drow[j] = 0.0f;
        int t = targets[n] - v0;
        if (t >= 0 && t < V) drow[t] -= g;
    }
}
