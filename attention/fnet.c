/* fnet.c — FNet Fourier mixing: a parameter-free, non-attention token mixer (baseline).
 *
 * Lee-Thorp, Ainslie, Eckstein, Ontañón, "FNet: Mixing Tokens with Fourier Transforms",
 * NAACL 2022, arXiv 2105.03824. attention-variants.md §20. The paper replaces the attention
 * sublayer by Y = Re(DFT_seq(DFT_hidden(X))). With C_N[a, b] = cos(2πab/N) and
 * S_N[a, b] = sin(2πab/N) (both symmetric) that is Y = C_T X C_D − S_T X S_D.
 *
 * In the q/k/v ABI (adaptation, recorded here). Per (batch, head) slice, X = m∘V (T, Dh): the
 * VALUES, with the rows of padded tokens zeroed; q and k are unused, so dq = dk = 0 (backward
 * adds nothing to them). The hidden DFT runs over the head dimension of each head separately
 * (block-diagonal over heads), not over the whole model width as in the paper; the caller's
 * output projection then mixes the heads. Then
 *     Y = c·m∘(C_T X C_Dh − S_T X S_Dh),   c = 1/sqrt(T·Dh) (normalize=1) or 1 (normalize=0).
 * Padding: padded rows are zeroed before mixing, so nothing a padded token holds reaches an
 * output, and the outputs at padded positions are set to 0. The DFT length is T, the padded
 * length, so an example's output still depends on how much padding it got (FNet has no
 * masking; the paper uses one padded length per task). c = 1/sqrt(T·Dh) keeps the unnormalised
 * DFT's growth (like sqrt(T·Dh)) out of a pre-LayerNorm residual stream; the paper's
 * post-LayerNorm blocks do not need it (§20 "adaptation, record it"); normalize=0 is the paper.
 * Attention dropout: there are no attention probabilities, so ctx->dropout is ignored.
 *
 * By FFT: C_T X C_Dh − S_T X S_Dh = Re(F_T X F_Dh), F_N = C_N − i·S_N, the real part of the
 * two-dimensional DFT of X. One real-to-complex 2-D FFT (T, Dh) gives Z[a][f] for f <= Dh/2;
 * the other half follows from Hermitian symmetry, Re Z[a][f] = Re Z[(T − a) mod T][Dh − f].
 * Backward: the map is linear and its own adjoint (C, S symmetric, so the adjoint of
 * X ↦ C X C − S X S is the same map), hence dX = c·m∘Re(F_T (m∘dY) F_Dh), the same transform
 * applied to dY, and dv += dX; q and k get nothing.
 * Complexity: O(T·Dh·log(T·Dh)) time per slice (about 2.5·T·Dh·log2(T·Dh) flops per real 2-D
 * FFT), forward and backward alike; O(T·Dh) memory per slice.
 *
 * FFTW: a plan pair (SIMD-aligned and FFTW_UNALIGNED) for the (T, Dh) real-to-complex 2-D
 * transform is made in init with FFTW_ESTIMATE (deterministic plan choice, hence the same
 * rounding in every run; the planner is not thread-safe, so planning and destruction run in the
 * named critical section lra_fftw_planner that rpefft.c shares) on arrays allocated and freed
 * there; free() destroys the plans. forward and backward run them on per-slice buffers in
 * ctx->scratch with fftwf_execute_dft_r2c, which is thread-safe. The transform length is the
 * init shape's T (the model never changes len after init, only batch); a forward with another
 * len is a contract violation and aborts. Every slice buffer starts on a multiple of 16 floats,
 * so all slices take the same plan and results do not depend on the thread count.
 * Cache:   nothing (n_cache = 0): the operation is linear.
 * Scratch: per slice the masked input (T·Dh) and its half spectrum (T·(Dh/2 + 1) complex),
 *          each rounded up to 16 floats.
 * Threads: one OpenMP loop over the B·H slices, one thread per slice.
 */
#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lra_attention.h"

enum { FNET_ALIGNED = 0, FNET_UNALIGNED = 1, FNET_PLANS = 2 };

typedef struct fnet_priv {
    int normalize; /* 1: scale by 1/sqrt(T·Dh) */
    /* Set by init, not options: */
    fftwf_plan r2c[FNET_PLANS]; /* real (T, Dh) → complex (T, Dh/2 + 1) */
    int plan_T, plan_D;         /* the shape the plans were made for */
} fnet_priv;

