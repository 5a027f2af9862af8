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
 * DFT by matrices, not FFT: FFTW is not a dependency of the core build and plugins may not
 * allocate (FFTW plans do). The T×T cosine and sine matrices (64 MB each at T = 4096) are never
 * formed: a per-call table of cos(2πk/T), sin(2πk/T) is built once (shared by all slices) and
 * FNET_TILE×FNET_TILE tiles of C_T and S_T are filled from it ((a·b) mod T indexes the table,
 * so every entry is the correctly rounded float of its exact angle) and applied with sgemm.
 * Complexity: 4·T²·Dh + 4·T·Dh² flops forward per slice (O(T²·Dh) rather than an FFT's
 * O(T·Dh·log T); at LRA lengths and Dh = 64 the GEMMs run at BLAS speed). Backward: the map is
 * linear and symmetric (C, S symmetric), so dX = c·m∘(C_T (m∘dY) C_Dh − S_T (m∘dY) S_Dh), the
 * same operation on dY, and dv += dX.
 * Cache:   nothing (n_cache = 0): the operation is linear.
 * Scratch: shared tables cos/sin(2πk/T) (2T), cos/sin(2πk/Dh) (2·Dh), C_Dh and S_Dh (2·Dh²);
 *          per slice: the masked input and its two hidden transforms (3·T·Dh), backward's
 *          result (T·Dh) and one tile each of C_T and S_T (2·R², R = min(T, FNET_TILE)).
 * Threads: one OpenMP loop over the B·H slices; BLAS runs single-threaded inside it.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lra_attention.h"

enum { FNET_TILE = 128 }; /* rows and columns of one tile of C_T and S_T */

typedef struct fnet_priv {
    int normalize; /* 1: scale by 1/sqrt(T·Dh) */
} fnet_priv;

static const lra_attn_option fnet_options[] = {
    {.name = "normalize", .help = "scale the DFT by 1/sqrt(T*Dh) (adaptation for pre-LN; "
                                  "0 = the paper's unnormalised DFT)",
     .offset = offsetof(fnet_priv, normalize), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = NULL},
};

/* The shared tables of one call, at the start of scratch. */
typedef struct fnet_tables {
    const float *cos_t, *sin_t; /* (T) cos, sin(2πk/T) */
    const float *c_d, *s_d;     /* (Dh, Dh) C_Dh, S_Dh */
    int T, D, R;                /* tokens, head dim, tile */
    float c;                    /* output scale */
} fnet_tables;

/* One slice's work buffers. */
typedef struct fnet_work {
    float *x, *xc, *xs; /* (T, Dh) masked input, X C_Dh, X S_Dh */
    float *y;           /* (T, Dh) backward's dX before it is added into dv */
    float *ct, *st;     /* (R, R) tiles of C_T, S_T */
} fnet_work;

static int fnet_tile(int T) { return T < FNET_TILE ? T : FNET_TILE; }

static size_t fnet_shared_floats(int T, int D)
{
    return 2 * (size_t)T + 2 * (size_t)D + 2 * (size_t)D * D;
}

static size_t fnet_slice_floats(int T, int D)
{
    const size_t R = (size_t)fnet_tile(T);
    return 4 * (size_t)T * D + 2 * R * R;
}

static int fnet_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

/* table[k] = cos or sin(2πk/N), k < N, rounded from double. */
static void fnet_trig_table(float *cos_t, float *sin_t, int N)
{
    for (int k = 0; k < N; k++) {
        const double a = 6.283185307179586 * (double)k / N;
        cos_t[k] = (float)cos(a);
        sin_t[k] = (float)sin(a);
    }
}

/* Builds the shared tables in scratch for ctx->shape. */
static fnet_tables fnet_build_tables(const lra_attn_ctx *ctx)
{
    const fnet_priv *opt = ctx->priv;
    const int T = ctx->shape.len, D = ctx->shape.dim;
    float *cos_t = ctx->scratch, *sin_t = cos_t + T;    /* (T) each */
    float *cos_d = sin_t + T, *sin_d = cos_d + D;       /* (Dh) each */
    float *c_d = sin_d + D, *s_d = c_d + (size_t)D * D; /* (Dh, Dh) each */
    fnet_trig_table(cos_t, sin_t, T);
    fnet_trig_table(cos_d, sin_d, D);
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            const int k = (int)(((long long)a * b) % D);
            c_d[(size_t)a * D + b] = cos_d[k];
            s_d[(size_t)a * D + b] = sin_d[k];
        }
    return (fnet_tables){.cos_t = cos_t, .sin_t = sin_t, .c_d = c_d, .s_d = s_d, .T = T, .D = D,
                         .R = fnet_tile(T),
                         .c = opt->normalize ? 1.0f / sqrtf((float)T * (float)D) : 1.0f};
}

static fnet_work fnet_work_at(const lra_attn_ctx *ctx, const fnet_tables *tb, int bh)
{
    const size_t TD = (size_t)tb->T * tb->D, RR = (size_t)tb->R * tb->R;
    float *base = ctx->scratch + fnet_shared_floats(tb->T, tb->D) +
                  (size_t)bh * fnet_slice_floats(tb->T, tb->D);
    return (fnet_work){.x = base, .xc = base + TD, .xs = base + 2 * TD, .y = base + 3 * TD,
                       .ct = base + 4 * TD, .st = base + 4 * TD + RR};
}

