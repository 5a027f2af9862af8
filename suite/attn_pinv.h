/* attn_pinv.h — the B4 engine: the iterative Moore–Penrose pseudo-inverse of Nyströmformer
 * (Xiong et al. 2021, attention-variants.md §12) and its exact backward, shared by Nyströmformer
 * (attention/nystrom.c) and Skyformer (attention/skyformer.c).
 *
 * For A (L, L): Z₀ = Aᵀ / c with c the largest column sum of A (column j*), then `it` times
 *     Y = A Z,  Z ← ¼ Z (13I − Y (15I − Y (7I − Y))).
 * Backward unrolls the iterations from the stored iterates, including the gradient through c
 * (every entry of column j*); j* is a discrete choice, which `frozen` lets finite-difference
 * checks keep fixed. Cost: 4 L³-flop products per iteration forward, about 3× that backward.
 */
#ifndef LRA_ATTN_PINV_H
#define LRA_ATTN_PINV_H

/* Zs (it + 1, L, L) = Z₀ .. Z_it for A (L, L); col = {c, j*}, where j* is the column of the
 * largest sum, or, when frozen, the j* col already holds. work: 4 L² floats. */
void lra_pinv_forward(const float *A, int L, int it, int frozen, float *Zs, float *col,
                      float *work);

/* dA (L, L) += the chain of dZ (the final iterate's gradient, destroyed) through
 * lra_pinv_forward, given its Zs and col. work: 8 L² floats. */
void lra_pinv_backward(const float *A, int L, int it, const float *Zs, const float *col,
                       float *dZ, float *dA, float *work);

#endif
