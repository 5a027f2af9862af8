/* sparse.c — Sparse Transformer attention, fixed pattern (union of A¹ and A² in every head).
 *
 * Child, Gray, Radford, Sutskever, "Generating Long Sequences with Sparse Transformers", 2019,
 * arXiv 1904.10509, §4.3; attention-variants.md §3. With block length l and summary width c:
 *     A¹(i) = {j : ⌊j/l⌋ = ⌊i/l⌋}                 the query's own block,
 *     A²(i) = {j : j mod l ∈ {l − c, …, l − 1}}   the last c positions of every block,
 * N(i) = (A¹(i) ∪ A²(i)) ∩ real keys, exact softmax over it (B2, suite/attn_blocks.h).
 *
 * Decisions (lra-tasks.md §10 pitfall 21):
 *  - causal=0 (default) is the paper's pattern for an encoder: bidirectional. causal=1 is the
 *    LRA-compatibility switch: LRA's released module intersects every pattern with j <= i, also
 *    in the encoder. first_summary=1 adds LRA's other deviation, j mod l = 0 as a summary too.
 *  - cls=1 (default) follows LRA's use_cls_token: token 0 is the CLS token, the pattern is built
 *    on tokens 1 … T−1 (blocks start at token 1), and a full first row and column are added: CLS
 *    attends to every key and every query attends to CLS (also when causal). The paper has no
 *    CLS token; cls=0 applies the pattern to all T tokens from position 0.
 *
 * Complexity: per slice Σ_i |N(i)| ≤ T·(l + c·T/l) pairs, 4·Dh + 5 flops each, so
 *             O(T·(l + c·T/l)·Dh) forward and backward, O(T^1.5·Dh) with l ≈ √T.
 *             (LRA computed it as a masked dense T×T matrix; here only the listed keys are.)
 * Cache:   lse, (B, H, T): one float per query; backward recomputes the probabilities.
 * Scratch: per slice, one block's queries against its l + c·T/l keys: O(l·(l + c·T/l)).
 * Defaults: l = 50, c = 10, LRA's values (the paper: l ∈ {128, 256}, c ∈ {8, 16, 32}).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "attn_blocks.h"
#include "lra_attention.h"

typedef struct sparse_priv {
    int block;         /* l */
    int summary;       /* c */
    int causal;        /* LRA-compatibility: keys j <= i only */
    int first_summary; /* LRA-compatibility: j mod l = 0 is a summary position too */
    int cls;           /* token 0 is a global CLS row and column */
} sparse_priv;

static const lra_attn_option sparse_options[] = {
    {.name = "block", .help = "block length l (LRA 50)",
     .offset = offsetof(sparse_priv, block), .type = LRA_OPT_INT,
     .def = 50, .min = 1, .max = 1 << 20},
    {.name = "summary", .help = "summary width c: the last c positions of every block (LRA 10)",
     .offset = offsetof(sparse_priv, summary), .type = LRA_OPT_INT,
     .def = 10, .min = 0, .max = 1 << 20},
    {.name = "causal", .help = "keys j <= i only (LRA's released code, also in the encoder; "
                               "LRA-compatibility switch); 0 = the paper's bidirectional form",
     .offset = offsetof(sparse_priv, causal), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = "first_summary", .help = "also make the first position of every block a summary "
                                      "(LRA's Fixed2 pattern)",
     .offset = offsetof(sparse_priv, first_summary), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = "cls", .help = "token 0 attends to all and all attend to it; blocks start at 1 "
                            "(LRA's use_cls_token)",
     .offset = offsetof(sparse_priv, cls), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = NULL},
};

/* The pattern's geometry at one length. Pattern positions are token − origin. */
typedef struct sparse_geom {
    int T, origin; /* origin: 1 with a CLS token, else 0 */
    int block, summary, first_summary, causal;
    int n_blocks;  /* blocks over the T − origin pattern positions */
} sparse_geom;

/* Keys of query block t in increasing order: CLS, then per block m either the whole block
 * (m = t) or its summary positions. Pattern keys are banded: the band is j − i <= 0 when
 * causal, and unlimited otherwise. Causal queries skip the blocks after their own. */
static void sparse_block_keys(const sparse_geom *geo, int t, lra_blocks_sink *sink)
{
    const int l = geo->block, c = geo->summary;
    if (geo->origin) lra_blocks_keys(sink, 0, 1, 0);
    const int last = geo->causal ? t : geo->n_blocks - 1;
    for (int m = 0; m <= last; m++) {
        const int start = geo->origin + m * l;
        if (m == t) {
            lra_blocks_keys(sink, start, l, 1);
            continue;
        }
        if (geo->first_summary) lra_blocks_keys(sink, start, 1, 1);
        if (c > 0) lra_blocks_keys(sink, start + l - c, c, 1);
    }
}

