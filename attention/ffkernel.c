/* ffkernel.c — linear attention through a trainable feed-forward kernel.
 *
 * Yorsh, Kovalenko, "Linear Self-Attention Approximation via Trainable Feedforward Kernel",
 * ICANN 2022 (LNCS 13531), arXiv 2211.04076 (attention-variants.md §16). The full text was not
 * available; the architecture below is §16's proposed reading, an ASSUMPTION: a two-layer
 * perceptron per head, shared by queries and keys, with a positive output map, as the feature
 * map of normalised kernel attention (B3, §0.4):
 *     φ_θ(x) = g(W₂ σ(W₁ x + b₁) + b₂) ∈ R^r,   W₁ (h, Dh), b₁ (h), W₂ (r, h), b₂ (r),
 *     Φ = φ_θ(Q),  Ψ = m ∘ φ_θ(K),  o_i = Φ_i (Ψᵀ V) / (Φ_i · Σ_j Ψ_j + eps),  eps = 1e-6.
 * σ = GELU (erf form, default) or ReLU; g = softplus (default) or elu + 1. Both g are positive,
 * so every implied attention weight is positive. Defaults r = Dh and h = 2·Dh; shared=1 uses one
 * perceptron for all heads. GELU and softplus are the defaults because they are smooth: finite-
 * difference checks then see no kinks.
 *
 * Parameters: per perceptron (H of them, or 1 when shared) the block [W₁, b₁, W₂, b₂], trained
 * with the model. Initialisation from ctx->seed: W₁, W₂ He normal (sd √(2/fan_in)), b₁ = b₂ =
 * 0. (With Glorot's smaller sd the kernel started so flat that attention was nearly uniform,
 * and the q gradient at the generic test shape, 3e-3, sat at the edge of what float32 finite
 * differences resolve.) The gradients are race-free and deterministic: each slice writes its
 * own contribution into scratch, and a second loop adds the slices of each perceptron in slice
 * order.
 *
 * Padding: padded keys are masked (Ψ_j = 0), so neither they nor their values reach an output
 * or a parameter gradient. Not a softmax approximation in itself: the kernel is learnt, and at
 * initialisation it is an arbitrary positive kernel. The tests print its distance from softmax
 * without a bound. Attention dropout does not apply (ctx->dropout is ignored).
 *
 * Complexity: O(T·(Dh·h + h·r + r·Dh)) time forward and backward, about 4·T·r·Dh for the
 * attention plus 2·(2·T·Dh·h + 2·T·h·r) for the perceptron on Q and K per slice;
 * O(T·(h + r) + r·Dh) memory per slice.
 * Cache:   per slice, the engine's block (attn_kernel.h): Φ, Ψ (T, r), S (r, Dh), z (r),
 *          den (T); then the perceptron's pre-activations A₁ and hidden values σ(A₁) (T, h) for
 *          Q and for K.
 * Scratch: per slice, dΦ, dΨ (T, r), dA₁ (T, h), the engine's work, and the slice's parameter
 *          gradient (one perceptron block).
 * Threads: one OpenMP loop over the B·H slices, then one over perceptrons for the reduction.
 * Elementwise maps: erf (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7), exp (lra_vmath.h) and
 * log1p (a short atanh series) are inline arithmetic, so the loops over σ, g and their
 * derivatives vectorise; with libm's erff, log1pf and expm1f they took about three quarters of
 * the variant's time (perf, T = 4096) and the whole variant now runs 4–5× faster.
 */
#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "attn_kernel.h"
#include "lra_attention.h"
#include "lra_rng.h"
#include "lra_vmath.h"

enum { FFK_GELU = 0, FFK_RELU = 1 };      /* hidden activation σ */
enum { FFK_SOFTPLUS = 0, FFK_ELU1 = 1 };  /* positive output map g */

typedef struct ffkernel_priv {
    int hidden;     /* h; 0 selects 2·Dh */
    int features;   /* r; 0 selects Dh */
    int activation; /* FFK_GELU or FFK_RELU */
    int output;     /* FFK_SOFTPLUS or FFK_ELU1 */
    int shared;     /* 1: one perceptron for all heads */
    double eps;     /* additive denominator stabiliser */
} ffkernel_priv;

