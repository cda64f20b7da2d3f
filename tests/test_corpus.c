/* Debian corpus: each markup stripper on a small inline fixture (the exact
 * documents and keys, and that the markup is gone), dictd base64, the
 * normalising rules, stopping from the sink, and extraction from a fake
 * cache folder (directory order, skipped files, .gz files, keys). No network. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "harness.h"
#include "io/debian_corpus.h"

/* ---- a sink that keeps what it is given ---- */

#define MAX_DOCS 16
typedef struct {
    int n;
    char source[MAX_DOCS][32];
    char key[MAX_DOCS][160];
    char *text[MAX_DOCS];
    size_t len[MAX_DOCS];
    int stop_after; /* > 0: fail on that call */
} collected;

static dlm_status collect(void *ctx, const char *source, const char *key, const char *text,
                          size_t len)
{
    collected *c = ctx;
    if (c->stop_after && c->n + 1 >= c->stop_after) {
        c->n++;
        return dlm_error_push(DLM_ERR_STATE, __FILE__, __LINE__, __func__, "sink is full");
    }
    CU_ASSERT_FATAL(c->n < MAX_DOCS);
    snprintf(c->source[c->n], sizeof c->source[0], "%s", source);
    snprintf(c->key[c->n], sizeof c->key[0], "%s", key);
    c->text[c->n] = malloc(len + 1);
    memcpy(c->text[c->n], text, len);
    c->text[c->n][len] = '\0';
    c->len[c->n] = len;
    c->n++;
    return DLM_OK;
}

static void collected_free(collected *c)
{
    for (int i = 0; i < c->n && i < MAX_DOCS; i++) free(c->text[i]);
    memset(c, 0, sizeof *c);
}

/* Compares a document with what it should be, printing both when they differ. */
#define EXPECT_DOC(c, i, want_key, want_text)                                                 \
    do {                                                                                      \
        CU_ASSERT_FATAL((c)->n > (i));                                                        \
        if (strcmp((c)->key[i], (want_key)) != 0)                                             \
            printf("\n  key %d: got '%s', expected '%s'\n", (i), (c)->key[i], (want_key));    \
        CU_ASSERT_STRING_EQUAL((c)->key[i], (want_key));                                      \
        if (strcmp((c)->text[i], (want_text)) != 0)                                           \
            printf("\n  text %d:\n---- got ----\n%s\n---- expected ----\n%s\n----\n", (i),     \
                   (c)->text[i], (want_text));                                                \
        CU_ASSERT_STRING_EQUAL((c)->text[i], (want_text));                                    \
        CU_ASSERT_EQUAL((c)->len[i], strlen(want_text));                                      \
    } while (0)

/* ---- dictd base64 ---- */

/* Values checked against a separate encoder; 3656 and 371 are the offset
 * and length of gcide's "0" entry in the real index ("5I", "Fz"). */
static void test_b64(void)
{
    static const struct {
        const char *s;
        uint64_t v;
    } known[] = {{"A", 0},       {"B", 1},           {"/", 63},
                 {"BA", 64},     {"5I", 3656},       {"Fz", 371},
                 {"//", 4095},   {"///", 262143},    {"//////////", (UINT64_C(1) << 60) - 1}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        uint64_t v = 12345;
        DLM_TEST_OK(dlm_dictd_b64_decode(known[i].s, strlen(known[i].s), &v));
        if (v != known[i].v)
            printf("\n  '%s': got %llu, expected %llu\n", known[i].s, (unsigned long long)v,
                   (unsigned long long)known[i].v);
        CU_ASSERT(v == known[i].v);
    }
    uint64_t v;
    CU_ASSERT(dlm_dictd_b64_decode("", 0, &v) == DLM_ERR_FORMAT);
    dlm_error_clear();
    CU_ASSERT(dlm_dictd_b64_decode("A=B", 3, &v) == DLM_ERR_FORMAT); /* '=' is no digit here */
    CU_ASSERT(strstr(dlm_error_text(), "'A=B'") != NULL);
    dlm_error_clear();
    CU_ASSERT(dlm_dictd_b64_decode("///////////", 11, &v) == DLM_ERR_FORMAT); /* 2^66 - 1 */
    CU_ASSERT(strstr(dlm_error_text(), "beyond 2^63") != NULL);
    dlm_error_clear();
}

