/* The table-driven command-line parser (getopt_long underneath): values
 * checked and stored, errors that name the option, the --help option list. */
#include "core/args.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTS 64

/* A type's own limit (INT_MAX, LLONG_MAX) is named only to a value above
 * it; below the minimum the message reads "an integer >= 1". */
static dlm_status parse_ll(const char *what, const char *s, long long min, long long max,
                           long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    int ok = errno == 0 && end != s && *end == '\0';
    if (ok && v >= min && v <= max) {
        *out = v;
        return DLM_OK;
    }
    int above = ok ? v > max : errno == ERANGE && *s != '-';
    int natural = max == LLONG_MAX || max == INT_MAX;
    if (natural && !above)
        DLM_CHECK(0, DLM_ERR_ARG, "%s expects an integer >= %lld, got '%s'", what, min, s);
    return dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                          "%s expects an integer in %lld..%lld, got '%s'", what, min, max, s);
}

dlm_status dlm_args_int64(const char *what, const char *s, long long min, long long max,
                          long long *out)
{
    DLM_CALL(parse_ll(what, s, min, max, out));
    return DLM_OK;
}

dlm_status dlm_args_double(const char *what, const char *s, double lo, double hi, int open_lo,
                           double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == 0 && end != s && *end == '\0' && isfinite(v) && (open_lo ? v > lo : v >= lo) &&
        v <= hi) {
        *out = v;
        return DLM_OK;
    }
    if (isinf(hi))
        DLM_CHECK(0, DLM_ERR_ARG, "%s expects a number %s %g, got '%s'", what,
                  open_lo ? ">" : ">=", lo, s);
    return dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                          "%s expects a number in %s%g, %g], got '%s'", what, open_lo ? "(" : "[",
                          lo, hi, s);
}

/* "ema or raw", "a, b or c" from "a|b|c" */
static void choice_text(const char *choices, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const char *p = choices; *p && n + 1 < len;) {
        size_t w = strcspn(p, "|");
        const char *glue = n == 0 ? "" : p[w] ? ", " : " or ";
        n += (size_t)snprintf(buf + n, len - n, "%s%.*s", glue, (int)w, p);
        p += w + (p[w] == '|');
    }
}

static int is_choice(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        size_t w = strcspn(p, "|");
        if (w == n && !strncmp(p, v, n)) return 1;
        p += w + (p[w] == '|');
    }
    return 0;
}

static dlm_status append(const dlm_arg_opt *o, const char *what, char *v)
{
    DLM_CHECK(*o->count < o->cap, DLM_ERR_ARG, "%s takes at most %d values, got more at '%s'",
              what, o->cap, v);
    ((const char **)o->dest)[(*o->count)++] = v;
    return DLM_OK;
}

static dlm_status store(const dlm_arg_opt *o, char *v)
{
    char what[96], allowed[256];
    snprintf(what, sizeof what, "--%s", o->name);
    long long x = 0;
    switch (o->kind) {
    case DLM_ARG_FLAG: *(int *)o->dest = 1; break;
    case DLM_ARG_STRING: *(const char **)o->dest = v; break;
    case DLM_ARG_CHOICE:
        choice_text(o->choices, allowed, sizeof allowed);
        DLM_CHECK(is_choice(o->choices, v), DLM_ERR_ARG, "%s expects %s, got '%s'", what, allowed,
                  v);
        *(const char **)o->dest = v;
        break;
    case DLM_ARG_INT:
        DLM_CALL(parse_ll(what, v, o->min, o->max < INT_MAX ? o->max : INT_MAX, &x));
        *(int *)o->dest = (int)x;
        break;
    case DLM_ARG_INT64:
        DLM_CALL(parse_ll(what, v, o->min, o->max, &x));
        *(int64_t *)o->dest = x;
        break;
    case DLM_ARG_DOUBLE:
        DLM_CALL(dlm_args_double(what, v, o->lo, o->hi, o->open_lo, (double *)o->dest));
        break;
    case DLM_ARG_LIST:
        if (!o->sep) {
            DLM_CALL(append(o, what, v));
            break;
        }
        for (char *p = v; *p;) { /* split in place; "a,,b" gives a and b */
            char *stop = strchr(p, o->sep);
            if (stop) *stop = '\0';
            if (*p) DLM_CALL(append(o, what, p));
            if (!stop) break;
            p = stop + 1;
        }
        break;
    }
    return DLM_OK;
}