static const lra_attn_option ffkernel_options[] = {
    {.name = "hidden", .help = "hidden width h of the kernel perceptron; 0 = 2 * head dim",
     .offset = offsetof(ffkernel_priv, hidden), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 65536},
    {.name = "features", .help = "feature dimension r of the kernel; 0 = head dim",
     .offset = offsetof(ffkernel_priv, features), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 65536},
    {.name = "activation", .help = "hidden activation of the perceptron",
     .offset = offsetof(ffkernel_priv, activation), .type = LRA_OPT_CHOICE,
     .def = FFK_GELU, .choices = "gelu|relu"},
    {.name = "output", .help = "positive output map: softplus or elu + 1",
     .offset = offsetof(ffkernel_priv, output), .type = LRA_OPT_CHOICE,
     .def = FFK_SOFTPLUS, .choices = "softplus|elu1"},
    {.name = "shared", .help = "one kernel perceptron for all heads instead of one per head",
     .offset = offsetof(ffkernel_priv, shared), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = "eps", .help = "added to every denominator (as the Linear Transformer: 1e-6)",
     .offset = offsetof(ffkernel_priv, eps), .type = LRA_OPT_FLOAT,
     .def = 1e-6, .min = 0.0, .max = 1.0},
    {.name = NULL},
};

/* The perceptron's sizes and its parameter block [W₁, b₁, W₂, b₂]. */
typedef struct ffk_dims {
    int d, h, r; /* input (Dh), hidden, features */
} ffk_dims;

typedef struct ffk_net {
    const float *W1, *b1, *W2, *b2; /* (h, d), (h), (r, h), (r) */
} ffk_net;

/* The same views into a gradient block. */
typedef struct ffk_grad {
    float *W1, *b1, *W2, *b2; /* (h, d), (h), (r, h), (r) */
} ffk_grad;

static ffk_dims ffk_dims_of(const lra_attn_ctx *ctx)
{
    const ffkernel_priv *opt = ctx->priv;
    const int d = ctx->shape.dim;
    return (ffk_dims){.d = d, .h = opt->hidden ? opt->hidden : 2 * d,
                      .r = opt->features ? opt->features : d};
}

/* Floats of one perceptron's parameter block. */
static size_t ffk_block_floats(const ffk_dims *n)
{
    return (size_t)n->h * n->d + n->h + (size_t)n->r * n->h + n->r;
}

static ffk_net ffk_net_view(const ffk_dims *n, const float *base)
{
    ffk_net w;
    w.W1 = base;
    w.b1 = w.W1 + (size_t)n->h * n->d;
    w.W2 = w.b1 + n->h;
    w.b2 = w.W2 + (size_t)n->r * n->h;
    return w;
}

static ffk_grad ffk_grad_view(const ffk_dims *n, float *base)
{
    ffk_grad g;
    g.W1 = base;
    g.b1 = g.W1 + (size_t)n->h * n->d;
    g.W2 = g.b1 + n->h;
    g.b2 = g.W2 + (size_t)n->r * n->h;
    return g;
}

/* Perceptrons: one per head, or one. */
static int ffk_nets(const lra_attn_ctx *ctx)
{
    const ffkernel_priv *opt = ctx->priv;
    return opt->shared ? 1 : ctx->shape.heads;
}

/* The perceptron that slice bh uses. */
static int ffk_net_of(const lra_attn_ctx *ctx, int bh)
{
    return ffk_nets(ctx) == 1 ? 0 : bh % ctx->shape.heads;
}

static lra_kernel_spec ffk_spec(const lra_attn_ctx *ctx)
{
    const ffkernel_priv *opt = ctx->priv;
    const ffk_dims n = ffk_dims_of(ctx);
    return (lra_kernel_spec){.T = ctx->shape.len, .r = n.r, .dv = ctx->shape.dim,
                             .norm = LRA_KERNEL_NORM_EPS, .eps = (float)opt->eps};
}

/* Per-slice cache: the engine's block, then A₁ and σ(A₁) for Q, then for K (T, h each). */
static size_t ffk_slice_cache(const lra_kernel_spec *sp, const ffk_dims *n)
{
    return lra_kernel_cache_floats(sp) + 4 * (size_t)sp->T * n->h;
}

