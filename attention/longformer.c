/* longformer.c — Longformer attention: a sliding window plus optional global tokens.
 *
 * Beltagy, Peters, Cohan, "Longformer: The Long-Document Transformer", 2020, arXiv 2004.05150;
 * attention-variants.md §4. Window w: query i sees keys j with i − left < j <= i + right, where
 * right = ⌊w/2⌋ and left = w − right (LRA's convention: the left side includes i itself and
 * gets the extra key when w is odd). The first `global` tokens G are global: every query also
 * sees them, and they see every key. Padded keys are excluded exactly (B2, suite/attn_blocks.h).
 *
 * Global projections (global_proj=1, used when global > 0): as in the paper, the global rows
 * are computed with their own projections, o_i = softmax(q_i W_q · (K W_k)ᵀ·s) (V W_v) for
 * i ∈ G, while window rows see the global keys through the ordinary k, v (as in the reference
 * implementations). The plugin only receives q, k, v, so W_q, W_k, W_v are Dh×Dh maps per head
 * applied to them (a reparametrisation of the paper's x W_g; attention-variants.md §0.1),
 * initialised to the identity — the paper's initialisation from the local projections.
 *
 * Defaults: w = 512 and no global token, LRA's configuration (a pure ±256 window). global=1
 * makes the CLS token global as in the paper's classification set-up.
 *
 * Complexity, per slice: T·(w + tile + |G|) pairs for the window rows (queries run in tiles of
 * up to 32; a tile's keys are the union of its windows), |G|·T pairs for the global rows, at
 * 4·Dh + 5 flops each; global projections add 2·Dh²·(|G| + 2T). O(T·(w + |G|)·Dh) in all.
 * Cache:   lse, (B, H, T): one float per query; backward recomputes the probabilities.
 * Scratch: per slice, the engine's tile (tile × (w + tile + |G|), or |G| × T for global rows);
 *          with global projections also q W_q, K W_k, V W_v, their gradients and dW (3·Dh²).
 * Params:  global projections only: W_q, W_k, W_v (H, 3, Dh, Dh).
 */
#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "attn_blocks.h"
#include "lra_attention.h"

enum { LONGFORMER_TILE = 32 }; /* most queries per window tile */

typedef struct longformer_priv {
    int window;      /* w */
    int global;      /* |G|: leading global tokens */
    int global_proj; /* separate projections for the global rows */
} longformer_priv;

static const lra_attn_option longformer_options[] = {
    {.name = "window", .help = "window w: keys i-w+w/2 < j <= i+w/2 (LRA 512)",
     .offset = offsetof(longformer_priv, window), .type = LRA_OPT_INT,
     .def = 512, .min = 1, .max = 1 << 20},
    {.name = "global", .help = "leading global tokens (LRA 0; 1 = CLS global as in the paper)",
     .offset = offsetof(longformer_priv, global), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 1 << 20},
    {.name = "global_proj", .help = "separate Dh x Dh projections of q, k, v for the global "
                                    "rows (paper); used when global > 0",
     .offset = offsetof(longformer_priv, global_proj), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = NULL},
};

typedef struct longformer_geom {
    int T, global, tile;
    int left, right;      /* window: i − left < j <= i + right */
    int with_global_rows; /* 1: group 0 is the global rows (no separate projections) */
} longformer_geom;

/* Window rows: query tiles after the global tokens; keys G, then the union of the tile's
 * windows, banded to each query's own window. Without separate projections group 0 is the
 * global rows, which see every key. */
static void longformer_group(const void *arg, int h, int g, lra_blocks_sink *sink)
{
    (void)h;
    const longformer_geom *geo = arg;
    if (geo->with_global_rows) {
        if (g == 0) {
            lra_blocks_queries(sink, 0, geo->global);
            lra_blocks_keys(sink, 0, geo->T, 0);
            return;
        }
        g--;
    }
    const int q0 = geo->global + g * geo->tile; /* queries [q0, q0 + tile) */
    lra_blocks_queries(sink, q0, geo->tile);
    lra_blocks_keys(sink, 0, geo->global, 0);
    /* The tile's windows: keys (q0 − left, q0 + tile − 1 + right], after G. */
    const int k0 = q0 - geo->left + 1 > geo->global ? q0 - geo->left + 1 : geo->global;
    const int k1 = q0 + geo->tile + geo->right;
    lra_blocks_keys(sink, k0, k1 - k0, 1);
}

