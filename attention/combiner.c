/* combiner.c — Combiner-Fixed (bidirectional): direct attention within a span plus one max-pooled
 * summary per other span, in one joint softmax.
 *
 * Ren, Dai, Dai, Yang, Leskovec, Schuurmans, Dai, "Combiner: Full Attention Transformer with
 * Sparse Computation Cost", NeurIPS 2021, arXiv 2107.05768 (eq. 10, masked-LM form).
 * attention-variants.md §19. Per (batch, head) slice, spans r = 0 … R − 1 of `span` tokens
 * (R = ⌈T/s⌉, the last one shorter), s = 1/sqrt(Dh) the logit scale:
 *  1. Region keys and queries by element-wise max pooling over the REAL tokens of span r:
 *     k_Ω^r = max_j k_j, q_Ω^r = max_j q_j (per coordinate; ties: first index). A span without
 *     real tokens has no region: it is left out of every softmax below.
 *  2. Local expectations e_r = Σ_{j∈r, real} softmax_j(s·q_Ω^r·k_j) v_j (shared by all queries).
 *  3. Query i of span r_i: one softmax over the real keys of its own span (logits s·q_i·k_j,
 *     values v_j) and the other regions r ≠ r_i (logits s·q_i·k_Ω^r, values e_r).
 * Every query thus reaches every real key, directly or through a region. Both softmaxes are the
 * B2 engine (suite/attn_blocks.h) over augmented rows: Q' = [Q; q_Ω], K' = [K; k_Ω],
 * V' = [V; e], T' = T + R, with pass 1 = the R region queries against their span (writes e) and
 * pass 2 = the T queries against their span plus region rows T … T' − 1 (excluding their own).
 * Padding: padded keys are outside every softmax and every pooling; padded queries are outside
 * the pooling, so nothing a padded token holds reaches a real output. span >= T (R = 1) is exact
 * softmax attention. Attention dropout (rate p) applies to the joint softmax of step 3 (stream
 * of suite/attn_blocks.h with row length T', so not softmax.c's mask), not to step 2.
 * Non-smooth: the pooling arg-max indices are the discrete choices; they are cached, and with
 * ctx->freeze_choices forward pools with the cached indices instead of recomputing them.
 *
 * Complexity: per slice 2·T·(s + R)·(2·Dh) + R·s·(2·Dh) multiply-adds, plus the softmaxes:
 *          O(T·(s + T/s)·Dh), O(T^1.5·Dh) at the default s = ⌈√T⌉ (option span = 0).
 * Cache:   per slice, lse of the T' rows of both passes (T + R), the local expectations e
 *          (R·Dh) and the arg-max indices of q_Ω and k_Ω (2·R·Dh, stored as floats: exact below
 *          2^24). Probabilities are recomputed in backward (B2).
 * Backward: pass 2 (B2) gives dq, dk, dv of the direct part, dk_Ω and de; pass 1 (B2) with
 *          dout = de gives dq_Ω and more dk, dv; max pooling sends dq_Ω, dk_Ω to the arg-max
 *          rows. Scratch per slice: Q', K', V', one T'×Dh temporary, dQ', dK', dV' (7·T'·Dh),
 *          the region mask (T') and the engine's scratch for the larger pass.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "attn_blocks.h"
#include "lra_attention.h"

typedef struct combiner_priv {
    int span; /* s tokens per span; 0 = ⌈√T⌉ */
} combiner_priv;

static const lra_attn_option combiner_options[] = {
    {.name = "span", .help = "tokens per span (direct attention); 0 = ceil(sqrt(T)) "
                             "(O(T^1.5) cost); span >= T is softmax",
     .offset = offsetof(combiner_priv, span), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 1 << 20},
    {.name = NULL},
};

/* The geometry at one length; the argument of both patterns. */
typedef struct combiner_geom {
    int T, span, R; /* tokens, span length, spans */
} combiner_geom;

/* Both passes, measured at T' = T + R, and the joint size that bounds them. */
typedef struct combiner_plan {
    combiner_geom geo;
    lra_blocks_pattern local, joint; /* pass 1 (region queries), pass 2 (token queries) */
    lra_blocks_size z_local, z_joint, z;
} combiner_plan;

/* One slice's arrays. */
typedef struct combiner_slice {
    float *lse, *e, *arg_q, *arg_k; /* cache: (T'), (R, Dh), (R, Dh), (R, Dh) */
    float *Q, *K, *V, *tmp;         /* scratch: (T', Dh) each */
    float *dQ, *dK, *dV;            /* scratch: (T', Dh) each */
    float *mask;                    /* scratch: (T') real keys and real regions */
    float *engine;                  /* scratch: the engine's */
} combiner_slice;

