/* kdeformer.c — KDEformer: LSH-bucketed exact attention plus a sampled residual.
 *
 * Zandieh, Han, Daliri, Karbasi, "KDEformer: Accelerating Transformers via Kernel Density
 * Estimation", ICML 2023, arXiv 2302.02451 (attention-variants.md §15; code
 * majid-daliri/kdeformer, its practical algorithm). Per (batch, head) slice, with logits
 * a_ij = s·q_i·k_j, s = 1/√Dh (our q and k arrive unscaled, unlike the reference's):
 *  1. Angular LSH: p Gaussian directions ω_l, drawn per slice (see Draws below);
 *     bucket b = Σ_l [ω_l·x > 0]·2^l, ordered by its reflected Gray code g(b) = b XOR (b >> 1).
 *     The real queries and the real keys are each sorted stably by g, then cut into the same
 *     number nb = ⌈n_r / bucket⌉ of blocks: sorted rank r of n_r goes to block ⌊r·nb/n_r⌋.
 *  2. Heavy part, exact: query block β sees every key of key block β with weight 1.
 *  3. Residual, sampled: π_j ∝ ‖v⁺_j‖/λ + 1/n_r over the real keys (v⁺_j = [v_j, 1], λ the top
 *     eigenvalue of V⁺ᵀV⁺ by 20 power iterations); `samples` indices drawn with replacement;
 *     a sample whose key lies in block β is dropped for the queries of block β (already
 *     counted); the others enter with weight 1/(π_j·samples), so the residual sums are unbiased.
 *  4. o_i = Σ_c w_c e^(a_ic) v_c / Σ_c w_c e^(a_ic) over query i's list c (block keys and
 *     surviving samples): the last column of v⁺ gives the denominator.
 * Each block is a weighted B2 tile: lse_i = log Σ_c w_c e^(a_ic) is cached and backward
 * recomputes p_ic = w_c e^(a_ic − lse_i), then ds = p (do·v − do·o) as in B2.
 *
 * Draws: the directions and the sample uniforms are pure functions of (ctx->seed, slice) by
 * default, so evaluation is reproducible and the data (q, k, v) alone moves buckets and π; with
 * redraw=1 a training forward keys them by (ctx->seed, ctx->step, slice) instead, fresh at every
 * step like the reference (which redraws at every call, evaluation included). Either way
 * backward and frozen forwards reuse the cached choices, never redrawing.
 * Choices: buckets, orders, samples AND their weights w are constants in backward (§0.7); the
 * reference lets gradients flow through π (via ‖v_j‖ and λ); treating π as constant keeps the
 * estimator's expectation and is recorded here as the choice. ctx->freeze_choices reuses the
 * orders, blocks, samples and weights of the cache, so finite differences see a smooth
 * function. Padded keys are never hashed or sampled; padded queries get o = 0 and no gradient
 * (they are left out of the sort so that their q cannot move a real query to another block). A
 * slice without real tokens gives O = 0. Attention dropout does not apply (ctx->dropout is
 * ignored).
 *
 * Complexity per slice: O(T·(bucket + samples)·Dh + T·p·Dh + T log T) time, about
 * T·(bucket + samples)·(4·Dh + 5) + 4·T·p·Dh + 80·T·Dh flops forward; backward about twice.
 * Cache per slice (floats; indices stored as floats, exact below 2^24), in this order:
 *     meta (2): n_r, nb;  qperm (T), kperm (T): real query and key positions in sorted order
 *     (first n_r used);  sidx, sw, sblk (samples each): sampled key position, weight
 *     1/(π·samples), its key block;  lse (T).
 * Scratch per slice: the gathered tile inputs and outputs of one block (queries ≤ T, keys
 * ≤ bucket + samples) and the sort and sampling work (3·T + 2·Dh + 2).
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

typedef struct kdeformer_priv {
    int projections; /* p: LSH directions */
    int bucket;      /* keys per block of the heavy part */
    int samples;     /* residual samples */
    int redraw;      /* 1: fresh directions and samples at every training step */
} kdeformer_priv;

