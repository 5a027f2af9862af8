/* flash.c — exact softmax attention in tiles with an online softmax: O(T) memory, not O(T²).
 *
 * A CPU adaptation of FlashAttention (Dao, Fu, Ermon, Rudra, Ré, NeurIPS 2022, arXiv 2205.14135)
 * in the loop order of FlashAttention-2 (Dao 2023, arXiv 2307.08691). The online softmax is
 * Milakov & Gimelshein 2018 (arXiv 1805.02867); Rabe & Staats 2021 (arXiv 2112.05682) showed that
 * attention needs no T×T buffer. It computes what softmax.c computes, equal up to float32
 * rounding (attention-variants.md §1), with s = 1/sqrt(Dh) unless the `scale` option says
 * otherwise:
 *     S = s·Q Kᵀ,   P = softmax(S) by rows over the real keys,   O = P̃ V,
 * where P̃ = P ∘ Z/(1−p) is P after attention dropout with exactly softmax.c's keep mask Z.
 *
 * Forward, per (batch, head) slice and query tile I of block_q rows: a running maximum μ, running
 * sum ℓ and unnormalised accumulator A (kept in `out`) start at −∞, 0, 0. For each key tile J of
 * block_k keys that holds at least one real key:
 *     S = s·Q_I K_Jᵀ (padded keys −∞),  μ' = max(μ, rowmax S),  α = exp(μ − μ'),
 *     E = exp(S − μ'),  ℓ = α·ℓ + rowsum E,  A = α·A + (E ∘ Z/(1−p)) V_J,  μ = μ'.
 * Then O_I = A/ℓ and L_I = μ + log ℓ, the row log-sum-exp. ℓ sums E before dropout, as softmax.c
 * normalises before it drops. Key tiles whose keys are all padded are skipped, so a query whose
 * keys are all padded keeps ℓ = 0 and gets o = 0, L = −∞ (attention-variants.md §0.3).
 * Backward recomputes P = exp(S − L) tile by tile, key tiles outermost (FlashAttention-2), and
 * uses D_i = do_i·o_i in place of Σ_j P_ij dP_ij, which needs no row of P.
 *
 * Complexity: O(T²·Dh) time (per slice 4·T²·Dh flops forward; 10·T²·Dh backward, 2·T²·Dh of
 * them recomputing S), O(T) memory beyond the inputs and outputs.
 *
 * Cache:   L (B, H, T), each query's log-sum-exp over its real keys; −∞ when it has none. The
 *          dropout mask is not stored: backward regenerates it from lra_rng as softmax.c does.
 * Scratch: per slice, two tiles of block_q × block_k (S → E → Ẽ in forward; S → P → P̃ and
 *          dP̃ → dS in backward), μ and ℓ of one query tile (block_q each), and D (T). Per slice
 *          rather than per thread, because sizes() may not depend on the thread count; each
 *          slice is then also computed the same way whatever the thread count (given
 *          single-threaded BLAS calls, as lra_set_threads arranges). Tile sizes are clamped to
 *          T, so short sequences do not pay for large tiles.
 *
 * Tiles: Q_I and dO_I (block_q × Dh), K_J and V_J (block_k × Dh) and the two block_q × block_k
 * tiles should sit in L2. The default 128 × 128 keeps them within 256 KB at Dh 64, half of a
 * 512 KB L2. Measured at B 2, H 2, T 2048, Dh 32, 2 threads (AMD EPYC, OpenBLAS Haswell kernels),
 * forward + backward: 64 × 64 59 ms, 64 × 128 53 ms, 128 × 128 51 ms, 128 × 256 49 ms,
 * 256 × 256 48 ms; larger tiles gain little and cost scratch. Times for the defaults are printed
 * by tests/test_attn_flash.c.
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
#include <string.h>

#include "lra_attention.h"
#include "lra_rng.h"
#include "lra_vmath.h"

/* Options, filled by the framework from the table below before init(). */
typedef struct flash_priv {
    double scale; /* logit scale s; 0 selects 1/sqrt(Dh) */
    int block_q;  /* query rows per tile */
    int block_k;  /* keys per tile */
} flash_priv;

