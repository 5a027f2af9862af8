/* bigbird.c — BigBird attention: window, global and random blocks (ITC, block form).
 *
 * Zaheer et al., "Big Bird: Transformers for Longer Sequences", NeurIPS 2020, arXiv 2007.14062;
 * attention-variants.md §9. Blocks of b tokens (the last one shorter when b does not divide T),
 * N_B of them. Query block t sees the union, without duplicates, of
 *   - the window blocks t − 1, t, t + 1,
 *   - the global blocks 0 and N_B − 1,
 *   - r random blocks drawn from the others ({1 … N_B − 2} minus the window);
 * query blocks 0 and N_B − 1 are global rows and see every key. LRA's edge rules (block 1 sees
 * 0, 1, 2 and the last; block N_B − 2 sees 0 and the last three) are exactly this union once
 * duplicates are removed. Exact softmax over the real keys of N(i) (B2, suite/attn_blocks.h).
 *
 * Random blocks are fixed per layer and head (LRA: NumPy seeded by the layer index): init draws
 * them from ctx->seed into ctx->state, so they persist and are checkpointed. The state holds
 * the DRAWS, uniforms u (H, ⌈max_len/b⌉, r): query block t of head h takes, for k = 0 … r − 1,
 * the ⌊u_k·(m − k)⌋-th of the m eligible blocks not yet taken (a partial Fisher–Yates shuffle).
 * At T = max_len these are fixed block ids; a shorter batch reuses the same draws on its own
 * blocks. redraw=1 draws them afresh at every training step from (seed, step) instead (other
 * implementations do); evaluation then uses the fixed draws. When fewer than r blocks are
 * eligible, all of them are taken.
 *
 * Complexity, per slice: interior query blocks see (5 + r)·b keys, the two global rows T each:
 * about T·(5 + r)·b + 2·b·T pairs at 4·Dh + 5 flops: O(T·(5 + r)·b·Dh) forward and backward.
 * Cache:   lse, (B, H, T): one float per query; backward recomputes the probabilities.
 * Scratch: per slice, the largest tile: b × T for the global rows (O(b·T)), b × (5 + r)·b else.
 * State:   the random draws, H·⌈max_len/b⌉·r floats.
 * Defaults: b = 64, r = 3, 2 global blocks, window of 3 blocks (paper ITC and LRA).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "attn_blocks.h"
#include "lra_attention.h"
#include "lra_rng.h"

enum { BIGBIRD_MAX_RANDOM = 64 };
/* Labels of the two streams of random-block draws: fixed (state) and per step (redraw). */
static const uint64_t BIGBIRD_FIXED = 0xb16b1d0, BIGBIRD_REDRAW = 0xb16b1d1;

typedef struct bigbird_priv {
    int block;  /* b */
    int random; /* r: random blocks per query block */
    int redraw; /* 1: fresh random blocks at every training step */
} bigbird_priv;

static const lra_attn_option bigbird_options[] = {
    {.name = "block", .help = "block size b (paper and LRA 64)",
     .offset = offsetof(bigbird_priv, block), .type = LRA_OPT_INT,
     .def = 64, .min = 1, .max = 1 << 20},
    {.name = "random", .help = "random key blocks per query block (paper and LRA 3)",
     .offset = offsetof(bigbird_priv, random), .type = LRA_OPT_INT,
     .def = 3, .min = 0, .max = BIGBIRD_MAX_RANDOM},
    {.name = "redraw", .help = "redraw the random blocks at every training step (LRA: fixed per "
                               "layer and head)",
     .offset = offsetof(bigbird_priv, redraw), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = NULL},
};

typedef struct bigbird_geom {
    int T, block, n_blocks, random;
    int rows;          /* ⌈max_len/b⌉: query blocks per head in the draws */
    const float *u;    /* (H, rows, r) fixed draws, or NULL: see bigbird_pattern */
    int redraw;        /* 1: draw from step_key instead of u */
    uint64_t step_key; /* this training step's stream of draws */
} bigbird_geom;

