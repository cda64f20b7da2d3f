/* Shards, metadata, the loader and the corpus writer: round trips, a file
 * written by an independent llm.c-format writer, every kind of bad input
 * with the message it must give, reproducible and disjoint batches, and
 * splits that stay put when a source is added. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/rng.h"
#include "eval/chunks.h"
#include "harness.h"
#include "io/corpus_writer.h"
#include "io/loader.h"
#include "io/meta.h"
#include "io/shard.h"
#include "io/synthetic.h"
#include "io/synthetic_shards.h"

static char dir[256];

static int make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/dlm-test-data-XXXXXX");
    return mkdtemp(dir) != NULL;
}

static void path_in(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", dir, name); }

/* llm.c's layout written field by field, independently of dlm_shard_writer. */
static void write_llmc(const char *path, int32_t magic, int32_t version, int32_t count,
                       const void *tokens, size_t token_bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    int32_t header[256] = {0};
    header[0] = magic, header[1] = version, header[2] = count;
    fwrite(header, sizeof header, 1, f);
    if (n) fwrite(tokens, token_bytes, n, f);
    fclose(f);
}

/* Expects `expr` to fail with `code` and an error text containing `needle`. */
#define EXPECT_ERROR(expr, code, needle)                                              \
    do {                                                                              \
        dlm_error_clear();                                                            \
        dlm_status st_ = (expr);                                                      \
        CU_ASSERT(st_ == (code));                                                     \
        if (!strstr(dlm_error_text(), (needle)))                                      \
            printf("\n  expected \"%s\" in:\n%s", (needle), dlm_error_text());        \
        CU_ASSERT(strstr(dlm_error_text(), (needle)) != NULL);                        \
        dlm_error_clear();                                                            \
    } while (0)

static void test_round_trip(void)
{
    enum { N = 5000 };
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (i * 7919) % 50257;
    for (int width = 2; width <= 4; width += 2) {
        char path[512];
        path_in(path, sizeof path, width == 2 ? "rt16.bin" : "rt32.bin");
        dlm_shard_writer w;
        DLM_TEST_OK(dlm_shard_writer_open(path, width, &w));
        DLM_TEST_OK(dlm_shard_writer_append(&w, tok, 1234));
        DLM_TEST_OK(dlm_shard_writer_append(&w, tok + 1234, N - 1234));
        uint64_t written_hash = w.content_hash;
        DLM_TEST_OK(dlm_shard_writer_close(&w));
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        CU_ASSERT(access(tmp, F_OK) != 0); /* renamed into place */
        dlm_shard s;
        DLM_TEST_OK(dlm_shard_open(path, DLM_SHARD_LLMC, 50257, &s));
        CU_ASSERT(s.n_tokens == N && s.token_bytes == width);
        CU_ASSERT(s.content_hash == written_hash);
        int same = 1;
        for (int i = 0; i < N; i++) same &= dlm_shard_token(&s, i) == tok[i];
        CU_ASSERT(same);
        dlm_shard_close(&s);
    }
}

/* A file laid out by hand as llm.c writes it loads with the same tokens,
 * uint16 (magic 20240520 v1) and uint32 (magic 20240801 v7). */
static void test_independent_writer(void)
{
    uint16_t t16[6] = {50256, 464, 2068, 7586, 21831, 13};
    uint32_t t32[4] = {128000, 9906, 1917, 0};
    char p16[512], p32[512];
    path_in(p16, sizeof p16, "llmc16.bin");
    path_in(p32, sizeof p32, "llmc32.bin");
    write_llmc(p16, 20240520, 1, 6, t16, 2, 6);
    write_llmc(p32, 20240801, 7, 4, t32, 4, 4);
    dlm_shard s;
    DLM_TEST_OK(dlm_shard_open(p16, DLM_SHARD_LLMC, 50257, &s));
    CU_ASSERT(s.n_tokens == 6);
    for (int i = 0; i < 6; i++) CU_ASSERT(dlm_shard_token(&s, i) == t16[i]);
    dlm_shard_close(&s);
    DLM_TEST_OK(dlm_shard_open(p32, DLM_SHARD_LLMC, 128256, &s));
    CU_ASSERT(s.n_tokens == 4 && s.token_bytes == 4);
    for (int i = 0; i < 4; i++) CU_ASSERT(dlm_shard_token(&s, i) == (int32_t)t32[i]);
    dlm_shard_close(&s);
}

