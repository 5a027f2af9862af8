/* linformer.c — Linformer: softmax attention over k learned projections of the keys and values.
 *
 * Wang, Li, Khabsa, Fang, Ma, "Linformer: Self-Attention with Linear Complexity", 2020,
 * arXiv 2006.04768 (attention-variants.md §5). For each (batch, head) slice, s = 1/sqrt(Dh):
 *     K̄ = E (m ∘ K),   V̄ = F (m ∘ V)                    (k, Dh) projected keys and values
 *     P = softmax(s·Q K̄ᵀ) by rows over the live projections,   O = P̃ V̄,
 * where E and F are the first T columns of learned k × max_len matrices (the parameters are sized
 * by max_len and sliced to the actual length, as in LRA), m is the key mask and P̃ is P after
 * attention dropout. A projection r is live when some real token contributes to it (E_rj ≠ 0 for
 * a real j). A learned or random E has no zero rows, so every projection is live, except in a
 * sequence without real tokens, whose output is then 0 (the §0.3 convention). The rule is what
 * makes the identity limit exact under padding: with k = max_len and E = F = I, projection r is
 * token r, the projections of padded tokens and of positions ≥ T are dead, and Linformer is
 * softmax attention (softmax_limit_options, checked by tests/test_attn.c). Liveness is a
 * discrete choice only where a row of E is exactly 0 on the real columns; backward treats it as
 * fixed, like the key mask.
 *
 * Options:
 *  - k: projections; default 16, LRA's released default (its Text config's 32 never reaches the
 *    model). The paper used 128 and 256 for n = 512; the PyTorch ports use 256 (Nyströmformer)
 *    and 128 (Skyformer).
 *  - share: layer = one E = F for all heads of the layer (LRA's choice, default); kv = E = F per
 *    head (the paper's key-value sharing); none = separate E and F per head.
 *  - mask_keys: true (default, paper and ports) zeroes padded keys and values before projecting.
 *    false is the LRA-compatibility switch (lra-tasks.md §10, pitfall 21): the released code
 *    projects padded tokens too, so padding changes the output. Every projection is then live.
 *  - init: lecun (default, LRA's LeCun normal, std 1/sqrt(max_len)) or identity (k = max_len).
 *
 * Parameters: the matrices, each (k, max_len) row-major: share=layer [E]; share=kv [E_0 .. E_H-1];
 *             share=none [E_0, F_0, E_1, F_1, ..]. k·max_len floats each.
 * Complexity: O(T·k·Dh) time forward and backward (about 8·T·k·Dh flops forward per slice),
 *             O(T·k) memory.
 * Cache:      K̄, V̄ (B, H, k, Dh) and P (B, H, T, k), the probabilities before dropout.
 * Scratch:    m ∘ K and m ∘ V stacked per head (H, T, B, Dh); dK̄ and dV̄ stacked the same way
 *             (H, k, B, Dh); one T×k work matrix and one T×Dh matrix per slice; the live flags
 *             (B, H, k). Stacking the batch along the columns makes each head's parameter
 *             gradient one product, Σ_b dK̄_b (m∘K_b)ᵀ = [dK̄_0 .. dK̄_B-1][m∘K_0 .. m∘K_B-1]ᵀ.
 * Threads:    one OpenMP loop over the B·H slices (BLAS inside runs single-threaded); then the
 *             parameter gradients head by head in a fixed order, each one BLAS call outside the
 *             parallel region. Every output element is summed in the same order whatever the
 *             thread count, so results are deterministic and the accumulation is race-free.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>

#include "lra_attention.h"
#include "lra_rng.h"
#include "lra_vmath.h"

enum { LINFORMER_SHARE_LAYER, LINFORMER_SHARE_KV, LINFORMER_SHARE_NONE };
enum { LINFORMER_INIT_LECUN, LINFORMER_INIT_IDENTITY };

typedef struct linformer_priv {
    int k;         /* projections */
    int share;     /* LINFORMER_SHARE_* */
    int mask_keys; /* 1: zero padded keys and values before projecting */
    int init;      /* LINFORMER_INIT_* */
} linformer_priv;

