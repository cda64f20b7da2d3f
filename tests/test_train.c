/* Training-length checks: a tiny model memorises one chunk; on a source of
 * known entropy the held-out loss reaches the entropy; the same run twice
 * gives bit-identical parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/objective.h"
#include "harness.h"
#include "io/synthetic.h"
#include "kernels/blis_info.h"
#include "model/model.h"
#include "optim/optim.h"
#include "train/step.h"

typedef struct {
    dlm_model *m;
    dlm_optimizer *opt;
    dlm_step_buffers buf;
    dlm_objective obj;
} trainer;

static void trainer_make(trainer *tr, dlm_objective_kind kind, int L, int C, int H, int T,
                         int micro, uint64_t seed, double weight_decay)
{
    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, L, C, H, T);
    DLM_TEST_OK(dlm_model_create(&cfg, &tr->m));
    dlm_model_init(tr->m, seed);
    dlm_adamw_config oc;
    dlm_adamw_config_default(&oc);
    oc.weight_decay = (float)weight_decay;
    DLM_TEST_OK(dlm_optimizer_create(tr->m, &oc, &tr->opt));
    DLM_TEST_OK(dlm_step_buffers_create(tr->m, micro, &tr->buf));
    tr->obj = (dlm_objective){.kind = kind, .seed = seed, .bos_id = DLM_BYTE_SEP,
                              .mask_id = DLM_BYTE_VOCAB};
    dlm_schedule_default(&tr->obj.schedule, DLM_SCHEDULE_LOGLINEAR);
}

static void trainer_free(trainer *tr)
{
    dlm_step_buffers_destroy(&tr->buf);
    dlm_optimizer_destroy(&tr->opt);
    dlm_model_destroy(&tr->m);
}

/* Trains `steps` steps on batches from fill(step, batch); returns the last loss. */
static double train(trainer *tr, int steps, int G, double lr, int warmup,
                    void (*fill)(const void *, int step, int G, int T, int32_t *), const void *ctx)
{
    int T = tr->m->cfg.seq_len;
    int32_t *x = malloc((size_t)G * T * sizeof *x);
    dlm_lr_schedule lrs = {.kind = DLM_LR_COSINE, .lr = lr, .min_lr = lr / 10, .warmup = warmup,
                           .total = steps};
    double loss = NAN, gnorm;
    for (int s = 0; s < steps; s++) {
        fill(ctx, s, G, T, x);
        DLM_TEST_OK(dlm_train_step(tr->m, tr->opt, &tr->buf, &tr->obj, x, G, (uint32_t)s,
                                   dlm_lr_at(&lrs, s), &loss, &gnorm));
    }
    free(x);
    return loss;
}

/* ---- memorising one chunk ---- */

static const char passage[] =
    "A cluster job that is killed at the wrong moment should lose nothing but the minutes since "
    "its last checkpoint. Losses are written as they come, checkpoints are renamed into place "
    "only when complete, and every number a run reports can be traced to the command that gave "
    "it, the data it read and the seed it drew.";

static void fill_passage(const void *ctx, int step, int G, int T, int32_t *x)
{
    (void)ctx, (void)step;
    for (int g = 0; g < G; g++)
        for (int i = 0; i < T; i++) x[g * T + i] = (unsigned char)passage[i]; /* offset 0 */
}

/* AR: next-byte loss on the memorised 256-byte chunk below 0.05 nats/token. */
static void test_overfit_ar(void)
{
    CU_ASSERT_FATAL(sizeof passage - 1 >= 256);
    trainer tr;
    trainer_make(&tr, DLM_OBJECTIVE_AR, 2, 64, 4, 256, 1, 1, 0.0);
    train(&tr, 150, 1, 3e-3, 10, fill_passage, NULL);
    int32_t x[256];
    fill_passage(NULL, 0, 1, 256, x);
    double loss;
    DLM_TEST_OK(dlm_eval_loss(tr.m, &tr.buf, &tr.obj, x, 1, 0, &loss));
    printf("\n    AR loss on the memorised chunk: %.4f nats/token\n", loss);
    DLM_TEST_BELOW(loss, 0.05, "AR loss on one memorised chunk");
    trainer_free(&tr);
}

/* mdlm at fixed t = 0.5 (not at t = 1, where an all-MASK input has a floor):
 * below 0.1 nats/token, averaged over 16 fresh mask draws. */
static void test_overfit_mdlm(void)
{
    trainer tr;
    trainer_make(&tr, DLM_OBJECTIVE_MDLM, 2, 64, 4, 256, 4, 1, 0.0);
    tr.obj.t_fixed = 0.5;
    train(&tr, 1200, 4, 3e-3, 10, fill_passage, NULL);
    int32_t x[4 * 256];
    fill_passage(NULL, 0, 4, 256, x);
    double total = 0.0;
    for (uint32_t e = 0; e < 4; e++) { /* eval steps far from the training steps: new masks */
        double loss;
        DLM_TEST_OK(dlm_eval_loss(tr.m, &tr.buf, &tr.obj, x, 4, 1000000 + e, &loss));
        total += loss;
    }
    printf("\n    mdlm loss at t = 0.5 on the memorised chunk: %.4f nats/token\n", total / 4);
    DLM_TEST_BELOW(total / 4, 0.1, "mdlm loss at t = 0.5 on one memorised chunk");
    trainer_free(&tr);
}

/* ---- a source of known entropy ---- */

static void fill_iid(const void *ctx, int step, int G, int T, int32_t *x)
{
    const dlm_iid_source *src = ctx;
    for (int g = 0; g < G; g++) dlm_iid_fill(src, (uint64_t)step * G + g, T, x + (int64_t)g * T);
}