/* Per-slice scratch: dΦ, dΨ (T, r), dA₁ (T, h), the engine's work, one gradient block. */
static size_t ffk_slice_scratch(const lra_kernel_spec *sp, const ffk_dims *n)
{
    return 2 * (size_t)sp->T * sp->r + (size_t)sp->T * n->h + lra_kernel_work_floats(sp) +
           ffk_block_floats(n);
}

/* ---- the perceptron ---------------------------------------------------------------------- */

static const float FFK_SQRT1_2 = 0.70710678118654752f;    /* 1/√2 */
static const float FFK_INV_SQRT_2PI = 0.39894228040143268f; /* 1/√(2π) */

/* The elementwise maps below are branch-free arithmetic on lra_expf (both sides of every
 * select are computed), so that the loops over them vectorise; libm's erff, log1pf and expm1f
 * are calls and ran one element at a time (a third of the variant's time at T = 4096). */

/* erf(x), Abramowitz & Stegun 7.1.26 with the sign restored: |error| <= 1.5e-7, the size of a
 * float rounding of a value near 1. */
static inline float ffk_erff(float x)
{
    const float ax = x < 0.0f ? -x : x;
    const float t = 1.0f / (1.0f + 0.3275911f * ax);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    const float y = 1.0f - p * t * lra_expf(-ax * ax);
    return x < 0.0f ? -y : y;
}

/* log(1 + t) for t in [0, 1] as 2·atanh(s), s = t/(2 + t) <= 1/3: the odd series to s¹⁵
 * (remainder below 2e-9), no cancellation for small t. */
static inline float ffk_log1p_unit(float t)
{
    const float s = t / (2.0f + t), z = s * s;
    float p = 1.0f / 15.0f;
    p = p * z + 1.0f / 13.0f;
    p = p * z + 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    p = p * z + 1.0f;
    return 2.0f * s * p;
}

/* σ(a): ReLU, or GELU a·Φ(a) with the normal distribution function Φ. */
static inline float ffk_sigma(int act, float a)
{
    if (act == FFK_RELU) return a > 0.0f ? a : 0.0f;
    return 0.5f * a * (1.0f + ffk_erff(a * FFK_SQRT1_2));
}

/* σ'(a): 1[a > 0], or GELU's Φ(a) + a·φ(a) with the normal density φ. */
static inline float ffk_sigma_grad(int act, float a)
{
    if (act == FFK_RELU) return a > 0.0f ? 1.0f : 0.0f;
    const float pdf = FFK_INV_SQRT_2PI * lra_expf(-0.5f * a * a);
    return 0.5f * (1.0f + ffk_erff(a * FFK_SQRT1_2)) + a * pdf;
}

/* g(a): softplus max(a, 0) + log(1 + e^(−|a|)), without overflow, or elu(a) + 1. */
static inline float ffk_out(int out, float a)
{
    if (out == FFK_ELU1) {
        const float e = lra_expf(a);
        return a > 0.0f ? a + 1.0f : e;
    }
    const float ax = a < 0.0f ? -a : a;
    return (a > 0.0f ? a : 0.0f) + ffk_log1p_unit(lra_expf(-ax));
}

/* g'(a) from f = g(a): softplus' = sigmoid(a) = 1 − e^(−f) (f > 0); below f = 1/4 the Taylor
 * series of −expm1(−f) to f⁸ (remainder below 4e-11), where 1 − e^(−f) would cancel.
 * elu + 1: 1 where f > 1, else f. */
static inline float ffk_out_grad(int out, float f)
{
    if (out == FFK_ELU1) return f > 1.0f ? 1.0f : f;
    float p = -1.0f / 40320.0f;
    p = p * f + 1.0f / 5040.0f;
    p = p * f - 1.0f / 720.0f;
    p = p * f + 1.0f / 120.0f;
    p = p * f - 1.0f / 24.0f;
    p = p * f + 1.0f / 6.0f;
    p = p * f - 0.5f;
    p = p * f + 1.0f;
    const float big = 1.0f - lra_expf(-f);
    return f < 0.25f ? f * p : big;
}

/* F (T, r) = mask ∘ g(σ(X W₁ᵀ + b₁) W₂ᵀ + b₂) for X (T, d); mask NULL means all rows real.
 * A1 and Hd (T, h) receive the pre-activations and σ of them. */
