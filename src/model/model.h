/* The transformer: token embedding, L pre-LN blocks (attention + 4x GELU
 * MLP), final LayerNorm, LM head (tied to the embedding or not).
 *
 * Parameters live in one arena described by a table (name, shape, offset);
 * the table drives initialisation, the parameter and FLOP counts, and later
 * checkpoints and gradient reduction. The model is a list of blocks with a
 * forward/backward each, so a pipeline stage is a range of blocks.
 *
 *   dlm_model *m;
 *   dlm_model_create(&cfg, B, &m);        // parameters, gradients, activations
 *   dlm_model_init(m, seed);              // GPT-2 initialisation
 *   dlm_model_forward(m, inputs, B, 1);   // logits in m->logits
 *   ... loss, dlm_model_backward(m, ...)  // gradients in m->grads
 *   dlm_model_destroy(&m);
 */
#ifndef DLM_MODEL_H
#define DLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/status.h"
#include "core/timer.h"

#define DLM_VOCAB_ALIGN 64

typedef struct {
    int n_layer;       /* L */
    int d_model;       /* C */
    int n_head;        /* H */
    int seq_len;       /* T */
    int vocab_size;    /* ids that can receive probability (bytes + separator: 257) */
    int vocab_padded;  /* table rows: vocab_size + 1 (MASK) rounded up to DLM_VOCAB_ALIGN */
    int mask_id;       /* = vocab_size */
    int bos_id;        /* the document separator, also BOS */
    int tied_head;     /* 1: the LM head is the embedding matrix */
    double rope_theta;
} dlm_model_config;

/* The byte-level vocabulary: ids 0..255 bytes, 256 separator/BOS, 257 MASK, padded to 320. */
#define DLM_BYTE_VOCAB 257
#define DLM_BYTE_SEP 256
/* Fills cfg for a byte-level model of the given shape (untied head, theta 10000). */
void dlm_model_config_bytes(dlm_model_config *cfg, int n_layer, int d_model, int n_head,
                            int seq_len);
/* Sets vocab_size, mask_id and the padded size for any vocabulary. */
void dlm_model_config_vocab(dlm_model_config *cfg, int vocab_size, int bos_id);
/* Checks shapes: heads divide width, even head size, padded vocabulary. */
dlm_status dlm_model_config_check(const dlm_model_config *cfg);

typedef enum { DLM_INIT_NORMAL, DLM_INIT_RESIDUAL, DLM_INIT_ZERO, DLM_INIT_ONE } dlm_init_kind;

typedef struct {
    char name[48];
    int ndim;
    int64_t shape[2];
    size_t numel;
    size_t offset;      /* floats from the arena base */
    int layer;          /* block index, or -1 */
    int embedding;      /* 1 for wte and lm_head: outside N_nonembedding */
    int decay;          /* 1 for 2-D weight matrices (AdamW decay) */
    dlm_init_kind init;
} dlm_param_info;

/* Views of one block's tensors (parameters or their gradients). */
typedef struct {
    float *ln1_w, *ln1_b;   /* (C) */
    float *qkv_w, *qkv_b;   /* (3C, C), (3C); rows interleaved per head: q, k, v */
    float *proj_w, *proj_b; /* (C, C), (C) */
    float *ln2_w, *ln2_b;   /* (C) */
    float *fc_w, *fc_b;     /* (4C, C), (4C) */
    float *fcp_w, *fcp_b;   /* (C, 4C), (C) */
} dlm_block_params;

/* Views of the whole model's tensors (parameters or gradients). */
typedef struct {
    float *wte;             /* (V, C) */
    float *lm_head;         /* (V, C); == wte when tied */
    float *lnf_w, *lnf_b;   /* (C) */
    dlm_block_params *blocks;
} dlm_model_views;

