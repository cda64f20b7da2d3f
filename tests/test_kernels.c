/* Kernels: the double reference kernels (ref_kernels.c) checked against
 * central finite differences, then every float32 kernel in kernels.h checked
 * against the reference on small random shapes, GEMM in every transpose and
 * storage order, RoPE's inverse, AdamW steps and the clipping helpers.
 * Set DLM_TEST_SHOW=1 to print each measured error beside its bound. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kernels/kernels.h"
#include "kernels/vmath.h"
#include "ref_kernels.h"

/* ---- helpers ---- */

/* The buffers one test takes, freed together at its end. */
typedef struct {
    void *p[64];
    int n;
} bag;

static void *bag_take(bag *g, size_t bytes)
{
    CU_ASSERT_FATAL(g->n < 64);
    void *p = calloc(bytes ? bytes : 1, 1);
    CU_ASSERT_FATAL(p != NULL);
    g->p[g->n++] = p;
    return p;
}
static float *fbuf(bag *g, int64_t n) { return bag_take(g, (size_t)n * sizeof(float)); }
static double *dbuf(bag *g, int64_t n) { return bag_take(g, (size_t)n * sizeof(double)); }
static void bag_free(bag *g)
{
    for (int i = 0; i < g->n; i++) free(g->p[i]);
    g->n = 0;
}

static float *frand(bag *g, int64_t n, float scale, uint32_t stream)
{
    float *x = fbuf(g, n);
    dlm_test_fill(x, n, scale, stream);
    return x;
}
static double *drand(bag *g, int64_t n, double scale, uint32_t stream)
{
    double *x = dbuf(g, n);
    dlm_test_fill_d(x, n, scale, stream);
    return x;
}
static double *dcopy(bag *g, const float *x, int64_t n)
{
    double *d = dbuf(g, n);
    ref_f2d(d, x, n);
    return d;
}
static float *fcopy(bag *g, const float *x, int64_t n)
{
    float *d = fbuf(g, n);
    memcpy(d, x, (size_t)n * sizeof *d);
    return d;
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* max that keeps a NaN (fmax would drop it and hide a broken result) */
static double worse(double a, double b)
{
    if (a != a) return a;
    if (b != b) return b;
    return b > a ? b : a;
}

/* Asserts err <= tol; with DLM_TEST_SHOW set, prints the measured error too. */
static void below(double err, double tol, const char *what)
{
    if (getenv("DLM_TEST_SHOW")) printf("\n    %-44s %9.3g  (bound %.3g)", what, err, tol);
    DLM_TEST_BELOW(err, tol, what);
}

/* fp32 unit roundoff */
#define U32 0x1p-24

/* Bound on the normalised error (max |err| / max |ref|) of fp32 results
 * that are K-term sums of products: K u is the worst-case rounding relative
 * to sum |a b|, and for our random O(1) data sum |a b| is within 8x of the
 * largest result. Observed errors sit near sqrt(K) u, well inside; any
 * indexing or formula slip gives an O(1) error. */
static double tol_sum(int64_t K) { return 8.0 * (double)(K < 2 ? 2 : K) * U32; }

/* ==== 1. the reference kernels against central finite differences ====
 * L = sum(out * r) for a fixed random r, so dL/dout = r is what the
 * reference backward receives. h = 1e-6 in double: truncation error
 * h^2/6 |L'''| ~ 1e-13 and cancellation error ~ 2e-16 |L| / h ~ 1e-9 for
 * |L| ~ 10, so a correct backward agrees to ~1e-9 relative to the largest
 * gradient; the bound 1e-6 leaves three decades of margin yet catches any
 * missing or wrong term (an O(1e-1..1) error). */

typedef double (*loss_fn)(void *ctx);

#define FD_TOL 1e-6

/* max_i |fd_i - grad_i| / max(max_i |grad_i|, 1e-3), perturbing x in place. */
static double fd_err(loss_fn f, void *ctx, double *x, int64_t n, const double *grad)
{
    const double h = 1e-6;
    double maxdiff = 0.0, maxg = 1e-3;
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = f(ctx);
        x[i] = x0 - h;
        double lm = f(ctx);
        x[i] = x0;
        double d = fabs((lp - lm) / (2 * h) - grad[i]);
        if (d > maxdiff || d != d) maxdiff = d;
        if (fabs(grad[i]) > maxg) maxg = fabs(grad[i]);
    }
    return maxdiff / maxg;
}

typedef struct {
    double *inp, *w, *bias, *r, *out;
    int64_t N;
    int C, OC;
} lin_ctx;
static double lin_loss(void *p)
{
    lin_ctx *c = p;
    ref_linear_forward(c->out, c->inp, c->w, c->bias, c->N, c->C, c->OC);
    return dot(c->out, c->r, c->N * c->OC);
}

static void test_ref_linear_fd(void)
{
    bag g = {0};
    const int64_t N = 3;
    const int C = 4, OC = 5;
    lin_ctx c = {drand(&g, N * C, 1, 1), drand(&g, OC * C, 1, 2), drand(&g, OC, 1, 3),
                 drand(&g, N * OC, 1, 4), dbuf(&g, N * OC), N, C, OC};
    double *dinp = dbuf(&g, N * C), *dw = dbuf(&g, OC * C), *db = dbuf(&g, OC);
    ref_linear_backward(dinp, dw, db, c.r, c.inp, c.w, N, C, OC);
    below(fd_err(lin_loss, &c, c.inp, N * C, dinp), FD_TOL, "ref linear dinp vs FD");
    below(fd_err(lin_loss, &c, c.w, OC * C, dw), FD_TOL, "ref linear dw vs FD");
    below(fd_err(lin_loss, &c, c.bias, OC, db), FD_TOL, "ref linear dbias vs FD");
    bag_free(&g);
}

typedef struct {
    double *inp, *w, *b, *r, *out, *mean, *rstd;
    int64_t N;
    int C;
} ln_ctx;
static double ln_loss(void *p)
{
    ln_ctx *c = p;
    ref_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
    return dot(c->out, c->r, c->N * c->C);
}

static void test_ref_layernorm_fd(void)
{
    bag g = {0};
    const int64_t N = 3;
    const int C = 6;
    ln_ctx c = {drand(&g, N * C, 1, 1), drand(&g, C, 1, 2), drand(&g, C, 1, 3),
                drand(&g, N * C, 1, 4), dbuf(&g, N * C), dbuf(&g, N), dbuf(&g, N), N, C};
    double *dinp = dbuf(&g, N * C), *dw = dbuf(&g, C), *db = dbuf(&g, C);
    ln_loss(&c);
    ref_layernorm_backward(dinp, dw, db, c.r, c.inp, c.w, c.mean, c.rstd, N, C);
    below(fd_err(ln_loss, &c, c.inp, N * C, dinp), FD_TOL, "ref layernorm dinp vs FD");
    below(fd_err(ln_loss, &c, c.w, C, dw), FD_TOL, "ref layernorm dw vs FD");
    below(fd_err(ln_loss, &c, c.b, C, db), FD_TOL, "ref layernorm db vs FD");
    bag_free(&g);
}

