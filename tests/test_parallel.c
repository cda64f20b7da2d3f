/* Data parallelism against the serial run, under mpiexec -n 2 and -n 4
 * (every rank runs every test; a failed assertion on any rank fails the
 * job). Also runs as one rank, where it checks the grid and that a group
 * of one changes nothing.
 *
 * The serial reference runs on every rank (same seed, same bits), then the
 * same steps data-parallel over all ranks; the tolerances say why they are
 * what they are. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mpicall.h"
#include "core/rng.h"
#include "diffusion/objective.h"
#include "harness.h"
#include "io/synthetic.h"
#include "model/kvcache.h"
#include "model/model.h"
#include "optim/optim.h"
#include "parallel/dp.h"
#include "parallel/grid.h"
#include "parallel/replicas.h"
#include "parallel/stages.h"
#include "parallel/tp.h"
#include "sample/sample.h"
#include "kernels/kernels.h"
#include "train/pipe_step.h"
#include "train/step.h"

static int world_rank, world_size;

/* ---- the grid ---- */

/* Coordinates follow world = tp_rank + tp (dp_rank + dp pp_rank), and each
 * group holds exactly the ranks that share the other coordinates. */
static void check_layout(int dp, int tp, int pp)
{
    dlm_grid *g;
    DLM_TEST_OK(dlm_grid_create(MPI_COMM_WORLD, dp, tp, pp, &g));
    CU_ASSERT_EQUAL(g->rank, g->tp_rank + tp * (g->dp_rank + dp * g->pp_rank));
    int n;
    MPI_Comm_size(g->dp_comm, &n);
    CU_ASSERT_EQUAL(n, dp);
    MPI_Comm_size(g->tp_comm, &n);
    CU_ASSERT_EQUAL(n, tp);
    MPI_Comm_size(g->pp_comm, &n);
    CU_ASSERT_EQUAL(n, pp);
    MPI_Comm_size(g->mp_comm, &n);
    CU_ASSERT_EQUAL(n, tp * pp);
    /* the dp group shares (pp, tp): the sum of its members' tp ranks is dp * tp_rank */
    int sum = 0;
    MPI_Allreduce(&g->tp_rank, &sum, 1, MPI_INT, MPI_SUM, g->dp_comm);
    CU_ASSERT_EQUAL(sum, dp * g->tp_rank);
    MPI_Allreduce(&g->pp_rank, &sum, 1, MPI_INT, MPI_SUM, g->tp_comm);
    CU_ASSERT_EQUAL(sum, tp * g->pp_rank);
    MPI_Allreduce(&g->dp_rank, &sum, 1, MPI_INT, MPI_SUM, g->pp_comm);
    CU_ASSERT_EQUAL(sum, pp * g->dp_rank);
    /* rank order inside a group follows the coordinate it varies */
    int r;
    MPI_Comm_rank(g->dp_comm, &r);
    CU_ASSERT_EQUAL(r, g->dp_rank);
    MPI_Comm_rank(g->tp_comm, &r);
    CU_ASSERT_EQUAL(r, g->tp_rank);
    MPI_Comm_rank(g->pp_comm, &r);
    CU_ASSERT_EQUAL(r, g->pp_rank);
    dlm_grid_destroy(&g);
    CU_ASSERT_PTR_NULL(g);
}

static void test_grid_layouts(void)
{
    for (int dp = 1; dp <= world_size; dp++)
        for (int tp = 1; dp * tp <= world_size; tp++)
            if (world_size % (dp * tp) == 0) check_layout(dp, tp, world_size / (dp * tp));
}

/* A layout that does not multiply to the world size fails on every rank,
 * agreed: rank 0 holds the message, the others a quiet peer error. */
static void test_grid_bad_layout(void)
{
    dlm_grid *g = NULL;
    dlm_status st = dlm_grid_create(MPI_COMM_WORLD, world_size + 1, 1, 1, &g);
    CU_ASSERT_EQUAL(st, world_rank == 0 ? DLM_ERR_ARG : DLM_ERR_PEER);
    CU_ASSERT(dlm_error_agreed());
    CU_ASSERT_PTR_NULL(g);
    if (world_rank == 0) CU_ASSERT(strstr(dlm_error_text(), "MPI ranks (mpiexec -n)") != NULL);
    dlm_error_clear();
}