/* Header-less uint16 (nanoGPT's .bin) loads only when asked for. */
static void test_raw_u16_only_when_asked(void)
{
    char p[512];
    path_in(p, sizeof p, "nanogpt.bin");
    uint16_t t[600];
    for (int i = 0; i < 600; i++) t[i] = (uint16_t)(i * 31 % 50000);
    FILE *f = fopen(p, "wb");
    fwrite(t, 2, 600, f);
    fclose(f);
    dlm_shard s;
    EXPECT_ERROR(dlm_shard_open(p, DLM_SHARD_LLMC, 50257, &s), DLM_ERR_FORMAT, "raw-u16");
    DLM_TEST_OK(dlm_shard_open(p, DLM_SHARD_RAW_U16, 50257, &s));
    CU_ASSERT(s.n_tokens == 600 && dlm_shard_token(&s, 599) == t[599]);
    dlm_shard_close(&s);
}

static void test_bad_shards(void)
{
    char p[512], msg[700];
    dlm_shard s;
    uint16_t t[8] = {1, 2, 3, 300, 5, 6, 7, 8};

    path_in(p, sizeof p, "missing.bin");
    EXPECT_ERROR(dlm_shard_open(p, DLM_SHARD_LLMC, 257, &s), DLM_ERR_IO, "cannot open shard");

    path_in(p, sizeof p, "empty.bin");
    fclose(fopen(p, "wb"));
    snprintf(msg, sizeof msg, "%s: empty file", p);
    EXPECT_ERROR(dlm_shard_open(p, DLM_SHARD_LLMC, 257, &s), DLM_ERR_FORMAT, msg);

    path_in(p, sizeof p, "short_header.bin");
    FILE *f = fopen(p, "wb");
    fwrite(t, 2, 8, f);
    fclose(f);
    EXPECT_ERROR(dlm_shard_open(p, DLM_SHARD_LLMC, 257, &s), DLM_ERR_FORMAT,
                 "shorter than the 1024-byte llm.c header");

    path_in(p, sizeof p, "magic.bin");
    write_llmc(p, 12345, 1, 8, t, 2, 8);
    EXPECT_ERROR(dlm_shard_open(p, DLM_SHARD_LLMC, 257, &s), DLM_ERR_FORMAT,
                 "byte offset 0: magic 12345, expected 20240520");

    path_in(p, sizeof p, "version.bin");
    write_llmc(p, 20240520, 2, 8, t, 2, 8);
    EXPECT_ERROR(dlm_shard_open(p, DLM_SHARD_LLMC, 257, &s), DLM_ERR_FORMAT,
                 "byte offset 4: version 2, expected 1");

    path_in(p, sizeof p, "truncated.bin");
    write_llmc(p, 20240520, 1, 100, t, 2, 8);
    EXPECT_ERROR(dlm_shard_open(p, DLM_SHARD_LLMC, 257, &s), DLM_ERR_FORMAT,
                 "byte offset 8: the header says 100 tokens but the file holds 8");

    path_in(p, sizeof p, "badtoken.bin");
    write_llmc(p, 20240520, 1, 8, t, 2, 8);
    EXPECT_ERROR(dlm_shard_open(p, DLM_SHARD_LLMC, 257, &s), DLM_ERR_FORMAT,
                 "token 3 (byte offset 1030) is id 300, outside the vocabulary of 257 ids");
    DLM_TEST_OK(dlm_shard_open(p, DLM_SHARD_LLMC, 50257, &s)); /* fine for GPT-2 */
    dlm_shard_close(&s);
}

