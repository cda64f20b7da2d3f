/* dlm-train's run: see trainer.h. */
#define _GNU_SOURCE
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/timer.h"
#include "diffusion/objective.h"
#include "io/checkpoint.h"
#include "io/loader.h"
#include "io/runfile.h"
#include "io/synthetic.h"
#include "kernels/blis_info.h"
#include "model/model.h"
#include "optim/optim.h"
#include "train/step.h"

#ifndef DLM_REVISION
#define DLM_REVISION "unknown"
#endif

struct dlm_trainer {
    dlm_run_config cfg;
    char *config_text;
    dlm_trainer_options options;
    /* data */
    int synthetic;
    dlm_iid_source iid;
    dlm_loader train, val;
    int has_val;
    int32_t *val_x;      /* (n_val, T) fixed validation chunks */
    int n_val;
    double val_bytes;    /* text bytes in the validation chunks (byte vocabularies) */
    int32_t *batch;      /* (G, T) */
    /* model */
    dlm_model_config mcfg;
    char shape[128];
    dlm_model *model;
    dlm_optimizer *opt;
    dlm_step_buffers buf;
    dlm_objective obj;
    dlm_lr_schedule lrs;
    float *ema;
    dlm_runfile *rf;
    int64_t step, tokens;
};

static dlm_status open_data(dlm_trainer *t)
{
    const dlm_run_config *c = &t->cfg;
    int T = c->model.seq_len;
    dlm_model_config_bytes(&t->mcfg, c->model.layers, c->model.width, c->model.heads, T);
    if (c->data.source == DLM_DATA_SYNTHETIC) {
        t->synthetic = 1;
        dlm_iid_source_default(&t->iid, c->train.seed);
        t->n_val = c->train.val_chunks;
        t->val_x = malloc((size_t)t->n_val * T * sizeof *t->val_x);
        DLM_CHECK(t->val_x != NULL, DLM_ERR_NOMEM, "validation chunks");
        for (int i = 0; i < t->n_val; i++)
            dlm_iid_fill(&t->iid, DLM_HELDOUT_SAMPLE0 + (uint64_t)i, T, t->val_x + (int64_t)i * T);
        t->has_val = 1;
        t->val_bytes = (double)t->n_val * T;
        DLM_INFO("data: built-in synthetic source, 16 symbols i.i.d., entropy %.4f nats/token",
                 dlm_iid_entropy(&t->iid));
        return DLM_OK;
    }
    const char *paths[DLM_CONFIG_MAX_PATHS];
    for (int i = 0; i < c->data.n_train_paths; i++) paths[i] = c->data.train_paths[i];
    DLM_CALL(dlm_loader_open(paths, c->data.n_train_paths, c->data.format, T, c->train.seed,
                             &t->train));
    const dlm_shard_meta *m = &t->train.meta;
    dlm_model_config_vocab(&t->mcfg, m->vocab_size, m->separator_id);
    DLM_INFO("data: %d train shard(s), %lld windows of %d tokens, vocabulary %d (%s)",
             c->data.n_train_paths, (long long)t->train.first_window[t->train.n_shards], T,
             m->vocab_size, m->tokenizer);
    if (c->data.n_val_paths == 0) {
        DLM_WARN("data.val is empty: no validation during training");
        return DLM_OK;
    }
    for (int i = 0; i < c->data.n_val_paths; i++) paths[i] = c->data.val_paths[i];
    DLM_CALL(dlm_loader_open(paths, c->data.n_val_paths, c->data.format, T, c->train.seed,
                             &t->val));
    DLM_CHECK(t->val.meta.vocab_size == m->vocab_size, DLM_ERR_FORMAT,
              "validation shards have vocabulary %d, training shards %d", t->val.meta.vocab_size,
              m->vocab_size);
    int64_t avail = dlm_loader_n_chunks(&t->val);
    t->n_val = (int)(avail < c->train.val_chunks ? avail : c->train.val_chunks);
    DLM_CHECK(t->n_val > 0, DLM_ERR_FORMAT, "validation shards hold no chunk of %d tokens", T);
    t->val_x = malloc((size_t)t->n_val * T * sizeof *t->val_x);
    DLM_CHECK(t->val_x != NULL, DLM_ERR_NOMEM, "validation chunks");
    int64_t bytes = 0;
    for (int i = 0; i < t->n_val; i++) {
        int32_t *x = t->val_x + (int64_t)i * T;
        dlm_loader_chunk(&t->val, i, x);
        for (int j = 0; j < T; j++) bytes += x[j] != m->separator_id;
    }
    t->val_bytes = !strcmp(m->tokenizer, "bytes") ? (double)bytes : 0.0; /* bits/byte only for bytes */
    t->has_val = 1;
    return DLM_OK;
}

