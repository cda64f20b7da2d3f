/* The evaluation session: models opened against one chunk set, scored in
 * blocks of K with the chunks shared over the ranks and the samples
 * gathered in chunk order, the paired difference, the adaptive-K stop rule
 * with its variance split, the training throughput from run.h5, and the
 * eval.h5 records. */
#define _GNU_SOURCE
#include "eval/session.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/mpicall.h"
#include "eval/evalfile.h"
#include "io/runfile.h"
#include "io/synthetic.h"

void dlm_eval_options_default(dlm_eval_options *o)
{
    memset(o, 0, sizeof *o);
    o->chunks = 256;
    o->max_K = 1024;
    o->nodes = 16;
    o->steps = 1000;
    o->seed = 1;
    o->estimator = "exact-k";
}

dlm_status dlm_eval_options_check(dlm_eval_options *o)
{
    dlm_estimator_kind k;
    DLM_CALL(dlm_estimator_parse(o->estimator, &k));
    DLM_CHECK(k != DLM_EST_AR, DLM_ERR_ARG,
              "--estimator ar: AR models are scored exactly whatever the estimator; choose "
              "one of exact-k, mc-t, quadrature, discrete for diffusion models");
    if (!o->K) o->K = k == DLM_EST_QUADRATURE ? o->nodes : 16;
    dlm_estimator e; /* settings checked before any work (eps and T come later from the run) */
    dlm_estimator_default(&e, k);
    e.K = e.strata = o->K;
    e.nodes = o->nodes;
    e.steps = o->steps;
    if (o->eps > 0) e.schedule.eps = o->eps;
    DLM_CALL(dlm_estimator_check(&e, 1));
    if (o->schedule) DLM_CALL(dlm_schedule_parse(o->schedule, &e.schedule.kind));
    if (o->data_format) {
        dlm_shard_format fmt;
        DLM_CALL(dlm_shard_format_parse(o->data_format, &fmt));
    }
    DLM_CHECK(!o->target_se || o->max_K >= o->K, DLM_ERR_ARG,
              "--max-K (%d) must be at least --K (%d)", o->max_K, o->K);
    return DLM_OK;
}

const char *dlm_eval_model_objective(const dlm_eval_model *em)
{
    return dlm_objective_name(em->info.cfg.objective.kind);
}

int dlm_eval_model_is_ar(const dlm_eval_model *em)
{
    return em->info.cfg.objective.kind == DLM_OBJECTIVE_AR;
}

double dlm_eval_model_tokens_per_s(const dlm_eval_model *em)
{
    return em->seconds > 0 ? (double)em->tokens / em->seconds : NAN;
}

static void model_free(dlm_eval_model *em)
{
    dlm_evaluator_destroy(&em->ev);
    dlm_model_destroy(&em->m);
    dlm_eval_ckpt_info_free(&em->info);
    free(em->res);
    free(em->chunk_values);
    memset(em, 0, sizeof *em);
}

/* path: a checkpoint file (already resolved from a run folder). */
static dlm_status open_model(const dlm_eval_options *o, const char *path, const dlm_chunk_set *cs,
                             size_t ld, const dlm_grid *grid, dlm_tp *tp, dlm_eval_model *em)
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
    em->use_ema = o->weights ? !strcmp(o->weights, "ema") : em->info.has_ema;
    int batch = o->batch ? o->batch : c->train.micro_batch;
    DLM_CALL(dlm_eval_model_load(&em->info, cs->vocab_size, cs->separator_id, em->use_ema, tp,
                                 grid->pp_rank, grid->pp, &em->m, &em->hash));
    DLM_CALL(dlm_evaluator_create(em->m, batch, &em->ev));
    if (grid->pp > 1) dlm_evaluator_set_pipeline(em->ev, grid->pp_comm);
    /* the estimator */
    dlm_estimator_kind kind;
    DLM_CALL(dlm_estimator_parse(o->estimator, &kind));
    if (dlm_eval_model_is_ar(em)) kind = DLM_EST_AR;
    dlm_estimator *e = &em->est;
    dlm_estimator_default(e, kind);
    e->seed = o->seed;
    if (kind != DLM_EST_AR) e->K = e->strata = o->K;
    dlm_schedule_default(&e->schedule, c->objective.schedule);
    e->schedule.eps = c->objective.eps;
    e->schedule.power = c->objective.power;
    if (o->schedule) DLM_CALL(dlm_schedule_parse(o->schedule, &e->schedule.kind));
    if (o->eps > 0) e->schedule.eps = o->eps;
    e->nodes = o->nodes;
    e->steps = o->steps;
    DLM_CALL(dlm_estimator_check(e, cs->T));
    em->ld = kind == DLM_EST_AR ? 1 : ld;
    em->res = calloc((size_t)cs->n * em->ld, sizeof *em->res);
    em->chunk_values = calloc((size_t)cs->n, sizeof *em->chunk_values);
    DLM_CHECK(em->res && em->chunk_values, DLM_ERR_NOMEM,
              "results for %lld chunks x %zu samples", (long long)cs->n, em->ld);
    return DLM_OK;
}

