/* Muon's update of one tensor (see muon.h). */
#include "optim/muon.h"

#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "optim/newton_schulz.h"

const char *const dlm_muon_scale_names[] = {"rms", "moonlight", NULL};

void dlm_muon_config_default(dlm_muon_config *c)
{
    *c = (dlm_muon_config){.momentum = 0.95f, .nesterov = 1, .ns_steps = 5,
                           .scale = DLM_MUON_SCALE_RMS, .lr_ratio = 1.0f};
}

int dlm_muon_takes(const dlm_param_info *p)
{
    return p->ndim == 2 && p->layer >= 0 && !p->embedding;
}

float dlm_muon_scale_factor(dlm_muon_scale s, int64_t out, int64_t in)
{
    double r = (double)out / (double)in;
    if (s == DLM_MUON_SCALE_MOONLIGHT) return (float)(0.2 * sqrt((double)(out > in ? out : in)));
    return (float)sqrt(r > 1.0 ? r : 1.0);
}

/* The stacked qkv weight holds 3 matrices (q, k, v); the others one. */
static int n_parts(const dlm_param_info *p)
{
    return strstr(p->name, "attn.qkv.") ? 3 : 1;
}

size_t dlm_muon_work_floats(const dlm_param_info *p)
{
    int k = n_parts(p);
    /* the update, qkv's packed copy of it, the serial iteration's scratch */
    return (k == 3 ? 2 : 1) * p->numel + dlm_ns_work_floats(p->local[0] / k, p->local[1]);
}

/* qkv rows come per head as [q (hs rows), k, v]; packed: the q rows of
 * every head of this shard in order, then the k rows, then the v rows, so
 * each part is this rank's row block of the whole Q, K or V. pack = 0
 * unpacks. */
static void qkv_pack(float *packed, float *rows, int64_t n_rows, int64_t C, int64_t hs, int pack)
{
    int64_t per_head = 3 * hs, heads = n_rows / per_head, part_rows = heads * hs;
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t h = r / per_head, part = (r % per_head) / hs, i = r % hs;
        float *a = packed + (part * part_rows + h * hs + i) * C, *b = rows + r * C;
        if (pack) memcpy(a, b, (size_t)C * sizeof *a);
        else memcpy(b, a, (size_t)C * sizeof *a);
    }
}

dlm_status dlm_muon_update(const dlm_muon_config *c, const dlm_param_info *p, int n_head,
                           dlm_tp *tp, dlm_ns_group *ns, float *param, const float *grad,
                           float clip, float *buf, float lr, float weight_decay, float *work)
{
    int64_t n = (int64_t)p->numel, k = n_parts(p);
    /* u: the update; mats: its matrices one after another (qkv's packed
     * copy, or u itself) */
    float mu = c->momentum, *u = work, *mats = k == 3 ? work + n : u, *ns_work = mats + n;
    for (int64_t i = 0; i < n; i++) {
        float g = clip * grad[i];
        buf[i] = mu * buf[i] + (1.0f - mu) * g;
        u[i] = c->nesterov ? (1.0f - mu) * g + mu * buf[i] : buf[i];
    }
    int64_t rows = p->local[0] / k, cols = p->local[1];   /* one part's shard */
    int64_t g_rows = p->shape[0] / k, g_cols = p->shape[1]; /* the whole part */
    if (k == 3) qkv_pack(mats, u, p->local[0], cols, p->shape[1] / n_head, 1);
    /* Frobenius norms of the whole matrices: a split tensor's sums over the group */
    double sumsq[3];
    for (int64_t j = 0; j < k; j++) sumsq[j] = dlm_sum_squares(mats + j * rows * cols, rows * cols);
    int split = p->shard.split != DLM_SPLIT_NONE && dlm_tp_size(tp) > 1;
    if (split) {
        dlm_tp_allreduce(tp, sumsq, k, 1, DLM_TP_SUM);
        DLM_CALL(dlm_tp_status(tp));
    }
    for (int64_t j = 0; j < k; j++) {
        float *x = mats + j * rows * cols, inv = (float)(1.0 / (sqrt(sumsq[j]) + 1e-7));
        for (int64_t i = 0; i < rows * cols; i++) x[i] *= inv;
        if (split) {
            DLM_CHECK(ns && ns->size == dlm_tp_size(tp), DLM_ERR_STATE,
                      "Muon on %s split over %d tensor-parallel ranks needs the group's "
                      "Newton-Schulz handle", p->name, dlm_tp_size(tp));
            DLM_CALL(ns->run(ns, x, g_rows, g_cols, p->shard.split, c->ns_steps));
        } else {
            dlm_newton_schulz(x, rows, cols, c->ns_steps, ns_work);
        }
    }
    if (k == 3) qkv_pack(mats, u, p->local[0], cols, p->shape[1] / n_head, 0);
    float step = lr * dlm_muon_scale_factor(c->scale, g_rows, g_cols), keep = 1.0f - lr * weight_decay;
    for (int64_t i = 0; i < n; i++) param[i] = keep * param[i] - step * u[i];
    return DLM_OK;
}