static const lra_attn_option fnet_options[] = {
    {.name = "normalize", .help = "scale the DFT by 1/sqrt(T*Dh) (adaptation for pre-LN; "
                                  "0 = the paper's unnormalised DFT)",
     .offset = offsetof(fnet_priv, normalize), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = NULL},
};

/* n rounded up to a multiple of 16 floats (64 bytes), so every buffer keeps the alignment of
 * the block it lives in. */
static size_t fnet_round(size_t n) { return (n + 15) & ~(size_t)15; }

/* Complex entries per row of the half spectrum. */
static int fnet_half(int D) { return D / 2 + 1; }

static size_t fnet_slice_floats(int T, int D)
{
    return fnet_round((size_t)T * D) + fnet_round(2 * (size_t)T * fnet_half(D));
}

/* One slice's work buffers. */
typedef struct fnet_work {
    float *x; /* (T, Dh) masked input */
    float *z; /* (T, Dh/2 + 1) complex, interleaved (re, im): its 2-D spectrum */
} fnet_work;

static fnet_work fnet_work_at(const lra_attn_ctx *ctx, int bh)
{
    const int T = ctx->shape.len, D = ctx->shape.dim;
    float *base = ctx->scratch + (size_t)bh * fnet_slice_floats(T, D);
    return (fnet_work){.x = base, .z = base + fnet_round((size_t)T * D)};
}

static int fnet_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

/* The forward map (accumulate = 0: Y = ...) or its adjoint added into Y (accumulate = 1):
 * Y (T, Dh) (+)= c·m∘Re(F_T X̄ F_Dh), X̄ = m∘X. The map is self-adjoint, so both are the same
 * transform. Padded rows of Y are zeroed (forward) or left alone (backward). */
static void fnet_apply(const fnet_priv *opt, int T, int D, float c, const float *X,
                       const float *mask, float *Y, int accumulate, fnet_work *w)
{
    const int Dc = fnet_half(D);
    for (int t = 0; t < T; t++) {
        float *row = w->x + (size_t)t * D;
        if (mask[t] != 0.0f)
            memcpy(row, X + (size_t)t * D, (size_t)D * sizeof(float));
        else
            memset(row, 0, (size_t)D * sizeof(float));
    }
    const int p = fftwf_alignment_of(w->x) == 0 && fftwf_alignment_of(w->z) == 0
                      ? FNET_ALIGNED
                      : FNET_UNALIGNED;
    /* The only place the spectrum is handed to FFTW as fftwf_complex. */
    fftwf_execute_dft_r2c(opt->r2c[p], w->x, (fftwf_complex *)w->z);
    for (int a = 0; a < T; a++) {
        float *y = Y + (size_t)a * D;
        if (mask[a] == 0.0f) {
            if (!accumulate) memset(y, 0, (size_t)D * sizeof(float));
            continue;
        }
        /* Row a holds f <= Dh/2; f > Dh/2 is the conjugate of row (T − a) mod T at Dh − f,
         * whose real part is the same. */
        const float *za = w->z + 2 * (size_t)a * Dc;
        const float *zm = w->z + 2 * (size_t)(a == 0 ? 0 : T - a) * Dc;
        for (int f = 0; f < D; f++) {
            const float re = f < Dc ? za[2 * f] : zm[2 * (D - f)];
            y[f] = accumulate ? y[f] + c * re : c * re;
        }
    }
}

static void fnet_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = 0,
        .n_scratch = slices * fnet_slice_floats(ctx->shape.len, ctx->shape.dim),
    };
}

static double fnet_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const double slices = (double)sh->batch * sh->heads, n = (double)sh->len * sh->dim;
    /* One real 2-D FFT of T·Dh points (≈ 2.5·n·log2 n), plus masking and scaling (2 per
     * output). */
    return slices * (2.5 * n * log2(n > 1.0 ? n : 2.0) + 2.0 * n);
}

static void fnet_free(lra_attn_ctx *ctx)
{
    fnet_priv *opt = ctx->priv;
#pragma omp critical(lra_fftw_planner)
    for (int p = 0; p < FNET_PLANS; p++) {
        if (opt->r2c[p]) fftwf_destroy_plan(opt->r2c[p]);
        opt->r2c[p] = NULL;
    }
}

/* Plans for (T, Dh) on arrays allocated here: aligned and FFTW_UNALIGNED. 0, or −1 if FFTW
 * could not allocate or plan. */
