/* dlm's default corpus from Debian packages: fetching (apt-get download,
 * dpkg-deb -x into a cache), reading (gzip -dc for .gz and .dz files, since
 * zlib is not a dependency) and the markup strippers that turn dictd
 * dictionaries, fortune files, reStructuredText and POD into plain documents. */
#define _POSIX_C_SOURCE 200809L
#include "io/debian_corpus.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/timer.h"

extern char **environ;

/* Like DLM_CHECK, for functions that free things on the way out. */
#define CHECK_GOTO(st, cond, code, label, ...)                                        \
    do {                                                                              \
        if (!(cond)) {                                                                \
            (st) = dlm_error_push((code), __FILE__, __LINE__, __func__, __VA_ARGS__); \
            goto label;                                                               \
        }                                                                             \
    } while (0)

#define NONE ((size_t)-1)

/* ------------------------------------------------------------------------ */
/* Growable strings. An allocation failure is sticky and checked once per   */
/* document, so the strippers need no check after every append.             */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} tbuf;

static void tb_reserve(tbuf *b, size_t extra)
{
    if (b->failed || b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void tb_add(tbuf *b, const char *s, size_t n)
{
    if (n == 0) return;
    tb_reserve(b, n);
    if (b->failed) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void tb_addc(tbuf *b, char c) { tb_add(b, &c, 1); }
static void tb_adds(tbuf *b, const char *s) { tb_add(b, s, strlen(s)); }

static void tb_clear(tbuf *b)
{
    b->len = 0;
    if (b->p) b->p[0] = '\0';
}

static void tb_free(tbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Takes over p, a malloc'd string of len bytes and a NUL, as the buffer's text. */
static void tb_take(tbuf *b, char *p, size_t len)
{
    free(b->p);
    b->p = p;
    b->len = len;
    b->cap = len + 1;
    b->failed = 0;
}

/* The text as a C string ("" when nothing was ever added). */
static const char *tb_str(const tbuf *b) { return b->p ? b->p : ""; }

static void tb_trim_spaces(tbuf *b)
{
    while (b->len && (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == '\t')) b->len--;
    if (b->p) b->p[b->len] = '\0';
}

static void tb_utf8(tbuf *b, uint32_t cp)
{
    char e[4];
    if (cp < 0x80) {
        e[0] = (char)cp;
        tb_add(b, e, 1);
    } else if (cp < 0x800) {
        e[0] = (char)(0xC0 | (cp >> 6));
        e[1] = (char)(0x80 | (cp & 0x3F));
        tb_add(b, e, 2);
    } else if (cp < 0x10000) {
        e[0] = (char)(0xE0 | (cp >> 12));
        e[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        e[2] = (char)(0x80 | (cp & 0x3F));
        tb_add(b, e, 3);
    } else {
        e[0] = (char)(0xF0 | (cp >> 18));
        e[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        e[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        e[3] = (char)(0x80 | (cp & 0x3F));
        tb_add(b, e, 4);
    }
}

static int is_sp(int c) { return c == ' ' || c == '\t'; }
static int is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static size_t find_str(const char *s, size_t from, size_t n, const char *pat)
{
    size_t m = strlen(pat);
    for (size_t i = from; i + m <= n; i++)
        if (memcmp(s + i, pat, m) == 0) return i;
    return NONE;
}

/* ------------------------------------------------------------------------ */
/* Normalising and handing a document to the sink.                          */

/* Windows-1252 for 0x80..0x9F (0: undefined, dropped); 0xA0..0xFF are Latin-1. */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

/* Length of the well-formed UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* The document rules of debian_corpus.h: text -> out; ws is scratch. */
static void normalise(const char *text, size_t n, tbuf *out, tbuf *ws)
{
    const unsigned char *s = (const unsigned char *)text;
    int newlines = 0;
    tb_clear(out);
    tb_clear(ws);
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '\n') {
            newlines++;
            tb_clear(ws); /* trailing blanks of the line end here */
            i++;
            continue;
        }
        if (c == ' ' || c == '\t') {
            tb_addc(ws, (char)c);
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7F) {
            i++;
            continue;
        }
        char enc[4];
        const char *piece = text + i;
        size_t plen = utf8_len(s + i, n - i);
        if (plen == 3 && c == 0xEF && s[i + 1] == 0xBB && s[i + 2] == 0xBF) { /* BOM */
            i += 3;
            continue;
        }
        if (plen) {
            i += plen;
        } else {
            uint32_t cp = c >= 0xA0 ? c : cp1252_high[c - 0x80];
            i++;
            if (!cp) continue;
            if (cp < 0x800) {
                enc[0] = (char)(0xC0 | (cp >> 6));
                enc[1] = (char)(0x80 | (cp & 0x3F));
                plen = 2;
            } else {
                enc[0] = (char)(0xE0 | (cp >> 12));
                enc[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                enc[2] = (char)(0x80 | (cp & 0x3F));
                plen = 3;
            }
            piece = enc;
        }
        if (out->len)
            for (int k = 0; k < (newlines < 2 ? newlines : 2); k++) tb_addc(out, '\n');
        newlines = 0;
        tb_add(out, tb_str(ws), ws->len);
        tb_clear(ws);
        tb_add(out, piece, plen);
    }
}

/* Scratch shared by the emitting paths of one extractor call. */
typedef struct {
    tbuf doc, ws, key;
} emitter;

static void emitter_free(emitter *e)
{
    tb_free(&e->doc);
    tb_free(&e->ws);
    tb_free(&e->key);
}

static dlm_status emit(emitter *e, dlm_doc_sink sink, void *ctx, const char *source,
                       const char *key, const char *text, size_t n)
{
    normalise(text, n, &e->doc, &e->ws);
    DLM_CHECK(!e->doc.failed && !e->ws.failed, DLM_ERR_NOMEM,
              "out of memory normalising document %s of source %s", key, source);
    if (e->doc.len < DLM_CORPUS_MIN_DOC_BYTES) return DLM_OK;
    DLM_CALL(sink(ctx, source, key, e->doc.p, e->doc.len));
    return DLM_OK;
}

/* ------------------------------------------------------------------------ */
/* fortune files                                                            */

typedef struct {
    char b[4];
    unsigned char n;
} cell;

/* One line as a terminal would show it: BACKSPACE moves back one character
 * and the next one overwrites it; an underscore never hides a letter. */
static void overstrike_line(const char *s, size_t n, cell *cells, tbuf *out)
{
    size_t ncell = 0, cur = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\b') {
            if (cur) cur--;
            i++;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            i++;
            continue;
        }
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        if (!l) l = 1; /* normalise re-encodes it later */
        cell nc;
        memcpy(nc.b, s + i, l);
        nc.n = (unsigned char)l;
        i += l;
        if (cur < ncell) {
            cell *old = &cells[cur];
            int underline = nc.n == 1 && nc.b[0] == '_';
            int old_blank = old->n == 1 && (old->b[0] == ' ' || old->b[0] == '_');
            if (!underline || old_blank) *old = nc;
        } else {
            cells[ncell++] = nc;
        }
        cur++;
    }
    for (size_t k = 0; k < ncell; k++) tb_add(out, cells[k].b, cells[k].n);
}

/* One fortune under the key "<prefix>:<index>". */
static dlm_status emit_fortune(emitter *e, dlm_doc_sink sink, void *ctx, const char *source,
                               const char *prefix, size_t index, const tbuf *entry)
{
    char num[32];
    snprintf(num, sizeof num, ":%zu", index);
    tb_clear(&e->key);
    tb_adds(&e->key, prefix);
    tb_adds(&e->key, num);
    DLM_CHECK(!entry->failed && !e->key.failed, DLM_ERR_NOMEM, "out of memory reading fortune %s%s",
              prefix, num);
    DLM_CALL(emit(e, sink, ctx, source, e->key.p, tb_str(entry), entry->len));
    return DLM_OK;
}

dlm_status dlm_extract_fortunes(const char *text, size_t len, const char *source,
                                const char *key_prefix, dlm_doc_sink sink, void *ctx)
{
    DLM_CHECK(text && source && key_prefix && sink, DLM_ERR_ARG,
              "dlm_extract_fortunes needs text, source, key_prefix and sink");
    dlm_status st = DLM_OK;
    emitter e = {0};
    tbuf entry = {0};
    size_t index = 0, maxline = 0;
    for (size_t p = 0, q; p < len; p = q + 1) { /* the longest line sizes the cells */
        const char *nl = memchr(text + p, '\n', len - p);
        q = nl ? (size_t)(nl - text) : len;
        if (q - p > maxline) maxline = q - p;
    }
    cell *cells = malloc((maxline + 1) * sizeof *cells);
    CHECK_GOTO(st, cells, DLM_ERR_NOMEM, done, "out of memory for a %zu-byte fortune line",
               maxline);
    for (size_t p = 0;;) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t e_ = nl ? (size_t)(nl - text) : len, l = e_ - p;
        if (l && text[p + l - 1] == '\r') l--;
        int last = e_ >= len;
        if (l == 1 && text[p] == '%') {
            DLM_CALL_GOTO(st, emit_fortune(&e, sink, ctx, source, key_prefix, index++, &entry), done);
            tb_clear(&entry);
        } else if (!(last && l == 0)) {
            overstrike_line(text + p, l, cells, &entry);
            tb_addc(&entry, '\n');
        }
        if (last) break;
        p = e_ + 1;
    }
    DLM_CALL_GOTO(st, emit_fortune(&e, sink, ctx, source, key_prefix, index, &entry), done);
done:
    free(cells);
    tb_free(&entry);
    emitter_free(&e);
    return st;
}

/* ------------------------------------------------------------------------ */
/* dictd dictionaries                                                       */

static int b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
    if (c >= '0' && c <= '9') return 52 + (c - '0');
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

dlm_status dlm_dictd_b64_decode(const char *s, size_t len, uint64_t *value)
{
    int shown = len < 40 ? (int)len : 40;
    DLM_CHECK(len > 0, DLM_ERR_FORMAT, "empty dictd base64 number");
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        int d = b64_digit((unsigned char)s[i]);
        DLM_CHECK(d >= 0, DLM_ERR_FORMAT,
                  "dictd base64 number '%.*s' holds a character outside A-Z a-z 0-9 + / "
                  "(byte 0x%02x)",
                  shown, s, (unsigned char)s[i]);
        DLM_CHECK(v < (UINT64_C(1) << 57), DLM_ERR_FORMAT,
                  "dictd base64 number '%.*s' is beyond 2^63", shown, s);
        v = v * 64 + (uint64_t)d;
    }
    *value = v;
    return DLM_OK;
}

/* gcide writes letters outside ASCII as bracketed codes ([=a] a-macron,
 * [a^] a-breve, ['e] e-acute ...); most sit in the pronunciations, which are
 * dropped, the rest in etymologies. Codes not listed stay as they are: many
 * bracketed words are labels ("[Obs.]"). */
static const struct {
    const char *code, *utf8;
} gcide_entities[] = {
    {"'a", "\u00e1"},    {"'e", "\u00e9"},   {"'i", "\u00ed"},    {"'o", "\u00f3"},
    {"'u", "\u00fa"},    {"'y", "\u00fd"},   {"'A", "\u00c1"},    {"'E", "\u00c9"},
    {"'I", "\u00cd"},    {"'O", "\u00d3"},   {"'U", "\u00da"},    {"`a", "\u00e0"},
    {"`e", "\u00e8"},    {"`i", "\u00ec"},   {"`o", "\u00f2"},    {"`u", "\u00f9"},
    {"`A", "\u00c0"},    {"`E", "\u00c8"},   {"\"a", "\u00e4"},   {"\"e", "\u00eb"},
    {"\"i", "\u00ef"},   {"\"o", "\u00f6"},  {"\"u", "\u00fc"},   {"\"y", "\u00ff"},
    {"\"A", "\u00c4"},   {"\"O", "\u00d6"},  {"\"U", "\u00dc"},   {"^a", "\u00e2"},
    {"^e", "\u00ea"},    {"^i", "\u00ee"},   {"^o", "\u00f4"},    {"^u", "\u00fb"},
    {"~a", "\u00e3"},    {"~e", "\u1ebd"},   {"~n", "\u00f1"},    {"~o", "\u00f5"},
    {"~u", "\u0169"},    {"~N", "\u00d1"},   {"=a", "\u0101"},    {"=e", "\u0113"},
    {"=i", "\u012b"},    {"=o", "\u014d"},   {"=u", "\u016b"},    {"=y", "\u0233"},
    {"=A", "\u0100"},    {"=E", "\u0112"},   {"=O", "\u014c"},    {"=ae", "\u01e3"},
    {"=oo", "o\u035eo"}, {"a^", "\u0103"},   {"e^", "\u0115"},    {"i^", "\u012d"},
    {"o^", "\u014f"},    {"u^", "\u016d"},   {"y^", "y\u0306"},   {"oo^", "o\u035do"},
    {"-a", "\u0101"},    {"-e", "\u0113"},   {"-i", "\u012b"},    {"-o", "\u014d"},
    {"-u", "\u016b"},    {"imac", "\u012b"}, {"aum", "\u00e4"},   {"asl", "\u0101"},
    {"add", "a\u0324"},  {"udd", "\u1e73"},  {".a", "\u0227"},    {".e", "\u0117"},
    {".o", "\u022f"},    {".u", "u\u0307"},  {".c", "\u010b"},    {".z", "\u017c"},
    {".r", "\u1e5b"},    {".t", "\u1e6d"},   {".n", "\u1e47"},    {".h", "\u1e25"},
    {".m", "\u1e43"},    {".s", "\u1e63"},   {".d", "\u1e0d"},    {"dsdot", "\u1e0d"},
    {"zdot", "\u017c"},  {",c", "\u00e7"},   {"*a", "\u00e5"},    {"*u", "\u016f"},
    {"ae", "\u00e6"},    {"AE", "\u00c6"},   {"oe", "\u0153"},    {"OE", "\u0152"},
    {"eth", "\u00f0"},   {"thorn", "\u00fe"}, {"th", "th"},       {"ng", "\u014b"},
    {"yogh", "\u021d"},  {"schwa", "\u0259"}, {"ccaron", "\u010d"}, {"cacute", "\u0107"},
    {"deg", "\u00b0"},   {"sect", "\u00a7"}, {"para", "\u00b6"},  {"root", "\u221a"},
    {"pounds", "\u00a3"}, {"prime", "\u2032"}, {"bprime", "\u2033"}, {"dagger", "\u2020"},
    {"dag", "\u2020"},   {"times", "\u00d7"}, {"divby", "\u00f7"}, {"div", "\u00f7"},
    {"middot", "\u00b7"}, {"nbsp", " "},     {"rarr", "\u2192"},  {"ldqo", "\u201c"},
    {"rdqo", "\u201d"},  {"rsquo", "\u2019"}, {"sharp", "\u266f"}, {"flat", "\u266d"},
    {"natural", "\u266e"}, {"hand", "\u261e"}, {"filig", "fi"},   {"fllig", "fl"},
    {"ffllig", "ffl"},   {"breve", "\u02d8"}, {"umlaut", "\u00a8"}, {"asper", "\u02bd"},
    {"alpha", "\u03b1"}, {"beta", "\u03b2"}, {"gamma", "\u03b3"}, {"delta", "\u03b4"},
    {"epsilon", "\u03b5"}, {"zeta", "\u03b6"}, {"eta", "\u03b7"}, {"theta", "\u03b8"},
    {"iota", "\u03b9"},  {"kappa", "\u03ba"}, {"lambda", "\u03bb"}, {"mu", "\u03bc"},
    {"nu", "\u03bd"},    {"xi", "\u03be"},   {"omicron", "\u03bf"}, {"pi", "\u03c0"},
    {"rho", "\u03c1"},   {"sigma", "\u03c3"}, {"sigmat", "\u03c2"}, {"tau", "\u03c4"},
    {"upsilon", "\u03c5"}, {"phi", "\u03c6"}, {"chi", "\u03c7"},  {"psi", "\u03c8"},
    {"omega", "\u03c9"}, {"digamma", "\u03dd"}, {"Gamma", "\u0393"}, {"Delta", "\u0394"},
    {"Theta", "\u0398"}, {"Lambda", "\u039b"}, {"Pi", "\u03a0"},  {"Sigma", "\u03a3"},
    {"Upsilon", "\u03a5"}, {"Phi", "\u03a6"}, {"Chi", "\u03a7"},  {"Omega", "\u03a9"},
    {"Tau", "\u03a4"},   {"Omicron", "\u039f"},
};

static const char *gcide_entity(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof gcide_entities / sizeof gcide_entities[0]; i++)
        if (strlen(gcide_entities[i].code) == n && memcmp(gcide_entities[i].code, s, n) == 0)
            return gcide_entities[i].utf8;
    return NULL;
}

/* gcide's per-paragraph source tags: "1913 Webster", "WordNet 1.5",
 * "PJC", "1913 Webster +PJC", contributor initials... (the text between []). */
static int gcide_source_tag(const char *s, size_t n)
{
    char t[96];
    if (n == 0 || n >= sizeof t) return 0;
    memcpy(t, s, n);
    t[n] = '\0';
    if (strstr(t, "Webster") || strstr(t, "WordNet") || strstr(t, "Century Dict") ||
        strcmp(t, "break") == 0)
        return 1;
    /* otherwise every '+'-separated part must be initials such as PJC, RDH, MW10 */
    for (char *part = t; part;) {
        char *plus = strchr(part, '+');
        if (plus) *plus = '\0';
        while (*part == ' ') part++;
        size_t l = strlen(part);
        while (l && (part[l - 1] == ' ' || part[l - 1] == '.')) l--;
        int letters = 0;
        if (l < 2 || l > 6) return 0;
        for (size_t k = 0; k < l; k++) {
            if (part[k] >= 'A' && part[k] <= 'Z') letters++;
            else if (!(part[k] >= '0' && part[k] <= '9')) return 0;
        }
        if (!letters) return 0;
        part = plus ? plus + 1 : NULL;
    }
    return 1;
}

/* Removes the common indentation of an entry's body: the most frequent
 * indent of its lines from line `from` on (dictd indents the body after the
 * headword line; quotations and continuations sit deeper and keep their
 * extra indent). */
static void dedent_mode(const char *s, size_t n, int from, tbuf *out)
{
    size_t hist[65] = {0};
    int line = 0;
    for (size_t p = 0; p < n; line++) {
        const char *nl = memchr(s + p, '\n', n - p);
        size_t e = nl ? (size_t)(nl - s) : n, k = p;
        while (k < e && s[k] == ' ') k++;
        if (line >= from && k < e) hist[k - p < 64 ? k - p : 64]++;
        p = e + 1;
    }
    size_t mode = 0;
    for (size_t k = 1; k < 65; k++)
        if (hist[k] > hist[mode]) mode = k;
    for (size_t p = 0; p < n;) {
        const char *nl = memchr(s + p, '\n', n - p);
        size_t e = nl ? (size_t)(nl - s) : n, k = p;
        while (k < e && k - p < mode && s[k] == ' ') k++;
        tb_add(out, s + k, e - k);
        if (nl) tb_addc(out, '\n');
        p = e + 1;
    }
}

/* {cross references} lose their braces; braces that look like code stay. */
static void strip_xref_braces(const char *s, size_t n, tbuf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '{') {
            size_t j = i + 1;
            int newlines = 0, ok = 1;
            for (; j < n && j < i + 120 && s[j] != '}'; j++) {
                if (strchr("{;<>=", s[j])) ok = 0;
                if (s[j] == '\n') newlines++;
            }
            if (ok && j < n && s[j] == '}' && j > i + 1 && newlines <= 1 && !is_ws(s[j - 1])) {
                tb_add(out, s + i + 1, j - i - 1);
                i = j;
                continue;
            }
        }
        tb_addc(out, s[i]);
    }
}

