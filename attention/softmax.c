/* softmax.c — exact softmax attention: the reference variant, and the template for new ones.
 *
 * Vaswani et al., "Attention Is All You Need", NeurIPS 2017, arXiv 1706.03762.
 * For each (batch, head) slice, with s = 1/sqrt(Dh) unless the `scale` option says otherwise:
 *     S = s·Q Kᵀ,   P = softmax(S) by rows over the real keys,   O = P̃ V,
 * where P̃ = P ∘ Z/(1−p) is P after attention dropout (keep mask Z, rate p; P̃ = P when not
 * training). Padded keys are left out of the softmax, so their probability is exactly 0 rather
 * than exp(−1e9): nothing a padded key or value holds can reach an output. A query whose keys are
 * all padded gets o = 0 (attention-variants.md §0.3).
 *
 * Complexity: O(T²·Dh) time forward and backward (4·T²·Dh flops forward per slice), O(T²) memory.
 * This is the naive form, kept simple on purpose; the tiled O(T)-memory form (FlashAttention) is
 * a separate variant that is checked against this one.
 *
 * Cache:   P (B, H, T, T), the probabilities BEFORE dropout. Backward needs P itself and not P̃:
 *          dS = P ∘ (dP − D) is non-zero even where dropout zeroed P̃. The dropout mask is not
 *          stored; backward regenerates it from lra_rng with the same key and counters.
 * Scratch: (B, H, T, T), one T×T matrix per slice: P̃ in forward; P̃, then dP̃ → dS in backward.
 *          One per slice rather than per thread, because sizes() may not depend on the number of
 *          threads; each slice is then also computed the same way whatever the thread count.
 *
 * Making a new variant from this file (SQLite's templatevtab idea):
 *  1. Copy it and rename the prefix everywhere:
 *         cp attention/softmax.c attention/NAME.c
 *         sed -i 's/softmax_/NAME_/g; s/lra_attn_softmax/lra_attn_NAME/g; s/"softmax"/"NAME"/' \
 *             attention/NAME.c
 *     The descriptor must be called lra_attn_NAME and its .name must be "NAME", the file name.
 *  2. Rebuild: ninja -C build. The registry is generated from the files in attention/, so there
 *     is no list to edit.
 *  3. Run the attention tests on the unmodified copy: meson test -C build --suite attn. It must
 *     pass. It still claims LRA_ATTN_EXACT, so it is also compared with the test's
 *     double-precision reference.
 *  4. Change it one step at a time, keeping the tests green. Clear LRA_ATTN_EXACT as soon as it
 *     no longer computes exact softmax attention; set LRA_ATTN_STOCHASTIC or LRA_ATTN_NONSMOOTH
 *     if it makes random draws or discrete choices (see lra_attention.h and tests/test_attn.c).
 *  5. Rewrite this comment (paper, arXiv id, complexity, what cache holds), the options table,
 *     sizes() and flops().
 *
 * Threads: one OpenMP loop over the B·H slices. BLAS calls run inside it; Debian's OpenMP build
 * of OpenBLAS then runs them single-threaded instead of nesting a second pool of threads.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>

#include "lra_attention.h"
#include "lra_rng.h"

/* Options, filled by the framework from the table below before init(). */
typedef struct softmax_priv {
    double scale; /* logit scale s; 0 selects 1/sqrt(Dh) */
} softmax_priv;

static const lra_attn_option softmax_options[] = {
    {.name = "scale", .help = "logit scale s in softmax(s*Q*K^T); 0 = 1/sqrt(head dim)",
     .offset = offsetof(softmax_priv, scale), .type = LRA_OPT_FLOAT,
     .def = 0.0, .min = 0.0, .max = 1e3},
    {.name = NULL},
};

static float softmax_scale(const lra_attn_ctx *ctx)
{
    const softmax_priv *opt = ctx->priv;
    return opt->scale > 0.0 ? (float)opt->scale : 1.0f / sqrtf((float)ctx->shape.dim);
}

/* ctx->threads, or the OpenMP default when the framework leaves it at 0 (= all cores). */
static int softmax_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

/* The attention dropout rate in effect: 0 outside training. */
static float softmax_drop_rate(const lra_attn_ctx *ctx)
{
    return ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
}

/* The dropout stream of slice bh at this step. Forward and backward derive the same key, so the
 * mask is regenerated in backward instead of stored, and it does not depend on which thread
 * computes the slice. */
static uint64_t softmax_drop_key(const lra_attn_ctx *ctx, int bh)
{
    return lra_key(lra_key(ctx->seed, ctx->step), (uint64_t)bh);
}

/* dst = src ∘ Z/(1−p) for the T×T keep mask Z of stream `key` (Z_ij = 1 iff the uniform draw at
 * counter i·T + j is >= p). Forward applies it to P; backward applies the same mask to dP̃,
 * because forward was P̃ = P ∘ Z/(1−p). dst may equal src. */
static void softmax_dropout(float *dst, const float *src, int T, uint64_t key, float p)
{
    const float inv_keep = 1.0f / (1.0f - p);
    const size_t TT = (size_t)T * T;
    for (size_t ij = 0; ij < TT; ij++)
        dst[ij] = lra_uniform(key, ij) >= p ? src[ij] * inv_keep : 0.0f;
}

/* Row softmax of the T×T logits in place over the real keys (mask (T), 1 = real). Padded keys,
 * and every key of a row that has no real key, get probability exactly 0. */
