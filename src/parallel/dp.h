/* Data parallelism: the gradient sum over the dp group in buckets, and
 * per-sequence values gathered in global order.
 *
 * Buckets are contiguous ranges of the gradient arena in reverse layer
 * order (the head first, the embedding last), each at least bucket_bytes
 * unless it is the last. Backward reports each finished segment (the head,
 * then blocks L-1 .. 0, then the embedding); a bucket's MPI_Iallreduce
 * starts as soon as all of its segments are done, and each report also
 * tests the outstanding ones, which is where Open MPI's TCP and shared
 * memory transports make progress (no progress thread), so the sum of one
 * bucket runs while the next layer's backward computes.
 *
 *   dlm_dp *dp;
 *   DLM_CALL(dlm_dp_create(grid->dp_comm, model, 25 << 20, &dp));
 *   dlm_dp_grads_begin(dp);                  // before the last micro-batch's backward
 *   ... after each segment j: DLM_CALL(dlm_dp_segment_done(dp, j));
 *   DLM_CALL(dlm_dp_grads_finish(dp));       // every rank holds the summed gradient
 *
 * A group of one sends nothing: the serial run goes through the same code.
 * comm may be MPI_COMM_NULL for a run without MPI (unit tests): size 1.
 * m may be NULL for a group that only gathers (dlm-eval, dlm-sample): no
 * buckets, no segments. */
#ifndef DLM_DP_H
#define DLM_DP_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/status.h"
#include "model/model.h"

typedef struct dlm_dp dlm_dp;

dlm_status dlm_dp_create(MPI_Comm comm, dlm_model *m, size_t bucket_bytes, dlm_dp **out);
void dlm_dp_destroy(dlm_dp **dp);

int dlm_dp_rank(const dlm_dp *dp);
int dlm_dp_size(const dlm_dp *dp);
int dlm_dp_n_buckets(const dlm_dp *dp);

/* Segments in backward order: 0 the head (final norm, untied LM head),
 * 1 .. L blocks L-1 .. 0, L + 1 the embedding (and the tied head). */
int dlm_dp_n_segments(const dlm_dp *dp);
void dlm_dp_grads_begin(dlm_dp *dp);
dlm_status dlm_dp_segment_done(dlm_dp *dp, int segment);
/* Starts any bucket not yet started and waits for all. */
dlm_status dlm_dp_grads_finish(dlm_dp *dp);

/* ZeRO-1: from now on each bucket is split into size parts (rank q's
 * starting at its even share, moved back to the start of a tensor row, so
 * a part is whole rows of each tensor it touches); grads_finish then
 * reduce-scatters in place, leaving the sum in this rank's parts of the
 * gradient arena (the rest then holds nothing meaningful), and params_gather
 * all-gathers the parts of the parameters after the update. On one rank a
 * part is the whole bucket. */
dlm_status dlm_dp_zero_enable(dlm_dp *dp, const dlm_model *m);
int dlm_dp_zero(const dlm_dp *dp);
/* This rank's parts, one per bucket in bucket order (*n = 0 and NULL without ZeRO-1). */
const dlm_range *dlm_dp_zero_ranges(const dlm_dp *dp, int *n);
/* Every rank's parts of params (the parameter arena) to every rank; a
 * no-op without ZeRO-1. */
dlm_status dlm_dp_params_gather(dlm_dp *dp, float *params);

/* x (n values) summed over the group, in place. */
dlm_status dlm_dp_sum(dlm_dp *dp, double *x, int n);

/* all (size * n) = every rank's mine (n each) in rank order. */
dlm_status dlm_dp_allgather(dlm_dp *dp, const double *mine, int n, double *all);
/* As above with counts[r] values from rank r (counts has size entries). */
dlm_status dlm_dp_allgatherv(dlm_dp *dp, const double *mine, const int *counts, double *all);

/* Time spent inside MPI calls and the bytes a bandwidth-optimal
 * all-reduce (2 (p-1)/p of the payload; a reduce-scatter and an
 * all-gather (p-1)/p each) and the gathers send from this rank, since the
 * last reset. */
typedef struct {
    double comm_seconds;
    double bytes_sent;
} dlm_dp_stats;
dlm_dp_stats dlm_dp_stats_take(dlm_dp *dp); /* returns and resets */

#endif