/* ---- fortunes ---- */

/* Entries split at "%" lines; an empty entry and a short one are dropped
 * but still counted in the keys; overstrikes keep the visible character. */
static void test_fortunes(void)
{
    static const char text[] =
        "First fortune, long enough to keep.\n"
        "\t\t-- Someone\n"
        "%\n"
        "%\n"
        "Short\n"
        "%\n"
        "The notion of *_______\b\b\b\b\b\b\bfriends*\n"  /* underline before the word */
        "and _\bI underlined, B\bBo\bol\bld\bd, x\b_ under after.\n"
        "%\n"
        "Last one has no final separator.";
    collected c = {0};
    DLM_TEST_OK(dlm_extract_fortunes(text, strlen(text), "fortunes", "games/f", collect, &c));
    CU_ASSERT_EQUAL(c.n, 3);
    EXPECT_DOC(&c, 0, "games/f:0", "First fortune, long enough to keep.\n\t\t-- Someone");
    EXPECT_DOC(&c, 1, "games/f:3",
               "The notion of *friends*\nand I underlined, Bold, x under after.");
    EXPECT_DOC(&c, 2, "games/f:4", "Last one has no final separator.");
    for (int i = 0; i < c.n; i++) {
        CU_ASSERT(strchr(c.text[i], '\b') == NULL);
        CU_ASSERT(strcmp(c.source[i], "fortunes") == 0);
    }
    collected_free(&c);
}

/* The document rules: blank runs collapse to one empty line, trailing
 * blanks and leading/trailing empty lines go, \r and control characters
 * go, UTF-8 passes through, a stray Windows-1252 byte becomes UTF-8. */
static void test_normalise(void)
{
    static const char text[] = "\n\n  Indented first line   \r\n"
                               "caf\xc3\xa9 \xe2\x80\x94 it\x92s\a fine\t\n"
                               "\n\n\n\n"
                               "after the gap\n\n\n";
    collected c = {0};
    DLM_TEST_OK(dlm_extract_fortunes(text, strlen(text), "fortunes", "k", collect, &c));
    CU_ASSERT_EQUAL(c.n, 1);
    EXPECT_DOC(&c, 0, "k:0",
               "  Indented first line\ncaf\xc3\xa9 \xe2\x80\x94 it\xe2\x80\x99s fine\n\nafter the gap");
    collected_free(&c);
}

/* A sink's error stops the extraction and comes back as its status. */
static void test_sink_stops(void)
{
    static const char text[] = "The first fortune is long enough.\n%\n"
                               "The second fortune is long enough.\n%\n";
    collected c = {0};
    c.stop_after = 1;
    CU_ASSERT(dlm_extract_fortunes(text, strlen(text), "fortunes", "k", collect, &c) ==
              DLM_ERR_STATE);
    CU_ASSERT_EQUAL(c.n, 1); /* not called for the second */
    CU_ASSERT(strstr(dlm_error_text(), "sink is full") != NULL);
    dlm_error_clear();
}

/* ---- dictd ---- */

/* Offsets and lengths computed separately: meta 0+42 (A q), Cockle 42+369
 * (q Fx), Abb'e 411+133 (Gb CF), Wier 544+50 (Ig y). */
static const char gcide_dict[] =
    "00-database-short\n   Tiny test dictionary\n"
    "Cockle \\Coc\"kle\\ (k[o^]k\"k'l), v. t. [imp. & p. p. {Cockled}.]\n"
    "   To cause to contract into wrinkles or ridges, as some\n"
    "   kinds of cloth after a wetting; to pucker. See {Cockle},\n"
    "   n. [1913 Webster]\n"
    "   Syn: wrinkle.\n"
    "\n"
    "         The rapid currents drive\n"
    "         Towards the retreating sea.\n"
    "                                                  --Milton.\n"
    "   [1913 Webster]\n\n"
    "Abb'e \\Ab\"b['e]`\\, n. [F. abb['e].] An abbot; Fishes (f[i^]sh\"[e^]z) and\n"
    "   Ac*cu\"mu*la`tion (Zool.) stay.\n"
    "   [Webster 1913 Suppl.]\n\n"
    "Wier \\Wier\\, n.\n   See {Weir}.\n   [1913 Webster]\n\n";
