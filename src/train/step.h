/* One training step (micro-batched forward, weighted cross-entropy,
 * backward, gradient sum over data-parallel ranks, clip, AdamW) and the
 * held-out loss. The loss is sum_g s_g / (G * T) over the global batch,
 * s_g = sum_i weight_i * CE_i of sequence g in position order, the s_g
 * gathered from every rank and added in global sequence order in double:
 * as long as the micro-batch shape stays the same, neither micro-batching
 * nor the data-parallel layout changes a bit of it.
 *
 * Data-parallel rank r of p takes sequences [r G/p, (r+1) G/p) of the
 * global batch; dp == NULL is the serial run (no MPI at all). */
#ifndef DLM_STEP_H
#define DLM_STEP_H

#include <stdint.h>

#include "diffusion/objective.h"
#include "model/model.h"
#include "optim/optim.h"
#include "parallel/dp.h"

/* One micro-batch's activations and step buffers, sized for max_batch sequences. */
typedef struct {
    dlm_acts *acts;            /* with backward scratch */
    int32_t *inputs, *targets; /* (B,T) */
    float *weights;            /* (B,T) per-token loss weights */
    float *tok_loss;           /* (B,T) CE at the positions the head scored, 0 elsewhere */
    float *dloss;              /* (B,T) d loss / d CE, on the every-row path */
    double *t;                 /* (B) diffusion times */
    double *seq_wsum;          /* (B) each sequence's weighted loss sum, from dlm_step_micro */
    /* the head's rows when it runs on the weighted positions only (mdlm) */
    int32_t *rows, *row_targets; /* (n) positions and their targets */
    float *row_loss, *row_dloss; /* (n) */
    float *row_lse;            /* (n) log-sum-exp of each scored row (vocabulary-parallel head) */
    int all_rows;              /* 1: the head on every row (the reference path the
                                  gathered one is tested against) */
    /* set by dlm_step_prepare for the micro-batch it prepared */
    int B;                     /* its sequences */
    int gather;                /* 1: the head runs on rows[0 .. n_rows) */
    int64_t n_rows;            /* the head's rows */
} dlm_step_buffers;

dlm_status dlm_step_buffers_create(const dlm_model *m, int max_batch, dlm_step_buffers *b);
void dlm_step_buffers_destroy(dlm_step_buffers *b);

/* Forward (and, if backward, backward into m->grads) for B sequences with
 * global indices g0.. of a global batch of G. Each sequence's weighted loss
 * sum goes to buf->seq_wsum and their sum, in sequence order (not yet
 * divided), to *wsum. With dp != NULL the backward reports each finished
 * segment to it (dlm_dp_segment_done), so its buckets start summing. The LM head and the
 * cross-entropy run only on positions with a non-zero weight (mdlm's
 * masked ones) unless buf->all_rows: the same loss and gradients to fp32
 * rounding, with head GEMMs the size of the masked fraction. */
dlm_status dlm_step_micro(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                          const int32_t *x0, int B, uint32_t step, int64_t g0, int64_t G,
                          int backward, dlm_dp *dp, double *wsum);

/* dlm_step_micro in its parts, for a pipeline stage that runs only some of
 * them. prepare: the objective's inputs, targets, weights and the head's
 * rows for B sequences with global indices g0.. of a batch of G (every
 * stage can, from the tokens and the counter-based draws). head_loss: on
 * the model's last stage, after its forward on buf->rows: the weighted
 * cross-entropy, each sequence's sum in buf->seq_wsum and their sum in
 * *wsum, and with backward the dlogits in place of the logits. */
dlm_status dlm_step_prepare(const dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                            const int32_t *x0, int B, uint32_t step, int64_t g0, int64_t G);
dlm_status dlm_step_head_loss(dlm_model *m, dlm_step_buffers *buf, int64_t G, int backward,
                              double *wsum);

/* The loss (nats/token) of the global batch x0 (G,T), run in micro-batches
 * of the buffers' max_batch; with backward, m->grads is zeroed first and then holds
 * the gradient of that loss. */
dlm_status dlm_batch_loss(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                          const int32_t *x0, int G, uint32_t step, int backward, double *loss);

/* A full optimizer step on the global batch of G sequences in
 * micro-batches of the buffers' max_batch: x holds this rank's G/p of them
 * (all G when serial); *loss in nats/token and *grad_norm before clipping,
 * the same on every rank. G must be a multiple of p. */
dlm_status dlm_train_step_dp(dlm_model *m, dlm_optimizer *opt, dlm_step_buffers *buf,
                             const dlm_objective *o, dlm_dp *dp, const int32_t *x, int G,
                             uint32_t step, double lr, double *loss, double *grad_norm);
/* The end of a step once the gradients are summed: the loss checked, the
 * global gradient norm (this rank's share, summed over tp, for a pipeline
 * stage over stages_comm (MPI_COMM_NULL: none), under ZeRO-1 over dp)
 * checked, clipped AdamW on the optimizer's ranges, and under ZeRO-1 the
 * updated parameters gathered over dp (may be NULL). Every rank reaches
 * the same verdict. */
dlm_status dlm_step_update(dlm_model *m, dlm_optimizer *opt, dlm_dp *dp, MPI_Comm stages_comm,
                           double loss, uint32_t step, double lr, double *grad_norm);
/* The serial step: dlm_train_step_dp with dp == NULL. */
dlm_status dlm_train_step(dlm_model *m, dlm_optimizer *opt, dlm_step_buffers *buf,
                          const dlm_objective *o, const int32_t *x0, int G, uint32_t step,
                          double lr, double *loss, double *grad_norm);

/* Mean loss (nats/token) of the objective over n sequences x0 (n,T), no
 * gradients; draws are keyed by eval_step so repeated evaluations see the
 * same masks. Every rank holds all n; each runs whole micro-batches of them
 * (a contiguous share) and the sums are gathered in sequence order, so the
 * figure is the serial one to the bit. */
dlm_status dlm_eval_loss_dp(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                            dlm_dp *dp, const int32_t *x0, int n, uint32_t eval_step,
                            double *loss);
dlm_status dlm_eval_loss(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                         const int32_t *x0, int n, uint32_t eval_step, double *loss);

#endif