/* The last rank fails alone: it keeps its own error, every other rank gets
 * the quiet DLM_ERR_PEER naming it; all are marked agreed. */
static void test_agree(void)
{
    int last = world_size - 1;
    dlm_status st = world_rank == last ? dlm_error_push(DLM_ERR_IO, __FILE__, __LINE__, __func__,
                                                        "disk gone")
                                       : DLM_OK;
    dlm_status got = dlm_agree(MPI_COMM_WORLD, st);
    CU_ASSERT(dlm_error_agreed());
    if (world_rank == last) {
        CU_ASSERT_EQUAL(got, DLM_ERR_IO);
        CU_ASSERT(strstr(dlm_error_text(), "disk gone") != NULL);
    } else {
        char want[64];
        snprintf(want, sizeof want, "rank %d failed", last);
        CU_ASSERT_EQUAL(got, DLM_ERR_PEER);
        CU_ASSERT(strstr(dlm_error_text(), want) != NULL);
    }
    dlm_error_clear();
    CU_ASSERT(!dlm_error_agreed());
    /* all failing: the lowest rank speaks, the others are quiet */
    st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__, "bad layout");
    got = dlm_agree(MPI_COMM_WORLD, st);
    CU_ASSERT_EQUAL(got, world_rank == 0 ? DLM_ERR_ARG : DLM_ERR_PEER);
    dlm_error_clear();
    CU_ASSERT_EQUAL(dlm_agree(MPI_COMM_WORLD, DLM_OK), DLM_OK);
    /* nested: agreed in pairs first, then over the world; the real failure
     * (the last rank's) still speaks although lower ranks hold peer errors */
    if (world_size % 2 == 0) {
        MPI_Comm pair;
        MPI_Comm_split(MPI_COMM_WORLD, world_rank / 2, world_rank, &pair);
        st = world_rank == last ? dlm_error_push(DLM_ERR_IO, __FILE__, __LINE__, __func__,
                                                 "disk gone")
                                : DLM_OK;
        st = dlm_agree(pair, st);
        got = dlm_agree(MPI_COMM_WORLD, st);
        CU_ASSERT_EQUAL(got, world_rank == last ? DLM_ERR_IO : DLM_ERR_PEER);
        if (world_rank == last) CU_ASSERT(strstr(dlm_error_text(), "disk gone") != NULL);
        dlm_error_clear();
        MPI_Comm_free(&pair);
    }
    int any = -1;
    DLM_TEST_OK(dlm_any(MPI_COMM_WORLD, world_rank == last, &any));
    CU_ASSERT_EQUAL(any, 1);
    DLM_TEST_OK(dlm_any(MPI_COMM_WORLD, 0, &any));
    CU_ASSERT_EQUAL(any, 0);
}

/* ---- training steps, data-parallel against serial ---- */

enum { L = 2, C = 32, H = 2, T = 16, G = 8, STEPS = 5 };
static const double LR = 3e-3, CLIP = 3.5;

typedef struct {
    dlm_model *m;
    dlm_optimizer *opt;
    dlm_step_buffers buf;
    dlm_objective obj;
    dlm_iid_source src;
    double loss[STEPS], gnorm[STEPS];
    float *theta0;
} run;

static void run_make(run *r, dlm_objective_kind kind, int micro)
{
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, L, C, H, T);
    DLM_TEST_OK(dlm_model_create(&cfg, &r->m));
    dlm_model_init(r->m, 7);
    dlm_adamw_config oc;
    dlm_adamw_config_default(&oc);
    oc.grad_clip = (float)CLIP;
    DLM_TEST_OK(dlm_optimizer_create(r->m, &oc, &r->opt));
    DLM_TEST_OK(dlm_step_buffers_create(r->m, micro, &r->buf));
    r->obj = (dlm_objective){.kind = kind, .seed = 7, .bos_id = DLM_BYTE_SEP,
                             .mask_id = DLM_BYTE_VOCAB};
    dlm_schedule_default(&r->obj.schedule, DLM_SCHEDULE_LOGLINEAR);
    dlm_iid_source_default(&r->src, 7);
    size_t bytes = r->m->n_params * sizeof(float);
    r->theta0 = malloc(bytes);
    memcpy(r->theta0, r->m->param_arena.base, bytes);
}

