/* Document -> split -> dedupe -> byte tokens -> shard, with progress. */
#define _GNU_SOURCE
#include "io/corpus_writer.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/timer.h"

#define MAX_SOURCES DLM_META_MAX_SOURCES

struct dlm_corpus_writer {
    char out_dir[2048], name[256];
    dlm_shard_writer shards[DLM_SPLITS];
    int64_t docs[DLM_SPLITS];
    /* per source and split */
    int n_sources;
    dlm_meta_source sources[MAX_SOURCES];
    int described[MAX_SOURCES];
    int64_t src_docs[MAX_SOURCES][DLM_SPLITS], src_bytes[MAX_SOURCES][DLM_SPLITS];
    /* exact-duplicate filter: open addressing on (content hash, length) */
    uint64_t *seen_hash;
    size_t *seen_len;
    size_t seen_cap, seen_n;
    int64_t duplicates;
    int64_t bytes_in;
    double t_start, t_progress;
    int32_t *tok;
    size_t tok_cap;
};

const char *dlm_split_name(int split)
{
    static const char *const names[DLM_SPLITS] = {"train", "val", "test"};
    return split >= 0 && split < DLM_SPLITS ? names[split] : "?";
}

int dlm_split_of(const char *source, const char *key)
{
    uint64_t h = dlm_fnv1a(DLM_FNV_OFFSET, source, strlen(source) + 1); /* with its NUL */
    h = dlm_fnv1a(h, key, strlen(key));
    unsigned r = (unsigned)(h % 100);
    return r < 90 ? DLM_SPLIT_TRAIN : r < 95 ? DLM_SPLIT_VAL : DLM_SPLIT_TEST;
}

static void shard_path(const dlm_corpus_writer *w, int split, char *out, size_t len)
{
    snprintf(out, len, "%s/%s_%s.bin", w->out_dir, w->name, dlm_split_name(split));
}

dlm_status dlm_corpus_writer_create(const char *out_dir, const char *name, dlm_corpus_writer **out)
{
    *out = NULL;
    DLM_CHECK(strlen(out_dir) < 2048 && strlen(name) < 256 && name[0], DLM_ERR_ARG,
              "bad output folder or corpus name");
    DLM_CALL(dlm_mkdir_p(out_dir));
    dlm_corpus_writer *w = calloc(1, sizeof *w);
    DLM_CHECK(w != NULL, DLM_ERR_NOMEM, "allocating the corpus writer");
    snprintf(w->out_dir, sizeof w->out_dir, "%s", out_dir);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->seen_cap = 1 << 16;
    w->seen_hash = calloc(w->seen_cap, sizeof *w->seen_hash);
    w->seen_len = calloc(w->seen_cap, sizeof *w->seen_len);
    dlm_status st = w->seen_hash && w->seen_len ? DLM_OK : DLM_ERR_NOMEM;
    for (int s = 0; s < DLM_SPLITS && st == DLM_OK; s++) {
        char path[4096];
        shard_path(w, s, path, sizeof path);
        st = dlm_shard_writer_open(path, 2, &w->shards[s]);
    }
    if (st != DLM_OK) {
        dlm_corpus_writer_destroy(&w);
        DLM_CALL(st);
    }
    w->t_start = w->t_progress = dlm_now();
    *out = w;
    return DLM_OK;
}

/* Returns 1 if (h, len) was seen before, else records it. */
static int seen_before(dlm_corpus_writer *w, uint64_t h, size_t len)
{
    if (2 * (w->seen_n + 1) > w->seen_cap) {
        size_t cap = 2 * w->seen_cap;
        uint64_t *nh = calloc(cap, sizeof *nh);
        size_t *nl = calloc(cap, sizeof *nl);
        if (nh && nl) {
            for (size_t i = 0; i < w->seen_cap; i++) {
                if (!w->seen_len[i]) continue;
                size_t j = w->seen_hash[i] & (cap - 1);
                while (nl[j]) j = (j + 1) & (cap - 1);
                nh[j] = w->seen_hash[i], nl[j] = w->seen_len[i];
            }
            free(w->seen_hash), free(w->seen_len);
            w->seen_hash = nh, w->seen_len = nl, w->seen_cap = cap;
        } else {
            free(nh), free(nl); /* keep the old table: it is still at most full */
        }
    }
    size_t j = h & (w->seen_cap - 1);
    while (w->seen_len[j]) {
        if (w->seen_hash[j] == h && w->seen_len[j] == len) return 1;
        j = (j + 1) & (w->seen_cap - 1);
    }
    w->seen_hash[j] = h, w->seen_len[j] = len;
    w->seen_n++;
    return 0;
}

