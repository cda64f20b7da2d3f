/* The quintic Newton-Schulz iteration Muon orthogonalises its updates
 * with (Keller Jordan's coefficients): each step maps every singular value
 * s of X to p(s) = a s + b s^3 + c s^5, which pushes values in (0, ~1.2]
 * towards [0.68, 1.2] in five steps without an SVD. The input's spectrum
 * must already lie in (0, 1] (Muon divides by the Frobenius norm first).
 *
 *   float *work = malloc(dlm_ns_work_floats(rows, cols) * sizeof(float));
 *   dlm_newton_schulz(x, rows, cols, 5, work);   // x (rows, cols) row-major, in place
 */
#ifndef DLM_NEWTON_SCHULZ_H
#define DLM_NEWTON_SCHULZ_H

#include <stddef.h>
#include <stdint.h>

#define DLM_NS_A 3.4445f
#define DLM_NS_B (-4.7750f)
#define DLM_NS_C 2.0315f

/* Scratch for dlm_newton_schulz: two s x s Gram products (s = the smaller
 * dimension) and a copy of X. */
size_t dlm_ns_work_floats(int64_t rows, int64_t cols);
/* steps iterations on x (rows, cols) row-major: on the smaller side
 * A = X X^T (or X^T X when rows > cols), B = b A + c A A, X = a X + B X
 * (or X B). On BLIS; the serial reference of the distributed iteration. */
void dlm_newton_schulz(float *x, int64_t rows, int64_t cols, int steps, float *work);

#endif
