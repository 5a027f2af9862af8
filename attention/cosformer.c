/* cosformer.c — cosFormer: ReLU kernel attention re-weighted by cos(π(i − j)/(2M)).
 *
 * Qin, Sun, Deng, Li, Wei, Lv, Yan, Kong, Zhong, "cosFormer: Rethinking Softmax in Attention",
 * ICLR 2022, arXiv 2202.08791; official code OpenNLPLab/cosFormer (attention-variants.md §13).
 * For positions i = 1 … T (1-based, as in the code) and the angle θ_i = πi/(2M), the implied
 * attention weight is ReLU(q_i)·ReLU(k_j)·cos(θ_i − θ_j), which by cos(a − b) = sin a sin b +
 * cos a cos b is B3 (§0.4) over r = 2·Dh features:
 *     Φ_i = [ReLU(q_i) sin θ_i, ReLU(q_i) cos θ_i],
 *     Ψ_j = m_j [ReLU(k_j) sin θ_j, ReLU(k_j) cos θ_j],
 *     o_i = Φ_i (Ψᵀ V) / max(Φ_i · Σ_j Ψ_j, eps),   eps = 1e-6 (the code's clamp_min).
 * M ≥ T keeps |θ_i − θ_j| < π/2, so every weight is non-negative.
 *
 * M: horizon=len (default) takes M = T, the padded length of the call — the official code's
 * M = max(source length, target length) of the padded batch. horizon=max_len takes M =
 * shape.max_len, so that the weights of a sequence do not depend on how far the call pads it.
 * Each sample's own true length is NOT used: it would make a real token's output depend on the
 * padding mask through the positions, not only through the masked keys.
 *
 * Padding: padded keys are masked exactly (Ψ_j = 0); the official code has no mask. A query
 * whose keys are all padded, or whose ReLU(q_i) is 0, hits the clamp and gets o_i = 0.
 * Not a softmax approximation: a different attention function (a ReLU kernel with a locality
 * bias). The tests print its distance from softmax without a bound.
 * Attention dropout does not apply (no probability matrix; ctx->dropout is ignored).
 *
 * Complexity: O(T·Dh²) time forward and backward (about 8·T·Dh² flops forward per slice, r =
 * 2·Dh), O(T·Dh + Dh²) memory per slice.
 * Cache:   per slice, the engine's block (attn_kernel.h): Φ, Ψ (T, 2·Dh), S (2·Dh, Dh), z (2·Dh),
 *          den (T).
 * Scratch: per slice, dΦ and dΨ (T, 2·Dh) and the engine's backward work.
 * Threads: one OpenMP loop over the B·H slices; BLAS runs single-threaded inside it.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "attn_kernel.h"
#include "lra_attention.h"

enum { COSFORMER_HORIZON_LEN = 0, COSFORMER_HORIZON_MAX_LEN = 1 };

typedef struct cosformer_priv {
    int horizon; /* COSFORMER_HORIZON_*: what M is */
    double eps;  /* denominator clamp */
} cosformer_priv;

static const lra_attn_option cosformer_options[] = {
    {.name = "horizon", .help = "M in cos(pi (i - j) / (2 M)): len = padded length of the call "
                                "(official code), max_len = the model's maximum length",
     .offset = offsetof(cosformer_priv, horizon), .type = LRA_OPT_CHOICE,
     .def = COSFORMER_HORIZON_LEN, .choices = "len|max_len"},
    {.name = "eps", .help = "denominators are clamped to at least eps (official code: 1e-6)",
     .offset = offsetof(cosformer_priv, eps), .type = LRA_OPT_FLOAT,
     .def = 1e-6, .min = 1e-12, .max = 1.0},
    {.name = NULL},
};

/* The engine's view of one slice: r = 2·Dh (sin and cos halves), dv = Dh, clamp. */
static lra_kernel_spec cosformer_spec(const lra_attn_ctx *ctx)
{
    const cosformer_priv *opt = ctx->priv;
    return (lra_kernel_spec){.T = ctx->shape.len, .r = 2 * ctx->shape.dim, .dv = ctx->shape.dim,
                             .norm = LRA_KERNEL_NORM_CLAMP, .eps = (float)opt->eps};
}

/* M, the horizon of the position angles. */
static int cosformer_horizon(const lra_attn_ctx *ctx)
{
    const cosformer_priv *opt = ctx->priv;
    return opt->horizon == COSFORMER_HORIZON_MAX_LEN ? ctx->shape.max_len : ctx->shape.len;
}

/* Per-slice scratch: dΦ, dΨ (T, r) and the engine's work. */
static size_t cosformer_slice_scratch(const lra_kernel_spec *sp)
{
    return 2 * (size_t)sp->T * sp->r + lra_kernel_work_floats(sp);
}

/* sin θ and cos θ of 0-based row t: θ = π(t + 1)/(2M). */
static void cosformer_angle(int t, int M, float *s, float *c)
{
    const double theta = 3.14159265358979323846 * (t + 1) / (2.0 * M);
    *s = (float)sin(theta);
    *c = (float)cos(theta);
}

/* F (T, 2D) = mask ∘ [ReLU(X) sin θ, ReLU(X) cos θ] by rows of X (T, D); mask NULL: all real. */
static void cosformer_features(const float *X, int T, int D, int M, const float *mask, float *F)
{
    for (int t = 0; t < T; t++) {
        const float *x = X + (size_t)t * D; /* (D) */
        float *f = F + (size_t)t * 2 * D;   /* (2D): sin half, cos half */
        float s, c;
        cosformer_angle(t, M, &s, &c);
        if (mask && mask[t] == 0.0f) s = c = 0.0f;
        for (int e = 0; e < D; e++) {
            const float relu = x[e] > 0.0f ? x[e] : 0.0f;
            f[e] = relu * s;
            f[D + e] = relu * c;
        }
    }
}

