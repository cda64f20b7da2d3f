/* The transformer's kernels, each a forward/backward pair on float32.
 *
 * Dimension key: B batch, T sequence, C channels (d_model), H heads,
 * hs = C / H head size, V padded vocabulary, N = B * T rows.
 * Activations are row-major (N, C). Weight matrices are (OC, C) row-major
 * (out = inp @ W^T + b), as in PyTorch and llm.c.
 *
 * Backward functions accumulate (+=) into every gradient they write,
 * except where a comment says otherwise (GELU, attention and cross-entropy
 * overwrite, linear's input gradient may); zeroing is the caller's call.
 * Reductions over rows run in a fixed order, so results do not depend on
 * the number of threads.
 */
#ifndef DLM_KERNELS_H
#define DLM_KERNELS_H

#include <stdint.h>

/* ---- GEMM (BLIS typed API) ----
 * C (m x n) = alpha * op(A) op(B) + beta * C, where op(A) is m x k and
 * op(B) is k x n. Each matrix is given as stored (before op) with a row
 * stride and a column stride in elements, so transposes and strided views
 * cost no copy. trans = 1 means op(X) = X^T. */
void dlm_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
              int64_t cs_b, float beta, float *c, int64_t rs_c, int64_t cs_c);
/* The reference dlm_gemm is tested against (triple loop, double accumulator). */
void dlm_gemm_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                    int64_t cs_b, float beta, float *c, int64_t rs_c, int64_t cs_c);

/* Recording of dlm_gemm calls (shapes, transposes, strides), so dlm-bench
 * can replay a step's own list of matrix products. One recorder per
 * thread, seeing that thread's calls only; only the benchmark sets it. */
typedef struct {
    int trans_a, trans_b;
    int64_t m, n, k;
    int64_t rs_a, cs_a, rs_b, cs_b, rs_c, cs_c;
    float alpha, beta;
} dlm_gemm_call;
typedef struct {
    dlm_gemm_call *calls;
    int64_t n, cap;
    int overflow; /* calls dropped because cap was reached */
} dlm_gemm_log;
/* Starts appending every dlm_gemm call of this thread to log (NULL stops). */
void dlm_gemm_record(dlm_gemm_log *log);

/* ---- linear: out (N,OC) = inp (N,C) @ w^T (C,OC) + bias (OC); bias may be NULL ---- */
void dlm_linear_forward(float *out, const float *inp, const float *w, const float *bias,
                        int64_t N, int C, int OC);
/* dinp (N,C) = dinp_beta * dinp + dout @ w (dinp_beta 1 accumulates, 0
 * overwrites without reading); dw (OC,C) += dout^T @ inp; dbias (OC) +=
 * column sums of dout. Any of dinp, dw, dbias may be NULL (not needed). */
void dlm_linear_backward(float *dinp, float dinp_beta, float *dw, float *dbias,
                         const float *dout, const float *inp, const float *w, int64_t N, int C,
                         int OC);

/* ---- LayerNorm over C with eps 1e-5; mean, rstd (N) are saved for backward ---- */
void dlm_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int64_t N, int C);
void dlm_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int64_t N, int C);

/* ---- GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ---- */
void dlm_gelu_forward(float *out, const float *inp, int64_t n);
/* dinp = gelu'(inp) * dout: overwrites, and dinp may alias dout (in place). */
void dlm_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n);

/* ---- rotary position embedding on q and k, in place ----
 * qkv is (B,T,3C) with heads interleaved: head h owns columns
 * [3 hs h, 3 hs (h+1)) holding q, k, v of that head, hs each (so a
 * tensor-parallel rank's heads are one contiguous block of rows of the
 * qkv weight). Pairs (i, i + hs/2) of q and k at position t rotate by
 * angle t * theta^(-2i/hs). cos/sin tables are (T, hs/2). */
void dlm_rope_table(float *cos_t, float *sin_t, int T, int hs, double theta);
void dlm_rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                      int H);
/* In place on the q and k gradients of dqkv (the inverse rotation); v untouched. */
void dlm_rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T,
                       int C, int H);

/* ---- scaled dot-product attention over rotated qkv (B,T,3C) ----
 * out (B,T,C) holds head h at columns [h hs, (h+1) hs). att (B,H,T,T)
 * keeps the softmax probabilities for backward. causal = 1: position i
 * attends to j <= i (AR); causal = 0: to every j (diffusion). */
void dlm_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H,
                           int causal);
/* dqkv (B,T,3C) = gradient of q, k, v (overwritten, never read); scratch
 * holds B*H*T*T floats. */
void dlm_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                            const float *att, int B, int T, int C, int H, int causal);

/* ---- cross-entropy over the first n_valid of V logit columns ----
 * Columns >= n_valid (MASK and padding) get probability exactly 0.
 * loss (N) = -log softmax(logits[n, :n_valid])[targets[n]] (unweighted). */
void dlm_xent_forward(float *loss, const float *logits, const int32_t *targets, int64_t N, int V,
                      int n_valid);
/* dlogits (N,V) = dloss[n] * (softmax - onehot(target)) on valid columns and
 * 0 elsewhere; rows with dloss[n] == 0 are all zero. Overwrites (does not
 * accumulate); dlogits may alias logits. */
void dlm_xent_backward(float *dlogits, const float *logits, const int32_t *targets,
                       const float *dloss, int64_t N, int V, int n_valid);

/* ---- embedding: out (N,C) = wte[tokens[n]]; backward dwte[tokens[n]] += dout[n] ---- */
void dlm_embedding_forward(float *out, const int32_t *tokens, const float *wte, int64_t N,
                           int C);
void dlm_embedding_backward(float *dwte, const int32_t *tokens, const float *dout, int64_t N,
                            int C);
/* The vocabulary-parallel shard: wte holds rows v0 .. v0 + nv - 1; other
 * tokens give zero rows forward and nothing backward. */
void dlm_embedding_forward_range(float *out, const int32_t *tokens, const float *wte, int64_t N,
                                 int C, int32_t v0, int32_t nv);
void dlm_embedding_backward_range(float *dwte, const int32_t *tokens, const float *dout,
                                  int64_t N, int C, int32_t v0, int32_t nv);

/* ---- elementwise ---- */
void dlm_accumulate(float *dst, const float *src, int64_t n); /* dst += src */

/* ---- AdamW with decoupled weight decay (Loshchilov & Hutter), on the
 * gradient g = grad_scale * grad (the clipping factor, applied in the same
 * pass so the gradients are streamed once):
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr (mhat / (sqrt(vhat) + eps) + wd p), mhat/vhat bias-corrected at
 * step t >= 1. Pass wd = 0 for tensors that are not 2-D weight matrices. */
void dlm_adamw_update(float *p, const float *grad, float grad_scale, float *m, float *v,
                      int64_t n, float lr, float beta1, float beta2, float eps, float wd, int64_t t);

/* ---- global-norm clipping ----
 * Sum of squares in double, in fixed-size chunks combined in order, so the
 * result does not depend on the thread count. */
double dlm_sum_squares(const float *x, int64_t n);
/* Scales g by max_norm / norm when norm > max_norm; returns the factor used. */
float dlm_clip_factor(double norm, double max_norm);

#endif
