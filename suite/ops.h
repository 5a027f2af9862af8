/* ops.h — the model's layers as forward/backward pairs of free functions (llm.c style).
 *
 * Argument order: outputs, then what forward saves for backward, then inputs and parameters,
 * then sizes. Backward functions take the matching d-prefixed buffers and ADD into them (+=), so
 * a tensor used twice (the residual stream, the shared dual encoder) accumulates without special
 * cases. Any gradient output may be NULL when the caller does not need it.
 *
 * Shapes use: n rows (usually B*T tokens), d features, B batch, T tokens, D model width,
 * C classes. Row-major throughout. All functions may use OpenMP internally and are
 * deterministic for a fixed thread count (reductions run in a fixed order).
 */
#ifndef LRA_OPS_H
#define LRA_OPS_H

#include <stddef.h>
#include <stdint.h>

/* out (n, d) = table[tok[i]] with table (vocab, d). */
void op_embed_forward(float *out, const int32_t *tok, const float *table, int n, int d);
void op_embed_backward(float *dtable, const float *dout, const int32_t *tok, int n, int d);

/* x (B, T, D) += fixed sinusoidal position code: feature 2i gets sin(t / 10000^(2i/D)),
 * feature 2i+1 gets cos(t / 10000^(2i/D)) (LRA's flax AddPositionEmbs). Its gradient is the
 * identity, so there is no backward. */
void op_add_sinusoid(float *x, int B, int T, int D);

/* x (B, T, D) += pos (T, D): learned position embedding. */
void op_add_pos_forward(float *x, const float *pos, int B, int T, int D);
void op_add_pos_backward(float *dpos, const float *dx, int B, int T, int D);

/* c (n, cols) = a (n, k) · w (k, cols) [wᵀ when trans_w] + beta · c, computed in blocks of rows
 * in parallel, one single-threaded sgemm each (faster for tall thin products; see ops.c). */
void op_gemm_rows(int trans_w, int n, int cols, int k, const float *a, int lda, const float *w,
                  int ldw, float beta, float *c, int ldc);

/* y (n, out) = x (n, in) · w (in, out) + b (out). b may be NULL. Uses BLAS. */
void op_linear_forward(float *y, const float *x, const float *w, const float *b, int n, int in,
                       int out);
void op_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, int n, int in, int out);

/* y (n, d) = (x - mean) * rstd * g + b per row; saves mean (n) and rstd (n). eps = 1e-6 as in
 * flax's LayerNorm. g and b are required. */
void op_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *g,
                          const float *b, int n, int d);
void op_layernorm_backward(float *dx, float *dg, float *db, const float *dy, const float *x,
                           const float *mean, const float *rstd, const float *g, int n, int d);

/* GELU, tanh approximation (flax nn.gelu default and the LRA code); tanh is lra_tanhf. */
void op_gelu_forward(float *y, const float *x, size_t n);
void op_gelu_backward(float *dx, const float *dy, const float *x, size_t n);

/* ReLU: backward reads the forward input x. */
void op_relu_forward(float *y, const float *x, size_t n);
void op_relu_backward(float *dx, const float *dy, const float *x, size_t n);

/* Inverted dropout with a counter-based mask: element i is kept iff
 * lra_uniform(key, first + i) >= p, and kept elements are scaled by 1/(1-p). The same key
 * regenerates the same mask in backward. `first` places the n elements in a larger stream, so a
 * part of a tensor (one process's shard of a batch) draws the whole tensor's mask for that part.
 * p = 0 copies. y may equal x (in place). */
void op_dropout_forward(float *y, const float *x, size_t n, float p, uint64_t key,
                        uint64_t first);
void op_dropout_backward(float *dx, const float *dy, size_t n, float p, uint64_t key,
                         uint64_t first);

/* Softmax cross-entropy over C classes for n examples. Writes probs (n, C) and returns the
 * weighted mean loss sum_i w_i loss_i / sum_i w_i (weight NULL = all 1); rows with weight 0 are
 * skipped, so a padded final evaluation batch counts only its real rows. Loss accumulates in
 * double. */
double op_xent_forward(float *probs, const float *logits, const int32_t *labels,
                       const float *weight, int n, int C);
/* dlogits += (probs - onehot) * weight[i] / sum(weight). */
void op_xent_backward(float *dlogits, const float *probs, const int32_t *labels,
                      const float *weight, int n, int C);

/* Pooling of x (B, T, D) into out (B, D).
 * CLS: out[b] = x[b, 0].
 * MEAN: masked mean, out[b] = sum_t mask[b,t] x[b,t] / max(1, sum_t mask[b,t]). */
void op_pool_cls_forward(float *out, const float *x, int B, int T, int D);
void op_pool_cls_backward(float *dx, const float *dout, int B, int T, int D);
void op_pool_mean_forward(float *out, const float *x, const float *mask, int B, int T, int D);
void op_pool_mean_backward(float *dx, const float *dout, const float *mask, int B, int T, int D);

/* Dual-encoder interaction features f (B, 4D) = [u, v, u*v, u-v] for u, v (B, D). */
void op_dual_features_forward(float *f, const float *u, const float *v, int B, int D);
void op_dual_features_backward(float *du, float *dv, const float *df, const float *u,
                               const float *v, int B, int D);

/* x (n) += y (n). */
void op_add_inplace(float *x, const float *y, size_t n);

/* ---- Fused passes (ops_fused.c): one sweep over memory for a chain of element-wise ops.
 * The *_grad functions WRITE their output (=) rather than add, so no zeroing is needed. Masks
 * are the ones op_dropout_forward draws with the same key and first. */

/* y = Dropout_p(GELU(x)) and its gradient dx = GELU'(x) · mask · dy (dx may equal dy). */
void op_gelu_dropout_forward(float *y, const float *x, size_t n, float p, uint64_t key,
                             uint64_t first);
void op_gelu_dropout_grad(float *dx, const float *dy, const float *x, size_t n, float p,
                          uint64_t key, uint64_t first);
/* out = res + Dropout_p(y): the residual connection around a sub-block. out may equal res. */
void op_residual_dropout_forward(float *out, const float *res, const float *y, size_t n, float p,
                                 uint64_t key, uint64_t first);
/* dx = mask · dy, the gradient through Dropout_p. */
void op_dropout_grad(float *dx, const float *dy, size_t n, float p, uint64_t key,
                     uint64_t first);
/* dx (n, in) = dy (n, out) · wᵀ: op_linear_backward's input gradient, written. */
void op_linear_grad_input(float *dx, const float *dy, const float *w, int n, int in, int out);
/* dw (in, out) += xᵀ dy, op_linear_backward's weight gradient, by blocks of a fixed number of
 * rows summed in order; partial holds op_linear_grad_weight_scratch(n, in, out) floats. */
size_t op_linear_grad_weight_scratch(int n, int in, int out);
void op_linear_grad_weight(float *dw, const float *x, const float *dy, int n, int in, int out,
                           float *partial);

/* Layout changes between the token-major stream (B, T, H*Dh) and the head-major layout of the
 * attention ABI (B, H, T, Dh). `src` has row stride `ld` floats (so q, k and v can be read out of
 * one fused (B, T, 3*H*Dh) projection). */
void op_split_heads(float *dst, const float *src, int ld, int B, int T, int H, int Dh);
/* dst (B, T, ld) rows receive (B, H, T, Dh); with accumulate != 0 it adds instead of copying. */
void op_merge_heads(float *dst, int ld, const float *src, int B, int T, int H, int Dh,
                    int accumulate);

#endif
