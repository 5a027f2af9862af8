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
 * Row chunks: each slice is processed `rows` query rows at a time (default 64), each chunk
 * against all T keys, so only a rows × T block of S exists at any time, never T × T. Forward
 * keeps just each row's log-sum-exp L_i = log Σ_j exp(S_ij) over the real keys; backward
 * recomputes S and P = exp(S − L) chunk by chunk. rows = 0 takes the whole slice as one chunk:
 * a T × T score matrix per slice, the materialised form of LRA's vanilla Transformer, kept for
 * comparison. Every chunk size computes the same numbers up to float32 rounding
 * (tests/test_attn_softmax_rows.c). This is still the naive form: one pass over all keys per
 * row, no online softmax; the key-tiled form (FlashAttention) is the separate variant flash.c,
 * checked against this one.
 *
 * Complexity: O(T²·Dh) time: per slice 4·T²·Dh flops forward, 10·T²·Dh backward (2·T²·Dh of
 * them recomputing S). Memory O(rows·T) per slice, O(T) at a fixed `rows`; O(T²) with rows = 0.
 *
 * Cache:   L (B, H, T), each query's log-sum-exp over its real keys; −∞ when it has none. Backward
 *          needs P itself and not P̃ (dS = P ∘ (dP − D) is non-zero where dropout zeroed P̃), and
 *          P = exp(S − L) from the recomputed S. The dropout mask is not stored either: backward
 *          regenerates it from lra_rng with the same key and counters.
 * Scratch: per slice, two rows × T blocks (S → P → P̃ in forward; P → P̃ and dP̃ → dS in
 *          backward) and one T row of keep factors Z/(1−p). Per slice rather than per thread,
 *          because sizes() may not depend on the number of threads; each slice is then also
 *          computed the same way whatever the thread count.
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
#include <stdint.h>
#include <stdio.h>

#include "lra_attention.h"
#include "lra_rng.h"
#include "lra_vmath.h"

/* Options, filled by the framework from the table below before init(). */
typedef struct softmax_priv {
    double scale; /* logit scale s; 0 selects 1/sqrt(Dh) */
    int rows;     /* query rows per chunk; 0 = the whole slice */
} softmax_priv;

static const lra_attn_option softmax_options[] = {
    {.name = "scale", .help = "logit scale s in softmax(s*Q*K^T); 0 = 1/sqrt(head dim)",
     .offset = offsetof(softmax_priv, scale), .type = LRA_OPT_FLOAT,
     .def = 0.0, .min = 0.0, .max = 1e3},
    {.name = "rows", .help = "query rows per chunk (clamped to the sequence length): scratch "
     "2*rows*T floats per (batch, head), O(T) memory; 0 = whole slice at once, a TxT score "
     "matrix per (batch, head), O(T^2) memory as LRA's vanilla Transformer",
     .offset = offsetof(softmax_priv, rows), .type = LRA_OPT_INT,
     .def = 64, .min = 0, .max = 1 << 20},
    {.name = NULL},
};

/* Lanes of the partial maxima and sums below: one AVX-512 register of floats. Without
 * -ffast-math GCC keeps a single running max or sum in order, one element at a time; partial
 * results in independent lanes let it vectorise the loop. */
enum { SOFTMAX_LANES = 16 };

static float softmax_scale(const lra_attn_ctx *ctx)
{
    const softmax_priv *opt = ctx->priv;
    return opt->scale > 0.0 ? (float)opt->scale : 1.0f / sqrtf((float)ctx->shape.dim);
}

/* Query rows per chunk: the option clamped to T; 0 means all T. */
static int softmax_chunk_rows(const lra_attn_ctx *ctx)
{
    const softmax_priv *opt = ctx->priv;
    const int T = ctx->shape.len;
    return opt->rows > 0 && opt->rows < T ? opt->rows : T;
}

