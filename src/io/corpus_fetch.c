/* Fetching the corpus's Debian packages into the cache: which .deb apt would
 * download (`apt-get download --print-uris`), the download, the exact version
 * (`dpkg-deb -f`) and the unpack (`dpkg-deb -x`), each skipped when the cache
 * already holds it. */
#define _POSIX_C_SOURCE 200809L
#include "io/corpus_fetch.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/corpus_run.h"
#include "io/corpus_tbuf.h"
#include "io/debian_corpus.h"

dlm_status dlm_corpus_unpack_dir(const char *cache_dir, const char *package, const char *version,
                                 char *out, size_t cap)
{
    size_t k = (size_t)snprintf(out, cap, "%s/%s_", cache_dir, package);
    for (const char *v = version; *v && k + 4 < cap; v++) {
        if (*v == ':') {
            memcpy(out + k, "%3a", 3);
            k += 3;
        } else {
            out[k++] = *v;
        }
    }
    DLM_CHECK(k + 4 < cap, DLM_ERR_ARG, "cache path too long for %s %s", package, version);
    out[k] = '\0';
    return DLM_OK;
}

static int package_name_ok(const char *p)
{
    if (!isalnum((unsigned char)p[0])) return 0;
    for (; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || strchr(".+-", *p)))
            return 0;
    return 1;
}

/* The newest finished unpack of package in the cache (for when apt cannot
 * answer); version[0] stays '\0' when there is none. */
static void find_unpacked(const char *cache_dir, const char *package, char *version, size_t cap)
{
    version[0] = '\0';
    DIR *d = opendir(cache_dir);
    if (!d) return;
    size_t pl = strlen(package);
    time_t newest = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, package, pl) != 0 || de->d_name[pl] != '_') continue;
        char marker[4096];
        struct stat sb;
        snprintf(marker, sizeof marker, "%s/%s/" DLM_CORPUS_MARKER, cache_dir, de->d_name);
        if (stat(marker, &sb) != 0 || (version[0] && sb.st_mtime < newest)) continue;
        FILE *f = fopen(marker, "r");
        if (!f) continue;
        char v[128] = "";
        if (fgets(v, sizeof v, f)) {
            v[strcspn(v, "\r\n")] = '\0';
            if (v[0] && strlen(v) < cap) {
                strcpy(version, v);
                newest = sb.st_mtime;
            }
        }
        fclose(f);
    }
    closedir(d);
}

/* `apt-get ARGS` run inside folder dir (apt-get download writes to the current folder). */
static dlm_status run_in(const char *dir, const char *const *args, tbuf *out, run_result *rr)
{
    const char *argv[DLM_CORPUS_MAX_SOURCES + 10] = {
        "sh", "-c", "cd -- \"$1\" && shift && exec \"$@\"", "sh", dir};
    int k = 5;
    for (; *args && k < DLM_CORPUS_MAX_SOURCES + 9; args++) argv[k++] = *args;
    argv[k] = NULL;
    DLM_CALL(dlm_corpus_run_capture(argv, out, out, rr));
    return DLM_OK;
}

/* From `apt-get download --print-uris` output ("'URL' FILE SIZE HASH" lines),
 * the .deb file of package and its size; filename[0] stays '\0' if absent. */
static void parse_uris(const char *text, const char *package, char *filename, size_t cap,
                       unsigned long long *size)
{
    size_t pl = strlen(package);
    char f[512];
    unsigned long long sz;
    filename[0] = '\0';
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *q = *l == '\'' ? strchr(l + 1, '\'') : NULL;
        if (!q || sscanf(q + 1, " %511s %llu", f, &sz) != 2) continue;
        if (strncmp(f, package, pl) == 0 && f[pl] == '_' && strlen(f) < cap) {
            strcpy(filename, f);
            *size = sz;
            return;
        }
    }
}

/* One package: filename and size come from a batched --print-uris, or are
 * empty and asked for here (which also gives the precise error). */
