/* sinkformer.c — Sinkformer: attention made (close to) doubly stochastic by Sinkhorn iterations.
 *
 * Sander, Ablin, Blondel, Peyré, "Sinkformers: Transformers with Doubly Stochastic Attention",
 * AISTATS 2022 (PMLR 151), arXiv 2110.11773; code michaelsdr/sinkformers. attention-variants.md
 * §18. Per (batch, head) slice, with C = s·Q Kᵀ (s = 1/sqrt(Dh)) and potentials u, v (T each,
 * both 0 at the start), `iters` = n log-domain normalisation steps alternate, row step first:
 *     row step:    u_i ← u_i − lse_j(C_ij + u_i + v_j)        (every query row)
 *     column step: v_j ← v_j − lse_{i real}(C_ij + u_i + v_j) (real keys j, over REAL queries i)
 * then A = exp(C + u 1ᵀ + 1 vᵀ) and O = Ã V, Ã = A after attention dropout (the stream of
 * attention/softmax.c, so iters=1 equals softmax exactly, dropout included). This is the code's
 * iteration with marginals 1/n and A = n·π, ε = 1, written with log-marginal 0 instead.
 * iters = 1 (one row step) is exact softmax attention; odd iters end on a row step (rows sum to
 * 1 exactly, columns approximately), even iters on a column step. Default 5: the reference
 * README's near-doubly-stochastic demonstration (the paper's per-experiment values: §18,
 * unverified).
 * Padding (defined here, §18's restriction to the real block): a padded key j is outside every
 * lse and has A_ij = 0 for every query. Padded queries are excluded from the column sums, so on
 * the n_real × n_real block of real tokens A tends to a doubly stochastic matrix and nothing a
 * padded token holds (its q, k or v) reaches a real output. A padded query still takes part in
 * the row steps (its row is normalised against the shared column potentials v), so its output
 * is an ordinary weighted average of real values; the model discards it anyway. A slice without
 * real keys gives O = 0.
 *
 * Complexity: 4·T²·Dh flops for the two products plus about 5·T² per normalisation step, each
 *          way; backward also recomputes each step's iterate (O(iters·T²)). Not sub-quadratic.
 * Cache:   per slice, C (T²) and the potentials (u, v) after every step (2·T·iters) — §18's
 *          "C and the potentials after each half-step"; every iterate L_l = C + u_l + v_l is
 *          recomputed from them in backward.
 * Backward (B5, unrolled): dL_n = A ∘ dA with dA = (dO Vᵀ) ∘ Z/(1−p); then for l = n … 1 with
 *          P_l = exp(L_l): row step: dL_{l−1} = dL_l − P_l ∘ (row sums of dL_l); column step:
 *          dL_{l−1,ij} = dL_l,ij − [i real]·P_l,ij·Σ_{all i'} dL_l,i'j. Finally dC = dL_0,
 *          dQ += s·dC K, dK += s·dCᵀ Q, dV += Ãᵀ dO.
 * Scratch: per slice, two T×T matrices (the iterate / Ã and the carried gradient) and two
 *          T-vectors for the column reductions.
 * Threads: one OpenMP loop over the B·H slices; BLAS runs single-threaded inside it.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lra_attention.h"
#include "lra_rng.h"

typedef struct sinkformer_priv {
    int iters; /* n: normalisation steps, row step first; 1 = softmax */
} sinkformer_priv;

static const lra_attn_option sinkformer_options[] = {
    {.name = "iters", .help = "Sinkhorn normalisation steps (rows, columns, rows, ...); "
                              "1 = softmax; reference README: 5",
     .offset = offsetof(sinkformer_priv, iters), .type = LRA_OPT_INT,
     .def = 5, .min = 1, .max = 1000},
    {.name = NULL},
};

/* One slice's arrays. */
typedef struct sinkformer_slice {
    const float *mask; /* (T) 1 = real token (key and query) */
    float *C;          /* (T, T) cached logits s·Q Kᵀ */
    float *pot;        /* (iters, 2, T) cached u_l, v_l after step l = 1 … iters */
    float *W, *G;      /* (T, T) iterate or Ã; carried gradient */
    float *cmax, *csum; /* (T) column reductions */
    int T, n;
} sinkformer_slice;

static int sinkformer_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

static float sinkformer_drop_rate(const lra_attn_ctx *ctx)
{
    return ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
}

