/* sinkformer.c — Sinkformer: attention made (close to) doubly stochastic by Sinkhorn iterations,
 * computed in strips of query rows with O(T) memory per slice.
 *
 * Sander, Ablin, Blondel, Peyré, "Sinkformers: Transformers with Doubly Stochastic Attention",
 * AISTATS 2022 (PMLR 151), arXiv 2110.11773; code michaelsdr/sinkformers. attention-variants.md
 * §18. Per (batch, head) slice, with C = s·Q Kᵀ (s = 1/sqrt(Dh)) and potentials u, v (T each,
 * both 0 at the start), `iters` = n log-domain normalisation steps alternate, row step first:
 *     row step    (odd l):  u_l,i = −lse_{j real}(C_ij + v_{l−1},j),   v_l = v_{l−1}
 *     column step (even l): v_l,j = −lse_{i real}(C_ij + u_{l−1},i),   u_l = u_{l−1}
 * (the code's u ← u − lse(C + u + v) with the old u cancelled), then A = exp(C + u_n 1ᵀ + 1 v_nᵀ)
 * on real keys and O = Ã V, Ã = A after attention dropout (the keep mask and counters i·T + j of
 * attention/softmax.c, so iters=1 equals softmax up to float rounding, dropout included). This is the
 * reference code's iteration with marginals 1/n and A = n·π, ε = 1, written with log-marginal 0.
 * iters = 1 is exact softmax attention; odd iters end on a row step (rows sum to 1 exactly,
 * columns approximately), even iters on a column step. Default 5: the reference README's
 * near-doubly-stochastic demonstration (the paper's per-experiment values: §18, unverified).
 * Padding (defined here, §18's restriction to the real block): padded keys are outside every
 * lse and get A_ij = 0 (v = −∞ there). Padded queries are excluded from the column sums, so on
 * the real block A tends to a doubly stochastic matrix and nothing a padded token holds reaches a
 * real output; a padded query still takes part in the row steps. A slice without real tokens
 * gives O = 0.
 *
 * Algorithm. Nothing T×T is stored: each pass recomputes C one strip of block_q query rows at a
 * time (cblas_sgemm Q_I Kᵀ, block_q × T) and exponentiates it with the potentials of the step at
 * hand, in the log domain with max shifts, so nothing overflows at any T. A strip holds whole
 * rows, so a row step finishes within the strip and leaves the row-normalised iterate P <= 1;
 * the column step after it needs only column sums of that P over the real queries
 * (v_new = v − log Σ_i P_ij, no second exp), accumulated strip by strip. A column whose mass is
 * under 1e-20 (a key that every real query ignores) is redone by an exact column log-sum-exp
 * with a running maximum in an extra pass. One pass therefore does a row and a column step:
 *   forward:  ⌊n/2⌋ passes (row l, column l+1), then one output pass (for odd n it also does
 *             row step n, like FlashAttention's forward with a key bias v).
 *   backward: with P^l = exp(C + u_l + v_l) (the iterate after step l; P^n = A) and adjoints
 *             ū, v̄ started at ū = rowsum G = dO_i·O_i, v̄ = colsum G = V_j·(Ãᵀ dO)_j
 *             (G = A ∘ dA, dA = dO Vᵀ ∘ Z/(1−p)), the exact unrolled backward (B5) is, for
 *             l = n … 1: row step: a_l = ū, ū = 0, v̄ −= P^lᵀ a_l;  column step: b_l = v̄
 *             (real keys), v̄ = 0, ū −= [i real]·P^l b_l; and then
 *                 dC = A ∘ dA − Σ_{l odd} diag(a_l) P^l − Σ_{l even} diag(m) P^l diag(b_l).
 *             A first pass gives dV and colsum G (and, for odd n, step n); each further pass
 *             does a column step's row reduction and the preceding row step's column
 *             reduction; the last one also forms dC strip by strip and adds s·dC K to dQ and
 *             s·dCᵀ Q to dK. A column step's iterate is the preceding row step's times
 *             κ_j = exp(v_l − v_{l−2}) = 1/column mass, so each (row, column) pair of iterates
 *             costs one exp per entry (sk_kappa; exponentiated separately where κ > 1e20).
 *
 * Complexity: per slice 2·T²·Dh flops per pass for recomputing C, ⌊n/2⌋ + 1 passes each way,
 *          plus 2·T²·Dh for Ã V forward and 8·T²·Dh backward (Ãᵀ dO, dO Vᵀ, dC K, dCᵀ Q);
 *          exps per entry: ⌊n/2⌋ + 1 forward, n + 1 backward (n = 5: 3 and 6); the dropout
 *          mask is hashed once forward and twice backward. O(T·(n + Dh + block_q)) memory.
 * Cache:   per slice the potential made by every step, x_l = u_l (odd l) or v_l (even l, −∞ on
 *          padded keys): n·T floats. Every iterate P^l is recomputed from C, x_l and x_{l−1}.
 * Scratch: per slice two block_q × T strips (C and an exponentiated iterate or dA → dC), the
 *          adjoints and the κ of every step (2·n·T), Ãᵀ dO (T·Dh), eight T-vectors and n flag
 *          bytes. Per slice rather than per thread because sizes() may not depend on the
 *          thread count. A strip of 32 rows is 128 KB at T = 1024 and 512 KB at T = 4096, in a
 *          1 MB L2; 64 rows measured no faster at T = 2048, 16 slower.
 * Threads: one OpenMP loop over the B·H slices; BLAS runs single-threaded inside it. Every
 *          reduction runs in a fixed order within one slice, so results do not depend on the
 *          thread count.
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

typedef struct sinkformer_priv {
    int iters;   /* n: normalisation steps, row step first; 1 = softmax */
    int block_q; /* query rows per strip */
} sinkformer_priv;

