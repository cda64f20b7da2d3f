/* dlm-sample's run: the models, the conditioning from --prompt and
 * --infill, one group of samples per sampler and step count (each rank a
 * share of the sample indices, gathered in sample order), the text, the
 * table of measures and samples.h5. */
#include "sample/driver.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/args.h"
#include "core/hash.h"
#include "core/log.h"
#include "eval/evalmodel.h"
#include "parallel/dp.h"
#include "parallel/tp.h"
#include "sample/sample.h"
#include "sample/samplefile.h"

void dlm_sample_driver_options_default(dlm_sample_driver_options *o)
{
    memset(o, 0, sizeof *o);
    o->n = 4, o->temperature = 1.0, o->top_p = 1.0, o->seed = 1;
}

/* The model of a checkpoint (path already resolved) with the vocabulary
 * its run trained on. Local: the caller agrees on the verdict. */
static dlm_status load(const char *path, const char *weights, int root, const dlm_grid *g,
                       dlm_tp *tp, dlm_ckpt_info *info, dlm_model **m, int *use_ema,
                       uint64_t *hash)
{
    DLM_CALL(dlm_eval_ckpt_info(path, info));
    int V = DLM_BYTE_VOCAB, sep = DLM_BYTE_SEP, found = 0;
    DLM_CALL(dlm_eval_train_vocab(info, &V, &sep, &found));
    if (!found && root)
        DLM_WARN("%s: the run's training shards are gone; assuming the byte vocabulary (%d ids)",
                 path, V);
    *use_ema = weights ? !strcmp(weights, "ema") : info->has_ema;
    DLM_CALL(dlm_eval_model_load(info, V, sep, *use_ema, tp, g->pp_rank, g->pp, m, hash));
    return DLM_OK;
}

static int byte_level(const dlm_model *m) { return m->cfg.vocab_size == DLM_BYTE_VOCAB; }

/* given/fixed from --prompt and --infill. */
static dlm_status conditioning(const dlm_sample_driver_options *a, const dlm_model *m, int L,
                               int32_t *given, uint8_t *fixed, int *any)
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

/* What every group of one run shares. */
typedef struct {
    const dlm_sample_driver_options *o;
    const dlm_grid *grid;
    dlm_dp *dp;           /* the ordered gathers */
    dlm_tp *tp;           /* the tensor-parallel group both models are split over */
    dlm_model *m, *scorer;
    uint64_t hash;        /* of the whole weights read (both models) */
    dlm_acts *scorer_acts;
    int L;
    const int32_t *given;
    const uint8_t *fixed; /* NULL without conditioning */
    FILE *text;           /* rank 0's; NULL on the others */
} run_ctx;

/* One sample as doubles for the gather: its L tokens, nfe, steps (ids and
 * counts, exact in a double), seconds, entropy, repeat4, nll. */
#define SAMPLE_EXTRA 6

static void pack_samples(const dlm_sample_group *g, int L, int k0, int k1, double *out)
{
    for (int k = k0; k < k1; k++) {
        for (int i = 0; i < L; i++) *out++ = g->tokens[(int64_t)k * L + i];
        *out++ = (double)g->nfe[k], *out++ = (double)g->steps[k];
        *out++ = g->seconds[k], *out++ = g->entropy[k], *out++ = g->repeat4[k], *out++ = g->nll[k];
    }
}

static void unpack_samples(const double *in, int L, int n, int32_t *tokens, int64_t *nfe,
                           int64_t *steps, double *d)
{
    for (int k = 0; k < n; k++) {
        for (int i = 0; i < L; i++) tokens[(int64_t)k * L + i] = (int32_t)*in++;
        nfe[k] = (int64_t)*in++, steps[k] = (int64_t)*in++;
        for (int q = 0; q < 4; q++) d[q * n + k] = *in++; /* seconds, entropy, repeat4, nll */
    }
}

/* This rank's samples [k0, k1) of one group into g's arrays, drawn by smp.
 * Local without tp; under tp collective over the tp group (every forward). */