static void write_bytes_shard(const char *path, const char *text, dlm_shard_meta *meta_out)
{
    dlm_shard_writer w;
    size_t n = strlen(text);
    int32_t *tok = malloc(n * sizeof *tok);
    for (size_t i = 0; i < n; i++) tok[i] = (unsigned char)text[i];
    DLM_TEST_OK(dlm_shard_writer_open(path, 2, &w));
    DLM_TEST_OK(dlm_shard_writer_append(&w, tok, (int64_t)n));
    dlm_shard_meta m;
    dlm_meta_defaults_bytes(&m);
    snprintf(m.split, sizeof m.split, "train");
    m.n_tokens = w.n_tokens;
    m.content_hash = w.content_hash;
    m.documents = 1;
    DLM_TEST_OK(dlm_shard_writer_close(&w));
    char mp[600];
    dlm_meta_path(path, mp, sizeof mp);
    DLM_TEST_OK(dlm_meta_write(mp, &m));
    if (meta_out) *meta_out = m;
    free(tok);
}

/* Metadata round-trips field by field, and disagreement with the shard is caught. */
static void test_metadata(void)
{
    char p[512], mp[600];
    path_in(p, sizeof p, "meta.bin");
    dlm_meta_path(p, mp, sizeof mp);
    CU_ASSERT(!strcmp(mp + strlen(mp) - 10, "/meta.json"));
    dlm_shard_meta m;
    dlm_meta_defaults_bytes(&m);
    snprintf(m.split, sizeof m.split, "val");
    m.n_tokens = 42, m.documents = 3, m.content_hash = UINT64_C(0xfedcba9876543210);
    m.n_sources = 1;
    snprintf(m.sources[0].name, sizeof m.sources[0].name, "gcide");
    snprintf(m.sources[0].package, sizeof m.sources[0].package, "dict-gcide");
    snprintf(m.sources[0].version, sizeof m.sources[0].version, "0.48.5+nmu2");
    snprintf(m.sources[0].licence, sizeof m.sources[0].licence, "GPL-3+ \"quoted\"");
    m.sources[0].documents = 3, m.sources[0].bytes = 39;
    m.synthetic = 1;
    snprintf(m.synth_kind, sizeof m.synth_kind, "markov");
    m.synth_symbols = 16, m.synth_order = 2, m.synth_alpha = 0.2, m.synth_seed = 7;
    m.entropy_rate = 1.2345678901234567, m.window_T = 256, m.window_entropy = 1.5;
    DLM_TEST_OK(dlm_meta_write(mp, &m));
    dlm_shard_meta r;
    int found;
    DLM_TEST_OK(dlm_meta_read(mp, &r, &found));
    CU_ASSERT(found);
    CU_ASSERT(!strcmp(r.split, "val") && !strcmp(r.tokenizer, "bytes"));
    CU_ASSERT(r.vocab_size == 257 && r.separator_id == 256 && r.mask_id == 257);
    CU_ASSERT(r.n_tokens == 42 && r.documents == 3 && r.content_hash == m.content_hash);
    CU_ASSERT(r.n_sources == 1 && !strcmp(r.sources[0].licence, "GPL-3+ \"quoted\""));
    CU_ASSERT(!strcmp(r.sources[0].version, "0.48.5+nmu2") && r.sources[0].bytes == 39);
    CU_ASSERT(r.synthetic && !strcmp(r.synth_kind, "markov") && r.synth_order == 2);
    CU_ASSERT(r.entropy_rate == m.entropy_rate && r.window_T == 256);

    /* no metadata file: found = 0, not an error */
    path_in(p, sizeof p, "nometa.json");
    DLM_TEST_OK(dlm_meta_read(p, &r, &found));
    CU_ASSERT(found == 0);

    /* disagreement: a shard rewritten after its metadata */
    path_in(p, sizeof p, "changed.bin");
    write_bytes_shard(p, "the original text of this shard", NULL);
    dlm_meta_path(p, mp, sizeof mp);
    dlm_shard_meta saved;
    DLM_TEST_OK(dlm_meta_read(mp, &saved, &found));
    write_bytes_shard(p, "the changed! text of this shard", NULL);
    DLM_TEST_OK(dlm_meta_write(mp, &saved)); /* the old metadata again */
    dlm_shard s;
    dlm_shard_meta got;
    EXPECT_ERROR(dlm_dataset_open(p, DLM_SHARD_LLMC, &s, &got), DLM_ERR_FORMAT,
                 "field \"content_hash\"");
    saved.n_tokens += 1;
    DLM_TEST_OK(dlm_meta_write(mp, &saved));
    EXPECT_ERROR(dlm_dataset_open(p, DLM_SHARD_LLMC, &s, &got), DLM_ERR_FORMAT,
                 "field \"n_tokens\" is 32 but shard");
    /* malformed JSON names the byte offset */
    FILE *f = fopen(mp, "w");
    fputs("{\"format\": \"dlm-shard-meta\", \"split\" \"train\"}", f);
    fclose(f);
    EXPECT_ERROR(dlm_dataset_open(p, DLM_SHARD_LLMC, &s, &got), DLM_ERR_FORMAT,
                 "byte offset 37: expected ':' after a key");
}