enum { KE_T = 64, KE_HELDOUT = 512 };

static void heldout(const dlm_iid_source *src, int32_t *x)
{
    for (int i = 0; i < KE_HELDOUT; i++)
        dlm_iid_fill(src, DLM_HELDOUT_SAMPLE0 + (uint64_t)i, KE_T, x + (int64_t)i * KE_T);
}

/* 16 symbols, p_i ~ 0.75^i: H = 2.1927 nats <= 0.8 ln 16. AR held-out loss
 * over 512 x 64 tokens (standard error about 0.4% of H) within 2% of H. */
static void test_known_entropy_ar(void)
{
    dlm_iid_source src;
    dlm_iid_source_default(&src, 17);
    double H = dlm_iid_entropy(&src);
    CU_ASSERT(H <= 0.8 * log(16.0));
    trainer tr;
    trainer_make(&tr, DLM_OBJECTIVE_AR, 2, 64, 4, KE_T, 64, 2, 0.1);
    train(&tr, 150, 16, 3e-3, 20, fill_iid, &src);
    int32_t *x = malloc((size_t)KE_HELDOUT * KE_T * sizeof *x);
    heldout(&src, x);
    double loss;
    DLM_TEST_OK(dlm_eval_loss(tr.m, &tr.buf, &tr.obj, x, KE_HELDOUT, 0, &loss));
    printf("\n    AR held-out %.4f vs entropy %.4f nats/token (%+.2f%%)\n", loss, H,
           100 * (loss / H - 1));
    DLM_TEST_NEAR(loss, H, 0.02 * H, "AR held-out loss vs entropy");
    free(x);
    trainer_free(&tr);
}

/* mdlm held-out loss (continuous-time NELBO, t stratified in [1e-3, 1]) over
 * 20 mask draws of 512 sequences = 10240 sequence-samples (standard error
 * about 0.4% of H) within 3% of H. For i.i.d. tokens the NELBO of the true
 * model equals H up to the O(eps H) part below t = eps. */
static void test_known_entropy_mdlm(void)
{
    dlm_iid_source src;
    dlm_iid_source_default(&src, 18);
    double H = dlm_iid_entropy(&src);
    trainer tr;
    trainer_make(&tr, DLM_OBJECTIVE_MDLM, 2, 64, 4, KE_T, 64, 3, 0.1);
    train(&tr, 200, 16, 3e-3, 20, fill_iid, &src);
    int32_t *x = malloc((size_t)KE_HELDOUT * KE_T * sizeof *x);
    heldout(&src, x);
    double sum = 0.0, sum2 = 0.0;
    const int draws = 20;
    for (int e = 0; e < draws; e++) {
        double loss;
        DLM_TEST_OK(dlm_eval_loss(tr.m, &tr.buf, &tr.obj, x, KE_HELDOUT, (uint32_t)e, &loss));
        sum += loss, sum2 += loss * loss;
    }
    double mean = sum / draws, se = sqrt((sum2 / draws - mean * mean) / (draws - 1));
    printf("\n    mdlm held-out %.4f +- %.4f vs entropy %.4f nats/token (%+.2f%%)\n", mean, se, H,
           100 * (mean / H - 1));
    DLM_TEST_NEAR(mean, H, 0.03 * H, "mdlm held-out loss vs entropy");
    free(x);
    trainer_free(&tr);
}

/* ---- determinism ---- */

/* Two identical runs (2 threads, so the parallel loops and BLIS's
 * partitioning are exercised) end with bit-identical parameters and moments. */
static void test_same_job_same_bits(void)
{
    dlm_iid_source src;
    dlm_iid_source_default(&src, 5);
    dlm_threads_set(2);
    float *first = NULL;
    size_t n = 0;
    for (int run = 0; run < 2; run++) {
        trainer tr;
        trainer_make(&tr, DLM_OBJECTIVE_MDLM, 2, 32, 2, 32, 4, 9, 0.1);
        train(&tr, 12, 8, 3e-3, 2, fill_iid, &src);
        if (run == 0) {
            n = tr.m->n_params;
            first = malloc(3 * n * sizeof *first);
            memcpy(first, tr.m->param_arena.base, n * sizeof *first);
            memcpy(first + n, tr.opt->m.base, n * sizeof *first);
            memcpy(first + 2 * n, tr.opt->v.base, n * sizeof *first);
        } else {
            CU_ASSERT(memcmp(first, tr.m->param_arena.base, n * sizeof *first) == 0);
            CU_ASSERT(memcmp(first + n, tr.opt->m.base, n * sizeof *first) == 0);
            CU_ASSERT(memcmp(first + 2 * n, tr.opt->v.base, n * sizeof *first) == 0);
        }
        trainer_free(&tr);
    }
    free(first);
    dlm_threads_set(1);
}

int main(int argc, char **argv)
{
    static const dlm_test_case overfit[] = {{"AR memorises a 256-byte chunk", test_overfit_ar},
                                            {"mdlm memorises it at t = 0.5", test_overfit_mdlm},
                                            {NULL, NULL}};
    static const dlm_test_case entropy[] = {{"AR reaches the entropy", test_known_entropy_ar},
                                            {"mdlm reaches the entropy", test_known_entropy_mdlm},
                                            {NULL, NULL}};
    static const dlm_test_case det[] = {{"same job, same bits", test_same_job_same_bits},
                                        {NULL, NULL}};
    static const dlm_test_suite suites[] = {
        {"overfit", overfit}, {"known entropy", entropy}, {"determinism", det}, {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