static const lra_attn_option sinkformer_options[] = {
    {.name = "iters", .help = "Sinkhorn normalisation steps (rows, columns, rows, ...); "
                              "1 = softmax; reference README: 5",
     .offset = offsetof(sinkformer_priv, iters), .type = LRA_OPT_INT,
     .def = 5, .min = 1, .max = 1000},
    {.name = "block_q", .help = "query rows per recomputed strip of logits (clamped to the "
                                "sequence length); does not change the result",
     .offset = offsetof(sinkformer_priv, block_q), .type = LRA_OPT_INT,
     .def = 32, .min = 1, .max = 4096},
    {.name = NULL},
};

/* Lanes of the partial maxima and sums below: one AVX-512 register. */
enum { SK_LANES = 16 };

/* One slice's inputs, cache, scratch and constants. */
typedef struct sk_slice {
    const float *Q, *K, *V; /* (T, Dh) */
    const float *mask;      /* (T) 1 = real token (key and query) */
    float *X;               /* cache (n, T): x_l at X + (l−1)·T */
    float *S, *W;           /* (bq, T) strips: C; an iterate P^l, or dA → dC */
    float *adj;             /* (n, T) a_l (odd l) or b_l (even l) at adj + (l−1)·T */
    float *dvacc;           /* (T, Dh) Ãᵀ dO */
    float *vb0;             /* (T) v_0: 0 on real keys, −∞ on padded keys */
    float *cm, *cs, *tmp;   /* (T) column running maximum and sum; strip column maximum */
    float *ub, *vb, *vn;    /* (T) adjoints ū, v̄ and the v̄ being accumulated */
    float *dd;              /* (T) D_i = dO_i·O_i */
    float *kap;             /* (n, T) κ^l of column step l at kap + (l−1)·T (backward) */
    unsigned char *fast;    /* (n) column step l's κ^l usable (backward) */
    uint64_t key;           /* dropout stream of this slice */
    int T, D, n, bq, real;  /* real: number of real tokens */
    float s, p;             /* logit scale, dropout rate (0: off) */
} sk_slice;

static int sinkformer_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

static float sinkformer_drop_rate(const lra_attn_ctx *ctx)
{
    return ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
}

/* The dropout stream of slice bh at this step: attention/softmax.c's. */
static uint64_t sinkformer_drop_key(const lra_attn_ctx *ctx, int bh)
{
    return lra_attn_step_stream(ctx, bh);
}

static int sinkformer_bq(const lra_attn_ctx *ctx)
{
    const sinkformer_priv *opt = ctx->priv;
    return opt->block_q < ctx->shape.len ? opt->block_q : ctx->shape.len;
}

static size_t sinkformer_cache_floats(const lra_attn_ctx *ctx)
{
    const sinkformer_priv *opt = ctx->priv;
    return (size_t)opt->iters * ctx->shape.len;
}

