/* attn_kernel.h — the B3 engine: normalised kernel ("linear") attention over feature maps, and
 * the random-feature building blocks of FAVOR+ (attention-variants.md §0.4, §11).
 *
 * Shared by the Linear Transformer (attention/linear.c), Performer (attention/performer.c) and
 * later cosFormer, the trainable-kernel variant and the RPE-via-FFT variant. A variant computes
 * its feature maps Φ = φ_q(Q) and Ψ = mask ∘ φ_k(K) into the engine's cache view, calls
 * lra_kernel_forward, and in backward calls lra_kernel_backward for dΦ and dΨ, which it chains
 * through its own feature-map Jacobian.
 *
 * One (batch, head) slice, n = T tokens, r features, value width dv:
 *     S = Ψᵀ V (r, dv),   z = Σ_j Ψ_j (r),   den_i = stab(Φ_i · z) (T),   o_i = Φ_i S / den_i.
 * Every function works on one slice and is safe to call from inside an OpenMP loop over slices:
 * it touches only the buffers it is given. BLAS does the products; Debian's OpenMP OpenBLAS runs
 * them single-threaded inside a parallel region.
 *
 * Cost per slice: forward 4·T·r·dv + 3·T·r + T·dv flops; backward about twice that.
 * Memory: the cache view, 2·T·r + r·dv + r + T floats, and lra_kernel_work_floats() of scratch.
 */
#ifndef LRA_ATTN_KERNEL_H
#define LRA_ATTN_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "lra_attention.h"

/* How the denominator is stabilised, or whether there is one. */
typedef enum lra_kernel_norm {
    LRA_KERNEL_NORM_EPS,     /* den = Φ·z + eps (Linear Transformer, eps 1e-6) */
    LRA_KERNEL_NORM_RENORM,  /* den = R + 2·eps if |R| <= eps else R, R = Φ·z (Performer's
                                renormalize_attention, eps = δ = 1e-6) */
    LRA_KERNEL_NORM_CLAMP,   /* den = max(Φ·z, eps) (cosFormer); no gradient through clamped
                                rows' denominator */
    LRA_KERNEL_NORM_NONE,    /* un-normalised: o = Φ S (Skyformer); z is 0 and den 1 */
} lra_kernel_norm;

/* The sizes and the stabiliser of one slice's computation. */
typedef struct lra_kernel_spec {
    int T;                /* tokens */
    int r;                /* features */
    int dv;               /* value width */
    lra_kernel_norm norm; /* stabiliser */
    float eps;            /* its constant (unused for NORM_NONE) */
} lra_kernel_spec;

/* One slice's cache, as views into a block of lra_kernel_cache_floats() floats. The variant
 * fills phi and psi before lra_kernel_forward; the engine writes S, z and den. */
typedef struct lra_kernel_cache {
    float *phi; /* (T, r) Φ = φ_q(Q) */
    float *psi; /* (T, r) Ψ = mask ∘ φ_k(K): padded keys' rows are 0 */
    float *S;   /* (r, dv) Ψᵀ V */
    float *z;   /* (r) Σ_j Ψ_j */
    float *den; /* (T) stabilised denominators; all 1 for NORM_NONE */
} lra_kernel_cache;

/* Floats of one slice's cache and of the scratch lra_kernel_backward needs. */
size_t lra_kernel_cache_floats(const lra_kernel_spec *sp);
size_t lra_kernel_work_floats(const lra_kernel_spec *sp);

/* Views into base, a block of lra_kernel_cache_floats(sp) floats. */
lra_kernel_cache lra_kernel_cache_view(const lra_kernel_spec *sp, float *base);

/* Forward flops of the engine for one slice (feature maps excluded). */
double lra_kernel_flops(const lra_kernel_spec *sp);

/* c->phi and c->psi filled; writes c->S, c->z, c->den and O (T, dv). V (T, dv). */
void lra_kernel_forward(const lra_kernel_spec *sp, const lra_kernel_cache *c, const float *V,
                        float *O);

