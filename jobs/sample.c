/* dlm-sample: text from a trained model by iterative unmasking (masked
 * diffusion) or left to right (AR), with the measures samplers are
 * compared by: network evaluations, tokens/s, generative perplexity under
 * an AR model, unigram entropy and repeated n-grams. */
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
#include "eval/evalmodel.h"
#include "kernels/blis_info.h"
#include "sample/sample.h"
#include "sample/samplefile.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dlm-sample <CHECKPOINT.h5 | RUN_FOLDER> [options]\n"
            "Draws samples from a trained model and measures them. A run folder means its\n"
            "newest checkpoint that verifies; the model shape comes from the run config\n"
            "stored in the checkpoint. A masked-diffusion (mdlm) model samples by\n"
            "unmasking, an AR model left to right.\n\n"
            "  --n N              samples (default 4)\n"
            "  --steps S[,S..]    diffusion steps per block (default T); a list gives one\n"
            "                     table per S\n"
            "  --sampler K[,K..]  ancestral (default for mdlm): MDLM's reverse process,\n"
            "                       alpha(t) = 1 - t, a final step unmasks what is left;\n"
            "                     confidence: LLaDA's low-confidence remasking, each step\n"
            "                       keeps the k = ceil(masked / steps left) most confident;\n"
            "                     random: the same k, positions in random order;\n"
            "                     ar (the only one, and default, for AR models): left to right\n"
            "  --no-cache         call the network at every step (ancestral: the cache skips\n"
            "                     it when no token changed, which is exact because the model\n"
            "                     has no time input)\n"
            "  --temperature X    divides the logits (default 1; 0 = most probable token)\n"
            "  --top-k K          keep the K most probable tokens (default 0 = all)\n"
            "  --top-p P          nucleus: the fewest most probable tokens with mass >= P\n"
            "                     (default 1 = all)\n"
            "  --prompt TEXT      fixed prefix (byte-level vocabularies)\n"
            "  --infill SPEC      fixed tokens elsewhere: \"pos:text,pos:text\" (0-based)\n"
            "  --length L         tokens per sample (default T); longer than T is generated\n"
            "                     in blocks with a sliding window of T tokens\n"
            "  --block B          tokens per block (default L if L <= T, else T/2); each\n"
            "                     block sees up to T - B tokens before it\n"
            "  --seed N           (default 1); sample i is a pure function of seed and i\n"
            "  --out FILE         the text (default: stdout)\n"
            "  --h5 PATH          tokens, steps, NFE, timings (default: samples.h5 in the\n"
            "                     checkpoint's folder; 'none' writes nothing)\n"
            "  --score-with CKPT  an AR checkpoint or run folder scoring the samples\n"
            "                     (generative perplexity)\n"
            "  --weights W        ema (default when present) or raw\n"
            "  --threads N        BLIS and OpenMP threads (default: OMP_NUM_THREADS or cores)\n"
            "  --help             this text\n\n"
            "Byte-level text is written as bytes, the separator as a newline. The table\n"
            "per sampler and S: NFE/sample, tokens/s, generative perplexity (exp of the\n"
            "scoring model's mean NLL per token), unigram entropy (nats, per sample,\n"
            "averaged: collapse shows as a low value) and the repeated 4-gram rate.\n");
}

typedef struct {
    const char *ckpt, *prompt, *infill, *out, *h5, *score, *weights;
    char samplers[256], steps[256];
    int n, length, block, top_k, threads, no_cache;
    double temperature, top_p;
    uint64_t seed;
    int help;
} args;

static dlm_status parse_long(const char *opt, const char *s, long long lo, long long hi,
                             long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    DLM_CHECK(*s && !*end && errno == 0 && v >= lo && v <= hi, DLM_ERR_ARG,
              "%s expects an integer in %lld..%lld, got '%s'", opt, lo, hi, s);
    *out = v;
    return DLM_OK;
}

static dlm_status parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    DLM_CHECK(*s && !*end && isfinite(v) && v >= lo && v <= hi, DLM_ERR_ARG,
              "%s expects a number in [%g, %g], got '%s'", opt, lo, hi, s);
    *out = v;
    return DLM_OK;
}

