/* performer.c — Performer: kernel attention with FAVOR+ positive orthogonal random features for
 * the softmax kernel, or LRA's default generalised ReLU kernel.
 *
 * Choromanski et al., "Rethinking Attention with Performers", ICLR 2021, arXiv 2009.14794
 * (attention-variants.md §11). Each (batch, head) slice is B3 (§0.4) over features Φ = φ(Q),
 * Ψ = m ∘ φ(K), with Performer's renormalisation of the denominator: R_i = Φ_i · Σ_j Ψ_j, and
 * R_i += 2δ where |R_i| <= δ = 1e-6. It acts when a query has no real key (R = 0, so o = 0)
 * and, with the softmax kernel, where the features of a query and the keys all sit near their
 * ε floor; with the ReLU kernel R >= 1e-6·r·(real keys) otherwise, so it never acts there.
 *
 * kernel=relu (default; LRA's generalised kernel with features_type 'deterministic'):
 *     φ(x) = ReLU(x) + 1e-3, r = Dh: no random projection and no d^(−1/4) scaling, nothing
 *     random. With relu_proj=1 (features_type 'ortho'), φ(x) = ReLU(W x) + 1e-3, r = m.
 * kernel=softmax (FAVOR+): x' = d^(−1/4) x and, for the rows ω_l of W (m, Dh),
 *     φ(x)_l = m^(−1/2) (exp(ω_l·x' − ‖x'‖²/2 − c) + 1e-4),   r = m,
 *     so that φ(q)·φ(k) estimates exp(q·k/√Dh) (Lemma 1 of the paper). The stabiliser c is the
 *     max of ω_l·x' over l per query, and over l and the real keys for the keys of a slice.
 *     It cancels in the ratio except for the 1e-4 term, but that term is not small: with the
 *     one key maximum per slice, features far below it sit at the ε floor. Backward therefore
 *     differentiates c through its arg-max, as JAX autodiff does in LRA's code, instead of
 *     treating it as a constant (§11's Derived rule, and the PyTorch ports, which detach it):
 *     with c constant the q and k gradients were off by up to 3e-2 (relative) in a
 *     finite-difference check at the test shape.
 * W: ⌈m/Dh⌉ blocks of orthonormal rows (ortho=1; Gram–Schmidt in double, attn_kernel.c) or iid
 * Gaussian rows; row norms chi-distributed (scaling=0, unbiased) or √Dh (scaling=1). One W per
 * layer, shared by all heads, as in LRA's and the paper's code; it lives in ctx->state and is
 * drawn in init from ctx->seed. W is not trained.
 *
 * Redraw: redraw=N > 0 redraws W in a training forward whenever step % N == 0, keyed by
 * (seed, step), so a resumed run draws the same W and evaluation uses the last training draw.
 * The default 0 never redraws, for reproducible evaluation and exact gradient checks. LRA's
 * softmax mode redraws at EVERY call (seeded from the queries); xformers redraws every so many
 * steps; LRA's ReLU mode never redraws.
 *
 * Attention dropout does not apply (no probability matrix; ctx->dropout is ignored, as in LRA).
 * The descriptor is flagged STOCHASTIC because its softmax and relu_proj modes draw W; the
 * default ReLU kernel makes no random draw.
 *
 * Complexity: O(T·r·Dh) time, r = m or Dh: forward per slice about 4·T·r·Dh for the attention
 * plus 4·T·m·Dh for the projections; a redraw costs O(m·Dh²) (Gram–Schmidt).
 * State:   W (m, Dh) when random features are used, else nothing.
 * Cache:   per slice, the engine's block (attn_kernel.h): Φ, Ψ (T, r), S (r, Dh), z (r), den (T);
 *          softmax kernel: then the arg-max of each query's c (T) and of the keys' c (2).
 * Scratch: per slice, dΦ, dΨ (T, r) and the engine's backward work.
 */
#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "attn_kernel.h"
#include "lra_attention.h"
#include "lra_rng.h"

enum { PERFORMER_RELU = 0, PERFORMER_SOFTMAX = 1 };

static const float PERFORMER_FAVOR_EPS = 1e-4f; /* ε inside the softmax features */
static const float PERFORMER_RELU_EPS = 1e-3f;  /* ε_k added to ReLU features */
static const float PERFORMER_DELTA = 1e-6f;     /* renormalisation threshold δ */