/* If t[k..] holds (after blanks, when after_hw) a parenthesised phonetic
 * spelling, the index of its ')' else NONE. After a \headword\ any
 * parenthesis with phonetic marks counts; elsewhere only one without blanks
 * that has a stress mark after a letter, like (ap"sez). Labels such as
 * "(Zool.)" or "(A[\"e]ronautics)" begin with a capital and stay. */
static size_t gcide_pron_end(const char *t, size_t k, size_t m, int after_hw)
{
    if (after_hw)
        while (k < m && t[k] == ' ') k++;
    if (k >= m || t[k] != '(') return NONE;
    if (k + 1 < m && isupper((unsigned char)t[k + 1])) return NONE; /* a label: (Zool.) */
    int depth = 0, marks = 0, stress = 0, blanks = 0;
    for (size_t q = k; q < m && q < k + (after_hw ? 400 : 80); q++) {
        char c = t[q];
        if (c == '(') depth++;
        else if (c == ')' && --depth == 0) {
            if (after_hw ? !marks : (blanks || !stress)) return NONE;
            return q;
        } else if (c == '\n' && q + 1 < m && t[q + 1] == '\n') return NONE;
        if (c == ' ' || c == '\n') blanks = 1;
        if (strchr("\"*`[?'", c)) marks = 1;
        if ((c == '"' || c == '`') && q > k + 1 &&
            (isalpha((unsigned char)t[q - 1]) || t[q - 1] == ']' || t[q - 1] == '?'))
            stress = 1;
    }
    return NONE;
}

/* gcide: drop source-tag lines and join right-aligned "--Author." lines to
 * the quotation, then drop \pro*nun"ci*a`tion\ groups with the (phonetic)
 * spelling after them, turn [entity] codes into letters and remove {braces}. */
static void clean_gcide(const char *s, size_t n, tbuf *tmp, tbuf *out)
{
    tb_clear(tmp);
    for (size_t p = 0; p < n;) {
        const char *nl = memchr(s + p, '\n', n - p);
        size_t e = nl ? (size_t)(nl - s) : n, a = p, b = e;
        while (a < b && s[a] == ' ') a++;
        while (b > a && is_ws(s[b - 1])) b--;
        int tag = b - a >= 2 && s[a] == '[' && s[b - 1] == ']' &&
                  !memchr(s + a + 1, ']', b - a - 2) && gcide_source_tag(s + a + 1, b - a - 2);
        if (tag) {
            p = e + 1;
            continue;
        }
        if (b - a > 2 && s[a] == '-' && s[a + 1] == '-' && a - p >= 16 && tmp->len &&
            tmp->len >= 2 && tmp->p[tmp->len - 2] != '\n') {
            tmp->len--; /* the newline ending the quotation's last line */
            tb_trim_spaces(tmp);
            tb_addc(tmp, ' ');
            tb_add(tmp, s + a, b - a);
            tb_addc(tmp, '\n');
            p = e + 1;
            continue;
        }
        tb_add(tmp, s + p, e - p);
        if (nl) tb_addc(tmp, '\n');
        p = e + 1;
    }
    const char *t = tb_str(tmp);
    size_t m = tmp->len;
    tbuf chars = {0};
    for (size_t i = 0; i < m; i++) {
        char c = t[i];
        if (c == '\\') { /* \Hw"ord\ : may wrap onto a second line */
            size_t j = i + 1;
            int newlines = 0;
            for (; j < m && j < i + 200 && t[j] != '\\'; j++)
                if (t[j] == '\n' && ++newlines > 1) break;
            if (j < m && t[j] == '\\') {
                tb_trim_spaces(&chars);
                size_t k = j + 1, q = gcide_pron_end(t, k, m, 1);
                i = q != NONE ? q : j;
                continue;
            }
        } else if (c == '(') { /* a pronunciation elsewhere: Fishes (fish"ez) */
            size_t q = gcide_pron_end(t, i, m, 0);
            if (q != NONE) {
                tb_trim_spaces(&chars);
                i = q;
                continue;
            }
        } else if (c == '[') {
            size_t j = i + 1;
            while (j < m && j < i + 40 && t[j] != ']' && t[j] != '[' && t[j] != '\n') j++;
            if (j < m && t[j] == ']') {
                const char *u = gcide_entity(t + i + 1, j - i - 1);
                if (u) {
                    tb_adds(&chars, u);
                    i = j;
                    continue;
                }
                if (gcide_source_tag(t + i + 1, j - i - 1)) {
                    tb_trim_spaces(&chars);
                    i = j;
                    continue;
                }
            }
        } else if (c == '{' || c == '}') {
            continue;
        } else if (c == '"' || c == '*' || c == '`') { /* stress and syllable marks: Ac*cu"mu*late */
            unsigned char prev = chars.len ? (unsigned char)chars.p[chars.len - 1] : ' ';
            unsigned char next = i + 1 < m ? (unsigned char)t[i + 1] : ' ';
            if ((isalpha(prev) || prev >= 0x80) && (isalpha(next) || next >= 0x80 || next == '['))
                continue;
        } else if (c == ' ' && chars.len && chars.p[chars.len - 1] != '\n') {
            size_t j = i; /* right-aligned "--Author." after a quotation */
            while (j < m && t[j] == ' ') j++;
            if (j - i >= 3 && j + 1 < m && t[j] == '-' && t[j + 1] == '-') {
                tb_addc(&chars, ' ');
                i = j - 1;
                continue;
            }
        }
        tb_addc(&chars, c);
    }
    dedent_mode(tb_str(&chars), chars.len, 1, out);
    if (chars.failed) out->failed = 1;
    tb_free(&chars);
}

