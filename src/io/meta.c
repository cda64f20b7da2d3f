/* Shard metadata: JSON writing, reading (json-c) and checking against the
 * shard. */
#include "io/meta.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json_object.h>
#include <json-c/json_tokener.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "io/json.h"

void dlm_meta_defaults_gpt2(dlm_shard_meta *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->tokenizer, sizeof m->tokenizer, "gpt2");
    m->vocab_size = 50257;
    m->separator_id = 50256;
    m->mask_id = 50257;
    m->token_bytes = 2;
}

void dlm_meta_defaults_bytes(dlm_shard_meta *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->tokenizer, sizeof m->tokenizer, "bytes");
    m->vocab_size = 257;
    m->separator_id = 256;
    m->mask_id = 257;
    m->token_bytes = 2;
}

void dlm_meta_path(const char *shard_path, char *out, size_t len)
{
    size_t n = strlen(shard_path);
    if (n > 4 && !strcmp(shard_path + n - 4, ".bin"))
        snprintf(out, len, "%.*s.json", (int)(n - 4), shard_path);
    else
        snprintf(out, len, "%s.json", shard_path);
}

static void put_str(FILE *f, const char *key, const char *v, int last)
{
    fprintf(f, "  \"%s\": ", key);
    dlm_json_write_string(f, v);
    fputs(last ? "\n" : ",\n", f);
}

dlm_status dlm_meta_write(const char *path, const dlm_shard_meta *m)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    DLM_CHECK(f != NULL, DLM_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    fputs("{\n  \"format\": \"dlm-shard-meta\",\n  \"format_version\": 1,\n", f);
    put_str(f, "split", m->split, 0);
    put_str(f, "tokenizer", m->tokenizer, 0);
    fprintf(f, "  \"vocab_size\": %d,\n  \"separator_id\": %d,\n  \"mask_id\": %d,\n", m->vocab_size,
            m->separator_id, m->mask_id);
    fprintf(f, "  \"token_bytes\": %d,\n  \"n_tokens\": %" PRId64 ",\n  \"documents\": %" PRId64 ",\n",
            m->token_bytes, m->n_tokens, m->documents);
    fprintf(f, "  \"content_hash\": \"fnv1a64:%016" PRIx64 "\",\n", m->content_hash);
    fputs("  \"sources\": [", f);
    for (int i = 0; i < m->n_sources; i++) {
        const dlm_meta_source *s = &m->sources[i];
        fputs(i ? ",\n    {" : "\n    {", f);
        fputs("\"name\": ", f);
        dlm_json_write_string(f, s->name);
        fputs(", \"package\": ", f);
        dlm_json_write_string(f, s->package);
        fputs(", \"version\": ", f);
        dlm_json_write_string(f, s->version);
        fputs(", \"licence\": ", f);
        dlm_json_write_string(f, s->licence);
        fprintf(f, ", \"documents\": %" PRId64 ", \"bytes\": %" PRId64 "}", s->documents, s->bytes);
    }
    fputs(m->n_sources ? "\n  ]" : "]", f);
    if (m->synthetic) {
        fputs(",\n  \"synthetic\": {", f);
        fputs("\"kind\": ", f);
        dlm_json_write_string(f, m->synth_kind);
        fprintf(f, ", \"symbols\": %d, \"order\": %d, \"alpha\": %.17g, \"seed\": %" PRIu64
                   ", \"first_id\": %d, \"entropy_rate\": %.17g, \"window_T\": %d, "
                   "\"window_entropy\": %.17g}",
                m->synth_symbols, m->synth_order, m->synth_alpha, m->synth_seed,
                (int)m->synth_first_id, m->entropy_rate, m->window_T, m->window_entropy);
    }
    fputs("\n}\n", f);
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        unlink(tmp);
        DLM_CHECK(0, DLM_ERR_IO, "writing %s failed", tmp);
    }
    DLM_CHECK(rename(tmp, path) == 0, DLM_ERR_IO, "renaming %s to %s: %s", tmp, path,
              strerror(errno));
    return DLM_OK;
}

/* What the parser expected where it stopped, in the words of dlm's own
 * parser before json-c (tests and users match on them). */
static const char *parse_error_text(enum json_tokener_error e, const char *text, size_t len,
                                    size_t off, char *buf, size_t buflen)
{
    switch (e) {
    case json_tokener_error_depth: return "nested too deeply";
    case json_tokener_continue: /* cannot happen with the final '\0' passed, but says the same */
    case json_tokener_error_parse_eof: return "unexpected end of input";
    case json_tokener_error_parse_null:
    case json_tokener_error_parse_boolean: return "expected a value";
    case json_tokener_error_parse_number: return "bad number";
    case json_tokener_error_parse_array: return "expected ',' or ']'";
    case json_tokener_error_parse_object_key_name: return "expected a quoted key";
    case json_tokener_error_parse_object_key_sep: return "expected ':' after a key";
    case json_tokener_error_parse_object_value_sep: return "expected ',' or '}'";
    case json_tokener_error_parse_string: return "bad escape in string";
    case json_tokener_error_parse_unexpected: {
        unsigned char c = off < len ? (unsigned char)text[off] : 0;
        if (c > 0x20 && c < 0x7f) snprintf(buf, buflen, "unexpected character '%c'", c);
        else snprintf(buf, buflen, "unexpected byte 0x%02x", c);
        return buf;
    }
    default: return json_tokener_error_desc(e);
    }
}

