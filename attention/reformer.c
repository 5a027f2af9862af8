/* reformer.c — Reformer LSH attention with a shared query-key space.
 *
 * Kitaev, Kaiser, Levskaya, "Reformer: The Efficient Transformer", ICLR 2020, arXiv 2001.04451.
 * attention-variants.md §6. For each (batch, head) slice, with s = 1/sqrt(Dh) by default:
 *  1. Shared QK: the keys are the normalised queries, k̂_j = q_j/‖q_j‖. The k input is IGNORED
 *     and dk is left untouched (it receives no gradient: the output does not depend on k).
 *  2. Angular LSH per round r: h_r(x) = argmax [x R_r ; −x R_r], R_r a Gaussian Dh × buckets/2
 *     matrix (buckets = 1: one bucket, no hashing). R_r is drawn per head and round from
 *     ctx->seed (fixed), or from ctx->seed and ctx->step with `redraw`; it is regenerated from
 *     lra_rng when needed, never stored.
 *  3. The REAL tokens are sorted by (bucket, position) and the sorted order is cut into chunks
 *     of length c (option `chunk`; 0 derives c = ceil(2T / buckets), the paper's choice of
 *     twice the mean bucket size). Chunk g attends to itself and to chunk (g − 1) mod n_c, the
 *     wrap-around of the trax/LRA code; with one chunk it attends to itself only.
 *  4. A query never attends to itself unless it has no other target (q_i·k̂_i is maximal under
 *     shared QK). Per round: a_ij = s·q_i·k̂_j, lse_ir, o_ir as in B2.
 *  5. Rounds combine by their log-sum-exp: w_ir = exp(lse_ir − lse_r'(lse_ir')),
 *     o_i = Σ_r w_ir o_ir (no duplicate-key correction, as in trax and HuggingFace).
 * Padding is exact: padded tokens are neither hashed nor sorted, so they are no key of anyone
 * and cannot even shift the chunk boundaries of the real tokens. Padded queries output 0.
 *
 * Deviations from LRA's code (lra-tasks.md §10 pitfall 21), each as the paper describes it:
 * LRA keeps the keys un-normalised, has no self-exclusion or padding mask, cuts the sorted order
 * of all rounds together into buckets·hashes chunks (chunk = T/buckets: set `chunk` for that),
 * hashes with the same rotations in every layer and call, and MULTIPLIES the logits by sqrt(Dh)
 * (option `lra_scale` reproduces that last one). trax and HuggingFace scale the keys to norm
 * sqrt(Dh) and divide by sqrt(Dh), i.e. their logits are q_i·k̂_j: that is `scale=1`.
 *
 * Complexity: O(hashes·T·(2c·Dh + buckets·Dh)) time each way plus an O(T) counting sort per
 * round (with the default c = 2T/buckets the 2c·Dh term makes it O(T²·Dh/buckets)); memory
 * O(hashes·T·Dh) for the per-round outputs.
 *
 * Cache (per slice, floats): perm (hashes, T) sorted order of each round, as float-encoded
 *         positions (exact below 2^24), −1 past the real tokens; bucket (hashes, T) each token's
 *         bucket, −1 for padding; lse (hashes, T) lse_ir; o (hashes, T, Dh) o_ir. With
 *         ctx->freeze_choices forward reuses perm and bucket and recomputes everything else.
 * Scratch (per slice): the rotation, the normalised keys, q, k̂, v and their gradients
 *         gathered in sorted order (T, Dh) each, and two rows × 2c tile matrices: a chunk's
 *         queries run in tiles of rows = min(c, REFORMER_ROWS), so scratch is O(T·Dh) although
 *         c grows with T (whole c × 2c chunk matrices were quadratic: 3 GB at Path-X).
 * Threads: one OpenMP loop over the B·H slices; BLAS runs single-threaded inside it.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lra_attention.h"
#include "lra_rng.h"
#include "lra_vmath.h"

enum { REFORMER_MAX_HASHES = 64 }; /* bounds the per-query round weights kept on the stack */
/* Query rows of a chunk processed at once. The chunk grows with T (c = 2T/buckets), so a whole
 * c × 2c logit matrix would make scratch quadratic in T (3 GB at T = 16384, batch 8); a tile of
 * rows keeps it O(REFORMER_ROWS·c) = O(T) per slice and in cache. */
enum { REFORMER_ROWS = 64 };