static void ffk_features(const ffkernel_priv *opt, const ffk_dims *n, const ffk_net *w,
                         const float *X, int T, const float *mask, float *A1, float *Hd, float *F)
{
    const int d = n->d, h = n->h, r = n->r;
    for (int t = 0; t < T; t++) memcpy(A1 + (size_t)t * h, w->b1, (size_t)h * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, h, d, 1.0f, X, d, w->W1, d, 1.0f, A1,
                h);
    /* One loop per mode, so that each is a straight-line body GCC vectorises. */
    if (opt->activation == FFK_RELU)
        for (size_t i = 0; i < (size_t)T * h; i++) Hd[i] = ffk_sigma(FFK_RELU, A1[i]);
    else
        for (size_t i = 0; i < (size_t)T * h; i++) Hd[i] = ffk_sigma(FFK_GELU, A1[i]);
    for (int t = 0; t < T; t++) memcpy(F + (size_t)t * r, w->b2, (size_t)r * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, r, h, 1.0f, Hd, h, w->W2, h, 1.0f, F,
                r);
    for (int t = 0; t < T; t++) {
        float *f = F + (size_t)t * r; /* (r) */
        if (mask && mask[t] == 0.0f)
            memset(f, 0, (size_t)r * sizeof(float));
        else if (opt->output == FFK_ELU1)
            for (int l = 0; l < r; l++) f[l] = ffk_out(FFK_ELU1, f[l]);
        else
            for (int l = 0; l < r; l++) f[l] = ffk_out(FFK_SOFTPLUS, f[l]);
    }
}

/* b (n) += the column sums of M (T, n), in row order. */
static void ffk_add_column_sums(const float *M, int T, int n, float *b)
{
    for (int t = 0; t < T; t++)
        for (int c = 0; c < n; c++) b[c] += M[(size_t)t * n + c];
}

/* The chain of G = ∂L/∂F (T, r) through ffk_features: ADDS into dX (T, d) and the gradient
 * block gw. G is overwritten with ∂L/∂A₂; dA1 (T, h) is scratch. Rows of G for padded keys are
 * 0, so they add nothing. */
static void ffk_features_backward(const ffkernel_priv *opt, const ffk_dims *n, const ffk_net *w,
                                  const float *X, int T, const float *A1, const float *Hd,
                                  const float *F, float *G, float *dA1, const ffk_grad *gw,
                                  float *dX)
{
    const int d = n->d, h = n->h, r = n->r;
    /* forward was F = g(A₂), so dA₂ = G ∘ g'(A₂), with g' read from F. */
    if (opt->output == FFK_ELU1)
        for (size_t i = 0; i < (size_t)T * r; i++) G[i] *= ffk_out_grad(FFK_ELU1, F[i]);
    else
        for (size_t i = 0; i < (size_t)T * r; i++) G[i] *= ffk_out_grad(FFK_SOFTPLUS, F[i]);
    /* forward was A₂ = σ(A₁) W₂ᵀ + b₂, so dW₂ += dA₂ᵀ σ(A₁), db₂ += Σ_t dA₂, dσ = dA₂ W₂. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, h, T, 1.0f, G, r, Hd, h, 1.0f, gw->W2,
                h);
    ffk_add_column_sums(G, T, r, gw->b2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, h, r, 1.0f, G, r, w->W2, h, 0.0f,
                dA1, h);
    /* forward was σ(A₁), so dA₁ = dσ ∘ σ'(A₁). */
    if (opt->activation == FFK_RELU)
        for (size_t i = 0; i < (size_t)T * h; i++) dA1[i] *= ffk_sigma_grad(FFK_RELU, A1[i]);
    else
        for (size_t i = 0; i < (size_t)T * h; i++) dA1[i] *= ffk_sigma_grad(FFK_GELU, A1[i]);
    /* forward was A₁ = X W₁ᵀ + b₁, so dW₁ += dA₁ᵀ X, db₁ += Σ_t dA₁, dX += dA₁ W₁. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h, d, T, 1.0f, dA1, h, X, d, 1.0f, gw->W1,
                d);
    ffk_add_column_sums(dA1, T, h, gw->b1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, d, h, 1.0f, dA1, h, w->W1, d, 1.0f,
                dX, d);
}

/* ---- the plugin ------------------------------------------------------------------------- */

static void ffkernel_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    const lra_kernel_spec sp = ffk_spec(ctx);
    const ffk_dims n = ffk_dims_of(ctx);
    *out = (lra_attn_sizes){
        .n_params  = (size_t)ffk_nets(ctx) * ffk_block_floats(&n), /* [W₁, b₁, W₂, b₂] each */
        .n_state   = 0,
        .n_cache   = slices * ffk_slice_cache(&sp, &n),   /* engine block, A₁, σ(A₁) */
        .n_scratch = slices * ffk_slice_scratch(&sp, &n), /* dΦ, dΨ, dA₁, work, gradient */
    };
}