static void run_free(run *r)
{
    free(r->theta0);
    dlm_step_buffers_destroy(&r->buf);
    dlm_optimizer_destroy(&r->opt);
    dlm_model_destroy(&r->m);
}

/* STEPS steps; dp NULL: serial on all G sequences; else this rank's G/p
 * (global indices from rank * G/p, as the trainer loads them). own_only:
 * data-parallel slicing without the gradient sum (the negative control). */
static void run_steps(run *r, dlm_dp *dp, int own_only)
{
    int p = own_only ? world_size : dlm_dp_size(dp), n = G / p;
    int rank = own_only ? world_rank : dlm_dp_rank(dp);
    int32_t x[G * T];
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < n; i++)
            dlm_iid_fill(&r->src, (uint64_t)s * G + (uint64_t)rank * n + i, T, x + i * T);
        if (own_only) { /* the rank's slice stands in for the global batch: no sum */
            DLM_TEST_OK(dlm_train_step(r->m, r->opt, &r->buf, &r->obj, x, n, (uint32_t)s, LR,
                                       &r->loss[s], &r->gnorm[s]));
        } else {
            DLM_TEST_OK(dlm_train_step_dp(r->m, r->opt, &r->buf, &r->obj, dp, x, G, (uint32_t)s,
                                          LR, &r->loss[s], &r->gnorm[s]));
        }
    }
}

/* The largest over tensors of || (theta - theta0) - (ref - ref0) || / || ref - ref0 ||. */
static double update_error(const run *a, const run *ref)
{
    double worst = 0.0;
    for (int i = 0; i < ref->m->n_tensors; i++) {
        const dlm_param_info *p = &ref->m->table[i];
        double num = 0.0, den = 0.0;
        for (size_t j = p->offset; j < p->offset + p->numel; j++) {
            double da = (double)a->m->param_arena.base[j] - a->theta0[j];
            double dr = (double)ref->m->param_arena.base[j] - ref->theta0[j];
            num += (da - dr) * (da - dr);
            den += dr * dr;
        }
        if (den > 0 && sqrt(num / den) > worst) worst = sqrt(num / den);
    }
    return worst;
}

static void check_dp_against_serial(dlm_objective_kind kind)
{
    const int micro = 1; /* G / (micro dp) micro-batches per rank: 8, 4, 2 at dp 1, 2, 4 */
    run ser, floor_run, par;
    run_make(&ser, kind, micro);
    run_steps(&ser, NULL, 0);
    /* the noise floor: the same serial steps in micro-batches of 2 */
    run_make(&floor_run, kind, 2);
    run_steps(&floor_run, NULL, 0);
    double noise = update_error(&floor_run, &ser);
    /* clipping must bind on some steps and not on others, or a wrong norm
     * would go unseen in the update */
    int clipped = 0;
    for (int s = 0; s < STEPS; s++) clipped += ser.gnorm[s] > CLIP;
    if (world_rank == 0)
        printf("\n  %s: serial gnorm %.4f .. %.4f, clipped on %d of %d steps, noise floor %.3g\n",
               dlm_objective_name(kind), ser.gnorm[STEPS - 1], ser.gnorm[0], clipped, STEPS,
               noise);
    CU_ASSERT(clipped > 0 && clipped < STEPS);
    CU_ASSERT(noise > 0.0);

    dlm_grid *g;
    DLM_TEST_OK(dlm_grid_create(MPI_COMM_WORLD, world_size, 1, 1, &g));
    run_make(&par, kind, micro);
    dlm_dp *dp;
    /* small buckets: several of them, started during backward */
    DLM_TEST_OK(dlm_dp_create(g->dp_comm, par.m, 16 << 10, &dp));
    CU_ASSERT(world_size == 1 || dlm_dp_n_buckets(dp) > 1);
    run_steps(&par, dp, 0);
    /* step 1: the forward of each sequence does not depend on the split and
     * the per-sequence sums are added in global order: the same bits */
    CU_ASSERT(par.loss[0] == ser.loss[0]);
    /* the gradient sum is associated differently across ranks (rank sums,
     * then the all-reduce), so the norm may differ in the last bits: fp32
     * gradients, a few roundings each, relative 1e-6 */
    DLM_TEST_NEAR(par.gnorm[0], ser.gnorm[0], 1e-6 * ser.gnorm[0], "step 1 grad norm");
    for (int s = 0; s < STEPS; s++) {
        DLM_TEST_NEAR(par.loss[s], ser.loss[s], 1e-5 * ser.loss[s], "loss");
        DLM_TEST_NEAR(par.gnorm[s], ser.gnorm[s], 1e-5 * ser.gnorm[s], "grad norm");
    }
    double err = update_error(&par, &ser);
    if (world_rank == 0)
        printf("  dp%d: step-1 loss equal: %d, grad norm equal: %d (rel. diff %.2g), update error "
               "%.3g (bound %.3g)\n", world_size, par.loss[0] == ser.loss[0],
               par.gnorm[0] == ser.gnorm[0], fabs(par.gnorm[0] / ser.gnorm[0] - 1), err,
               10 * noise);
    DLM_TEST_BELOW(err, 10 * noise, "dp update error vs serial");
    /* every replica holds the same weights */
    uint64_t h = 0, lo, hi;
    for (size_t j = 0; j < par.m->n_params; j++) {
        uint32_t u;
        memcpy(&u, &par.m->param_arena.base[j], 4);
        h = h * 1000003u + u;
    }
    MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    CU_ASSERT(lo == hi);
    dlm_dp_destroy(&dp);
    run_free(&par);

    /* negative control: the same slicing without the gradient sum is far
     * outside the bound, so the bound can fail */
    if (world_size > 1) {
        run own;
        run_make(&own, kind, micro);
        run_steps(&own, NULL, 1);
        double e_own = update_error(&own, &ser);
        if (world_rank == 0) printf("  without the gradient sum: update error %.3g\n", e_own);
        CU_ASSERT(e_own > 100 * noise);
        run_free(&own);
    }
    dlm_grid_destroy(&g);
    run_free(&floor_run);
    run_free(&ser);
}