/* The idx-th block of E_t \ taken, where E_t = {1 … N_B − 2} \ {t − 1, t, t + 1} and taken
 * (n, ascending) ⊂ E_t: the idx-th of E_t, moved one eligible block on past each taken one at
 * or before it. */
static int bigbird_eligible(int idx, int lo, int hi, const int *taken, int n)
{
    /* E_t = [1, lo) ∪ (hi, N_B − 2], lo and hi the window clipped to [1, N_B − 2]. */
    int x = idx < lo - 1 ? 1 + idx : hi + 1 + (idx - (lo - 1));
    for (int c = 0; c < n; c++)
        if (taken[c] <= x) x = x + 1 == lo ? hi + 1 : x + 1;
    return x;
}

/* The draw u_k of query block t of head h. */
static float bigbird_draw(const bigbird_geom *geo, int h, int t, int k)
{
    const uint64_t counter = (uint64_t)t * (uint64_t)geo->random + (uint64_t)k;
    if (geo->redraw) return lra_uniform(lra_key(geo->step_key, (uint64_t)h), counter);
    return geo->u[((size_t)h * geo->rows + t) * geo->random + k];
}

/* Writes the random blocks of query block t (1 <= t <= N_B − 2) of head h into ids, ascending;
 * returns how many. */
static int bigbird_random_blocks(const bigbird_geom *geo, int h, int t, int *ids)
{
    const int last = geo->n_blocks - 2; /* the last block that can be drawn */
    const int lo = t - 1 > 1 ? t - 1 : 1, hi = t + 1 < last ? t + 1 : last;
    const int m = (lo - 1) + (last - hi);
    const int n = geo->random < m ? geo->random : m;
    for (int k = 0; k < n; k++) {
        int idx = 0; /* measuring: the first eligible block */
        if (geo->u || geo->redraw) {
            idx = (int)((double)bigbird_draw(geo, h, t, k) * (m - k));
            if (idx > m - k - 1) idx = m - k - 1;
        }
        const int id = bigbird_eligible(idx, lo, hi, ids, k);
        int at = k; /* insert, keeping ids ascending for bigbird_eligible */
        while (at > 0 && ids[at - 1] > id) {
            ids[at] = ids[at - 1];
            at--;
        }
        ids[at] = id;
    }
    return n;
}

static void bigbird_group(const void *arg, int h, int t, lra_blocks_sink *sink)
{
    const bigbird_geom *geo = arg;
    const int b = geo->block, nb = geo->n_blocks;
    lra_blocks_queries(sink, t * b, b);
    if (t == 0 || t == nb - 1) { /* global rows */
        lra_blocks_keys(sink, 0, geo->T, 0);
        return;
    }
    int ids[5 + BIGBIRD_MAX_RANDOM] = {0, t - 1, t, t + 1, nb - 1};
    const int n = 5 + bigbird_random_blocks(geo, h, t, ids + 5);
    /* Ascending block order for the engine; it merges the duplicates (t − 1 = 0 at t = 1, t + 1
     * = N_B − 1 at t = N_B − 2). */
    for (int a = 1; a < n; a++)
        for (int c = a; c > 0 && ids[c - 1] > ids[c]; c--) {
            const int tmp = ids[c];
            ids[c] = ids[c - 1];
            ids[c - 1] = tmp;
        }
    for (int a = 0; a < n; a++) lra_blocks_keys(sink, ids[a] * b, b, 0);
}

static int bigbird_rows(const lra_attn_ctx *ctx)
{
    const bigbird_priv *opt = ctx->priv;
    return (ctx->shape.max_len + opt->block - 1) / opt->block;
}

/* The pattern at ctx->shape. draws: 0 for measuring (the first eligible blocks, which give
 * the same sizes, since random blocks never overlap the window or global ones), 1 for running
 * (the fixed draws in state, or this step's when redrawing). */
