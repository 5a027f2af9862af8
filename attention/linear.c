/* linear.c — the Linear Transformer: kernel attention with the feature map φ(x) = elu(x) + 1.
 *
 * Katharopoulos, Vyas, Pappas, Fleuret, "Transformers are RNNs: Fast Autoregressive Transformers
 * with Linear Attention", ICML 2020, arXiv 2006.16236 (attention-variants.md §10).
 * For each (batch, head) slice, B3 (§0.4) with r = Dh features:
 *     Φ = φ(Q),  Ψ = m ∘ φ(K),  φ(x) = x + 1 for x > 0, eˣ otherwise (elementwise),
 *     o_i = Φ_i (Ψᵀ V) / (Φ_i · Σ_j Ψ_j + eps),   eps = 1e-6 as in LRA.
 * φ > 0, so every implied attention weight is positive and the denominator is at least eps.
 *
 * Padding: padded keys are masked (Ψ_j = 0), as in the paper's code and the PyTorch ports, so a
 * padded key or value cannot reach an output. LRA's released code
 * (models/linear_transformer/linear_attention.py) does NOT mask padding: its padded keys enter
 * S and z. A query whose keys are all padded gets o = 0 / eps = 0.
 * Attention dropout does not apply: there is no probability matrix to drop (ctx->dropout is
 * ignored, as in LRA's implementation).
 *
 * Complexity: O(T·Dh²) time forward and backward (about 4·T·Dh² flops forward per slice),
 * O(T·Dh + Dh²) memory per slice.
 * Cache:   per slice, the engine's block (attn_kernel.h): Φ, Ψ (T, Dh) each, S (Dh, Dh),
 *          z (Dh), den (T).
 * Scratch: per slice, dΦ and dΨ (T, Dh) each and the engine's backward work.
 * Threads: one OpenMP loop over the B·H slices; BLAS runs single-threaded inside it.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "attn_kernel.h"
#include "lra_attention.h"
#include "lra_vmath.h"

typedef struct linear_priv {
    double eps; /* additive denominator stabiliser */
} linear_priv;

static const lra_attn_option linear_options[] = {
    {.name = "eps", .help = "added to every denominator phi(q).sum phi(k) (LRA: 1e-6)",
     .offset = offsetof(linear_priv, eps), .type = LRA_OPT_FLOAT,
     .def = 1e-6, .min = 0.0, .max = 1.0},
    {.name = NULL},
};

/* The engine's view of one slice: r = dv = Dh, additive eps. */
static lra_kernel_spec linear_spec(const lra_attn_ctx *ctx)
{
    const linear_priv *opt = ctx->priv;
    return (lra_kernel_spec){.T = ctx->shape.len, .r = ctx->shape.dim, .dv = ctx->shape.dim,
                             .norm = LRA_KERNEL_NORM_EPS, .eps = (float)opt->eps};
}

/* Per-slice scratch: dΦ, dΨ (T, r) and the engine's work. */
static size_t linear_slice_scratch(const lra_kernel_spec *sp)
{
    return 2 * (size_t)sp->T * sp->r + lra_kernel_work_floats(sp);
}

/* F (T, D) = mask ∘ (elu(X) + 1) by rows; mask NULL means all rows real. elu(x) + 1 is eˣ for
 * x <= 0, so no expm1 is needed; lra_expf (branch-free, both sides computed and one selected)
 * lets GCC vectorise the row loop, where a libm call ran one element at a time. */
static void linear_features(const float *X, int T, int D, const float *mask, float *F)
{
    for (int i = 0; i < T; i++) {
        const float *x = X + (size_t)i * D; /* (D) */
        float *f = F + (size_t)i * D;       /* (D) */
        if (mask && mask[i] == 0.0f) {
            memset(f, 0, (size_t)D * sizeof(float));
            continue;
        }
        for (int e = 0; e < D; e++) {
            const float ex = lra_expf(x[e]);
            f[e] = x[e] > 0.0f ? x[e] + 1.0f : ex;
        }
    }
}

/* dX (T, D) += G ∘ φ'(X). forward was F = elu(X) + 1, so φ'(x) = 1 for x > 0 and eˣ = F
 * otherwise. Rows masked in forward have F = 0 but also G = 0, so they add nothing. */
static void linear_features_backward(const float *X, const float *F, const float *G, int T,
                                     int D, float *dX)
{
    for (size_t i = 0; i < (size_t)T * D; i++) dX[i] += X[i] > 0.0f ? G[i] : G[i] * F[i];
}

static void linear_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    const lra_kernel_spec sp = linear_spec(ctx);
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * lra_kernel_cache_floats(&sp), /* engine block per slice */
        .n_scratch = slices * linear_slice_scratch(&sp),    /* dΦ, dΨ, work per slice */
    };
}

static double linear_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const lra_kernel_spec sp = linear_spec(ctx);
    /* φ on Q and K: compare, exp or add, and the mask, about 3 flops per element each. */
    return (double)sh->batch * sh->heads * (lra_kernel_flops(&sp) + 6.0 * sh->len * sh->dim);
}

static int linear_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const linear_priv *opt = ctx->priv;
    if (!(opt->eps >= 0.0 && opt->eps <= 1.0)) {
        snprintf(err, errlen, "eps must be in [0, 1], got %g", opt->eps);
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

static void linear_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                           float *out)
{
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * D;
    const lra_kernel_spec sp = linear_spec(ctx);
    const size_t cache_n = lra_kernel_cache_floats(&sp);

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T;         /* (T) */
        const lra_kernel_cache c = lra_kernel_cache_view(&sp, ctx->cache + bh * cache_n);

        linear_features(Q, T, D, NULL, c.phi);
        linear_features(K, T, D, mask, c.psi);
        lra_kernel_forward(&sp, &c, V, out + bh * TD);
    }
}

static void linear_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                            const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * D;
    const lra_kernel_spec sp = linear_spec(ctx);
    const size_t cache_n = lra_kernel_cache_floats(&sp), scratch_n = linear_slice_scratch(&sp);

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T; /* (T) */
        const lra_kernel_cache c = lra_kernel_cache_view(&sp, ctx->cache + bh * cache_n);
        float *dphi = ctx->scratch + bh * scratch_n; /* (T, Dh) */
        float *dpsi = dphi + TD;                     /* (T, Dh) */
        float *work = dpsi + TD;                     /* engine work */

        /* forward was o = B3(Φ, Ψ, V): the engine gives dΦ, dΨ (padded rows 0) and adds dV. */
        lra_kernel_backward(&sp, &c, mask, v + bh * TD, out + bh * TD, dout + bh * TD, dphi,
                            dpsi, dv + bh * TD, work);
        /* forward was Φ = φ(Q), Ψ = m ∘ φ(K), so dQ += dΦ ∘ φ'(Q) and dK += dΨ ∘ φ'(K). */
        linear_features_backward(q + bh * TD, c.phi, dphi, T, D, dq + bh * TD);
        linear_features_backward(k + bh * TD, c.psi, dpsi, T, D, dk + bh * TD);
    }
}

const lra_attention lra_attn_linear = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "linear",
    .help        = "Linear Transformer, phi = elu + 1 (Katharopoulos et al. 2020, arXiv "
                   "2006.16236); O(T Dh^2) time, O(T Dh + Dh^2) memory",
    .flags       = 0,
    .priv_size   = sizeof(linear_priv),
    .options     = linear_options,
    .sizes       = linear_sizes,
    .flops       = linear_flops,
    .init        = linear_init,
    .forward     = linear_forward,
    .backward    = linear_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_linear)
