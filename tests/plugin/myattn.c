/* myattn.c — softmax attention with a learnable temperature per head: the example out-of-tree
 * attention plugin (attention/README.md, "Out-of-tree plugins"; tests/test_plugin.sh builds it).
 *
 * For each (batch, head) slice h, with s = 1/sqrt(Dh) unless the `scale` option says otherwise
 * and a trainable log-temperature τ_h per head:
 *     c_h = s·exp(τ_h),   S = c_h·Q Kᵀ,   P = softmax(S) by rows over the real keys,   O = P̃ V,
 * where P̃ = P ∘ Z/(1−p) is P after attention dropout (keep mask Z, rate p; P̃ = P when not
 * training). Each head learns how sharp its attention is (the learned temperature of Henry et
 * al., "Query-Key Normalization for Transformers", Findings of EMNLP 2020, arXiv 2010.04245,
 * without their normalisation of q and k). τ_h starts at log(init_temp), so with init_temp = 1
 * the variant starts as exact softmax attention; with learn_temp = 0 it stays there (that is its
 * softmax limit). Padded keys get probability exactly 0; a query with no real key gets o = 0.
 *
 * Complexity: O(T²·Dh) time forward and backward (4·T²·Dh flops forward per slice), O(T²) memory.
 * Plain loops, no BLAS: the plugin needs only lra_attention.h, lra_rng.h and libm.
 *
 * Params:  τ (H) when learn_temp = 1, none otherwise.
 * Cache:   P (B, H, T, T), the probabilities BEFORE dropout; the dropout mask is regenerated.
 * Scratch: W (B, H, T, T): P̃ in forward; dP̃ → dS in backward.
 *          G (B, H, T, Dh): dS K, shared by dQ and dτ.
 *          part (B, H): each slice's share of dτ_h, summed over the batch after the parallel
 *          loop in a fixed order, so dτ does not depend on the thread count.
 *
 * Build, against an installed lra (pkg-config file lra-plugin):
 *     cc -O2 -std=c11 -fPIC -fvisibility=hidden -fopenmp -DLRA_PLUGIN_SHARED \
 *        $(pkg-config --cflags lra-plugin) -shared -o myattn.so myattn.c -lm
 *     lra list attention --plugin ./myattn.so
 * The same file also works in-tree: copy it to attention/myattn.c and rebuild.
 *
 * Threads: one OpenMP loop over the B·H slices with ctx->threads threads (ignored when built
 * without -fopenmp).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lra_attention.h"
#include "lra_rng.h"

/* Options, filled by the framework from the table below before init(). */
typedef struct myattn_priv {
    double scale;     /* base logit scale s; 0 selects 1/sqrt(Dh) */
    double init_temp; /* initial temperature exp(τ_h) */
    int learn_temp;   /* 1: τ is a trainable parameter per head; 0: fixed at log(init_temp) */
} myattn_priv;

static const lra_attn_option myattn_options[] = {
    {.name = "scale", .help = "base logit scale s; 0 = 1/sqrt(head dim)",
     .offset = offsetof(myattn_priv, scale), .type = LRA_OPT_FLOAT,
     .def = 0.0, .min = 0.0, .max = 1e3},
    {.name = "init_temp", .help = "initial temperature multiplying the logits",
     .offset = offsetof(myattn_priv, init_temp), .type = LRA_OPT_FLOAT,
     .def = 1.0, .min = 1e-3, .max = 1e3},
    {.name = "learn_temp", .help = "learn one temperature per head",
     .offset = offsetof(myattn_priv, learn_temp), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = NULL},
};

static int myattn_threads(const lra_attn_ctx *ctx)
{
#ifdef _OPENMP
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
#else
    (void)ctx;
    return 1;
#endif
}

/* c_h = s·exp(τ_h), the logit scale of head h. */
static float myattn_scale(const lra_attn_ctx *ctx, int h)
{
    const myattn_priv *opt = ctx->priv;
    const double s = opt->scale > 0.0 ? opt->scale : 1.0 / sqrt((double)ctx->shape.dim);
    const double tau = opt->learn_temp ? ctx->params[h] : log(opt->init_temp);
    return (float)(s * exp(tau));
}

static float myattn_drop_rate(const lra_attn_ctx *ctx)
{
    return ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
}

/* The dropout stream of slice bh at this step, the same as attention/softmax.c's. */
static uint64_t myattn_drop_key(const lra_attn_ctx *ctx, int bh)
{
    return lra_attn_step_stream(ctx, bh);
}