/* The global rows with separate projections: queries G against every key. */
static void longformer_global_group(const void *arg, int h, int g, lra_blocks_sink *sink)
{
    (void)h;
    (void)g;
    const longformer_geom *geo = arg;
    lra_blocks_queries(sink, 0, geo->global);
    lra_blocks_keys(sink, 0, geo->T, 0);
}

/* Whether the global rows use their own projections. */
static int longformer_projects(const lra_attn_ctx *ctx)
{
    const longformer_priv *opt = ctx->priv;
    return opt->global > 0 && opt->global_proj;
}

/* Both patterns at ctx->shape (the global one has no group without separate projections) and
 * the measure that bounds either: what sizes(), flops() and the passes share. */
typedef struct longformer_plan {
    longformer_geom geo;
    lra_blocks_pattern window, global;
    lra_blocks_size z; /* bounds both patterns, which share the engine's scratch */
} longformer_plan;

static void longformer_plan_at(const lra_attn_ctx *ctx, longformer_plan *pl)
{
    const longformer_priv *opt = ctx->priv;
    const int T = ctx->shape.len, G = opt->global < T ? opt->global : T;
    const int tile = opt->window < LONGFORMER_TILE ? opt->window : LONGFORMER_TILE;
    const int proj = longformer_projects(ctx);
    pl->geo = (longformer_geom){
        .T = T, .global = G, .tile = tile,
        .right = opt->window / 2, .left = opt->window - opt->window / 2,
        .with_global_rows = G > 0 && !proj,
    };
    pl->window = (lra_blocks_pattern){
        .n_groups = pl->geo.with_global_rows + (T - G + tile - 1) / tile,
        .group = longformer_group, .arg = &pl->geo,
        .band_lo = -(pl->geo.left - 1), .band_hi = pl->geo.right,
    };
    pl->global = (lra_blocks_pattern){
        .n_groups = proj && G > 0, .group = longformer_global_group, .arg = &pl->geo,
    };
    lra_blocks_size z_global;
    lra_blocks_measure(&pl->window, ctx->shape.heads, T, &pl->z);
    lra_blocks_measure(&pl->global, ctx->shape.heads, T, &z_global);
    lra_blocks_size_join(&pl->z, &z_global);
}

static float longformer_scale(const lra_attn_ctx *ctx)
{
    return 1.0f / sqrtf((float)ctx->shape.dim);
}

/* The per-slice extra scratch of the projected global path, after the engine's. */
typedef struct longformer_proj_work {
    float *Qg, *dQg;  /* (G, Dh) q W_q and its gradient */
    float *Kp, *dKp;  /* (T, Dh) K W_k and its gradient */
    float *Vp, *dVp;  /* (T, Dh) V W_v and its gradient */
    float *dW;        /* (3, Dh, Dh) this slice's dW_q, dW_k, dW_v */
} longformer_proj_work;

static size_t longformer_proj_floats(const lra_attn_ctx *ctx)
{
    if (!longformer_projects(ctx)) return 0;
    const longformer_priv *opt = ctx->priv;
    const size_t T = (size_t)ctx->shape.len, D = (size_t)ctx->shape.dim;
    const size_t G = (size_t)opt->global < T ? (size_t)opt->global : T;
    return 2 * G * D + 4 * T * D + 3 * D * D;
}

/* Floats of scratch per slice: the engine's, then the projected path's. */
static size_t longformer_per_slice(const lra_attn_ctx *ctx, const longformer_plan *pl)
{
    return lra_blocks_scratch(&pl->z, ctx->shape.dim) + longformer_proj_floats(ctx);
}

static longformer_proj_work longformer_proj_at(const lra_attn_ctx *ctx, float *base, int G)
{
    const size_t T = (size_t)ctx->shape.len, D = (size_t)ctx->shape.dim, g = (size_t)G;
    return (longformer_proj_work){
        .Qg = base, .dQg = base + g * D,
        .Kp = base + 2 * g * D, .dKp = base + 2 * g * D + T * D,
        .Vp = base + 2 * g * D + 2 * T * D, .dVp = base + 2 * g * D + 3 * T * D,
        .dW = base + 2 * g * D + 4 * T * D,
    };
}

/* dst (n, Dh) = src (n, Dh) · W (Dh, Dh). */
static void longformer_project(const float *src, int n, const float *W, int D, float *dst)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, D, 1.0f, src, D, W, D, 0.0f, dst,
                D);
}