static const lra_attn_option flash_options[] = {
    {.name = "scale", .help = "logit scale s in softmax(s*Q*K^T); 0 = 1/sqrt(head dim)",
     .offset = offsetof(flash_priv, scale), .type = LRA_OPT_FLOAT,
     .def = 0.0, .min = 0.0, .max = 1e3},
    {.name = "block_q", .help = "query rows per tile (clamped to the sequence length)",
     .offset = offsetof(flash_priv, block_q), .type = LRA_OPT_INT,
     .def = 128, .min = 1, .max = 4096},
    {.name = "block_k", .help = "keys per tile (clamped to the sequence length)",
     .offset = offsetof(flash_priv, block_k), .type = LRA_OPT_INT,
     .def = 128, .min = 1, .max = 4096},
    {.name = NULL},
};

/* Lanes of the partial maxima and sums below: one AVX-512 register, or two AVX2 ones. */
enum { FLASH_LANES = 16 };

/* One slice's inputs, scratch and constants, as forward and backward see them. */
typedef struct flash_slice {
    const float *Q, *K, *V;  /* (T, Dh) */
    const float *mask;       /* (T) 1 = real key */
    float *tile_s;           /* (bq, bk) S → E → Ẽ (forward), S → P → P̃ (backward) */
    float *tile_w;           /* (bq, bk) dP̃ → dS (backward) */
    float *mu, *ell;         /* (bq) running maximum and sum of one query tile */
    float *dd;               /* (T) D_i = do_i·o_i (backward) */
    uint64_t key;            /* dropout stream of this slice */
    int T, D, bq, bk;
    float s, p;              /* logit scale, dropout rate (0: off) */
} flash_slice;

static float flash_scale(const lra_attn_ctx *ctx)
{
    const flash_priv *opt = ctx->priv;
    return opt->scale > 0.0 ? (float)opt->scale : 1.0f / sqrtf((float)ctx->shape.dim);
}

/* ctx->threads, or the OpenMP default when the framework leaves it at 0 (= all cores). */
static int flash_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

/* The attention dropout rate in effect: 0 outside training. */
static float flash_drop_rate(const lra_attn_ctx *ctx)
{
    return ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
}

/* The dropout stream of slice bh at this step: softmax.c's key, so that both variants drop the
 * same probabilities and flash equals softmax with dropout on too. */
static uint64_t flash_drop_key(const lra_attn_ctx *ctx, int bh)
{
    return lra_attn_step_stream(ctx, bh);
}

/* The tile sizes in effect: the options, clamped to the sequence length. */
static void flash_tiles(const lra_attn_ctx *ctx, int *bq, int *bk)
{
    const flash_priv *opt = ctx->priv;
    const int T = ctx->shape.len;
    *bq = opt->block_q < T ? opt->block_q : T;
    *bk = opt->block_k < T ? opt->block_k : T;
}

/* Scratch floats of one slice: see the header comment. */
static size_t flash_slice_scratch(const lra_attn_ctx *ctx)
{
    int bq, bk;
    flash_tiles(ctx, &bq, &bk);
    return 2 * (size_t)bq * bk + 2 * (size_t)bq + (size_t)ctx->shape.len;
}

/* Slice bh's view of the inputs and of its share of the scratch. */
static flash_slice flash_slice_at(const lra_attn_ctx *ctx, int bh, const float *q, const float *k,
                                  const float *v)
{
    const int T = ctx->shape.len, D = ctx->shape.dim;
    const size_t TD = (size_t)T * D;
    flash_slice f = {.Q = q + bh * TD, .K = k + bh * TD, .V = v + bh * TD,
                     .mask = ctx->key_mask + (size_t)(bh / ctx->shape.heads) * T,
                     .key = flash_drop_key(ctx, bh), .T = T, .D = D,
                     .s = flash_scale(ctx), .p = flash_drop_rate(ctx)};
    flash_tiles(ctx, &f.bq, &f.bk);
    const size_t tile = (size_t)f.bq * f.bk;
    f.tile_s = ctx->scratch + bh * flash_slice_scratch(ctx);
    f.tile_w = f.tile_s + tile;
    f.mu = f.tile_w + tile;
    f.ell = f.mu + f.bq;
    f.dd = f.ell + f.bq;
    return f;
}