static int combiner_span(const lra_attn_ctx *ctx)
{
    const combiner_priv *opt = ctx->priv;
    const int T = ctx->shape.len;
    if (opt->span > 0) return opt->span < T ? opt->span : T;
    int s = (int)ceil(sqrt((double)T));
    return s > 0 ? s : 1;
}

/* Tokens in span r: the last span is shorter. The engine clips spans to T' = T + R, not T, so
 * the patterns clip to T themselves. */
static int combiner_span_len(const combiner_geom *g, int r)
{
    const int left = g->T - r * g->span;
    return left < g->span ? left : g->span;
}

/* Pass 1, group r: the region query T + r against the keys of span r. */
static void combiner_group_local(const void *arg, int h, int r, lra_blocks_sink *sink)
{
    (void)h;
    const combiner_geom *g = arg;
    lra_blocks_queries(sink, g->T + r, 1);
    lra_blocks_keys(sink, r * g->span, combiner_span_len(g, r), 0);
}

/* Pass 2, group r: the queries of span r against span r and every other region row. */
static void combiner_group_joint(const void *arg, int h, int r, lra_blocks_sink *sink)
{
    (void)h;
    const combiner_geom *g = arg;
    lra_blocks_queries(sink, r * g->span, combiner_span_len(g, r));
    lra_blocks_keys(sink, r * g->span, combiner_span_len(g, r), 0);
    if (r > 0) lra_blocks_keys(sink, g->T, r, 0);
    if (r + 1 < g->R) lra_blocks_keys(sink, g->T + r + 1, g->R - r - 1, 0);
}

/* The plan at ctx->shape. The patterns point into plan->geo: plan must not move. */
static void combiner_setup(const lra_attn_ctx *ctx, combiner_plan *plan)
{
    const int T = ctx->shape.len, s = combiner_span(ctx);
    plan->geo = (combiner_geom){.T = T, .span = s, .R = (T + s - 1) / s};
    const int R = plan->geo.R;
    plan->local = (lra_blocks_pattern){.n_groups = R, .group = combiner_group_local,
                                       .arg = &plan->geo};
    plan->joint = (lra_blocks_pattern){.n_groups = R, .group = combiner_group_joint,
                                       .arg = &plan->geo};
    lra_blocks_measure(&plan->local, ctx->shape.heads, T + R, &plan->z_local);
    lra_blocks_measure(&plan->joint, ctx->shape.heads, T + R, &plan->z_joint);
    plan->z = plan->z_local;
    lra_blocks_size_join(&plan->z, &plan->z_joint);
}

static size_t combiner_cache_floats(const combiner_geom *g, int D)
{
    return (size_t)(g->T + g->R) + 3 * (size_t)g->R * D;
}

static size_t combiner_scratch_floats(const combiner_plan *p, int D)
{
    const size_t Tp = (size_t)p->geo.T + p->geo.R;
    return 7 * Tp * D + Tp + lra_blocks_scratch(&p->z, D);
}

static combiner_slice combiner_slice_at(const lra_attn_ctx *ctx, const combiner_plan *p, int bh)
{
    const int D = ctx->shape.dim, R = p->geo.R;
    const size_t Tp = (size_t)p->geo.T + R, TpD = Tp * D, RD = (size_t)R * D;
    float *c = ctx->cache + (size_t)bh * combiner_cache_floats(&p->geo, D);
    float *s = ctx->scratch + (size_t)bh * combiner_scratch_floats(p, D);
    return (combiner_slice){.lse = c, .e = c + Tp, .arg_q = c + Tp + RD,
                            .arg_k = c + Tp + 2 * RD, .Q = s, .K = s + TpD, .V = s + 2 * TpD,
                            .tmp = s + 3 * TpD, .dQ = s + 4 * TpD, .dK = s + 5 * TpD,
                            .dV = s + 6 * TpD, .mask = s + 7 * TpD, .engine = s + 7 * TpD + Tp};
}

/* The arg-max over the real tokens of span r, per coordinate, of X (T, Dh) into arg (Dh);
 * −1 for a span without real tokens. Ties keep the first index. */
static void combiner_argmax(const combiner_geom *g, int r, const float *X, const float *mask,
                            int D, float *arg)
{
    const int j0 = r * g->span, j1 = j0 + combiner_span_len(g, r);
    for (int e = 0; e < D; e++) {
        int best = -1;
        for (int j = j0; j < j1; j++)
            if (mask[j] != 0.0f && (best < 0 || X[(size_t)j * D + e] > X[(size_t)best * D + e]))
                best = j;
        arg[e] = (float)best;
    }
}

