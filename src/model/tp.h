/* The tensor-parallel handle the model is given. The model picks column-
 * and row-parallel layers and calls Megatron's two conjugate operations
 * through it, but owns no communicator and includes no MPI header: the
 * all-reduce behind them is src/parallel/tp.c's (dlm_tp_create). On a
 * group of one (or a NULL handle) both are the identity, so the serial
 * model runs through the same code.
 *
 *   copy   (Megatron's f): identity forward, all-reduce of the input
 *          gradient backward; in front of a column-parallel layer
 *   reduce (Megatron's g): all-reduce of the partial outputs forward,
 *          identity backward; behind a row-parallel layer
 *
 * The layer functions return nothing, so a failed all-reduce is recorded
 * in the handle (the first one sticks) and the caller checks
 * dlm_tp_status after each forward or backward. */
#ifndef DLM_MODEL_TP_H
#define DLM_MODEL_TP_H

#include <stdint.h>

#include "core/status.h"

typedef enum { DLM_TP_SUM = 0, DLM_TP_MAX } dlm_tp_op;

typedef struct dlm_tp {
    int rank, size;
    /* in place over the group; doubles when is_double, else floats */
    dlm_status (*allreduce)(struct dlm_tp *tp, void *x, int64_t n, int is_double, dlm_tp_op op);
    /* all (size x n floats) = every rank's mine (n floats), in rank order */
    dlm_status (*allgather)(struct dlm_tp *tp, const float *mine, int64_t n, float *all);
    void *ctx;
    dlm_status error;   /* the first failure, DLM_OK until then */
    double comm_seconds, bytes_sent; /* since the owner last reset them (dlm-bench) */
} dlm_tp;

static inline int dlm_tp_size(const dlm_tp *tp) { return tp ? tp->size : 1; }
static inline int dlm_tp_rank(const dlm_tp *tp) { return tp ? tp->rank : 0; }
static inline dlm_status dlm_tp_status(const dlm_tp *tp) { return tp ? tp->error : DLM_OK; }

static inline void dlm_tp_allreduce(dlm_tp *tp, void *x, int64_t n, int is_double, dlm_tp_op op)
{
    if (!tp || tp->size == 1 || tp->error != DLM_OK) return;
    tp->error = tp->allreduce(tp, x, n, is_double, op);
}

/* Inference only (the sampler wants whole rows of logits): all gets every
 * rank's n floats of mine in rank order; on a group of one, mine. */
static inline void dlm_tp_allgather(dlm_tp *tp, const float *mine, int64_t n, float *all)
{
    if (!tp || tp->size == 1) {
        for (int64_t i = 0; i < n; i++) all[i] = mine[i];
        return;
    }
    if (tp->error != DLM_OK) return;
    tp->error = tp->allgather(tp, mine, n, all);
}

/* copy's backward: sum the input gradient dx (n floats) over the group. */
static inline void dlm_tp_copy_backward(dlm_tp *tp, float *dx, int64_t n)
{
    dlm_tp_allreduce(tp, dx, n, 0, DLM_TP_SUM);
}

/* reduce's forward: sum the partial outputs y (n floats) over the group. */
static inline void dlm_tp_reduce_forward(dlm_tp *tp, float *y, int64_t n)
{
    dlm_tp_allreduce(tp, y, n, 0, DLM_TP_SUM);
}

#endif