/* The dropout stream of slice bh at this step: attention/softmax.c's. */
static uint64_t sinkformer_drop_key(const lra_attn_ctx *ctx, int bh)
{
    return lra_key(lra_key(ctx->seed, ctx->step), (uint64_t)bh);
}

static size_t sinkformer_cache_floats(int T, int n) { return (size_t)T * T + 2 * (size_t)T * n; }

static size_t sinkformer_scratch_floats(int T) { return 2 * (size_t)T * T + 2 * (size_t)T; }

static sinkformer_slice sinkformer_slice_at(const lra_attn_ctx *ctx, int bh)
{
    const sinkformer_priv *opt = ctx->priv;
    const int T = ctx->shape.len, n = opt->iters;
    const size_t TT = (size_t)T * T;
    float *c = ctx->cache + (size_t)bh * sinkformer_cache_floats(T, n);
    float *w = ctx->scratch + (size_t)bh * sinkformer_scratch_floats(T);
    return (sinkformer_slice){.mask = ctx->key_mask + (size_t)(bh / ctx->shape.heads) * T,
                              .C = c, .pot = c + TT, .W = w, .G = w + TT, .cmax = w + 2 * TT,
                              .csum = w + 2 * TT + T, .T = T, .n = n};
}

/* The cached potentials u_l, v_l (T each) after step l >= 1. The start u_0 = v_0 = 0 is not
 * stored: the functions below take NULL for it. */
static float *sinkformer_u(const sinkformer_slice *z, int l)
{
    return z->pot + (size_t)(l - 1) * 2 * z->T;
}
static float *sinkformer_v(const sinkformer_slice *z, int l) { return sinkformer_u(z, l) + z->T; }

/* W = L_l = C + u_l 1ᵀ + 1 v_lᵀ on real keys; −∞ on padded keys. u, v NULL: L_0 = C. */
static void sinkformer_iterate(const sinkformer_slice *z, const float *u, const float *v)
{
    const int T = z->T;
    for (int i = 0; i < T; i++) {
        const float *c = z->C + (size_t)i * T;
        float *w = z->W + (size_t)i * T;
        const float ui = u ? u[i] : 0.0f;
        for (int j = 0; j < T; j++)
            w[j] = z->mask[j] != 0.0f ? c[j] + ui + (v ? v[j] : 0.0f) : -INFINITY;
    }
}

/* Row step on the iterate in W: u_out = u_in − lse_row(W). A row without real keys keeps u. */
static void sinkformer_row_step(const sinkformer_slice *z, const float *u_in, float *u_out)
{
    const int T = z->T;
    for (int i = 0; i < T; i++) {
        const float *w = z->W + (size_t)i * T;
        float mx = -INFINITY;
        for (int j = 0; j < T; j++) mx = w[j] > mx ? w[j] : mx;
        double sum = 0.0;
        if (mx > -INFINITY)
            for (int j = 0; j < T; j++) sum += expf(w[j] - mx);
        const float u0 = u_in ? u_in[i] : 0.0f;
        u_out[i] = sum > 0.0 ? u0 - (mx + (float)log(sum)) : u0;
    }
}

/* Column step on the iterate in W: v_out = v_in − lse over the real queries of each column. */
static void sinkformer_col_step(const sinkformer_slice *z, const float *v_in, float *v_out)
{
    const int T = z->T;
    for (int j = 0; j < T; j++) z->cmax[j] = -INFINITY, z->csum[j] = 0.0f;
    for (int i = 0; i < T; i++) {
        if (z->mask[i] == 0.0f) continue;
        const float *w = z->W + (size_t)i * T;
        for (int j = 0; j < T; j++) z->cmax[j] = w[j] > z->cmax[j] ? w[j] : z->cmax[j];
    }
    for (int i = 0; i < T; i++) {
        if (z->mask[i] == 0.0f) continue;
        const float *w = z->W + (size_t)i * T;
        for (int j = 0; j < T; j++)
            if (z->cmax[j] > -INFINITY) z->csum[j] += expf(w[j] - z->cmax[j]);
    }
    for (int j = 0; j < T; j++) {
        const float v0 = v_in ? v_in[j] : 0.0f;
        v_out[j] = z->csum[j] > 0.0f ? v0 - (z->cmax[j] + logf(z->csum[j])) : v0;
    }
}

/* W ← exp(W) in place (exp(−∞) = 0 on padded keys). */
static void sinkformer_exp(const sinkformer_slice *z)
{
    const size_t TT = (size_t)z->T * z->T;
    for (size_t ij = 0; ij < TT; ij++) z->W[ij] = expf(z->W[ij]);
}

