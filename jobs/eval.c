/* dlm-eval: the likelihood of held-out chunks under a trained model, with
 * honest error bars: the exact NLL of an AR model, an upper bound (the
 * NELBO) for a masked-diffusion model, both on the same hashed chunk set;
 * optionally a second model on the same chunks and masks, paired. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/program.h"
#include "core/status.h"
#include "eval/chunks.h"
#include "eval/evalfile.h"
#include "eval/evalmodel.h"
#include "eval/nelbo.h"
#include "io/json.h"
#include "io/runfile.h"
#include "io/synthetic.h"
#include "kernels/blis_info.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dlm-eval <CHECKPOINT.h5 | RUN_FOLDER> [options]\n"
            "Scores held-out chunks of T tokens under a trained model: an AR model's exact\n"
            "NLL, or for a masked-diffusion (mdlm) model an UPPER BOUND on it (the NELBO),\n"
            "each with its standard error over chunks and a 95%% interval, in nats/token,\n"
            "bits/token, bits/byte (byte-level data) and perplexity. A run folder means its\n"
            "newest checkpoint that verifies; the shape, objective and schedule come from\n"
            "the run config stored in the checkpoint.\n\n"
            "  --data PATH[,PATH]   shards to score (repeatable; default: the run's data.val,\n"
            "                       or the held-out sequences of the built-in synthetic source)\n"
            "  --data-format F      llmc or raw-u16 (default: the run's data.format)\n"
            "  --chunks N           chunks, evenly spread over the data (default 256; 0 = all)\n"
            "  --K N                mask samples per chunk for the bound (default 16)\n"
            "  --target-se X        grow K (doubling, in blocks of --K) until the standard\n"
            "                       error in nats/token is <= X (with --compare: that of the\n"
            "                       paired difference), or K reaches --max-K\n"
            "  --max-K N            cap for --target-se (default 1024)\n"
            "  --estimator NAME     the bound's estimator (AR models are always exact):\n"
            "                         exact-k     (default) k uniform in 1..T stratified over the\n"
            "                                     K samples, k tokens masked uniformly, mean CE\n"
            "                                     over them: the continuous-time NELBO exactly,\n"
            "                                     no eps, finite variance\n"
            "                         mc-t        t stratified in [eps, 1] under the training\n"
            "                                     schedule, weight w(t): biased low by the part\n"
            "                                     of the bound below t = eps\n"
            "                         quadrature  Gauss-Legendre over t, --nodes M, K/M mask draws\n"
            "                                     per node (exact integration for M >= T/2)\n"
            "                         discrete    the S-step bound (MDLM's S = 1000 variant)\n"
            "  --schedule NAME      mc-t: loglinear, cosine, linear-sigma or power (default: the\n"
            "                       run's; power with the run's objective.power)\n"
            "  --eps X              mc-t: the lower end of t (default: the run's objective.eps)\n"
            "  --nodes M            quadrature nodes (default 16; K must be a multiple)\n"
            "  --steps S            discrete steps (default 1000)\n"
            "  --seed S             masks and times; same seed, same masks (default 1)\n"
            "  --weights ema|raw    default: ema when the checkpoint has EMA weights\n"
            "  --compare CKPT       also score a second checkpoint or run folder on the same\n"
            "                       chunks and masks; prints the paired difference (first\n"
            "                       minus second) with its standard error\n"
            "  --out PATH           results file (default: eval.h5 in the checkpoint's folder;\n"
            "                       other evaluations in it are kept)\n"
            "  --no-out             write no file\n"
            "  --json               print one JSON object (plain numeric fields) instead of\n"
            "                       the table\n"
            "  --batch N            sequences per forward pass (default: the run's micro_batch)\n"
            "  --threads N          BLIS and OpenMP threads (default: OMP_NUM_THREADS or cores)\n"
            "  --help               this text\n\n"
            "Standard errors come from the per-chunk means (each chunk's K samples averaged),\n"
            "so they cover chunk-to-chunk and mask-to-mask variation. bits/byte is total nats\n"
            "over the chunks / ln 2 / their text bytes (separators not counted). On synthetic\n"
            "data the source's window entropy is printed, and where the source is known\n"
            "exactly (dlm-prepare's Markov shards, the built-in source) the true NLL of the\n"
            "chunks scored and the model's excess over it, paired over chunks.\n"
            "Exit status: 0 done; 1 error (the message names the input at fault).\n");
}

typedef struct {
    const char *ckpt, *compare, *out;
    int no_out, json;
    const char *data[DLM_CONFIG_MAX_PATHS];
    int n_data;
    const char *data_format, *estimator, *schedule, *weights;
    int64_t chunks;
    int K, max_K, nodes, steps, batch, threads;
    double target_se, eps;
    uint64_t seed;
} eval_args;

static dlm_status parse_long(const char *opt, const char *s, long long lo, long long hi,
                             long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    DLM_CHECK(errno == 0 && end != s && *end == '\0' && v >= lo && v <= hi, DLM_ERR_ARG,
              "%s expects an integer in %lld..%lld, got '%s'", opt, lo, hi, s);
    *out = v;
    return DLM_OK;
}

static dlm_status parse_int(const char *opt, const char *s, int lo, int *out)
{
    long long v = 0;
    DLM_CALL(parse_long(opt, s, lo, INT_MAX, &v));
    *out = (int)v;
    return DLM_OK;
}

static dlm_status parse_pos(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    DLM_CHECK(errno == 0 && end != s && *end == '\0' && v > 0 && isfinite(v), DLM_ERR_ARG,
              "%s expects a number > 0, got '%s'", opt, s);
    *out = v;
    return DLM_OK;
}

static dlm_status parse_args(int argc, char **argv, eval_args *a, int *help)
{
    memset(a, 0, sizeof *a);
    a->chunks = 256;
    a->max_K = 1024;
    a->nodes = 16;
    a->steps = 1000;
    a->seed = 1;
    a->estimator = "exact-k";
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            *help = 1;
            return DLM_OK;
        }
        if (!strcmp(o, "--json")) {
            a->json = 1;
            continue;
        }
        if (!strcmp(o, "--no-out")) {
            a->no_out = 1;
            continue;
        }
        if (o[0] != '-') {
            DLM_CHECK(!a->ckpt, DLM_ERR_ARG, "one checkpoint only: got '%s' and '%s' (to compare "
                      "two, use --compare)", a->ckpt, o);
            a->ckpt = o;
            continue;
        }
        DLM_CHECK(i + 1 < argc, DLM_ERR_ARG, "option %s needs a value (see --help)", o);
        char *v = argv[++i];
        long long x;
        if (!strcmp(o, "--data")) {
            for (char *p = strtok(v, ","); p; p = strtok(NULL, ",")) {
                DLM_CHECK(a->n_data < DLM_CONFIG_MAX_PATHS, DLM_ERR_ARG,
                          "--data: at most %d shards", DLM_CONFIG_MAX_PATHS);
                a->data[a->n_data++] = p;
            }
        } else if (!strcmp(o, "--data-format")) a->data_format = v;
        else if (!strcmp(o, "--chunks")) {
            DLM_CALL(parse_long(o, v, 0, INT64_MAX, &x));
            a->chunks = x;
        } else if (!strcmp(o, "--K")) DLM_CALL(parse_int(o, v, 1, &a->K));
        else if (!strcmp(o, "--max-K")) DLM_CALL(parse_int(o, v, 1, &a->max_K));
        else if (!strcmp(o, "--target-se")) DLM_CALL(parse_pos(o, v, &a->target_se));
        else if (!strcmp(o, "--estimator")) a->estimator = v;
        else if (!strcmp(o, "--schedule")) a->schedule = v;
        else if (!strcmp(o, "--eps")) DLM_CALL(parse_pos(o, v, &a->eps));
        else if (!strcmp(o, "--nodes")) DLM_CALL(parse_int(o, v, 1, &a->nodes));
        else if (!strcmp(o, "--steps")) DLM_CALL(parse_int(o, v, 1, &a->steps));
        else if (!strcmp(o, "--seed")) {
            DLM_CALL(parse_long(o, v, 0, INT64_MAX, &x));
            a->seed = (uint64_t)x;
        } else if (!strcmp(o, "--weights")) {
            DLM_CHECK(!strcmp(v, "ema") || !strcmp(v, "raw"), DLM_ERR_ARG,
                      "--weights expects ema or raw, got '%s'", v);
            a->weights = v;
        } else if (!strcmp(o, "--compare")) a->compare = v;
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--batch")) DLM_CALL(parse_int(o, v, 1, &a->batch));
        else if (!strcmp(o, "--threads")) DLM_CALL(parse_int(o, v, 1, &a->threads));
        else DLM_CHECK(0, DLM_ERR_ARG, "unknown option '%s' (see --help)", o);
    }
    DLM_CHECK(a->ckpt, DLM_ERR_ARG, "no checkpoint or run folder given (see --help)");
    dlm_estimator_kind k;
    DLM_CALL(dlm_estimator_parse(a->estimator, &k));
    DLM_CHECK(k != DLM_EST_AR, DLM_ERR_ARG,
              "--estimator ar: AR models are scored exactly whatever the estimator; choose "
              "one of exact-k, mc-t, quadrature, discrete for diffusion models");
    if (!a->K) a->K = k == DLM_EST_QUADRATURE ? a->nodes : 16;
    dlm_estimator e; /* settings checked before any work (eps and T come later from the run) */
    dlm_estimator_default(&e, k);
    e.K = e.strata = a->K;
    e.nodes = a->nodes;
    e.steps = a->steps;
    if (a->eps > 0) e.schedule.eps = a->eps;
    DLM_CALL(dlm_estimator_check(&e, 1));
    if (a->schedule) DLM_CALL(dlm_schedule_parse(a->schedule, &e.schedule.kind));
    if (a->data_format) {
        dlm_shard_format fmt;
        DLM_CALL(dlm_shard_format_parse(a->data_format, &fmt));
    }
    DLM_CHECK(!a->target_se || a->max_K >= a->K, DLM_ERR_ARG,
              "--max-K (%d) must be at least --K (%d)", a->max_K, a->K);
    return DLM_OK;
}

