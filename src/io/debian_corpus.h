/* The default text corpus: prose taken from Debian packages (three dictd
 * dictionaries, the fortune cookies, and the Linux, Python and Perl manuals),
 * fetched with `apt-get download`, unpacked with `dpkg-deb -x` into a cache
 * folder (nothing is installed) and stripped of markup into plain documents.
 *
 *     dlm_corpus_source src[DLM_CORPUS_MAX_SOURCES];
 *     int n;
 *     dlm_corpus_default_sources(src, &n);
 *     DLM_CALL(dlm_corpus_fetch(cache_dir, src, n));  // downloads once, then reuses the cache
 *     DLM_CALL(dlm_corpus_extract(cache_dir, src, n, my_sink, my_ctx));
 *     // my_sink saw every document; src[i].documents and src[i].bytes say how many
 *
 * A document handed to a sink is valid UTF-8 (bytes that are not UTF-8 are read
 * as Windows-1252), without carriage returns or control characters other than
 * tab and newline, without trailing blanks on a line, with at most one empty
 * line in a row, with no leading empty lines and no final newline, and at
 * least DLM_CORPUS_MIN_DOC_BYTES long (shorter ones are dropped). */
#ifndef DLM_DEBIAN_CORPUS_H
#define DLM_DEBIAN_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "io/meta.h"

#define DLM_CORPUS_MAX_SOURCES 16
/* Documents shorter than this after normalising are dropped: they are empty
 * fortunes, bare cross-references ("See {boot}.") and the like. */
#define DLM_CORPUS_MIN_DOC_BYTES 20

typedef struct {
    char name[32];     /* source name: "gcide", "fortunes", "jargon", "devil", "linux-doc",
                          "python-doc", "perl-doc"; selects the extractor */
    char package[64];  /* Debian package name */
    char version[64];  /* exact version unpacked (the .deb's Version field); set by fetch */
    char licence[96];  /* short licence name, from the package's copyright file */
    int64_t documents; /* documents emitted; set by extract */
    int64_t bytes;     /* text bytes emitted; set by extract */
} dlm_corpus_source;

/* Receives one document: the source name, a key that is stable and unique
 * within the source, and len bytes of UTF-8 text (not NUL-terminated). The
 * three pointers are valid only during the call: copy what you keep. A return
 * other than DLM_OK stops the extraction, which returns that status. */
typedef dlm_status (*dlm_doc_sink)(void *ctx, const char *source, const char *key,
                                   const char *text, size_t len);

/* The default sources in their fixed order; out must hold DLM_CORPUS_MAX_SOURCES.
 * n_out gets the count (7). Versions are empty until dlm_corpus_fetch. */
void dlm_corpus_default_sources(dlm_corpus_source *out, int *n_out);

/* Makes sure each source's package is downloaded (cache_dir/debs/, by running
 * `apt-get download` there) and unpacked under cache_dir/<package>_<version>/
 * (a ':' in the version is written "%3a", as apt names .deb files), and fills
 * version. A finished unpack holds a marker file and is reused; an unfinished
 * one is removed and redone; a .deb of the expected size is not downloaded
 * again. When apt-get is missing or does not know the package, the newest
 * finished unpack of that package in the cache is used, with a warning. Logs
 * one line per package. Run it from one process only (one rank): two
 * processes unpacking into the same folder would undo each other. A first
 * fetch downloads ~74 MB and leaves ~400 MB in the cache. */
dlm_status dlm_corpus_fetch(const char *cache_dir, dlm_corpus_source *sources, int n);

/* Extracts the documents of every source (fetched before: version set) in a
 * fixed order (directory listings sorted bytewise), calling sink for each, and
 * sets documents and bytes. Logs one line per source. */
dlm_status dlm_corpus_extract(const char *cache_dir, dlm_corpus_source *sources, int n,
                              dlm_doc_sink sink, void *ctx);

/* ---- the extractors, each on one file's text (exposed for the tests) ---- */

/* fortune(6) cookie file: entries separated by lines holding only "%";
 * overstrikes (x BACKSPACE y) keep y, except an underline "_" keeps the
 * letter. Key: "<key_prefix>:<n>", n counting every entry from 0, empty ones too. */
dlm_status dlm_extract_fortunes(const char *text, size_t len, const char *source,
                                const char *key_prefix, dlm_doc_sink sink, void *ctx);

/* dictd dictionary: index_text holds lines "headword TAB offset TAB length"
 * (offset and length in dictd's base64), dict_text the uncompressed .dict.
 * One document per distinct entry, in .dict order, headwords beginning
 * "00-database"/"00database" (metadata) skipped. Key: "<headword>@<offset>"
 * with the first headword in index order that points at the entry. source
 * selects the markup cleaner: "gcide" (pronunciations, {xrefs}, [entities],
 * source tags), "jargon" (pronunciations, {xrefs}), "devil" (_italics_);
 * any other source gets only {xref} removal and de-indenting. */
dlm_status dlm_extract_dict(const char *index_text, size_t index_len, const char *dict_text,
                            size_t dict_len, const char *source, dlm_doc_sink sink, void *ctx);

/* reStructuredText (one document per file, under key): keeps titles,
 * paragraphs, lists and the text of admonitions and of description directives
 * (function, class, ...); drops other directives, comments, adornment lines,
 * literal blocks after "::", doctest blocks and tables; inline markup becomes
 * its text. */
dlm_status dlm_extract_rst(const char *text, size_t len, const char *source, const char *key,
                           dlm_doc_sink sink, void *ctx);

/* POD (one document per file, under key): headings and items become lines,
 * verbatim paragraphs and =begin/=end, =for blocks are dropped, formatting
 * codes become their text (L<text|target> its text, E<gt> ">", X<> nothing). */
dlm_status dlm_extract_pod(const char *text, size_t len, const char *source, const char *key,
                           dlm_doc_sink sink, void *ctx);

/* dictd's base64 number (alphabet A-Z a-z 0-9 + /, most significant digit
 * first, no padding) of len characters; DLM_ERR_FORMAT if empty, invalid or
 * beyond 2^63. */
dlm_status dlm_dictd_b64_decode(const char *s, size_t len, uint64_t *value);

/* The source as the shard metadata describes it (name, package, version, licence). */
void dlm_corpus_source_meta(const dlm_corpus_source *src, dlm_meta_source *out);

#endif
