/* Gradient buckets over the dp group and ordered gathers. */
#include "parallel/dp.h"

#include <stdlib.h>
#include <string.h>

#include "core/mpicall.h"
#include "core/timer.h"

typedef struct {
    size_t lo, hi;    /* floats [lo, hi) of the gradient arena */
    int last_segment; /* ready once this segment (backward order) is done */
    int started;
    /* ZeRO-1: rank q owns [lo + displs[q], lo + displs[q] + counts[q]) */
    int *counts, *displs;
} bucket;

struct dlm_dp {
    MPI_Comm comm;
    int rank, size;
    float *grads;
    int n_segments, n_buckets;
    bucket *buckets;
    MPI_Request *reqs; /* (n_buckets) */
    int next;          /* first bucket not yet started */
    dlm_dp_stats stats;
    int zero;          /* ZeRO-1: reduce-scatter, each rank one part of every bucket */
    dlm_range *ranges; /* this rank's parts, in bucket order */
    int *ints;         /* counts and displs of every bucket */
};

/* Where block l's gradients start in the arena, for l in 0 .. L: a
 * pipeline stage's absent blocks get empty ranges at the edge of its own,
 * and l = L (or any block after the stage) is where the head starts. */
static size_t block_start(const dlm_model *m, int l)
{
    const float *base = m->grad_arena.base;
    int l0, l1;
    dlm_layout_blocks(&m->layout, m->cfg.n_layer, &l0, &l1);
    if (l >= l1) return m->grads.lnf_w ? (size_t)(m->grads.lnf_w - base) : m->n_params;
    if (l < l0) l = l0;
    /* a block's first tensor in table order is ln1.weight (DLM_BLOCK_TENSORS) */
    return (size_t)(m->grads.blocks[l].ln1_w - base);
}

/* [lo, hi) of segment j in backward order (empty for what a pipeline
 * stage does not hold). */
static void segment_range(const dlm_model *m, int j, size_t *lo, size_t *hi)
{
    int L = m->cfg.n_layer;
    if (j == 0) {
        *lo = block_start(m, L), *hi = m->n_params;
    } else if (j <= L) {
        *lo = block_start(m, L - j), *hi = block_start(m, L - j + 1);
    } else {
        *lo = 0, *hi = block_start(m, 0);
    }
}

dlm_status dlm_dp_create(MPI_Comm comm, dlm_model *m, size_t bucket_bytes, dlm_dp **out)
{
    *out = NULL;
    dlm_dp *dp = calloc(1, sizeof *dp);
    DLM_CHECK(dp != NULL, DLM_ERR_NOMEM, "allocating the data-parallel state");
    dp->comm = comm;
    dp->size = 1;
    if (comm != MPI_COMM_NULL) {
        int e = MPI_Comm_size(comm, &dp->size);
        if (e == MPI_SUCCESS) e = MPI_Comm_rank(comm, &dp->rank);
        if (e != MPI_SUCCESS) {
            free(dp);
            return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Comm_size");
        }
    }
    if (!m) { /* a group for the ordered gathers only (evaluation, sampling) */
        *out = dp;
        return DLM_OK;
    }
    dp->grads = m->grad_arena.base;
    dp->n_segments = m->cfg.n_layer + 2;
    dp->buckets = calloc((size_t)dp->n_segments, sizeof *dp->buckets);
    dp->reqs = calloc((size_t)dp->n_segments, sizeof *dp->reqs);
    if (!dp->buckets || !dp->reqs) {
        dlm_dp_destroy(&dp);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating %d gradient buckets", m->cfg.n_layer + 2);
    }
    size_t min_floats = bucket_bytes / sizeof(float);
    bucket cur = {0};
    int open = 0;
    for (int j = 0; j < dp->n_segments; j++) {
        size_t lo, hi;
        segment_range(m, j, &lo, &hi);
        if (!open) cur = (bucket){.lo = lo, .hi = hi}, open = 1;
        cur.lo = lo; /* segments come in falling address order, contiguous */
        cur.last_segment = j;
        if (cur.hi - cur.lo >= min_floats || j == dp->n_segments - 1) {
            dp->buckets[dp->n_buckets++] = cur;
            open = 0;
        }
    }
    for (int b = 0; b < dp->n_buckets; b++) dp->reqs[b] = MPI_REQUEST_NULL;
    *out = dp;
    return DLM_OK;
}