/* exp as lra_vmath.h's lra_expf: within 2 ulp of expf, vectorisable, and exactly 0 for −∞ (the
 * logit of a padded key), which the online softmax relies on. */
static inline float flash_exp(float x) { return lra_expf(x); }

/* The largest of x[0 .. n−1], from FLASH_LANES partial maxima so the loop vectorises. Left
 * unrolled, GCC 12 turns the lanes into scalar maxss; kept as a loop, it emits one vmaxps. */
static float flash_row_max(const float *x, int n)
{
    float m[FLASH_LANES];
    for (int l = 0; l < FLASH_LANES; l++) m[l] = -INFINITY;
    int j = 0;
    for (; j + FLASH_LANES <= n; j += FLASH_LANES)
#pragma GCC unroll 1
        for (int l = 0; l < FLASH_LANES; l++) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
    for (; j < n; j++) m[0] = x[j] > m[0] ? x[j] : m[0];
    float mx = m[0];
    for (int l = 1; l < FLASH_LANES; l++) mx = m[l] > mx ? m[l] : mx;
    return mx;
}

/* x[j] = exp(x[j] − c) in place for j < n; returns Σ_j x[j], from FLASH_LANES partial sums so
 * the loop vectorises, added up in double. −∞ entries (padded keys) become exactly 0. */
static float flash_exp_row(float *x, int n, float c)
{
    float acc[FLASH_LANES] = {0};
    int j = 0;
    for (; j + FLASH_LANES <= n; j += FLASH_LANES)
        for (int l = 0; l < FLASH_LANES; l++) {
            x[j + l] = flash_exp(x[j + l] - c);
            acc[l] += x[j + l];
        }
    for (; j < n; j++) {
        x[j] = flash_exp(x[j] - c);
        acc[0] += x[j];
    }
    double sum = 0.0;
    for (int l = 0; l < FLASH_LANES; l++) sum += acc[l];
    return (float)sum;
}

/* Real keys among mask[0 .. n−1]. */
static int flash_real_keys(const float *mask, int n)
{
    int real = 0;
    for (int j = 0; j < n; j++) real += mask[j] != 0.0f;
    return real;
}

/* Sets the logits of padded keys to −∞ in the nr × nc tile S, so exp() makes them exactly 0. */
static void flash_mask_tile(float *S, int nr, int nc, const float *mask)
{
    for (int j = 0; j < nc; j++) {
        if (mask[j] != 0.0f) continue;
        for (int r = 0; r < nr; r++) S[(size_t)r * nc + j] = -INFINITY;
    }
}

/* The counter of the dropout draw of query i and key j: softmax.c's i·T + j, so both variants
 * keep (iff lra_uniform >= p) and drop the same probabilities. */
static uint64_t flash_drop_counter(const flash_slice *f, int i, int j)
{
    return (uint64_t)i * (uint64_t)f->T + (uint64_t)j;
}

/* E ← E ∘ Z/(1−p) on the nr × nc tile at query i0 and key j0 of the slice. */
static void flash_dropout_tile(const flash_slice *f, float *E, int i0, int j0, int nr, int nc)
{
    const float inv_keep = 1.0f / (1.0f - f->p);
    for (int r = 0; r < nr; r++) {
        const uint64_t row = flash_drop_counter(f, i0 + r, j0);
        float *e = E + (size_t)r * nc; /* (nc) */
        for (int j = 0; j < nc; j++)
            e[j] = lra_uniform(f->key, row + (uint64_t)j) >= f->p ? e[j] * inv_keep : 0.0f;
    }
}