static void softmax_rows(float *s, const float *mask, int T)
{
    for (int i = 0; i < T; i++) {
        float *row = s + (size_t)i * T; /* (T) */
        float mx = -INFINITY;
        for (int j = 0; j < T; j++)
            if (mask[j] != 0.0f && row[j] > mx) mx = row[j];
        /* Subtracting the maximum keeps exp() from overflowing; the sum is then >= 1. */
        double sum = 0.0;
        for (int j = 0; j < T; j++) {
            row[j] = mask[j] != 0.0f ? expf(row[j] - mx) : 0.0f;
            sum += row[j];
        }
        const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
        for (int j = 0; j < T; j++) row[j] *= inv;
    }
}

/* Backward of softmax_rows, in place: g holds dP (T, T) on entry and dS on return. */
static void softmax_rows_backward(float *g, const float *P, int T)
{
    for (int i = 0; i < T; i++) {
        float *dp = g + (size_t)i * T;       /* (T) */
        const float *p = P + (size_t)i * T;  /* (T) */
        /* forward was p = exp(s − max) / Σ exp(s − max), so ds_j = p_j (dp_j − Σ_k p_k dp_k).
         * The sum D_i also equals do_i·o_i (FlashAttention uses that, having no P); summing
         * over the stored P keeps the gradient consistent with exactly what forward used. */
        double d = 0.0;
        for (int j = 0; j < T; j++) d += (double)p[j] * dp[j];
        for (int j = 0; j < T; j++) dp[j] = p[j] * (dp[j] - (float)d);
    }
}

static void softmax_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    const size_t TT = (size_t)ctx->shape.len * ctx->shape.len;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * TT, /* P (B, H, T, T) */
        .n_scratch = slices * TT, /* one T×T work matrix per slice (B, H, T, T) */
    };
}

static double softmax_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const double slices = (double)sh->batch * sh->heads, T = sh->len;
    /* Q Kᵀ and P V: 2·T²·Dh each (a multiply-add is 2 flops); the softmax about 5 per entry
     * (max, subtract, exp, sum, normalise). */
    return slices * T * T * (4.0 * sh->dim + 5.0);
}

static int softmax_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const softmax_priv *opt = ctx->priv;
    /* The options parser checks the range already; init also guards callers that fill priv
     * directly. Nothing else to do: no parameters, no fixed random draws. */
    if (!(opt->scale >= 0.0 && isfinite(opt->scale))) {
        snprintf(err, errlen, "scale must be a finite number >= 0 (0 = 1/sqrt(head dim)), got %g",
                 opt->scale);
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

static void softmax_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                            float *out)
{
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * D, TT = (size_t)T * T;
    const float s = softmax_scale(ctx), p = softmax_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(softmax_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T;         /* (T) */
        float *P = ctx->cache + bh * TT;                                  /* (T, T) */
        float *O = out + bh * TD;                                         /* (T, Dh) */

        /* S = s·Q Kᵀ, written straight into the cache and normalised there into P. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, s, Q, D, K, D, 0.0f, P, T);
        softmax_rows(P, mask, T);

        /* O = P̃ V, with P̃ = P when dropout is off. */
        const float *Pd = P; /* (T, T) */
        if (p > 0.0f) {
            float *W = ctx->scratch + bh * TT; /* (T, T) P̃ */
            softmax_dropout(W, P, T, softmax_drop_key(ctx, bh), p);
            Pd = W;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, Pd, T, V, D, 0.0f,
                    O, D);
    }
}

static void softmax_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                             const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    (void)out; /* D_i is summed over the cached P instead; see softmax_rows_backward */
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * D, TT = (size_t)T * T;
    const float s = softmax_scale(ctx), p = softmax_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(softmax_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *dO = dout + bh * TD;                                 /* (T, Dh) */
        float *dQ = dq + bh * TD, *dK = dk + bh * TD, *dV = dv + bh * TD; /* (T, Dh) */
        const float *P = ctx->cache + bh * TT; /* (T, T) from forward */
        float *W = ctx->scratch + bh * TT;     /* (T, T) P̃, then dP̃ → dP → dS */
        const uint64_t key = softmax_drop_key(ctx, bh);

        /* forward was O = P̃ V, so dV += P̃ᵀ dO and dP̃ = dO Vᵀ. */
        const float *Pd = P;
        if (p > 0.0f) {
            softmax_dropout(W, P, T, key, p);
            Pd = W;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, Pd, T, dO, D, 1.0f,
                    dV, D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, dO, D, V, D, 0.0f,
                    W, T);

        /* forward was P̃ = P ∘ Z/(1−p), so dP = dP̃ ∘ Z/(1−p), with Z regenerated. */
        if (p > 0.0f) softmax_dropout(W, W, T, key, p);

        /* forward was P = softmax(S) by rows, so dS = P ∘ (dP − D 1ᵀ). Padded keys and empty
         * rows have P = 0 and therefore dS = 0. */
        softmax_rows_backward(W, P, T);

        /* forward was S = s·Q Kᵀ, so dQ += s·dS K and dK += s·dSᵀ Q. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, s, W, T, K, D, 1.0f,
                    dQ, D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, s, W, T, Q, D, 1.0f,
                    dK, D);
    }
}

/* Attention dropout is applied by every variant that can; it comes from the context, not from
 * an option, so it does not make this variant LRA_ATTN_STOCHASTIC (its evaluation is
 * deterministic). */
const lra_attention lra_attn_softmax = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "softmax",
    .help        = "exact softmax attention (Vaswani et al. 2017, arXiv 1706.03762); "
                   "O(T^2 Dh) time, O(T^2) memory",
    .flags       = LRA_ATTN_EXACT,
    .priv_size   = sizeof(softmax_priv),
    .options     = softmax_options,
    .sizes       = softmax_sizes,
    .flops       = softmax_flops,
    .init        = softmax_init,
    .forward     = softmax_forward,
    .backward    = softmax_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_softmax)