typedef struct reformer_priv {
    int buckets;   /* n_b: 1, or even */
    int hashes;    /* n_r rounds */
    int chunk;     /* c; 0 = ceil(2T / n_b) */
    int redraw;    /* draw rotations per step instead of once */
    double scale;  /* logit scale; 0 = 1/sqrt(Dh) */
    int lra_scale; /* LRA's logits times sqrt(Dh) */
} reformer_priv;

static const lra_attn_option reformer_options[] = {
    {.name = "buckets", .help = "hash buckets per round (1, or even)",
     .offset = offsetof(reformer_priv, buckets), .type = LRA_OPT_INT,
     .def = 10, .min = 1, .max = 65536},
    {.name = "hashes", .help = "hashing rounds, combined by log-sum-exp weights",
     .offset = offsetof(reformer_priv, hashes), .type = LRA_OPT_INT,
     .def = 1, .min = 1, .max = REFORMER_MAX_HASHES},
    {.name = "chunk", .help = "chunk length of the sorted order; 0 = ceil(2 T / buckets)",
     .offset = offsetof(reformer_priv, chunk), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 1 << 24},
    {.name = "redraw", .help = "redraw the random rotations every optimiser step",
     .offset = offsetof(reformer_priv, redraw), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = "scale", .help = "logit scale s; 0 = 1/sqrt(head dim); 1 = trax/HuggingFace",
     .offset = offsetof(reformer_priv, scale), .type = LRA_OPT_FLOAT,
     .def = 0.0, .min = 0.0, .max = 1e3},
    {.name = "lra_scale", .help = "LRA compatibility: multiply the logits by sqrt(head dim)",
     .offset = offsetof(reformer_priv, lra_scale), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = NULL},
};

/* Everything the slice loops need, derived once per call from the shape and the options. */
typedef struct reformer_dims {
    int T, D, nb, half, nr, c; /* tokens, head dim, buckets, buckets/2, rounds, chunk */
    float s;                   /* logit scale */
    float rate;                /* attention dropout in effect */
} reformer_dims;

static reformer_dims reformer_dims_of(const lra_attn_ctx *ctx)
{
    const reformer_priv *opt = ctx->priv;
    reformer_dims d = {.T = ctx->shape.len, .D = ctx->shape.dim, .nb = opt->buckets,
                       .half = opt->buckets / 2, .nr = opt->hashes};
    d.c = opt->chunk > 0 ? opt->chunk : (2 * d.T + d.nb - 1) / d.nb;
    if (d.c > d.T) d.c = d.T;
    if (d.c < 1) d.c = 1;
    const float sd = sqrtf((float)d.D);
    d.s = opt->lra_scale ? sd : opt->scale > 0.0 ? (float)opt->scale : 1.0f / sd;
    d.rate = ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
    return d;
}

static int reformer_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

/* ---- memory layout ---------------------------------------------------------------------- */

typedef struct reformer_cache {
    float *perm;   /* (nr, T) sorted order of each round; −1 past the real tokens */
    float *bucket; /* (nr, T) bucket of each position; −1 for padding */
    float *lse;    /* (nr, T) lse_ir */
    float *o;      /* (nr, T, Dh) o_ir */
} reformer_cache;

typedef struct reformer_work {
    float *rot;             /* (Dh, nb/2) rotation of the current round */
    float *inv;             /* (T) 1/‖q_j‖ */
    float *kn;              /* (T, Dh) shared keys k̂_j */
    float *sq, *sk, *sv;    /* (T, Dh) q, k̂, v gathered in sorted order */
    float *so;              /* (T, Dh) sorted o_ir (forward) or w_ir·do_i (backward) */
    float *sl, *sd;         /* (T) sorted lse_ir; sorted w_ir·(do_i·o_i) (backward) */
    float *dsq, *dsk, *dsv; /* (T, Dh) gradients in sorted order */
    float *dkn;             /* (T, Dh) gradient of k̂ */
    float *a, *g;           /* (rows, 2c) logits → probabilities; P̃, then its gradient */
    float *cnt;             /* (nb + 1) counting-sort offsets */
} reformer_work;

static size_t reformer_cache_floats(const reformer_dims *d)
{
    return (size_t)d->nr * d->T * (3 + (size_t)d->D);
}

/* Rows of one tile: REFORMER_ROWS, or the chunk if shorter. */
static int reformer_rows(const reformer_dims *d)
{
    return d->c < REFORMER_ROWS ? d->c : REFORMER_ROWS;
}

static size_t reformer_scratch_floats(const reformer_dims *d)
{
    const size_t TD = (size_t)d->T * d->D;
    return (size_t)d->D * d->half + 3 * (size_t)d->T + 9 * TD +
           4 * (size_t)reformer_rows(d) * d->c + (size_t)d->nb + 1;
}

