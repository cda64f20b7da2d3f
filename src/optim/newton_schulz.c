/* Newton-Schulz on one whole matrix, on BLIS (see newton_schulz.h). */
#include "optim/newton_schulz.h"

#include <string.h>

#include "kernels/kernels.h"

size_t dlm_ns_work_floats(int64_t rows, int64_t cols)
{
    int64_t s = rows < cols ? rows : cols;
    return (size_t)(2 * s * s + rows * cols);
}

void dlm_newton_schulz(float *x, int64_t rows, int64_t cols, int steps, float *work)
{
    int wide = rows <= cols;
    int64_t s = wide ? rows : cols;
    float *A = work, *B = work + s * s, *y = work + 2 * s * s;
    for (int it = 0; it < steps; it++) {
        /* A = X X^T (wide) or X^T X (tall): s x s */
        if (wide) dlm_gemm(0, 1, s, s, cols, 1.0f, x, cols, 1, x, cols, 1, 0.0f, A, s, 1);
        else dlm_gemm(1, 0, s, s, rows, 1.0f, x, cols, 1, x, cols, 1, 0.0f, A, s, 1);
        /* B = b A + c A A */
        memcpy(B, A, (size_t)(s * s) * sizeof *B);
        dlm_gemm(0, 0, s, s, s, DLM_NS_C, A, s, 1, A, s, 1, DLM_NS_B, B, s, 1);
        /* X = a X + B X (wide) or a X + X B (tall), from a copy of X */
        memcpy(y, x, (size_t)(rows * cols) * sizeof *y);
        if (wide) dlm_gemm(0, 0, rows, cols, s, 1.0f, B, s, 1, y, cols, 1, DLM_NS_A, x, cols, 1);
        else dlm_gemm(0, 0, rows, cols, s, 1.0f, y, cols, 1, B, s, 1, DLM_NS_A, x, cols, 1);
    }
}
