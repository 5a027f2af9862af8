/* local.c — local (block) attention: each query attends to the real keys of its own block.
 *
 * LRA's "Local Attention" baseline (Tay et al., arXiv 2011.04006); block-local attention as in
 * Parmar et al., "Image Transformer", ICML 2018, arXiv 1802.05751. attention-variants.md §2.
 * Blocks B_t = {t·b, …, t·b + b − 1} (the last one shorter when b does not divide T);
 * N(i) = real keys of the block of i; exact softmax within it (B2, suite/attn_blocks.h).
 *
 * pattern=strided is the explicitly named LRA-compatibility switch (lra-tasks.md §10 pitfall
 * 21): LRA's released code pads n to n' = n + b − (n mod b) (a whole extra block when b divides
 * n), reshapes to (b, n'/b) and attends over the first axis, so group g is the strided set
 * {g, g + n'/b, g + 2·n'/b, …} of at most b tokens. Its padding mask was reshaped the other way
 * and disagreed with the groups; here padded keys are excluded exactly in both patterns.
 *
 * Complexity: 4·T·b·Dh flops forward per slice (b² per block), O(T·b·Dh) backward.
 * Cache:   lse, (B, H, T): one float per query; backward recomputes the probabilities.
 * Scratch: per slice, one block's gathered rows and two b×b tiles (suite/attn_blocks.c): O(b²
 *          + b·Dh), independent of T.
 * Defaults: b = 50 (LRA model default; the CIFAR-10 and Pathfinder configs use 64).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "attn_blocks.h"
#include "lra_attention.h"

enum { LOCAL_CONTIGUOUS = 0, LOCAL_STRIDED = 1 };

typedef struct local_priv {
    int block;   /* b: tokens per block */
    int pattern; /* LOCAL_CONTIGUOUS or LOCAL_STRIDED (LRA's released grouping) */
} local_priv;

static const lra_attn_option local_options[] = {
    {.name = "block", .help = "tokens per block (LRA default 50; image configs 64)",
     .offset = offsetof(local_priv, block), .type = LRA_OPT_INT,
     .def = 50, .min = 1, .max = 1 << 20},
    {.name = "pattern", .help = "contiguous blocks, or strided = LRA's released reshape "
                                "(group g = {g, g+n'/b, ...}; LRA-compatibility switch)",
     .offset = offsetof(local_priv, pattern), .type = LRA_OPT_CHOICE,
     .def = LOCAL_CONTIGUOUS, .min = 0, .max = 1, .choices = "contiguous|strided"},
    {.name = NULL},
};

/* The grouping at one length: contiguous blocks of b, or stride groups of LRA's reshape. */
typedef struct local_geom {
    int block;
    int stride; /* strided: n'/b, the distance between members of a group; contiguous: 0 */
} local_geom;

static void local_group(const void *arg, int h, int g, lra_blocks_sink *sink)
{
    (void)h;
    const local_geom *geo = arg;
    if (geo->stride == 0) {
        lra_blocks_queries(sink, g * geo->block, geo->block);
        lra_blocks_keys(sink, g * geo->block, geo->block, 0);
        return;
    }
    /* Group g = {g + m·stride : m < b}, as b single-token spans in increasing order. */
    for (int m = 0; m < geo->block; m++) lra_blocks_queries(sink, g + m * geo->stride, 1);
    for (int m = 0; m < geo->block; m++) lra_blocks_keys(sink, g + m * geo->stride, 1, 0);
}

/* The pattern at ctx->shape; geo must outlive it. */
static lra_blocks_pattern local_pattern(const lra_attn_ctx *ctx, local_geom *geo)
{
    const local_priv *opt = ctx->priv;
    const int T = ctx->shape.len, b = opt->block;
    const int padded = T + b - T % b; /* LRA always pads, a whole block when b divides T */
    *geo = (local_geom){.block = b, .stride = opt->pattern == LOCAL_STRIDED ? padded / b : 0};
    return (lra_blocks_pattern){
        .n_groups = geo->stride ? geo->stride : (T + b - 1) / b,
        .group = local_group,
        .arg = geo,
    };
}

/* Pattern and its measured work at ctx->shape: what sizes(), flops() and the passes share. */
static lra_blocks_pattern local_setup(const lra_attn_ctx *ctx, local_geom *geo,
                                      lra_blocks_size *z)
{
    const lra_blocks_pattern p = local_pattern(ctx, geo);
    lra_blocks_measure(&p, ctx->shape.heads, ctx->shape.len, z);
    return p;
}

static float local_scale(const lra_attn_ctx *ctx) { return 1.0f / sqrtf((float)ctx->shape.dim); }

static void local_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    local_geom geo;
    lra_blocks_size z;
    local_setup(ctx, &geo, &z);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * ctx->shape.len,                   /* lse (B, H, T) */
        .n_scratch = slices * lra_blocks_scratch(&z, ctx->shape.dim), /* per slice: one block */
    };
}

static double local_flops(const lra_attn_ctx *ctx)
{
    local_geom geo;
    lra_blocks_size z;
    local_setup(ctx, &geo, &z);
    return ctx->shape.batch * lra_blocks_flops(&z, ctx->shape.dim);
}

static int local_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const local_priv *opt = ctx->priv;
    if (opt->block < 1 || opt->pattern < LOCAL_CONTIGUOUS || opt->pattern > LOCAL_STRIDED) {
        snprintf(err, errlen, "block must be >= 1 and pattern contiguous or strided");
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

static void local_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                          float *out)
{
    local_geom geo;
    lra_blocks_size z;
    const lra_blocks_pattern p = local_setup(ctx, &geo, &z);
    lra_blocks_forward(ctx, &p, &z, local_scale(ctx), q, k, v, out);
}

static void local_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                           const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    (void)out; /* B2 recomputes P from the cached lse */
    local_geom geo;
    lra_blocks_size z;
    const lra_blocks_pattern p = local_setup(ctx, &geo, &z);
    lra_blocks_backward(ctx, &p, &z, local_scale(ctx), q, k, v, dout, dq, dk, dv);
}

const lra_attention lra_attn_local = {
    .abi_version           = LRA_ATTN_ABI_VERSION,
    .name                  = "local",
    .help                  = "local block attention (Parmar et al. 2018, arXiv 1802.05751; LRA "
                             "baseline); O(T b Dh) time, O(T) memory",
    .flags                 = 0,
    .priv_size             = sizeof(local_priv),
    .options               = local_options,
    .check_options         = "block=4",
    .softmax_limit_options = "block=8",
    .sizes                 = local_sizes,
    .flops                 = local_flops,
    .init                  = local_init,
    .forward               = local_forward,
    .backward              = local_backward,
    .free                  = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_local)