static dlm_status fetch_one(const char *cache_dir, const char *debs, dlm_corpus_source *src,
                            const char *known_file, unsigned long long known_size)
{
    double t0 = dlm_now();
    dlm_status st = DLM_OK;
    tbuf out = {0};
    run_result rr;
    char tail[400], deb[4700], dir[4096], marker[4200], filename[512];
    unsigned long long size = known_size;
    const char *pkg = src->package; /* checked by dlm_corpus_fetch: no option, no shell character */
    snprintf(filename, sizeof filename, "%s", known_file);

    /* Which .deb apt would fetch (run outside debs/: apt prints nothing for a file already there). */
    if (!filename[0]) {
        const char *uris[] = {"apt-get", "download", "--print-uris", pkg, NULL};
        DLM_CALL_GOTO(st, run_in(cache_dir, uris, &out, &rr), done);
        parse_uris(tb_str(&out), pkg, filename, sizeof filename, &size);
    }
    if (!filename[0]) {
        dlm_corpus_output_tail(&out, tail, sizeof tail);
        char v[64];
        find_unpacked(cache_dir, pkg, v, sizeof v);
        if (v[0]) {
            DLM_WARN("corpus: apt cannot tell which %s to fetch (`apt-get download --print-uris %s` "
                     "exited %d: %s); using the unpacked %s %s already in %s",
                     pkg, pkg, rr.status, tail, pkg, v, cache_dir);
            snprintf(src->version, sizeof src->version, "%s", v);
            goto done;
        }
        DLM_CHECK_GOTO(st, rr.status != 127 && rr.started, DLM_ERR_IO, done,
                   "source %s: apt-get is not available (%s) and %s holds no unpacked %s; the "
                   "corpus is built from Debian packages: run on a Debian system with apt",
                   src->name, tail, cache_dir, pkg);
        DLM_CHECK_GOTO(st, rr.status == 0, DLM_ERR_IO, done,
                   "source %s: `apt-get download --print-uris %s` failed with status %d: %s; run "
                   "`apt-get update` (as root) so apt knows the package, and check its name",
                   src->name, pkg, rr.status, tail);
        DLM_CHECK_GOTO(st, 0, DLM_ERR_IO, done,
                   "source %s: `apt-get download --print-uris %s` named no .deb to download "
                   "(output: %s)",
                   src->name, pkg, tail);
    }
    DLM_CHECK_GOTO(st, !strchr(filename, '/'), DLM_ERR_FORMAT, done,
               "apt-get named the .deb of %s '%s', which is not a file name", pkg, filename);
    snprintf(deb, sizeof deb, "%s/%s", debs, filename);

    /* Download unless a .deb of the right size is there. */
    struct stat sb;
    int downloaded = 0;
    if (!(stat(deb, &sb) == 0 && (unsigned long long)sb.st_size == size)) {
        unlink(deb);
        tb_clear(&out);
        const char *dl[] = {"apt-get", "download", pkg, NULL};
        DLM_CALL_GOTO(st, run_in(debs, dl, &out, &rr), done);
        dlm_corpus_output_tail(&out, tail, sizeof tail);
        DLM_CHECK_GOTO(st, rr.status == 0, DLM_ERR_IO, done,
                   "source %s: `apt-get download %s` in %s failed with status %d: %s; check the "
                   "network and run `apt-get update` (as root)",
                   src->name, pkg, debs, rr.status, tail);
        DLM_CHECK_GOTO(st, stat(deb, &sb) == 0 && (unsigned long long)sb.st_size == size, DLM_ERR_IO,
                   done, "source %s: `apt-get download %s` succeeded but %s is missing or not %llu "
                   "bytes long",
                   src->name, pkg, deb, size);
        downloaded = 1;
    }

    /* The exact version, from the .deb itself. */
    tb_clear(&out);
    tbuf err = {0};
    const char *fv[] = {"dpkg-deb", "-f", deb, "Version", NULL};
    st = dlm_corpus_run_capture(fv, &out, &err, &rr);
    dlm_corpus_output_tail(&err, tail, sizeof tail);
    tb_free(&err);
    if (st != DLM_OK) goto done;
    DLM_CHECK_GOTO(st, rr.started, DLM_ERR_IO, done,
               "cannot run dpkg-deb to read %s: %s (it comes with dpkg on every Debian system)", deb,
               strerror(rr.err_no));
    DLM_CHECK_GOTO(st, rr.status == 0, DLM_ERR_FORMAT, done,
               "`dpkg-deb -f %s Version` failed with status %d: %s; delete the file and fetch again",
               deb, rr.status, tail);
    char version[64];
    size_t vl = strcspn(tb_str(&out), "\r\n");
    DLM_CHECK_GOTO(st, vl > 0 && vl < sizeof version && !memchr(out.p, '/', vl), DLM_ERR_FORMAT, done,
               "%s has no usable Version field ('%.*s')", deb, (int)(vl < 60 ? vl : 60), tb_str(&out));
    memcpy(version, out.p, vl);
    version[vl] = '\0';

    /* Unpack unless a finished unpack is there; a half-done one is redone. */
    DLM_CALL_GOTO(st, dlm_corpus_unpack_dir(cache_dir, pkg, version, dir, sizeof dir), done);
    snprintf(marker, sizeof marker, "%s/" DLM_CORPUS_MARKER, dir);
    int unpacked = 0;
    if (stat(marker, &sb) != 0) {
        if (stat(dir, &sb) == 0) {
            const char *rm[] = {"rm", "-rf", "--", dir, NULL};
            tb_clear(&out);
            DLM_CALL_GOTO(st, dlm_corpus_run_capture(rm, &out, &out, &rr), done);
            DLM_CHECK_GOTO(st, rr.started && rr.status == 0, DLM_ERR_IO, done,
                       "cannot remove the unfinished unpack %s (status %d): %s", dir, rr.status,
                       dlm_corpus_output_tail(&out, tail, sizeof tail));
        }
        DLM_CALL_GOTO(st, dlm_mkdir_p(dir), done);
        const char *x[] = {"dpkg-deb", "-x", deb, dir, NULL};
        tb_clear(&out);
        DLM_CALL_GOTO(st, dlm_corpus_run_capture(x, &out, &out, &rr), done);
        DLM_CHECK_GOTO(st, rr.started && rr.status == 0, DLM_ERR_IO, done,
                   "`dpkg-deb -x %s %s` failed with status %d: %s; check the free space in %s, "
                   "delete the .deb and fetch again",
                   deb, dir, rr.status, dlm_corpus_output_tail(&out, tail, sizeof tail), cache_dir);
        FILE *f = fopen(marker, "w");
        DLM_CHECK_GOTO(st, f, DLM_ERR_IO, done, "cannot write %s: %s", marker, strerror(errno));
        int bad = fprintf(f, "%s\n", version) < 0;
        bad |= fclose(f) != 0;
        DLM_CHECK_GOTO(st, !bad, DLM_ERR_IO, done, "cannot write %s", marker);
        unpacked = 1;
    }
    snprintf(src->version, sizeof src->version, "%s", version);
    char how[64];
    if (downloaded) snprintf(how, sizeof how, "downloaded %.1f MB, ", (double)size / 1e6);
    else how[0] = '\0';
    DLM_INFO("corpus: %-15s %-22s %s%s %s (%.1f s)", pkg, version, how,
             unpacked ? "unpacked into" : "cached in", dir, dlm_now() - t0);
done:
    tb_free(&out);
    return st;
}