static size_t sinkformer_scratch_floats(const lra_attn_ctx *ctx)
{
    const sinkformer_priv *opt = ctx->priv;
    const size_t T = (size_t)ctx->shape.len;
    return 2 * (size_t)sinkformer_bq(ctx) * T + 2 * (size_t)opt->iters * T +
           T * ctx->shape.dim + 8 * T + ((size_t)opt->iters + 3) / 4;
}

static sk_slice sinkformer_slice_at(const lra_attn_ctx *ctx, int bh, const float *q,
                                    const float *k, const float *v)
{
    const sinkformer_priv *opt = ctx->priv;
    const int T = ctx->shape.len, D = ctx->shape.dim, bq = sinkformer_bq(ctx);
    const size_t TD = (size_t)T * D;
    sk_slice z = {.Q = q + bh * TD, .K = k + bh * TD, .V = v + bh * TD,
                  .mask = ctx->key_mask + (size_t)(bh / ctx->shape.heads) * T,
                  .X = ctx->cache + bh * sinkformer_cache_floats(ctx),
                  .key = sinkformer_drop_key(ctx, bh), .T = T, .D = D, .n = opt->iters,
                  .bq = bq, .s = 1.0f / sqrtf((float)D), .p = sinkformer_drop_rate(ctx)};
    float *w = ctx->scratch + bh * sinkformer_scratch_floats(ctx);
    z.S = w, w += (size_t)bq * T;
    z.W = w, w += (size_t)bq * T;
    z.adj = w, w += (size_t)z.n * T;
    z.dvacc = w, w += TD;
    float **vecs[] = {&z.vb0, &z.cm, &z.cs, &z.tmp, &z.ub, &z.vb, &z.vn, &z.dd};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) *vecs[i] = w, w += T;
    z.kap = w, w += (size_t)z.n * T;
    z.fast = (unsigned char *)w; /* n bytes in the last ⌈n/4⌉ floats */
    for (int j = 0; j < T; j++) {
        z.real += z.mask[j] != 0.0f;
        z.vb0[j] = z.mask[j] != 0.0f ? 0.0f : -INFINITY;
    }
    return z;
}

/* x_l, the potential step l made (l >= 1); x_0 = v_0. */
static const float *sk_x(const sk_slice *z, int l)
{
    return l == 0 ? z->vb0 : z->X + (size_t)(l - 1) * z->T;
}
/* Row and column potentials of the iterate after step l >= 1: one of them is x_l, the other
 * was carried from step l − 1. */
static const float *sk_urow(const sk_slice *z, int l) { return sk_x(z, l % 2 ? l : l - 1); }
static const float *sk_vcol(const sk_slice *z, int l) { return sk_x(z, l % 2 ? l - 1 : l); }

/* ---- Vectorisable row kernels (SK_LANES partial results, so GCC emits AVX-512) ---- */

/* max_j (x_j + b_j). */
static float sk_max_bias(const float *x, const float *b, int n)
{
    float m[SK_LANES];
    for (int l = 0; l < SK_LANES; l++) m[l] = -INFINITY;
    int j = 0;
    for (; j + SK_LANES <= n; j += SK_LANES)
#pragma GCC unroll 1
        for (int l = 0; l < SK_LANES; l++) {
            const float y = x[j + l] + b[j + l];
            m[l] = y > m[l] ? y : m[l];
        }
    for (; j < n; j++) m[0] = x[j] + b[j] > m[0] ? x[j] + b[j] : m[0];
    float mx = m[0];
    for (int l = 1; l < SK_LANES; l++) mx = m[l] > mx ? m[l] : mx;
    return mx;
}

/* dst_j = exp(x_j + b_j + c) (0 where b_j = −∞); returns Σ_j dst_j. dst may equal x. */
static double sk_exp_bias(float *dst, const float *x, const float *b, float c, int n)
{
    float acc[SK_LANES] = {0};
    int j = 0;
    for (; j + SK_LANES <= n; j += SK_LANES)
        for (int l = 0; l < SK_LANES; l++) {
            dst[j + l] = lra_expf(x[j + l] + b[j + l] + c);
            acc[l] += dst[j + l];
        }
    for (; j < n; j++) {
        dst[j] = lra_expf(x[j] + b[j] + c);
        acc[0] += dst[j];
    }
    double sum = 0.0;
    for (int l = 0; l < SK_LANES; l++) sum += acc[l];
    return sum;
}