static const char gcide_index[] = "00-database-short\tA\tq\n"
                                  "Abb'e\tGb\tCF\n"
                                  "Cockle\tq\tFx\n"
                                  "Cockled\tq\tFx\n"
                                  "Wier\tIg\ty\n";

/* gcide: entries in .dict order, one per entry though two headwords point
 * at Cockle, metadata and the too-short Wier entry skipped; pronunciations,
 * braces, source tags and stress marks gone, entities become letters,
 * the right-aligned author joins the quotation, the body is de-indented. */
static void test_dict_gcide(void)
{
    CU_ASSERT_EQUAL(sizeof gcide_dict - 1, 594);
    collected c = {0};
    DLM_TEST_OK(dlm_extract_dict(gcide_index, sizeof gcide_index - 1, gcide_dict,
                                 sizeof gcide_dict - 1, "gcide", collect, &c));
    CU_ASSERT_EQUAL(c.n, 2);
    EXPECT_DOC(&c, 0, "Cockle@42",
               "Cockle, v. t. [imp. & p. p. Cockled.]\n"
               "To cause to contract into wrinkles or ridges, as some\n"
               "kinds of cloth after a wetting; to pucker. See Cockle,\n"
               "n.\n"
               "Syn: wrinkle.\n"
               "\n"
               "      The rapid currents drive\n"
               "      Towards the retreating sea. --Milton.");
    EXPECT_DOC(&c, 1, "Abb'e@411",
               "Abb'e, n. [F. abb\xc3\xa9.] An abbot; Fishes and\n"
               "Accumulation (Zool.) stay.");
    for (int i = 0; i < c.n; i++) {
        CU_ASSERT(strpbrk(c.text[i], "{}\\") == NULL);
        CU_ASSERT(strstr(c.text[i], "Webster") == NULL);
        CU_ASSERT(strstr(c.text[i], "database") == NULL);
    }
    collected_free(&c);
}

/* jargon: pronunciation dropped from the part-of-speech line, {xrefs} lose
 * their braces even across a line break, code braces stay, a one-line body
 * loses its indent too; devil: _italics_. */
static void test_dict_jargon_devil(void)
{
    static const char jargon[] =
        "demon dialer\n /dee'mn di:'l@r/, n.\n\n"
        "    A program which repeatedly calls the same telephone number. See {\n"
        "    war dialer}. Written in {K&R} style: if (x) { return 0; }\n\n"
        "Chernobyl chicken\n n.\n\n    See {laser chicken}.\n\n";
    /* 0 + 169 bytes, 169 + 49 bytes */
    static const char jargon_index[] = "chernobyl chicken\tCp\tx\ndemon dialer\tA\tCp\n";
    static const char devil[] = "ABNORMAL, adj.  Not conforming to _standard_; snake_case stays.\n\n";
    static const char devil_index[] = "abnormal\tA\tBB\n"; /* 65 bytes */
    CU_ASSERT_EQUAL(sizeof jargon - 1, 169 + 49);
    CU_ASSERT_EQUAL(sizeof devil - 1, 65);
    collected c = {0};
    DLM_TEST_OK(dlm_extract_dict(jargon_index, sizeof jargon_index - 1, jargon, sizeof jargon - 1,
                                 "jargon", collect, &c));
    DLM_TEST_OK(dlm_extract_dict(devil_index, sizeof devil_index - 1, devil, sizeof devil - 1,
                                 "devil", collect, &c));
    CU_ASSERT_EQUAL(c.n, 3);
    EXPECT_DOC(&c, 0, "demon dialer@0",
               "demon dialer\nn.\n\n"
               "A program which repeatedly calls the same telephone number. See\n"
               "war dialer. Written in K&R style: if (x) { return 0; }");
    EXPECT_DOC(&c, 1, "chernobyl chicken@169", "Chernobyl chicken\nn.\n\nSee laser chicken.");
    EXPECT_DOC(&c, 2, "abnormal@0", "ABNORMAL, adj.  Not conforming to standard; snake_case stays.");
    CU_ASSERT(strstr(c.text[0], "/dee") == NULL);
    collected_free(&c);
}

