/* Single-rank training step and held-out loss. */
#include "train/step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

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
    b->t = malloc((size_t)max_batch * sizeof *b->t);
    if (!b->inputs || !b->targets || !b->weights || !b->tok_loss || !b->dloss || !b->t ||
        !b->rows || !b->row_targets || !b->row_loss || !b->row_dloss) {
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
    free(b->rows);
    free(b->row_targets);
    free(b->row_loss);
    free(b->row_dloss);
    memset(b, 0, sizeof *b);
}

dlm_status dlm_step_micro(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                          const int32_t *x0, int B, uint32_t step, int64_t g0, int64_t G,
                          int backward, double *wsum)
{
    const dlm_model_config *c = &m->cfg;
    int T = c->seq_len;
    int64_t N = (int64_t)B * T;
    int causal = dlm_objective_causal(o);
    dlm_objective_prepare(o, x0, B, T, step, g0, G, buf->inputs, buf->targets, buf->weights,
                          buf->t);
    for (int64_t i = 0; i < N; i++)
        DLM_CHECK(buf->targets[i] >= 0 && buf->targets[i] < c->vocab_size, DLM_ERR_ARG,
                  "token %d at position %lld of the batch is outside the vocabulary of %d ids",
                  buf->targets[i], (long long)i, c->vocab_size);
    dlm_acts *a = buf->acts;
    /* The head and cross-entropy run on the rows that carry loss: mdlm's
     * masked positions, gathered; every row for AR (all carry weight) and
     * on the reference path (all_rows). */
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++)
        if (buf->weights[i] != 0.0f) buf->rows[n++] = (int32_t)i;
    int gather = !buf->all_rows && n < N;
    if (!gather) n = N;
    for (int64_t j = 0; gather && j < n; j++) buf->row_targets[j] = buf->targets[buf->rows[j]];
    const int32_t *targets = gather ? buf->row_targets : buf->targets;
    float *loss = gather ? buf->row_loss : buf->tok_loss, *dloss = gather ? buf->row_dloss : buf->dloss;
    DLM_CALL(dlm_model_forward_rows(m, a, buf->inputs, B, causal, gather ? buf->rows : NULL, n));
    double t0 = a->timers ? dlm_now() : 0.0;
    dlm_xent_forward(loss, a->logits, targets, n, c->vocab_padded, c->vocab_size);
    if (gather) {
        memset(buf->tok_loss, 0, (size_t)N * sizeof *buf->tok_loss);
        for (int64_t j = 0; j < n; j++) buf->tok_loss[buf->rows[j]] = loss[j];
    }
    double s = 0.0; /* in position order, whichever rows the head ran on */
    for (int64_t i = 0; i < N; i++)
        if (buf->weights[i] != 0.0f) s += (double)buf->weights[i] * (double)buf->tok_loss[i];
    *wsum = s;
    dlm_phase_lap(a->timers, DLM_PHASE_HEAD, &t0);
    if (backward) {
        double denom = (double)G * T;
        for (int64_t j = 0; j < n; j++)
            dloss[j] = (float)(buf->weights[gather ? buf->rows[j] : j] / denom);
        dlm_xent_backward(a->logits, a->logits, targets, dloss, n, c->vocab_padded,
                          c->vocab_size);
        dlm_phase_lap(a->timers, DLM_PHASE_HEAD_BWD, &t0);
        dlm_model_backward(m, a, buf->inputs, B, causal);
    }
    return DLM_OK;
}

dlm_status dlm_batch_loss(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                          const int32_t *x0, int G, uint32_t step, int backward, double *loss)
{
    int T = m->cfg.seq_len, mb = buf->acts->max_batch;
    if (backward) dlm_model_zero_grad(m);
    double total = 0.0; /* added in sequence order */
    for (int g0 = 0; g0 < G; g0 += mb) {
        int B = G - g0 < mb ? G - g0 : mb;
        double s = 0.0;
        DLM_CALL(dlm_step_micro(m, buf, o, x0 + (int64_t)g0 * T, B, step, g0, G, backward, &s));
        total += s;
    }
    *loss = total / ((double)G * T);
    return DLM_OK;
}

dlm_status dlm_train_step(dlm_model *m, dlm_optimizer *opt, dlm_step_buffers *buf,
                          const dlm_objective *o, const int32_t *x0, int G, uint32_t step,
                          double lr, double *loss, double *grad_norm)
{
    DLM_CALL(dlm_batch_loss(m, buf, o, x0, G, step, 1, loss));
    DLM_CHECK(isfinite(*loss), DLM_ERR_NUMERIC,
              "loss is not finite at step %u (%g); parameters left unchanged", step + 1, *loss);
    dlm_phase_timers *timers = buf->acts->timers;
    double t0 = timers ? dlm_now() : 0.0;
    DLM_CALL(dlm_optimizer_step(opt, m, lr, grad_norm));
    dlm_phase_lap(timers, DLM_PHASE_OPTIM, &t0);
    return DLM_OK;
}

dlm_status dlm_eval_loss(dlm_model *m, dlm_step_buffers *buf, const dlm_objective *o,
                         const int32_t *x0, int n, uint32_t eval_step, double *loss)
{
    return dlm_batch_loss(m, buf, o, x0, n, eval_step, 0, loss);
}
