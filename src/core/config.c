/* Run configuration from libconfig files and --set overrides. One table of
 * keys drives reading, type and range checks and the text written back; the
 * checks that tie keys together are written out after it. Every value
 * remembers where it came from (file and line, or the override), so a
 * consistency error can point at the line to change. */
#include "core/config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the schema ---- */

typedef enum { K_INT, K_U64, K_DOUBLE, K_BOOL, K_ENUM, K_STRING, K_PATHS } key_type;

typedef struct {
    const char *name;
    int value;
} choice;

/* Enum fields are written through int pointers. */
_Static_assert(sizeof(dlm_objective_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_schedule_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_lr_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_shard_format) == sizeof(int), "enum size");
_Static_assert(sizeof(dlm_data_source) == sizeof(int), "enum size");

static const choice objective_choices[] = {
    {"ar", DLM_OBJECTIVE_AR}, {"mdlm", DLM_OBJECTIVE_MDLM}, {NULL, 0}};
static const choice schedule_choices[] = {{"loglinear", DLM_SCHEDULE_LOGLINEAR},
                                          {"cosine", DLM_SCHEDULE_COSINE},
                                          {"linear-sigma", DLM_SCHEDULE_LINEAR_SIGMA},
                                          {"power", DLM_SCHEDULE_POWER},
                                          {NULL, 0}};
static const choice lr_choices[] = {
    {"cosine", DLM_LR_COSINE}, {"constant", DLM_LR_CONSTANT}, {"wsd", DLM_LR_WSD}, {NULL, 0}};
static const choice format_choices[] = {
    {"llmc", DLM_SHARD_LLMC}, {"raw-u16", DLM_SHARD_RAW_U16}, {NULL, 0}};
static const choice source_choices[] = {
    {"shards", DLM_DATA_SHARDS}, {"synthetic", DLM_DATA_SYNTHETIC}, {NULL, 0}};

/* Bounds of a number: lo and/or hi, each inclusive or open. */
enum { B_LO = 1, B_LO_OPEN = 2, B_HI = 4, B_HI_OPEN = 8 };
#define GE(x) B_LO, (x), 0.0
#define GT(x) B_LO | B_LO_OPEN, (x), 0.0
#define IN_CO(a, b) B_LO | B_HI | B_HI_OPEN, (a), (b)     /* [a, b) */
#define IN_OO(a, b) B_LO | B_LO_OPEN | B_HI | B_HI_OPEN, (a), (b) /* (a, b) */
#define IN_OC(a, b) B_LO | B_LO_OPEN | B_HI, (a), (b)     /* (a, b] */
#define ANY 0, 0.0, 0.0

typedef struct {
    const char *group, *name;
    key_type type;
    size_t offset;       /* of the value in dlm_run_config */
    size_t count_offset; /* K_PATHS: of the int count */
    const choice *choices;
    int bounds;
    double lo, hi;
} key_info;

#define OFF(field) offsetof(dlm_run_config, field)
#define NUM(g, n, t, field, bounds) {g, n, t, OFF(field), 0, NULL, bounds}
#define ENUM(g, n, field, ch) {g, n, K_ENUM, OFF(field), 0, ch, ANY}
#define PATHS(g, n, field, count) {g, n, K_PATHS, OFF(field), OFF(count), NULL, ANY}