static dlm_status draw_share(const run_ctx *r, dlm_sampler *smp, dlm_sample_group *g, int k0,
                             int k1)
{
    int L = r->L;
    int32_t *gt = (int32_t *)g->tokens;
    int64_t *gn = (int64_t *)g->nfe, *gs = (int64_t *)g->steps;
    double *gd = (double *)g->seconds, *ge = (double *)g->entropy, *gr = (double *)g->repeat4,
           *gl = (double *)g->nll;
    dlm_status st = DLM_OK;
    for (int k = k0; k < k1 && st == DLM_OK; k++) {
        dlm_sample_stats ss;
        int32_t *x = gt + (int64_t)k * L;
        st = dlm_sampler_run(smp, (uint64_t)k, r->given, r->fixed, x, &ss);
        if (st != DLM_OK) break;
        gn[k] = ss.nfe, gs[k] = ss.steps, gd[k] = ss.seconds;
        ge[k] = dlm_sample_unigram_entropy(x, L);
        gr[k] = dlm_sample_repeat_rate(x, L, 4);
        gl[k] = NAN;
        if (r->scorer)
            st = dlm_sample_ar_nll_pp(r->scorer, r->scorer_acts, r->grid->pp_comm, x, L, &gl[k]);
    }
    DLM_CALL(st);
    return DLM_OK;
}

/* Draws the o->n samples of one sampler config into g (its buffers
 * allocated here, freed by the caller): each rank a contiguous share of
 * the sample indices (a sample is a pure function of its index), gathered
 * in sample order, so every measure is summed as one rank sums it. Rank 0
 * writes the text and adds the row to the table. Collective. */
static dlm_status run_group(const run_ctx *r, const dlm_sample_config *c, dlm_sample_group *g,
                            char *table, size_t cap, int *tl)
{
    int n = r->o->n, L = r->L, per = L + SAMPLE_EXTRA;
    int p = dlm_dp_size(r->dp), q = dlm_dp_rank(r->dp);
    int k0 = (int)((int64_t)n * q / p), k1 = (int)((int64_t)n * (q + 1) / p);
    g->cfg = *c, g->n = n;
    int32_t *gt = NULL;
    int64_t *gn = NULL;
    double *gd = NULL, *mine = NULL, *all = NULL;
    int *counts = NULL;
    dlm_sampler *smp = NULL;
    dlm_status st = DLM_OK;
    DLM_CHECK_GOTO(st, (double)n * per <= INT_MAX, DLM_ERR_ARG, done,
                   "%d samples of %d tokens: more than one MPI gather holds (2^31 - 1 values); "
                   "draw fewer per run (--n)", n, L);
    gt = malloc((size_t)n * L * sizeof *gt);
    gn = malloc((size_t)n * 2 * sizeof *gn);
    gd = malloc((size_t)n * 4 * sizeof *gd);
    g->tokens = gt, g->nfe = gn, g->steps = gn + n, g->seconds = gd;
    g->entropy = gd + n, g->repeat4 = gd + 2 * n, g->nll = gd + 3 * n;
    mine = malloc(((size_t)(k1 - k0) * per + 1) * sizeof *mine);
    all = malloc(((size_t)n * per + 1) * sizeof *all);
    counts = malloc((size_t)p * sizeof *counts);
    DLM_CHECK_GOTO(st, gt && gn && gd && mine && all && counts, DLM_ERR_NOMEM, done,
                   "buffers for %d samples of %d tokens", n, L);
    DLM_CALL_GOTO(st, dlm_sampler_create(r->m, c, &smp), done);
    if (r->grid->pp > 1) dlm_sampler_set_pipeline(smp, r->grid->pp_comm);
done:
    /* agreed before the first forward: under tp a rank that stopped here would leave its
     * group waiting in the forward's all-reduces */
    st = dlm_agree(r->grid->world, st);
    if (st == DLM_OK) {
        st = draw_share(r, smp, g, k0, k1);
        if (st == DLM_OK) pack_samples(g, L, k0, k1, mine);
        /* under tp a failure while drawing may have left the group's other ranks inside
         * an all-reduce: returned unagreed, it ends the job through MPI_Abort with this
         * rank's message; without tp it keeps the others out of the gather */
        if (st == DLM_OK || r->grid->tp == 1) st = dlm_agree(r->grid->world, st);
    }
    dlm_sampler_destroy(&smp);
    if (st == DLM_OK) {
        for (int j = 0; j < p; j++)
            counts[j] = (int)((int64_t)n * (j + 1) / p - (int64_t)n * j / p) * per;
        st = dlm_dp_allgatherv(r->dp, mine, counts, all);
    }
    if (st == DLM_OK) unpack_samples(all, L, n, gt, gn, gn + n, gd);
    free(mine), free(all), free(counts);
    if (st != DLM_OK) {
        free(gt), free(gn), free(gd);
        g->tokens = NULL, g->nfe = NULL, g->seconds = NULL;
        DLM_CALL(st);
    }
    /* the sums in sample order, as one rank draws them */
    double secs = 0, nll_sum = 0, mean_nfe = 0, mean_ent = 0, mean_rep = 0;
    for (int k = 0; k < n; k++) {
        if (r->scorer) nll_sum += g->nll[k];
        secs += g->seconds[k], mean_nfe += (double)g->nfe[k] / n;
        mean_ent += g->entropy[k] / n, mean_rep += g->repeat4[k] / n;
        if (r->text) {
            fprintf(r->text, "=== sample %d (%s, S=%d, %lld NFE) ===\n", k,
                    dlm_sampler_name(c->kind), c->kind == DLM_SAMPLER_AR ? L : c->steps,
                    (long long)g->nfe[k]);
            write_text(r->text, r->m, gt + (int64_t)k * L, L);
        }
    }
    /* one process's speed (the samples' summed time), the same measure at any rank count */
    g->tokens_per_s = (double)n * L / secs;
    g->gen_ppl = r->scorer ? exp(nll_sum / ((double)n * L)) : NAN;
    char ppl[32] = "-";
    if (r->scorer) snprintf(ppl, sizeof ppl, "%.3f", g->gen_ppl);
    if (*tl < (int)cap)
        *tl += snprintf(table + *tl, cap - *tl, "%-11s %6d %10.1f %10.1f %9s %9.4f %8.4f\n",
                        dlm_sampler_name(c->kind), c->kind == DLM_SAMPLER_AR ? L : c->steps,
                        mean_nfe, g->tokens_per_s, ppl, mean_ent, mean_rep);
    return DLM_OK;
}