static dlm_status parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->n = 4, a->temperature = 1.0, a->top_p = 1.0, a->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            a->help = 1;
            return DLM_OK;
        }
        if (!strcmp(o, "--no-cache")) {
            a->no_cache = 1;
            continue;
        }
        if (o[0] != '-') {
            DLM_CHECK(!a->ckpt, DLM_ERR_ARG, "one checkpoint only: got '%s' and '%s'", a->ckpt, o);
            a->ckpt = o;
            continue;
        }
        static const char *const with_value[] = {
            "--n", "--steps", "--sampler", "--temperature", "--top-k", "--top-p", "--prompt",
            "--infill", "--length", "--block", "--seed", "--out", "--h5", "--score-with",
            "--weights", "--threads", NULL};
        int known = 0;
        for (int k = 0; with_value[k]; k++) known |= !strcmp(o, with_value[k]);
        DLM_CHECK(known, DLM_ERR_ARG, "unknown option '%s' (see --help)", o);
        DLM_CHECK(i + 1 < argc, DLM_ERR_ARG, "%s needs a value (see --help)", o);
        const char *v = argv[++i];
        long long x;
        if (!strcmp(o, "--n")) { DLM_CALL(parse_long(o, v, 1, INT_MAX, &x)); a->n = (int)x; }
        else if (!strcmp(o, "--steps")) snprintf(a->steps, sizeof a->steps, "%s", v);
        else if (!strcmp(o, "--sampler")) snprintf(a->samplers, sizeof a->samplers, "%s", v);
        else if (!strcmp(o, "--temperature")) DLM_CALL(parse_double(o, v, 0, 1e6, &a->temperature));
        else if (!strcmp(o, "--top-k")) { DLM_CALL(parse_long(o, v, 0, INT_MAX, &x)); a->top_k = (int)x; }
        else if (!strcmp(o, "--top-p")) DLM_CALL(parse_double(o, v, 1e-12, 1, &a->top_p));
        else if (!strcmp(o, "--prompt")) a->prompt = v;
        else if (!strcmp(o, "--infill")) a->infill = v;
        else if (!strcmp(o, "--length")) { DLM_CALL(parse_long(o, v, 1, 1 << 24, &x)); a->length = (int)x; }
        else if (!strcmp(o, "--block")) { DLM_CALL(parse_long(o, v, 1, 1 << 24, &x)); a->block = (int)x; }
        else if (!strcmp(o, "--seed")) { DLM_CALL(parse_long(o, v, 0, LLONG_MAX, &x)); a->seed = (uint64_t)x; }
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--h5")) a->h5 = v;
        else if (!strcmp(o, "--score-with")) a->score = v;
        else if (!strcmp(o, "--weights")) a->weights = v;
        else if (!strcmp(o, "--threads")) { DLM_CALL(parse_long(o, v, 1, INT_MAX, &x)); a->threads = (int)x; }
    }
    DLM_CHECK(a->ckpt, DLM_ERR_ARG, "no checkpoint or run folder given (see --help)");
    DLM_CHECK(!a->weights || !strcmp(a->weights, "ema") || !strcmp(a->weights, "raw"),
              DLM_ERR_ARG, "--weights expects ema or raw, got '%s'", a->weights);
    return DLM_OK;
}

/* The model of a checkpoint with the vocabulary its run trained on. */
static dlm_status load(const char *arg, const char *weights, dlm_ckpt_info *info, dlm_model **m,
                       int *use_ema)
{
    char path[4096];
    DLM_CALL(dlm_eval_resolve_checkpoint(arg, path, sizeof path));
    DLM_CALL(dlm_eval_ckpt_info(path, info));
    int V = DLM_BYTE_VOCAB, sep = DLM_BYTE_SEP, found = 0;
    DLM_CALL(dlm_eval_train_vocab(info, &V, &sep, &found));
    if (!found)
        DLM_WARN("%s: the run's training shards are gone; assuming the byte vocabulary (%d ids)",
                 path, V);
    *use_ema = weights ? !strcmp(weights, "ema") : info->has_ema;
    DLM_CALL(dlm_eval_model_load(info, V, sep, *use_ema, m));
    return DLM_OK;
}