static void describe_shape(dlm_trainer *t)
{
    const dlm_model_config *m = &t->mcfg;
    snprintf(t->shape, sizeof t->shape, "L=%d d=%d H=%d T=%d V=%d tied=%d", m->n_layer,
             m->d_model, m->n_head, m->seq_len, m->vocab_padded, m->tied_head);
}

static dlm_status resume_or_init(dlm_trainer *t, int64_t *keep_through)
{
    char dir[DLM_CONFIG_PATH_MAX + 32], path[DLM_CONFIG_PATH_MAX + 64];
    int found = 0;
    snprintf(dir, sizeof dir, "%s", t->cfg.run.dir);
    DLM_CALL(dlm_ckpt_find_latest(dir, path, sizeof path, &found));
    dlm_model *m = t->model;
    if (!found) {
        dlm_model_init(m, t->cfg.train.seed);
        if (t->ema) memcpy(t->ema, m->param_arena.base, m->n_params * sizeof(float));
        *keep_through = 0;
        return DLM_OK;
    }
    dlm_ckpt_state st = {0};
    DLM_CALL(dlm_ckpt_read(path, m->table, m->n_tensors, t->shape, m->param_arena.base, t->ema,
                           t->opt->m.base, t->opt->v.base, &st));
    t->step = st.step;
    t->tokens = st.tokens;
    t->opt->t = st.adam_t;
    dlm_ckpt_state_free(&st);
    *keep_through = t->step;
    DLM_INFO("resuming from %s at step %lld", path, (long long)t->step);
    return DLM_OK;
}

dlm_status dlm_trainer_create(const dlm_run_config *cfg, const dlm_trainer_options *opt,
                              dlm_trainer **out)
{
    *out = NULL;
    dlm_trainer *t = calloc(1, sizeof *t);
    DLM_CHECK(t != NULL, DLM_ERR_NOMEM, "allocating the trainer");
    dlm_status st;
    t->cfg = *cfg;
    if (opt) t->options = *opt;
    DLM_CALL_GOTO(st, dlm_run_config_to_text(cfg, &t->config_text), fail);
    DLM_CALL_GOTO(st, open_data(t), fail);
    t->mcfg.tied_head = cfg->model.tied_head;
    t->mcfg.rope_theta = cfg->model.rope_theta;
    describe_shape(t);
    DLM_CALL_GOTO(st, dlm_model_create(&t->mcfg, &t->model), fail);
    dlm_adamw_config oc = {(float)cfg->train.beta1, (float)cfg->train.beta2,
                           (float)cfg->train.adam_eps, (float)cfg->train.weight_decay,
                           (float)cfg->train.grad_clip};
    DLM_CALL_GOTO(st, dlm_optimizer_create(t->model, &oc, &t->opt), fail);
    DLM_CALL_GOTO(st, dlm_step_buffers_create(t->model, cfg->train.micro_batch, &t->buf), fail);
    if (cfg->train.ema_decay > 0.0) {
        t->ema = calloc(t->model->n_params, sizeof(float));
        st = t->ema ? DLM_OK : DLM_ERR_NOMEM;
        DLM_CALL_GOTO(st, st, fail);
    }
    t->batch = malloc((size_t)cfg->train.batch * cfg->model.seq_len * sizeof *t->batch);
    st = t->batch ? DLM_OK : DLM_ERR_NOMEM;
    DLM_CALL_GOTO(st, st, fail);
    t->obj = (dlm_objective){.kind = cfg->objective.kind, .seed = cfg->train.seed,
                             .bos_id = t->mcfg.bos_id, .mask_id = t->mcfg.mask_id};
    dlm_schedule_default(&t->obj.schedule, cfg->objective.schedule);
    t->obj.schedule.eps = cfg->objective.eps;
    t->obj.schedule.power = cfg->objective.power;
    t->lrs = (dlm_lr_schedule){.kind = cfg->train.lr_schedule, .lr = cfg->train.lr,
                               .min_lr = cfg->train.min_lr, .warmup = cfg->train.warmup,
                               .total = cfg->train.steps,
                               .decay_fraction = cfg->train.decay_fraction};
    DLM_CALL_GOTO(st, dlm_mkdir_p(cfg->run.dir), fail);
    int64_t keep_through = 0;
    DLM_CALL_GOTO(st, resume_or_init(t, &keep_through), fail);
    char host[256] = "unknown", when[64];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    dlm_runfile_attrs attrs = {t->config_text, "dp=1 tp=1 pp=1", DLM_REVISION, host, when};
    DLM_CALL_GOTO(st, dlm_runfile_open(cfg->run.dir, &attrs, keep_through, &t->rf), fail);
    *out = t;
    return DLM_OK;
fail:
    dlm_trainer_destroy(&t);
    return st;
}

