/* The split of the blocks over pipeline stages (see stages.h). */
#include "parallel/stages.h"

#include <stdio.h>
#include <stdlib.h>

void dlm_stages_costs(const dlm_model_config *cfg, dlm_stage_costs *out)
{
    double C = cfg->d_model, T = cfg->seq_len;
    /* per block: 6 x its 12 C^2 (+ biases, norms) parameters, plus attention's 12 C T */
    out->block = 6.0 * (double)dlm_model_nonembedding_params(cfg) / cfg->n_layer + 12.0 * C * T;
    out->embed = 0.0;
    out->head = 6.0 * C * cfg->vocab_padded;
}

dlm_status dlm_stages_split(int L, int pp, const int *list, int n_list,
                            const dlm_stage_costs *costs, int *first, int *count)
{
    DLM_CHECK(pp >= 1 && pp <= L, DLM_ERR_ARG,
              "parallel.pp = %d stages for model.layers = %d blocks: every stage needs at least "
              "one block", pp, L);
    if (list && n_list > 0) {
        DLM_CHECK(n_list == pp, DLM_ERR_ARG,
                  "parallel.stage_layers lists %d stages, but parallel.pp = %d", n_list, pp);
        int sum = 0;
        for (int s = 0; s < pp; s++) {
            DLM_CHECK(list[s] >= 1, DLM_ERR_ARG,
                      "parallel.stage_layers element %d is %d: every stage needs at least one "
                      "block", s + 1, list[s]);
            first[s] = sum;
            count[s] = list[s];
            sum += list[s];
        }
        DLM_CHECK(sum == L, DLM_ERR_ARG,
                  "parallel.stage_layers sums to %d blocks, but model.layers = %d", sum, L);
        return DLM_OK;
    }
    /* best[s][j]: the cheapest maximum over stages 0..s covering blocks 0..j-1;
     * from[s][j] the start of stage s in it. O(pp L^2), L is small. */
    double *best = malloc((size_t)pp * (L + 1) * sizeof *best);
    int *from = malloc((size_t)pp * (L + 1) * sizeof *from);
    if (!best || !from) {
        free(best), free(from);
        DLM_CHECK(0, DLM_ERR_NOMEM, "splitting %d blocks over %d stages", L, pp);
    }
#define AT(a, s, j) (a)[(size_t)(s) * (L + 1) + (j)]
    for (int s = 0; s < pp; s++) {
        for (int j = s + 1; j <= L - (pp - 1 - s); j++) {
            AT(best, s, j) = -1.0;
            for (int i = s; i < j; i++) { /* stage s runs blocks i .. j-1 */
                if (s == 0 && i != 0) break;
                double c = (j - i) * costs->block + (s == 0 ? costs->embed : 0.0) +
                           (s == pp - 1 ? costs->head : 0.0);
                double prev = s == 0 ? 0.0 : AT(best, s - 1, i);
                if (s > 0 && prev < 0) continue;
                double v = c > prev ? c : prev;
                /* ties keep the earliest start: fewer blocks in the earlier stages */
                if (AT(best, s, j) < 0 || v < AT(best, s, j)) {
                    AT(best, s, j) = v;
                    AT(from, s, j) = i;
                }
            }
        }
    }
    int j = L;
    for (int s = pp - 1; s >= 0; s--) {
        first[s] = AT(from, s, j);
        count[s] = j - first[s];
        j = first[s];
    }
#undef AT
    free(best), free(from);
    return DLM_OK;
}

dlm_status dlm_stages_model_create(const dlm_model_config *cfg, dlm_tp *tp, int pp_rank, int pp,
                                   const int *list, int n_list, int *first, int *count,
                                   dlm_model **out)
{
    *out = NULL;
    DLM_CHECK(pp_rank >= 0 && pp_rank < pp, DLM_ERR_ARG, "pipeline stage %d of %d", pp_rank, pp);
    dlm_stage_costs costs;
    dlm_stages_costs(cfg, &costs);
    DLM_CALL(dlm_stages_split(cfg->n_layer, pp, list, n_list, &costs, first, count));
    int l0 = first[pp_rank];
    DLM_CALL(dlm_model_create_stage(cfg, tp, l0, l0 + count[pp_rank], out));
    return DLM_OK;
}

void dlm_stages_describe(int pp, const int *first, const int *count, char *buf, int len)
{
    int n = 0;
    buf[0] = '\0';
    for (int s = 0; s < pp && n < len; s++)
        n += snprintf(buf + n, (size_t)(len - n), "%sstage %d: %sblocks %d-%d%s", s ? ", " : "", s,
                      s == 0 ? "embedding, " : "", first[s], first[s] + count[s] - 1,
                      s == pp - 1 ? ", head" : "");
}