/* Strict JSON (json-c) of text[0..len), text[len] = '\0'; errors name the
 * file and the byte offset where parsing stopped. */
static dlm_status parse_json(const char *text, size_t len, const char *path, json_object **out)
{
    *out = NULL;
    DLM_CHECK(len < INT_MAX, DLM_ERR_FORMAT, "%s: %zu bytes is too large for shard metadata",
              path, len);
    json_tokener *tok = json_tokener_new_ex(64);
    DLM_CHECK(tok != NULL, DLM_ERR_NOMEM, "parsing %s", path);
    /* trailing characters are checked below, to say so in the message */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    json_object *root = json_tokener_parse_ex(tok, text, (int)len + 1); /* + 1: the end is here */
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t off = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    char what[48];
    if (e != json_tokener_success) {
        json_object_put(root);
        DLM_CHECK(0, DLM_ERR_FORMAT, "%s: byte offset %zu: %s", path, off,
                  parse_error_text(e, text, len, off, what, sizeof what));
    }
    while (off < len && text[off] && strchr(" \t\r\n", text[off])) off++;
    if (off < len) {
        json_object_put(root);
        DLM_CHECK(0, DLM_ERR_FORMAT, "%s: byte offset %zu: trailing characters after the JSON value",
                  path, off);
    }
    *out = root;
    return DLM_OK;
}

/* Typed field access with errors naming the file and the key. A JSON null
 * is present (json-c holds it as a NULL value) and has none of the types. */
static dlm_status get_num(const json_object *o, const char *path, const char *key, double lo,
                          double hi, double *out)
{
    json_object *v;
    DLM_CHECK(json_object_object_get_ex(o, key, &v), DLM_ERR_FORMAT, "%s: missing field \"%s\"",
              path, key);
    DLM_CHECK(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double),
              DLM_ERR_FORMAT, "%s: field \"%s\" must be a number", path, key);
    double x = json_object_get_double(v);
    DLM_CHECK(x >= lo && x <= hi, DLM_ERR_FORMAT, "%s: field \"%s\" is %g, expected %g..%g", path,
              key, x, lo, hi);
    *out = x;
    return DLM_OK;
}

static dlm_status get_str(const json_object *o, const char *path, const char *key, char *out,
                          size_t len)
{
    json_object *v;
    DLM_CHECK(json_object_object_get_ex(o, key, &v), DLM_ERR_FORMAT, "%s: missing field \"%s\"",
              path, key);
    DLM_CHECK(json_object_is_type(v, json_type_string), DLM_ERR_FORMAT,
              "%s: field \"%s\" must be a string", path, key);
    const char *s = json_object_get_string(v);
    DLM_CHECK(strlen(s) < len, DLM_ERR_FORMAT, "%s: field \"%s\" is too long", path, key);
    snprintf(out, len, "%s", s);
    return DLM_OK;
}