/* A broken index line and an entry beyond the .dict are errors that say where. */
static void test_dict_errors(void)
{
    static const char dict[] = "Some entry text that is long enough.\n";
    collected c = {0};
    CU_ASSERT(dlm_extract_dict("Good\tA\tB\nBad\tA\n", 15, dict, sizeof dict - 1, "x", collect,
                               &c) == DLM_ERR_FORMAT);
    CU_ASSERT(strstr(dlm_error_text(), "index line 2") != NULL);
    dlm_error_clear();
    CU_ASSERT(dlm_extract_dict("Far\tBA\tBA\n", 10, dict, sizeof dict - 1, "x", collect, &c) ==
              DLM_ERR_FORMAT); /* 64 + 64 > 37 bytes */
    CU_ASSERT(strstr(dlm_error_text(), "runs past the end") != NULL);
    dlm_error_clear();
    CU_ASSERT_EQUAL(c.n, 0);
}

/* ---- reStructuredText ---- */

static const char rst_text[] =
    ".. SPDX-License-Identifier: GPL-2.0\n"
    "\n"
    "=============\n"
    "Example Title\n"
    "=============\n"
    "\n"
    ":Author: Jane Doe\n"
    "\n"
    "Intro with ``literal code``, *emphasis*, **bold**, a :ref:`cross reference <xref-target>`,\n"
    "a role :c:func:`kmalloc`, a `link <https://example.org>`_, a footnote [#]_ and \\*stars\\*.\n"
    "\n"
    ".. note::\n"
    "   Keep this note text.\n"
    "\n"
    ".. code-block:: c\n"
    "\n"
    "   int hidden_code = 1;\n"
    "\n"
    "Section\n"
    "-------\n"
    "\n"
    "Here is an example::\n"
    "\n"
    "    hidden_literal();\n"
    "\n"
    "After the literal.\n"
    "\n"
    "+-------+-------+\n"
    "| cellA | cellB |\n"
    "+=======+=======+\n"
    "| cellC | cellD |\n"
    "+-------+-------+\n"
    "\n"
    "=====  =====\n"
    "colA   colB\n"
    "=====  =====\n"
    "val1   val2\n"
    "=====  =====\n"
    "\n"
    ">>> hidden_doctest()\n"
    "42\n"
    "\n"
    ".. toctree::\n"
    "   :maxdepth: 2\n"
    "\n"
    "   hidden-entry\n"
    "\n"
    ".. function:: spam(eggs, *args)\n"
    "\n"
    "   Return *eggs* spammed.\n"
    "\n"
    "   .. versionchanged:: 3.2\n"
    "      Added *args*.\n"
    "\n"
    ".. [#] The hidden footnote body.\n"
    "\n"
    "- A bullet with ``code``::\n"
    "\n"
    "      hidden_in_bullet();\n"
    "\n"
    "  Continued bullet text.\n";

/* Titles, paragraphs, lists and admonitions stay; comments, directives, code,
 * literal and doctest blocks, adornments and both table kinds go; roles,
 * literals, emphasis and links become their text. */
static void test_rst(void)
{
    collected c = {0};
    DLM_TEST_OK(dlm_extract_rst(rst_text, sizeof rst_text - 1, "linux-doc", "doc/x.rst", collect, &c));
    CU_ASSERT_EQUAL(c.n, 1);
    EXPECT_DOC(&c, 0, "doc/x.rst",
               "Example Title\n"
               "\n"
               "Author: Jane Doe\n"
               "\n"
               "Intro with literal code, emphasis, bold, a cross reference,\n"
               "a role kmalloc(), a link, a footnote and *stars*.\n"
               "\n"
               "Note: Keep this note text.\n"
               "\n"
               "Section\n"
               "\n"
               "Here is an example:\n"
               "\n"
               "After the literal.\n"
               "\n"
               "spam(eggs, *args)\n"
               "\n"
               "Return eggs spammed.\n"
               "\n"
               "Changed in version 3.2: Added args.\n"
               "\n"
               "- A bullet with code:\n"
               "\n"
               "Continued bullet text.");
    static const char *const gone[] = {"hidden", "``", ":ref:", ":c:", "cell", "colA", "val1",
                                       "===", "---", ".. ", "::", "SPDX", "https", "[#]",
                                       "maxdepth", ">>>", NULL};
    for (const char *const *g = gone; *g; g++) {
        if (strstr(c.text[0], *g)) printf("\n  '%s' is still in the rst document\n", *g);
        CU_ASSERT(strstr(c.text[0], *g) == NULL);
    }
    collected_free(&c);
}