/* Σ_j x_j y_j. */
static double sk_dot(const float *x, const float *y, int n)
{
    float acc[SK_LANES] = {0};
    int j = 0;
    for (; j + SK_LANES <= n; j += SK_LANES)
        for (int l = 0; l < SK_LANES; l++) acc[l] += x[j + l] * y[j + l];
    for (; j < n; j++) acc[0] += x[j] * y[j];
    double sum = 0.0;
    for (int l = 0; l < SK_LANES; l++) sum += acc[l];
    return sum;
}

/* S = s·Q_I Kᵀ for the nr query rows from i0: (nr, T). */
static void sk_logits(const sk_slice *z, int i0, int nr)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, z->T, z->D, z->s,
                z->Q + (size_t)i0 * z->D, z->D, z->K, z->D, 0.0f, z->S, z->T);
}

/* E ← E ∘ Z/(1−p) on the row of query i (softmax.c's counters i·T + j). */
static void sk_dropout_row(const sk_slice *z, float *e, int i)
{
    /* Locals, not z's fields: a float store through e could alias z->p, which would keep GCC
     * from vectorising the 64-bit hash. */
    const float p = z->p, inv_keep = 1.0f / (1.0f - p);
    const uint64_t key = z->key, row = (uint64_t)i * (uint64_t)z->T;
    const int T = z->T;
    for (int j = 0; j < T; j++)
        e[j] = lra_uniform(key, row + (uint64_t)j) >= p ? e[j] * inv_keep : 0.0f;
}

/* ---- Forward ---- */

/* Online column log-sum-exp: adds the real rows of the strip S (nr rows from i0), shifted by
 * their row potentials u (T, indexed by query), to the running maximum cm and sum cs. */
static void sk_col_accumulate(const sk_slice *z, int i0, int nr, const float *u)
{
    const int T = z->T;
    int any = 0;
    for (int j = 0; j < T; j++) z->tmp[j] = -INFINITY;
    for (int r = 0; r < nr; r++) {
        if (z->mask[i0 + r] == 0.0f) continue;
        const float *srow = z->S + (size_t)r * T, ur = u[i0 + r];
        for (int j = 0; j < T; j++) {
            const float y = srow[j] + ur;
            z->tmp[j] = y > z->tmp[j] ? y : z->tmp[j];
        }
        any = 1;
    }
    if (!any) return;
    /* The strip's rows are finite, so the new maximum is; the old sum is rescaled to it
     * (exp(−∞) = 0 on the first strip with a real row). */
    for (int j = 0; j < T; j++) {
        const float m = z->tmp[j] > z->cm[j] ? z->tmp[j] : z->cm[j];
        z->cs[j] *= lra_expf(z->cm[j] - m);
        z->cm[j] = m;
    }
    for (int r = 0; r < nr; r++) {
        if (z->mask[i0 + r] == 0.0f) continue;
        const float *srow = z->S + (size_t)r * T, ur = u[i0 + r];
        for (int j = 0; j < T; j++) z->cs[j] += lra_expf(srow[j] + ur - z->cm[j]);
    }
}

/* Column masses below this are recomputed by the exact column log-sum-exp (sk_col_accumulate):
 * entries that exp() flushed to 0 (under 1.2e-38 each, T of them) are then still negligible
 * against the mass, and 1/mass stays far from float overflow in backward's κ. */
#define SK_MIN_MASS 1e-20f

/* One pass: row step l (odd) into x_l, then column step l + 1 into x_{l+1}. The row step leaves
 * the row-normalised iterate P = exp(C + u_l + v_{l−1}) <= 1 in W, so the column step is
 * v_{l+1} = v_{l−1} − log Σ_{i real} P_ij without exponentiating again; a column whose mass is
 * under SK_MIN_MASS (a key every real query all but ignores) is redone exactly in a second pass
 * with the running maximum, which is rare. */
