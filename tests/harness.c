/* CUnit driver and numeric helpers shared by the test programs. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "core/rng.h"
#include "core/status.h"
#include "kernels/blis_info.h"

int dlm_test_main(int argc, char **argv, const dlm_test_suite *suites)
{
    const char *only = argc > 1 ? argv[1] : NULL; /* optional: run one suite */
    if (dlm_blis_init(0, NULL) != DLM_OK) return 2; /* production's kernels; threads from BLIS_NUM_THREADS */
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    for (const dlm_test_suite *s = suites; s->name; s++) {
        if (only && strcmp(only, s->name) != 0) continue;
        CU_pSuite suite = CU_add_suite(s->name, NULL, NULL);
        if (!suite) return 2;
        for (const dlm_test_case *c = s->cases; c->name; c++)
            if (!CU_add_test(suite, c->name, c->fn)) return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}

double dlm_test_rel_err(const float *a, const double *b, int64_t n, double floor)
{
    double maxdiff = 0.0, maxref = floor;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > maxdiff || d != d) maxdiff = d;
        if (fabs(b[i]) > maxref) maxref = fabs(b[i]);
    }
    return maxdiff / maxref;
}

double dlm_test_rel_err_f(const float *a, const float *b, int64_t n, double floor)
{
    double maxdiff = 0.0, maxref = floor;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxdiff || d != d) maxdiff = d;
        if (fabs((double)b[i]) > maxref) maxref = fabs((double)b[i]);
    }
    return maxdiff / maxref;
}

void dlm_test_fill(float *x, int64_t n, float scale, uint32_t stream)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * (float)(2.0 * dlm_rng_uniform(12345, stream, (uint32_t)(i >> 32),
                                                     (uint32_t)i, DLM_RNG_TEST) - 1.0);
}

void dlm_test_fill_d(double *x, int64_t n, double scale, uint32_t stream)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * (2.0 * dlm_rng_uniform(12345, stream, (uint32_t)(i >> 32), (uint32_t)i,
                                              DLM_RNG_TEST) - 1.0);
}

void dlm_test_print_error(const char *expr)
{
    fprintf(stderr, "\n  %s failed:\n%s", expr, dlm_error_text());
    dlm_error_clear();
}

int dlm_test_main_mpi(int argc, char **argv, const dlm_test_suite *suites, int *rank, int *size)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    int rc = dlm_test_main(argc, argv, suites);
    int worst = rc; /* the job fails if any rank failed */
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return worst;
}