/* Tiles ct, st (nr, nc) = C_T, S_T rows [a0, a0 + nr), columns [b0, b0 + nc). */
static void fnet_fill_tiles(const fnet_tables *tb, int a0, int nr, int b0, int nc, float *ct,
                            float *st)
{
    for (int a = 0; a < nr; a++)
        for (int b = 0; b < nc; b++) {
            const long long k = ((long long)(a0 + a) * (b0 + b)) % tb->T;
            ct[(size_t)a * nc + b] = tb->cos_t[k];
            st[(size_t)a * nc + b] = tb->sin_t[k];
        }
}

/* Y (T, Dh) = c·m∘(C_T X̄ C_Dh − S_T X̄ S_Dh) with X̄ = m∘X: the forward map, and (being linear
 * and symmetric) also its own adjoint. */
static void fnet_apply(const fnet_tables *tb, const float *X, const float *mask, float *Y,
                       fnet_work *w)
{
    const int T = tb->T, D = tb->D, R = tb->R;
    for (int t = 0; t < T; t++) {
        float *row = w->x + (size_t)t * D;
        if (mask[t] != 0.0f)
            memcpy(row, X + (size_t)t * D, (size_t)D * sizeof(float));
        else
            memset(row, 0, (size_t)D * sizeof(float));
    }
    /* The hidden DFT: XC = X̄ C_Dh, XS = X̄ S_Dh, (T, Dh) each. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, D, 1.0f, w->x, D, tb->c_d, D,
                0.0f, w->xc, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, D, 1.0f, w->x, D, tb->s_d, D,
                0.0f, w->xs, D);
    /* The sequence DFT, tile by tile: Y[a-tile] = c·Σ_b-tiles (C_ab XC_b − S_ab XS_b). */
    for (int a0 = 0; a0 < T; a0 += R) {
        const int nr = T - a0 < R ? T - a0 : R;
        float *Ya = Y + (size_t)a0 * D; /* (nr, Dh) */
        for (int b0 = 0; b0 < T; b0 += R) {
            const int nc = T - b0 < R ? T - b0 : R;
            fnet_fill_tiles(tb, a0, nr, b0, nc, w->ct, w->st);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, nc, tb->c, w->ct, nc,
                        w->xc + (size_t)b0 * D, D, b0 == 0 ? 0.0f : 1.0f, Ya, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, nc, -tb->c, w->st, nc,
                        w->xs + (size_t)b0 * D, D, 1.0f, Ya, D);
        }
    }
    for (int t = 0; t < T; t++)
        if (mask[t] == 0.0f) memset(Y + (size_t)t * D, 0, (size_t)D * sizeof(float));
}

static void fnet_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const int T = ctx->shape.len, D = ctx->shape.dim;
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = 0,
        .n_scratch = fnet_shared_floats(T, D) + slices * fnet_slice_floats(T, D),
    };
}

static double fnet_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const double slices = (double)sh->batch * sh->heads, T = sh->len, D = sh->dim;
    /* Hidden DFT: two (T×Dh)(Dh×Dh) products, 2·T·Dh² each. Sequence DFT: two (T×T)(T×Dh)
     * products, 2·T²·Dh each. Filling the tiles: about 2 per entry of C_T and S_T. */
    return slices * (4.0 * T * D * D + 4.0 * T * T * D + 2.0 * T * T);
}

static int fnet_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const fnet_priv *opt = ctx->priv;
    if (opt->normalize != 0 && opt->normalize != 1) {
        snprintf(err, errlen, "normalize must be 0 or 1, got %d", opt->normalize);
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

static void fnet_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                         float *out)
{
    (void)q;
    (void)k; /* FNet mixes the values only */
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H, T = ctx->shape.len;
    const size_t TD = (size_t)T * ctx->shape.dim;
    const fnet_tables tb = fnet_build_tables(ctx);

#pragma omp parallel for schedule(static) num_threads(fnet_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        fnet_work w = fnet_work_at(ctx, &tb, bh);
        fnet_apply(&tb, v + bh * TD, ctx->key_mask + (size_t)(bh / H) * T, out + bh * TD, &w);
    }
}

static void fnet_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                          const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    (void)q, (void)k, (void)v, (void)out; /* linear: nothing from forward is needed */
    (void)dq, (void)dk;                   /* q and k are unused: their gradient is 0 */
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H, T = ctx->shape.len;
    const size_t TD = (size_t)T * ctx->shape.dim;
    const fnet_tables tb = fnet_build_tables(ctx);

#pragma omp parallel for schedule(static) num_threads(fnet_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        fnet_work w = fnet_work_at(ctx, &tb, bh);
        /* forward was Y = c·m∘(C X̄ C − S X̄ S), X̄ = m∘V, with symmetric C and S, so
         * dV = c·m∘(C (m∘dY) C − S (m∘dY) S): the same map applied to dY. */
        fnet_apply(&tb, dout + bh * TD, ctx->key_mask + (size_t)(bh / H) * T, w.y, &w);
        float *dV = dv + bh * TD; /* (T, Dh) */
        for (size_t i = 0; i < TD; i++) dV[i] += w.y[i];
    }
}

const lra_attention lra_attn_fnet = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "fnet",
    .help        = "FNet Fourier token mixing of v, no attention (Lee-Thorp et al. 2021, arXiv "
                   "2105.03824); O(T^2 Dh) DFT by tiled GEMM, O(T Dh) memory",
    .flags       = 0,
    .priv_size   = sizeof(fnet_priv),
    .options     = fnet_options,
    .sizes       = fnet_sizes,
    .flops       = fnet_flops,
    .init        = fnet_init,
    .forward     = fnet_forward,
    .backward    = fnet_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_fnet)
