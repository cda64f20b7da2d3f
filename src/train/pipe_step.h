/* The training step of a pipeline stage: this dp rank's G/p sequences in
 * micro-batches through the 1F1B schedule (src/parallel/pipeline.h), each
 * micro-batch in flight in an activation pool of pp - s step buffers; the
 * last stage's per-sequence losses gathered over dp and the loss sent to
 * every stage; the gradient norm summed over tp and pp; clip and AdamW on
 * the stage's own tensors. On one stage it is dlm_train_step_dp's
 * computation (the same bits, tested).
 *
 *   dlm_pipe_step *ps;
 *   DLM_CALL(dlm_pipe_step_create(grid->pp_comm, stage_model, micro_batch, G / dp / micro_batch, &ps));
 *   DLM_CALL(dlm_train_step_pp(ps, opt, &obj, dp, x, G, step, lr, &loss, &gnorm));
 *   dlm_pipe_step_destroy(&ps);
 *
 * A tied head: the last stage holds a copy of the embedding, whose
 * gradient is summed with the first stage's over the embedding group
 * (both copies stay the same; the norm counts the first's). Not yet: the
 * gradient buckets start after the schedule, not during its cool-down. */
#ifndef DLM_PIPE_STEP_H
#define DLM_PIPE_STEP_H

#include <mpi.h>
#include <stdint.h>

#include "diffusion/objective.h"
#include "model/model.h"
#include "optim/optim.h"
#include "parallel/dp.h"
#include "parallel/pipeline.h"

typedef struct dlm_pipe_step dlm_pipe_step;

/* pp_comm: the stages in order (MPI_COMM_NULL: one stage). m: this
 * stage's model (dlm_model_create_stage). n_micro micro-batches of micro
 * sequences per step. */
dlm_status dlm_pipe_step_create(MPI_Comm pp_comm, dlm_model *m, int micro, int n_micro,
                                dlm_pipe_step **out);
void dlm_pipe_step_destroy(dlm_pipe_step **ps);

/* x: this dp rank's G / p sequences (every stage holds them: the first
 * embeds them, the last draws its targets and weights from them). *loss
 * and *grad_norm as dlm_train_step_dp's, the same on every rank. */
dlm_status dlm_train_step_pp(dlm_pipe_step *ps, dlm_optimizer *opt, const dlm_objective *o,
                             dlm_dp *dp, const int32_t *x, int G, uint32_t step, double lr,
                             double *loss, double *grad_norm);

/* The held-out loss (nats/token) of n sequences x0 (every stage holds all
 * of them), forward only through the stages in micro-batches of the
 * step's size: the per-sequence sums of dlm_eval_loss with that
 * micro-batch, added in order, so without tp the serial figure to the
 * bit. Every dp replica runs all n. */
dlm_status dlm_eval_loss_pp(dlm_pipe_step *ps, const dlm_objective *o, const int32_t *x0, int n,
                            uint32_t eval_step, double *loss);

/* The last run's schedule statistics (waits, peak in flight, bytes). */
const dlm_pipe_stats *dlm_pipe_step_stats(const dlm_pipe_step *ps);

#endif
