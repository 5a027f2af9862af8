/* sinkhorn.c — Sparse Sinkhorn attention: local blocks plus a learned soft sort of the blocks.
 *
 * Tay, Bahri, Yang, Metzler, Juan, "Sparse Sinkhorn Attention", ICML 2020, arXiv 2002.11296.
 * attention-variants.md §7. For each (batch, head) slice, positions are cut into N_B = ceil(T/b)
 * CONTIGUOUS blocks of b (option `block`); positions past T form a padded tail. With m the key
 * mask (0 on the tail), K̄ = m∘K and V̄ = m∘V (padded rows zeroed):
 *  1. SortNet: block sums k̂_t = Σ_{j∈t} m_j k_j, scores R_tu = k̂_t·W_:u + β_u, one dense layer
 *     Dh → `max_blocks` (W, β: the trainable parameters, shared by all heads) truncated to the
 *     first N_B outputs, as LRA does. Row t says which blocks sorted block t is drawn from.
 *  2. S = normalise(L0), L0 = (R + G)/τ, G Gumbel noise (option `gumbel`, training only). With
 *     `iters` = 0 (LRA's default "softmax" sort activation) S is the row softmax; with iters > 0,
 *     `iters` rounds of log-domain Sinkhorn balancing (row step, then column step; B5).
 *  3. Sorted blocks K^s_t = Σ_u S_tu K̄_u, V^s_t = Σ_u S_tu V̄_u, and the sorted mask
 *     m^s_t = Σ_u S_tu m_u, all position-aligned within the block.
 *  4. A query in block t attends JOINTLY (one softmax, B2 over 2b keys) to the real keys of its
 *     local block t and to the sorted block t, the sorted key j with logit s·q·K^s_tj + log m^s_tj.
 *     Joint rather than LRA's sum of two separately normalised attentions: the paper's wording
 *     is unverified either way (§7), and one softmax keeps the output a convex combination.
 * Padding. The soft sort mixes keys, so a binary mask cannot say whether a sorted key is real.
 * We apply the same relaxation to the mask as to the keys: padded keys and values are zeroed
 * before mixing (so nothing a padded token holds reaches any output), and sorted slot j carries
 * the mixed mask m^s_tj, entering as a multiplicative weight, i.e. + log m^s in the logit. When
 * S is a permutation this is exactly the hard rule "the sorted key is real iff its source key
 * is"; a slot whose sources are all padding (m^s = 0) is excluded. Padded queries attend as real
 * ones do. With one block (b >= T) S = 1 and the variant is exact softmax attention.
 *
 * Deviations from LRA's code (lra-tasks.md §10 pitfall 21): LRA's blocks are strided, not
 * contiguous; its sorting einsum sums over the source block, so every sorted block is the sum
 * of all blocks and the SortNet gets no gradient; it adds two separately normalised attentions;
 * it has no padding handling and needs T to be a multiple of b. We follow the paper in each.
 *
 * Complexity: O(T·2b·Dh) attention + O(N_B²·(b·Dh + iters)) sorting, each way.
 * Cache (per slice): the normalisation iterates L_1..L_n (n = max(1, 2·iters) matrices N_B×N_B;
 *        S = exp(L_n)) and lse per query (T). Sorted blocks are recomputed in backward.
 * Scratch (per slice): masked, sorted keys and values and their gradients (N_B·b, Dh) each, two
 *        b × 2b block matrices, N_B × N_B work matrices, and a private copy of the parameter
 *        gradient, reduced over slices in a fixed order after the parallel loop.
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

typedef struct sinkhorn_priv {
    int block;      /* b */
    int max_blocks; /* SortNet width; 0 = ceil(max_len / b) */
    int iters;      /* Sinkhorn iterations; 0 = row softmax */
    double tau;     /* temperature; 0 = 1 when iters = 0, 0.75 otherwise */
    int gumbel;     /* Gumbel noise on the scores while training */
} sinkhorn_priv;