static void test_dp_mdlm(void) { check_dp_against_serial(DLM_OBJECTIVE_MDLM); }
static void test_dp_ar(void) { check_dp_against_serial(DLM_OBJECTIVE_AR); }

/* The held-out loss spread over ranks is the serial figure to the bit, for
 * a count of sequences that leaves some ranks a short or no micro-batch. */
static void test_eval_loss(void)
{
    run r;
    run_make(&r, DLM_OBJECTIVE_MDLM, 3);
    int n = 13;
    int32_t *x = malloc((size_t)n * T * sizeof *x);
    for (int i = 0; i < n; i++) dlm_iid_fill(&r.src, 1000 + (uint64_t)i, T, x + i * T);
    double ser, par;
    DLM_TEST_OK(dlm_eval_loss(r.m, &r.buf, &r.obj, x, n, 0, &ser));
    dlm_dp *dp;
    DLM_TEST_OK(dlm_dp_create(MPI_COMM_WORLD, r.m, 1 << 20, &dp));
    DLM_TEST_OK(dlm_eval_loss_dp(r.m, &r.buf, &r.obj, dp, x, n, 0, &par));
    CU_ASSERT(par == ser);
    if (par != ser) printf("\n  eval: serial %.17g, dp%d %.17g\n", ser, world_size, par);
    dlm_dp_destroy(&dp);
    free(x);
    run_free(&r);
}

/* ---- tensor parallelism ---- */

/* The vocabulary-parallel cross-entropy against the serial kernel on the
 * whole rows, with weights, -inf logits and a last shard holding only
 * padding columns (its maximum is -inf: no NaN may come of it). */