typedef struct performer_priv {
    int kernel;    /* PERFORMER_RELU or PERFORMER_SOFTMAX */
    int features;  /* m: random features */
    int ortho;     /* 1: orthogonal blocks */
    int scaling;   /* lra_kernel_scaling: 0 chi norms, 1 √Dh */
    int redraw;    /* steps between redraws; 0 never */
    int relu_proj; /* ReLU kernel over a random projection */
} performer_priv;

static const lra_attn_option performer_options[] = {
    {.name = "kernel", .help = "relu: LRA's generalised ReLU(x) + 1e-3; softmax: FAVOR+",
     .offset = offsetof(performer_priv, kernel), .type = LRA_OPT_CHOICE,
     .def = PERFORMER_RELU, .choices = "relu|softmax"},
    {.name = "features", .help = "random features m (softmax kernel, or relu with relu_proj)",
     .offset = offsetof(performer_priv, features), .type = LRA_OPT_INT,
     .def = 256, .min = 1, .max = 65536},
    {.name = "ortho", .help = "orthogonal random features (blocks of Dh orthonormal rows)",
     .offset = offsetof(performer_priv, ortho), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = "scaling", .help = "orthogonal row norms: 0 chi-distributed (unbiased), 1 sqrt(Dh)",
     .offset = offsetof(performer_priv, scaling), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 1},
    {.name = "redraw", .help = "redraw the features every N training steps; 0 = never",
     .offset = offsetof(performer_priv, redraw), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 1e9},
    {.name = "relu_proj", .help = "relu kernel: apply ReLU to a random projection W x",
     .offset = offsetof(performer_priv, relu_proj), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = NULL},
};

/* 1 when the features use the random matrix W. */
static int performer_random(const performer_priv *opt)
{
    return opt->kernel == PERFORMER_SOFTMAX || opt->relu_proj;
}

static lra_kernel_spec performer_spec(const lra_attn_ctx *ctx)
{
    const performer_priv *opt = ctx->priv;
    return (lra_kernel_spec){.T = ctx->shape.len,
                             .r = performer_random(opt) ? opt->features : ctx->shape.dim,
                             .dv = ctx->shape.dim,
                             .norm = LRA_KERNEL_NORM_RENORM,
                             .eps = PERFORMER_DELTA};
}

/* Per-slice cache: the engine's block, then the FAVOR+ stabilisers' arg-max (softmax kernel). */
static size_t performer_slice_cache(const lra_attn_ctx *ctx, const lra_kernel_spec *sp)
{
    const performer_priv *opt = ctx->priv;
    const size_t args = opt->kernel == PERFORMER_SOFTMAX
                            ? LRA_KERNEL_FAVOR_ARG_FLOATS(sp->T, 0) +
                                  LRA_KERNEL_FAVOR_ARG_FLOATS(sp->T, 1)
                            : 0;
    return lra_kernel_cache_floats(sp) + args;
}

/* Per-slice scratch: dΦ, dΨ (T, r) and the engine's work. */
static size_t performer_slice_scratch(const lra_kernel_spec *sp)
{
    return 2 * (size_t)sp->T * sp->r + lra_kernel_work_floats(sp);
}

/* W for the draw made at `step` (0 in init): a pure function of (seed, step). */
static void performer_draw(lra_attn_ctx *ctx, uint64_t step)
{
    const performer_priv *opt = ctx->priv;
    const uint64_t key = lra_key(lra_key(ctx->seed, 0x9e4f0a11), step);
    lra_kernel_draw_features(ctx->state, opt->features, ctx->shape.dim, opt->ortho,
                             (lra_kernel_scaling)opt->scaling, key);
}

/* F (T, r) = mask ∘ (ReLU(U) + ε_k) in place over U (T, r); mask NULL means all rows real. */
static void performer_relu(float *F, int T, int r, const float *mask)
{
    for (int i = 0; i < T; i++) {
        float *f = F + (size_t)i * r; /* (r) */
        const int real = !mask || mask[i] != 0.0f;
        for (int l = 0; l < r; l++) f[l] = real ? fmaxf(f[l], 0.0f) + PERFORMER_RELU_EPS : 0.0f;
    }
}