static reformer_cache reformer_cache_at(const lra_attn_ctx *ctx, const reformer_dims *d, int bh)
{
    float *base = ctx->cache + (size_t)bh * reformer_cache_floats(d);
    const size_t nT = (size_t)d->nr * d->T;
    return (reformer_cache){.perm = base, .bucket = base + nT, .lse = base + 2 * nT,
                            .o = base + 3 * nT};
}

static reformer_work reformer_work_at(const lra_attn_ctx *ctx, const reformer_dims *d, int bh)
{
    float *p = ctx->scratch + (size_t)bh * reformer_scratch_floats(d);
    const size_t TD = (size_t)d->T * d->D, CC = 2 * (size_t)reformer_rows(d) * d->c;
    reformer_work w;
    w.rot = p, p += (size_t)d->D * d->half;
    w.inv = p, p += d->T;
    w.sl = p, p += d->T;
    w.sd = p, p += d->T;
    float **mats[] = {&w.kn, &w.sq, &w.sk, &w.sv, &w.so, &w.dsq, &w.dsk, &w.dsv, &w.dkn};
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) *mats[i] = p, p += TD;
    w.a = p, p += CC;
    w.g = p, p += CC;
    w.cnt = p;
    return w;
}

/* ---- hashing and sorting ---------------------------------------------------------------- */

/* The random stream of a per-slice draw: rotations per (head, round), dropout per (slice,
 * round). Rotations are fixed by ctx->seed unless `redraw`; dropout always follows the step. */
static uint64_t reformer_rot_key(const lra_attn_ctx *ctx, int h, int r)
{
    const reformer_priv *opt = ctx->priv;
    const uint64_t base = opt->redraw ? lra_key(ctx->seed, ctx->step) : ctx->seed;
    return lra_key(lra_key(lra_key(base, 0x4c5348u), (uint64_t)h), (uint64_t)r);
}

static uint64_t reformer_drop_key(const lra_attn_ctx *ctx, int bh, int r)
{
    return lra_key(lra_attn_step_stream(ctx, bh), (uint64_t)r);
}

static void reformer_draw_rotation(float *rot, int D, int half, uint64_t key)
{
    for (size_t i = 0; i < (size_t)D * half; i++) rot[i] = lra_normal(key, i);
}

/* h(x) = argmax over the concatenation [x R ; −x R] (first index on ties); 0 when n_b = 1. */
static int reformer_hash(const float *x, const float *rot, int D, int half)
{
    int best = 0;
    float top = -INFINITY;
    for (int sign = 0; sign < 2; sign++)
        for (int u = 0; u < half; u++) {
            float p = 0.0f;
            for (int e = 0; e < D; e++) p += x[e] * rot[(size_t)e * half + u];
            if (sign) p = -p;
            if (p > top) top = p, best = sign * half + u;
        }
    return best;
}

/* Buckets the real tokens and sorts them by (bucket, position) with a stable counting sort.
 * kn (T, Dh) is hashed; bucket and perm (T) receive float-encoded integers. */
static void reformer_sort(const reformer_dims *d, const float *mask, const float *kn,
                          const float *rot, float *bucket, float *perm, float *cnt)
{
    for (int u = 0; u <= d->nb; u++) cnt[u] = 0.0f;
    for (int j = 0; j < d->T; j++) {
        bucket[j] = -1.0f;
        perm[j] = -1.0f;
        if (mask[j] == 0.0f) continue;
        const int u = reformer_hash(kn + (size_t)j * d->D, rot, d->D, d->half);
        bucket[j] = (float)u;
        cnt[u + 1] += 1.0f;
    }
    for (int u = 0; u < d->nb; u++) cnt[u + 1] += cnt[u]; /* cnt[u]: first slot of bucket u */
    for (int j = 0; j < d->T; j++)
        if (bucket[j] >= 0.0f) perm[(int)cnt[(int)bucket[j]]++] = (float)j;
}

/* ---- one chunk -------------------------------------------------------------------------- */

/* Chunk g of the n sorted real tokens: own slots [lo, lo + len), previous chunk's
 * [plo, plo + plen) (wrapping around; none when there is only one chunk). Keys are ordered
 * previous chunk first, then own chunk, so query slot lo + r sits in key column plen + r.
 * One tile of it: the query rows [lo + r0, lo + r0 + nq) against all the chunk's keys. */