static const key_info keys[] = {
    NUM("model", "layers", K_INT, model.layers, GE(1)),
    NUM("model", "width", K_INT, model.width, GE(1)),
    NUM("model", "heads", K_INT, model.heads, GE(1)),
    NUM("model", "seq_len", K_INT, model.seq_len, GE(2)),
    NUM("model", "tied_head", K_BOOL, model.tied_head, ANY),
    NUM("model", "rope_theta", K_DOUBLE, model.rope_theta, GT(0)),
    ENUM("objective", "kind", objective.kind, objective_choices),
    ENUM("objective", "schedule", objective.schedule, schedule_choices),
    NUM("objective", "eps", K_DOUBLE, objective.eps, IN_OO(0, 1)),
    NUM("objective", "power", K_DOUBLE, objective.power, IN_OC(0, 64)),
    NUM("train", "steps", K_INT, train.steps, GE(1)),
    NUM("train", "batch", K_INT, train.batch, GE(1)),
    NUM("train", "micro_batch", K_INT, train.micro_batch, GE(1)),
    NUM("train", "lr", K_DOUBLE, train.lr, GT(0)),
    NUM("train", "min_lr", K_DOUBLE, train.min_lr, GE(0)),
    NUM("train", "warmup", K_INT, train.warmup, GE(0)),
    ENUM("train", "lr_schedule", train.lr_schedule, lr_choices),
    NUM("train", "decay_fraction", K_DOUBLE, train.decay_fraction, IN_OC(0, 1)),
    NUM("train", "weight_decay", K_DOUBLE, train.weight_decay, GE(0)),
    NUM("train", "beta1", K_DOUBLE, train.beta1, IN_CO(0, 1)),
    NUM("train", "beta2", K_DOUBLE, train.beta2, IN_CO(0, 1)),
    NUM("train", "adam_eps", K_DOUBLE, train.adam_eps, GT(0)),
    NUM("train", "grad_clip", K_DOUBLE, train.grad_clip, GE(0)),
    NUM("train", "ema_decay", K_DOUBLE, train.ema_decay, IN_CO(0, 1)),
    NUM("train", "seed", K_U64, train.seed, GE(0)),
    NUM("train", "log_every", K_INT, train.log_every, GE(1)),
    NUM("train", "val_every", K_INT, train.val_every, GE(1)),
    NUM("train", "val_chunks", K_INT, train.val_chunks, GE(1)),
    NUM("train", "checkpoint_every", K_INT, train.checkpoint_every, GE(1)),
    NUM("train", "keep_checkpoints", K_INT, train.keep_checkpoints, GE(1)),
    NUM("train", "threads", K_INT, train.threads, GE(0)),
    PATHS("data", "train", data.train_paths, data.n_train_paths),
    PATHS("data", "val", data.val_paths, data.n_val_paths),
    ENUM("data", "format", data.format, format_choices),
    ENUM("data", "source", data.source, source_choices),
    NUM("parallel", "dp", K_INT, parallel.dp, GE(1)),
    NUM("parallel", "tp", K_INT, parallel.tp, GE(1)),
    NUM("parallel", "pp", K_INT, parallel.pp, GE(1)),
    NUM("run", "dir", K_STRING, run.dir, ANY),
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

static const char *const groups[] = {"model", "objective", "train", "data", "parallel", "run"};
#define N_GROUPS ((int)(sizeof groups / sizeof groups[0]))

void dlm_config_defaults(dlm_run_config *c)
{
    memset(c, 0, sizeof *c);
    c->model.layers = 2;
    c->model.width = 64;
    c->model.heads = 4;
    c->model.seq_len = 64;
    c->model.tied_head = 0;
    c->model.rope_theta = 10000.0;
    c->objective.kind = DLM_OBJECTIVE_MDLM;
    c->objective.schedule = DLM_SCHEDULE_LOGLINEAR;
    c->objective.eps = 1e-3;
    c->objective.power = 3.0;
    c->train.steps = 300;
    c->train.batch = 16;
    c->train.micro_batch = 16;
    c->train.lr = 3e-3;
    c->train.min_lr = 3e-3 / 10;
    c->train.warmup = 20;
    c->train.lr_schedule = DLM_LR_COSINE;
    c->train.decay_fraction = 0.2;
    c->train.weight_decay = 0.1;
    c->train.beta1 = 0.9;
    c->train.beta2 = 0.95;
    c->train.adam_eps = 1e-8;
    c->train.grad_clip = 1.0;
    c->train.ema_decay = 0.9999;
    c->train.seed = 1;
    c->train.log_every = 10;
    c->train.val_every = 10;
    c->train.val_chunks = 64;
    c->train.checkpoint_every = 100;
    c->train.keep_checkpoints = 3;
    c->train.threads = 0;
    c->data.format = DLM_SHARD_LLMC;
    c->data.source = DLM_DATA_SHARDS;
    c->parallel.dp = c->parallel.tp = c->parallel.pp = 1;
    snprintf(c->run.dir, sizeof c->run.dir, "%s", "runs/default");
}

const char *dlm_data_source_name(dlm_data_source s)
{
    return s == DLM_DATA_SYNTHETIC ? "synthetic" : "shards";
}

static const char *choice_name(const choice *ch, int value)
{
    for (; ch->name; ch++)
        if (ch->value == value) return ch->name;
    return NULL;
}

static int find_group(const char *name)
{
    for (int g = 0; g < N_GROUPS; g++)
        if (strcmp(groups[g], name) == 0) return g;
    return -1;
}

static int find_key(const char *group, const char *name)
{
    for (int k = 0; k < N_KEYS; k++)
        if (strcmp(keys[k].group, group) == 0 && strcmp(keys[k].name, name) == 0) return k;
    return -1;
}

/* ---- small text helpers ---- */

/* The shortest text that reads back as exactly v; with force_point a
 * whole number keeps a ".0" so libconfig reads it as a float. */
static void fmt_double(double v, int force_point, char *buf, size_t n)
{
    /* whole digits are kept below 1e16 (300, not 3e+02) */
    int whole = isfinite(v) && fabs(v) >= 1.0 && fabs(v) < 1e16 ? (int)floor(log10(fabs(v))) + 1 : 1;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p < whole ? whole : p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (force_point && isfinite(v) && !strpbrk(buf, ".eE")) {
        size_t len = strlen(buf);
        if (len + 2 < n) memcpy(buf + len, ".0", 3);
    }
}

/* Levenshtein distance, for "did you mean"; names are short. */
static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 40 || lb > 40) return 99;
    int d[41][41];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

static void list_keys(const char *group, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < N_KEYS && len < n; k++)
        if (strcmp(keys[k].group, group) == 0)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", keys[k].name);
}

static void list_groups(char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int g = 0; g < N_GROUPS && len < n; g++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", groups[g]);
}

/* "; did you mean train.lr?" for a close key of the same group, or the same
 * key name in another group; "" when nothing is close. */
static void suggest_key(const char *group, const char *name, char *buf, size_t n)
{
    int best = -1, best_d = 3;
    for (int k = 0; k < N_KEYS; k++) {
        if (group && strcmp(keys[k].group, group) != 0) continue;
        int d = edit_distance(name, keys[k].name);
        if (d < best_d) best = k, best_d = d;
    }
    if (best < 0)
        for (int k = 0; k < N_KEYS; k++)
            if (strcmp(keys[k].name, name) == 0) best = k;
    if (best >= 0) snprintf(buf, n, "; did you mean %s.%s?", keys[best].group, keys[best].name);
    else buf[0] = '\0';
}

static void expected_text(const key_info *k, char *buf, size_t n)
{
    switch (k->type) {
    case K_INT: snprintf(buf, n, "an integer"); return;
    case K_U64: snprintf(buf, n, "a non-negative integer"); return;
    case K_DOUBLE: snprintf(buf, n, "a number"); return;
    case K_BOOL: snprintf(buf, n, "true or false"); return;
    case K_STRING: snprintf(buf, n, "a string"); return;
    case K_PATHS: snprintf(buf, n, "a string or a list of strings"); return;
    case K_ENUM: break;
    }
    size_t len = (size_t)snprintf(buf, n, "one of");
    for (const choice *c = k->choices; c->name && len < n; c++)
        len += (size_t)snprintf(buf + len, n - len, "%s\"%s\"", c == k->choices ? " " : ", ",
                                c->name);
}

/* A setting's value as a message shows it. */
static void describe(const config_setting_t *s, char *buf, size_t n)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: snprintf(buf, n, "%lld", config_setting_get_int64(s)); return;
    case CONFIG_TYPE_FLOAT: fmt_double(config_setting_get_float(s), 1, buf, n); return;
    case CONFIG_TYPE_BOOL: snprintf(buf, n, "%s", config_setting_get_bool(s) ? "true" : "false"); return;
    case CONFIG_TYPE_STRING: {
        const char *str = config_setting_get_string(s);
        snprintf(buf, n, "\"%.80s%s\"", str, strlen(str) > 80 ? "..." : "");
        return;
    }
    case CONFIG_TYPE_GROUP: snprintf(buf, n, "a group { ... }"); return;
    case CONFIG_TYPE_ARRAY: snprintf(buf, n, "an array [ ... ]"); return;
    case CONFIG_TYPE_LIST: snprintf(buf, n, "a list ( ... )"); return;
    }
    snprintf(buf, n, "nothing");
}

