/* The sweep file's schema (see sweep_config.h). */
#include "sweep/sweep_config.h"

#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "sweep/recipe.h"

const char *const dlm_flops_def_names[] = {"engine", "6N", NULL};
const char *const dlm_eval_weight_names[] = {"ema", "raw", NULL};

_Static_assert(sizeof(dlm_flops_def) == sizeof(int), "enum size");

#define ST dlm_sweep_config
#define NUM(g, n, t, field, ...) DLM_KEY_NUM(g, n, DLM_KEY_##t, ST, field, __VA_ARGS__)

static const dlm_config_key keys[] = {
    NUM("sweep", "name", STRING, sweep.name, DLM_ANY),
    NUM("sweep", "dir", STRING, sweep.dir, DLM_ANY),
    NUM("sweep", "base", STRING, sweep.base, DLM_ANY),
    DLM_KEY_PATHS("sweep", "objectives", ST, sweep.objectives, sweep.n_objectives),
    DLM_KEY_DOUBLES("sweep", "budgets", ST, sweep.budgets, sweep.n_budgets, DLM_GT(0)),
    NUM("sweep", "sizes", INT, sweep.sizes, DLM_GE(1)),
    NUM("sweep", "span", DOUBLE, sweep.span, DLM_GT(1)),
    DLM_KEY_INTS("sweep", "seeds", ST, sweep.seeds, sweep.n_seeds),
    DLM_KEY_ENUM("sweep", "flops", ST, sweep.flops, dlm_flops_def_names),
    NUM("sweep", "unique_tokens", U64, sweep.unique_tokens, DLM_GE(0)),
    NUM("sweep", "checkpoints", INT, sweep.checkpoints, DLM_GE(1)),
    NUM("sweep", "min_sizes", INT, sweep.min_sizes, DLM_GE(1)),
    NUM("center", "tokens_per_param", DOUBLE, center.tokens_per_param, DLM_GT(0)),
    NUM("center", "mdlm_factor", DOUBLE, center.mdlm_factor, DLM_GT(0)),
    NUM("shape", "aspect", DOUBLE, shape.aspect, DLM_GT(0)),
    NUM("shape", "head_dim", INT, shape.head_dim, DLM_GE(2)),
    NUM("shape", "min_layers", INT, shape.min_layers, DLM_GE(1)),
    NUM("shape", "max_layers", INT, shape.max_layers, DLM_GE(1)),
    NUM("lr", "base", DOUBLE, lr.base, DLM_GT(0)),
    NUM("lr", "ref_params", DOUBLE, lr.ref_params, DLM_GT(0)),
    NUM("lr", "exponent", DOUBLE, lr.exponent, DLM_IN_CC(-2, 2)),
    NUM("lr", "warmup_fraction", DOUBLE, lr.warmup_fraction, DLM_IN_CO(0, 1)),
    NUM("lr", "warmup_min", INT, lr.warmup_min, DLM_GE(0)),
    DLM_KEY_DOUBLES("layout", "from_params", ST, layout.from_params, layout.n_from_params, DLM_GE(0)),
    DLM_KEY_INTS("layout", "dp", ST, layout.dp, layout.n_dp),
    DLM_KEY_INTS("layout", "tp", ST, layout.tp, layout.n_tp),
    DLM_KEY_INTS("layout", "pp", ST, layout.pp, layout.n_pp),
    NUM("time", "flops_per_s", DOUBLE, time.flops_per_s, DLM_GT(0)),
    NUM("time", "overhead_s", DOUBLE, time.overhead_s, DLM_GE(0)),
    NUM("time", "safety", DOUBLE, time.safety, DLM_GE(1)),
    NUM("submit", "throttle", INT, submit.throttle, DLM_GE(1)),
    NUM("submit", "cpus_per_rank", INT, submit.cpus_per_rank, DLM_GE(1)),
    NUM("submit", "partition", STRING, submit.partition, DLM_ANY),
    NUM("eval", "data", STRING, eval.data, DLM_ANY),
    NUM("eval", "chunks", INT, eval.chunks, DLM_GE(0)),
    NUM("eval", "K", INT, eval.K, DLM_GE(1)),
    DLM_KEY_ENUM("eval", "weights", ST, eval.weights, dlm_eval_weight_names),
};
static const char *const groups[] = {"sweep", "center", "shape", "lr", "layout", "time", "submit", "eval"};

static void defaults(void *cv)
{
    dlm_sweep_config *c = cv;
    memset(c, 0, sizeof *c);
    c->sweep.sizes = 5;
    c->sweep.span = 8.0;
    c->sweep.seeds[0] = 1, c->sweep.n_seeds = 1;
    c->sweep.flops = DLM_FLOPS_ENGINE;
    c->sweep.checkpoints = 4;
    c->sweep.min_sizes = 5;
    c->center.tokens_per_param = 20.0;
    c->center.mdlm_factor = 0.5;
    c->shape.aspect = 32.0;
    c->shape.head_dim = 16;
    c->shape.min_layers = 1;
    c->shape.max_layers = 48;
    c->lr.base = 2e-3;
    c->lr.ref_params = 1e6;
    c->lr.warmup_fraction = 0.05;
    c->lr.warmup_min = 10;
    c->layout.n_from_params = c->layout.n_dp = c->layout.n_tp = c->layout.n_pp = 1;
    c->layout.dp[0] = c->layout.tp[0] = c->layout.pp[0] = 1;
    c->time.flops_per_s = 1e11;
    c->time.overhead_s = 60.0;
    c->time.safety = 1.5;
    c->submit.throttle = 4;
    c->submit.cpus_per_rank = 1;
    c->eval.chunks = 256;
    c->eval.K = 8;
}