/* Without metadata a shard gets GPT-2's vocabulary (the llm.c default). */
static void test_defaults_without_metadata(void)
{
    char p[512];
    path_in(p, sizeof p, "plain_llmc.bin");
    uint16_t t[4] = {50256, 10, 20, 30};
    write_llmc(p, 20240520, 1, 4, t, 2, 4);
    dlm_shard s;
    dlm_shard_meta m;
    DLM_TEST_OK(dlm_dataset_open(p, DLM_SHARD_LLMC, &s, &m));
    CU_ASSERT(m.vocab_size == 50257 && m.separator_id == 50256 && m.mask_id == 50257);
    CU_ASSERT(!strcmp(m.tokenizer, "gpt2") && m.n_tokens == 4);
    dlm_shard_close(&s);
}

/* Two shards whose tokens come from disjoint ranges, to see windows that cross. */
static void make_two_shards(char p[2][512])
{
    for (int k = 0; k < 2; k++) {
        snprintf(p[k], 512, "%s/part%d.bin", dir, k);
        int n = k ? 700 : 1300;
        int32_t *t = malloc((size_t)n * sizeof *t);
        for (int i = 0; i < n; i++) t[i] = k * 128 + i % 128;
        dlm_shard_writer w;
        DLM_TEST_OK(dlm_shard_writer_open(p[k], 2, &w));
        DLM_TEST_OK(dlm_shard_writer_append(&w, t, n));
        dlm_shard_meta m;
        dlm_meta_defaults_bytes(&m);
        m.n_tokens = n, m.content_hash = w.content_hash;
        DLM_TEST_OK(dlm_shard_writer_close(&w));
        char mp[600];
        dlm_meta_path(p[k], mp, sizeof mp);
        DLM_TEST_OK(dlm_meta_write(mp, &m));
        free(t);
    }
}

static void test_loader(void)
{
    enum { T = 32, G = 16 };
    char p[2][512];
    make_two_shards(p);
    const char *paths[2] = {p[0], p[1]};
    dlm_loader L;
    DLM_TEST_OK(dlm_loader_open(paths, 2, DLM_SHARD_LLMC, T, 99, &L));
    int32_t a[G * T], b[G * T], half[G * T];
    dlm_loader_batch(&L, 5, 0, G, a);
    dlm_loader_batch(&L, 5, 0, G, b);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0); /* reproducible */
    /* a simulated 2-way data-parallel split: ranks take [0, 8) and [8, 16) */
    dlm_loader_batch(&L, 5, 0, G / 2, half);
    dlm_loader_batch(&L, 5, G / 2, G / 2, half + G / 2 * T);
    CU_ASSERT(memcmp(a, half, sizeof a) == 0);
    dlm_loader_batch(&L, 6, 0, G, b);
    CU_ASSERT(memcmp(a, b, sizeof a) != 0); /* another step, other windows */
    /* windows never cross shards; both shards are used over many steps */
    int used[2] = {0, 0};
    for (uint32_t step = 0; step < 50; step++) {
        dlm_loader_batch(&L, step, 0, G, b);
        for (int g = 0; g < G; g++) {
            int k = b[g * T] >= 128;
            used[k]++;
            int same = 1;
            for (int i = 0; i < T; i++) same &= (b[g * T + i] >= 128) == k;
            CU_ASSERT(same);
        }
    }
    /* shard 0 holds 1269 of the 1269 + 669 windows: about 65% of draws */
    CU_ASSERT(used[0] > 400 && used[1] > 200);
    /* fixed chunks: 1300/32 + 700/32 = 40 + 21 */
    CU_ASSERT(dlm_loader_n_chunks(&L) == 61);
    dlm_loader_chunk(&L, 40, a);
    CU_ASSERT(a[0] == 128 && a[T - 1] == 128 + T - 1);
    dlm_loader_close(&L);
    /* a shard shorter than one sequence */
    dlm_loader L2;
    EXPECT_ERROR(dlm_loader_open(paths + 1, 1, DLM_SHARD_LLMC, 701, 1, &L2), DLM_ERR_FORMAT,
                 "700 tokens, fewer than one sequence of 701");
}

