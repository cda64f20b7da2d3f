/* The pipeline schedule and its runner, under mpiexec -n 1, 2 and 4 (the
 * world is the pipeline: stage = rank). The schedule's op lists are checked
 * exactly for pp = 4, m = 8; the runner carries toy stages (elementwise,
 * so the serial composition gives the same bits) and must reproduce the
 * serial losses and gradients exactly, in the schedule's order, holding
 * no more than pp - s micro-batches. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "parallel/pipeline.h"
#include "parallel/stages.h"

static int world_rank, world_size;

/* ---- the schedule ---- */

static void expect_ops(int pp, int s, int m, const char *want)
{
    dlm_pipe_op ops[64];
    int n;
    DLM_TEST_OK(dlm_pipe_ops(DLM_PIPE_1F1B, pp, s, m, ops, &n));
    char got[256] = "";
    for (int i = 0; i < n; i++) {
        char one[8];
        snprintf(one, sizeof one, "%s%c%d", i ? " " : "", ops[i].kind == DLM_PIPE_FORWARD ? 'F' : 'B',
                 ops[i].micro);
        strcat(got, one);
    }
    if (strcmp(got, want)) printf("\n  stage %d of %d: got  %s\n  want %s\n", s, pp, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
    CU_ASSERT_EQUAL(dlm_pipe_peak_in_flight(ops, n, DLM_PIPE_1F1B), pp - s < m ? pp - s : m);
}

/* pp = 4, m = 8 written out: warm-up of pp - s - 1 forwards, one forward
 * one backward, cool-down. */
static void test_schedule_exact(void)
{
    expect_ops(4, 0, 8, "F0 F1 F2 F3 B0 F4 B1 F5 B2 F6 B3 F7 B4 B5 B6 B7");
    expect_ops(4, 1, 8, "F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 F6 B4 F7 B5 B6 B7");
    expect_ops(4, 2, 8, "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 F6 B5 F7 B6 B7");
    expect_ops(4, 3, 8, "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 F6 B6 F7 B7");
    /* one stage: today's micro-batch loop */
    expect_ops(1, 0, 3, "F0 B0 F1 B1 F2 B2");
    /* fewer micro-batches than stages: warm-up takes them all */
    expect_ops(4, 0, 2, "F0 F1 B0 B1");
    /* the bound tells 1F1B from fill-drain, which holds all m */
    dlm_pipe_op fd[16];
    for (int i = 0; i < 8; i++) fd[i] = (dlm_pipe_op){DLM_PIPE_FORWARD, i};
    for (int i = 0; i < 8; i++) fd[8 + i] = (dlm_pipe_op){DLM_PIPE_BACKWARD, i};
    CU_ASSERT_EQUAL(dlm_pipe_peak_in_flight(fd, 16, DLM_PIPE_1F1B), 8);
    /* forward only */
    dlm_pipe_op ops[8];
    int n;
    DLM_TEST_OK(dlm_pipe_ops(DLM_PIPE_FORWARD_ONLY, 4, 2, 5, ops, &n));
    CU_ASSERT_EQUAL(n, 5);
    for (int i = 0; i < n; i++) CU_ASSERT(ops[i].kind == DLM_PIPE_FORWARD && ops[i].micro == i);
    CU_ASSERT_DOUBLE_EQUAL(dlm_pipe_ideal_bubble(2, 16), 1.0 / 17.0, 1e-15);
    CU_ASSERT_EQUAL(dlm_pipe_ops(DLM_PIPE_1F1B, 4, 4, 8, ops, &n), DLM_ERR_ARG);
    dlm_error_clear();
}

/* ---- the runner, with toy stages ---- */

enum { N = 37, M = 6 };

/* Stage s: y = x * w_s + s / 8 elementwise (w_s fixed), loss on the last
 * stage sum(y^2) / 2; grad_w accumulates dy * x over micro-batches in
 * order. The first stage's input of micro-batch k is x_j = (k + 1)(j + 1) / 64. */
typedef struct {
    int s, last;
    float w[N], grad_w[N];
    float x[M][N], y[M][N]; /* what backward needs, per micro-batch */
    int held, peak;
    char trace[512];
    double loss;
} toy_stage;

static void toy_init(toy_stage *t, int s, int last)
{
    memset(t, 0, sizeof *t);
    t->s = s, t->last = last;
    for (int j = 0; j < N; j++) t->w[j] = 1.0f + 0.01f * (float)((s * 7 + j) % 11);
}

static void trace_op(toy_stage *t, char kind, int k)
{
    char one[8];
    snprintf(one, sizeof one, "%s%c%d", t->trace[0] ? " " : "", kind, k);
    strcat(t->trace, one);
}

static dlm_status toy_forward(void *ctx, int k, const float *in, float *out)
{
    toy_stage *t = ctx;
    trace_op(t, 'F', k);
    t->peak = ++t->held > t->peak ? t->held : t->peak;
    for (int j = 0; j < N; j++) {
        t->x[k][j] = in ? in[j] : (float)((k + 1) * (j + 1)) / 64.0f;
        t->y[k][j] = t->x[k][j] * t->w[j] + (float)t->s / 8.0f;
        if (out) out[j] = t->y[k][j];
    }
    if (t->last)
        for (int j = 0; j < N; j++) t->loss += 0.5 * (double)t->y[k][j] * t->y[k][j];
    return DLM_OK;
}

static dlm_status toy_backward(void *ctx, int k, const float *dout, float *din)
{
    toy_stage *t = ctx;
    trace_op(t, 'B', k);
    t->held--;
    for (int j = 0; j < N; j++) {
        float dy = dout ? dout[j] : t->y[k][j]; /* d(y^2/2)/dy on the last stage */
        t->grad_w[j] += dy * t->x[k][j];
        if (din) din[j] = dy * t->w[j];
    }
    return DLM_OK;
}

/* The serial reference: all stages on this rank, micro-batch by micro-batch. */
static void serial_run(int pp, toy_stage *st)
{
    float a[N], g[N];
    for (int s = 0; s < pp; s++) toy_init(&st[s], s, s == pp - 1);
    for (int k = 0; k < M; k++) {
        for (int s = 0; s < pp; s++) {
            DLM_TEST_OK(toy_forward(&st[s], k, s ? a : NULL, a));
        }
        for (int s = pp - 1; s >= 0; s--) {
            float d[N];
            DLM_TEST_OK(toy_backward(&st[s], k, s == pp - 1 ? NULL : g, d));
            memcpy(g, d, sizeof g);
        }
    }
}

static void test_runner_1f1b(void)
{
    int pp = world_size, s = world_rank;
    toy_stage *ref = malloc((size_t)pp * sizeof *ref);
    serial_run(pp, ref);
    toy_stage me;
    toy_init(&me, s, s == pp - 1);
    dlm_pipe_stage st = {.ctx = &me, .forward = toy_forward, .backward = toy_backward};
    dlm_pipe_stats stats;
    DLM_TEST_OK(dlm_pipe_run(pp > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL, &st, DLM_PIPE_1F1B, M, N,
                             &stats));
    /* elementwise work in the same order: the same bits as serial */
    CU_ASSERT(memcmp(me.grad_w, ref[s].grad_w, sizeof me.grad_w) == 0);
    if (s == pp - 1) CU_ASSERT_EQUAL(me.loss, ref[s].loss);
    /* the order the stage ran is the schedule's, and the bound holds */
    dlm_pipe_op ops[2 * M];
    int n;
    DLM_TEST_OK(dlm_pipe_ops(DLM_PIPE_1F1B, pp, s, M, ops, &n));
    toy_stage want;
    toy_init(&want, s, 0);
    for (int i = 0; i < n; i++) trace_op(&want, ops[i].kind == DLM_PIPE_FORWARD ? 'F' : 'B', ops[i].micro);
    CU_ASSERT_STRING_EQUAL(me.trace, want.trace);
    CU_ASSERT(me.peak <= pp - s);
    CU_ASSERT_EQUAL(stats.peak_in_flight, me.peak);
    /* every stage but the last sends M activations, every stage but the first M gradients */
    double sent = (double)((s < pp - 1) + (s > 0)) * M * N * sizeof(float);
    CU_ASSERT_DOUBLE_EQUAL(stats.bytes_sent, sent, 0.5);
    free(ref);
}

static void test_runner_forward_only(void)
{
    int pp = world_size, s = world_rank;
    toy_stage *ref = malloc((size_t)pp * sizeof *ref);
    serial_run(pp, ref);
    toy_stage me;
    toy_init(&me, s, s == pp - 1);
    dlm_pipe_stage st = {.ctx = &me, .forward = toy_forward, .backward = NULL};
    dlm_pipe_stats stats;
    DLM_TEST_OK(dlm_pipe_run(pp > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL, &st, DLM_PIPE_FORWARD_ONLY,
                             M, N, &stats));
    if (s == pp - 1) CU_ASSERT_EQUAL(me.loss, ref[s].loss);
    CU_ASSERT(memcmp(me.y, ref[s].y, sizeof me.y) == 0);
    CU_ASSERT_EQUAL(stats.peak_in_flight, 1);
    free(ref);
}

/* ---- the split of the blocks over stages ---- */

static void expect_split(int L, int pp, double block, double head, const char *want)
{
    dlm_stage_costs c = {block, 0.0, head};
    int first[16], count[16];
    DLM_TEST_OK(dlm_stages_split(L, pp, NULL, 0, &c, first, count));
    char got[128] = "";
    for (int s = 0; s < pp; s++) {
        char one[16];
        snprintf(one, sizeof one, "%s%d", s ? "," : "", count[s]);
        strcat(got, one);
        CU_ASSERT_EQUAL(first[s], s ? first[s - 1] + count[s - 1] : 0);
    }
    if (strcmp(got, want)) printf("\n  L %d pp %d head %g: got %s, want %s\n", L, pp, head, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
}

static void test_stages(void)
{
    expect_split(6, 2, 1.0, 0.0, "3,3");
    /* the head costs a block: 3 + 4 beats 4 + 3 only on the tie rule (fewer blocks early) */
    expect_split(6, 2, 1.0, 1.0, "3,3");
    expect_split(6, 2, 1.0, 2.5, "4,2");
    expect_split(7, 3, 1.0, 0.0, "2,2,3");
    expect_split(8, 4, 1.0, 1.0, "2,2,2,2");
    expect_split(4, 4, 1.0, 9.0, "1,1,1,1");
    /* a real shape: gpt2-124m (12 blocks, d 768, V 50304): the head is worth 4.46
     * blocks (6 C V against 6 x 12 C^2 + 12 C T per token) */
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, 12, 768, 12, 1024);
    dlm_model_config_vocab(&cfg, 50257, 50256);
    dlm_stage_costs c;
    dlm_stages_costs(&cfg, &c);
    CU_ASSERT(c.head > 4.4 * c.block && c.head < 4.5 * c.block);
    int first[4], count[4];
    DLM_TEST_OK(dlm_stages_split(12, 2, NULL, 0, &c, first, count));
    CU_ASSERT(count[0] > count[1]);
    /* the user's list, and what is refused */
    const int ok[3] = {1, 3, 2}, short_[2] = {3, 2}, zero[3] = {3, 0, 3}, over[3] = {3, 3, 3};
    DLM_TEST_OK(dlm_stages_split(6, 3, ok, 3, &c, first, count));
    CU_ASSERT(first[1] == 1 && count[1] == 3 && first[2] == 4 && count[2] == 2);
    CU_ASSERT_EQUAL(dlm_stages_split(6, 3, short_, 2, &c, first, count), DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "lists 2 stages, but parallel.pp = 3") != NULL);
    dlm_error_clear();
    CU_ASSERT_EQUAL(dlm_stages_split(6, 3, zero, 3, &c, first, count), DLM_ERR_ARG);
    dlm_error_clear();
    CU_ASSERT_EQUAL(dlm_stages_split(6, 3, over, 3, &c, first, count), DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "sums to 9 blocks, but model.layers = 6") != NULL);
    dlm_error_clear();
    CU_ASSERT_EQUAL(dlm_stages_split(2, 3, NULL, 0, &c, first, count), DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "every stage needs at least one block") != NULL);
    dlm_error_clear();
    char text[128];
    dlm_stages_describe(3, first, count, text, sizeof text);
    DLM_TEST_OK(dlm_stages_split(6, 3, ok, 3, &c, first, count));
    dlm_stages_describe(3, first, count, text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "stage 0: embedding, blocks 0-0, stage 1: blocks 1-3, stage 2: "
                                 "blocks 4-5, head");
}