static void test_tp_xent(void)
{
    dlm_tp *tp;
    DLM_TEST_OK(dlm_tp_create(MPI_COMM_WORLD, &tp));
    int p = world_size, W = 4, V = W * p, n_valid = p > 1 ? W * (p - 1) - 1 : W - 1;
    enum { N = 7 };
    float full[N * 64], dfull[N * 64], loss_ref[N], dloss[N];
    int32_t targets[N];
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < V; j++)
            full[n * V + j] = (float)(dlm_rng_uniform(3, 0, (uint32_t)n, (uint32_t)j, DLM_RNG_INIT) * 8 - 4);
        targets[n] = (int32_t)((n * 5) % n_valid);
        int other = (targets[n] + 1) % n_valid;
        if (n % 3 == 0) full[n * V + other] = -INFINITY; /* a banned id */
        dloss[n] = n == 2 ? 0.0f : 0.1f * (float)(n + 1); /* per-token weights, one row unscored */
    }
    dlm_xent_forward(loss_ref, full, targets, N, V, n_valid);
    dlm_xent_backward(dfull, full, targets, dloss, N, V, n_valid);
    float mine[N * 16], loss[N], lse[N];
    int v0 = tp->rank * W;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < W; j++) mine[n * W + j] = full[n * V + v0 + j];
    DLM_TEST_OK(dlm_tp_xent_forward(tp, loss, lse, mine, targets, N, W, v0, n_valid));
    dlm_tp_xent_backward(tp, mine, mine, lse, targets, dloss, N, W, v0, n_valid);
    for (int n = 0; n < N; n++) {
        CU_ASSERT(isfinite(loss[n]));
        /* float exponentials summed in another order: a few ulps of the loss */
        DLM_TEST_NEAR(loss[n], loss_ref[n], 1e-5 * fabs(loss_ref[n]) + 1e-6, "vocab-parallel loss");
        for (int j = 0; j < W; j++) {
            CU_ASSERT(isfinite(mine[n * W + j]));
            DLM_TEST_NEAR(mine[n * W + j], dfull[n * V + v0 + j], 1e-6, "vocab-parallel dlogits");
        }
    }
    dlm_tp_destroy(&tp);
}

/* A tp shard's or pipeline stage's update against the serial one, tensor
 * by tensor found by name (and element by global index under tp): the worst over every rank of
 * || d_stage - d_serial || / || d_serial ||, d = theta - theta0. */
static double shard_update_error(const dlm_model *sm, const float *t0, const run *ref, MPI_Comm tp_comm)
{
    double worst = 0.0;
    for (int i = 0; i < sm->n_tensors; i++) {
        const dlm_param_info *pt = &sm->table[i], *pr = NULL;
        for (int j = 0; j < ref->m->n_tensors && !pr; j++)
            if (!strcmp(ref->m->table[j].name, pt->name)) pr = &ref->m->table[j];
        CU_ASSERT_PTR_NOT_NULL_FATAL(pr);
        double nd[2] = {0, 0};
        for (size_t j = 0; j < pt->numel; j++) {
            int64_t gi = dlm_param_global_index(pt, (int64_t)j);
            double dt = (double)sm->param_arena.base[pt->offset + j] - t0[pt->offset + j];
            double dr = (double)ref->m->param_arena.base[pr->offset + gi] - ref->theta0[pr->offset + gi];
            nd[0] += (dt - dr) * (dt - dr);
            nd[1] += dr * dr;
        }
        if (pt->shard.split != DLM_SPLIT_NONE) MPI_Allreduce(MPI_IN_PLACE, nd, 2, MPI_DOUBLE, MPI_SUM, tp_comm);
        if (nd[1] > 0 && sqrt(nd[0] / nd[1]) > worst) worst = sqrt(nd[0] / nd[1]);
    }
    MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}


/* The world as dp x tp2 and the test shape's model split over the tp
 * group, initialised from seed. */
static void tp2_model(uint64_t seed, dlm_grid **g, dlm_tp **tp, dlm_model **m)
{
    DLM_TEST_OK(dlm_grid_create(MPI_COMM_WORLD, world_size / 2, 2, 1, g));
    DLM_TEST_OK(dlm_tp_create((*g)->tp_comm, tp));
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, L, C, H, T);
    DLM_TEST_OK(dlm_model_create_tp(&cfg, *tp, m));
    dlm_model_init(*m, seed);
}

/* One rank's copy of a replicated tensor perturbed by one ulp: every rank
 * stops, rank 0 naming the tensor (the others a quiet peer error); untouched replicas pass. */
