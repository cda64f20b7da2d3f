/* dlm-eval: the likelihood of held-out chunks under a trained model, with
 * honest error bars: the exact NLL of an AR model, an upper bound (the
 * NELBO) for a masked-diffusion model, both on the same hashed chunk set;
 * optionally a second model on the same chunks and masks, paired. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/args.h"
#include "core/log.h"
#include "core/program.h"
#include "core/status.h"
#include "eval/report.h"
#include "eval/session.h"
#include "parallel/placement.h"

static const char usage[] =
    "usage: dlm-eval <CHECKPOINT.h5 | RUN_FOLDER> [options]\n"
    "Scores held-out chunks of T tokens under a trained model: an AR model's exact\n"
    "NLL, or for a masked-diffusion (mdlm) model an UPPER BOUND on it (the NELBO),\n"
    "each with its standard error over chunks and a 95% interval, in nats/token,\n"
    "bits/token, bits/byte (byte-level data) and perplexity. A run folder means its\n"
    "newest checkpoint that verifies; the shape, objective and schedule come from\n"
    "the run config stored in the checkpoint.\n\n"
    "Under MPI (mpiexec -n 4 dlm-eval ...) the ranks share the chunks, whole, and\n"
    "gather every sample in chunk order: the numbers, eval.h5 and the report are\n"
    "bit for bit those of one rank (the throughput aside); rank 0 writes and\n"
    "prints. With --tp M every model is split over groups of M ranks (its heads,\n"
    "MLP and vocabulary): then within a relative 1e-5 of one rank, not to the\n"
    "bit. With --pp K its blocks are split over K pipeline stages. Each rank runs --threads BLIS threads (default: its share of the cores\n"
    "it is bound to).\n\n";

static const char epilog[] =
    "\nStandard errors come from the per-chunk means (each chunk's K samples averaged),\n"
    "so they cover chunk-to-chunk and mask-to-mask variation. bits/byte is total nats\n"
    "over the chunks / ln 2 / their text bytes (separators not counted). On synthetic\n"
    "data the source's window entropy is printed, and where the source is known\n"
    "exactly (dlm-prepare's Markov shards, the built-in source) the true NLL of the\n"
    "chunks scored and the model's excess over it, paired over chunks.\n"
    "Exit status: 0 done; 1 error (the message names the input at fault).\n";

typedef struct {
    dlm_eval_options o;
    int json, threads, tp, pp;
    int64_t seed;
} eval_args;

/* Collective over the world: every rank scores its share of the chunks;
 * rank 0 writes the results and prints the report. */
static dlm_status run(eval_args *a)
{
    if (a->json) dlm_log_set_level(DLM_LOG_WARN); /* stdout holds the JSON object only */
    dlm_grid *grid;
    DLM_CALL(dlm_placement_start(MPI_COMM_WORLD, a->tp, a->pp, a->threads, &grid));
    dlm_eval_session *s = NULL;
    dlm_status st = dlm_eval_session_create(grid, &a->o, &s);
    if (st == DLM_OK) st = dlm_eval_session_run(s);
    if (st == DLM_OK) st = dlm_eval_session_write(s);
    if (st == DLM_OK && grid->rank == 0) {
        if (a->json) dlm_eval_report_json(stdout, s);
        else dlm_eval_report_text(stdout, s);
    }
    fflush(stdout);
    dlm_eval_session_destroy(&s);
    dlm_grid_destroy(&grid);
    DLM_CALL(st);
    return DLM_OK;
}

