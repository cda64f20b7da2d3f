/* Core: the Philox known-answer vectors, counter determinism, uniform
 * moments, the arena, the error stack, and MPI errors turned into it. */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/mpicall.h"
#include "core/program.h"
#include "core/rng.h"
#include "core/status.h"
#include "harness.h"

/* Random123's published kat_vectors for Philox4x32-10. */
static void test_philox_known_answers(void)
{
    static const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                       {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                                       {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}};
    static const uint32_t key[3][2] = {{0, 0}, {0xffffffff, 0xffffffff}, {0xa4093822, 0x299f31d0}};
    static const uint32_t want[3][4] = {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
                                        {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
                                        {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        dlm_philox4x32_10(ctr[i], key[i], out);
        CU_ASSERT(memcmp(out, want[i], sizeof out) == 0);
    }
}

/* Same (seed, counters) give the same numbers; changing any one field changes them. */
static void test_rng_counters(void)
{
    uint32_t a[4], b[4];
    dlm_rng_u32x4(7, 3, 11, 5, DLM_RNG_MASK, a);
    dlm_rng_u32x4(7, 3, 11, 5, DLM_RNG_MASK, b);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    const uint32_t fields[5][4] = {{8, 3, 11, 5}, {7, 4, 11, 5}, {7, 3, 12, 5}, {7, 3, 11, 6}};
    for (int f = 0; f < 4; f++) {
        dlm_rng_u32x4(fields[f][0], fields[f][1], fields[f][2], fields[f][3], DLM_RNG_MASK, b);
        CU_ASSERT(memcmp(a, b, sizeof a) != 0);
    }
    dlm_rng_u32x4(7, 3, 11, 5, DLM_RNG_TIME, b);
    CU_ASSERT(memcmp(a, b, sizeof a) != 0);
    /* seeds differing only in the high word must differ too */
    dlm_rng_u32x4(7 + (1ull << 32), 3, 11, 5, DLM_RNG_MASK, b);
    CU_ASSERT(memcmp(a, b, sizeof a) != 0);
}

/* Uniform draws: mean 1/2 and variance 1/12 within 4 standard errors
 * (n = 200000: se(mean) = 0.00065, se(var) = 0.00019); normal: mean 0, var 1. */
static void test_rng_moments(void)
{
    const int n = 200000;
    double s = 0, s2 = 0, z = 0, z2 = 0;
    for (int i = 0; i < n; i++) {
        double u = dlm_rng_uniform(42, 0, 0, (uint32_t)i, DLM_RNG_TEST);
        CU_ASSERT(u >= 0.0 && u < 1.0);
        s += u, s2 += u * u;
        double g = dlm_rng_normal(42, 1, 0, (uint32_t)i, DLM_RNG_TEST);
        z += g, z2 += g * g;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    DLM_TEST_NEAR(mean, 0.5, 4 * sqrt(1.0 / 12 / n), "uniform mean");
    DLM_TEST_NEAR(var, 1.0 / 12, 4 * sqrt(1.0 / 180 / n), "uniform variance");
    DLM_TEST_NEAR(z / n, 0.0, 4 * sqrt(1.0 / n), "normal mean");
    DLM_TEST_NEAR(z2 / n, 1.0, 4 * sqrt(2.0 / n), "normal variance");
}

static void test_arena(void)
{
    dlm_arena a;
    DLM_TEST_OK(dlm_arena_create(100, &a));
    float *x, *y;
    DLM_TEST_OK(dlm_arena_take(&a, 3, &x));
    DLM_TEST_OK(dlm_arena_take(&a, 5, &y));
    CU_ASSERT(((uintptr_t)x & 63) == 0);
    CU_ASSERT(((uintptr_t)y & 63) == 0);
    CU_ASSERT(x[0] == 0.0f && y[4] == 0.0f);
    float *z;
    CU_ASSERT(dlm_arena_take(&a, 1000, &z) == DLM_ERR_STATE);
    CU_ASSERT(strstr(dlm_error_text(), "cannot hold") != NULL);
    dlm_error_clear();
    dlm_arena_destroy(&a);
    CU_ASSERT(a.base == NULL);
}

static dlm_status failing_inner(int v)
{
    DLM_CHECK(v > 0, DLM_ERR_ARG, "value must be > 0, got %d", v);
    return DLM_OK;
}
static dlm_status failing_outer(int v)
{
    DLM_CALL(failing_inner(v));
    return DLM_OK;
}

/* The error text names the message and both frames. */
static void test_error_stack(void)
{
    dlm_error_clear();
    CU_ASSERT(failing_outer(1) == DLM_OK);
    CU_ASSERT(failing_outer(-3) == DLM_ERR_ARG);
    const char *t = dlm_error_text();
    CU_ASSERT(strstr(t, "value must be > 0, got -3") != NULL);
    CU_ASSERT(strstr(t, "failing_inner") != NULL);
    CU_ASSERT(strstr(t, "failing_outer") != NULL);
    dlm_error_clear();
    CU_ASSERT(dlm_error_text()[0] == '\0');
}

static dlm_status bcast_from(int root)
{
    int x = 0;
    DLM_MPI(MPI_Bcast(&x, 1, MPI_INT, root, MPI_COMM_WORLD));
    return DLM_OK;
}

/* The programs' MPI start gives at least MPI_THREAD_FUNNELED and makes
 * errors return: a broadcast from a root that does not exist climbs as
 * DLM_ERR_MPI naming the call and MPI's own reason, instead of aborting. */
static void test_mpi_errors_return(void)
{
    int rank = -1, size = -1, level = -1;
    DLM_TEST_OK(dlm_program_start(NULL, NULL, &rank, &size));
    MPI_Query_thread(&level);
    CU_ASSERT(rank == 0 && size == 1 && level >= MPI_THREAD_FUNNELED);
    DLM_TEST_OK(bcast_from(0));
    CU_ASSERT(bcast_from(5) == DLM_ERR_MPI);
    char reason[MPI_MAX_ERROR_STRING];
    int len;
    MPI_Error_string(MPI_ERR_ROOT, reason, &len);
    const char *t = dlm_error_text();
    CU_ASSERT(strstr(t, "MPI_Bcast(&x, 1, MPI_INT, root, MPI_COMM_WORLD) failed") != NULL);
    CU_ASSERT(strstr(t, reason) != NULL && strstr(t, "bcast_from") != NULL);
    dlm_error_clear();
    MPI_Finalize();
}

int main(int argc, char **argv)
{
    static const dlm_test_case rng[] = {{"philox known answers", test_philox_known_answers},
                                        {"counters select streams", test_rng_counters},
                                        {"uniform and normal moments", test_rng_moments},
                                        {NULL, NULL}};
    static const dlm_test_case core[] = {{"arena views", test_arena},
                                         {"error stack", test_error_stack},
                                         {NULL, NULL}};
    static const dlm_test_case mpi[] = {{"MPI errors return with their reason", test_mpi_errors_return},
                                        {NULL, NULL}};
    static const dlm_test_suite suites[] = {{"rng", rng}, {"core", core}, {"mpi", mpi}, {NULL, NULL}};
    return dlm_test_main(argc, argv, suites);
}