/* dst = src ∘ Z/(1−p) for the T×T keep mask of stream key. dst may equal src. */
static void myattn_dropout(float *dst, const float *src, int T, uint64_t key, float p)
{
    const float inv_keep = 1.0f / (1.0f - p);
    const size_t TT = (size_t)T * T;
    for (size_t ij = 0; ij < TT; ij++)
        dst[ij] = lra_uniform(key, ij) >= p ? src[ij] * inv_keep : 0.0f;
}

/* C (m, n) = alpha·A Bᵀ + beta·C for row-major A (m, kd), B (n, kd). */
static void myattn_abt(int m, int n, int kd, float alpha, const float *A, const float *B,
                       float beta, float *C)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int e = 0; e < kd; e++) acc += A[(size_t)i * kd + e] * B[(size_t)j * kd + e];
            C[(size_t)i * n + j] = alpha * acc + beta * C[(size_t)i * n + j];
        }
}

/* C (m, n) += alpha·A B for row-major A (m, kd), B (kd, n). */
static void myattn_ab_add(int m, int n, int kd, float alpha, const float *A, const float *B,
                          float *C)
{
    for (int i = 0; i < m; i++)
        for (int e = 0; e < kd; e++) {
            const float a = alpha * A[(size_t)i * kd + e];
            if (a == 0.0f) continue;
            for (int j = 0; j < n; j++) C[(size_t)i * n + j] += a * B[(size_t)e * n + j];
        }
}

/* C (m, n) += alpha·Aᵀ B for row-major A (kd, m), B (kd, n). */
static void myattn_atb_add(int m, int n, int kd, float alpha, const float *A, const float *B,
                           float *C)
{
    for (int e = 0; e < kd; e++)
        for (int i = 0; i < m; i++) {
            const float a = alpha * A[(size_t)e * m + i];
            if (a == 0.0f) continue;
            for (int j = 0; j < n; j++) C[(size_t)i * n + j] += a * B[(size_t)e * n + j];
        }
}

/* Row softmax of the T×T logits in place over the real keys; padded keys and rows without a
 * real key get exactly 0. */
static void myattn_softmax_rows(float *s, const float *mask, int T)
{
    for (int i = 0; i < T; i++) {
        float *row = s + (size_t)i * T;
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

/* B·H, the number of (batch, head) slices. */
static size_t myattn_slices(const lra_attn_ctx *ctx)
{
    return (size_t)ctx->shape.batch * ctx->shape.heads;
}

static void myattn_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const myattn_priv *opt = ctx->priv;
    const size_t slices = myattn_slices(ctx);
    const size_t T = (size_t)ctx->shape.len, D = (size_t)ctx->shape.dim;
    *out = (lra_attn_sizes){
        .n_params  = opt->learn_temp ? (size_t)ctx->shape.heads : 0, /* τ (H) */
        .n_state   = 0,
        .n_cache   = slices * T * T,                         /* P (B, H, T, T) */
        .n_scratch = slices * T * T + slices * T * D + slices, /* W, G, part */
    };
}

static double myattn_flops(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const double slices = (double)sh->batch * sh->heads, T = sh->len;
    return slices * T * T * (4.0 * sh->dim + 5.0);
}

static int myattn_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const myattn_priv *opt = ctx->priv;
    if (!(opt->scale >= 0.0 && isfinite(opt->scale))) {
        snprintf(err, errlen, "scale must be a finite number >= 0, got %g", opt->scale);
        return LRA_ATTN_EINVAL;
    }
    if (!(opt->init_temp > 0.0 && isfinite(opt->init_temp))) {
        snprintf(err, errlen, "init_temp must be a finite number > 0, got %g", opt->init_temp);
        return LRA_ATTN_EINVAL;
    }
    if (opt->learn_temp)
        for (int h = 0; h < ctx->shape.heads; h++) ctx->params[h] = (float)log(opt->init_temp);
    return LRA_ATTN_OK;
}