typedef struct reformer_chunk {
    int lo, len, plo, plen;
    int r0, nq; /* the tile's first query row within the chunk, and its rows */
} reformer_chunk;

static int reformer_min(int a, int b) { return a < b ? a : b; }

static reformer_chunk reformer_chunk_at(int g, int n, int c)
{
    const int nc = (n + c - 1) / c, p = (g + nc - 1) % nc;
    reformer_chunk ch = {.lo = g * c, .len = reformer_min(c, n - g * c)};
    if (nc > 1) ch.plo = p * c, ch.plen = reformer_min(c, n - p * c);
    return ch;
}

/* A (nq, plen + len) = s·Q_tile [K_prev ; K_own]ᵀ from the sorted q and k̂ (T, Dh), with the
 * self column set to −∞ when there is any other key. */
static void reformer_logits(const reformer_dims *d, const reformer_chunk *ch, const float *sq,
                            const float *sk, float *A)
{
    const int D = d->D, ncol = ch->plen + ch->len;
    const float *Q = sq + (size_t)(ch->lo + ch->r0) * D;
    if (ch->plen > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ch->nq, ch->plen, D, d->s, Q, D,
                    sk + (size_t)ch->plo * D, D, 0.0f, A, ncol);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ch->nq, ch->len, D, d->s, Q, D,
                sk + (size_t)ch->lo * D, D, 0.0f, A + ch->plen, ncol);
    if (ncol > 1)
        for (int r = 0; r < ch->nq; r++)
            A[(size_t)r * ncol + ch->plen + ch->r0 + r] = -INFINITY;
}

/* Rows of A become probabilities exp(a − lse); lse (len) is written when `lse_out`, else read
 * from `lse_in` (backward recomputes P from the cached lse). */
static void reformer_probs(float *A, int rows, int ncol, float *lse_out, const float *lse_in)
{
    for (int r = 0; r < rows; r++) {
        float *row = A + (size_t)r * ncol;
        if (!lse_out) {
            /* lra_expf (vectorised) maps the −∞ self column to 0. */
            for (int j = 0; j < ncol; j++) row[j] = lra_expf(row[j] - lse_in[r]);
            continue;
        }
        /* every row has a key (itself at least), so mx is finite and sum >= 1 */
        float mx = -INFINITY;
        for (int j = 0; j < ncol; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < ncol; j++) row[j] = lra_expf(row[j] - mx);
        const double sum = lra_sumf(row, ncol);
        lse_out[r] = mx + (float)log(sum);
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < ncol; j++) row[j] *= inv;
    }
}

/* dst = src ∘ Z/(1−p) on one tile, Z_ij = [uniform(key, i·T + j) >= p] at the ORIGINAL
 * positions i, j, so the mask does not depend on the sorted order. dst may equal src. */
static void reformer_dropout(const reformer_dims *d, const reformer_chunk *ch, const float *perm,
                             uint64_t key, float *dst, const float *src)
{
    /* Locals, not ch->… and d->… inside the loops: dst could alias them as far as the compiler
     * knows, which would stop it vectorising the hash (5× slower). */
    const int plen = ch->plen, plo = ch->plo, lo = ch->lo, len = ch->len, nq = ch->nq;
    const int ncol = plen + len, q0 = ch->lo + ch->r0;
    const uint64_t T = (uint64_t)d->T;
    const float rate = d->rate, inv_keep = 1.0f / (1.0f - rate);
    for (int r = 0; r < nq; r++) {
        const uint64_t row = (uint64_t)perm[q0 + r] * T;
        float *drow = dst + (size_t)r * ncol;
        const float *srow = src + (size_t)r * ncol;
        for (int col = 0; col < plen; col++) { /* previous chunk's keys */
            const uint64_t ctr = row + (uint64_t)perm[plo + col];
            drow[col] = lra_uniform(key, ctr) >= rate ? srow[col] * inv_keep : 0.0f;
        }
        for (int col = 0; col < len; col++) { /* own chunk's keys */
            const uint64_t ctr = row + (uint64_t)perm[lo + col];
            drow[plen + col] = lra_uniform(key, ctr) >= rate ? srow[plen + col] * inv_keep : 0.0f;
        }
    }
}

/* C (nq, Dh) = P̃ [V_prev ; V_own] for the sorted values (T, Dh). */
static void reformer_mix(const reformer_dims *d, const reformer_chunk *ch, const float *P,
                         const float *sv, float *C)
{
    const int D = d->D, ncol = ch->plen + ch->len;
    float beta = 0.0f;
    if (ch->plen > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ch->nq, D, ch->plen, 1.0f, P,
                    ncol, sv + (size_t)ch->plo * D, D, 0.0f, C, D);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ch->nq, D, ch->len, 1.0f,
                P + ch->plen, ncol, sv + (size_t)ch->lo * D, D, beta, C, D);
}

