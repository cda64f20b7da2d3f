/* The transformer: token embedding, L pre-LN blocks (attention + 4x GELU
 * MLP), final LayerNorm, LM head (tied to the embedding or not).
 *
 * Parameters live in one arena described by a table (name, global shape,
 * this rank's shard, offset); the table drives initialisation, the
 * parameter and FLOP counts, checkpoints and gradient reduction. A
 * micro-batch's activations are an object of their own (dlm_acts), so
 * several can be in flight. The model is a list of blocks with a
 * forward/backward each, so a pipeline stage is a range of blocks.
 *
 *   dlm_model *m;
 *   dlm_acts *a;
 *   dlm_model_create(&cfg, &m);              // parameters, gradients
 *   dlm_model_init(m, seed);                 // GPT-2 initialisation
 *   dlm_acts_create(m, B, 1, &a);            // one micro-batch, with backward
 *   dlm_model_forward(m, a, inputs, B, 1);   // logits in a->logits
 *   ... loss, dlm_model_backward(m, a, ...)  // gradients in m->grads
 *   dlm_acts_destroy(&a);
 *   dlm_model_destroy(&m);
 */
#ifndef DLM_MODEL_H
#define DLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/status.h"
#include "core/timer.h"
#include "model/tp.h"

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

/* How tensor parallelism splits a tensor over the tp ranks of a stage
 * (Megatron's layers): each split is tp equal contiguous parts. */
typedef enum {
    DLM_SPLIT_NONE = 0, /* replicated: LayerNorms, row-parallel biases */
    DLM_SPLIT_ROWS,     /* column-parallel layer: output rows (weight rows and bias) */
    DLM_SPLIT_COLS,     /* row-parallel layer: input columns of the weight */
    DLM_SPLIT_VOCAB     /* embedding and LM head: vocabulary rows */
} dlm_split_kind;

/* Where this rank sits in its model-parallel group, as far as the table
 * needs it. One rank: {0, 1}. A pipeline stage (staged = 1) holds blocks
 * [layer0, layer1) only, the embedding if it is the first stage (or the
 * last with a tied head: its copy of the embedding is the head), the
 * final norm and head if it is the last; unstaged means every block. */
typedef struct {
    int tp_rank, tp_size;
    int staged, layer0, layer1;
} dlm_shard_layout;
#define DLM_LAYOUT_SERIAL (&(const dlm_shard_layout){0, 1, 0, 0, 0})

static inline int dlm_layout_has_block(const dlm_shard_layout *lay, int l)
{
    return !lay->staged || (l >= lay->layer0 && l < lay->layer1);
}
static inline int dlm_layout_is_first(const dlm_shard_layout *lay) { return !lay->staged || lay->layer0 == 0; }
static inline int dlm_layout_is_last(const dlm_shard_layout *lay, int n_layer)
{
    return !lay->staged || lay->layer1 == n_layer;
}
/* This stage's blocks: [*l0, *l1). */
static inline void dlm_layout_blocks(const dlm_shard_layout *lay, int n_layer, int *l0, int *l1)
{
    *l0 = lay->staged ? lay->layer0 : 0;
    *l1 = lay->staged ? lay->layer1 : n_layer;
}

/* This rank's part of one tensor (who writes each element to a
 * checkpoint is train/ckpt_parts.h's business). */
typedef struct {
    dlm_split_kind split;
    int64_t start, count; /* this rank's first row (ROWS, VOCAB) or column (COLS), and how many */
    int norm_owner;       /* tp rank whose copy counts in the gradient norm; -1: every rank
                             counts its own shard (split tensors) */
} dlm_shard_spec;

typedef struct {
    char name[48];
    int id;             /* index in the whole model's table: keys initialisation (and a
                           stage's tensors keep the whole model's ids) */
    int ndim;
    int64_t shape[2];   /* the full logical tensor (checkpoints store this) */
    int64_t local[2];   /* this rank's shard of it */
    size_t numel;       /* local elements, local[0] * local[1] */
    size_t offset;      /* floats from the arena base */
    int layer;          /* block index, or -1 */
    int embedding;      /* 1 for wte and lm_head: outside N_nonembedding */
    int decay;          /* 1 for 2-D weight matrices (AdamW decay) */
    dlm_init_kind init;
    dlm_shard_spec shard;
} dlm_param_info;

/* Global element index (row-major in the full tensor) of this rank's local element j. */
int64_t dlm_param_global_index(const dlm_param_info *p, int64_t j);
/* 1 when this rank's copy of p counts in the global gradient norm (not the
 * last pipeline stage's copy of a tied embedding: the first stage's does). */
int dlm_param_counts_in_norm(const dlm_param_info *p, const dlm_shard_layout *lay);