/* Given dO (T, dv) and the forward's cache and output O (T, dv): WRITES dphi (T, r) = ∂L/∂Φ and
 * dpsi (T, r) = mask ∘ ∂L/∂Ψ (padded keys' rows are 0: the mask multiplies φ_k in forward, so
 * the rows are the gradient with respect to φ_k(k_j) already), and ADDS ∂L/∂V into dV (T, dv).
 * mask (T) is 1 for a real key, 0 for padding. work holds lra_kernel_work_floats(sp) floats. */
void lra_kernel_backward(const lra_kernel_spec *sp, const lra_kernel_cache *c, const float *mask,
                         const float *V, const float *O, const float *dO, float *dphi,
                         float *dpsi, float *dV, float *work);

/* ---- random features (FAVOR+, §11) ------------------------------------------------------ */

/* Largest head dimension lra_kernel_draw_features orthogonalises (a stack buffer; no malloc). */
#define LRA_KERNEL_MAX_ORTHO_DIM 512

/* Row norms of the feature matrix. */
typedef enum lra_kernel_scaling {
    LRA_KERNEL_SCALE_CHI = 0,  /* each row's norm is that of an independent Gaussian d-vector:
                                  rows are then marginally N(0, I), and the estimator unbiased */
    LRA_KERNEL_SCALE_SQRTD = 1 /* every row has norm √d (ortho_scaling = 1) */
} lra_kernel_scaling;

/* Fills W (m, d) with random feature directions ω_l, a pure function of key. ortho: blocks of d
 * orthonormal rows (modified Gram–Schmidt twice, in double, of Gaussian rows; the last block
 * keeps the rows it needs), then rescaled by `scaling`; otherwise iid N(0, I) rows (`scaling`
 * ignored). Requires d <= LRA_KERNEL_MAX_ORTHO_DIM when ortho. */
void lra_kernel_draw_features(float *W, int m, int d, int ortho, lra_kernel_scaling scaling,
                              uint64_t key);

/* The FAVOR+ positive softmax features (§11) of one slice: the random directions and ε. */
typedef struct lra_kernel_favor {
    const float *W; /* (m, d) rows ω_l */
    int m;          /* features */
    int d;          /* head dimension */
    float eps;      /* ε added inside every feature (LRA: 1e-4) */
} lra_kernel_favor;

/* Floats lra_kernel_favor_features records about its stabiliser: T for queries, 2 for keys. */
#define LRA_KERNEL_FAVOR_ARG_FLOATS(T, keys) ((keys) ? 2 : (T))

/* Features of the rows of X (T, d), into F (T, m):
 *     F_il = m^(−1/2) · (exp(ω_l·x'_i − ‖x'_i‖²/2 − c) + ε),   x' = d^(−1/4) x,
 * so that E[F_q · F_k] = exp(q·k/√d)·exp(−c_q − c_k) when ε = 0 (Lemma 1 of the paper).
 * Queries (mask NULL): c_i = max_l ω_l·x'_i per row; arg (T) gets the arg-max l of each row.
 * Keys (mask (T) given): c = max over l and over the real rows, one value for the slice, and
 * padded rows of F are 0; arg (2) gets the arg-max (j, l), or (−1, −1) if no row is real.
 * Indices are stored as floats (exact below 2^24) so that they can live in a plugin's cache. */
void lra_kernel_favor_features(const lra_kernel_favor *fv, const float *X, int T,
                               const float *mask, float *F, float *arg);

/* Backward of lra_kernel_favor_features (keys: 1 if it was called with a mask): given its F and
 * arg and G = ∂L/∂F (T, m), ADDS ∂L/∂X into dX (T, d). The gradient is exact, including the
 * stabiliser c through its arg-max (c cancels in the attention ratio except for the ε terms, but
 * those dominate features far below the maximum). G is overwritten with G ∘ (F − m^(−1/2)ε).
 * Rows of G that are 0 (padded keys) contribute nothing. */
void lra_kernel_favor_backward(const lra_kernel_favor *fv, const float *X, int T, int keys,
                               const float *F, const float *arg, float *G, float *dX);

/* ctx->threads, or the OpenMP default when it is 0. */
int lra_kernel_threads(const lra_attn_ctx *ctx);

#endif
