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
#include "core/hash.h"
#include "core/mpicall.h"
#include "core/log.h"
#include "core/memstat.h"
#include "core/timer.h"
#include "diffusion/objective.h"
#include "io/checkpoint.h"
#include "io/loader.h"
#include "io/runfile.h"
#include "io/synthetic.h"
#include "kernels/blis_info.h"
#include "model/model.h"
#include "optim/optim.h"
#include "parallel/scalapack.h"
#include "train/ckpt_parts.h"
#include "train/grad_noise.h"
#include "parallel/dp.h"
#include "parallel/grid.h"
#include "parallel/replicas.h"
#include "parallel/stages.h"
#include "parallel/tp.h"
#include "train/pipe_step.h"
#include "train/step.h"

#ifndef DLM_REVISION
#define DLM_REVISION "unknown"
#endif

struct dlm_trainer {
    const dlm_grid *grid;
    int root;            /* world rank 0: the one that logs, writes run.h5 and checkpoints */
    dlm_dp *dp;
    dlm_tp *tp;          /* this rank's tensor-parallel group (size 1: none) */
    dlm_pipe_step *ps;   /* pp > 1: this stage's pipelined step */
    int stage_first[DLM_CONFIG_MAX_INTS], stage_count[DLM_CONFIG_MAX_INTS]; /* the split */
    dlm_ckpt_parts parts; /* this rank's part of every checkpoint */
    int n_local;         /* sequences of the global batch this rank runs: G / dp */
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
    int32_t *batch;      /* (G / dp, T) this rank's slice of the global batch */
    /* model */
    dlm_model_config mcfg;
    char shape[128];
    dlm_model *model;
    dlm_optimizer *opt;
    dlm_scalapack *sl; /* Muon's Newton-Schulz across the tp shards */
    dlm_step_buffers buf;
    dlm_objective obj;
    dlm_lr_schedule lrs;
    float *ema;
    dlm_runfile *rf;     /* rank 0 only */
    int64_t step, tokens;
};

/* One loader, its shards scanned by one reader per node (at FineWeb scale
 * a full scan is gigabytes per rank); the others open headers only once
 * the reader's verdict is in. Collective over the world: every rank
 * returns the same verdict. */
static dlm_status open_loader(dlm_trainer *t, const char *const *paths, int n, dlm_loader *L)
{
    const dlm_grid *g = t->grid;
    const dlm_run_config *c = &t->cfg;
    int T = c->model.seq_len;
    dlm_status st = DLM_OK;
    if (g->node_rank == 0)
        st = dlm_loader_open_scan(paths, n, c->data.format, T, c->train.seed, DLM_SCAN_ALL, L);
    int verdict = st;
    DLM_MPI(MPI_Bcast(&verdict, 1, MPI_INT, 0, g->node_comm));
    if (g->node_rank != 0) {
        if (verdict == DLM_OK)
            st = dlm_loader_open_scan(paths, n, c->data.format, T, c->train.seed, DLM_SCAN_HEADER, L);
        else
            st = dlm_error_push(DLM_ERR_PEER, __FILE__, __LINE__, __func__,
                                "this node's shard reader failed");
    }
    return dlm_agree(g->world, st);
}

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
    DLM_CALL(open_loader(t, paths, c->data.n_train_paths, &t->train));
    if (c->data.unique_tokens > 0) {
        dlm_status st = dlm_loader_limit(&t->train, (int64_t)c->data.unique_tokens);
        DLM_CHECK(st == DLM_OK, st, "data.unique_tokens = %llu over data.train (%s%s)",
                  (unsigned long long)c->data.unique_tokens, c->data.train_paths[0],
                  c->data.n_train_paths > 1 ? " and the rest" : "");
        double seen = (double)c->train.steps * c->train.batch * T;
        DLM_INFO("data: the first %llu tokens of data.train only, %.2f epochs over the run",
                 (unsigned long long)c->data.unique_tokens, seen / (double)c->data.unique_tokens);
    }
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
    DLM_CALL(open_loader(t, paths, c->data.n_val_paths, &t->val));
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

/* Every rank loads its own part of the newest checkpoint that verifies
 * (or all initialise from the seed, which gives every shard its slice of
 * the same whole). Collective. */
