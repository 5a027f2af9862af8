/* synthesizer.c — Synthesizer: attention logits synthesised from parameters, optionally added to
 * the dot product.
 *
 * Tay, Bahri, Metzler, Juan, Zhao, Zheng, "Synthesizer: Rethinking Self-Attention for Transformer
 * Models", ICML 2021, arXiv 2005.00743 (attention-variants.md §8). For each (batch, head) slice,
 * with s = 1/sqrt(Dh) and the synthetic logits B (T, T) of the head:
 *     S = s·Q Kᵀ + B  (dot=true, LRA's default)   or   S = B  (dot=false),
 *     P = softmax(S) by rows over the real keys,   O = P̃ V,
 * with P̃ = P after attention dropout. The modes (parameters sized by max_len, sliced to T):
 *  - random (LRA's default and its image configs): B = R[:T, :T], R (max_len, max_len) per head;
 *  - factorized: B = R1[:T] R2[:T]ᵀ with R1, R2 (max_len, k) per head, k default 32 (the Text
 *    config's value, which as released never reaches the model, lra-tasks.md §7.4);
 *  - dense: row i of B is W2[:T] relu(W1 q_i + b1) + b2[:T], W1 (Dh, Dh), b1 (Dh),
 *    W2 (max_len, Dh), b2 (max_len) per head. The paper and LRA feed the layer input x (LRA:
 *    Dense(d_model → H·Dh), ReLU, Dense(Dh → max_len) per head); a plugin sees only q = x W_q,
 *    so q is the input: a linear reparametrisation with the same function class (§0.1).
 * Deviation: the key mask is applied in every mode; LRA applies it only with the dot product, so
 * its pure synthetic modes let padded values into the output.
 *
 * Options: mode, k, dot (see above); init_zero makes B = 0 at initialisation (random: R = 0;
 * factorized: R2 = 0, R1 random, so R1 still gets a gradient; dense: W2 = b2 = 0). With dot=true
 * the variant is then exact softmax attention, which tests/test_attn.c verifies through
 * softmax_limit_options. Initialisation otherwise is LeCun normal as LRA (fan-in: max_len for R
 * and R1, k for R2, Dh for W1 and W2), biases 0; B then has entries of variance 1/max_len.
 *
 * Parameters: random [R (H, max_len, max_len)]; factorized [R1 (H, max_len, k), R2 (H, max_len,
 *             k)]; dense [W1 (H, Dh, Dh), b1 (H, Dh), W2 (H, max_len, Dh), b2 (H, max_len)].
 * Complexity: O(T²·Dh) time (plus 2·T²·k for factorized), O(T²) memory: no asymptotic saving;
 *             parameters H·max_len² (random), 2·H·max_len·k (factorized).
 * Cache:      P (B, H, T, T) before dropout; dense also the hidden layer A = relu(Z) and its gate
 *             1[Z > 0], each stacked per head (H, B, T, Dh).
 * Scratch:    one T×T matrix per slice, stacked per head (H, B, T, T): P̃ in forward, dP̃ → dS in
 *             backward; dense also Q and dZ (H, B, T, Dh) and a vector of B·T ones. The stacking
 *             makes each head's parameter gradient a sum over the batch in one product.
 * Non-smooth: dense mode's ReLU is a discrete choice. The gate is cached, and a forward with
 *             ctx->freeze_choices reuses the gate of the last free forward, so the gradient checks
 *             see one smooth branch (LRA_ATTN_NONSMOOTH; the other modes make no choice).
 * Threads:    one OpenMP loop over the B·H slices (BLAS inside runs single-threaded), then the
 *             parameter gradients head by head, each summing the batch in a fixed order:
 *             deterministic, and no two threads write the same gradient.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lra_attention.h"
#include "lra_rng.h"

enum { SYNTHESIZER_RANDOM, SYNTHESIZER_FACTORIZED, SYNTHESIZER_DENSE };

typedef struct synthesizer_priv {
    int mode;      /* SYNTHESIZER_* */
    int k;         /* factorized rank */
    int dot;       /* 1: add the dot-product logits s·Q Kᵀ */
    int init_zero; /* 1: synthetic logits start at 0 */
} synthesizer_priv;