/* A sample result as doubles for the gather: value, coord, ce_sum and
 * n_masked (an int32, exact in a double). */
#define RESULT_DOUBLES 4

static void pack(const dlm_sample_result *res, size_t ld, int64_t n, int J, double *out)
{
    for (int64_t c = 0; c < n; c++)
        for (int j = 0; j < J; j++, out += RESULT_DOUBLES) {
            const dlm_sample_result *r = res + (size_t)c * ld + (size_t)j;
            out[0] = r->value, out[1] = r->coord, out[2] = r->ce_sum, out[3] = r->n_masked;
        }
}

static void unpack(const double *in, int64_t n, int J, dlm_sample_result *res, size_t ld)
{
    for (int64_t c = 0; c < n; c++)
        for (int j = 0; j < J; j++, in += RESULT_DOUBLES)
            res[(size_t)c * ld + (size_t)j] = (dlm_sample_result){
                .value = in[0], .coord = in[1], .ce_sum = in[2], .n_masked = (int32_t)in[3]};
}

/* Scores samples [K, K_new) of every chunk (AR: its one sample, once): this
 * rank its share of the chunks (dlm_evaluator_split: the one-rank run's
 * forward passes, whole), then every rank gathers every chunk's samples in
 * chunk order, so what the statistics see is the one-rank run's arrays.
 * One rank gets the same chunks and gathers from itself. Collective. */