static void sk_forward_pair(const sk_slice *z, int l)
{
    const int T = z->T;
    const float *v = sk_x(z, l - 1);
    float *u = z->X + (size_t)(l - 1) * T, *vout = z->X + (size_t)l * T;
    for (int j = 0; j < T; j++) z->cs[j] = 0.0f;
    for (int i0 = 0; i0 < T; i0 += z->bq) {
        const int nr = T - i0 < z->bq ? T - i0 : z->bq;
        sk_logits(z, i0, nr);
        for (int r = 0; r < nr; r++) {
            const float *srow = z->S + (size_t)r * T;
            float *w = z->W + (size_t)r * T;
            const float mx = sk_max_bias(srow, v, T);
            const double ell = sk_exp_bias(w, srow, v, -mx, T);
            u[i0 + r] = -(mx + (float)log(ell));
            if (z->mask[i0 + r] == 0.0f) continue;
            const float inv = (float)(1.0 / ell);
            for (int j = 0; j < T; j++) z->cs[j] += w[j] * inv;
        }
    }
    int exact = 0;
    for (int j = 0; j < T; j++) {
        vout[j] = z->mask[j] != 0.0f ? v[j] - logf(z->cs[j]) : -INFINITY;
        exact |= z->mask[j] != 0.0f && !(z->cs[j] >= SK_MIN_MASS);
    }
    if (!exact) return;
    for (int j = 0; j < T; j++) z->cm[j] = -INFINITY, z->cs[j] = 0.0f;
    for (int i0 = 0; i0 < T; i0 += z->bq) {
        const int nr = T - i0 < z->bq ? T - i0 : z->bq;
        sk_logits(z, i0, nr);
        sk_col_accumulate(z, i0, nr, u);
    }
    for (int j = 0; j < T; j++)
        if (z->mask[j] != 0.0f && vout[j] - v[j] > -logf(SK_MIN_MASS))
            vout[j] = -(z->cm[j] + logf(z->cs[j]));
}

/* The output pass: O = Ã V with A = exp(C + u_n + v_n); for odd n it first makes u_n (row step
 * n) from the row it exponentiates anyway. */
static void sk_forward_output(const sk_slice *z, float *O)
{
    const int T = z->T, D = z->D, n = z->n;
    const float *v = sk_vcol(z, n);
    float *u = z->X + (size_t)(n % 2 ? n - 1 : n - 2) * T; /* x_n or x_{n−1} */
    for (int i0 = 0; i0 < T; i0 += z->bq) {
        const int nr = T - i0 < z->bq ? T - i0 : z->bq;
        sk_logits(z, i0, nr);
        for (int r = 0; r < nr; r++) {
            float *row = z->S + (size_t)r * T;
            if (n % 2) {
                /* row step n: u = −lse(C + v); A = exp(C + v − mx)/ℓ = exp(C + u + v). */
                const float mx = sk_max_bias(row, v, T);
                const double ell = sk_exp_bias(row, row, v, -mx, T);
                u[i0 + r] = -(mx + (float)log(ell));
                const float inv = (float)(1.0 / ell);
                for (int j = 0; j < T; j++) row[j] *= inv;
            } else {
                (void)sk_exp_bias(row, row, v, u[i0 + r], T);
            }
            if (z->p > 0.0f) sk_dropout_row(z, row, i0 + r);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, T, 1.0f, z->S, T, z->V, D,
                    0.0f, O + (size_t)i0 * D, D);
    }
}

static void sk_forward_slice(const sk_slice *z, float *O)
{
    if (z->real == 0) { /* no real key: A = 0 */
        memset(O, 0, (size_t)z->T * z->D * sizeof(float));
        memset(z->X, 0, (size_t)z->n * z->T * sizeof(float));
        return;
    }
    for (int l = 1; l + 1 <= z->n; l += 2) sk_forward_pair(z, l);
    sk_forward_output(z, O);
}

/* ---- Backward ---- */

/* W row r = P^l row of query i0 + r (exp of C + u_l + v_l; 0 on padded keys). */
static void sk_iterate_row(const sk_slice *z, float *w, const float *srow, int i, int l)
{
    (void)sk_exp_bias(w, srow, sk_vcol(z, l), sk_urow(z, l)[i], z->T);
}

/* Pass 0: dV += Ãᵀ dO; v̄ = colsum G = V_j·(Ãᵀ dO)_j, and for odd n also step n's
 * v̄ −= Aᵀ a_n with a_n = D. */