static const lra_attn_option sinkhorn_options[] = {
    {.name = "block", .help = "block length b (LRA: 50, image tasks 64)",
     .offset = offsetof(sinkhorn_priv, block), .type = LRA_OPT_INT,
     .def = 50, .min = 1, .max = 1 << 20},
    {.name = "max_blocks", .help = "SortNet outputs (LRA: 25); 0 = ceil(max_len / block)",
     .offset = offsetof(sinkhorn_priv, max_blocks), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 1 << 16},
    {.name = "iters", .help = "Sinkhorn balancing iterations; 0 = row softmax (LRA default)",
     .offset = offsetof(sinkhorn_priv, iters), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 100},
    {.name = "tau", .help = "sort temperature; 0 = 1 for iters 0, else 0.75 (paper's best)",
     .offset = offsetof(sinkhorn_priv, tau), .type = LRA_OPT_FLOAT,
     .def = 0.0, .min = 0.0, .max = 1e3},
    {.name = "gumbel", .help = "add Gumbel noise to the sort scores while training",
     .offset = offsetof(sinkhorn_priv, gumbel), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = NULL},
};

typedef struct sinkhorn_dims {
    int T, D, b, nb, tp, nbmax, steps; /* tokens, head dim, block, N_B, N_B·b, width, steps */
    float s, tau, rate;                /* logit scale, temperature, dropout in effect */
} sinkhorn_dims;

static int sinkhorn_nbmax(const sinkhorn_priv *opt, const lra_attn_shape *sh)
{
    return opt->max_blocks > 0 ? opt->max_blocks : (sh->max_len + opt->block - 1) / opt->block;
}

static sinkhorn_dims sinkhorn_dims_of(const lra_attn_ctx *ctx)
{
    const sinkhorn_priv *opt = ctx->priv;
    sinkhorn_dims d = {.T = ctx->shape.len, .D = ctx->shape.dim, .b = opt->block};
    d.nb = (d.T + d.b - 1) / d.b;
    d.tp = d.nb * d.b;
    d.nbmax = sinkhorn_nbmax(opt, &ctx->shape);
    d.steps = opt->iters > 0 ? 2 * opt->iters : 1;
    d.s = 1.0f / sqrtf((float)d.D);
    d.tau = opt->tau > 0.0 ? (float)opt->tau : opt->iters > 0 ? 0.75f : 1.0f;
    d.rate = ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
    return d;
}

static int sinkhorn_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

/* ---- memory layout ---------------------------------------------------------------------- */

typedef struct sinkhorn_work {
    float *m, *ms;          /* (tp) key mask (0 on the tail); sorted mask m^s */
    float *km, *vm;         /* (tp, Dh) masked keys and values K̄, V̄ */
    float *ks, *vs;         /* (tp, Dh) sorted K^s, V^s */
    float *dkm, *dvm;       /* (tp, Dh) their gradients */
    float *dks, *dvs;       /* (tp, Dh) */
    float *dms;             /* (tp) */
    float *khat, *dkhat;    /* (N_B, Dh) block sums and their gradient */
    float *S, *dS, *dL;     /* (N_B, N_B) */
    float *a, *g;           /* (b, 2b) logits → probabilities; P̃, then dP̃ → dA */
    float *dpar;            /* (n_params) this slice's parameter gradient */
} sinkhorn_work;

static size_t sinkhorn_params(const sinkhorn_dims *d) { return (size_t)(d->D + 1) * d->nbmax; }

static size_t sinkhorn_cache_floats(const sinkhorn_dims *d)
{
    return (size_t)d->steps * d->nb * d->nb + (size_t)d->T;
}

static size_t sinkhorn_scratch_floats(const sinkhorn_dims *d)
{
    const size_t TD = (size_t)d->tp * d->D, NN = (size_t)d->nb * d->nb;
    return 3 * (size_t)d->tp + 8 * TD + 2 * (size_t)d->nb * d->D + 3 * NN +
           4 * (size_t)d->b * d->b + sinkhorn_params(d);
}