typedef struct {
    double *inp, *r, *out;
    int64_t n;
} gelu_ctx;
static double gelu_loss(void *p)
{
    gelu_ctx *c = p;
    ref_gelu_forward(c->out, c->inp, c->n);
    return dot(c->out, c->r, c->n);
}

static void test_ref_gelu_fd(void)
{
    bag g = {0};
    const int64_t n = 24;
    /* inputs in [-4, 4): both tails and the curved middle */
    gelu_ctx c = {drand(&g, n, 4, 1), drand(&g, n, 1, 2), dbuf(&g, n), n};
    double *dinp = dbuf(&g, n);
    ref_gelu_backward(dinp, c.inp, c.r, n);
    below(fd_err(gelu_loss, &c, c.inp, n, dinp), FD_TOL, "ref gelu dinp vs FD");
    bag_free(&g);
}

typedef struct {
    double *qkv, *work, *cos_t, *sin_t, *r;
    int B, T, C, H;
} rope_ctx;
static double rope_loss(void *p)
{
    rope_ctx *c = p;
    int64_t n = (int64_t)c->B * c->T * 3 * c->C;
    memcpy(c->work, c->qkv, (size_t)n * sizeof *c->work);
    ref_rope_forward(c->work, c->cos_t, c->sin_t, c->B, c->T, c->C, c->H);
    return dot(c->work, c->r, n);
}

/* ref_rope_backward is the gradient of ref_rope_forward, v included (passed through). */
static void test_ref_rope_fd(void)
{
    bag g = {0};
    const int B = 2, T = 3, C = 8, H = 2, hs = C / H;
    const int64_t n = (int64_t)B * T * 3 * C;
    rope_ctx c = {drand(&g, n, 1, 1), dbuf(&g, n), dbuf(&g, T * hs / 2), dbuf(&g, T * hs / 2),
                  drand(&g, n, 1, 2), B, T, C, H};
    /* a small theta so that every pair turns by a clearly non-trivial angle */
    ref_rope_table(c.cos_t, c.sin_t, T, hs, 7.0);
    double *grad = dbuf(&g, n);
    memcpy(grad, c.r, (size_t)n * sizeof *grad);
    ref_rope_backward(grad, c.cos_t, c.sin_t, B, T, C, H);
    below(fd_err(rope_loss, &c, c.qkv, n, grad), FD_TOL, "ref rope dqkv vs FD");
    bag_free(&g);
}

typedef struct {
    double *qkv, *out, *att, *r;
    int B, T, C, H, causal;
} att_ctx;
static double att_loss(void *p)
{
    att_ctx *c = p;
    ref_attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->H, c->causal);
    return dot(c->out, c->r, (int64_t)c->B * c->T * c->C);
}

static void ref_attention_fd_case(int causal)
{
    bag g = {0};
    const int B = 2, T = 4, C = 8, H = 2;
    const int64_t n = (int64_t)B * T * 3 * C;
    att_ctx c = {drand(&g, n, 1.5, 1), dbuf(&g, (int64_t)B * T * C),
                 dbuf(&g, (int64_t)B * H * T * T), drand(&g, (int64_t)B * T * C, 1, 2),
                 B, T, C, H, causal};
    double *dqkv = dbuf(&g, n);
    att_loss(&c);
    ref_attention_backward(dqkv, c.r, c.qkv, c.att, B, T, C, H, causal);
    below(fd_err(att_loss, &c, c.qkv, n, dqkv), FD_TOL,
          causal ? "ref attention causal dqkv vs FD" : "ref attention bidir dqkv vs FD");
    bag_free(&g);
}
static void test_ref_attention_fd(void)
{
    ref_attention_fd_case(1);
    ref_attention_fd_case(0);
}

typedef struct {
    double *logits, *loss, *dloss;
    const int32_t *targets;
    int64_t N;
    int V, n_valid;
} xent_ctx;
static double xent_loss(void *p)
{
    xent_ctx *c = p;
    ref_xent_forward(c->loss, c->logits, c->targets, c->N, c->V, c->n_valid);
    return dot(c->loss, c->dloss, c->N);
}

/* L = sum_n dloss[n] loss[n]; the padding columns must have zero gradient,
 * which the FD confirms since they do not enter the loss. */
static void test_ref_xent_fd(void)
{
    bag g = {0};
    const int64_t N = 4;
    const int V = 9, n_valid = 7;
    static const int32_t targets[4] = {0, 6, 3, 3};
    xent_ctx c = {drand(&g, N * V, 2, 1), dbuf(&g, N), drand(&g, N, 1, 2), targets, N, V,
                  n_valid};
    for (int64_t n = 0; n < N; n++)
        for (int i = n_valid; i < V; i++) c.logits[n * V + i] = 30.0;
    double *dlogits = dbuf(&g, N * V);
    ref_xent_backward(dlogits, c.logits, targets, c.dloss, N, V, n_valid);
    below(fd_err(xent_loss, &c, c.logits, N * V, dlogits), FD_TOL, "ref xent dlogits vs FD");
    bag_free(&g);
}

typedef struct {
    double *wte, *out, *r;
    const int32_t *tokens;
    int64_t N;
    int C;
} emb_ctx;
static double emb_loss(void *p)
{
    emb_ctx *c = p;
    ref_embedding_forward(c->out, c->tokens, c->wte, c->N, c->C);
    return dot(c->out, c->r, c->N * c->C);
}

static void test_ref_embedding_fd(void)
{
    bag g = {0};
    const int64_t N = 5;
    const int C = 3, V = 4;
    static const int32_t tokens[5] = {2, 0, 2, 3, 2}; /* repeats: gradients must add */
    emb_ctx c = {drand(&g, (int64_t)V * C, 1, 1), dbuf(&g, N * C), drand(&g, N * C, 1, 2),
                 tokens, N, C};
    double *dwte = dbuf(&g, (int64_t)V * C);
    ref_embedding_backward(dwte, tokens, c.r, N, C);
    below(fd_err(emb_loss, &c, c.wte, (int64_t)V * C, dwte), FD_TOL, "ref embedding dwte vs FD");
    bag_free(&g);
}

/* The reference GEMM on a hand-computed product, every transpose case:
 * A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12], AB = [58 64; 139 154];
 * with alpha 2, beta -1 and C = 1: [115 127; 277 307]. Integers: exact. */
static void test_ref_gemm_known(void)
{
    static const double A[6] = {1, 2, 3, 4, 5, 6}, At[6] = {1, 4, 2, 5, 3, 6};
    static const double Bm[6] = {7, 8, 9, 10, 11, 12}, Bt[6] = {7, 9, 11, 8, 10, 12};
    static const double want[4] = {115, 127, 277, 307};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            double c[4] = {1, 1, 1, 1};
            /* stored A is 2x3 (rs 3) or, transposed, 3x2 (rs 2); likewise B */
            ref_gemm(ta, tb, 2, 2, 3, 2.0, ta ? At : A, ta ? 2 : 3, 1, tb ? Bt : Bm, tb ? 3 : 2,
                     1, -1.0, c, 2, 1);
            for (int i = 0; i < 4; i++) CU_ASSERT(c[i] == want[i]);
        }
}