static const lra_attn_option synthesizer_options[] = {
    {.name = "mode", .help = "synthetic logits: random R, factorized R1 R2^T, or dense MLP of q",
     .offset = offsetof(synthesizer_priv, mode), .type = LRA_OPT_CHOICE,
     .def = SYNTHESIZER_RANDOM, .min = 0, .max = 2, .choices = "random|factorized|dense"},
    {.name = "k", .help = "rank of the factorized logits R1 R2^T",
     .offset = offsetof(synthesizer_priv, k), .type = LRA_OPT_INT,
     .def = 32, .min = 1, .max = 65536},
    {.name = "dot", .help = "add the dot-product logits s*Q*K^T (LRA default true)",
     .offset = offsetof(synthesizer_priv, dot), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = "init_zero", .help = "synthetic logits start at 0 (with dot: exact softmax)",
     .offset = offsetof(synthesizer_priv, init_zero), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = NULL},
};

/* The sizes every function needs, read once from the context. */
typedef struct synthesizer_dims {
    int B, H, T, D, N, K; /* batch, heads, len, head dim, max_len, factorized rank */
    int mode, dot;
} synthesizer_dims;

static synthesizer_dims synthesizer_dims_of(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const synthesizer_priv *opt = ctx->priv;
    return (synthesizer_dims){.B = sh->batch, .H = sh->heads, .T = sh->len, .D = sh->dim,
                        .N = sh->max_len, .K = opt->k, .mode = opt->mode, .dot = opt->dot};
}

static int synthesizer_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

static float synthesizer_drop_rate(const lra_attn_ctx *ctx)
{
    return ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
}

/* The dropout stream of slice bh = b·H + h at this step (the same keys as softmax.c). */
static uint64_t synthesizer_drop_key(const lra_attn_ctx *ctx, int bh)
{
    return lra_attn_step_stream(ctx, bh);
}

/* The parameter tensors of one mode; pointers into params or dparams. */
typedef struct synthesizer_params {
    float *R;        /* random: (H, max_len, max_len) */
    float *R1, *R2;  /* factorized: (H, max_len, k) each */
    float *W1, *b1;  /* dense: (H, Dh, Dh), (H, Dh) */
    float *W2, *b2;  /* dense: (H, max_len, Dh), (H, max_len) */
    size_t n;        /* floats in all */
} synthesizer_params;

static synthesizer_params synthesizer_params_of(float *base, const synthesizer_dims *d)
{
    const size_t H = (size_t)d->H, N = (size_t)d->N, D = (size_t)d->D;
    synthesizer_params p = {0};
    if (d->mode == SYNTHESIZER_RANDOM) {
        p.R = base;
        p.n = H * N * N;
    } else if (d->mode == SYNTHESIZER_FACTORIZED) {
        p.R1 = base;
        p.R2 = base ? p.R1 + H * N * d->K : NULL;
        p.n = 2 * H * N * d->K;
    } else {
        p.W1 = base;
        p.b1 = base ? p.W1 + H * D * D : NULL;
        p.W2 = base ? p.b1 + H * D : NULL;
        p.b2 = base ? p.W2 + H * N * D : NULL;
        p.n = H * (D * D + D + N * D + N);
    }
    return p;
}

/* The buffers of one call, carved from cache and scratch (shapes in the header comment). */
typedef struct synthesizer_bufs {
    float *P, *A, *gate;     /* cache */
    float *W, *Qx, *dZ, *ones; /* scratch */
} synthesizer_bufs;

static synthesizer_bufs synthesizer_bufs_of(const lra_attn_ctx *ctx, const synthesizer_dims *d)
{
    const size_t BH = (size_t)d->B * d->H, TT = (size_t)d->T * d->T, TD = (size_t)d->T * d->D;
    const int dense = d->mode == SYNTHESIZER_DENSE;
    synthesizer_bufs b = {0};
    b.P = ctx->cache;                         /* (B, H, T, T) */
    b.A = dense ? b.P + BH * TT : NULL;       /* (H, B, T, Dh) */
    b.gate = dense ? b.A + BH * TD : NULL;    /* (H, B, T, Dh) */
    b.W = ctx->scratch;                       /* (H, B, T, T) */
    b.Qx = dense ? b.W + BH * TT : NULL;      /* (H, B, T, Dh) */
    b.dZ = dense ? b.Qx + BH * TD : NULL;     /* (H, B, T, Dh) */
    b.ones = dense ? b.dZ + BH * TD : NULL;   /* (B·T) */
    return b;
}

/* Index of slice (b, h) in the per-head stacks (H, B, ...). */
static size_t synthesizer_hb(const synthesizer_dims *d, int b, int h)
{
    return (size_t)h * d->B + b;
}