/* ---- loading ---- */

#define WHERE_MAX 320

typedef struct {
    const char *label;       /* the file (or origin) named in messages */
    const char *include_dir; /* prefix shown for settings from @include'd files */
    dlm_run_config c;
    char where[N_KEYS][WHERE_MAX]; /* "file line 12" or "--set ..." of each value set */
    unsigned char set[N_KEYS];
    int n_errors;
    int bad_values; /* errors that left a key at a value the user did not give */
    dlm_status first;
} load_ctx;

static void cfg_error_at(load_ctx *x, dlm_status code, int line, const char *func,
                         const char *where, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void cfg_error_at(load_ctx *x, dlm_status code, int line, const char *func,
                         const char *where, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (x->n_errors == 0) x->first = code;
    x->n_errors++;
    if (x->n_errors <= DLM_CONFIG_MAX_ERRORS)
        dlm_error_push(code, __FILE__, line, func, "%s: %s", where, msg);
}
#define CFG_ERROR(x, code, where, ...) cfg_error_at((x), (code), __LINE__, __func__, (where), __VA_ARGS__)

static void setting_where(const load_ctx *x, const config_setting_t *s, char *buf, size_t n)
{
    const char *file = config_setting_source_file(s);
    unsigned line = config_setting_source_line(s);
    if (!file || strcmp(file, x->label) == 0) snprintf(buf, n, "%s line %u", x->label, line);
    else if (x->include_dir && file[0] != '/')
        snprintf(buf, n, "%s/%s line %u", x->include_dir, file, line); /* an @include'd file */
    else snprintf(buf, n, "%s line %u", file, line);
}

static void store_string(char *dst, const char *src)
{
    memset(dst, 0, DLM_CONFIG_PATH_MAX);
    memcpy(dst, src, strlen(src));
}

/* Checks a string destined for a fixed array; returns 0 after an error. */
static int string_fits(load_ctx *x, dlm_status code, const key_info *k, const char *where,
                       const char *str, const char *what)
{
    if (str[0] == '\0') {
        CFG_ERROR(x, code, where, "%s.%s%s must not be empty", k->group, k->name, what);
        return 0;
    }
    if (strlen(str) >= DLM_CONFIG_PATH_MAX) {
        CFG_ERROR(x, code, where, "%s.%s%s is %zu characters long; at most %d are supported",
                  k->group, k->name, what, strlen(str), DLM_CONFIG_PATH_MAX - 1);
        return 0;
    }
    return 1;
}

/* Reads one setting into the key's field, checking its type (and what can
 * only be checked here: enum names, integer width, paths). */
static void apply_setting(load_ctx *x, int ki, const config_setting_t *s, const char *where,
                          dlm_status code)
{
    const key_info *k = &keys[ki];
    char *field = (char *)&x->c + k->offset;
    int t = config_setting_type(s);
    char expected[160], got[200];
    expected_text(k, expected, sizeof expected);
    describe(s, got, sizeof got);
    int is_int = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
    int before = x->n_errors;

    switch (k->type) {
    case K_INT:
    case K_U64: {
        if (!is_int) goto wrong_type;
        long long v = config_setting_get_int64(s);
        if (k->type == K_INT && (v < INT_MIN || v > INT_MAX))
            CFG_ERROR(x, code, where, "%s.%s must be an integer between %d and %d, got %lld",
                      k->group, k->name, INT_MIN, INT_MAX, v);
        else if (k->type == K_U64 && v < 0)
            CFG_ERROR(x, code, where, "%s.%s must be >= 0, got %lld", k->group, k->name, v);
        else if (k->type == K_INT) *(int *)field = (int)v;
        else *(uint64_t *)field = (uint64_t)v;
        break;
    }
    case K_DOUBLE:
        if (is_int) *(double *)field = (double)config_setting_get_int64(s);
        else if (t == CONFIG_TYPE_FLOAT) *(double *)field = config_setting_get_float(s);
        else goto wrong_type;
        break;
    case K_BOOL:
        if (t != CONFIG_TYPE_BOOL) goto wrong_type;
        *(int *)field = config_setting_get_bool(s) ? 1 : 0;
        break;
    case K_ENUM: {
        if (t != CONFIG_TYPE_STRING) goto wrong_type;
        const char *str = config_setting_get_string(s);
        const choice *c = k->choices;
        while (c->name && strcmp(c->name, str) != 0) c++;
        if (c->name) *(int *)field = c->value;
        else CFG_ERROR(x, code, where, "%s.%s must be %s, got %s", k->group, k->name, expected, got);
        break;
    }
    case K_STRING:
        if (t != CONFIG_TYPE_STRING) goto wrong_type;
        if (string_fits(x, code, k, where, config_setting_get_string(s), ""))
            store_string(field, config_setting_get_string(s));
        break;
    case K_PATHS: {
        char(*paths)[DLM_CONFIG_PATH_MAX] = (char(*)[DLM_CONFIG_PATH_MAX])field;
        int *count = (int *)((char *)&x->c + k->count_offset);
        if (t == CONFIG_TYPE_STRING) {
            if (!string_fits(x, code, k, where, config_setting_get_string(s), "")) break;
            memset(paths, 0, sizeof(char[DLM_CONFIG_MAX_PATHS][DLM_CONFIG_PATH_MAX]));
            store_string(paths[0], config_setting_get_string(s));
            *count = 1;
            break;
        }
        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) goto wrong_type;
        int n = config_setting_length(s);
        if (n > DLM_CONFIG_MAX_PATHS) {
            CFG_ERROR(x, code, where, "%s.%s lists %d files; at most %d are supported", k->group,
                      k->name, n, DLM_CONFIG_MAX_PATHS);
            break;
        }
        for (int i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            char what[32];
            snprintf(what, sizeof what, " element %d", i + 1);
            if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                describe(e, got, sizeof got);
                CFG_ERROR(x, code, where, "%s.%s expects a list of strings, but element %d is %s",
                          k->group, k->name, i + 1, got);
            } else {
                string_fits(x, code, k, where, config_setting_get_string(e), what);
            }
        }
        if (x->n_errors != before) break;
        memset(paths, 0, sizeof(char[DLM_CONFIG_MAX_PATHS][DLM_CONFIG_PATH_MAX]));
        for (int i = 0; i < n; i++)
            store_string(paths[i], config_setting_get_string(config_setting_get_elem(s, (unsigned)i)));
        *count = n;
        break;
    }
    }
    if (x->n_errors == before) {
        x->set[ki] = 1;
        snprintf(x->where[ki], WHERE_MAX, "%s", where);
    } else {
        x->bad_values++;
    }
    return;