static void test_replica_check(void)
{
    if (world_size % 2) return;
    dlm_grid *g;
    dlm_tp *tp;
    dlm_model *m;
    tp2_model(7, &g, &tp, &m);
    DLM_TEST_OK(dlm_replicas_check(g, m, 1));
    if (world_rank == world_size - 1)
        m->params.blocks[1].ln2_w[3] = nextafterf(m->params.blocks[1].ln2_w[3], 2.0f);
    dlm_status st = dlm_replicas_check(g, m, 2);
    CU_ASSERT(dlm_error_agreed());
    if (world_rank == 0) {
        CU_ASSERT_EQUAL(st, DLM_ERR_STATE);
        CU_ASSERT(strstr(dlm_error_text(), "blocks.1.ln2.weight") != NULL);
    } else {
        CU_ASSERT_EQUAL(st, DLM_ERR_PEER);
    }
    dlm_error_clear();
    dlm_model_destroy(&m);
    dlm_tp_destroy(&tp);
    dlm_grid_destroy(&g);
}

/* ---- inference under tp: the logits every sampler draw and every
 * evaluation score sees ---- */

/* Worst over rows of max_j |a - b| / max_j |b| (each row's own scale). */
static double rows_error(const float *a, const float *b, int64_t n, int V)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = 0.0, scale = 0.0;
        for (int j = 0; j < V; j++) {
            d = fmax(d, fabs((double)a[i * V + j] - b[i * V + j]));
            scale = fmax(scale, fabs((double)b[i * V + j]));
        }
        worst = fmax(worst, d / scale);
    }
    return worst;
}

/* The serial model's weights cut into tp2 shards give, gathered, the
 * serial logits within a relative 1e-5 (per row): the full forward both
 * ways (mdlm's and AR's attention), each key/value-cached step, and the AR
 * scorer's -log p, with every weight moved off its initial value. The
 * cut of the initial weights equals the tp model's own initialisation. */
static void test_tp_inference(void)
{
    if (world_size % 2) return;
    dlm_grid *g;
    dlm_tp *tp;
    dlm_model *ser, *m;
    tp2_model(11, &g, &tp, &m);
    const dlm_model_config cfg = m->cfg;
    DLM_TEST_OK(dlm_model_create(&cfg, &ser));
    dlm_model_init(ser, 11);
    float *own = malloc(m->n_params * sizeof *own);
    memcpy(own, m->param_arena.base, m->n_params * sizeof *own);
    dlm_model_cut_shards(m, ser->table, ser->param_arena.base, m->param_arena.base);
    CU_ASSERT(memcmp(own, m->param_arena.base, m->n_params * sizeof *own) == 0);
    /* biases and LayerNorms start at 0 and 1: moved, so a bias added on every tp rank shows */
    for (size_t i = 0; i < ser->n_params; i++)
        ser->param_arena.base[i] += 0.05f * (float)(dlm_rng_uniform(3, (uint32_t)i, 0, 0, 0) - 0.5);
    dlm_model_cut_shards(m, ser->table, ser->param_arena.base, m->param_arena.base);
    int Vp = cfg.vocab_padded;
    dlm_acts *sa, *ta;
    DLM_TEST_OK(dlm_acts_create(ser, 1, 0, &sa));
    DLM_TEST_OK(dlm_acts_create(m, 1, 0, &ta));
    float *whole = malloc((size_t)T * Vp * sizeof *whole);
    int32_t x[T];
    for (int i = 0; i < T; i++) x[i] = i % 3 ? (int32_t)(37 * i % 256) : cfg.mask_id;
    double worst = 0.0;
    for (int causal = 0; causal <= 1; causal++) {
        DLM_TEST_OK(dlm_model_forward(ser, sa, x, 1, causal));
        DLM_TEST_OK(dlm_model_forward(m, ta, x, 1, causal));
        DLM_TEST_OK(dlm_model_whole_logits(m, ta->logits, T, whole, NULL));
        worst = fmax(worst, rows_error(whole, sa->logits, T, Vp));
    }
    DLM_TEST_BELOW(worst, 1e-5, "tp2 forward logits vs serial (relative, per row)");
    dlm_kv_cache *skv, *tkv;
    DLM_TEST_OK(dlm_kv_cache_create(ser, &skv));
    DLM_TEST_OK(dlm_kv_cache_create(m, &tkv));
    float *sl = malloc((size_t)Vp * sizeof *sl), *tl = malloc((size_t)Vp * sizeof *tl);
    double worst_step = 0.0;
    for (int i = 0; i < T; i++) {
        int32_t tok = i ? x[i - 1] % 256 : cfg.bos_id;
        DLM_TEST_OK(dlm_model_forward_step(ser, skv, tok, sl));
        DLM_TEST_OK(dlm_model_forward_step(m, tkv, tok, tl));
        worst_step = fmax(worst_step, rows_error(tl, sl, 1, Vp));
    }
    DLM_TEST_BELOW(worst_step, 1e-5, "tp2 cached step logits vs serial");
    int32_t y[T + 5];
    for (int i = 0; i < T + 5; i++) y[i] = (int32_t)(91 * i % 256);
    double nll_s, nll_t;
    DLM_TEST_OK(dlm_sample_ar_nll(ser, sa, y, T + 5, &nll_s));
    DLM_TEST_OK(dlm_sample_ar_nll(m, ta, y, T + 5, &nll_t));
    DLM_TEST_NEAR(nll_t, nll_s, 1e-5 * nll_s, "tp2 AR score vs serial");
    if (world_rank == 0)
        printf("\n  tp2 logits: forward %.2g, cached steps %.2g, AR score %.2g (relative)\n", worst,
               worst_step, fabs(nll_t / nll_s - 1));
    free(sl), free(tl), free(whole), free(own);
    dlm_kv_cache_destroy(&skv);
    dlm_kv_cache_destroy(&tkv);
    dlm_acts_destroy(&sa);
    dlm_acts_destroy(&ta);
    dlm_model_destroy(&m);
    dlm_model_destroy(&ser);
    dlm_tp_destroy(&tp);
    dlm_grid_destroy(&g);
}

