/* Writing eval.h5 (layout in evalfile.h). */
#include "eval/evalfile.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "io/checkpoint.h"
#include "io/h5.h"

double dlm_eval_bpb_factor(const dlm_chunk_set *cs)
{
    if (!cs->byte_level || cs->text_bytes <= 0) return NAN;
    return (double)cs->n * cs->T / (log(2.0) * (double)cs->text_bytes);
}

static herr_t attr_f64(hid_t obj, const char *name, double v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    if (sp < 0) return -1;
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a >= 0 ? H5Awrite(a, H5T_NATIVE_DOUBLE, &v) : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

static herr_t dataset(hid_t g, const char *name, hid_t file_type, hid_t mem_type, int ndim,
                      const hsize_t *dims, const void *data, const char *units)
{
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    if (sp < 0) return -1;
    hid_t d = H5Dcreate2(g, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = d >= 0 ? H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (rc >= 0 && units) rc = dlm_h5_attr_write_str(d, "units", units);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return rc;
}

#define N_TBINS 20

/* Mean CE per scored token by k (exact-k: nc = T) or by t bin (N_TBINS). */
static void curve(const dlm_eval_record *r, int nc, double *coord, double *mean, int64_t *count)
{
    int by_k = r->est->kind == DLM_EST_EXACT_K;
    for (int i = 0; i < nc; i++) {
        coord[i] = by_k ? i + 1 : (i + 0.5) / N_TBINS;
        mean[i] = 0.0;
        count[i] = 0;
    }
    for (int64_t c = 0; c < r->cs->n; c++)
        for (int j = 0; j < r->K; j++) {
            const dlm_sample_result *s = &r->samples[(size_t)c * r->ld + (size_t)j];
            if (s->n_masked == 0) continue;
            int b = by_k ? (int)s->coord - 1 : (int)(s->coord * N_TBINS);
            if (b < 0) b = 0;
            if (b >= nc) b = nc - 1;
            mean[b] += s->ce_sum / s->n_masked;
            count[b]++;
        }
    for (int i = 0; i < nc; i++) mean[i] = count[i] ? mean[i] / (double)count[i] : NAN;
}

static dlm_status write_record(hid_t f, const char *path, const dlm_eval_record *r)
{
    dlm_status st = DLM_OK;
    const dlm_chunk_set *cs = r->cs;
    const dlm_estimator *e = r->est;
    int64_t n = cs->n;
    int K = r->K, T = cs->T;
    double *val = NULL, *coord = NULL, *ce = NULL, *cc = NULL, *cm = NULL;
    int32_t *masked = NULL;
    int64_t *cn = NULL;
    hid_t g = H5Gcreate2(f, r->group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    DLM_H5_GOTO(st, g, done, "%s: creating group %s", path, r->group);
    char def[512], hash[64], when[64];
    dlm_estimator_describe(e, T, def, sizeof def);
    dlm_chunk_set_hash_text(cs, hash, sizeof hash);
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    double ln2 = log(2.0), bpb = dlm_eval_bpb_factor(cs);
    const dlm_estimate *x = &r->nats;
    int bad = 0;
    bad |= dlm_h5_attr_write_str(g, "checkpoint", r->checkpoint) < 0;
    bad |= dlm_h5_attr_write_i64(g, "step", r->step) < 0;
    bad |= dlm_h5_attr_write_str(g, "objective", r->objective) < 0;
    bad |= dlm_h5_attr_write_str(g, "estimator", dlm_estimator_name(e->kind)) < 0;
    bad |= dlm_h5_attr_write_str(g, "definition", def) < 0;
    bad |= dlm_h5_attr_write_str(g, "bound", e->kind == DLM_EST_AR ? "exact" : "upper bound") < 0;
    bad |= dlm_h5_attr_write_str(g, "weights", r->weights) < 0;
    bad |= dlm_h5_attr_write_u64(g, "seed", e->seed) < 0;
    bad |= dlm_h5_attr_write_i64(g, "K", K) < 0;
    bad |= dlm_h5_attr_write_i64(g, "strata", e->strata) < 0;
    bad |= dlm_h5_attr_write_i64(g, "nodes", e->kind == DLM_EST_QUADRATURE ? e->nodes : 0) < 0;
    bad |= dlm_h5_attr_write_i64(g, "steps", e->kind == DLM_EST_DISCRETE ? e->steps : 0) < 0;
    bad |= attr_f64(g, "eps", e->kind == DLM_EST_MC_T ? e->schedule.eps : 0.0) < 0;
    bad |= dlm_h5_attr_write_str(g, "schedule", e->kind == DLM_EST_MC_T
                                                    ? dlm_schedule_name(e->schedule.kind)
                                                    : "") < 0;
    bad |= dlm_h5_attr_write_i64(g, "T", T) < 0;
    bad |= dlm_h5_attr_write_i64(g, "n_chunks", n) < 0;
    bad |= dlm_h5_attr_write_str(g, "chunk_set_hash", hash) < 0;
    bad |= dlm_h5_attr_write_str(g, "data", cs->source) < 0;
    bad |= dlm_h5_attr_write_str(g, "config", r->config_text ? r->config_text : "") < 0;
    bad |= attr_f64(g, "estimate_nats_per_token", x->mean) < 0;
    bad |= attr_f64(g, "stderr_nats_per_token", x->se) < 0;
    bad |= attr_f64(g, "sd_nats_per_token", x->sd) < 0;
    bad |= attr_f64(g, "ci95_low", x->lo) < 0;
    bad |= attr_f64(g, "ci95_high", x->hi) < 0;
    bad |= attr_f64(g, "bits_per_token", x->mean / ln2) < 0;
    bad |= attr_f64(g, "stderr_bits_per_token", x->se / ln2) < 0;
    bad |= attr_f64(g, "bits_per_byte", x->mean * bpb) < 0;
    bad |= attr_f64(g, "stderr_bits_per_byte", x->se * bpb) < 0;
    bad |= attr_f64(g, "perplexity", exp(x->mean)) < 0;
    bad |= dlm_h5_attr_write_i64(g, "text_bytes", cs->text_bytes) < 0;
    bad |= attr_f64(g, "source_entropy_nats_per_token", cs->entropy) < 0;
    dlm_estimate truth = {.mean = NAN}, gap = {.mean = NAN, .se = NAN};
    if (cs->true_nll) {
        dlm_estimate_from(cs->true_nll, n, &truth);
        dlm_estimate_difference(r->chunk_values, cs->true_nll, n, &gap);
    }
    bad |= attr_f64(g, "true_nll_nats_per_token", truth.mean) < 0;
    bad |= attr_f64(g, "minus_true_nll_nats_per_token", gap.mean) < 0;
    bad |= attr_f64(g, "minus_true_nll_stderr_nats_per_token", gap.se) < 0;
    bad |= attr_f64(g, "tokens_per_s", r->tokens_per_s) < 0;
    bad |= dlm_h5_attr_write_str(g, "time", when) < 0;
    DLM_H5_GOTO(st, bad ? -1 : 0, done, "%s: writing the attributes of %s", path, r->group);

    size_t nk = (size_t)n * (size_t)K;
    val = malloc(nk * sizeof *val);
    coord = malloc(nk * sizeof *coord);
    ce = malloc(nk * sizeof *ce);
    masked = malloc(nk * sizeof *masked);
    int nc = e->kind == DLM_EST_EXACT_K ? T : N_TBINS;
    cc = malloc((size_t)nc * sizeof *cc);
    cm = malloc((size_t)nc * sizeof *cm);
    cn = malloc((size_t)nc * sizeof *cn);
    if (!val || !coord || !ce || !masked || !cc || !cm || !cn) {
        st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                            "%s: buffers for %zu samples", path, nk);
        goto done;
    }
    for (int64_t c = 0; c < n; c++)
        for (int j = 0; j < K; j++) {
            const dlm_sample_result *s = &r->samples[(size_t)c * r->ld + (size_t)j];
            size_t o = (size_t)c * (size_t)K + (size_t)j;
            val[o] = s->value;
            coord[o] = s->coord;
            ce[o] = s->ce_sum;
            masked[o] = s->n_masked;
        }
    hsize_t d1[1] = {(hsize_t)n}, d2[2] = {(hsize_t)n, (hsize_t)K}, dc[1] = {(hsize_t)nc};
    bad = 0;
    bad |= dataset(g, "chunk_index", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, d1, cs->index, "index") < 0;
    bad |= dataset(g, "chunk_value", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1, r->chunk_values,
                   "nats/token") < 0;
    if (cs->true_nll)
        bad |= dataset(g, "chunk_true_nll", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1,
                       cs->true_nll, "nats/token") < 0;
    bad |= dataset(g, "sample_value", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2, val,
                   "nats/token") < 0;
    bad |= dataset(g, "sample_coord", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2, coord,
                   e->kind == DLM_EST_EXACT_K ? "k (masked tokens)" : "t") < 0;
    bad |= dataset(g, "sample_masked", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, d2, masked,
                   "tokens") < 0;
    bad |= dataset(g, "sample_ce_sum", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2, ce, "nats") < 0;
    curve(r, nc, cc, cm, cn);
    bad |= dataset(g, "curve_coord", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dc, cc,
                   e->kind == DLM_EST_EXACT_K ? "k (masked tokens)" : "t (bin centre)") < 0;
    bad |= dataset(g, "curve_mean_ce", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dc, cm,
                   "nats per masked token") < 0;
    bad |= dataset(g, "curve_count", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, dc, cn, "samples") < 0;
    DLM_H5_GOTO(st, bad ? -1 : 0, done, "%s: writing the datasets of %s", path, r->group);
done:
    free(val);
    free(coord);
    free(ce);
    free(masked);
    free(cc);
    free(cm);
    free(cn);
    if (g >= 0) H5Gclose(g);
    return st;
}

static dlm_status write_pair(hid_t f, const char *path, const dlm_eval_pair *p,
                             const dlm_chunk_set *cs)
{
    dlm_status st = DLM_OK;
    char hash[64];
    dlm_chunk_set_hash_text(cs, hash, sizeof hash);
    hid_t g = H5Gcreate2(f, p->group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    DLM_H5_GOTO(st, g, done, "%s: creating group %s", path, p->group);
    int bad = 0;
    bad |= dlm_h5_attr_write_str(g, "a", p->a) < 0;
    bad |= dlm_h5_attr_write_str(g, "b", p->b) < 0;
    bad |= dlm_h5_attr_write_str(g, "chunk_set_hash", hash) < 0;
    bad |= attr_f64(g, "difference_nats_per_token", p->d.mean) < 0;
    bad |= attr_f64(g, "stderr_nats_per_token", p->d.se) < 0;
    bad |= attr_f64(g, "ci95_low", p->d.lo) < 0;
    bad |= attr_f64(g, "ci95_high", p->d.hi) < 0;
    bad |= dlm_h5_attr_write_i64(g, "n_chunks", p->d.n) < 0;
    hsize_t d1[1] = {(hsize_t)p->d.n};
    bad |= dataset(g, "chunk_difference", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1, p->diff,
                   "nats/token") < 0;
    DLM_H5_GOTO(st, bad ? -1 : 0, done, "%s: writing %s", path, p->group);
done:
    if (g >= 0) H5Gclose(g);
    return st;
}

typedef struct {
    hid_t dst;
    const dlm_eval_record *recs;
    int n;
    const dlm_eval_pair *pair;
    int failed;
    char name[256];
} copy_ctx;

static herr_t copy_cb(hid_t src, const char *name, const H5L_info_t *info, void *data)
{
    (void)info;
    copy_ctx *c = data;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(name, c->recs[i].group)) return 0; /* replaced by the new record */
    if (c->pair && !strcmp(name, c->pair->group)) return 0;
    if (H5Ocopy(src, name, c->dst, name, H5P_DEFAULT, H5P_DEFAULT) < 0) {
        snprintf(c->name, sizeof c->name, "%s", name);
        c->failed = 1;
        return 1;
    }
    return 0;
}

dlm_status dlm_evalfile_write(const char *path, const dlm_eval_record *recs, int n,
                              const dlm_eval_pair *pair)
{
    char tmp[4200];
    DLM_CHECK((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) < sizeof tmp, DLM_ERR_ARG,
              "path too long: %s", path);
    dlm_status st = DLM_OK;
    dlm_h5_quiet q;
    dlm_h5_quiet_begin(&q);
    hid_t fapl = dlm_h5_fapl(), f = H5I_INVALID_HID, old = H5I_INVALID_HID;
    DLM_H5_GOTO(st, fapl, done, "%s: file access list", tmp);
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    DLM_H5_GOTO(st, f, done, "cannot create %s (is the folder writable?)", tmp);
    DLM_H5_GOTO(st, dlm_h5_attr_write_str(f, "format", "dlm-eval 1"), done, "%s: format", tmp);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        old = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        DLM_H5_GOTO(st, old, done,
                    "%s exists but is not a readable HDF5 file; move it away to write new results",
                    path);
        copy_ctx c = {.dst = f, .recs = recs, .n = n, .pair = pair};
        herr_t rc = H5Literate(old, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_cb, &c);
        DLM_H5_GOTO(st, rc < 0 || c.failed ? -1 : 0, done,
                    "copying the earlier results of %s (group '%s') into the new file", path,
                    c.name);
    }
    for (int i = 0; i < n && st == DLM_OK; i++) st = write_record(f, tmp, &recs[i]);
    if (st == DLM_OK && pair) st = write_pair(f, tmp, pair, recs[0].cs);
    if (st != DLM_OK) goto done;
    herr_t rc = H5Fclose(f);
    f = H5I_INVALID_HID;
    DLM_H5_GOTO(st, rc, done, "closing %s", tmp);
    st = dlm_durable_replace(tmp, path, NULL);
done:
    if (old >= 0) H5Fclose(old);
    if (f >= 0) H5Fclose(f);
    if (fapl >= 0) H5Pclose(fapl);
    dlm_h5_quiet_end(&q);
    if (st != DLM_OK) {
        remove(tmp);
        return dlm_error_push(st, __FILE__, __LINE__, __func__, "writing results to %s", path);
    }
    return DLM_OK;
}