wrong_type:
    CFG_ERROR(x, code, where, "%s.%s expects %s, got %s", k->group, k->name, expected, got);
    x->bad_values++;
}

static void apply_root(load_ctx *x, const config_setting_t *root)
{
    char where[WHERE_MAX], list[400], hint[120];
    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *g = config_setting_get_elem(root, (unsigned)i);
        const char *gname = config_setting_name(g);
        setting_where(x, g, where, sizeof where);
        if (find_group(gname) < 0) {
            list_groups(list, sizeof list);
            if (config_setting_is_group(g)) {
                int best = -1, best_d = 3;
                for (int j = 0; j < N_GROUPS; j++) {
                    int d = edit_distance(gname, groups[j]);
                    if (d < best_d) best = j, best_d = d;
                }
                if (best >= 0) snprintf(hint, sizeof hint, "; did you mean %s?", groups[best]);
                else hint[0] = '\0';
                CFG_ERROR(x, DLM_ERR_FORMAT, where, "unknown group %s (valid groups: %s)%s",
                          gname, list, hint);
            } else {
                suggest_key(NULL, gname, hint, sizeof hint);
                CFG_ERROR(x, DLM_ERR_FORMAT, where,
                          "unknown setting %s outside any group; keys live in groups "
                          "(valid groups: %s)%s",
                          gname, list, hint);
            }
            continue;
        }
        if (!config_setting_is_group(g)) {
            char got[200];
            describe(g, got, sizeof got);
            CFG_ERROR(x, DLM_ERR_FORMAT, where, "%s must be a group, %s = { ... };, got %s",
                      gname, gname, got);
            continue;
        }
        for (int j = 0; j < config_setting_length(g); j++) {
            const config_setting_t *s = config_setting_get_elem(g, (unsigned)j);
            const char *name = config_setting_name(s);
            setting_where(x, s, where, sizeof where);
            int k = find_key(gname, name);
            if (k < 0) {
                list_keys(gname, list, sizeof list);
                suggest_key(gname, name, hint, sizeof hint);
                CFG_ERROR(x, DLM_ERR_FORMAT, where, "unknown key %s.%s (valid keys of %s: %s)%s",
                          gname, name, gname, list, hint);
                continue;
            }
            apply_setting(x, k, s, where, DLM_ERR_FORMAT);
        }
    }
}

/* For a plain decimal integer literal ([-+]?[0-9]+): 1 if it fits 32
 * bits, 2 if it needs libconfig's L suffix (libconfig 1.5 silently wraps a
 * plain one, so overrides get the suffix added), 3 if it does not fit 64
 * bits; 0 for anything else. */
static int int_literal_width(const char *v)
{
    const char *p = v;
    if (*p == '-' || *p == '+') p++;
    if (*p < '0' || *p > '9') return 0;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return 0;
    errno = 0;
    long long n = strtoll(v, NULL, 10);
    if (errno == ERANGE) return 3;
    return n < INT_MIN || n > INT_MAX ? 2 : 1;
}