static double ffkernel_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const lra_kernel_spec sp = ffk_spec(ctx);
    const ffk_dims n = ffk_dims_of(ctx);
    const double T = sh->len;
    /* Per input (Q, K): two products with their biases, σ (about 10 flops) and g (about 5). */
    const double net = 2.0 * (2.0 * T * n.d * n.h + 11.0 * T * n.h + 2.0 * T * n.h * n.r +
                              6.0 * T * n.r);
    return (double)sh->batch * sh->heads * (lra_kernel_flops(&sp) + net);
}

/* He normal into W (rows, cols): sd √(2/fan_in), fan_in = cols, as for layers followed by a
 * ReLU-like map (σ and g here). */
static void ffk_init_matrix(float *W, int rows, int cols, uint64_t key)
{
    const float sd = sqrtf(2.0f / (float)cols);
    for (size_t i = 0; i < (size_t)rows * cols; i++) W[i] = sd * lra_normal(key, i);
}

static int ffkernel_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const ffkernel_priv *opt = ctx->priv;
    if (opt->hidden < 0 || opt->features < 0 || !(opt->eps >= 0.0 && opt->eps <= 1.0)) {
        snprintf(err, errlen, "hidden and features must be >= 0 (0 = default), eps in [0, 1]");
        return LRA_ATTN_EINVAL;
    }
    if ((opt->activation != FFK_GELU && opt->activation != FFK_RELU) ||
        (opt->output != FFK_SOFTPLUS && opt->output != FFK_ELU1)) {
        snprintf(err, errlen, "activation must be gelu or relu, output softplus or elu1");
        return LRA_ATTN_EINVAL;
    }
    const ffk_dims n = ffk_dims_of(ctx);
    const size_t block = ffk_block_floats(&n);
    const uint64_t key = lra_key(ctx->seed, 0xffe4);
    for (int p = 0; p < ffk_nets(ctx); p++) {
        float *base = ctx->params + (size_t)p * block;
        const ffk_grad w = ffk_grad_view(&n, base); /* writable views of the parameters */
        memset(base, 0, block * sizeof(float));
        ffk_init_matrix(w.W1, n.h, n.d, lra_key(key, 2 * (uint64_t)p));
        ffk_init_matrix(w.W2, n.r, n.h, lra_key(key, 2 * (uint64_t)p + 1));
    }
    return LRA_ATTN_OK;
}

/* Views of one slice's cache beyond the engine block. */
typedef struct ffk_acts {
    float *A1q, *Hq, *A1k, *Hk; /* (T, h) each */
} ffk_acts;

static ffk_acts ffk_acts_view(const lra_kernel_spec *sp, const ffk_dims *n, float *block)
{
    const size_t Th = (size_t)sp->T * n->h;
    ffk_acts a;
    a.A1q = block + lra_kernel_cache_floats(sp);
    a.Hq = a.A1q + Th;
    a.A1k = a.Hq + Th;
    a.Hk = a.A1k + Th;
    return a;
}

static void ffkernel_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                             float *out)
{
    const ffkernel_priv *opt = ctx->priv;
    const int H = ctx->shape.heads, T = ctx->shape.len;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * ctx->shape.dim;
    const lra_kernel_spec sp = ffk_spec(ctx);
    const ffk_dims n = ffk_dims_of(ctx);
    const size_t cache_n = ffk_slice_cache(&sp, &n), block = ffk_block_floats(&n);

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T; /* (T) */
        float *cb = ctx->cache + bh * cache_n;
        const lra_kernel_cache c = lra_kernel_cache_view(&sp, cb);
        const ffk_acts a = ffk_acts_view(&sp, &n, cb);
        const ffk_net w = ffk_net_view(&n, ctx->params + (size_t)ffk_net_of(ctx, bh) * block);

        ffk_features(opt, &n, &w, q + bh * TD, T, NULL, a.A1q, a.Hq, c.phi);
        ffk_features(opt, &n, &w, k + bh * TD, T, mask, a.A1k, a.Hk, c.psi);
        lra_kernel_forward(&sp, &c, v + bh * TD, out + bh * TD);
    }
}

