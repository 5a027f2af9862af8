/* attn_blocks.h — attention over an arbitrary key set, executed as dense tiles (the B2 engine of
 * attention-variants.md §0.3).
 *
 * Local, Sparse Transformer, Longformer and BigBird attention are the same computation with a
 * different key set N(i) for every query i. A variant describes N(i) as a PATTERN: the queries
 * are split into groups (a query block, a strided group, the global rows), and each group lists
 * the key spans its queries may see. The engine then, per (batch, head) slice and per group,
 *   - expands the spans into sorted, duplicate-free key indices (a key listed twice counts once),
 *   - gathers the group's q rows and key/value rows into contiguous scratch (or uses them in
 *     place when they are one contiguous run),
 *   - computes the tile S = s·Q_g K_gᵀ with one cblas_sgemm, keeps per query only the keys that
 *     are real (key mask), allowed by the pattern's per-pair rules (causal, band), and
 *   - forward: lse_i = log Σ_{j∈N(i)} exp(S_ij), p_ij = exp(S_ij − lse_i), o_i = Σ_j p̃_ij v_j;
 *   - backward: recomputes p from the cached lse (B2), with optional attention dropout.
 * Masked keys are excluded exactly (never −1e9). A query whose N(i) is empty gets o_i = 0, its
 * lse is stored as +INFINITY (so any recomputed probability is 0) and it has no gradient.
 *
 * Cost of one slice: Σ_groups n_q·n_k·(4·Dh + 5) flops, where n_k counts the keys of the tile
 * (allowed or not). Cache: lse, one float per query. Scratch: lra_blocks_scratch() floats per
 * slice: index lists, the gathered rows of the largest non-contiguous group and two tiles of
 * at most LRA_BLOCKS_TILE floats — O(T) at most, whatever the pattern.
 *
 * Dropout (rate p) uses the same stream as attention/softmax.c: key
 * lra_attn_step_stream(ctx, bh), counter i·T + j, keep iff lra_uniform >= p; so a block
 * pattern that covers every key reproduces softmax exactly, dropout included.
 *
 * Threads: lra_blocks_forward/backward run one OpenMP loop over the B·H slices with
 * ctx->threads threads; each slice has its own scratch, so results do not depend on the thread
 * count. The *_slice functions do one slice, for variants that compose passes (Longformer's
 * global projections).
 */
#ifndef LRA_ATTN_BLOCKS_H
#define LRA_ATTN_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "lra_attention.h"

/* Where a pattern's group callback reports its spans. Opaque: the engine either records the
 * spans (execution) or only counts them (sizes, flops). */
typedef struct lra_blocks_sink lra_blocks_sink;

/* Queries [start, start + len), clipped to [0, T), belong to the current group. Spans of one
 * group must come in increasing order and be disjoint; every query belongs to at most one group
 * of a pattern (a query in no group is left untouched: its output and lse are not written). */
void lra_blocks_queries(lra_blocks_sink *sink, int start, int len);

/* The group's queries may see keys [start, start + len), clipped to [0, T). Calls within one
 * group must come in non-decreasing order of the clipped start; spans may overlap or repeat and
 * are merged (union). A span with banded = 1 is subject to the pattern's band rule; where a
 * banded and an unbanded span overlap, the key is unbanded (the union of what each allows). */
void lra_blocks_keys(lra_blocks_sink *sink, int start, int len, int banded);

/* A pattern: n_groups query groups, described by the callback `group`, plus per-pair rules. */
typedef struct lra_blocks_pattern {
    int n_groups;
    /* Reports group g of head h by calling lra_blocks_queries and lra_blocks_keys. Must be a
     * pure function of (arg, h, g). */
    void (*group)(const void *arg, int h, int g, lra_blocks_sink *sink);
    const void *arg;
    int causal;           /* 1: keep only keys j <= i */
    int band_lo, band_hi; /* banded keys: keep only band_lo <= j − i <= band_hi */
    size_t tile;          /* chunk tiles of at most this many floats; 0 = LRA_BLOCKS_TILE */
} lra_blocks_pattern;

/* The shape of a pattern's work at one length T, from a dry run over the groups of every head
 * given. */