/* dX_prev, dX_own += α·Gᵀ Y for a tile matrix G (nq, ncol) and rows Y (nq, Dh): the scatter
 * of a chunk-row product back onto its key slots (tiles add in row order: deterministic). */
static void reformer_mix_t(const reformer_dims *d, const reformer_chunk *ch, float alpha,
                           const float *G, const float *Y, float *dX)
{
    const int D = d->D, ncol = ch->plen + ch->len;
    if (ch->plen > 0)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ch->plen, D, ch->nq, alpha, G,
                    ncol, Y, D, 1.0f, dX + (size_t)ch->plo * D, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ch->len, D, ch->nq, alpha,
                G + ch->plen, ncol, Y, D, 1.0f, dX + (size_t)ch->lo * D, D);
}

/* ---- forward ---------------------------------------------------------------------------- */

/* inv_j = 1/‖q_j‖ (0 for a zero query) and k̂_j = q_j·inv_j for every position. */
static void reformer_normalise(const reformer_dims *d, const float *Q, float *inv, float *kn)
{
    for (int j = 0; j < d->T; j++) {
        const float *x = Q + (size_t)j * d->D;
        double ss = 0.0;
        for (int e = 0; e < d->D; e++) ss += (double)x[e] * x[e];
        inv[j] = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int e = 0; e < d->D; e++) kn[(size_t)j * d->D + e] = x[e] * inv[j];
    }
}

/* dst[t] = src[perm[t]] for the n sorted slots; rows of Dh floats. */
static void reformer_gather(float *dst, const float *src, const float *perm, int n, int D)
{
    for (int t = 0; t < n; t++)
        memcpy(dst + (size_t)t * D, src + (size_t)perm[t] * D, (size_t)D * sizeof(float));
}

/* dst[perm[t]] += src[t]. */
static void reformer_scatter_add(float *dst, const float *src, const float *perm, int n, int D)
{
    for (int t = 0; t < n; t++) {
        float *row = dst + (size_t)perm[t] * D;
        for (int e = 0; e < D; e++) row[e] += src[(size_t)t * D + e];
    }
}

/* One hashing round of one slice: o_ir and lse_ir into the cache, at the original positions. */
static void reformer_round_forward(const lra_attn_ctx *ctx, const reformer_dims *d, int bh,
                                   int r, int n, const float *Q, const float *V,
                                   reformer_work *w,
                                   const reformer_cache *cc)
{
    const float *perm = cc->perm + (size_t)r * d->T;
    float *lse = cc->lse + (size_t)r * d->T, *o = cc->o + (size_t)r * d->T * d->D;
    reformer_gather(w->sq, Q, perm, n, d->D);
    reformer_gather(w->sk, w->kn, perm, n, d->D);
    reformer_gather(w->sv, V, perm, n, d->D);
    const uint64_t key = reformer_drop_key(ctx, bh, r);
    for (int g = 0; g * d->c < n; g++) {
        reformer_chunk ch = reformer_chunk_at(g, n, d->c);
        const int ncol = ch.plen + ch.len;
        for (ch.r0 = 0; ch.r0 < ch.len; ch.r0 += ch.nq) {
            ch.nq = reformer_min(reformer_rows(d), ch.len - ch.r0);
            const int q0 = ch.lo + ch.r0; /* the tile's first sorted slot */
            reformer_logits(d, &ch, w->sq, w->sk, w->a);
            reformer_probs(w->a, ch.nq, ncol, w->sl + q0, NULL);
            const float *P = w->a; /* (nq, ncol) */
            if (d->rate > 0.0f) {
                reformer_dropout(d, &ch, perm, key, w->g, w->a);
                P = w->g;
            }
            reformer_mix(d, &ch, P, w->sv, w->so + (size_t)q0 * d->D);
        }
    }
    memset(o, 0, (size_t)d->T * d->D * sizeof(float));
    memset(lse, 0, (size_t)d->T * sizeof(float));
    for (int t = 0; t < n; t++) {
        const int i = (int)perm[t];
        lse[i] = w->sl[t];
        memcpy(o + (size_t)i * d->D, w->so + (size_t)t * d->D, (size_t)d->D * sizeof(float));
    }
}

