/* rpefft.c — kernelized attention with relative positional encoding, by FFT in O(T log T).
 *
 * Luo, Li, Cai, Peng, He, Zheng, Ke, Wang, Liu, "Stable, Fast and Accurate: Kernelized Attention
 * with Relative Positional Encoding", NeurIPS 2021, arXiv 2106.12566 (attention-variants.md §17).
 * Target: a_ij ∝ exp(q_i·k_j/√Dh + b_{j−i}) with a trainable bias b_δ per head and relative
 * position δ = j − i. exp(q·k/√Dh) is kernelised by the FAVOR+ positive random features of
 * Performer (§11, attn_kernel.h), Φ = φ(Q), Ψ = m ∘ φ(K) (m features), and c_δ = exp(b_δ):
 *     num_i = Σ_j c_{j−i} (Φ_i·Ψ_j) v_j = Σ_l Φ_il N_{i,l},   N_{i,l,e} = Σ_j c_{j−i} Ψ_jl v_je,
 *     den_i = Σ_l Φ_il M_{i,l},   M_{i,l} = Σ_j c_{j−i} Ψ_jl,   o_i = num_i / stab(den_i),
 * with Performer's renormalisation stab(R) = R + 2δ' where |R| <= δ' = 1e-6 (it acts only when a
 * query has no real key). Each column (l, e) of N and M is a Toeplitz matrix–vector product —
 * a correlation with c — computed with FFTs of length L >= 2·max_len − 1 (zero-padded, so the
 * circular product equals the linear one on the T outputs kept). Two real columns share one
 * complex FFT as its real and imaginary parts (c is real, so the correlation acts on each). With b = 0 this is exactly
 * Performer's FAVOR+ (kernel=softmax, same features for the same seed), up to FFT rounding.
 *
 * Parameters: b (H, 2·max_len − 1), b[h][δ + max_len − 1], initialised to 0 so that training
 * starts from plain FAVOR+. Their gradient is race-free and deterministic: each slice writes its
 * own into scratch, and a second loop adds the batches of each head in batch order.
 * State: the feature directions W (m, Dh), drawn in init from ctx->seed exactly as Performer
 * draws them (one W per layer, shared by the heads; not trained, never redrawn).
 *
 * Backward (§17, Derived), with G' = [g, h] (T, Dh + 1), g_i = do_i/den_i, h_i = −(do_i·o_i)/den_i,
 * V' = [V, 1], and per column (l, e) x = Ψ_·l ∘ V'_·e, w = Φ_·l ∘ G'_·e:
 *     dΦ_il += G'_ie (c ⋆ x)_i         (the forward product again),
 *     u_j    = Σ_i c_{j−i} w_i          (the transposed Toeplitz product: conjugate spectrum),
 *     dΨ_jl += V'_je u_j,  dv_je += Ψ_jl u_j (e < Dh),
 *     dc_δ  += Σ_i w_i x_{i+δ}          (a cross-correlation; summed over the columns in the
 *                                         frequency domain as conj(ŵ)·x̂ of the packed pairs,
 *                                         whose real part is the pair's sum; one inverse FFT
 *                                         per slice),
 *     db_δ   = c_δ dc_δ, then dΦ and dΨ through the FAVOR+ map (attn_kernel.h).
 * N is not cached (it is T·m·Dh floats per slice): backward recomputes each column.
 *
 * Speed (perf, T = 1024, m = 64, Dh = 32): the first version spent 60% of its time in FFTW and
 * most of the rest in the column loops, which read Φ, Ψ (T, m) and V (T, Dh) with a stride of
 * a row, a new cache line per element. The column loops now run on transposed copies in scratch
 * (contiguous, vectorised), two columns share a complex FFT, and L avoids factors of 7: 3.1×
 * less time per forward + backward at T = 1024; FFTW is now ~60–70% of it.
 *
 * FFTW: plans for the forward and inverse complex transform of length L are made once, in init
 * (the planner is not thread-safe; creation and destruction run inside the named critical
 * section lra_fftw_planner, which other FFTW users in the suite should share) with
 * FFTW_ESTIMATE, on arrays allocated and freed there. Not FFTW_MEASURE: it times candidate
 * plans, so two processes could pick different algorithms and round differently, and runs with
 * the same thread count must give the same numbers. forward and backward run them on their own buffers in ctx->cache and
 * ctx->scratch with the new-array execute functions, which are thread-safe. FFTW's SIMD plans
 * require the new arrays to be aligned as the planning arrays were: every buffer offset is a
 * multiple of 16 floats, and a second pair of plans made with FFTW_UNALIGNED serves buffers whose
 * base is not SIMD-aligned. The plans' own internal memory belongs to the library; free()
 * destroys the plans. Transforms are deterministic, so results do not depend on the threads.
 *
 * Padding: padded keys have Ψ_j = 0, so x vanishes there and they reach neither outputs nor
 * gradients. Not a softmax approximation once b is trained (softmax with a relative-position
 * bias); at b = 0 it approximates softmax as FAVOR+ does. The tests print the distance.
 * Attention dropout does not apply (ctx->dropout is ignored).
 *
 * Complexity: O(m·Dh·L log L) time per slice, L ≈ 2·max_len: m·(Dh + 1) columns in pairs, 2
 * complex FFTs per pair in forward and 4 in backward; O(T·(m + Dh) + L) memory per slice
 * (O(T·m·Dh) if N were cached).
 * Cache:   per slice Φ, Ψ (T, m), den (T), the FAVOR+ stabilisers' arg-max (T + 2), and the
 *          spectrum K̂/L of the bias kernel (L complex).
 * Scratch: per slice Φᵀ, Ψᵀ, dΦᵀ, dΨᵀ (m, T), V'ᵀ, G'ᵀ and the forward's numerators and den or
 *          the backward's dVᵀ (Dh + 1, T) each, seven complex (L) FFT buffers, and the slice's
 *          bias gradient (2·max_len − 1). After backward's column loop, dΦ and dΨ (T, m) go to
 *          the Φᵀ and Ψᵀ space for the FAVOR+ backward.
 */