void dlm_trainer_destroy(dlm_trainer **pt)
{
    dlm_trainer *t = *pt;
    if (!t) return;
    dlm_runfile_close(&t->rf);
    free(t->ema);
    free(t->batch);
    free(t->val_x);
    dlm_step_buffers_destroy(&t->buf);
    dlm_optimizer_destroy(&t->opt);
    dlm_model_destroy(&t->model);
    if (t->train.shards) dlm_loader_close(&t->train);
    if (t->val.shards) dlm_loader_close(&t->val);
    free(t->config_text);
    free(t);
    *pt = NULL;
}

static void fill_batch(dlm_trainer *t, int64_t step)
{
    int G = t->cfg.train.batch, T = t->cfg.model.seq_len;
    if (t->synthetic) {
        for (int g = 0; g < G; g++)
            dlm_iid_fill(&t->iid, (uint64_t)step * G + g, T, t->batch + (int64_t)g * T);
    } else {
        dlm_loader_batch(&t->train, (uint32_t)step, 0, G, t->batch);
    }
}

static dlm_status validate(dlm_trainer *t, dlm_val_row *row)
{
    double loss;
    /* fixed chunks and fixed draws (eval step 0): numbers compare across steps and runs */
    DLM_CALL(dlm_eval_loss(t->model, &t->buf, &t->obj, t->val_x, t->n_val, 0, &loss));
    double tokens = (double)t->n_val * t->cfg.model.seq_len;
    row->step = t->step;
    row->loss = loss;
    row->bits_per_byte = t->val_bytes > 0 ? loss * tokens / (log(2.0) * t->val_bytes) : NAN;
    row->stderr_ = NAN; /* mdlm's figure is a one-draw estimate; dlm-eval gives error bars */
    return DLM_OK;
}

static dlm_status checkpoint(dlm_trainer *t)
{
    char path[DLM_CONFIG_PATH_MAX + 64];
    dlm_ckpt_state st = {.step = t->step, .tokens = t->tokens, .adam_t = t->opt->t,
                         .loader_seed = t->cfg.train.seed, .loader_step = (uint64_t)t->step,
                         .rng_seed = t->cfg.train.seed, .config_text = t->config_text,
                         .shape = t->shape};
    dlm_model *m = t->model;
    DLM_CALL(dlm_ckpt_write(t->cfg.run.dir, m->table, m->n_tensors, m->param_arena.base, t->ema,
                            t->opt->m.base, t->opt->v.base, &st, t->cfg.train.keep_checkpoints,
                            path, sizeof path));
    DLM_INFO("checkpoint %s", path);
    return DLM_OK;
}