/* AdamW's first step has a closed form: mhat = g, vhat = g^2, so
 * p1 = p0 - lr (g / (|g| + eps) + wd p0). Agreement to 1e-14 (a few
 * double roundings of O(1) values). */
static void test_ref_adamw_first_step(void)
{
    bag g = {0};
    const int64_t n = 16;
    double *p = drand(&g, n, 1, 1), *gr = drand(&g, n, 1, 2), *m = dbuf(&g, n),
           *v = dbuf(&g, n);
    double *p0 = dbuf(&g, n);
    memcpy(p0, p, (size_t)n * sizeof *p);
    const double lr = 0.1, eps = 1e-3, wd = 0.2;
    ref_adamw_update(p, gr, m, v, n, lr, 0.9, 0.95, eps, wd, 1);
    double err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double want = p0[i] - lr * (gr[i] / (fabs(gr[i]) + eps) + wd * p0[i]);
        err = worse(err, fabs(p[i] - want));
    }
    below(err, 1e-14, "ref adamw first step vs closed form");
    bag_free(&g);
}

/* ==== 2. float32 kernels against the reference ==== */

static void test_linear(void)
{
    bag g = {0};
    const int64_t N = 14; /* B = 2, T = 7 */
    const int C = 16, OC = 24;
    float *inp = frand(&g, N * C, 1, 1), *w = frand(&g, (int64_t)OC * C, 0.5f, 2),
          *bias = frand(&g, OC, 0.5f, 3), *out = fbuf(&g, N * OC);
    double *inp_d = dcopy(&g, inp, N * C), *w_d = dcopy(&g, w, (int64_t)OC * C),
           *bias_d = dcopy(&g, bias, OC), *out_d = dbuf(&g, N * OC);

    /* out: C-term dot products plus the bias */
    dlm_linear_forward(out, inp, w, bias, N, C, OC);
    ref_linear_forward(out_d, inp_d, w_d, bias_d, N, C, OC);
    below(dlm_test_rel_err(out, out_d, N * OC, 1e-3), tol_sum(C + 1), "linear forward");
    dlm_linear_forward(out, inp, w, NULL, N, C, OC);
    ref_linear_forward(out_d, inp_d, w_d, NULL, N, C, OC);
    below(dlm_test_rel_err(out, out_d, N * OC, 1e-3), tol_sum(C), "linear forward, no bias");

    /* backward accumulates: gradients start nonzero and must be added to */
    float *dout = frand(&g, N * OC, 1, 4);
    float *dinp = frand(&g, N * C, 1, 5), *dw = frand(&g, (int64_t)OC * C, 1, 6),
          *dbias = frand(&g, OC, 1, 7);
    double *dout_d = dcopy(&g, dout, N * OC), *dinp_d = dcopy(&g, dinp, N * C),
           *dw_d = dcopy(&g, dw, (int64_t)OC * C), *dbias_d = dcopy(&g, dbias, OC);
    float *dinp1 = fcopy(&g, dinp, N * C), *dw1 = fcopy(&g, dw, (int64_t)OC * C),
          *dbias1 = fcopy(&g, dbias, OC);
    dlm_linear_backward(dinp, 1.0f, dw, dbias, dout, inp, w, N, C, OC);
    ref_linear_backward(dinp_d, dw_d, dbias_d, dout_d, inp_d, w_d, N, C, OC);
    /* dinp sums over OC, dw and dbias over the N rows, each plus the old value */
    below(dlm_test_rel_err(dinp, dinp_d, N * C, 1e-3), tol_sum(OC + 1), "linear dinp (+=)");
    below(dlm_test_rel_err(dw, dw_d, (int64_t)OC * C, 1e-3), tol_sum(N + 1), "linear dw (+=)");
    below(dlm_test_rel_err(dbias, dbias_d, OC, 1e-3), tol_sum(N + 1), "linear dbias (+=)");

    /* the NULL (not needed) outputs: the requested ones are still right */
    dlm_linear_backward(NULL, 1.0f, dw1, NULL, dout, inp, w, N, C, OC);
    below(dlm_test_rel_err(dw1, dw_d, (int64_t)OC * C, 1e-3), tol_sum(N + 1),
          "linear dw alone (dinp, dbias NULL)");
    dlm_linear_backward(dinp1, 1.0f, NULL, dbias1, dout, inp, w, N, C, OC);
    below(dlm_test_rel_err(dinp1, dinp_d, N * C, 1e-3), tol_sum(OC + 1),
          "linear dinp with dw NULL");
    below(dlm_test_rel_err(dbias1, dbias_d, OC, 1e-3), tol_sum(N + 1),
          "linear dbias with dw NULL");

    /* dinp_beta = 0 overwrites without reading: NaN in dinp must not leak */
    float *dinp0 = fbuf(&g, N * C);
    double *dinp0_d = dbuf(&g, N * C), *dw0_d = dbuf(&g, (int64_t)OC * C);
    for (int64_t i = 0; i < N * C; i++) dinp0[i] = NAN;
    dlm_linear_backward(dinp0, 0.0f, NULL, NULL, dout, inp, w, N, C, OC);
    ref_linear_backward(dinp0_d, dw0_d, NULL, dout_d, inp_d, w_d, N, C, OC);
    below(dlm_test_rel_err(dinp0, dinp0_d, N * C, 1e-3), tol_sum(OC), "linear dinp (overwrite)");
    bag_free(&g);
}

/* A shape big enough that the GEMM library's packed micro-kernels, not
 * only its edge cases, do the work. */