static const lra_attn_option linformer_options[] = {
    {.name = "k", .help = "projected length k (LRA 16; paper 128/256; ports 256)",
     .offset = offsetof(linformer_priv, k), .type = LRA_OPT_INT,
     .def = 16, .min = 1, .max = 65536},
    {.name = "share", .help = "layer: one E=F per layer (LRA); kv: E=F per head; none: E, F per "
     "head", .offset = offsetof(linformer_priv, share), .type = LRA_OPT_CHOICE,
     .def = LINFORMER_SHARE_LAYER, .min = 0, .max = 2, .choices = "layer|kv|none"},
    {.name = "mask_keys", .help = "zero padded keys before projecting (false = LRA's code)",
     .offset = offsetof(linformer_priv, mask_keys), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = "init", .help = "lecun: normal, std 1/sqrt(max_len); identity: E=F=I (k = max_len)",
     .offset = offsetof(linformer_priv, init), .type = LRA_OPT_CHOICE,
     .def = LINFORMER_INIT_LECUN, .min = 0, .max = 1, .choices = "lecun|identity"},
    {.name = NULL},
};

/* The sizes every function needs, read once from the context. */
typedef struct linformer_dims {
    int B, H, T, D, N, K; /* batch, heads, len, head dim, max_len, projections */
    size_t ld;            /* B·Dh: row stride of the per-head stacked matrices */
} linformer_dims;

static linformer_dims linformer_dims_of(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const linformer_priv *opt = ctx->priv;
    return (linformer_dims){.B = sh->batch, .H = sh->heads, .T = sh->len, .D = sh->dim,
                            .N = sh->max_len, .K = opt->k,
                            .ld = (size_t)sh->batch * sh->dim};
}

static int linformer_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

static float linformer_drop_rate(const lra_attn_ctx *ctx)
{
    return ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
}

/* The dropout stream of slice bh at this step (the same keys as softmax.c). */
static uint64_t linformer_drop_key(const lra_attn_ctx *ctx, int bh)
{
    return lra_attn_step_stream(ctx, bh);
}

/* Number of k × max_len matrices in the parameters. */
static int linformer_n_mats(const linformer_priv *opt, int heads)
{
    return opt->share == LINFORMER_SHARE_LAYER ? 1
         : opt->share == LINFORMER_SHARE_KV    ? heads
                                               : 2 * heads;
}

/* Index of head h's key projection E, and of its value projection F, among the matrices. */
static int linformer_e_index(const linformer_priv *opt, int h)
{
    return opt->share == LINFORMER_SHARE_LAYER ? 0 : opt->share == LINFORMER_SHARE_KV ? h : 2 * h;
}

static int linformer_f_index(const linformer_priv *opt, int h)
{
    return linformer_e_index(opt, h) + (opt->share == LINFORMER_SHARE_NONE);
}

/* Offset of slice (b, h) in a per-head stack (H, rows, B, Dh); its row stride is d->ld. */
static size_t linformer_stacked(const linformer_dims *d, int b, int h, int rows)
{
    return ((size_t)h * rows * d->B + b) * d->D;
}

/* dst (T, Dh; row stride ld) = m ∘ src (T, Dh), or a plain copy when padding is not masked. */
static void linformer_mask_rows(float *dst, size_t ld, const float *src, const float *mask,
                                int T, int D, int mask_keys)
{
    for (int t = 0; t < T; t++) {
        const int keep = !mask_keys || mask[t] != 0.0f;
        for (int e = 0; e < D; e++) dst[t * ld + e] = keep ? src[(size_t)t * D + e] : 0.0f;
    }
}

/* dst (T, Dh) += m ∘ src (T, Dh): the gradient reaches only the tokens forward projected. */
static void linformer_add_rows(float *dst, const float *src, const float *mask, int T, int D,
                               int mask_keys)
{
    for (int t = 0; t < T; t++)
        if (!mask_keys || mask[t] != 0.0f)
            for (int e = 0; e < D; e++) dst[(size_t)t * D + e] += src[(size_t)t * D + e];
}