/* The scoring model: AR, with the sampled model's vocabulary. Local. */
static dlm_status open_scorer(const dlm_sample_driver_options *o, const char *path, int root,
                              run_ctx *r, dlm_ckpt_info *sinfo)
{
    int s_ema;
    uint64_t h;
    const dlm_model *m = r->m;
    dlm_model **scorer = &r->scorer;
    DLM_CALL(load(path, NULL, root, r->grid, r->tp, sinfo, scorer, &s_ema, &h));
    r->hash = dlm_fnv1a(r->hash, &h, sizeof h);
    DLM_CHECK(sinfo->cfg.objective.kind == DLM_OBJECTIVE_AR &&
                  (*scorer)->cfg.vocab_size == m->cfg.vocab_size,
              DLM_ERR_ARG,
              "--score-with %s: needs an AR model with the sampled model's vocabulary (%d ids); "
              "it is %s with %d ids", o->score, m->cfg.vocab_size,
              dlm_objective_name(sinfo->cfg.objective.kind), (*scorer)->cfg.vocab_size);
    DLM_CALL(dlm_acts_create(*scorer, 1, 0, &r->scorer_acts));
    return DLM_OK;
}

/* The groups to draw: one per sampler and step count (the AR sampler has
 * one), each config checked against the model. Local (the same on every
 * rank: the same arguments, the same checkpoint). */
