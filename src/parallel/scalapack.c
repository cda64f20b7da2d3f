/* BLACS grids over the tp communicator and Newton-Schulz with PSGEMM on
 * the shards (see scalapack.h). Debian ships no ScaLAPACK headers: the
 * prototypes below are the library's C and Fortran entry points. */
#define _GNU_SOURCE
#include "parallel/scalapack.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "optim/newton_schulz.h"

int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *context, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int context, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int context);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void psgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const float *alpha, const float *a, const int *ia, const int *ja, const int *desca,
             const float *b, const int *ib, const int *jb, const int *descb, const float *beta,
             float *c, const int *ic, const int *jc, const int *descc);

/* One BLACS grid: its context and this rank's coordinates. */
typedef struct {
    int ctx, nprow, npcol, myrow, mycol;
} grid;

struct dlm_scalapack {
    int size, rank;
    int handle;           /* BLACS's handle of the communicator */
    grid row_grid;        /* 1 x tp: column-parallel weights */
    grid col_grid;        /* tp x 1: row-parallel weights */
    dlm_ns_group ns;
};

static dlm_status grid_create(int handle, int nprow, int npcol, grid *g)
{
    g->ctx = handle;
    Cblacs_gridinit(&g->ctx, "Row", nprow, npcol);
    Cblacs_gridinfo(g->ctx, &g->nprow, &g->npcol, &g->myrow, &g->mycol);
    DLM_CHECK(g->myrow >= 0 && g->nprow == nprow && g->npcol == npcol, DLM_ERR_SCALAPACK,
              "BLACS could not make a %d x %d grid over the tensor-parallel group (this rank: "
              "row %d of %d)", nprow, npcol, g->myrow, g->nprow);
    return DLM_OK;
}

static dlm_status ns_run(dlm_ns_group *g, float *shard, int64_t rows, int64_t cols,
                         dlm_split_kind split, int steps)
{
    return dlm_scalapack_newton_schulz(g->ctx, shard, rows, cols, split, steps);
}

dlm_status dlm_scalapack_create(MPI_Comm comm, dlm_scalapack **out)
{
    *out = NULL;
    dlm_scalapack *s = calloc(1, sizeof *s);
    DLM_CHECK(s != NULL, DLM_ERR_NOMEM, "the ScaLAPACK grids");
    s->size = 1;
    s->handle = -1;
    s->row_grid.ctx = s->col_grid.ctx = -1;
    dlm_status st = DLM_OK;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_size(comm, &s->size);
        MPI_Comm_rank(comm, &s->rank);
    }
    if (s->size > 1) {
        s->handle = Csys2blacs_handle(comm);
        DLM_CALL_GOTO(st, grid_create(s->handle, 1, s->size, &s->row_grid), fail);
        DLM_CALL_GOTO(st, grid_create(s->handle, s->size, 1, &s->col_grid), fail);
        DLM_CHECK_GOTO(st, s->row_grid.mycol == s->rank && s->col_grid.myrow == s->rank,
                       DLM_ERR_SCALAPACK, fail,
                       "BLACS placed tensor-parallel rank %d at (%d, %d) and (%d, %d); the "
                       "shards need rank order", s->rank, s->row_grid.myrow, s->row_grid.mycol,
                       s->col_grid.myrow, s->col_grid.mycol);
    }
    s->ns = (dlm_ns_group){.size = s->size, .run = ns_run, .ctx = s};
    *out = s;
    return DLM_OK;
fail:
    dlm_scalapack_destroy(&s);
    return st;
}

void dlm_scalapack_destroy(dlm_scalapack **ps)
{
    dlm_scalapack *s = *ps;
    if (!s) return;
    if (s->row_grid.ctx >= 0 && s->row_grid.myrow >= 0) Cblacs_gridexit(s->row_grid.ctx);
    if (s->col_grid.ctx >= 0 && s->col_grid.myrow >= 0) Cblacs_gridexit(s->col_grid.ctx);
    if (s->handle >= 0) Cfree_blacs_system_handle(s->handle);
    free(s);
    *ps = NULL;
}

dlm_ns_group *dlm_scalapack_ns(dlm_scalapack *s) { return &s->ns; }

/* A column-major m x n matrix on grid g in blocks of mb x nb, this rank's
 * part lld x (local columns). */
typedef struct {
    int desc[9];
    int64_t local_rows, local_cols;
} dist;

