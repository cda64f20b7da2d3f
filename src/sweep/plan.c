/* The run table of a sweep (see plan.h). */
#define _GNU_SOURCE /* realpath */
#include "sweep/plan.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "io/h5.h"
#include "io/loader.h"
#include "model/model.h"
#include "sweep/recipe.h"
#include "sweep/table.h"

#define N_DEFINITION "N = non-embedding parameters (all but the token embedding and the LM head)"
#define SIX_N_DEFINITION "FLOPs/token = 6 N (Kaplan; SMDM)"

static void shape_config(const dlm_sweep_plan *p, int L, int d, dlm_model_config *m)
{
    dlm_model_config_bytes(m, L, d, d / p->cfg.shape.head_dim, p->base.model.seq_len);
    dlm_model_config_vocab(m, p->vocab_size, p->bos_id);
}

/* The shape for a target N: the depth from the aspect (N ~ 12 L d^2 =
 * 12 aspect^2 L^3, rounded, within [min_layers, max_layers]), then the
 * multiple of head_dim whose N is nearest the target in log. Depth and
 * width so grow together with N. */
static void pick_shape(const dlm_sweep_plan *p, double target, int *L_out, int *d_out)
{
    const dlm_sweep_config *c = &p->cfg;
    int hd = c->shape.head_dim;
    long L = lround(cbrt(target / (12.0 * c->shape.aspect * c->shape.aspect)));
    if (L < c->shape.min_layers) L = c->shape.min_layers;
    if (L > c->shape.max_layers) L = c->shape.max_layers;
    double dc = sqrt(target / (12.0 * (double)L)), best = INFINITY;
    *L_out = (int)L, *d_out = hd;
    for (int k = (int)floor(dc / hd) - 1; k <= (int)ceil(dc / hd) + 1; k++) {
        if (k < 1) continue;
        dlm_model_config m;
        shape_config(p, (int)L, k * hd, &m);
        double err = fabs(log((double)dlm_model_nonembedding_params(&m) / target));
        if (err < best) best = err, *d_out = k * hd;
    }
}

static int is_mdlm(const dlm_sweep_plan *p, int objective)
{
    return strcmp(p->cfg.sweep.objectives[objective], "ar") != 0;
}

/* "1e12", "3e12", "1.5e13": a budget as names and tables show it. */
static void budget_text(double C, char *buf, size_t n)
{
    char t[32];
    snprintf(t, sizeof t, "%.6g", C);
    size_t j = 0;
    for (size_t i = 0; t[i] && j + 1 < n; i++) {
        if (t[i] == '+') continue;
        if (t[i] == '0' && i > 0 && (t[i - 1] == 'e' || t[i - 1] == '-') && t[i + 1]) continue;
        buf[j++] = t[i];
    }
    buf[j] = '\0';
}

static void run_name(const dlm_sweep_plan *p, const dlm_sweep_run *r, char *buf, size_t n)
{
    char obj[64], C[32];
    snprintf(obj, sizeof obj, "%s", p->cfg.sweep.objectives[r->objective]);
    for (char *s = obj; *s; s++)
        if (*s == '/') *s = '-';
    budget_text(r->budget, C, sizeof C);
    snprintf(buf, n, "%s_C%s_L%d-d%d_s%d", obj, C, r->layers, r->width, r->seed);
}

