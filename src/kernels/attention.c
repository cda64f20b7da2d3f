/* Rotary position embedding and scaled dot-product attention over the
 * interleaved per-head qkv layout (see kernels.h). Attention runs as
 * GEMMs per (batch, head) on strided views; the softmax is done in place
 * in the saved probability matrix. */
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/vmath.h"

void dlm_rope_table(float *cos_t, float *sin_t, int T, int hs, double theta)
{
    int half = hs / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double freq = pow(theta, -2.0 * i / hs);
            cos_t[t * half + i] = (float)cos(t * freq);
            sin_t[t * half + i] = (float)sin(t * freq);
        }
}

/* Rotates q and k of every head; sign = +1 forward, -1 the inverse. */
static void rope_apply(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                       int H, float sign)
{
    int hs = C / H, half = hs / 2;
#pragma omp parallel for schedule(static)
    for (int64_t bt = 0; bt < (int64_t)B * T; bt++) {
        int t = (int)(bt % T);
        const float *cs = cos_t + t * half, *sn = sin_t + t * half;
        for (int h = 0; h < H; h++) {
            float *q = qkv + bt * 3 * C + (int64_t)h * 3 * hs;
            for (int part = 0; part < 2; part++) { /* q, then k */
                float *x = q + part * hs;
                for (int i = 0; i < half; i++) {
                    float x0 = x[i], x1 = x[i + half], c = cs[i], s = sign * sn[i];
                    x[i] = x0 * c - x1 * s;
                    x[i + half] = x0 * s + x1 * c;
                }
            }
        }
    }
}

void dlm_rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                      int H)
{
    rope_apply(qkv, cos_t, sin_t, B, T, C, H, 1.0f);
}

/* The rotation is orthogonal, so its backward is the inverse rotation. */
void dlm_rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T,
                       int C, int H)
{
    rope_apply(dqkv, cos_t, sin_t, B, T, C, H, -1.0f);
}

/* Row softmax in place over all B*H*T rows at once: one parallel region
 * per call instead of one per head. Causal rows end at the diagonal and
 * the rest of the row is set to exactly 0. */
static void softmax_rows(float *att, int64_t rows, int T, int causal)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float *row = att + r * T;
        int i = (int)(r % T);
        int len = causal ? i + 1 : T;
        float mx = -INFINITY;
        for (int j = 0; j < len; j++) mx = row[j] > mx ? row[j] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < len; j++) {
            row[j] = dlm_expf(row[j] - mx);
            sum += row[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < len; j++) row[j] *= inv;
        for (int j = len; j < T; j++) row[j] = 0.0f;
    }
}

void dlm_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H,
                           int causal)
{
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    /* scores (T,T) = scale q k^T for every (batch, head) */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (int64_t)b * T * 3 * C + (int64_t)h * 3 * hs, *k = q + hs;
            float *p = att + ((int64_t)b * H + h) * T * T;
            dlm_gemm(0, 1, T, T, hs, scale, q, 3 * C, 1, k, 3 * C, 1, 0.0f, p, T, 1);
        }
    softmax_rows(att, (int64_t)B * H * T, T, causal);
    /* out_h (T,hs) = P v */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *v = qkv + (int64_t)b * T * 3 * C + (int64_t)h * 3 * hs + 2 * hs;
            const float *p = att + ((int64_t)b * H + h) * T * T;
            dlm_gemm(0, 0, T, hs, T, 1.0f, p, T, 1, v, 3 * C, 1, 0.0f,
                     out + (int64_t)b * T * C + (int64_t)h * hs, C, 1);
        }
}

void dlm_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                            const float *att, int B, int T, int C, int H, int causal)
{
    (void)causal; /* masked probabilities are exactly 0, so their gradients vanish */
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    /* dP (T,T) = dO v^T ; dv = P^T dO */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int64_t off = (int64_t)b * T * 3 * C + (int64_t)h * 3 * hs;
            const float *v = qkv + off + 2 * hs, *p = att + ((int64_t)b * H + h) * T * T;
            const float *dO = dout + (int64_t)b * T * C + (int64_t)h * hs;
            float *ds = scratch + ((int64_t)b * H + h) * T * T;
            dlm_gemm(0, 1, T, T, hs, 1.0f, dO, C, 1, v, 3 * C, 1, 0.0f, ds, T, 1);
            dlm_gemm(1, 0, T, hs, T, 1.0f, p, T, 1, dO, C, 1, 0.0f, dqkv + off + 2 * hs, 3 * C, 1);
        }
    /* softmax backward in place: dS = P (dP - rowsum(P dP)) */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < (int64_t)B * H * T; r++) {
        const float *pr = att + r * T;
        float *dr = scratch + r * T;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < T; j++) dot += pr[j] * dr[j];
#pragma omp simd
        for (int j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - dot);
    }
    /* dq = scale dS k ; dk = scale dS^T q */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int64_t off = (int64_t)b * T * 3 * C + (int64_t)h * 3 * hs;
            const float *q = qkv + off, *k = q + hs;
            const float *ds = scratch + ((int64_t)b * H + h) * T * T;
            dlm_gemm(0, 0, T, hs, T, scale, ds, T, 1, k, 3 * C, 1, 0.0f, dqkv + off, 3 * C, 1);
            dlm_gemm(1, 0, T, hs, T, scale, ds, T, 1, q, 3 * C, 1, 0.0f, dqkv + off + hs, 3 * C,
                     1);
        }
}