/* The online softmax step for the nr × nc logit tile S of query tile I: μ' = max(μ, rowmax S),
 * S ← E = exp(S − μ'), ℓ ← α·ℓ + rowsum E and A ← α·A with α = exp(μ − μ'). At least one key
 * of the tile is real, so μ' is finite; on the first such tile μ = −∞, and α = 0 clears ℓ = 0
 * and A = 0 harmlessly. */
static void flash_online_softmax(const flash_slice *f, float *S, int nr, int nc, float *A)
{
    const int D = f->D;
    for (int r = 0; r < nr; r++) {
        float *row = S + (size_t)r * nc; /* (nc) */
        float *a = A + (size_t)r * D;    /* (Dh) */
        const float mx = flash_row_max(row, nc);
        const float mu = f->mu[r] > mx ? f->mu[r] : mx;
        const float alpha = flash_exp(f->mu[r] - mu);
        f->ell[r] = alpha * f->ell[r] + flash_exp_row(row, nc, mu);
        f->mu[r] = mu;
        if (alpha != 1.0f)
            for (int e = 0; e < D; e++) a[e] *= alpha;
    }
}

/* Forward of one slice: O (T, Dh) and the row log-sum-exps L (T). */
static void flash_forward_slice(const flash_slice *f, float *O, float *L)
{
    const int T = f->T, D = f->D;
    for (int i0 = 0; i0 < T; i0 += f->bq) {
        const int nr = T - i0 < f->bq ? T - i0 : f->bq;
        const float *Qi = f->Q + (size_t)i0 * D; /* (nr, Dh) */
        float *A = O + (size_t)i0 * D;           /* (nr, Dh) accumulator, then O_I */
        memset(A, 0, (size_t)nr * D * sizeof(float));
        for (int r = 0; r < nr; r++) {
            f->mu[r] = -INFINITY;
            f->ell[r] = 0.0f;
        }
        for (int j0 = 0; j0 < T; j0 += f->bk) {
            const int nc = T - j0 < f->bk ? T - j0 : f->bk;
            const int real = flash_real_keys(f->mask + j0, nc);
            if (real == 0) continue; /* contributes exactly nothing */
            float *S = f->tile_s;    /* (nr, nc) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nc, D, f->s, Qi, D,
                        f->K + (size_t)j0 * D, D, 0.0f, S, nc);
            if (real < nc) flash_mask_tile(S, nr, nc, f->mask + j0);
            flash_online_softmax(f, S, nr, nc, A);
            /* A += Ẽ V_J, with Ẽ = E ∘ Z/(1−p) = E when dropout is off. */
            if (f->p > 0.0f) flash_dropout_tile(f, S, i0, j0, nr, nc);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, nc, 1.0f, S, nc,
                        f->V + (size_t)j0 * D, D, 1.0f, A, D);
        }
        /* O_I = A/ℓ; a query without real keys kept A = 0 and ℓ = 0: o = 0, L = −∞. */
        for (int r = 0; r < nr; r++) {
            const float ell = f->ell[r];
            const float inv = ell > 0.0f ? 1.0f / ell : 0.0f;
            for (int e = 0; e < D; e++) A[(size_t)r * D + e] *= inv;
            L[i0 + r] = ell > 0.0f ? f->mu[r] + logf(ell) : -INFINITY;
        }
    }
}

/* P = exp(S − L) in place on the nr × nc logit tile S: the probabilities forward normalised,
 * padded keys 0. A row with L = −∞ has no real key at all (and never reaches here, since such
 * a slice has no tile with a real key); it is zeroed for safety. */
static void flash_probabilities(float *S, int nr, int nc, const float *L, const float *mask,
                                int partial)
{
    if (partial) flash_mask_tile(S, nr, nc, mask);
    for (int r = 0; r < nr; r++) {
        float *row = S + (size_t)r * nc; /* (nc) */
        if (L[r] == -INFINITY)
            memset(row, 0, (size_t)nc * sizeof(float));
        else
            (void)flash_exp_row(row, nc, L[r]);
    }
}

