/* AdamW state and update, clipping, learning-rate schedule. */
#include "optim/optim.h"

#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "core/names.h"
#include "kernels/kernels.h"

#define PI 3.14159265358979323846

const char *const dlm_lr_kind_names[] = {"cosine", "constant", "wsd", NULL};

dlm_status dlm_lr_kind_parse(const char *name, dlm_lr_kind *kind)
{
    int v;
    DLM_CALL(dlm_names_parse(dlm_lr_kind_names, "learning-rate schedule", name, &v));
    *kind = (dlm_lr_kind)v;
    return DLM_OK;
}

double dlm_lr_at(const dlm_lr_schedule *s, int64_t step)
{
    if (s->warmup > 0 && step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    if (s->kind == DLM_LR_CONSTANT || s->total <= s->warmup) return s->lr;
    if (s->kind == DLM_LR_WSD) {
        double decay_steps = s->decay_fraction * (double)s->total;
        double start = (double)s->total - decay_steps;
        if ((double)step < start || decay_steps <= 0.0) return s->lr;
        double f = ((double)step - start) / decay_steps;
        if (f > 1.0) f = 1.0;
        return s->lr + (s->min_lr - s->lr) * f;
    }
    double progress = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    if (progress > 1.0) progress = 1.0;
    return s->min_lr + 0.5 * (s->lr - s->min_lr) * (1.0 + cos(PI * progress));
}

double dlm_ema_decay_at(double decay, int64_t n)
{
    double warm = (1.0 + (double)n) / (10.0 + (double)n);
    return decay < warm ? decay : warm;
}

void dlm_ema_update(float *ema, const float *p, int64_t n_floats, double decay, int64_t n)
{
    float d = (float)dlm_ema_decay_at(decay, n), c = 1.0f - d;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n_floats; i++) ema[i] = d * ema[i] + c * p[i];
}

const char *const dlm_optimizer_kind_names[] = {"adamw", "muon", NULL};

void dlm_adamw_config_default(dlm_adamw_config *c)
{
    c->beta1 = 0.9f;
    c->beta2 = 0.95f;
    c->eps = 1e-8f;
    c->weight_decay = 0.1f;
    c->grad_clip = 1.0f;
}

dlm_status dlm_optimizer_create(const dlm_model *model, const dlm_adamw_config *cfg,
                                dlm_optimizer **out)
{
    dlm_range all = {0, model->n_params};
    return dlm_optimizer_create_ranges(model, cfg, &all, 1, out);
}

dlm_status dlm_optimizer_create_ranges(const dlm_model *model, const dlm_adamw_config *cfg,
                                       const dlm_range *ranges, int n_ranges, dlm_optimizer **out)
{
    *out = NULL;
    dlm_optimizer *o = calloc(1, sizeof *o);
    DLM_CHECK(o != NULL, DLM_ERR_NOMEM, "allocating the optimizer");
    o->cfg = *cfg;
    dlm_status st = DLM_OK;
    o->ranges = malloc((size_t)(n_ranges > 0 ? n_ranges : 1) * sizeof *o->ranges);
    DLM_CHECK_GOTO(st, o->ranges != NULL, DLM_ERR_NOMEM, fail, "%d optimizer ranges", n_ranges);
    for (int r = 0; r < n_ranges; r++) {
        DLM_CHECK_GOTO(st, ranges[r].lo <= ranges[r].hi && ranges[r].hi <= model->n_params,
                       DLM_ERR_ARG, fail, "optimizer range %d [%zu, %zu) outside the %zu parameters",
                       r, ranges[r].lo, ranges[r].hi, model->n_params);
        o->ranges[r] = ranges[r];
        o->n_floats += ranges[r].hi - ranges[r].lo;
    }
    o->n_ranges = n_ranges;
    DLM_CALL_GOTO(st, dlm_arena_create(o->n_floats + 1, &o->m), fail);
    DLM_CALL_GOTO(st, dlm_arena_create(o->n_floats + 1, &o->v), fail);
    *out = o;
    return DLM_OK;
fail:
    dlm_optimizer_destroy(&o);
    return st;
}

void dlm_optimizer_destroy(dlm_optimizer **po)
{
    dlm_optimizer *o = *po;
    if (!o) return;
    dlm_arena_destroy(&o->m);
    dlm_arena_destroy(&o->v);
    free(o->muon_work);
    free(o->ranges);
    free(o);
    *po = NULL;
}

/* The part [*a, *b) of tensor p inside range r; 0 if none. */
static int overlap(const dlm_param_info *p, dlm_range r, size_t *a, size_t *b)
{
    *a = r.lo > p->offset ? r.lo : p->offset;
    *b = r.hi < p->offset + p->numel ? r.hi : p->offset + p->numel;
    return *a < *b;
}

