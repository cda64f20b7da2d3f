/* llm.c-format shards: validated memory-mapped reading, streaming writing. */
#define _GNU_SOURCE
#include "io/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/names.h"

const char *const dlm_shard_format_names[] = {"llmc", "raw-u16", NULL};

dlm_status dlm_shard_format_parse(const char *name, dlm_shard_format *fmt)
{
    int v;
    DLM_CALL(dlm_names_parse(dlm_shard_format_names, "shard format", name, &v));
    *fmt = (dlm_shard_format)v;
    return DLM_OK;
}

static dlm_status check_header(const char *path, const int32_t *h, size_t data_bytes,
                               int *token_bytes, int64_t *n_tokens)
{
    if (h[0] == DLM_SHARD_MAGIC_U16) {
        DLM_CHECK(h[1] == DLM_SHARD_VERSION_U16, DLM_ERR_FORMAT,
                  "%s: byte offset 4: version %d, expected %d for magic %d (uint16 tokens)", path,
                  h[1], DLM_SHARD_VERSION_U16, DLM_SHARD_MAGIC_U16);
        *token_bytes = 2;
    } else if (h[0] == DLM_SHARD_MAGIC_U32) {
        DLM_CHECK(h[1] == DLM_SHARD_VERSION_U32, DLM_ERR_FORMAT,
                  "%s: byte offset 4: version %d, expected %d for magic %d (uint32 tokens)", path,
                  h[1], DLM_SHARD_VERSION_U32, DLM_SHARD_MAGIC_U32);
        *token_bytes = 4;
    } else {
        DLM_CHECK(0, DLM_ERR_FORMAT,
                  "%s: byte offset 0: magic %d, expected %d (uint16 tokens) or %d (uint32 "
                  "tokens); a header-less uint16 file needs the explicit format raw-u16",
                  path, h[0], DLM_SHARD_MAGIC_U16, DLM_SHARD_MAGIC_U32);
    }
    DLM_CHECK(h[2] >= 0, DLM_ERR_FORMAT, "%s: byte offset 8: negative token count %d", path, h[2]);
    size_t have = data_bytes / (size_t)*token_bytes;
    DLM_CHECK((size_t)h[2] <= have, DLM_ERR_FORMAT,
              "%s: byte offset 8: the header says %d tokens but the file holds %zu "
              "(truncated? expected %zu bytes, found %zu)",
              path, h[2], have, DLM_SHARD_HEADER_BYTES + (size_t)h[2] * *token_bytes,
              DLM_SHARD_HEADER_BYTES + data_bytes);
    DLM_CHECK((size_t)h[2] * *token_bytes == data_bytes, DLM_ERR_FORMAT,
              "%s: the header says %d tokens (%zu bytes) but %zu bytes follow the header", path,
              h[2], (size_t)h[2] * *token_bytes, data_bytes);
    *n_tokens = h[2];
    return DLM_OK;
}

dlm_status dlm_shard_open(const char *path, dlm_shard_format fmt, int vocab_size, dlm_shard *out)
{
    return dlm_shard_open_scan(path, fmt, vocab_size, DLM_SCAN_ALL, out);
}

dlm_status dlm_shard_open_scan(const char *path, dlm_shard_format fmt, int vocab_size,
                               dlm_scan scan, dlm_shard *out)
{
    memset(out, 0, sizeof *out);
    DLM_CHECK(strlen(path) < sizeof out->path, DLM_ERR_ARG, "shard path too long: %s", path);
    snprintf(out->path, sizeof out->path, "%s", path);
    int fd = open(path, O_RDONLY);
    DLM_CHECK(fd >= 0, DLM_ERR_IO, "cannot open shard %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        DLM_CHECK(0, DLM_ERR_IO, "cannot stat shard %s: %s", path, strerror(e));
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        DLM_CHECK(0, DLM_ERR_FORMAT, "%s: empty file, expected %s", path,
                  fmt == DLM_SHARD_LLMC ? "a 1024-byte llm.c header and tokens" : "uint16 tokens");
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    DLM_CHECK(map != MAP_FAILED, DLM_ERR_IO, "cannot map shard %s: %s", path, strerror(e));
    out->map = map;
    out->map_bytes = size;
    dlm_status s = DLM_OK;
    if (fmt == DLM_SHARD_RAW_U16) {
        if (size % 2) {
            s = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                               "%s: %zu bytes is not a whole number of uint16 tokens", path, size);
            goto fail;
        }
        out->token_bytes = 2;
        out->n_tokens = (int64_t)(size / 2);
        out->tokens = map;
    } else {
        if (size < DLM_SHARD_HEADER_BYTES) {
            s = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                               "%s: %zu bytes, shorter than the 1024-byte llm.c header "
                               "(truncated, or a header-less file: use format raw-u16)",
                               path, size);
            goto fail;
        }
        int32_t h[DLM_SHARD_HEADER_INTS];
        memcpy(h, map, sizeof h);
        DLM_CALL_GOTO(s, check_header(path, h, size - DLM_SHARD_HEADER_BYTES, &out->token_bytes,
                                      &out->n_tokens), fail);
        out->tokens = (const uint8_t *)map + DLM_SHARD_HEADER_BYTES;
    }
    if (scan == DLM_SCAN_HEADER) return DLM_OK;
    for (int64_t i = 0; i < out->n_tokens; i++) {
        int32_t t = dlm_shard_token(out, i);
        if (t < 0 || t >= vocab_size) {
            size_t off = (size_t)(out->tokens - (const uint8_t *)map) + (size_t)i * out->token_bytes;
            s = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                               "%s: token %lld (byte offset %zu) is id %d, outside the vocabulary "
                               "of %d ids",
                               path, (long long)i, off, t, vocab_size);
            goto fail;
        }
    }
    out->content_hash = dlm_fnv1a(DLM_FNV_OFFSET, out->tokens, (size_t)out->n_tokens * out->token_bytes);
    out->scanned = 1;
    return DLM_OK;