/* One block's tensors, in table order: the single list behind the table,
 * the views and the parameter count. Columns are field, name, rows and
 * columns as multiples of C (0 columns: 1-D), initialisation, tp split.
 * qkv rows are grouped per head (q, k, v of head 0, then head 1, ...), so
 * a tp rank's heads are one contiguous block of rows. */
#define DLM_BLOCK_TENSORS(X)                                                           \
    X(ln1_w, "ln1.weight", 1, 0, DLM_INIT_ONE, DLM_SPLIT_NONE)           /* (C) */     \
    X(ln1_b, "ln1.bias", 1, 0, DLM_INIT_ZERO, DLM_SPLIT_NONE)            /* (C) */     \
    X(qkv_w, "attn.qkv.weight", 3, 1, DLM_INIT_NORMAL, DLM_SPLIT_ROWS)   /* (3C,C) */  \
    X(qkv_b, "attn.qkv.bias", 3, 0, DLM_INIT_ZERO, DLM_SPLIT_ROWS)       /* (3C) */    \
    X(proj_w, "attn.proj.weight", 1, 1, DLM_INIT_RESIDUAL, DLM_SPLIT_COLS) /* (C,C) */ \
    X(proj_b, "attn.proj.bias", 1, 0, DLM_INIT_ZERO, DLM_SPLIT_NONE)     /* (C) */     \
    X(ln2_w, "ln2.weight", 1, 0, DLM_INIT_ONE, DLM_SPLIT_NONE)           /* (C) */     \
    X(ln2_b, "ln2.bias", 1, 0, DLM_INIT_ZERO, DLM_SPLIT_NONE)            /* (C) */     \
    X(fc_w, "mlp.fc.weight", 4, 1, DLM_INIT_NORMAL, DLM_SPLIT_ROWS)      /* (4C,C) */  \
    X(fc_b, "mlp.fc.bias", 4, 0, DLM_INIT_ZERO, DLM_SPLIT_ROWS)          /* (4C) */    \
    X(fcp_w, "mlp.proj.weight", 1, 4, DLM_INIT_RESIDUAL, DLM_SPLIT_COLS) /* (C,4C) */  \
    X(fcp_b, "mlp.proj.bias", 1, 0, DLM_INIT_ZERO, DLM_SPLIT_NONE)       /* (C) */

/* Views of one block's tensors (parameters or their gradients). */
typedef struct {
#define DLM_X_FIELD(field, ...) float *field;
    DLM_BLOCK_TENSORS(DLM_X_FIELD)
#undef DLM_X_FIELD
} dlm_block_params;

/* Views of the whole model's tensors (parameters or gradients). */
typedef struct {
    float *wte;             /* (V, C) */
    float *lm_head;         /* (V, C); == wte when tied */
    float *lnf_w, *lnf_b;   /* (C) */
    dlm_block_params *blocks;
} dlm_model_views;

/* The model: shape, table, parameters and gradients; nothing that belongs
 * to one micro-batch (that is dlm_acts). */
typedef struct {
    dlm_model_config cfg;
    dlm_shard_layout layout;
    dlm_tp *tp;                 /* the tensor-parallel group; NULL: one rank */
    int n_tensors;
    dlm_param_info *table;
    size_t n_params;            /* floats in the parameter arena (with alignment gaps) */
    dlm_arena param_arena, grad_arena;
    dlm_model_views params, grads;
    float *rope_cos, *rope_sin; /* (T, hs/2), constants of the shape */
} dlm_model;

/* One block's saved activations and the backward scratch all blocks
 * share: field and size, the one list behind the structs and the arena's
 * size. Sizes name the dims of dlm_act_dims (N = B T rows). */
#define DLM_BLOCK_ACTS(X)                                                      \
    X(ln1, NC) X(ln1_mean, N) X(ln1_rstd, N) /* (N,C), (N), (N) */             \
    X(qkv, N3C)                              /* (N,3C) after rotary */         \
    X(att, BHTT)                             /* (B,H,T,T) probabilities */     \
    X(atty, NCl)                             /* (N,C) attention before proj */ \
    X(res_mid, NC)                           /* (N,C) x + attention */         \
    X(ln2, NC) X(ln2_mean, N) X(ln2_rstd, N) /* (N,C), (N), (N) */             \
    X(fch, N4C) X(fch_gelu, N4C)             /* (N,4C) */                      \
    X(res_out, NC)                           /* (N,C) the block's output */
#define DLM_BLOCK_SCRATCH(X)                                                   \
    X(dres_a, NC) X(dres_b, NC) /* (N,C) residual gradients, used in turn */   \
    X(dres_mid, NC) X(dln, NC) X(dqkv, N3C) X(datty, NCl) X(dfch, N4C)         \
    X(datt, BHTT)               /* (B,H,T,T) */

