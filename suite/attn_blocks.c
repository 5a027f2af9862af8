/* attn_blocks.c — attention over an arbitrary key set, as dense tiles (attention-variants.md
 * §0.3, B2). See attn_blocks.h for the pattern contract, cost and cache.
 *
 * Per group: expand the spans into index lists, gather, one sgemm for the logits, a masked row
 * softmax kept as lse, one sgemm for the output. Backward recomputes the same tile bit for bit
 * (same gathered operands, same BLAS call) and applies B2 with optional dropout.
 *
 * The index lists live in the slice's float scratch, stored and read only as int: the scratch
 * is allocated memory without a declared type, so each store through an int pointer gives those
 * bytes the effective type int (C11 6.5p6), and floats and ints are both 4 bytes.
 */
#include "attn_blocks.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "lra_rng.h"
#include "lra_vmath.h"
#include "util.h"

_Static_assert(sizeof(int) == sizeof(float), "index lists are carved out of float scratch");

struct lra_blocks_sink {
    int T;
    int counting;      /* 1: count only (measure), 0: record the index lists */
    int *qidx;         /* (cap_q) query indices, increasing */
    int *kidx, *kband; /* (cap_k) key indices, increasing, and 1 where banded */
    size_t cap_q, cap_k;
    size_t nq, nk;
    int q_gap, k_gap;  /* 1: the queries, the keys are not one contiguous run */
    int last_q;        /* end of the previous query span, for the order check */
    int last_start;    /* start of the previous key span, for the order check */
    int covered;       /* end of the union of the key spans so far */
};

/* Clips [start, start + len) to [0, T); returns 0 when nothing is left. */
static int blocks_clip(int T, int start, int len, int *a, int *b)
{
    *a = start < 0 ? 0 : start;
    *b = start + len > T ? T : start + len;
    return *b > *a;
}

void lra_blocks_queries(lra_blocks_sink *sink, int start, int len)
{
    int a, b;
    if (!blocks_clip(sink->T, start, len, &a, &b)) return;
    LRA_ASSERT(a >= sink->last_q); /* increasing and disjoint */
    if (sink->nq > 0 && a > sink->last_q) sink->q_gap = 1;
    sink->last_q = b;
    for (int i = a; i < b; i++) {
        if (!sink->counting) {
            LRA_ASSERT(sink->nq < sink->cap_q);
            sink->qidx[sink->nq] = i;
        }
        sink->nq++;
    }
}

void lra_blocks_keys(lra_blocks_sink *sink, int start, int len, int banded)
{
    int a, b;
    if (!blocks_clip(sink->T, start, len, &a, &b)) return;
    LRA_ASSERT(a >= sink->last_start); /* non-decreasing starts make the sweep a union */
    sink->last_start = a;
    if (sink->nk > 0 && a > sink->covered) sink->k_gap = 1;
    /* Every earlier span starts at or before a, so the keys already listed at or after a are
     * exactly [a, covered): the last covered − a entries. An unbanded span unbands them. */
    if (!sink->counting && !banded && sink->covered > a) {
        const int end = b < sink->covered ? b : sink->covered;
        const size_t first = sink->nk - (size_t)(sink->covered - a);
        for (int j = a; j < end; j++) sink->kband[first + (size_t)(j - a)] = 0;
    }
    for (int j = a > sink->covered ? a : sink->covered; j < b; j++) {
        if (!sink->counting) {
            LRA_ASSERT(sink->nk < sink->cap_k);
            sink->kidx[sink->nk] = j;
            sink->kband[sink->nk] = banded;
        }
        sink->nk++;
    }
    if (b > sink->covered) sink->covered = b;
}

/* An empty sink for the next group. */
static void blocks_sink_reset(lra_blocks_sink *sink)
{
    sink->nq = sink->nk = 0;
    sink->q_gap = sink->k_gap = 0;
    sink->last_q = sink->last_start = sink->covered = 0;
}

/* Queries per chunk of a group of nq queries and nk keys: a group runs in chunks of rows (rows
 * are independent) so that one tile stays within the pattern's tile budget, at least one row.
 * Global rows against all T keys then need a few rows' tile, not |G|·T. */