static void apply_override(load_ctx *x, const char *text)
{
    char where[WHERE_MAX], expected[160], list[400], hint[120];
    if (strlen(text) > 200) snprintf(where, sizeof where, "--set %.200s...", text);
    else snprintf(where, sizeof where, "--set %s", text);

    const char *eq = strchr(text, '=');
    const char *dot = strchr(text, '.');
    if (!eq || !dot || dot > eq) {
        CFG_ERROR(x, DLM_ERR_ARG, where, "expected group.key=value, e.g. train.lr=3e-4");
        return;
    }
    char group[64], name[64];
    const char *gs = text, *ge = dot, *ns = dot + 1, *ne = eq;
    while (*gs == ' ') gs++;
    while (ne > ns && ne[-1] == ' ') ne--;
    if (ge - gs >= (ptrdiff_t)sizeof group || ne - ns >= (ptrdiff_t)sizeof name) {
        CFG_ERROR(x, DLM_ERR_ARG, where, "unknown key %.*s", (int)(ne - gs), gs);
        return;
    }
    snprintf(group, sizeof group, "%.*s", (int)(ge - gs), gs);
    snprintf(name, sizeof name, "%.*s", (int)(ne - ns), ns);
    if (find_group(group) < 0) {
        list_groups(list, sizeof list);
        CFG_ERROR(x, DLM_ERR_ARG, where, "unknown key %s.%s: no group %s (valid groups: %s)",
                  group, name, group, list);
        return;
    }
    int k = find_key(group, name);
    if (k < 0) {
        list_keys(group, list, sizeof list);
        suggest_key(group, name, hint, sizeof hint);
        CFG_ERROR(x, DLM_ERR_ARG, where, "unknown key %s.%s (valid keys of %s: %s)%s", group,
                  name, group, list, hint);
        return;
    }
    const key_info *ki = &keys[k];
    expected_text(ki, expected, sizeof expected);

    const char *value = eq + 1;
    while (*value == ' ') value++;
    size_t vlen = strlen(value);
    while (vlen > 0 && value[vlen - 1] == ' ') vlen--;
    if (vlen == 0) {
        CFG_ERROR(x, DLM_ERR_ARG, where, "%s.%s expects %s, got nothing", group, name, expected);
        x->bad_values++;
        return;
    }
    if (memchr(value, '\n', vlen)) {
        CFG_ERROR(x, DLM_ERR_ARG, where, "%s.%s: the value must be on one line", group, name);
        x->bad_values++;
        return;
    }

    /* group = { name = value; }; with a bare word quoted for string keys */
    size_t cap = 2 * vlen + strlen(group) + strlen(name) + 32;
    char *src = malloc(cap), *vcopy = malloc(vlen + 1);
    if (!src || !vcopy) {
        free(src);
        free(vcopy);
        CFG_ERROR(x, DLM_ERR_NOMEM, where, "out of memory reading the override");
        return;
    }
    memcpy(vcopy, value, vlen);
    vcopy[vlen] = '\0';
    int stringish = ki->type == K_STRING || ki->type == K_ENUM || ki->type == K_PATHS;
    int int_width = stringish ? 0 : int_literal_width(vcopy);
    if (int_width == 3) {
        CFG_ERROR(x, DLM_ERR_ARG, where, "%s.%s: the integer %s does not fit 64 bits (the largest "
                  "is 9223372036854775807)", group, name, vcopy);
        x->bad_values++;
        free(src);
        free(vcopy);
        return;
    }
    size_t len = (size_t)snprintf(src, cap, "%s = { %s = ", group, name);
    if (stringish && vcopy[0] != '"' && vcopy[0] != '[' && vcopy[0] != '(') {
        src[len++] = '"';
        for (size_t i = 0; i < vlen; i++) {
            if (vcopy[i] == '"' || vcopy[i] == '\\') src[len++] = '\\';
            src[len++] = vcopy[i];
        }
        src[len++] = '"';
        src[len] = '\0';
    } else {
        len += (size_t)snprintf(src + len, cap - len, "%s%s", vcopy, int_width == 2 ? "L" : "");
    }
    snprintf(src + len, cap - len, "; };");

    config_t cf;
    config_init(&cf);
    if (!config_read_string(&cf, src)) {
        CFG_ERROR(x, DLM_ERR_ARG, where, "%s.%s expects %s, got '%s'", group, name, expected, vcopy);
        x->bad_values++;
    } else {
        const config_setting_t *root = config_root_setting(&cf);
        const config_setting_t *g = config_setting_length(root) == 1
                                        ? config_setting_get_elem(root, 0) : NULL;
        const config_setting_t *s = g && config_setting_is_group(g) && config_setting_length(g) == 1
                                        ? config_setting_get_elem(g, 0) : NULL;
        if (!s || strcmp(config_setting_name(g), group) != 0 ||
            strcmp(config_setting_name(s), name) != 0) {
            CFG_ERROR(x, DLM_ERR_ARG, where, "%s.%s expects a single value (%s), got '%s'", group,
                      name, expected, vcopy);
            x->bad_values++;
        } else {
            apply_setting(x, k, s, where, DLM_ERR_ARG);
        }
    }
    config_destroy(&cf);
    free(src);
    free(vcopy);
}

/* libconfig 1.5 reads a plain integer literal beyond 32 bits as a wrapped
 * int (5000000000 becomes 705032704) with no error, so the text is scanned
 * for such literals first; 5000000000L is read correctly. Follows
 * @include lines (relative to include_dir, as libconfig does). */
static void scan_wide_ints(load_ctx *x, const char *text, const char *file, int depth)
{
    unsigned line = 1;
    const char *p = text;
    char where[WHERE_MAX];
    while (*p) {
        if (*p == '\n') {
            line++, p++;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            while (*p && *p != '\n') p++;
        } else if (p[0] == '/' && p[1] == '*') {
            for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
                if (*p == '\n') line++;
            if (*p) p += 2;
        } else if (*p == '@') {
            /* @include "file" */
            const char *q = p + 1;
            while (*q && *q != '\n' && *q != '"') q++;
            const char *e = *q == '"' ? strchr(q + 1, '"') : NULL;
            if (strncmp(p, "@include", 8) == 0 && e && depth < 10) {
                char inc[DLM_CONFIG_PATH_MAX + 2];
                snprintf(inc, sizeof inc, "%s%s%.*s", x->include_dir ? x->include_dir : "",
                         x->include_dir ? "/" : "", (int)(e - q - 1), q + 1);
                FILE *f = fopen(inc, "rb");
                char *buf = NULL;
                if (f && fseek(f, 0, SEEK_END) == 0) {
                    long size = ftell(f);
                    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1))) {
                        size_t got = fread(buf, 1, (size_t)size, f);
                        buf[got] = '\0';
                    }
                }
                if (f) fclose(f);
                if (buf) scan_wide_ints(x, buf, inc, depth + 1);
                free(buf);
            }
            while (*p && *p != '\n') p++;
        } else if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1]) p++;
                if (*p == '\n') line++;
            }
            if (*p) p++;
        } else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '*') {
            while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                   *p == '_' || *p == '-' || *p == '*')
                p++;
        } else if (*p >= '0' && *p <= '9') {
            const char *start = p;
            int neg = start > text && start[-1] == '-';
            if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
                p += 2;
                const char *h = p;
                while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')) p++;
                if (*p == 'L') {
                    p++;
                    continue;
                }
                errno = 0;
                unsigned long long v = strtoull(h, NULL, 16);
                if (errno != 0 || v > INT_MAX) {
                    snprintf(where, sizeof where, "%s line %u", file, line);
                    CFG_ERROR(x, DLM_ERR_FORMAT, where,
                              "the integer %.*s does not fit libconfig's 32-bit int and would be "
                              "read wrapped; write %.*sL for a 64-bit integer",
                              (int)(p - start), start, (int)(p - start), start);
                }
                continue;
            }
            while (*p >= '0' && *p <= '9') p++;
            if (*p == '.' || *p == 'e' || *p == 'E') {
                while ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
                       ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')))
                    p++;
                continue;
            }
            errno = 0;
            long long v = strtoll(start, NULL, 10);
            int too_big = errno == ERANGE;
            if (*p == 'L') {
                p++;
                if (!too_big) continue;
            }
            if (too_big || (neg ? -v < INT_MIN : v > INT_MAX)) {
                snprintf(where, sizeof where, "%s line %u", file, line);
                if (too_big)
                    CFG_ERROR(x, DLM_ERR_FORMAT, where,
                              "the integer %.*s does not fit 64 bits", (int)(p - start), start);
                else
                    CFG_ERROR(x, DLM_ERR_FORMAT, where,
                              "the integer %.*s does not fit libconfig's 32-bit int and would be "
                              "read wrapped; write %.*sL for a 64-bit integer",
                              (int)(p - start), start, (int)(p - start), start);
            }
        } else {
            p++;
        }
    }
}