/* One block's saved activations, sized for B x T rows. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd; /* (N,C), (N), (N) */
    float *qkv;                       /* (N,3C) after rotary */
    float *att;                       /* (B,H,T,T) probabilities */
    float *atty;                      /* (N,C) attention output before projection */
    float *res_mid;                   /* (N,C) x + attention */
    float *ln2, *ln2_mean, *ln2_rstd; /* (N,C), (N), (N) */
    float *fch, *fch_gelu;            /* (N,4C) */
    float *res_out;                   /* (N,C) the block's output */
} dlm_block_acts;

/* Backward scratch shared by all blocks. */
typedef struct {
    float *dres_a, *dres_b; /* (N,C) residual gradients, used in turn */
    float *dres_mid;        /* (N,C) */
    float *dln;             /* (N,C) */
    float *dqkv;            /* (N,3C) */
    float *datty;           /* (N,C) */
    float *dfch;            /* (N,4C) */
    float *datt;            /* (B,H,T,T) */
} dlm_block_scratch;

typedef struct {
    dlm_model_config cfg;
    int max_batch;              /* B the activations are sized for */
    int n_tensors;
    dlm_param_info *table;
    size_t n_params;            /* floats in the parameter arena (with alignment gaps) */
    dlm_arena param_arena, grad_arena, act_arena;
    dlm_model_views params, grads;
    float *rope_cos, *rope_sin; /* (T, hs/2) */
    float *embed;               /* (N,C) the embedding output, input of block 0 */
    dlm_block_acts *acts;       /* L of them */
    float *lnf, *lnf_mean, *lnf_rstd; /* (N,C), (N), (N) */
    float *logits;              /* (N,V); backward turns it into dlogits in place */
    dlm_block_scratch scratch;
    dlm_phase_timers *timers;   /* optional: per-phase wall time (dlm-bench) */
} dlm_model;

/* The parameter table alone (no allocation of the tensors): *floats is the
 * arena size with alignment gaps. Free the table with free(). */
dlm_status dlm_param_table_create(const dlm_model_config *cfg, dlm_param_info **table, int *n,
                                  size_t *floats);

dlm_status dlm_model_create(const dlm_model_config *cfg, int max_batch, dlm_model **out);
void dlm_model_destroy(dlm_model **m);

/* GPT-2 initialisation: weights N(0, 0.02), residual projections
 * N(0, 0.02 / sqrt(2L)), biases 0, LayerNorm gains 1. Each element is a
 * pure function of (seed, tensor index, element index). */
void dlm_model_init(dlm_model *m, uint64_t seed);

/* Parameters that count in FLOPs and scaling laws: all but wte and lm_head. */
int64_t dlm_model_nonembedding_params(const dlm_model_config *cfg);
/* Logical parameter count (table numels, no alignment gaps). */
int64_t dlm_model_param_count(const dlm_model *m);
/* FLOPs per token of a training step:
 * 6 N_nonembedding + 6 C V_padded (LM head) + 12 L C T (attention, full T x T). */
double dlm_model_flops_per_token(const dlm_model_config *cfg);
#define DLM_FLOPS_DEFINITION \
    "FLOPs/token = 6 N_nonembedding + 6 d V_padded + 12 L d T (full T x T attention, all padded vocabulary columns)"

/* One block, forward: a->res_out = block(x_in). */
void dlm_block_forward(const dlm_model *m, int layer, const float *x_in, int B, int causal);
/* One block, backward: writes dx_in (not accumulated) from dres_out, and
 * accumulates the block's parameter gradients. dx_in must not alias dres_out. */
void dlm_block_backward(dlm_model *m, int layer, const float *x_in, const float *dres_out,
                        float *dx_in, int B, int causal);

/* Whole model forward: inputs (B,T) token ids -> m->logits (B,T,V). */
dlm_status dlm_model_forward(dlm_model *m, const int32_t *inputs, int B, int causal);
/* Whole model backward from dlogits already in m->logits; accumulates into m->grads. */
void dlm_model_backward(dlm_model *m, const int32_t *inputs, int B, int causal);
void dlm_model_zero_grad(dlm_model *m);

#endif