/* All n steps; the potentials after each go to the cache. Leaves A = exp(L_n) in W. */
static void sinkformer_normalise(const sinkformer_slice *z)
{
    const size_t Tb = (size_t)z->T * sizeof(float);
    for (int l = 1; l <= z->n; l++) {
        const float *u = l > 1 ? sinkformer_u(z, l - 1) : NULL;
        const float *v = l > 1 ? sinkformer_v(z, l - 1) : NULL;
        sinkformer_iterate(z, u, v);
        /* Step l is a row step for odd l (the first is), a column step for even l. */
        if (l % 2 == 1) {
            sinkformer_row_step(z, u, sinkformer_u(z, l));
            if (v)
                memcpy(sinkformer_v(z, l), v, Tb);
            else
                memset(sinkformer_v(z, l), 0, Tb);
        } else {
            sinkformer_col_step(z, v, sinkformer_v(z, l));
            memcpy(sinkformer_u(z, l), u, Tb);
        }
    }
    sinkformer_iterate(z, sinkformer_u(z, z->n), sinkformer_v(z, z->n));
    sinkformer_exp(z);
}

/* dst = src ∘ Z/(1−p) for the T×T keep mask of stream key (softmax.c's). dst may equal src. */
static void sinkformer_dropout(float *dst, const float *src, int T, uint64_t key, float p)
{
    const float inv_keep = 1.0f / (1.0f - p);
    const size_t TT = (size_t)T * T;
    for (size_t ij = 0; ij < TT; ij++)
        dst[ij] = lra_uniform(key, ij) >= p ? src[ij] * inv_keep : 0.0f;
}

/* Backward of step l, in place on G = dL_l, with W = P_l = exp(L_l): leaves dL_{l−1}. */
static void sinkformer_step_backward(const sinkformer_slice *z, int l)
{
    const int T = z->T;
    if (l % 2 == 1) {
        /* forward was L_l = L_{l−1} − lse_row(L_{l−1}), so dL_{l−1} = dL_l − P_l ∘ rowsum. */
        for (int i = 0; i < T; i++) {
            float *g = z->G + (size_t)i * T;
            const float *p = z->W + (size_t)i * T;
            double rs = 0.0;
            for (int j = 0; j < T; j++) rs += g[j];
            for (int j = 0; j < T; j++) g[j] -= p[j] * (float)rs;
        }
        return;
    }
    /* forward was L_l,ij = L_{l−1},ij − c_j for every row i, c_j = lse over the REAL rows, so
     * dc_j = −Σ_{all i} dL_l,ij reaches the real rows only, weighted by P_l,ij. */
    for (int j = 0; j < T; j++) z->csum[j] = 0.0f;
    for (int i = 0; i < T; i++) {
        const float *g = z->G + (size_t)i * T;
        for (int j = 0; j < T; j++) z->csum[j] += g[j];
    }
    for (int i = 0; i < T; i++) {
        if (z->mask[i] == 0.0f) continue;
        float *g = z->G + (size_t)i * T;
        const float *p = z->W + (size_t)i * T;
        for (int j = 0; j < T; j++) g[j] -= p[j] * z->csum[j];
    }
}

static void sinkformer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const sinkformer_priv *opt = ctx->priv;
    const int T = ctx->shape.len;
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * sinkformer_cache_floats(T, opt->iters), /* C, potentials */
        .n_scratch = slices * sinkformer_scratch_floats(T),           /* 2 T×T + 2 T */
    };
}

static double sinkformer_flops(const lra_attn_ctx *ctx)
{
    const sinkformer_priv *opt = ctx->priv;
    const lra_attn_shape *sh = &ctx->shape;
    const double slices = (double)sh->batch * sh->heads, T = sh->len;
    /* Q Kᵀ and Ã V: 2·T²·Dh each. Each step: form the iterate (2), max, exp, sum (about 5 per
     * entry); the final exp and the output about 3 more per entry. */
    return slices * T * T * (4.0 * sh->dim + 5.0 * opt->iters + 3.0);
}

