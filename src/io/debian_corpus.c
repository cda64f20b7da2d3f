/* dlm's default corpus from Debian packages, the driver: the default sources,
 * reading an unpacked package's files (gzip -dc for .gz and .dz files, since
 * zlib is not a dependency) in a fixed order and handing each to its
 * extractor. Fetching is corpus_fetch.c, the extractors corpus_fortunes.c,
 * corpus_dict.c, corpus_rst.c and corpus_pod.c, the normaliser corpus_text.c. */
#define _POSIX_C_SOURCE 200809L
#include "io/debian_corpus.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/corpus_fetch.h"
#include "io/corpus_run.h"
#include "io/corpus_tbuf.h"

/* ------------------------------------------------------------------------ */
/* Sources                                                                  */

enum { SRC_DICT, SRC_FORTUNES, SRC_LINUX_DOC, SRC_PYTHON_DOC, SRC_PERL_DOC };

static const struct {
    const char *name, *package, *licence;
    int kind;
    const char *dict; /* dictd database name for SRC_DICT */
} default_sources[] = {
    {"gcide", "dict-gcide", "GPL-2+", SRC_DICT, "gcide"},
    {"fortunes", "fortunes", "BSD-3-Clause", SRC_FORTUNES, NULL},
    {"jargon", "dict-jargon", "public-domain", SRC_DICT, "jargon"},
    {"devil", "dict-devil", "public-domain", SRC_DICT, "devil"},
    {"linux-doc", "linux-doc-6.1", "GPL-2", SRC_LINUX_DOC, NULL},
    {"python-doc", "python3.11-doc", "PSF-2.0", SRC_PYTHON_DOC, NULL},
    {"perl-doc", "perl-doc", "GPL-1+ or Artistic", SRC_PERL_DOC, NULL},
};
#define N_DEFAULT_SOURCES ((int)(sizeof default_sources / sizeof default_sources[0]))

void dlm_corpus_default_sources(dlm_corpus_source *out, int *n_out)
{
    for (int i = 0; i < N_DEFAULT_SOURCES; i++) {
        memset(&out[i], 0, sizeof out[i]);
        snprintf(out[i].name, sizeof out[i].name, "%s", default_sources[i].name);
        snprintf(out[i].package, sizeof out[i].package, "%s", default_sources[i].package);
        snprintf(out[i].licence, sizeof out[i].licence, "%s", default_sources[i].licence);
    }
    *n_out = N_DEFAULT_SOURCES;
}