/* jargon: the second line holds " /pro-nun'ci-a-tion/, n."; keep the part of speech. */
static void clean_jargon(const char *s, size_t n, tbuf *tmp, tbuf *out)
{
    tb_clear(tmp);
    const char *nl = memchr(s, '\n', n);
    size_t l2 = nl ? (size_t)(nl - s) + 1 : n;
    size_t e2 = l2;
    while (e2 < n && s[e2] != '\n') e2++;
    if (l2 + 1 < e2 && s[l2] == ' ' && s[l2 + 1] == '/') {
        const char *close = memchr(s + l2 + 2, '/', e2 - l2 - 2);
        if (close) {
            size_t r = (size_t)(close - s) + 1;
            if (r < e2 && s[r] == ',') r++;
            while (r < e2 && s[r] == ' ') r++;
            tb_add(tmp, s, l2);
            if (r < e2) {
                tb_addc(tmp, ' ');
                tb_add(tmp, s + r, e2 - r);
                tb_addc(tmp, '\n');
            }
            if (e2 < n) tb_add(tmp, s + e2 + 1, n - e2 - 1);
            s = tb_str(tmp);
            n = tmp->len;
        }
    }
    tbuf b = {0};
    strip_xref_braces(s, n, &b);
    dedent_mode(tb_str(&b), b.len, 2, out); /* the body's indent, not the " n." line's */
    if (b.failed) out->failed = 1;
    tb_free(&b);
}

/* devil: _italics_ lose their underscores (snake_case inside a word stays). */
static void clean_devil(const char *s, size_t n, tbuf *tmp, tbuf *out)
{
    tb_clear(tmp);
    for (size_t i = 0; i < n; i++) {
        int prev = i ? (unsigned char)s[i - 1] : ' ', next = i + 1 < n ? (unsigned char)s[i + 1] : ' ';
        if (s[i] == '_' && !(isalnum(prev) && isalnum(next))) continue;
        tb_addc(tmp, s[i]);
    }
    dedent_mode(tb_str(tmp), tmp->len, 1, out);
}

typedef struct {
    uint64_t off, len;
    size_t hw, hwlen, order;
} dict_ref;

static int cmp_ref(const void *a, const void *b)
{
    const dict_ref *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

dlm_status dlm_extract_dict(const char *index_text, size_t index_len, const char *dict_text,
                            size_t dict_len, const char *source, dlm_doc_sink sink, void *ctx)
{
    DLM_CHECK(index_text && dict_text && source && sink, DLM_ERR_ARG,
              "dlm_extract_dict needs index, dict, source and sink");
    dlm_status st = DLM_OK;
    emitter e = {0};
    tbuf tmp = {0}, clean = {0};
    size_t cap = 1, nref = 0, line_no = 0;
    for (size_t i = 0; i < index_len; i++) cap += index_text[i] == '\n';
    dict_ref *refs = malloc(cap * sizeof *refs);
    CHECK_GOTO(st, refs, DLM_ERR_NOMEM, done, "out of memory for %zu dictd index lines", cap);
    for (size_t p = 0; p < index_len;) {
        const char *nl = memchr(index_text + p, '\n', index_len - p);
        size_t end = nl ? (size_t)(nl - index_text) : index_len, q = end;
        line_no++;
        if (q > p && index_text[q - 1] == '\r') q--;
        if (q > p) {
            const char *l = index_text + p;
            const char *t1 = memchr(l, '\t', q - p);
            const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(index_text + q - t1 - 1)) : NULL;
            CHECK_GOTO(st, t2, DLM_ERR_FORMAT, done,
                       "%s index line %zu is not 'headword TAB offset TAB length': '%.*s'", source,
                       line_no, (int)(q - p < 80 ? q - p : 80), l);
            const char *t3 = memchr(t2 + 1, '\t', (size_t)(index_text + q - t2 - 1));
            const char *lend = t3 ? t3 : index_text + q;
            dict_ref r = {0, 0, p, (size_t)(t1 - l), nref};
            DLM_CALL_GOTO(st, dlm_dictd_b64_decode(t1 + 1, (size_t)(t2 - t1 - 1), &r.off), done);
            DLM_CALL_GOTO(st, dlm_dictd_b64_decode(t2 + 1, (size_t)(lend - t2 - 1), &r.len), done);
            CHECK_GOTO(st, r.off <= dict_len && r.len <= dict_len - r.off, DLM_ERR_FORMAT, done,
                       "%s index line %zu ('%.*s'): entry at offset %llu, length %llu runs past "
                       "the end of the %zu-byte .dict; the index and .dict do not belong together",
                       source, line_no, (int)(r.hwlen < 60 ? r.hwlen : 60), l,
                       (unsigned long long)r.off, (unsigned long long)r.len, dict_len);
            refs[nref++] = r;
        }
        p = end + 1;
    }
    qsort(refs, nref, sizeof *refs, cmp_ref);
    for (size_t i = 0; i < nref; i++) {
        const dict_ref *r = &refs[i];
        if (i && r->off == refs[i - 1].off && r->len == refs[i - 1].len) continue;
        const char *hw = index_text + r->hw;
        if ((r->hwlen >= 11 && memcmp(hw, "00-database", 11) == 0) ||
            (r->hwlen >= 10 && memcmp(hw, "00database", 10) == 0))
            continue;
        const char *entry = dict_text + r->off;
        size_t n = (size_t)r->len;
        tb_clear(&clean);
        if (strcmp(source, "gcide") == 0) clean_gcide(entry, n, &tmp, &clean);
        else if (strcmp(source, "jargon") == 0) clean_jargon(entry, n, &tmp, &clean);
        else if (strcmp(source, "devil") == 0) clean_devil(entry, n, &tmp, &clean);
        else {
            tb_clear(&tmp);
            strip_xref_braces(entry, n, &tmp);
            dedent_mode(tb_str(&tmp), tmp.len, 1, &clean);
        }
        char num[32];
        snprintf(num, sizeof num, "@%llu", (unsigned long long)r->off);
        tb_clear(&e.key);
        tb_add(&e.key, hw, r->hwlen);
        tb_adds(&e.key, num);
        CHECK_GOTO(st, !clean.failed && !tmp.failed && !e.key.failed, DLM_ERR_NOMEM, done,
                   "out of memory cleaning %s entry '%.*s'", source, (int)r->hwlen, hw);
        DLM_CALL_GOTO(st, emit(&e, sink, ctx, source, e.key.p, tb_str(&clean), clean.len), done);
    }
done:
    free(refs);
    tb_free(&tmp);
    tb_free(&clean);
    emitter_free(&e);
    return st;
}

/* ------------------------------------------------------------------------ */
/* reStructuredText                                                         */

typedef struct {
    const char *s; /* first non-blank character */
    size_t n;      /* length to the last non-blank character; 0 for a blank line */
    int indent;    /* columns before s, tabs to multiples of 8 */
} rline;

static rline *split_rlines(const char *text, size_t len, size_t *count)
{
    size_t cap = 1, n = 0;
    for (size_t i = 0; i < len; i++) cap += text[i] == '\n';
    rline *L = malloc(cap * sizeof *L);
    if (!L) return NULL;
    for (size_t p = 0; p < len || (p == len && n == 0 && len == 0);) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - text) : len, a = p;
        int col = 0;
        for (; a < e && (text[a] == ' ' || text[a] == '\t' || text[a] == '\f' || text[a] == '\v' ||
                         text[a] == '\r');
             a++)
            col = text[a] == '\t' ? (col / 8 + 1) * 8 : col + 1;
        size_t b = e;
        while (b > a && isspace((unsigned char)text[b - 1])) b--;
        L[n].s = text + a;
        L[n].n = b - a;
        L[n].indent = col;
        n++;
        if (!nl) break;
        p = e + 1;
    }
    *count = n;
    return L;
}

static int rst_start_ok(int prev)
{
    return prev == 0 || is_ws(prev) || (prev && strchr("'\"([{<-/:", prev));
}

static int rst_end_ok(int next)
{
    return next == 0 || is_ws(next) || (next && strchr("'\")]}>-/:.,;!?\\", next));
}

/* `title <target>` -> title (the target when there is no title). */
static void rst_ref_text(const char *c, size_t n, tbuf *out)
{
    if (n && c[n - 1] == '>') {
        for (size_t k = n - 1; k-- > 0;) {
            if (c[k] != '<') continue;
            size_t t = k;
            while (t && is_ws(c[t - 1])) t--;
            if (t) tb_add(out, c, t);
            else tb_add(out, c + k + 1, n - k - 2);
            return;
        }
    }
    tb_add(out, c, n);
}

static void rst_role(const char *name, size_t nlen, const char *c, size_t n, tbuf *out)
{
    size_t b = 0;
    for (size_t k = 0; k < nlen; k++)
        if (name[k] == ':') b = k + 1;
    name += b, nlen -= b;
    if (n && c[n - 1] == '>' && memchr(c, '<', n)) {
        rst_ref_text(c, n, out);
        return;
    }
    if (n && c[0] == '!') c++, n--;
    if (n && c[0] == '~') {
        c++, n--;
        for (size_t k = n; k-- > 0;)
            if (c[k] == '.') {
                c += k + 1, n -= k + 1;
                break;
            }
    }
    if (nlen == 3 && memcmp(name, "pep", 3) == 0) tb_adds(out, "PEP ");
    if (nlen == 3 && memcmp(name, "rfc", 3) == 0) tb_adds(out, "RFC ");
    tb_add(out, c, n);
    if (((nlen == 4 && memcmp(name, "func", 4) == 0) || (nlen == 4 && memcmp(name, "meth", 4) == 0)) &&
        !(n && c[n - 1] == ')'))
        tb_adds(out, "()");
}