/* ---- POD ---- */

static const char pod_text[] =
    "=pod\n"
    "\n"
    "=encoding utf8\n"
    "\n"
    "=head1 NAME\n"
    "\n"
    "demo - a B<bold> test of I<nested C<code> codes>\n"
    "\n"
    "=head2 Links and escapes\n"
    "\n"
    "See L<the manual|perlpod> and L<perlfunc/open>, 1 E<lt> 2 E<gt> 0,\n"
    "caf\xc3\xa9 E<eacute> E<0x263A> X<hidden index>Z<>done.\n"
    "\n"
    "    verbatim_code_hidden();\n"
    "\n"
    "=over 4\n"
    "\n"
    "=item *\n"
    "\n"
    "First item with C<< $a->[0] >> and B<< bold >E<gt> >>.\n"
    "\n"
    "=item 2\n"
    "\n"
    "Second item.\n"
    "\n"
    "=item Term\n"
    "\n"
    "Definition of term.\n"
    "\n"
    "=back\n"
    "\n"
    "=begin html\n"
    "\n"
    "<p>hidden html</p>\n"
    "\n"
    "=end html\n"
    "\n"
    "=for comment hidden comment\n"
    "\n"
    "=cut\n"
    "\n"
    "sub not_pod_hidden {}\n"
    "\n"
    "=head1 AFTER\n"
    "\n"
    "Back in POD.\n";

/* Headings and items become lines, verbatim blocks, =begin/=for blocks and
 * code after =cut go, formatting codes (nested, double-bracketed, links,
 * escapes, index entries) become their text. */
static void test_pod(void)
{
    collected c = {0};
    DLM_TEST_OK(dlm_extract_pod(pod_text, sizeof pod_text - 1, "perl-doc", "pod/demo.pod", collect, &c));
    CU_ASSERT_EQUAL(c.n, 1);
    EXPECT_DOC(&c, 0, "pod/demo.pod",
               "NAME\n"
               "\n"
               "demo - a bold test of nested code codes\n"
               "\n"
               "Links and escapes\n"
               "\n"
               "See the manual and \"open\" in perlfunc, 1 < 2 > 0,\n"
               "caf\xc3\xa9 \xc3\xa9 \xe2\x98\xba done.\n"
               "\n"
               "- First item with $a->[0] and bold >>.\n"
               "\n"
               "2. Second item.\n"
               "\n"
               "Term\n"
               "\n"
               "Definition of term.\n"
               "\n"
               "AFTER\n"
               "\n"
               "Back in POD.");
    static const char *const gone[] = {"hidden", "B<", "I<", "C<", "L<", "E<", "X<", "Z<", "=",
                                       "encoding", NULL};
    for (const char *const *g = gone; *g; g++) {
        if (strstr(c.text[0], *g)) printf("\n  '%s' is still in the POD document\n", *g);
        CU_ASSERT(strstr(c.text[0], *g) == NULL);
    }
    collected_free(&c);
}

/* ---- sources and a fake cache ---- */

static void test_default_sources(void)
{
    static const char *const names[] = {"gcide", "fortunes", "jargon", "devil",
                                        "linux-doc", "python-doc", "perl-doc"};
    static const char *const packages[] = {"dict-gcide", "fortunes", "dict-jargon", "dict-devil",
                                           "linux-doc-6.1", "python3.11-doc", "perl-doc"};
    dlm_corpus_source s[DLM_CORPUS_MAX_SOURCES];
    int n = 0;
    dlm_corpus_default_sources(s, &n);
    CU_ASSERT_EQUAL_FATAL(n, 7);
    for (int i = 0; i < n; i++) {
        CU_ASSERT_STRING_EQUAL(s[i].name, names[i]);
        CU_ASSERT_STRING_EQUAL(s[i].package, packages[i]);
        CU_ASSERT(s[i].licence[0] != '\0');
        CU_ASSERT(s[i].version[0] == '\0' && s[i].documents == 0 && s[i].bytes == 0);
    }
    CU_ASSERT_STRING_EQUAL(s[0].licence, "GPL-2+"); /* the copyright file says "version 2, or ... later" */
}

static void write_file(const char *dir, const char *rel, const char *text, size_t len)
{
    char path[1024], cmd[1200];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    CU_ASSERT_FATAL(system(cmd) == 0);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fwrite(text, 1, len, f) == len);
    fclose(f);
}

