/* dlm-bench: full training steps (forward, backward, AdamW) of named
 * shapes on synthetic tokens, timed per phase, plus a replay of the step's
 * own GEMM calls, so the time spent outside matrix products shows as one
 * ratio. Serial: each case runs in its own process so its peak memory is
 * its own. With --layout (under mpiexec) the ranks run each case together,
 * data-parallel, in the one MPI process each. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/args.h"
#include "core/log.h"
#include "core/mpicall.h"
#include "core/program.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/timer.h"
#include "diffusion/objective.h"
#include "kernels/blis_info.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "optim/optim.h"
#include "parallel/dp.h"
#include "parallel/grid.h"
#include "parallel/placement.h"
#include "parallel/stages.h"
#include "parallel/tp.h"
#include "train/pipe_step.h"
#include "train/step.h"

typedef struct {
    const char *name;
    int L, C, H, V, T, B; /* V: data ids (257 = bytes + separator) */
} bench_shape;

static const bench_shape shapes[] = {
    {"l6-d384", 6, 384, 6, 257, 256, 4},
    {"gpt2-124m", 12, 768, 12, 50257, 256, 4},
    {"tiny", 2, 64, 4, 257, 64, 2}, /* smoke test only */
};
#define N_SHAPES (int)(sizeof shapes / sizeof *shapes)

typedef struct {
    const char *shape, *objective, *layout;
    int steps, warmup, threads;
    int batch, micro_batch; /* 0: the shape's B, and B / dp */
    int dp, tp, pp;         /* from layout */
    double bucket_mb;       /* gradient all-reduce bucket size */
} bench_args;

static const char usage[] =
    "usage: dlm-bench [options]\n"
    "Times full training steps (forward, backward, AdamW, fp32) on synthetic tokens and\n"
    "prints, per case, the median step, the time per phase, and a replay of the step's\n"
    "own GEMM calls. With no options: l6-d384 and gpt2-124m, objectives ar and mdlm.\n"
    "Parallel: mpiexec -n 2 --bind-to none dlm-bench --layout dp2 --threads 1 (or tp2,\n"
    "pp2, dp2tp2 on 4 ranks): the same global batch split over the ranks (strong\n"
    "scaling); under pp the blocks are split over the stages by FLOPs and the\n"
    "micro-batches run 1F1B (--batch 16 --micro-batch 1: 16 of them).\n\n";

static const char epilog[] =
    "One line per case for scripts:\n"
    "  bench shape=<name> objective=<ar|mdlm> layout=<serial|dpN|tpM|ppK|dpNtpM..> batch=<G>\n"
    "        micro_batch=<b> L=<blocks> d=<width> T=<tokens> params=<rank 0's parameter floats>\n"
    "        tokens_per_s=<x> step_ms=<x> gflops=<x> gemm_replay_ms=<x>\n"
    "        ratio=<x> comm_share=<x> comm_bytes=<x> peak_rss_mb=<x> [bubble=<x>]\n"
    "ratio = GEMM replay time / whole step time (rank 0's GEMMs, its share of the batch).\n"
    "step_ms is the slowest rank's; tokens_per_s and GFLOP/s are the whole job's. comm_share\n"
    "= rank 0's time inside MPI calls / step time; comm_bytes = bytes rank 0 sends per step,\n"
    "counting 2 (p-1)/p of each all-reduce's payload (a bandwidth-optimal all-reduce: the\n"
    "gradient sum over dp, tp's activation sums) plus the loss gather, and under pp each\n"
    "activation or gradient sent to a neighbouring stage (comm_share then includes the\n"
    "schedule's waits). bubble = the ranks' mean time waiting for a neighbour inside the\n"
    "schedule / step time, measured; a line before it gives the split and the ideal\n"
    "(pp - 1) / (m + pp - 1).\n"
    "peak_rss_mb is rank 0's (under --layout, the peak over the cases so far). GFLOP/s use\n"
    "  " DLM_FLOPS_DEFINITION "\n";

