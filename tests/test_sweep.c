/* dlm-sweep's library: the plan's arithmetic against the engine's FLOP
 * table, the recipes, the sweep file's errors, run folders and collect. */
#define _GNU_SOURCE /* mkdtemp, open_memstream */
#include <CUnit/CUnit.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "harness.h"
#include "io/h5.h"
#include "model/model.h"
#include "sweep/collect.h"
#include "sweep/plan.h"
#include "sweep/recipe.h"
#include "sweep/runs.h"

static char dir[64] = "/tmp/dlm-test-sweep-XXXXXX";

/* A sweep file in the test folder with text, loaded with the overrides. */
static dlm_status load_sweep(const char *text, const char *const *sets, int n, dlm_sweep_config *c)
{
    char path[128];
    snprintf(path, sizeof path, "%s/s.cfg", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    return dlm_sweep_config_load(path, sets, n, c);
}

static void expect_error(dlm_status st, const char *needle, int line)
{
    const char *text = dlm_error_text();
    int ok = st != DLM_OK && strstr(text, needle) != NULL;
    if (!ok) printf("\n    line %d: expected an error with \"%s\", got: %s", line, needle, st ? text : "success");
    CU_ASSERT(ok);
    dlm_error_clear();
}
#define EXPECT_ERROR(st, needle) expect_error((st), (needle), __LINE__)

static const char *sweep_text =
    "sweep = { name = \"t\"; dir = \"%s/runs\"; objectives = [\"mdlm\", \"ar\"];\n"
    "          budgets = [1e12, 1e13]; };\n";

static dlm_sweep_plan *tiny_plan(const char *const *sets, int n)
{
    char text[512];
    snprintf(text, sizeof text, sweep_text, dir);
    dlm_sweep_config c;
    DLM_TEST_OK(load_sweep(text, sets, n, &c));
    dlm_sweep_plan *p = NULL;
    DLM_TEST_OK(dlm_sweep_plan_create(&c, &p));
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

/* Each run's N, FLOPs per token, tokens and FLOPs are the engine's for its
 * shape (the engine's FLOP table, and written out: 6 N + 6 d V_padded +
 * 12 L d T), within half a step of its budget; the sizes of a budget are
 * centred (geometric mean) on N* = sqrt(C / 120), halved for diffusion,
 * spanning sweep.span; the run config carries the plan. With flops = "6N"
 * the FLOPs per token are 6 N. */
static void test_plan_arithmetic(void)
{
    for (int def = 0; def < 2; def++) {
        const char *sets[] = {def ? "sweep.flops=\"6N\"" : "sweep.flops=\"engine\""};
        dlm_sweep_plan *p = tiny_plan(sets, 1);
        CU_ASSERT_FATAL(p->n == 2 * 2 * 5);
        int B = p->base.train.batch, T = p->base.model.seq_len;
        for (int i = 0; i < p->n; i++) {
            const dlm_sweep_run *r = &p->runs[i];
            dlm_model_config m;
            dlm_model_config_bytes(&m, r->layers, r->width, r->heads, T);
            CU_ASSERT(r->n_params == dlm_model_nonembedding_params(&m));
            double engine = dlm_model_flops_per_token(&m);
            double by_hand = 6.0 * (double)r->n_params + 6.0 * r->width * m.vocab_padded + 12.0 * r->layers * r->width * T;
            CU_ASSERT(m.vocab_padded == 320 && engine == by_hand && r->engine_flops_per_token == engine);
            double fpt = def ? 6.0 * (double)r->n_params : engine;
            CU_ASSERT(r->flops_per_token == fpt);
            CU_ASSERT(r->tokens == r->steps * B * T);
            CU_ASSERT(r->flops == (double)r->tokens * fpt && r->engine_flops == (double)r->tokens * engine);
            CU_ASSERT(fabs(r->flops - r->budget) <= 0.5 * B * T * fpt);
            CU_ASSERT(r->n_params > r->target_params / 1.6 && r->n_params < r->target_params * 1.6);
            dlm_run_config rc;
            DLM_TEST_OK(dlm_sweep_run_config(p, i, &rc));
            CU_ASSERT(rc.model.layers == r->layers && rc.model.width == r->width && rc.model.heads == r->heads);
            CU_ASSERT(rc.train.steps == r->steps && rc.train.lr == r->lr && rc.train.warmup == r->warmup);
            CU_ASSERT(rc.objective.kind == (r->objective == 1 ? DLM_OBJECTIVE_AR : DLM_OBJECTIVE_MDLM));
            char want[256];
            dlm_sweep_run_dir(p, i, want, sizeof want);
            CU_ASSERT(strcmp(rc.run.dir, want) == 0);
        }
        for (int g = 0; g < 4; g++) { /* (objective, budget) groups of 5 sizes */
            const dlm_sweep_run *r = &p->runs[5 * g];
            double logsum = 0.0;
            for (int s = 0; s < 5; s++) logsum += log(r[s].target_params);
            double center = sqrt(r->budget / 120.0) * (r->objective == 0 ? 0.5 : 1.0);
            DLM_TEST_NEAR(exp(logsum / 5), center, 1e-12 * center, "sizes centred on N*");
            DLM_TEST_NEAR(r[4].target_params / r[0].target_params, 8.0, 1e-12, "span");
            for (int s = 1; s < 5; s++) CU_ASSERT(r[s].n_params > r[s - 1].n_params);
            double nsum = 0.0; /* the shapes' own N: centred within the rounding to whole shapes */
            for (int s = 0; s < 5; s++) nsum += log((double)r[s].n_params);
            CU_ASSERT(fabs(nsum / 5 - log(center)) < log(1.3));
        }
        dlm_sweep_plan_destroy(&p);
    }
}

static void test_recipes(void)
{
    dlm_run_config c;
    dlm_run_config_defaults(&c);
    DLM_TEST_OK(dlm_recipe_apply("mdlm/exact-k/inverse", &c));
    CU_ASSERT(c.objective.kind == DLM_OBJECTIVE_MDLM && c.objective.estimator == DLM_TRAIN_EXACT_K &&
              c.objective.k_proposal == DLM_K_INVERSE);
    DLM_TEST_OK(dlm_recipe_apply("mdlm/cosine", &c));
    CU_ASSERT(c.objective.estimator == DLM_TRAIN_MC_T && c.objective.schedule == DLM_SCHEDULE_COSINE);
    DLM_TEST_OK(dlm_recipe_apply("mdlm/exact-k", &c));
    CU_ASSERT(c.objective.estimator == DLM_TRAIN_EXACT_K && c.objective.k_proposal == DLM_K_UNIFORM);
    DLM_TEST_OK(dlm_recipe_apply("mdlm", &c));
    CU_ASSERT(c.objective.estimator == DLM_TRAIN_MC_T && c.objective.schedule == DLM_SCHEDULE_LOGLINEAR);
    DLM_TEST_OK(dlm_recipe_apply("ar", &c));
    CU_ASSERT(c.objective.kind == DLM_OBJECTIVE_AR);
    EXPECT_ERROR(dlm_recipe_apply("sedd", &c), "objective \"sedd\": expected \"ar\", \"mdlm\"");
    EXPECT_ERROR(dlm_recipe_apply("mdlm/exact-k/cubic", &c), "no k proposal \"cubic\"");
    EXPECT_ERROR(dlm_recipe_apply("mdlm/cosine/inverse", &c), "objective \"mdlm/cosine/inverse\"");
    EXPECT_ERROR(dlm_recipe_apply("mdlm/", &c), "objective \"mdlm/\"");
}

static void test_sweep_file_errors(void)
{
    char text[512];
    snprintf(text, sizeof text, sweep_text, dir);
    dlm_sweep_config c;
    const char *few[] = {"sweep.sizes=3"};
    EXPECT_ERROR(load_sweep(text, few, 1, &c), "sweep.sizes (3) must be at least 5");
    const char *few_ok[] = {"sweep.sizes=3", "sweep.min_sizes=3"};
    DLM_TEST_OK(load_sweep(text, few_ok, 2, &c));
    const char *narrow[] = {"sweep.span=4"};
    EXPECT_ERROR(load_sweep(text, narrow, 1, &c), "sweep.span (4) must be >= 8");
    const char *layout[] = {"layout.from_params=[0.0, 1e6]"};
    EXPECT_ERROR(load_sweep(text, layout, 1, &c), "must list as many classes (2, 1, 1, 1)");
    const char *obj[] = {"sweep.objectives=[\"mdlm\", \"sedd\"]"};
    EXPECT_ERROR(load_sweep(text, obj, 1, &c), "sweep.objectives element 2");
    const char *twice[] = {"sweep.objectives=[\"ar\", \"ar\"]"};
    EXPECT_ERROR(load_sweep(text, twice, 1, &c), "names \"ar\" twice");
    EXPECT_ERROR(load_sweep("sweep = { dir = \"x\"; budgets = [1e12]; objectives = \"ar\"; };", NULL, 0, &c),
                 "sweep.name is required");
    const char *seeds[] = {"sweep.seeds=[1, 1]"};
    DLM_TEST_OK(load_sweep(text, seeds, 1, &c));
    dlm_sweep_plan *q = NULL;
    EXPECT_ERROR(dlm_sweep_plan_create(&c, &q), "two runs would share the name and folder");
    const char *tp[] = {"layout.tp=[3]"}; /* 3 divides no width of 16k */
    DLM_TEST_OK(load_sweep(text, tp, 1, &c));
    dlm_sweep_plan *p = NULL;
    EXPECT_ERROR(dlm_sweep_plan_create(&c, &p), "its layout");
    CU_ASSERT(p == NULL);
}

/* An eval.h5 as dlm-eval writes it, with one evaluation of step. */
static void write_eval(const char *run_dir, int64_t step, const char *weights, double estimate)
{
    char path[512];
    snprintf(path, sizeof path, "%s/eval.h5", run_dir);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    char name[64];
    snprintf(name, sizeof name, "step-%08lld_exact-k_%s", (long long)step, weights);
    hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(dlm_h5_attr_write_i64(g, "step", step) >= 0);
    CU_ASSERT(dlm_h5_attr_write_str(g, "weights", weights) >= 0);
    CU_ASSERT(dlm_h5_attr_write_str(g, "estimator", "exact-k") >= 0);
    hid_t sp = H5Screate(H5S_SCALAR);
    const char *keys[] = {"estimate_nats_per_token", "stderr_nats_per_token", "bits_per_byte", "stderr_bits_per_byte"};
    double vals[] = {estimate, 0.01, estimate / log(2), 0.01 / log(2)};
    for (int k = 0; k < 4; k++) {
        hid_t a = H5Acreate2(g, keys[k], H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        CU_ASSERT(H5Awrite(a, H5T_NATIVE_DOUBLE, &vals[k]) >= 0);
        H5Aclose(a);
    }
    H5Sclose(sp);
    H5Gclose(g);
    H5Fclose(f);
}

static char *read_string(hid_t f, const char *name, int i)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    char **v = calloc((size_t)n, sizeof *v);
    CU_ASSERT(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    char *out = strdup(v[i]);
    H5Dvlen_reclaim(t, sp, H5P_DEFAULT, v);
    free(v);
    H5Sclose(sp), H5Tclose(t), H5Dclose(d);
    return out;
}

/* The states read from run folders, and collect: a done run's number in
 * sweep.h5; a failed run, and one evaluated at its final step but with
 * other weights than the sweep's, each named with why, none dropped; a
 * run without a folder is missing. A run.cfg the plan no longer matches is
 * refused. */
static void test_collect_states(void)
{
    const char *sets[] = {"sweep.objectives=[\"ar\"]", "sweep.budgets=[1e12]", "sweep.sizes=4", "sweep.min_sizes=4"};
    dlm_sweep_plan *p = tiny_plan(sets, 4);
    CU_ASSERT_FATAL(p->n == 4);
    char d[4][256], path[300];
    for (int i = 0; i < 4; i++) dlm_sweep_run_dir(p, i, d[i], sizeof d[i]);
    DLM_TEST_OK(dlm_sweep_materialize(p, 0));
    snprintf(path, sizeof path, "%s/failed", d[0]);
    FILE *f = fopen(path, "w");
    fputs("dlm-train exited with 1 (see run.log)\n", f);
    fclose(f);
    DLM_TEST_OK(dlm_sweep_materialize(p, 1));
    write_eval(d[1], p->runs[1].steps, "ema", 2.5);
    DLM_TEST_OK(dlm_sweep_materialize(p, 2));
    write_eval(d[2], p->runs[2].steps, "raw", 2.7); /* its final step, but not the sweep's weights */
    dlm_run_state s;
    dlm_sweep_run_state(p, 1, &s);
    CU_ASSERT(s.kind == DLM_RUN_DONE && s.estimate == 2.5 && strcmp(s.weights, "ema") == 0);
    dlm_sweep_run_state(p, 2, &s);
    CU_ASSERT(s.kind == DLM_RUN_UNFINISHED);
    write_eval(d[2], p->runs[2].steps - 1, "ema", 2.7); /* the sweep's weights, not its final step */
    dlm_sweep_run_state(p, 2, &s);
    CU_ASSERT(s.kind == DLM_RUN_UNFINISHED);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    char h5[128];
    snprintf(h5, sizeof h5, "%s/sweep.h5", dir);
    int done = -1;
    DLM_TEST_OK(dlm_sweep_collect(p, h5, out, &done));
    fclose(out);
    char want[400];
    snprintf(want, sizeof want, "failed %s: dlm-train exited with 1", p->runs[0].name);
    CU_ASSERT(strstr(text, want) != NULL);
    snprintf(want, sizeof want, "unfinished %s: eval.h5 holds no evaluation of its final step %lld with ema weights",
             p->runs[2].name, (long long)p->runs[2].steps);
    CU_ASSERT(strstr(text, want) != NULL);
    if (!strstr(text, want)) printf("\n%s", text);
    snprintf(want, sizeof want, "missing %s: not started (no run folder)", p->runs[3].name);
    CU_ASSERT(strstr(text, want) != NULL);
    CU_ASSERT(done == 1 && strstr(text, "collect: 1 of 4 runs done") != NULL);
    if (!strstr(text, want)) printf("\n%s", text);
    free(text);
    hid_t hf = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(hf >= 0);
    const char *states[] = {"failed", "done", "unfinished", "missing"};
    for (int i = 0; i < 4; i++) {
        char *st = read_string(hf, "runs/state", i), *nm = read_string(hf, "runs/name", i);
        CU_ASSERT(strcmp(st, states[i]) == 0 && strcmp(nm, p->runs[i].name) == 0);
        free(st), free(nm);
    }
    double est[4];
    hid_t ds = H5Dopen2(hf, "runs/estimate_nats_per_token", H5P_DEFAULT);
    CU_ASSERT(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, est) >= 0);
    CU_ASSERT(isnan(est[0]) && est[1] == 2.5 && isnan(est[2]) && isnan(est[3]));
    H5Dclose(ds);
    H5Fclose(hf);

    const char *changed[] = {"sweep.objectives=[\"ar\"]", "sweep.budgets=[1e12]", "sweep.sizes=4",
                             "sweep.min_sizes=4", "lr.base=1e-3"};
    dlm_sweep_plan *q = tiny_plan(changed, 5);
    EXPECT_ERROR(dlm_sweep_materialize(q, 0), "holds another run config than the sweep file now plans");
    dlm_sweep_plan_destroy(&q);
    dlm_sweep_plan_destroy(&p);
}

int main(int argc, char **argv)
{
    if (!mkdtemp(dir)) return 1;
    static const dlm_test_case plan[] = {{"arithmetic against the engine's FLOP table", test_plan_arithmetic},
                                         {"recipes", test_recipes},
                                         {"sweep file errors", test_sweep_file_errors},
                                         {NULL, NULL}};
    static const dlm_test_case runs[] = {{"run states and collect", test_collect_states}, {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"plan", plan}, {"runs", runs}, {NULL, NULL}};
    int rc = dlm_test_main(argc, argv, suites);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