static void write_str(const char *dir, const char *rel, const char *text)
{
    write_file(dir, rel, text, strlen(text));
}

static void gzip_file(const char *dir, const char *rel)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "gzip -n -f '%s/%s'", dir, rel);
    CU_ASSERT_FATAL(system(cmd) == 0);
}

/* dlm_corpus_extract over hand-made unpacks: sorted order, .dat/.u8/ascii-art
 * and translations/ABI skipped, .gz read (two in one gzip run), keys without
 * ".gz", counts and bytes filled, a missing unpack reported. */
static void test_extract_fake_cache(void)
{
    char cache[] = "/tmp/dlm-corpus-test-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(cache) != NULL);
    static const char devil[] = "ABNORMAL, adj.  Not conforming to _standard_; snake_case stays.\n\n";
    write_str(cache, "dict-devil_1.0-1/usr/share/dictd/devil.index", "abnormal\tA\tBB\n");
    write_str(cache, "dict-devil_1.0-1/usr/share/dictd/devil.dict.dz", devil);
    gzip_file(cache, "dict-devil_1.0-1/usr/share/dictd/devil.dict.dz"); /* -> .dz.gz */
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/dict-devil_1.0-1/usr/share/dictd/devil.dict.dz.gz", cache);
    snprintf(to, sizeof to, "%s/dict-devil_1.0-1/usr/share/dictd/devil.dict.dz", cache);
    CU_ASSERT_FATAL(rename(from, to) == 0);
    write_str(cache, "dict-devil_1.0-1/.dlm-unpacked", "1.0-1\n");

    const char *fdir = "fortunes_1%3a1.0/usr/share/games/fortunes";
    char rel[256];
    snprintf(rel, sizeof rel, "%s/b", fdir);
    write_str(cache, rel, "Beta fortune is also long enough.\n%\n");
    snprintf(rel, sizeof rel, "%s/a", fdir);
    write_str(cache, rel, "Alpha fortune number one is long.\n%\nAlpha fortune number two, long too.\n%\n");
    snprintf(rel, sizeof rel, "%s/a.dat", fdir);
    write_file(cache, rel, "\0\0\0\2binary index of a", 22);
    snprintf(rel, sizeof rel, "%s/ascii-art", fdir);
    write_str(cache, rel, "   /\\_/\\   a cat picture, long enough\n%\n");
    snprintf(from, sizeof from, "%s/%s/a.u8", cache, fdir);
    CU_ASSERT_FATAL(symlink("a", from) == 0);
    write_str(cache, "fortunes_1%3a1.0/.dlm-unpacked", "1:1.0\n");

    const char *ddir = "linux-doc-6.1_6.1-1/usr/share/doc/linux-doc-6.1/Documentation";
    snprintf(rel, sizeof rel, "%s/guide/a.rst", ddir);
    write_str(cache, rel, "Alpha Guide\n===========\n\nAlpha text is here and is long enough.\n");
    snprintf(rel, sizeof rel, "%s/guide/b.rst", ddir);
    write_str(cache, rel, "Beta Guide\n----------\n\nBeta text is here and is long enough.\n");
    gzip_file(cache, rel);
    snprintf(rel, sizeof rel, "%s/guide/c.rst", ddir);
    write_str(cache, rel, "Gamma text is here and is long enough.\n");
    gzip_file(cache, rel);
    snprintf(rel, sizeof rel, "%s/index.rst", ddir);
    write_str(cache, rel, ".. toctree::\n\n   guide/a\n"); /* empty once stripped: dropped */
    snprintf(rel, sizeof rel, "%s/translations/x.rst", ddir);
    write_str(cache, rel, "Translated text that must be skipped.\n");
    snprintf(rel, sizeof rel, "%s/ABI/y.rst", ddir);
    write_str(cache, rel, "ABI text that must be skipped as well.\n");
    write_str(cache, "linux-doc-6.1_6.1-1/.dlm-unpacked", "6.1-1\n");

    dlm_corpus_source all[DLM_CORPUS_MAX_SOURCES], src[3];
    int n;
    dlm_corpus_default_sources(all, &n);
    src[0] = all[3]; /* devil */
    src[1] = all[1]; /* fortunes */
    src[2] = all[4]; /* linux-doc */
    strcpy(src[0].version, "1.0-1");
    strcpy(src[1].version, "1:1.0"); /* its folder spells the ':' as %3a */
    strcpy(src[2].version, "6.1-1");
    collected c = {0};
    DLM_TEST_OK(dlm_corpus_extract(cache, src, 3, collect, &c));
    CU_ASSERT_EQUAL_FATAL(c.n, 7);
    EXPECT_DOC(&c, 0, "abnormal@0", "ABNORMAL, adj.  Not conforming to standard; snake_case stays.");
    EXPECT_DOC(&c, 1, "usr/share/games/fortunes/a:0", "Alpha fortune number one is long.");
    EXPECT_DOC(&c, 2, "usr/share/games/fortunes/a:1", "Alpha fortune number two, long too.");
    EXPECT_DOC(&c, 3, "usr/share/games/fortunes/b:0", "Beta fortune is also long enough.");
    EXPECT_DOC(&c, 4, "usr/share/doc/linux-doc-6.1/Documentation/guide/a.rst",
               "Alpha Guide\n\nAlpha text is here and is long enough.");
    EXPECT_DOC(&c, 5, "usr/share/doc/linux-doc-6.1/Documentation/guide/b.rst",
               "Beta Guide\n\nBeta text is here and is long enough.");
    EXPECT_DOC(&c, 6, "usr/share/doc/linux-doc-6.1/Documentation/guide/c.rst",
               "Gamma text is here and is long enough.");
    CU_ASSERT_STRING_EQUAL(c.source[0], "devil");
    CU_ASSERT_STRING_EQUAL(c.source[1], "fortunes");
    CU_ASSERT_STRING_EQUAL(c.source[4], "linux-doc");
    CU_ASSERT_EQUAL(src[0].documents, 1);
    CU_ASSERT_EQUAL(src[0].bytes, (int64_t)c.len[0]);
    CU_ASSERT_EQUAL(src[1].documents, 3);
    CU_ASSERT_EQUAL(src[1].bytes, (int64_t)(c.len[1] + c.len[2] + c.len[3]));
    CU_ASSERT_EQUAL(src[2].documents, 3);
    CU_ASSERT_EQUAL(src[2].bytes, (int64_t)(c.len[4] + c.len[5] + c.len[6]));
    collected_free(&c);

    /* a version with no finished unpack in the cache */
    strcpy(src[0].version, "2.0-1");
    CU_ASSERT(dlm_corpus_extract(cache, src, 1, collect, &c) == DLM_ERR_STATE);
    CU_ASSERT(strstr(dlm_error_text(), "run dlm_corpus_fetch first") != NULL);
    dlm_error_clear();
    collected_free(&c);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    CU_ASSERT(system(cmd) == 0);
}

