/* The document normaliser (valid UTF-8, Windows-1252 for the rest, no
 * control characters, no trailing blanks, at most one empty line in a row)
 * and the emitter that hands a normalised document to the sink. */
#include "io/corpus_text.h"

#include <stdint.h>

/* Windows-1252 for 0x80..0x9F (0: undefined, dropped); 0xA0..0xFF are Latin-1. */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

size_t dlm_corpus_utf8_len(const unsigned char *s, size_t n)
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
        size_t plen = dlm_corpus_utf8_len(s + i, n - i);
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

void dlm_corpus_emitter_free(emitter *e)
{
    tb_free(&e->doc);
    tb_free(&e->ws);
    tb_free(&e->key);
}

dlm_status dlm_corpus_emit(emitter *e, dlm_doc_sink sink, void *ctx, const char *source,
                           const char *key, const char *text, size_t n)
{
    normalise(text, n, &e->doc, &e->ws);
    DLM_CHECK(!e->doc.failed && !e->ws.failed, DLM_ERR_NOMEM,
              "out of memory normalising document %s of source %s", key, source);
    if (e->doc.len < DLM_CORPUS_MIN_DOC_BYTES) return DLM_OK;
    DLM_CALL(sink(ctx, source, key, e->doc.p, e->doc.len));
    return DLM_OK;
}