/* ---- pipeline stages against serial ---- */

/* The model split over tp2 or pp2 (dp filling the world, or tp2 x pp2),
 * 5 steps with micro-batches of 1 against the serial run from the same
 * seed, clipping binding on some: without tp step 1's loss is the serial
 * one to the bit (the same per-sequence sums, added in order); losses and
 * norms within 1e-5 (the tp sums, and the norm's sum per stage, associate
 * differently: fp32 roundings); the update within 10x the noise floor; a
 * pipeline stage never holds more than pp - s micro-batches. */
static void check_split_against_serial(dlm_objective_kind kind, int tpn, int ppn)
{
    if (world_size % (tpn * ppn)) return;
    const int dpn = world_size / (ppn * tpn), micro = 1;
    run ser, floor_run;
    run_make(&ser, kind, micro);
    run_steps(&ser, NULL, 0);
    run_make(&floor_run, kind, 2);
    run_steps(&floor_run, NULL, 0);
    double noise = update_error(&floor_run, &ser);
    int clipped = 0;
    for (int st = 0; st < STEPS; st++) clipped += ser.gnorm[st] > CLIP;
    CU_ASSERT(clipped > 0 && clipped < STEPS);
    dlm_grid *g;
    DLM_TEST_OK(dlm_grid_create(MPI_COMM_WORLD, dpn, tpn, ppn, &g));
    dlm_tp *tp;
    DLM_TEST_OK(dlm_tp_create(g->tp_comm, &tp));
    int first[2], count[2], s = g->pp_rank, n = G / dpn;
    dlm_model *m;
    DLM_TEST_OK(dlm_stages_model_create(&ser.m->cfg, tp, s, ppn, NULL, 0, first, count, &m));
    dlm_model_init(m, 7);
    float *t0 = malloc(m->n_params * sizeof *t0);
    memcpy(t0, m->param_arena.base, m->n_params * sizeof *t0);
    dlm_adamw_config oc;
    dlm_adamw_config_default(&oc);
    oc.grad_clip = (float)CLIP;
    dlm_optimizer *opt;
    DLM_TEST_OK(dlm_optimizer_create(m, &oc, &opt));
    dlm_step_buffers buf = {0};
    dlm_pipe_step *ps = NULL;
    if (ppn > 1) DLM_TEST_OK(dlm_pipe_step_create(g->pp_comm, m, micro, n / micro, &ps));
    else DLM_TEST_OK(dlm_step_buffers_create(m, micro, &buf));
    dlm_dp *dp;
    DLM_TEST_OK(dlm_dp_create(g->dp_comm, m, 16 << 10, &dp));
    int32_t x[G * T];
    double loss[STEPS], gnorm[STEPS];
    for (int st = 0; st < STEPS; st++) {
        for (int i = 0; i < n; i++)
            dlm_iid_fill(&ser.src, (uint64_t)st * G + (uint64_t)g->dp_rank * n + i, T, x + i * T);
        if (ps) {
            DLM_TEST_OK(dlm_train_step_pp(ps, opt, &ser.obj, dp, x, G, (uint32_t)st, LR,
                                          &loss[st], &gnorm[st]));
            CU_ASSERT(dlm_pipe_step_stats(ps)->peak_in_flight <= ppn - s);
        } else {
            DLM_TEST_OK(dlm_train_step_dp(m, opt, &buf, &ser.obj, dp, x, G, (uint32_t)st, LR,
                                          &loss[st], &gnorm[st]));
        }
    }
    if (tpn == 1) CU_ASSERT_EQUAL(loss[0], ser.loss[0]);
    for (int st = 0; st < STEPS; st++) {
        DLM_TEST_NEAR(loss[st], ser.loss[st], 1e-5 * ser.loss[st], "split loss");
        DLM_TEST_NEAR(gnorm[st], ser.gnorm[st], 1e-5 * ser.gnorm[st], "split grad norm");
    }
    double err = shard_update_error(m, t0, &ser, g->tp_comm);
    if (world_rank == 0)
        printf("\n  %s dp%d x tp%d x pp%d: step-1 loss rel. diff %.2g, norm %.2g, update error %.3g "
               "(bound %.3g)\n", dlm_objective_name(kind), dpn, tpn, ppn,
               fabs(loss[0] / ser.loss[0] - 1), fabs(gnorm[0] / ser.gnorm[0] - 1), err, 10 * noise);
    DLM_TEST_BELOW(err, 10 * noise, "split update error vs serial");
    dlm_dp_destroy(&dp);
    dlm_pipe_step_destroy(&ps);
    dlm_step_buffers_destroy(&buf);
    dlm_optimizer_destroy(&opt);
    free(t0);
    dlm_model_destroy(&m);
    dlm_tp_destroy(&tp);
    dlm_grid_destroy(&g);
    run_free(&floor_run);
    run_free(&ser);
}