/* The choices the table cannot check: their messages list the shapes. */
static dlm_status check_args(bench_args *a)
{
    if (a->shape && strcmp(a->shape, "all") != 0) {
        int found = 0;
        for (int s = 0; s < N_SHAPES; s++) found |= !strcmp(a->shape, shapes[s].name);
        DLM_CHECK(found, DLM_ERR_ARG,
                  "unknown shape '%s' (expected l6-d384, gpt2-124m, tiny or all)", a->shape);
    }
    a->dp = a->tp = a->pp = 1;
    if (a->layout && strcmp(a->layout, "serial") != 0)
        DLM_CALL(dlm_grid_parse_layout("--layout", a->layout, &a->dp, &a->tp, &a->pp));
    DLM_CHECK(!strcmp(a->objective, "both") || !strcmp(a->objective, "ar") ||
                  !strcmp(a->objective, "mdlm"),
              DLM_ERR_ARG, "unknown objective '%s' (expected ar, mdlm or both)", a->objective);
    return DLM_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1.0;
    char line[256];
    double kb = -1.0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    fclose(f);
    return kb / 1024.0;
}

/* Elements a strided rows x cols view spans. */
static int64_t extent(int64_t rows, int64_t cols, int64_t rs, int64_t cs)
{
    return rows && cols ? (rows - 1) * rs + (cols - 1) * cs + 1 : 0;
}

/* Runs the recorded calls on scratch buffers of the right extents; returns seconds. */
static dlm_status replay(const dlm_gemm_log *log, int reps, double *seconds)
{
    int64_t na = 0, nb = 0, nc = 0;
    for (int64_t i = 0; i < log->n; i++) {
        const dlm_gemm_call *c = &log->calls[i];
        int64_t ar = c->trans_a ? c->k : c->m, ac = c->trans_a ? c->m : c->k;
        int64_t br = c->trans_b ? c->n : c->k, bc = c->trans_b ? c->k : c->n;
        int64_t ea = extent(ar, ac, c->rs_a, c->cs_a), eb = extent(br, bc, c->rs_b, c->cs_b);
        int64_t ec = extent(c->m, c->n, c->rs_c, c->cs_c);
        na = ea > na ? ea : na, nb = eb > nb ? eb : nb, nc = ec > nc ? ec : nc;
    }
    float *a = calloc((size_t)na + 1, sizeof *a), *b = calloc((size_t)nb + 1, sizeof *b),
          *c = calloc((size_t)nc + 1, sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating GEMM replay buffers");
    }
    for (int64_t i = 0; i < na; i++) a[i] = 1e-3f * (float)(i % 7);
    for (int64_t i = 0; i < nb; i++) b[i] = 1e-3f * (float)(i % 5);
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = 0; r < reps; r++) {
        double t0 = dlm_now();
        for (int64_t i = 0; i < log->n; i++) {
            const dlm_gemm_call *g = &log->calls[i];
            dlm_gemm(g->trans_a, g->trans_b, g->m, g->n, g->k, g->alpha, a, g->rs_a, g->cs_a, b,
                     g->rs_b, g->cs_b, g->beta, c, g->rs_c, g->cs_c);
        }
        t[r] = dlm_now() - t0;
    }
    *seconds = median(t, reps);
    free(t), free(a), free(b), free(c);
    return DLM_OK;
}

/* The slowest rank's value (the step ends when the last rank is done). */
static double slowest(const dlm_grid *g, double x)
{
    double y = x;
    if (g) MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX, g->world);
    return y;
}

/* The mean over the ranks of x (g NULL: x). */
static double mean_over(const dlm_grid *g, double x)
{
    double y = x;
    if (g) MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, g->world);
    return g ? y / g->size : y;
}