static dlm_status score_to(dlm_eval_session *s, dlm_eval_model *em, int K_new)
{
    const dlm_chunk_set *cs = &s->cs;
    if (em->est.kind == DLM_EST_AR) K_new = 1;
    if (K_new <= em->K) return DLM_OK;
    int p = dlm_dp_size(s->dp), r = dlm_dp_rank(s->dp), J = K_new - em->K;
    int64_t *bounds = malloc(((size_t)p + 1) * sizeof *bounds);
    int *counts = malloc((size_t)p * sizeof *counts);
    double *mine = NULL, *all = NULL;
    int64_t c0 = 0, c1 = 0;
    dlm_status st = DLM_OK;
    DLM_CHECK_GOTO(st, bounds && counts, DLM_ERR_NOMEM, done, "gather counts for %d ranks", p);
    DLM_CHECK_GOTO(st, (double)cs->n * J * RESULT_DOUBLES <= INT_MAX, DLM_ERR_ARG, done,
                   "%lld chunks x %d samples: more results than one MPI gather holds (2^31 - 1 "
                   "doubles); score fewer chunks per run (--chunks) or grow K in smaller steps",
                   (long long)cs->n, J);
    DLM_CALL_GOTO(st, dlm_evaluator_split(em->ev, &em->est, cs, em->K, K_new, p, bounds), done);
    c0 = bounds[r], c1 = bounds[r + 1];
    mine = malloc(((size_t)(c1 - c0) * J * RESULT_DOUBLES + 1) * sizeof *mine);
    all = malloc(((size_t)cs->n * J * RESULT_DOUBLES + 1) * sizeof *all);
    DLM_CHECK_GOTO(st, mine && all, DLM_ERR_NOMEM, done, "results of %lld chunks x %d samples",
                   (long long)cs->n, J);
done:
    /* agreed before the first forward: under tp a rank that stopped here would leave its
     * group waiting in the forward's all-reduces */
    st = dlm_agree(s->grid->world, st);
    if (st == DLM_OK) {
        st = dlm_evaluator_run(em->ev, &em->est, cs, c0, c1, em->K, K_new,
                               em->res + (size_t)c0 * em->ld + em->K, em->ld);
        if (st == DLM_OK) pack(em->res + (size_t)c0 * em->ld + em->K, em->ld, c1 - c0, J, mine);
        /* a non-finite loss is the same on every rank of a tp group (they share every sum),
         * so it is agreed and keeps the others out of the gather; any other failure (memory)
         * under tp may have left the group's other ranks inside an all-reduce: returned
         * unagreed, it ends the job through MPI_Abort with this rank's message */
        if (st != DLM_OK && s->grid->tp > 1 && st != DLM_ERR_NUMERIC) {
            free(bounds), free(counts), free(mine), free(all);
            return st;
        }
        st = dlm_agree(s->grid->world, st);
    }
    if (st == DLM_OK) {
        for (int q = 0; q < p; q++) counts[q] = (int)(bounds[q + 1] - bounds[q]) * J * RESULT_DOUBLES;
        st = dlm_dp_allgatherv(s->dp, mine, counts, all);
    }
    if (st == DLM_OK) unpack(all, cs->n, J, em->res + em->K, em->ld);
    free(bounds), free(counts), free(mine), free(all);
    DLM_CALL(st);
    em->K = K_new;
    em->est.K = K_new; /* what the chunk values now average */
    dlm_chunk_means(em->res, cs->n, em->K, em->ld, em->chunk_values);
    dlm_estimate_from(em->chunk_values, cs->n, &em->nats);
    return DLM_OK;
}

/* Value of sample j of chunk c for the quantity K is grown for: A's, or
 * with --compare the paired difference A - B (an AR model's one sample
 * stands for all j). */
static double sample_value(const dlm_eval_model *A, const dlm_eval_model *B, int64_t c, int j)
{
    double v = A->res[(size_t)c * A->ld + (size_t)(A->K > 1 ? j : 0)].value;
    if (B) v -= B->res[(size_t)c * B->ld + (size_t)(B->K > 1 ? j : 0)].value;
    return v;
}

/* Splits the variance of the chunk means (var_means, with K samples each)
 * into a part between chunks and a part within them (mask noise, falling
 * as 1/K): within is the mean over chunks of the samples' variance. */
