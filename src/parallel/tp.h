/* Tensor parallelism's messages: the handle the model is given (its
 * all-reduce over the tp communicator, behind copy and reduce in
 * model/tp.h) and the vocabulary-parallel cross-entropy over the logits'
 * column shards (an all-reduce of the row maxima, then one of the sums of
 * exponentials and one of the target logits).
 *
 *   dlm_tp *tp;
 *   DLM_CALL(dlm_tp_create(grid->tp_comm, &tp));
 *   DLM_CALL(dlm_model_create_tp(&cfg, tp, &m));
 *   ...
 *   dlm_tp_destroy(&tp);
 */
#ifndef DLM_PARALLEL_TP_H
#define DLM_PARALLEL_TP_H

#include <mpi.h>
#include <stdint.h>

#include "core/status.h"
#include "model/tp.h"

/* comm: the tensor-parallel group (MPI_COMM_NULL: a group of one, no MPI). */
dlm_status dlm_tp_create(MPI_Comm comm, dlm_tp **out);
void dlm_tp_destroy(dlm_tp **tp);

/* Cross-entropy of N rows whose logits are split by columns over the tp
 * group: this rank holds columns [v0, v0 + V) of each row (logits (N,V),
 * row stride V); columns >= n_valid (MASK, padding) get no probability.
 * loss (N) on every rank; lse (N) keeps each row's log-sum-exp for the
 * backward. On a group of one: dlm_xent_forward, the same bits. A shard
 * holding only padding columns contributes a maximum of -inf and a sum of
 * 0, never a NaN. */
dlm_status dlm_tp_xent_forward(dlm_tp *tp, float *loss, float *lse, const float *logits,
                               const int32_t *targets, int64_t N, int V, int v0, int n_valid);
/* dlogits (N,V) = dloss (softmax - onehot(target)) on this rank's valid
 * columns, 0 on the others; may alias logits. No message. */
void dlm_tp_xent_backward(dlm_tp *tp, float *dlogits, const float *logits, const float *lse,
                          const int32_t *targets, const float *dloss, int64_t N, int V, int v0,
                          int n_valid);

#endif