/* Slice bh of the context, with its scratch at the per-slice stride of this plugin. */
static lra_blocks_slice longformer_slice(const lra_attn_ctx *ctx, const longformer_plan *pl,
                                         int bh, const float *q, const float *k, const float *v)
{
    lra_blocks_slice s = lra_blocks_slice_at(ctx, bh, &pl->z, longformer_scale(ctx), q, k, v);
    s.scratch = ctx->scratch + (size_t)bh * longformer_per_slice(ctx, pl);
    return s;
}

/* The projected global path's inputs for slice s: Qg = q_G W_q, Kp = K W_k, Vp = V W_v. */
static lra_blocks_slice longformer_global_slice(const lra_attn_ctx *ctx, const longformer_plan *pl,
                                                const lra_blocks_slice *s,
                                                const longformer_proj_work *pw)
{
    const int D = s->D, T = s->T;
    const float *W = ctx->params + (size_t)s->head * 3 * D * D; /* (3, Dh, Dh) */
    longformer_project(s->q, pl->geo.global, W, D, pw->Qg);
    longformer_project(s->k, T, W + D * D, D, pw->Kp);
    longformer_project(s->v, T, W + 2 * D * D, D, pw->Vp);
    lra_blocks_slice gs = *s;
    gs.q = pw->Qg; /* rows 0 .. G − 1 are the only ones the global pattern reads */
    gs.k = pw->Kp;
    gs.v = pw->Vp;
    return gs;
}

static void longformer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    longformer_plan pl;
    longformer_plan_at(ctx, &pl);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    const size_t D = (size_t)ctx->shape.dim;
    *out = (lra_attn_sizes){
        .n_params  = longformer_projects(ctx) ? (size_t)ctx->shape.heads * 3 * D * D : 0,
        .n_state   = 0,
        .n_cache   = slices * ctx->shape.len,                   /* lse (B, H, T) */
        .n_scratch = slices * longformer_per_slice(ctx, &pl),
    };
}

static double longformer_flops(const lra_attn_ctx *ctx)
{
    longformer_plan pl;
    longformer_plan_at(ctx, &pl);
    const double D = ctx->shape.dim, T = ctx->shape.len;
    const double proj = longformer_projects(ctx) ? 2.0 * D * D * (pl.geo.global + 2.0 * T) : 0.0;
    return ctx->shape.batch * (lra_blocks_flops(&pl.z, ctx->shape.dim) + ctx->shape.heads * proj);
}

static int longformer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const longformer_priv *opt = ctx->priv;
    if (opt->window < 1 || opt->global < 0) {
        snprintf(err, errlen, "need window >= 1 and global >= 0, got window=%d global=%d",
                 opt->window, opt->global);
        return LRA_ATTN_EINVAL;
    }
    if (opt->global > ctx->shape.max_len) {
        snprintf(err, errlen, "global=%d exceeds the %d tokens of the sequence", opt->global,
                 ctx->shape.max_len);
        return LRA_ATTN_ESHAPE;
    }
    if (!longformer_projects(ctx)) return LRA_ATTN_OK;
    /* W_q = W_k = W_v = I: the global rows start as plain attention, the paper's choice of
     * initialising the global projections from the local ones. */
    const int H = ctx->shape.heads, D = ctx->shape.dim;
    memset(ctx->params, 0, (size_t)H * 3 * D * D * sizeof(float));
    for (int m = 0; m < 3 * H; m++)
        for (int e = 0; e < D; e++) ctx->params[((size_t)m * D + e) * D + e] = 1.0f;
    return LRA_ATTN_OK;
}

static void longformer_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                               float *out)
{
    longformer_plan pl;
    longformer_plan_at(ctx, &pl);
    const int BH = ctx->shape.batch * ctx->shape.heads, proj = longformer_projects(ctx);
    const size_t TD = (size_t)ctx->shape.len * ctx->shape.dim;
    const size_t engine = lra_blocks_scratch(&pl.z, ctx->shape.dim);

#pragma omp parallel for schedule(static) num_threads(lra_blocks_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const lra_blocks_slice s = longformer_slice(ctx, &pl, bh, q, k, v);
        float *O = out + bh * TD; /* (T, Dh) */
        lra_blocks_forward_slice(&pl.window, &s, O);
        if (!proj) continue;
        const longformer_proj_work pw = longformer_proj_at(ctx, s.scratch + engine,
                                                           pl.geo.global);
        const lra_blocks_slice gs = longformer_global_slice(ctx, &pl, &s, &pw);
        lra_blocks_forward_slice(&pl.global, &gs, O);
    }
}