static void test_linear_larger(void)
{
    bag g = {0};
    const int64_t N = 70;
    const int C = 96, OC = 52;
    float *inp = frand(&g, N * C, 1, 11), *w = frand(&g, (int64_t)OC * C, 0.2f, 12),
          *bias = frand(&g, OC, 0.5f, 13), *out = fbuf(&g, N * OC),
          *dout = frand(&g, N * OC, 1, 14), *dinp = frand(&g, N * C, 1, 15),
          *dw = frand(&g, (int64_t)OC * C, 1, 16), *dbias = frand(&g, OC, 1, 17);
    double *inp_d = dcopy(&g, inp, N * C), *w_d = dcopy(&g, w, (int64_t)OC * C),
           *bias_d = dcopy(&g, bias, OC), *out_d = dbuf(&g, N * OC),
           *dout_d = dcopy(&g, dout, N * OC), *dinp_d = dcopy(&g, dinp, N * C),
           *dw_d = dcopy(&g, dw, (int64_t)OC * C), *dbias_d = dcopy(&g, dbias, OC);
    dlm_linear_forward(out, inp, w, bias, N, C, OC);
    ref_linear_forward(out_d, inp_d, w_d, bias_d, N, C, OC);
    below(dlm_test_rel_err(out, out_d, N * OC, 1e-3), tol_sum(C + 1), "linear 70x96x52 forward");
    dlm_linear_backward(dinp, 1.0f, dw, dbias, dout, inp, w, N, C, OC);
    ref_linear_backward(dinp_d, dw_d, dbias_d, dout_d, inp_d, w_d, N, C, OC);
    below(dlm_test_rel_err(dinp, dinp_d, N * C, 1e-3), tol_sum(OC + 1), "linear 70x96x52 dinp");
    below(dlm_test_rel_err(dw, dw_d, (int64_t)OC * C, 1e-3), tol_sum(N + 1),
          "linear 70x96x52 dw");
    below(dlm_test_rel_err(dbias, dbias_d, OC, 1e-3), tol_sum(N + 1), "linear 70x96x52 dbias");
    bag_free(&g);
}

static void test_layernorm(void)
{
    bag g = {0};
    const int64_t N = 14;
    const int C = 16;
    float *inp = frand(&g, N * C, 1, 1);
    for (int64_t i = 0; i < N * C; i++) inp[i] += 0.5f; /* a nonzero mean to remove */
    /* row 0: zero mean, amplitude 0.01, variance ~3e-5, so eps = 1e-5 is a
     * quarter of var + eps and a wrong eps shows at the 1e-2 level */
    for (int c = 0; c < C; c++) inp[c] = 0.01f * (inp[c] - 0.5f);
    float *w = frand(&g, C, 1, 2), *b = frand(&g, C, 1, 3), *out = fbuf(&g, N * C),
          *mean = fbuf(&g, N), *rstd = fbuf(&g, N);
    double *inp_d = dcopy(&g, inp, N * C), *w_d = dcopy(&g, w, C), *b_d = dcopy(&g, b, C),
           *out_d = dbuf(&g, N * C), *mean_d = dbuf(&g, N), *rstd_d = dbuf(&g, N);
    dlm_layernorm_forward(out, mean, rstd, inp, w, b, N, C);
    ref_layernorm_forward(out_d, mean_d, rstd_d, inp_d, w_d, b_d, N, C);
    /* mean and variance are C-term sums; out is a few more roundings on top */
    below(dlm_test_rel_err(mean, mean_d, N, 1e-3), tol_sum(C), "layernorm mean");
    /* rstd per row (row 0's is ~100x the others', so a max-norm would hide them) */
    double rstd_err = 0.0;
    for (int64_t n = 0; n < N; n++)
        rstd_err = worse(rstd_err, fabs((double)rstd[n] - rstd_d[n]) / rstd_d[n]);
    below(rstd_err, tol_sum(C), "layernorm rstd, relative per row");
    below(dlm_test_rel_err(out, out_d, N * C, 1e-3), tol_sum(C), "layernorm out");

    float *dout = frand(&g, N * C, 1, 4), *dinp = frand(&g, N * C, 1, 5), *dw = frand(&g, C, 1, 6),
          *db = frand(&g, C, 1, 7);
    double *dout_d = dcopy(&g, dout, N * C), *dinp_d = dcopy(&g, dinp, N * C),
           *dw_d = dcopy(&g, dw, C), *db_d = dcopy(&g, db, C);
    dlm_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    ref_layernorm_backward(dinp_d, dw_d, db_d, dout_d, inp_d, w_d, mean_d, rstd_d, N, C);
    /* dinp: two C-term means subtracted from each dxhat (some cancellation: 2x);
     * dw, db: N-term sums over rows; all on top of the prefilled values */
    below(dlm_test_rel_err(dinp, dinp_d, N * C, 1e-3), 2 * tol_sum(2 * C), "layernorm dinp (+=)");
    below(dlm_test_rel_err(dw, dw_d, C, 1e-3), tol_sum(N + C), "layernorm dw (+=)");
    below(dlm_test_rel_err(db, db_d, C, 1e-3), tol_sum(N + 1), "layernorm db (+=)");
    bag_free(&g);
}

/* The vectorised exp and tanh against libm in double: exp's relative error
 * over its whole clamped range, tanh's absolute error (what GELU needs),
 * and the clamps: never 0, never inf, never NaN. */
static void test_vmath(void)
{
    double e_exp = 0.0, e_tanh = 0.0;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f + 175.0f * (float)i / 200000.0f;
        double ref = exp((double)x);
        e_exp = worse(e_exp, fabs((double)dlm_expf(x) - ref) / ref);
        float u = -10.0f + 20.0f * (float)i / 200000.0f;
        e_tanh = worse(e_tanh, fabs((double)dlm_tanhf(u) - tanh((double)u)));
    }
    /* a few float roundings in the reduction and Horner steps: 4e-7 */
    below(e_exp, 4e-7, "dlm_expf relative error on [-87, 88]");
    below(e_tanh, 4e-7, "dlm_tanhf absolute error on [-10, 10]");
    CU_ASSERT(dlm_expf(-1000.0f) > 0.0f && dlm_expf(-1000.0f) < 2e-38f);
    CU_ASSERT(isfinite(dlm_expf(1000.0f)) && dlm_expf(1000.0f) > 1e38f);
    CU_ASSERT(dlm_tanhf(100.0f) == 1.0f && dlm_tanhf(-100.0f) == -1.0f);
    CU_ASSERT(dlm_expf(0.0f) == 1.0f);
    CU_ASSERT(isnan(dlm_expf(NAN)) && isnan(dlm_tanhf(NAN))); /* divergence stays visible */
}

static void test_gelu(void)
{
    bag g = {0};
    const int64_t n = 14 * 16 + 3; /* odd length: vector tails */
    float *inp = frand(&g, n, 5, 1), *out = fbuf(&g, n), *dout = frand(&g, n, 1, 2),
          *dinp = frand(&g, n, 1, 3);
    double *inp_d = dcopy(&g, inp, n), *out_d = dbuf(&g, n), *dout_d = dcopy(&g, dout, n),
           *dinp_d = dcopy(&g, dinp, n);
    dlm_gelu_forward(out, inp, n);
    ref_gelu_forward(out_d, inp_d, n);
    /* elementwise: a cubic, tanhf (a couple of ulp) and three products,
     * measured against the largest |out| ~ 5: 32 u is loose */
    below(dlm_test_rel_err(out, out_d, n, 1e-3), 32 * U32, "gelu forward");
    /* the float kernel overwrites (dinp holds garbage first); the double
     * reference accumulates, so it starts from 0 */
    for (int64_t i = 0; i < n; i++) dinp[i] = NAN, dinp_d[i] = 0.0;
    dlm_gelu_backward(dinp, inp, dout, n);
    ref_gelu_backward(dinp_d, inp_d, dout_d, n);
    /* the derivative has 1 - tanh^2 (cancellation near the tails, where it
     * is small anyway) */
    below(dlm_test_rel_err(dinp, dinp_d, n, 1e-3), 64 * U32, "gelu dinp");
    /* in place: the gradient overwrites its own input */
    dlm_gelu_backward(dout, inp, dout, n);
    CU_ASSERT(memcmp(dout, dinp, (size_t)n * sizeof *dout) == 0);
    bag_free(&g);
}