/* dS = P ∘ (dP̃ − D 1ᵀ) in place on the nr × nc tile W = dP̃ (no dropout). */
static void flash_softmax_backward(float *restrict W, const float *restrict P, const float *dd,
                                   int nr, int nc)
{
    for (int r = 0; r < nr; r++) {
        float *w = W + (size_t)r * nc;        /* (nc) */
        const float *pr = P + (size_t)r * nc; /* (nc) */
        const float d = dd[r];
        for (int j = 0; j < nc; j++) w[j] = pr[j] * (w[j] - d);
    }
}

/* The same with dropout, for the tile at query i0 and key j0: dS = P ∘ (dP̃ ∘ Z/(1−p) − D 1ᵀ)
 * in W, and P ← P̃ = P ∘ Z/(1−p) in place, drawing each keep decision once for both. */
static void flash_softmax_backward_dropout(const flash_slice *f, float *restrict W,
                                           float *restrict P, int i0, int j0, int nr, int nc)
{
    const float inv_keep = 1.0f / (1.0f - f->p);
    for (int r = 0; r < nr; r++) {
        const uint64_t row = flash_drop_counter(f, i0 + r, j0);
        float *w = W + (size_t)r * nc;  /* (nc) */
        float *pr = P + (size_t)r * nc; /* (nc) */
        const float d = f->dd[i0 + r];
        for (int j = 0; j < nc; j++) {
            const float z = lra_uniform(f->key, row + (uint64_t)j) >= f->p ? inv_keep : 0.0f;
            w[j] = pr[j] * (w[j] * z - d);
            pr[j] *= z;
        }
    }
}

/* Backward of one slice, adding into dQ, dK, dV (T, Dh). O and dO (T, Dh), L (T). */
static void flash_backward_slice(const flash_slice *f, const float *O, const float *dO,
                                 const float *L, float *dQ, float *dK, float *dV)
{
    const int T = f->T, D = f->D;
    /* forward was P = softmax(S) and O = P̃ V, so Σ_j P_ij dP_ij = Σ_j P̃_ij dP̃_ij = do_i·o_i:
     * D_i needs no row of P. */
    for (int i = 0; i < T; i++) {
        double d = 0.0;
        for (int e = 0; e < D; e++) d += (double)dO[(size_t)i * D + e] * O[(size_t)i * D + e];
        f->dd[i] = (float)d;
    }
    for (int j0 = 0; j0 < T; j0 += f->bk) {
        const int nc = T - j0 < f->bk ? T - j0 : f->bk;
        const int real = flash_real_keys(f->mask + j0, nc);
        if (real == 0) continue; /* forward skipped it: P = 0, no gradient */
        const float *Kj = f->K + (size_t)j0 * D, *Vj = f->V + (size_t)j0 * D; /* (nc, Dh) */
        float *dKj = dK + (size_t)j0 * D, *dVj = dV + (size_t)j0 * D;       /* (nc, Dh) */
        for (int i0 = 0; i0 < T; i0 += f->bq) {
            const int nr = T - i0 < f->bq ? T - i0 : f->bq;
            const float *Qi = f->Q + (size_t)i0 * D, *dOi = dO + (size_t)i0 * D; /* (nr, Dh) */
            float *dQi = dQ + (size_t)i0 * D;                                   /* (nr, Dh) */
            float *P = f->tile_s, *W = f->tile_w; /* (nr, nc) */

            /* forward was P = exp(S − μ)/ℓ with L = μ + log ℓ, so P = exp(s·Q_I K_Jᵀ − L_I). */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nc, D, f->s, Qi, D, Kj, D,
                        0.0f, P, nc);
            flash_probabilities(P, nr, nc, L + i0, f->mask + j0, real < nc);

            /* forward was O = P̃ V, so dP̃ = dO_I V_Jᵀ; and P̃ = P ∘ Z/(1−p) with P = softmax(S)
             * by rows, so dS = P ∘ (dP̃ ∘ Z/(1−p) − D 1ᵀ). Padded keys have P = 0, hence
             * dS = 0. With dropout, P becomes P̃ on the way. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nc, D, 1.0f, dOi, D, Vj, D,
                        0.0f, W, nc);
            if (f->p > 0.0f)
                flash_softmax_backward_dropout(f, W, P, i0, j0, nr, nc);
            else
                flash_softmax_backward(W, P, f->dd + i0, nr, nc);

            /* forward was O = P̃ V, so dV_J += P̃ᵀ dO_I. */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nc, D, nr, 1.0f, P, nc, dOi, D,
                        1.0f, dVj, D);

            /* forward was S = s·Q Kᵀ, so dQ_I += s·dS K_J and dK_J += s·dSᵀ Q_I. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, nc, f->s, W, nc, Kj, D,
                        1.0f, dQi, D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nc, D, nr, f->s, W, nc, Qi, D,
                        1.0f, dKj, D);
        }
    }
}

static void flash_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * (size_t)ctx->shape.len,   /* L (B, H, T) */
        .n_scratch = slices * flash_slice_scratch(ctx), /* tiles, μ, ℓ and D per slice */
    };
}