/* The projected global path of one slice: forward was Qg = q_G W_q, Kp = K W_k, Vp = V W_v,
 * then attention of Qg over (Kp, Vp). Adds into dq, dk, dv and this slice's dW (3, Dh, Dh). */
static void longformer_global_backward(const lra_attn_ctx *ctx, const longformer_plan *pl,
                                       const lra_blocks_slice *s, const longformer_proj_work *pw,
                                       const float *dO, float *dQ, float *dK, float *dV)
{
    const int D = s->D, T = s->T, G = pl->geo.global;
    const float *W = ctx->params + (size_t)s->head * 3 * D * D; /* (3, Dh, Dh) */
    const lra_blocks_slice gs = longformer_global_slice(ctx, pl, s, pw);
    memset(pw->dQg, 0, (size_t)G * D * sizeof(float));
    memset(pw->dKp, 0, (size_t)T * D * sizeof(float));
    memset(pw->dVp, 0, (size_t)T * D * sizeof(float));
    lra_blocks_backward_slice(&pl->global, &gs, dO, pw->dQg, pw->dKp, pw->dVp);

    /* forward was Y = X W, so dX += dY Wᵀ and dW = Xᵀ dY, for (X, Y) = (q_G, Qg), (K, Kp),
     * (V, Vp). */
    const float *X[3] = {s->q, s->k, s->v};
    const float *dY[3] = {pw->dQg, pw->dKp, pw->dVp};
    float *dX[3] = {dQ, dK, dV};
    const int rows[3] = {G, T, T};
    for (int m = 0; m < 3; m++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows[m], D, D, 1.0f, dY[m], D,
                    W + (size_t)m * D * D, D, 1.0f, dX[m], D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, rows[m], 1.0f, X[m], D, dY[m],
                    D, 0.0f, pw->dW + (size_t)m * D * D, D);
    }
}

static void longformer_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                                const float *out, const float *dout, float *dq, float *dk,
                                float *dv)
{
    (void)out; /* B2 recomputes P from the cached lse */
    longformer_plan pl;
    longformer_plan_at(ctx, &pl);
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H, D = ctx->shape.dim;
    const int proj = longformer_projects(ctx);
    const size_t TD = (size_t)ctx->shape.len * D;
    const size_t engine = lra_blocks_scratch(&pl.z, D), per_slice = longformer_per_slice(ctx, &pl);

#pragma omp parallel for schedule(static) num_threads(lra_blocks_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const lra_blocks_slice s = longformer_slice(ctx, &pl, bh, q, k, v);
        lra_blocks_backward_slice(&pl.window, &s, dout + bh * TD, dq + bh * TD, dk + bh * TD,
                                  dv + bh * TD);
        if (!proj) continue;
        const longformer_proj_work pw = longformer_proj_at(ctx, s.scratch + engine,
                                                           pl.geo.global);
        longformer_global_backward(ctx, &pl, &s, &pw, dout + bh * TD, dq + bh * TD,
                                   dk + bh * TD, dv + bh * TD);
    }
    if (!proj) return;
    /* Slices of one head share its projections: sum their dW in slice order, after the
     * parallel loop, so the result does not depend on the thread count. */
    const size_t DD3 = 3 * (size_t)D * D;
    for (int bh = 0; bh < BH; bh++) {
        const longformer_proj_work pw = longformer_proj_at(
            ctx, ctx->scratch + (size_t)bh * per_slice + engine, pl.geo.global);
        float *dW = ctx->dparams + (size_t)(bh % H) * DD3; /* (3, Dh, Dh) of head h */
        for (size_t e = 0; e < DD3; e++) dW[e] += pw.dW[e];
    }
}

const lra_attention lra_attn_longformer = {
    .abi_version           = LRA_ATTN_ABI_VERSION,
    .name                  = "longformer",
    .help                  = "Longformer sliding window + global tokens (Beltagy et al. 2020, "
                             "arXiv 2004.05150); O(T (w + G) Dh) time, O(T) memory",
    .flags                 = 0,
    .priv_size             = sizeof(longformer_priv),
    .options               = longformer_options,
    .check_options         = "window=4,global=1",
    .softmax_limit_options = "window=16",
    .sizes                 = longformer_sizes,
    .flops                 = longformer_flops,
    .init                  = longformer_init,
    .forward               = longformer_forward,
    .backward              = longformer_backward,
    .free                  = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_longformer)