static void rope_case(int B, int T, int C, int H)
{
    bag g = {0};
    const int hs = C / H, half = hs / 2;
    const int64_t n = (int64_t)B * T * 3 * C;
    float *cos_t = fbuf(&g, (int64_t)T * half), *sin_t = fbuf(&g, (int64_t)T * half);
    double *cos_d = dbuf(&g, (int64_t)T * half), *sin_d = dbuf(&g, (int64_t)T * half);
    dlm_rope_table(cos_t, sin_t, T, hs, 10000.0);
    ref_rope_table(cos_d, sin_d, T, hs, 10000.0);
    /* absolute error (floor 1): angles <= T rad, so even an angle formed
     * in float is off by <= 4e-7, plus the rounding of cos/sin itself */
    below(dlm_test_rel_err(cos_t, cos_d, (int64_t)T * half, 1.0), 2e-6, "rope cos table");
    below(dlm_test_rel_err(sin_t, sin_d, (int64_t)T * half, 1.0), 2e-6, "rope sin table");

    /* from here on the reference uses the float tables, so only the
     * rotation's arithmetic is compared: two products and a sum, <= 3 u of
     * |x0| + |x1|; 16 u allows for that relative to the max-norm */
    ref_f2d(cos_d, cos_t, (int64_t)T * half);
    ref_f2d(sin_d, sin_t, (int64_t)T * half);
    float *qkv = frand(&g, n, 1, 1), *qkv0 = fcopy(&g, qkv, n);
    double *qkv_d = dcopy(&g, qkv, n);
    dlm_rope_forward(qkv, cos_t, sin_t, B, T, C, H);
    ref_rope_forward(qkv_d, cos_d, sin_d, B, T, C, H);
    below(dlm_test_rel_err(qkv, qkv_d, n, 1e-3), 16 * U32, "rope forward");
    float *dq = frand(&g, n, 1, 2), *dq0 = fcopy(&g, dq, n);
    double *dq_d = dcopy(&g, dq, n);
    dlm_rope_backward(dq, cos_t, sin_t, B, T, C, H);
    ref_rope_backward(dq_d, cos_d, sin_d, B, T, C, H);
    below(dlm_test_rel_err(dq, dq_d, n, 1e-3), 16 * U32, "rope backward");

    /* v is not rotated, forward or backward: bit for bit unchanged */
    int v_same = 1;
    for (int64_t bt = 0; bt < (int64_t)B * T; bt++)
        for (int h = 0; h < H; h++)
            for (int d = 0; d < hs; d++) {
                int64_t i = bt * 3 * C + 3 * hs * h + 2 * hs + d;
                v_same &= qkv[i] == qkv0[i] && dq[i] == dq0[i];
            }
    CU_ASSERT(v_same);

    /* 4. rope_backward inverts rope_forward (an orthogonal rotation): with
     * float tables cos^2 + sin^2 = 1 within 2 u, plus two roundings per
     * rotation, so the round trip returns the vector within ~6 u; 16 u bound */
    float *x = frand(&g, n, 1, 3), *x0 = fcopy(&g, x, n);
    dlm_rope_forward(x, cos_t, sin_t, B, T, C, H);
    double moved = dlm_test_rel_err_f(x, x0, n, 1e-3); /* the rotation did something */
    dlm_rope_backward(x, cos_t, sin_t, B, T, C, H);
    CU_ASSERT(moved > 0.1);
    below(dlm_test_rel_err_f(x, x0, n, 1e-3), 16 * U32, "rope backward(forward(x)) = x");
    bag_free(&g);
}
static void test_rope(void)
{
    rope_case(2, 7, 16, 2); /* hs 8 */
    rope_case(1, 5, 12, 3); /* hs 4 */
}

static void attention_case(int B, int T, int C, int H, int causal)
{
    bag g = {0};
    const int hs = C / H;
    const int64_t nq = (int64_t)B * T * 3 * C, no = (int64_t)B * T * C,
                  na = (int64_t)B * H * T * T;
    float *qkv = frand(&g, nq, 1.5f, 1), *out = fbuf(&g, no), *att = fbuf(&g, na);
    for (int64_t i = 0; i < na; i++) att[i] = 0.5f; /* masked entries must be overwritten */
    double *qkv_d = dcopy(&g, qkv, nq), *out_d = dbuf(&g, no), *att_d = dbuf(&g, na);
    dlm_attention_forward(out, att, qkv, B, T, C, H, causal);
    ref_attention_forward(out_d, att_d, qkv_d, B, T, C, H, causal);
    char what[96];
    const char *kind = causal ? "causal" : "bidirectional";
    /* scores are hs-term dot products, then exp, a T-term sum and a
     * T-term weighted sum of v */
    snprintf(what, sizeof what, "attention %s T=%d H=%d att", kind, T, H);
    below(dlm_test_rel_err(att, att_d, na, 1e-3), tol_sum(hs + T), what);
    snprintf(what, sizeof what, "attention %s T=%d H=%d out", kind, T, H);
    below(dlm_test_rel_err(out, out_d, no, 1e-3), tol_sum(hs + 2 * T), what);
    if (causal) { /* the future is exactly probability 0 */
        int zero = 1;
        for (int64_t bh = 0; bh < (int64_t)B * H; bh++)
            for (int t = 0; t < T; t++)
                for (int j = t + 1; j < T; j++) zero &= att[(bh * T + t) * T + j] == 0.0f;
        CU_ASSERT(zero);
    }

    float *dout = frand(&g, no, 1, 2), *dqkv = frand(&g, nq, 1, 3);
    float *scratch = fbuf(&g, (int64_t)B * H * T * T); /* exact size: overruns show under ASan */
    double *dout_d = dcopy(&g, dout, no), *dqkv_d = dbuf(&g, nq);
    for (int64_t i = 0; i < nq; i++) dqkv[i] = NAN; /* overwritten, never read */
    dlm_attention_backward(dqkv, scratch, dout, qkv, att, B, T, C, H, causal);
    ref_attention_backward(dqkv_d, dout_d, qkv_d, att_d, B, T, C, H, causal);
    /* chains hs- and T-term sums through the softmax Jacobian, whose
     * p (dp - sum p dp) cancels somewhat: twice the forward bound */
    snprintf(what, sizeof what, "attention %s T=%d H=%d dqkv (overwrite)", kind, T, H);
    below(dlm_test_rel_err(dqkv, dqkv_d, nq, 1e-3), 2 * tol_sum(hs + 2 * T), what);
    bag_free(&g);
}
static void test_attention(void)
{
    attention_case(2, 7, 16, 2, 1);
    attention_case(2, 7, 16, 2, 0);
    attention_case(1, 5, 12, 3, 1);
    attention_case(1, 5, 12, 3, 0);
}

