/* The training step and the held-out loss, serial or data-parallel. */
#include "train/step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mpicall.h"
#include "kernels/kernels.h"
#include "parallel/tp.h"

dlm_status dlm_step_buffers_create(const dlm_model *m, int max_batch, dlm_step_buffers *b)
{
    memset(b, 0, sizeof *b);
    DLM_CALL(dlm_acts_create(m, max_batch, 1, &b->acts));
    size_t N = (size_t)max_batch * m->cfg.seq_len;
    b->inputs = malloc(N * sizeof *b->inputs);
    b->targets = malloc(N * sizeof *b->targets);
    b->weights = malloc(N * sizeof *b->weights);
    b->tok_loss = malloc(N * sizeof *b->tok_loss);
    b->dloss = malloc(N * sizeof *b->dloss);
    b->rows = malloc(N * sizeof *b->rows);
    b->row_targets = malloc(N * sizeof *b->row_targets);
    b->row_loss = malloc(N * sizeof *b->row_loss);
    b->row_dloss = malloc(N * sizeof *b->row_dloss);
    b->row_lse = malloc(N * sizeof *b->row_lse);
    b->t = malloc((size_t)max_batch * sizeof *b->t);
    b->seq_wsum = malloc((size_t)max_batch * sizeof *b->seq_wsum);
    if (!b->seq_wsum || !b->inputs || !b->targets || !b->weights || !b->tok_loss || !b->dloss || !b->t ||
        !b->rows || !b->row_targets || !b->row_loss || !b->row_dloss || !b->row_lse) {
        dlm_step_buffers_destroy(b);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating step buffers for %zu tokens", N);
    }
    return DLM_OK;
}

void dlm_step_buffers_destroy(dlm_step_buffers *b)
{
    dlm_acts_destroy(&b->acts);
    free(b->inputs);
    free(b->targets);
    free(b->weights);
    free(b->tok_loss);
    free(b->dloss);
    free(b->t);
    free(b->seq_wsum);
    free(b->rows);
    free(b->row_targets);
    free(b->row_loss);
    free(b->row_dloss);
    free(b->row_lse);
    memset(b, 0, sizeof *b);
}

/* dlm_model_backward's layer loop, telling dp (when given) as each segment
 * of the gradient arena is final so its bucket can start summing. */
static dlm_status backward_reporting(dlm_model *m, dlm_acts *a, const int32_t *inputs, int B,
                                     int causal, dlm_dp *dp)
{
    dlm_block_scratch *s = &a->scratch;
    float *dcur = s->dres_a, *dnext = s->dres_b;
    int L = m->cfg.n_layer;
    dlm_head_backward(m, a, B, dcur);
    DLM_CALL(dlm_tp_status(m->tp));
    if (dp) DLM_CALL(dlm_dp_segment_done(dp, 0));
    for (int l = L - 1; l >= 0; l--) {
        dlm_block_backward(m, a, l, dcur, dnext, B, causal);
        float *t = dcur;
        dcur = dnext, dnext = t;
        DLM_CALL(dlm_tp_status(m->tp));
        if (dp) DLM_CALL(dlm_dp_segment_done(dp, L - l));
    }
    dlm_embed_backward(m, a, inputs, dcur, B);
    if (dp) DLM_CALL(dlm_dp_segment_done(dp, L + 1));
    return DLM_OK;
}

dlm_status dlm_step_prepare(const dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                            const int32_t *x0, int B, uint32_t step, int64_t g0, int64_t G)
{
    const dlm_model_config *c = &m->cfg;
    int T = c->seq_len;
    int64_t N = (int64_t)B * T;
    dlm_objective_prepare(o, x0, B, T, step, g0, G, buf->inputs, buf->targets, buf->weights,
                          buf->t);
    for (int64_t i = 0; i < N; i++)
        DLM_CHECK(buf->targets[i] >= 0 && buf->targets[i] < c->vocab_size, DLM_ERR_ARG,
                  "token %d at position %lld of the batch is outside the vocabulary of %d ids",
                  buf->targets[i], (long long)i, c->vocab_size);
    /* The head and cross-entropy run on the rows that carry loss: mdlm's
     * masked positions, gathered; every row for AR (all carry weight) and
     * on the reference path (all_rows). */
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++)
        if (buf->weights[i] != 0.0f) buf->rows[n++] = (int32_t)i;
    buf->gather = !buf->all_rows && n < N;
    buf->n_rows = buf->gather ? n : N;
    for (int64_t j = 0; buf->gather && j < n; j++) buf->row_targets[j] = buf->targets[buf->rows[j]];
    buf->B = B;
    return DLM_OK;
}