static int source_index(const char *name)
{
    for (int i = 0; i < N_DEFAULT_SOURCES; i++)
        if (strcmp(default_sources[i].name, name) == 0) return i;
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Reading an unpacked package                                              */

/* A whole file, through `gzip -dc` when it ends in .gz or .dz (dictzip is gzip). */
static dlm_status read_text(const char *path, tbuf *out)
{
    if (!has_suffix(path, ".gz") && !has_suffix(path, ".dz")) {
        char *data;
        size_t len;
        DLM_CALL(dlm_read_file(path, &data, &len));
        tb_take(out, data, len);
        return DLM_OK;
    }
    tb_clear(out);
    tbuf err = {0};
    run_result rr;
    const char *argv[] = {"gzip", "-dc", "--", path, NULL};
    dlm_status st = dlm_corpus_run_capture(argv, out, &err, &rr);
    char tail[300];
    dlm_corpus_output_tail(&err, tail, sizeof tail);
    tb_free(&err);
    DLM_CALL(st);
    DLM_CHECK(rr.started, DLM_ERR_IO, "cannot run gzip to read %s: %s (install the Debian package 'gzip')",
              path, strerror(rr.err_no));
    DLM_CHECK(rr.status == 0, DLM_ERR_IO,
              "`gzip -dc %s` failed with status %d: %s; the file may be damaged: delete the "
              "package's folder in the cache and fetch again",
              path, rr.status, tail);
    return DLM_OK;
}

/* Decides whether to enter a directory / take a file; rel is relative to the walk's root. */
typedef int (*walk_filter)(const char *rel, const char *name, int is_dir);

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files under root/rel (symbolic links are not followed), depth
 * first with each directory's names sorted bytewise, appended to list as
 * NUL-terminated relative paths. */
static dlm_status walk_sorted(const char *root, const char *rel, walk_filter keep, tbuf *list,
                              size_t *count)
{
    dlm_status st = DLM_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    DLM_CHECK(d, DLM_ERR_IO, "cannot list %s: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            DLM_CHECK_GOTO(st, nn, DLM_ERR_NOMEM, done, "out of memory listing %s", path);
            names = nn;
        }
        names[n] = malloc(strlen(de->d_name) + 1);
        DLM_CHECK_GOTO(st, names[n], DLM_ERR_NOMEM, done, "out of memory listing %s", path);
        strcpy(names[n++], de->d_name);
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char sub[4096], full[4096];
        int l1 = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        int l2 = snprintf(full, sizeof full, "%s/%s", path, names[i]);
        DLM_CHECK_GOTO(st, l1 < (int)sizeof sub && l2 < (int)sizeof full, DLM_ERR_ARG, done,
                   "path too long under %s: %s", path, names[i]);
        struct stat sb;
        DLM_CHECK_GOTO(st, lstat(full, &sb) == 0, DLM_ERR_IO, done, "cannot stat %s: %s", full,
                   strerror(errno));
        if (S_ISDIR(sb.st_mode)) {
            if (keep(sub, names[i], 1))
                DLM_CALL_GOTO(st, walk_sorted(root, sub, keep, list, count), done);
        } else if (S_ISREG(sb.st_mode) && keep(sub, names[i], 0)) {
            tb_add(list, sub, strlen(sub) + 1);
            (*count)++;
        }
    }
    DLM_CHECK_GOTO(st, !list->failed, DLM_ERR_NOMEM, done, "out of memory listing %s", path);
done:
    closedir(d);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Extraction                                                               */


typedef struct {
    dlm_doc_sink sink;
    void *ctx;
    dlm_corpus_source *src;
} counting;

static dlm_status counting_sink(void *c, const char *source, const char *key, const char *text,
                                size_t len)
{
    counting *k = c;
    DLM_CALL(k->sink(k->ctx, source, key, text, len));
    k->src->documents++;
    k->src->bytes += (int64_t)len;
    return DLM_OK;
}

static int keep_fortune(const char *rel, const char *name, int is_dir)
{
    (void)rel;
    if (is_dir) return 0; /* off/ (offensive fortunes) lives in another package anyway */
    /* .dat are strfile indexes, .u8 links; ascii-art holds pictures, not prose */
    return !has_suffix(name, ".dat") && !has_suffix(name, ".u8") && strcmp(name, "ascii-art") != 0;
}

static int keep_linux(const char *rel, const char *name, int is_dir)
{
    if (is_dir)
        return strcmp(rel, "translations") != 0 && strcmp(rel, "devicetree") != 0 &&
               strcmp(rel, "ABI") != 0;
    return has_suffix(name, ".rst") || has_suffix(name, ".rst.gz");
}

static int keep_python(const char *rel, const char *name, int is_dir)
{
    (void)rel;
    return is_dir || has_suffix(name, ".rst.txt") || has_suffix(name, ".rst.txt.gz");
}

static int keep_pod(const char *rel, const char *name, int is_dir)
{
    (void)rel;
    if (is_dir) return 1;
    /* perltoc is a generated table of contents of the other files */
    return (has_suffix(name, ".pod") || has_suffix(name, ".pod.gz")) && strcmp(name, "perltoc.pod") != 0;
}

/* The uncompressed size a gzip file records in its last 4 bytes (ISIZE,
 * exact below 4 GiB for a single-member file), or NONE. */
static size_t gzip_isize(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NONE;
    unsigned char b[4];
    size_t r = 0;
    if (fseek(f, -4, SEEK_END) == 0) r = fread(b, 1, 4, f);
    fclose(f);
    if (r != 4) return NONE;
    return (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
}

/* Decompresses paths[0..n) with one gzip process (one process per file costs
 * ~5 ms, more than the stripping) and splits the output by the files' ISIZE
 * fields. *split_ok is 0 when they do not add up (multi-member files): then
 * the caller reads those files one by one. */
static dlm_status gunzip_batch(const char *const *paths, size_t n, tbuf *out, size_t *lens,
                               int *split_ok)
{
    *split_ok = 0;
    tb_clear(out);
    const char **argv = malloc((n + 4) * sizeof *argv);
    DLM_CHECK(argv, DLM_ERR_NOMEM, "out of memory starting gzip on %zu files", n);
    argv[0] = "gzip", argv[1] = "-dc", argv[2] = "--";
    for (size_t i = 0; i < n; i++) argv[3 + i] = paths[i];
    argv[3 + n] = NULL;
    tbuf err = {0};
    run_result rr;
    dlm_status st = dlm_corpus_run_capture(argv, out, &err, &rr);
    char tail[300];
    dlm_corpus_output_tail(&err, tail, sizeof tail);
    tb_free(&err);
    free(argv);
    DLM_CALL(st);
    DLM_CHECK(rr.started, DLM_ERR_IO, "cannot run gzip to read %s: %s (install the Debian package 'gzip')",
              paths[0], strerror(rr.err_no));
    DLM_CHECK(rr.status == 0, DLM_ERR_IO,
              "`gzip -dc` on %zu files from %s failed with status %d: %s; a file may be damaged: "
              "delete the package's folder in the cache and fetch again",
              n, paths[0], rr.status, tail);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        lens[i] = gzip_isize(paths[i]);
        if (lens[i] == NONE) return DLM_OK;
        total += lens[i];
    }
    *split_ok = total == out->len;
    return DLM_OK;
}

/* Every file of one tree through one extractor, keys relative to the package root without ".gz". */
static dlm_status extract_tree(const char *pkg_dir, const char *root_rel, walk_filter keep,
                               int kind, dlm_corpus_source *src, dlm_doc_sink sink, void *ctx)
{
    enum { BATCH = 256 };
    dlm_status st = DLM_OK;
    char root[4096];
    snprintf(root, sizeof root, "%s/%s", pkg_dir, root_rel);
    tbuf list = {0}, text = {0}, key = {0}, gz = {0}, paths = {0};
    size_t count = 0, lens[BATCH];
    const char *gz_paths[BATCH];
    DLM_CALL_GOTO(st, walk_sorted(root, "", keep, &list, &count), done);
    DLM_CHECK_GOTO(st, count > 0, DLM_ERR_FORMAT, done,
               "source %s: no documents found under %s; the package layout changed?", src->name,
               root);
    const char *rel = tb_str(&list);
    for (size_t b0 = 0; b0 < count; b0 += BATCH) {
        size_t nb = count - b0 < BATCH ? count - b0 : BATCH, ngz = 0;
        /* full paths of the batch, NUL-separated; the .gz ones decompressed together */
        tb_clear(&paths);
        const char *r = rel;
        for (size_t k = 0; k < nb; k++, r += strlen(r) + 1) {
            tb_adds(&paths, root);
            tb_addc(&paths, '/');
            tb_add(&paths, r, strlen(r) + 1);
        }
        DLM_CHECK_GOTO(st, !paths.failed, DLM_ERR_NOMEM, done, "out of memory");
        const char *pp = paths.p;
        for (size_t k = 0; k < nb; k++, pp += strlen(pp) + 1)
            if (has_suffix(pp, ".gz")) gz_paths[ngz++] = pp;
        int split_ok = 0;
        if (ngz) DLM_CALL_GOTO(st, gunzip_batch(gz_paths, ngz, &gz, lens, &split_ok), done);
        size_t gi = 0, goff = 0;
        pp = paths.p;
        for (size_t k = 0; k < nb; k++, pp += strlen(pp) + 1, rel += strlen(rel) + 1) {
            const char *t;
            size_t tlen;
            if (has_suffix(pp, ".gz") && split_ok) {
                t = tb_str(&gz) + goff;
                tlen = lens[gi];
                goff += lens[gi++];
            } else {
                DLM_CALL_GOTO(st, read_text(pp, &text), done);
                t = tb_str(&text);
                tlen = text.len;
            }
            tb_clear(&key);
            tb_adds(&key, root_rel);
            tb_addc(&key, '/');
            tb_adds(&key, rel);
            if (has_suffix(tb_str(&key), ".gz")) key.len -= 3, key.p[key.len] = '\0';
            DLM_CHECK_GOTO(st, !key.failed, DLM_ERR_NOMEM, done, "out of memory");
            if (kind == SRC_FORTUNES)
                DLM_CALL_GOTO(st, dlm_extract_fortunes(t, tlen, src->name, key.p, sink, ctx), done);
            else if (kind == SRC_PERL_DOC)
                DLM_CALL_GOTO(st, dlm_extract_pod(t, tlen, src->name, key.p, sink, ctx), done);
            else
                DLM_CALL_GOTO(st, dlm_extract_rst(t, tlen, src->name, key.p, sink, ctx), done);
        }
    }
done:
    tb_free(&list);
    tb_free(&text);
    tb_free(&key);
    tb_free(&gz);
    tb_free(&paths);
    return st;
}

static dlm_status extract_dict_source(const char *pkg_dir, const char *db, dlm_corpus_source *src,
                                      dlm_doc_sink sink, void *ctx)
{
    dlm_status st = DLM_OK;
    char path[4200];
    tbuf index = {0}, dict = {0};
    snprintf(path, sizeof path, "%s/usr/share/dictd/%s.index", pkg_dir, db);
    DLM_CALL_GOTO(st, read_text(path, &index), done);
    snprintf(path, sizeof path, "%s/usr/share/dictd/%s.dict.dz", pkg_dir, db);
    DLM_CALL_GOTO(st, read_text(path, &dict), done);
    DLM_CALL_GOTO(st, dlm_extract_dict(tb_str(&index), index.len, tb_str(&dict), dict.len,
                                       src->name, sink, ctx),
                  done);
done:
    tb_free(&index);
    tb_free(&dict);
    return st;
}

dlm_status dlm_corpus_extract(const char *cache_dir, dlm_corpus_source *sources, int n,
                              dlm_doc_sink sink, void *ctx)
{
    DLM_CHECK(cache_dir && sources && sink && n >= 0, DLM_ERR_ARG,
              "dlm_corpus_extract needs a cache folder, sources and a sink");
    for (int i = 0; i < n; i++) {
        dlm_corpus_source *src = &sources[i];
        int d = source_index(src->name);
        DLM_CHECK(d >= 0, DLM_ERR_ARG,
                  "unknown corpus source '%s' (expected gcide, fortunes, jargon, devil, "
                  "linux-doc, python-doc or perl-doc)",
                  src->name);
        DLM_CHECK(src->version[0], DLM_ERR_STATE,
                  "source %s has no version: run dlm_corpus_fetch before dlm_corpus_extract",
                  src->name);
        char dir[4096], marker[4200], rel[512];
        struct stat sb;
        DLM_CALL(dlm_corpus_unpack_dir(cache_dir, src->package, src->version, dir, sizeof dir));
        snprintf(marker, sizeof marker, "%s/" DLM_CORPUS_MARKER, dir);
        DLM_CHECK(stat(marker, &sb) == 0, DLM_ERR_STATE,
                  "source %s: %s is not a finished unpack of %s %s; run dlm_corpus_fetch first",
                  src->name, dir, src->package, src->version);
        double t0 = dlm_now();
        src->documents = 0;
        src->bytes = 0;
        counting c = {sink, ctx, src};
        switch (default_sources[d].kind) {
        case SRC_DICT:
            DLM_CALL(extract_dict_source(dir, default_sources[d].dict, src, counting_sink, &c));
            break;
        case SRC_FORTUNES:
            DLM_CALL(extract_tree(dir, "usr/share/games/fortunes", keep_fortune, SRC_FORTUNES, src,
                                  counting_sink, &c));
            break;
        case SRC_LINUX_DOC:
            snprintf(rel, sizeof rel, "usr/share/doc/%s/Documentation", src->package);
            DLM_CALL(extract_tree(dir, rel, keep_linux, SRC_LINUX_DOC, src, counting_sink, &c));
            break;
        case SRC_PYTHON_DOC: { /* python3.11-doc keeps its pages in usr/share/doc/python3.11 */
            size_t pl = strlen(src->package);
            if (has_suffix(src->package, "-doc")) pl -= 4;
            snprintf(rel, sizeof rel, "usr/share/doc/%.*s/html/_sources", (int)pl, src->package);
            DLM_CALL(extract_tree(dir, rel, keep_python, SRC_PYTHON_DOC, src, counting_sink, &c));
            break;
        }
        case SRC_PERL_DOC:
            DLM_CALL(extract_tree(dir, "usr/share/perl", keep_pod, SRC_PERL_DOC, src, counting_sink,
                                  &c));
            break;
        }
        DLM_INFO("corpus: %-10s %8lld documents %8.2f MB (%.1f s)", src->name,
                 (long long)src->documents, (double)src->bytes / 1e6, dlm_now() - t0);
    }
    return DLM_OK;
}

static void copy_field(char *dst, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void dlm_corpus_source_meta(const dlm_corpus_source *src, dlm_meta_source *out)
{
    memset(out, 0, sizeof *out);
    copy_field(out->name, sizeof out->name, src->name);
    copy_field(out->package, sizeof out->package, src->package);
    copy_field(out->version, sizeof out->version, src->version);
    copy_field(out->licence, sizeof out->licence, src->licence);
}
