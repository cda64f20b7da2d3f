/* Synthetic sources to shards (see synthetic_shards.h). */
#include "io/synthetic_shards.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "core/log.h"
#include "io/corpus_writer.h"
#include "io/meta.h"
#include "io/shard.h"

/* The one long stream of a synthetic source, written in order: train, val,
 * test are its consecutive segments (a Markov chain carries its last k
 * tokens from one call to the next). */
typedef struct {
    const dlm_iid_source *iid;
    const dlm_markov_source *mk;
    int64_t pos;
    int32_t prev[DLM_MARKOV_MAX_ORDER];
} synth_stream;

static dlm_status stream_next(synth_stream *z, int64_t m, int32_t *buf)
{
    if (z->mk) {
        int k = z->mk->order;
        DLM_CALL(dlm_markov_generate(z->mk, z->pos, m, z->pos ? z->prev : NULL, buf));
        /* keep the last min(pos + m, k) tokens as the next call's context */
        int keep = z->pos + m < k ? (int)(z->pos + m) : k;
        int32_t ctx[DLM_MARKOV_MAX_ORDER];
        for (int i = 0; i < keep; i++) {
            int64_t j = m - keep + i; /* index into buf, or into the old context if negative */
            ctx[i] = j >= 0 ? buf[j] : z->prev[(z->pos < k ? z->pos : k) + j];
        }
        memcpy(z->prev, ctx, (size_t)keep * sizeof *ctx);
    } else {
        for (int64_t i = 0; i < m; i++) /* one i.i.d. draw per position */
            dlm_iid_fill(z->iid, (uint64_t)(z->pos + i), 1, buf + i);
    }
    z->pos += m;
    return DLM_OK;
}

static dlm_status write_split(const char *out_dir, const char *name, int split, synth_stream *z,
                              const dlm_source_info *info, int64_t n, int T)
{
    char path[4096], meta_path[4200];
    int len = snprintf(path, sizeof path, "%s/%s_%s.bin", out_dir, name, dlm_split_name(split));
    DLM_CHECK(len > 0 && (size_t)len < sizeof path, DLM_ERR_ARG, "output path too long");
    dlm_shard_writer w;
    DLM_CALL(dlm_shard_writer_open(path, 2, &w));
    enum { CHUNK = 1 << 16 };
    int32_t *buf = malloc(CHUNK * sizeof *buf);
    dlm_status st = buf ? DLM_OK : DLM_ERR_NOMEM;
    for (int64_t done = 0; done < n && st == DLM_OK;) {
        int64_t m = n - done < CHUNK ? n - done : CHUNK;
        st = stream_next(z, m, buf);
        if (st == DLM_OK) st = dlm_shard_writer_append(&w, buf, m);
        done += m;
    }
    free(buf);
    if (st != DLM_OK) {
        dlm_shard_writer_abort(&w);
        DLM_CHECK(st != DLM_ERR_NOMEM, st, "allocating the synthetic stream buffer");
        DLM_CALL(st);
    }
    dlm_shard_meta meta;
    dlm_meta_defaults_bytes(&meta);
    snprintf(meta.split, sizeof meta.split, "%s", dlm_split_name(split));
    meta.n_tokens = w.n_tokens;
    meta.content_hash = w.content_hash;
    meta.documents = 1;
    meta.synthetic = 1;
    snprintf(meta.synth_kind, sizeof meta.synth_kind, "%s", info->kind);
    meta.synth_symbols = info->n_symbols;
    meta.synth_order = info->order;
    meta.synth_alpha = info->alpha;
    meta.synth_seed = info->seed;
    meta.synth_first_id = info->first_id;
    meta.entropy_rate = info->entropy_rate;
    meta.window_T = T;
    meta.window_entropy = dlm_source_window_entropy(info, T);
    DLM_CALL(dlm_shard_writer_close(&w));
    dlm_meta_path(path, meta_path, sizeof meta_path);
    DLM_CALL(dlm_meta_write(meta_path, &meta));
    DLM_INFO("prepare: %s: %lld tokens", path, (long long)n);
    return DLM_OK;
}

dlm_status dlm_synthetic_write_splits(const char *out_dir, const char *name,
                                      const dlm_iid_source *iid, const dlm_markov_source *mk,
                                      int64_t n_train, int64_t n_eval, int T)
{
    DLM_CHECK((iid != NULL) != (mk != NULL), DLM_ERR_ARG, "give exactly one synthetic source");
    DLM_CALL(dlm_mkdir_p(out_dir));
    dlm_source_info info;
    if (mk) dlm_markov_describe(mk, &info);
    else dlm_iid_describe(iid, &info);
    synth_stream z = {.iid = iid, .mk = mk};
    DLM_CALL(write_split(out_dir, name, DLM_SPLIT_TRAIN, &z, &info, n_train, T));
    DLM_CALL(write_split(out_dir, name, DLM_SPLIT_VAL, &z, &info, n_eval, T));
    DLM_CALL(write_split(out_dir, name, DLM_SPLIT_TEST, &z, &info, n_eval, T));
    return DLM_OK;
}