static dlm_status resume_or_init(dlm_trainer *t, int64_t *keep_through)
{
    char path[DLM_CONFIG_PATH_MAX + 64] = "";
    int found = 0;
    dlm_model *m = t->model;
    dlm_ckpt_state cs = {0};
    DLM_CALL(dlm_ckpt_load_latest(t->cfg.run.dir, &t->parts.layout, t->shape, &cs, path,
                                  sizeof path, &found));
    if (!found) {
        dlm_model_init(m, t->cfg.train.seed);
        if (t->ema) dlm_optimizer_ema_init(t->opt, t->ema, m->param_arena.base);
        dlm_arena_zero(&t->opt->m); /* a file skipped halfway may have filled them */
        dlm_arena_zero(&t->opt->v);
        *keep_through = 0;
        return DLM_OK;
    }
    /* the moments hold Muon's momentum or AdamW's first moment: a resume
     * must keep the optimizer that wrote them */
    dlm_run_config saved;
    dlm_status st = dlm_run_config_load_text(cs.config_text, path, NULL, 0, &saved);
    if (st == DLM_OK && saved.train.optimizer != t->cfg.train.optimizer)
        st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                            "%s was written by train.optimizer = \"%s\", but this run sets "
                            "\"%s\": its moments would be read as the other optimizer's; keep "
                            "\"%s\" or start a new run.dir", path,
                            dlm_optimizer_kind_names[saved.train.optimizer],
                            dlm_optimizer_kind_names[t->cfg.train.optimizer],
                            dlm_optimizer_kind_names[saved.train.optimizer]);
    t->step = cs.step;
    t->tokens = cs.tokens;
    t->opt->t = cs.adam_t;
    dlm_ckpt_state_free(&cs);
    DLM_CALL(st);
    /* the checksums verify each element's owner's copy; the replicas'
     * copies must match them */
    DLM_CALL(dlm_replicas_check(t->grid, m, t->step));
    *keep_through = t->step;
    DLM_INFO("resuming from %s at step %lld", path, (long long)t->step);
    return DLM_OK;
}

/* Allocations and shapes: nothing collective, so a failure here is agreed
 * by the caller. */
static dlm_status build_local(dlm_trainer *t)
{
    const dlm_run_config *cfg = &t->cfg;
    t->mcfg.tied_head = cfg->model.tied_head;
    t->mcfg.rope_theta = cfg->model.rope_theta;
    describe_shape(t);
    DLM_CALL(dlm_tp_create(t->grid->tp_comm, &t->tp));
    const dlm_grid *g = t->grid;
    DLM_CALL(dlm_stages_model_create(&t->mcfg, t->tp, g->pp_rank, g->pp,
                                     cfg->parallel.stage_layers, cfg->parallel.n_stage_layers,
                                     t->stage_first, t->stage_count, &t->model));
    DLM_CHECK(t->model->n_params <= INT32_MAX, DLM_ERR_ARG,
              "%zu parameter floats on one rank: more than one MPI message of floats holds "
              "(2^31 - 1); use tensor or pipeline parallelism", t->model->n_params);
    DLM_CALL(dlm_dp_create(t->grid->dp_comm, t->model,
                           (size_t)(cfg->parallel.bucket_mb * 1048576.0), &t->dp));
    if (cfg->parallel.zero && g->dp > 1) /* one replica: nothing to shard */
        DLM_CALL(dlm_dp_zero_enable(t->dp, t->model));
    int n_zero;
    const dlm_range *zero = dlm_dp_zero_ranges(t->dp, &n_zero);
    dlm_adamw_config oc = {(float)cfg->train.beta1, (float)cfg->train.beta2,
                           (float)cfg->train.adam_eps, (float)cfg->train.weight_decay,
                           (float)cfg->train.grad_clip};
    if (zero) DLM_CALL(dlm_optimizer_create_ranges(t->model, &oc, zero, n_zero, &t->opt));
    else DLM_CALL(dlm_optimizer_create(t->model, &oc, &t->opt));
    if (g->pp == 1) /* under pp the pipelined step holds its own pool */
        DLM_CALL(dlm_step_buffers_create(t->model, cfg->train.micro_batch, &t->buf));
    if (g->pp > 1)
        DLM_CALL(dlm_pipe_step_create(g->pp_comm, t->model, cfg->train.micro_batch,
                                      cfg->train.batch / g->dp / cfg->train.micro_batch, &t->ps));
    if (cfg->train.ema_decay > 0.0) {
        t->ema = calloc(t->opt->n_floats + 1, sizeof(float)); /* the optimizer's ranges */
        DLM_CHECK(t->ema != NULL, DLM_ERR_NOMEM, "the EMA weights");
    }
    float *arrays[4] = {t->model->param_arena.base, t->ema, t->opt->m.base, t->opt->v.base};
    DLM_CALL(dlm_ckpt_parts_create(g, t->model, zero, n_zero, arrays, &t->parts));
    t->n_local = cfg->train.batch / t->grid->dp;
    t->batch = malloc((size_t)t->n_local * cfg->model.seq_len * sizeof *t->batch);
    DLM_CHECK(t->batch != NULL, DLM_ERR_NOMEM, "the batch");
    t->obj = (dlm_objective){.kind = cfg->objective.kind, .seed = cfg->train.seed,
                             .bos_id = t->mcfg.bos_id, .mask_id = t->mcfg.mask_id};
    dlm_schedule_default(&t->obj.schedule, cfg->objective.schedule);
    t->obj.schedule.eps = cfg->objective.eps;
    t->obj.schedule.power = cfg->objective.power;
    t->obj.estimator = cfg->objective.estimator;
    t->obj.k_proposal = cfg->objective.k_proposal;
    t->obj.k_power = cfg->objective.k_power;
    t->lrs = (dlm_lr_schedule){.kind = cfg->train.lr_schedule, .lr = cfg->train.lr,
                               .min_lr = cfg->train.min_lr, .warmup = cfg->train.warmup,
                               .total = cfg->train.steps,
                               .decay_fraction = cfg->train.decay_fraction};
    if (t->root) DLM_CALL(dlm_mkdir_p(cfg->run.dir));
    return DLM_OK;
}