#include <fftw3.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "attn_kernel.h"
#include "lra_attention.h"
#include "lra_rng.h"

static const float RPE_FAVOR_EPS = 1e-4f; /* ε inside the softmax features, as Performer */
static const float RPE_DELTA = 1e-6f;     /* renormalisation threshold δ' */

enum { RPE_ALIGNED = 0, RPE_UNALIGNED = 1, RPE_PLANS = 2 };

typedef struct rpefft_priv {
    int features; /* m: random features (option) */
    int ortho;    /* orthogonal feature blocks (option) */
    /* Set by init, not options: */
    fftwf_plan fwd[RPE_PLANS]; /* complex (L) → complex (L), out of place, e^(−2πi·fj/L) */
    fftwf_plan inv[RPE_PLANS]; /* the inverse, unscaled */
} rpefft_priv;

static const lra_attn_option rpefft_options[] = {
    {.name = "features", .help = "random features m (each costs Dh + 1 FFT columns)",
     .offset = offsetof(rpefft_priv, features), .type = LRA_OPT_INT,
     .def = 64, .min = 1, .max = 65536},
    {.name = "ortho", .help = "orthogonal random features (blocks of Dh orthonormal rows)",
     .offset = offsetof(rpefft_priv, ortho), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = NULL},
};

/* ---- sizes ------------------------------------------------------------------------------- */

/* n rounded up to a multiple of 16 floats (64 bytes), so every buffer keeps the alignment of
 * the block it lives in. */
static size_t rpe_round(size_t n) { return (n + 15) & ~(size_t)15; }

/* The FFT length: the smallest 2^a 3^b 5^c >= 2·max_len − 1, so that one set of plans serves
 * every T <= max_len. Factors of 7 are left out: FFTW's complex transform of length 2058 =
 * 2·3·7³ (max_len 1025, a CLS token on 1024) took twice as long as one of 2160. */
static int rpe_fft_len(const lra_attn_ctx *ctx)
{
    const int need = 2 * ctx->shape.max_len - 1;
    for (int L = need > 1 ? need : 2;; L++) {
        int x = L;
        for (int p = 2; p <= 5; p++)
            while (x % p == 0) x /= p;
        if (x == 1) return L;
    }
}

/* Biases per head: δ = −(max_len − 1) … max_len − 1. */
static int rpe_n_bias(const lra_attn_ctx *ctx) { return 2 * ctx->shape.max_len - 1; }

/* One slice's buffers, as views; counts in floats. */
typedef struct rpe_dims {
    int T, m, dv, L, nb; /* tokens, features, value width, FFT length, biases */
} rpe_dims;

static rpe_dims rpe_dims_of(const lra_attn_ctx *ctx)
{
    const rpefft_priv *opt = ctx->priv;
    const int L = rpe_fft_len(ctx);
    return (rpe_dims){.T = ctx->shape.len, .m = opt->features, .dv = ctx->shape.dim, .L = L,
                      .nb = rpe_n_bias(ctx)};
}

typedef struct rpe_cache {
    float *phi, *psi;    /* (T, m) Φ; Ψ with padded rows 0 */
    float *den;          /* (T) stabilised denominators */
    float *arg_q;        /* (T) FAVOR+ query stabilisers' arg-max */
    float *arg_k;        /* (2) the keys' */
    float *khat;         /* (L) complex, interleaved: the bias kernel's spectrum / L */
} rpe_cache;

static size_t rpe_cache_floats(const rpe_dims *d)
{
    const size_t Tm = rpe_round((size_t)d->T * d->m);
    return 2 * Tm + rpe_round(d->T) + rpe_round((size_t)d->T + 2) + rpe_round(2 * (size_t)d->L);
}

