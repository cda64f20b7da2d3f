/* Loading a trained model for evaluation from a checkpoint or run folder. */
#include "eval/evalmodel.h"

#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/mpicall.h"
#include "io/checkpoint.h"
#include "io/h5.h"
#include "io/meta.h"
#include "parallel/stages.h"

static dlm_status resolve_here(const char *arg, char *path, size_t len)
{
    struct stat sb;
    DLM_CHECK(stat(arg, &sb) == 0, DLM_ERR_IO,
              "%s: no such checkpoint file or run folder", arg);
    if (!S_ISDIR(sb.st_mode)) {
        DLM_CHECK((size_t)snprintf(path, len, "%s", arg) < len, DLM_ERR_ARG, "path too long: %s",
                  arg);
        return DLM_OK;
    }
    int found = 0;
    DLM_CALL(dlm_ckpt_find_latest(arg, path, len, &found));
    DLM_CHECK(found, DLM_ERR_IO,
              "run folder %s has no checkpoint that verifies (looked in %s/checkpoints)", arg, arg);
    return DLM_OK;
}

dlm_status dlm_eval_resolve_checkpoint(const dlm_grid *g, const char *arg, char *path, size_t len)
{
    DLM_CHECK(len <= INT_MAX, DLM_ERR_ARG, "a path buffer of %zu bytes", len);
    DLM_CALL(dlm_agree(g->world, g->rank == 0 ? resolve_here(arg, path, len) : DLM_OK));
    DLM_MPI(MPI_Bcast(path, (int)len, MPI_CHAR, 0, g->world));
    return DLM_OK;
}

dlm_status dlm_eval_ckpt_info(const char *path, dlm_ckpt_info *out)
{
    memset(out, 0, sizeof *out);
    DLM_CHECK(strlen(path) < sizeof out->path, DLM_ERR_ARG, "path too long: %s", path);
    snprintf(out->path, sizeof out->path, "%s", path);
    dlm_status st = DLM_OK;
    char *shape = NULL;
    int64_t complete = 0;
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    DLM_H5_GOTO(st, f, done, "%s: cannot open the checkpoint as an HDF5 file", path);
    if (H5Aexists(f, "complete") <= 0 || dlm_h5_attr_read_i64(f, "complete", &complete) < 0 ||
        complete != 1) {
        st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                            "%s: not a complete dlm checkpoint (no completion attribute); give a "
                            "run folder to take its newest good checkpoint", path);
        goto done;
    }
    DLM_H5_GOTO(st, dlm_h5_attr_read_i64(f, "step", &out->step), done, "%s: attribute step", path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_i64(f, "tokens", &out->tokens), done,
                "%s: attribute tokens", path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_str(f, "config", &out->config_text), done,
                "%s: attribute config", path);
    DLM_H5_GOTO(st, dlm_h5_attr_read_str(f, "shape", &shape), done, "%s: attribute shape", path);
    out->has_ema = H5Lexists(f, "ema", H5P_DEFAULT) > 0;
done:
    if (f >= 0) H5Fclose(f);
    dlm_h5_quiet_end(&q);
    if (st == DLM_OK) {
        snprintf(out->shape, sizeof out->shape, "%s", shape);
        int L, C, H, T, V, tied;
        if (sscanf(shape, "L=%d d=%d H=%d T=%d V=%d tied=%d", &L, &C, &H, &T, &V, &tied) != 6)
            st = dlm_error_push(DLM_ERR_FORMAT, __FILE__, __LINE__, __func__,
                                "%s: cannot read the model shape '%s'", path, shape);
        else
            out->vocab_padded = V;
    }
    if (st == DLM_OK)
        st = dlm_run_config_load_text(out->config_text, path, NULL, 0, &out->cfg);
    free(shape);
    if (st != DLM_OK) {
        dlm_eval_ckpt_info_free(out);
        return dlm_error_push(st, __FILE__, __LINE__, __func__, "reading checkpoint %s", path);
    }
    return DLM_OK;
}

void dlm_eval_ckpt_info_free(dlm_ckpt_info *info)
{
    free(info->config_text);
    info->config_text = NULL;
}