/* w_ir = exp(lse_ir − lse_r'(lse_ir')) for one position i (weights (nr)). */
static void reformer_round_weights(const reformer_dims *d, const float *lse, int i, float *wts)
{
    float mx = -INFINITY;
    for (int r = 0; r < d->nr; r++) mx = fmaxf(mx, lse[(size_t)r * d->T + i]);
    double sum = 0.0;
    for (int r = 0; r < d->nr; r++) sum += exp((double)lse[(size_t)r * d->T + i] - mx);
    const float all = mx + (float)log(sum);
    for (int r = 0; r < d->nr; r++) wts[r] = expf(lse[(size_t)r * d->T + i] - all);
}

static void reformer_forward_slice(const lra_attn_ctx *ctx, const reformer_dims *d, int bh,
                                   const float *Q, const float *V, float *O)
{
    const int h = bh % ctx->shape.heads;
    const float *mask = ctx->key_mask + (size_t)(bh / ctx->shape.heads) * d->T; /* (T) */
    const reformer_cache cc = reformer_cache_at(ctx, d, bh);
    reformer_work w = reformer_work_at(ctx, d, bh);
    int n = 0;
    for (int j = 0; j < d->T; j++) n += mask[j] != 0.0f;

    reformer_normalise(d, Q, w.inv, w.kn);
    for (int r = 0; r < d->nr; r++) {
        float *perm = cc.perm + (size_t)r * d->T;
        if (!ctx->freeze_choices) {
            reformer_draw_rotation(w.rot, d->D, d->half, reformer_rot_key(ctx, h, r));
            reformer_sort(d, mask, w.kn, w.rot, cc.bucket + (size_t)r * d->T, perm, w.cnt);
        }
        reformer_round_forward(ctx, d, bh, r, n, Q, V, &w, &cc);
    }

    /* o_i = Σ_r w_ir o_ir; padded queries output 0. */
    memset(O, 0, (size_t)d->T * d->D * sizeof(float));
    for (int i = 0; i < d->T; i++) {
        if (mask[i] == 0.0f) continue;
        float wts[REFORMER_MAX_HASHES];
        reformer_round_weights(d, cc.lse, i, wts);
        for (int r = 0; r < d->nr; r++) {
            const float *o_r = cc.o + ((size_t)r * d->T + i) * d->D;
            for (int e = 0; e < d->D; e++) O[(size_t)i * d->D + e] += wts[r] * o_r[e];
        }
    }
}

static void reformer_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                             float *out)
{
    (void)k; /* shared QK: the keys are the normalised queries */
    const reformer_dims d = reformer_dims_of(ctx);
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)d.T * d.D;
#pragma omp parallel for schedule(static) num_threads(reformer_threads(ctx))
    for (int bh = 0; bh < BH; bh++)
        reformer_forward_slice(ctx, &d, bh, q + bh * TD, v + bh * TD, out + bh * TD);
}

/* ---- backward --------------------------------------------------------------------------- */

/* One round of one slice, given the sorted w_ir·do_i (w.so) and w_ir·(do_i·o_i) (w.sd): adds the
 * sorted gradients of q, k̂ and v into w.dsq, w.dsk, w.dsv. */