/* Scratch floats of one slice: two chunk blocks and the keep factors of one row. */
static size_t softmax_slice_scratch(const lra_attn_ctx *ctx)
{
    const size_t T = (size_t)ctx->shape.len;
    return 2 * (size_t)softmax_chunk_rows(ctx) * T + T;
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
    return lra_attn_step_stream(ctx, bh);
}

/* z[j] = Z_ij/(1−p) for query i of the slice: Z_ij = 1 iff the uniform draw of stream `key` at
 * counter i·T + j is >= p. Forward multiplies row i of P by it, backward row i of dP̃; the
 * counter does not depend on the chunk size, so neither does the mask. */
static void softmax_keep_row(float *z, int i, int T, uint64_t key, float p)
{
    const float inv_keep = 1.0f / (1.0f - p);
    const uint64_t row = (uint64_t)i * (uint64_t)T;
    for (int j = 0; j < T; j++) z[j] = lra_uniform(key, row + (uint64_t)j) >= p ? inv_keep : 0.0f;
}

/* The largest logit of x (T) over the real keys (mask (T), 1 = real); −∞ if there is none. */
static float softmax_row_max(const float *x, const float *mask, int T)
{
    float m[SOFTMAX_LANES];
    for (int l = 0; l < SOFTMAX_LANES; l++) m[l] = -INFINITY;
    int j = 0;
    for (; j + SOFTMAX_LANES <= T; j += SOFTMAX_LANES)
#pragma GCC unroll 1 /* unrolled, GCC 12 turns the lanes back into scalar maxss */
        for (int l = 0; l < SOFTMAX_LANES; l++) {
            const float xj = mask[j + l] != 0.0f ? x[j + l] : -INFINITY;
            m[l] = xj > m[l] ? xj : m[l];
        }
    for (; j < T; j++) {
        const float xj = mask[j] != 0.0f ? x[j] : -INFINITY;
        m[0] = xj > m[0] ? xj : m[0];
    }
    float mx = m[0];
    for (int l = 1; l < SOFTMAX_LANES; l++) mx = m[l] > mx ? m[l] : mx;
    return mx;
}

/* x[j] = exp(x[j] − c) for real keys and exactly 0 for padded ones, in place. c must be finite.
 * No sum in this loop: a double accumulator in it stops GCC from vectorising the exp. */
static void softmax_exp_row(float *x, const float *mask, int T, float c)
{
    for (int j = 0; j < T; j++) x[j] = mask[j] != 0.0f ? lra_expf(x[j] - c) : 0.0f;
}

/* Σ_j x[j] over T entries, in double. */
static double softmax_sum(const float *x, int T)
{
    double acc[SOFTMAX_LANES] = {0};
    int j = 0;
    for (; j + SOFTMAX_LANES <= T; j += SOFTMAX_LANES)
        for (int l = 0; l < SOFTMAX_LANES; l++) acc[l] += x[j + l];
    for (; j < T; j++) acc[0] += x[j];
    double sum = 0.0;
    for (int l = 0; l < SOFTMAX_LANES; l++) sum += acc[l];
    return sum;
}

/* Σ_j a[j]·b[j] over T entries, in double. */
static double softmax_dot(const float *a, const float *b, int T)
{
    double acc[SOFTMAX_LANES] = {0};
    int j = 0;
    for (; j + SOFTMAX_LANES <= T; j += SOFTMAX_LANES)
        for (int l = 0; l < SOFTMAX_LANES; l++) acc[l] += (double)a[j + l] * b[j + l];
    for (; j < T; j++) acc[0] += (double)a[j] * b[j];
    double sum = 0.0;
    for (int l = 0; l < SOFTMAX_LANES; l++) sum += acc[l];
    return sum;
}

/* Softmax of the logit row x (T) in place over the real keys; returns its log-sum-exp L. Padded
 * keys, and every key of a row that has no real key, get probability exactly 0; L is then −∞. */