/* Rows 0 … T − 1 of dst = src; row T + r = the pooled row of region r (0 when it is empty). */
static void combiner_augment(const combiner_geom *g, const float *src, const float *arg, int D,
                             float *dst)
{
    memcpy(dst, src, (size_t)g->T * D * sizeof(float));
    for (int r = 0; r < g->R; r++) {
        float *row = dst + (size_t)(g->T + r) * D;
        for (int e = 0; e < D; e++) {
            const int j = (int)arg[(size_t)r * D + e];
            row[e] = j >= 0 ? src[(size_t)j * D + e] : 0.0f;
        }
    }
}

/* Q', K', the mask of T' rows and V' rows 0 … T − 1; with `fresh`, the arg-max indices are
 * recomputed into the cache first. */
static void combiner_prepare(const combiner_geom *g, const combiner_slice *z, const float *q,
                             const float *k, const float *v, const float *key_mask, int D,
                             int fresh)
{
    for (int r = 0; fresh && r < g->R; r++) {
        combiner_argmax(g, r, q, key_mask, D, z->arg_q + (size_t)r * D);
        combiner_argmax(g, r, k, key_mask, D, z->arg_k + (size_t)r * D);
    }
    combiner_augment(g, q, z->arg_q, D, z->Q);
    combiner_augment(g, k, z->arg_k, D, z->K);
    memcpy(z->V, v, (size_t)g->T * D * sizeof(float));
    memcpy(z->mask, key_mask, (size_t)g->T * sizeof(float));
    for (int r = 0; r < g->R; r++) z->mask[g->T + r] = z->arg_k[(size_t)r * D] >= 0.0f;
}

/* The engine's view of the augmented slice. */
static lra_blocks_slice combiner_engine(const lra_attn_ctx *ctx, const combiner_plan *p,
                                        const combiner_slice *z, int bh, float drop)
{
    return (lra_blocks_slice){.q = z->Q, .k = z->K, .v = z->V, .mask = z->mask, .lse = z->lse,
                              .scratch = z->engine, .size = p->z, .T = p->geo.T + p->geo.R,
                              .D = ctx->shape.dim, .head = bh % ctx->shape.heads,
                              .scale = 1.0f / sqrtf((float)ctx->shape.dim), .drop = drop,
                              .drop_key = lra_blocks_drop_key(ctx, bh)};
}

static void combiner_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    combiner_plan p;
    combiner_setup(ctx, &p);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * combiner_cache_floats(&p.geo, ctx->shape.dim),
        .n_scratch = slices * combiner_scratch_floats(&p, ctx->shape.dim),
    };
}

static double combiner_flops(const lra_attn_ctx *ctx)
{
    combiner_plan p;
    combiner_setup(ctx, &p);
    const double D = ctx->shape.dim;
    const double pool = 2.0 * ctx->shape.heads * ctx->shape.len * D; /* two max-poolings */
    return ctx->shape.batch * (lra_blocks_flops(&p.z_local, ctx->shape.dim) +
                               lra_blocks_flops(&p.z_joint, ctx->shape.dim) + pool);
}

static int combiner_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const combiner_priv *opt = ctx->priv;
    if (opt->span < 0) {
        snprintf(err, errlen, "span must be >= 0 (0 = ceil(sqrt(T))), got %d", opt->span);
        return LRA_ATTN_EINVAL;
    }
    if (ctx->shape.max_len >= (1 << 24)) {
        snprintf(err, errlen, "max_len %d: arg-max indices are cached as floats, exact below "
                              "2^24", ctx->shape.max_len);
        return LRA_ATTN_ESHAPE;
    }
    return LRA_ATTN_OK;
}

static void combiner_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                             float *out)
{
    combiner_plan p;
    combiner_setup(ctx, &p);
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H, T = p.geo.T, D = ctx->shape.dim;
    const size_t TD = (size_t)T * D;
    const float drop = lra_blocks_drop_rate(ctx);
    const int fresh = !ctx->freeze_choices;

#pragma omp parallel for schedule(static) num_threads(lra_blocks_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const combiner_slice z = combiner_slice_at(ctx, &p, bh);
        combiner_prepare(&p.geo, &z, q + bh * TD, k + bh * TD, v + bh * TD,
                         ctx->key_mask + (size_t)(bh / H) * T, D, fresh);
        /* Pass 1: e_r = rows T + r of tmp; they become value rows of pass 2 and are cached. */
        const lra_blocks_slice s1 = combiner_engine(ctx, &p, &z, bh, 0.0f);
        lra_blocks_forward_slice(&p.local, &s1, z.tmp);
        memcpy(z.V + TD, z.tmp + TD, (size_t)p.geo.R * D * sizeof(float));
        memcpy(z.e, z.tmp + TD, (size_t)p.geo.R * D * sizeof(float));
        /* Pass 2 writes only the token rows 0 … T − 1, so it may write out directly. */
        const lra_blocks_slice s2 = combiner_engine(ctx, &p, &z, bh, drop);
        lra_blocks_forward_slice(&p.joint, &s2, out + bh * TD);
    }
}