/* A unique-token budget U: windows come only from the first U tokens of
 * the shards in order, never crossing U's end, every start in it drawn
 * over many steps; a U beyond the shards or below one sequence fails. */
static void test_loader_prefix(void)
{
    enum { T = 32, G = 64 };
    char p[2][512];
    make_two_shards(p);
    const char *paths[2] = {p[0], p[1]};
    for (int c = 0; c < 2; c++) {
        int64_t U = c ? 1300 + 100 : 100; /* in shard 0; or all of it and 100 of shard 1 */
        dlm_loader L;
        DLM_TEST_OK(dlm_loader_open(paths, 2, DLM_SHARD_LLMC, T, 7, &L));
        DLM_TEST_OK(dlm_loader_limit(&L, U));
        CU_ASSERT(dlm_loader_span_tokens(&L) == U);
        int32_t b[G * T];
        int seen[128] = {0}, in1 = 0;
        for (uint32_t step = 0; step < 100; step++) {
            dlm_loader_batch(&L, step, 0, G, b);
            for (int g = 0; g < G; g++) {
                int32_t first = b[g * T];
                if (first >= 128) { /* shard 1: its first 100 tokens are 128 + i */
                    in1++;
                    CU_ASSERT(c == 1 && first - 128 <= 100 - T && b[g * T + T - 1] == first + T - 1);
                    seen[first - 128]++;
                } else if (c == 0) {
                    CU_ASSERT(first <= 100 - T && b[g * T + T - 1] == first + T - 1);
                    seen[first]++;
                }
            }
        }
        for (int s = 0; s <= 100 - T; s++) CU_ASSERT(seen[s] > 0);
        CU_ASSERT(c == 0 ? in1 == 0 : in1 > 100); /* 69 of 1338 windows: ~5% of 6400 draws */
        dlm_loader_close(&L);
    }
    dlm_loader L;
    DLM_TEST_OK(dlm_loader_open(paths, 2, DLM_SHARD_LLMC, T, 7, &L));
    EXPECT_ERROR(dlm_loader_limit(&L, 2001), DLM_ERR_ARG, "the shards hold only 2000 tokens");
    CU_ASSERT(dlm_loader_span_tokens(&L) == 2000 && L.first_window[2] == 1300 - T + 1 + 700 - T + 1);
    EXPECT_ERROR(dlm_loader_limit(&L, T - 1), DLM_ERR_ARG, "holds no sequence of 32");
    dlm_loader_close(&L);
}

/* ---- the corpus writer ---- */

static void doc_text(char *buf, size_t len, const char *src, int i)
{
    snprintf(buf, len, "Document %d of source %s: some words that differ per document %d.", i,
             src, i * 7);
}

static void write_corpus(const char *name, int n_sources)
{
    static const char *const srcs[3] = {"alpha", "beta", "gamma"};
    dlm_corpus_writer *w;
    char out[512];
    path_in(out, sizeof out, "corpus");
    DLM_TEST_OK(dlm_corpus_writer_create(out, name, &w));
    for (int s = 0; s < n_sources; s++)
        for (int i = 0; i < 400; i++) {
            char key[32], text[160];
            snprintf(key, sizeof key, "doc-%d", i);
            doc_text(text, sizeof text, srcs[s], i);
            DLM_TEST_OK(dlm_corpus_writer_add(w, srcs[s], key, text, strlen(text)));
            if (i % 50 == 0) /* an exact duplicate: dropped */
                DLM_TEST_OK(dlm_corpus_writer_add(w, srcs[s], "dup", text, strlen(text)));
        }
    DLM_TEST_OK(dlm_corpus_writer_finish(w));
    dlm_corpus_writer_destroy(&w);
}

