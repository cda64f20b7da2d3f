/* Naive double-precision reference kernels (see ref_kernels.h): written for
 * obvious correctness, not speed; every loop follows the formula in kernels.h. */
#include "ref_kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

void ref_f2d(double *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = (double)src[i];
}

void ref_d2f(float *dst, const double *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

/* ---- GEMM ---- */

void ref_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
              const double *a, int64_t rs_a, int64_t cs_a, const double *b, int64_t rs_b,
              int64_t cs_b, double beta, double *c, int64_t rs_c, int64_t cs_c)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++) {
                /* op(A)[i][p] and op(B)[p][j], read from the matrices as stored */
                double av = trans_a ? a[p * rs_a + i * cs_a] : a[i * rs_a + p * cs_a];
                double bv = trans_b ? b[j * rs_b + p * cs_b] : b[p * rs_b + j * cs_b];
                acc += av * bv;
            }
            double *cij = &c[i * rs_c + j * cs_c];
            *cij = alpha * acc + beta * *cij;
        }
}

/* ---- linear ---- */

void ref_linear_forward(double *out, const double *inp, const double *w, const double *bias,
                        int64_t N, int C, int OC)
{
    for (int64_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) acc += inp[n * C + c] * w[(int64_t)o * C + c];
            out[n * OC + o] = acc;
        }
}

void ref_linear_backward(double *dinp, double *dw, double *dbias, const double *dout,
                         const double *inp, const double *w, int64_t N, int C, int OC)
{
    for (int64_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double g = dout[n * OC + o];
            for (int c = 0; c < C; c++) {
                if (dinp) dinp[n * C + c] += g * w[(int64_t)o * C + c];
                if (dw) dw[(int64_t)o * C + c] += g * inp[n * C + c];
            }
            if (dbias) dbias[o] += g;
        }
}

/* ---- LayerNorm ---- */

void ref_layernorm_forward(double *out, double *mean, double *rstd, const double *inp,
                           const double *w, const double *b, int64_t N, int C)
{
    for (int64_t n = 0; n < N; n++) {
        const double *x = inp + n * C;
        double mu = 0.0;
        for (int c = 0; c < C; c++) mu += x[c];
        mu /= C;
        double var = 0.0;
        for (int c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
        var /= C;
        double rs = 1.0 / sqrt(var + 1e-5);
        for (int c = 0; c < C; c++) out[n * C + c] = (x[c] - mu) * rs * w[c] + b[c];
        mean[n] = mu;
        rstd[n] = rs;
    }
}

void ref_layernorm_backward(double *dinp, double *dw, double *db, const double *dout,
                            const double *inp, const double *w, const double *mean,
                            const double *rstd, int64_t N, int C)
{
    for (int64_t n = 0; n < N; n++) {
        const double *x = inp + n * C, *g = dout + n * C;
        /* with xhat = (x - mean) rstd and dxhat = g w:
         * dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) */
        double mean_d = 0.0, mean_dx = 0.0;
        for (int c = 0; c < C; c++) {
            double xhat = (x[c] - mean[n]) * rstd[n];
            mean_d += g[c] * w[c];
            mean_dx += g[c] * w[c] * xhat;
        }
        mean_d /= C;
        mean_dx /= C;
        for (int c = 0; c < C; c++) {
            double xhat = (x[c] - mean[n]) * rstd[n];
            dinp[n * C + c] += rstd[n] * (g[c] * w[c] - mean_d - xhat * mean_dx);
            dw[c] += g[c] * xhat;
            db[c] += g[c];
        }
    }
}

/* ---- GELU (tanh form) ---- */

static const double ref_gelu_s = 0.79788456080286535588; /* sqrt(2/pi) */

void ref_gelu_forward(double *out, const double *inp, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = 0.5 * x * (1.0 + tanh(ref_gelu_s * (x + 0.044715 * x * x * x)));
    }
}

void ref_gelu_backward(double *dinp, const double *inp, const double *dout, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double x = inp[i];
        double th = tanh(ref_gelu_s * (x + 0.044715 * x * x * x));
        double du = ref_gelu_s * (1.0 + 3.0 * 0.044715 * x * x);
        double d = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
        dinp[i] += d * dout[i];
    }
}

/* ---- RoPE ---- */

void ref_rope_table(double *cos_t, double *sin_t, int T, int hs, double theta)
{
    int half = hs / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double ang = (double)t * pow(theta, -2.0 * i / hs);
            cos_t[t * half + i] = cos(ang);
            sin_t[t * half + i] = sin(ang);
        }
}

/* Rotates q and k of every head by +angle (dir = +1) or -angle (dir = -1). */
static void ref_rope_rotate(double *qkv, const double *cos_t, const double *sin_t, int B, int T,
                            int C, int H, double dir)
{
    int hs = C / H, half = hs / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                for (int part = 0; part < 2; part++) { /* 0: q, 1: k; v is left alone */
                    double *x = qkv + ((int64_t)b * T + t) * 3 * C + 3 * hs * h + part * hs;
                    for (int i = 0; i < half; i++) {
                        double c = cos_t[t * half + i], s = dir * sin_t[t * half + i];
                        double x0 = x[i], x1 = x[i + half];
                        x[i] = x0 * c - x1 * s;
                        x[i + half] = x0 * s + x1 * c;
                    }
                }
}

void ref_rope_forward(double *qkv, const double *cos_t, const double *sin_t, int B, int T,
                      int C, int H)
{
    ref_rope_rotate(qkv, cos_t, sin_t, B, T, C, H, 1.0);
}

void ref_rope_backward(double *dqkv, const double *cos_t, const double *sin_t, int B, int T,
                       int C, int H)
{
    /* the transpose of a rotation is the rotation by the opposite angle */
    ref_rope_rotate(dqkv, cos_t, sin_t, B, T, C, H, -1.0);
}