static double flash_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const double slices = (double)sh->batch * sh->heads, T = sh->len;
    /* Counted as softmax.c counts the same attention, so the two compare directly: Q Kᵀ and
     * P V, 2·T²·Dh each, and about 5 per logit for the softmax (max, subtract, exp, sum,
     * normalise); the online rescaling adds O(T²·Dh/block_k), left out. */
    return slices * T * T * (4.0 * sh->dim + 5.0);
}

static int flash_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const flash_priv *opt = ctx->priv;
    /* The options parser checks the ranges already; init also guards callers that fill priv
     * directly. Any tile size works with any length: partial tiles are handled. */
    if (!(opt->scale >= 0.0 && isfinite(opt->scale))) {
        snprintf(err, errlen, "scale must be a finite number >= 0 (0 = 1/sqrt(head dim)), got %g",
                 opt->scale);
        return LRA_ATTN_EINVAL;
    }
    if (opt->block_q < 1 || opt->block_k < 1) {
        snprintf(err, errlen, "block_q and block_k must be >= 1, got %d and %d", opt->block_q,
                 opt->block_k);
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

static void flash_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                          float *out)
{
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t T = (size_t)ctx->shape.len, TD = T * ctx->shape.dim;

#pragma omp parallel for schedule(static) num_threads(flash_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const flash_slice f = flash_slice_at(ctx, bh, q, k, v);
        flash_forward_slice(&f, out + bh * TD, ctx->cache + bh * T);
    }
}

static void flash_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                           const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t T = (size_t)ctx->shape.len, TD = T * ctx->shape.dim;

#pragma omp parallel for schedule(static) num_threads(flash_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const flash_slice f = flash_slice_at(ctx, bh, q, k, v);
        flash_backward_slice(&f, out + bh * TD, dout + bh * TD, ctx->cache + bh * T,
                             dq + bh * TD, dk + bh * TD, dv + bh * TD);
    }
}

/* Attention dropout comes from the context, as in softmax.c; it does not make this variant
 * LRA_ATTN_STOCHASTIC. check_options is NULL: tiles larger than T are clamped to it. */
const lra_attention lra_attn_flash = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "flash",
    .help        = "exact softmax attention in tiles with an online softmax (FlashAttention, "
                   "Dao et al. 2022, arXiv 2205.14135); O(T^2 Dh) time, O(T) memory",
    .flags       = LRA_ATTN_EXACT,
    .priv_size   = sizeof(flash_priv),
    .options     = flash_options,
    .sizes       = flash_sizes,
    .flops       = flash_flops,
    .init        = flash_init,
    .forward     = flash_forward,
    .backward    = flash_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_flash)