/* Under tensor parallelism N3C, N4C, BHTT, NCl (the attention output) and
 * NV are this rank's share (split tp ways); N and NC are whole. */
typedef struct {
    size_t N, NC, N3C, N4C, BHTT, NCl, NV;
} dlm_act_dims;

#define DLM_X_FIELD(field, size) float *field;
typedef struct {
    DLM_BLOCK_ACTS(DLM_X_FIELD)
} dlm_block_acts;
typedef struct {
    DLM_BLOCK_SCRATCH(DLM_X_FIELD)
} dlm_block_scratch;
#undef DLM_X_FIELD

/* One micro-batch's activations (and, with backward, its scratch): the
 * run state of a forward/backward pass. Several may exist for one model
 * (a pipeline stage keeps micro-batches in flight). */
typedef struct {
    int max_batch;              /* B it is sized for */
    int backward;               /* 1: scratch for backward exists */
    dlm_arena arena;
    float *embed;               /* (N,C) the embedding output, input of block 0; on a later
                                   pipeline stage the stage's input, block layer0's */
    int layer0;                 /* the first block of the model's stage (0 unstaged) */
    dlm_block_acts *blocks;     /* L of them */
    /* the head runs on n_rows rows of the last block's output: all N, or
     * the listed ones (the masked positions of mdlm) gathered in order */
    int64_t n_rows;
    int32_t *rows;              /* (N) row indices when gathered */
    int gathered;               /* 1: rows[] lists the head's rows; 0: every row */
    float *head_x;              /* (N,C) the gathered rows */
    float *lnf, *lnf_mean, *lnf_rstd; /* (n_rows,C), (n_rows), (n_rows) */
    float *logits;              /* (n_rows,V); backward turns it into dlogits in place */
    dlm_block_scratch scratch;
    dlm_phase_timers *timers;   /* optional: per-phase wall time (dlm-bench) */
} dlm_acts;

/* The parameter table alone (no allocation of the tensors) for this
 * rank's place in the layout: *floats is the arena size with alignment
 * gaps. Refuses a tp size that does not split heads, 4C and the padded
 * vocabulary evenly. Free the table with free(). */
dlm_status dlm_param_table_create(const dlm_model_config *cfg, const dlm_shard_layout *lay,
                                  dlm_param_info **table, int *n, size_t *floats);
/* GPT-2 initialisation of a table's tensors in base: weights N(0, 0.02),
 * residual projections N(0, 0.02 / sqrt(2L)), biases 0, LayerNorm gains 1.
 * Each element is a pure function of (seed, tensor id, global element
 * index), so a shard holds exactly its slice of the whole tensor. */
void dlm_param_init(const dlm_param_info *table, int n, int n_layer, float *base, uint64_t seed);

/* The whole model on one rank. */
dlm_status dlm_model_create(const dlm_model_config *cfg, dlm_model **out);
/* This rank's shard of the model in the tensor-parallel group tp (NULL:
 * the whole model): heads, 4C and the padded vocabulary split tp ways.
 * Refuses a split that is not even, naming the tensor. tp must outlive m. */
dlm_status dlm_model_create_tp(const dlm_model_config *cfg, dlm_tp *tp, dlm_model **out);
/* A pipeline stage of it: blocks [layer0, layer1) and what goes with the
 * first and last stage (see dlm_shard_layout); 0 and n_layer is the whole
 * model, unstaged. Its tensors are initialised as the whole model's. */
dlm_status dlm_model_create_stage(const dlm_model_config *cfg, dlm_tp *tp, int layer0, int layer1,
                                  dlm_model **out);
void dlm_model_destroy(dlm_model **m);
void dlm_model_init(dlm_model *m, uint64_t seed);

/* Activations for up to max_batch sequences; backward = 0 leaves out the
 * backward scratch (evaluation, sampling). */
dlm_status dlm_acts_create(const dlm_model *m, int max_batch, int backward, dlm_acts **out);
void dlm_acts_destroy(dlm_acts **a);

/* Parameters that count in FLOPs and scaling laws: all but wte and lm_head. */
int64_t dlm_model_nonembedding_params(const dlm_model_config *cfg);
/* Logical parameter count of the whole model (every tensor's full shape,
 * whatever this rank's shard or stage; no alignment gaps). */
int64_t dlm_model_param_count(const dlm_model *m);
/* The same over this pipeline stage's tensors only. */
int64_t dlm_model_stage_param_count(const dlm_model *m);
/* FNV-1a continued from h over the parameter arena: whether two processes
 * hold the same weights. */