dlm_status dlm_step_head_loss(dlm_model *m, dlm_step_buffers *buf, int64_t G, int backward,
                              double *wsum)
{
    const dlm_model_config *c = &m->cfg;
    int T = c->seq_len, B = buf->B, gather = buf->gather;
    int64_t N = (int64_t)B * T, n = buf->n_rows;
    dlm_acts *a = buf->acts;
    const int32_t *targets = gather ? buf->row_targets : buf->targets;
    float *loss = gather ? buf->row_loss : buf->tok_loss, *dloss = gather ? buf->row_dloss : buf->dloss;
    double t0 = a->timers ? dlm_now() : 0.0;
    /* vocabulary-parallel under tp: this rank's columns [v0, v0 + V) */
    int V = c->vocab_padded / m->layout.tp_size, v0 = m->layout.tp_rank * V;
    DLM_CALL(dlm_tp_xent_forward(m->tp, loss, buf->row_lse, a->logits, targets, n, V, v0,
                                 c->vocab_size));
    if (gather) {
        memset(buf->tok_loss, 0, (size_t)N * sizeof *buf->tok_loss);
        for (int64_t j = 0; j < n; j++) buf->tok_loss[buf->rows[j]] = loss[j];
    }
    double s = 0.0; /* in position order, whichever rows the head ran on */
    for (int b = 0; b < B; b++) {
        double sb = 0.0;
        for (int64_t i = (int64_t)b * T; i < (int64_t)(b + 1) * T; i++)
            if (buf->weights[i] != 0.0f) sb += (double)buf->weights[i] * (double)buf->tok_loss[i];
        buf->seq_wsum[b] = sb;
        s += sb;
    }
    *wsum = s;
    dlm_phase_lap(a->timers, DLM_PHASE_HEAD, &t0);
    if (backward) { /* the logits become dlogits */
        double denom = (double)G * T;
        for (int64_t j = 0; j < n; j++)
            dloss[j] = (float)(buf->weights[gather ? buf->rows[j] : j] / denom);
        dlm_tp_xent_backward(m->tp, a->logits, a->logits, buf->row_lse, targets, dloss, n, V, v0,
                             c->vocab_size);
        dlm_phase_lap(a->timers, DLM_PHASE_HEAD_BWD, &t0);
    }
    return DLM_OK;
}

dlm_status dlm_step_micro(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                          const int32_t *x0, int B, uint32_t step, int64_t g0, int64_t G,
                          int backward, dlm_dp *dp, double *wsum)
{
    DLM_CALL(dlm_step_prepare(m, buf, o, x0, B, step, g0, G));
    DLM_CALL(dlm_model_forward_rows(m, buf->acts, buf->inputs, B, dlm_objective_causal(o),
                                    buf->gather ? buf->rows : NULL, buf->n_rows));
    DLM_CALL(dlm_tp_status(m->tp));
    DLM_CALL(dlm_step_head_loss(m, buf, G, backward, wsum));
    if (backward)
        DLM_CALL(backward_reporting(m, buf->acts, buf->inputs, B, dlm_objective_causal(o), dp));
    return DLM_OK;
}

/* Sequences [g0, g0 + n) of a global batch of G, held in x (n,T), in
 * micro-batches of the buffers' size: each one's weighted loss sum into
 * seq (n). With backward, gradients accumulate; the last micro-batch's
 * backward reports to dp, whose buckets then start. */
static dlm_status run_sequences(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                                const int32_t *x, int64_t g0, int n, int64_t G, uint32_t step,
                                int backward, dlm_dp *dp, double *seq)
{
    int T = m->cfg.seq_len, mb = buf->acts->max_batch;
    if (backward && dp) dlm_dp_grads_begin(dp);
    for (int i = 0; i < n; i += mb) {
        int B = n - i < mb ? n - i : mb;
        double s;
        dlm_dp *report = backward && i + B == n ? dp : NULL;
        DLM_CALL(dlm_step_micro(m, buf, o, x + (int64_t)i * T, B, step, g0 + i, G, backward,
                                report, &s));
        memcpy(seq + i, buf->seq_wsum, (size_t)B * sizeof *seq);
    }
    return DLM_OK;
}

static double sum_in_order(const double *v, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    return s;
}

dlm_status dlm_batch_loss(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                          const int32_t *x0, int G, uint32_t step, int backward, double *loss)
{
    double *seq = malloc((size_t)G * sizeof *seq);
    DLM_CHECK(seq != NULL, DLM_ERR_NOMEM, "per-sequence losses of %d sequences", G);
    if (backward) dlm_model_zero_grad(m);
    dlm_status st = run_sequences(m, buf, o, x0, 0, G, G, step, backward, NULL, seq);
    *loss = sum_in_order(seq, G) / ((double)G * m->cfg.seq_len);
    free(seq);
    DLM_CALL(st);
    return DLM_OK;
}

