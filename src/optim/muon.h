/* Muon (Keller Jordan): Nesterov momentum on each 2-D hidden weight matrix,
 * the update orthogonalised by Newton-Schulz (optim/newton_schulz.h) and
 * scaled by its shape; AdamW for everything else (optim.h decides which
 * tensor gets which: dlm_muon_takes). Q, K and V are orthogonalised as three
 * matrices, not as the stacked qkv weight.
 *
 * Under tensor parallelism a weight is split over the tp ranks and the
 * iteration needs the whole matrix: the optimizer is given a handle whose
 * run() does it across the shards where they are (src/parallel/scalapack.c,
 * PSGEMM on a BLACS grid over the tp communicator). A NULL handle, or a
 * group of one, runs dlm_newton_schulz on this rank. */
#ifndef DLM_MUON_H
#define DLM_MUON_H

#include <stdint.h>

#include "core/status.h"
#include "model/model.h"

/* How the orthogonalised update is scaled, for a weight of out x in:
 *   rms:       sqrt(max(1, out / in)) (the fastest GPT training recipes);
 *   moonlight: 0.2 sqrt(max(out, in)), an update RMS about AdamW's (so
 *              AdamW's learning rate carries over). */
typedef enum { DLM_MUON_SCALE_RMS = 0, DLM_MUON_SCALE_MOONLIGHT } dlm_muon_scale;
extern const char *const dlm_muon_scale_names[]; /* indexed by dlm_muon_scale, NULL-ended */

typedef struct {
    float momentum;   /* 0.95 */
    int nesterov;     /* 1: the update is g + momentum (buf - g) blended as Keller's */
    int ns_steps;     /* 5 */
    dlm_muon_scale scale;
    float lr_ratio;   /* Muon's learning rate over the schedule's (AdamW's) */
} dlm_muon_config;
void dlm_muon_config_default(dlm_muon_config *c); /* 0.95, Nesterov, 5 steps, rms, ratio 1 */

/* Newton-Schulz on a weight of rows x cols (row-major, as the model stores
 * it) split over a group: this rank's shard, split DLM_SPLIT_ROWS (rows /
 * size rows) or DLM_SPLIT_COLS (cols / size columns), in place. The caller
 * has already normalised the whole matrix. */
typedef struct dlm_ns_group {
    int size;
    dlm_status (*run)(struct dlm_ns_group *g, float *shard, int64_t rows, int64_t cols,
                      dlm_split_kind split, int steps);
    void *ctx;
} dlm_ns_group;

/* 1 for the tensors Muon updates: 2-D weights inside the blocks (not the
 * embedding, the head, norms or biases). */
int dlm_muon_takes(const dlm_param_info *p);

/* Scale factor for a weight of out x in. */
float dlm_muon_scale_factor(dlm_muon_scale s, int64_t out, int64_t in);

/* One Muon update of tensor p (this rank's shard: param, grad, momentum
 * buffer buf, numel floats each), gradient already scaled by clip:
 * buf = mu buf + (1 - mu) g; u = Nesterov blend; per matrix (q, k, v
 * apart) u /= |u|_F summed over the tp group (the tp handle), Newton-Schulz
 * through ns (NULL: this rank's BLIS), then param = (1 - lr wd) param -
 * lr scale u. work holds dlm_muon_work_floats(p) floats. */
size_t dlm_muon_work_floats(const dlm_param_info *p);
dlm_status dlm_muon_update(const dlm_muon_config *c, const dlm_param_info *p, int n_head,
                           dlm_tp *tp, dlm_ns_group *ns, float *param, const float *grad,
                           float clip, float *buf, float lr, float weight_decay, float *work);

#endif