static rpe_cache rpe_cache_view(const rpe_dims *d, float *base)
{
    const size_t Tm = rpe_round((size_t)d->T * d->m);
    rpe_cache c;
    c.phi = base;
    c.psi = c.phi + Tm;
    c.den = c.psi + Tm;
    c.arg_q = c.den + rpe_round(d->T);
    c.arg_k = c.arg_q + d->T;
    c.khat = c.arg_q + rpe_round((size_t)d->T + 2);
    return c;
}

typedef struct rpe_scratch {
    /* Column-major ("transposed") copies, rows of Tp = T rounded up to 16 floats: every per-column
     * loop below then runs over contiguous memory and vectorises, where the (T, m) and (T, Dh)
     * layouts made it stride through a new cache line per element. */
    float *phiT, *psiT;          /* (m, Tp) Φᵀ, Ψᵀ; after backward's column loop, dΦ and dΨ
                                    (T, m), the layout the FAVOR+ backward reads */
    float *vT;                   /* (Dh + 1, Tp) V'ᵀ = [V, 1]ᵀ */
    float *accT;                 /* (Dh + 1, Tp) forward: numerators and den; backward: dVᵀ */
    float *gT;                   /* (Dh + 1, Tp) backward: G'ᵀ = [g, h]ᵀ */
    float *dphiT, *dpsiT;        /* (m, Tp) backward: dΦᵀ, dΨᵀ */
    /* FFT buffers, (L) complex each, interleaved (re, im): two real columns travel as the real
     * and imaginary parts of one complex signal (see the FFT helpers). */
    float *zin;                  /* a pair of columns, zero-padded, before its transform */
    float *zx, *zw;              /* spectra of the x pair and the w pair */
    float *zt;                   /* a product, consumed by the inverse FFT */
    float *zy, *zu;              /* inverse transforms: the pairs of results y and u */
    float *acc;                  /* Σ conj(ŵ) x̂, the bias gradient's spectrum */
    float *dbias;                /* (2·max_len − 1) this slice's bias gradient */
} rpe_scratch;

/* Tp: a row of a transposed buffer. */
static size_t rpe_tp(const rpe_dims *d) { return rpe_round((size_t)d->T); }

static size_t rpe_scratch_floats(const rpe_dims *d)
{
    const size_t Tp = rpe_tp(d), C = rpe_round(2 * (size_t)d->L);
    return (4 * (size_t)d->m + 3 * (size_t)d->dv + 3) * Tp + 7 * C + rpe_round(d->nb);
}

static rpe_scratch rpe_scratch_view(const rpe_dims *d, float *base)
{
    const size_t Tp = rpe_tp(d), C = rpe_round(2 * (size_t)d->L), mT = (size_t)d->m * Tp;
    rpe_scratch s;
    s.phiT = base;
    s.psiT = s.phiT + mT;
    s.vT = s.psiT + mT;
    s.accT = s.vT + (size_t)(d->dv + 1) * Tp;
    s.gT = s.accT + (size_t)(d->dv + 1) * Tp;
    s.dphiT = s.gT + (size_t)(d->dv + 1) * Tp;
    s.dpsiT = s.dphiT + mT;
    s.zin = s.dpsiT + mT;
    s.zx = s.zin + C;
    s.zw = s.zx + C;
    s.zt = s.zw + C;
    s.zy = s.zt + C;
    s.zu = s.zy + C;
    s.acc = s.zu + C;
    s.dbias = s.acc + C;
    return s;
}

/* dst (cols, ld) = srcᵀ for src (rows, cols): dst[c][r] = src[r][c]. Tiled so that both sides
 * stay in cache. */
static void rpe_transpose(const float *src, int rows, int cols, float *dst, size_t ld)
{
    enum { TILE = 16 };
    for (int r0 = 0; r0 < rows; r0 += TILE)
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            const int r1 = r0 + TILE < rows ? r0 + TILE : rows;
            const int c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++) dst[(size_t)c * ld + r] = src[(size_t)r * cols + c];
        }
}

/* dst (rows, cols) = srcᵀ for src (cols, ld) (the inverse of rpe_transpose). */
static void rpe_untranspose(const float *src, size_t ld, int rows, int cols, float *dst)
{
    enum { TILE = 16 };
    for (int r0 = 0; r0 < rows; r0 += TILE)
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            const int r1 = r0 + TILE < rows ? r0 + TILE : rows;
            const int c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++) dst[(size_t)r * cols + c] = src[(size_t)c * ld + r];
        }
}

/* ---- FFT helpers ------------------------------------------------------------------------- */

/* Two real columns a and b travel through one complex FFT as a + i·b. Everything done to them
 * is a correlation with the real kernel c, which is linear over complex scalars, so
 * IFFT(K̂ ∘ FFT(a + i·b)) = (c ⋆ a) + i·(c ⋆ b): one complex transform does the work of two
 * real ones. FFTW's complex transform of length L ran 1.2–2× faster per column than an
 * r2c/c2r pair (L = 2048 … 8192, FFTW 3.3.10, AVX-512). Spectra are interleaved (re, im)
 * floats; rpe_dft is the only place that hands them to FFTW as fftwf_complex. */