/* One optimizer step: pipelined when ps is given. */
static dlm_status one_step(dlm_model *m, dlm_optimizer *opt, dlm_step_buffers *buf,
                           dlm_pipe_step *ps, const dlm_objective *obj, dlm_dp *dp,
                           const int32_t *x, int G, uint32_t s, double *loss, double *gnorm)
{
    if (ps) return dlm_train_step_pp(ps, opt, obj, dp, x, G, s, 1e-4, loss, gnorm);
    return dlm_train_step_dp(m, opt, buf, obj, dp, x, G, s, 1e-4, loss, gnorm);
}

/* g NULL: serial, no MPI. */
static dlm_status run_case(const bench_shape *sh, dlm_objective_kind kind, const bench_args *a,
                           const dlm_grid *g)
{
    dlm_status st = DLM_OK;
    int p = g ? g->dp : 1, G = a->batch ? a->batch : sh->B, T = sh->T;
    dlm_tp *tp = NULL;
    int mb = a->micro_batch ? a->micro_batch : G / p, n = G / p;
    DLM_CHECK(G % p == 0 && mb >= 1 && n % mb == 0, DLM_ERR_ARG,
              "--batch %d does not split over %d data-parallel ranks in micro-batches of %d", G, p,
              mb);
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, sh->L, sh->C, sh->H, sh->T);
    dlm_model_config_vocab(&cfg, sh->V, sh->V - 1);
    cfg.tied_head = sh->V > 257; /* GPT-2 ties its head */
    dlm_model *m = NULL;
    dlm_optimizer *opt = NULL;
    dlm_step_buffers buf = {0};
    int32_t *x = NULL;
    double *step_s = NULL, *phase_s = NULL;
    dlm_gemm_log log = {0};
    dlm_dp *dp = NULL;
    dlm_pipe_step *ps = NULL;
    int pp = g ? g->pp : 1, stage_first[64], stage_count[64];
    char split[256] = "";
    DLM_CHECK(pp <= 64, DLM_ERR_ARG, "at most 64 pipeline stages");
    if (g) DLM_CALL(dlm_tp_create(g->tp_comm, &tp));
    /* this rank's stage, balanced by FLOPs (the whole model without pp) */
    DLM_CALL_GOTO(st, dlm_stages_model_create(&cfg, tp, g ? g->pp_rank : 0, pp, NULL, 0,
                                              stage_first, stage_count, &m), done);
    dlm_stages_describe(pp, stage_first, stage_count, split, sizeof split);
    dlm_model_init(m, 1);
    dlm_adamw_config oc;
    dlm_adamw_config_default(&oc);
    DLM_CALL_GOTO(st, dlm_optimizer_create(m, &oc, &opt), done);
    if (pp == 1) DLM_CALL_GOTO(st, dlm_step_buffers_create(m, mb, &buf), done);
    if (pp > 1) DLM_CALL_GOTO(st, dlm_pipe_step_create(g->pp_comm, m, mb, n / mb, &ps), done);
    if (g) DLM_CALL_GOTO(st, dlm_dp_create(g->dp_comm, m, (size_t)(a->bucket_mb * 1048576.0), &dp), done);
    dlm_objective obj = {.kind = kind, .seed = 1, .bos_id = cfg.bos_id, .mask_id = cfg.mask_id};
    dlm_schedule_default(&obj.schedule, DLM_SCHEDULE_LOGLINEAR);
    x = malloc((size_t)n * T * sizeof *x);
    step_s = malloc((size_t)a->steps * sizeof *step_s);
    phase_s = calloc(DLM_PHASE_COUNT, sizeof *phase_s);
    log.cap = 1 << 16;
    log.calls = malloc((size_t)log.cap * sizeof *log.calls);
    st = x && step_s && phase_s && log.calls ? DLM_OK : DLM_ERR_NOMEM;
    DLM_CALL_GOTO(st, st, done);
    int64_t first = (int64_t)(g ? g->dp_rank : 0) * n * T; /* this rank's slice of the batch */
    for (int64_t i = 0; i < (int64_t)n * T; i++)
        x[i] = (int32_t)(dlm_rng_uniform(1, 0, 0, (uint32_t)(first + i), DLM_RNG_DATA) *
                         cfg.vocab_size);

    dlm_phase_timers timers;
    double loss, gnorm, comm_s = 0.0, comm_bytes = 0.0, wait_share = 0.0;
    for (int s = 0; s < a->warmup + a->steps; s++) {
        int timed = s >= a->warmup;
        memset(&timers, 0, sizeof timers);
        if (buf.acts) buf.acts->timers = timed ? &timers : NULL; /* phases: not under pp */
        if (g) MPI_Barrier(g->world); /* every rank starts the step together */
        double t0 = dlm_now();
        dlm_dp_stats ds = {0};
        DLM_CALL_GOTO(st, one_step(m, opt, &buf, ps, &obj, dp, x, G, (uint32_t)s, &loss, &gnorm),
                      done);
        double dt = slowest(g, dlm_now() - t0);
        if (ps) { /* the schedule's waits and transfers */
            const dlm_pipe_stats *pst = dlm_pipe_step_stats(ps);
            ds.comm_seconds += pst->wait_seconds, ds.bytes_sent += pst->bytes_sent;
            if (timed) wait_share += mean_over(g, pst->wait_seconds / dt) / a->steps;
        }
        if (dp) {
            dlm_dp_stats d = dlm_dp_stats_take(dp);
            ds.comm_seconds += d.comm_seconds, ds.bytes_sent += d.bytes_sent;
        }
        if (tp) {
            ds.comm_seconds += tp->comm_seconds, ds.bytes_sent += tp->bytes_sent;
            tp->comm_seconds = tp->bytes_sent = 0.0;
        }
        if (timed) {
            step_s[s - a->warmup] = dt;
            comm_s += ds.comm_seconds / a->steps;
            comm_bytes += ds.bytes_sent / a->steps;
            for (int q = 0; q < DLM_PHASE_COUNT; q++) phase_s[q] += timers.seconds[q] / a->steps;
        }
    }
    if (buf.acts) buf.acts->timers = NULL;
    double rss_mb = peak_rss_mb(); /* the training step's peak, before the replay buffers */
    dlm_gemm_record(&log); /* one more step, to capture its GEMM list */
    DLM_CALL_GOTO(st, one_step(m, opt, &buf, ps, &obj, dp, x, G, 0, &loss, &gnorm), done);
    dlm_gemm_record(NULL);
    st = log.overflow ? DLM_ERR_STATE : DLM_OK;
    if (st != DLM_OK) {
        dlm_error_push(st, __FILE__, __LINE__, __func__, "GEMM log overflowed (%d calls dropped)",
                       log.overflow);
        goto done;
    }
    double gemm_s = 0.0;
    DLM_CALL_GOTO(st, replay(&log, a->steps, &gemm_s), done);
    if (g && g->rank != 0) goto done; /* rank 0 reports */

    double step = median(step_s, a->steps), tps = (double)G * T / step;
    double gflops = tps * dlm_model_flops_per_token(&cfg) / 1e9;
    double phases_sum = 0.0;
    const char *objname = dlm_objective_name(kind);
    char layout[48] = "serial";
    if (g) dlm_grid_name(g, layout, sizeof layout);
    if (pp > 1) printf("pipeline: %s; %d micro-batches, ideal bubble %.3f\n", split, n / mb,
                       dlm_pipe_ideal_bubble(pp, n / mb));
    printf("%s %s %s: L=%d d=%d H=%d T=%d batch=%d micro-batch=%d V=%d (padded %d), %lld "
           "parameters%s, %lld GEMM calls/step (rank 0)\n",
           sh->name, objname, layout, sh->L, sh->C, sh->H, sh->T, G, mb, cfg.vocab_size,
           cfg.vocab_padded, (long long)dlm_model_stage_param_count(m), pp > 1 ? " in rank 0's stage" : "",
           (long long)log.n);
    printf("  phase ms/step:");
    for (int q = 0; q < DLM_PHASE_COUNT; q++) {
        printf(" %s %.1f", dlm_phase_name((dlm_phase)q), 1e3 * phase_s[q]);
        phases_sum += phase_s[q];
    }
    double mean_step = 0.0;
    for (int s = 0; s < a->steps; s++) mean_step += step_s[s] / a->steps;
    printf(" other %.1f\n", 1e3 * (mean_step - phases_sum));
    printf("bench shape=%s objective=%s layout=%s batch=%d micro_batch=%d L=%d d=%d T=%d "
           "params=%zu tokens_per_s=%.1f step_ms=%.2f gflops=%.2f gemm_replay_ms=%.2f ratio=%.3f "
           "comm_share=%.3f comm_bytes=%.0f peak_rss_mb=%.1f",
           sh->name, objname, layout, G, mb, sh->L, sh->C, sh->T, m->n_params, tps, 1e3 * step,
           gflops, 1e3 * gemm_s, gemm_s / step, comm_s / step, comm_bytes, rss_mb);
    if (pp > 1) printf(" bubble=%.3f", wait_share);
    printf("\n");
    fflush(stdout);