dlm_status dlm_optimizer_use_muon(dlm_optimizer *opt, const dlm_model *model,
                                  const dlm_muon_config *c, dlm_ns_group *ns)
{
    size_t work = 0;
    for (int i = 0; i < model->n_tensors; i++) {
        const dlm_param_info *p = &model->table[i];
        if (!dlm_muon_takes(p)) continue;
        size_t held = 0, a, b;
        for (int r = 0; r < opt->n_ranges; r++)
            if (overlap(p, opt->ranges[r], &a, &b)) held += b - a;
        DLM_CHECK(held == p->numel, DLM_ERR_ARG,
                  "Muon needs each weight matrix whole on the rank that updates it, but this "
                  "optimizer holds %zu of the %zu floats of %s (ZeRO-1 shards them): set "
                  "parallel.zero = 0 or train.optimizer = \"adamw\"", held, p->numel, p->name);
        size_t w = dlm_muon_work_floats(p);
        work = w > work ? w : work;
    }
    free(opt->muon_work);
    opt->muon_work = malloc((work + 1) * sizeof *opt->muon_work);
    DLM_CHECK(opt->muon_work != NULL, DLM_ERR_NOMEM, "Muon's scratch (%zu floats)", work);
    opt->muon = 1, opt->muon_cfg = *c, opt->ns = ns;
    return DLM_OK;
}

double dlm_optimizer_grad_sumsq(const dlm_optimizer *opt, const dlm_model *model,
                                const char **bad_tensor)
{
    const float *g = model->grad_arena.base;
    /* ranges, then tensors in table order, each sum in fixed chunks: the norm is reproducible */
    double sumsq = 0.0;
    if (bad_tensor) *bad_tensor = NULL;
    for (int r = 0; r < opt->n_ranges; r++)
        for (int i = 0; i < model->n_tensors; i++) {
            const dlm_param_info *p = &model->table[i];
            size_t a, b;
            if (!dlm_param_counts_in_norm(p, &model->layout) || !overlap(p, opt->ranges[r], &a, &b))
                continue;
            double s = dlm_sum_squares(g + a, (int64_t)(b - a));
            if (!isfinite(s) && bad_tensor && !*bad_tensor) *bad_tensor = p->name;
            sumsq += s;
        }
    return sumsq;
}

dlm_status dlm_optimizer_apply(dlm_optimizer *opt, dlm_model *model, double lr, double grad_norm)
{
    float *g = model->grad_arena.base;
    float clip = dlm_clip_factor(grad_norm, opt->cfg.grad_clip);
    opt->t++;
    size_t base = 0; /* where range r's moments start */
    for (int r = 0; r < opt->n_ranges; base += opt->ranges[r].hi - opt->ranges[r].lo, r++)
        for (int i = 0; i < model->n_tensors; i++) {
            const dlm_param_info *p = &model->table[i];
            size_t a, b;
            if (!overlap(p, opt->ranges[r], &a, &b)) continue;
            size_t at = base + (a - opt->ranges[r].lo);
            if (opt->muon && dlm_muon_takes(p)) { /* whole: dlm_optimizer_use_muon checked */
                DLM_CALL(dlm_muon_update(&opt->muon_cfg, p, model->cfg.n_head, model->tp, opt->ns,
                                         model->param_arena.base + a, g + a, clip,
                                         opt->m.base + at, (float)(lr * opt->muon_cfg.lr_ratio),
                                         p->decay ? opt->cfg.weight_decay : 0.0f, opt->muon_work));
                continue;
            }
            dlm_adamw_update(model->param_arena.base + a, g + a, clip, opt->m.base + at,
                             opt->v.base + at, (int64_t)(b - a), (float)lr, opt->cfg.beta1,
                             opt->cfg.beta2, opt->cfg.eps, p->decay ? opt->cfg.weight_decay : 0.0f,
                             opt->t);
        }
    return DLM_OK;
}

void dlm_optimizer_ema_update(const dlm_optimizer *opt, float *ema, const float *params,
                              double decay, int64_t n)
{
    for (int r = 0; r < opt->n_ranges; r++) {
        dlm_ema_update(ema, params + opt->ranges[r].lo,
                       (int64_t)(opt->ranges[r].hi - opt->ranges[r].lo), decay, n);
        ema += opt->ranges[r].hi - opt->ranges[r].lo;
    }
}

void dlm_optimizer_ema_init(const dlm_optimizer *opt, float *ema, const float *params)
{
    for (int r = 0; r < opt->n_ranges; r++) {
        size_t len = opt->ranges[r].hi - opt->ranges[r].lo;
        memcpy(ema, params + opt->ranges[r].lo, len * sizeof *ema);
        ema += len;
    }
}

dlm_status dlm_optimizer_step(dlm_optimizer *opt, dlm_model *model, double lr, double *grad_norm)
{
    const char *bad;
    double sumsq = dlm_optimizer_grad_sumsq(opt, model, &bad);
    DLM_CHECK(!bad, DLM_ERR_NUMERIC, "gradient of %s is not finite; parameters left unchanged",
              bad);
    *grad_norm = sqrt(sumsq);
    DLM_CALL(dlm_optimizer_apply(opt, model, lr, *grad_norm));
    return DLM_OK;
}