/* Muon: the BLACS grids over the tp group (collective), then the
 * optimizer's switch. */
static dlm_status setup_muon(dlm_trainer *t)
{
    const dlm_run_config *c = &t->cfg;
    if (c->train.optimizer != DLM_OPTIMIZER_MUON) return DLM_OK;
    DLM_CALL(dlm_scalapack_create(t->grid->tp_comm, &t->sl));
    dlm_muon_config mc = {.momentum = (float)c->muon.momentum, .nesterov = c->muon.nesterov,
                          .ns_steps = c->muon.ns_steps, .scale = c->muon.scale,
                          .lr_ratio = (float)(c->muon.lr / c->train.lr)};
    DLM_CALL(dlm_optimizer_use_muon(t->opt, t->model, &mc, dlm_scalapack_ns(t->sl)));
    if (t->root)
        DLM_INFO("optimizer: Muon (lr %g, momentum %g%s, %d Newton-Schulz steps, scale %s%s) on "
                 "the hidden weight matrices, AdamW (lr %g) on the rest; ScaLAPACK's BLAS: %s",
                 c->muon.lr, c->muon.momentum, c->muon.nesterov ? " Nesterov" : "",
                 c->muon.ns_steps, dlm_muon_scale_names[c->muon.scale],
                 t->grid->tp > 1 ? ", PSGEMM across the tp shards" : "", c->train.lr,
                 dlm_scalapack_blas_library());
    return DLM_OK;
}

/* Every rank must run the same config: rank 0's text is the reference. */
static dlm_status check_same_config(dlm_trainer *t)
{
    uint64_t mine = dlm_fnv1a(DLM_FNV_OFFSET, t->config_text, strlen(t->config_text)), root = mine;
    DLM_MPI(MPI_Bcast(&root, 1, MPI_UINT64_T, 0, t->grid->world));
    dlm_status st = DLM_OK;
    if (mine != root)
        st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                            "rank %d resolved a different config from rank 0's (another run "
                            "file or --set on some ranks?); every rank must run the same one",
                            t->grid->rank);
    return dlm_agree(t->grid->world, st);
}