/* ---- one model under evaluation ---- */

typedef struct {
    dlm_ckpt_info info;
    dlm_model *m;
    dlm_evaluator *ev;
    dlm_estimator est;
    int use_ema;
    int K;                  /* samples scored so far per chunk */
    dlm_sample_result *res; /* (n, ld) */
    size_t ld;
    double *chunk_values;   /* (n) */
    dlm_estimate nats;
    char group[300];
} eval_model;

static void eval_model_free(eval_model *em)
{
    dlm_evaluator_destroy(&em->ev);
    dlm_model_destroy(&em->m);
    dlm_eval_ckpt_info_free(&em->info);
    free(em->res);
    free(em->chunk_values);
    memset(em, 0, sizeof *em);
}

static const char *objective_of(const eval_model *em)
{
    return dlm_objective_name(em->info.cfg.objective.kind);
}

static int is_ar(const eval_model *em) { return em->info.cfg.objective.kind == DLM_OBJECTIVE_AR; }

/* path: a checkpoint file (already resolved from a run folder). */
static dlm_status open_model(const eval_args *a, const char *path, const dlm_chunk_set *cs,
                             size_t ld, eval_model *em)
{
    DLM_CALL(dlm_eval_ckpt_info(path, &em->info));
    const dlm_run_config *c = &em->info.cfg;
    DLM_CHECK(c->model.seq_len == cs->T, DLM_ERR_ARG,
              "%s has sequence length %d but the chunks are %d tokens: both models of a "
              "comparison must have the same T", path, c->model.seq_len, cs->T);
    int vocab, sep, found;
    DLM_CALL(dlm_eval_train_vocab(&em->info, &vocab, &sep, &found));
    if (found)
        DLM_CHECK(vocab == cs->vocab_size && sep == cs->separator_id, DLM_ERR_ARG,
                  "%s was trained on a vocabulary of %d ids (separator %d) but %s has %d "
                  "(separator %d): evaluate on data of the model's vocabulary",
                  path, vocab, sep, cs->source, cs->vocab_size, cs->separator_id);
    em->use_ema = a->weights ? !strcmp(a->weights, "ema") : em->info.has_ema;
    int batch = a->batch ? a->batch : c->train.micro_batch;
    DLM_CALL(dlm_eval_model_load(&em->info, cs->vocab_size, cs->separator_id, em->use_ema,
                                 &em->m));
    DLM_CALL(dlm_evaluator_create(em->m, batch, &em->ev));
    /* the estimator */
    dlm_estimator_kind kind;
    DLM_CALL(dlm_estimator_parse(a->estimator, &kind));
    if (is_ar(em)) kind = DLM_EST_AR;
    dlm_estimator *e = &em->est;
    dlm_estimator_default(e, kind);
    e->seed = a->seed;
    if (kind != DLM_EST_AR) e->K = e->strata = a->K;
    dlm_schedule_default(&e->schedule, c->objective.schedule);
    e->schedule.eps = c->objective.eps;
    e->schedule.power = c->objective.power;
    if (a->schedule) DLM_CALL(dlm_schedule_parse(a->schedule, &e->schedule.kind));
    if (a->eps > 0) e->schedule.eps = a->eps;
    e->nodes = a->nodes;
    e->steps = a->steps;
    DLM_CALL(dlm_estimator_check(e, cs->T));
    em->ld = kind == DLM_EST_AR ? 1 : ld;
    em->res = calloc((size_t)cs->n * em->ld, sizeof *em->res);
    em->chunk_values = calloc((size_t)cs->n, sizeof *em->chunk_values);
    DLM_CHECK(em->res && em->chunk_values, DLM_ERR_NOMEM,
              "results for %lld chunks x %zu samples", (long long)cs->n, em->ld);
    return DLM_OK;
}