/* ---- validation of the final values ---- */

/* The names passed are the table's own, so the key is always found. */
static int key_at(const char *group, const char *name) { return find_key(group, name); }

/* Where a value came from, as a short note relative to loc. */
static void origin_note(const load_ctx *x, int k, const char *loc, char *buf, size_t n)
{
    if (!x->set[k]) {
        snprintf(buf, n, "the default");
        return;
    }
    const char *w = x->where[k];
    const char *lw = strstr(w, " line "), *ll = strstr(loc, " line ");
    if (lw && ll && lw - w == ll - loc && strncmp(w, loc, (size_t)(lw - w)) == 0)
        snprintf(buf, n, "from%s", lw); /* same file: "from line 7" */
    else snprintf(buf, n, "from %s", w);
}

/* An error about keys a and b together: reported where a was set, or where b
 * was if a was not, with a note on where the other value came from. */
static void pair_error(load_ctx *x, int a, int b, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void pair_error(load_ctx *x, int a, int b, const char *fmt, ...)
{
    char msg[700], note[WHERE_MAX + 40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int primary = x->set[a] ? a : x->set[b] ? b : -1;
    const char *loc = primary >= 0 ? x->where[primary] : x->label;
    int other = primary == a ? b : a;
    if (primary < 0) {
        CFG_ERROR(x, DLM_ERR_FORMAT, loc, "%s", msg);
        return;
    }
    origin_note(x, other, loc, note, sizeof note);
    if (x->set[other] && strcmp(x->where[other], loc) == 0)
        CFG_ERROR(x, DLM_ERR_FORMAT, loc, "%s", msg);
    else
        CFG_ERROR(x, DLM_ERR_FORMAT, loc, "%s (%s.%s is %s)", msg, keys[other].group,
                  keys[other].name, note);
}

static void bounds_text(const key_info *k, char *buf, size_t n)
{
    char lo[40], hi[40];
    fmt_double(k->lo, 0, lo, sizeof lo);
    fmt_double(k->hi, 0, hi, sizeof hi);
    const char *lop = k->bounds & B_LO_OPEN ? ">" : ">=", *hip = k->bounds & B_HI_OPEN ? "<" : "<=";
    if ((k->bounds & B_LO) && (k->bounds & B_HI))
        snprintf(buf, n, "%s %s and %s %s", lop, lo, hip, hi);
    else if (k->bounds & B_LO) snprintf(buf, n, "%s %s", lop, lo);
    else snprintf(buf, n, "%s %s", hip, hi);
}

/* Only values that were set: defaults are in range, and a derived default
 * (min_lr = lr / 10) is in range when its source is, so a bad lr is not
 * reported twice. */
static void check_ranges(load_ctx *x)
{
    for (int i = 0; i < N_KEYS; i++) {
        const key_info *k = &keys[i];
        if (!x->set[i] || (k->type != K_INT && k->type != K_DOUBLE)) continue;
        const char *field = (const char *)&x->c + k->offset;
        double v = k->type == K_INT ? *(const int *)field : *(const double *)field;
        const char *loc = x->where[i];
        char got[40], want[100];
        if (k->type == K_INT) snprintf(got, sizeof got, "%d", *(const int *)field);
        else fmt_double(v, 0, got, sizeof got);
        if (!isfinite(v)) {
            CFG_ERROR(x, DLM_ERR_FORMAT, loc, "%s.%s must be a finite number, got %s", k->group,
                      k->name, got);
            continue;
        }
        int bad = 0;
        if (k->bounds & B_LO) bad |= (k->bounds & B_LO_OPEN) ? !(v > k->lo) : !(v >= k->lo);
        if (k->bounds & B_HI) bad |= (k->bounds & B_HI_OPEN) ? !(v < k->hi) : !(v <= k->hi);
        if (bad) {
            bounds_text(k, want, sizeof want);
            CFG_ERROR(x, DLM_ERR_FORMAT, loc, "%s.%s must be %s, got %s", k->group, k->name, want,
                      got);
        }
    }
}

static void check_paths(load_ctx *x, int paths_key, int n, int source_key)
{
    const dlm_run_config *c = &x->c;
    const char *src = dlm_data_source_name(c->data.source);
    if (c->data.source == DLM_DATA_SYNTHETIC && n > 0)
        pair_error(x, paths_key, source_key,
                   "data.%s lists %d file%s but data.source = \"%s\" reads no files; remove "
                   "data.%s (or --set data.%s=[])",
                   keys[paths_key].name, n, n == 1 ? "" : "s", src, keys[paths_key].name,
                   keys[paths_key].name);
}

static void check_consistency(load_ctx *x)
{
    const dlm_run_config *c = &x->c;
    char a[40], b[40];

    int width = key_at("model", "width"), heads = key_at("model", "heads");
    if (c->model.width % c->model.heads != 0)
        pair_error(x, heads, width, "model.heads (%d) must divide model.width (%d)", c->model.heads,
                   c->model.width);
    else if ((c->model.width / c->model.heads) % 2 != 0)
        pair_error(x, heads, width,
                   "the head size model.width / model.heads = %d / %d = %d must be even for the "
                   "rotary embedding",
                   c->model.width, c->model.heads, c->model.width / c->model.heads);

    int batch = key_at("train", "batch"), micro = key_at("train", "micro_batch");
    if (c->train.batch % c->train.micro_batch != 0)
        pair_error(x, micro, batch, "train.batch (%d) must be divisible by train.micro_batch (%d)",
                   c->train.batch, c->train.micro_batch);

    int steps = key_at("train", "steps"), warmup = key_at("train", "warmup");
    if (c->train.warmup >= c->train.steps)
        pair_error(x, warmup, steps, "train.warmup (%d) must be < train.steps (%d)",
                   c->train.warmup, c->train.steps);

    int lr = key_at("train", "lr"), min_lr = key_at("train", "min_lr");
    if (c->train.min_lr > c->train.lr) {
        fmt_double(c->train.min_lr, 0, a, sizeof a);
        fmt_double(c->train.lr, 0, b, sizeof b);
        pair_error(x, min_lr, lr, "train.min_lr (%s) must be <= train.lr (%s)", a, b);
    }

    /* wsd decays over the last decay_fraction of the steps; a warmup that
     * runs into that decay would jump down the ramp when it ends. */
    int frac = key_at("train", "decay_fraction");
    double decay_start = c->train.steps - c->train.decay_fraction * c->train.steps;
    if (c->train.lr_schedule == DLM_LR_WSD && c->train.warmup > decay_start) {
        fmt_double(c->train.decay_fraction, 0, a, sizeof a);
        pair_error(x, warmup, frac,
                   "train.warmup (%d) runs into the wsd decay, which starts at step %.0f (the "
                   "last train.decay_fraction = %s of %d steps); shorten one of them",
                   c->train.warmup, decay_start, a, c->train.steps);
    }

    int source = key_at("data", "source"), train = key_at("data", "train");
    if (c->data.source == DLM_DATA_SHARDS && c->data.n_train_paths == 0) {
        int at = x->set[train] ? train : x->set[source] ? source : -1;
        CFG_ERROR(x, DLM_ERR_FORMAT, at >= 0 ? x->where[at] : x->label,
                  "data.train is required when data.source = \"shards\": give a path "
                  "(data.train = \"x.bin\";) or a list ([\"a.bin\", \"b.bin\"]), or set "
                  "data.source = \"synthetic\"");
    }
    check_paths(x, train, c->data.n_train_paths, source);
    check_paths(x, key_at("data", "val"), c->data.n_val_paths, source);
}

/* Values that default to another key's value follow it unless set. */
static void derive_defaults(load_ctx *x)
{
    if (!x->set[key_at("train", "micro_batch")]) x->c.train.micro_batch = x->c.train.batch;
    if (!x->set[key_at("train", "min_lr")]) x->c.train.min_lr = x->c.train.lr / 10;
    if (!x->set[key_at("train", "val_every")]) x->c.train.val_every = x->c.train.log_every;
}

static dlm_status load_common(const config_t *cf, const char *text, const char *label,
                              const char *include_dir, const char *const *overrides,
                              int n_overrides, dlm_run_config *out)
{
    DLM_CHECK(out != NULL, DLM_ERR_ARG, "dlm_config_load: out is NULL");
    DLM_CHECK(n_overrides >= 0 && (n_overrides == 0 || overrides != NULL), DLM_ERR_ARG,
              "dlm_config_load: %d overrides but no array", n_overrides);
    load_ctx *x = calloc(1, sizeof *x);
    DLM_CHECK(x != NULL, DLM_ERR_NOMEM, "allocating %zu bytes to load the configuration", sizeof *x);
    x->label = label;
    x->include_dir = include_dir;
    dlm_config_defaults(&x->c);

    if (text) scan_wide_ints(x, text, label, 0);
    if (x->n_errors > 0) x->bad_values++; /* a wrapped integer: read nothing from the file */
    else if (cf) apply_root(x, config_root_setting(cf));
    for (int i = 0; i < n_overrides; i++) {
        if (!overrides[i]) CFG_ERROR(x, DLM_ERR_ARG, "--set", "override %d is NULL", i + 1);
        else apply_override(x, overrides[i]);
    }
    /* Ranges and consistency only once every value has been read, so one
     * unreadable value does not cascade into checks against a default
     * (unknown keys do not stop them); consistency only on values in range
     * (heads = 0 would divide by zero). */
    if (x->bad_values == 0) {
        derive_defaults(x);
        int before = x->n_errors;
        check_ranges(x);
        if (x->n_errors == before) check_consistency(x);
    }

    dlm_status st = DLM_OK;
    if (x->n_errors > 0) {
        st = x->first;
        if (x->n_errors > DLM_CONFIG_MAX_ERRORS)
            dlm_error_push(st, __FILE__, __LINE__, __func__, "... and %d more errors not shown",
                           x->n_errors - DLM_CONFIG_MAX_ERRORS);
        if (x->n_errors > 1)
            dlm_error_push(st, __FILE__, __LINE__, __func__, "%s: %d errors in the configuration",
                           label, x->n_errors);
    } else {
        memcpy(out, &x->c, sizeof *out);
    }
    free(x);
    return st;
}

/* The whole file, for the wide-integer scan. */
static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap = cap ? 2 * cap : 8192);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    buf[len] = '\0';
    int failed = ferror(f); /* e.g. EISDIR: a folder opens but does not read */
    int err = errno;
    fclose(f);
    if (failed) {
        free(buf);
        errno = err;
        return NULL;
    }
    return buf;
}