static void synthesizer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const synthesizer_dims d = synthesizer_dims_of(ctx);
    const size_t BH = (size_t)d.B * d.H, TT = (size_t)d.T * d.T, TD = (size_t)d.T * d.D;
    const int dense = d.mode == SYNTHESIZER_DENSE;
    *out = (lra_attn_sizes){
        .n_params  = synthesizer_params_of(NULL, &d).n,
        .n_state   = 0,
        .n_cache   = BH * TT + (dense ? 2 * BH * TD : 0),
        .n_scratch = BH * TT + (dense ? 2 * BH * TD + (size_t)d.B * d.T : 0),
    };
}

static double synthesizer_flops(const lra_attn_ctx *ctx)
{
    const synthesizer_dims d = synthesizer_dims_of(ctx);
    const double slices = (double)d.B * d.H, T = d.T, D = d.D, K = d.K;
    /* P V: 2·T²·Dh; the softmax about 5 per logit; adding the synthetic logits 1 per logit. */
    double per = T * T * (2.0 * D + 6.0);
    if (d.dot) per += 2.0 * T * T * D;
    if (d.mode == SYNTHESIZER_FACTORIZED) per += 2.0 * T * T * K;
    if (d.mode == SYNTHESIZER_DENSE) per += 2.0 * T * D * D + 2.0 * T * T * D + 2.0 * T * D;
    return slices * per;
}

/* x (n) = std · N(0, 1) draws of stream `key` (exactly 0 when std is 0). */
static void synthesizer_fill_normal(float *x, size_t n, uint64_t key, float std)
{
    for (size_t i = 0; i < n; i++) x[i] = std != 0.0f ? std * lra_normal(key, i) : 0.0f;
}

static int synthesizer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const synthesizer_priv *opt = ctx->priv;
    const synthesizer_dims d = synthesizer_dims_of(ctx);
    if (opt->mode < 0 || opt->mode > 2 || opt->k < 1) {
        snprintf(err, errlen, "mode must be random|factorized|dense and k >= 1 (k=%d)", opt->k);
        return LRA_ATTN_EINVAL;
    }
    if (d.T > d.N) {
        snprintf(err, errlen, "len %d exceeds max_len %d, which sizes the synthetic logits", d.T,
                 d.N);
        return LRA_ATTN_ESHAPE;
    }
    const synthesizer_params p = synthesizer_params_of(ctx->params, &d);
    const size_t H = (size_t)d.H, N = (size_t)d.N, D = (size_t)d.D;
    const uint64_t key = lra_key(ctx->seed, 0x5e7);
    const float zero = opt->init_zero ? 0.0f : 1.0f; /* scales the tensors init_zero clears */
    if (d.mode == SYNTHESIZER_RANDOM) {
        synthesizer_fill_normal(p.R, H * N * N, lra_key(key, 1), zero / sqrtf((float)N));
    } else if (d.mode == SYNTHESIZER_FACTORIZED) {
        synthesizer_fill_normal(p.R1, H * N * d.K, lra_key(key, 2), 1.0f / sqrtf((float)N));
        synthesizer_fill_normal(p.R2, H * N * d.K, lra_key(key, 3), zero / sqrtf((float)d.K));
    } else {
        synthesizer_fill_normal(p.W1, H * D * D, lra_key(key, 4), 1.0f / sqrtf((float)D));
        memset(p.b1, 0, H * D * sizeof *p.b1);
        synthesizer_fill_normal(p.W2, H * N * D, lra_key(key, 5), zero / sqrtf((float)D));
        memset(p.b2, 0, H * N * sizeof *p.b2);
    }
    return LRA_ATTN_OK;
}

/* Dense mode, one slice: Z = Q W1ᵀ + b1 (T, Dh), the gate 1[Z > 0] (kept when frozen), A = Z∘gate,
 * then S += A W2[:T]ᵀ + b2[:T] (T, T). */
static void synthesizer_dense_logits(const synthesizer_dims *d, const synthesizer_params *p,
                                     int h, int frozen, const float *Q, float *A, float *gate,
                                     float *S)
{
    const int T = d->T, D = d->D;
    const float *W1 = p->W1 + (size_t)h * D * D, *b1 = p->b1 + (size_t)h * D; /* (Dh,Dh), (Dh) */
    const float *W2 = p->W2 + (size_t)h * d->N * D, *b2 = p->b2 + (size_t)h * d->N;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, D, D, 1.0f, Q, D, W1, D, 0.0f, A, D);
    for (int t = 0; t < T; t++)
        for (int e = 0; e < D; e++) {
            float *z = A + (size_t)t * D + e, *g = gate + (size_t)t * D + e;
            *z += b1[e];
            if (!frozen) *g = *z > 0.0f ? 1.0f : 0.0f;
            *z *= *g;
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, A, D, W2, D, 1.0f, S, T);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) S[(size_t)i * T + j] += b2[j];
}