/* Scores samples [K, K_new) of every chunk (AR: its one sample, once). The
 * chunk range is the unit a data-parallel version splits over ranks. */
static dlm_status score_to(eval_model *em, const dlm_chunk_set *cs, int K_new)
{
    if (em->est.kind == DLM_EST_AR) K_new = 1;
    if (K_new <= em->K) return DLM_OK;
    DLM_CALL(dlm_evaluator_run(em->ev, &em->est, cs, 0, cs->n, em->K, K_new, em->res + em->K,
                               em->ld));
    em->K = K_new;
    em->est.K = K_new; /* what the chunk values now average */
    dlm_chunk_means(em->res, cs->n, em->K, em->ld, em->chunk_values);
    dlm_estimate_from(em->chunk_values, cs->n, &em->nats);
    return DLM_OK;
}

/* Value of sample j of chunk c for the quantity K is grown for: A's, or
 * with --compare the paired difference A - B (an AR model's one sample
 * stands for all j). */
static double sample_value(const eval_model *A, const eval_model *B, int64_t c, int j)
{
    double v = A->res[(size_t)c * A->ld + (size_t)(A->K > 1 ? j : 0)].value;
    if (B) v -= B->res[(size_t)c * B->ld + (size_t)(B->K > 1 ? j : 0)].value;
    return v;
}