dlm_status dlm_train_step_dp(dlm_model *m, dlm_optimizer *opt, dlm_step_buffers *buf,
                             const dlm_objective *o, dlm_dp *dp, const int32_t *x, int G,
                             uint32_t step, double lr, double *loss, double *grad_norm)
{
    int p = dlm_dp_size(dp), n = G / p;
    DLM_CHECK(G % p == 0, DLM_ERR_ARG, "global batch %d does not split over %d data-parallel ranks",
              G, p);
    double *seq = malloc((size_t)G * sizeof *seq);
    DLM_CHECK(seq != NULL, DLM_ERR_NOMEM, "per-sequence losses of %d sequences", G);
    dlm_model_zero_grad(m);
    int64_t g0 = (int64_t)dlm_dp_rank(dp) * n;
    /* this rank's sums go where rank 0's would if it ran them all */
    dlm_status st = run_sequences(m, buf, o, x, g0, n, G, step, 1, dp, seq + g0);
    if (st == DLM_OK && dp) st = dlm_dp_grads_finish(dp);
    if (st == DLM_OK && dp) st = dlm_dp_allgather(dp, seq + g0, n, seq);
    if (st == DLM_OK) *loss = sum_in_order(seq, G) / ((double)G * m->cfg.seq_len);
    free(seq);
    DLM_CALL(st);
    /* every rank sees the same loss and gradients: the same verdict everywhere */
    dlm_phase_timers *timers = buf->acts->timers;
    double t0 = timers ? dlm_now() : 0.0;
    DLM_CALL(dlm_step_update(m, opt, dp, MPI_COMM_NULL, *loss, step, lr, grad_norm));
    dlm_phase_lap(timers, DLM_PHASE_OPTIM, &t0);
    return DLM_OK;
}

dlm_status dlm_step_update(dlm_model *m, dlm_optimizer *opt, dlm_dp *dp, MPI_Comm stages_comm,
                           double loss, uint32_t step, double lr, double *grad_norm)
{
    DLM_CHECK(isfinite(loss), DLM_ERR_NUMERIC,
              "loss is not finite at step %u (%g); parameters left unchanged", step + 1, loss);
    /* the norm over the whole model: every tp rank's and pipeline stage's share, summed */
    const char *bad;
    double sumsq = dlm_optimizer_grad_sumsq(opt, m, &bad);
    dlm_tp_allreduce(m->tp, &sumsq, 1, 1, DLM_TP_SUM);
    DLM_CALL(dlm_tp_status(m->tp));
    if (stages_comm != MPI_COMM_NULL)
        DLM_MPI(MPI_Allreduce(MPI_IN_PLACE, &sumsq, 1, MPI_DOUBLE, MPI_SUM, stages_comm));
    if (dlm_dp_zero(dp)) DLM_CALL(dlm_dp_sum(dp, &sumsq, 1)); /* each rank summed its part */
    DLM_CHECK(isfinite(sumsq), DLM_ERR_NUMERIC,
              "gradient of %s is not finite at step %u; parameters left unchanged",
              bad ? bad
                  : stages_comm == MPI_COMM_NULL && !dlm_dp_zero(dp)
                      ? "a tensor on another tensor-parallel rank"
                                                 : "a tensor on another rank",
              step + 1);
    *grad_norm = sqrt(sumsq);
    DLM_CALL(dlm_optimizer_apply(opt, m, lr, *grad_norm));
    DLM_CALL(dlm_dp_params_gather(dp, m->param_arena.base)); /* ZeRO-1: the updated parts */
    return DLM_OK;
}

dlm_status dlm_train_step(dlm_model *m, dlm_optimizer *opt, dlm_step_buffers *buf,
                          const dlm_objective *o, const int32_t *x0, int G, uint32_t step,
                          double lr, double *loss, double *grad_norm)
{
    return dlm_train_step_dp(m, opt, buf, o, NULL, x0, G, step, lr, loss, grad_norm);
}

dlm_status dlm_eval_loss_dp(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                            dlm_dp *dp, const int32_t *x0, int n, uint32_t eval_step,
                            double *loss)
{
    int p = dlm_dp_size(dp), r = dlm_dp_rank(dp), mb = buf->acts->max_batch, T = m->cfg.seq_len;
    int n_micro = (n + mb - 1) / mb;
    double *seq = malloc((size_t)n * sizeof *seq);
    int *counts = malloc((size_t)p * sizeof *counts);
    if (!seq || !counts) {
        free(seq), free(counts);
        DLM_CHECK(0, DLM_ERR_NOMEM, "per-sequence losses of %d sequences", n);
    }
    /* rank q runs micro-batches [q n_micro / p, (q+1) n_micro / p): the
     * serial run's micro-batches, so each sequence's sum is the serial one */
    int first = 0;
    for (int q = 0; q < p; q++) {
        int a = (int)((int64_t)q * n_micro / p * mb), b = (int)((int64_t)(q + 1) * n_micro / p * mb);
        if (a > n) a = n;
        if (b > n) b = n;
        counts[q] = b - a;
        if (q == r) first = a;
    }
    dlm_status st = run_sequences(m, buf, o, x0 + (int64_t)first * T, first, counts[r], n,
                                  eval_step, 0, NULL, seq + first);
    if (st == DLM_OK && dp) st = dlm_dp_allgatherv(dp, seq + first, counts, seq);
    if (st == DLM_OK) *loss = sum_in_order(seq, n) / ((double)n * T);
    free(seq);
    free(counts);
    DLM_CALL(st);
    return DLM_OK;
}

dlm_status dlm_eval_loss(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                         const int32_t *x0, int n, uint32_t eval_step, double *loss)
{
    return dlm_eval_loss_dp(m, buf, o, NULL, x0, n, eval_step, loss);
}
