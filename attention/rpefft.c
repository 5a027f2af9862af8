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
 * a correlation with c — computed with real FFTs of length L >= 2·max_len − 1 (zero-padded, so
 * the circular product equals the linear one on the T outputs kept). With b = 0 this is exactly
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
 *                                         frequency domain, one inverse FFT per slice),
 *     db_δ   = c_δ dc_δ, then dΦ and dΨ through the FAVOR+ map (attn_kernel.h).
 * N is not cached (it is T·m·Dh floats per slice): backward recomputes each column.
 *
 * FFTW: plans for one r2c and one c2r transform of length L are made in init (the planner is not
 * thread-safe; creation and destruction run inside the named critical section lra_fftw_planner,
 * which other FFTW users in the suite should share) with FFTW_ESTIMATE, on arrays allocated and
 * freed there. forward and backward run them on their own buffers in ctx->cache and
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
 * Complexity: O(m·Dh·L log L) time per slice, L ≈ 2·max_len: m·(Dh + 1) columns, 2 FFTs each in
 * forward and 4 in backward; O(T·m + L) memory per slice (O(T·m·Dh) if N were cached).
 * Cache:   per slice Φ, Ψ (T, m), den (T), the FAVOR+ stabilisers' arg-max (T + 2), and the
 *          spectrum K̂/L of the bias kernel (L/2 + 1 complex).
 * Scratch: per slice G' (T, Dh + 1), dΦ, dΨ (T, m), three real (L) and four complex (L/2 + 1)
 *          FFT buffers, and the slice's bias gradient (2·max_len − 1).
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
    fftwf_plan r2c[RPE_PLANS]; /* real (L) → complex (L/2 + 1) */
    fftwf_plan c2r[RPE_PLANS]; /* complex (L/2 + 1) → real (L), destroys its input */
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

/* The FFT length: the smallest 2^a 3^b 5^c 7^d >= 2·max_len − 1 (sizes FFTW does fast), so that
 * one set of plans serves every T <= max_len. */
static int rpe_fft_len(const lra_attn_ctx *ctx)
{
    const int need = 2 * ctx->shape.max_len - 1;
    for (int L = need > 1 ? need : 2;; L++) {
        int x = L;
        for (int p = 2; p <= 7; p++)
            while (x % p == 0) x /= p;
        if (x == 1) return L;
    }
}

/* Biases per head: δ = −(max_len − 1) … max_len − 1. */
static int rpe_n_bias(const lra_attn_ctx *ctx) { return 2 * ctx->shape.max_len - 1; }

/* One slice's buffers, as views; counts in floats. */
typedef struct rpe_dims {
    int T, m, dv, L, nc, nb; /* tokens, features, value width, FFT length, L/2 + 1, biases */
} rpe_dims;

static rpe_dims rpe_dims_of(const lra_attn_ctx *ctx)
{
    const rpefft_priv *opt = ctx->priv;
    const int L = rpe_fft_len(ctx);
    return (rpe_dims){.T = ctx->shape.len, .m = opt->features, .dv = ctx->shape.dim, .L = L,
                      .nc = L / 2 + 1, .nb = rpe_n_bias(ctx)};
}

typedef struct rpe_cache {
    float *phi, *psi;    /* (T, m) Φ; Ψ with padded rows 0 */
    float *den;          /* (T) stabilised denominators */
    float *arg_q;        /* (T) FAVOR+ query stabilisers' arg-max */
    float *arg_k;        /* (2) the keys' */
    float *khat;         /* (L/2 + 1) complex, interleaved: the bias kernel's spectrum / L */
} rpe_cache;

static size_t rpe_cache_floats(const rpe_dims *d)
{
    const size_t Tm = rpe_round((size_t)d->T * d->m);
    return 2 * Tm + rpe_round(d->T) + rpe_round((size_t)d->T + 2) + rpe_round(2 * (size_t)d->nc);
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
    float *gp;                   /* (T, Dh + 1) G' = [g, h] */
    float *dphi, *dpsi;          /* (T, m) */
    float *xr, *yr, *wr;         /* (L) real FFT buffers */
    float *xc, *wc;              /* (L/2 + 1) complex: spectra of x and w */
    float *tc;                   /* (L/2 + 1) complex: a product, consumed by the inverse FFT */
    float *acc;                  /* (L/2 + 1) complex: Σ conj(ŵ) x̂, the bias gradient's */
    float *dbias;                /* (2·max_len − 1) this slice's bias gradient */
} rpe_scratch;

