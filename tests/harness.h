/* A thin layer over CUnit: a test program lists its suites and calls
 * dlm_test_main, which runs them and exits non-zero on any failure. */
#ifndef DLM_TEST_HARNESS_H
#define DLM_TEST_HARNESS_H

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} dlm_test_case;

typedef struct {
    const char *name;
    const dlm_test_case *cases; /* terminated by {NULL, NULL} */
} dlm_test_suite;

/* Runs every suite (terminated by {NULL, NULL}); returns the exit code. */
int dlm_test_main(int argc, char **argv, const dlm_test_suite *suites);
/* The same under mpiexec: MPI started (errors returned, not fatal), *rank
 * and *size set before any test runs, and the job failing if any rank
 * failed. */
int dlm_test_main_mpi(int argc, char **argv, const dlm_test_suite *suites, int *rank, int *size);

/* max_i |a_i - b_i| / max(max_i |b_i|, floor): one number per comparison. */
double dlm_test_rel_err(const float *a, const double *b, int64_t n, double floor);
double dlm_test_rel_err_f(const float *a, const float *b, int64_t n, double floor);

/* Fills x with uniform values in [-scale, scale) from the test stream. */
void dlm_test_fill(float *x, int64_t n, float scale, uint32_t stream);
void dlm_test_fill_d(double *x, int64_t n, double scale, uint32_t stream);

/* Asserts a status is DLM_OK, printing the error stack if not. */
#define DLM_TEST_OK(expr)                                                   \
    do {                                                                    \
        dlm_status st_ = (expr);                                            \
        if (st_ != DLM_OK) dlm_test_print_error(#expr);                      \
        CU_ASSERT_FATAL(st_ == DLM_OK);                                     \
    } while (0)
void dlm_test_print_error(const char *expr);

/* Asserts |value - expected| <= tol, printing both on failure. */
#define DLM_TEST_NEAR(value, expected, tol, what)                           \
    do {                                                                    \
        double v_ = (value), e_ = (expected), t_ = (tol);                   \
        if (!(fabs(v_ - e_) <= t_))                                         \
            printf("\n  %s: got %.9g, expected %.9g (tolerance %.3g)\n", (what), v_, e_, t_); \
        CU_ASSERT(fabs(v_ - e_) <= t_);                                     \
    } while (0)

/* Asserts value <= bound, printing both on failure. */
#define DLM_TEST_BELOW(value, bound, what)                                  \
    do {                                                                    \
        double v_ = (value), b_ = (bound);                                  \
        if (!(v_ <= b_)) printf("\n  %s: got %.9g, bound %.9g\n", (what), v_, b_); \
        CU_ASSERT(v_ <= b_);                                                \
    } while (0)

#endif