/* dX (T, D) += the chain of G = ∂L/∂F (T, 2D) through cosformer_features. Rows of G for padded
 * keys are 0 and add nothing. */
static void cosformer_features_backward(const float *X, const float *G, int T, int D, int M,
                                        float *dX)
{
    for (int t = 0; t < T; t++) {
        const float *x = X + (size_t)t * D, *g = G + (size_t)t * 2 * D; /* (D), (2D) */
        float *dx = dX + (size_t)t * D;                                 /* (D) */
        float s, c;
        cosformer_angle(t, M, &s, &c);
        /* forward was f_e = ReLU(x_e) sin θ and f_{D+e} = ReLU(x_e) cos θ, so
         * dx_e += 1[x_e > 0] (g_e sin θ + g_{D+e} cos θ). */
        for (int e = 0; e < D; e++) { /* unconditional loads and a select: it vectorises */
            const float t = g[e] * s + g[D + e] * c;
            dx[e] += x[e] > 0.0f ? t : 0.0f;
        }
    }
}

static void cosformer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    const lra_kernel_spec sp = cosformer_spec(ctx);
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * lra_kernel_cache_floats(&sp), /* engine block per slice */
        .n_scratch = slices * cosformer_slice_scratch(&sp), /* dΦ, dΨ, work per slice */
    };
}

static double cosformer_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const lra_kernel_spec sp = cosformer_spec(ctx);
    /* Features of Q and K: ReLU and two products per element; sin and cos per row. */
    const double features = 2.0 * (3.0 * sh->len * sh->dim + 2.0 * sh->len);
    return (double)sh->batch * sh->heads * (lra_kernel_flops(&sp) + features);
}

static int cosformer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const cosformer_priv *opt = ctx->priv;
    if (opt->horizon != COSFORMER_HORIZON_LEN && opt->horizon != COSFORMER_HORIZON_MAX_LEN) {
        snprintf(err, errlen, "horizon must be len or max_len");
        return LRA_ATTN_EINVAL;
    }
    if (!(opt->eps > 0.0 && opt->eps <= 1.0)) {
        snprintf(err, errlen, "eps must be in (0, 1], got %g", opt->eps);
        return LRA_ATTN_EINVAL;
    }
    if (cosformer_horizon(ctx) < ctx->shape.len) {
        snprintf(err, errlen, "horizon=max_len needs max_len >= len, got %d < %d",
                 ctx->shape.max_len, ctx->shape.len);
        return LRA_ATTN_ESHAPE;
    }
    return LRA_ATTN_OK;
}

static void cosformer_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              float *out)
{
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H, M = cosformer_horizon(ctx);
    const size_t TD = (size_t)T * D;
    const lra_kernel_spec sp = cosformer_spec(ctx);
    const size_t cache_n = lra_kernel_cache_floats(&sp);

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T; /* (T) */
        const lra_kernel_cache c = lra_kernel_cache_view(&sp, ctx->cache + bh * cache_n);

        cosformer_features(q + bh * TD, T, D, M, NULL, c.phi);
        cosformer_features(k + bh * TD, T, D, M, mask, c.psi);
        lra_kernel_forward(&sp, &c, v + bh * TD, out + bh * TD);
    }
}

static void cosformer_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                               const float *out, const float *dout, float *dq, float *dk,
                               float *dv)
{
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H, M = cosformer_horizon(ctx);
    const size_t TD = (size_t)T * D, Tr = (size_t)T * 2 * D;
    const lra_kernel_spec sp = cosformer_spec(ctx);
    const size_t cache_n = lra_kernel_cache_floats(&sp);
    const size_t scratch_n = cosformer_slice_scratch(&sp);

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T; /* (T) */
        const lra_kernel_cache c = lra_kernel_cache_view(&sp, ctx->cache + bh * cache_n);
        float *dphi = ctx->scratch + bh * scratch_n; /* (T, 2Dh) */
        float *dpsi = dphi + Tr;                     /* (T, 2Dh) */
        float *work = dpsi + Tr;                     /* engine work */

        /* forward was o = B3(Φ, Ψ, V) with a clamped denominator: the engine gives dΦ, dΨ
         * (padded rows 0; no denominator term for clamped rows) and adds dV. */
        lra_kernel_backward(&sp, &c, mask, v + bh * TD, out + bh * TD, dout + bh * TD, dphi,
                            dpsi, dv + bh * TD, work);
        /* forward was Φ = φ(Q), Ψ = m ∘ φ(K), so chain through the position-weighted ReLU. */
        cosformer_features_backward(q + bh * TD, dphi, T, D, M, dq + bh * TD);
        cosformer_features_backward(k + bh * TD, dpsi, T, D, M, dk + bh * TD);
    }
}

const lra_attention lra_attn_cosformer = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "cosformer",
    .help        = "cosFormer: ReLU kernel with cos re-weighting by position (Qin et al. 2022, "
                   "arXiv 2202.08791); O(T Dh^2) time, O(T Dh + Dh^2) memory",
    .flags       = 0,
    .priv_size   = sizeof(cosformer_priv),
    .options     = cosformer_options,
    .sizes       = cosformer_sizes,
    .flops       = cosformer_flops,
    .init        = cosformer_init,
    .forward     = cosformer_forward,
    .backward    = cosformer_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_cosformer)