uint64_t dlm_model_hash(uint64_t h, const dlm_model *m);
/* This rank's shards, into m's arena at base, cut from whole tensors laid
 * out by the serial table full_table (full): how a tp rank or pipeline
 * stage takes its part of a checkpoint read whole. No message. */
void dlm_model_cut_shards(const dlm_model *m, const dlm_param_info *full_table, const float *full,
                          float *base);
/* FLOPs per token of a training step:
 * 6 N_nonembedding + 6 C V_padded (LM head) + 12 L C T (attention, full T x T). */
double dlm_model_flops_per_token(const dlm_model_config *cfg);
#define DLM_FLOPS_DEFINITION \
    "FLOPs/token = 6 N_nonembedding + 6 d V_padded + 12 L d T (full T x T attention, all padded vocabulary columns)"

/* ---- forward and backward, piece by piece (a pipeline stage runs a
 * range of blocks) and whole ----
 * The input of block l is a->embed for l = 0, else a->blocks[l-1].res_out. */
const float *dlm_block_input(const dlm_acts *a, int layer);

/* Checks inputs (B,T) against the vocabulary and B against the acts. */
dlm_status dlm_embed_forward(const dlm_model *m, dlm_acts *a, const int32_t *inputs, int B);
/* a->blocks[layer].res_out = block(dlm_block_input(a, layer)). */
void dlm_block_forward(const dlm_model *m, dlm_acts *a, int layer, int B, int causal);
/* Final LayerNorm and LM head on the rows of the last block's output:
 * rows == NULL all B*T of them, else the n listed ones (in that order);
 * logits (n_rows, V) in a->logits. */
void dlm_head_forward(const dlm_model *m, dlm_acts *a, int B, const int32_t *rows, int64_t n);

/* From dlogits in a->logits: accumulates the head's gradients and writes
 * dx (B*T, C), the gradient of the last block's output (0 at rows the head
 * did not see). */
void dlm_head_backward(dlm_model *m, dlm_acts *a, int B, float *dx);
/* Writes dx_in (not accumulated) from dres_out, and accumulates the
 * block's parameter gradients. dx_in must not alias dres_out. */
void dlm_block_backward(dlm_model *m, dlm_acts *a, int layer, const float *dres_out,
                        float *dx_in, int B, int causal);
void dlm_embed_backward(dlm_model *m, const dlm_acts *a, const int32_t *inputs, const float *dx,
                        int B);

/* Whole model forward: inputs (B,T) token ids -> a->logits (B,T,V), every row. */
dlm_status dlm_model_forward(const dlm_model *m, dlm_acts *a, const int32_t *inputs, int B,
                             int causal);
/* Embedding and blocks, then the head on rows (NULL: all); see dlm_head_forward. */
dlm_status dlm_model_forward_rows(const dlm_model *m, dlm_acts *a, const int32_t *inputs, int B,
                                  int causal, const int32_t *rows, int64_t n);
/* Whole rows of logits: n rows of vocab_padded in whole from the head's
 * column shards in local (n rows of vocab_padded / tp), gathered through
 * the tp handle (the sampler draws from whole rows); on one rank a copy.
 * work: n x vocab_padded floats of scratch, or NULL to allocate them for
 * the call. whole must not alias local. */
dlm_status dlm_model_whole_logits(const dlm_model *m, const float *local, int64_t n, float *whole,
                                  float *work);
/* One pipeline stage's forward of B sequences: the first stage embeds
 * inputs, a later one takes x_in (B,T,C) as the input of its first block;
 * its blocks; on the last stage the head on rows (NULL: all), as
 * dlm_head_forward. A stage before the last leaves its output (B,T,C) at
 * dlm_stage_output. Unstaged, dlm_model_forward_rows. */
dlm_status dlm_model_stage_forward(const dlm_model *m, dlm_acts *a, const int32_t *inputs,
                                   const float *x_in, int B, int causal, const int32_t *rows,
                                   int64_t n);
const float *dlm_stage_output(const dlm_model *m, const dlm_acts *a);
/* A stage's backward, accumulating into m->grads: the last stage from the
 * dlogits in a->logits, another from dout (the gradient of its output);
 * a stage after the first writes the gradient of its input to din
 * (B,T,C). Unstaged, dlm_model_backward. */
void dlm_model_stage_backward(dlm_model *m, dlm_acts *a, const int32_t *inputs, const float *dout,
                              float *din, int B, int causal);
/* Whole model backward from dlogits already in a->logits; accumulates into m->grads. */
void dlm_model_backward(dlm_model *m, dlm_acts *a, const int32_t *inputs, int B, int causal);
void dlm_model_zero_grad(dlm_model *m);

#endif