static dlm_status plan_one(dlm_sweep_plan *p, dlm_sweep_run *r)
{
    const dlm_sweep_config *c = &p->cfg;
    dlm_model_config m;
    shape_config(p, r->layers, r->width, &m);
    r->heads = r->width / c->shape.head_dim;
    r->n_params = dlm_model_nonembedding_params(&m);
    r->engine_flops_per_token = dlm_model_flops_per_token(&m);
    r->flops_per_token = c->sweep.flops == DLM_FLOPS_6N ? 6.0 * (double)r->n_params : r->engine_flops_per_token;
    int64_t per_step = (int64_t)p->base.train.batch * p->base.model.seq_len;
    double steps = r->budget / r->flops_per_token / (double)per_step;
    DLM_CHECK(steps >= 0.5 && steps < INT_MAX, DLM_ERR_FORMAT,
              "%s: budget %g FLOPs gives %.3g steps of %lld tokens for N = %lld (L %d, d %d): "
              "a budget this %s cannot be run; change sweep.budgets or the base's train.batch",
              c->sweep.name, r->budget, steps, (long long)per_step, (long long)r->n_params, r->layers,
              r->width, steps < 0.5 ? "small" : "large");
    r->steps = (int64_t)llround(steps);
    r->tokens = r->steps * per_step;
    r->flops = (double)r->tokens * r->flops_per_token;
    r->engine_flops = (double)r->tokens * r->engine_flops_per_token;
    r->epochs = c->sweep.unique_tokens > 0 ? (double)r->tokens / (double)c->sweep.unique_tokens : 0.0;
    r->lr = c->lr.base * pow((double)r->n_params / c->lr.ref_params, -c->lr.exponent);
    int64_t w = llround(c->lr.warmup_fraction * (double)r->steps);
    r->warmup = (int)(w < c->lr.warmup_min ? c->lr.warmup_min : w);
    if (r->warmup >= r->steps) r->warmup = (int)(r->steps / 2); /* short runs: half the steps */
    int k = 0;
    for (int i = 0; i < c->layout.n_from_params; i++)
        if ((double)r->n_params >= c->layout.from_params[i]) k = i;
    r->dp = c->layout.dp[k], r->tp = c->layout.tp[k], r->pp = c->layout.pp[k];
    int ranks = r->dp * r->tp * r->pp;
    r->est_seconds = r->engine_flops / (c->time.flops_per_s * ranks) + c->time.overhead_s;
    r->time_limit_s = 60.0 * ceil(c->time.safety * r->est_seconds / 60.0);
    run_name(p, r, r->name, sizeof r->name);
    return DLM_OK;
}

static dlm_status load_base(dlm_sweep_plan *p)
{
    const dlm_sweep_config *c = &p->cfg;
    if (c->sweep.base[0]) {
        char path[2 * DLM_CONFIG_PATH_MAX + 2];
        if (c->sweep.base[0] == '/') snprintf(path, sizeof path, "%s", c->sweep.base);
        else snprintf(path, sizeof path, "%s/%s", c->file_dir, c->sweep.base);
        dlm_status st = dlm_run_config_load(path, NULL, 0, &p->base);
        DLM_CHECK(st == DLM_OK, st, "sweep %s: reading sweep.base = \"%s\"", c->sweep.name, c->sweep.base);
    } else {
        dlm_run_config_defaults(&p->base);
        p->base.data.source = DLM_DATA_SYNTHETIC;
    }
    /* the runs start from their own folders: data paths become absolute */
    for (int k = 0; k < 2; k++) {
        int n = k ? p->base.data.n_val_paths : p->base.data.n_train_paths;
        char(*paths)[DLM_CONFIG_PATH_MAX] = k ? p->base.data.val_paths : p->base.data.train_paths;
        for (int i = 0; i < n; i++) {
            char abs[PATH_MAX];
            DLM_CHECK(realpath(paths[i], abs) != NULL, DLM_ERR_IO,
                      "sweep %s: the base run's data.%s file %s: not found (paths are relative to "
                      "the folder dlm-sweep runs in)",
                      c->sweep.name, k ? "val" : "train", paths[i]);
            DLM_CHECK(strlen(abs) < DLM_CONFIG_PATH_MAX, DLM_ERR_IO,
                      "sweep %s: the base run's data.%s file %s: its absolute path is longer than %d characters",
                      c->sweep.name, k ? "val" : "train", abs, DLM_CONFIG_PATH_MAX - 1);
            snprintf(paths[i], DLM_CONFIG_PATH_MAX, "%s", abs);
        }
    }
    p->vocab_size = 257, p->bos_id = 256; /* bytes: the synthetic source's */
    if (p->base.data.source != DLM_DATA_SHARDS) return DLM_OK;
    DLM_CHECK(p->base.data.n_val_paths > 0 || c->eval.data[0], DLM_ERR_FORMAT,
              "sweep %s: the base run has no data.val and eval.data is empty: every run ends with an "
              "evaluation on held-out data; set eval.data or the base's data.val",
              c->sweep.name);
    int64_t total = 0;
    for (int i = 0; i < p->base.data.n_train_paths; i++) {
        dlm_shard s;
        dlm_shard_meta meta;
        DLM_CALL(dlm_dataset_open_scan(p->base.data.train_paths[i], p->base.data.format, DLM_SCAN_HEADER,
                                       &s, &meta));
        total += s.n_tokens;
        dlm_shard_close(&s);
        if (i == 0) p->vocab_size = meta.vocab_size, p->bos_id = meta.separator_id;
    }
    DLM_CHECK(c->sweep.unique_tokens <= (uint64_t)total, DLM_ERR_FORMAT,
              "sweep %s: sweep.unique_tokens = %llu, but the base run's data.train holds only %lld tokens",
              c->sweep.name, (unsigned long long)c->sweep.unique_tokens, (long long)total);
    return DLM_OK;
}