static size_t rpe_scratch_floats(const rpe_dims *d)
{
    const size_t Tm = rpe_round((size_t)d->T * d->m), C = rpe_round(2 * (size_t)d->nc);
    return rpe_round((size_t)d->T * (d->dv + 1)) + 2 * Tm + 3 * rpe_round(d->L) + 4 * C +
           rpe_round(d->nb);
}

static rpe_scratch rpe_scratch_view(const rpe_dims *d, float *base)
{
    const size_t Tm = rpe_round((size_t)d->T * d->m), C = rpe_round(2 * (size_t)d->nc);
    const size_t Lr = rpe_round(d->L);
    rpe_scratch s;
    s.gp = base;
    s.dphi = s.gp + rpe_round((size_t)d->T * (d->dv + 1));
    s.dpsi = s.dphi + Tm;
    s.xr = s.dpsi + Tm;
    s.yr = s.xr + Lr;
    s.wr = s.yr + Lr;
    s.xc = s.wr + Lr;
    s.wc = s.xc + C;
    s.tc = s.wc + C;
    s.acc = s.tc + C;
    s.dbias = s.acc + C;
    return s;
}

/* ---- FFT helpers ------------------------------------------------------------------------- */

/* The plan pair index for buffers a and b: aligned plans only if both are SIMD-aligned. */
static int rpe_plan_for(float *a, float *b)
{
    return fftwf_alignment_of(a) == 0 && fftwf_alignment_of(b) == 0
               ? RPE_ALIGNED
               : RPE_UNALIGNED;
}

/* Spectra are kept as interleaved (re, im) floats; these two are the only places that hand
 * them to FFTW as fftwf_complex. */

/* xc (L/2 + 1 complex) = FFT of xr (L). */
static void rpe_fft(const rpefft_priv *p, float *xr, float *xc)
{
    fftwf_execute_dft_r2c(p->r2c[rpe_plan_for(xr, xc)], xr, (fftwf_complex *)xc);
}

/* yr (L) = inverse FFT of xc (L/2 + 1 complex), unscaled; destroys xc. */
static void rpe_ifft(const rpefft_priv *p, float *xc, float *yr)
{
    fftwf_execute_dft_c2r(p->c2r[rpe_plan_for(xc, yr)], (fftwf_complex *)xc, yr);
}

/* yr (L) = IFFT(x̂ ∘ k̂) or, with conj, IFFT(x̂ ∘ conj k̂), where k̂ already holds the 1/L of
 * the inverse transform: the correlation with c (forward) or its transpose. tc is scratch. */
static void rpe_apply(const rpefft_priv *p, const float *xc, const float *khat, int conj,
                      int nc, float *tc, float *yr)
{
    const float sgn = conj ? -1.0f : 1.0f;
    for (int f = 0; f < nc; f++) {
        const float xr = xc[2 * f], xi = xc[2 * f + 1];
        const float kr = khat[2 * f], ki = sgn * khat[2 * f + 1];
        tc[2 * f] = xr * kr - xi * ki;
        tc[2 * f + 1] = xr * ki + xi * kr;
    }
    rpe_ifft(p, tc, yr);
}

/* xr (L) = [a_j · b_j for j < T, then 0], a and b read with strides sa and sb; b NULL means 1. */
static void rpe_column(float *xr, const rpe_dims *d, const float *a, int sa, const float *b,
                       int sb)
{
    for (int j = 0; j < d->T; j++)
        xr[j] = b ? a[(size_t)j * sa] * b[(size_t)j * sb] : a[(size_t)j * sa];
    memset(xr + d->T, 0, (size_t)(d->L - d->T) * sizeof(float));
}

/* khat (L/2 + 1) = FFT(K)/L for the circular kernel K[(i − j) mod L] = c_{j−i} = exp(b_{j−i}),
 * |j − i| < T, of one head's biases bias (2·max_len − 1); yr (L) is scratch. */
