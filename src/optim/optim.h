/* AdamW over the model's parameter table (decay on 2-D weight matrices
 * only), or Muon on the hidden weight matrices with AdamW for the rest
 * (optim/muon.h), global-norm clipping, and the learning-rate schedule. */
#ifndef DLM_OPTIM_H
#define DLM_OPTIM_H

#include <stdint.h>

#include "core/arena.h"
#include "core/status.h"
#include "model/model.h"
#include "optim/muon.h"

/* The optimizer a run trains with; names in files, NULL-ended. */
typedef enum { DLM_OPTIMIZER_ADAMW = 0, DLM_OPTIMIZER_MUON } dlm_optimizer_kind;
extern const char *const dlm_optimizer_kind_names[];

typedef struct {
    float beta1, beta2, eps;
    float weight_decay; /* decoupled; applied to tensors with decay = 1 */
    float grad_clip;    /* global-norm bound; <= 0 disables */
} dlm_adamw_config;

/* lr(step) for step = 0, 1, ...: linear warmup from lr/warmup to lr over
 * `warmup` steps, then
 *   cosine:   cosine from lr down to min_lr at step `total`;
 *   constant: lr;
 *   wsd:      warmup-stable-decay: lr until the last decay_fraction of the
 *             steps, then linear down to min_lr at `total`. */
typedef enum { DLM_LR_COSINE = 0, DLM_LR_CONSTANT, DLM_LR_WSD } dlm_lr_kind;
typedef struct {
    dlm_lr_kind kind;
    double lr, min_lr;
    int64_t warmup, total;
    double decay_fraction; /* wsd only */
} dlm_lr_schedule;
/* Names in files, indexed by dlm_lr_kind, NULL-ended. */
extern const char *const dlm_lr_kind_names[];
dlm_status dlm_lr_kind_parse(const char *name, dlm_lr_kind *kind);
double dlm_lr_at(const dlm_lr_schedule *s, int64_t step);

/* Exponential moving average of the weights: ema = d ema + (1 - d) p with
 * d = min(decay, (1 + n) / (10 + n)) at update n = 0, 1, ... (warmed up, so
 * a short run's EMA is not still mostly its initial weights). */
double dlm_ema_decay_at(double decay, int64_t n);
/* ema and p are n_floats long (the parameter arena). */
void dlm_ema_update(float *ema, const float *p, int64_t n_floats, double decay, int64_t n);

typedef struct {
    dlm_adamw_config cfg;
    /* the parameter floats this optimizer updates: all of them, or under
     * ZeRO-1 this rank's shard; the moments (and the trainer's EMA) hold
     * these ranges concatenated, so all of them are laid out like the
     * parameters when the one range is everything */
    dlm_range *ranges;
    int n_ranges;
    size_t n_floats; /* the ranges' total */
    dlm_arena m, v;  /* first and second moments; Muon's tensors keep their
                        momentum in m (v stays 0), so checkpoints hold either */
    int64_t t;       /* updates taken */
    int muon;        /* 1: Muon on the tensors dlm_muon_takes */
    dlm_muon_config muon_cfg;
    dlm_ns_group *ns; /* Newton-Schulz across the tp shards; NULL: this rank's BLIS */
    float *muon_work;
} dlm_optimizer;

void dlm_adamw_config_default(dlm_adamw_config *c); /* 0.9, 0.95, 1e-8, wd 0.1, clip 1.0 */
/* Every parameter float: one range [0, n_params). */
dlm_status dlm_optimizer_create(const dlm_model *model, const dlm_adamw_config *cfg,
                                dlm_optimizer **out);
/* As dlm_optimizer_create over the given ranges of the parameter arena
 * only (copied; each range within the arena). */
dlm_status dlm_optimizer_create_ranges(const dlm_model *model, const dlm_adamw_config *cfg,
                                       const dlm_range *ranges, int n_ranges, dlm_optimizer **out);
void dlm_optimizer_destroy(dlm_optimizer **opt);
/* From now on Muon (c) updates the model's hidden weight matrices, AdamW
 * the rest; ns: the Newton-Schulz handle of the model's tp group (NULL on
 * one rank). Refuses an optimizer that holds only parts of a tensor Muon
 * takes (ZeRO-1): Newton-Schulz needs the whole fully reduced gradient. */
dlm_status dlm_optimizer_use_muon(dlm_optimizer *opt, const dlm_model *model,
                                  const dlm_muon_config *c, dlm_ns_group *ns);

/* The EMA of the optimizer's ranges (ema holds them concatenated):
 * dlm_ema_update over each, and the initial copy of the parameters. */
void dlm_optimizer_ema_update(const dlm_optimizer *opt, float *ema, const float *params,
                              double decay, int64_t n);
void dlm_optimizer_ema_init(const dlm_optimizer *opt, float *ema, const float *params);

/* Clips the gradients by global norm and applies one update at lr (Muon's
 * tensors at lr x muon_cfg.lr_ratio).
 * *grad_norm gets the norm before clipping. A non-finite gradient stops
 * with DLM_ERR_NUMERIC naming the first tensor that holds one, and leaves
 * parameters and moments untouched. */
dlm_status dlm_optimizer_step(dlm_optimizer *opt, dlm_model *model, double lr, double *grad_norm);

/* The two halves of a step, for a model split over ranks: the sum of
 * squares of the gradients in the optimizer's ranges that this rank counts
 * (every element of the model once over the tensor-parallel group:
 * replicated tensors on their owner only), to be summed over the group
 * (and over data parallelism under ZeRO-1); *bad_tensor (may be NULL) names the
 * first tensor holding a non-finite value, NULL if none. Then the update
 * with the global norm. */
double dlm_optimizer_grad_sumsq(const dlm_optimizer *opt, const dlm_model *model,
                                const char **bad_tensor);
dlm_status dlm_optimizer_apply(dlm_optimizer *opt, dlm_model *model, double lr, double grad_norm);

#endif