/* The plan index for buffers a and b: aligned plans only if both are SIMD-aligned. */
static int rpe_plan_for(float *a, float *b)
{
    return fftwf_alignment_of(a) == 0 && fftwf_alignment_of(b) == 0
               ? RPE_ALIGNED
               : RPE_UNALIGNED;
}

/* zo (L complex) = DFT of zi (L complex): forward (e^(−2πi·fj/L)) or inverse, unscaled. */
static void rpe_dft(const rpefft_priv *p, int inverse, float *zi, float *zo)
{
    const int a = rpe_plan_for(zi, zo);
    fftwf_execute_dft(inverse ? p->inv[a] : p->fwd[a], (fftwf_complex *)zi, (fftwf_complex *)zo);
}

/* zin (L complex) = [a_j·a'_j + i·b_j·b'_j for j < T, then 0], all operands contiguous (T);
 * b NULL: imaginary part 0 (the last column of an odd count). Writes the first T points only:
 * the slice loops zero zin once and nothing else writes it, so the padding stays 0. */
static void rpe_pack(const rpe_dims *d, const float *a, const float *a2, const float *b,
                     const float *b2, float *zin)
{
    const int T = d->T;
    if (b)
        for (int j = 0; j < T; j++) {
            zin[2 * j] = a[j] * a2[j];
            zin[2 * j + 1] = b[j] * b2[j];
        }
    else
        for (int j = 0; j < T; j++) {
            zin[2 * j] = a[j] * a2[j];
            zin[2 * j + 1] = 0.0f;
        }
}

/* zy = IFFT(zs ∘ k̂) or, with conj, IFFT(zs ∘ conj k̂), where k̂ already holds the 1/L of the
 * inverse transform: the correlation with c (forward) or its transpose. zt is scratch. */
static void rpe_apply(const rpefft_priv *p, const rpe_dims *d, const float *zs, const float *khat,
                      int conj, float *zt, float *zy)
{
    const float sgn = conj ? -1.0f : 1.0f;
    for (int f = 0; f < d->L; f++) {
        const float xr = zs[2 * f], xi = zs[2 * f + 1];
        const float kr = khat[2 * f], ki = sgn * khat[2 * f + 1];
        zt[2 * f] = xr * kr - xi * ki;
        zt[2 * f + 1] = xr * ki + xi * kr;
    }
    rpe_dft(p, 1, zt, zy);
}

/* khat (L complex) = FFT(K)/L for the circular kernel K[(i − j) mod L] = c_{j−i} = exp(b_{j−i}),
 * |j − i| < T, of one head's biases bias (2·max_len − 1); zin (L complex) is scratch. */
static void rpe_kernel_spectrum(const rpefft_priv *p, const rpe_dims *d, const float *bias,
                                float *zin, float *khat)
{
    const float *b0 = bias + (d->nb - 1) / 2; /* b0[δ] = b_δ */
    memset(zin, 0, 2 * (size_t)d->L * sizeof(float));
    for (int t = 0; t < d->T; t++) zin[2 * t] = expf(b0[-t]);                   /* δ = −t */
    for (int s = 1; s < d->T; s++) zin[2 * (size_t)(d->L - s)] = expf(b0[s]);  /* δ = s */
    rpe_dft(p, 0, zin, khat);
    const float inv = 1.0f / (float)d->L;
    for (int f = 0; f < 2 * d->L; f++) khat[f] *= inv;
}

/* Column q of the m·(Dh + 1) columns (l, e), l-major: its feature l and value column e. */
static void rpe_col(const rpe_dims *d, int q, int *l, int *e)
{
    *l = q / (d->dv + 1);
    *e = q % (d->dv + 1);
}

/* Copies into scratch for the column loops: Φᵀ, Ψᵀ, V'ᵀ (the last row all ones). */
static void rpe_transpose_inputs(const rpe_dims *d, const rpe_cache *c, const rpe_scratch *s,
                                 const float *V)
{
    const size_t Tp = rpe_tp(d);
    rpe_transpose(c->phi, d->T, d->m, s->phiT, Tp);
    rpe_transpose(c->psi, d->T, d->m, s->psiT, Tp);
    rpe_transpose(V, d->T, d->dv, s->vT, Tp);
    float *ones = s->vT + (size_t)d->dv * Tp;
    for (int j = 0; j < d->T; j++) ones[j] = 1.0f;
}

/* ---- FAVOR+ features (shared with Performer) -------------------------------------------- */

static lra_kernel_favor rpe_favor(const lra_attn_ctx *ctx)
{
    const rpefft_priv *opt = ctx->priv;
    return (lra_kernel_favor){.W = ctx->state, .m = opt->features, .d = ctx->shape.dim,
                              .eps = RPE_FAVOR_EPS};
}