/* Splits the variance of the chunk means (var_means, with K samples each)
 * into a part between chunks and a part within them (mask noise, falling
 * as 1/K): within is the mean over chunks of the samples' variance. */
static void variance_parts(const eval_model *A, const eval_model *B, int64_t n, int K,
                           double var_means, double *within, double *between)
{
    double w = 0.0;
    for (int64_t c = 0; c < n; c++) {
        double m = 0.0, ss = 0.0;
        for (int j = 0; j < K; j++) m += sample_value(A, B, c, j) / K;
        for (int j = 0; j < K; j++) {
            double d = sample_value(A, B, c, j) - m;
            ss += d * d;
        }
        w += ss / (K - 1) / (double)n;
    }
    *within = w;
    *between = fmax(var_means - w / K, 0.0);
}

static void paired(const eval_model *a, const eval_model *b, int64_t n, double *diff,
                   dlm_estimate *d)
{
    for (int64_t c = 0; c < n; c++) diff[c] = a->chunk_values[c] - b->chunk_values[c];
    dlm_estimate_difference(a->chunk_values, b->chunk_values, n, d);
}

/* ---- data ---- */

static dlm_status open_chunks(const eval_args *a, const dlm_ckpt_info *info, dlm_chunk_set *cs)
{
    const dlm_run_config *c = &info->cfg;
    int T = c->model.seq_len;
    dlm_shard_format fmt = c->data.format;
    if (a->data_format) DLM_CALL(dlm_shard_format_parse(a->data_format, &fmt));
    const char *paths[DLM_CONFIG_MAX_PATHS];
    int n = 0;
    if (a->n_data) {
        for (int i = 0; i < a->n_data; i++) paths[n++] = a->data[i];
    } else if (c->data.source == DLM_DATA_SYNTHETIC) {
        dlm_iid_source src;
        dlm_iid_source_default(&src, c->train.seed);
        int64_t nc = a->chunks > 0 ? a->chunks : 256;
        DLM_CALL(dlm_chunk_set_from_iid(&src, T, nc, cs));
        return DLM_OK;
    } else {
        DLM_CHECK(c->data.n_val_paths > 0, DLM_ERR_ARG,
                  "%s: the run had no data.val; give the shards to score with --data",
                  info->path);
        for (int i = 0; i < c->data.n_val_paths; i++) paths[n++] = c->data.val_paths[i];
    }
    DLM_CALL(dlm_chunk_set_from_shards(paths, n, fmt, T, a->chunks, cs));
    return DLM_OK;
}