/* The logits of one slice into S (T, T): s·Q Kᵀ when dot, plus this head's synthetic logits. */
static void synthesizer_logits(const lra_attn_ctx *ctx, const synthesizer_dims *d,
                               const synthesizer_bufs *w, int b, int h, const float *Q,
                               const float *K, float *S)
{
    const int T = d->T, N = d->N;
    const synthesizer_params p = synthesizer_params_of(ctx->params, d);
    const float s = 1.0f / sqrtf((float)d->D);
    if (d->dot)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d->D, s, Q, d->D, K, d->D,
                    0.0f, S, T);
    else
        memset(S, 0, (size_t)T * T * sizeof *S);

    if (d->mode == SYNTHESIZER_RANDOM) {
        const float *R = p.R + (size_t)h * N * N; /* (max_len, max_len) */
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) S[(size_t)i * T + j] += R[(size_t)i * N + j];
    } else if (d->mode == SYNTHESIZER_FACTORIZED) {
        const float *R1 = p.R1 + (size_t)h * N * d->K, *R2 = p.R2 + (size_t)h * N * d->K;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d->K, 1.0f, R1, d->K, R2,
                    d->K, 1.0f, S, T);
    } else {
        const size_t off = synthesizer_hb(d, b, h) * T * d->D; /* (T, Dh) in the stacks */
        synthesizer_dense_logits(d, &p, h, ctx->freeze_choices, Q, w->A + off, w->gate + off, S);
    }
}

/* Row softmax of the T×T logits in place over the real keys; padded keys, and every key of a row
 * without a real key, get probability exactly 0. */
static void synthesizer_softmax_rows(float *s, const float *mask, int T)
{
    for (int i = 0; i < T; i++) {
        float *row = s + (size_t)i * T; /* (T) */
        float mx = -INFINITY;
        for (int j = 0; j < T; j++)
            if (mask[j] != 0.0f && row[j] > mx) mx = row[j];
        double sum = 0.0;
        for (int j = 0; j < T; j++) {
            row[j] = mask[j] != 0.0f ? expf(row[j] - mx) : 0.0f;
            sum += row[j];
        }
        const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
        for (int j = 0; j < T; j++) row[j] *= inv;
    }
}

/* Backward of synthesizer_softmax_rows (B1), in place: g holds dP (T, T), then dS. */
static void synthesizer_softmax_rows_backward(float *g, const float *P, int T)
{
    for (int i = 0; i < T; i++) {
        float *dp = g + (size_t)i * T;      /* (T) */
        const float *p = P + (size_t)i * T; /* (T) */
        /* forward was p = exp(s − max) / Σ exp(s − max), so ds_j = p_j (dp_j − Σ_u p_u dp_u) */
        double dd = 0.0;
        for (int j = 0; j < T; j++) dd += (double)p[j] * dp[j];
        for (int j = 0; j < T; j++) dp[j] = p[j] * (dp[j] - (float)dd);
    }
}

/* dst (n) = src ∘ Z/(1−p) for the keep mask Z of stream `key`; dst may equal src. */
static void synthesizer_dropout(float *dst, const float *src, size_t n, uint64_t key, float p)
{
    const float inv_keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) dst[i] = lra_uniform(key, i) >= p ? src[i] * inv_keep : 0.0f;
}

static void synthesizer_forward(lra_attn_ctx *ctx, const float *q, const float *k,
                                const float *v, float *out)
{
    const synthesizer_dims d = synthesizer_dims_of(ctx);
    const synthesizer_bufs w = synthesizer_bufs_of(ctx, &d);
    const int T = d.T, D = d.D, BH = d.B * d.H;
    const size_t TD = (size_t)T * D, TT = (size_t)T * T;
    const float p = synthesizer_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(synthesizer_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / d.H, h = bh % d.H;
        const float *mask = ctx->key_mask + (size_t)b * T; /* (T) */
        float *P = w.P + bh * TT;                          /* (T, T) */

        /* P = softmax(S) over the real keys, the logits written straight into the cache. */
        synthesizer_logits(ctx, &d, &w, b, h, q + bh * TD, k + bh * TD, P);
        synthesizer_softmax_rows(P, mask, T);

        /* O = P̃ V. */
        const float *Pd = P; /* (T, T) */
        if (p > 0.0f) {
            float *Wd = w.W + synthesizer_hb(&d, b, h) * TT; /* (T, T) P̃ */
            synthesizer_dropout(Wd, P, TT, synthesizer_drop_key(ctx, bh), p);
            Pd = Wd;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, Pd, T,
                    v + bh * TD, D, 0.0f, out + bh * TD, D);
    }
}