dlm_status dlm_config_load(const char *path, const char *const *overrides, int n_overrides,
                           dlm_run_config *out)
{
    if (!path) {
        DLM_CALL(load_common(NULL, NULL, "(no config file)", NULL, overrides, n_overrides, out));
        return DLM_OK;
    }
    char *text = read_all(path);
    DLM_CHECK(text != NULL, DLM_ERR_IO, "cannot read config file %s: %s", path, strerror(errno));

    /* @include paths are taken relative to the file's folder. */
    char dir[DLM_CONFIG_PATH_MAX];
    const char *slash = strrchr(path, '/');
    int has_dir = slash != NULL && (size_t)(slash - path) < sizeof dir;
    if (has_dir) snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);

    config_t cf;
    config_init(&cf);
    if (has_dir) config_set_include_dir(&cf, dir);
    dlm_status st;
    if (!config_read_file(&cf, path)) {
        const char *efile = config_error_file(&cf);
        char eline[32] = "";
        if (config_error_line(&cf) > 0)
            snprintf(eline, sizeof eline, " line %d", config_error_line(&cf));
        st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__, "%s%s: %s",
                            efile ? efile : path, eline, config_error_text(&cf));
    } else {
        st = load_common(&cf, text, path, has_dir ? dir : NULL, overrides, n_overrides, out);
        if (st != DLM_OK) dlm_error_push(st, __FILE__, __LINE__, __func__, NULL);
    }
    config_destroy(&cf);
    free(text);
    return st;
}