dlm_status dlm_trainer_run(dlm_trainer *t, int *stopped)
{
    const dlm_run_config *c = &t->cfg;
    int G = c->train.batch, T = c->model.seq_len;
    double fpt = dlm_model_flops_per_token(&t->mcfg);
    *stopped = 0;
    DLM_INFO("model %s, %lld parameters (%lld non-embedding), objective %s; %s = %.4g MFLOP",
             t->shape, (long long)dlm_model_param_count(t->model),
             (long long)dlm_model_nonembedding_params(&t->mcfg), dlm_objective_name(c->objective.kind),
             DLM_FLOPS_DEFINITION, fpt / 1e6);
    double t_run = dlm_now(), t_log = t_run, step_s = 0.0;
    int64_t first = t->step, since_log = 0;
    double last_val = NAN;
    while (t->step < c->train.steps) {
        fill_batch(t, t->step);
        double loss, gnorm, lr = dlm_lr_at(&t->lrs, t->step), t0 = dlm_now();
        dlm_status st = dlm_train_step(t->model, t->opt, &t->buf, &t->obj, t->batch, G,
                                       (uint32_t)t->step, lr, &loss, &gnorm);
        DLM_CHECK(st == DLM_OK, st,
                  "training stopped at step %lld; the last good checkpoint in %s/checkpoints "
                  "is untouched", (long long)t->step + 1, c->run.dir);
        if (t->ema) dlm_ema_update(t->ema, t->model->param_arena.base, (int64_t)t->model->n_params,
                                   c->train.ema_decay, t->step);
        step_s += dlm_now() - t0;
        t->step++;
        t->tokens += (int64_t)G * T;
        since_log++;
        int last = t->step == c->train.steps;
        int stop = (t->options.stop && *t->options.stop) || t->step == t->options.stop_at_step;
        int log_now = t->step % c->train.log_every == 0 || last;
        if (t->has_val && (t->step % c->train.val_every == 0 || last)) {
            dlm_val_row vr;
            DLM_CALL(validate(t, &vr));
            DLM_CALL(dlm_runfile_add_val(t->rf, &vr));
            last_val = vr.loss;
        }
        if (log_now) {
            double now = dlm_now(), dt = now - t_log;
            double tps = (double)since_log * G * T / dt;
            dlm_train_row row = {t->step, t->tokens, loss, lr, gnorm, tps, tps * fpt / 1e9,
                                 1e3 * step_s / (double)since_log};
            DLM_CALL(dlm_runfile_add_train(t->rf, &row));
            DLM_CALL(dlm_runfile_flush(t->rf));
            double eta = (now - t_run) / (double)(t->step - first) * (double)(c->train.steps - t->step);
            char val[32] = "-";
            if (!isnan(last_val)) snprintf(val, sizeof val, "%.4f", last_val);
            DLM_INFO("step %lld/%d loss %.4f val %s lr %.2e gnorm %.3f %.0f tokens/s %.2f GFLOP/s "
                     "eta %.0fs",
                     (long long)t->step, c->train.steps, loss, val, lr, gnorm, tps,
                     tps * fpt / 1e9, eta);
            t_log = dlm_now();
            since_log = 0;
            step_s = 0.0;
        }
        if (t->step % c->train.checkpoint_every == 0 || last || stop) {
            if (!log_now) DLM_CALL(dlm_runfile_flush(t->rf));
            DLM_CALL(checkpoint(t));
        }
        if (stop && !last) {
            DLM_INFO("stop requested: checkpointed at step %lld; run the same command to resume",
                     (long long)t->step);
            *stopped = 1;
            return DLM_OK;
        }
    }
    DLM_INFO("done: %lld steps, %lld tokens in %.1f s", (long long)t->step, (long long)t->tokens,
             dlm_now() - t_run);
    return DLM_OK;
}
