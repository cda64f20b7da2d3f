/* dlm-prepare: builds token shards (llm.c format, byte-level vocabulary)
 * with JSON metadata: the default corpus from Debian packages, user text,
 * or synthetic sources of known entropy; and checks existing shards. */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/args.h"
#include "core/log.h"
#include "core/status.h"
#include "io/corpus_writer.h"
#include "io/debian_corpus.h"
#include "io/loader.h"
#include "io/meta.h"
#include "io/shard.h"
#include "io/synthetic.h"
#include "io/synthetic_shards.h"

static const char usage[] =
    "usage: dlm-prepare <command> [options]\n\n"
    "  corpus [--out DIR] [--name NAME] [--cache DIR] [--sources a,b,...]\n"
    "      the default corpus from Debian packages (apt-get download + dpkg-deb -x\n"
    "      into the cache; nothing is installed): gcide, fortunes, jargon, devil,\n"
    "      linux-doc, python-doc, perl-doc. Default out: data/corpus, name: debian.\n"
    "      Cache: $DLM_CACHE, else $XDG_CACHE_HOME/dlm, else ~/.cache/dlm.\n"
    "  text --out DIR --name NAME PATH...\n"
    "      files and folders (walked in name order) of user text; files over 1 MB\n"
    "      are cut at blank lines into documents of about 64 KB.\n"
    "  synthetic --out DIR --name NAME [--kind iid|markov] [--symbols N] [--order K]\n"
    "            [--alpha A] [--seed S] [--tokens N] [--seq-len T]\n"
    "      a source of known entropy (default: markov, 16 symbols, order 2, alpha 0.2,\n"
    "      seed 1, 10M train tokens, T = 256); val and test get N/18 tokens each.\n"
    "      The metadata holds the entropy rate and H(x_1..x_T)/T.\n"
    "  check [--format llmc|raw-u16] SHARD...\n"
    "      validates shards against their metadata and prints what they hold.\n\n"
    "Options (each command reads the ones on its line above):\n";

static const char epilog[] =
    "\nOutput: DIR/NAME_{train,val,test}.bin (llm.c format, uint16) and .json beside\n"
    "each. Documents go to train/val/test 90/5/5 by a hash of (source, key).\n"
    "Exit status: 0 done, 1 failure (the message names the file and what was wrong).\n";

typedef struct {
    const char *out, *name, *cache, *sources, *kind, *format;
    int symbols, order, seq_len;
    double alpha;
    int64_t seed, tokens;
    const char **paths;
    int n_paths;
} prep_args;