static const lra_attn_option kdeformer_options[] = {
    {.name = "projections", .help = "LSH projections p (2^p buckets in Gray-code order)",
     .offset = offsetof(kdeformer_priv, projections), .type = LRA_OPT_INT,
     .def = 7, .min = 1, .max = 20},
    {.name = "bucket", .help = "keys per block of the exact block-diagonal part",
     .offset = offsetof(kdeformer_priv, bucket), .type = LRA_OPT_INT,
     .def = 64, .min = 1, .max = 65536},
    {.name = "samples", .help = "residual key samples (with replacement)",
     .offset = offsetof(kdeformer_priv, samples), .type = LRA_OPT_INT,
     .def = 128, .min = 1, .max = 65536},
    {.name = "redraw", .help = "draw LSH directions and samples afresh at every training step "
     "(reference: every call); 0 = fixed by the seed",
     .offset = offsetof(kdeformer_priv, redraw), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = NULL},
};

enum { KDE_POWER_ITERS = 20 };
static const uint64_t KDE_SALT_HASH = 0x6b64656861736868, KDE_SALT_SAMPLE = 0x6b646573616d706c;

/* Per-slice float counts and offsets. */
typedef struct kde_dims {
    int T, D, p, bs, ns;
    size_t meta, qperm, kperm, sidx, sw, sblk, lse, cache; /* cache offsets, then the total */
    size_t nq, nc;                                         /* most tile queries, tile keys */
    size_t scratch;                                        /* per slice */
} kde_dims;

static kde_dims kde_layout(const lra_attn_ctx *ctx)
{
    const kdeformer_priv *opt = ctx->priv;
    kde_dims d = {.T = ctx->shape.len, .D = ctx->shape.dim, .p = opt->projections,
                  .bs = opt->bucket, .ns = opt->samples};
    const size_t T = (size_t)d.T, D = (size_t)d.D, ns = (size_t)d.ns;
    d.meta = 0;
    d.qperm = 2;
    d.kperm = d.qperm + T;
    d.sidx = d.kperm + T;
    d.sw = d.sidx + ns;
    d.sblk = d.sw + ns;
    d.lse = d.sblk + ns;
    d.cache = d.lse + T;
    d.nq = T; /* one block holds every query when nb = 1 */
    d.nc = (size_t)(d.bs < d.T ? d.bs : d.T) + ns;
    /* Qb, Ob|dOb, dQb (nq, Dh); Kc, Vc, dKc, dVc (nc, Dh); wc, idx (nc); two tiles (nq, nc);
     * sort and sampling work (3 T + 2 (Dh + 1)). */
    d.scratch = 3 * d.nq * D + 4 * d.nc * D + 2 * d.nc + 2 * d.nq * d.nc + 3 * T + 2 * D + 2;
    return d;
}

static int kde_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

/* Start of part b of n items cut into nb parts: item r is in part ⌊r·nb/n⌋. */
static int kde_part_start(int b, int n, int nb)
{
    return (int)(((long long)b * n + nb - 1) / nb);
}

/* ---- LSH and sort -------------------------------------------------------------------------- */

/* Gray-code value g(b) of the sign bucket b of row x (Dh) under the p directions of `key`. */
static float kde_code(const float *x, int D, int p, uint64_t key)
{
    uint32_t b = 0;
    for (int l = 0; l < p; l++) {
        float dot = 0.0f;
        for (int e = 0; e < D; e++) dot += lra_normal(key, (uint64_t)l * D + e) * x[e];
        b |= (uint32_t)(dot > 0.0f) << l;
    }
    return (float)(b ^ (b >> 1));
}

/* Sorts idx (n positions) stably by code[idx]; tmp (n). Bottom-up merge sort. */
static void kde_sort(float *idx, float *tmp, const float *code, int n)
{
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            const int mid = lo + width < n ? lo + width : n;
            const int hi = lo + 2 * width < n ? lo + 2 * width : n;
            int a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = code[(int)idx[b]] < code[(int)idx[a]] ? idx[b++] : idx[a++];
            while (a < mid) tmp[o++] = idx[a++];
            while (b < hi) tmp[o++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof(float));
    }
}