done:
    dlm_pipe_step_destroy(&ps);
    dlm_dp_destroy(&dp);
    free(log.calls);
    free(x), free(step_s), free(phase_s);
    dlm_step_buffers_destroy(&buf);
    dlm_optimizer_destroy(&opt);
    dlm_model_destroy(&m);
    dlm_tp_destroy(&tp);
    return st;
}

/* Whether case s, k (objective) is one the arguments ask for. */
static int chosen(const bench_args *a, int s, int k)
{
    int shape = a->shape ? (!strcmp(a->shape, "all") || !strcmp(a->shape, shapes[s].name))
                         : strcmp(shapes[s].name, "tiny") != 0;
    return shape && (!strcmp(a->objective, "both") || !strcmp(a->objective, k ? "mdlm" : "ar"));
}

/* --layout: one MPI job, the cases in turn in every rank's one process
 * (MPI and fork do not mix). Errors are agreed where ranks may differ. */
static dlm_status run_mpi(bench_args *a)
{
    dlm_grid *g;
    DLM_CALL(dlm_grid_create(MPI_COMM_WORLD, a->dp, a->tp, a->pp, &g));
    int threads;
    const char *source;
    dlm_status st = dlm_placement_threads(g, a->threads, "--threads", &threads, &source);
    if (st == DLM_OK) st = dlm_blis_init(threads, source);
    char blis[512];
    if (st == DLM_OK) st = dlm_blis_describe(blis, sizeof blis);
    st = dlm_agree(g->world, st);
    if (st == DLM_OK) st = dlm_placement_report(g, threads, NULL, 0);
    if (st == DLM_OK && g->rank == 0) {
        printf("dlm-bench: layout dp%d x tp%d x pp%d, %d BLIS threads per rank; %s\n%s\n", g->dp,
               g->tp, g->pp, threads, DLM_FLOPS_DEFINITION, blis);
        fflush(stdout);
    }
    for (int s = 0; st == DLM_OK && s < N_SHAPES; s++)
        for (int k = 0; st == DLM_OK && k < 2; k++)
            if (chosen(a, s, k)) st = dlm_agree(g->world, run_case(&shapes[s], k, a, g));
    dlm_grid_destroy(&g);
    DLM_CALL(st);
    return DLM_OK;
}