static dlm_status plan_groups(const dlm_sample_driver_options *o, const dlm_ckpt_info *info,
                              int T, int L, int block, dlm_sample_config *cfgs, int max,
                              int *n_groups)
{
    int is_ar = info->cfg.objective.kind == DLM_OBJECTIVE_AR;
    char kinds[8][32], stepl[16][32];
    int n_kinds = 0, n_steps = 0;
    DLM_CALL(split_list(o->samplers ? o->samplers : is_ar ? "ar" : "ancestral", kinds, 8,
                        &n_kinds));
    if (o->steps) DLM_CALL(split_list(o->steps, stepl, 16, &n_steps));
    else snprintf(stepl[0], 32, "%d", T), n_steps = 1;
    *n_groups = 0;
    for (int ki = 0; ki < n_kinds; ki++) {
        dlm_sample_config c;
        dlm_sample_config_default(&c, T);
        DLM_CALL(dlm_sampler_parse(kinds[ki], &c.kind));
        DLM_CHECK((c.kind == DLM_SAMPLER_AR) == is_ar, DLM_ERR_ARG,
                  "sampler %s needs %s model; %s was trained with objective %s", kinds[ki],
                  is_ar ? "a masked-diffusion" : "an AR", info->path,
                  dlm_objective_name(info->cfg.objective.kind));
        for (int si = 0; si < (c.kind == DLM_SAMPLER_AR ? 1 : n_steps); si++) {
            long long S = T;
            DLM_CALL(dlm_args_int64("--steps", stepl[si], 1, INT_MAX, &S));
            c.steps = (int)S, c.cache = !o->no_cache, c.temperature = o->temperature;
            c.top_k = o->top_k, c.top_p = o->top_p, c.length = L, c.block = block, c.seed = o->seed;
            DLM_CHECK(*n_groups < max, DLM_ERR_ARG, "more than %d sampler and step groups", max);
            cfgs[(*n_groups)++] = c;
        }
    }
    return DLM_OK;
}

#define MAX_GROUPS (8 * 16)

/* Everything one rank reads and builds for itself before sampling. Local:
 * the caller agrees on the verdict. */
static dlm_status open_local(const dlm_sample_driver_options *o, const char *path,
                             const char *spath, run_ctx *r, dlm_ckpt_info *info,
                             dlm_ckpt_info *sinfo, int *use_ema, int32_t **given,
                             uint8_t **fixed, dlm_sample_config *cfgs, int *n_groups, int *block)
{
    int root = r->grid->rank == 0;
    DLM_CALL(dlm_tp_create(r->grid->tp_comm, &r->tp));
    DLM_CALL(load(path, o->weights, root, r->grid, r->tp, info, &r->m, use_ema, &r->hash));
    int T = r->m->cfg.seq_len;
    int L = r->L = o->length ? o->length : T;
    *block = o->block ? o->block : L <= T ? L : T / 2;
    DLM_CALL(plan_groups(o, info, T, L, *block, cfgs, MAX_GROUPS, n_groups));
    if (o->score) DLM_CALL(open_scorer(o, spath, root, r, sinfo));
    *given = calloc((size_t)L, sizeof **given);
    *fixed = calloc((size_t)L, 1);
    DLM_CHECK(*given && *fixed, DLM_ERR_NOMEM, "conditioning for %d tokens", L);
    int any_given;
    DLM_CALL(conditioning(o, r->m, L, *given, *fixed, &any_given));
    r->given = *given, r->fixed = any_given ? *fixed : NULL;
    DLM_CALL(dlm_dp_create(r->grid->dp_comm, NULL, 0, &r->dp));
    if (root && o->out && !(r->text = fopen(o->out, "w")))
        DLM_CHECK(0, DLM_ERR_IO, "cannot write --out %s: %s", o->out, strerror(errno));
    return DLM_OK;
}

/* Every rank must sample the same weights (and score with the same): a
 * checkpoint path that means another file on another node would give
 * samples that are nobody's. The hash is of the whole tensors read, so tp
 * ranks compare too. Collective; the verdict is agreed. */
static dlm_status check_same_models(const run_ctx *r)
{
    DLM_CALL(dlm_grid_check_same(r->grid->world, r->hash,
                                 "weights: every rank must see the same checkpoint files"));
    return DLM_OK;
}