/* ---- forward ----------------------------------------------------------------------------- */

/* One slice: out (T, Dh) and c.den from Φ, Ψ, V (T, Dh) and the bias spectrum. For every
 * column (l, e ≤ Dh) of [Ψ_·l ∘ V, Ψ_·l]: y = c ⋆ x by FFT, two columns per transform, then
 * out_·e or den += Φ_·l ∘ y. On the transposed copies, so that every loop is contiguous. */
static void rpe_slice_forward(const rpefft_priv *p, const rpe_dims *d, const rpe_cache *c,
                              const rpe_scratch *s, const float *V, float *out)
{
    const int T = d->T, dv = d->dv, Q = d->m * (dv + 1);
    const size_t Tp = rpe_tp(d);
    rpe_transpose_inputs(d, c, s, V);
    memset(s->zin, 0, 2 * (size_t)d->L * sizeof(float)); /* rpe_pack keeps the padding 0 */
    memset(s->accT, 0, (size_t)(dv + 1) * Tp * sizeof(float));
    for (int q = 0; q < Q; q += 2) {
        int l0, e0, l1 = 0, e1 = 0;
        const int two = q + 1 < Q;
        rpe_col(d, q, &l0, &e0);
        if (two) rpe_col(d, q + 1, &l1, &e1);
        rpe_pack(d, s->psiT + (size_t)l0 * Tp, s->vT + (size_t)e0 * Tp,
                 two ? s->psiT + (size_t)l1 * Tp : NULL, s->vT + (size_t)e1 * Tp, s->zin);
        rpe_dft(p, 0, s->zin, s->zx);
        rpe_apply(p, d, s->zx, c->khat, 0, s->zt, s->zy);
        /* Numerator column e (or den for e = Dh) += Φ_·l ∘ y, per column in l order. */
        const float *phi0 = s->phiT + (size_t)l0 * Tp, *phi1 = s->phiT + (size_t)l1 * Tp;
        float *dst0 = s->accT + (size_t)e0 * Tp, *dst1 = s->accT + (size_t)e1 * Tp;
        for (int i = 0; i < T; i++) dst0[i] += phi0[i] * s->zy[2 * i];
        if (two)
            for (int i = 0; i < T; i++) dst1[i] += phi1[i] * s->zy[2 * i + 1];
    }
    const float *num = s->accT, *den = s->accT + (size_t)dv * Tp;
    for (int i = 0; i < T; i++) {
        const float R = den[i];
        c->den[i] = fabsf(R) <= RPE_DELTA ? R + 2.0f * RPE_DELTA : R;
    }
    rpe_untranspose(num, Tp, T, dv, out);
    for (int i = 0; i < T; i++) {
        const float inv = 1.0f / c->den[i];
        for (int e = 0; e < dv; e++) out[(size_t)i * dv + e] *= inv;
    }
}

static void rpefft_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                           float *out)
{
    const rpefft_priv *opt = ctx->priv;
    const int H = ctx->shape.heads, T = ctx->shape.len;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * ctx->shape.dim;
    const rpe_dims d = rpe_dims_of(ctx);
    const size_t cache_n = rpe_cache_floats(&d), scratch_n = rpe_scratch_floats(&d);
    const lra_kernel_favor fv = rpe_favor(ctx);

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T; /* (T) */
        const rpe_cache c = rpe_cache_view(&d, ctx->cache + bh * cache_n);
        const rpe_scratch s = rpe_scratch_view(&d, ctx->scratch + bh * scratch_n);

        lra_kernel_favor_features(&fv, q + bh * TD, T, NULL, c.phi, c.arg_q);
        lra_kernel_favor_features(&fv, k + bh * TD, T, mask, c.psi, c.arg_k);
        rpe_kernel_spectrum(opt, &d, ctx->params + (size_t)(bh % H) * d.nb, s.zy, c.khat);
        rpe_slice_forward(opt, &d, &c, &s, v + bh * TD, out + bh * TD);
    }
}

/* ---- backward ---------------------------------------------------------------------------- */

/* gT (Dh + 1, Tp) = [do_i / den_i, −(do_i·o_i) / den_i]ᵀ. */
static void rpe_scaled_dout(const rpe_dims *d, const float *den, const float *O, const float *dO,
                            float *gT)
{
    const int dv = d->dv;
    const size_t Tp = rpe_tp(d);
    for (int i = 0; i < d->T; i++) {
        const float *o = O + (size_t)i * dv, *g = dO + (size_t)i * dv; /* (Dh) */
        const float inv = 1.0f / den[i];
        double dot = 0.0;
        for (int e = 0; e < dv; e++) {
            gT[(size_t)e * Tp + i] = g[e] * inv;
            dot += (double)g[e] * o[e];
        }
        gT[(size_t)dv * Tp + i] = (float)(-dot) * inv;
    }
}