void dlm_dp_destroy(dlm_dp **pdp)
{
    dlm_dp *dp = *pdp;
    if (!dp) return;
    free(dp->buckets);
    free(dp->reqs);
    free(dp->ranges);
    free(dp->ints);
    free(dp);
    *pdp = NULL;
}

int dlm_dp_rank(const dlm_dp *dp) { return dp ? dp->rank : 0; }
int dlm_dp_size(const dlm_dp *dp) { return dp ? dp->size : 1; }
int dlm_dp_n_buckets(const dlm_dp *dp) { return dp->n_buckets; }
int dlm_dp_n_segments(const dlm_dp *dp) { return dp->n_segments; }

void dlm_dp_grads_begin(dlm_dp *dp)
{
    dp->next = 0;
    for (int b = 0; b < dp->n_buckets; b++) dp->buckets[b].started = 0;
}

static dlm_status start_bucket(dlm_dp *dp, int b)
{
    bucket *k = &dp->buckets[b];
    k->started = 1;
    if (dp->size == 1) return DLM_OK;
    double t0 = dlm_now(), share = dp->zero ? 1.0 : 2.0;
    if (dp->zero)
        /* in place: the sum of this rank's part lands at the bucket's start */
        DLM_MPI(MPI_Ireduce_scatter(MPI_IN_PLACE, dp->grads + k->lo, k->counts, MPI_FLOAT,
                                    MPI_SUM, dp->comm, &dp->reqs[b]));
    else
        DLM_MPI(MPI_Iallreduce(MPI_IN_PLACE, dp->grads + k->lo, (int)(k->hi - k->lo), MPI_FLOAT,
                               MPI_SUM, dp->comm, &dp->reqs[b]));
    dp->stats.comm_seconds += dlm_now() - t0;
    dp->stats.bytes_sent +=
        share * (dp->size - 1) / dp->size * (double)(k->hi - k->lo) * sizeof(float);
    return DLM_OK;
}

dlm_status dlm_dp_segment_done(dlm_dp *dp, int segment)
{
    while (dp->next < dp->n_buckets && dp->buckets[dp->next].last_segment <= segment)
        DLM_CALL(start_bucket(dp, dp->next++));
    if (dp->size > 1 && dp->next > 0) {
        int flag;
        double t0 = dlm_now();
        DLM_MPI(MPI_Testall(dp->next, dp->reqs, &flag, MPI_STATUSES_IGNORE)); /* progress */
        dp->stats.comm_seconds += dlm_now() - t0;
    }
    return DLM_OK;
}

dlm_status dlm_dp_grads_finish(dlm_dp *dp)
{
    while (dp->next < dp->n_buckets) DLM_CALL(start_bucket(dp, dp->next++));
    if (dp->size == 1) return DLM_OK;
    double t0 = dlm_now();
    DLM_MPI(MPI_Waitall(dp->n_buckets, dp->reqs, MPI_STATUSES_IGNORE));
    dp->stats.comm_seconds += dlm_now() - t0;
    for (int b = 0; dp->zero && b < dp->n_buckets; b++) { /* this rank's sums into place */
        const bucket *k = &dp->buckets[b];
        memmove(dp->grads + k->lo + k->displs[dp->rank], dp->grads + k->lo,
                (size_t)k->counts[dp->rank] * sizeof *dp->grads);
    }
    return DLM_OK;
}

/* x moved down to the start of its row, if it falls inside a tensor of m. */
static size_t row_start(const dlm_model *m, size_t x)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const dlm_param_info *p = &m->table[i];
        if (x > p->offset && x < p->offset + p->numel) {
            size_t row = (size_t)p->local[1];
            return p->offset + (x - p->offset) / row * row;
        }
    }
    return x;
}

