/* Matrix products through BLIS's typed API (strides instead of copies),
 * the naive reference they are tested against, and the linear layer. */
#include <blis.h>

#include "kernels/kernels.h"

/* Per thread: a recorder set on one thread never sees another's calls
 * (dlm_gemm is called from the thread that runs the model; BLIS's own
 * threads work inside bli_sgemm and never call back). */
static _Thread_local dlm_gemm_log *gemm_recorder;

void dlm_gemm_record(dlm_gemm_log *log) { gemm_recorder = log; }

static void record(const dlm_gemm_call *c)
{
    dlm_gemm_log *log = gemm_recorder;
    if (log->n < log->cap) log->calls[log->n++] = *c;
    else log->overflow++;
}

void dlm_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
              int64_t cs_b, float beta, float *c, int64_t rs_c, int64_t cs_c)
{
    if (m == 0 || n == 0) return;
    if (gemm_recorder)
        record(&(dlm_gemm_call){trans_a, trans_b, m, n, k, rs_a, cs_a, rs_b, cs_b, rs_c, cs_c,
                                alpha, beta});
    /* BLIS takes non-const pointers but does not write A, B, alpha or beta. */
    bli_sgemm(trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
              trans_b ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k,
              &alpha, (float *)a, (inc_t)rs_a, (inc_t)cs_a, (float *)b, (inc_t)rs_b, (inc_t)cs_b,
              &beta, c, (inc_t)rs_c, (inc_t)cs_c);
}

void dlm_gemm_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                    int64_t cs_b, float beta, float *c, int64_t rs_c, int64_t cs_c)
{
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++) {
                float av = trans_a ? a[p * rs_a + i * cs_a] : a[i * rs_a + p * cs_a];
                float bv = trans_b ? b[j * rs_b + p * cs_b] : b[p * rs_b + j * cs_b];
                acc += (double)av * (double)bv;
            }
            float *cij = &c[i * rs_c + j * cs_c];
            /* beta == 0 ignores C, as BLAS does (C may hold garbage or NaN) */
            *cij = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *cij));
        }
    }
}

void dlm_linear_forward(float *out, const float *inp, const float *w, const float *bias,
                        int64_t N, int C, int OC)
{
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int64_t n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[n * OC + o] = bias[o];
        beta = 1.0f;
    }
    dlm_gemm(0, 1, N, OC, C, 1.0f, inp, C, 1, w, C, 1, beta, out, OC, 1);
}

/* Column sums of dout in a fixed row order; threads own column blocks. */
static void column_sums_accumulate(float *dbias, const float *dout, int64_t N, int OC)
{
    const int blk = 64;
#pragma omp parallel for schedule(static)
    for (int o0 = 0; o0 < OC; o0 += blk) {
        int o1 = o0 + blk < OC ? o0 + blk : OC;
        float acc[64] = {0};
        for (int64_t n = 0; n < N; n++)
            for (int o = o0; o < o1; o++) acc[o - o0] += dout[n * OC + o];
        for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
    }
}

void dlm_linear_backward(float *dinp, float dinp_beta, float *dw, float *dbias,
                         const float *dout, const float *inp, const float *w, int64_t N, int C,
                         int OC)
{
    if (dinp) dlm_gemm(0, 0, N, C, OC, 1.0f, dout, OC, 1, w, C, 1, dinp_beta, dinp, C, 1);
    if (dw) dlm_gemm(1, 0, OC, C, N, 1.0f, dout, OC, 1, inp, C, 1, 1.0f, dw, C, 1);
    if (dbias) column_sums_accumulate(dbias, dout, N, OC);
}
