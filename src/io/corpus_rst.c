/* The reStructuredText extractor: titles, paragraphs, lists and the text of
 * admonitions and description directives; other directives, literal blocks
 * and tables dropped, inline markup turned into its text. */
#define _POSIX_C_SOURCE 200809L
#include "io/debian_corpus.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/corpus_tbuf.h"
#include "io/corpus_text.h"

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
    DLM_CHECK_GOTO(st, L, DLM_ERR_NOMEM, done, "out of memory splitting %s into lines", key);
    rst_lines(&rs, L, n, 0, 0);
    DLM_CHECK_GOTO(st, !rs.out.failed && !rs.para.failed, DLM_ERR_NOMEM, done,
               "out of memory stripping %s", key);
    DLM_CALL_GOTO(st, dlm_corpus_emit(&e, sink, ctx, source, key, tb_str(&rs.out), rs.out.len),
                  done);
done:
    free(L);
    tb_free(&rs.out);
    tb_free(&rs.para);
    dlm_corpus_emitter_free(&e);
    return st;
}