/* acc (L complex) += conj(ẑ_w) ∘ ẑ_x. For z_w = w_a + i·w_b and z_x = x_a + i·x_b, the real
 * part of its inverse transform at δ is Σ_i w_a,i x_a,i+δ + w_b,i x_b,i+δ: the cross-correlation
 * of both columns of the pair, which the bias gradient sums. */
static void rpe_accumulate(const rpe_dims *d, const float *zw, const float *zx, float *acc)
{
    for (int f = 0; f < d->L; f++) {
        const float wr = zw[2 * f], wi = zw[2 * f + 1], xr = zx[2 * f], xi = zx[2 * f + 1];
        acc[2 * f] += wr * xr + wi * xi;
        acc[2 * f + 1] += wr * xi - wi * xr;
    }
}

/* dΦ_·l += G'_·e ∘ y and dΨ_·l += V'_·e ∘ u, dv_·e += Ψ_·l ∘ u (e < Dh) for one column of a
 * pair: y and u are the real or imaginary parts (part 0 or 1) of the pair's results. */
static void rpe_column_grads(const rpe_dims *d, const rpe_scratch *s, int l, int e, int part,
                             const float *zy, const float *zu)
{
    const int T = d->T;
    const size_t Tp = rpe_tp(d);
    const float *ge = s->gT + (size_t)e * Tp, *ve = s->vT + (size_t)e * Tp;
    const float *psi = s->psiT + (size_t)l * Tp;
    float *dphi = s->dphiT + (size_t)l * Tp, *dpsi = s->dpsiT + (size_t)l * Tp;
    for (int i = 0; i < T; i++) dphi[i] += ge[i] * zy[2 * i + part];
    for (int j = 0; j < T; j++) dpsi[j] += ve[j] * zu[2 * j + part];
    if (e < d->dv) {
        float *dve = s->accT + (size_t)e * Tp; /* dVᵀ_·e */
        for (int j = 0; j < T; j++) dve[j] += psi[j] * zu[2 * j + part];
    }
}

/* Columns q and q + 1 (if < Q) of the backward pass; see the header. */
static void rpe_pair_backward(const rpefft_priv *p, const rpe_dims *d, const rpe_cache *c,
                              const rpe_scratch *s, int q, int Q)
{
    const size_t Tp = rpe_tp(d);
    int l0, e0, l1 = 0, e1 = 0;
    const int two = q + 1 < Q;
    rpe_col(d, q, &l0, &e0);
    if (two) rpe_col(d, q + 1, &l1, &e1);

    /* forward was y = c ⋆ x, x = Ψ_·l ∘ V'_·e, and out_·e (or den) += Φ_·l ∘ y, so
     * dΦ_il += G'_ie y_i: recompute y (the zy of the x pair). */
    rpe_pack(d, s->psiT + (size_t)l0 * Tp, s->vT + (size_t)e0 * Tp,
             two ? s->psiT + (size_t)l1 * Tp : NULL, s->vT + (size_t)e1 * Tp, s->zin);
    rpe_dft(p, 0, s->zin, s->zx);
    rpe_apply(p, d, s->zx, c->khat, 0, s->zt, s->zy);

    /* ... and dy_i = Φ_il G'_ie = w_i, so dx_j = Σ_i c_{j−i} w_i = u_j (the transposed
     * product), dΨ_jl += V'_je u_j and dv_je += Ψ_jl u_j. */
    rpe_pack(d, s->phiT + (size_t)l0 * Tp, s->gT + (size_t)e0 * Tp,
             two ? s->phiT + (size_t)l1 * Tp : NULL, s->gT + (size_t)e1 * Tp, s->zin);
    rpe_dft(p, 0, s->zin, s->zw);
    rpe_apply(p, d, s->zw, c->khat, 1, s->zt, s->zu);
    rpe_column_grads(d, s, l0, e0, 0, s->zy, s->zu);
    if (two) rpe_column_grads(d, s, l1, e1, 1, s->zy, s->zu);

    /* ... and y_i = Σ_δ c_δ x_{i+δ}, so dc_δ += Σ_i w_i x_{i+δ}. */
    rpe_accumulate(d, s->zw, s->zx, s->acc);
}

/* dbias (2·max_len − 1) = c_δ · dc_δ for |δ| < T (0 elsewhere), from acc; zy is overwritten. */
static void rpe_bias_gradient(const rpefft_priv *p, const rpe_dims *d, const float *bias,
                              const rpe_scratch *s)
{
    const int half = (d->nb - 1) / 2;
    const float inv = 1.0f / (float)d->L;
    rpe_dft(p, 1, s->acc, s->zy);
    memset(s->dbias, 0, (size_t)d->nb * sizeof(float));
    /* forward was c_δ = exp(b_δ), so db_δ = c_δ dc_δ; dc_δ is the real part at δ mod L. */
    for (int delta = -(d->T - 1); delta < d->T; delta++) {
        const float dc = s->zy[2 * (size_t)(delta >= 0 ? delta : d->L + delta)] * inv;
        s->dbias[half + delta] = expf(bias[half + delta]) * dc;
    }
}