/* Dense mode, one slice, given dS (T, T): dZ = (dS W2[:T]) ∘ gate and dQ += dZ W1; keeps Q and dZ
 * in the stacks for the parameter gradients. */
static void synthesizer_dense_backward(const lra_attn_ctx *ctx, const synthesizer_dims *d,
                                       const synthesizer_bufs *w, int b, int h, const float *Q,
                                       const float *dS, float *dQ)
{
    const int T = d->T, D = d->D;
    const synthesizer_params p = synthesizer_params_of(ctx->params, d);
    const float *W1 = p.W1 + (size_t)h * D * D, *W2 = p.W2 + (size_t)h * d->N * D;
    const size_t off = synthesizer_hb(d, b, h) * T * D;
    const float *gate = w->gate + off; /* (T, Dh) */
    float *dZ = w->dZ + off;           /* (T, Dh) */
    /* forward was S += A W2[:T]ᵀ, so dA = dS W2[:T]; forward was A = Z ∘ gate, so dZ = dA ∘ gate */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, dS, T, W2, D, 0.0f,
                dZ, D);
    for (size_t i = 0; i < (size_t)T * D; i++) dZ[i] *= gate[i];
    /* forward was Z = Q W1ᵀ + b1, so dQ += dZ W1 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, D, 1.0f, dZ, D, W1, D, 1.0f,
                dQ, D);
    memcpy(w->Qx + off, Q, (size_t)T * D * sizeof *Q);
}

/* dR (T, T; row stride ldR) += Σ_b dS_b, the batch summed in order; dS_h is (B, T, T). Rows are
 * split across threads, so each thread writes its own rows. */
static void synthesizer_sum_batch(float *dR, size_t ldR, const float *dS, int B, int T, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int i = 0; i < T; i++)
        for (int b = 0; b < B; b++) {
            const float *row = dS + ((size_t)b * T + i) * T; /* (T) */
            for (int j = 0; j < T; j++) dR[(size_t)i * ldR + j] += row[j];
        }
}

