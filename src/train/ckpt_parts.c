/* Pieces of the whole model's tensors from a rank's shards, stage and
 * ZeRO ranges: see ckpt_parts.h. */
#include "train/ckpt_parts.h"

#include <stdlib.h>
#include <string.h>

/* Local rows [a, b) of p (its shard) as a piece of the full tensor at
 * offset; the rank writes them all when owns. */
static dlm_ckpt_piece rows_piece(const dlm_param_info *p, int64_t a, int64_t b, size_t offset,
                                 int owns)
{
    int by_rows = p->shard.split == DLM_SPLIT_ROWS || p->shard.split == DLM_SPLIT_VOCAB;
    dlm_ckpt_piece c = {.offset = offset, .row0 = (by_rows ? p->shard.start : 0) + a,
                        .rows = b - a, .col0 = p->shard.split == DLM_SPLIT_COLS ? p->shard.start : 0,
                        .cols = p->local[1], .own0 = 0, .own_rows = owns ? b - a : 0};
    return c;
}

/* The part of p's local rows inside range r: [*a, *b), 0 if none. */
static int rows_in(const dlm_param_info *p, dlm_range r, int64_t *a, int64_t *b)
{
    size_t lo = r.lo > p->offset ? r.lo : p->offset;
    size_t hi = r.hi < p->offset + p->numel ? r.hi : p->offset + p->numel;
    if (lo >= hi) return 0;
    *a = (int64_t)((lo - p->offset) / (size_t)p->local[1]);
    *b = (int64_t)((hi - p->offset) / (size_t)p->local[1]);
    return 1;
}

dlm_status dlm_ckpt_parts_create(const dlm_grid *g, const dlm_model *m, const dlm_range *zero,
                                 int n_zero, float *const arrays[4], dlm_ckpt_parts *out)
{
    memset(out, 0, sizeof *out);
    size_t floats;
    DLM_CALL(dlm_param_table_create(&m->cfg, DLM_LAYOUT_SERIAL, &out->full_table, &out->n_full,
                                    &floats));
    for (int k = 0; k < 4; k++) {
        if (!arrays[k]) continue;
        out->pieces[k] = calloc((size_t)out->n_full, sizeof *out->pieces[k]);
        if (!out->pieces[k]) {
            dlm_ckpt_parts_destroy(out);
            DLM_CHECK(0, DLM_ERR_NOMEM, "checkpoint pieces of %d tensors", out->n_full);
        }
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const dlm_param_info *p = &m->table[i];
        /* within the model-parallel group: the copy that counts in the norm writes */
        int writer = dlm_param_counts_in_norm(p, &m->layout);
        int64_t a = 0, b = p->local[0];
        size_t compact = 0; /* where range zero[z] starts in the ZeRO arrays */
        int z = 0, mine = n_zero == 0 ? g->dp_rank == 0 : 0;
        for (; z < n_zero; compact += zero[z].hi - zero[z].lo, z++)
            if (rows_in(p, zero[z], &a, &b)) {
                mine = 1;
                break;
            }
        for (int k = 0; k < 4; k++) {
            if (!arrays[k]) continue;
            dlm_ckpt_piece *c = &out->pieces[k][p->id];
            if (n_zero == 0) {
                *c = rows_piece(p, 0, p->local[0], p->offset, writer && mine);
            } else if (k == 0) { /* every replica holds the whole shard; writes its rows */
                *c = rows_piece(p, 0, p->local[0], p->offset, 0);
                if (mine && writer) c->own0 = a, c->own_rows = b - a;
            } else if (mine) { /* the ZeRO arrays hold only this rank's rows */
                size_t at = compact + (p->offset + (size_t)(a * p->local[1]) - zero[z].lo);
                *c = rows_piece(p, a, b, at, writer);
            }
        }
    }
    out->layout = (dlm_ckpt_layout){g->world, out->full_table, out->n_full,
                                    {arrays[0], arrays[1], arrays[2], arrays[3]},
                                    {out->pieces[0], out->pieces[1], out->pieces[2], out->pieces[3]}};
    return DLM_OK;
}

void dlm_ckpt_parts_destroy(dlm_ckpt_parts *p)
{
    free(p->full_table);
    for (int k = 0; k < 4; k++) free(p->pieces[k]);
    memset(p, 0, sizeof *p);
}
