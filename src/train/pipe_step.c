/* A pipeline stage's training step (see pipe_step.h). */
#include "train/pipe_step.h"

#include <stdlib.h>
#include <string.h>

#include "core/mpicall.h"
#include "train/step.h"

struct dlm_pipe_step {
    MPI_Comm comm;
    MPI_Comm emb_comm; /* first and last stage with a tied head: the embedding group */
    int stage, n_stages, last;
    dlm_model *m;
    int micro, n_micro, n_slots;
    dlm_step_buffers *pool; /* n_slots, micro-batch k in slot k % n_slots */
    dlm_pipe_stats stats;
    /* the step being run */
    const dlm_objective *o;
    const int32_t *x;
    int64_t g0, G;
    int n_seq;    /* sequences in x: micro-batch k has min(micro, n_seq - k micro) */
    int training; /* 0: forward only (the held-out loss) */
    uint32_t step;
    double *seq;  /* (n_seq) this rank's per-sequence loss sums, last stage */
    int seq_cap;
};

dlm_status dlm_pipe_step_create(MPI_Comm pp_comm, dlm_model *m, int micro, int n_micro,
                                dlm_pipe_step **out)
{
    *out = NULL;
    DLM_CHECK(micro >= 1 && n_micro >= 1, DLM_ERR_ARG, "%d micro-batches of %d sequences",
              n_micro, micro);
    dlm_pipe_step *ps = calloc(1, sizeof *ps);
    DLM_CHECK(ps != NULL, DLM_ERR_NOMEM, "the pipeline step");
    ps->comm = pp_comm;
    ps->n_stages = 1;
    if (pp_comm != MPI_COMM_NULL) {
        int e = MPI_Comm_size(pp_comm, &ps->n_stages);
        if (e == MPI_SUCCESS) e = MPI_Comm_rank(pp_comm, &ps->stage);
        if (e != MPI_SUCCESS) {
            free(ps);
            return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Comm_size");
        }
    }
    ps->last = ps->stage == ps->n_stages - 1;
    ps->emb_comm = MPI_COMM_NULL;
    if (m->cfg.tied_head && ps->n_stages > 1) { /* collective over pp_comm */
        int in = ps->stage == 0 || ps->last;
        int e = MPI_Comm_split(pp_comm, in ? 0 : MPI_UNDEFINED, ps->stage, &ps->emb_comm);
        if (e != MPI_SUCCESS) {
            free(ps);
            return dlm_mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Comm_split (embedding group)");
        }
    }
    ps->m = m;
    ps->micro = micro, ps->n_micro = n_micro;
    /* 1F1B holds at most pp - s micro-batches on stage s */
    ps->n_slots = ps->n_stages - ps->stage < n_micro ? ps->n_stages - ps->stage : n_micro;
    ps->pool = calloc((size_t)ps->n_slots, sizeof *ps->pool);
    ps->seq_cap = n_micro * micro;
    ps->seq = malloc((size_t)ps->seq_cap * sizeof *ps->seq);
    dlm_status st = ps->pool && ps->seq ? DLM_OK : DLM_ERR_NOMEM;
    for (int i = 0; i < ps->n_slots && st == DLM_OK; i++)
        st = dlm_step_buffers_create(m, micro, &ps->pool[i]);
    if (st != DLM_OK) {
        int slots = ps->n_slots;
        dlm_pipe_step_destroy(&ps);
        DLM_CHECK(0, st, "%d step buffers of %d sequences for a pipeline stage", slots, micro);
    }
    *out = ps;
    return DLM_OK;
}

void dlm_pipe_step_destroy(dlm_pipe_step **pps)
{
    dlm_pipe_step *ps = *pps;
    if (!ps) return;
    for (int i = 0; ps->pool && i < ps->n_slots; i++) dlm_step_buffers_destroy(&ps->pool[i]);
    free(ps->pool);
    free(ps->seq);
    if (ps->emb_comm != MPI_COMM_NULL) MPI_Comm_free(&ps->emb_comm);
    free(ps);
    *pps = NULL;
}

const dlm_pipe_stats *dlm_pipe_step_stats(const dlm_pipe_step *ps) { return &ps->stats; }

static dlm_status stage_forward(void *ctx, int k, const float *in, float *out)
{
    dlm_pipe_step *ps = ctx;
    dlm_step_buffers *buf = &ps->pool[k % ps->n_slots];
    int T = ps->m->cfg.seq_len;
    int64_t first = (int64_t)k * ps->micro;
    int b = ps->n_seq - first < ps->micro ? (int)(ps->n_seq - first) : ps->micro;
    DLM_CALL(dlm_step_prepare(ps->m, buf, ps->o, ps->x + first * T, b, ps->step, ps->g0 + first,
                              ps->G));
    DLM_CALL(dlm_model_stage_forward(ps->m, buf->acts, buf->inputs, in, b,
                                     dlm_objective_causal(ps->o), buf->gather ? buf->rows : NULL,
                                     buf->n_rows));
    if (!ps->last) {
        memcpy(out, dlm_stage_output(ps->m, buf->acts),
               (size_t)b * T * ps->m->cfg.d_model * sizeof *out);
        return DLM_OK;
    }
    double wsum;
    DLM_CALL(dlm_step_head_loss(ps->m, buf, ps->G, ps->training, &wsum));
    memcpy(ps->seq + first, buf->seq_wsum, (size_t)b * sizeof *ps->seq);
    return DLM_OK;
}