static float softmax_row(float *x, const float *mask, int T)
{
    const float mx = softmax_row_max(x, mask, T);
    if (mx == -INFINITY) {
        for (int j = 0; j < T; j++) x[j] = 0.0f;
        return -INFINITY;
    }
    /* Subtracting the maximum keeps exp() from overflowing; the sum is then >= 1. */
    softmax_exp_row(x, mask, T, mx);
    const double sum = softmax_sum(x, T);
    const float inv = (float)(1.0 / sum);
    for (int j = 0; j < T; j++) x[j] *= inv;
    return mx + (float)log(sum);
}

/* P = exp(S − L) in place on the logit row x (T): forward's probabilities, from its L. */
static void softmax_row_recompute(float *x, const float *mask, int T, float L)
{
    if (L == -INFINITY) { /* no real key: forward gave P = 0 */
        for (int j = 0; j < T; j++) x[j] = 0.0f;
        return;
    }
    softmax_exp_row(x, mask, T, L);
}

/* Backward of one row through dropout and softmax. On entry g = dP̃ and pr = P (T); on return
 * g = dS and pr = P̃. z (T) holds the keep factors, NULL without dropout. */
static void softmax_row_backward(float *restrict g, float *restrict pr, const float *z, int T)
{
    /* forward was P̃ = P ∘ Z/(1−p), so dP = dP̃ ∘ Z/(1−p). */
    if (z)
        for (int j = 0; j < T; j++) g[j] *= z[j];
    /* forward was P = softmax(S) by rows, so dS_j = P_j (dP_j − D) with D = Σ_k P_k dP_k. D also
     * equals Σ_k P̃_k dP̃_k = do·o (flash.c uses that, having no row of P); summing over the
     * recomputed P keeps dS consistent with exactly the P used here. Padded keys and empty rows
     * have P = 0 and therefore dS = 0. */
    const float d = (float)softmax_dot(pr, g, T);
    for (int j = 0; j < T; j++) g[j] = pr[j] * (g[j] - d);
    if (z)
        for (int j = 0; j < T; j++) pr[j] *= z[j];
}

static void softmax_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * (size_t)ctx->shape.len,      /* L (B, H, T) */
        .n_scratch = slices * softmax_slice_scratch(ctx), /* 2 chunk blocks + keep row per slice */
    };
}

static double softmax_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const double slices = (double)sh->batch * sh->heads, T = sh->len;
    /* Q Kᵀ and P V: 2·T²·Dh each (a multiply-add is 2 flops); the softmax about 5 per entry
     * (max, subtract, exp, sum, normalise). The chunk size changes none of it. */
    return slices * T * T * (4.0 * sh->dim + 5.0);
}