typedef struct lra_blocks_size {
    size_t max_queries;        /* most queries in one group */
    size_t max_keys;           /* most distinct keys in one group */
    size_t max_tile;           /* largest tile of one chunk of rows (LRA_BLOCKS_TILE) */
    size_t max_gather_queries; /* most rows of one chunk whose queries are not one run */
    size_t max_gather_keys;    /* most keys of one group whose keys are not one run */
    double pairs;              /* Σ n_q·n_k over the groups of all `heads` heads given */
} lra_blocks_size;

/* By default a group runs in chunks of rows whose tile n_q·n_k stays within this many floats
 * (at least one row per chunk): global rows against every key then cost a few rows' tile of
 * scratch, not |G|·T. Contiguous query and key runs are used in place, never copied. */
#define LRA_BLOCKS_TILE ((size_t)1 << 16)

/* Dry run of heads 0 .. heads − 1 at length T. */
void lra_blocks_measure(const lra_blocks_pattern *p, int heads, int T, lra_blocks_size *out);

/* acc becomes a size that bounds both acc and z (for patterns run one after the other in the
 * same scratch); their pairs add up. */
void lra_blocks_size_join(lra_blocks_size *acc, const lra_blocks_size *z);

/* Floats of scratch one slice needs for a pattern of size z at head dimension D. */
size_t lra_blocks_scratch(const lra_blocks_size *z, int D);

/* Forward flops of the measured tiles: Q Kᵀ and P V (2·Dh each per pair, counted as
 * multiply-add = 2) plus about 5 for the softmax, per computed pair. */
double lra_blocks_flops(const lra_blocks_size *z, int D);

/* One (batch, head) slice. Arrays are (T, Dh) rows of that slice. */
typedef struct lra_blocks_slice {
    const float *q, *k, *v; /* (T, Dh) */
    const float *mask;      /* (T) 1 = real key */
    float *lse;             /* (T) forward writes, backward reads */
    float *scratch;         /* lra_blocks_scratch(&size, D) floats, this slice's own */
    lra_blocks_size size;   /* the measurement that sized scratch: bounds every group */
    int T, D, head;         /* head: passed to the pattern's callback */
    float scale;            /* s in S = s·Q Kᵀ */
    float drop;             /* dropout rate in [0, 1); 0 = off */
    uint64_t drop_key;      /* the slice's dropout stream (lra_blocks_drop_key) */
} lra_blocks_slice;

/* The dropout stream of slice bh = b·H + h (lra_attn_step_stream), shared with
 * attention/softmax.c. */
uint64_t lra_blocks_drop_key(const lra_attn_ctx *ctx, int bh);

/* The dropout rate in effect: ctx->dropout when training, else 0. */
float lra_blocks_drop_rate(const lra_attn_ctx *ctx);

/* ctx->threads, or the OpenMP default when it is 0. */
int lra_blocks_threads(const lra_attn_ctx *ctx);

/* Slice bh of the context: q, k, v, mask and dropout stream of that slice, lse at cache + bh·T,
 * scratch at ctx->scratch + bh·lra_blocks_scratch(z, D), head bh mod H. */
lra_blocks_slice lra_blocks_slice_at(const lra_attn_ctx *ctx, int bh, const lra_blocks_size *z,
                                     float scale, const float *q, const float *k,
                                     const float *v);

/* Writes out (T, Dh) rows and lse of the pattern's queries. */
void lra_blocks_forward_slice(const lra_blocks_pattern *p, const lra_blocks_slice *s, float *out);

/* Adds the gradients of the pattern's queries' outputs into dq, dk, dv (T, Dh), given dout
 * (T, Dh) and the lse forward stored. Reads neither out nor anything forward left in scratch. */
void lra_blocks_backward_slice(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                               const float *dout, float *dq, float *dk, float *dv);

/* Whole-batch forms for a plugin whose cache starts with lse (B, H, T) and whose scratch is
 * B·H·lra_blocks_scratch(z, D) floats, z measured at ctx->shape as in its sizes(): one OpenMP
 * loop over the slices (lra_blocks_slice_at). q, k, v, out, dout, dq, dk, dv: (B, H, T, Dh). */
void lra_blocks_forward(const lra_attn_ctx *ctx, const lra_blocks_pattern *p,
                        const lra_blocks_size *z, float scale, const float *q, const float *k,
                        const float *v, float *out);
void lra_blocks_backward(const lra_attn_ctx *ctx, const lra_blocks_pattern *p,
                         const lra_blocks_size *z, float scale, const float *q, const float *k,
                         const float *v, const float *dout, float *dq, float *dk, float *dv);

#endif