static size_t blocks_chunk(const lra_blocks_pattern *p, size_t nq, size_t nk)
{
    const size_t budget = p->tile ? p->tile : LRA_BLOCKS_TILE;
    const size_t rows = nk > 0 && nk < budget ? budget / nk : 1;
    return rows < nq ? rows : nq;
}

void lra_blocks_measure(const lra_blocks_pattern *p, int heads, int T, lra_blocks_size *out)
{
    lra_blocks_sink sink = {.T = T, .counting = 1};
    *out = (lra_blocks_size){0};
    for (int h = 0; h < heads; h++)
        for (int g = 0; g < p->n_groups; g++) {
            blocks_sink_reset(&sink);
            p->group(p->arg, h, g, &sink);
            const size_t chunk = blocks_chunk(p, sink.nq, sink.nk);
            const size_t tile = chunk * sink.nk;
#define BLOCKS_MAX(field, x) if ((x) > out->field) out->field = (x)
            BLOCKS_MAX(max_queries, sink.nq);
            BLOCKS_MAX(max_keys, sink.nk);
            BLOCKS_MAX(max_tile, tile);
            if (sink.q_gap) BLOCKS_MAX(max_gather_queries, chunk);
            if (sink.k_gap) BLOCKS_MAX(max_gather_keys, sink.nk);
#undef BLOCKS_MAX
            out->pairs += (double)sink.nq * sink.nk;
        }
}

void lra_blocks_size_join(lra_blocks_size *acc, const lra_blocks_size *z)
{
#define BLOCKS_JOIN(field) if (z->field > acc->field) acc->field = z->field
    BLOCKS_JOIN(max_queries);
    BLOCKS_JOIN(max_keys);
    BLOCKS_JOIN(max_tile);
    BLOCKS_JOIN(max_gather_queries);
    BLOCKS_JOIN(max_gather_keys);
#undef BLOCKS_JOIN
    acc->pairs += z->pairs;
}

/* The slice's scratch, carved in a fixed order. Rows are gathered only when they are not one
 * contiguous run, so the row buffers are sized by the largest gathered set. */
typedef struct blocks_work {
    int *qidx;              /* (max_q) */
    int *kidx, *kband;      /* (max_k) each */
    float *Qg, *dOg, *Og;   /* (max_gather_q, Dh) each; Og also holds dQ_g in backward */
    float *Kg, *Vg;         /* (max_gather_k, Dh) each */
    float *dKg, *dVg;       /* (max_gather_k, Dh) each */
    float *S, *W;           /* (max_tile) each: one chunk's tile, row-major (n_q, n_k) */
    size_t cap_q, cap_k, cap_tile, cap_gather_q, cap_gather_k;
} blocks_work;

/* Layout of blocks_work: returns the floats it takes; fills w when base is not NULL. */
static size_t blocks_layout(const lra_blocks_size *z, int D, float *base, blocks_work *w)
{
    const size_t mq = z->max_queries, mk = z->max_keys, d = (size_t)D;
    const size_t gq = z->max_gather_queries * d, gk = z->max_gather_keys * d;
    const size_t n_int = mq + 2 * mk;
    const size_t total = n_int + 3 * gq + 4 * gk + 2 * z->max_tile;
    if (!base) return total;
    int *ints = (int *)(void *)base;
    float *f = base + n_int;
    *w = (blocks_work){
        .qidx = ints, .kidx = ints + mq, .kband = ints + mq + mk,
        .Qg = f, .dOg = f + gq, .Og = f + 2 * gq,
        .Kg = f + 3 * gq, .Vg = f + 3 * gq + gk, .dKg = f + 3 * gq + 2 * gk,
        .dVg = f + 3 * gq + 3 * gk,
        .S = f + 3 * gq + 4 * gk, .W = f + 3 * gq + 4 * gk + z->max_tile,
        .cap_q = mq, .cap_k = mk, .cap_tile = z->max_tile,
        .cap_gather_q = z->max_gather_queries, .cap_gather_k = z->max_gather_keys,
    };
    return total;
}

size_t lra_blocks_scratch(const lra_blocks_size *z, int D)
{
    return blocks_layout(z, D, NULL, NULL);
}

double lra_blocks_flops(const lra_blocks_size *z, int D)
{
    return z->pairs * (4.0 * D + 5.0);
}

uint64_t lra_blocks_drop_key(const lra_attn_ctx *ctx, int bh)
{
    return lra_attn_step_stream(ctx, bh);
}