dlm_status dlm_eval_train_vocab(const dlm_ckpt_info *info, int *vocab_size, int *separator_id,
                                int *found)
{
    *found = 0;
    if (info->cfg.data.source == DLM_DATA_SYNTHETIC) {
        *vocab_size = DLM_BYTE_VOCAB;
        *separator_id = DLM_BYTE_SEP;
        *found = 1;
        return DLM_OK;
    }
    if (info->cfg.data.n_train_paths < 1) return DLM_OK;
    char meta_path[DLM_CONFIG_PATH_MAX + 16];
    dlm_meta_path(info->cfg.data.train_paths[0], meta_path, sizeof meta_path);
    struct stat sb;
    if (stat(info->cfg.data.train_paths[0], &sb) != 0) return DLM_OK; /* shard moved or gone */
    dlm_shard_meta m;
    dlm_meta_defaults_gpt2(&m); /* a shard without metadata is llm.c's GPT-2 data */
    int have = 0;
    DLM_CALL(dlm_meta_read(meta_path, &m, &have));
    *vocab_size = m.vocab_size;
    *separator_id = m.separator_id;
    *found = 1;
    return DLM_OK;
}

dlm_status dlm_eval_model_load(const dlm_ckpt_info *info, int vocab_size, int bos_id, int use_ema,
                               dlm_tp *tp, int pp_rank, int pp, dlm_model **out, uint64_t *hash)
{
    *out = NULL;
    const dlm_run_config *c = &info->cfg;
    dlm_model_config mc;
    dlm_model_config_bytes(&mc, c->model.layers, c->model.width, c->model.heads, c->model.seq_len);
    dlm_model_config_vocab(&mc, vocab_size, bos_id);
    mc.tied_head = c->model.tied_head;
    mc.rope_theta = c->model.rope_theta;
    char shape[128];
    snprintf(shape, sizeof shape, "L=%d d=%d H=%d T=%d V=%d tied=%d", mc.n_layer, mc.d_model,
             mc.n_head, mc.seq_len, mc.vocab_padded, mc.tied_head);
    DLM_CHECK(!strcmp(shape, info->shape), DLM_ERR_FORMAT,
              "%s holds a model of shape '%s', but its config with a vocabulary of %d ids gives "
              "'%s': the evaluation data must use the vocabulary the model was trained on",
              info->path, info->shape, vocab_size, shape);
    DLM_CHECK(!use_ema || info->has_ema, DLM_ERR_ARG,
              "%s has no EMA weights (the run had train.ema_decay = 0); use --weights raw",
              info->path);
    int first[64], count[64];
    DLM_CHECK(pp >= 1 && pp <= 64 && pp_rank >= 0 && pp_rank < pp, DLM_ERR_ARG,
              "pipeline stage %d of %d (at most 64)", pp_rank, pp);
    DLM_CHECK(pp <= mc.n_layer, DLM_ERR_ARG,
              "%d pipeline stages (--pp) for %s, a model of %d blocks: every stage needs at "
              "least one block", pp, info->path, mc.n_layer);
    DLM_CALL(dlm_stages_model_create(&mc, tp, pp_rank, pp, NULL, 0, first, count, out));
    dlm_model *m = *out;
    /* under tp every rank reads the whole tensors and cuts its shards out (a stopgap
     * until checkpoints are read in parts) */
    dlm_param_info *full_table = NULL;
    int n_full = m->n_tensors;
    size_t n_floats = m->n_params;
    float *whole = NULL;
    dlm_status st = DLM_OK;
    if (m->layout.tp_size > 1 || m->layout.staged) {
        st = dlm_param_table_create(&mc, DLM_LAYOUT_SERIAL, &full_table, &n_full, &n_floats);
        /* zeroed: the alignment gaps between tensors are hashed too */
        whole = st == DLM_OK ? calloc(n_floats, sizeof *whole) : NULL;
        if (st == DLM_OK && !whole)
            st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                                "the whole model (%zu floats) to cut this rank's shards from",
                                n_floats);
    }
    float *w = whole ? whole : m->param_arena.base; /* the one group wanted, read into it */
    if (st == DLM_OK)
        st = dlm_ckpt_read(info->path, whole ? full_table : m->table, n_full, info->shape,
                           use_ema ? NULL : w, use_ema ? w : NULL, NULL, NULL, NULL);
    if (st == DLM_OK) {
        *hash = dlm_fnv1a(DLM_FNV_OFFSET, w, n_floats * sizeof *w);
        if (whole) dlm_model_cut_shards(m, full_table, whole, m->param_arena.base);
    }
    free(whole);
    free(full_table);
    if (st != DLM_OK) {
        dlm_model_destroy(out);
        return dlm_error_push(st, __FILE__, __LINE__, __func__, NULL);
    }
    return DLM_OK;
}