static int source_index(dlm_corpus_writer *w, const char *source)
{
    for (int i = 0; i < w->n_sources; i++)
        if (!strcmp(w->sources[i].name, source)) return i;
    if (w->n_sources == MAX_SOURCES) return -1;
    int i = w->n_sources++;
    snprintf(w->sources[i].name, sizeof w->sources[i].name, "%s", source);
    return i;
}

dlm_status dlm_corpus_writer_add(void *ctx, const char *source, const char *key, const char *text,
                                 size_t len)
{
    dlm_corpus_writer *w = ctx;
    int si = source_index(w, source);
    DLM_CHECK(si >= 0, DLM_ERR_ARG, "more than %d sources in one corpus", MAX_SOURCES);
    w->bytes_in += (int64_t)len;
    if (len == 0) return DLM_OK;
    /* exact duplicates: FNV-1a and length (a 64-bit collision is not a concern here) */
    if (seen_before(w, dlm_fnv1a(DLM_FNV_OFFSET, text, len) | 1, len)) {
        w->duplicates++;
        return DLM_OK;
    }
    int split = dlm_split_of(source, key);
    if (len + 1 > w->tok_cap) {
        size_t cap = 2 * (len + 1);
        int32_t *t = realloc(w->tok, cap * sizeof *t);
        DLM_CHECK(t != NULL, DLM_ERR_NOMEM, "a document of %zu bytes", len);
        w->tok = t, w->tok_cap = cap;
    }
    w->tok[0] = 256; /* the separator opens every document */
    for (size_t i = 0; i < len; i++) w->tok[i + 1] = (unsigned char)text[i];
    DLM_CALL(dlm_shard_writer_append(&w->shards[split], w->tok, (int64_t)len + 1));
    w->docs[split]++;
    w->src_docs[si][split]++;
    w->src_bytes[si][split] += (int64_t)len;
    double now = dlm_now();
    if (now - w->t_progress > 5.0) {
        int64_t docs = w->docs[0] + w->docs[1] + w->docs[2];
        DLM_INFO("prepare: %lld documents, %.1f MB read, %lld duplicates dropped, %.0f s",
                 (long long)docs, w->bytes_in / 1e6, (long long)w->duplicates, now - w->t_start);
        w->t_progress = now;
    }
    return DLM_OK;
}

dlm_status dlm_corpus_writer_describe(dlm_corpus_writer *w, const dlm_meta_source *src)
{
    int si = source_index(w, src->name);
    DLM_CHECK(si >= 0, DLM_ERR_ARG, "more than %d sources in one corpus", MAX_SOURCES);
    dlm_meta_source *d = &w->sources[si];
    snprintf(d->package, sizeof d->package, "%s", src->package);
    snprintf(d->version, sizeof d->version, "%s", src->version);
    snprintf(d->licence, sizeof d->licence, "%s", src->licence);
    w->described[si] = 1;
    return DLM_OK;
}

dlm_status dlm_corpus_writer_finish(dlm_corpus_writer *w)
{
    for (int s = 0; s < DLM_SPLITS; s++) {
        dlm_shard_writer *sw = &w->shards[s];
        int64_t n = sw->n_tokens;
        uint64_t hash = sw->content_hash;
        char path[4096], meta_path[4200];
        snprintf(path, sizeof path, "%s", sw->path);
        DLM_CALL(dlm_shard_writer_close(sw));
        dlm_shard_meta m;
        dlm_meta_defaults_bytes(&m);
        snprintf(m.split, sizeof m.split, "%s", dlm_split_name(s));
        m.n_tokens = n;
        m.content_hash = hash;
        m.documents = w->docs[s];
        m.n_sources = w->n_sources;
        for (int i = 0; i < w->n_sources; i++) {
            m.sources[i] = w->sources[i];
            if (!w->described[i]) snprintf(m.sources[i].package, sizeof m.sources[i].package, "-");
            m.sources[i].documents = w->src_docs[i][s];
            m.sources[i].bytes = w->src_bytes[i][s];
        }
        dlm_meta_path(path, meta_path, sizeof meta_path);
        DLM_CALL(dlm_meta_write(meta_path, &m));
        DLM_INFO("prepare: %s: %lld documents, %lld tokens", path, (long long)w->docs[s],
                 (long long)n);
    }
    DLM_INFO("prepare: %lld exact duplicates dropped, %.1f MB read in %.0f s",
             (long long)w->duplicates, w->bytes_in / 1e6, dlm_now() - w->t_start);
    return DLM_OK;
}

