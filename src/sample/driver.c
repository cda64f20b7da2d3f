/* dlm-sample's run: the models, the conditioning from --prompt and
 * --infill, one group of samples per sampler and step count, the text, the
 * table of measures and samples.h5. */
#include "sample/driver.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/args.h"
#include "core/log.h"
#include "eval/evalmodel.h"
#include "sample/sample.h"
#include "sample/samplefile.h"

void dlm_sample_driver_options_default(dlm_sample_driver_options *o)
{
    memset(o, 0, sizeof *o);
    o->n = 4, o->temperature = 1.0, o->top_p = 1.0, o->seed = 1;
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
    dlm_model *m, *scorer;
    dlm_acts *scorer_acts;
    int L;
    const int32_t *given;
    const uint8_t *fixed; /* NULL without conditioning */
    FILE *text;
} run_ctx;

/* Draws the o->n samples of one sampler config into g (its buffers
 * allocated here, freed by the caller) and adds its row to the table. */
static dlm_status run_group(const run_ctx *r, const dlm_sample_config *c, dlm_sample_group *g,
                            char *table, size_t cap, int *tl)
{
    const dlm_sample_driver_options *o = r->o;
    int n = o->n, L = r->L;
    g->cfg = *c, g->n = n;
    int32_t *gt = malloc((size_t)n * L * sizeof *gt);
    int64_t *gn = malloc((size_t)n * 2 * sizeof *gn);
    double *gd = malloc((size_t)n * 4 * sizeof *gd);
    g->tokens = gt, g->nfe = gn, g->steps = gn + n, g->seconds = gd;
    g->entropy = gd + n, g->repeat4 = gd + 2 * n, g->nll = gd + 3 * n;
    if (!gt || !gn || !gd) {
        free(gt), free(gn), free(gd);
        g->tokens = NULL, g->nfe = NULL, g->seconds = NULL;
        DLM_CHECK(0, DLM_ERR_NOMEM, "sample buffers");
    }
    dlm_sampler *smp;
    DLM_CALL(dlm_sampler_create(r->m, c, &smp));
    dlm_status st = DLM_OK;
    double secs = 0, nll_sum = 0, mean_nfe = 0, mean_ent = 0, mean_rep = 0;
    for (int k = 0; k < n && st == DLM_OK; k++) {
        dlm_sample_stats ss;
        int32_t *x = gt + (int64_t)k * L;
        st = dlm_sampler_run(smp, (uint64_t)k, r->given, r->fixed, x, &ss);
        if (st != DLM_OK) break;
        gn[k] = ss.nfe, gn[n + k] = ss.steps, gd[k] = ss.seconds;
        gd[n + k] = dlm_sample_unigram_entropy(x, L);
        gd[2 * n + k] = dlm_sample_repeat_rate(x, L, 4);
        gd[3 * n + k] = NAN;
        if (r->scorer) {
            st = dlm_sample_ar_nll(r->scorer, r->scorer_acts, x, L, &gd[3 * n + k]);
            nll_sum += gd[3 * n + k];
        }
        secs += ss.seconds, mean_nfe += (double)ss.nfe / n;
        mean_ent += gd[n + k] / n, mean_rep += gd[2 * n + k] / n;
        fprintf(r->text, "=== sample %d (%s, S=%d, %lld NFE) ===\n", k, dlm_sampler_name(c->kind),
                c->kind == DLM_SAMPLER_AR ? L : c->steps, (long long)ss.nfe);
        write_text(r->text, r->m, x, L);
    }
    dlm_sampler_destroy(&smp);
    DLM_CALL(st);
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

/* The scoring model: AR, with the sampled model's vocabulary. */
static dlm_status open_scorer(const dlm_sample_driver_options *o, const dlm_model *m,
                              dlm_ckpt_info *sinfo, dlm_model **scorer, dlm_acts **acts)
{
    int s_ema;
    DLM_CALL(load(o->score, NULL, sinfo, scorer, &s_ema));
    DLM_CHECK(sinfo->cfg.objective.kind == DLM_OBJECTIVE_AR &&
                  (*scorer)->cfg.vocab_size == m->cfg.vocab_size,
              DLM_ERR_ARG,
              "--score-with %s: needs an AR model with the sampled model's vocabulary (%d ids); "
              "it is %s with %d ids", o->score, m->cfg.vocab_size,
              dlm_objective_name(sinfo->cfg.objective.kind), (*scorer)->cfg.vocab_size);
    DLM_CALL(dlm_acts_create(*scorer, 1, 0, acts));
    return DLM_OK;
}

dlm_status dlm_sample_driver_run(const dlm_sample_driver_options *o, FILE *report)
{
    dlm_ckpt_info info, sinfo;
    memset(&sinfo, 0, sizeof sinfo);
    dlm_model *m = NULL;
    int use_ema = 0;
    DLM_CALL(load(o->ckpt, o->weights, &info, &m, &use_ema));
    int is_ar = info.cfg.objective.kind == DLM_OBJECTIVE_AR;
    int T = m->cfg.seq_len;
    run_ctx r = {.o = o, .m = m, .text = report};
    dlm_status st = DLM_OK;
    int32_t *given = NULL;
    uint8_t *fixed = NULL;
    dlm_sample_group *groups = NULL;

    char kinds[8][32], stepl[16][32];
    int n_kinds = 0, n_steps = 0;
    DLM_CALL_GOTO(st, split_list(o->samplers ? o->samplers : is_ar ? "ar" : "ancestral", kinds, 8,
                                 &n_kinds), done);
    if (o->steps) DLM_CALL_GOTO(st, split_list(o->steps, stepl, 16, &n_steps), done);
    else snprintf(stepl[0], 32, "%d", T), n_steps = 1;
    int L = r.L = o->length ? o->length : T;
    int block = o->block ? o->block : L <= T ? L : T / 2;
    if (o->score) DLM_CALL_GOTO(st, open_scorer(o, m, &sinfo, &r.scorer, &r.scorer_acts), done);
    given = calloc((size_t)L, sizeof *given);
    fixed = calloc((size_t)L, 1);
    groups = calloc((size_t)n_kinds * n_steps, sizeof *groups);
    if (!given || !fixed || !groups) {
        st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__, "%d samples of %d tokens",
                            o->n, L);
        goto done;
    }
    int any_given;
    DLM_CALL_GOTO(st, conditioning(o, m, L, given, fixed, &any_given), done);
    r.given = given, r.fixed = any_given ? fixed : NULL;
    if (o->out && !(r.text = fopen(o->out, "w"))) {
        st = dlm_error_push(DLM_ERR_IO, __FILE__, __LINE__, __func__, "cannot write --out %s: %s",
                            o->out, strerror(errno));
        r.text = report;
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
            DLM_CALL_GOTO(st, dlm_args_int64("--steps", stepl[si], 1, INT_MAX, &S), done);
            c.steps = (int)S, c.cache = !o->no_cache, c.temperature = o->temperature;
            c.top_k = o->top_k, c.top_p = o->top_p, c.length = L, c.block = block, c.seed = o->seed;
            dlm_sample_group *g = &groups[n_groups++];
            g->prompt = o->prompt, g->infill = o->infill;
            g->scored_with = r.scorer ? sinfo.path : "";
            DLM_CALL_GOTO(st, run_group(&r, &c, g, table, sizeof table, &tl), done);
        }
    }
    fflush(r.text);
    fprintf(report, "%s: step %lld, %s weights, %d samples of %d tokens (T = %d, block %d)%s%s\n%s",
            info.path, (long long)info.step, use_ema ? "ema" : "raw", o->n, L, T, block,
            r.scorer ? ", scored by " : "", r.scorer ? sinfo.path : "", table);
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
        DLM_CALL_GOTO(st, dlm_samplefile_write(h5, &fa, groups, n_groups), done);
        fprintf(report, "wrote %s\n", h5);
    }
done:
    if (r.text != report) fclose(r.text);
    if (groups)
        for (int i = 0; i < n_kinds * n_steps; i++) {
            free((void *)groups[i].tokens);
            free((void *)groups[i].nfe);
            free((void *)groups[i].seconds);
        }
    free(groups), free(given), free(fixed);
    dlm_acts_destroy(&r.scorer_acts);
    dlm_model_destroy(&r.scorer);
    dlm_model_destroy(&m);
    dlm_eval_ckpt_info_free(&sinfo);
    dlm_eval_ckpt_info_free(&info);
    DLM_CALL(st);
    return DLM_OK;
}
