/* The growable text buffer and the small string helpers shared by the parts
 * of the corpus builder (private to src/io/corpus_*.c and debian_corpus.c).
 * An allocation failure is sticky and checked once per document, so the
 * strippers need no check after every append. */
#ifndef DLM_CORPUS_TBUF_H
#define DLM_CORPUS_TBUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

#define NONE ((size_t)-1)

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} tbuf;

static inline void tb_reserve(tbuf *b, size_t extra)
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

static inline void tb_add(tbuf *b, const char *s, size_t n)
{
    if (n == 0) return;
    tb_reserve(b, n);
    if (b->failed) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void tb_addc(tbuf *b, char c) { tb_add(b, &c, 1); }
static inline void tb_adds(tbuf *b, const char *s) { tb_add(b, s, strlen(s)); }

static inline void tb_clear(tbuf *b)
{
    b->len = 0;
    if (b->p) b->p[0] = '\0';
}

static inline void tb_free(tbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Takes over p, a malloc'd string of len bytes and a NUL, as the buffer's text. */
static inline void tb_take(tbuf *b, char *p, size_t len)
{
    free(b->p);
    b->p = p;
    b->len = len;
    b->cap = len + 1;
    b->failed = 0;
}

/* The text as a C string ("" when nothing was ever added). */
static inline const char *tb_str(const tbuf *b) { return b->p ? b->p : ""; }

static inline void tb_trim_spaces(tbuf *b)
{
    while (b->len && (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == '\t')) b->len--;
    if (b->p) b->p[b->len] = '\0';
}

static inline void tb_utf8(tbuf *b, uint32_t cp)
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

static inline int is_sp(int c) { return c == ' ' || c == '\t'; }
static inline int is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static inline int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static inline size_t find_str(const char *s, size_t from, size_t n, const char *pat)
{
    size_t m = strlen(pat);
    for (size_t i = from; i + m <= n; i++)
        if (memcmp(s + i, pat, m) == 0) return i;
    return NONE;
}

#endif