fail:
    dlm_shard_close(out);
    return s;
}

void dlm_shard_close(dlm_shard *s)
{
    if (s->map) munmap(s->map, s->map_bytes);
    s->map = NULL;
    s->tokens = NULL;
    s->n_tokens = 0;
}

dlm_status dlm_shard_writer_open(const char *path, int token_bytes, dlm_shard_writer *w)
{
    memset(w, 0, sizeof *w);
    DLM_CHECK(token_bytes == 2 || token_bytes == 4, DLM_ERR_ARG,
              "shard token width must be 2 or 4 bytes, got %d", token_bytes);
    DLM_CHECK(strlen(path) < sizeof w->path, DLM_ERR_ARG, "shard path too long: %s", path);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp_path, sizeof w->tmp_path, "%s.tmp", path);
    w->token_bytes = token_bytes;
    w->content_hash = DLM_FNV_OFFSET;
    w->f = fopen(w->tmp_path, "wb");
    DLM_CHECK(w->f != NULL, DLM_ERR_IO, "cannot create %s: %s", w->tmp_path, strerror(errno));
    int32_t h[DLM_SHARD_HEADER_INTS] = {0}; /* the real header is written at close */
    DLM_CHECK(fwrite(h, sizeof h, 1, w->f) == 1, DLM_ERR_IO, "writing %s: %s", w->tmp_path,
              strerror(errno));
    return DLM_OK;
}

dlm_status dlm_shard_writer_append(dlm_shard_writer *w, const int32_t *tokens, int64_t n)
{
    uint8_t buf[8192];
    int64_t max = w->token_bytes == 2 ? 65535 : INT32_MAX;
    for (int64_t i = 0; i < n;) {
        size_t len = 0;
        for (; i < n && len + 4 <= sizeof buf; i++) {
            DLM_CHECK(tokens[i] >= 0 && tokens[i] <= max, DLM_ERR_ARG,
                      "%s: token %d does not fit %d-byte shard tokens", w->path, tokens[i],
                      w->token_bytes);
            if (w->token_bytes == 2) {
                uint16_t v = (uint16_t)tokens[i];
                memcpy(buf + len, &v, 2);
            } else {
                uint32_t v = (uint32_t)tokens[i];
                memcpy(buf + len, &v, 4);
            }
            len += (size_t)w->token_bytes;
        }
        DLM_CHECK(fwrite(buf, 1, len, w->f) == len, DLM_ERR_IO, "writing %s: %s", w->tmp_path,
                  strerror(errno));
        w->content_hash = dlm_fnv1a(w->content_hash, buf, len);
    }
    w->n_tokens += n;
    DLM_CHECK(w->n_tokens <= INT32_MAX, DLM_ERR_ARG,
              "%s: more than %d tokens do not fit one llm.c shard's int32 count", w->path,
              INT32_MAX);
    return DLM_OK;
}

dlm_status dlm_shard_writer_close(dlm_shard_writer *w)
{
    int32_t h[3] = {w->token_bytes == 2 ? DLM_SHARD_MAGIC_U16 : DLM_SHARD_MAGIC_U32,
                    w->token_bytes == 2 ? DLM_SHARD_VERSION_U16 : DLM_SHARD_VERSION_U32,
                    (int32_t)w->n_tokens};
    int ok = fseek(w->f, 0, SEEK_SET) == 0 && fwrite(h, sizeof h, 1, w->f) == 1;
    ok = fflush(w->f) == 0 && ok;
    ok = fsync(fileno(w->f)) == 0 && ok;
    ok = fclose(w->f) == 0 && ok;
    w->f = NULL;
    if (!ok) {
        int e = errno;
        unlink(w->tmp_path);
        DLM_CHECK(0, DLM_ERR_IO, "finishing %s: %s", w->tmp_path, strerror(e));
    }
    DLM_CHECK(rename(w->tmp_path, w->path) == 0, DLM_ERR_IO, "renaming %s to %s: %s",
              w->tmp_path, w->path, strerror(errno));
    return DLM_OK;
}

void dlm_shard_writer_abort(dlm_shard_writer *w)
{
    if (w->f) fclose(w->f);
    w->f = NULL;
    unlink(w->tmp_path);
}