/* ---- output ---- */

/* "<dir>/eval.h5" for the checkpoint's folder. */
static void default_out(const char *ckpt, char *out, size_t len)
{
    const char *slash = strrchr(ckpt, '/');
    if (!slash) snprintf(out, len, "eval.h5");
    else snprintf(out, len, "%.*s/eval.h5", (int)(slash - ckpt), ckpt);
}

/* "step-00000100" from ".../step-00000100.h5" */
static void stem(const char *path, char *out, size_t len)
{
    const char *s = strrchr(path, '/');
    s = s ? s + 1 : path;
    size_t n = strlen(s);
    if (n > 3 && !strcmp(s + n - 3, ".h5")) n -= 3;
    snprintf(out, len, "%.*s", (int)n, s);
}

static void group_name(const eval_model *em, char *out, size_t len)
{
    char st[200];
    stem(em->info.path, st, sizeof st);
    snprintf(out, len, "%s_%s_%s", st, dlm_estimator_name(em->est.kind),
             em->use_ema ? "ema" : "raw");
}

/* Median training tokens/s from the run file next to the checkpoints
 * folder (NAN when there is none). */
static double training_tokens_per_s(const char *ckpt)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", ckpt);
    char *slash = strrchr(dir, '/');
    if (!slash) return NAN;
    *slash = '\0';
    slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (strcmp(base, "checkpoints") != 0) return NAN;
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    if (access(path, R_OK) != 0) return NAN;
    dlm_train_row *rows = NULL;
    int64_t n = 0;
    if (dlm_runfile_read(path, &rows, &n, NULL, NULL) != DLM_OK) {
        dlm_error_clear();
        return NAN;
    }
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    int64_t m = 0;
    for (int64_t i = 0; v && i < n; i++)
        if (rows[i].tokens_per_s > 0) v[m++] = rows[i].tokens_per_s;
    double med = NAN;
    if (m > 0) { /* insertion sort: a run file has few rows */
        for (int64_t i = 1; i < m; i++)
            for (int64_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
                double t = v[j];
                v[j] = v[j - 1];
                v[j - 1] = t;
            }
        med = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
    }
    free(v);
    free(rows);
    return med;
}

static double tokens_per_s(const eval_model *em)
{
    int64_t tok;
    double s;
    dlm_evaluator_counters(em->ev, &tok, &s);
    return s > 0 ? (double)tok / s : NAN;
}

static void print_model_table(const eval_model *em, const dlm_chunk_set *cs, const char *label)
{
    const dlm_estimate *x = &em->nats;
    double ln2 = log(2.0), bpb = dlm_eval_bpb_factor(cs);
    int ar = em->est.kind == DLM_EST_AR;
    char def[512];
    dlm_estimator_describe(&em->est, cs->T, def, sizeof def);
    printf("%s%s (step %lld, %lld training tokens), %s weights\n", label, em->info.path,
           (long long)em->info.step, (long long)em->info.tokens, em->use_ema ? "EMA" : "raw");
    printf("  model      %s, objective %s", em->info.shape, objective_of(em));
    if (!ar) printf(", trained with the %s schedule", dlm_schedule_name(em->info.cfg.objective.schedule));
    printf("\n  estimator  %s\n", def);
    if (!ar) printf("  samples    K = %d per chunk, seed %llu\n", em->K, (unsigned long long)em->est.seed);
    printf("\n  %-34s %10s %10s   %s\n", ar ? "NLL (exact)" : "NELBO (UPPER BOUND on the NLL)",
           "estimate", "std.err", "95% interval");
    printf("  %-34s %10.4f %10.4f   [%.4f, %.4f]\n", "nats/token", x->mean, x->se, x->lo, x->hi);
    printf("  %-34s %10.4f %10.4f   [%.4f, %.4f]\n", "bits/token", x->mean / ln2, x->se / ln2,
           x->lo / ln2, x->hi / ln2);
    if (isfinite(bpb))
        printf("  %-34s %10.4f %10.4f   [%.4f, %.4f]\n", "bits/byte", x->mean * bpb, x->se * bpb,
               x->lo * bpb, x->hi * bpb);
    else
        printf("  %-34s %10s\n", "bits/byte", "n/a (not byte-level data)");
    printf("  %-34s %10.3f %10s   [%.3f, %.3f]\n", "perplexity", exp(x->mean), "",
           exp(x->lo), exp(x->hi));
    if (isfinite(cs->entropy))
        printf("  source entropy H(x_1..x_T)/T %.4f nats/token: %s - entropy = %.4f +- %.4f\n",
               cs->entropy, ar ? "NLL" : "bound", x->mean - cs->entropy, x->se);
    if (cs->true_nll) {
        dlm_estimate truth, gap;
        dlm_estimate_from(cs->true_nll, cs->n, &truth);
        dlm_estimate_difference(em->chunk_values, cs->true_nll, cs->n, &gap);
        printf("  true NLL of these chunks %.4f nats/token (exact, the source is known): %s - "
               "true NLL = %.4f +- %.4f (paired over chunks)\n",
               truth.mean, ar ? "NLL" : "bound", gap.mean, gap.se);
    }
    int64_t tok;
    double s;
    dlm_evaluator_counters(em->ev, &tok, &s);
    double train = training_tokens_per_s(em->info.path);
    printf("  throughput %.0f tokens/s forward (%lld sequences of %d tokens in %.2f s)",
           tokens_per_s(em), (long long)(tok / cs->T), cs->T, s);
    if (isfinite(train))
        printf("; training ran at %.0f tokens/s (median in run.h5): %.2fx", train,
               tokens_per_s(em) / train);
    printf("\n");
}

