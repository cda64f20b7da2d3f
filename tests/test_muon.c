/* Muon's pieces against their references, under mpiexec -n 1 and -n 2:
 * Newton-Schulz on BLIS against the scalar iteration on a known spectrum,
 * the iteration across tp shards (ScaLAPACK PSGEMM) against the serial
 * one, and one Muon update of every hidden weight sharded against serial.
 * Every rank runs every test; the serial reference runs on each. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/model.h"
#include "optim/muon.h"
#include "optim/newton_schulz.h"
#include "parallel/scalapack.h"
#include "parallel/tp.h"

static int world_rank, world_size;

/* q (n x n, row-major, double): an orthogonal matrix, by Gram-Schmidt
 * (twice, for orthogonality to rounding) on random columns. */
static void random_orthogonal(double *q, int n, uint32_t stream)
{
    dlm_test_fill_d(q, (int64_t)n * n, 1.0, stream);
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < n; j++) {
            for (int k = 0; k < j; k++) {
                double d = 0.0;
                for (int i = 0; i < n; i++) d += q[i * n + j] * q[i * n + k];
                for (int i = 0; i < n; i++) q[i * n + j] -= d * q[i * n + k];
            }
            double s = 0.0;
            for (int i = 0; i < n; i++) s += q[i * n + j] * q[i * n + j];
            for (int i = 0; i < n; i++) q[i * n + j] /= sqrt(s);
        }
}

/* The scalar iteration: where five steps send a singular value s. */
static double ns_scalar(double s, int steps)
{
    for (int i = 0; i < steps; i++) s = DLM_NS_A * s + DLM_NS_B * s * s * s + DLM_NS_C * pow(s, 5);
    return s;
}

/* Exact arithmetic, enumerated: five steps map [2e-3, 1] onto [0.682,
 * 1.202] (the numbers the spectrum test below leans on). */
static void test_scalar_range(void)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i <= 200000; i++) {
        double y = ns_scalar(2e-3 * pow(500.0, i / 200000.0), 5);
        lo = y < lo ? y : lo, hi = y > hi ? y : hi;
    }
    DLM_TEST_NEAR(lo, 0.6818, 5e-4, "smallest image of [2e-3, 1]");
    DLM_TEST_NEAR(hi, 1.2024, 5e-4, "largest image of [2e-3, 1]");
}

/* X = U diag(s) V^T with s spread geometrically over [2e-3, 1], given
 * directly (no normalisation): after five steps U^T X V is diag(p5(s)),
 * each p5(s) in [0.68, 1.21]. Float rounding is amplified by up to
 * 3.4445^5 ~ 490 at the smallest s: 1e-7 x 490 ~ 5e-5, so 2e-3 is loose. */
static void check_spectrum(int rows, int cols)
{
    int r = rows < cols ? rows : cols;
    double *u = malloc(sizeof(double) * rows * rows), *v = malloc(sizeof(double) * cols * cols);
    float *x = malloc(sizeof(float) * rows * cols), *work = malloc(sizeof(float) * dlm_ns_work_floats(rows, cols));
    double *s = malloc(sizeof(double) * r);
    random_orthogonal(u, rows, 11);
    random_orthogonal(v, cols, 12);
    for (int i = 0; i < r; i++) s[i] = 2e-3 * pow(500.0, (double)i / (r - 1));
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            double a = 0.0;
            for (int k = 0; k < r; k++) a += u[i * rows + k] * s[k] * v[j * cols + k];
            x[i * cols + j] = (float)a;
        }
    dlm_newton_schulz(x, rows, cols, 5, work);
    double worst_diag = 0.0, worst_off = 0.0, lo = INFINITY, hi = -INFINITY;
    for (int a = 0; a < r; a++)
        for (int b = 0; b < r; b++) {
            double d = 0.0; /* (U^T X V)[a][b] */
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) d += u[i * rows + a] * x[i * cols + j] * v[j * cols + b];
            if (a == b) {
                worst_diag = fmax(worst_diag, fabs(d - ns_scalar(s[a], 5)));
                lo = fmin(lo, d), hi = fmax(hi, d);
            } else {
                worst_off = fmax(worst_off, fabs(d));
            }
        }
    DLM_TEST_BELOW(worst_diag, 2e-3, "singular values against the scalar iteration");
    DLM_TEST_BELOW(worst_off, 2e-3, "off-diagonal of U^T X V");
    CU_ASSERT(lo >= 0.68 && hi <= 1.21);
    if (!(lo >= 0.68 && hi <= 1.21)) printf("\n  singular values in [%g, %g]\n", lo, hi);
    free(u), free(v), free(x), free(work), free(s);
}

