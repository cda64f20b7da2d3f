/* The POD extractor: headings, items and ordinary paragraphs with their
 * formatting codes turned into text; verbatim paragraphs and =begin/=for
 * blocks dropped. */
#include "io/debian_corpus.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "io/corpus_tbuf.h"
#include "io/corpus_text.h"

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
    DLM_CHECK_GOTO(st, !out.failed, DLM_ERR_NOMEM, done, "out of memory stripping %s", key);
    DLM_CALL_GOTO(st, dlm_corpus_emit(&e, sink, ctx, source, key, tb_str(&out), out.len), done);
done:
    tb_free(&out);
    dlm_corpus_emitter_free(&e);
    return st;
}