static sinkhorn_work sinkhorn_work_at(const lra_attn_ctx *ctx, const sinkhorn_dims *d, int bh)
{
    float *p = ctx->scratch + (size_t)bh * sinkhorn_scratch_floats(d);
    const size_t TD = (size_t)d->tp * d->D, NN = (size_t)d->nb * d->nb;
    sinkhorn_work w;
    float **vecs[] = {&w.m, &w.ms, &w.dms};
    for (size_t i = 0; i < 3; i++) *vecs[i] = p, p += d->tp;
    float **mats[] = {&w.km, &w.vm, &w.ks, &w.vs, &w.dkm, &w.dvm, &w.dks, &w.dvs};
    for (size_t i = 0; i < 8; i++) *mats[i] = p, p += TD;
    w.khat = p, p += (size_t)d->nb * d->D;
    w.dkhat = p, p += (size_t)d->nb * d->D;
    w.S = p, p += NN;
    w.dS = p, p += NN;
    w.dL = p, p += NN;
    w.a = p, p += 2 * (size_t)d->b * d->b;
    w.g = p, p += 2 * (size_t)d->b * d->b;
    w.dpar = p;
    return w;
}

/* ---- the soft sort ---------------------------------------------------------------------- */

/* m (tp), K̄ and V̄ (tp, Dh) from the inputs (T, Dh); the tail past T is padding. */
static void sinkhorn_mask_inputs(const sinkhorn_dims *d, const float *mask, const float *K,
                                 const float *V, sinkhorn_work *w)
{
    for (int j = 0; j < d->tp; j++) {
        const float mj = j < d->T && mask[j] != 0.0f ? 1.0f : 0.0f;
        w->m[j] = mj;
        for (int e = 0; e < d->D; e++) {
            const size_t at = (size_t)j * d->D + e;
            w->km[at] = mj != 0.0f ? K[at] : 0.0f;
            w->vm[at] = mj != 0.0f ? V[at] : 0.0f;
        }
    }
}

/* k̂_t = Σ_{j∈t} K̄_j (N_B, Dh). */
static void sinkhorn_block_sums(const sinkhorn_dims *d, const float *km, float *khat)
{
    memset(khat, 0, (size_t)d->nb * d->D * sizeof(float));
    for (int j = 0; j < d->tp; j++) {
        float *row = khat + (size_t)(j / d->b) * d->D;
        for (int e = 0; e < d->D; e++) row[e] += km[(size_t)j * d->D + e];
    }
}

/* L0 = (k̂ W + β + G)/τ (N_B, N_B), W (Dh, nbmax) truncated to the first N_B columns. */
static void sinkhorn_scores(const lra_attn_ctx *ctx, const sinkhorn_dims *d, int bh,
                            const float *khat, float *L0)
{
    const sinkhorn_priv *opt = ctx->priv;
    const float *W = ctx->params, *beta = ctx->params + (size_t)d->D * d->nbmax;
    const int nb = d->nb;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, nb, d->D, 1.0f, khat, d->D, W,
                d->nbmax, 0.0f, L0, nb);
    const int noise = opt->gumbel && ctx->training;
    const uint64_t key = lra_key(lra_attn_step_stream(ctx, bh), 0x47u);
    for (int t = 0; t < nb; t++)
        for (int u = 0; u < nb; u++) {
            float x = L0[(size_t)t * nb + u] + beta[u];
            if (noise) {
                /* G = −log(−log U), U in (0, 1) */
                const double U = lra_uniform(key, (uint64_t)t * nb + u) + 0x1p-25;
                x += (float)-log(-log(U));
            }
            L0[(size_t)t * nb + u] = x / d->tau;
        }
}

/* Normalisation step `step` (0-based; even = rows, odd = columns), in log space:
 * out = in − lse(in) along the step's axis. in and out (N_B, N_B) may not alias. */
static void sinkhorn_step(int nb, int step, const float *in, float *out)
{
    const size_t along = step % 2 ? (size_t)nb : 1, across = step % 2 ? 1 : (size_t)nb;
    for (int x = 0; x < nb; x++) {
        const float *v = in + x * across;
        float mx = -INFINITY;
        for (int y = 0; y < nb; y++) mx = fmaxf(mx, v[y * along]);
        double sum = 0.0;
        for (int y = 0; y < nb; y++) sum += exp((double)v[y * along] - mx);
        const float l = mx + (float)log(sum);
        for (int y = 0; y < nb; y++) out[x * across + y * along] = v[y * along] - l;
    }
}

