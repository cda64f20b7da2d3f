/* The command-line parser every program uses: a table of long options
 * (name, kind of value, where it goes, a help line) drives getopt_long,
 * range checks with errors that name the option and what it expected, and
 * the option list of --help.
 *
 *   int K = 16, json = 0;
 *   const char *ckpt = NULL;
 *   const dlm_arg_opt opts[] = {
 *       DLM_OPT_INT("K", &K, 1, INT_MAX, "N", "mask samples per chunk (default 16)"),
 *       DLM_OPT_FLAG("json", &json, "print one JSON object"),
 *       DLM_OPT_END};
 *   const dlm_args_spec spec = {.opts = opts, .usage = "usage: dlm-x CKPT [options]\n",
 *                               .positional = &ckpt, .max_positional = 1,
 *                               .positional_name = "checkpoint"};
 *   int help;
 *   DLM_CALL(dlm_args_parse(&spec, argc, argv, &help));
 *   if (help) dlm_args_help(&spec, stdout);
 *
 * Options are read in order; --help (or -h) stops the reading there. Only
 * whole names count ("--thr" is not --threads); a value is the next word
 * or follows '=' ("--K 8", "--K=8"). Everything after "--" is positional.
 * getopt_long keeps its state in globals (optind, optarg): this resets them
 * at each call, and is not for use from two threads at once. */
#ifndef DLM_ARGS_H
#define DLM_ARGS_H

#include <stdint.h>
#include <stdio.h>

#include "core/status.h"

typedef enum {
    DLM_ARG_FLAG,   /* no value: *(int *)dest = 1 */
    DLM_ARG_STRING, /* *(const char **)dest = the value (the last one given wins) */
    DLM_ARG_CHOICE, /* a string that must be one of choices ("ema|raw") */
    DLM_ARG_INT,    /* *(int *)dest, an integer in [min, max] */
    DLM_ARG_INT64,  /* *(int64_t *)dest, an integer in [min, max] */
    DLM_ARG_DOUBLE, /* *(double *)dest, finite, in [lo, hi] ((lo, hi] with open_lo) */
    DLM_ARG_LIST    /* repeatable: each value appended to (const char **)dest, *count of
                     * cap; with sep, a value is split there in place (empty items dropped) */
} dlm_arg_kind;

typedef struct {
    const char *name;  /* long name, without the "--"; NULL ends the table */
    dlm_arg_kind kind;
    void *dest;
    const char *value; /* the value's name in --help ("N", "PATH"); NULL for flags */
    const char *help;  /* may hold '\n': each further line is indented to the help column */
    long long min, max;
    double lo, hi;
    int open_lo;
    const char *choices;
    int *count, cap;
    char sep;
} dlm_arg_opt;

/* The table's rows. The casts check the destination's type: a wrong
 * pointer is a compiler diagnostic, not a corrupted variable. */
#define DLM_ARG_DEST_(T, d) ((void *)(1 ? (d) : (T *)0))
#define DLM_OPT_FLAG(name, dest, help) \
    {(name), DLM_ARG_FLAG, DLM_ARG_DEST_(int, dest), NULL, (help), 0, 0, 0, 0, 0, NULL, NULL, 0, 0}
#define DLM_OPT_STRING(name, dest, value, help)                                                   \
    {(name), DLM_ARG_STRING, DLM_ARG_DEST_(const char *, dest), (value), (help), 0, 0, 0, 0, 0,   \
     NULL, NULL, 0, 0}
#define DLM_OPT_CHOICE(name, dest, choices, value, help)                                          \
    {(name), DLM_ARG_CHOICE, DLM_ARG_DEST_(const char *, dest), (value), (help), 0, 0, 0, 0, 0,   \
     (choices), NULL, 0, 0}
#define DLM_OPT_INT(name, dest, min, max, value, help)                                            \
    {(name), DLM_ARG_INT, DLM_ARG_DEST_(int, dest), (value), (help), (min), (max), 0, 0, 0, NULL, \
     NULL, 0, 0}
#define DLM_OPT_INT64(name, dest, min, max, value, help)                                          \
    {(name), DLM_ARG_INT64, DLM_ARG_DEST_(int64_t, dest), (value), (help), (min), (max), 0, 0, 0, \
     NULL, NULL, 0, 0}
#define DLM_OPT_DOUBLE(name, dest, lo, hi, open_lo, value, help)                                  \
    {(name), DLM_ARG_DOUBLE, DLM_ARG_DEST_(double, dest), (value), (help), 0, 0, (lo), (hi),      \
     (open_lo), NULL, NULL, 0, 0}
#define DLM_OPT_LIST(name, dest, count, cap, sep, value, help)                                    \
    {(name), DLM_ARG_LIST, DLM_ARG_DEST_(const char *, dest), (value), (help), 0, 0, 0, 0, 0,     \
     NULL, (count), (cap), (sep)}
#define DLM_OPT_END {NULL, DLM_ARG_FLAG, NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, 0, 0}

typedef struct {
    const dlm_arg_opt *opts; /* ended by DLM_OPT_END */
    const char *usage;       /* --help: the text before the options */
    const char *epilog;      /* --help: the text after them (may be NULL) */
    /* Words that are not options go to positional[0..max_positional); one
     * more is an error "one <positional_name> only: got 'a' and 'b'"
     * (with max_positional 1) followed by positional_hint, or
     * "unexpected argument 'x'". n_positional may be NULL. */
    const char **positional;
    int max_positional;
    int *n_positional;
    const char *positional_name, *positional_hint;
} dlm_args_spec;

/* Reads argv[1..argc) into the table's destinations (defaults are whatever
 * they held). *help = 1 when --help or -h came (the words after it are not
 * read). DLM_ERR_ARG for an unknown option, a missing value, a value that
 * does not parse or is out of range, too many positional words. */
dlm_status dlm_args_parse(const dlm_args_spec *spec, int argc, char **argv, int *help);

/* usage, the options (with --help last) and epilog. */
void dlm_args_help(const dlm_args_spec *spec, FILE *f);

/* The number checks of the table, for values that arrive otherwise (a list
 * item): what names the value in the message ("--steps"). */
dlm_status dlm_args_int64(const char *what, const char *s, long long min, long long max,
                          long long *out);
dlm_status dlm_args_double(const char *what, const char *s, double lo, double hi, int open_lo,
                           double *out);

#endif