/* live (k) = 1 where some real token contributes to the projection (E_rj ≠ 0, m_j = 1), else 0.
 * E is (k, max_len) with its first T columns used; ldE = max_len. */
static void linformer_live(float *live, const float *E, size_t ldE, const float *mask, int K,
                           int T, int mask_keys)
{
    for (int r = 0; r < K; r++) {
        int any = !mask_keys;
        for (int j = 0; j < T && !any; j++) any = mask[j] != 0.0f && E[r * ldE + j] != 0.0f;
        live[r] = (float)any;
    }
}

/* Row softmax of the T×k logits in place over the live projections; dead projections, and every
 * projection of a row without a live one, get probability exactly 0. */
static void linformer_softmax_rows(float *s, const float *live, int T, int K)
{
    for (int i = 0; i < T; i++) {
        float *row = s + (size_t)i * K; /* (k) */
        float mx = -INFINITY;
        for (int r = 0; r < K; r++)
            if (live[r] != 0.0f && row[r] > mx) mx = row[r];
        /* lra_expf: branch-free, so the masked select vectorises. */
        for (int r = 0; r < K; r++) row[r] = live[r] != 0.0f ? lra_expf(row[r] - mx) : 0.0f;
        const double sum = lra_sumf(row, K);
        const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
        for (int r = 0; r < K; r++) row[r] *= inv;
    }
}

/* Backward of linformer_softmax_rows (B1), in place: g holds dP (T, k), then dS. */
static void linformer_softmax_rows_backward(float *g, const float *P, int T, int K)
{
    for (int i = 0; i < T; i++) {
        float *dp = g + (size_t)i * K;      /* (k) */
        const float *p = P + (size_t)i * K; /* (k) */
        /* forward was p = exp(s − max) / Σ exp(s − max), so ds_r = p_r (dp_r − Σ_u p_u dp_u) */
        double d = 0.0;
        for (int r = 0; r < K; r++) d += (double)p[r] * dp[r];
        for (int r = 0; r < K; r++) dp[r] = p[r] * (dp[r] - (float)d);
    }
}

/* dst (T×k) = src ∘ Z/(1−p) for the keep mask Z of stream `key`; dst may equal src. */
static void linformer_dropout(float *dst, const float *src, size_t n, uint64_t key, float p)
{
    const float inv_keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) dst[i] = lra_uniform(key, i) >= p ? src[i] * inv_keep : 0.0f;
}

/* The buffers of one call, carved from cache and scratch (shapes in the header comment). */
typedef struct linformer_bufs {
    float *Kbar, *Vbar, *P;   /* cache */
    float *Kx, *Vx, *dKx, *dVx, *W, *G, *live; /* scratch */
} linformer_bufs;

static linformer_bufs linformer_bufs_of(const lra_attn_ctx *ctx, const linformer_dims *d)
{
    const size_t BH = (size_t)d->B * d->H, kD = (size_t)d->K * d->D, TD = (size_t)d->T * d->D;
    const size_t Tk = (size_t)d->T * d->K;
    linformer_bufs b;
    b.Kbar = ctx->cache;        /* (B, H, k, Dh) */
    b.Vbar = b.Kbar + BH * kD;  /* (B, H, k, Dh) */
    b.P = b.Vbar + BH * kD;     /* (B, H, T, k) */
    b.Kx = ctx->scratch;        /* (H, T, B, Dh) m ∘ K */
    b.Vx = b.Kx + BH * TD;      /* (H, T, B, Dh) m ∘ V */
    b.dKx = b.Vx + BH * TD;     /* (H, k, B, Dh) dK̄ */
    b.dVx = b.dKx + BH * kD;    /* (H, k, B, Dh) dV̄ */
    b.W = b.dVx + BH * kD;      /* (B, H, T, k) P̃; dP̃ → dS */
    b.G = b.W + BH * Tk;        /* (B, H, T, Dh) Eᵀ dK̄, then Fᵀ dV̄ */
    b.live = b.G + BH * TD;     /* (B, H, k) */
    return b;
}