static void test_spectrum_wide(void) { check_spectrum(24, 40); }
static void test_spectrum_tall(void) { check_spectrum(40, 24); }

/* ---- across tp shards ---- */

static MPI_Comm tp_comm(void) { return world_size > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL; }

/* W (rows x cols) split ROWS or COLS over the world: every rank's shard
 * through PSGEMM against the serial iteration on the whole. The products
 * sum in another order (PSGEMM's blocks): fp32 rounding times the
 * iteration's gain, 1e-4 of the largest entry. */
static void check_sharded_ns(int rows, int cols, dlm_split_kind split)
{
    int p = world_size, r = world_rank;
    float *w = malloc(sizeof(float) * rows * cols), *work = malloc(sizeof(float) * dlm_ns_work_floats(rows, cols));
    dlm_test_fill(w, (int64_t)rows * cols, 1.0f, 21);
    double norm = 0.0;
    for (int i = 0; i < rows * cols; i++) norm += (double)w[i] * w[i];
    for (int i = 0; i < rows * cols; i++) w[i] = (float)(w[i] / sqrt(norm));
    int lr = split == DLM_SPLIT_ROWS ? rows / p : rows, lc = split == DLM_SPLIT_COLS ? cols / p : cols;
    int r0 = split == DLM_SPLIT_ROWS ? r * lr : 0, c0 = split == DLM_SPLIT_COLS ? r * lc : 0;
    float *shard = malloc(sizeof(float) * lr * lc), *ref = malloc(sizeof(float) * lr * lc);
    for (int i = 0; i < lr; i++)
        for (int j = 0; j < lc; j++) shard[i * lc + j] = w[(r0 + i) * cols + c0 + j];
    dlm_newton_schulz(w, rows, cols, 5, work);
    for (int i = 0; i < lr; i++)
        for (int j = 0; j < lc; j++) ref[i * lc + j] = w[(r0 + i) * cols + c0 + j];
    dlm_scalapack *sl;
    DLM_TEST_OK(dlm_scalapack_create(tp_comm(), &sl));
    DLM_TEST_OK(dlm_scalapack_newton_schulz(sl, shard, rows, cols, split, 5));
    char what[96];
    snprintf(what, sizeof what, "%d x %d split %s over %d ranks", rows, cols,
             split == DLM_SPLIT_ROWS ? "by rows" : "by columns", p);
    DLM_TEST_BELOW(dlm_test_rel_err_f(shard, ref, (int64_t)lr * lc, 1e-6), 1e-4, what);
    dlm_scalapack_destroy(&sl);
    CU_ASSERT_PTR_NULL(sl);
    free(w), free(work), free(shard), free(ref);
}

static void test_sharded_ns(void)
{
    /* column-parallel (qkv's parts, fc) and row-parallel (proj, mlp.proj) shapes, wide and tall */
    check_sharded_ns(16, 16, DLM_SPLIT_ROWS);
    check_sharded_ns(64, 16, DLM_SPLIT_ROWS);
    check_sharded_ns(16, 16, DLM_SPLIT_COLS);
    check_sharded_ns(16, 64, DLM_SPLIT_COLS);
    check_sharded_ns(48, 32, DLM_SPLIT_COLS);
}