/* perm (n_r) = the real rows of X (T, Dh) sorted by Gray code; work (2 T). */
static void kde_order(const float *X, const float *mask, int T, int D, int p, uint64_t key,
                      float *perm, float *work)
{
    float *code = work, *tmp = work + T; /* (T) each */
    int n = 0;
    for (int i = 0; i < T; i++) {
        if (mask[i] == 0.0f) continue;
        code[i] = kde_code(X + (size_t)i * D, D, p, key);
        perm[n++] = (float)i;
    }
    kde_sort(perm, tmp, code, n);
}

/* ---- residual sampling --------------------------------------------------------------------- */


/* λ = the top eigenvalue of V⁺ᵀV⁺ over the real keys kperm (n_r), by power iteration from the
 * ones vector; x, z: Dh + 1 floats of work each. */
static double kde_top_eigenvalue(const float *V, const float *kperm, int nr, int D, float *x,
                                 float *z)
{
    double lambda = 0.0;
    for (int e = 0; e <= D; e++) x[e] = 1.0f / sqrtf((float)(D + 1));
    for (int it = 0; it < KDE_POWER_ITERS; it++) {
        /* z = V⁺ᵀ (V⁺ x), and λ = x·z = ‖V⁺ x‖² for the unit x. */
        for (int e = 0; e <= D; e++) z[e] = 0.0f;
        lambda = 0.0;
        for (int r = 0; r < nr; r++) {
            const float *v = V + (size_t)kperm[r] * D; /* (Dh); the (Dh+1)-th entry is 1 */
            double vx = x[D];
            for (int e = 0; e < D; e++) vx += (double)v[e] * x[e];
            for (int e = 0; e < D; e++) z[e] += (float)(vx * v[e]);
            z[D] += (float)vx;
            lambda += vx * vx;
        }
        double norm = 0.0;
        for (int e = 0; e <= D; e++) norm += (double)z[e] * z[e];
        norm = sqrt(norm);
        if (!(norm > 0.0)) break;
        for (int e = 0; e <= D; e++) x[e] = (float)(z[e] / norm);
    }
    return lambda;
}

/* Draws the residual samples of one slice: sidx, sw, sblk (samples) from the n_r real keys in
 * sorted order kperm, with π_r ∝ ‖v⁺‖/λ + 1/n_r. work: 3 T + 2 (Dh + 1) floats. */
static void kde_sample(const kde_dims *d, const float *V, const float *kperm, int nr, int nb,
                       uint64_t key, float *sidx, float *sw, float *sblk, float *work)
{
    const int D = d->D;
    float *cum = work, *x = work + d->T, *z = x + D + 1; /* (T), (Dh + 1) each */
    const double lambda = kde_top_eigenvalue(V, kperm, nr, D, x, z);
    double total = 0.0;
    for (int r = 0; r < nr; r++) {
        const float *v = V + (size_t)kperm[r] * D;
        double sq = 1.0;
        for (int e = 0; e < D; e++) sq += (double)v[e] * v[e];
        total += sqrt(sq) / lambda + 1.0 / nr;
        cum[r] = (float)total;
    }
    for (int s = 0; s < d->ns; s++) {
        /* inverse CDF: the first rank whose cumulative weight exceeds u·total */
        const float target = lra_uniform(key, (uint64_t)s) * (float)total;
        int lo = 0, hi = nr - 1;
        while (lo < hi) {
            const int mid = (lo + hi) / 2;
            if (cum[mid] > target)
                hi = mid;
            else
                lo = mid + 1;
        }
        const double weight = cum[lo] - (lo > 0 ? cum[lo - 1] : 0.0f); /* π_lo·total */
        sidx[s] = kperm[lo];
        sblk[s] = (float)((long long)lo * nb / nr);
        sw[s] = (float)(total / (weight * d->ns));
    }
}