static void rpe_kernel_spectrum(const rpefft_priv *p, const rpe_dims *d, const float *bias,
                                float *yr, float *khat)
{
    const float *b0 = bias + (d->nb - 1) / 2; /* b0[δ] = b_δ */
    memset(yr, 0, (size_t)d->L * sizeof(float));
    for (int t = 0; t < d->T; t++) yr[t] = expf(b0[-t]);          /* i − j = t: δ = −t */
    for (int s = 1; s < d->T; s++) yr[d->L - s] = expf(b0[s]);   /* i − j = −s: δ = s */
    rpe_fft(p, yr, khat);
    const float inv = 1.0f / (float)d->L;
    for (int f = 0; f < 2 * d->nc; f++) khat[f] *= inv;
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
 * column (l, e ≤ Dh) of [Ψ_·l ∘ V, Ψ_·l]: y = c ⋆ x by FFT, then out_·e or den += Φ_·l ∘ y. */
static void rpe_slice_forward(const rpefft_priv *p, const rpe_dims *d, const rpe_cache *c,
                              const rpe_scratch *s, const float *V, float *out)
{
    const int T = d->T, m = d->m, dv = d->dv;
    memset(out, 0, (size_t)T * dv * sizeof(float));
    memset(c->den, 0, (size_t)T * sizeof(float));
    for (int l = 0; l < m; l++)
        for (int e = 0; e <= dv; e++) {
            rpe_column(s->xr, d, c->psi + l, m, e < dv ? V + e : NULL, dv);
            rpe_fft(p, s->xr, s->xc);
            rpe_apply(p, s->xc, c->khat, 0, d->nc, s->tc, s->yr);
            float *dst = e < dv ? out + e : c->den; /* column e of out, or den */
            const int stride = e < dv ? dv : 1;
            for (int i = 0; i < T; i++)
                dst[(size_t)i * stride] += c->phi[(size_t)i * m + l] * s->yr[i];
        }
    for (int i = 0; i < T; i++) {
        const float R = c->den[i];
        c->den[i] = fabsf(R) <= RPE_DELTA ? R + 2.0f * RPE_DELTA : R;
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
        rpe_kernel_spectrum(opt, &d, ctx->params + (size_t)(bh % H) * d.nb, s.yr, c.khat);
        rpe_slice_forward(opt, &d, &c, &s, v + bh * TD, out + bh * TD);
    }
}

/* ---- backward ---------------------------------------------------------------------------- */

/* gp (T, Dh + 1) = [do_i / den_i, −(do_i·o_i) / den_i] by rows. */
static void rpe_scaled_dout(const rpe_dims *d, const float *den, const float *O, const float *dO,
                            float *gp)
{
    const int dv = d->dv;
    for (int i = 0; i < d->T; i++) {
        const float *o = O + (size_t)i * dv, *g = dO + (size_t)i * dv; /* (Dh) */
        float *row = gp + (size_t)i * (dv + 1);                        /* (Dh + 1) */
        const float inv = 1.0f / den[i];
        double dot = 0.0;
        for (int e = 0; e < dv; e++) {
            row[e] = g[e] * inv;
            dot += (double)g[e] * o[e];
        }
        row[dv] = (float)(-dot) * inv;
    }
}

/* acc (L/2 + 1) += conj(ŵ) ∘ x̂: the spectrum of the cross-correlation Σ_i w_i x_{i+δ}. */
static void rpe_accumulate(int nc, const float *wc, const float *xc, float *acc)
{
    for (int f = 0; f < nc; f++) {
        const float wr = wc[2 * f], wi = wc[2 * f + 1], xr = xc[2 * f], xi = xc[2 * f + 1];
        acc[2 * f] += wr * xr + wi * xi;
        acc[2 * f + 1] += wr * xi - wi * xr;
    }
}

/* One column (l, e) of the backward pass; see the header. */
static void rpe_column_backward(const rpefft_priv *p, const rpe_dims *d, const rpe_cache *c,
                                const rpe_scratch *s, const float *V, int l, int e, float *dV)
{
    const int T = d->T, m = d->m, dv = d->dv, w1 = dv + 1;
    const float *ve = e < dv ? V + e : NULL; /* V'_·e, NULL for the column of ones */

    /* forward was y = c ⋆ x, x = Ψ_·l ∘ V'_·e, and out_·e (or den) += Φ_·l ∘ y, so
     * dΦ_il += G'_ie y_i. */
    rpe_column(s->xr, d, c->psi + l, m, ve, dv);
    rpe_fft(p, s->xr, s->xc);
    rpe_apply(p, s->xc, c->khat, 0, d->nc, s->tc, s->yr);
    for (int i = 0; i < T; i++) s->dphi[(size_t)i * m + l] += s->gp[(size_t)i * w1 + e] * s->yr[i];

    /* ... and dy_i = Φ_il G'_ie = w_i, so dx_j = Σ_i c_{j−i} w_i (the transposed product),
     * dΨ_jl += V'_je dx_j and dv_je += Ψ_jl dx_j. */
    rpe_column(s->wr, d, c->phi + l, m, s->gp + e, w1);
    rpe_fft(p, s->wr, s->wc);
    rpe_apply(p, s->wc, c->khat, 1, d->nc, s->tc, s->yr);
    for (int j = 0; j < T; j++) {
        s->dpsi[(size_t)j * m + l] += (ve ? ve[(size_t)j * dv] : 1.0f) * s->yr[j];
        if (ve) dV[(size_t)j * dv + e] += c->psi[(size_t)j * m + l] * s->yr[j];
    }

    /* ... and y_i = Σ_δ c_δ x_{i+δ}, so dc_δ += Σ_i w_i x_{i+δ}. */
    rpe_accumulate(d->nc, s->wc, s->xc, s->acc);
}

/* dbias (2·max_len − 1) = c_δ · dc_δ for |δ| < T (0 elsewhere), from acc; destroys acc. */
static void rpe_bias_gradient(const rpefft_priv *p, const rpe_dims *d, const float *bias,
                              const rpe_scratch *s)
{
    const int half = (d->nb - 1) / 2;
    const float inv = 1.0f / (float)d->L;
    rpe_ifft(p, s->acc, s->yr);
    memset(s->dbias, 0, (size_t)d->nb * sizeof(float));
    /* forward was c_δ = exp(b_δ), so db_δ = c_δ dc_δ; dc_δ sits at index δ mod L. */
    for (int delta = -(d->T - 1); delta < d->T; delta++) {
        const float dc = s->yr[delta >= 0 ? delta : d->L + delta] * inv;
        s->dbias[half + delta] = expf(bias[half + delta]) * dc;
    }
}

/* One slice's backward: dV added, dΦ and dΨ (padded rows 0) and dbias written. */
static void rpe_slice_backward(const rpefft_priv *p, const rpe_dims *d, const rpe_cache *c,
                               const rpe_scratch *s, const float *mask, const float *bias,
                               const float *V, const float *O, const float *dO, float *dV)
{
    const int T = d->T, m = d->m;
    rpe_scaled_dout(d, c->den, O, dO, s->gp);
    memset(s->dphi, 0, (size_t)T * m * sizeof(float));
    memset(s->dpsi, 0, (size_t)T * m * sizeof(float));
    memset(s->acc, 0, 2 * (size_t)d->nc * sizeof(float));
    for (int l = 0; l < m; l++)
        for (int e = 0; e <= d->dv; e++) rpe_column_backward(p, d, c, s, V, l, e, dV);
    /* forward was Ψ_j = m_j φ(k_j), so padded keys' rows get no gradient. */
    for (int j = 0; j < T; j++)
        if (mask[j] == 0.0f) memset(s->dpsi + (size_t)j * m, 0, (size_t)m * sizeof(float));
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
        lra_kernel_favor_backward(&fv, q + bh * TD, T, 0, c.phi, c.arg_q, s.dphi, dq + bh * TD);
        lra_kernel_favor_backward(&fv, k + bh * TD, T, 1, c.psi, c.arg_k, s.dpsi, dk + bh * TD);
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
    const double fft = 2.5 * L * log2(L);                      /* one real transform */
    const double features = 2.0 * (2.0 * T * m * D + 2.0 * T * D + 5.0 * T * m);
    const double column = 2.0 * fft + 6.0 * d.nc + 3.0 * T;    /* x, two FFTs, product, Φ∘y */
    const double per_slice = features + fft + 2.0 * T + m * (D + 1.0) * column + T * D;
    return (double)sh->batch * sh->heads * per_slice;
}

static void rpefft_free(lra_attn_ctx *ctx)
{
    rpefft_priv *opt = ctx->priv;
#pragma omp critical(lra_fftw_planner)
    for (int a = 0; a < RPE_PLANS; a++) {
        if (opt->r2c[a]) fftwf_destroy_plan(opt->r2c[a]);
        if (opt->c2r[a]) fftwf_destroy_plan(opt->c2r[a]);
        opt->r2c[a] = opt->c2r[a] = NULL;
    }
}

/* Plans for length L on arrays allocated here: an aligned pair and an FFTW_UNALIGNED pair.
 * Returns 0, or −1 if FFTW could not allocate or plan. */
static int rpe_make_plans(rpefft_priv *opt, int L)
{
    int ok = 0;
#pragma omp critical(lra_fftw_planner)
    {
        float *re = fftwf_alloc_real((size_t)L);
        fftwf_complex *cx = fftwf_alloc_complex((size_t)L / 2 + 1);
        if (re && cx) {
            static const unsigned flags[RPE_PLANS] = {FFTW_ESTIMATE,
                                                      FFTW_ESTIMATE | FFTW_UNALIGNED};
            ok = 1;
            for (int a = 0; a < RPE_PLANS; a++) {
                opt->r2c[a] = fftwf_plan_dft_r2c_1d(L, re, cx, flags[a]);
                opt->c2r[a] = fftwf_plan_dft_c2r_1d(L, cx, re, flags[a]);
                ok &= opt->r2c[a] != NULL && opt->c2r[a] != NULL;
            }
        }
        fftwf_free(re);
        fftwf_free(cx);
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
