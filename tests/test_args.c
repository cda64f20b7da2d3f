/* The command-line parser (core/args.h): values land in their variables
 * with their types, every refusal names the option and what it expected,
 * and --help lists the table. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/args.h"
#include "harness.h"

typedef struct {
    int K, json;
    int64_t seed;
    double eps, top_p;
    const char *out, *weights, *data[4], *sets[4], *pos[2];
    int n_data, n_sets, n_pos;
} vars;

static vars v;
static const dlm_arg_opt opts[] = {
    DLM_OPT_INT("K", &v.K, 1, INT_MAX, "N", "samples\nper chunk"),
    DLM_OPT_FLAG("json", &v.json, "one JSON object"),
    DLM_OPT_INT64("seed", &v.seed, 0, INT64_MAX, "S", "the seed"),
    DLM_OPT_DOUBLE("eps", &v.eps, 0, INFINITY, 1, "X", "lower end"),
    DLM_OPT_DOUBLE("top-p", &v.top_p, 1e-12, 1, 0, "P", "nucleus"),
    DLM_OPT_STRING("out", &v.out, "PATH", "results file"),
    DLM_OPT_CHOICE("weights", &v.weights, "ema|raw", "ema|raw", "which weights"),
    DLM_OPT_LIST("data", v.data, &v.n_data, 4, ',', "PATH[,PATH]", "shards"),
    DLM_OPT_LIST("set", v.sets, &v.n_sets, 4, 0, "K=V", "a key"),
    DLM_OPT_END};
static const dlm_args_spec spec = {.opts = opts, .usage = "usage: t CKPT [options]\n",
                                   .epilog = "the end\n", .positional = v.pos,
                                   .max_positional = 1, .n_positional = &v.n_pos,
                                   .positional_name = "checkpoint",
                                   .positional_hint = "(use --compare)"};

/* Parses the words (a NULL-terminated list after the program name) into
 * fresh variables; *help as the parser left it. argv strings are copies:
 * lists split them in place. */
static dlm_status parse(int *help, const char *const *words)
{
    static char buf[32][64];
    char *argv[33] = {"t"};
    int argc = 1;
    for (; words[argc - 1]; argc++) {
        snprintf(buf[argc - 1], sizeof buf[0], "%s", words[argc - 1]);
        argv[argc] = buf[argc - 1];
    }
    memset(&v, 0, sizeof v);
    v.K = 16;
    dlm_error_clear();
    return dlm_args_parse(&spec, argc, argv, help);
}

#define PARSE(help, ...) parse((help), (const char *const[]){__VA_ARGS__, NULL})

/* The refusal's first line is exactly want. */
static void refused(dlm_status st, const char *want)
{
    CU_ASSERT(st == DLM_ERR_ARG);
    const char *t = dlm_error_text();
    size_t n = strcspn(t, "\n");
    const char *code = strstr(t, " (invalid argument)");
    if (code && (size_t)(code - t) < n) n = (size_t)(code - t);
    if (strlen(want) != n || strncmp(t, want, n))
        printf("\n  got \"%.*s\"\n  want \"%s\"\n", (int)n, t, want);
    CU_ASSERT(strlen(want) == n && !strncmp(t, want, n));
}

static void test_values(void)
{
    int help = 1;
    DLM_TEST_OK(PARSE(&help, "ck", "--K", "8", "--json", "--seed=9223372036854775807", "--eps",
                      "1e-3", "--top-p", "1", "--weights", "raw", "--data", "a,,b", "--data", "c",
                      "--set", "x=1,2", "--out", "-o"));
    CU_ASSERT(help == 0);
    CU_ASSERT(v.K == 8 && v.json == 1 && v.seed == INT64_MAX);
    CU_ASSERT(v.eps == 1e-3 && v.top_p == 1.0);
    CU_ASSERT(!strcmp(v.weights, "raw") && !strcmp(v.out, "-o")); /* a value may start with '-' */
    CU_ASSERT(v.n_data == 3 && !strcmp(v.data[0], "a") && !strcmp(v.data[1], "b") &&
              !strcmp(v.data[2], "c"));
    CU_ASSERT(v.n_sets == 1 && !strcmp(v.sets[0], "x=1,2")); /* no separator: kept whole */
    CU_ASSERT(v.n_pos == 1 && !strcmp(v.pos[0], "ck"));
    /* defaults stay; after "--" a word is positional even when it looks like an option */
    DLM_TEST_OK(PARSE(&help, "--", "--K"));
    CU_ASSERT(v.K == 16 && v.n_pos == 1 && !strcmp(v.pos[0], "--K"));
}

static void test_refusals(void)
{
    int help;
    refused(PARSE(&help, "--bogus"), "unknown option '--bogus' (see --help)");
    refused(PARSE(&help, "--se", "1"), "unknown option '--se' (see --help)"); /* no abbreviations */
    refused(PARSE(&help, "-x"), "unknown option '-x' (see --help)");
    refused(PARSE(&help, "--K"), "option --K needs a value (--K N; see --help)");
    refused(PARSE(&help, "--json=1"), "option --json takes no value, got '--json=1' (see --help)");
    refused(PARSE(&help, "--K", "0"), "--K expects an integer >= 1, got '0'");
    refused(PARSE(&help, "--K", "8x"), "--K expects an integer >= 1, got '8x'");
    refused(PARSE(&help, "--K", "4294967296"),
            "--K expects an integer in 1..2147483647, got '4294967296'");
    refused(PARSE(&help, "--seed", "-1"), "--seed expects an integer >= 0, got '-1'");
    refused(PARSE(&help, "--eps", "0"), "--eps expects a number > 0, got '0'");
    refused(PARSE(&help, "--eps", "nan"), "--eps expects a number > 0, got 'nan'");
    refused(PARSE(&help, "--top-p", "1.5"), "--top-p expects a number in [1e-12, 1], got '1.5'");
    refused(PARSE(&help, "--weights", "fp16"), "--weights expects ema or raw, got 'fp16'");
    refused(PARSE(&help, "--data", "a,b,c,d,e"),
            "--data takes at most 4 values, got more at 'e'");
    refused(PARSE(&help, "a", "b"), "one checkpoint only: got 'a' and 'b' (use --compare)");
}

static void test_help(void)
{
    int help = 0;
    /* --help stops the reading: what follows is not checked */
    DLM_TEST_OK(PARSE(&help, "--K", "4", "--help", "--bogus"));
    CU_ASSERT(help == 1 && v.K == 4);
    DLM_TEST_OK(PARSE(&help, "-h"));
    CU_ASSERT(help == 1);
    refused(PARSE(&help, "--K", "0", "--help"), "--K expects an integer >= 1, got '0'");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_FATAL(f != NULL);
    dlm_args_help(&spec, f);
    fclose(f);
    /* the widest left side is "  --data PATH[,PATH]" (20): help starts at column 22 */
    CU_ASSERT(!strncmp(text, "usage: t CKPT [options]\n", 24));
    CU_ASSERT(strstr(text, "\n  --K N               samples\n"
                           "                      per chunk\n") != NULL);
    CU_ASSERT(strstr(text, "\n  --json              one JSON object\n") != NULL);
    CU_ASSERT(strstr(text, "\n  --data PATH[,PATH]  shards\n") != NULL);
    CU_ASSERT(strstr(text, "\n  --help              this text\nthe end\n") != NULL);
    free(text);
}

int main(int argc, char **argv)
{
    static const dlm_test_case cases[] = {{"values land in their variables", test_values},
                                          {"refusals name the option and the expectation",
                                           test_refusals},
                                          {"--help stops reading and lists the table", test_help},
                                          {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"args", cases}, {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