/* One slice's backward: dV added; dΦ and dΨ (padded rows 0), as (T, m) in s->phiT and
 * s->psiT, and dbias written. */
static void rpe_slice_backward(const rpefft_priv *p, const rpe_dims *d, const rpe_cache *c,
                               const rpe_scratch *s, const float *mask, const float *bias,
                               const float *V, const float *O, const float *dO, float *dV)
{
    const int T = d->T, m = d->m, dv = d->dv, Q = m * (dv + 1);
    const size_t Tp = rpe_tp(d);
    rpe_scaled_dout(d, c->den, O, dO, s->gT);
    rpe_transpose_inputs(d, c, s, V);
    memset(s->zin, 0, 2 * (size_t)d->L * sizeof(float)); /* rpe_pack keeps the padding 0 */
    memset(s->dphiT, 0, 2 * (size_t)m * Tp * sizeof(float)); /* dΦᵀ and dΨᵀ */
    memset(s->accT, 0, (size_t)dv * Tp * sizeof(float));
    memset(s->acc, 0, 2 * (size_t)d->L * sizeof(float));
    for (int q = 0; q < Q; q += 2) rpe_pair_backward(p, d, c, s, q, Q);
    /* Back to the row layouts: dv += (dVᵀ)ᵀ; Φᵀ and Ψᵀ are done with, so dΦ and dΨ go there. */
    for (int e = 0; e < dv; e++) {
        const float *src = s->accT + (size_t)e * Tp; /* (T) */
        for (int j = 0; j < T; j++) dV[(size_t)j * dv + e] += src[j];
    }
    rpe_untranspose(s->dphiT, Tp, T, m, s->phiT);
    rpe_untranspose(s->dpsiT, Tp, T, m, s->psiT);
    /* forward was Ψ_j = m_j φ(k_j), so padded keys' rows get no gradient. */
    for (int j = 0; j < T; j++)
        if (mask[j] == 0.0f) memset(s->psiT + (size_t)j * m, 0, (size_t)m * sizeof(float));
    rpe_bias_gradient(p, d, bias, s);
}

/* dparams += the per-slice bias gradients, each head's batches in batch order, so the sum does
 * not depend on the thread count. */
static void rpe_reduce(lra_attn_ctx *ctx, const rpe_dims *d, size_t scratch_n)
{
    const int B = ctx->shape.batch, H = ctx->shape.heads;
#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int h = 0; h < H; h++) {
        float *dst = ctx->dparams + (size_t)h * d->nb; /* (2·max_len − 1) */
        for (int b = 0; b < B; b++) {
            const rpe_scratch s = rpe_scratch_view(d, ctx->scratch + (b * H + h) * scratch_n);
            for (int i = 0; i < d->nb; i++) dst[i] += s.dbias[i];
        }
    }
}

static void rpefft_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                            const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    const rpefft_priv *opt = ctx->priv;
    const int H = ctx->shape.heads, T = ctx->shape.len;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * ctx->shape.dim;
    const rpe_dims d = rpe_dims_of(ctx);
    const size_t cache_n = rpe_cache_floats(&d), scratch_n = rpe_scratch_floats(&d);
    const lra_kernel_favor fv = rpe_favor(ctx);

#pragma omp parallel for schedule(static) num_threads(lra_kernel_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T; /* (T) */
        const rpe_cache c = rpe_cache_view(&d, ctx->cache + bh * cache_n);
        const rpe_scratch s = rpe_scratch_view(&d, ctx->scratch + bh * scratch_n);
        const float *bias = ctx->params + (size_t)(bh % H) * d.nb; /* (2·max_len − 1) */

        rpe_slice_backward(opt, &d, &c, &s, mask, bias, v + bh * TD, out + bh * TD,
                           dout + bh * TD, dv + bh * TD);
        /* forward was Φ = φ(Q), Ψ = m ∘ φ(K) (FAVOR+), so chain through its Jacobian. */
        lra_kernel_favor_backward(&fv, q + bh * TD, T, 0, c.phi, c.arg_q, s.phiT, dq + bh * TD);
        lra_kernel_favor_backward(&fv, k + bh * TD, T, 1, c.psi, c.arg_k, s.psiT, dk + bh * TD);
    }
    rpe_reduce(ctx, &d, scratch_n);
}

/* ---- descriptor callbacks ---------------------------------------------------------------- */

static void rpefft_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const rpefft_priv *opt = ctx->priv;
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    const rpe_dims d = rpe_dims_of(ctx);
    *out = (lra_attn_sizes){
        .n_params  = (size_t)ctx->shape.heads * d.nb,        /* b (H, 2·max_len − 1) */
        .n_state   = (size_t)opt->features * ctx->shape.dim, /* W (m, Dh) */
        .n_cache   = slices * rpe_cache_floats(&d),          /* Φ, Ψ, den, arg-max, K̂ */
        .n_scratch = slices * rpe_scratch_floats(&d),        /* G', dΦ, dΨ, FFT buffers, db */
    };
}

