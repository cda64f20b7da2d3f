/* dlm-sample: text from a trained model by iterative unmasking (masked
 * diffusion) or left to right (AR), with the measures samplers are
 * compared by: network evaluations, tokens/s, generative perplexity under
 * an AR model, unigram entropy and repeated n-grams. */
#include <limits.h>
#include <stdio.h>

#include "core/args.h"
#include "core/program.h"
#include "core/status.h"
#include "parallel/placement.h"
#include "sample/driver.h"

static const char usage[] =
    "usage: dlm-sample <CHECKPOINT.h5 | RUN_FOLDER> [options]\n"
    "Draws samples from a trained model and measures them. A run folder means its\n"
    "newest checkpoint that verifies; the model shape comes from the run config\n"
    "stored in the checkpoint. A masked-diffusion (mdlm) model samples by\n"
    "unmasking, an AR model left to right.\n\n"
    "Under MPI (mpiexec -n 4 dlm-sample ...) the ranks share each group's samples\n"
    "(sample i depends only on the seed and i) and gather them in order: rank 0\n"
    "writes the same text, table and samples.h5 as one rank (the timings aside).\n"
    "With --tp M each model is split over groups of M ranks; a rounding difference\n"
    "can then flip a draw, so samples may differ from one rank's.\n"
    "Each rank runs --threads BLIS threads (default: its share of the cores it is\n"
    "bound to).\n\n";

static const char epilog[] =
    "\nByte-level text is written as bytes, the separator as a newline. The table\n"
    "per sampler and S: NFE/sample, tokens/s, generative perplexity (exp of the\n"
    "scoring model's mean NLL per token), unigram entropy (nats, per sample,\n"
    "averaged: collapse shows as a low value) and the repeated 4-gram rate.\n";

/* Collective over the world: the samples are shared over the ranks; rank
 * 0 writes the text, the table and samples.h5. */
static dlm_status run(const dlm_sample_driver_options *o, int tp, int pp, int requested)
{
    dlm_grid *grid;
    DLM_CALL(dlm_placement_start(MPI_COMM_WORLD, tp, pp, requested, &grid));
    dlm_status st = dlm_sample_driver_run(grid, o, stdout);
    fflush(stdout);
    dlm_grid_destroy(&grid);
    DLM_CALL(st);
    return DLM_OK;
}

int main(int argc, char **argv)
{
    dlm_sample_driver_options o;
    dlm_sample_driver_options_default(&o);
    int64_t seed = 1;
    int threads = 0, tp = 1, pp = 1;
    const dlm_arg_opt opts[] = {
        DLM_OPT_INT("n", &o.n, 1, INT_MAX, "N", "samples (default 4)"),
        DLM_OPT_STRING("steps", &o.steps, "S[,S..]",
                       "diffusion steps per block (default T); a list gives one\n"
                       "table per S"),
        DLM_OPT_STRING("sampler", &o.samplers, "K[,K..]",
                       "ancestral (default for mdlm): MDLM's reverse process,\n"
                       "  alpha(t) = 1 - t, a final step unmasks what is left;\n"
                       "confidence: LLaDA's low-confidence remasking, each step\n"
                       "  keeps the k = ceil(masked / steps left) most confident;\n"
                       "random: the same k, positions in random order;\n"
                       "ar (the only one, and default, for AR models): left to right"),
        DLM_OPT_FLAG("no-cache", &o.no_cache,
                     "call the network at every step (ancestral: the cache skips\n"
                     "it when no token changed, which is exact because the model\n"
                     "has no time input)"),
        DLM_OPT_DOUBLE("temperature", &o.temperature, 0, 1e6, 0, "X",
                       "divides the logits (default 1; 0 = most probable token)"),
        DLM_OPT_INT("top-k", &o.top_k, 0, INT_MAX, "K",
                    "keep the K most probable tokens (default 0 = all)"),
        DLM_OPT_DOUBLE("top-p", &o.top_p, 1e-12, 1, 0, "P",
                       "nucleus: the fewest most probable tokens with mass >= P\n"
                       "(default 1 = all)"),
        DLM_OPT_STRING("prompt", &o.prompt, "TEXT", "fixed prefix (byte-level vocabularies)"),
        DLM_OPT_STRING("infill", &o.infill, "SPEC",
                       "fixed tokens elsewhere: \"pos:text,pos:text\" (0-based)"),
        DLM_OPT_INT("length", &o.length, 1, 1 << 24, "L",
                    "tokens per sample (default T); longer than T is generated\n"
                    "in blocks with a sliding window of T tokens"),
        DLM_OPT_INT("block", &o.block, 1, 1 << 24, "B",
                    "tokens per block (default L if L <= T, else T/2); each\n"
                    "block sees up to T - B tokens before it"),
        DLM_OPT_INT64("seed", &seed, 0, INT64_MAX, "N",
                      "(default 1); sample i is a pure function of seed and i"),
        DLM_OPT_STRING("out", &o.out, "FILE", "the text (default: stdout)"),
        DLM_OPT_STRING("h5", &o.h5, "PATH",
                       "tokens, steps, NFE, timings (default: samples.h5 in the\n"
                       "checkpoint's folder; 'none' writes nothing)"),
        DLM_OPT_STRING("score-with", &o.score, "CKPT",
                       "an AR checkpoint or run folder scoring the samples\n"
                       "(generative perplexity)"),
        DLM_OPT_CHOICE("weights", &o.weights, "ema|raw", "W", "ema (default when present) or raw"),
        DLM_OPT_INT("tp", &tp, 1, INT_MAX, "M",
                    "tensor-parallel ranks per model (default 1): every layer\n"
                    "split over M ranks, whole logits gathered for each draw"),
        DLM_OPT_INT("pp", &pp, 1, INT_MAX, "K",
                    "pipeline stages per model (default 1): each network\n"
                    "evaluation through the K stages (AR: no key/value cache)"),
        DLM_OPT_INT("threads", &threads, 1, INT_MAX, "N",
                    "BLIS and OpenMP threads per rank (default: OMP_NUM_THREADS,\n"
                    "else this rank's share of its cores)"),
        DLM_OPT_END};
    const dlm_args_spec spec = {.opts = opts, .usage = usage, .epilog = epilog,
                                .positional = &o.ckpt, .max_positional = 1,
                                .positional_name = "checkpoint"};
    int rank, help = 0;
    dlm_status st = dlm_program_start(&argc, &argv, &rank, NULL);
    if (st == DLM_OK) { /* every rank reads the same command line: a bad one fails all together */
        st = dlm_args_parse(&spec, argc, argv, &help);
        if (st == DLM_OK && !help && !o.ckpt)
            st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                "no checkpoint or run folder given (see --help)");
        st = dlm_agree(MPI_COMM_WORLD, st);
    }
    o.seed = (uint64_t)seed;
    if (st == DLM_OK && help && rank == 0) dlm_args_help(&spec, stdout);
    else if (st == DLM_OK && !help) st = run(&o, tp, pp, threads);
    return dlm_program_finish("dlm-sample", st, 0);
}