/* Group 0 is the CLS row when there is one; the others are the query blocks. */
static void sparse_group(const void *arg, int h, int g, lra_blocks_sink *sink)
{
    (void)h;
    const sparse_geom *geo = arg;
    if (geo->origin && g == 0) {
        lra_blocks_queries(sink, 0, 1);
        lra_blocks_keys(sink, 0, geo->T, 0);
        return;
    }
    const int t = g - geo->origin;
    lra_blocks_queries(sink, geo->origin + t * geo->block, geo->block);
    sparse_block_keys(geo, t, sink);
}

static lra_blocks_pattern sparse_pattern(const lra_attn_ctx *ctx, sparse_geom *geo)
{
    const sparse_priv *opt = ctx->priv;
    const int T = ctx->shape.len, origin = opt->cls && T > 0 ? 1 : 0;
    *geo = (sparse_geom){
        .T = T, .origin = origin, .block = opt->block, .summary = opt->summary,
        .first_summary = opt->first_summary, .causal = opt->causal,
        .n_blocks = (T - origin + opt->block - 1) / opt->block,
    };
    return (lra_blocks_pattern){
        .n_groups = origin + geo->n_blocks,
        .group = sparse_group,
        .arg = geo,
        .band_lo = -(1 << 30),
        .band_hi = opt->causal ? 0 : 1 << 30,
    };
}

/* Pattern and its measured work at ctx->shape: what sizes(), flops() and the passes share. */
static lra_blocks_pattern sparse_setup(const lra_attn_ctx *ctx, sparse_geom *geo,
                                       lra_blocks_size *z)
{
    const lra_blocks_pattern p = sparse_pattern(ctx, geo);
    lra_blocks_measure(&p, ctx->shape.heads, ctx->shape.len, z);
    return p;
}

static float sparse_scale(const lra_attn_ctx *ctx)
{
    return 1.0f / sqrtf((float)ctx->shape.dim);
}

static void sparse_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    sparse_geom geo;
    lra_blocks_size z;
    sparse_setup(ctx, &geo, &z);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * ctx->shape.len,                         /* lse (B, H, T) */
        .n_scratch = slices * lra_blocks_scratch(&z, ctx->shape.dim), /* the largest group */
    };
}

static double sparse_flops(const lra_attn_ctx *ctx)
{
    sparse_geom geo;
    lra_blocks_size z;
    sparse_setup(ctx, &geo, &z);
    return ctx->shape.batch * lra_blocks_flops(&z, ctx->shape.dim);
}

static int sparse_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const sparse_priv *opt = ctx->priv;
    if (opt->block < 1 || opt->summary < 0 || opt->summary > opt->block) {
        snprintf(err, errlen, "need block >= 1 and 0 <= summary <= block, got block=%d "
                 "summary=%d", opt->block, opt->summary);
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

static void sparse_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                           float *out)
{
    sparse_geom geo;
    lra_blocks_size z;
    const lra_blocks_pattern p = sparse_setup(ctx, &geo, &z);
    lra_blocks_forward(ctx, &p, &z, sparse_scale(ctx), q, k, v, out);
}

static void sparse_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                            const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    (void)out; /* B2 recomputes P from the cached lse */
    sparse_geom geo;
    lra_blocks_size z;
    const lra_blocks_pattern p = sparse_setup(ctx, &geo, &z);
    lra_blocks_backward(ctx, &p, &z, sparse_scale(ctx), q, k, v, dout, dq, dk, dv);
}

const lra_attention lra_attn_sparse = {
    .abi_version           = LRA_ATTN_ABI_VERSION,
    .name                  = "sparse",
    .help                  = "Sparse Transformer fixed pattern (Child et al. 2019, arXiv "
                             "1904.10509); O(T (l + c T/l) Dh) time, O(T) memory",
    .flags                 = 0,
    .priv_size             = sizeof(sparse_priv),
    .options               = sparse_options,
    .check_options         = "block=4,summary=2",
    .softmax_limit_options = "block=8",
    .sizes                 = sparse_sizes,
    .flops                 = sparse_flops,
    .init                  = sparse_init,
    .forward               = sparse_forward,
    .backward              = sparse_backward,
    .free                  = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_sparse)