/* The BLAS under ScaLAPACK is BLIS's library. */
static void test_blas_is_blis(void)
{
    const char *lib = dlm_scalapack_blas_library();
    if (!strstr(lib, "blis")) printf("\n  sgemm_ comes from %s\n", lib);
    CU_ASSERT_PTR_NOT_NULL(strstr(lib, "blis"));
}

/* One Muon update of every hidden weight of a 2-layer model, tp-sharded
 * against serial: gradients and momentum are global functions of the
 * element, so each shard holds its slice of the serial ones. */
static void test_muon_update(void)
{
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 2, 32, 4, 8);
    dlm_tp *tp;
    DLM_TEST_OK(dlm_tp_create(tp_comm(), &tp));
    dlm_model *whole, *part;
    DLM_TEST_OK(dlm_model_create(&cfg, &whole));
    DLM_TEST_OK(dlm_model_create_tp(&cfg, tp, &part));
    dlm_model_init(whole, 5);
    dlm_model_init(part, 5);
    dlm_muon_config mc;
    dlm_muon_config_default(&mc);
    dlm_scalapack *sl;
    DLM_TEST_OK(dlm_scalapack_create(tp_comm(), &sl));
    int checked = 0;
    for (int i = 0; i < part->n_tensors; i++) {
        const dlm_param_info *pp = &part->table[i], *pw = &whole->table[i];
        if (!dlm_muon_takes(pp)) continue;
        CU_ASSERT_STRING_EQUAL(pp->name, pw->name);
        float *g = malloc(sizeof(float) * pw->numel), *buf = malloc(sizeof(float) * pw->numel);
        dlm_test_fill(g, (int64_t)pw->numel, 1.0f, 100 + i);
        dlm_test_fill(buf, (int64_t)pw->numel, 0.5f, 200 + i);
        float *gl = malloc(sizeof(float) * pp->numel), *bl = malloc(sizeof(float) * pp->numel);
        for (size_t j = 0; j < pp->numel; j++) {
            int64_t k = dlm_param_global_index(pp, (int64_t)j);
            gl[j] = g[k], bl[j] = buf[k];
        }
        float *ww = malloc(sizeof(float) * dlm_muon_work_floats(pw));
        float *wl = malloc(sizeof(float) * dlm_muon_work_floats(pp));
        float *xw = whole->param_arena.base + pw->offset, *xl = part->param_arena.base + pp->offset;
        DLM_TEST_OK(dlm_muon_update(&mc, pw, cfg.n_head, NULL, NULL, xw, g, 0.5f, buf, 0.02f, 0.1f, ww));
        DLM_TEST_OK(dlm_muon_update(&mc, pp, cfg.n_head, tp, dlm_scalapack_ns(sl), xl, gl, 0.5f, bl,
                                    0.02f, 0.1f, wl));
        double worst = 0.0, worst_buf = 0.0;
        for (size_t j = 0; j < pp->numel; j++) {
            int64_t k = dlm_param_global_index(pp, (int64_t)j);
            worst = fmax(worst, fabs(xl[j] - xw[k]));
            worst_buf = fmax(worst_buf, fabs(bl[j] - buf[k]));
        }
        /* the step moves each weight by about lr = 0.02 per unit entry of
         * the orthogonalised update; PSGEMM's order of sums changes its
         * last bits: 1e-6 is 5e-5 of the step */
        DLM_TEST_BELOW(worst, 1e-6, pp->name);
        CU_ASSERT_EQUAL(worst_buf, 0.0); /* momentum is elementwise: the same bits */
        checked++;
        free(g), free(buf), free(gl), free(bl), free(ww), free(wl);
    }
    CU_ASSERT_EQUAL(checked, 4 * cfg.n_layer);
    dlm_scalapack_destroy(&sl);
    dlm_model_destroy(&part);
    dlm_model_destroy(&whole);
    dlm_tp_destroy(&tp);
}