static dlm_status positional(const dlm_args_spec *spec, char *w, int *n)
{
    if (*n < spec->max_positional) {
        spec->positional[(*n)++] = w;
        return DLM_OK;
    }
    if (spec->max_positional == 1 && spec->positional_name)
        DLM_CHECK(0, DLM_ERR_ARG, "one %s only: got '%s' and '%s'%s%s", spec->positional_name,
                  spec->positional[0], w, spec->positional_hint ? " " : "",
                  spec->positional_hint ? spec->positional_hint : "");
    DLM_CHECK(0, DLM_ERR_ARG, "unexpected argument '%s' (see --help)", w);
}

/* The row of a word "--name" or "--name=value", whole names only. */
static const dlm_arg_opt *row_of(const dlm_args_spec *spec, const char *word)
{
    if (!word || strncmp(word, "--", 2) != 0) return NULL;
    size_t len = strcspn(word + 2, "=");
    for (const dlm_arg_opt *o = spec->opts; o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, word + 2, len)) return o;
    return NULL;
}

dlm_status dlm_args_parse(const dlm_args_spec *spec, int argc, char **argv, int *help)
{
    struct option lo[MAX_OPTS + 2];
    int n = 0, n_pos = 0;
    *help = 0;
    for (; spec->opts[n].name; n++) {
        DLM_CHECK(n < MAX_OPTS, DLM_ERR_ARG, "more than %d options in one table", MAX_OPTS);
        lo[n] = (struct option){spec->opts[n].name,
                                spec->opts[n].kind == DLM_ARG_FLAG ? no_argument : required_argument,
                                NULL, 256 + n};
    }
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n + 1] = (struct option){NULL, 0, NULL, 0};
    if (spec->n_positional) *spec->n_positional = 0;
    /* "-": words that are not options come back in order (as 1), so argv[optind]
     * before each call is the word being read; ":": a missing value is ':' */
    optind = 0;
    opterr = 0;
    for (;;) {
        int at = optind ? optind : 1;
        const char *word = at < argc ? argv[at] : NULL;
        int c = getopt_long(argc, argv, "-:h", lo, NULL);
        if (c == -1) break;
        if (c == 1) {
            DLM_CALL(positional(spec, optarg, &n_pos));
            continue;
        }
        const dlm_arg_opt *o = row_of(spec, word);
        if (c == 'h' && word && (!strcmp(word, "-h") || !strcmp(word, "--help"))) {
            *help = 1;
            break;
        }
        DLM_CHECK(!(c == ':' && o), DLM_ERR_ARG,
                  "option --%s needs a value (--%s %s; see --help)", o->name, o->name,
                  o->value ? o->value : "VALUE");
        DLM_CHECK(!(c == '?' && o && o->kind == DLM_ARG_FLAG), DLM_ERR_ARG,
                  "option --%s takes no value, got '%s' (see --help)", o->name, word);
        DLM_CHECK(c >= 256 && o == &spec->opts[c - 256], DLM_ERR_ARG,
                  "unknown option '%s' (see --help)", word ? word : "?");
        DLM_CALL(store(o, optarg));
    }
    for (int i = optind; !*help && i < argc; i++) DLM_CALL(positional(spec, argv[i], &n_pos));
    if (spec->n_positional) *spec->n_positional = n_pos;
    return DLM_OK;
}

void dlm_args_help(const dlm_args_spec *spec, FILE *f)
{
    size_t col = strlen("  --help");
    for (const dlm_arg_opt *o = spec->opts; o->name; o++) {
        size_t w = 4 + strlen(o->name) + (o->value ? 1 + strlen(o->value) : 0);
        if (w > col) col = w;
    }
    col += 2;
    fputs(spec->usage, f);
    for (const dlm_arg_opt *o = spec->opts;; o++) {
        const char *name = o->name ? o->name : "help", *help = o->name ? o->help : "this text";
        int w = fprintf(f, "  --%s%s%s", name, o->name && o->value ? " " : "",
                        o->name && o->value ? o->value : "");
        fprintf(f, "%*s", (int)col - w, "");
        if (!*help) fputc('\n', f);
        for (const char *p = help; *p;) {
            size_t len = strcspn(p, "\n");
            fprintf(f, "%.*s\n", (int)len, p);
            p += len;
            if (*p == '\n' && *++p) fprintf(f, "%*s", (int)col, "");
        }
        if (!o->name) break;
    }
    if (spec->epilog) fputs(spec->epilog, f);
}