/* ---- real model stages through the runner ---- */

enum { ML = 4, MC = 32, MH = 2, MT = 16, MB = 2, MM = 5 };

/* Micro-batch k's tokens and targets, the same on every rank (counter-based). */
static void batch_of(int k, int32_t *x, int32_t *y)
{
    for (int i = 0; i < MB * MT; i++) {
        x[i] = (int32_t)(dlm_rng_uniform(5, (uint32_t)k, 0, (uint32_t)i, 0) * 256);
        y[i] = (int32_t)(dlm_rng_uniform(5, (uint32_t)k, 1, (uint32_t)i, 0) * 256);
    }
}

/* The last stage's loss: the mean cross-entropy over every token of the M
 * micro-batches; its dlogits replace the logits in place. */
static double loss_and_dlogits(const dlm_model *m, dlm_acts *a, const int32_t *y)
{
    int64_t N = (int64_t)MB * MT;
    float loss[MB * MT], dloss[MB * MT];
    dlm_xent_forward(loss, a->logits, y, N, m->cfg.vocab_padded, m->cfg.vocab_size);
    double sum = 0.0;
    for (int64_t i = 0; i < N; i++) sum += loss[i], dloss[i] = 1.0f / (float)(N * MM);
    dlm_xent_backward(a->logits, a->logits, y, dloss, N, m->cfg.vocab_padded, m->cfg.vocab_size);
    return sum;
}