/* Serial Muon, built up by hand: with momentum 0 and a zero weight the
 * update is -lr scale NS(G / |G|_F) for attn.proj, and for the stacked qkv
 * weight the same for Q, K and V apart (each the rows q, k or v of every
 * head). Same kernels in the same order: to fp32 rounding of the scaling. */
static void test_muon_by_hand(void)
{
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 1, 32, 4, 8);
    dlm_model *m;
    DLM_TEST_OK(dlm_model_create(&cfg, &m));
    dlm_muon_config mc;
    dlm_muon_config_default(&mc);
    mc.nesterov = 0, mc.momentum = 0.0f;
    int checked = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const dlm_param_info *p = &m->table[i];
        int qkv = strstr(p->name, "attn.qkv.weight") != NULL;
        if (!qkv && !strstr(p->name, "attn.proj.weight")) continue;
        int64_t C = p->shape[1], hs = C / cfg.n_head, n = C * C;
        float *x = calloc(p->numel, sizeof(float)), *g = malloc(sizeof(float) * p->numel),
              *buf = calloc(p->numel, sizeof(float)), *w = malloc(sizeof(float) * dlm_muon_work_floats(p));
        float *ref = malloc(sizeof(float) * n), *nsw = malloc(sizeof(float) * dlm_ns_work_floats(C, C));
        dlm_test_fill(g, (int64_t)p->numel, 1.0f, 31);
        DLM_TEST_OK(dlm_muon_update(&mc, p, cfg.n_head, NULL, NULL, x, g, 1.0f, buf, 0.5f, 0.0f, w));
        double worst = 0.0;
        for (int part = 0; part < (qkv ? 3 : 1); part++) {
            /* row a of the part: attn.proj's row a, or head a / hs's row a % hs of q, k or v */
#define ROW(base, a) ((base) + (qkv ? ((a) / hs * 3 * hs + part * hs + (a) % hs) : (a)) * C)
            double ss = 0.0;
            for (int64_t a = 0; a < C; a++)
                for (int64_t k = 0; k < C; k++) ss += (double)ROW(g, a)[k] * ROW(g, a)[k];
            for (int64_t a = 0; a < C; a++)
                for (int64_t k = 0; k < C; k++) ref[a * C + k] = (float)(ROW(g, a)[k] / (sqrt(ss) + 1e-7));
            dlm_newton_schulz(ref, C, C, 5, nsw);
            for (int64_t a = 0; a < C; a++)
                for (int64_t k = 0; k < C; k++)
                    worst = fmax(worst, fabs(ROW(x, a)[k] + 0.5f * ref[a * C + k]));
#undef ROW
        }
        DLM_TEST_BELOW(worst, 1e-6, p->name); /* entries of about 0.5 / sqrt(C) ~ 0.09 */
        free(x), free(g), free(buf), free(w), free(ref), free(nsw);
        checked++;
    }
    CU_ASSERT_EQUAL(checked, 2);
    dlm_model_destroy(&m);
}

static const dlm_test_case ns_cases[] = {
    {"five steps of the scalar iteration map [2e-3, 1] to [0.682, 1.202]", test_scalar_range},
    {"a known spectrum, wide", test_spectrum_wide},
    {"a known spectrum, tall", test_spectrum_tall},
    {NULL, NULL}};
static const dlm_test_case scalapack_cases[] = {
    {"sgemm_ under ScaLAPACK is BLIS's", test_blas_is_blis},
    {"Newton-Schulz across tp shards equals the serial iteration", test_sharded_ns},
    {NULL, NULL}};
static const dlm_test_case muon_cases[] = {
    {"the update is Newton-Schulz of each normalised matrix, q, k, v apart", test_muon_by_hand},
    {"a tp-sharded update equals the serial one", test_muon_update},
    {NULL, NULL}};
static const dlm_test_suite suites[] = {{"newton schulz", ns_cases},
                                        {"scalapack", scalapack_cases},
                                        {"muon", muon_cases},
                                        {NULL, NULL}};

int main(int argc, char **argv)
{
    return dlm_test_main_mpi(argc, argv, suites, &world_rank, &world_size);
}