int main(int argc, char **argv)
{
    eval_args a = {.seed = 1, .tp = 1, .pp = 1};
    dlm_eval_options *o = &a.o;
    dlm_eval_options_default(o);
    const dlm_arg_opt opts[] = {
        DLM_OPT_LIST("data", o->data, &o->n_data, DLM_CONFIG_MAX_PATHS, ',', "PATH[,PATH]",
                     "shards to score (repeatable; default: the run's data.val,\n"
                     "or the held-out sequences of the built-in synthetic source)"),
        DLM_OPT_STRING("data-format", &o->data_format, "F",
                       "llmc or raw-u16 (default: the run's data.format)"),
        DLM_OPT_INT64("chunks", &o->chunks, 0, INT64_MAX, "N",
                      "chunks, evenly spread over the data (default 256; 0 = all)"),
        DLM_OPT_INT("K", &o->K, 1, INT_MAX, "N", "mask samples per chunk for the bound (default 16)"),
        DLM_OPT_DOUBLE("target-se", &o->target_se, 0, INFINITY, 1, "X",
                       "grow K (doubling, in blocks of --K) until the standard\n"
                       "error in nats/token is <= X (with --compare: that of the\n"
                       "paired difference), or K reaches --max-K"),
        DLM_OPT_INT("max-K", &o->max_K, 1, INT_MAX, "N", "cap for --target-se (default 1024)"),
        DLM_OPT_STRING("estimator", &o->estimator, "NAME",
                       "the bound's estimator (AR models are always exact):\n"
                       "  exact-k     (default) k uniform in 1..T stratified over the\n"
                       "              K samples, k tokens masked uniformly, mean CE\n"
                       "              over them: the continuous-time NELBO exactly,\n"
                       "              no eps, finite variance\n"
                       "  mc-t        t stratified in [eps, 1] under the training\n"
                       "              schedule, weight w(t): biased low by the part\n"
                       "              of the bound below t = eps\n"
                       "  quadrature  Gauss-Legendre over t, --nodes M, K/M mask draws\n"
                       "              per node (exact integration for M >= T/2)\n"
                       "  discrete    the S-step bound (MDLM's S = 1000 variant)"),
        DLM_OPT_STRING("schedule", &o->schedule, "NAME",
                       "mc-t: loglinear, cosine, linear-sigma or power (default: the\n"
                       "run's; power with the run's objective.power)"),
        DLM_OPT_DOUBLE("eps", &o->eps, 0, INFINITY, 1, "X",
                       "mc-t: the lower end of t (default: the run's objective.eps)"),
        DLM_OPT_INT("nodes", &o->nodes, 1, INT_MAX, "M",
                    "quadrature nodes (default 16; K must be a multiple)"),
        DLM_OPT_INT("steps", &o->steps, 1, INT_MAX, "S", "discrete steps (default 1000)"),
        DLM_OPT_INT64("seed", &a.seed, 0, INT64_MAX, "S",
                      "masks and times; same seed, same masks (default 1)"),
        DLM_OPT_CHOICE("weights", &o->weights, "ema|raw", "ema|raw",
                       "default: ema when the checkpoint has EMA weights"),
        DLM_OPT_STRING("compare", &o->compare, "CKPT",
                       "also score a second checkpoint or run folder on the same\n"
                       "chunks and masks; prints the paired difference (first\n"
                       "minus second) with its standard error"),
        DLM_OPT_STRING("out", &o->out, "PATH",
                       "results file (default: eval.h5 in the checkpoint's folder;\n"
                       "other evaluations in it are kept)"),
        DLM_OPT_FLAG("no-out", &o->no_out, "write no file"),
        DLM_OPT_FLAG("json", &a.json, "print one JSON object (plain numeric fields) instead of\n"
                                      "the table"),
        DLM_OPT_INT("batch", &o->batch, 1, INT_MAX, "N",
                    "sequences per forward pass (default: the run's micro_batch)"),
        DLM_OPT_INT("tp", &a.tp, 1, INT_MAX, "M",
                    "tensor-parallel ranks per model (default 1): every layer\n"
                    "split over M ranks as in training, the rest of the ranks\n"
                    "data-parallel; within a relative 1e-5 of one rank"),
        DLM_OPT_INT("pp", &a.pp, 1, INT_MAX, "K",
                    "pipeline stages per model (default 1): the blocks split by\n"
                    "FLOPs, each forward through the K stages"),
        DLM_OPT_INT("threads", &a.threads, 1, INT_MAX, "N",
                    "BLIS and OpenMP threads per rank (default: OMP_NUM_THREADS,\n"
                    "else this rank's share of its cores)"),
        DLM_OPT_END};
    const dlm_args_spec spec = {.opts = opts, .usage = usage, .epilog = epilog,
                                .positional = &o->ckpt, .max_positional = 1,
                                .positional_name = "checkpoint",
                                .positional_hint = "(to compare two, use --compare)"};
    int rank, help = 0;
    dlm_status st = dlm_program_start(&argc, &argv, &rank, NULL);
    if (st == DLM_OK) { /* every rank reads the same command line: a bad one fails all together */
        st = dlm_args_parse(&spec, argc, argv, &help);
        if (st == DLM_OK && !help && !o->ckpt)
            st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                "no checkpoint or run folder given (see --help)");
        o->seed = (uint64_t)a.seed;
        if (st == DLM_OK && !help) st = dlm_eval_options_check(o);
        st = dlm_agree(MPI_COMM_WORLD, st);
    }
    if (st == DLM_OK && help && rank == 0) dlm_args_help(&spec, stdout);
    else if (st == DLM_OK && !help) st = run(&a);
    return dlm_program_finish("dlm-eval", st, 0);
}
