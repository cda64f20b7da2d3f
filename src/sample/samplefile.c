/* Writing samples.h5 (layout in samplefile.h). */
#include "sample/samplefile.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "io/h5.h"

static herr_t attr_f64(hid_t obj, const char *name, double v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    if (sp < 0) return -1;
    hid_t at = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = at < 0 ? -1 : H5Awrite(at, H5T_NATIVE_DOUBLE, &v);
    if (at >= 0) H5Aclose(at);
    H5Sclose(sp);
    return rc;
}

static herr_t dataset(hid_t g, const char *name, hid_t ftype, hid_t mtype, int rank,
                      const hsize_t *dims, const void *data)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    if (sp < 0) return -1;
    hid_t d = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return rc;
}

static herr_t write_group(hid_t f, const dlm_sample_group *s)
{
    char name[64];
    if (s->cfg.kind == DLM_SAMPLER_AR) snprintf(name, sizeof name, "ar");
    else snprintf(name, sizeof name, "%s_S%d", dlm_sampler_name(s->cfg.kind), s->cfg.steps);
    hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    int bad = 0;
    const dlm_sample_config *c = &s->cfg;
    bad |= dlm_h5_attr_write_str(g, "sampler", dlm_sampler_name(c->kind)) < 0;
    bad |= dlm_h5_attr_write_i64(g, "steps", c->kind == DLM_SAMPLER_AR ? c->length : c->steps) < 0;
    bad |= dlm_h5_attr_write_i64(g, "cache", c->cache) < 0;
    bad |= attr_f64(g, "temperature", c->temperature) < 0;
    bad |= dlm_h5_attr_write_i64(g, "top_k", c->top_k) < 0;
    bad |= attr_f64(g, "top_p", c->top_p) < 0;
    bad |= dlm_h5_attr_write_i64(g, "length", c->length) < 0;
    bad |= dlm_h5_attr_write_i64(g, "block", c->block) < 0;
    bad |= dlm_h5_attr_write_u64(g, "seed", c->seed) < 0;
    bad |= dlm_h5_attr_write_str(g, "prompt", s->prompt ? s->prompt : "") < 0;
    bad |= dlm_h5_attr_write_str(g, "infill", s->infill ? s->infill : "") < 0;
    bad |= dlm_h5_attr_write_str(g, "scored_with", s->scored_with ? s->scored_with : "") < 0;
    double mean[4] = {0, 0, 0, 0};
    for (int i = 0; i < s->n; i++) {
        mean[0] += (double)s->nfe[i] / s->n;
        mean[1] += s->entropy[i] / s->n;
        mean[2] += s->repeat4[i] / s->n;
    }
    bad |= attr_f64(g, "nfe_per_sample", mean[0]) < 0;
    bad |= attr_f64(g, "unigram_entropy", mean[1]) < 0;
    bad |= attr_f64(g, "repeat_rate_4", mean[2]) < 0;
    bad |= attr_f64(g, "gen_ppl", s->gen_ppl) < 0;
    bad |= attr_f64(g, "tokens_per_s", s->tokens_per_s) < 0;
    hsize_t d2[2] = {(hsize_t)s->n, (hsize_t)c->length}, d1[1] = {(hsize_t)s->n};
    bad |= dataset(g, "tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, d2, s->tokens) < 0;
    bad |= dataset(g, "nfe", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d1, s->nfe) < 0;
    bad |= dataset(g, "steps", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d1, s->steps) < 0;
    bad |= dataset(g, "seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1, s->seconds) < 0;
    bad |= dataset(g, "unigram_entropy", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1, s->entropy) < 0;
    bad |= dataset(g, "repeat_rate_4", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1, s->repeat4) < 0;
    bad |= dataset(g, "nll", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1, s->nll) < 0;
    H5Gclose(g);
    return bad ? -1 : 0;
}

dlm_status dlm_samplefile_write(const char *path, const dlm_sample_file_attrs *a,
                                const dlm_sample_group *groups, int n_groups)
{
    char tmp[4200];
    DLM_CHECK((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) < sizeof tmp, DLM_ERR_ARG,
              "path too long: %s", path);
    dlm_status st = DLM_OK;
    hid_t fapl = dlm_h5_fapl();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    DLM_H5_GOTO(st, f, fail, "creating %s", tmp);
    int bad = dlm_h5_attr_write_str(f, "format", "dlm-samples 1") < 0;
    bad |= dlm_h5_attr_write_str(f, "checkpoint", a->checkpoint) < 0;
    bad |= dlm_h5_attr_write_i64(f, "step", a->step) < 0;
    bad |= dlm_h5_attr_write_str(f, "weights", a->weights) < 0;
    bad |= dlm_h5_attr_write_str(f, "config", a->config_text ? a->config_text : "") < 0;
    DLM_H5_GOTO(st, bad ? -1 : 0, fail, "writing the attributes of %s", tmp);
    for (int i = 0; i < n_groups; i++)
        DLM_H5_GOTO(st, write_group(f, &groups[i]), fail, "writing group %d of %s", i, tmp);
    herr_t rc = H5Fclose(f);
    f = -1;
    DLM_H5_GOTO(st, rc, fail, "closing %s", tmp);
    if (rename(tmp, path) != 0) {
        st = dlm_error_push(DLM_ERR_IO, __FILE__, __LINE__, __func__, "renaming %s to %s", tmp,
                            path);
        goto fail;
    }
    return DLM_OK;
fail:
    if (f >= 0) H5Fclose(f);
    remove(tmp);
    return st;
}
