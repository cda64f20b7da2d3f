/* Configuration files read against a schema (see config.h). One table of
 * keys drives reading, type and range checks and the text written back; the
 * schema's own checks tie keys together after it. Every value remembers
 * where it came from (file and line, or the override), so a consistency
 * error can point at the line to change. */
#include "core/config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/names.h"

static int find_group(const dlm_config_schema *s, const char *name)
{
    for (int g = 0; g < s->n_groups; g++)
        if (strcmp(s->groups[g], name) == 0) return g;
    return -1;
}

static int find_key(const dlm_config_schema *s, const char *group, const char *name)
{
    for (int k = 0; k < s->n_keys; k++)
        if (strcmp(s->keys[k].group, group) == 0 && strcmp(s->keys[k].name, name) == 0) return k;
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

static void list_keys(const dlm_config_schema *s, const char *group, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < s->n_keys && len < n; k++)
        if (strcmp(s->keys[k].group, group) == 0)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", s->keys[k].name);
}

static void list_groups(const dlm_config_schema *s, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int g = 0; g < s->n_groups && len < n; g++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", s->groups[g]);
}

/* "; did you mean train.lr?" for a close key of the same group, or the same
 * key name in another group; "" when nothing is close. */
static void suggest_key(const dlm_config_schema *s, const char *group, const char *name, char *buf,
                        size_t n)
{
    int best = -1, best_d = 3;
    for (int k = 0; k < s->n_keys; k++) {
        if (group && strcmp(s->keys[k].group, group) != 0) continue;
        int d = edit_distance(name, s->keys[k].name);
        if (d < best_d) best = k, best_d = d;
    }
    buf[0] = '\0';
    if (best >= 0) {
        snprintf(buf, n, "; did you mean %s.%s?", s->keys[best].group, s->keys[best].name);
        return;
    }
    /* every group that has the name: "train.lr or muon.lr" */
    size_t len = 0;
    for (int k = 0; k < s->n_keys && len < n; k++)
        if (strcmp(s->keys[k].name, name) == 0)
            len += (size_t)snprintf(buf + len, n - len, "%s%s.%s", len ? " or " : "; did you mean ",
                                    s->keys[k].group, s->keys[k].name);
    if (len && len < n) snprintf(buf + len, n - len, "?");
}