static void linformer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const linformer_dims d = linformer_dims_of(ctx);
    const size_t BH = (size_t)d.B * d.H, kD = (size_t)d.K * d.D, TD = (size_t)d.T * d.D;
    const size_t Tk = (size_t)d.T * d.K;
    *out = (lra_attn_sizes){
        .n_params  = (size_t)linformer_n_mats(ctx->priv, d.H) * d.K * d.N,
        .n_state   = 0,
        .n_cache   = BH * (2 * kD + Tk),
        .n_scratch = BH * (2 * TD + 2 * kD + Tk + TD + d.K),
    };
}

static double linformer_flops(const lra_attn_ctx *ctx)
{
    const linformer_dims d = linformer_dims_of(ctx);
    const double slices = (double)d.B * d.H, T = d.T, K = d.K, D = d.D;
    /* E(m∘K), F(m∘V), Q K̄ᵀ and P V̄: 2·T·k·Dh each; the softmax about 5 per logit. */
    return slices * T * K * (8.0 * D + 5.0);
}

static int linformer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const linformer_priv *opt = ctx->priv;
    const linformer_dims d = linformer_dims_of(ctx);
    if (opt->k < 1 || opt->share < 0 || opt->share > 2 || opt->init < 0 || opt->init > 1) {
        snprintf(err, errlen, "k must be >= 1 and share, init valid choices (k=%d)", opt->k);
        return LRA_ATTN_EINVAL;
    }
    if (d.T > d.N) {
        snprintf(err, errlen, "len %d exceeds max_len %d, which sizes E and F", d.T, d.N);
        return LRA_ATTN_ESHAPE;
    }
    if (opt->init == LINFORMER_INIT_IDENTITY && opt->k != d.N) {
        snprintf(err, errlen, "init=identity needs k = max_len (k=%d, max_len=%d)", opt->k, d.N);
        return LRA_ATTN_ESHAPE;
    }
    const size_t mat = (size_t)d.K * d.N, n = (size_t)linformer_n_mats(opt, d.H) * mat;
    const uint64_t key = lra_key(ctx->seed, 0x11f0);
    const float std = 1.0f / sqrtf((float)d.N); /* LeCun normal: fan-in max_len, as LRA */
    for (size_t i = 0; i < n; i++) {
        const size_t r = i % mat / d.N, j = i % d.N;
        ctx->params[i] = opt->init == LINFORMER_INIT_IDENTITY ? (float)(r == j)
                                                              : std * lra_normal(key, i);
    }
    return LRA_ATTN_OK;
}

static void linformer_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              float *out)
{
    const linformer_priv *opt = ctx->priv;
    const linformer_dims d = linformer_dims_of(ctx);
    const linformer_bufs w = linformer_bufs_of(ctx, &d);
    const int T = d.T, D = d.D, K = d.K, BH = d.B * d.H;
    const size_t TD = (size_t)T * D, kD = (size_t)K * D, Tk = (size_t)T * K, mat = (size_t)K * d.N;
    const float s = 1.0f / sqrtf((float)D), p = linformer_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(linformer_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / d.H, h = bh % d.H;
        const float *Q = q + bh * TD, *Ks = k + bh * TD, *Vs = v + bh * TD; /* (T, Dh) */
        const float *mask = ctx->key_mask + (size_t)b * T;                   /* (T) */
        const float *E = ctx->params + linformer_e_index(opt, h) * mat;     /* (k, max_len) */
        const float *F = ctx->params + linformer_f_index(opt, h) * mat;     /* (k, max_len) */
        float *Km = w.Kx + linformer_stacked(&d, b, h, T);  /* (T, Dh), row stride ld */
        float *Vm = w.Vx + linformer_stacked(&d, b, h, T);  /* (T, Dh), row stride ld */
        float *Kb = w.Kbar + bh * kD, *Vb = w.Vbar + bh * kD; /* (k, Dh) */
        float *P = w.P + bh * Tk, *live = w.live + (size_t)bh * K; /* (T, k), (k) */

        /* K̄ = E[:, :T] (m∘K) and V̄ = F[:, :T] (m∘V): only the first T columns are used. */
        linformer_mask_rows(Km, d.ld, Ks, mask, T, D, opt->mask_keys);
        linformer_mask_rows(Vm, d.ld, Vs, mask, T, D, opt->mask_keys);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, D, T, 1.0f, E, d.N, Km,
                    (int)d.ld, 0.0f, Kb, D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, D, T, 1.0f, F, d.N, Vm,
                    (int)d.ld, 0.0f, Vb, D);

        /* P = softmax(s·Q K̄ᵀ) over the live projections, written straight into the cache. */
        linformer_live(live, E, (size_t)d.N, mask, K, T, opt->mask_keys);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, K, D, s, Q, D, Kb, D, 0.0f, P, K);
        linformer_softmax_rows(P, live, T, K);

        /* O = P̃ V̄. */
        const float *Pd = P; /* (T, k) */
        if (p > 0.0f) {
            linformer_dropout(w.W + bh * Tk, P, Tk, linformer_drop_key(ctx, bh), p);
            Pd = w.W + bh * Tk;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, K, 1.0f, Pd, K, Vb, D, 0.0f,
                    out + bh * TD, D);
    }
}