/* dparams += the per-slice gradient blocks in scratch, each perceptron's slices in slice
 * order, so the sum does not depend on the thread count. */
static void ffk_reduce(lra_attn_ctx *ctx, size_t scratch_n, size_t grad_off, size_t block)
{
    const int BH = ctx->shape.batch * ctx->shape.heads, nets = ffk_nets(ctx);
#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int p = 0; p < nets; p++) {
        float *dst = ctx->dparams + (size_t)p * block; /* (block) */
        for (int bh = 0; bh < BH; bh++) {
            if (ffk_net_of(ctx, bh) != p) continue;
            const float *src = ctx->scratch + bh * scratch_n + grad_off; /* (block) */
            for (size_t i = 0; i < block; i++) dst[i] += src[i];
        }
    }
}

static void ffkernel_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              const float *out, const float *dout, float *dq, float *dk,
                              float *dv)
{
    const ffkernel_priv *opt = ctx->priv;
    const int H = ctx->shape.heads, T = ctx->shape.len;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * ctx->shape.dim;
    const lra_kernel_spec sp = ffk_spec(ctx);
    const ffk_dims n = ffk_dims_of(ctx);
    const size_t cache_n = ffk_slice_cache(&sp, &n), block = ffk_block_floats(&n);
    const size_t scratch_n = ffk_slice_scratch(&sp, &n);
    const size_t Tr = (size_t)T * n.r, Th = (size_t)T * n.h;
    const size_t grad_off = 2 * Tr + Th + lra_kernel_work_floats(&sp);

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T; /* (T) */
        float *cb = ctx->cache + bh * cache_n;
        const lra_kernel_cache c = lra_kernel_cache_view(&sp, cb);
        const ffk_acts a = ffk_acts_view(&sp, &n, cb);
        const ffk_net w = ffk_net_view(&n, ctx->params + (size_t)ffk_net_of(ctx, bh) * block);
        float *dphi = ctx->scratch + bh * scratch_n; /* (T, r) */
        float *dpsi = dphi + Tr;                     /* (T, r) */
        float *dA1 = dpsi + Tr;                      /* (T, h) */
        float *work = dA1 + Th;                      /* engine work */
        float *gblock = dphi + grad_off;             /* (block) this slice's dθ */
        const ffk_grad gw = ffk_grad_view(&n, gblock);

        /* forward was o = B3(Φ, Ψ, V): the engine gives dΦ, dΨ (padded rows 0) and adds dV. */
        lra_kernel_backward(&sp, &c, mask, v + bh * TD, out + bh * TD, dout + bh * TD, dphi,
                            dpsi, dv + bh * TD, work);
        /* forward was Φ = φ_θ(Q), Ψ = m ∘ φ_θ(K) with one θ, so both chains add into dθ. */
        memset(gblock, 0, block * sizeof(float));
        ffk_features_backward(opt, &n, &w, q + bh * TD, T, a.A1q, a.Hq, c.phi, dphi, dA1, &gw,
                              dq + bh * TD);
        ffk_features_backward(opt, &n, &w, k + bh * TD, T, a.A1k, a.Hk, c.psi, dpsi, dA1, &gw,
                              dk + bh * TD);
    }
    ffk_reduce(ctx, scratch_n, grad_off, block);
}

const lra_attention lra_attn_ffkernel = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "ffkernel",
    .help        = "linear attention through a trainable perceptron kernel (Yorsh & Kovalenko "
                   "2022, arXiv 2211.04076); O(T (Dh h + h r + r Dh)) time",
    .flags       = 0,
    .priv_size   = sizeof(ffkernel_priv),
    .options     = ffkernel_options,
    .sizes       = ffkernel_sizes,
    .flops       = ffkernel_flops,
    .init        = ffkernel_init,
    .forward     = ffkernel_forward,
    .backward    = ffkernel_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_ffkernel)