static int softmax_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const softmax_priv *opt = ctx->priv;
    /* The options parser checks the ranges already; init also guards callers that fill priv
     * directly. Nothing else to do: no parameters, no fixed random draws. Any chunk size works
     * with any length: the last chunk may be partial. */
    if (!(opt->scale >= 0.0 && isfinite(opt->scale))) {
        snprintf(err, errlen, "scale must be a finite number >= 0 (0 = 1/sqrt(head dim)), got %g",
                 opt->scale);
        return LRA_ATTN_EINVAL;
    }
    if (opt->rows < 0) {
        snprintf(err, errlen, "rows must be >= 0 (0 = the whole sequence), got %d", opt->rows);
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

static void softmax_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                            float *out)
{
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H, R = softmax_chunk_rows(ctx);
    const size_t TD = (size_t)T * D;
    const float s = softmax_scale(ctx), p = softmax_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(softmax_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T;         /* (T) */
        float *L = ctx->cache + (size_t)bh * T;                           /* (T) */
        float *O = out + bh * TD;                                         /* (T, Dh) */
        float *P = ctx->scratch + bh * softmax_slice_scratch(ctx);        /* (R, T) */
        float *z = P + 2 * (size_t)R * T; /* (T), past backward's second (R, T) block */
        const uint64_t key = softmax_drop_key(ctx, bh);

        for (int i0 = 0; i0 < T; i0 += R) {
            const int nr = T - i0 < R ? T - i0 : R; /* rows of this chunk */
            const float *Qc = Q + (size_t)i0 * D;   /* (nr, Dh) */

            /* S = s·Q_c Kᵀ, normalised in place by rows into P, then P̃ = P ∘ Z/(1−p). */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, s, Qc, D, K, D, 0.0f,
                        P, T);
            for (int r = 0; r < nr; r++) {
                float *row = P + (size_t)r * T; /* (T) */
                L[i0 + r] = softmax_row(row, mask, T);
                if (p > 0.0f) {
                    softmax_keep_row(z, i0 + r, T, key, p);
                    for (int j = 0; j < T; j++) row[j] *= z[j];
                }
            }

            /* O_c = P̃ V. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, T, 1.0f, P, T, V, D,
                        0.0f, O + (size_t)i0 * D, D);
        }
    }
}

static void softmax_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                             const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    (void)out; /* D_i is summed over the recomputed P instead; see softmax_row_backward */
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H, R = softmax_chunk_rows(ctx);
    const size_t TD = (size_t)T * D;
    const float s = softmax_scale(ctx), p = softmax_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(softmax_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *dO = dout + bh * TD;                                 /* (T, Dh) */
        float *dQ = dq + bh * TD, *dK = dk + bh * TD, *dV = dv + bh * TD; /* (T, Dh) */
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T;         /* (T) */
        const float *L = ctx->cache + (size_t)bh * T;                     /* (T) from forward */
        float *P = ctx->scratch + bh * softmax_slice_scratch(ctx);        /* (R, T) P → P̃ */
        float *G = P + (size_t)R * T;                                     /* (R, T) dP̃ → dS */
        float *z = G + (size_t)R * T;                                     /* (T) */
        const uint64_t key = softmax_drop_key(ctx, bh);

        for (int i0 = 0; i0 < T; i0 += R) {
            const int nr = T - i0 < R ? T - i0 : R; /* rows of this chunk */
            const float *Qc = Q + (size_t)i0 * D;   /* (nr, Dh) */
            const float *dOc = dO + (size_t)i0 * D; /* (nr, Dh) */

            /* forward was P = exp(S − L) with S = s·Q_c Kᵀ: recompute it. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, s, Qc, D, K, D, 0.0f,
                        P, T);
            for (int r = 0; r < nr; r++)
                softmax_row_recompute(P + (size_t)r * T, mask, T, L[i0 + r]);

            /* forward was O_c = P̃ V, so dP̃ = dO_c Vᵀ; then dS through dropout and softmax. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, 1.0f, dOc, D, V, D,
                        0.0f, G, T);
            for (int r = 0; r < nr; r++) {
                if (p > 0.0f) softmax_keep_row(z, i0 + r, T, key, p);
                softmax_row_backward(G + (size_t)r * T, P + (size_t)r * T, p > 0.0f ? z : NULL,
                                     T);
            }

            /* forward was O_c = P̃ V, so dV += P̃ᵀ dO_c. */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, nr, 1.0f, P, T, dOc, D,
                        1.0f, dV, D);
            /* forward was S = s·Q_c Kᵀ, so dQ_c += s·dS K and dK += s·dSᵀ Q_c. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, T, s, G, T, K, D, 1.0f,
                        dQ + (size_t)i0 * D, D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, nr, s, G, T, Qc, D, 1.0f,
                        dK, D);
        }
    }
}

/* Attention dropout is applied by every variant that can; it comes from the context, not from
 * an option, so it does not make this variant LRA_ATTN_STOCHASTIC (its evaluation is
 * deterministic). */
const lra_attention lra_attn_softmax = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "softmax",
    .help        = "exact softmax attention (Vaswani et al. 2017, arXiv 1706.03762), in chunks "
                   "of query rows; O(T^2 Dh) time, O(T) memory (rows=0: O(T^2))",
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