static void variance_parts(const dlm_eval_model *A, const dlm_eval_model *B, int64_t n, int K,
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

static void paired(const dlm_eval_model *a, const dlm_eval_model *b, int64_t n, double *diff,
                   dlm_estimate *d)
{
    for (int64_t c = 0; c < n; c++) diff[c] = a->chunk_values[c] - b->chunk_values[c];
    dlm_estimate_difference(a->chunk_values, b->chunk_values, n, d);
}

static dlm_status open_chunks(const dlm_eval_options *o, const dlm_ckpt_info *info,
                              dlm_chunk_set *cs)
{
    const dlm_run_config *c = &info->cfg;
    int T = c->model.seq_len;
    dlm_shard_format fmt = c->data.format;
    if (o->data_format) DLM_CALL(dlm_shard_format_parse(o->data_format, &fmt));
    const char *paths[DLM_CONFIG_MAX_PATHS];
    int n = 0;
    if (o->n_data) {
        for (int i = 0; i < o->n_data; i++) paths[n++] = o->data[i];
    } else if (c->data.source == DLM_DATA_SYNTHETIC) {
        dlm_iid_source src;
        dlm_iid_source_default(&src, c->train.seed);
        int64_t nc = o->chunks > 0 ? o->chunks : 256;
        DLM_CALL(dlm_chunk_set_from_iid(&src, T, nc, cs));
        return DLM_OK;
    } else {
        DLM_CHECK(c->data.n_val_paths > 0, DLM_ERR_ARG,
                  "%s: the run had no data.val; give the shards to score with --data",
                  info->path);
        for (int i = 0; i < c->data.n_val_paths; i++) paths[n++] = c->data.val_paths[i];
    }
    DLM_CALL(dlm_chunk_set_from_shards(paths, n, fmt, T, o->chunks, cs));
    return DLM_OK;
}

/* What every rank reads for itself: the checkpoints' configs and weights
 * and the chunks. Nothing collective, so a failure is agreed by the caller. */
static dlm_status open_local(dlm_eval_session *s, const char *path_a, const char *path_b)
{
    const dlm_eval_options *o = &s->opt;
    DLM_CALL(dlm_eval_ckpt_info(path_a, &s->a.info));
    dlm_status st = open_chunks(o, &s->a.info, &s->cs);
    dlm_eval_ckpt_info_free(&s->a.info);
    DLM_CALL(st);
    s->ld = (size_t)(o->target_se > 0 ? o->max_K / o->K * o->K : o->K);
    DLM_CALL(dlm_tp_create(s->grid->tp_comm, &s->tp));
    DLM_CALL(open_model(o, path_a, &s->cs, s->ld, s->grid, s->tp, &s->a));
    if (o->compare) DLM_CALL(open_model(o, path_b, &s->cs, s->ld, s->grid, s->tp, &s->b));
    s->diff = calloc((size_t)s->cs.n, sizeof *s->diff);
    DLM_CHECK(s->diff != NULL, DLM_ERR_NOMEM, "differences for %lld chunks", (long long)s->cs.n);
    DLM_CALL(dlm_dp_create(s->grid->dp_comm, NULL, 0, &s->dp));
    return DLM_OK;
}

/* Every rank must score the same chunks with the same weights, or the
 * gathered numbers are nobody's (a relative path or a copy of the data
 * that differs between nodes). Collective; the verdict is agreed. */
static dlm_status check_same_inputs(const dlm_eval_session *s)
{
    uint64_t h = dlm_fnv1a(DLM_FNV_OFFSET, &s->cs.hash, sizeof s->cs.hash);
    h = dlm_fnv1a(h, &s->a.hash, sizeof s->a.hash); /* of the whole weights, so tp ranks compare */
    if (s->opt.compare) h = dlm_fnv1a(h, &s->b.hash, sizeof s->b.hash);
    DLM_CALL(dlm_grid_check_same(s->grid->world, h,
                                 "chunks or weights: every rank must see the same checkpoint and "
                                 "data files"));
    return DLM_OK;
}

dlm_status dlm_eval_session_create(const dlm_grid *grid, const dlm_eval_options *o,
                                   dlm_eval_session **out)
{
    *out = NULL;
    dlm_eval_session *s = calloc(1, sizeof *s);
    dlm_status st = s ? DLM_OK
                      : dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                                       "an evaluation session");
    DLM_CALL(dlm_agree(grid->world, st));
    s->opt = *o;
    s->grid = grid;
    s->root = grid->rank == 0;
    char path_a[4096], path_b[4096];
    /* each phase ends in an agreement, so no rank waits in a collective for one that failed */
    DLM_CALL_GOTO(st, dlm_eval_resolve_checkpoint(grid, o->ckpt, path_a, sizeof path_a), fail);
    if (o->compare)
        DLM_CALL_GOTO(st, dlm_eval_resolve_checkpoint(grid, o->compare, path_b, sizeof path_b),
                      fail);
    st = open_local(s, path_a, path_b);
    DLM_CALL_GOTO(st, dlm_agree(grid->world, st), fail);
    const dlm_chunk_set *cs = &s->cs;
    dlm_chunk_set_hash_text(cs, s->hash, sizeof s->hash);
    DLM_CALL_GOTO(st, check_same_inputs(s), fail);
    DLM_INFO("data: %s: %lld of %lld chunks of %d tokens, chunk set %s", cs->source,
             (long long)cs->n, (long long)cs->available, cs->T, s->hash);
    if (grid->dp > 1)
        DLM_INFO("data parallel over %d ranks: whole chunks each, gathered in chunk order",
                 grid->dp);
    if (grid->tp > 1)
        DLM_INFO("tensor parallel over %d ranks: every layer split, the cross-entropy "
                 "vocabulary-parallel", grid->tp);
    if (grid->pp > 1)
        DLM_INFO("pipeline over %d stages: the blocks split by FLOPs, each forward through "
                 "them", grid->pp);
    if (cs->n < 2 && s->root)
        DLM_WARN("only one chunk: no standard error or interval (give more data or --chunks)");
    s->target_reached = 1;
    *out = s;
    return DLM_OK;
fail:
    dlm_eval_session_destroy(&s);
    return st;
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

/* After scoring K samples per chunk: 1 to double K for o->target_se, 0 to
 * stop (the target reached, or out of reach: then a warning from rank 0). */
static int more_samples(dlm_eval_session *s, int K, int *stalls, double *prev_se)
{
    const dlm_eval_options *o = &s->opt;
    const dlm_chunk_set *cs = &s->cs;
    const dlm_eval_model *A = &s->a, *B = o->compare ? &s->b : NULL;
    const dlm_estimate *x = B ? &s->d : &A->nats;
    size_t ld = s->ld;
    int diffusion = !dlm_eval_model_is_ar(A) || (B && !dlm_eval_model_is_ar(B));
    if (!(o->target_se > 0) || !diffusion) return 0;
    DLM_INFO("K = %d: %s %.4f, standard error %.4f (target %.4g)", K,
             B ? "difference" : "estimate", x->mean, x->se, o->target_se);
    if (x->se <= o->target_se) return 0;
    /* stop early when even K = max-K would clearly miss the target (the chunks' own
     * spread). The split of the variance is noisy (heavy-tailed for mc-t), so only
     * after doubling K twice in a row failed to cut the standard error by 10%. */
    *stalls = x->se > 0.9 * *prev_se ? *stalls + 1 : 0;
    *prev_se = x->se;
    double within = 0.0, between = 0.0, se_cap = 0.0;
    if (*stalls >= 2 && cs->n >= 2) {
        variance_parts(A, B, cs->n, K, x->sd * x->sd, &within, &between);
        se_cap = sqrt((between + within / (double)ld) / (double)cs->n);
    }
    if (2 * K > (int)ld || se_cap > 1.2 * o->target_se) {
        s->target_reached = 0;
        if (s->root)
            DLM_WARN("standard error %.4g is above the target %.4g at K = %d%s; more samples "
                     "per chunk cannot beat the spread between chunks: about %.0f chunks are "
                     "needed at this K (--chunks)",
                     x->se, o->target_se, K,
                     2 * K > (int)ld ? " (--max-K)" : ", and would be at --max-K too",
                     ceil((double)cs->n * (x->se / o->target_se) * (x->se / o->target_se)));
        return 0;
    }
    return 1;
}

/* The job's forward tokens and its slowest rank's time, for tokens/s. */
static dlm_status job_counters(const dlm_eval_session *s, dlm_eval_model *em)
{
    int64_t tokens;
    double seconds;
    dlm_evaluator_counters(em->ev, &tokens, &seconds);
    /* a tp group's ranks run the same tokens: counted once, over one rank per group */
    DLM_MPI(MPI_Allreduce(&tokens, &em->tokens, 1, MPI_INT64_T, MPI_SUM, s->grid->dp_comm));
    DLM_MPI(MPI_Allreduce(&seconds, &em->seconds, 1, MPI_DOUBLE, MPI_MAX, s->grid->world));
    return DLM_OK;
}

dlm_status dlm_eval_session_run(dlm_eval_session *s)
{
    dlm_eval_model *A = &s->a, *B = s->opt.compare ? &s->b : NULL;
    int K = s->opt.K, stalls = 0;
    double prev_se = INFINITY;
    for (;;) {
        DLM_CALL(score_to(s, A, K));
        if (B) {
            DLM_CALL(score_to(s, B, K));
            paired(A, B, s->cs.n, s->diff, &s->d);
        }
        int more = more_samples(s, K, &stalls, &prev_se);
        /* every rank decided from the same gathered bits; rank 0's verdict is
         * sent all the same, since a rank going on alone would wait in the
         * next gather for ever */
        DLM_MPI(MPI_Bcast(&more, 1, MPI_INT, 0, s->grid->world));
        if (!more) break;
        K *= 2;
    }
    DLM_CALL(job_counters(s, A));
    if (B) DLM_CALL(job_counters(s, B));
    /* for the report, which rank 0 prints */
    A->train_tokens_per_s = s->root ? training_tokens_per_s(A->info.path) : NAN;
    if (B) B->train_tokens_per_s = s->root ? training_tokens_per_s(B->info.path) : NAN;
    return DLM_OK;
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

static void group_name(const dlm_eval_model *em, char *out, size_t len)
{
    char st[200];
    stem(em->info.path, st, sizeof st);
    snprintf(out, len, "%s_%s_%s", st, dlm_estimator_name(em->est.kind),
             em->use_ema ? "ema" : "raw");
}

static dlm_eval_record record_of(const dlm_eval_model *em, const dlm_chunk_set *cs)
{
    return (dlm_eval_record){.group = em->group, .checkpoint = em->info.path,
                             .step = em->info.step, .objective = dlm_eval_model_objective(em),
                             .weights = em->use_ema ? "ema" : "raw",
                             .config_text = em->info.config_text, .est = &em->est, .cs = cs,
                             .samples = em->res, .K = em->K, .ld = em->ld,
                             .chunk_values = em->chunk_values, .nats = em->nats,
                             .tokens_per_s = dlm_eval_model_tokens_per_s(em)};
}

dlm_status dlm_eval_session_write(dlm_eval_session *s)
{
    const dlm_eval_options *o = &s->opt;
    s->out[0] = '\0';
    if (o->no_out) return DLM_OK;
    if (o->out) {
        snprintf(s->out, sizeof s->out, "%s", o->out);
    } else { /* "<dir>/eval.h5" for the checkpoint's folder */
        const char *ckpt = s->a.info.path, *slash = strrchr(ckpt, '/');
        if (!slash) snprintf(s->out, sizeof s->out, "eval.h5");
        else snprintf(s->out, sizeof s->out, "%.*s/eval.h5", (int)(slash - ckpt), ckpt);
    }
    dlm_eval_model *A = &s->a, *B = &s->b;
    group_name(A, A->group, sizeof A->group);
    dlm_eval_record recs[2] = {record_of(A, &s->cs)};
    dlm_eval_pair pair = {0};
    char pair_group[700];
    if (o->compare) {
        group_name(B, B->group, sizeof B->group);
        if (!strcmp(A->group, B->group)) strncat(B->group, "_b", sizeof B->group - strlen(B->group) - 1);
        recs[1] = record_of(B, &s->cs);
        snprintf(pair_group, sizeof pair_group, "compare_%s_vs_%s", A->group, B->group);
        pair = (dlm_eval_pair){.group = pair_group, .a = A->group, .b = B->group, .diff = s->diff,
                               .d = s->d};
    }
    dlm_status st = DLM_OK;
    if (s->root) st = dlm_evalfile_write(s->out, recs, o->compare ? 2 : 1, o->compare ? &pair : NULL);
    DLM_CALL(dlm_agree(s->grid->world, st));
    return DLM_OK;
}

void dlm_eval_session_destroy(dlm_eval_session **s)
{
    if (!s || !*s) return;
    free((*s)->diff);
    dlm_dp_destroy(&(*s)->dp);
    dlm_chunk_set_free(&(*s)->cs);
    model_free(&(*s)->a);
    model_free(&(*s)->b);
    dlm_tp_destroy(&(*s)->tp);
    free(*s);
    *s = NULL;
}