dlm_status dlm_sweep_plan_create(const dlm_sweep_config *cfg, dlm_sweep_plan **out)
{
    *out = NULL;
    dlm_sweep_plan *p = calloc(1, sizeof *p);
    DLM_CHECK(p != NULL, DLM_ERR_NOMEM, "a sweep plan");
    p->cfg = *cfg;
    const dlm_sweep_config *c = &p->cfg;
    dlm_status st = load_base(p);
    if (st != DLM_OK) goto fail;
    p->n = c->sweep.n_objectives * c->sweep.n_budgets * c->sweep.sizes * c->sweep.n_seeds;
    p->runs = calloc((size_t)p->n, sizeof *p->runs);
    if (!p->runs) {
        st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__, "a table of %d runs", p->n);
        goto fail;
    }
    int i = 0;
    for (int o = 0; o < c->sweep.n_objectives; o++)
        for (int b = 0; b < c->sweep.n_budgets; b++) {
            double C = c->sweep.budgets[b];
            double center = sqrt(C / (6.0 * c->center.tokens_per_param)) * (is_mdlm(p, o) ? c->center.mdlm_factor : 1.0);
            int first = i;
            for (int s = 0; s < c->sweep.sizes; s++) {
                double f = c->sweep.sizes > 1 ? (double)s / (c->sweep.sizes - 1) - 0.5 : 0.0;
                double target = center * pow(c->sweep.span, f);
                int L = 0, d = 0;
                pick_shape(p, target, &L, &d);
                for (int j = first; j < i; j += c->sweep.n_seeds)
                    if (p->runs[j].layers == L && p->runs[j].width == d) {
                        st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                            "sweep %s: %s at budget %g: target sizes %.3g and %.3g both "
                                            "become L %d, d %d; widen sweep.span, lower shape.head_dim "
                                            "or use fewer sweep.sizes",
                                            c->sweep.name, c->sweep.objectives[o], C, p->runs[j].target_params,
                                            target, L, d);
                        goto fail;
                    }
                for (int k = 0; k < c->sweep.n_seeds; k++, i++) {
                    dlm_sweep_run *r = &p->runs[i];
                    *r = (dlm_sweep_run){.objective = o, .budget = C, .size_index = s,
                                         .seed = c->sweep.seeds[k], .layers = L, .width = d,
                                         .target_params = target};
                    if ((st = plan_one(p, r)) != DLM_OK) goto fail;
                    dlm_run_config rc;
                    if ((st = dlm_sweep_run_config(p, i, &rc)) != DLM_OK) goto fail;
                }
            }
        }
    for (int a = 0; a < p->n; a++) /* seeds or budgets given twice */
        for (int b = a + 1; b < p->n; b++)
            if (strcmp(p->runs[a].name, p->runs[b].name) == 0) {
                st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                    "sweep %s: two runs would share the name and folder %s: sweep.seeds or "
                                    "sweep.budgets lists a value twice",
                                    c->sweep.name, p->runs[a].name);
                goto fail;
            }
    *out = p;
    return DLM_OK;