static lra_blocks_pattern bigbird_pattern(const lra_attn_ctx *ctx, bigbird_geom *geo, int draws)
{
    const bigbird_priv *opt = ctx->priv;
    const int T = ctx->shape.len, nb = (T + opt->block - 1) / opt->block;
    const int redraw = draws && opt->redraw && ctx->training;
    *geo = (bigbird_geom){
        .T = T, .block = opt->block, .n_blocks = nb, .random = opt->random,
        .rows = bigbird_rows(ctx),
        .u = draws && !redraw ? ctx->state : NULL,
        .redraw = redraw,
        .step_key = lra_key(lra_key(ctx->seed, BIGBIRD_REDRAW), ctx->step),
    };
    return (lra_blocks_pattern){.n_groups = nb, .group = bigbird_group, .arg = geo};
}

static void bigbird_measure(const lra_attn_ctx *ctx, lra_blocks_size *z)
{
    bigbird_geom geo;
    const lra_blocks_pattern p = bigbird_pattern(ctx, &geo, 0);
    lra_blocks_measure(&p, ctx->shape.heads, ctx->shape.len, z);
}

static float bigbird_scale(const lra_attn_ctx *ctx)
{
    return 1.0f / sqrtf((float)ctx->shape.dim);
}

static void bigbird_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const bigbird_priv *opt = ctx->priv;
    lra_blocks_size z;
    bigbird_measure(ctx, &z);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = (size_t)ctx->shape.heads * bigbird_rows(ctx) * opt->random, /* draws */
        .n_cache   = slices * ctx->shape.len,                         /* lse (B, H, T) */
        .n_scratch = slices * lra_blocks_scratch(&z, ctx->shape.dim), /* the largest tile */
    };
}

static double bigbird_flops(const lra_attn_ctx *ctx)
{
    lra_blocks_size z;
    bigbird_measure(ctx, &z);
    return ctx->shape.batch * lra_blocks_flops(&z, ctx->shape.dim);
}

static int bigbird_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const bigbird_priv *opt = ctx->priv;
    if (opt->block < 1 || opt->random < 0 || opt->random > BIGBIRD_MAX_RANDOM) {
        snprintf(err, errlen, "need block >= 1 and 0 <= random <= %d, got block=%d random=%d",
                 BIGBIRD_MAX_RANDOM, opt->block, opt->random);
        return LRA_ATTN_EINVAL;
    }
    /* The fixed draws, one stream per head, counter t·r + k as in bigbird_draw. */
    const uint64_t layer = lra_key(ctx->seed, BIGBIRD_FIXED);
    const size_t per_head = (size_t)bigbird_rows(ctx) * opt->random;
    for (int h = 0; h < ctx->shape.heads; h++)
        for (size_t c = 0; c < per_head; c++)
            ctx->state[h * per_head + c] = lra_uniform(lra_key(layer, (uint64_t)h), c);
    return LRA_ATTN_OK;
}

static void bigbird_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                            float *out)
{
    lra_blocks_size z;
    bigbird_measure(ctx, &z);
    bigbird_geom geo;
    const lra_blocks_pattern p = bigbird_pattern(ctx, &geo, 1);
    lra_blocks_forward(ctx, &p, &z, bigbird_scale(ctx), q, k, v, out);
}

static void bigbird_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                             const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    (void)out; /* B2 recomputes P from the cached lse */
    lra_blocks_size z;
    bigbird_measure(ctx, &z);
    bigbird_geom geo;
    const lra_blocks_pattern p = bigbird_pattern(ctx, &geo, 1); /* the blocks forward used */
    lra_blocks_backward(ctx, &p, &z, bigbird_scale(ctx), q, k, v, dout, dq, dk, dv);
}

const lra_attention lra_attn_bigbird = {
    .abi_version           = LRA_ATTN_ABI_VERSION,
    .name                  = "bigbird",
    .help                  = "BigBird window + global + random blocks (Zaheer et al. 2020, arXiv "
                             "2007.14062); O(T (5 + r) b Dh) time, O(T) memory",
    .flags                 = LRA_ATTN_STOCHASTIC,
    .priv_size             = sizeof(bigbird_priv),
    .options               = bigbird_options,
    .check_options         = "block=1,random=1",
    .softmax_limit_options = "block=4",
    .sizes                 = bigbird_sizes,
    .flops                 = bigbird_flops,
    .init                  = bigbird_init,
    .forward               = bigbird_forward,
    .backward              = bigbird_backward,
    .free                  = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_bigbird)
