/* The default corpus built for real: packages fetched from Debian's archive
 * into the user cache (reused on later runs), extracted, split and written;
 * the metadata of every split lists every source, and each source brings a
 * non-trivial amount of text. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/corpus_writer.h"
#include "io/debian_corpus.h"
#include "io/loader.h"
#include "io/meta.h"

static void test_build_default_corpus(void)
{
    char cache[2048], out[256];
    const char *e = getenv("DLM_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (e && e[0]) snprintf(cache, sizeof cache, "%s", e);
    else if (x && x[0]) snprintf(cache, sizeof cache, "%s/dlm", x);
    else snprintf(cache, sizeof cache, "%s/.cache/dlm", h ? h : "/tmp");
    snprintf(out, sizeof out, "/tmp/dlm-test-corpus-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(out) != NULL);
    dlm_corpus_source src[DLM_CORPUS_MAX_SOURCES];
    int n;
    dlm_corpus_default_sources(src, &n);
    CU_ASSERT(n == 7);
    DLM_TEST_OK(dlm_corpus_fetch(cache, src, n));
    dlm_corpus_writer *w;
    DLM_TEST_OK(dlm_corpus_writer_create(out, "debian", &w));
    DLM_TEST_OK(dlm_corpus_extract(cache, src, n, dlm_corpus_writer_add, w));
    for (int i = 0; i < n; i++) {
        dlm_meta_source m;
        dlm_corpus_source_meta(&src[i], &m);
        DLM_TEST_OK(dlm_corpus_writer_describe(w, &m));
    }
    DLM_TEST_OK(dlm_corpus_writer_finish(w));
    dlm_corpus_writer_destroy(&w);
    int64_t total = 0;
    for (int split = 0; split < DLM_SPLITS; split++) {
        char p[400];
        snprintf(p, sizeof p, "%s/debian_%s.bin", out, dlm_split_name(split));
        dlm_shard s;
        dlm_shard_meta m;
        DLM_TEST_OK(dlm_dataset_open(p, DLM_SHARD_LLMC, &s, &m));
        CU_ASSERT(m.n_sources == 7 && m.vocab_size == 257 && m.separator_id == 256);
        for (int i = 0; i < m.n_sources; i++) {
            const dlm_meta_source *ms = &m.sources[i];
            printf("\n    %s %-10s %-15s %-18s %7lld documents %6.2f MB", m.split, ms->name,
                   ms->package, ms->version, (long long)ms->documents, ms->bytes / 1e6);
            CU_ASSERT(ms->version[0] && strcmp(ms->package, "-") != 0 && ms->licence[0]);
            /* every source is real text in every split: at least 10 documents and
             * 10 KB even in the 5% splits (devil, the smallest, has ~1000 entries) */
            CU_ASSERT(ms->documents >= 10 && ms->bytes >= 10000);
        }
        total += s.n_tokens;
        dlm_shard_close(&s);
    }
    printf("\n    %lld tokens in all\n", (long long)total);
    CU_ASSERT(total > 40000000); /* about 62 MB of text */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    CU_ASSERT(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    static const dlm_test_case cases[] = {{"build the default corpus", test_build_default_corpus},
                                          {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"corpus build", cases}, {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