fail:
    dlm_sweep_plan_destroy(&p);
    return st;
}

void dlm_sweep_plan_destroy(dlm_sweep_plan **p)
{
    if (!*p) return;
    free((*p)->runs);
    free(*p);
    *p = NULL;
}

void dlm_sweep_run_dir(const dlm_sweep_plan *p, int i, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", p->cfg.sweep.dir, p->runs[i].name);
}

dlm_status dlm_sweep_run_config(const dlm_sweep_plan *p, int i, dlm_run_config *out)
{
    const dlm_sweep_run *r = &p->runs[i];
    const dlm_sweep_config *c = &p->cfg;
    dlm_run_config rc = p->base;
    DLM_CALL(dlm_recipe_apply(c->sweep.objectives[r->objective], &rc));
    rc.model.layers = r->layers, rc.model.width = r->width, rc.model.heads = r->heads;
    rc.train.steps = (int)r->steps;
    rc.train.min_lr = r->lr * (p->base.train.min_lr / p->base.train.lr); /* the base's ratio */
    rc.train.lr = r->lr;
    rc.train.warmup = r->warmup;
    rc.train.seed = (uint64_t)r->seed;
    int every = (int)((r->steps + c->sweep.checkpoints - 1) / c->sweep.checkpoints);
    rc.train.checkpoint_every = every;
    rc.train.log_every = r->steps >= 100 ? (int)(r->steps / 100) : 1;
    rc.train.val_every = r->steps >= 10 ? (int)(r->steps / 10) : 1;
    rc.train.threads = 0;
    rc.data.unique_tokens = c->sweep.unique_tokens;
    rc.parallel.dp = r->dp, rc.parallel.tp = r->tp, rc.parallel.pp = r->pp;
    rc.parallel.n_stage_layers = 0;
    int per_rank = rc.train.batch / r->dp;
    if (rc.train.batch % r->dp == 0 && (per_rank < rc.train.micro_batch || per_rank % rc.train.micro_batch))
        rc.train.micro_batch = per_rank;
    char dir[DLM_CONFIG_PATH_MAX + 200];
    dlm_sweep_run_dir(p, i, dir, sizeof dir);
    DLM_CHECK(strlen(dir) < DLM_CONFIG_PATH_MAX, DLM_ERR_FORMAT, "run folder %s: too long", dir);
    snprintf(rc.run.dir, sizeof rc.run.dir, "%s", dir);
    /* through the run schema's own checks, as dlm-train will read it */
    char *text = NULL;
    DLM_CALL(dlm_run_config_to_text(&rc, &text));
    char origin[DLM_CONFIG_PATH_MAX + 200];
    snprintf(origin, sizeof origin, "run %s of sweep %s", r->name, c->sweep.name);
    dlm_status st = dlm_run_config_load_text(text, origin, NULL, 0, out);
    free(text);
    DLM_CALL(st);
    st = dlm_run_config_check_layout(out, r->dp * r->tp * r->pp);
    DLM_CHECK(st == DLM_OK, st, "%s: its layout (layout.from_params class of N = %lld)", origin,
              (long long)r->n_params);
    return DLM_OK;
}

static void human(double v, char *buf, size_t n)
{
    if (v >= 1e9) snprintf(buf, n, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, n, "%.1fk", v / 1e3);
    else snprintf(buf, n, "%.0f", v);
}