static void load_split(const char *name, int split, dlm_shard *s, dlm_shard_meta *m)
{
    char p[600];
    snprintf(p, sizeof p, "%s/corpus/%s_%s.bin", dir, name, dlm_split_name(split));
    DLM_TEST_OK(dlm_dataset_open(p, DLM_SHARD_LLMC, s, m));
}

/* Adding a source never moves a document: each split of the two-source
 * corpus is a prefix of the same split of the three-source corpus. */
static void test_split_stable_when_adding_a_source(void)
{
    write_corpus("two", 2);
    write_corpus("three", 3);
    int64_t docs = 0;
    for (int split = 0; split < DLM_SPLITS; split++) {
        dlm_shard a, b;
        dlm_shard_meta ma, mb;
        load_split("two", split, &a, &ma);
        load_split("three", split, &b, &mb);
        CU_ASSERT(a.n_tokens <= b.n_tokens);
        int prefix = 1;
        for (int64_t i = 0; i < a.n_tokens && i < b.n_tokens; i++)
            prefix &= dlm_shard_token(&a, i) == dlm_shard_token(&b, i);
        CU_ASSERT(prefix);
        CU_ASSERT(mb.n_sources == 3 && ma.n_sources == 2);
        CU_ASSERT(ma.documents == ma.sources[0].documents + ma.sources[1].documents);
        docs += ma.documents;
        dlm_shard_close(&a);
        dlm_shard_close(&b);
    }
    CU_ASSERT(docs == 800); /* the 16 duplicates dropped */
}

/* The split is a function of (source, key); fractions near 90/5/5: over
 * 20000 keys the train share has standard error 0.0021, bound 4 SE. */
static void test_split_fractions(void)
{
    int count[DLM_SPLITS] = {0};
    for (int i = 0; i < 20000; i++) {
        char key[32];
        snprintf(key, sizeof key, "entry %d", i);
        count[dlm_split_of("gcide", key)]++;
    }
    DLM_TEST_NEAR(count[0] / 20000.0, 0.90, 4 * sqrt(0.9 * 0.1 / 20000), "train share");
    DLM_TEST_NEAR(count[1] / 20000.0, 0.05, 4 * sqrt(0.05 * 0.95 / 20000), "val share");
    CU_ASSERT(dlm_split_of("a", "bc") == dlm_split_of("a", "bc"));
}

/* Each document is the separator then its bytes. */
static void test_document_encoding(void)
{
    char out[512];
    path_in(out, sizeof out, "enc");
    dlm_corpus_writer *w;
    DLM_TEST_OK(dlm_corpus_writer_create(out, "enc", &w));
    /* find a key that lands in train */
    char key[32];
    int i = 0;
    do snprintf(key, sizeof key, "k%d", i++);
    while (dlm_split_of("s", key) != DLM_SPLIT_TRAIN);
    const char *text = "h\xc3\xa9llo"; /* UTF-8 bytes pass through */
    DLM_TEST_OK(dlm_corpus_writer_add(w, "s", key, text, strlen(text)));
    DLM_TEST_OK(dlm_corpus_writer_finish(w));
    dlm_corpus_writer_destroy(&w);
    char p[600];
    snprintf(p, sizeof p, "%s/enc_train.bin", out);
    dlm_shard s;
    dlm_shard_meta m;
    DLM_TEST_OK(dlm_dataset_open(p, DLM_SHARD_LLMC, &s, &m));
    int32_t want[7] = {256, 'h', 0xc3, 0xa9, 'l', 'l', 'o'};
    CU_ASSERT(s.n_tokens == 7);
    for (int j = 0; j < 7 && j < s.n_tokens; j++) CU_ASSERT(dlm_shard_token(&s, j) == want[j]);
    CU_ASSERT(m.documents == 1 && m.vocab_size == 257);
    dlm_shard_close(&s);
}