/* Backward of sinkhorn_step, in place on g: forward was out = in − lse(in) along the axis, so
 * d in = d out − exp(out) ∘ (axis sums of d out), exp(out) being the step's normalised matrix. */
static void sinkhorn_step_backward(int nb, int step, const float *out, float *g)
{
    const size_t along = step % 2 ? (size_t)nb : 1, across = step % 2 ? 1 : (size_t)nb;
    for (int x = 0; x < nb; x++) {
        float *gv = g + x * across;
        const float *ov = out + x * across;
        double sum = 0.0;
        for (int y = 0; y < nb; y++) sum += gv[y * along];
        for (int y = 0; y < nb; y++) gv[y * along] -= expf(ov[y * along]) * (float)sum;
    }
}

/* K^s = S K̄, V^s = S V̄, m^s = S m: the blocks as rows of (N_B, b·Dh) and (N_B, b). */
static void sinkhorn_sort_blocks(const sinkhorn_dims *d, sinkhorn_work *w)
{
    const int nb = d->nb, bD = d->b * d->D;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, bD, nb, 1.0f, w->S, nb, w->km,
                bD, 0.0f, w->ks, bD);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, bD, nb, 1.0f, w->S, nb, w->vm,
                bD, 0.0f, w->vs, bD);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, d->b, nb, 1.0f, w->S, nb, w->m,
                d->b, 0.0f, w->ms, d->b);
}

/* S = exp(L_n) from the iterates (steps, N_B, N_B). */
static void sinkhorn_S(const sinkhorn_dims *d, const float *L, float *S)
{
    const size_t NN = (size_t)d->nb * d->nb;
    for (size_t i = 0; i < NN; i++) S[i] = expf(L[(size_t)(d->steps - 1) * NN + i]);
}

/* ---- attention of one block ------------------------------------------------------------- */

/* A (rows, 2b) = s·Q_t [K̄_t ; K^s_t]ᵀ + [0 ; log m^s_t], excluded keys at −∞. */
static void sinkhorn_logits(const sinkhorn_dims *d, int t, int rows, const float *Qt,
                            const sinkhorn_work *w, float *A)
{
    const int b = d->b, D = d->D;
    const size_t off = (size_t)t * b;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, b, D, d->s, Qt, D,
                w->km + off * D, D, 0.0f, A, 2 * b);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, b, D, d->s, Qt, D,
                w->ks + off * D, D, 0.0f, A + b, 2 * b);
    for (int r = 0; r < rows; r++) {
        float *row = A + (size_t)r * 2 * b;
        for (int j = 0; j < b; j++) {
            if (w->m[off + j] == 0.0f) row[j] = -INFINITY;
            const float ms = w->ms[off + j];
            row[b + j] = ms > 0.0f ? row[b + j] + logf(ms) : -INFINITY;
        }
    }
}

/* Rows of A (rows, ncol) become exp(a − lse); lse is written when lse_out, else read from
 * lse_in. A row without keys gets lse = +∞ and probabilities 0. */
static void sinkhorn_probs(float *A, int rows, int ncol, float *lse_out, const float *lse_in)
{
    for (int r = 0; r < rows; r++) {
        float *row = A + (size_t)r * ncol;
        if (!lse_out) {
            /* lra_expf (vectorised) maps −∞ to 0, also when lse_in is +∞. */
            for (int j = 0; j < ncol; j++) row[j] = lra_expf(row[j] - lse_in[r]);
            continue;
        }
        float mx = -INFINITY;
        for (int j = 0; j < ncol; j++) mx = fmaxf(mx, row[j]);
        if (mx == -INFINITY) { /* no key: −∞ − (−∞) would be NaN */
            lse_out[r] = INFINITY;
            memset(row, 0, (size_t)ncol * sizeof(float));
            continue;
        }
        for (int j = 0; j < ncol; j++) row[j] = lra_expf(row[j] - mx);
        const double sum = lra_sumf(row, ncol);
        lse_out[r] = sum > 0.0 ? mx + (float)log(sum) : INFINITY;
        const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
        for (int j = 0; j < ncol; j++) row[j] *= inv;
    }
}