/* Makes the slice's discrete choices into its cache block c: meta, orders and samples. */
static void kde_choose(const kde_dims *d, const float *Q, const float *K, const float *V,
                       const float *mask, uint64_t hash_key, uint64_t sample_key, float *c,
                       float *work)
{
    int nr = 0;
    for (int i = 0; i < d->T; i++) nr += mask[i] != 0.0f;
    const int nb = (nr + d->bs - 1) / d->bs;
    c[d->meta] = (float)nr;
    c[d->meta + 1] = (float)nb;
    if (nr == 0) return;
    kde_order(Q, mask, d->T, d->D, d->p, hash_key, c + d->qperm, work);
    kde_order(K, mask, d->T, d->D, d->p, hash_key, c + d->kperm, work);
    kde_sample(d, V, c + d->kperm, nr, nb, sample_key, c + d->sidx, c + d->sw, c + d->sblk,
               work);
}

/* ---- one block: a weighted B2 tile ---------------------------------------------------------- */

/* The key list of block β into idx, wc: its block keys (weight 1), then the samples outside
 * block β (weight 1/(π·samples)). Returns its length. */
static int kde_keys(const kde_dims *d, const float *c, int beta, float *idx, float *wc)
{
    const int nr = (int)c[d->meta], nb = (int)c[d->meta + 1];
    int n = 0;
    for (int r = kde_part_start(beta, nr, nb); r < kde_part_start(beta + 1, nr, nb); r++) {
        idx[n] = c[d->kperm + r];
        wc[n++] = 1.0f;
    }
    for (int s = 0; s < d->ns; s++) {
        if ((int)c[d->sblk + s] == beta) continue; /* counted exactly in the heavy part */
        idx[n] = c[d->sidx + s];
        wc[n++] = c[d->sw + s];
    }
    return n;
}

/* dst (n, Dh) = the rows idx (n) of X (·, Dh). */
static void kde_gather(const float *X, const float *idx, int n, int D, float *dst)
{
    for (int r = 0; r < n; r++)
        memcpy(dst + (size_t)r * D, X + (size_t)idx[r] * D, (size_t)D * sizeof(float));
}

/* X (·, Dh) rows idx (n) += src (n, Dh), in order (duplicates add up). */
static void kde_scatter_add(float *X, const float *idx, int n, int D, const float *src)
{
    for (int r = 0; r < n; r++)
        for (int e = 0; e < D; e++) X[(size_t)idx[r] * D + e] += src[(size_t)r * D + e];
}

/* Views of one slice's scratch for a block. */
typedef struct kde_work {
    float *Qb, *Ob, *dQb;      /* (nq, Dh) */
    float *Kc, *Vc, *dKc, *dVc; /* (nc, Dh) */
    float *wc, *idx;           /* (nc) */
    float *S, *G;              /* (nq, nc) */
    float *rest;               /* sort and sampling work */
} kde_work;

static kde_work kde_work_view(const kde_dims *d, float *base)
{
    const size_t qd = d->nq * d->D, cd = d->nc * d->D, qc = d->nq * d->nc;
    kde_work w;
    w.Qb = base;
    w.Ob = w.Qb + qd;
    w.dQb = w.Ob + qd;
    w.Kc = w.dQb + qd;
    w.Vc = w.Kc + cd;
    w.dKc = w.Vc + cd;
    w.dVc = w.dKc + cd;
    w.wc = w.dVc + cd;
    w.idx = w.wc + d->nc;
    w.S = w.idx + d->nc;
    w.G = w.S + qc;
    w.rest = w.G + qc;
    return w;
}

/* Gathers block β's queries and key list and computes the tile S = s·Qb Kcᵀ (nq, nc). */
static void kde_tile(const kde_dims *d, const float *c, int beta, const float *Q, const float *K,
                     const float *V, float s, const kde_work *w, int *nq, int *nc)
{
    const int nr = (int)c[d->meta], nb = (int)c[d->meta + 1], D = d->D;
    const int qlo = kde_part_start(beta, nr, nb);
    *nq = kde_part_start(beta + 1, nr, nb) - qlo;
    *nc = kde_keys(d, c, beta, w->idx, w->wc);
    kde_gather(Q, c + d->qperm + qlo, *nq, D, w->Qb);
    kde_gather(K, w->idx, *nc, D, w->Kc);
    kde_gather(V, w->idx, *nc, D, w->Vc);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, *nq, *nc, D, s, w->Qb, D, w->Kc, D,
                0.0f, w->S, *nc);
}