static dlm_status dist_init(const grid *g, int m, int n, int mb, int nb, const char *what, dist *d)
{
    int zero = 0, info = 0;
    d->local_rows = numroc_(&m, &mb, &g->myrow, &zero, &g->nprow);
    d->local_cols = numroc_(&n, &nb, &g->mycol, &zero, &g->npcol);
    int lld = d->local_rows > 1 ? (int)d->local_rows : 1;
    descinit_(d->desc, &m, &n, &mb, &nb, &zero, &zero, &g->ctx, &lld, &info);
    DLM_CHECK(info == 0, DLM_ERR_SCALAPACK, "descinit of %s (%d x %d in blocks of %d x %d): "
              "argument %d is bad", what, m, n, mb, nb, -info);
    return DLM_OK;
}

dlm_status dlm_scalapack_newton_schulz(dlm_scalapack *s, float *shard, int64_t rows,
                                       int64_t cols, dlm_split_kind split, int steps)
{
    if (s->size == 1) {
        float *work = malloc(dlm_ns_work_floats(rows, cols) * sizeof *work);
        DLM_CHECK(work != NULL, DLM_ERR_NOMEM, "Newton-Schulz scratch for %lld x %lld",
                  (long long)rows, (long long)cols);
        dlm_newton_schulz(shard, rows, cols, steps, work);
        free(work);
        return DLM_OK;
    }
    DLM_CHECK(split == DLM_SPLIT_ROWS || split == DLM_SPLIT_COLS, DLM_ERR_ARG,
              "Newton-Schulz across shards needs a row or column split (kind %d)", (int)split);
    int p = s->size;
    DLM_CHECK(rows <= INT32_MAX && cols <= INT32_MAX &&
                  (split == DLM_SPLIT_ROWS ? rows : cols) % p == 0,
              DLM_ERR_ARG, "a %lld x %lld weight does not split evenly %d ways",
              (long long)rows, (long long)cols, p);
    /* M = W^T (m x n column-major); its smaller side s_ gives the Gram matrix */
    int m = (int)cols, n = (int)rows, one = 1, ss = m <= n ? m : n, wide = m <= n;
    const grid *g = split == DLM_SPLIT_ROWS ? &s->row_grid : &s->col_grid;
    int mb = split == DLM_SPLIT_ROWS ? m : m / p, nb = split == DLM_SPLIT_ROWS ? n / p : n;
    int sb = (ss + p - 1) / p; /* the Gram matrices split the same way, in blocks of sb */
    dist M, A;
    DLM_CALL(dist_init(g, m, n, mb, nb, "the weight", &M));
    DLM_CALL(dist_init(g, ss, ss, split == DLM_SPLIT_ROWS ? ss : sb,
                       split == DLM_SPLIT_ROWS ? sb : ss, "the Gram matrix", &A));
    size_t nM = (size_t)(M.local_rows * M.local_cols), nA = (size_t)(A.local_rows * A.local_cols);
    float *a = malloc((2 * nA + nM + 1) * sizeof *a);
    DLM_CHECK(a != NULL, DLM_ERR_NOMEM, "Newton-Schulz scratch for %lld x %lld", (long long)rows,
              (long long)cols);
    float *b = a + nA, *y = b + nA, f1 = 1.0f, f0 = 0.0f, fa = DLM_NS_A, fb = DLM_NS_B,
          fc = DLM_NS_C;
    for (int it = 0; it < steps; it++) {
        /* A = M M^T (wide) or M^T M (tall) */
        if (wide) psgemm_("N", "T", &ss, &ss, &n, &f1, shard, &one, &one, M.desc, shard, &one,
                          &one, M.desc, &f0, a, &one, &one, A.desc);
        else psgemm_("T", "N", &ss, &ss, &m, &f1, shard, &one, &one, M.desc, shard, &one, &one,
                     M.desc, &f0, a, &one, &one, A.desc);
        /* B = b A + c A A */
        memcpy(b, a, nA * sizeof *b);
        psgemm_("N", "N", &ss, &ss, &ss, &fc, a, &one, &one, A.desc, a, &one, &one, A.desc, &fb,
                b, &one, &one, A.desc);
        /* M = a M + B M (wide) or a M + M B (tall), from a copy */
        memcpy(y, shard, nM * sizeof *y);
        if (wide) psgemm_("N", "N", &m, &n, &m, &f1, b, &one, &one, A.desc, y, &one, &one, M.desc,
                          &fa, shard, &one, &one, M.desc);
        else psgemm_("N", "N", &m, &n, &n, &f1, y, &one, &one, M.desc, b, &one, &one, A.desc, &fa,
                     shard, &one, &one, M.desc);
    }
    free(a);
    return DLM_OK;
}

const char *dlm_scalapack_blas_library(void)
{
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, "sgemm_");
    if (!f || !dladdr(f, &info) || !info.dli_fname) return "unknown (sgemm_ not found)";
    return info.dli_fname;
}