/* Inline markup of one paragraph (lines joined by '\n') -> its text. */
static void rst_inline(const char *s, size_t n, tbuf *out)
{
    for (size_t i = 0; i < n;) {
        char c = s[i];
        int prev = i ? (unsigned char)s[i - 1] : 0, next = i + 1 < n ? (unsigned char)s[i + 1] : 0;
        if (c == '\\') { /* escapes; an escaped space is nothing */
            if (next && next != ' ') tb_addc(out, (char)next);
            i += next ? 2 : 1;
            continue;
        }
        if (c == '`' && next == '`' && rst_start_ok(prev)) {
            size_t e = find_str(s, i + 2, n, "``");
            if (e != NONE && e > i + 2) {
                tb_add(out, s + i + 2, e - i - 2);
                i = e + 2;
                continue;
            }
        } else if (c == ':' && rst_start_ok(prev)) { /* :role:`text` */
            size_t k = i + 1;
            while (k < n && (isalnum((unsigned char)s[k]) || strchr("_.+:-", s[k]))) k++;
            if (k + 1 < n && k > i + 2 && s[k] == '`' && s[k - 1] == ':') {
                const char *close = memchr(s + k + 1, '`', n - k - 1);
                if (close) {
                    rst_role(s + i + 1, k - i - 2, s + k + 1, (size_t)(close - s) - k - 1, out);
                    i = (size_t)(close - s) + 1;
                    continue;
                }
            }
        } else if (c == '`' && rst_start_ok(prev)) { /* `text`, `link <url>`_, `ref`__ */
            const char *close = memchr(s + i + 1, '`', n - i - 1);
            if (close && close > s + i + 1) {
                rst_ref_text(s + i + 1, (size_t)(close - s) - i - 1, out);
                i = (size_t)(close - s) + 1;
                while (i < n && s[i] == '_') i++;
                continue;
            }
        } else if (c == '*' && rst_start_ok(prev)) { /* *emphasis*, **strong** */
            int strong = next == '*';
            size_t a = i + (strong ? 2 : 1), e = NONE;
            if (a < n && !is_ws(s[a]) && s[a] != '*') {
                for (size_t k = a + 1; k < n && k < a + 2000; k++) {
                    if (s[k] != '*' || is_ws(s[k - 1])) continue;
                    if (strong) {
                        if (k + 1 < n && s[k + 1] == '*' && rst_end_ok(k + 2 < n ? s[k + 2] : 0)) {
                            e = k;
                            break;
                        }
                    } else if (s[k - 1] != '*' && (k + 1 >= n || s[k + 1] != '*') &&
                               rst_end_ok(k + 1 < n ? s[k + 1] : 0)) {
                        e = k;
                        break;
                    }
                }
            }
            if (e != NONE) { /* nested markup is not rst, but escapes and ``x`` inside are common */
                rst_inline(s + a, e - a, out);
                i = e + (strong ? 2 : 1);
                continue;
            }
        } else if (c == '[') { /* footnote and citation references [1]_ [#]_ [#x]_ [*]_ [CIT]_ */
            size_t k = i + 1;
            while (k < n && k < i + 40 &&
                   (isalnum((unsigned char)s[k]) || strchr("#*_.-", s[k])))
                k++;
            if (k > i + 1 && k + 1 < n && s[k] == ']' && s[k + 1] == '_' &&
                rst_end_ok(k + 2 < n ? s[k + 2] : 0)) {
                tb_trim_spaces(out);
                i = k + 2;
                continue;
            }
        } else if (c == '|' && rst_start_ok(prev) && next && !is_ws(next)) { /* |substitution| */
            size_t k = i + 1;
            while (k < n && k < i + 40 && s[k] != '|' && s[k] != '\n') k++;
            if (k < n && s[k] == '|' && !is_ws(s[k - 1])) {
                size_t after = k + 1;
                while (after < n && s[after] == '_') after++;
                if (rst_end_ok(after < n ? s[after] : 0)) {
                    const char *name = s + i + 1;
                    size_t l = k - i - 1;
                    if (l == 4 && memcmp(name, "copy", 4) == 0) tb_adds(out, "\u00a9");
                    else if (l == 3 && memcmp(name, "reg", 3) == 0) tb_adds(out, "\u00ae");
                    else if ((l == 5 && memcmp(name, "trade", 5) == 0) ||
                             (l == 2 && memcmp(name, "tm", 2) == 0))
                        tb_adds(out, "\u2122");
                    else tb_add(out, name, l);
                    i = after;
                    continue;
                }
            }
        }
        tb_addc(out, c);
        i++;
    }
}

typedef struct {
    tbuf out;       /* the document */
    tbuf para;      /* the paragraph being collected: inline markup may span its lines */
    int par_indent; /* indent of the paragraph's text: a literal block must be deeper */
    int glue;       /* the next line continues a label ("Note:") on the same line */
} rst_state;

static void rst_flush(rst_state *st)
{
    st->glue = 0;
    if (!st->para.len) return;
    rst_inline(st->para.p, st->para.len, &st->out);
    tb_addc(&st->out, '\n');
    tb_clear(&st->para);
}

static void rst_blank(rst_state *st)
{
    rst_flush(st);
    tb_addc(&st->out, '\n');
}

static void rst_para_add(rst_state *st, const char *s, size_t n)
{
    if (!n) return;
    if (st->para.len) tb_addc(&st->para, st->glue ? ' ' : '\n');
    st->glue = 0;
    tb_add(&st->para, s, n);
}

/* Width of a bullet or enumerator ("- ", "12. ", "(a) ", "#. ") starting s, or 0. */
static int rst_bullet(const char *s, size_t n)
{
    if (n >= 2 && strchr("-*+", s[0]) && is_sp(s[1])) return 2;
    size_t k = s[0] == '(' ? 1 : 0, d = k;
    if (d < n && s[d] == '#') d++;
    else if (d < n && isdigit((unsigned char)s[d]))
        while (d < n && d - k < 3 && isdigit((unsigned char)s[d])) d++;
    else if (d < n && isalpha((unsigned char)s[d])) d++;
    if (d == k || d + 1 >= n || !is_sp(s[d + 1])) return 0;
    if (k ? s[d] != ')' : (s[d] != '.' && s[d] != ')')) return 0;
    return (int)d + 2;
}

/* Length of a leading field name ":name:" followed by a blank or the end, or 0. */
static size_t rst_field(const char *s, size_t n)
{
    if (n < 3 || s[0] != ':' || is_ws(s[1]) || s[1] == ':') return 0;
    for (size_t k = 1; k < n; k++) {
        if (s[k] == '`') return 0;
        if (s[k] == ':' && s[k - 1] != '\\' && (k + 1 == n || is_sp(s[k + 1]))) return k + 1;
    }
    return 0;
}

static int rst_all_in(const char *s, size_t n, const char *set)
{
    for (size_t k = 0; k < n; k++)
        if (!strchr(set, s[k])) return 0;
    return 1;
}

/* +----+----+ or +====+ */
static int rst_grid_border(const char *s, size_t n)
{
    return n >= 3 && s[0] == '+' && s[n - 1] == '+' && rst_all_in(s, n, "+-=:");
}

/* ====  =====  (two columns at least; one column looks like a title underline) */
static int rst_simple_border(const char *s, size_t n)
{
    if (n < 3 || s[0] != '=' || !rst_all_in(s, n, "= ")) return 0;
    return memchr(s, ' ', n) != NULL;
}

/* a section title's under/overline or a transition: one punctuation character repeated */
static int rst_adornment(const char *s, size_t n)
{
    if (n < 3 || !ispunct((unsigned char)s[0])) return 0;
    for (size_t k = 1; k < n; k++)
        if (s[k] != s[0]) return 0;
    return 1;
}

enum { RD_DROP, RD_ADMON, RD_TITLED, RD_DESC, RD_BODY, RD_VERSION };

static int rst_name_in(const char *name, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && strncasecmp(*list, name, n) == 0) return 1;
    return 0;
}

/* What to keep of a directive. Unknown ones (code, tables, toctree, images,
 * includes, kernel-doc, index, math ...) are dropped with their content. */
static int rst_directive_kind(const char *name, size_t n)
{
    static const char *const admon[] = {"note", "warning", "tip", "important", "hint",
                                        "caution", "attention", "danger", "error", "seealso",
                                        "impl-detail", "epigraph", "highlights", "pull-quote",
                                        "compound", NULL};
    static const char *const titled[] = {"admonition", "topic", "sidebar", "rubric", "centered",
                                         NULL};
    static const char *const desc[] = {
        "function", "class", "method", "attribute", "data", "exception", "decorator",
        "decoratormethod", "classmethod", "staticmethod", "abstractmethod", "describe", "object",
        "opcode", "cmdoption", "option", "envvar", "coroutinefunction", "coroutinemethod",
        "awaitablefunction", "property", "type", "macro", "member", "var", "struct", "union",
        "enum", "enumerator", "pdbcommand", "2to3fixer", NULL};
    static const char *const body[] = {"only", "container", "glossary", "hlist", NULL};
    static const char *const version[] = {"versionadded", "versionchanged", "deprecated",
                                          "deprecated-removed", NULL};
    size_t b = 0;
    for (size_t k = 0; k < n; k++)
        if (name[k] == ':') b = k + 1; /* domain prefix: c:function, py:method */
    name += b, n -= b;
    if (rst_name_in(name, n, admon)) return RD_ADMON;
    if (rst_name_in(name, n, titled)) return RD_TITLED;
    if (rst_name_in(name, n, desc)) return RD_DESC;
    if (rst_name_in(name, n, body)) return RD_BODY;
    if (rst_name_in(name, n, version)) return RD_VERSION;
    return RD_DROP;
}

static void rst_lines(rst_state *st, const rline *L, size_t n, int base, int depth);

/* Explicit markup starting at line i, its block ending before line j. */
static void rst_explicit(rst_state *st, const rline *L, size_t i, size_t j, int depth)
{
    const char *s = L[i].s + 2;
    size_t n = L[i].n - 2;
    while (n && is_sp(*s)) s++, n--;
    if (!n || s[0] == '[' || s[0] == '_' || s[0] == '|') return; /* comment, footnote, target */
    size_t k = 0;
    for (; k + 1 < n; k++) {
        if (s[k] == ':' && s[k + 1] == ':' && (k + 2 == n || is_sp(s[k + 2]))) break;
        if (!(isalnum((unsigned char)s[k]) || strchr("-_:+.", s[k]))) return; /* a comment */
    }
    if (k == 0 || k + 1 >= n) return; /* a comment */
    int kind = rst_directive_kind(s, k);
    if (kind == RD_DROP || depth >= 16) return;
    const char *arg = s + k + 2;
    size_t alen = n - k - 2;
    while (alen && is_sp(*arg)) arg++, alen--;
    size_t b = i + 1;
    if (kind == RD_TITLED || kind == RD_DESC || kind == RD_BODY) { /* arguments run to a blank line */
        while (b < j && L[b].n && !rst_field(L[b].s, L[b].n)) b++;
    }
    while (b < j && L[b].n && rst_field(L[b].s, L[b].n)) b++; /* options */
    size_t c0 = b; /* content: from the first line after them that is not blank */
    while (c0 < j && !L[c0].n) c0++;
    int has_body = 0, body_indent = 1 << 30;
    for (size_t q = c0; q < j; q++)
        if (L[q].n) {
            has_body = 1;
            if (L[q].indent < body_indent) body_indent = L[q].indent;
        }
    if (kind == RD_ADMON) {
        static const char *const label[][2] = {
            {"note", "Note:"},       {"warning", "Warning:"}, {"tip", "Tip:"},
            {"important", "Important:"}, {"hint", "Hint:"}, {"caution", "Caution:"},
            {"attention", "Attention:"}, {"danger", "Danger:"}, {"error", "Error:"},
            {"seealso", "See also:"}};
        for (size_t q = 0; q < sizeof label / sizeof label[0]; q++)
            if (strlen(label[q][0]) == k && strncasecmp(label[q][0], s, k) == 0)
                rst_para_add(st, label[q][1], strlen(label[q][1]));
        if (st->para.len) st->glue = 1;
        rst_para_add(st, arg, alen);
    } else if (kind == RD_TITLED) {
        rst_para_add(st, arg, alen);
        rst_blank(st);
    } else if (kind == RD_DESC && alen) { /* the signature(s), verbatim: they are code */
        for (size_t q = i; q < b; q++) { /* one per line; a trailing '\' continues it */
            const char *l = q == i ? arg : L[q].s;
            size_t ll = q == i ? alen : L[q].n;
            int cont = ll && l[ll - 1] == '\\';
            tb_add(&st->out, l, ll - (size_t)cont);
            tb_addc(&st->out, cont ? ' ' : '\n');
        }
        tb_addc(&st->out, '\n');
    } else if (kind == RD_VERSION) {
        size_t v = 0;
        while (v < alen && !is_sp(arg[v])) v++;
        const char *rest = arg + v;
        size_t rlen = alen - v;
        while (rlen && is_sp(*rest)) rest++, rlen--;
        char line[160];
        int more = rlen || has_body;
        if (k == 18) { /* deprecated-removed:: 3.4 3.6 : the second version is no text */
            size_t w = 0;
            while (w < rlen && !is_sp(rest[w])) w++;
            more = w < rlen || has_body;
        }
        if (k == 12 && strncasecmp(s, "versionadded", 12) == 0)
            snprintf(line, sizeof line, "New in version %.*s%c", (int)v, arg, more ? ':' : '.');
        else if (k == 14 && strncasecmp(s, "versionchanged", 14) == 0)
            snprintf(line, sizeof line, "Changed in version %.*s%c", (int)v, arg, more ? ':' : '.');
        else if (k == 10)
            snprintf(line, sizeof line, "Deprecated since version %.*s%c", (int)v, arg,
                     more ? ':' : '.');
        else { /* deprecated-removed:: 3.4 3.6 */
            size_t w = 0;
            while (w < rlen && !is_sp(rest[w])) w++;
            snprintf(line, sizeof line,
                     "Deprecated since version %.*s, will be removed in version %.*s%c", (int)v,
                     arg, (int)w, rest, more ? ':' : '.');
            rest += w, rlen -= w;
            while (rlen && is_sp(*rest)) rest++, rlen--;
        }
        rst_para_add(st, line, strlen(line));
        st->glue = 1;
        rst_para_add(st, rest, rlen);
    }
    if (has_body) rst_lines(st, L + c0, j - c0, body_indent, depth + 1);
    rst_blank(st);
}