/* Block β forward: writes the rows of its queries in O (T, Dh) and their lse. */
static void kde_block_forward(const kde_dims *d, float *c, int beta, const float *Q,
                              const float *K, const float *V, float s, const kde_work *w,
                              float *O)
{
    const int D = d->D;
    int nq, nc;
    kde_tile(d, c, beta, Q, K, V, s, w, &nq, &nc);
    const float *qidx = c + d->qperm + kde_part_start(beta, (int)c[d->meta], (int)c[d->meta + 1]);
    for (int i = 0; i < nq; i++) {
        float *row = w->S + (size_t)i * nc; /* (nc) logits → normalised weights */
        float mx = -INFINITY;
        for (int j = 0; j < nc; j++) mx = fmaxf(mx, row[j]);
        for (int j = 0; j < nc; j++) row[j] = w->wc[j] * lra_expf(row[j] - mx);
        const double den = lra_sumf(row, nc);
        for (int j = 0; j < nc; j++) row[j] = (float)(row[j] / den);
        c[d->lse + (size_t)qidx[i]] = mx + (float)log(den);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, D, nc, 1.0f, w->S, nc, w->Vc, D,
                0.0f, w->Ob, D);
    for (int i = 0; i < nq; i++)
        memcpy(O + (size_t)qidx[i] * D, w->Ob + (size_t)i * D, (size_t)D * sizeof(float));
}

/* Block β backward: adds into dQ, dK, dV (T, Dh) given O and dO (T, Dh). */
static void kde_block_backward(const kde_dims *d, const float *c, int beta, const float *Q,
                               const float *K, const float *V, const float *O, const float *dO,
                               float s, const kde_work *w, float *dQ, float *dK, float *dV)
{
    const int D = d->D;
    int nq, nc;
    kde_tile(d, c, beta, Q, K, V, s, w, &nq, &nc);
    const float *qidx = c + d->qperm + kde_part_start(beta, (int)c[d->meta], (int)c[d->meta + 1]);
    kde_gather(dO, qidx, nq, D, w->Ob); /* dOb (nq, Dh) */
    /* forward was o_i = Σ_c p_ic v_c, so dP = dOb Vcᵀ and dVc = Pᵀ dOb. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nc, D, 1.0f, w->Ob, D, w->Vc, D,
                0.0f, w->G, nc);
    for (int i = 0; i < nq; i++) {
        float *p = w->S + (size_t)i * nc, *g = w->G + (size_t)i * nc; /* (nc) */
        const float *o = O + (size_t)qidx[i] * D, *dq = dO + (size_t)qidx[i] * D;
        const float lse = c[d->lse + (size_t)qidx[i]];
        float Di = 0.0f; /* do_i · o_i */
        for (int e = 0; e < D; e++) Di += dq[e] * o[e];
        /* forward was p_ic = w_c e^(a_ic − lse_i) with lse_i = log Σ_c w_c e^(a_ic), so
         * da_ic = p_ic (dp_ic − do_i·o_i), as in B2. */
        for (int j = 0; j < nc; j++) {
            p[j] = w->wc[j] * lra_expf(p[j] - lse);
            g[j] = p[j] * (g[j] - Di);
        }
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nc, D, nq, 1.0f, w->S, nc, w->Ob, D,
                0.0f, w->dVc, D);
    /* forward was a = s·Qb Kcᵀ, so dQb = s·dA Kc and dKc = s·dAᵀ Qb. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, D, nc, s, w->G, nc, w->Kc, D,
                0.0f, w->dQb, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nc, D, nq, s, w->G, nc, w->Qb, D,
                0.0f, w->dKc, D);
    kde_scatter_add(dQ, qidx, nq, D, w->dQb);
    kde_scatter_add(dK, w->idx, nc, D, w->dKc);
    kde_scatter_add(dV, w->idx, nc, D, w->dVc);
}

/* ---- descriptor callbacks ------------------------------------------------------------------ */

static void kdeformer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const kde_dims d = kde_layout(ctx);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * d.cache,
        .n_scratch = slices * d.scratch,
    };
}