static int byte_level(const dlm_model *m) { return m->cfg.vocab_size == DLM_BYTE_VOCAB; }

/* given/fixed from --prompt and --infill. */
static dlm_status conditioning(const args *a, const dlm_model *m, int L, int32_t *given,
                               uint8_t *fixed, int *any)
{
    *any = 0;
    memset(fixed, 0, (size_t)L);
    if (!a->prompt && !a->infill) return DLM_OK;
    DLM_CHECK(byte_level(m), DLM_ERR_ARG,
              "--prompt and --infill take text, but this model's vocabulary is not bytes (%d ids)",
              m->cfg.vocab_size);
    *any = 1;
    if (a->prompt) {
        int n = (int)strlen(a->prompt);
        DLM_CHECK(n <= L, DLM_ERR_ARG, "--prompt has %d bytes, more than --length %d", n, L);
        for (int i = 0; i < n; i++) given[i] = (unsigned char)a->prompt[i], fixed[i] = 1;
    }
    if (a->infill) {
        const char *s = a->infill;
        while (*s) {
            char *end;
            long pos = strtol(s, &end, 10);
            DLM_CHECK(end != s && *end == ':' && pos >= 0, DLM_ERR_ARG,
                      "--infill '%s': expected pos:text[,pos:text...] at '%s'", a->infill, s);
            const char *t = end + 1, *stop = strchr(t, ',');
            int n = stop ? (int)(stop - t) : (int)strlen(t);
            DLM_CHECK(pos + n <= L, DLM_ERR_ARG,
                      "--infill '%.*s' at %ld runs past --length %d", n, t, pos, L);
            for (int i = 0; i < n; i++) given[pos + i] = (unsigned char)t[i], fixed[pos + i] = 1;
            s = stop ? stop + 1 : t + n;
        }
    }
    return DLM_OK;
}

static void write_text(FILE *f, const dlm_model *m, const int32_t *x, int L)
{
    for (int i = 0; i < L; i++) {
        if (!byte_level(m)) fprintf(f, "%s%d", i ? " " : "", (int)x[i]);
        else fputc(x[i] == m->cfg.bos_id ? '\n' : (int)x[i], f);
    }
    fputc('\n', f);
}

static dlm_status split_list(const char *s, char items[][32], int max, int *n)
{
    *n = 0;
    while (*s) {
        const char *c = strchr(s, ',');
        int len = c ? (int)(c - s) : (int)strlen(s);
        DLM_CHECK(*n < max && len > 0 && len < 32, DLM_ERR_ARG, "bad list item in '%s'", s);
        snprintf(items[*n], 32, "%.*s", len, s);
        (*n)++;
        s += len + (c != NULL);
    }
    return DLM_OK;
}