typedef struct {
    dlm_model *m;
    dlm_acts *pool[ML];
    int owner[ML]; /* the micro-batch a pool slot holds, -1 free */
    int n_slots, overlap;
    double loss;
} model_stage;

static dlm_status stage_fwd(void *ctx, int k, const float *in, float *out)
{
    model_stage *st = ctx;
    int slot = k % st->n_slots;
    st->overlap += st->owner[slot] >= 0; /* a slot still held: the pool would be too small */
    st->owner[slot] = k;
    dlm_acts *a = st->pool[slot];
    int32_t x[MB * MT], y[MB * MT];
    batch_of(k, x, y);
    DLM_CALL(dlm_model_stage_forward(st->m, a, x, in, MB, 0, NULL, 0));
    int N = MB * MT;
    if (out) memcpy(out, dlm_stage_output(st->m, a), (size_t)N * MC * sizeof *out);
    else st->loss += loss_and_dlogits(st->m, a, y);
    return DLM_OK;
}

static dlm_status stage_bwd(void *ctx, int k, const float *dout, float *din)
{
    model_stage *st = ctx;
    int slot = k % st->n_slots;
    CU_ASSERT_EQUAL(st->owner[slot], k);
    int32_t x[MB * MT], y[MB * MT];
    batch_of(k, x, y);
    dlm_model_stage_backward(st->m, st->pool[slot], x, dout, din, MB, 0);
    st->owner[slot] = -1;
    return DLM_OK;
}