/* ---- attention ---- */

void ref_attention_forward(double *out, double *att, const double *qkv, int B, int T, int C,
                           int H, int causal)
{
    int hs = C / H;
    double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const double *q = qkv + ((int64_t)b * T + t) * 3 * C + 3 * hs * h;
                double *p = att + (((int64_t)b * H + h) * T + t) * T;
                int last = causal ? t : T - 1;
                double mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    if (j > last) {
                        p[j] = 0.0;
                        continue;
                    }
                    const double *k = qkv + ((int64_t)b * T + j) * 3 * C + 3 * hs * h + hs;
                    double s = 0.0;
                    for (int d = 0; d < hs; d++) s += q[d] * k[d];
                    p[j] = s * scale;
                    if (p[j] > mx) mx = p[j];
                }
                double sum = 0.0;
                for (int j = 0; j <= last; j++) {
                    p[j] = exp(p[j] - mx);
                    sum += p[j];
                }
                for (int j = 0; j <= last; j++) p[j] /= sum;
                double *o = out + ((int64_t)b * T + t) * C + h * hs;
                for (int d = 0; d < hs; d++) {
                    double acc = 0.0;
                    for (int j = 0; j <= last; j++)
                        acc += p[j] * qkv[((int64_t)b * T + j) * 3 * C + 3 * hs * h + 2 * hs + d];
                    o[d] = acc;
                }
            }
}

void ref_attention_backward(double *dqkv, const double *dout, const double *qkv,
                            const double *att, int B, int T, int C, int H, int causal)
{
    int hs = C / H;
    double scale = 1.0 / sqrt((double)hs);
    double *dp = malloc((size_t)T * sizeof *dp); /* T <= a few dozen in the tests */
    if (!dp) abort();
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                int64_t rt = ((int64_t)b * T + t) * 3 * C + 3 * hs * h; /* head h at t */
                const double *p = att + (((int64_t)b * H + h) * T + t) * T;
                const double *g = dout + ((int64_t)b * T + t) * C + h * hs;
                int last = causal ? t : T - 1;
                /* dp_j = g . v_j;  ds_j = p_j (dp_j - sum_i p_i dp_i) */
                double pdp = 0.0;
                for (int j = 0; j <= last; j++) {
                    int64_t rj = ((int64_t)b * T + j) * 3 * C + 3 * hs * h;
                    double s = 0.0;
                    for (int d = 0; d < hs; d++) {
                        s += g[d] * qkv[rj + 2 * hs + d];
                        dqkv[rj + 2 * hs + d] += p[j] * g[d]; /* dv_j += p_j g */
                    }
                    dp[j] = s;
                    pdp += p[j] * s;
                }
                for (int j = 0; j <= last; j++) {
                    int64_t rj = ((int64_t)b * T + j) * 3 * C + 3 * hs * h;
                    double ds = p[j] * (dp[j] - pdp) * scale;
                    for (int d = 0; d < hs; d++) {
                        dqkv[rt + d] += ds * qkv[rj + hs + d];      /* dq_t */
                        dqkv[rj + hs + d] += ds * qkv[rt + d];      /* dk_j */
                    }
                }
            }
    free(dp);
}

/* ---- cross-entropy ---- */

void ref_xent_forward(double *loss, const double *logits, const int32_t *targets, int64_t N,
                      int V, int n_valid)
{
    for (int64_t n = 0; n < N; n++) {
        const double *z = logits + n * V;
        double mx = -INFINITY, sum = 0.0;
        for (int i = 0; i < n_valid; i++)
            if (z[i] > mx) mx = z[i];
        for (int i = 0; i < n_valid; i++) sum += exp(z[i] - mx);
        loss[n] = mx + log(sum) - z[targets[n]];
    }
}

void ref_xent_backward(double *dlogits, const double *logits, const int32_t *targets,
                       const double *dloss, int64_t N, int V, int n_valid)
{
    for (int64_t n = 0; n < N; n++) {
        const double *z = logits + n * V;
        double mx = -INFINITY, sum = 0.0;
        for (int i = 0; i < n_valid; i++)
            if (z[i] > mx) mx = z[i];
        for (int i = 0; i < n_valid; i++) sum += exp(z[i] - mx);
        for (int i = 0; i < V; i++) {
            double d = 0.0;
            if (i < n_valid) d = dloss[n] * (exp(z[i] - mx) / sum - (i == targets[n] ? 1.0 : 0.0));
            dlogits[n * V + i] = d;
        }
    }
}

/* ---- embedding ---- */

void ref_embedding_forward(double *out, const int32_t *tokens, const double *wte, int64_t N,
                           int C)
{
    for (int64_t n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[n * C + c] = wte[(int64_t)tokens[n] * C + c];
}

void ref_embedding_backward(double *dwte, const int32_t *tokens, const double *dout, int64_t N,
                            int C)
{
    for (int64_t n = 0; n < N; n++)
        for (int c = 0; c < C; c++) dwte[(int64_t)tokens[n] * C + c] += dout[n * C + c];
}

/* ---- AdamW ---- */

void ref_adamw_update(double *p, const double *g, double *m, double *v, int64_t n, double lr,
                      double beta1, double beta2, double eps, double wd, int64_t t)
{
    double c1 = 1.0 - pow(beta1, (double)t), c2 = 1.0 - pow(beta2, (double)t);
    for (int64_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
        double mhat = m[i] / c1, vhat = v[i] / c2;
        p[i] -= lr * (mhat / (sqrt(vhat) + eps) + wd * p[i]);
    }
}

double ref_sum_squares(const double *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}
