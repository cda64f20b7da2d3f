/* The dictd extractor: the index's base64 offsets, one document per entry
 * and the per-dictionary markup cleaners (gcide, jargon, devil). */
#include "io/debian_corpus.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/corpus_tbuf.h"
#include "io/corpus_text.h"

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
    DLM_CHECK_GOTO(st, refs, DLM_ERR_NOMEM, done, "out of memory for %zu dictd index lines", cap);
    for (size_t p = 0; p < index_len;) {
        const char *nl = memchr(index_text + p, '\n', index_len - p);
        size_t end = nl ? (size_t)(nl - index_text) : index_len, q = end;
        line_no++;
        if (q > p && index_text[q - 1] == '\r') q--;
        if (q > p) {
            const char *l = index_text + p;
            const char *t1 = memchr(l, '\t', q - p);
            const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(index_text + q - t1 - 1)) : NULL;
            DLM_CHECK_GOTO(st, t2, DLM_ERR_FORMAT, done,
                       "%s index line %zu is not 'headword TAB offset TAB length': '%.*s'", source,
                       line_no, (int)(q - p < 80 ? q - p : 80), l);
            const char *t3 = memchr(t2 + 1, '\t', (size_t)(index_text + q - t2 - 1));
            const char *lend = t3 ? t3 : index_text + q;
            dict_ref r = {0, 0, p, (size_t)(t1 - l), nref};
            DLM_CALL_GOTO(st, dlm_dictd_b64_decode(t1 + 1, (size_t)(t2 - t1 - 1), &r.off), done);
            DLM_CALL_GOTO(st, dlm_dictd_b64_decode(t2 + 1, (size_t)(lend - t2 - 1), &r.len), done);
            DLM_CHECK_GOTO(st, r.off <= dict_len && r.len <= dict_len - r.off, DLM_ERR_FORMAT, done,
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
        DLM_CHECK_GOTO(st, !clean.failed && !tmp.failed && !e.key.failed, DLM_ERR_NOMEM, done,
                   "out of memory cleaning %s entry '%.*s'", source, (int)r->hwlen, hw);
        DLM_CALL_GOTO(st, dlm_corpus_emit(&e, sink, ctx, source, e.key.p, tb_str(&clean),
                                          clean.len),
                      done);
    }
done:
    free(refs);
    tb_free(&tmp);
    tb_free(&clean);
    dlm_corpus_emitter_free(&e);
    return st;
}