static dlm_status run(int argc, char **argv, int *help)
{
    args a;
    DLM_CALL(parse_args(argc, argv, &a));
    *help = a.help;
    if (a.help) return DLM_OK;
    const char *source = "--threads";
    int threads = a.threads ? a.threads : dlm_threads_default(&source);
    DLM_CALL(dlm_blis_init(threads, source));

    dlm_ckpt_info info, sinfo;
    memset(&sinfo, 0, sizeof sinfo);
    dlm_model *m = NULL, *scorer = NULL;
    dlm_acts *scorer_acts = NULL;
    int use_ema = 0, s_ema = 0;
    DLM_CALL(load(a.ckpt, a.weights, &info, &m, &use_ema));
    int is_ar = info.cfg.objective.kind == DLM_OBJECTIVE_AR;
    int T = m->cfg.seq_len;
    dlm_status st = DLM_OK;
    int32_t *given = NULL;
    uint8_t *fixed = NULL;
    dlm_sample_group *groups = NULL;
    FILE *out = stdout;

    char kinds[8][32], stepl[16][32];
    int n_kinds = 0, n_steps = 0;
    DLM_CALL_GOTO(st, split_list(a.samplers[0] ? a.samplers : is_ar ? "ar" : "ancestral", kinds, 8,
                                 &n_kinds), done);
    if (a.steps[0]) DLM_CALL_GOTO(st, split_list(a.steps, stepl, 16, &n_steps), done);
    else snprintf(stepl[0], 32, "%d", T), n_steps = 1;
    int L = a.length ? a.length : T;
    int block = a.block ? a.block : L <= T ? L : T / 2;
    if (a.score) {
        DLM_CALL_GOTO(st, load(a.score, NULL, &sinfo, &scorer, &s_ema), done);
        if (sinfo.cfg.objective.kind != DLM_OBJECTIVE_AR ||
            scorer->cfg.vocab_size != m->cfg.vocab_size) {
            st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                "--score-with %s: needs an AR model with the sampled model's "
                                "vocabulary (%d ids); it is %s with %d ids", a.score,
                                m->cfg.vocab_size, dlm_objective_name(sinfo.cfg.objective.kind),
                                scorer->cfg.vocab_size);
            goto done;
        }
        DLM_CALL_GOTO(st, dlm_acts_create(scorer, 1, 0, &scorer_acts), done);
    }
    given = calloc((size_t)L, sizeof *given);
    fixed = calloc((size_t)L, 1);
    groups = calloc((size_t)n_kinds * n_steps, sizeof *groups);
    if (!given || !fixed || !groups) {
        st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__, "%d samples of %d tokens",
                            a.n, L);
        goto done;
    }
    int any_given;
    DLM_CALL_GOTO(st, conditioning(&a, m, L, given, fixed, &any_given), done);
    if (a.out && !(out = fopen(a.out, "w"))) {
        st = dlm_error_push(DLM_ERR_IO, __FILE__, __LINE__, __func__, "cannot write --out %s: %s",
                            a.out, strerror(errno));
        out = stdout;
        goto done;
    }
    int n_groups = 0;
    char table[8192];
    int tl = snprintf(table, sizeof table,
                      "%-11s %6s %10s %10s %9s %9s %8s\n", "sampler", "S", "NFE/sample",
                      "tokens/s", "gen_ppl", "entropy", "rep4");
    for (int ki = 0; ki < n_kinds; ki++) {
        dlm_sample_config c;
        dlm_sample_config_default(&c, T);
        DLM_CALL_GOTO(st, dlm_sampler_parse(kinds[ki], &c.kind), done);
        if ((c.kind == DLM_SAMPLER_AR) != is_ar) {
            st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                "sampler %s needs %s model; %s was trained with objective %s",
                                kinds[ki], is_ar ? "a masked-diffusion" : "an AR", info.path,
                                dlm_objective_name(info.cfg.objective.kind));
            goto done;
        }
        for (int si = 0; si < (c.kind == DLM_SAMPLER_AR ? 1 : n_steps); si++) {
            long long S = T;
            DLM_CALL_GOTO(st, parse_long("--steps", stepl[si], 1, INT_MAX, &S), done);
            c.steps = (int)S, c.cache = !a.no_cache, c.temperature = a.temperature;
            c.top_k = a.top_k, c.top_p = a.top_p, c.length = L, c.block = block, c.seed = a.seed;
            dlm_sampler *smp;
            DLM_CALL_GOTO(st, dlm_sampler_create(m, &c, &smp), done);
            dlm_sample_group *g = &groups[n_groups++];
            g->cfg = c, g->n = a.n, g->prompt = a.prompt, g->infill = a.infill;
            g->scored_with = scorer ? sinfo.path : "";
            int32_t *gt = malloc((size_t)a.n * L * sizeof *gt);
            int64_t *gn = malloc((size_t)a.n * 2 * sizeof *gn);
            double *gd = malloc((size_t)a.n * 4 * sizeof *gd);
            g->tokens = gt, g->nfe = gn, g->steps = gn + a.n, g->seconds = gd;
            g->entropy = gd + a.n, g->repeat4 = gd + 2 * a.n, g->nll = gd + 3 * a.n;
            if (!gt || !gn || !gd) {
                free(gt), free(gn), free(gd);
                g->tokens = NULL, g->nfe = NULL, g->seconds = NULL;
                dlm_sampler_destroy(&smp);
                st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__, "sample buffers");
                goto done;
            }
            double secs = 0, nll_sum = 0, mean_nfe = 0, mean_ent = 0, mean_rep = 0;
            for (int k = 0; k < a.n && st == DLM_OK; k++) {
                dlm_sample_stats ss;
                int32_t *x = gt + (int64_t)k * L;
                st = dlm_sampler_run(smp, (uint64_t)k, given, any_given ? fixed : NULL, x, &ss);
                if (st != DLM_OK) break;
                gn[k] = ss.nfe, gn[a.n + k] = ss.steps, gd[k] = ss.seconds;
                gd[a.n + k] = dlm_sample_unigram_entropy(x, L);
                gd[2 * a.n + k] = dlm_sample_repeat_rate(x, L, 4);
                gd[3 * a.n + k] = NAN;
                if (scorer) {
                    st = dlm_sample_ar_nll(scorer, scorer_acts, x, L, &gd[3 * a.n + k]);
                    nll_sum += gd[3 * a.n + k];
                }
                secs += ss.seconds, mean_nfe += (double)ss.nfe / a.n;
                mean_ent += gd[a.n + k] / a.n, mean_rep += gd[2 * a.n + k] / a.n;
                fprintf(out, "=== sample %d (%s, S=%d, %lld NFE) ===\n", k,
                        dlm_sampler_name(c.kind), c.kind == DLM_SAMPLER_AR ? L : c.steps,
                        (long long)ss.nfe);
                write_text(out, m, x, L);
            }
            dlm_sampler_destroy(&smp);
            if (st != DLM_OK) goto done;
            g->tokens_per_s = (double)a.n * L / secs;
            g->gen_ppl = scorer ? exp(nll_sum / ((double)a.n * L)) : NAN;
            char ppl[32] = "-";
            if (scorer) snprintf(ppl, sizeof ppl, "%.3f", g->gen_ppl);
            if (tl < (int)sizeof table)
                tl += snprintf(table + tl, sizeof table - tl, "%-11s %6d %10.1f %10.1f %9s %9.4f %8.4f\n",
                               dlm_sampler_name(c.kind), c.kind == DLM_SAMPLER_AR ? L : c.steps,
                               mean_nfe, g->tokens_per_s, ppl, mean_ent, mean_rep);
        }
    }
    fflush(out);
    printf("%s: step %lld, %s weights, %d samples of %d tokens (T = %d, block %d)%s%s\n%s",
           info.path, (long long)info.step, use_ema ? "ema" : "raw", a.n, L, T, block,
           scorer ? ", scored by " : "", scorer ? sinfo.path : "", table);
    if (!a.h5 || strcmp(a.h5, "none")) {
        char h5[4200];
        if (a.h5) snprintf(h5, sizeof h5, "%s", a.h5);
        else {
            const char *slash = strrchr(info.path, '/');
            if (!slash) snprintf(h5, sizeof h5, "samples.h5");
            else snprintf(h5, sizeof h5, "%.*s/samples.h5", (int)(slash - info.path), info.path);
        }
        dlm_sample_file_attrs fa = {info.path, use_ema ? "ema" : "raw", info.config_text,
                                    info.step};
        DLM_CALL_GOTO(st, dlm_samplefile_write(h5, &fa, groups, n_groups), done);
        printf("wrote %s\n", h5);
    }
done:
    if (out != stdout) fclose(out);
    if (groups)
        for (int i = 0; i < n_kinds * n_steps; i++) {
            free((void *)groups[i].tokens);
            free((void *)groups[i].nfe);
            free((void *)groups[i].seconds);
        }
    free(groups), free(given), free(fixed);
    dlm_acts_destroy(&scorer_acts);
    dlm_model_destroy(&scorer);
    dlm_model_destroy(&m);
    dlm_eval_ckpt_info_free(&sinfo);
    dlm_eval_ckpt_info_free(&info);
    DLM_CALL(st);
    return DLM_OK;
}

int main(int argc, char **argv)
{
    int rank, help = 0;
    dlm_status st = dlm_program_start(&argc, &argv, &rank, NULL);
    if (st == DLM_OK && rank == 0) st = run(argc, argv, &help); /* sampling is serial */
    if (st == DLM_OK && help && rank == 0) usage(stdout);
    return dlm_program_finish("dlm-sample", st, 0);
}