dlm_status dlm_sample_driver_run(const dlm_grid *grid, const dlm_sample_driver_options *o,
                                 FILE *report)
{
    int root = grid->rank == 0;
    char path[4096], spath[4096] = "";
    DLM_CALL(dlm_eval_resolve_checkpoint(grid, o->ckpt, path, sizeof path));
    if (o->score) DLM_CALL(dlm_eval_resolve_checkpoint(grid, o->score, spath, sizeof spath));
    dlm_ckpt_info info, sinfo;
    memset(&info, 0, sizeof info);
    memset(&sinfo, 0, sizeof sinfo);
    run_ctx r = {.o = o, .grid = grid};
    int32_t *given = NULL;
    uint8_t *fixed = NULL;
    dlm_sample_config cfgs[MAX_GROUPS];
    dlm_sample_group groups[MAX_GROUPS];
    memset(groups, 0, sizeof groups);
    int n_groups = 0, block = 0, use_ema = 0;
    dlm_status st = open_local(o, path, spath, &r, &info, &sinfo, &use_ema, &given, &fixed, cfgs,
                               &n_groups, &block);
    DLM_CALL_GOTO(st, dlm_agree(grid->world, st), done);
    DLM_CALL_GOTO(st, check_same_models(&r), done);
    if (root && !r.text) r.text = report;
    if (grid->dp > 1)
        DLM_INFO("data parallel over %d ranks: %d samples per group shared, gathered in order",
                 grid->dp, o->n);
    if (grid->tp > 1)
        DLM_INFO("tensor parallel over %d ranks: every layer split, whole logits gathered for "
                 "each draw", grid->tp);
    if (grid->pp > 1)
        DLM_INFO("pipeline over %d stages: each network evaluation through them, the logits "
                 "sent to every stage (the AR sampler without its key/value cache)", grid->pp);
    int L = r.L, T = r.m->cfg.seq_len;
    char table[8192];
    int tl = snprintf(table, sizeof table,
                      "%-11s %6s %10s %10s %9s %9s %8s\n", "sampler", "S", "NFE/sample",
                      "tokens/s", "gen_ppl", "entropy", "rep4");
    for (int i = 0; i < n_groups; i++) {
        dlm_sample_group *g = &groups[i];
        g->prompt = o->prompt, g->infill = o->infill;
        g->scored_with = r.scorer ? sinfo.path : "";
        DLM_CALL_GOTO(st, run_group(&r, &cfgs[i], g, table, sizeof table, &tl), done);
    }
    if (root) {
        fflush(r.text);
        fprintf(report,
                "%s: step %lld, %s weights, %d samples of %d tokens (T = %d, block %d)%s%s\n%s",
                info.path, (long long)info.step, use_ema ? "ema" : "raw", o->n, L, T, block,
                r.scorer ? ", scored by " : "", r.scorer ? sinfo.path : "", table);
    }
    if (!o->h5 || strcmp(o->h5, "none")) {
        char h5[4200];
        if (o->h5) snprintf(h5, sizeof h5, "%s", o->h5);
        else {
            const char *slash = strrchr(info.path, '/');
            if (!slash) snprintf(h5, sizeof h5, "samples.h5");
            else snprintf(h5, sizeof h5, "%.*s/samples.h5", (int)(slash - info.path), info.path);
        }
        dlm_sample_file_attrs fa = {info.path, use_ema ? "ema" : "raw", info.config_text,
                                    info.step};
        st = root ? dlm_samplefile_write(h5, &fa, groups, n_groups) : DLM_OK;
        DLM_CALL_GOTO(st, dlm_agree(grid->world, st), done);
        if (root) fprintf(report, "wrote %s\n", h5);
    }
done:
    if (r.text && r.text != report) fclose(r.text);
    for (int i = 0; i < n_groups; i++) {
        free((void *)groups[i].tokens);
        free((void *)groups[i].nfe);
        free((void *)groups[i].seconds);
    }
    free(given), free(fixed);
    dlm_dp_destroy(&r.dp);
    dlm_acts_destroy(&r.scorer_acts);
    dlm_model_destroy(&r.scorer);
    dlm_model_destroy(&r.m);
    dlm_tp_destroy(&r.tp);
    dlm_eval_ckpt_info_free(&sinfo);
    dlm_eval_ckpt_info_free(&info);
    DLM_CALL(st);
    return DLM_OK;
}