dlm_status dlm_corpus_fetch(const char *cache_dir, dlm_corpus_source *sources, int n)
{
    DLM_CHECK(cache_dir && *cache_dir && sources && n >= 0 && n <= DLM_CORPUS_MAX_SOURCES,
              DLM_ERR_ARG, "dlm_corpus_fetch needs a cache folder and 0..%d sources",
              DLM_CORPUS_MAX_SOURCES);
    char debs[4096];
    DLM_CHECK(strlen(cache_dir) + 6 < sizeof debs, DLM_ERR_ARG, "cache path too long: %s", cache_dir);
    snprintf(debs, sizeof debs, "%s/debs", cache_dir);
    DLM_CALL(dlm_mkdir_p(debs));
    for (int i = 0; i < n; i++)
        DLM_CHECK(package_name_ok(sources[i].package), DLM_ERR_ARG,
                  "source %s: '%s' is not a Debian package name", sources[i].name,
                  sources[i].package);
    /* One apt-get for all packages: each run spends ~2 s loading apt's caches.
     * If it fails (apt missing, a package unknown), each package asks again
     * on its own, which says which one is the problem. */
    const char *argv[DLM_CORPUS_MAX_SOURCES + 4] = {"apt-get", "download", "--print-uris"};
    for (int i = 0; i < n; i++) argv[3 + i] = sources[i].package;
    argv[3 + n] = NULL;
    tbuf out = {0};
    run_result rr;
    dlm_status st = run_in(cache_dir, argv, &out, &rr);
    int batch_ok = st == DLM_OK && rr.started && rr.status == 0;
    for (int i = 0; i < n && st == DLM_OK; i++) {
        char file[512] = "";
        unsigned long long size = 0;
        if (batch_ok) parse_uris(tb_str(&out), sources[i].package, file, sizeof file, &size);
        st = fetch_one(cache_dir, debs, &sources[i], file, size);
    }
    tb_free(&out);
    DLM_CALL(st);
    return DLM_OK;
}
