/* Pipeline parallelism's schedule: which micro-batch each stage runs
 * forward or backward next (1F1B, or forward only for evaluation), and the
 * runner that carries it out over the pp communicator, passing (b, T, C)
 * activations forward and their gradients back with non-blocking sends and
 * pre-posted receives. The stage's work comes in as functions, so the
 * runner knows nothing of the model and the model sends nothing.
 *
 *   dlm_pipe_stage st = {.ctx = me, .forward = fwd, .backward = bwd};
 *   dlm_pipe_stats stats;
 *   DLM_CALL(dlm_pipe_run(grid->pp_comm, &st, DLM_PIPE_1F1B, m, b * T * C, &stats));
 *
 * 1F1B (PipeDream-Flush, Megatron's non-interleaved schedule): stage s of
 * pp first runs w = min(pp - s - 1, m) forwards (warm-up), then alternates
 * one forward and one backward, then runs the w backwards left (cool-down).
 * So stage s never holds the activations of more than pp - s micro-batches
 * (fill-drain, all forwards then all backwards, holds m); on one stage the
 * schedule is forward k, backward k for k = 0 .. m-1, today's loop. */
#ifndef DLM_PIPELINE_H
#define DLM_PIPELINE_H

#include <mpi.h>
#include <stddef.h>

#include "core/status.h"

typedef enum { DLM_PIPE_FORWARD = 0, DLM_PIPE_BACKWARD } dlm_pipe_kind;
typedef enum { DLM_PIPE_1F1B = 0, DLM_PIPE_FORWARD_ONLY } dlm_pipe_schedule;

typedef struct {
    dlm_pipe_kind kind;
    int micro;
} dlm_pipe_op;

/* The ops stage `stage` of pp runs for m micro-batches, in order, into ops:
 * 2 m of them for 1F1B, m forward only. *n gets the count. */
dlm_status dlm_pipe_ops(dlm_pipe_schedule sched, int pp, int stage, int m, dlm_pipe_op *ops,
                        int *n);
/* The most micro-batches forwarded and not yet backwarded at any point of
 * ops (forward only: 1, each forward's activations are dropped after it). */
int dlm_pipe_peak_in_flight(const dlm_pipe_op *ops, int n, dlm_pipe_schedule sched);
/* The ideal bubble of 1F1B with equal stages: (pp - 1) / (m + pp - 1). */
double dlm_pipe_ideal_bubble(int pp, int m);

/* One stage's work. forward: micro-batch k from in (n floats; NULL on the
 * first stage, which reads its own tokens) to out (n floats; NULL on the
 * last stage, which computes its loss). backward: from dout (the gradient
 * of out; NULL on the last stage, which starts from its loss) to din (the
 * gradient of in; NULL on the first stage). The stage keeps what backward
 * needs between the two calls of the same k. */
typedef struct {
    void *ctx;
    dlm_status (*forward)(void *ctx, int micro, const float *in, float *out);
    dlm_status (*backward)(void *ctx, int micro, const float *dout, float *din);
} dlm_pipe_stage;

typedef struct {
    double seconds;      /* the whole run */
    double wait_seconds; /* inside MPI waits for a neighbour (the bubble and the transfers) */
    int peak_in_flight;  /* most micro-batches forwarded and not yet backwarded */
    double bytes_sent;
} dlm_pipe_stats;

/* Runs the schedule over pp_comm (this rank is stage rank-in-comm; the
 * stages' ranks in order; MPI_COMM_NULL: one stage, no MPI) for m
 * micro-batches whose activations are n floats each. Collective over
 * pp_comm. A failure in a stage's function returns at once: its
 * neighbours may be waiting for its message, so the caller must end the
 * job (an unagreed error: MPI_Abort), as for any failure inside a step's
 * collectives. */
dlm_status dlm_pipe_run(MPI_Comm pp_comm, const dlm_pipe_stage *stage, dlm_pipe_schedule sched,
                        int m, size_t n, dlm_pipe_stats *stats);

#endif