/* dst = src ∘ Z/(1−p) on one block, Z_ij = [uniform(key, i·2b + j) >= p] for the ORIGINAL
 * query position i = t·b + r and key column j. dst may equal src. */
static void sinkhorn_dropout(const sinkhorn_dims *d, int t, int rows, uint64_t key, float *dst,
                             const float *src)
{
    const int ncol = 2 * d->b;
    const float inv_keep = 1.0f / (1.0f - d->rate);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < ncol; j++) {
            const size_t at = (size_t)r * ncol + j;
            const uint64_t ctr = ((uint64_t)t * d->b + r) * (uint64_t)ncol + j;
            dst[at] = lra_uniform(key, ctr) >= d->rate ? src[at] * inv_keep : 0.0f;
        }
}

static uint64_t sinkhorn_drop_key(const lra_attn_ctx *ctx, int bh)
{
    return lra_attn_step_stream(ctx, bh);
}

/* ---- forward ---------------------------------------------------------------------------- */

/* Mask, block sums and sorted blocks: everything before the attention, shared by forward and
 * backward. With `score` the scores are computed and normalised into the iterates L (the
 * slice's cache); without, backward reuses the iterates forward left there. */
static void sinkhorn_sort(const lra_attn_ctx *ctx, const sinkhorn_dims *d, int bh,
                          const float *K, const float *V, float *L, int score, sinkhorn_work *w)
{
    const float *mask = ctx->key_mask + (size_t)(bh / ctx->shape.heads) * d->T; /* (T) */
    const size_t NN = (size_t)d->nb * d->nb;
    sinkhorn_mask_inputs(d, mask, K, V, w);
    sinkhorn_block_sums(d, w->km, w->khat);
    if (score) {
        sinkhorn_scores(ctx, d, bh, w->khat, w->dL); /* dL holds L0 here */
        for (int st = 0; st < d->steps; st++)
            sinkhorn_step(d->nb, st, st ? L + (size_t)(st - 1) * NN : w->dL, L + st * NN);
    }
    sinkhorn_S(d, L, w->S);
    sinkhorn_sort_blocks(d, w);
}