/* Backward through softmax(s·Q K̄ᵀ) V̄ for one slice: adds dQ, writes dK̄ and dV̄ (k, Dh; row
 * stride ld). W (T, k) is scratch. */
static void linformer_slice_attention_backward(const lra_attn_ctx *ctx, const linformer_dims *d,
                                               int bh, const float *Q, const float *dO,
                                               const float *Kb, const float *Vb, const float *P,
                                               float *W, float *dQ, float *dKb, float *dVb)
{
    const int T = d->T, D = d->D, K = d->K, ld = (int)d->ld;
    const size_t Tk = (size_t)T * K;
    const float s = 1.0f / sqrtf((float)D), p = linformer_drop_rate(ctx);
    const uint64_t key = linformer_drop_key(ctx, bh);

    /* forward was O = P̃ V̄, so dV̄ = P̃ᵀ dO and dP̃ = dO V̄ᵀ. */
    const float *Pd = P;
    if (p > 0.0f) {
        linformer_dropout(W, P, Tk, key, p);
        Pd = W;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, D, T, 1.0f, Pd, K, dO, D, 0.0f,
                dVb, ld);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, K, D, 1.0f, dO, D, Vb, D, 0.0f, W, K);

    /* forward was P̃ = P ∘ Z/(1−p), so dP = dP̃ ∘ Z/(1−p); forward was P = softmax(S), so B1.
     * Dead projections have P = 0 and therefore dS = 0. */
    if (p > 0.0f) linformer_dropout(W, W, Tk, key, p);
    linformer_softmax_rows_backward(W, P, T, K);

    /* forward was S = s·Q K̄ᵀ, so dQ += s·dS K̄ and dK̄ = s·dSᵀ Q. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, K, s, W, K, Kb, D, 1.0f, dQ, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, D, T, s, W, K, Q, D, 0.0f, dKb, ld);
}

/* Adds each head's dE = Σ_b dK̄_b (m∘K_b)ᵀ and dF = Σ_b dV̄_b (m∘V_b)ᵀ, one product per head with
 * the batch stacked along the contraction. Heads run in order, so shared matrices (share=layer,
 * and E = F under kv) sum their contributions in a fixed order. Columns ≥ T are not touched. */