static void rst_lines(rst_state *st, const rline *L, size_t n, int base, int depth)
{
    size_t i = 0;
    while (i < n) {
        const rline *l = &L[i];
        const char *s = l->s;
        size_t len = l->n;
        int ind = l->indent - base;
        if (!len) {
            rst_blank(st);
            i++;
            continue;
        }
        if (len >= 2 && s[0] == '.' && s[1] == '.' && (len == 2 || is_sp(s[2]))) {
            rst_flush(st);
            size_t j = i + 1;
            if (len == 2 && (j >= n || !L[j].n)) { /* an empty comment ends at once */
                i = j;
                continue;
            }
            while (j < n && (!L[j].n || L[j].indent - base > ind)) j++;
            rst_explicit(st, L, i, j, depth);
            i = j;
            continue;
        }
        if (rst_grid_border(s, len)) {
            rst_flush(st);
            while (i < n && L[i].n) i++;
            continue;
        }
        if (rst_simple_border(s, len)) {
            rst_flush(st);
            size_t j = i + 1;
            while (j < n && !(L[j].n && rst_simple_border(L[j].s, L[j].n) &&
                              (j + 1 == n || !L[j + 1].n)))
                j++;
            i = j < n ? j + 1 : n;
            continue;
        }
        if (rst_adornment(s, len)) { /* the title (if any) is the paragraph so far */
            rst_blank(st);
            i++;
            continue;
        }
        if (!st->para.len && len >= 3 && memcmp(s, ">>>", 3) == 0) { /* doctest block */
            while (i < n && L[i].n) i++;
            continue;
        }
        if (len >= 3 && s[0] == '_' && s[1] == '_' && s[2] == ' ') { /* anonymous target */
            i++;
            continue;
        }
        if (s[0] == '|' && (len == 1 || is_sp(s[1]))) {
            if (len > 1 && s[len - 1] == '|') { /* a stray table row */
                i++;
                continue;
            }
            s += len > 1 ? 2 : 1, len -= len > 1 ? 2 : 1; /* line block */
        }
        if (!st->para.len) st->par_indent = ind + rst_bullet(s, len);
        size_t f = rst_field(s, len);
        if (f) s++, len--; /* ":Author: X" -> "Author: X" */
        int literal = 0;
        if (len >= 2 && s[len - 1] == ':' && s[len - 2] == ':' &&
            (i + 1 == n || !L[i + 1].n || L[i + 1].indent - base > st->par_indent)) {
            literal = 1;
            if (len == 2) len = 0;
            else if (is_sp(s[len - 3])) {
                len -= 2;
                while (len && is_sp(s[len - 1])) len--;
            } else
                len--;
        }
        rst_para_add(st, s, len);
        i++;
        if (literal) {
            rst_flush(st);
            size_t j = i;
            while (j < n && !L[j].n) j++;
            if (j < n && L[j].indent - base > st->par_indent) {
                while (j < n && (!L[j].n || L[j].indent - base > st->par_indent)) j++;
                i = j;
                rst_blank(st);
            }
        }
    }
    rst_flush(st);
}

dlm_status dlm_extract_rst(const char *text, size_t len, const char *source, const char *key,
                           dlm_doc_sink sink, void *ctx)
{
    DLM_CHECK(text && source && key && sink, DLM_ERR_ARG,
              "dlm_extract_rst needs text, source, key and sink");
    dlm_status st = DLM_OK;
    emitter e = {0};
    rst_state rs = {0};
    size_t n = 0;
    rline *L = split_rlines(text, len, &n);
    CHECK_GOTO(st, L, DLM_ERR_NOMEM, done, "out of memory splitting %s into lines", key);
    rst_lines(&rs, L, n, 0, 0);
    CHECK_GOTO(st, !rs.out.failed && !rs.para.failed, DLM_ERR_NOMEM, done,
               "out of memory stripping %s", key);
    DLM_CALL_GOTO(st, emit(&e, sink, ctx, source, key, tb_str(&rs.out), rs.out.len), done);
done:
    free(L);
    tb_free(&rs.out);
    tb_free(&rs.para);
    emitter_free(&e);
    return st;
}

/* ------------------------------------------------------------------------ */
/* POD                                                                      */

static const struct {
    const char *name;
    uint32_t cp;
} pod_entities[] = {
    {"lt", '<'},        {"gt", '>'},        {"verbar", '|'},    {"sol", '/'},
    {"quot", '"'},      {"amp", '&'},       {"apos", '\''},     {"nbsp", ' '},
    {"shy", 0},         {"copy", 0xA9},     {"reg", 0xAE},      {"trade", 0x2122},
    {"eacute", 0xE9},   {"egrave", 0xE8},   {"ecirc", 0xEA},    {"euml", 0xEB},
    {"aacute", 0xE1},   {"agrave", 0xE0},   {"acirc", 0xE2},    {"auml", 0xE4},
    {"atilde", 0xE3},   {"aring", 0xE5},    {"aelig", 0xE6},    {"ccedil", 0xE7},
    {"iacute", 0xED},   {"igrave", 0xEC},   {"icirc", 0xEE},    {"iuml", 0xEF},
    {"ntilde", 0xF1},   {"oacute", 0xF3},   {"ograve", 0xF2},   {"ocirc", 0xF4},
    {"ouml", 0xF6},     {"otilde", 0xF5},   {"oslash", 0xF8},   {"uacute", 0xFA},
    {"ugrave", 0xF9},   {"ucirc", 0xFB},    {"uuml", 0xFC},     {"yacute", 0xFD},
    {"yuml", 0xFF},     {"szlig", 0xDF},    {"eth", 0xF0},      {"thorn", 0xFE},
    {"Auml", 0xC4},     {"Ouml", 0xD6},     {"Uuml", 0xDC},     {"Eacute", 0xC9},
    {"Aring", 0xC5},    {"Oslash", 0xD8},   {"AElig", 0xC6},    {"Ccedil", 0xC7},
    {"laquo", 0xAB},    {"raquo", 0xBB},    {"mdash", 0x2014},  {"ndash", 0x2013},
    {"hellip", 0x2026}, {"middot", 0xB7},   {"times", 0xD7},    {"divide", 0xF7},
    {"deg", 0xB0},      {"micro", 0xB5},    {"pound", 0xA3},    {"euro", 0x20AC},
    {"yen", 0xA5},      {"sect", 0xA7},     {"para", 0xB6},     {"plusmn", 0xB1},
    {"iexcl", 0xA1},    {"iquest", 0xBF},   {"ldquo", 0x201C},  {"rdquo", 0x201D},
    {"lsquo", 0x2018},  {"rsquo", 0x2019},  {"bull", 0x2022},   {"frac12", 0xBD},
    {"frac14", 0xBC},   {"frac34", 0xBE},   {"sup2", 0xB2},     {"sup3", 0xB3},
};

/* E<...>: a name or a decimal, 0x-hex or 0-octal number; unknown ones vanish. */
static void pod_entity(const char *s, size_t n, tbuf *out)
{
    while (n && is_ws(*s)) s++, n--;
    while (n && is_ws(s[n - 1])) n--;
    if (!n || n > 16) return;
    char t[17];
    memcpy(t, s, n);
    t[n] = '\0';
    if (isdigit((unsigned char)t[0])) {
        char *end;
        unsigned long v = strtoul(t, &end, 0); /* base 0: 0x hex, 0 octal, else decimal */
        if (*end == '\0' && v > 0 && v <= 0x10FFFF && !(v >= 0xD800 && v <= 0xDFFF))
            tb_utf8(out, (uint32_t)v);
        return;
    }
    for (size_t i = 0; i < sizeof pod_entities / sizeof pod_entities[0]; i++)
        if (strcmp(pod_entities[i].name, t) == 0) {
            if (pod_entities[i].cp) tb_utf8(out, pod_entities[i].cp);
            return;
        }
}

/* L<...> rendered: "text|target" -> text, "name/sec" -> "sec" in name, else as is. */
static void pod_link(const tbuf *in, size_t bar, tbuf *out)
{
    const char *t = tb_str(in);
    size_t n = in->len;
    if (bar != NONE) {
        tb_add(out, t, bar);
        return;
    }
    const char *slash = memchr(t, '/', n);
    if (strstr(t, "://") || !slash) {
        tb_add(out, t, n);
        return;
    }
    size_t nl = (size_t)(slash - t), sl = n - nl - 1;
    const char *sec = slash + 1;
    if (sl >= 2 && sec[0] == '"' && sec[sl - 1] == '"') sec++, sl -= 2;
    tb_addc(out, '"');
    tb_add(out, sec, sl);
    tb_addc(out, '"');
    if (nl) {
        tb_adds(out, " in ");
        tb_add(out, t, nl);
    }
}

static void pod_codes(const char *s, size_t *pos, size_t end, int close, tbuf *out, size_t *bar,
                      int depth);

/* A formatting code whose letter is at s[*pos - 1] and first '<' at s[*pos]. */
static void pod_code(char code, const char *s, size_t *pos, size_t end, tbuf *out, int depth)
{
    size_t i = *pos;
    int nb = 0;
    while (i < end && s[i] == '<') nb++, i++;
    if (nb >= 2) {
        if (i < end && is_ws(s[i])) {
            while (i < end && is_ws(s[i])) i++;
        } else { /* "C<<x" is C< followed by "<x" */
            nb = 1;
            i = *pos + 1;
        }
    }
    tbuf inner = {0};
    size_t bar = NONE;
    pod_codes(s, &i, end, nb, &inner, &bar, depth + 1);
    *pos = i;
    if (inner.failed) out->failed = 1;
    switch (code) {
    case 'X': /* index entry */
    case 'Z': /* null */
        break;
    case 'E': pod_entity(tb_str(&inner), inner.len, out); break;
    case 'L': pod_link(&inner, bar, out); break;
    default: tb_add(out, tb_str(&inner), inner.len); /* B I C F S and unknown letters */
    }
    tb_free(&inner);
}

/* Renders s[*pos, end) into out until the end of the code being read: close
 * is 0 at the top level, else its number of angle brackets. bar gets the
 * offset in out of the first '|' at this level (for L<text|target>). */
static void pod_codes(const char *s, size_t *pos, size_t end, int close, tbuf *out, size_t *bar,
                      int depth)
{
    size_t i = *pos;
    while (i < end) {
        char c = s[i];
        if (close == 1 && c == '>') {
            *pos = i + 1;
            return;
        }
        if (close >= 2 && is_ws(c)) {
            size_t k = i;
            int m = 0;
            while (k < end && is_ws(s[k])) k++;
            while (k + (size_t)m < end && s[k + m] == '>' && m < close) m++;
            if (m == close) {
                *pos = k + (size_t)m;
                return;
            }
        }
        if (c >= 'A' && c <= 'Z' && i + 1 < end && s[i + 1] == '<' && depth < 32) {
            size_t p = i + 1;
            pod_code(c, s, &p, end, out, depth);
            i = p;
            continue;
        }
        if (c == '|' && bar && *bar == NONE) *bar = out->len;
        tb_addc(out, c);
        i++;
    }
    *pos = end;
}