static dlm_status read_fields(const json_object *o, const char *path, dlm_shard_meta *m)
{
    const double big = 9007199254740992.0;
    double x;
    char fmt[32], hash[64];
    DLM_CALL(get_str(o, path, "format", fmt, sizeof fmt));
    DLM_CHECK(!strcmp(fmt, "dlm-shard-meta"), DLM_ERR_FORMAT,
              "%s: field \"format\" is \"%s\", expected \"dlm-shard-meta\"", path, fmt);
    DLM_CALL(get_str(o, path, "split", m->split, sizeof m->split));
    DLM_CALL(get_str(o, path, "tokenizer", m->tokenizer, sizeof m->tokenizer));
    DLM_CALL(get_num(o, path, "vocab_size", 1, 1 << 30, &x));
    m->vocab_size = (int)x;
    DLM_CALL(get_num(o, path, "separator_id", 0, m->vocab_size - 1, &x));
    m->separator_id = (int)x;
    DLM_CALL(get_num(o, path, "mask_id", m->vocab_size, m->vocab_size, &x));
    m->mask_id = (int)x;
    DLM_CALL(get_num(o, path, "token_bytes", 2, 4, &x));
    m->token_bytes = (int)x;
    DLM_CALL(get_num(o, path, "n_tokens", 0, big, &x));
    m->n_tokens = (int64_t)x;
    DLM_CALL(get_num(o, path, "documents", 0, big, &x));
    m->documents = (int64_t)x;
    DLM_CALL(get_str(o, path, "content_hash", hash, sizeof hash));
    DLM_CHECK(sscanf(hash, "fnv1a64:%" SCNx64, &m->content_hash) == 1, DLM_ERR_FORMAT,
              "%s: field \"content_hash\" is \"%s\", expected \"fnv1a64:<16 hex digits>\"", path,
              hash);
    json_object *src = NULL;
    json_object_object_get_ex(o, "sources", &src);
    DLM_CHECK(json_object_is_type(src, json_type_array) &&
                  json_object_array_length(src) <= DLM_META_MAX_SOURCES,
              DLM_ERR_FORMAT, "%s: field \"sources\" must be an array of at most %d entries", path,
              DLM_META_MAX_SOURCES);
    m->n_sources = (int)json_object_array_length(src);
    for (int i = 0; i < m->n_sources; i++) {
        dlm_meta_source *s = &m->sources[i];
        const json_object *e = json_object_array_get_idx(src, (size_t)i);
        DLM_CALL(get_str(e, path, "name", s->name, sizeof s->name));
        DLM_CALL(get_str(e, path, "package", s->package, sizeof s->package));
        DLM_CALL(get_str(e, path, "version", s->version, sizeof s->version));
        DLM_CALL(get_str(e, path, "licence", s->licence, sizeof s->licence));
        DLM_CALL(get_num(e, path, "documents", 0, big, &x));
        s->documents = (int64_t)x;
        DLM_CALL(get_num(e, path, "bytes", 0, big, &x));
        s->bytes = (int64_t)x;
    }
    json_object *syn;
    if (json_object_object_get_ex(o, "synthetic", &syn)) {
        m->synthetic = 1;
        DLM_CALL(get_str(syn, path, "kind", m->synth_kind, sizeof m->synth_kind));
        DLM_CALL(get_num(syn, path, "symbols", 1, 1 << 30, &x));
        m->synth_symbols = (int)x;
        DLM_CALL(get_num(syn, path, "order", 0, 64, &x));
        m->synth_order = (int)x;
        DLM_CALL(get_num(syn, path, "alpha", 0, 1e300, &m->synth_alpha));
        DLM_CALL(get_num(syn, path, "seed", 0, big, &x));
        m->synth_seed = (uint64_t)x;
        m->synth_first_id = -1; /* optional: files from before it was recorded */
        if (json_object_object_get_ex(syn, "first_id", NULL)) {
            DLM_CALL(get_num(syn, path, "first_id", 0, 1 << 30, &x));
            m->synth_first_id = (int32_t)x;
        }
        DLM_CALL(get_num(syn, path, "entropy_rate", 0, 1e6, &m->entropy_rate));
        DLM_CALL(get_num(syn, path, "window_T", 1, 1 << 30, &x));
        m->window_T = (int)x;
        DLM_CALL(get_num(syn, path, "window_entropy", 0, 1e6, &m->window_entropy));
    }
    return DLM_OK;
}

dlm_status dlm_meta_read(const char *path, dlm_shard_meta *m, int *found)
{
    *found = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT) return DLM_OK;
    char *buf;
    size_t len;
    DLM_CALL(dlm_read_file(path, &buf, &len));
    json_object *root = NULL;
    dlm_status st = parse_json(buf, len, path, &root);
    free(buf);
    DLM_CALL(st);
    dlm_shard_meta parsed;
    memset(&parsed, 0, sizeof parsed);
    st = json_object_is_type(root, json_type_object)
             ? read_fields(root, path, &parsed)
             : dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                              "%s: expected a JSON object", path);
    json_object_put(root);
    DLM_CALL(st);
    *m = parsed;
    *found = 1;
    return DLM_OK;
}

dlm_status dlm_meta_check(const dlm_shard_meta *m, const char *meta_path, const dlm_shard *s)
{
    DLM_CHECK(m->n_tokens == s->n_tokens, DLM_ERR_FORMAT,
              "%s: field \"n_tokens\" is %lld but shard %s holds %lld tokens", meta_path,
              (long long)m->n_tokens, s->path, (long long)s->n_tokens);
    DLM_CHECK(m->token_bytes == s->token_bytes, DLM_ERR_FORMAT,
              "%s: field \"token_bytes\" is %d but shard %s stores %d-byte tokens", meta_path,
              m->token_bytes, s->path, s->token_bytes);
    DLM_CHECK(!s->scanned || m->content_hash == s->content_hash, DLM_ERR_FORMAT,
              "%s: field \"content_hash\" is fnv1a64:%016" PRIx64
              " but shard %s hashes to fnv1a64:%016" PRIx64 " (the shard changed after its "
              "metadata was written)",
              meta_path, m->content_hash, s->path, s->content_hash);
    return DLM_OK;
}