/* A package name that could be an option or hold shell characters is refused
 * before apt-get runs. */
static void test_fetch_refuses_bad_names(void)
{
    char cache[] = "/tmp/dlm-corpus-test-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(cache) != NULL);
    dlm_corpus_source s[1];
    memset(s, 0, sizeof s);
    strcpy(s[0].name, "bad");
    strcpy(s[0].package, "-o;rm");
    CU_ASSERT(dlm_corpus_fetch(cache, s, 1) == DLM_ERR_ARG);
    CU_ASSERT(strstr(dlm_error_text(), "'-o;rm' is not a Debian package name") != NULL);
    dlm_error_clear();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    CU_ASSERT(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    static const dlm_test_case extractors[] = {
        {"dictd base64", test_b64},
        {"fortunes: entries, keys, overstrikes", test_fortunes},
        {"document normalising", test_normalise},
        {"sink error stops extraction", test_sink_stops},
        {"dictd gcide markup", test_dict_gcide},
        {"dictd jargon and devil markup", test_dict_jargon_devil},
        {"dictd index errors", test_dict_errors},
        {"reStructuredText", test_rst},
        {"POD", test_pod},
        {NULL, NULL}};
    static const dlm_test_case sources[] = {
        {"default sources", test_default_sources},
        {"extract from a fake cache", test_extract_fake_cache},
        {"fetch refuses bad package names", test_fetch_refuses_bad_names},
        {NULL, NULL}};
    static const dlm_test_suite suites[] = {
        {"extractors", extractors}, {"sources", sources}, {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