static void sinkhorn_forward_slice(const lra_attn_ctx *ctx, const sinkhorn_dims *d, int bh,
                                   const float *Q, const float *K, const float *V, float *O)
{
    float *L = ctx->cache + (size_t)bh * sinkhorn_cache_floats(d); /* (steps, N_B, N_B) */
    float *lse = L + (size_t)d->steps * d->nb * d->nb;            /* (T) */
    sinkhorn_work w = sinkhorn_work_at(ctx, d, bh);
    sinkhorn_sort(ctx, d, bh, K, V, L, 1, &w);

    const int b = d->b, D = d->D;
    const uint64_t key = sinkhorn_drop_key(ctx, bh);
    for (int t = 0; t < d->nb; t++) {
        const int rows = d->T - t * b < b ? d->T - t * b : b;
        const size_t off = (size_t)t * b;
        sinkhorn_logits(d, t, rows, Q + off * D, &w, w.a);
        sinkhorn_probs(w.a, rows, 2 * b, lse + off, NULL);
        const float *P = w.a; /* (rows, 2b) */
        if (d->rate > 0.0f) {
            sinkhorn_dropout(d, t, rows, key, w.g, w.a);
            P = w.g;
        }
        /* O_t = P̃ [V̄_t ; V^s_t] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, D, b, 1.0f, P, 2 * b,
                    w.vm + off * D, D, 0.0f, O + off * D, D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, D, b, 1.0f, P + b, 2 * b,
                    w.vs + off * D, D, 1.0f, O + off * D, D);
    }
}

static void sinkhorn_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                             float *out)
{
    const sinkhorn_dims d = sinkhorn_dims_of(ctx);
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)d.T * d.D;
#pragma omp parallel for schedule(static) num_threads(sinkhorn_threads(ctx))
    for (int bh = 0; bh < BH; bh++)
        sinkhorn_forward_slice(ctx, &d, bh, q + bh * TD, k + bh * TD, v + bh * TD, out + bh * TD);
}

/* ---- backward --------------------------------------------------------------------------- */

/* Attention of block t backward: adds into dQ_t and the gradients of K̄, V̄, K^s, V^s, m^s. */
static void sinkhorn_block_backward(const sinkhorn_dims *d, int t, const float *Q,
                                    const float *O, const float *dO, const float *lse,
                                    uint64_t key, float *dQ, sinkhorn_work *w)
{
    const int b = d->b, D = d->D, ncol = 2 * b;
    const int rows = d->T - t * b < b ? d->T - t * b : b;
    const size_t off = (size_t)t * b;
    const float *Qt = Q + off * D, *dOt = dO + off * D;
    sinkhorn_logits(d, t, rows, Qt, w, w->a);
    sinkhorn_probs(w->a, rows, ncol, NULL, lse + off);

    /* forward was O_t = P̃ [V̄_t ; V^s_t], so d[V̄_t ; V^s_t] += P̃ᵀ dO_t, dP̃ = dO_t [..]ᵀ. */
    const float *P = w->a;
    if (d->rate > 0.0f) {
        sinkhorn_dropout(d, t, rows, key, w->g, w->a);
        P = w->g;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, rows, 1.0f, P, ncol, dOt, D,
                1.0f, w->dvm + off * D, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, rows, 1.0f, P + b, ncol, dOt, D,
                1.0f, w->dvs + off * D, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, b, D, 1.0f, dOt, D,
                w->vm + off * D, D, 0.0f, w->g, ncol);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, b, D, 1.0f, dOt, D,
                w->vs + off * D, D, 0.0f, w->g + b, ncol);
    /* forward was P̃ = P ∘ Z/(1−p), so dP = dP̃ ∘ Z/(1−p). */
    if (d->rate > 0.0f) sinkhorn_dropout(d, t, rows, key, w->g, w->g);

    /* forward was P = softmax(A) by rows, so dA = P ∘ (dP − D_i), D_i = do_i·o_i (B2). */
    for (int r = 0; r < rows; r++) {
        double Di = 0.0;
        for (int e = 0; e < D; e++) Di += (double)dOt[(size_t)r * D + e] * O[(off + r) * D + e];
        for (int j = 0; j < ncol; j++) {
            const size_t at = (size_t)r * ncol + j;
            w->g[at] = w->a[at] * (w->g[at] - (float)Di);
        }
    }

    /* forward was A = s·Q_t [K̄_t ; K^s_t]ᵀ + log m^s_t, so dQ_t += s·dA [K̄_t ; K^s_t],
     * d[K̄_t ; K^s_t] += s·dAᵀ Q_t and dm^s_tj += Σ_i dA_i,b+j / m^s_tj. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, D, b, d->s, w->g, ncol,
                w->km + off * D, D, 1.0f, dQ + off * D, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, D, b, d->s, w->g + b, ncol,
                w->ks + off * D, D, 1.0f, dQ + off * D, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, rows, d->s, w->g, ncol, Qt, D,
                1.0f, w->dkm + off * D, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, rows, d->s, w->g + b, ncol, Qt,
                D, 1.0f, w->dks + off * D, D);
    for (int j = 0; j < b; j++) {
        const float ms = w->ms[off + j];
        if (!(ms > 0.0f)) continue;
        double acc = 0.0;
        for (int r = 0; r < rows; r++) acc += w->g[(size_t)r * ncol + b + j];
        w->dms[off + j] += (float)(acc / ms);
    }
}

/* Backward of the soft sort: from the gradients of K^s, V^s, m^s to those of K̄, V̄, the
 * scores, the SortNet parameters (w.dpar) and the block sums (w.dkhat). */
static void sinkhorn_sort_backward(const lra_attn_ctx *ctx, const sinkhorn_dims *d,
                                   const float *L, sinkhorn_work *w)
{
    const int nb = d->nb, bD = d->b * d->D;
    const size_t NN = (size_t)nb * nb;
    /* forward was K^s = S K̄, V^s = S V̄, m^s = S m, so dK̄ += Sᵀ dK^s, dV̄ += Sᵀ dV^s and
     * dS = dK^s K̄ᵀ + dV^s V̄ᵀ + dm^s mᵀ (blocks as rows). */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nb, bD, nb, 1.0f, w->S, nb, w->dks, bD,
                1.0f, w->dkm, bD);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nb, bD, nb, 1.0f, w->S, nb, w->dvs, bD,
                1.0f, w->dvm, bD);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nb, bD, 1.0f, w->dks, bD, w->km,
                bD, 0.0f, w->dS, nb);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nb, bD, 1.0f, w->dvs, bD, w->vm,
                bD, 1.0f, w->dS, nb);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nb, d->b, 1.0f, w->dms, d->b, w->m,
                d->b, 1.0f, w->dS, nb);

    /* forward was S = exp(L_n), so dL_n = dS ∘ S; then each normalisation step backward. */
    for (size_t i = 0; i < NN; i++) w->dL[i] = w->dS[i] * w->S[i];
    for (int st = d->steps - 1; st >= 0; st--)
        sinkhorn_step_backward(nb, st, L + (size_t)st * NN, w->dL);

    /* forward was L0 = (k̂ W + β + G)/τ, so dR = dL0/τ, dW += k̂ᵀ dR, dβ += Σ_t dR_t,
     * dk̂ = dR Wᵀ (first N_B columns of W). */
    for (size_t i = 0; i < NN; i++) w->dL[i] /= d->tau;
    float *dW = w->dpar, *dbeta = w->dpar + (size_t)d->D * d->nbmax;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d->D, nb, nb, 1.0f, w->khat, d->D,
                w->dL, nb, 0.0f, dW, d->nbmax);
    for (int u = 0; u < nb; u++) {
        double acc = 0.0;
        for (int t = 0; t < nb; t++) acc += w->dL[(size_t)t * nb + u];
        dbeta[u] = (float)acc;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, d->D, nb, 1.0f, w->dL, nb,
                ctx->params, d->nbmax, 0.0f, w->dkhat, d->D);
}