static void test_xent(void)
{
    bag g = {0};
    const int64_t N = 14;
    const int V = 40, n_valid = 33;
    float *logits = frand(&g, N * V, 4, 1);
    /* columns >= n_valid large: they would dominate the softmax if counted */
    for (int64_t n = 0; n < N; n++)
        for (int i = n_valid; i < V; i++) logits[n * V + i] = 30.0f;
    int32_t targets[14];
    for (int64_t n = 0; n < N; n++) targets[n] = (int32_t)((n * 11 + 3) % n_valid);
    targets[5] = n_valid - 1; /* the last valid column */
    targets[6] = 0;
    float *dloss = frand(&g, N, 1, 2);
    dloss[3] = 0.0f, dloss[8] = 0.0f; /* e.g. unmasked positions in diffusion */
    float *loss = fbuf(&g, N);
    double *logits_d = dcopy(&g, logits, N * V), *dloss_d = dcopy(&g, dloss, N),
           *loss_d = dbuf(&g, N), *dlogits_d = dbuf(&g, N * V);
    dlm_xent_forward(loss, logits, targets, N, V, n_valid);
    ref_xent_forward(loss_d, logits_d, targets, N, V, n_valid);
    /* logsumexp over n_valid terms of magnitude up to 4: the absolute error
     * is ~ n_valid u times the largest logit, relative to loss ~ 4 */
    below(dlm_test_rel_err(loss, loss_d, N, 1e-3), tol_sum(n_valid), "xent loss");

    float *dlogits = fbuf(&g, N * V);
    for (int64_t i = 0; i < N * V; i++) dlogits[i] = 7.0f; /* overwritten, not added to */
    dlm_xent_backward(dlogits, logits, targets, dloss, N, V, n_valid);
    ref_xent_backward(dlogits_d, logits_d, targets, dloss_d, N, V, n_valid);
    /* softmax probabilities from an n_valid-term sum, times dloss */
    below(dlm_test_rel_err(dlogits, dlogits_d, N * V, 1e-3), tol_sum(n_valid), "xent dlogits");
    int pad_zero = 1, row_zero = 1;
    for (int64_t n = 0; n < N; n++)
        for (int i = 0; i < V; i++) {
            if (i >= n_valid) pad_zero &= dlogits[n * V + i] == 0.0f;
            if (n == 3 || n == 8) row_zero &= dlogits[n * V + i] == 0.0f;
        }
    CU_ASSERT(pad_zero); /* columns >= n_valid: exactly 0 */
    CU_ASSERT(row_zero); /* rows with dloss 0: exactly 0 */

    /* dlogits may alias logits */
    float *inplace = fcopy(&g, logits, N * V);
    dlm_xent_backward(inplace, inplace, targets, dloss, N, V, n_valid);
    below(dlm_test_rel_err(inplace, dlogits_d, N * V, 1e-3), tol_sum(n_valid),
          "xent dlogits in place (aliasing logits)");

    /* n_valid == V: no padding at all */
    dlm_xent_forward(loss, logits, targets, N, V, V);
    ref_xent_forward(loss_d, logits_d, targets, N, V, V);
    below(dlm_test_rel_err(loss, loss_d, N, 1e-3), tol_sum(V), "xent loss, n_valid = V");
    bag_free(&g);
}

static void test_embedding(void)
{
    bag g = {0};
    const int64_t N = 14;
    const int C = 16, V = 10;
    int32_t tokens[14];
    for (int64_t n = 0; n < N; n++) tokens[n] = (int32_t)((n * 7) % 9); /* repeats; row 9 unused */
    float *wte = frand(&g, (int64_t)V * C, 1, 1), *out = fbuf(&g, N * C);
    dlm_embedding_forward(out, tokens, wte, N, C);
    int copied = 1;
    for (int64_t n = 0; n < N; n++)
        for (int c = 0; c < C; c++) copied &= out[n * C + c] == wte[(int64_t)tokens[n] * C + c];
    CU_ASSERT(copied); /* a lookup is an exact copy */

    float *dout = frand(&g, N * C, 1, 2), *dwte = frand(&g, (int64_t)V * C, 1, 3),
          *dwte0 = fcopy(&g, dwte, (int64_t)V * C);
    double *dout_d = dcopy(&g, dout, N * C), *dwte_d = dcopy(&g, dwte, (int64_t)V * C);
    dlm_embedding_backward(dwte, tokens, dout, N, C);
    ref_embedding_backward(dwte_d, tokens, dout_d, N, C);
    /* each row gathers at most 3 rows of dout plus its old value */
    below(dlm_test_rel_err(dwte, dwte_d, (int64_t)V * C, 1e-3), tol_sum(4),
          "embedding dwte (+=, repeated tokens)");
    int untouched = 1;
    for (int c = 0; c < C; c++) untouched &= dwte[9 * C + c] == dwte0[9 * C + c];
    CU_ASSERT(untouched); /* a token that never occurs: its row is unchanged */
    bag_free(&g);
}

/* One IEEE operation per element, so the result is bit for bit the same
 * as the operation done here. */
static void test_elementwise(void)
{
    bag g = {0};
    const int64_t n = 1003;
    float *a = frand(&g, n, 1, 1), *b = frand(&g, n, 1, 2);
    float *acc = fcopy(&g, a, n);
    dlm_accumulate(acc, b, n);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) ok &= acc[i] == a[i] + b[i];
    CU_ASSERT(ok);
    bag_free(&g);
}

/* ==== 3. GEMM: every transpose, strided and column-major storage ==== */

/* A matrix of r x c stored row-major with padding (rs = c + 3, cs = 1) or
 * column-major with padding (rs = 1, cs = r + 2); returns the buffer size. */
static int64_t gemm_layout(int colmajor, int64_t r, int64_t c, int64_t *rs, int64_t *cs)
{
    if (colmajor) {
        *rs = 1, *cs = r + 2;
        return c * *cs;
    }
    *rs = c + 3, *cs = 1;
    return r * *rs;
}

