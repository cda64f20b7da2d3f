/* Naive double-precision reference kernels the float32 kernels in
 * src/kernels are tested against: plain loops, same shapes and layouts as
 * kernels.h (see the dimension key there), same accumulate (+=) semantics.
 * Their own backward passes are checked by finite differences in test_kernels.c. */
#ifndef DLM_REF_KERNELS_H
#define DLM_REF_KERNELS_H

#include <stdint.h>

/* float <-> double copies */
void ref_f2d(double *dst, const float *src, int64_t n);
void ref_d2f(float *dst, const double *src, int64_t n);

/* C = alpha op(A) op(B) + beta C with explicit row and column strides (as dlm_gemm). */
void ref_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
              const double *a, int64_t rs_a, int64_t cs_a, const double *b, int64_t rs_b,
              int64_t cs_b, double beta, double *c, int64_t rs_c, int64_t cs_c);

/* out (N,OC) = inp (N,C) w^T + bias; bias may be NULL. Backward accumulates;
 * any of dinp (N,C), dw (OC,C), dbias (OC) may be NULL. */
void ref_linear_forward(double *out, const double *inp, const double *w, const double *bias,
                        int64_t N, int C, int OC);
void ref_linear_backward(double *dinp, double *dw, double *dbias, const double *dout,
                         const double *inp, const double *w, int64_t N, int C, int OC);

/* LayerNorm over C, eps 1e-5, biased variance; mean, rstd (N). Backward accumulates. */
void ref_layernorm_forward(double *out, double *mean, double *rstd, const double *inp,
                           const double *w, const double *b, int64_t N, int C);
void ref_layernorm_backward(double *dinp, double *dw, double *db, const double *dout,
                            const double *inp, const double *w, const double *mean,
                            const double *rstd, int64_t N, int C);

/* GELU, tanh form. Backward accumulates into dinp. */
void ref_gelu_forward(double *out, const double *inp, int64_t n);
void ref_gelu_backward(double *dinp, const double *inp, const double *dout, int64_t n);

/* RoPE on the interleaved per-head qkv (B,T,3C); tables (T, hs/2).
 * Forward: (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos) for the pair (i, i + hs/2).
 * Backward applies the transpose (inverse) rotation to q and k of dqkv, in place. */
void ref_rope_table(double *cos_t, double *sin_t, int T, int hs, double theta);
void ref_rope_forward(double *qkv, const double *cos_t, const double *sin_t, int B, int T,
                      int C, int H);
void ref_rope_backward(double *dqkv, const double *cos_t, const double *sin_t, int B, int T,
                       int C, int H);

/* Attention: out (B,T,C), att (B,H,T,T) with masked entries exactly 0.
 * Backward accumulates into dqkv (B,T,3C). */
void ref_attention_forward(double *out, double *att, const double *qkv, int B, int T, int C,
                           int H, int causal);
void ref_attention_backward(double *dqkv, const double *dout, const double *qkv,
                            const double *att, int B, int T, int C, int H, int causal);

/* Cross-entropy over the first n_valid of V columns. Backward overwrites dlogits (N,V). */
void ref_xent_forward(double *loss, const double *logits, const int32_t *targets, int64_t N,
                      int V, int n_valid);
void ref_xent_backward(double *dlogits, const double *logits, const int32_t *targets,
                       const double *dloss, int64_t N, int V, int n_valid);

/* Embedding lookup; backward accumulates into dwte rows. */
void ref_embedding_forward(double *out, const int32_t *tokens, const double *wte, int64_t N,
                           int C);
void ref_embedding_backward(double *dwte, const int32_t *tokens, const double *dout, int64_t N,
                            int C);

/* One AdamW step at step t >= 1 (decoupled weight decay on the old p). */
void ref_adamw_update(double *p, const double *g, double *m, double *v, int64_t n, double lr,
                      double beta1, double beta2, double eps, double wd, int64_t t);

/* sum x_i^2 */
double ref_sum_squares(const double *x, int64_t n);

#endif