static void sinkhorn_backward_slice(const lra_attn_ctx *ctx, const sinkhorn_dims *d, int bh,
                                    const float *Q, const float *K, const float *V,
                                    const float *O, const float *dO, float *dQ, float *dK,
                                    float *dV)
{
    float *L = ctx->cache + (size_t)bh * sinkhorn_cache_floats(d); /* (steps, N_B²), read only */
    const float *lse = L + (size_t)d->steps * d->nb * d->nb;      /* (T) */
    sinkhorn_work w = sinkhorn_work_at(ctx, d, bh);
    sinkhorn_sort(ctx, d, bh, K, V, L, 0, &w);
    const size_t TD = (size_t)d->tp * d->D;
    float *zero[] = {w.dkm, w.dvm, w.dks, w.dvs};
    for (int i = 0; i < 4; i++) memset(zero[i], 0, TD * sizeof(float));
    memset(w.dms, 0, (size_t)d->tp * sizeof(float));
    memset(w.dpar, 0, sinkhorn_params(d) * sizeof(float));

    const uint64_t key = sinkhorn_drop_key(ctx, bh);
    for (int t = 0; t < d->nb; t++) sinkhorn_block_backward(d, t, Q, O, dO, lse, key, dQ, &w);
    sinkhorn_sort_backward(ctx, d, L, &w);

    /* forward was K̄ = m∘K, V̄ = m∘V and k̂_t = Σ_{j∈t} K̄_j, so padded keys get nothing. */
    for (int j = 0; j < d->T; j++) {
        if (w.m[j] == 0.0f) continue;
        const float *gk = w.dkhat + (size_t)(j / d->b) * d->D;
        for (int e = 0; e < d->D; e++) {
            const size_t at = (size_t)j * d->D + e;
            dK[at] += w.dkm[at] + gk[e];
            dV[at] += w.dvm[at];
        }
    }
}