static void duration(double s, char *buf, size_t n)
{
    if (s >= 3600) snprintf(buf, n, "%.1fh", s / 3600);
    else if (s >= 60) snprintf(buf, n, "%.1fm", s / 60);
    else snprintf(buf, n, "%.0fs", s);
}

void dlm_sweep_plan_print(const dlm_sweep_plan *p, FILE *f)
{
    const dlm_sweep_config *c = &p->cfg;
    fprintf(f, "sweep %s: %d runs in %s\n", c->sweep.name, p->n, c->sweep.dir);
    fprintf(f, "  %s\n", N_DEFINITION);
    fprintf(f, "  budgets in %s\n", c->sweep.flops == DLM_FLOPS_6N ? SIX_N_DEFINITION : DLM_FLOPS_DEFINITION);
    fprintf(f, "  tokens = steps x %d x %d; wall time at %.3g FLOP/s per rank + %.0f s\n",
            p->base.train.batch, p->base.model.seq_len, c->time.flops_per_s, c->time.overhead_s);
    fprintf(f, "%-44s %-8s %4s %5s %3s %8s %9s %7s %9s %9s %9s %5s %-9s %7s %7s\n", "run", "budget", "L",
            "d", "H", "N", "tokens", "steps", "FLOPs", "engine", "lr", "warm", "dp.tp.pp", "est.",
            "limit");
    double total = 0.0;
    for (int i = 0; i < p->n; i++) {
        const dlm_sweep_run *r = &p->runs[i];
        char C[32], N[16], D[16], lay[24], est[16], lim[16];
        budget_text(r->budget, C, sizeof C);
        human((double)r->n_params, N, sizeof N);
        human((double)r->tokens, D, sizeof D);
        snprintf(lay, sizeof lay, "%d.%d.%d", r->dp, r->tp, r->pp);
        duration(r->est_seconds, est, sizeof est);
        duration(r->time_limit_s, lim, sizeof lim);
        fprintf(f, "%-44s %-8s %4d %5d %3d %8s %9s %7lld %9.3g %9.3g %9.3g %5d %-9s %7s %7s\n", r->name, C,
                r->layers, r->width, r->heads, N, D, (long long)r->steps, r->flops, r->engine_flops, r->lr,
                r->warmup, lay, est, lim);
        total += r->est_seconds * r->dp * r->tp * r->pp;
    }
    char t[16];
    duration(total, t, sizeof t);
    fprintf(f, "estimated: %s of rank time in all\n", t);
    if (c->sweep.unique_tokens > 0)
        fprintf(f, "data-constrained: %llu unique tokens per run (epochs in plan.h5)\n",
                (unsigned long long)c->sweep.unique_tokens);
}

static const dlm_col run_cols[] = {
    DLM_COL(dlm_sweep_run, CHARS, name),      DLM_COL(dlm_sweep_run, F64, budget),
    DLM_COL(dlm_sweep_run, INT, size_index),  DLM_COL(dlm_sweep_run, INT, seed),
    DLM_COL(dlm_sweep_run, INT, layers),      DLM_COL(dlm_sweep_run, INT, width),
    DLM_COL(dlm_sweep_run, INT, heads),       DLM_COL(dlm_sweep_run, F64, target_params),
    DLM_COL(dlm_sweep_run, I64, n_params),    DLM_COL(dlm_sweep_run, F64, flops_per_token),
    DLM_COL(dlm_sweep_run, F64, engine_flops_per_token),
    DLM_COL(dlm_sweep_run, I64, steps),       DLM_COL(dlm_sweep_run, I64, tokens),
    DLM_COL(dlm_sweep_run, F64, flops),       DLM_COL(dlm_sweep_run, F64, engine_flops),
    DLM_COL(dlm_sweep_run, F64, epochs),      DLM_COL(dlm_sweep_run, F64, lr),
    DLM_COL(dlm_sweep_run, INT, warmup),      DLM_COL(dlm_sweep_run, INT, dp),
    DLM_COL(dlm_sweep_run, INT, tp),          DLM_COL(dlm_sweep_run, INT, pp),
    DLM_COL(dlm_sweep_run, F64, est_seconds), DLM_COL(dlm_sweep_run, F64, time_limit_s),
};