static dlm_status stage_backward(void *ctx, int k, const float *dout, float *din)
{
    dlm_pipe_step *ps = ctx;
    dlm_step_buffers *buf = &ps->pool[k % ps->n_slots];
    dlm_model_stage_backward(ps->m, buf->acts, buf->inputs, dout, din, buf->B,
                             dlm_objective_causal(ps->o));
    return dlm_tp_status(ps->m->tp);
}

dlm_status dlm_train_step_pp(dlm_pipe_step *ps, dlm_optimizer *opt, const dlm_objective *o,
                             dlm_dp *dp, const int32_t *x, int G, uint32_t step, double lr,
                             double *loss, double *grad_norm)
{
    dlm_model *m = ps->m;
    int p = dlm_dp_size(dp), n = ps->n_micro * ps->micro;
    DLM_CHECK(G == n * p, DLM_ERR_ARG,
              "global batch %d is not %d data-parallel ranks x %d micro-batches of %d", G, p,
              ps->n_micro, ps->micro);
    ps->o = o, ps->x = x, ps->G = G, ps->step = step, ps->n_seq = n, ps->training = 1;
    ps->g0 = (int64_t)dlm_dp_rank(dp) * n;
    dlm_model_zero_grad(m);
    dlm_pipe_stage stage = {.ctx = ps, .forward = stage_forward, .backward = stage_backward};
    size_t act = (size_t)ps->micro * m->cfg.seq_len * m->cfg.d_model;
    DLM_CALL(dlm_pipe_run(ps->comm, &stage, DLM_PIPE_1F1B, ps->n_micro, act, &ps->stats));
    /* a tied head: the embedding's gradient is the first stage's (lookup) plus the last
     * stage's (head), summed on both so their copies stay the same */
    if (ps->emb_comm != MPI_COMM_NULL) {
        const dlm_param_info *w = &m->table[0]; /* wte comes first in every stage holding it */
        DLM_MPI(MPI_Allreduce(MPI_IN_PLACE, m->grad_arena.base + w->offset, (int)w->numel,
                              MPI_FLOAT, MPI_SUM, ps->emb_comm));
    }
    if (dp) {
        dlm_dp_grads_begin(dp);
        DLM_CALL(dlm_dp_grads_finish(dp));
    }
    /* the last stage's loss, in global sequence order as dlm_train_step_dp sums it */
    double total = 0.0;
    if (ps->last) {
        double *all = malloc((size_t)G * sizeof *all);
        DLM_CHECK(all != NULL, DLM_ERR_NOMEM, "per-sequence losses of %d sequences", G);
        dlm_status st = dp ? dlm_dp_allgather(dp, ps->seq, n, all) : DLM_OK;
        if (!dp) memcpy(all, ps->seq, (size_t)n * sizeof *all);
        for (int i = 0; st == DLM_OK && i < G; i++) total += all[i];
        free(all);
        DLM_CALL(st);
    }
    if (ps->comm != MPI_COMM_NULL)
        DLM_MPI(MPI_Bcast(&total, 1, MPI_DOUBLE, ps->n_stages - 1, ps->comm));
    *loss = total / ((double)G * m->cfg.seq_len);
    DLM_CALL(dlm_step_update(m, opt, dp, ps->comm, *loss, step, lr, grad_norm));
    return DLM_OK;
}

dlm_status dlm_eval_loss_pp(dlm_pipe_step *ps, const dlm_objective *o, const int32_t *x0, int n,
                            uint32_t eval_step, double *loss)
{
    dlm_model *m = ps->m;
    if (n > ps->seq_cap) {
        double *seq = realloc(ps->seq, (size_t)n * sizeof *seq);
        DLM_CHECK(seq != NULL, DLM_ERR_NOMEM, "per-sequence losses of %d sequences", n);
        ps->seq = seq, ps->seq_cap = n;
    }
    ps->o = o, ps->x = x0, ps->G = n, ps->g0 = 0, ps->step = eval_step, ps->n_seq = n;
    ps->training = 0;
    int n_micro = (n + ps->micro - 1) / ps->micro;
    dlm_pipe_stage stage = {.ctx = ps, .forward = stage_forward, .backward = NULL};
    size_t act = (size_t)ps->micro * m->cfg.seq_len * m->cfg.d_model;
    DLM_CALL(dlm_pipe_run(ps->comm, &stage, DLM_PIPE_FORWARD_ONLY, n_micro, act, NULL));
    double total = 0.0;
    for (int i = 0; ps->last && i < n; i++) total += ps->seq[i];
    if (ps->comm != MPI_COMM_NULL)
        DLM_MPI(MPI_Bcast(&total, 1, MPI_DOUBLE, ps->n_stages - 1, ps->comm));
    *loss = total / ((double)n * m->cfg.seq_len);
    return DLM_OK;
}