static void check(dlm_config_load_ctx *x, const void *cv)
{
    const dlm_sweep_config *c = cv;
    if (c->sweep.name[0] == '\0') dlm_config_key_error(x, "sweep.name", NULL, "sweep.name is required");
    for (const char *p = c->sweep.name; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z'))) {
            dlm_config_key_error(x, "sweep.name", NULL,
                                 "sweep.name \"%s\" may hold only letters, digits, '-', '_' and '.' "
                                 "(it names Slurm jobs and files)", c->sweep.name);
            break;
        }
    if (c->sweep.dir[0] == '\0')
        dlm_config_key_error(x, "sweep.dir", NULL, "sweep.dir is required: the folder the runs go in");
    if (c->sweep.n_objectives == 0)
        dlm_config_key_error(x, "sweep.objectives", NULL,
                             "sweep.objectives is required: e.g. [\"mdlm\", \"ar\"]");
    if (c->sweep.n_budgets == 0)
        dlm_config_key_error(x, "sweep.budgets", NULL, "sweep.budgets is required: FLOPs per run, e.g. [1e12, 3e12]");
    if (c->sweep.n_seeds == 0) dlm_config_key_error(x, "sweep.seeds", NULL, "sweep.seeds lists no seed");
    for (int i = 0; i < c->sweep.n_seeds; i++)
        if (c->sweep.seeds[i] < 0) {
            dlm_config_key_error(x, "sweep.seeds", NULL, "sweep.seeds element %d is %d; seeds are >= 0",
                                 i + 1, c->sweep.seeds[i]);
            break;
        }
    if (c->sweep.sizes < c->sweep.min_sizes)
        dlm_config_pair_error(x, "sweep.sizes", "sweep.min_sizes",
                              "sweep.sizes (%d) must be at least %d: an IsoFLOP parabola needs sizes on "
                              "both sides of its minimum",
                              c->sweep.sizes, c->sweep.min_sizes);
    if (c->sweep.span < 8.0 && c->sweep.sizes > 1)
        dlm_config_key_error(x, "sweep.span", NULL,
                             "sweep.span (%g) must be >= 8: sizes spanning less locate no minimum",
                             c->sweep.span);
    if (c->shape.min_layers > c->shape.max_layers)
        dlm_config_pair_error(x, "shape.min_layers", "shape.max_layers",
                              "shape.min_layers (%d) must be <= shape.max_layers (%d)",
                              c->shape.min_layers, c->shape.max_layers);
    if (c->shape.head_dim % 2)
        dlm_config_key_error(x, "shape.head_dim", NULL,
                             "shape.head_dim (%d) must be even for the rotary embedding", c->shape.head_dim);
    int n = c->layout.n_from_params;
    if (c->layout.n_dp != n || c->layout.n_tp != n || c->layout.n_pp != n)
        dlm_config_key_error(x, "layout.from_params", "layout.dp",
                             "layout.from_params, dp, tp and pp must list as many classes (%d, %d, %d, %d)",
                             n, c->layout.n_dp, c->layout.n_tp, c->layout.n_pp);
    else if (n == 0 || c->layout.from_params[0] != 0.0)
        dlm_config_key_error(x, "layout.from_params", NULL,
                             "layout.from_params must start at 0 (the class of the smallest models)");
    else
        for (int i = 0; i < n; i++) {
            if (i > 0 && !(c->layout.from_params[i] > c->layout.from_params[i - 1]))
                dlm_config_key_error(x, "layout.from_params", NULL,
                                     "layout.from_params must ascend; element %d does not", i + 1);
            if (c->layout.dp[i] < 1 || c->layout.tp[i] < 1 || c->layout.pp[i] < 1)
                dlm_config_key_error(x, "layout.dp", "layout.from_params",
                                     "layout class %d: dp, tp and pp must be >= 1", i + 1);
        }
}

static const dlm_config_schema schema = {keys, (int)(sizeof keys / sizeof keys[0]), groups,
                                         (int)(sizeof groups / sizeof groups[0]), sizeof(dlm_sweep_config),
                                         defaults, NULL, check};

dlm_status dlm_sweep_config_load(const char *path, const char *const *sets, int n_sets,
                                 dlm_sweep_config *out)
{
    dlm_sweep_config c;
    DLM_CALL(dlm_config_load(&schema, path, sets, n_sets, &c));
    for (int i = 0; i < c.sweep.n_objectives; i++) {
        dlm_run_config probe;
        dlm_run_config_defaults(&probe);
        dlm_status st = dlm_recipe_apply(c.sweep.objectives[i], &probe);
        DLM_CHECK(st == DLM_OK, st, "%s: sweep.objectives element %d", path, i + 1);
        for (int j = 0; j < i; j++)
            DLM_CHECK(strcmp(c.sweep.objectives[i], c.sweep.objectives[j]) != 0, DLM_ERR_FORMAT,
                      "%s: sweep.objectives names \"%s\" twice", path, c.sweep.objectives[i]);
    }
    char tmp[DLM_CONFIG_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(c.file_dir, sizeof c.file_dir, "%s", dirname(tmp));
    *out = c;
    return DLM_OK;
}

dlm_status dlm_sweep_config_text(const dlm_sweep_config *c, char **text)
{
    return dlm_config_to_text(&schema, c, "dlm-sweep: the resolved sweep file", text);
}