static void myattn_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                           float *out)
{
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * D, TT = (size_t)T * T;
    const float p = myattn_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(myattn_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *mask = ctx->key_mask + (size_t)(bh / H) * T;         /* (T) */
        float *P = ctx->cache + bh * TT;                                  /* (T, T) */
        float *O = out + bh * TD;                                         /* (T, Dh) */

        /* S = c_h·Q Kᵀ into the cache, normalised there into P. */
        myattn_abt(T, T, D, myattn_scale(ctx, bh % H), Q, K, 0.0f, P);
        myattn_softmax_rows(P, mask, T);

        /* O = P̃ V. */
        const float *Pd = P;
        if (p > 0.0f) {
            float *W = ctx->scratch + bh * TT; /* (T, T) P̃ */
            myattn_dropout(W, P, T, myattn_drop_key(ctx, bh), p);
            Pd = W;
        }
        memset(O, 0, TD * sizeof(float));
        myattn_ab_add(T, D, T, 1.0f, Pd, V, O);
    }
}

static void myattn_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                            const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    (void)out;
    const myattn_priv *opt = ctx->priv;
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const int BH = ctx->shape.batch * H;
    const size_t TD = (size_t)T * D, TT = (size_t)T * T;
    const float p = myattn_drop_rate(ctx);
    float *part = ctx->scratch + (size_t)BH * (TT + TD); /* (B, H) shares of dτ */

#pragma omp parallel for schedule(static) num_threads(myattn_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *dO = dout + bh * TD;                                 /* (T, Dh) */
        float *dQ = dq + bh * TD, *dK = dk + bh * TD, *dV = dv + bh * TD; /* (T, Dh) */
        const float *P = ctx->cache + bh * TT;                /* (T, T) from forward */
        float *W = ctx->scratch + bh * TT;                    /* (T, T) P̃, then dP̃ → dS */
        float *G = ctx->scratch + (size_t)BH * TT + bh * TD;  /* (T, Dh) dS K */
        const uint64_t key = myattn_drop_key(ctx, bh);
        const float c = myattn_scale(ctx, bh % H);

        /* forward was O = P̃ V, so dV += P̃ᵀ dO and dP̃ = dO Vᵀ. */
        const float *Pd = P;
        if (p > 0.0f) {
            myattn_dropout(W, P, T, key, p);
            Pd = W;
        }
        myattn_atb_add(T, D, T, 1.0f, Pd, dO, dV);
        myattn_abt(T, T, D, 1.0f, dO, V, 0.0f, W);
        if (p > 0.0f) myattn_dropout(W, W, T, key, p); /* dP = dP̃ ∘ Z/(1−p) */

        /* forward was P = softmax(S) by rows, so dS = P ∘ (dP − Σ_k P_ik dP_ik). */
        for (int i = 0; i < T; i++) {
            float *g = W + (size_t)i * T;
            const float *pr = P + (size_t)i * T;
            double d = 0.0;
            for (int j = 0; j < T; j++) d += (double)pr[j] * g[j];
            for (int j = 0; j < T; j++) g[j] = pr[j] * (g[j] - (float)d);
        }

        /* forward was S = c·Q Kᵀ with c = s·exp(τ): dQ += c·dS K, dK += c·dSᵀ Q, and
         * dτ = Σ_ij dS_ij S_ij = c·Σ_i q_i·(dS K)_i. */
        memset(G, 0, TD * sizeof(float));
        myattn_ab_add(T, D, T, 1.0f, W, K, G);
        double dtau = 0.0;
        for (size_t i = 0; i < TD; i++) {
            dQ[i] += c * G[i];
            dtau += (double)Q[i] * G[i];
        }
        part[bh] = (float)(c * dtau);
        myattn_atb_add(T, D, T, c, W, Q, dK);
    }

    /* Heads are shared by the batch: sum the slices' shares in a fixed order. */
    if (opt->learn_temp)
        for (int bh = 0; bh < BH; bh++) ctx->dparams[bh % H] += part[bh];
}

/* Not LRA_ATTN_EXACT: once τ moves, the logits are no longer scaled by 1/sqrt(Dh). The
 * softmax limit (a fixed temperature of 1) is checked against the reference by test_attn. */
const lra_attention lra_attn_myattn = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "myattn",
    .help        = "softmax attention with a learned temperature per head (example plugin); "
                   "O(T^2 Dh) time, O(T^2) memory",
    .flags       = 0,
    .priv_size   = sizeof(myattn_priv),
    .options     = myattn_options,
    .check_options = NULL,
    .softmax_limit_options = "learn_temp=0,init_temp=1",
    .sizes       = myattn_sizes,
    .flops       = myattn_flops,
    .init        = myattn_init,
    .forward     = myattn_forward,
    .backward    = myattn_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_myattn)