static void test_pp_mdlm(void) { check_split_against_serial(DLM_OBJECTIVE_MDLM, 1, 2); }
static void test_pp_ar(void) { check_split_against_serial(DLM_OBJECTIVE_AR, 1, 2); }
static void test_pp_tp_mdlm(void) { check_split_against_serial(DLM_OBJECTIVE_MDLM, 2, 2); }
static void test_pp_tp_ar(void) { check_split_against_serial(DLM_OBJECTIVE_AR, 2, 2); }

static void test_tp_mdlm(void) { check_split_against_serial(DLM_OBJECTIVE_MDLM, 2, 1); }
static void test_tp_ar(void) { check_split_against_serial(DLM_OBJECTIVE_AR, 2, 1); }

static const dlm_test_case grid_cases[] = {
    {"layouts", test_grid_layouts},
    {"bad layout", test_grid_bad_layout},
    {"agree", test_agree},
    {NULL, NULL}};
static const dlm_test_case dp_cases[] = {
    {"mdlm steps against serial", test_dp_mdlm},
    {"ar steps against serial", test_dp_ar},
    {"held-out loss", test_eval_loss},
    {NULL, NULL}};
static const dlm_test_case tp_cases[] = {
    {"vocabulary-parallel cross-entropy", test_tp_xent},
    {"mdlm steps against serial", test_tp_mdlm},
    {"ar steps against serial", test_tp_ar},
    {"replica check", test_replica_check},
    {"inference logits", test_tp_inference},
    {NULL, NULL}};
static const dlm_test_case pp_cases[] = {
    {"mdlm steps against serial", test_pp_mdlm},
    {"ar steps against serial", test_pp_ar},
    {"mdlm tp2 x pp2 against serial", test_pp_tp_mdlm},
    {"ar tp2 x pp2 against serial", test_pp_tp_ar},
    {NULL, NULL}};
static const dlm_test_suite suites[] = {
    {"grid", grid_cases}, {"dp", dp_cases}, {"tp", tp_cases}, {"pp", pp_cases}, {NULL, NULL}};

int main(int argc, char **argv)
{
    return dlm_test_main_mpi(argc, argv, suites, &world_rank, &world_size);
}