/* User text: a folder's files in name order, keyed by relative path; a
 * file over 1 MB is cut into documents at blank lines. */
static void test_text_folder(void)
{
    char root[512], sub[600], p[700], out[512];
    path_in(root, sizeof root, "texts");
    mkdir(root, 0777);
    snprintf(sub, sizeof sub, "%s/sub", root);
    mkdir(sub, 0777);
    const char *names[3] = {"b.txt", "a.txt", "sub/c.txt"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        FILE *f = fopen(p, "w");
        fprintf(f, "text of %s\n", names[i]);
        fclose(f);
    }
    snprintf(p, sizeof p, "%s/big.txt", root);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < 30000; i++) fprintf(f, "paragraph %d has a line of text here\n\n", i);
    fclose(f); /* about 1.2 MB */
    path_in(out, sizeof out, "textout");
    dlm_corpus_writer *w;
    DLM_TEST_OK(dlm_corpus_writer_create(out, "t", &w));
    DLM_TEST_OK(dlm_corpus_add_text_path(w, root));
    DLM_TEST_OK(dlm_corpus_writer_finish(w));
    dlm_corpus_writer_destroy(&w);
    int64_t docs = 0, bytes = 0;
    for (int split = 0; split < DLM_SPLITS; split++) {
        char sp[700];
        snprintf(sp, sizeof sp, "%s/t_%s.bin", out, dlm_split_name(split));
        dlm_shard s;
        dlm_shard_meta m;
        DLM_TEST_OK(dlm_dataset_open(sp, DLM_SHARD_LLMC, &s, &m));
        docs += m.documents;
        bytes += m.n_sources ? m.sources[0].bytes : 0;
        dlm_shard_close(&s);
    }
    struct stat st;
    stat(p, &st);
    /* 3 small files + the big one in ~64 KB pieces: 19 pieces */
    CU_ASSERT(docs >= 3 + 18 && docs <= 3 + 20);
    CU_ASSERT(bytes == (int64_t)st.st_size + 14 + 14 + 18); /* "text of b.txt\n" ... */
    EXPECT_ERROR(dlm_corpus_add_text_path(NULL, "/nonexistent/dlm"), DLM_ERR_IO,
                 "cannot read /nonexistent/dlm");
}

/* Synthetic shards: train, val and test are consecutive pieces of one
 * chain (the concatenation equals the chain generated in one call), and
 * the metadata holds the source's exact entropies. */