/* The FAVOR+ description of this layer's features. */
static lra_kernel_favor performer_favor(const lra_attn_ctx *ctx)
{
    const performer_priv *opt = ctx->priv;
    return (lra_kernel_favor){.W = ctx->state, .m = opt->features, .d = ctx->shape.dim,
                              .eps = PERFORMER_FAVOR_EPS};
}

/* F (T, r) = mask ∘ φ(X) for X (T, Dh); mask NULL for queries. arg: the softmax kernel's
 * stabiliser arg-max (LRA_KERNEL_FAVOR_ARG_FLOATS). */
static void performer_features(const lra_attn_ctx *ctx, const float *X, const float *mask,
                               float *F, float *arg)
{
    const performer_priv *opt = ctx->priv;
    const int T = ctx->shape.len, D = ctx->shape.dim, m = opt->features;
    const float *W = ctx->state; /* (m, Dh) */
    if (opt->kernel == PERFORMER_SOFTMAX) {
        const lra_kernel_favor fv = performer_favor(ctx);
        lra_kernel_favor_features(&fv, X, T, mask, F, arg);
    } else if (opt->relu_proj) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, m, D, 1.0f, X, D, W, D, 0.0f, F,
                    m);
        performer_relu(F, T, m, mask);
    } else {
        memcpy(F, X, (size_t)T * D * sizeof(float));
        performer_relu(F, T, D, mask);
    }
}

/* dX (T, Dh) += the chain of G = ∂L/∂F (T, r) through performer_features (keys: 1 for Ψ); G
 * is overwritten. Rows of G for padded keys are 0 and add nothing. */
static void performer_features_backward(const lra_attn_ctx *ctx, const float *X, int keys,
                                        const float *F, const float *arg, float *G, float *dX)
{
    const performer_priv *opt = ctx->priv;
    const int T = ctx->shape.len, D = ctx->shape.dim, m = opt->features;
    const float *W = ctx->state; /* (m, Dh) */
    if (opt->kernel == PERFORMER_SOFTMAX) {
        const lra_kernel_favor fv = performer_favor(ctx);
        lra_kernel_favor_backward(&fv, X, T, keys, F, arg, G, dX);
    } else if (opt->relu_proj) {
        /* forward was F = ReLU(U) + ε_k with U = X Wᵀ, so dU = G ∘ 1[U > 0] (U > 0 exactly
         * where F > ε_k) and dX += dU W. */
        for (size_t i = 0; i < (size_t)T * m; i++) G[i] = F[i] > PERFORMER_RELU_EPS ? G[i] : 0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, m, 1.0f, G, m, W, D, 1.0f,
                    dX, D);
    } else {
        /* forward was F = ReLU(X) + ε_k, so dX += G ∘ 1[X > 0]. */
        for (size_t i = 0; i < (size_t)T * D; i++) dX[i] += X[i] > 0.0f ? G[i] : 0.0f;
    }
}

static void performer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const performer_priv *opt = ctx->priv;
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    const lra_kernel_spec sp = performer_spec(ctx);
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = performer_random(opt) ? (size_t)opt->features * ctx->shape.dim : 0, /* W */
        .n_cache   = slices * performer_slice_cache(ctx, &sp), /* engine block, arg-max */
        .n_scratch = slices * performer_slice_scratch(&sp),     /* dΦ, dΨ, work per slice */
    };
}

static double performer_flops(const lra_attn_ctx *ctx)
{
    const performer_priv *opt = ctx->priv;
    const lra_attn_shape *sh = &ctx->shape;
    const lra_kernel_spec sp = performer_spec(ctx);
    const double T = sh->len, D = sh->dim, r = sp.r;
    double features; /* for Q and K together */
    if (opt->kernel == PERFORMER_SOFTMAX)
        features = 2.0 * (2.0 * T * r * D + 2.0 * T * D + 5.0 * T * r); /* X Wᵀ, ‖x‖², max, exp */
    else if (opt->relu_proj)
        features = 2.0 * (2.0 * T * r * D + 2.0 * T * r); /* X Wᵀ, ReLU + ε */
    else
        features = 2.0 * 2.0 * T * D;
    return (double)sh->batch * sh->heads * (lra_kernel_flops(&sp) + features);
}

