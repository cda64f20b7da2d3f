/* Learning-rate schedules and the weight EMA against their closed forms. */
#include <string.h>

#include "harness.h"
#include "optim/optim.h"

static void test_lr_schedules(void)
{
    dlm_lr_schedule s = {.kind = DLM_LR_COSINE, .lr = 1.0, .min_lr = 0.1, .warmup = 10, .total = 110};
    DLM_TEST_NEAR(dlm_lr_at(&s, 0), 0.1, 1e-15, "warmup step 0 = lr / warmup");
    DLM_TEST_NEAR(dlm_lr_at(&s, 9), 1.0, 1e-15, "warmup ends at lr");
    DLM_TEST_NEAR(dlm_lr_at(&s, 10), 1.0, 1e-15, "cosine starts at lr");
    DLM_TEST_NEAR(dlm_lr_at(&s, 60), 0.55, 1e-12, "cosine midpoint = (lr + min_lr) / 2");
    DLM_TEST_NEAR(dlm_lr_at(&s, 110), 0.1, 1e-15, "cosine ends at min_lr");
    DLM_TEST_NEAR(dlm_lr_at(&s, 500), 0.1, 1e-15, "after the end: min_lr");
    s.kind = DLM_LR_CONSTANT;
    DLM_TEST_NEAR(dlm_lr_at(&s, 80), 1.0, 0, "constant");
    /* wsd: 100 steps, last 20% decays linearly from 1 to 0.1 */
    s = (dlm_lr_schedule){.kind = DLM_LR_WSD, .lr = 1.0, .min_lr = 0.1, .warmup = 10,
                          .total = 100, .decay_fraction = 0.2};
    DLM_TEST_NEAR(dlm_lr_at(&s, 50), 1.0, 0, "wsd stable phase");
    DLM_TEST_NEAR(dlm_lr_at(&s, 79), 1.0, 0, "wsd stable until 80");
    DLM_TEST_NEAR(dlm_lr_at(&s, 90), 0.55, 1e-12, "wsd halfway down");
    DLM_TEST_NEAR(dlm_lr_at(&s, 100), 0.1, 1e-15, "wsd ends at min_lr");
    dlm_lr_kind k;
    CU_ASSERT(dlm_lr_kind_parse("wsd", &k) == DLM_OK && k == DLM_LR_WSD);
    CU_ASSERT(dlm_lr_kind_parse("linear", &k) == DLM_ERR_ARG);
    dlm_error_clear();
}

/* d = min(decay, (1 + n) / (10 + n)): 0.1 at n = 0, 0.5 at n = 8, decay later. */
static void test_ema(void)
{
    DLM_TEST_NEAR(dlm_ema_decay_at(0.9999, 0), 0.1, 1e-15, "EMA decay at update 0");
    DLM_TEST_NEAR(dlm_ema_decay_at(0.9999, 8), 0.5, 1e-15, "EMA decay at update 8");
    DLM_TEST_NEAR(dlm_ema_decay_at(0.99, 100000), 0.99, 0, "EMA decay capped");
    float ema[3] = {0, 0, 0}, p[3] = {1, 2, 3};
    dlm_ema_update(ema, p, 3, 0.9999, 0); /* 0.1 * 0 + 0.9 * p */
    DLM_TEST_NEAR(ema[2], 2.7, 1e-6, "first EMA update");
    /* a constant p: ema -> p, with the remaining gap the product of the decays */
    double gap = 0.1;
    for (int n = 1; n < 200; n++) {
        dlm_ema_update(ema, p, 3, 0.9, n);
        gap *= dlm_ema_decay_at(0.9, n);
    }
    DLM_TEST_NEAR(ema[0], 1.0 - gap, 1e-5, "EMA of a constant");
}

int main(int argc, char **argv)
{
    static const dlm_test_case cases[] = {{"learning-rate schedules", test_lr_schedules},
                                          {"weight EMA", test_ema},
                                          {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"optim", cases}, {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
