/* Collecting a sweep's results into sweep.h5 (see collect.h). */
#include "sweep/collect.h"

#include <stdlib.h>
#include <string.h>

#include "sweep/runs.h"
#include "sweep/table.h"

typedef struct {
    char state[16], detail[256], estimator[32], weights[8];
    double estimate_nats_per_token, stderr_nats_per_token, bits_per_byte, stderr_bits_per_byte;
    int64_t last_step;
    double train_loss, val_loss;
} result_row;

static const dlm_col result_cols[] = {
    DLM_COL(result_row, CHARS, state),
    DLM_COL(result_row, CHARS, detail),
    DLM_COL(result_row, CHARS, estimator),
    DLM_COL(result_row, CHARS, weights),
    DLM_COL(result_row, F64, estimate_nats_per_token),
    DLM_COL(result_row, F64, stderr_nats_per_token),
    DLM_COL(result_row, F64, bits_per_byte),
    DLM_COL(result_row, F64, stderr_bits_per_byte),
    DLM_COL(result_row, I64, last_step),
    DLM_COL(result_row, F64, train_loss),
    DLM_COL(result_row, F64, val_loss),
};

static dlm_status write_results(const dlm_sweep_plan *p, hid_t g, const char *what, const void *arg)
{
    return dlm_table_write(g, what, result_cols, (int)(sizeof result_cols / sizeof result_cols[0]), arg,
                           sizeof(result_row), p->n);
}

dlm_status dlm_sweep_collect(const dlm_sweep_plan *p, const char *path, FILE *out, int *n_done)
{
    result_row *rows = calloc((size_t)(p->n ? p->n : 1), sizeof *rows);
    DLM_CHECK(rows != NULL, DLM_ERR_NOMEM, "results of %d runs", p->n);
    int done = 0;
    for (int i = 0; i < p->n; i++) {
        dlm_run_state s;
        dlm_sweep_run_state(p, i, &s);
        result_row *r = &rows[i];
        snprintf(r->state, sizeof r->state, "%s", dlm_run_state_names[s.kind]);
        snprintf(r->detail, sizeof r->detail, "%s", s.detail);
        snprintf(r->estimator, sizeof r->estimator, "%s", s.estimator);
        snprintf(r->weights, sizeof r->weights, "%s", s.weights);
        r->estimate_nats_per_token = s.estimate, r->stderr_nats_per_token = s.stderr_;
        r->bits_per_byte = s.bits_per_byte, r->stderr_bits_per_byte = s.stderr_bpb;
        r->last_step = s.last_step, r->train_loss = s.train_loss, r->val_loss = s.val_loss;
        if (s.kind == DLM_RUN_DONE) done++;
        else fprintf(out, "%s %s: %s\n", r->state, p->runs[i].name, s.detail);
    }
    dlm_status st = dlm_sweep_write_file(p, path, "dlm-sweep results 1", write_results, rows);
    free(rows);
    DLM_CALL(st);
    fprintf(out, "collect: %d of %d runs done -> %s\n", done, p->n, path);
    *n_done = done;
    return DLM_OK;
}

void dlm_sweep_print_status(const dlm_sweep_plan *p, FILE *out)
{
    int count[4] = {0};
    for (int i = 0; i < p->n; i++) {
        dlm_run_state s;
        dlm_sweep_run_state(p, i, &s);
        count[s.kind]++;
        if (s.kind == DLM_RUN_DONE)
            fprintf(out, "%-10s %-44s %.4f +- %.4f nats/token (%s, %s)\n", "done", p->runs[i].name, s.estimate,
                    s.stderr_, s.estimator, s.weights);
        else fprintf(out, "%-10s %-44s %s\n", dlm_run_state_names[s.kind], p->runs[i].name, s.detail);
    }
    fprintf(out, "%d done, %d unfinished, %d failed, %d missing of %d\n", count[DLM_RUN_DONE],
            count[DLM_RUN_UNFINISHED], count[DLM_RUN_FAILED], count[DLM_RUN_MISSING], p->n);
}