static void sk_backward_first(const sk_slice *z, const float *dO, float *dV)
{
    const int T = z->T, D = z->D, n = z->n;
    memset(z->dvacc, 0, (size_t)T * D * sizeof(float));
    memset(z->vn, 0, (size_t)T * sizeof(float));
    for (int i0 = 0; i0 < T; i0 += z->bq) {
        const int nr = T - i0 < z->bq ? T - i0 : z->bq;
        sk_logits(z, i0, nr);
        for (int r = 0; r < nr; r++) {
            float *row = z->S + (size_t)r * T;
            sk_iterate_row(z, row, row, i0 + r, n);
            if (n % 2) {
                const float a = z->dd[i0 + r];
                for (int j = 0; j < T; j++) z->vn[j] -= a * row[j];
            }
            if (z->p > 0.0f) sk_dropout_row(z, row, i0 + r);
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, nr, 1.0f, z->S, T,
                    dO + (size_t)i0 * D, D, 1.0f, z->dvacc, D);
    }
    for (size_t i = 0; i < (size_t)T * D; i++) dV[i] += z->dvacc[i];
    for (int j = 0; j < T; j++)
        z->vb[j] = z->mask[j] != 0.0f ? (float)sk_dot(z->V + (size_t)j * D,
                                                       z->dvacc + (size_t)j * D, D) + z->vn[j]
                                      : 0.0f;
}

/* κ^l (l even) = exp(v_l − v_{l−2}) = 1/(column mass of P^{l−1} over the real queries), so
 * P^l = P^{l−1} diag(κ^l): a column step's iterate from the preceding row step's by one
 * multiplication instead of an exp. Used where every real κ^l_j <= 1/SK_MIN_MASS (P^{l−1} <= 1,
 * so nothing overflows and an entry exp() flushed to 0 errs by < 1e-18); elsewhere P^l is
 * exponentiated. Fills κ (0 on padded keys) and returns whether step l may use it. */
static int sk_kappa(const sk_slice *z, int l)
{
    const int T = z->T;
    float *kap = z->kap + (size_t)(l - 1) * T;
    const float *vl = sk_x(z, l), *vp = sk_x(z, l - 2);
    int ok = 1;
    for (int j = 0; j < T; j++) {
        kap[j] = z->mask[j] != 0.0f ? lra_expf(vl[j] - vp[j]) : 0.0f;
        ok &= kap[j] <= 1.0f / SK_MIN_MASS;
    }
    return ok;
}

/* dC for the strip in S (rows from i0), all adjoints known for its rows; then dQ_I += s·dC K
 * and dK += s·dCᵀ Q_I. */
static void sk_backward_dc(const sk_slice *z, int i0, int nr, const float *dO, float *dQ,
                           float *dK)
{
    const int T = z->T, D = z->D, n = z->n;
    /* forward was O = Ã V, so dÃ = dO Vᵀ. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, 1.0f, dO + (size_t)i0 * D,
                D, z->V, D, 0.0f, z->W, T);
    float *tmp = z->tmp;
    for (int r = 0; r < nr; r++) {
        const int i = i0 + r;
        const float rm = z->mask[i] != 0.0f ? 1.0f : 0.0f;
        float *w = z->W + (size_t)r * T;
        const float *srow = z->S + (size_t)r * T;
        /* dA = dÃ ∘ Z/(1−p); then G = A ∘ dA with A = P^n, and every step's term of dC:
         * −a_l,i P^l_ij (row step l), −[i real] b_l,j P^l_ij (column step l), in pairs
         * (row step l − 1, column step l) sharing one exp where κ^l allows. */
        if (z->p > 0.0f) sk_dropout_row(z, w, i);
        int l = n;
        if (n % 2) {
            const float a = z->adj[(size_t)(n - 1) * T + i];
            (void)sk_exp_bias(tmp, srow, sk_vcol(z, n), sk_urow(z, n)[i], T);
            for (int j = 0; j < T; j++) w[j] = tmp[j] * (w[j] - a);
            l = n - 1;
        } else {
            const float *b = z->adj + (size_t)(n - 1) * T;
            if (z->fast[n - 1]) {
                const float *kap = z->kap + (size_t)(n - 1) * T;
                const float a = z->adj[(size_t)(n - 2) * T + i];
                (void)sk_exp_bias(tmp, srow, sk_vcol(z, n - 1), sk_urow(z, n - 1)[i], T);
                for (int j = 0; j < T; j++)
                    w[j] = tmp[j] * kap[j] * (w[j] - rm * b[j]) - a * tmp[j];
                l = n - 2;
            } else {
                (void)sk_exp_bias(tmp, srow, sk_vcol(z, n), sk_urow(z, n)[i], T);
                for (int j = 0; j < T; j++) w[j] = tmp[j] * (w[j] - rm * b[j]);
                l = n - 1;
            }
        }
        while (l >= 1) {
            const float *c = z->adj + (size_t)(l - 1) * T;
            if (l % 2) {
                (void)sk_exp_bias(tmp, srow, sk_vcol(z, l), sk_urow(z, l)[i], T);
                const float a = c[i];
                for (int j = 0; j < T; j++) w[j] -= a * tmp[j];
                l -= 1;
            } else if (z->fast[l - 1]) {
                const float *kap = z->kap + (size_t)(l - 1) * T;
                const float a = z->adj[(size_t)(l - 2) * T + i];
                (void)sk_exp_bias(tmp, srow, sk_vcol(z, l - 1), sk_urow(z, l - 1)[i], T);
                for (int j = 0; j < T; j++) w[j] -= (rm * c[j] * kap[j] + a) * tmp[j];
                l -= 2;
            } else {
                if (rm != 0.0f) {
                    (void)sk_exp_bias(tmp, srow, sk_vcol(z, l), sk_urow(z, l)[i], T);
                    for (int j = 0; j < T; j++) w[j] -= c[j] * tmp[j];
                }
                l -= 1;
            }
        }
    }
    /* forward was C = s·Q Kᵀ, so dQ_I += s·dC K and dK += s·dCᵀ Q_I. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, T, z->s, z->W, T, z->K, D,
                1.0f, dQ + (size_t)i0 * D, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, nr, z->s, z->W, T,
                z->Q + (size_t)i0 * D, D, 1.0f, dK, D);
}

/* One pass from column step l (even, b_l = v̄ complete) down: its row reduction gives
 * a_{l−1} = ū strip by strip; then row step l − 1's column reduction into the next v̄, or, when
 * l − 1 = 1, dC. n = 1 comes here with l = 0: dC only, a_1 = ū = D. */