int main(int argc, char **argv)
{
    bench_args a = {.shape = NULL, .objective = "both", .steps = 5, .warmup = 2, .threads = 0,
                    .bucket_mb = 25.0};
    const dlm_arg_opt opts[] = {
        DLM_OPT_STRING("shape", &a.shape, "NAME",
                       "l6-d384, gpt2-124m, tiny or all (default: l6-d384 and gpt2-124m)"),
        DLM_OPT_STRING("objective", &a.objective, "NAME", "ar, mdlm or both (default both)"),
        DLM_OPT_STRING("layout", &a.layout, "NAME",
                       "serial (default, no MPI), dpN, tpM, ppK or a combination in\n"
                       "that order (dp2tp2, dp2pp2): run under mpiexec -n N x M x K"),
        DLM_OPT_INT("batch", &a.batch, 1, INT_MAX, "G", "global batch (default: the shape's, 4)"),
        DLM_OPT_INT("micro-batch", &a.micro_batch, 1, INT_MAX, "B",
                    "micro-batch (default: the batch / dp)"),
        DLM_OPT_DOUBLE("bucket-mb", &a.bucket_mb, 0, 1e6, 1, "MB",
                       "gradient all-reduce bucket size (default 25, as parallel.bucket_mb)"),
        DLM_OPT_INT("steps", &a.steps, 1, INT_MAX, "N", "measured steps, median reported (default 5)"),
        DLM_OPT_INT("warmup", &a.warmup, 0, INT_MAX, "N", "steps run first and not timed (default 2)"),
        DLM_OPT_INT("threads", &a.threads, 1, INT_MAX, "N",
                    "BLIS and OpenMP threads per rank (default: OMP_NUM_THREADS, else the\n"
                    "cores; under --layout, this rank's share of the cores it is bound to)"),
        DLM_OPT_END};
    const dlm_args_spec spec = {.opts = opts, .usage = usage, .epilog = epilog};
    int help;
    dlm_status st = dlm_args_parse(&spec, argc, argv, &help);
    if (st == DLM_OK && !help) st = check_args(&a);
    if (st != DLM_OK) {
        fprintf(stderr, "dlm-bench: %s", dlm_error_text());
        return 1;
    }
    if (help) {
        dlm_args_help(&spec, stdout);
        return 0;
    }
    if (a.layout && strcmp(a.layout, "serial") != 0) { /* an MPI job */
        st = dlm_program_start(&argc, &argv, NULL, NULL);
        if (st == DLM_OK) st = run_mpi(&a);
        return dlm_program_finish("dlm-bench", st, 0);
    }
    const char *source = "--threads";
    int threads = a.threads > 0 ? a.threads : dlm_threads_default(&source);
    st = dlm_threads_check(threads, source); /* once, before any child starts a pool */
    if (st != DLM_OK) {
        fprintf(stderr, "dlm-bench: %s", dlm_error_text());
        return 1;
    }
    printf("dlm-bench: %d threads; %s\n", threads, DLM_FLOPS_DEFINITION);
    fflush(stdout);
    int failures = 0, first = 1;
    for (int s = 0; s < N_SHAPES; s++) {
        for (int k = 0; k < 2; k++) {
            if (!chosen(&a, s, k)) continue;
            /* a child per case: its peak memory is its own, and BLIS/OpenMP
             * start fresh in it (the parent never touches them) */
            pid_t pid = fork();
            if (pid < 0) {
                perror("dlm-bench: fork");
                return 1;
            }
            if (pid == 0) {
                char blis[512];
                dlm_status cs = dlm_blis_init(threads, source);
                if (cs == DLM_OK) cs = dlm_blis_describe(blis, sizeof blis);
                if (cs == DLM_OK && first) printf("%s\n", blis);
                if (cs == DLM_OK) cs = run_case(&shapes[s], (dlm_objective_kind)k, &a, NULL);
                if (cs != DLM_OK) fprintf(stderr, "dlm-bench: %s failed: %s", shapes[s].name,
                                          dlm_error_text());
                fflush(stdout);
                _exit(cs == DLM_OK ? 0 : 1);
            }
            first = 0;
            int wstatus;
            waitpid(pid, &wstatus, 0);
            failures += !(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
        }
    }
    return failures ? 1 : 0;
}