static void pod_render(const char *s, size_t n, int flatten, tbuf *out)
{
    size_t pos = 0, start = out->len;
    pod_codes(s, &pos, n, 0, out, NULL, 0);
    if (flatten)
        for (size_t k = start; k < out->len; k++)
            if (out->p[k] == '\n') out->p[k] = ' ';
}

static int pod_blank_line(const char *s, size_t a, size_t e)
{
    for (size_t k = a; k < e; k++)
        if (!is_ws(s[k])) return 0;
    return 1;
}

dlm_status dlm_extract_pod(const char *text, size_t len, const char *source, const char *key,
                           dlm_doc_sink sink, void *ctx)
{
    DLM_CHECK(text && source && key && sink, DLM_ERR_ARG,
              "dlm_extract_pod needs text, source, key and sink");
    dlm_status st = DLM_OK;
    emitter e = {0};
    tbuf out = {0};
    int in_pod = 0, in_begin = 0;
    char begin_name[64] = "";
    const char *prefix = NULL;
    char numbered[24];
    for (size_t p = 0; p < len;) {
        size_t a = p, b;
        for (;;) { /* skip blank lines */
            const char *nl = memchr(text + a, '\n', len - a);
            size_t le = nl ? (size_t)(nl - text) : len;
            if (!pod_blank_line(text, a, le)) break;
            a = nl ? le + 1 : len;
            if (a >= len) break;
        }
        if (a >= len) break;
        for (b = a;;) { /* the paragraph runs to the next blank line */
            const char *nl = memchr(text + b, '\n', len - b);
            size_t le = nl ? (size_t)(nl - text) : len;
            if (pod_blank_line(text, b, le)) break;
            b = nl ? le + 1 : len;
            if (b >= len) break;
        }
        p = b;
        size_t pe = b;
        while (pe > a && is_ws(text[pe - 1])) pe--;
        const char *s = text + a;
        size_t n = pe - a;
        if (n >= 2 && s[0] == '=' && isalpha((unsigned char)s[1])) {
            size_t k = 1;
            while (k < n && isalnum((unsigned char)s[k])) k++;
            const char *cmd = s + 1, *arg = s + k;
            size_t clen = k - 1, alen = n - k;
            while (alen && is_ws(*arg)) arg++, alen--;
            if (clen == 3 && memcmp(cmd, "cut", 3) == 0) {
                in_pod = 0;
                continue;
            }
            in_pod = 1;
            size_t w = 0;
            while (w < alen && !is_ws(arg[w])) w++;
            if (in_begin) {
                if (clen == 3 && memcmp(cmd, "end", 3) == 0 && w == strlen(begin_name) &&
                    memcmp(arg, begin_name, w) == 0)
                    in_begin = 0;
                continue;
            }
            if (clen == 5 && memcmp(cmd, "begin", 5) == 0) {
                in_begin = 1;
                snprintf(begin_name, sizeof begin_name, "%.*s", (int)w, arg);
            } else if (clen == 5 && memcmp(cmd, "head", 4) == 0 && cmd[4] >= '1' && cmd[4] <= '6') {
                pod_render(arg, alen, 1, &out);
                tb_adds(&out, "\n\n");
            } else if (clen == 4 && memcmp(cmd, "item", 4) == 0) {
                size_t d = 0;
                while (d < alen && isdigit((unsigned char)arg[d])) d++;
                if (alen == 0 || (alen == 1 && arg[0] == '*')) {
                    prefix = "- ";
                } else if (alen >= 2 && arg[0] == '*' && is_ws(arg[1])) {
                    tb_adds(&out, "- ");
                    pod_render(arg + 2, alen - 2, 1, &out);
                    tb_adds(&out, "\n\n");
                } else if (d && d < 10 && (d == alen || (d + 1 == alen && strchr(".)", arg[d])))) {
                    snprintf(numbered, sizeof numbered, "%.*s. ", (int)d, arg);
                    prefix = numbered;
                } else {
                    pod_render(arg, alen, 1, &out);
                    tb_adds(&out, "\n\n");
                }
            }
            /* =over =back =for =encoding =pod =end and unknown commands: nothing */
            continue;
        }
        if (!in_pod || in_begin || is_sp(s[0])) continue; /* outside POD, =begin block, verbatim */
        if (prefix) tb_adds(&out, prefix);
        prefix = NULL;
        pod_render(s, n, 0, &out);
        tb_adds(&out, "\n\n");
    }
    CHECK_GOTO(st, !out.failed, DLM_ERR_NOMEM, done, "out of memory stripping %s", key);
    DLM_CALL_GOTO(st, emit(&e, sink, ctx, source, key, tb_str(&out), out.len), done);
done:
    tb_free(&out);
    emitter_free(&e);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Processes, files and directories                                         */

typedef struct {
    int started; /* 0: the program could not be started (err_no says why) */
    int err_no;
    int status; /* exit status, or 128 + signal */
} run_result;

/* Runs argv[0] (found on PATH) with stdin from /dev/null, collecting stdout
 * into out and stderr into err (they may be the same buffer). posix_spawn,
 * not fork: the caller may be a large MPI process. */
static dlm_status run_capture(const char *const *argv, tbuf *out, tbuf *err, run_result *res)
{
    int po[2], pe[2];
    memset(res, 0, sizeof *res);
    DLM_CHECK(pipe(po) == 0, DLM_ERR_IO, "cannot create a pipe to run %s: %s", argv[0],
              strerror(errno));
    if (pipe(pe) != 0) {
        int saved = errno;
        close(po[0]);
        close(po[1]);
        DLM_CHECK(0, DLM_ERR_IO, "cannot create a pipe to run %s: %s", argv[0], strerror(saved));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addclose(&fa, po[0]);
    posix_spawn_file_actions_addclose(&fa, po[1]);
    posix_spawn_file_actions_addclose(&fa, pe[0]);
    posix_spawn_file_actions_addclose(&fa, pe[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    if (rc != 0) {
        close(po[0]);
        close(pe[0]);
        res->err_no = rc;
        return DLM_OK;
    }
    res->started = 1;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    char chunk[1 << 14];
    while (open_fds) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int k = 0; k < 2; k++) {
            if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(fds[k].fd, chunk, sizeof chunk);
            if (r > 0) {
                tb_add(k ? err : out, chunk, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(fds[k].fd);
                fds[k].fd = -1;
                open_fds--;
            }
        }
    }
    for (int k = 0; k < 2; k++)
        if (fds[k].fd >= 0) close(fds[k].fd);
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
    }
    res->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + (WIFSIGNALED(wst) ? WTERMSIG(wst) : 0);
    DLM_CHECK(!out->failed && !err->failed, DLM_ERR_NOMEM, "out of memory reading the output of %s",
              argv[0]);
    return DLM_OK;
}

/* The last few hundred bytes of a command's output, on one line, for messages. */
static const char *output_tail(const tbuf *b, char *dst, size_t cap)
{
    size_t n = b->len, from = n > cap - 1 ? n - (cap - 1) : 0, k = 0;
    for (size_t i = from; i < n && k + 1 < cap; i++) dst[k++] = b->p[i] == '\n' ? ' ' : b->p[i];
    while (k && dst[k - 1] == ' ') k--;
    dst[k] = '\0';
    return dst;
}

/* A whole file, through `gzip -dc` when it ends in .gz or .dz (dictzip is gzip). */
static dlm_status read_text(const char *path, tbuf *out)
{
    if (!has_suffix(path, ".gz") && !has_suffix(path, ".dz")) {
        char *data;
        size_t len;
        DLM_CALL(dlm_read_file(path, &data, &len));
        tb_take(out, data, len);
        return DLM_OK;
    }
    tb_clear(out);
    tbuf err = {0};
    run_result rr;
    const char *argv[] = {"gzip", "-dc", "--", path, NULL};
    dlm_status st = run_capture(argv, out, &err, &rr);
    char tail[300];
    output_tail(&err, tail, sizeof tail);
    tb_free(&err);
    DLM_CALL(st);
    DLM_CHECK(rr.started, DLM_ERR_IO, "cannot run gzip to read %s: %s (install the Debian package 'gzip')",
              path, strerror(rr.err_no));
    DLM_CHECK(rr.status == 0, DLM_ERR_IO,
              "`gzip -dc %s` failed with status %d: %s; the file may be damaged: delete the "
              "package's folder in the cache and fetch again",
              path, rr.status, tail);
    return DLM_OK;
}

/* Decides whether to enter a directory / take a file; rel is relative to the walk's root. */
typedef int (*walk_filter)(const char *rel, const char *name, int is_dir);

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files under root/rel (symbolic links are not followed), depth
 * first with each directory's names sorted bytewise, appended to list as
 * NUL-terminated relative paths. */
static dlm_status walk_sorted(const char *root, const char *rel, walk_filter keep, tbuf *list,
                              size_t *count)
{
    dlm_status st = DLM_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    DLM_CHECK(d, DLM_ERR_IO, "cannot list %s: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            CHECK_GOTO(st, nn, DLM_ERR_NOMEM, done, "out of memory listing %s", path);
            names = nn;
        }
        names[n] = malloc(strlen(de->d_name) + 1);
        CHECK_GOTO(st, names[n], DLM_ERR_NOMEM, done, "out of memory listing %s", path);
        strcpy(names[n++], de->d_name);
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char sub[4096], full[4096];
        int l1 = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        int l2 = snprintf(full, sizeof full, "%s/%s", path, names[i]);
        CHECK_GOTO(st, l1 < (int)sizeof sub && l2 < (int)sizeof full, DLM_ERR_ARG, done,
                   "path too long under %s: %s", path, names[i]);
        struct stat sb;
        CHECK_GOTO(st, lstat(full, &sb) == 0, DLM_ERR_IO, done, "cannot stat %s: %s", full,
                   strerror(errno));
        if (S_ISDIR(sb.st_mode)) {
            if (keep(sub, names[i], 1))
                DLM_CALL_GOTO(st, walk_sorted(root, sub, keep, list, count), done);
        } else if (S_ISREG(sb.st_mode) && keep(sub, names[i], 0)) {
            tb_add(list, sub, strlen(sub) + 1);
            (*count)++;
        }
    }
    CHECK_GOTO(st, !list->failed, DLM_ERR_NOMEM, done, "out of memory listing %s", path);
done:
    closedir(d);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Sources                                                                  */

enum { SRC_DICT, SRC_FORTUNES, SRC_LINUX_DOC, SRC_PYTHON_DOC, SRC_PERL_DOC };

static const struct {
    const char *name, *package, *licence;
    int kind;
    const char *dict; /* dictd database name for SRC_DICT */
} default_sources[] = {
    {"gcide", "dict-gcide", "GPL-2+", SRC_DICT, "gcide"},
    {"fortunes", "fortunes", "BSD-3-Clause", SRC_FORTUNES, NULL},
    {"jargon", "dict-jargon", "public-domain", SRC_DICT, "jargon"},
    {"devil", "dict-devil", "public-domain", SRC_DICT, "devil"},
    {"linux-doc", "linux-doc-6.1", "GPL-2", SRC_LINUX_DOC, NULL},
    {"python-doc", "python3.11-doc", "PSF-2.0", SRC_PYTHON_DOC, NULL},
    {"perl-doc", "perl-doc", "GPL-1+ or Artistic", SRC_PERL_DOC, NULL},
};
#define N_DEFAULT_SOURCES ((int)(sizeof default_sources / sizeof default_sources[0]))

void dlm_corpus_default_sources(dlm_corpus_source *out, int *n_out)
{
    for (int i = 0; i < N_DEFAULT_SOURCES; i++) {
        memset(&out[i], 0, sizeof out[i]);
        snprintf(out[i].name, sizeof out[i].name, "%s", default_sources[i].name);
        snprintf(out[i].package, sizeof out[i].package, "%s", default_sources[i].package);
        snprintf(out[i].licence, sizeof out[i].licence, "%s", default_sources[i].licence);
    }
    *n_out = N_DEFAULT_SOURCES;
}

static int source_index(const char *name)
{
    for (int i = 0; i < N_DEFAULT_SOURCES; i++)
        if (strcmp(default_sources[i].name, name) == 0) return i;
    return -1;
}

#define MARKER ".dlm-unpacked"

/* cache_dir/<package>_<version>, ':' written as "%3a" like apt's .deb names. */
static dlm_status unpack_dir(const char *cache_dir, const char *package, const char *version,
                             char *out, size_t cap)
{
    size_t k = (size_t)snprintf(out, cap, "%s/%s_", cache_dir, package);
    for (const char *v = version; *v && k + 4 < cap; v++) {
        if (*v == ':') {
            memcpy(out + k, "%3a", 3);
            k += 3;
        } else {
            out[k++] = *v;
        }
    }
    DLM_CHECK(k + 4 < cap, DLM_ERR_ARG, "cache path too long for %s %s", package, version);
    out[k] = '\0';
    return DLM_OK;
}

static int package_name_ok(const char *p)
{
    if (!isalnum((unsigned char)p[0])) return 0;
    for (; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || strchr(".+-", *p)))
            return 0;
    return 1;
}

/* The newest finished unpack of package in the cache (for when apt cannot
 * answer); version[0] stays '\0' when there is none. */
static void find_unpacked(const char *cache_dir, const char *package, char *version, size_t cap)
{
    version[0] = '\0';
    DIR *d = opendir(cache_dir);
    if (!d) return;
    size_t pl = strlen(package);
    time_t newest = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, package, pl) != 0 || de->d_name[pl] != '_') continue;
        char marker[4096];
        struct stat sb;
        snprintf(marker, sizeof marker, "%s/%s/" MARKER, cache_dir, de->d_name);
        if (stat(marker, &sb) != 0 || (version[0] && sb.st_mtime < newest)) continue;
        FILE *f = fopen(marker, "r");
        if (!f) continue;
        char v[128] = "";
        if (fgets(v, sizeof v, f)) {
            v[strcspn(v, "\r\n")] = '\0';
            if (v[0] && strlen(v) < cap) {
                strcpy(version, v);
                newest = sb.st_mtime;
            }
        }
        fclose(f);
    }
    closedir(d);
}