static void expected_text(const dlm_config_key *k, char *buf, size_t n)
{
    switch (k->type) {
    case DLM_KEY_INT: snprintf(buf, n, "an integer"); return;
    case DLM_KEY_U64: snprintf(buf, n, "a non-negative integer"); return;
    case DLM_KEY_DOUBLE: snprintf(buf, n, "a number"); return;
    case DLM_KEY_BOOL: snprintf(buf, n, "true or false"); return;
    case DLM_KEY_STRING: snprintf(buf, n, "a string"); return;
    case DLM_KEY_PATHS: snprintf(buf, n, "a string or a list of strings"); return;
    case DLM_KEY_INTS: snprintf(buf, n, "an array of integers, [ ] for none"); return;
    case DLM_KEY_DOUBLES: snprintf(buf, n, "an array of numbers, [ ] for none"); return;
    case DLM_KEY_ENUM: break;
    }
    size_t len = (size_t)snprintf(buf, n, "one of");
    for (int v = 0; k->names[v] && len < n; v++)
        len += (size_t)snprintf(buf + len, n - len, "%s\"%s\"", v == 0 ? " " : ", ", k->names[v]);
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

struct dlm_config_load_ctx {
    const dlm_config_schema *s;
    const char *label;       /* the file (or origin) named in messages */
    const char *include_dir; /* prefix shown for settings from @include'd files */
    void *c;                 /* the struct being filled, schema->size bytes */
    char (*where)[WHERE_MAX]; /* per key: "file line 12" or "--set ..." where it was set */
    unsigned char *set;       /* per key: 1 once the file or an override set it */
    int n_errors;
    int bad_values; /* errors that left a key at a value the user did not give */
    dlm_status first;
};
typedef dlm_config_load_ctx load_ctx;

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
static int string_fits(load_ctx *x, dlm_status code, const dlm_config_key *k, const char *where,
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
    const dlm_config_key *k = &x->s->keys[ki];
    char *field = (char *)x->c + k->offset;
    int t = config_setting_type(s);
    char expected[160], got[200];
    expected_text(k, expected, sizeof expected);
    describe(s, got, sizeof got);
    int is_int = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
    int before = x->n_errors;

    switch (k->type) {
    case DLM_KEY_INT:
    case DLM_KEY_U64: {
        if (!is_int) goto wrong_type;
        long long v = config_setting_get_int64(s);
        if (k->type == DLM_KEY_INT && (v < INT_MIN || v > INT_MAX))
            CFG_ERROR(x, code, where, "%s.%s must be an integer between %d and %d, got %lld",
                      k->group, k->name, INT_MIN, INT_MAX, v);
        else if (k->type == DLM_KEY_U64 && v < 0)
            CFG_ERROR(x, code, where, "%s.%s must be >= 0, got %lld", k->group, k->name, v);
        else if (k->type == DLM_KEY_INT) *(int *)field = (int)v;
        else *(uint64_t *)field = (uint64_t)v;
        break;
    }
    case DLM_KEY_DOUBLE:
        if (is_int) *(double *)field = (double)config_setting_get_int64(s);
        else if (t == CONFIG_TYPE_FLOAT) *(double *)field = config_setting_get_float(s);
        else goto wrong_type;
        break;
    case DLM_KEY_BOOL:
        if (t != CONFIG_TYPE_BOOL) goto wrong_type;
        *(int *)field = config_setting_get_bool(s) ? 1 : 0;
        break;
    case DLM_KEY_ENUM: {
        if (t != CONFIG_TYPE_STRING) goto wrong_type;
        int v = dlm_names_find(k->names, config_setting_get_string(s));
        if (v >= 0) *(int *)field = v;
        else CFG_ERROR(x, code, where, "%s.%s must be %s, got %s", k->group, k->name, expected, got);
        break;
    }
    case DLM_KEY_STRING:
        if (t != CONFIG_TYPE_STRING) goto wrong_type;
        if (string_fits(x, code, k, where, config_setting_get_string(s), ""))
            store_string(field, config_setting_get_string(s));
        break;
    case DLM_KEY_PATHS: {
        char(*paths)[DLM_CONFIG_PATH_MAX] = (char(*)[DLM_CONFIG_PATH_MAX])field;
        int *count = (int *)((char *)x->c + k->count_offset);
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
    case DLM_KEY_INTS:
    case DLM_KEY_DOUBLES: { /* arrays of numbers, in place (a failed load leaves *out untouched) */
        int ints = k->type == DLM_KEY_INTS, *count = (int *)((char *)x->c + k->count_offset);
        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) goto wrong_type;
        int n = config_setting_length(s);
        if (n > DLM_CONFIG_MAX_INTS) {
            CFG_ERROR(x, code, where, "%s.%s lists %d values; at most %d are supported", k->group,
                      k->name, n, DLM_CONFIG_MAX_INTS);
            break;
        }
        for (int i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            int et = config_setting_type(e), is_int = et == CONFIG_TYPE_INT || et == CONFIG_TYPE_INT64;
            long long ev = is_int ? config_setting_get_int64(e) : 0;
            int ok = ints ? is_int && ev >= INT_MIN && ev <= INT_MAX : is_int || et == CONFIG_TYPE_FLOAT;
            if (!ok) {
                describe(e, got, sizeof got);
                CFG_ERROR(x, code, where, "%s.%s expects an array of %s, but element %d is %s", k->group,
                          k->name, ints ? "integers" : "numbers", i + 1, got);
            } else if (ints) {
                ((int *)field)[i] = (int)ev;
            } else {
                ((double *)field)[i] = is_int ? (double)ev : config_setting_get_float(e);
            }
        }
        if (x->n_errors == before) *count = n;
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
        if (find_group(x->s, gname) < 0) {
            list_groups(x->s, list, sizeof list);
            if (config_setting_is_group(g)) {
                int best = -1, best_d = 3;
                for (int j = 0; j < x->s->n_groups; j++) {
                    int d = edit_distance(gname, x->s->groups[j]);
                    if (d < best_d) best = j, best_d = d;
                }
                if (best >= 0) snprintf(hint, sizeof hint, "; did you mean %s?", x->s->groups[best]);
                else hint[0] = '\0';
                CFG_ERROR(x, DLM_ERR_FORMAT, where, "unknown group %s (valid groups: %s)%s",
                          gname, list, hint);
            } else {
                suggest_key(x->s, NULL, gname, hint, sizeof hint);
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
            int k = find_key(x->s, gname, name);
            if (k < 0) {
                list_keys(x->s, gname, list, sizeof list);
                suggest_key(x->s, gname, name, hint, sizeof hint);
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
    if (find_group(x->s, group) < 0) {
        list_groups(x->s, list, sizeof list);
        CFG_ERROR(x, DLM_ERR_ARG, where, "unknown key %s.%s: no group %s (valid groups: %s)",
                  group, name, group, list);
        return;
    }
    int k = find_key(x->s, group, name);
    if (k < 0) {
        list_keys(x->s, group, list, sizeof list);
        suggest_key(x->s, group, name, hint, sizeof hint);
        CFG_ERROR(x, DLM_ERR_ARG, where, "unknown key %s.%s (valid keys of %s: %s)%s", group,
                  name, group, list, hint);
        return;
    }
    const dlm_config_key *ki = &x->s->keys[k];
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
    int stringish = ki->type == DLM_KEY_STRING || ki->type == DLM_KEY_ENUM || ki->type == DLM_KEY_PATHS;
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
                /* libconfig has read it already; failing now is a race, reported as such */
                char *buf;
                size_t len;
                if (dlm_read_file(inc, &buf, &len) != DLM_OK) {
                    snprintf(where, sizeof where, "%s line %u", file, line);
                    CFG_ERROR(x, DLM_ERR_IO, where, "the @include'd file %s could not be read again", inc);
                    buf = NULL;
                }
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

/* The index of "group.name", or -1. */
static int key_at(const dlm_config_schema *s, const char *key)
{
    const char *dot = strchr(key, '.');
    for (int k = 0; dot && k < s->n_keys; k++)
        if (strlen(s->keys[k].group) == (size_t)(dot - key) &&
            strncmp(s->keys[k].group, key, (size_t)(dot - key)) == 0 &&
            strcmp(s->keys[k].name, dot + 1) == 0)
            return k;
    return -1;
}

/* A schema check naming a key the schema lacks is a bug in the schema;
 * it fails the load rather than pass unchecked. */
static int key_or_error(load_ctx *x, const char *key)
{
    int k = key_at(x->s, key);
    if (k < 0) CFG_ERROR(x, DLM_ERR_STATE, x->label, "the configuration schema has no key %s", key);
    return k;
}

int dlm_config_is_set(const dlm_config_load_ctx *x, const char *key)
{
    int k = key_at(x->s, key);
    return k >= 0 && x->set[k];
}

void dlm_config_format_double(double v, char *buf, size_t n) { fmt_double(v, 0, buf, n); }

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

void dlm_config_pair_error(dlm_config_load_ctx *x, const char *key_a, const char *key_b,
                           const char *fmt, ...)
{
    char msg[700], note[WHERE_MAX + 40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int a = key_or_error(x, key_a), b = key_or_error(x, key_b);
    if (a < 0 || b < 0) return;
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
        CFG_ERROR(x, DLM_ERR_FORMAT, loc, "%s (%s.%s is %s)", msg, x->s->keys[other].group,
                  x->s->keys[other].name, note);
}

void dlm_config_key_error(dlm_config_load_ctx *x, const char *key_a, const char *key_b,
                          const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int a = key_or_error(x, key_a), b = key_b ? key_or_error(x, key_b) : -1;
    if (a < 0 || (key_b && b < 0)) return;
    int at = x->set[a] ? a : b >= 0 && x->set[b] ? b : -1;
    CFG_ERROR(x, DLM_ERR_FORMAT, at >= 0 ? x->where[at] : x->label, "%s", msg);
}

static void bounds_text(const dlm_config_key *k, char *buf, size_t n)
{
    char lo[40], hi[40];
    fmt_double(k->lo, 0, lo, sizeof lo);
    fmt_double(k->hi, 0, hi, sizeof hi);
    const char *lop = k->bounds & DLM_BOUND_LO_OPEN ? ">" : ">=", *hip = k->bounds & DLM_BOUND_HI_OPEN ? "<" : "<=";
    if ((k->bounds & DLM_BOUND_LO) && (k->bounds & DLM_BOUND_HI))
        snprintf(buf, n, "%s %s and %s %s", lop, lo, hip, hi);
    else if (k->bounds & DLM_BOUND_LO) snprintf(buf, n, "%s %s", lop, lo);
    else snprintf(buf, n, "%s %s", hip, hi);
}

/* Only values that were set: defaults are in range, and a derived default
 * (min_lr = lr / 10) is in range when its source is, so a bad lr is not
 * reported twice. */
static void check_list_ranges(load_ctx *x, int i)
{
    const dlm_config_key *k = &x->s->keys[i];
    const double *v = (const double *)((const char *)x->c + k->offset);
    int n = *(const int *)((const char *)x->c + k->count_offset);
    for (int j = 0; j < n; j++) {
        int bad = !isfinite(v[j]);
        if (k->bounds & DLM_BOUND_LO) bad |= (k->bounds & DLM_BOUND_LO_OPEN) ? !(v[j] > k->lo) : !(v[j] >= k->lo);
        if (k->bounds & DLM_BOUND_HI) bad |= (k->bounds & DLM_BOUND_HI_OPEN) ? !(v[j] < k->hi) : !(v[j] <= k->hi);
        if (!bad) continue;
        char got[40], want[100] = "finite";
        fmt_double(v[j], 0, got, sizeof got);
        if (k->bounds) bounds_text(k, want, sizeof want);
        CFG_ERROR(x, DLM_ERR_FORMAT, x->where[i], "%s.%s element %d must be %s, got %s", k->group,
                  k->name, j + 1, want, got);
    }
}

static void check_ranges(load_ctx *x)
{
    for (int i = 0; i < x->s->n_keys; i++) {
        const dlm_config_key *k = &x->s->keys[i];
        if (x->set[i] && k->type == DLM_KEY_DOUBLES) check_list_ranges(x, i);
        if (!x->set[i] || (k->type != DLM_KEY_INT && k->type != DLM_KEY_DOUBLE)) continue;
        const char *field = (const char *)x->c + k->offset;
        double v = k->type == DLM_KEY_INT ? *(const int *)field : *(const double *)field;
        const char *loc = x->where[i];
        char got[40], want[100];
        if (k->type == DLM_KEY_INT) snprintf(got, sizeof got, "%d", *(const int *)field);
        else fmt_double(v, 0, got, sizeof got);
        if (!isfinite(v)) {
            CFG_ERROR(x, DLM_ERR_FORMAT, loc, "%s.%s must be a finite number, got %s", k->group,
                      k->name, got);
            continue;
        }
        int bad = 0;
        if (k->bounds & DLM_BOUND_LO) bad |= (k->bounds & DLM_BOUND_LO_OPEN) ? !(v > k->lo) : !(v >= k->lo);
        if (k->bounds & DLM_BOUND_HI) bad |= (k->bounds & DLM_BOUND_HI_OPEN) ? !(v < k->hi) : !(v <= k->hi);
        if (bad) {
            bounds_text(k, want, sizeof want);
            CFG_ERROR(x, DLM_ERR_FORMAT, loc, "%s.%s must be %s, got %s", k->group, k->name, want,
                      got);
        }
    }
}

static dlm_status load_common(const dlm_config_schema *schema, const config_t *cf,
                              const char *text, const char *label, const char *include_dir,
                              const char *const *overrides, int n_overrides, void *out)
{
    DLM_CHECK(schema != NULL && out != NULL, DLM_ERR_ARG, "dlm_config_load: schema or out is NULL");
    DLM_CHECK(n_overrides >= 0 && (n_overrides == 0 || overrides != NULL), DLM_ERR_ARG,
              "dlm_config_load: %d overrides but no array", n_overrides);
    size_t n_keys = (size_t)schema->n_keys;
    load_ctx *x = calloc(1, sizeof *x);
    void *c = calloc(1, schema->size);
    char(*where)[WHERE_MAX] = calloc(n_keys, sizeof *where);
    unsigned char *set = calloc(n_keys, 1);
    if (!x || !c || !where || !set) {
        free(x), free(c), free(where), free(set);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating %zu bytes to load the configuration",
                  sizeof *x + schema->size + n_keys * (sizeof *where + 1));
    }
    *x = (load_ctx){.s = schema, .label = label, .include_dir = include_dir, .c = c,
                    .where = where, .set = set};
    schema->defaults(c);

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
        if (schema->derive) schema->derive(x, c);
        int before = x->n_errors;
        check_ranges(x);
        if (x->n_errors == before && schema->check) schema->check(x, c);
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
        memcpy(out, c, schema->size);
    }
    free(set);
    free(where);
    free(c);
    free(x);
    return st;
}

dlm_status dlm_config_load(const dlm_config_schema *schema, const char *path,
                           const char *const *overrides, int n_overrides, void *out)
{
    if (!path) {
        DLM_CALL(load_common(schema, NULL, NULL, "(no config file)", NULL, overrides, n_overrides,
                             out));
        return DLM_OK;
    }
    /* The text too, for the wide-integer scan. */
    char *text;
    size_t len;
    DLM_CALL(dlm_read_file_as("config file", path, &text, &len));

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
        st = load_common(schema, &cf, text, path, has_dir ? dir : NULL, overrides, n_overrides,
                         out);
        if (st != DLM_OK) dlm_error_push(st, __FILE__, __LINE__, __func__, NULL);
    }
    config_destroy(&cf);
    free(text);
    return st;
}

dlm_status dlm_config_load_text(const dlm_config_schema *schema, const char *text,
                                const char *origin, const char *const *overrides,
                                int n_overrides, void *out)
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
        st = load_common(schema, &cf, text, label, NULL, overrides, n_overrides, out);
        if (st != DLM_OK) dlm_error_push(st, __FILE__, __LINE__, __func__, NULL);
    }
    config_destroy(&cf);
    return st;
}