static int performer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const performer_priv *opt = ctx->priv;
    const int random = performer_random(opt);
    if (opt->kernel != PERFORMER_RELU && opt->kernel != PERFORMER_SOFTMAX) {
        snprintf(err, errlen, "kernel must be relu or softmax");
        return LRA_ATTN_EINVAL;
    }
    if (opt->features < 1 || opt->scaling < 0 || opt->scaling > 1 || opt->redraw < 0) {
        snprintf(err, errlen, "features must be >= 1, scaling 0 or 1, redraw >= 0");
        return LRA_ATTN_EINVAL;
    }
    if (opt->redraw > 0 && !random) {
        snprintf(err, errlen, "redraw=%d needs random features: kernel=softmax or relu_proj=1",
                 opt->redraw);
        return LRA_ATTN_EINVAL;
    }
    if (random && opt->ortho && ctx->shape.dim > LRA_KERNEL_MAX_ORTHO_DIM) {
        snprintf(err, errlen, "orthogonal features support head dim <= %d, got %d; use ortho=0",
                 LRA_KERNEL_MAX_ORTHO_DIM, ctx->shape.dim);
        return LRA_ATTN_ESHAPE;
    }
    if (random) performer_draw(ctx, 0);
    return LRA_ATTN_OK;
}

static void performer_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              float *out)
{
    const performer_priv *opt = ctx->priv;
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * D;
    const lra_kernel_spec sp = performer_spec(ctx);
    const size_t cache_n = performer_slice_cache(ctx, &sp);
    const size_t engine_n = lra_kernel_cache_floats(&sp);

    /* Idempotent: every forward at a redraw step draws the same W. */
    if (ctx->training && opt->redraw > 0 && ctx->step % (uint64_t)opt->redraw == 0)
        performer_draw(ctx, ctx->step);

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T; /* (T) */
        float *block = ctx->cache + bh * cache_n;
        const lra_kernel_cache c = lra_kernel_cache_view(&sp, block);
        float *arg_q = block + engine_n, *arg_k = arg_q + T; /* (T), (2): softmax kernel only */

        performer_features(ctx, q + bh * TD, NULL, c.phi, arg_q);
        performer_features(ctx, k + bh * TD, mask, c.psi, arg_k);
        lra_kernel_forward(&sp, &c, v + bh * TD, out + bh * TD);
    }
}

static void performer_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                               const float *out, const float *dout, float *dq, float *dk,
                               float *dv)
{
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * D;
    const lra_kernel_spec sp = performer_spec(ctx);
    const size_t cache_n = performer_slice_cache(ctx, &sp);
    const size_t engine_n = lra_kernel_cache_floats(&sp);
    const size_t scratch_n = performer_slice_scratch(&sp);
    const size_t Tr = (size_t)T * sp.r;

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T; /* (T) */
        float *block = ctx->cache + bh * cache_n;
        const lra_kernel_cache c = lra_kernel_cache_view(&sp, block);
        const float *arg_q = block + engine_n, *arg_k = arg_q + T; /* softmax kernel only */
        float *dphi = ctx->scratch + bh * scratch_n; /* (T, r) */
        float *dpsi = dphi + Tr;                     /* (T, r) */
        float *work = dpsi + Tr;                     /* engine work */

        /* forward was o = B3(Φ, Ψ, V) with renormalisation: the engine gives dΦ, dΨ (padded
         * rows 0) and adds dV. */
        lra_kernel_backward(&sp, &c, mask, v + bh * TD, out + bh * TD, dout + bh * TD, dphi,
                            dpsi, dv + bh * TD, work);
        /* forward was Φ = φ(Q), Ψ = m ∘ φ(K), so chain through φ's Jacobian. */
        performer_features_backward(ctx, q + bh * TD, 0, c.phi, arg_q, dphi, dq + bh * TD);
        performer_features_backward(ctx, k + bh * TD, 1, c.psi, arg_k, dpsi, dk + bh * TD);
    }
}

const lra_attention lra_attn_performer = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "performer",
    .help        = "Performer: generalised ReLU kernel or FAVOR+ positive orthogonal random "
                   "features (Choromanski et al. 2021, arXiv 2009.14794); O(T m Dh) time",
    .flags       = LRA_ATTN_STOCHASTIC,
    .priv_size   = sizeof(performer_priv),
    .options     = performer_options,
    .sizes       = performer_sizes,
    .flops       = performer_flops,
    .init        = performer_init,
    .forward     = performer_forward,
    .backward    = performer_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_performer)