static void sk_backward_pass(const sk_slice *z, int l, const float *dO, float *dQ, float *dK)
{
    const int T = z->T;
    float *b = l >= 2 ? z->adj + (size_t)(l - 1) * T : NULL;
    float *a = z->adj + (size_t)(l >= 2 ? l - 2 : 0) * T;
    const int fast = b && z->fast[l - 1];
    float *bk = z->cs; /* (T) κ^l ∘ b_l: P^l b_l = P^{l−1} (κ^l ∘ b_l) */
    if (b)
        for (int j = 0; j < T; j++) {
            b[j] = z->mask[j] != 0.0f ? z->vb[j] : 0.0f;
            if (fast) bk[j] = z->kap[(size_t)(l - 1) * T + j] * b[j];
        }
    memset(z->vn, 0, (size_t)T * sizeof(float));
    for (int i0 = 0; i0 < T; i0 += z->bq) {
        const int nr = T - i0 < z->bq ? T - i0 : z->bq;
        sk_logits(z, i0, nr);
        for (int r = 0; r < nr; r++) {
            const int i = i0 + r;
            const float *srow = z->S + (size_t)r * T;
            float *w = z->W + (size_t)r * T;
            const int real = z->mask[i] != 0.0f, need_prev = l - 1 > 1;
            /* w = P^{l−1} when it serves both reductions, else P^l for the row reduction. */
            if (fast && (real || need_prev))
                sk_iterate_row(z, w, srow, i, l - 1);
            /* forward was v_l = −lse_{i real}(C + u_{l−1}), so ū_i −= [i real] Σ_j P^l_ij b_j */
            if (b && real) {
                if (fast) {
                    z->ub[i] -= (float)sk_dot(w, bk, T);
                } else {
                    sk_iterate_row(z, w, srow, i, l);
                    z->ub[i] -= (float)sk_dot(w, b, T);
                    if (need_prev) sk_iterate_row(z, w, srow, i, l - 1);
                }
            } else if (b && !fast && need_prev) {
                sk_iterate_row(z, w, srow, i, l - 1);
            }
            a[i] = z->ub[i];
            z->ub[i] = 0.0f;
            /* forward was u_{l−1} = −lse_j(C + v_{l−2}), so v̄_j −= Σ_i a_i P^{l−1}_ij. */
            if (need_prev) {
                const float ai = a[i];
                for (int j = 0; j < T; j++) z->vn[j] -= ai * w[j];
            }
        }
        if (l - 1 <= 1) sk_backward_dc(z, i0, nr, dO, dQ, dK);
    }
    memcpy(z->vb, z->vn, (size_t)T * sizeof(float));
}