float lra_blocks_drop_rate(const lra_attn_ctx *ctx)
{
    return ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
}

int lra_blocks_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

/* One group of a slice, or a chunk of its rows: index lists and whether they are runs. */
typedef struct blocks_group {
    size_t nq, nk;
    const int *qidx, *kidx, *kband; /* (nq), (nk), (nk) */
    int q_run, k_run;               /* 1: the indices are one contiguous run */
} blocks_group;

/* Records group g of the slice into w. */
static blocks_group blocks_group_load(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                                      blocks_work *w, int g)
{
    lra_blocks_sink sink = {.T = s->T, .qidx = w->qidx, .kidx = w->kidx, .kband = w->kband,
                            .cap_q = w->cap_q, .cap_k = w->cap_k};
    blocks_sink_reset(&sink);
    p->group(p->arg, s->head, g, &sink);
    blocks_group grp = {.nq = sink.nq, .nk = sink.nk, .qidx = w->qidx, .kidx = w->kidx,
                        .kband = w->kband};
    /* Both lists increase strictly, so they are one run iff they span exactly n indices. */
    grp.q_run = grp.nq > 0 && (size_t)(grp.qidx[grp.nq - 1] - grp.qidx[0]) == grp.nq - 1;
    grp.k_run = grp.nk > 0 && (size_t)(grp.kidx[grp.nk - 1] - grp.kidx[0]) == grp.nk - 1;
    LRA_ASSERT(grp.k_run || grp.nk <= w->cap_gather_k);
    return grp;
}

/* Rows [r0, r0 + n) of the group, with the group's keys. */
static blocks_group blocks_chunk_of(const blocks_group *grp, const blocks_work *w, size_t r0,
                                    size_t n)
{
    blocks_group c = *grp;
    c.qidx = grp->qidx + r0;
    c.nq = n;
    c.q_run = (size_t)(c.qidx[n - 1] - c.qidx[0]) == n - 1;
    LRA_ASSERT(n * c.nk <= w->cap_tile && (c.q_run || n <= w->cap_gather_q));
    return c;
}

/* The rows idx[0..n) of src (·, D): in place when they are one run, else copied into dst. */
static const float *blocks_rows(const float *src, const int *idx, size_t n, int run, int D,
                                float *dst)
{
    if (run) return src + (size_t)idx[0] * D;
    for (size_t r = 0; r < n; r++)
        memcpy(dst + r * D, src + (size_t)idx[r] * D, (size_t)D * sizeof(float));
    return dst;
}

/* dst rows idx[0..n) += src rows (n, D). */
static void blocks_scatter_add(float *dst, const int *idx, size_t n, int D, const float *src)
{
    for (size_t r = 0; r < n; r++) {
        float *row = dst + (size_t)idx[r] * D;
        for (int e = 0; e < D; e++) row[e] += src[r * D + e];
    }
}

/* Whether query i may see key j (real, causal rule, band rule for banded keys). */
static inline int blocks_allowed(const lra_blocks_pattern *p, const float *mask, int i, int j,
                                 int banded)
{
    if (mask[j] == 0.0f) return 0;
    if (p->causal && j > i) return 0;
    return !banded || (j - i >= p->band_lo && j - i <= p->band_hi);
}

/* S = s·Q_g K_gᵀ for the group: the (nq, nk) logits tile. */
static void blocks_logits(const lra_blocks_slice *s, const blocks_group *grp, const float *Qg,
                          const float *Kg, float *S)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)grp->nq, (int)grp->nk, s->D,
                s->scale, Qg, s->D, Kg, s->D, 0.0f, S, (int)grp->nk);
}

/* Row r of the tile (query i): logits of keys query i may not see become −∞, so that the
 * exponentials below are branch-free loops over lra_expf (vectorised; lra_expf(−∞) = 0).
 * Returns the row's largest allowed logit (−∞ when none). */
static float blocks_mask_row(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                             const blocks_group *grp, int i, float *row)
{
    float mx = -INFINITY;
    for (size_t c = 0; c < grp->nk; c++) {
        if (!blocks_allowed(p, s->mask, i, grp->kidx[c], grp->kband[c]))
            row[c] = -INFINITY;
        else if (row[c] > mx)
            mx = row[c];
    }
    return mx;
}