static void reformer_round_backward(const lra_attn_ctx *ctx, const reformer_dims *d, int bh,
                                    int r, int n, reformer_work *w, const float *perm)
{
    const int D = d->D;
    const uint64_t key = reformer_drop_key(ctx, bh, r);
    for (int g = 0; g * d->c < n; g++) {
        reformer_chunk ch = reformer_chunk_at(g, n, d->c);
        const int ncol = ch.plen + ch.len;
        for (ch.r0 = 0; ch.r0 < ch.len; ch.r0 += ch.nq) {
            ch.nq = reformer_min(reformer_rows(d), ch.len - ch.r0);
            const int q0 = ch.lo + ch.r0; /* the tile's first sorted slot */
            const float *dO = w->so + (size_t)q0 * D, *Qc = w->sq + (size_t)q0 * D;
            reformer_logits(d, &ch, w->sq, w->sk, w->a);
            reformer_probs(w->a, ch.nq, ncol, NULL, w->sl + q0);

            /* forward was o_ir = P̃ [V_prev ; V_own], so dV += P̃ᵀ dO_r and dP̃ = dO_r [V]ᵀ. */
            const float *P = w->a;
            if (d->rate > 0.0f) {
                reformer_dropout(d, &ch, perm, key, w->g, w->a);
                P = w->g;
            }
            reformer_mix_t(d, &ch, 1.0f, P, dO, w->dsv);
            if (ch.plen > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ch.nq, ch.plen, D, 1.0f, dO, D,
                            w->sv + (size_t)ch.plo * D, D, 0.0f, w->g, ncol);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ch.nq, ch.len, D, 1.0f, dO, D,
                        w->sv + (size_t)ch.lo * D, D, 0.0f, w->g + ch.plen, ncol);

            /* forward was P̃ = P ∘ Z/(1−p), so dP = dP̃ ∘ Z/(1−p). */
            if (d->rate > 0.0f) reformer_dropout(d, &ch, perm, key, w->g, w->g);

            /* forward was P = exp(A − lse) inside a round whose lse also sets w_ir, so
             * dA = P ∘ (dP − D'_i) with D'_i = w_ir·(do_i·o_i) (B2 plus the dlse term, §6). */
            for (int row = 0; row < ch.nq; row++) {
                const float Dr = w->sd[q0 + row];
                for (int col = 0; col < ncol; col++) {
                    const size_t at = (size_t)row * ncol + col;
                    w->g[at] = w->a[at] * (w->g[at] - Dr);
                }
            }

            /* forward was A = s·Q_tile [K]ᵀ, so dQ_tile += s·dA [K] and d[K] += s·dAᵀ Q_tile. */
            float *dQc = w->dsq + (size_t)q0 * D;
            if (ch.plen > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ch.nq, D, ch.plen, d->s,
                            w->g, ncol, w->sk + (size_t)ch.plo * D, D, 1.0f, dQc, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ch.nq, D, ch.len, d->s,
                        w->g + ch.plen, ncol, w->sk + (size_t)ch.lo * D, D, 1.0f, dQc, D);
            reformer_mix_t(d, &ch, d->s, w->g, Qc, w->dsk);
        }
    }
}

/* Sorted inputs of round r's backward: w.so = w_ir·do_i and w.sd = w_ir·(do_i·o_i), because
 * forward was o_i = Σ_r w_ir o_ir, giving do_ir = w_ir do_i and
 * dlse_ir = w_ir (do_i·o_ir − do_i·o_i); B2's D_ir = do_ir·o_ir and dlse_ir then merge into
 * dA = P ∘ (dP − w_ir (do_i·o_i)). */
static void reformer_round_inputs(const reformer_dims *d, const reformer_cache *cc, int r, int n,
                                  const float *dO, const float *O, reformer_work *w)
{
    const float *perm = cc->perm + (size_t)r * d->T;
    for (int t = 0; t < n; t++) {
        const int i = (int)perm[t];
        float wts[REFORMER_MAX_HASHES];
        reformer_round_weights(d, cc->lse, i, wts);
        double dot = 0.0;
        for (int e = 0; e < d->D; e++)
            dot += (double)dO[(size_t)i * d->D + e] * O[(size_t)i * d->D + e];
        for (int e = 0; e < d->D; e++)
            w->so[(size_t)t * d->D + e] = wts[r] * dO[(size_t)i * d->D + e];
        w->sd[t] = wts[r] * (float)dot;
        w->sl[t] = cc->lse[(size_t)r * d->T + i];
    }
}

static void reformer_backward_slice(const lra_attn_ctx *ctx, const reformer_dims *d, int bh,
                                    const float *Q, const float *V, const float *O,
                                    const float *dO, float *dQ, float *dV)
{
    const float *mask = ctx->key_mask + (size_t)(bh / ctx->shape.heads) * d->T; /* (T) */
    const reformer_cache cc = reformer_cache_at(ctx, d, bh);
    reformer_work w = reformer_work_at(ctx, d, bh);
    const size_t TD = (size_t)d->T * d->D;
    int n = 0;
    for (int j = 0; j < d->T; j++) n += mask[j] != 0.0f;

    reformer_normalise(d, Q, w.inv, w.kn);
    memset(w.dkn, 0, TD * sizeof(float));
    for (int r = 0; r < d->nr; r++) {
        const float *perm = cc.perm + (size_t)r * d->T;
        reformer_gather(w.sq, Q, perm, n, d->D);
        reformer_gather(w.sk, w.kn, perm, n, d->D);
        reformer_gather(w.sv, V, perm, n, d->D);
        reformer_round_inputs(d, &cc, r, n, dO, O, &w);
        memset(w.dsq, 0, TD * sizeof(float));
        memset(w.dsk, 0, TD * sizeof(float));
        memset(w.dsv, 0, TD * sizeof(float));
        reformer_round_backward(ctx, d, bh, r, n, &w, perm);
        /* forward gathered q, k̂, v by perm, so their gradients scatter back by perm. */
        reformer_scatter_add(dQ, w.dsq, perm, n, d->D);
        reformer_scatter_add(w.dkn, w.dsk, perm, n, d->D);
        reformer_scatter_add(dV, w.dsv, perm, n, d->D);
    }

    /* forward was k̂_j = q_j/‖q_j‖, so dq_j += (I − k̂_j k̂_jᵀ) dk̂_j / ‖q_j‖. */
    for (int j = 0; j < d->T; j++) {
        const float *kj = w.kn + (size_t)j * d->D, *gj = w.dkn + (size_t)j * d->D;
        float dot = 0.0f;
        for (int e = 0; e < d->D; e++) dot += kj[e] * gj[e];
        float *dq = dQ + (size_t)j * d->D;
        for (int e = 0; e < d->D; e++) dq[e] += w.inv[j] * (gj[e] - kj[e] * dot);
    }
}

