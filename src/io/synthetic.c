/* i.i.d. token source with exact entropy. */
#include "io/synthetic.h"

#include <math.h>

#include "core/rng.h"

dlm_status dlm_iid_source_init(dlm_iid_source *s, const double *prob, int n, int32_t first_id,
                               uint64_t seed)
{
    DLM_CHECK(n >= 1 && n <= DLM_IID_MAX_SYMBOLS, DLM_ERR_ARG,
              "i.i.d. source needs 1..%d symbols, got %d", DLM_IID_MAX_SYMBOLS, n);
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        DLM_CHECK(prob[i] >= 0.0 && isfinite(prob[i]), DLM_ERR_ARG,
                  "probability %d of the i.i.d. source is %g", i, prob[i]);
        total += prob[i];
    }
    DLM_CHECK(total > 0.0, DLM_ERR_ARG, "i.i.d. source probabilities sum to 0");
    s->n_symbols = n;
    s->first_id = first_id;
    s->seed = seed;
    double c = 0.0;
    for (int i = 0; i < n; i++) {
        s->prob[i] = prob[i] / total;
        c += s->prob[i];
        s->cdf[i] = c;
    }
    s->cdf[n - 1] = 1.0;
    return DLM_OK;
}

void dlm_iid_source_default(dlm_iid_source *s, uint64_t seed)
{
    double p[16];
    for (int i = 0; i < 16; i++) p[i] = pow(0.75, i);
    dlm_iid_source_init(s, p, 16, 'a', seed);
}

double dlm_iid_entropy(const dlm_iid_source *s)
{
    double h = 0.0;
    for (int i = 0; i < s->n_symbols; i++)
        if (s->prob[i] > 0.0) h -= s->prob[i] * log(s->prob[i]);
    return h;
}

void dlm_iid_fill(const dlm_iid_source *s, uint64_t sample, int T, int32_t *out)
{
    for (int i = 0; i < T; i++) {
        double u = dlm_rng_uniform(s->seed, (uint32_t)(sample >> 32), (uint32_t)sample,
                                   (uint32_t)i, DLM_RNG_DATA);
        int k = 0;
        while (k < s->n_symbols - 1 && u >= s->cdf[k]) k++;
        out[i] = s->first_id + k;
    }
}