static void sinkhorn_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              const float *out, const float *dout, float *dq, float *dk,
                              float *dv)
{
    const sinkhorn_dims d = sinkhorn_dims_of(ctx);
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)d.T * d.D;
#pragma omp parallel for schedule(static) num_threads(sinkhorn_threads(ctx))
    for (int bh = 0; bh < BH; bh++)
        sinkhorn_backward_slice(ctx, &d, bh, q + bh * TD, k + bh * TD, v + bh * TD,
                                out + bh * TD, dout + bh * TD, dq + bh * TD, dk + bh * TD,
                                dv + bh * TD);
    /* The parameters are shared by all slices: reduce the per-slice partials in slice order,
     * so the sum does not depend on the thread count. */
    const size_t np = sinkhorn_params(&d);
    for (int bh = 0; bh < BH; bh++) {
        const float *part = sinkhorn_work_at(ctx, &d, bh).dpar;
        for (size_t i = 0; i < np; i++) ctx->dparams[i] += part[i];
    }
}

/* ---- descriptor ------------------------------------------------------------------------- */

static void sinkhorn_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const sinkhorn_dims d = sinkhorn_dims_of(ctx);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = sinkhorn_params(&d), /* W (Dh, max_blocks), β (max_blocks) */
        .n_state   = 0,
        .n_cache   = slices * sinkhorn_cache_floats(&d),
        .n_scratch = slices * sinkhorn_scratch_floats(&d),
    };
}

static double sinkhorn_flops(const lra_attn_ctx *ctx)
{
    const sinkhorn_dims d = sinkhorn_dims_of(ctx);
    const double slices = (double)ctx->shape.batch * ctx->shape.heads;
    const double T = d.T, D = d.D, nb = d.nb, tp = d.tp;
    /* Attention over 2b keys: 4·2b·Dh per query plus about 5 per logit. Sorting: scores
     * 2·N_B²·Dh, about 5·N_B² per normalisation step, and S times K̄, V̄, m: 2·N_B·tp·(2Dh+1). */
    const double attn = T * 2.0 * d.b * (4.0 * D + 5.0);
    const double sort = 2.0 * nb * nb * D + 5.0 * nb * nb * d.steps + 2.0 * nb * tp * (2 * D + 1);
    return slices * (attn + sort + tp * D);
}

static int sinkhorn_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const sinkhorn_priv *opt = ctx->priv;
    if (opt->block < 1 || opt->iters < 0 || opt->max_blocks < 0 ||
        !(opt->tau >= 0.0 && isfinite(opt->tau))) {
        snprintf(err, errlen, "block must be >= 1; iters, max_blocks and tau >= 0");
        return LRA_ATTN_EINVAL;
    }
    const sinkhorn_dims d = sinkhorn_dims_of(ctx);
    if (d.nb > d.nbmax) {
        snprintf(err, errlen, "%d tokens make %d blocks of %d, more than the %d SortNet outputs "
                 "(max_blocks)", d.T, d.nb, d.b, d.nbmax);
        return LRA_ATTN_ESHAPE;
    }
    /* SortNet as a dense layer with LeCun-normal weights (LRA's nn.Dense) and zero bias. */
    const float sd = 1.0f / sqrtf((float)d.D);
    const uint64_t key = lra_key(ctx->seed, 0x534f5254u);
    for (size_t i = 0; i < (size_t)d.D * d.nbmax; i++) ctx->params[i] = sd * lra_normal(key, i);
    for (int u = 0; u < d.nbmax; u++) ctx->params[(size_t)d.D * d.nbmax + u] = 0.0f;
    return LRA_ATTN_OK;
}

/* Gumbel noise is drawn only while training, keyed by the step like attention dropout, so the
 * variant is not flagged STOCHASTIC (its evaluation is deterministic) nor NONSMOOTH. */
const lra_attention lra_attn_sinkhorn = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "sinkhorn",
    .help        = "Sparse Sinkhorn attention, local + softly sorted blocks (Tay et al. 2020, "
                   "arXiv 2002.11296); O(T b Dh + N_B^2 b Dh)",
    .flags       = 0,
    .priv_size   = sizeof(sinkhorn_priv),
    .options     = sinkhorn_options,
    .check_options = "block=3",
    .softmax_limit_options = "block=8",
    .sizes       = sinkhorn_sizes,
    .flops       = sinkhorn_flops,
    .init        = sinkhorn_init,
    .forward     = sinkhorn_forward,
    .backward    = sinkhorn_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_sinkhorn)
