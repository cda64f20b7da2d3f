/* The fortune(6) extractor: cookie files split at "%" lines, overstrikes
 * resolved as a terminal shows them. */
#include "io/debian_corpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/corpus_tbuf.h"
#include "io/corpus_text.h"

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
        size_t l = dlm_corpus_utf8_len((const unsigned char *)s + i, n - i);
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
    DLM_CALL(dlm_corpus_emit(e, sink, ctx, source, e->key.p, tb_str(entry), entry->len));
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
    DLM_CHECK_GOTO(st, cells, DLM_ERR_NOMEM, done, "out of memory for a %zu-byte fortune line",
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
    dlm_corpus_emitter_free(&e);
    return st;
}