static void gemm_case(int64_t m, int64_t n, int64_t k, float alpha, float beta, int ta, int tb,
                      int layout, double *worst_fast, double *worst_naive, int *pad_ok)
{
    bag g = {0};
    int64_t rsa, csa, rsb, csb, rsc, csc;
    /* stored shapes: A is m x k, or k x m when transposed; likewise B */
    int64_t na = gemm_layout(layout & 1, ta ? k : m, ta ? m : k, &rsa, &csa);
    int64_t nb = gemm_layout((layout >> 1) & 1, tb ? n : k, tb ? k : n, &rsb, &csb);
    int64_t nc = gemm_layout((layout >> 2) & 1, m, n, &rsc, &csc);
    float *a = frand(&g, na, 1, 1), *b = frand(&g, nb, 1, 2), *c = frand(&g, nc, 1, 3);
    float *c0 = fcopy(&g, c, nc);
    double *a_d = dcopy(&g, a, na), *b_d = dcopy(&g, b, nb), *c_d = dcopy(&g, c, nc);
    char *inside = bag_take(&g, (size_t)nc); /* the m x n view within the buffer */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) inside[i * rsc + j * csc] = 1;
    /* beta = 0 means C is not read (BLAS semantics): NaN there must not leak */
    if (beta == 0.0f)
        for (int64_t i = 0; i < nc; i++)
            if (inside[i]) c[i] = NAN;
    float *c_naive = fcopy(&g, c, nc);
    dlm_gemm(ta, tb, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
    dlm_gemm_naive(ta, tb, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c_naive, rsc, csc);
    ref_gemm(ta, tb, m, n, k, alpha, a_d, rsa, csa, b_d, rsb, csb, beta, c_d, rsc, csc);
    /* compare the m x n entries (a NaN counts as an infinite error);
     * padding must be left exactly as it was */
    double *want = dbuf(&g, m * n);
    float *got = fbuf(&g, m * n), *got_naive = fbuf(&g, m * n);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t at = i * rsc + j * csc;
            want[i * n + j] = c_d[at];
            got[i * n + j] = c[at];
            got_naive[i * n + j] = c_naive[at];
        }
    for (int64_t i = 0; i < nc; i++)
        if (!inside[i]) *pad_ok &= c[i] == c0[i] && c_naive[i] == c0[i];
    *worst_fast = worse(*worst_fast, dlm_test_rel_err(got, want, m * n, 1e-3));
    *worst_naive = worse(*worst_naive, dlm_test_rel_err(got_naive, want, m * n, 1e-3));
    /* and the fast one against the naive one, as the kernels' own reference */
    *worst_fast = worse(*worst_fast, dlm_test_rel_err_f(got, got_naive, m * n, 1e-3));
    bag_free(&g);
}

static void gemm_shape(int64_t m, int64_t n, int64_t k, const char *name)
{
    static const float ab[3][2] = {{0.75f, -1.5f}, {1.25f, 0.0f}, {1.0f, 1.0f}};
    double worst_fast = 0.0, worst_naive = 0.0;
    int pad_ok = 1;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int layout = 0; layout < 8; layout++) /* bits: A, B, C column-major */
                for (int s = 0; s < 3; s++)
                    gemm_case(m, n, k, ab[s][0], ab[s][1], ta, tb, layout, &worst_fast,
                              &worst_naive, &pad_ok);
    char what[96];
    /* fp32 GEMM: a k-term sum plus the beta C term */
    snprintf(what, sizeof what, "dlm_gemm %s, worst of 96 cases", name);
    below(worst_fast, tol_sum(k + 1), what);
    /* the naive GEMM accumulates in double: only the final rounding to
     * float (and float alpha/beta products) remain, a few u */
    snprintf(what, sizeof what, "dlm_gemm_naive %s, worst of 96 cases", name);
    below(worst_naive, 8 * U32, what);
    CU_ASSERT(pad_ok); /* entries outside the m x n view are never written */
}
static void test_gemm(void)
{
    gemm_shape(7, 5, 9, "7x5x9");
    gemm_shape(37, 29, 53, "37x29x53");
}

/* ==== 5. clipping and AdamW ==== */

static void test_sum_squares(void)
{
    bag g = {0};
    const int64_t n = 100003; /* not a multiple of any chunk size */
    float *x = frand(&g, n, 2, 1);
    double *x_d = dcopy(&g, x, n);
    double want = ref_sum_squares(x_d, n);
    double got = dlm_sum_squares(x, n);
    /* float * float is exact in double and the n positive terms sum with
     * relative error <= n 2^-53 ~ 1.1e-11; a float accumulator anywhere
     * would be off by ~1e-7 or more */
    below(fabs(got - want) / want, 2e-11, "sum of squares (100003 terms) vs double");
    CU_ASSERT(dlm_sum_squares(x, 0) == 0.0);
    DLM_TEST_NEAR(dlm_sum_squares(x, 1), (double)x[0] * x[0], 0.0, "sum of squares, n = 1");

    /* the same bits whatever the thread count (fixed chunks, combined in order) */
    int save = omp_get_max_threads();
    omp_set_num_threads(1);
    double s1 = dlm_sum_squares(x, n);
    omp_set_num_threads(3);
    double s3 = dlm_sum_squares(x, n);
    omp_set_num_threads(save);
    CU_ASSERT(s1 == s3);
    bag_free(&g);
}

static void test_clip_factor(void)
{
    CU_ASSERT(dlm_clip_factor(0.5, 1.0) == 1.0f);   /* below the bound: no scaling */
    CU_ASSERT(dlm_clip_factor(1.0, 1.0) == 1.0f);   /* at the bound: no scaling */
    CU_ASSERT(dlm_clip_factor(0.0, 1.0) == 1.0f);   /* zero gradient: no division */
    CU_ASSERT(dlm_clip_factor(4.0, 1.0) == 0.25f);  /* exact in binary */
    CU_ASSERT(dlm_clip_factor(10.0, 2.5) == 0.25f);
    /* 1/3 rounded to float: within one rounding (u relative) */
    DLM_TEST_NEAR(dlm_clip_factor(3.0, 1.0), 1.0 / 3.0, U32 / 3.0 * 1.01, "clip 1/3");
    DLM_TEST_NEAR(dlm_clip_factor(1e6, 1.0), 1e-6, 1e-6 * U32 * 1.01, "clip 1e-6");
}

/* Runs `steps` AdamW steps from t = t0 on float and double copies of the
 * same state and returns the errors: p relative to how far p moved, m and v
 * in max-norm. */
static void adamw_run(float wd, float scale, int64_t t0, int steps, int warm, double *err_p,
                      double *err_m, double *err_v)
{
    bag g = {0};
    const int64_t n = 257; /* odd: vector tails */
    const float lr = 0.05f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f;
    float *p = frand(&g, n, 1, 1), *m = fbuf(&g, n), *v = fbuf(&g, n), *gr = fbuf(&g, n);
    if (warm) { /* a later step: moments already nonzero */
        dlm_test_fill(m, n, 0.1f, 2);
        dlm_test_fill(v, n, 0.01f, 3);
        for (int64_t i = 0; i < n; i++) v[i] = fabsf(v[i]) + 1e-4f;
    }
    double *p_d = dcopy(&g, p, n), *m_d = dcopy(&g, m, n), *v_d = dcopy(&g, v, n),
           *g_d = dbuf(&g, n), *p0 = dcopy(&g, p, n);
    for (int s = 0; s < steps; s++) {
        dlm_test_fill(gr, n, 1, 10 + (uint32_t)s);
        for (int64_t i = 0; i < n; i += 16) gr[i] *= 1e-8f; /* where eps matters */
        ref_f2d(g_d, gr, n);
        for (int64_t i = 0; i < n; i++) g_d[i] *= scale; /* the clipping factor */
        dlm_adamw_update(p, gr, scale, m, v, n, lr, b1, b2, eps, wd, t0 + s);
        ref_adamw_update(p_d, g_d, m_d, v_d, n, lr, b1, b2, eps, wd, t0 + s);
    }
    double moved = 0.0, diff = 0.0;
    for (int64_t i = 0; i < n; i++) {
        moved = worse(moved, fabs(p_d[i] - p0[i]));
        diff = worse(diff, fabs((double)p[i] - p_d[i]));
    }
    *err_p = diff / moved;
    *err_m = dlm_test_rel_err(m, m_d, n, 1e-3);
    *err_v = dlm_test_rel_err(v, v_d, n, 1e-6);
    bag_free(&g);
}