static double kdeformer_flops(const lra_attn_ctx *ctx)
{
    const kde_dims d = kde_layout(ctx);
    const double T = d.T, D = d.D;
    const double per_slice = T * (double)d.nc * (4.0 * D + 5.0) /* the tiles */
                             + 4.0 * T * d.p * D                /* LSH of q and k */
                             + 4.0 * KDE_POWER_ITERS * T * D    /* power iteration */
                             + 2.0 * T * log2(T + 1.0);         /* sorts */
    return (double)ctx->shape.batch * ctx->shape.heads * per_slice;
}

static int kdeformer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const kdeformer_priv *opt = ctx->priv;
    if (opt->projections < 1 || opt->projections > 20 || opt->bucket < 1 || opt->samples < 1) {
        snprintf(err, errlen, "projections must be in [1, 20], bucket and samples >= 1");
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK; /* no parameters; the draws depend on the step */
}

/* The slice's stream for `salt`: fixed by ctx->seed, or this training step's with redraw. */
static uint64_t kde_key(const lra_attn_ctx *ctx, uint64_t salt, int bh)
{
    const kdeformer_priv *opt = ctx->priv;
    const uint64_t base = lra_key(ctx->seed, salt);
    const uint64_t key = opt->redraw && ctx->training ? lra_key(base, ctx->step) : base;
    return lra_key(key, lra_attn_slice_id(ctx, bh));
}

static void kdeformer_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              float *out)
{
    const kde_dims d = kde_layout(ctx);
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H;
    const size_t TD = (size_t)d.T * d.D;
    const float s = 1.0f / sqrtf((float)d.D);

#pragma omp parallel for schedule(static) num_threads(kde_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *mask = ctx->key_mask + (size_t)(bh / H) * d.T;       /* (T) */
        float *c = ctx->cache + bh * d.cache, *O = out + bh * TD;
        const kde_work w = kde_work_view(&d, ctx->scratch + bh * d.scratch);
        if (!ctx->freeze_choices)
            kde_choose(&d, Q, K, V, mask, kde_key(ctx, KDE_SALT_HASH, bh),
                       kde_key(ctx, KDE_SALT_SAMPLE, bh), c, w.rest);
        memset(O, 0, TD * sizeof(float)); /* padded queries keep o = 0 */
        for (int beta = 0; beta < (int)c[d.meta + 1]; beta++)
            kde_block_forward(&d, c, beta, Q, K, V, s, &w, O);
    }
}

static void kdeformer_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                               const float *out, const float *dout, float *dq, float *dk,
                               float *dv)
{
    const kde_dims d = kde_layout(ctx);
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H;
    const size_t TD = (size_t)d.T * d.D;
    const float s = 1.0f / sqrtf((float)d.D);

#pragma omp parallel for schedule(static) num_threads(kde_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *c = ctx->cache + bh * d.cache;
        const kde_work w = kde_work_view(&d, ctx->scratch + bh * d.scratch);
        for (int beta = 0; beta < (int)c[d.meta + 1]; beta++)
            kde_block_backward(&d, c, beta, q + bh * TD, k + bh * TD, v + bh * TD,
                               out + bh * TD, dout + bh * TD, s, &w, dq + bh * TD,
                               dk + bh * TD, dv + bh * TD);
    }
}

const lra_attention lra_attn_kdeformer = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "kdeformer",
    .help        = "KDEformer: Gray-code angular LSH blocks exact, residual by importance "
                   "sampling (Zandieh et al. 2023, arXiv 2302.02451); O(T (bucket + samples) Dh)",
    .flags       = LRA_ATTN_NONSMOOTH | LRA_ATTN_STOCHASTIC,
    .priv_size   = sizeof(kdeformer_priv),
    .options     = kdeformer_options,
    .check_options = "projections=3,bucket=4,samples=8",
    .softmax_limit_options = NULL,
    .sizes       = kdeformer_sizes,
    .flops       = kdeformer_flops,
    .init        = kdeformer_init,
    .forward     = kdeformer_forward,
    .backward    = kdeformer_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_kdeformer)