static void json_num(const char *key, double v, int last)
{
    if (isfinite(v)) printf("  \"%s\": %.10g%s\n", key, v, last ? "" : ",");
    else printf("  \"%s\": null%s\n", key, last ? "" : ",");
}

static void json_str(const char *key, const char *v)
{
    printf("  \"%s\": ", key);
    dlm_json_write_string(stdout, v);
    printf(",\n");
}

static void json_model(const eval_model *em, const dlm_chunk_set *cs, const char *prefix)
{
    char k[128];
    const dlm_estimate *x = &em->nats;
    double ln2 = log(2.0), bpb = dlm_eval_bpb_factor(cs);
#define KEY(name) (snprintf(k, sizeof k, "%s%s", prefix, name), k)
    json_str(KEY("checkpoint"), em->info.path);
    json_num(KEY("step"), (double)em->info.step, 0);
    json_num(KEY("tokens_seen"), (double)em->info.tokens, 0);
    json_num(KEY("parameters"), (double)dlm_model_param_count(em->m), 0);
    json_str(KEY("objective"), objective_of(em));
    json_str(KEY("estimator"), dlm_estimator_name(em->est.kind));
    json_str(KEY("bound"), em->est.kind == DLM_EST_AR ? "exact" : "upper bound");
    json_str(KEY("weights"), em->use_ema ? "ema" : "raw");
    json_num(KEY("K"), em->K, 0);
    json_num(KEY("estimate_nats_per_token"), x->mean, 0);
    json_num(KEY("stderr_nats_per_token"), x->se, 0);
    json_num(KEY("ci95_low"), x->lo, 0);
    json_num(KEY("ci95_high"), x->hi, 0);
    json_num(KEY("estimate_bits_per_token"), x->mean / ln2, 0);
    json_num(KEY("stderr_bits_per_token"), x->se / ln2, 0);
    json_num(KEY("bits_per_byte"), x->mean * bpb, 0);
    json_num(KEY("stderr_bits_per_byte"), x->se * bpb, 0);
    json_num(KEY("bits_per_byte_ci95_low"), x->lo * bpb, 0);
    json_num(KEY("bits_per_byte_ci95_high"), x->hi * bpb, 0);
    json_num(KEY("perplexity"), exp(x->mean), 0);
    json_num(KEY("perplexity_ci95_low"), exp(x->lo), 0);
    json_num(KEY("perplexity_ci95_high"), exp(x->hi), 0);
    json_num(KEY("tokens_per_s"), tokens_per_s(em), 0);
    json_num(KEY("training_tokens_per_s"), training_tokens_per_s(em->info.path), 0);
    dlm_estimate gap = {.mean = NAN, .se = NAN};
    if (cs->true_nll) dlm_estimate_difference(em->chunk_values, cs->true_nll, cs->n, &gap);
    json_num(KEY("minus_true_nll_nats_per_token"), gap.mean, 0);
    json_num(KEY("minus_true_nll_stderr_nats_per_token"), gap.se, 0);
#undef KEY
}

/* ---- the program ---- */