static dlm_status write_runs(const dlm_sweep_plan *p, hid_t g, const char *what)
{
    DLM_CALL(dlm_table_write(g, what, run_cols, (int)(sizeof run_cols / sizeof run_cols[0]), p->runs,
                             sizeof(dlm_sweep_run), p->n));
    const char **obj = malloc((size_t)(p->n ? p->n : 1) * sizeof *obj);
    DLM_CHECK(obj != NULL, DLM_ERR_NOMEM, "%s: the objective column", what);
    for (int i = 0; i < p->n; i++) obj[i] = p->cfg.sweep.objectives[p->runs[i].objective];
    dlm_status st = dlm_table_write_strings(g, what, "objective", obj, p->n);
    free(obj);
    return st;
}

static dlm_status write_attrs(const dlm_sweep_plan *p, hid_t f, const char *what)
{
    char *text = NULL;
    DLM_CALL(dlm_sweep_config_text(&p->cfg, &text));
    herr_t e = dlm_h5_attr_write_str(f, "sweep", text);
    free(text);
    DLM_H5(e, "%s: the sweep attribute", what);
    DLM_H5(dlm_h5_attr_write_str(f, "name", p->cfg.sweep.name), "%s: attributes", what);
    DLM_H5(dlm_h5_attr_write_str(f, "n_definition", N_DEFINITION), "%s: attributes", what);
    DLM_H5(dlm_h5_attr_write_str(f, "flops_definition",
                                 p->cfg.sweep.flops == DLM_FLOPS_6N ? SIX_N_DEFINITION : DLM_FLOPS_DEFINITION),
           "%s: attributes", what);
    DLM_H5(dlm_h5_attr_write_str(f, "engine_flops_definition", DLM_FLOPS_DEFINITION), "%s: attributes", what);
    DLM_H5(dlm_h5_attr_write_i64(f, "unique_tokens", (int64_t)p->cfg.sweep.unique_tokens), "%s: attributes",
           what);
    return DLM_OK;
}

/* Writes a table file whole: tmp, then rename (h5 files are never edited in place). */
dlm_status dlm_sweep_write_file(const dlm_sweep_plan *p, const char *path, const char *format,
                                dlm_status (*body)(const dlm_sweep_plan *, hid_t, const char *, const void *),
                                const void *arg)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()); /* a collect job and a user's at once */
    hid_t fapl = dlm_h5_fapl();
    DLM_H5(fapl, "%s: file access list", path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    DLM_H5(f, "creating %s", tmp);
    dlm_status st = DLM_OK;
    hid_t g = -1;
    DLM_H5_GOTO(st, dlm_h5_attr_write_str(f, "format", format), done, "%s: attributes", tmp);
    if ((st = write_attrs(p, f, tmp)) != DLM_OK) goto done;
    DLM_H5_GOTO(st, g = H5Gcreate2(f, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), done, "%s: /runs", tmp);
    if ((st = write_runs(p, g, tmp)) != DLM_OK) goto done;
    if (body) st = body(p, g, tmp, arg);
done:
    if (g >= 0) H5Gclose(g);
    if (H5Fclose(f) < 0 && st == DLM_OK) st = dlm_h5_error(__FILE__, __LINE__, __func__, "closing %s", tmp);
    if (st != DLM_OK) {
        remove(tmp);
        return st;
    }
    return dlm_durable_replace(tmp, path, NULL);
}

dlm_status dlm_sweep_plan_write(const dlm_sweep_plan *p, const char *path)
{
    return dlm_sweep_write_file(p, path, "dlm-sweep plan 1", NULL, NULL);
}
