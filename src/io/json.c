/* Recursive-descent JSON parser and string escaper. */
#include "io/json.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t len, pos;
    const char *origin;
    int depth;
} parser;

#define JSON_MAX_DEPTH 64

static dlm_status fail(parser *p, const char *what)
{
    return dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "%s: byte offset %zu: %s", p->origin, p->pos, what);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') break;
        p->pos++;
    }
}

static void free_value(dlm_json *v)
{
    free(v->string);
    for (int i = 0; i < v->n; i++) {
        if (v->keys) free(v->keys[i]);
        free_value(&v->items[i]);
    }
    free(v->keys);
    free(v->items);
    memset(v, 0, sizeof *v);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static dlm_status parse_string(parser *p, char **out)
{
    p->pos++; /* opening quote */
    size_t cap = 16, n = 0;
    char *buf = malloc(cap);
    DLM_CHECK(buf != NULL, DLM_ERR_NOMEM, "parsing JSON string");
    for (;;) {
        if (p->pos >= p->len) {
            free(buf);
            return fail(p, "unterminated string");
        }
        char c = p->s[p->pos++];
        if (c == '"') break;
        unsigned code = (unsigned char)c;
        if (c == '\\') {
            if (p->pos >= p->len) break;
            char e = p->s[p->pos++];
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *k = strchr(from, e);
            if (e == 'u') {
                code = 0;
                for (int i = 0; i < 4; i++) {
                    int h = p->pos < p->len ? hexval(p->s[p->pos++]) : -1;
                    if (h < 0) {
                        free(buf);
                        return fail(p, "bad \\u escape");
                    }
                    code = code * 16 + (unsigned)h;
                }
            } else if (k && e) {
                code = (unsigned char)to[k - from];
            } else {
                free(buf);
                return fail(p, "bad escape in string");
            }
        } else if (code < 0x20) {
            free(buf);
            return fail(p, "control character in string");
        }
        char enc[4];
        int m = 0;
        if (code < 0x80 || c != '\\') enc[m++] = (char)code; /* raw bytes pass through (UTF-8) */
        else if (code < 0x800) enc[m++] = (char)(0xC0 | code >> 6), enc[m++] = (char)(0x80 | (code & 0x3F));
        else enc[m++] = (char)(0xE0 | code >> 12), enc[m++] = (char)(0x80 | ((code >> 6) & 0x3F)),
             enc[m++] = (char)(0x80 | (code & 0x3F));
        if (n + (size_t)m + 1 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                DLM_CHECK(0, DLM_ERR_NOMEM, "parsing JSON string");
            }
            buf = nb;
        }
        memcpy(buf + n, enc, (size_t)m);
        n += (size_t)m;
    }
    buf[n] = '\0';
    *out = buf;
    return DLM_OK;
}

static dlm_status parse_value(parser *p, dlm_json *v);

static dlm_status push_item(dlm_json *v, int *cap, char *key)
{
    if (v->n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        dlm_json *items = realloc(v->items, (size_t)*cap * sizeof *items);
        DLM_CHECK(items != NULL, DLM_ERR_NOMEM, "parsing JSON");
        v->items = items;
        if (v->type == DLM_JSON_OBJECT) {
            char **keys = realloc(v->keys, (size_t)*cap * sizeof *keys);
            DLM_CHECK(keys != NULL, DLM_ERR_NOMEM, "parsing JSON");
            v->keys = keys;
        }
    }
    memset(&v->items[v->n], 0, sizeof v->items[v->n]);
    if (v->type == DLM_JSON_OBJECT) v->keys[v->n] = key;
    v->n++;
    return DLM_OK;
}

static dlm_status parse_container(parser *p, dlm_json *v, char close)
{
    v->type = close == '}' ? DLM_JSON_OBJECT : DLM_JSON_ARRAY;
    p->pos++;
    int cap = 0;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return DLM_OK;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (v->type == DLM_JSON_OBJECT) {
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a quoted key");
            DLM_CALL(parse_string(p, &key));
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                return fail(p, "expected ':' after a key");
            }
            p->pos++;
        }
        dlm_status st = push_item(v, &cap, key);
        if (st != DLM_OK) {
            free(key);
            return st;
        }
        DLM_CALL(parse_value(p, &v->items[v->n - 1]));
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return DLM_OK;
        }
        return fail(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static dlm_status parse_value(parser *p, dlm_json *v)
{
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input");
    if (++p->depth > JSON_MAX_DEPTH) return fail(p, "nested too deeply");
    dlm_status st = DLM_OK;
    char c = p->s[p->pos];
    if (c == '{') st = parse_container(p, v, '}');
    else if (c == '[') st = parse_container(p, v, ']');
    else if (c == '"') {
        v->type = DLM_JSON_STRING;
        st = parse_string(p, &v->string);
    } else if (p->len - p->pos >= 4 && !strncmp(p->s + p->pos, "true", 4)) {
        v->type = DLM_JSON_BOOL, v->number = 1, p->pos += 4;
    } else if (p->len - p->pos >= 5 && !strncmp(p->s + p->pos, "false", 5)) {
        v->type = DLM_JSON_BOOL, v->number = 0, p->pos += 5;
    } else if (p->len - p->pos >= 4 && !strncmp(p->s + p->pos, "null", 4)) {
        v->type = DLM_JSON_NULL, p->pos += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char tmp[64];
        size_t n = 0;
        while (p->pos + n < p->len && n < sizeof tmp - 1 && strchr("+-0123456789.eE", p->s[p->pos + n]))
            n++;
        memcpy(tmp, p->s + p->pos, n);
        tmp[n] = '\0';
        char *end;
        v->type = DLM_JSON_NUMBER;
        v->number = strtod(tmp, &end);
        if (end != tmp + n || n == 0) return fail(p, "bad number");
        p->pos += n;
    } else {
        return fail(p, "expected a value");
    }
    p->depth--;
    return st;
}

dlm_status dlm_json_parse(const char *text, size_t len, const char *origin, dlm_json **out)
{
    *out = NULL;
    dlm_json *v = calloc(1, sizeof *v);
    DLM_CHECK(v != NULL, DLM_ERR_NOMEM, "parsing %s", origin);
    parser p = {text, len, 0, origin, 0};
    dlm_status st = parse_value(&p, v);
    if (st == DLM_OK) {
        skip_ws(&p);
        if (p.pos != len) st = fail(&p, "trailing characters after the JSON value");
    }
    if (st != DLM_OK) {
        free_value(v);
        free(v);
        return st;
    }
    *out = v;
    return DLM_OK;
}

void dlm_json_free(dlm_json **v)
{
    if (!*v) return;
    free_value(*v);
    free(*v);
    *v = NULL;
}

const dlm_json *dlm_json_get(const dlm_json *obj, const char *key)
{
    if (!obj || obj->type != DLM_JSON_OBJECT) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

void dlm_json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c == '\n') fputs("\\n", f);
        else if (*c == '\t') fputs("\\t", f);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}
