/* One-token causal forward with a key/value cache (see kvcache.h). */
#include "model/kvcache.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/vmath.h"

dlm_status dlm_kv_cache_create(const dlm_model *m, dlm_kv_cache **out)
{
    *out = NULL;
    const dlm_model_config *c = &m->cfg;
    DLM_CHECK(!m->layout.staged, DLM_ERR_ARG,
              "the key/value cache runs the whole model: a pipeline stage (blocks %d .. %d) "
              "cannot use it", m->layout.layer0, m->layout.layer1 - 1);
    dlm_kv_cache *kv = calloc(1, sizeof *kv);
    DLM_CHECK(kv != NULL, DLM_ERR_NOMEM, "allocating a key/value cache");
    kv->T = c->seq_len, kv->C = c->d_model, kv->L = c->n_layer;
    kv->Cl = c->d_model / m->layout.tp_size;
    size_t C = (size_t)kv->C, Cl = (size_t)kv->Cl;
    kv->qkv = malloc((size_t)kv->L * kv->T * 3 * Cl * sizeof(float));
    kv->logits = malloc((size_t)c->vocab_padded / m->layout.tp_size * sizeof(float));
    kv->gather = malloc((size_t)c->vocab_padded * sizeof(float));
    kv->x = malloc(C * sizeof(float));
    kv->h = malloc(C * sizeof(float));
    kv->h2 = malloc(C * sizeof(float));
    kv->row3 = malloc(3 * C * sizeof(float));
    kv->row4 = malloc(8 * C * sizeof(float)); /* fc output and its GELU */
    kv->att = malloc((size_t)kv->T * sizeof(float));
    kv->stat = malloc(2 * sizeof(float));
    if (!kv->qkv || !kv->x || !kv->h || !kv->h2 || !kv->row3 || !kv->row4 || !kv->att ||
        !kv->stat || !kv->logits || !kv->gather) {
        dlm_kv_cache_destroy(&kv);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating a key/value cache for T = %d", c->seq_len);
    }
    *out = kv;
    return DLM_OK;
}

void dlm_kv_cache_destroy(dlm_kv_cache **pkv)
{
    dlm_kv_cache *kv = *pkv;
    if (!kv) return;
    free(kv->qkv), free(kv->x), free(kv->h), free(kv->h2), free(kv->row3), free(kv->row4);
    free(kv->att), free(kv->stat), free(kv->logits), free(kv->gather);
    free(kv);
    *pkv = NULL;
}

void dlm_kv_cache_reset(dlm_kv_cache *kv) { kv->len = 0; }

/* out_h (hs) = softmax(q . k_j / sqrt(hs), j <= pos) v_j for one head. */
static void attend(const float *cache, int pos, int C, int h, int hs, float *att, float *out)
{
    const float *q = cache + (size_t)pos * 3 * C + (size_t)h * 3 * hs;
    float scale = 1.0f / sqrtf((float)hs), mx = -INFINITY;
    for (int j = 0; j <= pos; j++) {
        const float *k = cache + (size_t)j * 3 * C + (size_t)h * 3 * hs + hs;
        float s = 0.0f;
        for (int d = 0; d < hs; d++) s += q[d] * k[d];
        att[j] = s * scale;
        mx = att[j] > mx ? att[j] : mx;
    }
    float sum = 0.0f;
    for (int j = 0; j <= pos; j++) sum += att[j] = dlm_expf(att[j] - mx);
    for (int d = 0; d < hs; d++) out[d] = 0.0f;
    for (int j = 0; j <= pos; j++) {
        const float *v = cache + (size_t)j * 3 * C + (size_t)h * 3 * hs + 2 * hs;
        float p = att[j] / sum;
        for (int d = 0; d < hs; d++) out[d] += p * v[d];
    }
}

dlm_status dlm_model_forward_step(const dlm_model *m, dlm_kv_cache *kv, int32_t tok, float *logits)
{
    const dlm_model_config *c = &m->cfg;
    int C = c->d_model, hs = C / c->n_head, T = c->seq_len, pos = kv->len;
    /* under tp this rank's heads (Cl channels) and vocabulary rows, as in dlm_block_forward */
    int tp = m->layout.tp_size, Cl = kv->Cl, Hl = c->n_head / tp, Vl = c->vocab_padded / tp;
    int v0 = m->layout.tp_rank * Vl, root = m->layout.tp_rank == 0;
    DLM_CHECK(pos < T, DLM_ERR_STATE, "key/value cache full: %d positions of %d", pos, T);
    DLM_CHECK(tok >= 0 && tok <= c->mask_id, DLM_ERR_ARG, "token %d outside the vocabulary", tok);
    float *x = kv->x, *h = kv->h, *h2 = kv->h2, *mean = kv->stat, *rstd = kv->stat + 1;
    if (tok >= v0 && tok < v0 + Vl)
        memcpy(x, m->params.wte + (size_t)(tok - v0) * C, (size_t)C * sizeof(float));
    else
        memset(x, 0, (size_t)C * sizeof(float));
    dlm_tp_reduce_forward(m->tp, x, C);
    for (int l = 0; l < c->n_layer; l++) {
        const dlm_block_params *p = &m->params.blocks[l];
        float *cache = kv->qkv + (size_t)l * T * 3 * Cl, *row = cache + (size_t)pos * 3 * Cl;
        dlm_layernorm_forward(h, mean, rstd, x, p->ln1_w, p->ln1_b, 1, C);
        dlm_linear_forward(row, h, p->qkv_w, p->qkv_b, 1, C, 3 * Cl);
        int half = hs / 2; /* the rotation of position pos: the tables' row pos */
        dlm_rope_forward(row, m->rope_cos + (size_t)pos * half, m->rope_sin + (size_t)pos * half,
                         1, 1, Cl, Hl);
        for (int hh = 0; hh < Hl; hh++) attend(cache, pos, Cl, hh, hs, kv->att, h + hh * hs);
        dlm_linear_forward(h2, h, p->proj_w, root ? p->proj_b : NULL, 1, Cl, C);
        dlm_tp_reduce_forward(m->tp, h2, C);
        dlm_accumulate(x, h2, C);
        dlm_layernorm_forward(h, mean, rstd, x, p->ln2_w, p->ln2_b, 1, C);
        float *fc = kv->row4, *g = kv->row4 + 4 * Cl;
        dlm_linear_forward(fc, h, p->fc_w, p->fc_b, 1, C, 4 * Cl);
        dlm_gelu_forward(g, fc, 4 * Cl);
        dlm_linear_forward(h2, g, p->fcp_w, root ? p->fcp_b : NULL, 1, 4 * Cl, C);
        dlm_tp_reduce_forward(m->tp, h2, C);
        dlm_accumulate(x, h2, C);
    }
    dlm_layernorm_forward(h, mean, rstd, x, m->params.lnf_w, m->params.lnf_b, 1, C);
    dlm_linear_forward(tp > 1 ? kv->logits : logits, h, m->params.lm_head, NULL, 1, C, Vl);
    DLM_CALL(dlm_tp_status(m->tp));
    if (tp > 1) DLM_CALL(dlm_model_whole_logits(m, kv->logits, 1, logits, kv->gather));
    kv->len = pos + 1;
    return DLM_OK;
}