static dlm_status run(int argc, char **argv, int *help)
{
    eval_args a;
    DLM_CALL(parse_args(argc, argv, &a, help));
    if (*help) return DLM_OK;
    if (a.json) dlm_log_set_level(DLM_LOG_WARN); /* stdout holds the JSON object only */
    const char *source = "--threads";
    int threads = a.threads ? a.threads : dlm_threads_default(&source);
    DLM_CALL(dlm_blis_init(threads, source));
    char blis[512];
    DLM_CALL(dlm_blis_describe(blis, sizeof blis));
    DLM_INFO("%s", blis);

    eval_model A = {0}, B = {0};
    dlm_chunk_set cs = {0};
    double *diff = NULL;
    dlm_status st = DLM_OK;
    /* a run folder is resolved once: a checkpoint written meanwhile does not change the model */
    char path_a[4096], path_b[4096];
    DLM_CALL_GOTO(st, dlm_eval_resolve_checkpoint(a.ckpt, path_a, sizeof path_a), done);
    if (a.compare)
        DLM_CALL_GOTO(st, dlm_eval_resolve_checkpoint(a.compare, path_b, sizeof path_b), done);
    DLM_CALL_GOTO(st, dlm_eval_ckpt_info(path_a, &A.info), done);
    DLM_CALL_GOTO(st, open_chunks(&a, &A.info, &cs), done);
    dlm_eval_ckpt_info_free(&A.info);
    size_t ld = (size_t)(a.target_se > 0 ? a.max_K / a.K * a.K : a.K);
    DLM_CALL_GOTO(st, open_model(&a, path_a, &cs, ld, &A), done);
    if (a.compare) DLM_CALL_GOTO(st, open_model(&a, path_b, &cs, ld, &B), done);
    char hash[64];
    dlm_chunk_set_hash_text(&cs, hash, sizeof hash);
    DLM_INFO("data: %s: %lld of %lld chunks of %d tokens, chunk set %s", cs.source,
             (long long)cs.n, (long long)cs.available, cs.T, hash);
    if (cs.n < 2)
        DLM_WARN("only one chunk: no standard error or interval (give more data or --chunks)");

    diff = calloc((size_t)cs.n, sizeof *diff);
    st = diff ? DLM_OK : DLM_ERR_NOMEM;
    DLM_CALL_GOTO(st, st, done);
    dlm_estimate d = {0};
    int K = a.K, reached = 1, stalls = 0;
    double prev_se = INFINITY;
    for (;;) {
        DLM_CALL_GOTO(st, score_to(&A, &cs, K), done);
        if (a.compare) {
            DLM_CALL_GOTO(st, score_to(&B, &cs, K), done);
            paired(&A, &B, cs.n, diff, &d);
        }
        const dlm_estimate *x = a.compare ? &d : &A.nats;
        int diffusion = !is_ar(&A) || (a.compare && !is_ar(&B));
        if (!(a.target_se > 0) || !diffusion) break;
        DLM_INFO("K = %d: %s %.4f, standard error %.4f (target %.4g)", K,
                 a.compare ? "difference" : "estimate", x->mean, x->se, a.target_se);
        if (x->se <= a.target_se) break;
        /* stop early when even K = max-K would clearly miss the target (the chunks' own
         * spread). The split of the variance is noisy (heavy-tailed for mc-t), so only
         * after doubling K twice in a row failed to cut the standard error by 10%. */
        stalls = x->se > 0.9 * prev_se ? stalls + 1 : 0;
        prev_se = x->se;
        double within = 0.0, between = 0.0, se_cap = 0.0;
        if (stalls >= 2 && cs.n >= 2) {
            variance_parts(&A, a.compare ? &B : NULL, cs.n, K, x->sd * x->sd, &within, &between);
            se_cap = sqrt((between + within / (double)ld) / (double)cs.n);
        }
        if (2 * K > (int)ld || se_cap > 1.2 * a.target_se) {
            reached = 0;
            DLM_WARN("standard error %.4g is above the target %.4g at K = %d%s; more samples "
                     "per chunk cannot beat the spread between chunks: about %.0f chunks are "
                     "needed at this K (--chunks)",
                     x->se, a.target_se, K,
                     2 * K > (int)ld ? " (--max-K)" : ", and would be at --max-K too",
                     ceil((double)cs.n * (x->se / a.target_se) * (x->se / a.target_se)));
            break;
        }
        K *= 2;
    }

    /* results file */
    char out[4200] = "";
    dlm_eval_pair pair = {0};
    char pair_group[700];
    if (!a.no_out) {
        if (a.out) snprintf(out, sizeof out, "%s", a.out);
        else default_out(A.info.path, out, sizeof out);
        group_name(&A, A.group, sizeof A.group);
        dlm_eval_record recs[2];
        eval_model *ms[2] = {&A, &B};
        int n = a.compare ? 2 : 1;
        if (a.compare) {
            group_name(&B, B.group, sizeof B.group);
            if (!strcmp(A.group, B.group)) strncat(B.group, "_b", sizeof B.group - strlen(B.group) - 1);
        }
        for (int i = 0; i < n; i++) {
            eval_model *em = ms[i];
            recs[i] = (dlm_eval_record){.group = em->group, .checkpoint = em->info.path,
                                        .step = em->info.step, .objective = objective_of(em),
                                        .weights = em->use_ema ? "ema" : "raw",
                                        .config_text = em->info.config_text, .est = &em->est,
                                        .cs = &cs, .samples = em->res, .K = em->K, .ld = em->ld,
                                        .chunk_values = em->chunk_values, .nats = em->nats,
                                        .tokens_per_s = tokens_per_s(em)};
        }
        if (a.compare) {
            snprintf(pair_group, sizeof pair_group, "compare_%s_vs_%s", A.group, B.group);
            pair = (dlm_eval_pair){.group = pair_group, .a = A.group, .b = B.group, .diff = diff,
                                   .d = d};
        }
        DLM_CALL_GOTO(st, dlm_evalfile_write(out, recs, n, a.compare ? &pair : NULL), done);
    }

    double bpb = dlm_eval_bpb_factor(&cs);
    if (a.json) {
        printf("{\n");
        json_model(&A, &cs, "");
        json_str("data", cs.source);
        json_str("chunk_set_hash", hash);
        json_num("n_chunks", (double)cs.n, 0);
        json_num("T", cs.T, 0);
        json_num("text_bytes", cs.text_bytes >= 0 ? (double)cs.text_bytes : NAN, 0);
        json_num("seed", (double)a.seed, 0);
        json_num("source_entropy_nats_per_token", cs.entropy, 0);
        dlm_estimate truth = {.mean = NAN};
        if (cs.true_nll) dlm_estimate_from(cs.true_nll, cs.n, &truth);
        json_num("true_nll_nats_per_token", truth.mean, 0);
        if (a.compare) {
            json_model(&B, &cs, "compare_");
            json_num("difference_nats_per_token", d.mean, 0);
            json_num("difference_stderr_nats_per_token", d.se, 0);
            json_num("difference_ci95_low", d.lo, 0);
            json_num("difference_ci95_high", d.hi, 0);
            json_num("difference_bits_per_byte", d.mean * bpb, 0);
            json_num("difference_stderr_bits_per_byte", d.se * bpb, 0);
        }
        json_str("results_file", out);
        json_num("target_se_reached", a.target_se > 0 ? reached : NAN, 1);
        printf("}\n");
    } else {
        printf("data         %s: %lld of %lld chunks of %d tokens (%lld tokens", cs.source,
               (long long)cs.n, (long long)cs.available, cs.T, (long long)(cs.n * cs.T));
        if (cs.text_bytes >= 0) printf(", %lld text bytes", (long long)cs.text_bytes);
        printf("), chunk set %s\n\n", hash);
        print_model_table(&A, &cs, a.compare ? "model A      " : "checkpoint   ");
        if (a.compare) {
            printf("\n");
            print_model_table(&B, &cs, "model B      ");
            printf("\n  paired difference A - B (same chunks%s): %.4f +- %.4f nats/token, 95%% "
                   "[%.4f, %.4f]",
                   !is_ar(&A) && !is_ar(&B) ? " and masks" : "", d.mean, d.se, d.lo, d.hi);
            if (isfinite(bpb)) printf("; %.4f +- %.4f bits/byte", d.mean * bpb, d.se * bpb);
            printf("\n");
        }
        if (out[0]) printf("\nresults      %s, group %s\n", out, A.group);
    }
    fflush(stdout);
done:
    free(diff);
    dlm_chunk_set_free(&cs);
    eval_model_free(&A);
    eval_model_free(&B);
    return st;
}

int main(int argc, char **argv)
{
    int size, help = 0;
    dlm_status st = dlm_program_start(&argc, &argv, NULL, &size);
    if (st == DLM_OK)
        st = size == 1 ? run(argc, argv, &help)
                       : dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                        "dlm-eval runs on one rank for now, not %d", size);
    if (st == DLM_OK && help) usage(stdout);
    return dlm_program_finish("dlm-eval", st, 0);
}