/* row = exp(row − lse) in place (lse = +∞ gives 0s): the same float expression in forward and
 * backward, so backward's recomputed P equals forward's bit for bit. */
static void blocks_exp_row(float *row, size_t n, float lse)
{
    for (size_t c = 0; c < n; c++) row[c] = lra_expf(row[c] - lse);
}

/* In place: the logits tile becomes P over each query's allowed keys (0 elsewhere), and lse
 * is written for each query (+INFINITY when it has no allowed key). */
static void blocks_softmax(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                           const blocks_group *grp, float *S)
{
    for (size_t r = 0; r < grp->nq; r++) {
        const int i = grp->qidx[r];
        float *row = S + r * grp->nk; /* (nk) */
        const float mx = blocks_mask_row(p, s, grp, i, row);
        float lse = INFINITY;
        if (mx > -INFINITY) {
            /* BLOCKS_LANES independent float partial sums (so the loop vectorises without
             * reassociation), added in a fixed order in double: deterministic. */
            enum { BLOCKS_LANES = 16 };
            float acc[BLOCKS_LANES] = {0.0f};
            size_t c = 0;
            for (; c + BLOCKS_LANES <= grp->nk; c += BLOCKS_LANES)
                for (int l = 0; l < BLOCKS_LANES; l++) acc[l] += lra_expf(row[c + l] - mx);
            double sum = 0.0;
            for (; c < grp->nk; c++) sum += lra_expf(row[c] - mx);
            for (int l = 0; l < BLOCKS_LANES; l++) sum += acc[l];
            lse = mx + (float)log(sum);
        }
        s->lse[i] = lse;
        blocks_exp_row(row, grp->nk, lse);
    }
}

/* Backward recomputation: the logits tile becomes P from the cached lse. */
static void blocks_probs(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                         const blocks_group *grp, float *S)
{
    for (size_t r = 0; r < grp->nq; r++) {
        float *row = S + r * grp->nk; /* (nk) */
        blocks_mask_row(p, s, grp, grp->qidx[r], row);
        blocks_exp_row(row, grp->nk, s->lse[grp->qidx[r]]);
    }
}

/* dst = src ∘ Z/(1−p) over the tile, Z_ij = [lra_uniform(key, i·T + j) >= p]: the stream of
 * softmax.c, indexed by the true positions. dst may equal src. */
static void blocks_dropout(const lra_blocks_slice *s, const blocks_group *grp, float *dst,
                           const float *src)
{
    const float inv_keep = 1.0f / (1.0f - s->drop);
    for (size_t r = 0; r < grp->nq; r++) {
        const uint64_t row = (uint64_t)grp->qidx[r] * (uint64_t)s->T;
        for (size_t c = 0; c < grp->nk; c++) {
            const size_t rc = r * grp->nk + c;
            const uint64_t counter = row + (uint64_t)grp->kidx[c];
            dst[rc] = lra_uniform(s->drop_key, counter) >= s->drop ? src[rc] * inv_keep : 0.0f;
        }
    }
}

/* One chunk of rows in forward: O_c = P̃ V_g and lse, given the group's K_g, V_g. */
static void blocks_forward_chunk(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                                 blocks_work *w, const blocks_group *c, const float *Kg,
                                 const float *Vg, float *out)
{
    const int D = s->D, nq = (int)c->nq, nk = (int)c->nk;
    const float *Qc = blocks_rows(s->q, c->qidx, c->nq, c->q_run, D, w->Qg); /* (nq, Dh) */
    blocks_logits(s, c, Qc, Kg, w->S);
    blocks_softmax(p, s, c, w->S);
    const float *Pd = w->S; /* (nq, nk) P̃ = P when dropout is off */
    if (s->drop > 0.0f) {
        blocks_dropout(s, c, w->W, w->S);
        Pd = w->W;
    }
    /* O_c = P̃ V_g, straight into out when the queries are one run. */
    float *Oc = c->q_run ? out + (size_t)c->qidx[0] * D : w->Og; /* (nq, Dh) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, D, nk, 1.0f, Pd, nk, Vg, D, 0.0f,
                Oc, D);
    if (!c->q_run)
        for (int r = 0; r < nq; r++)
            memcpy(out + (size_t)c->qidx[r] * D, Oc + (size_t)r * D, (size_t)D * sizeof(float));
}

static void blocks_forward_group(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                                 blocks_work *w, int g, float *out)
{
    const blocks_group grp = blocks_group_load(p, s, w, g);
    if (grp.nq == 0) return;
    if (grp.nk == 0) { /* no key at all: o = 0, and nothing to recompute in backward */
        for (size_t r = 0; r < grp.nq; r++) {
            s->lse[grp.qidx[r]] = INFINITY;
            memset(out + (size_t)grp.qidx[r] * s->D, 0, (size_t)s->D * sizeof(float));
        }
        return;
    }
    const float *Kg = blocks_rows(s->k, grp.kidx, grp.nk, grp.k_run, s->D, w->Kg); /* (nk, Dh) */
    const float *Vg = blocks_rows(s->v, grp.kidx, grp.nk, grp.k_run, s->D, w->Vg); /* (nk, Dh) */
    const size_t chunk = blocks_chunk(p, grp.nq, grp.nk);
    for (size_t r0 = 0; r0 < grp.nq; r0 += chunk) {
        const size_t n = grp.nq - r0 < chunk ? grp.nq - r0 : chunk;
        const blocks_group c = blocks_chunk_of(&grp, w, r0, n);
        blocks_forward_chunk(p, s, w, &c, Kg, Vg, out);
    }
}