dlm_status dlm_config_load_text(const char *text, const char *origin,
                                const char *const *overrides, int n_overrides,
                                dlm_run_config *out)
{
    DLM_CHECK(text != NULL, DLM_ERR_ARG, "dlm_config_load_text: text is NULL");
    const char *label = origin ? origin : "(config text)";
    config_t cf;
    config_init(&cf);
    dlm_status st;
    if (!config_read_string(&cf, text)) {
        const char *efile = config_error_file(&cf);
        st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__, "%s line %d: %s",
                            efile ? efile : label, config_error_line(&cf), config_error_text(&cf));
    } else {
        st = load_common(&cf, text, label, NULL, overrides, n_overrides, out);
        if (st != DLM_OK) dlm_error_push(st, __FILE__, __LINE__, __func__, NULL);
    }
    config_destroy(&cf);
    return st;
}

/* ---- writing ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} text_buf;

static void tb_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tb_printf(text_buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = 2 * b->cap + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* A libconfig string literal: quote and backslash escaped, control bytes as \xNN. */
static void tb_string(text_buf *b, const char *s)
{
    tb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') tb_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) tb_printf(b, "\\x%02x", *p);
        else tb_printf(b, "%c", *p);
    }
    tb_printf(b, "\"");
}

dlm_status dlm_config_to_text(const dlm_run_config *c, char **text)
{
    DLM_CHECK(c != NULL && text != NULL, DLM_ERR_ARG, "dlm_config_to_text: NULL argument");
    *text = NULL;
    DLM_CHECK(c->train.seed <= (uint64_t)INT64_MAX, DLM_ERR_ARG,
              "train.seed %llu does not fit libconfig's signed 64-bit integers",
              (unsigned long long)c->train.seed);
    text_buf b = {.p = malloc(4096), .cap = 4096};
    DLM_CHECK(b.p != NULL, DLM_ERR_NOMEM, "allocating the configuration text");
    b.p[0] = '\0';
    tb_printf(&b, "# dlm run configuration: every key with its final value\n");
    const char *group = NULL;
    for (int i = 0; i < N_KEYS; i++) {
        const key_info *k = &keys[i];
        const char *field = (const char *)c + k->offset;
        if (!group || strcmp(group, k->group) != 0) {
            if (group) tb_printf(&b, "};\n");
            tb_printf(&b, "%s = {\n", k->group);
            group = k->group;
        }
        tb_printf(&b, "  %s = ", k->name);
        char num[40];
        switch (k->type) {
        case K_INT: tb_printf(&b, "%d", *(const int *)field); break;
        case K_U64: {
            uint64_t v = *(const uint64_t *)field;
            tb_printf(&b, "%llu%s", (unsigned long long)v, v > (uint64_t)INT_MAX ? "L" : "");
            break;
        }
        case K_DOUBLE:
            fmt_double(*(const double *)field, 1, num, sizeof num);
            tb_printf(&b, "%s", num);
            break;
        case K_BOOL: tb_printf(&b, "%s", *(const int *)field ? "true" : "false"); break;
        case K_ENUM: {
            const char *name = choice_name(k->choices, *(const int *)field);
            if (!name) {
                free(b.p);
                DLM_CHECK(0, DLM_ERR_ARG, "%s.%s holds %d, not a known value", k->group, k->name,
                          *(const int *)field);
            }
            tb_string(&b, name);
            break;
        }
        case K_STRING: tb_string(&b, field); break;
        case K_PATHS: {
            const char(*paths)[DLM_CONFIG_PATH_MAX] = (const char(*)[DLM_CONFIG_PATH_MAX])field;
            int n = *(const int *)((const char *)c + k->count_offset);
            if (n < 0 || n > DLM_CONFIG_MAX_PATHS) {
                free(b.p);
                DLM_CHECK(0, DLM_ERR_ARG, "%s.%s: %d paths, expected 0 to %d", k->group, k->name,
                          n, DLM_CONFIG_MAX_PATHS);
            }
            if (n == 1) {
                tb_string(&b, paths[0]);
                break;
            }
            tb_printf(&b, "[");
            for (int j = 0; j < n; j++) {
                tb_printf(&b, "%s", j ? ", " : " ");
                tb_string(&b, paths[j]);
            }
            tb_printf(&b, " ]");
            break;
        }
        }
        tb_printf(&b, ";\n");
    }
    tb_printf(&b, "};\n");
    if (b.oom) {
        free(b.p);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating the configuration text");
    }
    *text = b.p;
    return DLM_OK;
}

/* ---- the rank layout ---- */

dlm_status dlm_config_check_layout(const dlm_run_config *c, int n_ranks)
{
    const int dp = c->parallel.dp, tp = c->parallel.tp, pp = c->parallel.pp;
    long long product = (long long)dp * tp * pp;
    DLM_CHECK(product == n_ranks, DLM_ERR_ARG,
              "parallel.dp x parallel.tp x parallel.pp = %d x %d x %d = %lld, but the job has %d "
              "MPI rank%s: the product must equal the number of ranks",
              dp, tp, pp, product, n_ranks, n_ranks == 1 ? "" : "s");
    DLM_CHECK(dp == 1 && tp == 1 && pp == 1, DLM_ERR_ARG,
              "parallel.dp x parallel.tp x parallel.pp = %d x %d x %d = %lld matches the %d MPI "
              "ranks, but only 1 x 1 x 1 (one rank) is supported until the parallelism work "
              "lands; run on 1 rank with parallel.dp = parallel.tp = parallel.pp = 1",
              dp, tp, pp, product, n_ranks);
    return DLM_OK;
}