dlm_status dlm_dp_zero_enable(dlm_dp *dp, const dlm_model *m)
{
    int p = dp->size, nb = dp->n_buckets;
    dp->ranges = calloc((size_t)nb + 1, sizeof *dp->ranges);
    dp->ints = calloc(2 * (size_t)nb * p + 1, sizeof *dp->ints);
    DLM_CHECK(dp->ranges && dp->ints, DLM_ERR_NOMEM, "ZeRO-1 parts of %d buckets", nb);
    for (int b = 0; b < nb; b++) {
        bucket *k = &dp->buckets[b];
        k->counts = dp->ints + 2 * (size_t)b * p;
        k->displs = k->counts + p;
        /* rank q's part starts at its even share of the bucket, moved to a row start */
        size_t start = k->lo;
        for (int q = 0; q < p; q++) {
            size_t end = q == p - 1 ? k->hi : row_start(m, k->lo + (k->hi - k->lo) * (q + 1) / p);
            if (end < start) end = start;
            k->displs[q] = (int)(start - k->lo);
            k->counts[q] = (int)(end - start);
            start = end;
        }
        dp->ranges[b] = (dlm_range){k->lo + k->displs[dp->rank],
                                    k->lo + k->displs[dp->rank] + k->counts[dp->rank]};
    }
    dp->zero = 1;
    return DLM_OK;
}

int dlm_dp_zero(const dlm_dp *dp) { return dp && dp->zero; }

const dlm_range *dlm_dp_zero_ranges(const dlm_dp *dp, int *n)
{
    *n = dlm_dp_zero(dp) ? dp->n_buckets : 0;
    return *n ? dp->ranges : NULL;
}

dlm_status dlm_dp_params_gather(dlm_dp *dp, float *params)
{
    if (!dlm_dp_zero(dp) || dp->size == 1) return DLM_OK;
    double t0 = dlm_now();
    for (int b = 0; b < dp->n_buckets; b++) {
        const bucket *k = &dp->buckets[b];
        DLM_MPI(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, params + k->lo, k->counts,
                                k->displs, MPI_FLOAT, dp->comm, &dp->reqs[b]));
        dp->stats.bytes_sent += (double)(dp->size - 1) / dp->size * (double)(k->hi - k->lo) *
                                sizeof(float);
    }
    DLM_MPI(MPI_Waitall(dp->n_buckets, dp->reqs, MPI_STATUSES_IGNORE));
    dp->stats.comm_seconds += dlm_now() - t0;
    return DLM_OK;
}

dlm_status dlm_dp_sum(dlm_dp *dp, double *x, int n)
{
    if (dlm_dp_size(dp) == 1) return DLM_OK;
    DLM_MPI(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, dp->comm));
    return DLM_OK;
}

dlm_status dlm_dp_allgather(dlm_dp *dp, const double *mine, int n, double *all)
{
    if (dlm_dp_size(dp) == 1) {
        if (all != mine) memmove(all, mine, (size_t)n * sizeof *all);
        return DLM_OK;
    }
    double t0 = dlm_now();
    DLM_MPI(MPI_Allgather(mine, n, MPI_DOUBLE, all, n, MPI_DOUBLE, dp->comm));
    dp->stats.comm_seconds += dlm_now() - t0;
    dp->stats.bytes_sent += (double)(dp->size - 1) * n * sizeof(double);
    return DLM_OK;
}

dlm_status dlm_dp_allgatherv(dlm_dp *dp, const double *mine, const int *counts, double *all)
{
    int p = dlm_dp_size(dp), r = dlm_dp_rank(dp);
    if (p == 1) {
        if (all != mine) memmove(all, mine, (size_t)counts[0] * sizeof *all);
        return DLM_OK;
    }
    int *displs = malloc((size_t)p * sizeof *displs);
    DLM_CHECK(displs != NULL, DLM_ERR_NOMEM, "gather offsets for %d ranks", p);
    for (int q = 0, d = 0; q < p; d += counts[q++]) displs[q] = d;
    double t0 = dlm_now();
    int e = MPI_Allgatherv(mine, counts[r], MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, dp->comm);
    free(displs);
    if (e != MPI_SUCCESS) return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Allgatherv");
    dp->stats.comm_seconds += dlm_now() - t0;
    dp->stats.bytes_sent += (double)(p - 1) * counts[r] * sizeof(double);
    return DLM_OK;
}

dlm_dp_stats dlm_dp_stats_take(dlm_dp *dp)
{
    dlm_dp_stats s = dp->stats;
    memset(&dp->stats, 0, sizeof dp->stats);
    return s;
}