static int sinkformer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const sinkformer_priv *opt = ctx->priv;
    if (opt->iters < 1) {
        snprintf(err, errlen, "iters must be >= 1 (1 = softmax), got %d", opt->iters);
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

static void sinkformer_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                               float *out)
{
    const int BH = ctx->shape.batch * ctx->shape.heads, T = ctx->shape.len;
    const int D = ctx->shape.dim;
    const size_t TD = (size_t)T * D;
    const float s = 1.0f / sqrtf((float)D), p = sinkformer_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(sinkformer_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const sinkformer_slice z = sinkformer_slice_at(ctx, bh);
        /* C = s·Q Kᵀ (T, T), cached. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, s, q + bh * TD, D,
                    k + bh * TD, D, 0.0f, z.C, T);
        sinkformer_normalise(&z);
        if (p > 0.0f) sinkformer_dropout(z.W, z.W, T, sinkformer_drop_key(ctx, bh), p);
        /* O = Ã V (T, Dh). */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, z.W, T,
                    v + bh * TD, D, 0.0f, out + bh * TD, D);
    }
}

/* Backward of one slice; dQ, dK, dV (T, Dh) are added into. */
static void sinkformer_backward_slice(const sinkformer_slice *z, float s, float p, uint64_t key,
                                      const float *Q, const float *K, const float *V,
                                      const float *dO, float *dQ, float *dK, float *dV, int D)
{
    const int T = z->T;
    const size_t TT = (size_t)T * T;
    /* W = A = exp(L_n), then Ã. */
    sinkformer_iterate(z, sinkformer_u(z, z->n), sinkformer_v(z, z->n));
    sinkformer_exp(z);
    if (p > 0.0f) sinkformer_dropout(z->W, z->W, T, key, p);
    /* forward was O = Ã V, so dV += Ãᵀ dO and dÃ = dO Vᵀ. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, z->W, T, dO, D, 1.0f,
                dV, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, dO, D, V, D, 0.0f, z->G,
                T);
    /* forward was Ã = A ∘ Z/(1−p), so dA = dÃ ∘ Z/(1−p); W back to A. */
    if (p > 0.0f) {
        sinkformer_dropout(z->G, z->G, T, key, p);
        sinkformer_iterate(z, sinkformer_u(z, z->n), sinkformer_v(z, z->n));
        sinkformer_exp(z);
    }
    /* forward was A = exp(L_n), so dL_n = A ∘ dA. */
    for (size_t ij = 0; ij < TT; ij++) z->G[ij] *= z->W[ij];
    /* The steps in reverse (B5); step n's P_n is already in W. */
    for (int l = z->n; l >= 1; l--) {
        if (l < z->n) {
            sinkformer_iterate(z, sinkformer_u(z, l), sinkformer_v(z, l));
            sinkformer_exp(z);
        }
        sinkformer_step_backward(z, l);
    }
    /* forward was L_0 = C = s·Q Kᵀ, so dQ += s·dC K and dK += s·dCᵀ Q. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, s, z->G, T, K, D, 1.0f, dQ,
                D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, s, z->G, T, Q, D, 1.0f, dK,
                D);
}

static void sinkformer_backward(lra_attn_ctx *ctx, const float *q, const float *k,
                                const float *v, const float *out, const float *dout, float *dq,
                                float *dk, float *dv)
{
    (void)out; /* A is recomputed from the cached logits and potentials */
    const int BH = ctx->shape.batch * ctx->shape.heads, T = ctx->shape.len;
    const int D = ctx->shape.dim;
    const size_t TD = (size_t)T * D;
    const float s = 1.0f / sqrtf((float)D), p = sinkformer_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(sinkformer_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const sinkformer_slice z = sinkformer_slice_at(ctx, bh);
        sinkformer_backward_slice(&z, s, p, sinkformer_drop_key(ctx, bh), q + bh * TD,
                                  k + bh * TD, v + bh * TD, dout + bh * TD, dq + bh * TD,
                                  dk + bh * TD, dv + bh * TD, D);
    }
}

const lra_attention lra_attn_sinkformer = {
    .abi_version           = LRA_ATTN_ABI_VERSION,
    .name                  = "sinkformer",
    .help                  = "Sinkformer: doubly stochastic attention by log-domain Sinkhorn "
                             "steps (Sander et al. 2022, arXiv 2110.11773); O(T^2 (Dh + iters)) "
                             "time, O(T^2) memory",
    .flags                 = 0,
    .priv_size             = sizeof(sinkformer_priv),
    .options               = sinkformer_options,
    .softmax_limit_options = "iters=1",
    .sizes                 = sinkformer_sizes,
    .flops                 = sinkformer_flops,
    .init                  = sinkformer_init,
    .forward               = sinkformer_forward,
    .backward              = sinkformer_backward,
    .free                  = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_sinkformer)