/* One chunk of rows in backward. dQ is added into dq; dK_g and dV_g (nk, Dh) go to dkg and dvg
 * as C = product + beta·C (beta 0 for the first chunk of a gathered key set, else 1). */
static void blocks_backward_chunk(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                                  blocks_work *w, const blocks_group *c, const float *Kg,
                                  const float *Vg, const float *dout, float *dq, float *dkg,
                                  float *dvg, float beta)
{
    const int D = s->D, nq = (int)c->nq, nk = (int)c->nk;
    const float *Qc = blocks_rows(s->q, c->qidx, c->nq, c->q_run, D, w->Qg);   /* (nq, Dh) */
    const float *dOc = blocks_rows(dout, c->qidx, c->nq, c->q_run, D, w->dOg); /* (nq, Dh) */
    float *P = w->S, *G = w->W; /* (nq, nk) each */

    /* forward was p_ij = exp(s·q_i·k_j − lse_i) over N(i), so recompute P from the cache. */
    blocks_logits(s, c, Qc, Kg, P);
    blocks_probs(p, s, c, P);

    /* forward was O = P̃ V, so dV += P̃ᵀ dO and dP̃ = dO Vᵀ. */
    const float *Pd = P;
    if (s->drop > 0.0f) {
        blocks_dropout(s, c, G, P);
        Pd = G;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, nq, 1.0f, Pd, nk, dOc, D, beta,
                dvg, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, D, 1.0f, dOc, D, Vg, D, 0.0f, G,
                nk);

    /* forward was P̃ = P ∘ Z/(1−p), so dP = dP̃ ∘ Z/(1−p), with Z regenerated. */
    if (s->drop > 0.0f) blocks_dropout(s, c, G, G);

    /* forward was P = softmax over N(i), so dS = P ∘ (dP − D_i), D_i = Σ_j P_ij dP_ij over
     * the row, which lies wholly in this tile (a query belongs to one group). */
    for (int r = 0; r < nq; r++) {
        const float *pr = P + (size_t)r * nk; /* (nk) */
        float *gr = G + (size_t)r * nk;       /* (nk) */
        double d = 0.0;
        for (int col = 0; col < nk; col++) d += (double)pr[col] * gr[col];
        for (int col = 0; col < nk; col++) gr[col] = pr[col] * (gr[col] - (float)d);
    }

    /* forward was S = s·Q Kᵀ, so dQ += s·dS K and dK += s·dSᵀ Q. */
    float *dQc = c->q_run ? dq + (size_t)c->qidx[0] * D : w->Og; /* (nq, Dh) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, D, nk, s->scale, G, nk, Kg, D,
                c->q_run ? 1.0f : 0.0f, dQc, D);
    if (!c->q_run) blocks_scatter_add(dq, c->qidx, c->nq, D, dQc);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, nq, s->scale, G, nk, Qc, D, beta,
                dkg, D);
}

static void blocks_backward_group(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                                  blocks_work *w, int g, const float *dout, float *dq, float *dk,
                                  float *dv)
{
    const blocks_group grp = blocks_group_load(p, s, w, g);
    if (grp.nq == 0 || grp.nk == 0) return;
    const int D = s->D;
    const float *Kg = blocks_rows(s->k, grp.kidx, grp.nk, grp.k_run, D, w->Kg); /* (nk, Dh) */
    const float *Vg = blocks_rows(s->v, grp.kidx, grp.nk, grp.k_run, D, w->Vg); /* (nk, Dh) */
    /* dK_g, dV_g: straight into dk, dv when the keys are one run, else summed over the chunks
     * in dKg, dVg and scattered once. */
    const size_t k0 = (size_t)grp.kidx[0] * D;
    float *dkg = grp.k_run ? dk + k0 : w->dKg, *dvg = grp.k_run ? dv + k0 : w->dVg;
    const size_t chunk = blocks_chunk(p, grp.nq, grp.nk);
    for (size_t r0 = 0; r0 < grp.nq; r0 += chunk) {
        const size_t n = grp.nq - r0 < chunk ? grp.nq - r0 : chunk;
        const blocks_group c = blocks_chunk_of(&grp, w, r0, n);
        const float beta = grp.k_run || r0 > 0 ? 1.0f : 0.0f;
        blocks_backward_chunk(p, s, w, &c, Kg, Vg, dout, dq, dkg, dvg, beta);
    }
    if (!grp.k_run) {
        blocks_scatter_add(dk, grp.kidx, grp.nk, D, w->dKg);
        blocks_scatter_add(dv, grp.kidx, grp.nk, D, w->dVg);
    }
}