static void sk_backward_slice(const sk_slice *z, const float *O, const float *dO, float *dQ,
                              float *dK, float *dV)
{
    const int T = z->T, D = z->D, n = z->n;
    if (z->real == 0) return; /* A = 0: no gradient */
    /* forward was O = Ã V, so Σ_j G_ij = Σ_j Ã_ij dÃ_ij = dO_i·O_i: rowsum G needs no pass. */
    for (int i = 0; i < T; i++)
        z->dd[i] = (float)sk_dot(dO + (size_t)i * D, O + (size_t)i * D, D);
    memcpy(z->ub, z->dd, (size_t)T * sizeof(float));
    for (int l = 2; l <= n; l += 2) z->fast[l - 1] = (unsigned char)sk_kappa(z, l);
    int l = n;
    if (n >= 2) {
        sk_backward_first(z, dO, dV);
        if (n % 2) { /* step n done there: a_n = D, ū = 0 */
            memcpy(z->adj + (size_t)(n - 1) * T, z->dd, (size_t)T * sizeof(float));
            memset(z->ub, 0, (size_t)T * sizeof(float));
            l = n - 1;
        }
    } else {
        l = 0;
    }
    for (; l >= 2; l -= 2) sk_backward_pass(z, l, dO, dQ, dK);
    if (n == 1) {
        /* dV += Ãᵀ dO comes with the dC pass: Ã is not formed there, so a separate pass. */
        sk_backward_first(z, dO, dV);
        sk_backward_pass(z, 0, dO, dQ, dK);
    }
}

static void sinkformer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0,
        .n_cache   = slices * sinkformer_cache_floats(ctx),   /* potentials, n·T */
        .n_scratch = slices * sinkformer_scratch_floats(ctx), /* strips, adjoints, vectors */
    };
}

static double sinkformer_flops(const lra_attn_ctx *ctx)
{
    const sinkformer_priv *opt = ctx->priv;
    const lra_attn_shape *sh = &ctx->shape;
    const double slices = (double)sh->batch * sh->heads, T = sh->len;
    /* Forward: Q Kᵀ once per pass (⌊n/2⌋ + 1 passes) and Ã V, 2·T²·Dh each; about 5 per entry
     * for each normalisation step (shift, max, exp, sum) and 3 for the output. */
    return slices * T * T * (2.0 * sh->dim * (opt->iters / 2 + 2) + 5.0 * opt->iters + 3.0);
}

static int sinkformer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const sinkformer_priv *opt = ctx->priv;
    if (opt->iters < 1) {
        snprintf(err, errlen, "iters must be >= 1 (1 = softmax), got %d", opt->iters);
        return LRA_ATTN_EINVAL;
    }
    if (opt->block_q < 1) {
        snprintf(err, errlen, "block_q must be >= 1, got %d", opt->block_q);
        return LRA_ATTN_EINVAL;
    }
    return LRA_ATTN_OK;
}

static void sinkformer_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                               float *out)
{
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)ctx->shape.len * ctx->shape.dim;

#pragma omp parallel for schedule(static) num_threads(sinkformer_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const sk_slice z = sinkformer_slice_at(ctx, bh, q, k, v);
        sk_forward_slice(&z, out + bh * TD);
    }
}

static void sinkformer_backward(lra_attn_ctx *ctx, const float *q, const float *k,
                                const float *v, const float *out, const float *dout, float *dq,
                                float *dk, float *dv)
{
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)ctx->shape.len * ctx->shape.dim;

#pragma omp parallel for schedule(static) num_threads(sinkformer_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const sk_slice z = sinkformer_slice_at(ctx, bh, q, k, v);
        sk_backward_slice(&z, out + bh * TD, dout + bh * TD, dq + bh * TD, dk + bh * TD,
                          dv + bh * TD);
    }
}

const lra_attention lra_attn_sinkformer = {
    .abi_version           = LRA_ATTN_ABI_VERSION,
    .name                  = "sinkformer",
    .help                  = "Sinkformer: doubly stochastic attention by log-domain Sinkhorn "
                             "steps (Sander et al. 2022, arXiv 2110.11773); O(T^2 (Dh + iters)) "
                             "time, O(T) memory (strips recomputed per pass)",
    .flags                 = 0,
    .priv_size             = sizeof(sinkformer_priv),
    .options               = sinkformer_options,
    .softmax_limit_options = "iters=1",
    .sizes                 = sinkformer_sizes,
    .flops                 = sinkformer_flops,
    .init                  = sinkformer_init,
    .forward               = sinkformer_forward,
    .backward              = sinkformer_backward,
    .free                  = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_sinkformer)