/* How many of the stage's tensors (in base) equal, bit for bit, the serial
 * model's of the same name and id (in sbase); each that does not is named. */
static int same_tensors(const dlm_model *m, const float *base, const dlm_model *ser,
                        const float *sbase, const char *what)
{
    int same = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const dlm_param_info *p = &m->table[i];
        for (int j = 0; j < ser->n_tensors; j++) {
            const dlm_param_info *q = &ser->table[j];
            if (strcmp(p->name, q->name)) continue;
            int eq = p->id == q->id && p->numel == q->numel &&
                     memcmp(base + p->offset, sbase + q->offset, p->numel * sizeof(float)) == 0;
            if (!eq) printf("\n  rank %d: the %s of %s differs from serial\n", world_rank, what, p->name);
            same += eq;
        }
    }
    return same;
}

/* The model split over the world's ranks (balanced by FLOPs), M micro-batches
 * through 1F1B: each stage's gradients are the serial run's, tensor by
 * tensor, to the bit (the same kernels on the same inputs, summed over
 * micro-batches in the same order), and so is the last stage's loss; a
 * pool of pp - s activation objects suffices; a stage's tensors start as
 * the whole model's. */
static void test_model_stages(void)
{
    int pp = world_size, s = world_rank;
    if (pp > ML) return;
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, ML, MC, MH, MT);
    dlm_model *ser;
    DLM_TEST_OK(dlm_model_create(&cfg, &ser));
    dlm_model_init(ser, 3);
    dlm_model_zero_grad(ser);
    dlm_acts *sa;
    DLM_TEST_OK(dlm_acts_create(ser, MB, 1, &sa));
    double ser_loss = 0.0;
    for (int k = 0; k < MM; k++) {
        int32_t x[MB * MT], y[MB * MT];
        batch_of(k, x, y);
        DLM_TEST_OK(dlm_model_forward(ser, sa, x, MB, 0));
        ser_loss += loss_and_dlogits(ser, sa, y);
        dlm_model_backward(ser, sa, x, MB, 0);
    }
    dlm_stage_costs costs;
    dlm_stages_costs(&cfg, &costs);
    int first[ML], count[ML];
    DLM_TEST_OK(dlm_stages_split(ML, pp, NULL, 0, &costs, first, count));
    model_stage st = {.n_slots = pp - s < MM ? pp - s : MM};
    DLM_TEST_OK(dlm_model_create_stage(&cfg, NULL, first[s], first[s] + count[s], &st.m));
    dlm_model_init(st.m, 3);
    dlm_model_zero_grad(st.m);
    for (int i = 0; i < st.n_slots; i++) {
        DLM_TEST_OK(dlm_acts_create(st.m, MB, 1, &st.pool[i]));
        st.owner[i] = -1;
    }
    /* the stage holds exactly its tensors, each as the whole model's */
    CU_ASSERT_EQUAL(same_tensors(st.m, st.m->param_arena.base, ser, ser->param_arena.base, "weight"),
                    st.m->n_tensors);
    CU_ASSERT_EQUAL(st.m->n_tensors, 12 * count[s] + (s == 0) + 3 * (s == pp - 1));
    /* the whole model's count from its shape: the serial table's sum, and the stages' sum */
    long long stage_n = (long long)dlm_model_stage_param_count(st.m), total = stage_n;
    CU_ASSERT_EQUAL(dlm_model_param_count(ser), dlm_model_stage_param_count(ser));
    CU_ASSERT_EQUAL(dlm_model_param_count(st.m), dlm_model_param_count(ser));
    MPI_Allreduce(&stage_n, &total, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    CU_ASSERT_EQUAL(total, dlm_model_param_count(ser));
    dlm_pipe_stage ps = {.ctx = &st, .forward = stage_fwd, .backward = stage_bwd};
    dlm_pipe_stats stats;
    DLM_TEST_OK(dlm_pipe_run(pp > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL, &ps, DLM_PIPE_1F1B, MM,
                             (size_t)MB * MT * MC, &stats));
    CU_ASSERT_EQUAL(st.overlap, 0);
    CU_ASSERT(stats.peak_in_flight <= pp - s);
    CU_ASSERT_EQUAL(same_tensors(st.m, st.m->grad_arena.base, ser, ser->grad_arena.base,
                                 "gradient"), st.m->n_tensors);
    if (s == pp - 1) CU_ASSERT_EQUAL(st.loss, ser_loss);
    if (s == 0 && pp > 1)
        printf("\n  pp%d: blocks %d + %d.., %d micro-batches, bubble (waits) %.2f of the run\n", pp,
               count[0], pp > 1 ? count[1] : 0, MM, stats.wait_seconds / stats.seconds);
    for (int i = 0; i < st.n_slots; i++) dlm_acts_destroy(&st.pool[i]);
    dlm_model_destroy(&st.m);
    dlm_acts_destroy(&sa);
    dlm_model_destroy(&ser);
}

static const dlm_test_case schedule_cases[] = {{"1F1B exact for pp 4, m 8", test_schedule_exact},
                                               {"stage split", test_stages},
                                               {NULL, NULL}};
static const dlm_test_case runner_cases[] = {{"1F1B against serial", test_runner_1f1b},
                                             {"forward only", test_runner_forward_only},
                                             {"model stages against serial", test_model_stages},
                                             {NULL, NULL}};
static const dlm_test_suite suites[] = {
    {"schedule", schedule_cases}, {"runner", runner_cases}, {NULL, NULL}};

int main(int argc, char **argv)
{
    return dlm_test_main_mpi(argc, argv, suites, &world_rank, &world_size);
}
