/* ops_fused.c — single passes over memory for chains of element-wise ops (see ops.h).
 *
 * The encoder's element-wise work (GELU, dropout, residual adds) touches the (B·T, D) and
 * (B·T, M) activations several times per layer; at D = 64 each pass over them costs about as
 * much memory traffic as the GEMM that produced them. These functions do each chain in one pass,
 * and the *_grad ones WRITE their output (=) instead of adding to it, so the caller needs no
 * memset to zero a gradient buffer first. Elementwise results are identical to the unfused chain
 * except for GELU's tanh, which is lra_tanhf (lra_vmath.h) so the loop vectorises.
 *
 * Determinism: element-wise, so every output element is written by one thread.
 */
#include <cblas.h>
#include <stddef.h>

#include "lra_rng.h"
#include "lra_vmath.h"
#include "ops.h"

/* Below this many elements, starting an OpenMP team costs more than the loop. */
#define OMP_MIN_WORK 16384

/* Rows per block of op_linear_grad_weight: fixed, so the sum order never depends on threads;
 * small enough that a batch of a few thousand rows still gives every core a block (2048-8192
 * measured equal on 2 cores, 1024 slower). */
#define GRAD_W_ROWS 2048

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* Scale of kept elements; p >= 1 drops everything (lra_uniform < 1 always), so 0. */
static inline float keep_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

/* Inverted dropout of value v at stream position c: v/(1-p) when kept, +0 when dropped. The
 * same test as op_dropout_forward, so fused and unfused passes drop the same elements, and the same +0
 * (not v·0, which is −0 for negative v), so their results are bit-identical. */
static inline float drop(float v, uint64_t key, uint64_t c, float p, float scale)
{
    return lra_uniform(key, c) >= p ? v * scale : 0.0f;
}

static inline float gelu_value(float x)
{
    return 0.5f * x * (1.0f + lra_tanhf(GELU_K * (x + GELU_C * x * x * x)));
}

static inline float gelu_slope(float x)
{
    // y = 0.5 x (1 + tanh(u)), u = k (x + c x^3), so
    // dy/dx = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) k (1 + 3 c x^2)
    const float th = lra_tanhf(GELU_K * (x + GELU_C * x * x * x));
    const float du = GELU_K * (1.0f + 3.0f * GELU_C * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

/* GELU lives here, fused or not, so that there is one definition of it. */
void op_gelu_forward(float *y, const float *x, size_t n) { op_gelu_dropout_forward(y, x, n, 0.0f, 0, 0); }

void op_gelu_backward(float *restrict dx, const float *restrict dy, const float *restrict x,
                      size_t n)
{
    if (!dx) return;
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) dx[i] += gelu_slope(x[i]) * dy[i];
}

void op_gelu_dropout_forward(float *y, const float *x, size_t n, float p, uint64_t key,
                             uint64_t first)
{
    if (p <= 0.0f) {
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN_WORK)
        for (size_t i = 0; i < n; i++) y[i] = gelu_value(x[i]);
        return;
    }
    const float scale = keep_scale(p);
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) y[i] = drop(gelu_value(x[i]), key, first + i, p, scale);
}

/* No restrict on dx and dy: the model runs it in place. */
void op_gelu_dropout_grad(float *dx, const float *dy, const float *restrict x, size_t n, float p,
                          uint64_t key, uint64_t first)
{
    // forward was: y = keep(i) ? gelu(x) * scale : 0
    if (p <= 0.0f) {
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN_WORK)
        for (size_t i = 0; i < n; i++) dx[i] = gelu_slope(x[i]) * dy[i];
        return;
    }
    const float scale = keep_scale(p);
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        dx[i] = gelu_slope(x[i]) * drop(dy[i], key, first + i, p, scale);
}

void op_residual_dropout_forward(float *out, const float *res, const float *y, size_t n, float p,
                                 uint64_t key, uint64_t first)
{
    if (p <= 0.0f) {
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN_WORK)
        for (size_t i = 0; i < n; i++) out[i] = res[i] + y[i];
        return;
    }
    const float scale = keep_scale(p);
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) out[i] = res[i] + drop(y[i], key, first + i, p, scale);
}

void op_dropout_grad(float *restrict dx, const float *restrict dy, size_t n, float p,
                     uint64_t key, uint64_t first)
{
    // forward was: y = keep(i) ? x * scale : 0
    if (p <= 0.0f) {
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN_WORK)
        for (size_t i = 0; i < n; i++) dx[i] = dy[i];
        return;
    }
    const float scale = keep_scale(p);
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) dx[i] = drop(dy[i], key, first + i, p, scale);
}

void op_linear_grad_input(float *restrict dx, const float *restrict dy, const float *restrict w,
                          int n, int in, int out)
{
    // forward was: y = x · w + b, so dx (n, in) = dy (n, out) · w^T, written (beta = 0)
    op_gemm_rows(1, n, in, out, dy, out, w, out, 0.0f, dx, in);
}

size_t op_linear_grad_weight_scratch(int n, int in, int out)
{
    return (size_t)((n + GRAD_W_ROWS - 1) / GRAD_W_ROWS) * in * out;
}

void op_linear_grad_weight(float *restrict dw, const float *restrict x, const float *restrict dy,
                           int n, int in, int out, float *restrict partial)
{
    // forward was: y = x · w + b, so dw (in, out) += x^T (in, n) · dy (n, out), summed here
    // block by block: partial[c] = x_cᵀ dy_c for blocks of GRAD_W_ROWS rows, then added in
    // block order. One big call runs these shapes at ~150-200 GFLOP/s, the blocks at ~290.
    // Always inside our parallel region, even for one block, so that OpenBLAS never picks its
    // own split and the result depends on nothing but the block size.
    const int blocks = (n + GRAD_W_ROWS - 1) / GRAD_W_ROWS;
    const size_t io = (size_t)in * out;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < blocks; c++) {
        const int i0 = c * GRAD_W_ROWS, rows = n - i0 < GRAD_W_ROWS ? n - i0 : GRAD_W_ROWS;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, rows, 1.0f,
                    x + (size_t)i0 * in, in, dy + (size_t)i0 * out, out, 0.0f,
                    partial + (size_t)c * io, out);
    }
#pragma omp parallel for simd schedule(static) if (io * blocks >= OMP_MIN_WORK)
    for (size_t j = 0; j < io; j++) {
        float sum = dw[j];
        for (int c = 0; c < blocks; c++) sum += partial[(size_t)c * io + j];
        dw[j] = sum;
    }
}