static void linformer_param_backward(lra_attn_ctx *ctx, const linformer_dims *d,
                                     const linformer_bufs *w)
{
    const linformer_priv *opt = ctx->priv;
    const size_t mat = (size_t)d->K * d->N;
    const int BD = (int)d->ld;
    for (int h = 0; h < d->H; h++) {
        float *dE = ctx->dparams + linformer_e_index(opt, h) * mat; /* (k, max_len) */
        float *dF = ctx->dparams + linformer_f_index(opt, h) * mat; /* (k, max_len) */
        const float *dKb = w->dKx + linformer_stacked(d, 0, h, d->K); /* (k, B·Dh) */
        const float *dVb = w->dVx + linformer_stacked(d, 0, h, d->K); /* (k, B·Dh) */
        const float *Km = w->Kx + linformer_stacked(d, 0, h, d->T);   /* (T, B·Dh) */
        const float *Vm = w->Vx + linformer_stacked(d, 0, h, d->T);   /* (T, B·Dh) */
        /* forward was K̄_b = E[:, :T] (m∘K_b), so dE[:, :T] += Σ_b dK̄_b (m∘K_b)ᵀ; same for F. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d->K, d->T, BD, 1.0f, dKb, BD, Km,
                    BD, 1.0f, dE, d->N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d->K, d->T, BD, 1.0f, dVb, BD, Vm,
                    BD, 1.0f, dF, d->N);
    }
}

static void linformer_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                               const float *out, const float *dout, float *dq, float *dk,
                               float *dv)
{
    (void)out;
    const linformer_priv *opt = ctx->priv;
    const linformer_dims d = linformer_dims_of(ctx);
    const linformer_bufs w = linformer_bufs_of(ctx, &d);
    const int T = d.T, D = d.D, K = d.K, BH = d.B * d.H;
    const size_t TD = (size_t)T * D, kD = (size_t)K * D, Tk = (size_t)T * K, mat = (size_t)K * d.N;

#pragma omp parallel for schedule(static) num_threads(linformer_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / d.H, h = bh % d.H;
        const float *mask = ctx->key_mask + (size_t)b * T;               /* (T) */
        const float *E = ctx->params + linformer_e_index(opt, h) * mat; /* (k, max_len) */
        const float *F = ctx->params + linformer_f_index(opt, h) * mat; /* (k, max_len) */
        float *dKb = w.dKx + linformer_stacked(&d, b, h, K); /* (k, Dh), row stride ld */
        float *dVb = w.dVx + linformer_stacked(&d, b, h, K); /* (k, Dh), row stride ld */
        float *G = w.G + bh * TD;                            /* (T, Dh) */

        /* m∘K and m∘V again, for the parameter gradients after this loop. */
        linformer_mask_rows(w.Kx + linformer_stacked(&d, b, h, T), d.ld, k + bh * TD, mask, T, D,
                            opt->mask_keys);
        linformer_mask_rows(w.Vx + linformer_stacked(&d, b, h, T), d.ld, v + bh * TD, mask, T, D,
                            opt->mask_keys);
        linformer_slice_attention_backward(ctx, &d, bh, q + bh * TD, dout + bh * TD,
                                           w.Kbar + bh * kD, w.Vbar + bh * kD, w.P + bh * Tk,
                                           w.W + bh * Tk, dq + bh * TD, dKb, dVb);

        /* forward was K̄ = E[:, :T] (m∘K), so dK += m ∘ (E[:, :T]ᵀ dK̄); likewise V with F. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, K, 1.0f, E, d.N, dKb,
                    (int)d.ld, 0.0f, G, D);
        linformer_add_rows(dk + bh * TD, G, mask, T, D, opt->mask_keys);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, K, 1.0f, F, d.N, dVb,
                    (int)d.ld, 0.0f, G, D);
        linformer_add_rows(dv + bh * TD, G, mask, T, D, opt->mask_keys);
    }
    linformer_param_backward(ctx, &d, &w);
}

const lra_attention lra_attn_linformer = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "linformer",
    .help        = "Linformer, keys and values projected to k rows by learned E, F (Wang et al. "
                   "2020, arXiv 2006.04768); O(T k Dh) time, O(T k) memory",
    .flags       = 0,
    .priv_size   = sizeof(linformer_priv),
    .options     = linformer_options,
    .check_options = "k=4",
    .softmax_limit_options = "k=8,init=identity,share=layer",
    .sizes       = linformer_sizes,
    .flops       = linformer_flops,
    .init        = linformer_init,
    .forward     = linformer_forward,
    .backward    = linformer_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_linformer)