static void reformer_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              const float *out, const float *dout, float *dq, float *dk,
                              float *dv)
{
    (void)k, (void)dk; /* shared QK: the output does not depend on k */
    const reformer_dims d = reformer_dims_of(ctx);
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)d.T * d.D;
#pragma omp parallel for schedule(static) num_threads(reformer_threads(ctx))
    for (int bh = 0; bh < BH; bh++)
        reformer_backward_slice(ctx, &d, bh, q + bh * TD, v + bh * TD, out + bh * TD,
                                dout + bh * TD, dq + bh * TD, dv + bh * TD);
}

/* ---- descriptor ------------------------------------------------------------------------- */

static void reformer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const reformer_dims d = reformer_dims_of(ctx);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0, /* rotations are regenerated from the seed */
        .n_cache   = slices * reformer_cache_floats(&d),
        .n_scratch = slices * reformer_scratch_floats(&d),
    };
}

static double reformer_flops(const lra_attn_ctx *ctx)
{
    const reformer_dims d = reformer_dims_of(ctx);
    const double slices = (double)ctx->shape.batch * ctx->shape.heads;
    const double T = d.T, D = d.D, keys = d.T > d.c ? 2.0 * d.c : d.c;
    /* Per round: hashing 2·Dh·(n_b/2) per token, logits and mixing 4·keys·Dh per query, the
     * softmax about 5 per logit, the combination 3·Dh per query. Normalising the keys 3·Dh. */
    const double round = T * (D * d.nb + keys * (4.0 * D + 5.0) + 3.0 * D);
    return slices * (d.nr * round + 3.0 * T * D);
}

static int reformer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const reformer_priv *opt = ctx->priv;
    if (opt->buckets < 1 || (opt->buckets > 1 && opt->buckets % 2)) {
        snprintf(err, errlen, "buckets must be 1 or even (angular LSH), got %d", opt->buckets);
        return LRA_ATTN_EINVAL;
    }
    if (opt->hashes < 1 || opt->hashes > REFORMER_MAX_HASHES) {
        snprintf(err, errlen, "hashes must be in [1, %d], got %d", REFORMER_MAX_HASHES,
                 opt->hashes);
        return LRA_ATTN_EINVAL;
    }
    if (opt->lra_scale && opt->scale > 0.0) {
        snprintf(err, errlen, "lra_scale and scale both set the logit scale; set one");
        return LRA_ATTN_EINVAL;
    }
    if (!(opt->scale >= 0.0 && isfinite(opt->scale)) || opt->chunk < 0) {
        snprintf(err, errlen, "scale and chunk must be >= 0");
        return LRA_ATTN_EINVAL;
    }
    if (ctx->shape.max_len >= (1 << 24)) {
        snprintf(err, errlen, "positions are stored as floats: max_len must be < 2^24");
        return LRA_ATTN_ESHAPE;
    }
    return LRA_ATTN_OK;
}

const lra_attention lra_attn_reformer = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "reformer",
    .help        = "Reformer LSH attention, shared QK (Kitaev et al. 2020, arXiv 2001.04451); "
                   "O(hashes T chunk Dh)",
    .flags       = LRA_ATTN_NONSMOOTH | LRA_ATTN_STOCHASTIC,
    .priv_size   = sizeof(reformer_priv),
    .options     = reformer_options,
    .check_options = "buckets=2,chunk=2,hashes=2",
    .softmax_limit_options = NULL, /* shared QK and self-exclusion: never plain softmax */
    .sizes       = reformer_sizes,
    .flops       = reformer_flops,
    .init        = reformer_init,
    .forward     = reformer_forward,
    .backward    = reformer_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_reformer)