void lra_blocks_forward_slice(const lra_blocks_pattern *p, const lra_blocks_slice *s, float *out)
{
    blocks_work w;
    blocks_layout(&s->size, s->D, s->scratch, &w);
    for (int g = 0; g < p->n_groups; g++) blocks_forward_group(p, s, &w, g, out);
}

void lra_blocks_backward_slice(const lra_blocks_pattern *p, const lra_blocks_slice *s,
                               const float *dout, float *dq, float *dk, float *dv)
{
    blocks_work w;
    blocks_layout(&s->size, s->D, s->scratch, &w);
    for (int g = 0; g < p->n_groups; g++) blocks_backward_group(p, s, &w, g, dout, dq, dk, dv);
}

lra_blocks_slice lra_blocks_slice_at(const lra_attn_ctx *ctx, int bh, const lra_blocks_size *z,
                                     float scale, const float *q, const float *k, const float *v)
{
    const int H = ctx->shape.heads, T = ctx->shape.len, D = ctx->shape.dim;
    const size_t off = (size_t)bh * T * D;
    return (lra_blocks_slice){
        .q = q + off, .k = k + off, .v = v + off,
        .mask = ctx->key_mask + (size_t)(bh / H) * T,
        .lse = ctx->cache + (size_t)bh * T,
        .scratch = ctx->scratch + (size_t)bh * lra_blocks_scratch(z, D),
        .size = *z,
        .T = T, .D = D, .head = bh % H,
        .scale = scale,
        .drop = lra_blocks_drop_rate(ctx),
        .drop_key = lra_blocks_drop_key(ctx, bh),
    };
}

void lra_blocks_forward(const lra_attn_ctx *ctx, const lra_blocks_pattern *p,
                        const lra_blocks_size *z, float scale, const float *q, const float *k,
                        const float *v, float *out)
{
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)ctx->shape.len * ctx->shape.dim;
#pragma omp parallel for schedule(static) num_threads(lra_blocks_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const lra_blocks_slice s = lra_blocks_slice_at(ctx, bh, z, scale, q, k, v);
        lra_blocks_forward_slice(p, &s, out + bh * TD);
    }
}

void lra_blocks_backward(const lra_attn_ctx *ctx, const lra_blocks_pattern *p,
                         const lra_blocks_size *z, float scale, const float *q, const float *k,
                         const float *v, const float *dout, float *dq, float *dk, float *dv)
{
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)ctx->shape.len * ctx->shape.dim;
#pragma omp parallel for schedule(static) num_threads(lra_blocks_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const lra_blocks_slice s = lra_blocks_slice_at(ctx, bh, z, scale, q, k, v);
        lra_blocks_backward_slice(p, &s, dout + bh * TD, dq + bh * TD, dk + bh * TD,
                                  dv + bh * TD);
    }
}