static void test_adamw(void)
{
    /* p: storing p (|p| <= 1) in float costs u = 6e-8 per step against a
     * step of lr = 0.05, i.e. ~1e-6 of the movement per step, plus a few u
     * in m/(sqrt(v)+eps); 1e-5 allows 5 steps. m, v: a few roundings per
     * step of an O(1) recurrence, 16 u. */
    static const struct {
        float wd, scale;
        int64_t t0;
        int steps, warm;
        const char *name;
    } cases[] = {{0.0f, 1.0f, 1, 1, 0, "adamw 1 step, wd 0"},
                 {0.1f, 1.0f, 1, 1, 0, "adamw 1 step, wd 0.1"},
                 {0.0f, 1.0f, 1, 5, 0, "adamw 5 steps, wd 0"},
                 {0.1f, 1.0f, 1, 5, 0, "adamw 5 steps, wd 0.1"},
                 {0.1f, 0.3f, 1, 5, 0, "adamw 5 steps, wd 0.1, gradients clipped by 0.3"},
                 {0.1f, 1.0f, 1000, 2, 1, "adamw steps 1000-1001 (warm moments), wd 0.1"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double ep, em, ev;
        adamw_run(cases[c].wd, cases[c].scale, cases[c].t0, cases[c].steps, cases[c].warm, &ep,
                  &em, &ev);
        char what[96];
        snprintf(what, sizeof what, "%s: p", cases[c].name);
        below(ep, 1e-5, what);
        snprintf(what, sizeof what, "%s: m", cases[c].name);
        below(em, 16 * U32, what);
        snprintf(what, sizeof what, "%s: v", cases[c].name);
        below(ev, 16 * U32, what);
    }
}

/* ==== thread-count independence (kernels.h: reductions over rows run in
 * a fixed order). The same inputs under 1 and 3 OpenMP threads give the
 * same bits. ==== */
static void test_thread_invariance(void)
{
    bag g = {0};
    const int64_t N = 70;
    const int C = 48, OC = 40, V = 11;
    float *inp = frand(&g, N * C, 1, 1), *w = frand(&g, (int64_t)OC * C, 1, 2),
          *dout = frand(&g, N * OC, 1, 3), *lw = frand(&g, C, 1, 4), *lb = frand(&g, C, 1, 5),
          *ldout = frand(&g, N * C, 1, 6), *lout = fbuf(&g, N * C), *mean = fbuf(&g, N),
          *rstd = fbuf(&g, N);
    int32_t tokens[70];
    for (int64_t n = 0; n < N; n++) tokens[n] = (int32_t)((n * 5) % V);
    float *res[2][6];
    int save = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? 3 : 1);
        res[r][0] = fbuf(&g, N * C), res[r][1] = fbuf(&g, (int64_t)OC * C);
        res[r][2] = fbuf(&g, OC), res[r][3] = fbuf(&g, C), res[r][4] = fbuf(&g, C);
        res[r][5] = fbuf(&g, (int64_t)V * C);
        dlm_linear_backward(res[r][0], 1.0f, res[r][1], res[r][2], dout, inp, w, N, C, OC);
        dlm_layernorm_forward(lout, mean, rstd, inp, lw, lb, N, C);
        float *ldinp = fbuf(&g, N * C);
        dlm_layernorm_backward(ldinp, res[r][3], res[r][4], ldout, inp, lw, mean, rstd, N, C);
        dlm_embedding_backward(res[r][5], tokens, ldout, N, C);
    }
    omp_set_num_threads(save);
    static const char *names[6] = {"linear dinp", "linear dw", "linear dbias",
                                   "layernorm dw", "layernorm db", "embedding dwte"};
    const int64_t len[6] = {N * C, (int64_t)OC * C, OC, C, C, (int64_t)V * C};
    for (int i = 0; i < 6; i++) {
        int same = memcmp(res[0][i], res[1][i], (size_t)len[i] * sizeof(float)) == 0;
        if (!same) printf("\n  %s differs between 1 and 3 threads", names[i]);
        CU_ASSERT(same);
    }
    bag_free(&g);
}

int main(int argc, char **argv)
{
    static const dlm_test_case ref[] = {
        {"linear backward vs finite differences", test_ref_linear_fd},
        {"layernorm backward vs finite differences", test_ref_layernorm_fd},
        {"gelu backward vs finite differences", test_ref_gelu_fd},
        {"rope backward vs finite differences", test_ref_rope_fd},
        {"attention backward (causal, bidirectional) vs finite differences",
         test_ref_attention_fd},
        {"xent backward (n_valid < V) vs finite differences", test_ref_xent_fd},
        {"embedding backward (repeated tokens) vs finite differences", test_ref_embedding_fd},
        {"gemm known product, all transposes", test_ref_gemm_known},
        {"adamw first step closed form", test_ref_adamw_first_step},
        {NULL, NULL}};
    static const dlm_test_case kernels[] = {
        {"linear forward/backward (+=, NULL grads)", test_linear},
        {"linear 70x96x52", test_linear_larger},
        {"layernorm forward/backward (+=)", test_layernorm},
        {"vectorised exp and tanh", test_vmath},
        {"gelu forward/backward (overwrite, in place)", test_gelu},
        {"rope table, forward, backward, inverse", test_rope},
        {"attention causal and bidirectional (+=)", test_attention},
        {"xent n_valid < V, zero rows, aliasing", test_xent},
        {"embedding forward/backward (+=)", test_embedding},
        {"add, accumulate, scale exact", test_elementwise},
        {"same bits under 1 and 3 threads", test_thread_invariance},
        {NULL, NULL}};
    static const dlm_test_case gemm[] = {
        {"gemm vs naive vs double: transposes, strides, alpha, beta", test_gemm},
        {NULL, NULL}};
    static const dlm_test_case optim[] = {{"sum of squares", test_sum_squares},
                                          {"clip factor", test_clip_factor},
                                          {"adamw vs reference", test_adamw},
                                          {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"reference", ref},
                                            {"kernels", kernels},
                                            {"gemm", gemm},
                                            {"optim", optim},
                                            {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