static double rpefft_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const rpe_dims d = rpe_dims_of(ctx);
    const double T = d.T, m = d.m, D = d.dv, L = d.L;
    const double fft = 5.0 * L * log2(L);                      /* one complex transform */
    const double features = 2.0 * (2.0 * T * m * D + 2.0 * T * D + 5.0 * T * m);
    /* Per column, half of a pair's: x, two complex FFTs, the product, Φ∘y. */
    const double column = fft + 3.0 * L + 3.0 * T;
    const double per_slice = features + fft + 2.0 * T + m * (D + 1.0) * column + T * D;
    return (double)sh->batch * sh->heads * per_slice;
}

static void rpefft_free(lra_attn_ctx *ctx)
{
    rpefft_priv *opt = ctx->priv;
#pragma omp critical(lra_fftw_planner)
    for (int a = 0; a < RPE_PLANS; a++) {
        if (opt->fwd[a]) fftwf_destroy_plan(opt->fwd[a]);
        if (opt->inv[a]) fftwf_destroy_plan(opt->inv[a]);
        opt->fwd[a] = opt->inv[a] = NULL;
    }
}

/* Plans for length L on arrays allocated here: an aligned pair and an FFTW_UNALIGNED pair.
 * Returns 0, or −1 if FFTW could not allocate or plan. */
static int rpe_make_plans(rpefft_priv *opt, int L)
{
    int ok = 0;
#pragma omp critical(lra_fftw_planner)
    {
        fftwf_complex *in = fftwf_alloc_complex((size_t)L);
        fftwf_complex *out = fftwf_alloc_complex((size_t)L);
        if (in && out) {
            static const unsigned flags[RPE_PLANS] = {FFTW_ESTIMATE,
                                                      FFTW_ESTIMATE | FFTW_UNALIGNED};
            ok = 1;
            for (int a = 0; a < RPE_PLANS; a++) {
                opt->fwd[a] = fftwf_plan_dft_1d(L, in, out, FFTW_FORWARD, flags[a]);
                opt->inv[a] = fftwf_plan_dft_1d(L, in, out, FFTW_BACKWARD, flags[a]);
                ok &= opt->fwd[a] != NULL && opt->inv[a] != NULL;
            }
        }
        fftwf_free(in);
        fftwf_free(out);
    }
    return ok ? 0 : -1;
}

static int rpefft_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    rpefft_priv *opt = ctx->priv;
    const int D = ctx->shape.dim;
    if (opt->features < 1) {
        snprintf(err, errlen, "features must be >= 1, got %d", opt->features);
        return LRA_ATTN_EINVAL;
    }
    if (ctx->shape.len > ctx->shape.max_len) {
        snprintf(err, errlen, "len %d exceeds max_len %d, which sizes the biases",
                 ctx->shape.len, ctx->shape.max_len);
        return LRA_ATTN_ESHAPE;
    }
    if (opt->ortho && D > LRA_KERNEL_MAX_ORTHO_DIM) {
        snprintf(err, errlen, "orthogonal features support head dim <= %d, got %d; use ortho=0",
                 LRA_KERNEL_MAX_ORTHO_DIM, D);
        return LRA_ATTN_ESHAPE;
    }
    rpefft_free(ctx); /* idempotent if init runs again on the same instance */
    if (rpe_make_plans(opt, rpe_fft_len(ctx)) != 0) {
        rpefft_free(ctx);
        snprintf(err, errlen, "FFTW could not plan a real transform of length %d",
                 rpe_fft_len(ctx));
        return LRA_ATTN_EINVAL;
    }
    /* W as Performer draws it at step 0: the same features for the same layer seed. */
    const uint64_t key = lra_key(lra_key(ctx->seed, 0x9e4f0a11), 0);
    lra_kernel_draw_features(ctx->state, opt->features, D, opt->ortho, LRA_KERNEL_SCALE_CHI, key);
    memset(ctx->params, 0, (size_t)ctx->shape.heads * rpe_n_bias(ctx) * sizeof(float));
    return LRA_ATTN_OK;
}

const lra_attention lra_attn_rpefft = {
    .abi_version   = LRA_ATTN_ABI_VERSION,
    .name          = "rpefft",
    .help          = "FAVOR+ kernelized attention with relative position biases by FFT (Luo et "
                     "al. 2021, arXiv 2106.12566); O(m Dh T log T) time",
    .flags         = LRA_ATTN_STOCHASTIC,
    .priv_size     = sizeof(rpefft_priv),
    .options       = rpefft_options,
    .check_options = "features=16",
    .sizes         = rpefft_sizes,
    .flops         = rpefft_flops,
    .init          = rpefft_init,
    .forward       = rpefft_forward,
    .backward      = rpefft_backward,
    .free          = rpefft_free,
};

LRA_ATTENTION_EXPORT(lra_attn_rpefft)