void dlm_corpus_writer_destroy(dlm_corpus_writer **pw)
{
    dlm_corpus_writer *w = *pw;
    if (!w) return;
    for (int s = 0; s < DLM_SPLITS; s++)
        if (w->shards[s].f) dlm_shard_writer_abort(&w->shards[s]);
    free(w->seen_hash);
    free(w->seen_len);
    free(w->tok);
    free(w);
    *pw = NULL;
}

/* ---- user text ---- */

#define TEXT_SPLIT_BYTES (1 << 20)
#define TEXT_DOC_BYTES (64 << 10)

static dlm_status add_text_file(dlm_corpus_writer *w, const char *path, const char *key)
{
    char *buf;
    size_t len;
    DLM_CALL(dlm_read_file(path, &buf, &len));
    dlm_status st = DLM_OK;
    if (len <= TEXT_SPLIT_BYTES) {
        st = dlm_corpus_writer_add(w, "text", key, buf, len);
    } else { /* cut at a blank line after ~64 KB, else at a newline, else hard */
        size_t start = 0;
        for (int part = 0; start < len && st == DLM_OK; part++) {
            size_t end = start + TEXT_DOC_BYTES < len ? start + TEXT_DOC_BYTES : len;
            if (end < len) {
                char *cut = memmem(buf + end, len - end, "\n\n", 2);
                if (!cut || (size_t)(cut - buf) > end + TEXT_DOC_BYTES) cut = memchr(buf + end, '\n', len - end);
                end = cut && (size_t)(cut - buf) <= end + TEXT_DOC_BYTES ? (size_t)(cut - buf) + 1 : end;
            }
            char part_key[4200];
            snprintf(part_key, sizeof part_key, "%s#%d", key, part);
            st = dlm_corpus_writer_add(w, "text", part_key, buf + start, end - start);
            start = end;
        }
    }
    free(buf);
    return st;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static dlm_status walk(dlm_corpus_writer *w, const char *path, const char *key, int depth)
{
    struct stat st;
    DLM_CHECK(stat(path, &st) == 0, DLM_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) return add_text_file(w, path, key);
    DLM_CHECK(S_ISDIR(st.st_mode), DLM_ERR_ARG, "%s is neither a file nor a folder", path);
    DLM_CHECK(depth < 64, DLM_ERR_ARG, "%s: folders nested too deeply (a link loop?)", path);
    DIR *d = opendir(path);
    DLM_CHECK(d != NULL, DLM_ERR_IO, "cannot open folder %s: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    dlm_status s = DLM_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .. and hidden files */
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                s = DLM_ERR_NOMEM;
                break;
            }
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            s = DLM_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (s == DLM_OK) qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && s == DLM_OK; i++) {
        char child[4096], child_key[4096];
        int a = snprintf(child, sizeof child, "%s/%s", path, names[i]);
        int b = snprintf(child_key, sizeof child_key, "%s%s%s", key, key[0] ? "/" : "", names[i]);
        if (a < 0 || b < 0 || (size_t)a >= sizeof child || (size_t)b >= sizeof child_key)
            s = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__, "path too long: %s/%s",
                               path, names[i]);
        else
            s = walk(w, child, child_key, depth + 1);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    DLM_CHECK(s != DLM_ERR_NOMEM, s, "listing %s", path);
    DLM_CALL(s);
    return DLM_OK;
}

dlm_status dlm_corpus_add_text_path(dlm_corpus_writer *w, const char *path)
{
    /* a file's key is its name; a folder's files are keyed by their path below it */
    struct stat st;
    DLM_CHECK(stat(path, &st) == 0, DLM_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return walk(w, path, "", 0);
    const char *base = strrchr(path, '/');
    return walk(w, path, base ? base + 1 : path, 0);
}