/* Adds dX' rows 0 … T − 1 into dx and routes the pooled rows T + r to their arg-max rows. */
static void combiner_scatter(const combiner_geom *g, const float *dXp, const float *arg, int D,
                             float *dx)
{
    const size_t TD = (size_t)g->T * D;
    for (size_t i = 0; i < TD; i++) dx[i] += dXp[i];
    for (int r = 0; r < g->R; r++)
        for (int e = 0; e < D; e++) {
            const int j = (int)arg[(size_t)r * D + e];
            if (j >= 0) dx[(size_t)j * D + e] += dXp[(size_t)(g->T + r) * D + e];
        }
}

static void combiner_backward_slice(const lra_attn_ctx *ctx, const combiner_plan *p, int bh,
                                    const float *dO, float *dq, float *dk, float *dv,
                                    const combiner_slice *z)
{
    const int D = ctx->shape.dim, T = p->geo.T, R = p->geo.R;
    const size_t TD = (size_t)T * D, TpD = (size_t)(T + R) * D;
    memset(z->dQ, 0, TpD * sizeof(float));
    memset(z->dK, 0, TpD * sizeof(float));
    memset(z->dV, 0, TpD * sizeof(float));
    /* forward was pass 2 (joint softmax over [K; k_Ω] with values [V; e]), so B2 gives dQ',
     * and dK', dV' on both the token rows and the region rows (dk_Ω and de). */
    memcpy(z->tmp, dO, TD * sizeof(float)); /* (T', Dh) dout of the augmented rows */
    memset(z->tmp + TD, 0, (size_t)R * D * sizeof(float));
    const lra_blocks_slice s2 = combiner_engine(ctx, p, z, bh, lra_blocks_drop_rate(ctx));
    lra_blocks_backward_slice(&p->joint, &s2, z->tmp, z->dQ, z->dK, z->dV);
    /* forward was e = pass 1 (region queries q_Ω against their span), so B2 with dout = de
     * gives dq_Ω in dQ' rows T + r and more dK', dV' on the token rows. */
    memcpy(z->tmp + TD, z->dV + TD, (size_t)R * D * sizeof(float));
    const lra_blocks_slice s1 = combiner_engine(ctx, p, z, bh, 0.0f);
    lra_blocks_backward_slice(&p->local, &s1, z->tmp, z->dQ, z->dK, z->dV);
    /* forward was q_Ω, k_Ω = max pooling, so their gradients go to the arg-max rows; dV' rows
     * T + r (de) were consumed by pass 1's backward and go nowhere else. */
    combiner_scatter(&p->geo, z->dQ, z->arg_q, D, dq);
    combiner_scatter(&p->geo, z->dK, z->arg_k, D, dk);
    for (size_t i = 0; i < TD; i++) dv[i] += z->dV[i];
}

static void combiner_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              const float *out, const float *dout, float *dq, float *dk,
                              float *dv)
{
    (void)out; /* B2 recomputes the probabilities from the cached lse */
    combiner_plan p;
    combiner_setup(ctx, &p);
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H, T = p.geo.T, D = ctx->shape.dim;
    const size_t TD = (size_t)T * D;

#pragma omp parallel for schedule(static) num_threads(lra_blocks_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const combiner_slice z = combiner_slice_at(ctx, &p, bh);
        /* The augmented rows again, pooled with the cached arg-max, and e from the cache. */
        combiner_prepare(&p.geo, &z, q + bh * TD, k + bh * TD, v + bh * TD,
                         ctx->key_mask + (size_t)(bh / H) * T, D, 0);
        memcpy(z.V + TD, z.e, (size_t)p.geo.R * D * sizeof(float));
        combiner_backward_slice(ctx, &p, bh, dout + bh * TD, dq + bh * TD, dk + bh * TD,
                                dv + bh * TD, &z);
    }
}

const lra_attention lra_attn_combiner = {
    .abi_version           = LRA_ATTN_ABI_VERSION,
    .name                  = "combiner",
    .help                  = "Combiner-Fixed: span attention plus max-pooled span summaries in "
                             "one softmax (Ren et al. 2021, arXiv 2107.05768); O(T (s + T/s) "
                             "Dh) time, O(T) memory",
    .flags                 = LRA_ATTN_NONSMOOTH,
    .priv_size             = sizeof(combiner_priv),
    .options               = combiner_options,
    .check_options         = "span=3",
    .softmax_limit_options = "span=8",
    .sizes                 = combiner_sizes,
    .flops                 = combiner_flops,
    .init                  = combiner_init,
    .forward               = combiner_forward,
    .backward              = combiner_backward,
    .free                  = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_combiner)