static int fnet_make_plans(fnet_priv *opt, int T, int D)
{
    int ok = 0;
#pragma omp critical(lra_fftw_planner)
    {
        float *x = fftwf_alloc_real((size_t)T * D);
        fftwf_complex *z = fftwf_alloc_complex((size_t)T * fnet_half(D));
        if (x && z) {
            static const unsigned flags[FNET_PLANS] = {FFTW_ESTIMATE,
                                                       FFTW_ESTIMATE | FFTW_UNALIGNED};
            ok = 1;
            for (int p = 0; p < FNET_PLANS; p++) {
                opt->r2c[p] = fftwf_plan_dft_r2c_2d(T, D, x, z, flags[p]);
                ok &= opt->r2c[p] != NULL;
            }
        }
        fftwf_free(x);
        fftwf_free(z);
    }
    opt->plan_T = T;
    opt->plan_D = D;
    return ok ? 0 : -1;
}

static int fnet_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    fnet_priv *opt = ctx->priv;
    if (opt->normalize != 0 && opt->normalize != 1) {
        snprintf(err, errlen, "normalize must be 0 or 1, got %d", opt->normalize);
        return LRA_ATTN_EINVAL;
    }
    fnet_free(ctx); /* idempotent if init runs again on the same instance */
    if (fnet_make_plans(opt, ctx->shape.len, ctx->shape.dim) != 0) {
        fnet_free(ctx);
        snprintf(err, errlen, "FFTW could not plan a (%d, %d) real 2-D transform",
                 ctx->shape.len, ctx->shape.dim);
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

/* The plans fix T and Dh: a call with another shape cannot be served (see the header). */
static const fnet_priv *fnet_checked(const lra_attn_ctx *ctx)
{
    const fnet_priv *opt = ctx->priv;
    if (!opt->r2c[0] || opt->plan_T != ctx->shape.len || opt->plan_D != ctx->shape.dim) {
        fprintf(stderr, "fnet: called with len %d, dim %d but planned for %d, %d in init\n",
                ctx->shape.len, ctx->shape.dim, opt->plan_T, opt->plan_D);
        abort();
    }
    return opt;
}

static float fnet_scale(const lra_attn_ctx *ctx)
{
    const fnet_priv *opt = ctx->priv;
    return opt->normalize ? 1.0f / sqrtf((float)ctx->shape.len * (float)ctx->shape.dim) : 1.0f;
}

static void fnet_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                         float *out)
{
    (void)q;
    (void)k; /* FNet mixes the values only */
    const fnet_priv *opt = fnet_checked(ctx);
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H, T = ctx->shape.len;
    const int D = ctx->shape.dim;
    const size_t TD = (size_t)T * D;
    const float c = fnet_scale(ctx);

#pragma omp parallel for schedule(static) num_threads(fnet_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        fnet_work w = fnet_work_at(ctx, bh);
        fnet_apply(opt, T, D, c, v + bh * TD, ctx->key_mask + (size_t)(bh / H) * T,
                   out + bh * TD, 0, &w);
    }
}

static void fnet_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                          const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    (void)q, (void)k, (void)v, (void)out; /* linear: nothing from forward is needed */
    (void)dq, (void)dk;                   /* q and k are unused: their gradient is 0 */
    const fnet_priv *opt = fnet_checked(ctx);
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H, T = ctx->shape.len;
    const int D = ctx->shape.dim;
    const size_t TD = (size_t)T * D;
    const float c = fnet_scale(ctx);

#pragma omp parallel for schedule(static) num_threads(fnet_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        fnet_work w = fnet_work_at(ctx, bh);
        /* forward was Y = c·m∘Re(F X̄ F), X̄ = m∘V, a self-adjoint map, so
         * dV += c·m∘Re(F (m∘dY) F): the same transform on dY, added into dv. */
        fnet_apply(opt, T, D, c, dout + bh * TD, ctx->key_mask + (size_t)(bh / H) * T,
                   dv + bh * TD, 1, &w);
    }
}

const lra_attention lra_attn_fnet = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "fnet",
    .help        = "FNet Fourier token mixing of v, no attention (Lee-Thorp et al. 2021, arXiv "
                   "2105.03824); 2-D real FFT, O(T Dh log(T Dh)) time, O(T Dh) memory",
    .flags       = 0,
    .priv_size   = sizeof(fnet_priv),
    .options     = fnet_options,
    .sizes       = fnet_sizes,
    .flops       = fnet_flops,
    .init        = fnet_init,
    .forward     = fnet_forward,
    .backward    = fnet_backward,
    .free        = fnet_free,
};

LRA_ATTENTION_EXPORT(lra_attn_fnet)