dlm_status dlm_trainer_create(const dlm_grid *grid, const dlm_run_config *cfg,
                              const dlm_trainer_options *opt, dlm_trainer **out)
{
    *out = NULL;
    dlm_trainer *t = calloc(1, sizeof *t);
    dlm_status st = t ? DLM_OK : DLM_ERR_NOMEM;
    if (t) {
        t->grid = grid;
        t->root = grid->rank == 0;
        t->cfg = *cfg;
        if (opt) t->options = *opt;
        st = dlm_run_config_to_text(cfg, &t->config_text);
    }
    /* each phase ends in an agreement, so no rank enters a collective that
     * another, failed, rank will never reach */
    DLM_CALL_GOTO(st, dlm_agree(grid->world, st), fail);
    DLM_CALL_GOTO(st, check_same_config(t), fail);
    DLM_CALL_GOTO(st, open_data(t), fail);
    st = build_local(t);
    DLM_CALL_GOTO(st, dlm_agree(grid->world, st), fail);
    st = setup_muon(t);
    DLM_CALL_GOTO(st, dlm_agree(grid->world, st), fail);
    int64_t keep_through = 0;
    DLM_CALL_GOTO(st, resume_or_init(t, &keep_through), fail);
    char when[64], layout[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(layout, sizeof layout, "dp=%d tp=%d pp=%d", grid->dp, grid->tp, grid->pp);
    dlm_runfile_attrs attrs = {t->config_text, layout, DLM_REVISION,
                               t->options.hosts ? t->options.hosts : "", when};
    st = t->root ? dlm_runfile_open(cfg->run.dir, &attrs, keep_through, &t->rf) : DLM_OK;
    DLM_CALL_GOTO(st, dlm_agree(grid->world, st), fail);
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
    dlm_pipe_step_destroy(&t->ps);
    dlm_dp_destroy(&t->dp);
    dlm_optimizer_destroy(&t->opt);
    dlm_scalapack_destroy(&t->sl);
    dlm_model_destroy(&t->model);
    dlm_tp_destroy(&t->tp);
    dlm_ckpt_parts_destroy(&t->parts);
    if (t->train.shards) dlm_loader_close(&t->train);
    if (t->val.shards) dlm_loader_close(&t->val);
    free(t->config_text);
    free(t);
    *pt = NULL;
}

/* This rank's slice of step's global batch: sequences [g0, g0 + n). */
static void fill_batch(dlm_trainer *t, int64_t step)
{
    int G = t->cfg.train.batch, T = t->cfg.model.seq_len, n = t->n_local;
    int64_t g0 = (int64_t)t->grid->dp_rank * n;
    if (t->synthetic) {
        for (int i = 0; i < n; i++)
            dlm_iid_fill(&t->iid, (uint64_t)step * G + g0 + i, T, t->batch + (int64_t)i * T);
    } else {
        dlm_loader_batch(&t->train, (uint32_t)step, g0, n, t->batch);
    }
}

static dlm_status validate(dlm_trainer *t, dlm_val_row *row)
{
    double loss;
    /* fixed chunks and fixed draws (eval step 0): numbers compare across steps and runs */
    if (t->ps) DLM_CALL(dlm_eval_loss_pp(t->ps, &t->obj, t->val_x, t->n_val, 0, &loss));
    else DLM_CALL(dlm_eval_loss_dp(t->model, &t->buf, &t->obj, t->dp, t->val_x, t->n_val, 0, &loss));
    double tokens = (double)t->n_val * t->cfg.model.seq_len;
    row->step = t->step;
    row->loss = loss;
    row->bits_per_byte = t->val_bytes > 0 ? loss * tokens / (log(2.0) * t->val_bytes) : NAN;
    row->stderr_ = NAN; /* mdlm's figure is a one-draw estimate; dlm-eval gives error bars */
    return DLM_OK;
}

int64_t dlm_trainer_step(const dlm_trainer *t) { return t->step; }

dlm_status dlm_trainer_grad_noise(dlm_trainer *t, int n)
{
    DLM_CHECK(t->grid->size == 1, DLM_ERR_ARG,
              "--grad-noise runs on one rank (this job has %d)", t->grid->size);
    int T = t->cfg.model.seq_len;
    int32_t *x = malloc((size_t)n * T * sizeof *x);
    DLM_CHECK(x != NULL, DLM_ERR_NOMEM, "%d sequences", n);
    if (t->synthetic)
        for (int i = 0; i < n; i++)
            dlm_iid_fill(&t->iid, (uint64_t)t->step * (uint64_t)n + (uint64_t)i, T, x + (int64_t)i * T);
    else
        dlm_loader_batch(&t->train, (uint32_t)t->step, 0, n, x);
    dlm_grad_noise r;
    dlm_status st = dlm_grad_noise_measure(t->model, &t->buf, &t->obj, x, n, (uint32_t)t->step, &r);
    free(x);
    DLM_CALL(st);
    const dlm_run_config *c = &t->cfg;
    char what[96];
    if (c->objective.kind == DLM_OBJECTIVE_AR) snprintf(what, sizeof what, "ar");
    else if (c->objective.estimator == DLM_TRAIN_EXACT_K)
        snprintf(what, sizeof what, "mdlm exact-k, proposal %s (a = %g)",
                 dlm_k_proposal_names[c->objective.k_proposal], dlm_k_proposal_exponent(&t->obj));
    else snprintf(what, sizeof what, "mdlm mc-t, schedule %s", dlm_schedule_names[c->objective.schedule]);
    DLM_INFO("gradient noise at step %lld over %d sequences, %s: loss %.4f, tr Cov(g) %.6g, "
             "|g_bar|^2 %.6g, noise scale %.1f sequences", (long long)t->step, n, what, r.loss,
             r.trace_cov, r.mean_sq, r.noise_scale);
    printf("grad_noise step=%lld n=%d loss=%.6f trace_cov=%.6g mean_sq=%.6g noise_scale=%.6g\n",
           (long long)t->step, n, r.loss, r.trace_cov, r.mean_sq, r.noise_scale);
    return DLM_OK;
}

dlm_status dlm_trainer_save(dlm_trainer *t, const char *run_dir)
{
    DLM_CALL(dlm_replicas_check(t->grid, t->model, t->step));
    char path[DLM_CONFIG_PATH_MAX + 64];
    dlm_ckpt_state cs = {.step = t->step, .tokens = t->tokens, .adam_t = t->opt->t,
                         .loader_seed = t->cfg.train.seed, .loader_step = (uint64_t)t->step,
                         .rng_seed = t->cfg.train.seed, .config_text = t->config_text,
                         .shape = t->shape};
    DLM_CALL(dlm_ckpt_save(run_dir ? run_dir : t->cfg.run.dir, &t->parts.layout, &cs,
                           t->cfg.train.keep_checkpoints, path, sizeof path));
    DLM_INFO("checkpoint %s", path);
    return DLM_OK;
}

/* Rank 0 replaces run.h5; the verdict is agreed. */
static dlm_status flush_runfile(dlm_trainer *t)
{
    dlm_status st = t->root ? dlm_runfile_flush(t->rf) : DLM_OK;
    DLM_CALL(dlm_agree(t->grid->world, st));
    return DLM_OK;
}

/* The training state this rank holds, and under ZeRO-1 what plain data
 * parallelism would hold. */
static void describe_state_memory(const dlm_trainer *t)
{
    double mb = 1048576.0 / sizeof(float), n = (double)t->model->n_params;
    double shard = (double)t->opt->n_floats, copies = t->ema ? 3.0 : 2.0;
    const char *what = t->ema ? "AdamW moments and EMA" : "AdamW moments";
    if (!dlm_dp_zero(t->dp)) {
        DLM_INFO("training state on rank 0: parameters and gradients %.1f MB, %s %.1f MB",
                 2.0 * n / mb, what, copies * n / mb);
        return;
    }
    DLM_INFO("ZeRO-1 over %d data-parallel ranks: rank 0 holds %s for %.0f of %.0f parameter "
             "floats, %.1f MB instead of %.1f MB (parameters and gradients %.1f MB stay whole)",
             t->grid->dp, what, shard, n, copies * shard / mb, copies * n / mb, 2.0 * n / mb);
}

dlm_status dlm_trainer_run(dlm_trainer *t, int *stopped)
{
    const dlm_run_config *c = &t->cfg;
    int G = c->train.batch, T = c->model.seq_len;
    MPI_Comm world = t->grid->world;
    double fpt = dlm_model_flops_per_token(&t->mcfg);
    *stopped = 0;
    long long n_params = (long long)dlm_model_param_count(t->model);
    DLM_INFO("model %s, %lld parameters (%lld non-embedding), objective %s; %s = %.4g MFLOP",
             t->shape, n_params,
             (long long)dlm_model_nonembedding_params(&t->mcfg), dlm_objective_name(c->objective.kind),
             DLM_FLOPS_DEFINITION, fpt / 1e6);
    if (t->grid->dp > 1)
        DLM_INFO("data parallel over %d ranks: %d sequences each per step in micro-batches of %d; "
                 "gradients summed in %d bucket(s) of >= %.3g MB",
                 t->grid->dp, t->n_local, c->train.micro_batch, dlm_dp_n_buckets(t->dp),
                 c->parallel.bucket_mb);
    describe_state_memory(t);
    if (t->grid->pp > 1) {
        char split[512];
        int m = c->train.batch / t->grid->dp / c->train.micro_batch;
        dlm_stages_describe(t->grid->pp, t->stage_first, t->stage_count, split, sizeof split);
        DLM_INFO("pipeline over %d stages (%s): %d micro-batches of %d per step, 1F1B, ideal "
                 "bubble %.3f", t->grid->pp, split, m, c->train.micro_batch,
                 dlm_pipe_ideal_bubble(t->grid->pp, m));
        if (m < t->grid->pp)
            DLM_WARN("only %d micro-batches for %d stages: most of each step is bubble; set "
                     "train.micro_batch smaller", m, t->grid->pp);
    }
    double t_run = dlm_now(), t_log = t_run, step_s = 0.0;
    int64_t first = t->step, since_log = 0;
    double last_val = NAN;
    while (t->step < c->train.steps) {
        fill_batch(t, t->step);
        double loss, gnorm, lr = dlm_lr_at(&t->lrs, t->step), t0 = dlm_now();
        dlm_status st =
            t->ps ? dlm_train_step_pp(t->ps, t->opt, &t->obj, t->dp, t->batch, G,
                                      (uint32_t)t->step, lr, &loss, &gnorm)
                  : dlm_train_step_dp(t->model, t->opt, &t->buf, &t->obj, t->dp, t->batch, G,
                                      (uint32_t)t->step, lr, &loss, &gnorm);
        /* a non-finite loss or gradient is seen after the reductions, so by
         * every rank at once: agreed. Any other failure is one rank's, in
         * the middle of collectives: main aborts the job. */
        if (st == DLM_ERR_NUMERIC) st = dlm_agree(world, st);
        DLM_CHECK(st == DLM_OK, st,
                  "training stopped at step %lld; the last good checkpoint in %s/checkpoints "
                  "is untouched", (long long)t->step + 1, c->run.dir);
        if (t->ema) dlm_optimizer_ema_update(t->opt, t->ema, t->model->param_arena.base,
                                             c->train.ema_decay, t->step);
        step_s += dlm_now() - t0;
        if (t->ps && t->step == first) { /* the pool's high-water mark, once */
            const dlm_pipe_stats *ps = dlm_pipe_step_stats(t->ps);
            DLM_INFO("pipeline step 1 of this run: stage 0 held at most %d micro-batches "
                     "(1F1B bound: %d), waited %.1f%% of the schedule", ps->peak_in_flight,
                     t->grid->pp, 100.0 * ps->wait_seconds / ps->seconds);
        }
        t->step++;
        t->tokens += (int64_t)G * T;
        since_log++;
        int last = t->step == c->train.steps, stop = 0;
        /* a signal seen by any rank stops every rank after this same step */
        DLM_CALL(dlm_any(world, (t->options.stop && *t->options.stop) ||
                                         t->step == t->options.stop_at_step, &stop));
        int log_now = t->step % c->train.log_every == 0 || last;
        if (t->has_val && (t->step % c->train.val_every == 0 || last)) {
            dlm_val_row vr;
            DLM_CALL(validate(t, &vr));
            if (t->root) DLM_CALL(dlm_runfile_add_val(t->rf, &vr));
            last_val = vr.loss;
        }
        if (log_now) {
            double now = dlm_now(), dt = now - t_log;
            double tps = (double)since_log * G * T / dt;
            dlm_train_row row = {t->step, t->tokens, loss, lr, gnorm, tps, tps * fpt / 1e9,
                                 1e3 * step_s / (double)since_log};
            if (t->root) DLM_CALL(dlm_runfile_add_train(t->rf, &row));
            DLM_CALL(flush_runfile(t));
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
        if (t->step % c->parallel.check_every == 0 && t->step % c->train.checkpoint_every != 0)
            DLM_CALL(dlm_replicas_check(t->grid, t->model, t->step)); /* checkpoints check too */
        if (t->step % c->train.checkpoint_every == 0 || last || stop) {
            if (!log_now) DLM_CALL(flush_runfile(t));
            DLM_CALL(dlm_trainer_save(t, NULL));
        }
        if (stop && !last) {
            DLM_INFO("stop requested: checkpointed at step %lld; run the same command to resume",
                     (long long)t->step);
            *stopped = 1;
            return DLM_OK;
        }
    }
    DLM_INFO("done: %lld steps, %lld tokens in %.1f s; peak resident memory of rank 0 %.1f MB",
             (long long)t->step, (long long)t->tokens, dlm_now() - t_run,
             dlm_peak_rss_bytes() / 1048576.0);
    return DLM_OK;
}