/* `apt-get ARGS` run inside folder dir (apt-get download writes to the current folder). */
static dlm_status run_in(const char *dir, const char *const *args, tbuf *out, run_result *rr)
{
    const char *argv[DLM_CORPUS_MAX_SOURCES + 10] = {
        "sh", "-c", "cd -- \"$1\" && shift && exec \"$@\"", "sh", dir};
    int k = 5;
    for (; *args && k < DLM_CORPUS_MAX_SOURCES + 9; args++) argv[k++] = *args;
    argv[k] = NULL;
    DLM_CALL(run_capture(argv, out, out, rr));
    return DLM_OK;
}

/* From `apt-get download --print-uris` output ("'URL' FILE SIZE HASH" lines),
 * the .deb file of package and its size; filename[0] stays '\0' if absent. */
static void parse_uris(const char *text, const char *package, char *filename, size_t cap,
                       unsigned long long *size)
{
    size_t pl = strlen(package);
    char f[512];
    unsigned long long sz;
    filename[0] = '\0';
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *q = *l == '\'' ? strchr(l + 1, '\'') : NULL;
        if (!q || sscanf(q + 1, " %511s %llu", f, &sz) != 2) continue;
        if (strncmp(f, package, pl) == 0 && f[pl] == '_' && strlen(f) < cap) {
            strcpy(filename, f);
            *size = sz;
            return;
        }
    }
}

/* One package: filename and size come from a batched --print-uris, or are
 * empty and asked for here (which also gives the precise error). */
static dlm_status fetch_one(const char *cache_dir, const char *debs, dlm_corpus_source *src,
                            const char *known_file, unsigned long long known_size)
{
    double t0 = dlm_now();
    dlm_status st = DLM_OK;
    tbuf out = {0};
    run_result rr;
    char tail[400], deb[4700], dir[4096], marker[4200], filename[512];
    unsigned long long size = known_size;
    const char *pkg = src->package; /* checked by dlm_corpus_fetch: no option, no shell character */
    snprintf(filename, sizeof filename, "%s", known_file);

    /* Which .deb apt would fetch (run outside debs/: apt prints nothing for a file already there). */
    if (!filename[0]) {
        const char *uris[] = {"apt-get", "download", "--print-uris", pkg, NULL};
        DLM_CALL_GOTO(st, run_in(cache_dir, uris, &out, &rr), done);
        parse_uris(tb_str(&out), pkg, filename, sizeof filename, &size);
    }
    if (!filename[0]) {
        output_tail(&out, tail, sizeof tail);
        char v[64];
        find_unpacked(cache_dir, pkg, v, sizeof v);
        if (v[0]) {
            DLM_WARN("corpus: apt cannot tell which %s to fetch (`apt-get download --print-uris %s` "
                     "exited %d: %s); using the unpacked %s %s already in %s",
                     pkg, pkg, rr.status, tail, pkg, v, cache_dir);
            snprintf(src->version, sizeof src->version, "%s", v);
            goto done;
        }
        CHECK_GOTO(st, rr.status != 127 && rr.started, DLM_ERR_IO, done,
                   "source %s: apt-get is not available (%s) and %s holds no unpacked %s; the "
                   "corpus is built from Debian packages: run on a Debian system with apt",
                   src->name, tail, cache_dir, pkg);
        CHECK_GOTO(st, rr.status == 0, DLM_ERR_IO, done,
                   "source %s: `apt-get download --print-uris %s` failed with status %d: %s; run "
                   "`apt-get update` (as root) so apt knows the package, and check its name",
                   src->name, pkg, rr.status, tail);
        CHECK_GOTO(st, 0, DLM_ERR_IO, done,
                   "source %s: `apt-get download --print-uris %s` named no .deb to download "
                   "(output: %s)",
                   src->name, pkg, tail);
    }
    CHECK_GOTO(st, !strchr(filename, '/'), DLM_ERR_FORMAT, done,
               "apt-get named the .deb of %s '%s', which is not a file name", pkg, filename);
    snprintf(deb, sizeof deb, "%s/%s", debs, filename);

    /* Download unless a .deb of the right size is there. */
    struct stat sb;
    int downloaded = 0;
    if (!(stat(deb, &sb) == 0 && (unsigned long long)sb.st_size == size)) {
        unlink(deb);
        tb_clear(&out);
        const char *dl[] = {"apt-get", "download", pkg, NULL};
        DLM_CALL_GOTO(st, run_in(debs, dl, &out, &rr), done);
        output_tail(&out, tail, sizeof tail);
        CHECK_GOTO(st, rr.status == 0, DLM_ERR_IO, done,
                   "source %s: `apt-get download %s` in %s failed with status %d: %s; check the "
                   "network and run `apt-get update` (as root)",
                   src->name, pkg, debs, rr.status, tail);
        CHECK_GOTO(st, stat(deb, &sb) == 0 && (unsigned long long)sb.st_size == size, DLM_ERR_IO,
                   done, "source %s: `apt-get download %s` succeeded but %s is missing or not %llu "
                   "bytes long",
                   src->name, pkg, deb, size);
        downloaded = 1;
    }

    /* The exact version, from the .deb itself. */
    tb_clear(&out);
    tbuf err = {0};
    const char *fv[] = {"dpkg-deb", "-f", deb, "Version", NULL};
    st = run_capture(fv, &out, &err, &rr);
    output_tail(&err, tail, sizeof tail);
    tb_free(&err);
    if (st != DLM_OK) goto done;
    CHECK_GOTO(st, rr.started, DLM_ERR_IO, done,
               "cannot run dpkg-deb to read %s: %s (it comes with dpkg on every Debian system)", deb,
               strerror(rr.err_no));
    CHECK_GOTO(st, rr.status == 0, DLM_ERR_FORMAT, done,
               "`dpkg-deb -f %s Version` failed with status %d: %s; delete the file and fetch again",
               deb, rr.status, tail);
    char version[64];
    size_t vl = strcspn(tb_str(&out), "\r\n");
    CHECK_GOTO(st, vl > 0 && vl < sizeof version && !memchr(out.p, '/', vl), DLM_ERR_FORMAT, done,
               "%s has no usable Version field ('%.*s')", deb, (int)(vl < 60 ? vl : 60), tb_str(&out));
    memcpy(version, out.p, vl);
    version[vl] = '\0';

    /* Unpack unless a finished unpack is there; a half-done one is redone. */
    DLM_CALL_GOTO(st, unpack_dir(cache_dir, pkg, version, dir, sizeof dir), done);
    snprintf(marker, sizeof marker, "%s/" MARKER, dir);
    int unpacked = 0;
    if (stat(marker, &sb) != 0) {
        if (stat(dir, &sb) == 0) {
            const char *rm[] = {"rm", "-rf", "--", dir, NULL};
            tb_clear(&out);
            DLM_CALL_GOTO(st, run_capture(rm, &out, &out, &rr), done);
            CHECK_GOTO(st, rr.started && rr.status == 0, DLM_ERR_IO, done,
                       "cannot remove the unfinished unpack %s (status %d): %s", dir, rr.status,
                       output_tail(&out, tail, sizeof tail));
        }
        DLM_CALL_GOTO(st, dlm_mkdir_p(dir), done);
        const char *x[] = {"dpkg-deb", "-x", deb, dir, NULL};
        tb_clear(&out);
        DLM_CALL_GOTO(st, run_capture(x, &out, &out, &rr), done);
        CHECK_GOTO(st, rr.started && rr.status == 0, DLM_ERR_IO, done,
                   "`dpkg-deb -x %s %s` failed with status %d: %s; check the free space in %s, "
                   "delete the .deb and fetch again",
                   deb, dir, rr.status, output_tail(&out, tail, sizeof tail), cache_dir);
        FILE *f = fopen(marker, "w");
        CHECK_GOTO(st, f, DLM_ERR_IO, done, "cannot write %s: %s", marker, strerror(errno));
        int bad = fprintf(f, "%s\n", version) < 0;
        bad |= fclose(f) != 0;
        CHECK_GOTO(st, !bad, DLM_ERR_IO, done, "cannot write %s", marker);
        unpacked = 1;
    }
    snprintf(src->version, sizeof src->version, "%s", version);
    char how[64];
    if (downloaded) snprintf(how, sizeof how, "downloaded %.1f MB, ", (double)size / 1e6);
    else how[0] = '\0';
    DLM_INFO("corpus: %-15s %-22s %s%s %s (%.1f s)", pkg, version, how,
             unpacked ? "unpacked into" : "cached in", dir, dlm_now() - t0);
done:
    tb_free(&out);
    return st;
}

dlm_status dlm_corpus_fetch(const char *cache_dir, dlm_corpus_source *sources, int n)
{
    DLM_CHECK(cache_dir && *cache_dir && sources && n >= 0 && n <= DLM_CORPUS_MAX_SOURCES,
              DLM_ERR_ARG, "dlm_corpus_fetch needs a cache folder and 0..%d sources",
              DLM_CORPUS_MAX_SOURCES);
    char debs[4096];
    DLM_CHECK(strlen(cache_dir) + 6 < sizeof debs, DLM_ERR_ARG, "cache path too long: %s", cache_dir);
    snprintf(debs, sizeof debs, "%s/debs", cache_dir);
    DLM_CALL(dlm_mkdir_p(debs));
    for (int i = 0; i < n; i++)
        DLM_CHECK(package_name_ok(sources[i].package), DLM_ERR_ARG,
                  "source %s: '%s' is not a Debian package name", sources[i].name,
                  sources[i].package);
    /* One apt-get for all packages: each run spends ~2 s loading apt's caches.
     * If it fails (apt missing, a package unknown), each package asks again
     * on its own, which says which one is the problem. */
    const char *argv[DLM_CORPUS_MAX_SOURCES + 4] = {"apt-get", "download", "--print-uris"};
    for (int i = 0; i < n; i++) argv[3 + i] = sources[i].package;
    argv[3 + n] = NULL;
    tbuf out = {0};
    run_result rr;
    dlm_status st = run_in(cache_dir, argv, &out, &rr);
    int batch_ok = st == DLM_OK && rr.started && rr.status == 0;
    for (int i = 0; i < n && st == DLM_OK; i++) {
        char file[512] = "";
        unsigned long long size = 0;
        if (batch_ok) parse_uris(tb_str(&out), sources[i].package, file, sizeof file, &size);
        st = fetch_one(cache_dir, debs, &sources[i], file, size);
    }
    tb_free(&out);
    DLM_CALL(st);
    return DLM_OK;
}