static void default_cache(char *out, size_t len)
{
    const char *e = getenv("DLM_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (e && e[0]) snprintf(out, len, "%s", e);
    else if (x && x[0]) snprintf(out, len, "%s/dlm", x);
    else snprintf(out, len, "%s/.cache/dlm", h && h[0] ? h : "/tmp");
}

static int listed(const char *list, const char *name)
{
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

static dlm_status cmd_corpus(const prep_args *a)
{
    char cache[2048];
    if (a->cache) snprintf(cache, sizeof cache, "%s", a->cache);
    else default_cache(cache, sizeof cache);
    dlm_corpus_source all[16], chosen[16];
    int n_all, n = 0;
    dlm_corpus_default_sources(all, &n_all);
    for (int i = 0; i < n_all; i++)
        if (listed(a->sources, all[i].name)) chosen[n++] = all[i];
    DLM_CHECK(n > 0, DLM_ERR_ARG, "--sources '%s' names none of the default sources", a->sources);
    DLM_INFO("prepare: cache %s", cache);
    DLM_CALL(dlm_corpus_fetch(cache, chosen, n));
    dlm_corpus_writer *w;
    DLM_CALL(dlm_corpus_writer_create(a->out ? a->out : "data/corpus",
                                      a->name ? a->name : "debian", &w));
    dlm_status st;
    DLM_CALL_GOTO(st, dlm_corpus_extract(cache, chosen, n, dlm_corpus_writer_add, w), done);
    for (int i = 0; i < n; i++) {
        dlm_meta_source m;
        dlm_corpus_source_meta(&chosen[i], &m);
        DLM_CALL_GOTO(st, dlm_corpus_writer_describe(w, &m), done);
        DLM_INFO("prepare: %-10s %s %s: %lld documents, %.1f MB", chosen[i].name,
                 chosen[i].package, chosen[i].version, (long long)chosen[i].documents,
                 chosen[i].bytes / 1e6);
    }
    DLM_CALL_GOTO(st, dlm_corpus_writer_finish(w), done);
done:
    dlm_corpus_writer_destroy(&w);
    return st;
}

static dlm_status cmd_text(const prep_args *a)
{
    DLM_CHECK(a->out && a->name, DLM_ERR_ARG, "text needs --out DIR and --name NAME");
    DLM_CHECK(a->n_paths > 0, DLM_ERR_ARG, "text needs at least one file or folder");
    dlm_corpus_writer *w;
    DLM_CALL(dlm_corpus_writer_create(a->out, a->name, &w));
    dlm_status st = DLM_OK;
    for (int i = 0; i < a->n_paths && st == DLM_OK; i++) st = dlm_corpus_add_text_path(w, a->paths[i]);
    if (st == DLM_OK) st = dlm_corpus_writer_finish(w);
    dlm_corpus_writer_destroy(&w);
    DLM_CALL(st);
    return DLM_OK;
}

static dlm_status cmd_synthetic(const prep_args *a)
{
    DLM_CHECK(a->out && a->name, DLM_ERR_ARG, "synthetic needs --out DIR and --name NAME");
    DLM_CHECK(!strcmp(a->kind, "iid") || !strcmp(a->kind, "markov"), DLM_ERR_ARG,
              "--kind must be iid or markov, got '%s'", a->kind);
    DLM_CHECK(a->symbols <= 256, DLM_ERR_ARG,
              "--symbols %d: byte-level shards hold at most 256 symbols", a->symbols);
    int32_t first_id = a->symbols <= 26 ? 'a' : 0;
    dlm_iid_source iid;
    dlm_markov_source *mk = NULL;
    dlm_source_info info;
    if (!strcmp(a->kind, "iid")) {
        double p[256];
        for (int i = 0; i < a->symbols; i++) p[i] = pow(0.75, i);
        DLM_CALL(dlm_iid_source_init(&iid, p, a->symbols, first_id, (uint64_t)a->seed));
        dlm_iid_describe(&iid, &info);
    } else {
        DLM_CALL(dlm_markov_source_create(a->symbols, a->order, a->alpha, first_id,
                                          (uint64_t)a->seed, &mk));
        dlm_markov_describe(mk, &info);
    }
    DLM_INFO("prepare: %s source, %d symbols, order %d, entropy rate %.6f nats/token, "
             "H(x_1..x_%d)/%d = %.6f",
             info.kind, info.n_symbols, info.order, info.entropy_rate, a->seq_len, a->seq_len,
             dlm_source_window_entropy(&info, a->seq_len));
    int64_t n_train = a->tokens, n_eval = a->tokens / 18 > a->seq_len ? a->tokens / 18 : a->seq_len;
    dlm_status st = dlm_synthetic_write_splits(a->out, a->name, mk ? NULL : &iid, mk, n_train,
                                               n_eval, a->seq_len);
    dlm_markov_source_destroy(&mk);
    DLM_CALL(st);
    return DLM_OK;
}

static dlm_status cmd_check(const prep_args *a)
{
    DLM_CHECK(a->n_paths > 0, DLM_ERR_ARG, "check needs at least one shard");
    dlm_shard_format fmt;
    DLM_CALL(dlm_shard_format_parse(a->format, &fmt));
    for (int i = 0; i < a->n_paths; i++) {
        dlm_shard s;
        dlm_shard_meta m;
        DLM_CALL(dlm_dataset_open(a->paths[i], fmt, &s, &m));
        printf("%s: %lld tokens of %d bytes, vocabulary %d (%s), separator %d, MASK %d, "
               "content fnv1a64:%016llx",
               a->paths[i], (long long)s.n_tokens, s.token_bytes, m.vocab_size, m.tokenizer,
               m.separator_id, m.mask_id, (unsigned long long)s.content_hash);
        if (m.synthetic)
            printf(", %s source: entropy rate %.6f, H(x_1..x_%d)/%d = %.6f nats/token",
                   m.synth_kind, m.entropy_rate, m.window_T, m.window_T, m.window_entropy);
        printf("\n");
        dlm_shard_close(&s);
    }
    return DLM_OK;
}

int main(int argc, char **argv)
{
    prep_args a = {.kind = "markov", .format = "llmc", .symbols = 16, .order = 2, .seq_len = 256,
                   .alpha = 0.2, .seed = 1, .tokens = 10000000,
                   .paths = calloc((size_t)argc, sizeof *a.paths)};
    const dlm_arg_opt opts[] = {
        DLM_OPT_STRING("out", &a.out, "DIR", "the folder the shards go to"),
        DLM_OPT_STRING("name", &a.name, "NAME", "the shards' name: NAME_{train,val,test}.bin"),
        DLM_OPT_STRING("cache", &a.cache, "DIR", "corpus: where the packages are kept"),
        DLM_OPT_STRING("sources", &a.sources, "a,b,...", "corpus: the sources to take (default all)"),
        DLM_OPT_STRING("kind", &a.kind, "iid|markov", "synthetic: the source (default markov)"),
        DLM_OPT_INT("symbols", &a.symbols, 1, INT_MAX, "N", "synthetic: alphabet size (default 16)"),
        DLM_OPT_INT("order", &a.order, 0, INT_MAX, "K", "synthetic: Markov order (default 2)"),
        DLM_OPT_DOUBLE("alpha", &a.alpha, 0, INFINITY, 1, "A",
                       "synthetic: Dirichlet concentration (default 0.2)"),
        DLM_OPT_INT64("seed", &a.seed, 0, INT64_MAX, "S", "synthetic: the source's seed (default 1)"),
        DLM_OPT_INT64("tokens", &a.tokens, 1, INT64_MAX, "N",
                      "synthetic: training tokens (default 10000000)"),
        DLM_OPT_INT("seq-len", &a.seq_len, 1, INT_MAX, "T",
                    "synthetic: the T of H(x_1..x_T)/T (default 256)"),
        DLM_OPT_STRING("format", &a.format, "F", "check: llmc (default) or raw-u16"),
        DLM_OPT_END};
    const dlm_args_spec spec = {.opts = opts, .usage = usage, .epilog = epilog,
                                .positional = a.paths, .max_positional = argc,
                                .n_positional = &a.n_paths};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        dlm_args_help(&spec, argc < 2 ? stderr : stdout);
        free(a.paths);
        return argc < 2 ? 1 : 0;
    }
    const char *cmd = argv[1];
    int help = 0;
    dlm_status st = a.paths ? dlm_args_parse(&spec, argc - 1, argv + 1, &help)
                            : dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                                             "parsing arguments");
    if (st == DLM_OK && help) dlm_args_help(&spec, stdout);
    else if (st == DLM_OK) {
        if (!strcmp(cmd, "corpus")) st = cmd_corpus(&a);
        else if (!strcmp(cmd, "text")) st = cmd_text(&a);
        else if (!strcmp(cmd, "synthetic")) st = cmd_synthetic(&a);
        else if (!strcmp(cmd, "check")) st = cmd_check(&a);
        else st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                                 "unknown command '%s' (expected corpus, text, synthetic or "
                                 "check; see --help)", cmd);
    }
    free(a.paths);
    if (st != DLM_OK) {
        fprintf(stderr, "dlm-prepare %s failed: %s", cmd, dlm_error_text());
        return 1;
    }
    return 0;
}