/* Head h's parameter gradients from the stacked dS_h (B·T, T) and, in dense mode, A, Q, dZ. */
static void synthesizer_param_backward(lra_attn_ctx *ctx, const synthesizer_dims *d,
                                       const synthesizer_bufs *w, int h)
{
    const int T = d->T, D = d->D, N = d->N, K = d->K, BT = d->B * d->T;
    const synthesizer_params p = synthesizer_params_of(ctx->params, d);
    const synthesizer_params g = synthesizer_params_of(ctx->dparams, d);
    const size_t TT = (size_t)T * T, hs = synthesizer_hb(d, 0, h);
    float *dS = w->W + hs * TT; /* (B·T, T) */
    if (d->mode == SYNTHESIZER_RANDOM) {
        /* forward was S_b += R[:T, :T] for every b, so dR[:T, :T] += Σ_b dS_b. */
        synthesizer_sum_batch(g.R + (size_t)h * N * N, (size_t)N, dS, d->B, T,
                              synthesizer_threads(ctx));
    } else if (d->mode == SYNTHESIZER_FACTORIZED) {
        /* forward was S_b += R1 R2ᵀ, so with dR = Σ_b dS_b (summed into dS_0, which is scratch):
         * dR1 += dR R2 and dR2 += dRᵀ R1. */
        synthesizer_sum_batch(dS, (size_t)T, dS + TT, d->B - 1, T, synthesizer_threads(ctx));
        const size_t off = (size_t)h * N * K;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, K, T, 1.0f, dS, T, p.R2 + off,
                    K, 1.0f, g.R1 + off, K);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, K, T, 1.0f, dS, T, p.R1 + off,
                    K, 1.0f, g.R2 + off, K);
    } else {
        const size_t off = hs * T * D; /* (B·T, Dh) stacks of A, Q, dZ */
        /* forward was S_b += A_b W2[:T]ᵀ + 1 b2[:T]ᵀ, so dW2[:T] += Σ_b dS_bᵀ A_b and
         * db2[:T] += Σ_b dS_bᵀ 1. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, BT, 1.0f, dS, T, w->A + off,
                    D, 1.0f, g.W2 + (size_t)h * N * D, D);
        cblas_sgemv(CblasRowMajor, CblasTrans, BT, T, 1.0f, dS, T, w->ones, 1, 1.0f,
                    g.b2 + (size_t)h * N, 1);
        /* forward was Z_b = Q_b W1ᵀ + 1 b1ᵀ, so dW1 += Σ_b dZ_bᵀ Q_b and db1 += Σ_b dZ_bᵀ 1. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, BT, 1.0f, w->dZ + off, D,
                    w->Qx + off, D, 1.0f, g.W1 + (size_t)h * D * D, D);
        cblas_sgemv(CblasRowMajor, CblasTrans, BT, D, 1.0f, w->dZ + off, D, w->ones, 1, 1.0f,
                    g.b1 + (size_t)h * D, 1);
    }
}

static void synthesizer_backward(lra_attn_ctx *ctx, const float *q, const float *k,
                                 const float *v, const float *out, const float *dout, float *dq,
                                 float *dk, float *dv)
{
    (void)out; /* D_i is summed over the cached P instead */
    const synthesizer_dims d = synthesizer_dims_of(ctx);
    const synthesizer_bufs w = synthesizer_bufs_of(ctx, &d);
    const int T = d.T, D = d.D, BH = d.B * d.H;
    const size_t TD = (size_t)T * D, TT = (size_t)T * T;
    const float s = 1.0f / sqrtf((float)D), p = synthesizer_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(synthesizer_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / d.H, h = bh % d.H;
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *dO = dout + bh * TD;                                 /* (T, Dh) */
        const float *P = w.P + bh * TT;                 /* (T, T) from forward */
        float *W = w.W + synthesizer_hb(&d, b, h) * TT;       /* (T, T) P̃, then dP̃ → dS */
        const uint64_t key = synthesizer_drop_key(ctx, bh);

        /* forward was O = P̃ V, so dV += P̃ᵀ dO and dP̃ = dO Vᵀ. */
        const float *Pd = P;
        if (p > 0.0f) {
            synthesizer_dropout(W, P, TT, key, p);
            Pd = W;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, Pd, T, dO, D, 1.0f,
                    dv + bh * TD, D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, dO, D, V, D, 0.0f,
                    W, T);

        /* forward was P̃ = P ∘ Z/(1−p), so dP = dP̃ ∘ Z/(1−p); forward was P = softmax(S), so
         * B1 gives dS, which is 0 on padded keys. */
        if (p > 0.0f) synthesizer_dropout(W, W, TT, key, p);
        synthesizer_softmax_rows_backward(W, P, T);

        /* forward was S = s·Q Kᵀ + B, so dQ += s·dS K and dK += s·dSᵀ Q, and dB = dS. */
        if (d.dot) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, s, W, T, K, D, 1.0f,
                        dq + bh * TD, D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, s, W, T, Q, D, 1.0f,
                        dk + bh * TD, D);
        }
        if (d.mode == SYNTHESIZER_DENSE)
            synthesizer_dense_backward(ctx, &d, &w, b, h, Q, W, dq + bh * TD);
    }

    if (d.mode == SYNTHESIZER_DENSE)
        for (int i = 0; i < d.B * T; i++) w.ones[i] = 1.0f;
    for (int h = 0; h < d.H; h++) synthesizer_param_backward(ctx, &d, &w, h);
}

/* NONSMOOTH for dense mode's ReLU gate, which forward caches and freezes on request. */
const lra_attention lra_attn_synthesizer = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "synthesizer",
    .help        = "Synthesizer, random / factorized / dense synthetic logits, optionally plus "
                   "dot product (Tay et al. 2021, arXiv 2005.00743); O(T^2 Dh) time, O(T^2) memory",
    .flags       = LRA_ATTN_NONSMOOTH,
    .priv_size   = sizeof(synthesizer_priv),
    .options     = synthesizer_options,
    .check_options = "k=4",
    .softmax_limit_options = "mode=random,init_zero=true",
    .sizes       = synthesizer_sizes,
    .flops       = synthesizer_flops,
    .init        = synthesizer_init,
    .forward     = synthesizer_forward,
    .backward    = synthesizer_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_synthesizer)