/* ---- extraction ---- */

typedef struct {
    dlm_doc_sink sink;
    void *ctx;
    dlm_corpus_source *src;
} counting;

static dlm_status counting_sink(void *c, const char *source, const char *key, const char *text,
                                size_t len)
{
    counting *k = c;
    DLM_CALL(k->sink(k->ctx, source, key, text, len));
    k->src->documents++;
    k->src->bytes += (int64_t)len;
    return DLM_OK;
}

static int keep_fortune(const char *rel, const char *name, int is_dir)
{
    (void)rel;
    if (is_dir) return 0; /* off/ (offensive fortunes) lives in another package anyway */
    /* .dat are strfile indexes, .u8 links; ascii-art holds pictures, not prose */
    return !has_suffix(name, ".dat") && !has_suffix(name, ".u8") && strcmp(name, "ascii-art") != 0;
}

static int keep_linux(const char *rel, const char *name, int is_dir)
{
    if (is_dir)
        return strcmp(rel, "translations") != 0 && strcmp(rel, "devicetree") != 0 &&
               strcmp(rel, "ABI") != 0;
    return has_suffix(name, ".rst") || has_suffix(name, ".rst.gz");
}

static int keep_python(const char *rel, const char *name, int is_dir)
{
    (void)rel;
    return is_dir || has_suffix(name, ".rst.txt") || has_suffix(name, ".rst.txt.gz");
}

static int keep_pod(const char *rel, const char *name, int is_dir)
{
    (void)rel;
    if (is_dir) return 1;
    /* perltoc is a generated table of contents of the other files */
    return (has_suffix(name, ".pod") || has_suffix(name, ".pod.gz")) && strcmp(name, "perltoc.pod") != 0;
}

/* The uncompressed size a gzip file records in its last 4 bytes (ISIZE,
 * exact below 4 GiB for a single-member file), or NONE. */
static size_t gzip_isize(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NONE;
    unsigned char b[4];
    size_t r = 0;
    if (fseek(f, -4, SEEK_END) == 0) r = fread(b, 1, 4, f);
    fclose(f);
    if (r != 4) return NONE;
    return (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
}

/* Decompresses paths[0..n) with one gzip process (one process per file costs
 * ~5 ms, more than the stripping) and splits the output by the files' ISIZE
 * fields. *split_ok is 0 when they do not add up (multi-member files): then
 * the caller reads those files one by one. */
static dlm_status gunzip_batch(const char *const *paths, size_t n, tbuf *out, size_t *lens,
                               int *split_ok)
{
    *split_ok = 0;
    tb_clear(out);
    const char **argv = malloc((n + 4) * sizeof *argv);
    DLM_CHECK(argv, DLM_ERR_NOMEM, "out of memory starting gzip on %zu files", n);
    argv[0] = "gzip", argv[1] = "-dc", argv[2] = "--";
    for (size_t i = 0; i < n; i++) argv[3 + i] = paths[i];
    argv[3 + n] = NULL;
    tbuf err = {0};
    run_result rr;
    dlm_status st = run_capture(argv, out, &err, &rr);
    char tail[300];
    output_tail(&err, tail, sizeof tail);
    tb_free(&err);
    free(argv);
    DLM_CALL(st);
    DLM_CHECK(rr.started, DLM_ERR_IO, "cannot run gzip to read %s: %s (install the Debian package 'gzip')",
              paths[0], strerror(rr.err_no));
    DLM_CHECK(rr.status == 0, DLM_ERR_IO,
              "`gzip -dc` on %zu files from %s failed with status %d: %s; a file may be damaged: "
              "delete the package's folder in the cache and fetch again",
              n, paths[0], rr.status, tail);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        lens[i] = gzip_isize(paths[i]);
        if (lens[i] == NONE) return DLM_OK;
        total += lens[i];
    }
    *split_ok = total == out->len;
    return DLM_OK;
}

/* Every file of one tree through one extractor, keys relative to the package root without ".gz". */
static dlm_status extract_tree(const char *pkg_dir, const char *root_rel, walk_filter keep,
                               int kind, dlm_corpus_source *src, dlm_doc_sink sink, void *ctx)
{
    enum { BATCH = 256 };
    dlm_status st = DLM_OK;
    char root[4096];
    snprintf(root, sizeof root, "%s/%s", pkg_dir, root_rel);
    tbuf list = {0}, text = {0}, key = {0}, gz = {0}, paths = {0};
    size_t count = 0, lens[BATCH];
    const char *gz_paths[BATCH];
    DLM_CALL_GOTO(st, walk_sorted(root, "", keep, &list, &count), done);
    CHECK_GOTO(st, count > 0, DLM_ERR_FORMAT, done,
               "source %s: no documents found under %s; the package layout changed?", src->name,
               root);
    const char *rel = tb_str(&list);
    for (size_t b0 = 0; b0 < count; b0 += BATCH) {
        size_t nb = count - b0 < BATCH ? count - b0 : BATCH, ngz = 0;
        /* full paths of the batch, NUL-separated; the .gz ones decompressed together */
        tb_clear(&paths);
        const char *r = rel;
        for (size_t k = 0; k < nb; k++, r += strlen(r) + 1) {
            tb_adds(&paths, root);
            tb_addc(&paths, '/');
            tb_add(&paths, r, strlen(r) + 1);
        }
        CHECK_GOTO(st, !paths.failed, DLM_ERR_NOMEM, done, "out of memory");
        const char *pp = paths.p;
        for (size_t k = 0; k < nb; k++, pp += strlen(pp) + 1)
            if (has_suffix(pp, ".gz")) gz_paths[ngz++] = pp;
        int split_ok = 0;
        if (ngz) DLM_CALL_GOTO(st, gunzip_batch(gz_paths, ngz, &gz, lens, &split_ok), done);
        size_t gi = 0, goff = 0;
        pp = paths.p;
        for (size_t k = 0; k < nb; k++, pp += strlen(pp) + 1, rel += strlen(rel) + 1) {
            const char *t;
            size_t tlen;
            if (has_suffix(pp, ".gz") && split_ok) {
                t = tb_str(&gz) + goff;
                tlen = lens[gi];
                goff += lens[gi++];
            } else {
                DLM_CALL_GOTO(st, read_text(pp, &text), done);
                t = tb_str(&text);
                tlen = text.len;
            }
            tb_clear(&key);
            tb_adds(&key, root_rel);
            tb_addc(&key, '/');
            tb_adds(&key, rel);
            if (has_suffix(tb_str(&key), ".gz")) key.len -= 3, key.p[key.len] = '\0';
            CHECK_GOTO(st, !key.failed, DLM_ERR_NOMEM, done, "out of memory");
            if (kind == SRC_FORTUNES)
                DLM_CALL_GOTO(st, dlm_extract_fortunes(t, tlen, src->name, key.p, sink, ctx), done);
            else if (kind == SRC_PERL_DOC)
                DLM_CALL_GOTO(st, dlm_extract_pod(t, tlen, src->name, key.p, sink, ctx), done);
            else
                DLM_CALL_GOTO(st, dlm_extract_rst(t, tlen, src->name, key.p, sink, ctx), done);
        }
    }
done:
    tb_free(&list);
    tb_free(&text);
    tb_free(&key);
    tb_free(&gz);
    tb_free(&paths);
    return st;
}

static dlm_status extract_dict_source(const char *pkg_dir, const char *db, dlm_corpus_source *src,
                                      dlm_doc_sink sink, void *ctx)
{
    dlm_status st = DLM_OK;
    char path[4200];
    tbuf index = {0}, dict = {0};
    snprintf(path, sizeof path, "%s/usr/share/dictd/%s.index", pkg_dir, db);
    DLM_CALL_GOTO(st, read_text(path, &index), done);
    snprintf(path, sizeof path, "%s/usr/share/dictd/%s.dict.dz", pkg_dir, db);
    DLM_CALL_GOTO(st, read_text(path, &dict), done);
    DLM_CALL_GOTO(st, dlm_extract_dict(tb_str(&index), index.len, tb_str(&dict), dict.len,
                                       src->name, sink, ctx),
                  done);
done:
    tb_free(&index);
    tb_free(&dict);
    return st;
}

dlm_status dlm_corpus_extract(const char *cache_dir, dlm_corpus_source *sources, int n,
                              dlm_doc_sink sink, void *ctx)
{
    DLM_CHECK(cache_dir && sources && sink && n >= 0, DLM_ERR_ARG,
              "dlm_corpus_extract needs a cache folder, sources and a sink");
    for (int i = 0; i < n; i++) {
        dlm_corpus_source *src = &sources[i];
        int d = source_index(src->name);
        DLM_CHECK(d >= 0, DLM_ERR_ARG,
                  "unknown corpus source '%s' (expected gcide, fortunes, jargon, devil, "
                  "linux-doc, python-doc or perl-doc)",
                  src->name);
        DLM_CHECK(src->version[0], DLM_ERR_STATE,
                  "source %s has no version: run dlm_corpus_fetch before dlm_corpus_extract",
                  src->name);
        char dir[4096], marker[4200], rel[512];
        struct stat sb;
        DLM_CALL(unpack_dir(cache_dir, src->package, src->version, dir, sizeof dir));
        snprintf(marker, sizeof marker, "%s/" MARKER, dir);
        DLM_CHECK(stat(marker, &sb) == 0, DLM_ERR_STATE,
                  "source %s: %s is not a finished unpack of %s %s; run dlm_corpus_fetch first",
                  src->name, dir, src->package, src->version);
        double t0 = dlm_now();
        src->documents = 0;
        src->bytes = 0;
        counting c = {sink, ctx, src};
        switch (default_sources[d].kind) {
        case SRC_DICT:
            DLM_CALL(extract_dict_source(dir, default_sources[d].dict, src, counting_sink, &c));
            break;
        case SRC_FORTUNES:
            DLM_CALL(extract_tree(dir, "usr/share/games/fortunes", keep_fortune, SRC_FORTUNES, src,
                                  counting_sink, &c));
            break;
        case SRC_LINUX_DOC:
            snprintf(rel, sizeof rel, "usr/share/doc/%s/Documentation", src->package);
            DLM_CALL(extract_tree(dir, rel, keep_linux, SRC_LINUX_DOC, src, counting_sink, &c));
            break;
        case SRC_PYTHON_DOC: { /* python3.11-doc keeps its pages in usr/share/doc/python3.11 */
            size_t pl = strlen(src->package);
            if (has_suffix(src->package, "-doc")) pl -= 4;
            snprintf(rel, sizeof rel, "usr/share/doc/%.*s/html/_sources", (int)pl, src->package);
            DLM_CALL(extract_tree(dir, rel, keep_python, SRC_PYTHON_DOC, src, counting_sink, &c));
            break;
        }
        case SRC_PERL_DOC:
            DLM_CALL(extract_tree(dir, "usr/share/perl", keep_pod, SRC_PERL_DOC, src, counting_sink,
                                  &c));
            break;
        }
        DLM_INFO("corpus: %-10s %8lld documents %8.2f MB (%.1f s)", src->name,
                 (long long)src->documents, (double)src->bytes / 1e6, dlm_now() - t0);
    }
    return DLM_OK;
}

static void copy_field(char *dst, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void dlm_corpus_source_meta(const dlm_corpus_source *src, dlm_meta_source *out)
{
    memset(out, 0, sizeof *out);
    copy_field(out->name, sizeof out->name, src->name);
    copy_field(out->package, sizeof out->package, src->package);
    copy_field(out->version, sizeof out->version, src->version);
    copy_field(out->licence, sizeof out->licence, src->licence);
}