static void test_synthetic_shards(void)
{
    char out[512];
    path_in(out, sizeof out, "synth");
    dlm_markov_source *mk;
    DLM_TEST_OK(dlm_markov_source_create(8, 2, 0.2, 'a', 5, &mk));
    DLM_TEST_OK(dlm_synthetic_write_splits(out, "mk", NULL, mk, 1000, 300, 64));
    int32_t whole[1600];
    DLM_TEST_OK(dlm_markov_generate(mk, 0, 1600, NULL, whole));
    int64_t pos = 0;
    for (int split = 0; split < DLM_SPLITS; split++) {
        char p[700];
        snprintf(p, sizeof p, "%s/mk_%s.bin", out, dlm_split_name(split));
        dlm_shard s;
        dlm_shard_meta m;
        DLM_TEST_OK(dlm_dataset_open(p, DLM_SHARD_LLMC, &s, &m));
        CU_ASSERT(s.n_tokens == (split ? 300 : 1000));
        int same = 1;
        for (int64_t i = 0; i < s.n_tokens && pos + i < 1600; i++)
            same &= dlm_shard_token(&s, i) == whole[pos + i];
        CU_ASSERT(same);
        pos += s.n_tokens;
        CU_ASSERT(m.synthetic && !strcmp(m.synth_kind, "markov") && m.synth_order == 2);
        CU_ASSERT(m.entropy_rate == dlm_markov_entropy_rate(mk));
        CU_ASSERT(m.window_T == 64 && m.window_entropy == dlm_markov_window_entropy(mk, 64));
        CU_ASSERT(m.synth_first_id == 'a');
        dlm_shard_close(&s);
    }
    /* the metadata names the source fully: evaluation chunks carry their exact NLL */
    char val[700], meta[700];
    snprintf(val, sizeof val, "%s/mk_val.bin", out);
    dlm_chunk_set cs;
    const char *paths[] = {val};
    DLM_TEST_OK(dlm_chunk_set_from_shards(paths, 1, DLM_SHARD_LLMC, 32, 0, &cs));
    CU_ASSERT_FATAL(cs.true_nll != NULL);
    CU_ASSERT(cs.n == 300 / 32);
    int exact = 1;
    for (int64_t c = 0; c < cs.n; c++) {
        double per_token[32], sum = 0.0;
        DLM_TEST_OK(dlm_markov_logprob(mk, cs.tokens + c * 32, 32, per_token));
        for (int i = 0; i < 32; i++) sum += per_token[i];
        exact &= cs.true_nll[c] == sum / 32;
    }
    CU_ASSERT(exact);
    dlm_chunk_set_free(&cs);
    /* metadata from before first_id was recorded: the entropy still, no per-chunk NLL */
    dlm_meta_path(val, meta, sizeof meta);
    size_t len;
    char *text;
    DLM_TEST_OK(dlm_read_file(meta, &text, &len));
    char *at = strstr(text, "\"first_id\": 97, ");
    CU_ASSERT_FATAL(at != NULL);
    memmove(at, at + strlen("\"first_id\": 97, "), strlen(at + strlen("\"first_id\": 97, ")) + 1);
    FILE *f = fopen(meta, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    free(text);
    DLM_TEST_OK(dlm_chunk_set_from_shards(paths, 1, DLM_SHARD_LLMC, 32, 0, &cs));
    CU_ASSERT(cs.true_nll == NULL && fabs(cs.entropy - dlm_markov_window_entropy(mk, 32)) < 1e-12);
    dlm_chunk_set_free(&cs);
    dlm_markov_source_destroy(&mk);
    dlm_iid_source iid;
    dlm_iid_source_default(&iid, 3);
    DLM_TEST_OK(dlm_synthetic_write_splits(out, "iid", &iid, NULL, 500, 100, 32));
    char p[700];
    snprintf(p, sizeof p, "%s/iid_val.bin", out);
    dlm_shard s;
    dlm_shard_meta m;
    DLM_TEST_OK(dlm_dataset_open(p, DLM_SHARD_LLMC, &s, &m));
    CU_ASSERT(m.window_entropy == dlm_iid_entropy(&iid) || fabs(m.window_entropy - dlm_iid_entropy(&iid)) < 1e-12);
    dlm_shard_close(&s);
}

int main(int argc, char **argv)
{
    if (!make_dir()) {
        perror("test_data: mkdtemp");
        return 1;
    }
    static const dlm_test_case shards[] = {{"round trip, uint16 and uint32", test_round_trip},
                                           {"llm.c files from an independent writer", test_independent_writer},
                                           {"raw uint16 only when asked", test_raw_u16_only_when_asked},
                                           {"bad shards named with offsets", test_bad_shards},
                                           {"metadata", test_metadata},
                                           {"defaults without metadata", test_defaults_without_metadata},
                                           {NULL, NULL}};
    static const dlm_test_case loader[] = {{"reproducible, disjoint, within shards", test_loader},
                                           {"a unique-token prefix", test_loader_prefix},
                                           {NULL, NULL}};
    static const dlm_test_case corpus[] = {
        {"splits stay when a source is added", test_split_stable_when_adding_a_source},
        {"split fractions", test_split_fractions},
        {"document encoding", test_document_encoding},
        {"user text folders", test_text_folder},
        {"synthetic shards", test_synthetic_shards},
        {NULL, NULL}};
    static const dlm_test_suite suites[] = {
        {"shards", shards}, {"loader", loader}, {"corpus writer", corpus}, {NULL, NULL}};
    int rc = dlm_test_main(argc, argv, suites);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
