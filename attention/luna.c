/* luna.c — Luna: linear unified nested attention, pack into l learned rows, then unpack.
 *
 * Ma, Kong, Wang, Zhou, May, Ma, Zettlemoyer, "Luna: Linear Unified Nested Attention",
 * NeurIPS 2021, arXiv 2106.01540; official code XuezheMax/fairseq-apollo
 * (fairseq/modules/luna_attention.py, LunarMultiheadAttention; models/luna_lra/). The S4
 * paper's LRA table reports it as "Luna-256" (lra-tasks.md §9.3), l = 256.
 *
 * The paper. A Luna layer takes the sequence X (n × d) and an extra packed sequence P (l × d)
 * and nests two attentions, Attn(A, C) = ω(A W_q (C W_k)ᵀ/√d) C W_v:
 *     pack:    Y_P = Attn(P, X)       (l × d)   P attends to the n tokens
 *     unpack:  Y_X = Attn(X, Y_P)     (n × d)   the tokens attend to the l packed rows
 * P of the first layer is a learned embedding; every later layer gets P' = LayerNorm(Y_P + P)
 * from the layer before, alongside X' = LayerNorm(Y_X + X). Both attentions of the
 * bidirectional (encoder) layer, the one used for LRA, use ω = softmax over the unpadded
 * positions and attention dropout on both probability matrices (LunarMultiheadAttention:
 * `F.softmax(pqk)` then `dropout_module(pqk)` for the pack, the same for the unpack). The
 * non-softmax ω, elu(x) + 1 with the sums divided by the number of positions, belongs to the
 * causal (decoder) variant, LunarCausalAttention, where a row softmax over all n positions would
 * leak the future; it is offered here as an option (pack=elu), not as the default. (Sources:
 * the official code above, read; the paper's equations as summarised by secondary pages. Whether
 * the paper's own text names softplus for the causal pack could not be checked here: UNVERIFIED;
 * pack=softplus is provided for that reading.)
 *
 * The adaptation to this suite's ABI. The plugin receives q, k, v after the projections and never
 * the layer input X, so Luna's packed sequence cannot flow from layer to layer. Instead every
 * layer owns, per head, a trainable packed query P_h (l × Dh) used directly as the pack queries
 * (it stands for pq_proj(P) of the code, one head's slice); the real keys and values of the
 * sequence are k and v; and the packed output itself serves as the unpack keys and values
 * (the code's tie_kv with the unpack projection c_proj folded away). What is lost: the layer-to-
 * layer path P' = LayerNorm(Y_P + P) (each layer packs with its own static P, and Y_P is not an
 * output), and the code's option of classifying from Y_P (use_p). Per (batch, head) slice,
 * s = 1/sqrt(Dh), m the key mask:
 *     S₁ = s·P Kᵀ (l × T),   A = softmax(S₁) by rows over the real keys,   Y_p = Ã V    (l × Dh)
 *     S₂ = s·Q Y_pᵀ (T × l), B = softmax(S₂) by rows over the live rows,   O  = B̃ Y_p  (T × Dh)
 * B̃ = B ∘ Z₂/(1−p) is B after attention dropout (rate p = ctx->dropout while training); Ã = A,
 * or A ∘ Z₁/(1−p) with pack_dropout=true (the code's choice). The unpack dropout is linear in
 * the mask, so E[O] is the output without dropout; dropping the pack probabilities too makes O
 * a non-linear function of Z₁ (Y_p enters the unpack softmax), so that mean is biased (the
 * dropout-mean check of tests/test_attn.c fails with it, 7.9 standard errors at the test shape):
 * it is off by default and only there to reproduce the code. The live rows are all l, or with dynamic=true the first min(l, n_b) for a
 * sequence of n_b real tokens: the official LRA encoder's dynamic projection, which truncates
 * P to the longest sequence of the batch and masks rows past each sequence's length; only the
 * per-sequence masking is kept, which gives the same result and keeps slices independent.
 * Padded keys and values never reach an output: they are left out of the pack softmax, and the
 * unpack sees them only through Y_p. A sequence without real tokens has Y_p = 0, hence O = 0.
 * There is no setting in which this is softmax attention (the unpack uses Y_p as both keys and
 * values), so no softmax_limit_options.
 *
 * pack=elu (and softplus): A_rj = m_j φ(S₁_rj)/n_b with φ(x) = elu(x) + 1 (or log(1 + eˣ)), the
 * causal code's activation with its division by the number of positions, here the real ones;
 * n_b = 0 gives A = 0. φ' = min(φ, 1) for elu+1 and 1 − e^{−φ} for softplus.
 *
 * Options:
 *  - len: l, the packed rows (default 256, Luna-256; the code's LRA scripts use 16, 128, 256).
 *  - pack: softmax (default, the official bidirectional code) | elu | softplus (above).
 *  - dynamic: false (default) unpacks onto all l rows; true onto min(l, n_b) (the LRA code).
 *  - pack_dropout: false (default); true also drops the pack probabilities, as the code does.
 *  - rows: query rows per chunk (default 64, clamped; 0 = whole slice), as in softmax.c: the pack
 *    is done in chunks of `rows` packed rows against all T keys, the unpack in chunks of `rows`
 *    queries against the l packed rows. Any chunk size gives the same numbers up to rounding.
 *  - init_std: P ~ N(0, init_std²) from ctx->seed (default 1: the packed rows then score the keys
 *    like unit-variance queries; the official code's pq_proj(P) starts at std about
 *    1/sqrt(2·H·Dh), nearly uniform packing).
 *
 * Parameters: P, (H, l, Dh) row-major, l·Dh floats per head. dP sums over the batch.
 * Complexity: O(T·l·Dh) time per slice: forward 8·T·l·Dh flops (S₁, Ã V, S₂, B̃ Y_p, 2·T·l·Dh
 *             each) plus the two softmaxes; backward 20·T·l·Dh (ten such products, two of them
 *             recomputing S₁ and S₂). Memory per slice O(l·Dh + T) cached and
 *             O(rows·(T + l) + l·Dh) scratch, O(T + l·Dh) at a fixed `rows`: no T × l matrix is
 *             ever held whole (with rows = 0 it is, O(T·l)).
 * Cache:      per slice Y_p (l × Dh), the pack log-sum-exps L₁ (l) and the unpack log-sum-exps
 *             L₂ (T); −∞ for a row without a real key or live row. Backward recomputes S₁, S₂,
 *             A = exp(S₁ − L₁) and B = exp(S₂ − L₂) chunk by chunk and regenerates the dropout
 *             masks from lra_rng (stream lra_attn_step_stream(ctx, bh); counter i·l + r for B,
 *             T·l + r·T + j for A, so the masks do not depend on the chunk size).
 * Backward:   unpack first, over query chunks, accumulating dY_p (l × Dh):
 *                 dB̃ = dO Y_pᵀ, dB = dB̃ ∘ Z₂/(1−p), dS₂ = B ∘ (dB − rowsum(B ∘ dB))  (B1)
 *                 dY_p += B̃ᵀ dO + s·dS₂ᵀ Q,   dQ += s·dS₂ Y_p;
 *             then the pack, over chunks of packed rows, with the complete dY_p:
 *                 dÃ = dY_p Vᵀ, dA = dÃ [∘ Z₁/(1−p)], dS₁ = A ∘ (dA − rowsum(A ∘ dA))  (B1;
 *                 pack=elu/softplus: dS₁ = m ∘ φ'(S₁) ∘ dA / n_b),
 *                 dV += Ãᵀ dY_p,   dK += s·dS₁ᵀ P,   dP_slice = s·dS₁ K.
 * Scratch:    per slice two chunk blocks of max(rows·l, rows·T) floats (probabilities, and
 *             their gradients), one keep-factor row of max(l, T), dY_p (l × Dh) and that
 *             slice's dP (l × Dh). Per slice, since sizes() may not depend on the thread count.
 * Threads:    one OpenMP loop over the B·H slices (BLAS inside runs single-threaded); then each
 *             head's dP summed over the batch in a fixed order after the loop, so the results do
 *             not depend on the thread count and the accumulation is race-free.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lra_attention.h"
#include "lra_rng.h"
#include "lra_vmath.h"

enum { LUNA_PACK_SOFTMAX, LUNA_PACK_ELU, LUNA_PACK_SOFTPLUS };

typedef struct luna_priv {
    int len;          /* l: packed rows */
    int pack;         /* LUNA_PACK_* */
    int dynamic;      /* 1: unpack onto the first min(l, n_b) rows only */
    int pack_dropout; /* 1: attention dropout on the pack probabilities too */
    int rows;         /* rows per chunk; 0 = whole slice */
    double init_std;  /* P ~ N(0, init_std²) */
} luna_priv;

static const lra_attn_option luna_options[] = {
    {.name = "len", .help = "packed length l (Luna-256: 256; the code's LRA scripts 16/128/256)",
     .offset = offsetof(luna_priv, len), .type = LRA_OPT_INT,
     .def = 256, .min = 1, .max = 65536},
    {.name = "pack", .help = "pack activation: softmax (official bidirectional code); elu: "
     "(elu+1)/n_real (the causal code's activation, averaged over the real keys); softplus: "
     "softplus/n_real",
     .offset = offsetof(luna_priv, pack), .type = LRA_OPT_CHOICE,
     .def = LUNA_PACK_SOFTMAX, .min = 0, .max = 2, .choices = "softmax|elu|softplus"},
    {.name = "dynamic", .help = "unpack onto the first min(l, real tokens) packed rows only "
     "(the LRA code's dynamic projection); false = all l rows",
     .offset = offsetof(luna_priv, dynamic), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = "pack_dropout", .help = "attention dropout on the pack probabilities too (the "
     "code's choice; biases the mean output); false = unpack probabilities only",
     .offset = offsetof(luna_priv, pack_dropout), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = "rows", .help = "rows per chunk (clamped): scratch O(rows*(T+l)) per (batch, "
     "head); 0 = whole slice, T x l blocks",
     .offset = offsetof(luna_priv, rows), .type = LRA_OPT_INT,
     .def = 64, .min = 0, .max = 1 << 20},
    {.name = "init_std", .help = "standard deviation of the initial packed queries P, drawn "
     "from the seed (the official code's pq_proj(P) starts near 1/sqrt(2*H*Dh))",
     .offset = offsetof(luna_priv, init_std), .type = LRA_OPT_FLOAT,
     .def = 1.0, .min = 1e-6, .max = 1e3},
    {.name = NULL},
};

/* The sizes every function needs, read once from the context. */
typedef struct luna_dims {
    int B, H, T, D, L; /* batch, heads, len, head dim, packed rows */
    int R, Rp;         /* query rows per unpack chunk, packed rows per pack chunk */
    size_t blk;        /* floats of one chunk block: max(R·l, Rp·T) */
    size_t slice;      /* scratch floats of one slice */
} luna_dims;

static luna_dims luna_dims_of(const lra_attn_ctx *ctx)
{
    const lra_attn_shape *sh = &ctx->shape;
    const luna_priv *opt = ctx->priv;
    luna_dims d = {.B = sh->batch, .H = sh->heads, .T = sh->len, .D = sh->dim, .L = opt->len};
    d.R = opt->rows > 0 && opt->rows < d.T ? opt->rows : d.T;
    d.Rp = opt->rows > 0 && opt->rows < d.L ? opt->rows : d.L;
    const size_t a = (size_t)d.R * d.L, b = (size_t)d.Rp * d.T;
    d.blk = a > b ? a : b;
    const size_t wide = (size_t)(d.T > d.L ? d.T : d.L);
    d.slice = 2 * d.blk + wide + 2 * (size_t)d.L * d.D;
    return d;
}

static int luna_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

static float luna_drop_rate(const lra_attn_ctx *ctx)
{
    return ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
}

/* The buffers of one slice, carved from cache and scratch (shapes in the header comment). */
typedef struct luna_slice {
    float *Yp, *L1, *L2;     /* cache: (l, Dh), (l), (T) */
    float *W, *G, *z;        /* scratch: two chunk blocks, one keep row */
    float *dYp, *dP;         /* scratch: (l, Dh) each */
} luna_slice;

static luna_slice luna_slice_at(const lra_attn_ctx *ctx, const luna_dims *d, int bh)
{
    const size_t per_cache = (size_t)d->L * d->D + d->L + d->T;
    luna_slice s;
    s.Yp = ctx->cache + (size_t)bh * per_cache;
    s.L1 = s.Yp + (size_t)d->L * d->D;
    s.L2 = s.L1 + d->L;
    s.W = ctx->scratch + (size_t)bh * d->slice;
    s.G = s.W + d->blk;
    s.z = s.G + d->blk;
    s.dYp = s.z + (d->T > d->L ? d->T : d->L);
    s.dP = s.dYp + (size_t)d->L * d->D;
    return s;
}

/* Number of real keys of a mask row (T). */
static int luna_count(const float *mask, int T)
{
    int n = 0;
    for (int j = 0; j < T; j++) n += mask[j] != 0.0f;
    return n;
}

/* Packed rows the queries of a sequence with n real tokens attend to. */
static int luna_live(const lra_attn_ctx *ctx, int n)
{
    const luna_priv *opt = ctx->priv;
    return opt->dynamic ? (n < opt->len ? n : opt->len) : opt->len;
}

/* z[j] = Z_j/(1−p) for n draws of stream `key` at counters base + j. */
static void luna_keep_row(float *z, int n, uint64_t key, uint64_t base, float p)
{
    const float inv_keep = 1.0f / (1.0f - p);
    for (int j = 0; j < n; j++) z[j] = lra_uniform(key, base + (uint64_t)j) >= p ? inv_keep : 0.0f;
}

/* Lanes of the partial maxima and dot products below, as in softmax.c: without -ffast-math GCC
 * keeps one running max or sum in order; independent lanes let it vectorise the loops. */
enum { LUNA_LANES = 16 };

/* The largest entry of x (n) with mask ≠ 0 (mask NULL: all of them); −∞ if there is none. */
static float luna_row_max(const float *x, const float *mask, int n)
{
    float m[LUNA_LANES];
    for (int l = 0; l < LUNA_LANES; l++) m[l] = -INFINITY;
    int j = 0;
    if (mask) {
        for (; j + LUNA_LANES <= n; j += LUNA_LANES)
#pragma GCC unroll 1 /* unrolled, GCC 12 turns the lanes back into scalar maxss (softmax.c) */
            for (int l = 0; l < LUNA_LANES; l++) {
                const float xj = mask[j + l] != 0.0f ? x[j + l] : -INFINITY;
                m[l] = xj > m[l] ? xj : m[l];
            }
        for (; j < n; j++) {
            const float xj = mask[j] != 0.0f ? x[j] : -INFINITY;
            m[0] = xj > m[0] ? xj : m[0];
        }
    } else {
        for (; j + LUNA_LANES <= n; j += LUNA_LANES)
#pragma GCC unroll 1
            for (int l = 0; l < LUNA_LANES; l++) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
        for (; j < n; j++) m[0] = x[j] > m[0] ? x[j] : m[0];
    }
    float mx = m[0];
    for (int l = 1; l < LUNA_LANES; l++) mx = m[l] > mx ? m[l] : mx;
    return mx;
}

/* x[j] = exp(x[j] − c) where mask ≠ 0 (mask NULL: everywhere), exactly 0 elsewhere; c finite. */
static void luna_exp_row(float *x, const float *mask, int n, float c)
{
    if (mask)
        for (int j = 0; j < n; j++) x[j] = mask[j] != 0.0f ? lra_expf(x[j] - c) : 0.0f;
    else
        for (int j = 0; j < n; j++) x[j] = lra_expf(x[j] - c);
}

/* Σ_j a[j]·b[j] over n entries, in double, in LUNA_LANES independent partial sums. */
static double luna_dot(const float *a, const float *b, int n)
{
    double acc[LUNA_LANES] = {0};
    int j = 0;
    for (; j + LUNA_LANES <= n; j += LUNA_LANES)
        for (int l = 0; l < LUNA_LANES; l++) acc[l] += (double)a[j + l] * b[j + l];
    for (; j < n; j++) acc[0] += (double)a[j] * b[j];
    double sum = 0.0;
    for (int l = 0; l < LUNA_LANES; l++) sum += acc[l];
    return sum;
}

/* Softmax of x (n) in place over the entries with mask ≠ 0 (mask NULL: all); masked entries and
 * every entry of a row without a live one get exactly 0. Returns the log-sum-exp (−∞ if none). */
static float luna_softmax_row(float *x, const float *mask, int n)
{
    const float mx = luna_row_max(x, mask, n);
    if (mx == -INFINITY) {
        for (int j = 0; j < n; j++) x[j] = 0.0f;
        return -INFINITY;
    }
    luna_exp_row(x, mask, n, mx); /* the sum is then >= 1 */
    const double sum = lra_sumf(x, n);
    const float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++) x[j] *= inv;
    return mx + (float)log(sum);
}

/* Forward's probabilities again, P = exp(x − L), in place on the logits x (n). */
static void luna_softmax_recompute(float *x, const float *mask, int n, float L)
{
    if (L == -INFINITY) { /* no live entry: forward gave 0 */
        for (int j = 0; j < n; j++) x[j] = 0.0f;
        return;
    }
    luna_exp_row(x, mask, n, L);
}

/* φ(x) of the non-softmax pack activations. */
static float luna_phi(int pack, float x)
{
    if (pack == LUNA_PACK_ELU) return x > 0.0f ? x + 1.0f : lra_expf(x); /* elu(x) + 1 */
    return x > 20.0f ? x : log1pf(lra_expf(x));                         /* softplus */
}

/* φ'(x), written through φ(x): min(φ, 1) for elu + 1 and 1 − e^{−φ} (the sigmoid) for
 * softplus. */
static float luna_dphi(int pack, float x)
{
    const float f = luna_phi(pack, x);
    if (pack == LUNA_PACK_ELU) return f < 1.0f ? f : 1.0f;
    return -expm1f(-f);
}

/* One row of the pack probabilities, in place on the logits x (T): the softmax over the real
 * keys (returns its log-sum-exp), or m_j φ(x_j)/n (returns 0). `recompute` takes L instead. */
static float luna_pack_row(int pack, float *x, const float *mask, int T, int n, int recompute,
                           float L)
{
    if (pack == LUNA_PACK_SOFTMAX) {
        if (recompute) {
            luna_softmax_recompute(x, mask, T, L);
            return L;
        }
        return luna_softmax_row(x, mask, T);
    }
    const float inv = n > 0 ? 1.0f / (float)n : 0.0f;
    for (int j = 0; j < T; j++) x[j] = mask[j] != 0.0f ? luna_phi(pack, x[j]) * inv : 0.0f;
    return 0.0f;
}

/* Backward of one softmax row (B1), in place: g = dP on entry, dS on return; pr = P. */
static void luna_softmax_row_backward(float *restrict g, const float *restrict pr, int n)
{
    const float df = (float)luna_dot(pr, g, n);
    for (int j = 0; j < n; j++) g[j] = pr[j] * (g[j] - df);
}

static void luna_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const luna_dims d = luna_dims_of(ctx);
    const size_t BH = (size_t)d.B * d.H;
    *out = (lra_attn_sizes){
        .n_params  = (size_t)d.H * d.L * d.D,                  /* P (H, l, Dh) */
        .n_state   = 0,
        .n_cache   = BH * ((size_t)d.L * d.D + d.L + d.T),     /* Y_p, L₁, L₂ per slice */
        .n_scratch = BH * d.slice,
    };
}

static double luna_flops(const lra_attn_ctx *ctx)
{
    const luna_dims d = luna_dims_of(ctx);
    const double slices = (double)d.B * d.H, T = d.T, L = d.L, D = d.D;
    /* S₁ = s·P Kᵀ, Ã V, S₂ = s·Q Y_pᵀ and B̃ Y_p: 2·T·l·Dh each; the two softmaxes about 5 per
     * entry each. */
    return slices * T * L * (8.0 * D + 10.0);
}

static int luna_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const luna_priv *opt = ctx->priv;
    if (opt->len < 1 || opt->rows < 0 || opt->pack < 0 || opt->pack > 2) {
        snprintf(err, errlen, "len must be >= 1, rows >= 0 and pack a valid choice (len=%d, "
                 "rows=%d)", opt->len, opt->rows);
        return LRA_ATTN_EINVAL;
    }
    if (!(opt->init_std > 0.0 && isfinite(opt->init_std))) {
        snprintf(err, errlen, "init_std must be a finite number > 0, got %g", opt->init_std);
        return LRA_ATTN_EINVAL;
    }
    const luna_dims d = luna_dims_of(ctx);
    const size_t n = (size_t)d.H * d.L * d.D;
    const uint64_t key = lra_key(ctx->seed, 0x1a4a);
    const float std = (float)opt->init_std;
    for (size_t i = 0; i < n; i++) ctx->params[i] = std * lra_normal(key, i);
    return LRA_ATTN_OK;
}

static void luna_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                         float *out)
{
    const luna_priv *opt = ctx->priv;
    const luna_dims d = luna_dims_of(ctx);
    const int T = d.T, D = d.D, L = d.L, BH = d.B * d.H;
    const size_t TD = (size_t)T * D, LD = (size_t)L * D;
    const float s = 1.0f / sqrtf((float)D), p = luna_drop_rate(ctx);

#pragma omp parallel for schedule(static) num_threads(luna_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *mask = ctx->key_mask + (size_t)(bh / d.H) * T;      /* (T) */
        const float *P = ctx->params + (size_t)(bh % d.H) * LD;          /* (l, Dh) */
        float *O = out + bh * TD;                                        /* (T, Dh) */
        const luna_slice w = luna_slice_at(ctx, &d, bh);
        const uint64_t key = lra_attn_step_stream(ctx, bh);
        const int n = luna_count(mask, T), nl = luna_live(ctx, n);

        /* Pack, Rp packed rows at a time: A = act(s·P_c Kᵀ) over the real keys, Y_p,c = Ã V. */
        for (int r0 = 0; r0 < L; r0 += d.Rp) {
            const int nr = L - r0 < d.Rp ? L - r0 : d.Rp;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, s, P + (size_t)r0 * D,
                        D, K, D, 0.0f, w.W, T);
            for (int r = 0; r < nr; r++) {
                float *row = w.W + (size_t)r * T;
                w.L1[r0 + r] = luna_pack_row(opt->pack, row, mask, T, n, 0, 0.0f);
                if (p > 0.0f && opt->pack_dropout) {
                    luna_keep_row(w.z, T, key, (uint64_t)T * L + (uint64_t)(r0 + r) * T, p);
                    for (int j = 0; j < T; j++) row[j] *= w.z[j];
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, T, 1.0f, w.W, T, V, D,
                        0.0f, w.Yp + (size_t)r0 * D, D);
        }

        /* Unpack, R queries at a time: B = softmax(s·Q_c Y_pᵀ) over the nl live rows,
         * O_c = B̃ Y_p. No live row (dynamic, no real token): O = 0. */
        if (nl == 0) {
            memset(O, 0, TD * sizeof(float));
            for (int i = 0; i < T; i++) w.L2[i] = -INFINITY;
            continue;
        }
        for (int i0 = 0; i0 < T; i0 += d.R) {
            const int ni = T - i0 < d.R ? T - i0 : d.R;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nl, D, s,
                        Q + (size_t)i0 * D, D, w.Yp, D, 0.0f, w.W, nl);
            for (int i = 0; i < ni; i++) {
                float *row = w.W + (size_t)i * nl;
                w.L2[i0 + i] = luna_softmax_row(row, NULL, nl);
                if (p > 0.0f) {
                    luna_keep_row(w.z, nl, key, (uint64_t)(i0 + i) * L, p);
                    for (int r = 0; r < nl; r++) row[r] *= w.z[r];
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, D, nl, 1.0f, w.W, nl,
                        w.Yp, D, 0.0f, O + (size_t)i0 * D, D);
        }
    }
}

static void luna_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                          const float *out, const float *dout, float *dq, float *dk, float *dv)
{
    (void)out;
    const luna_priv *opt = ctx->priv;
    const luna_dims d = luna_dims_of(ctx);
    const int T = d.T, D = d.D, L = d.L, BH = d.B * d.H;
    const size_t TD = (size_t)T * D, LD = (size_t)L * D;
    const float s = 1.0f / sqrtf((float)D), p = luna_drop_rate(ctx);
    const int pack_drop = p > 0.0f && opt->pack_dropout;

#pragma omp parallel for schedule(static) num_threads(luna_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T, Dh) */
        const float *dO = dout + bh * TD;                                 /* (T, Dh) */
        float *dQ = dq + bh * TD, *dK = dk + bh * TD, *dV = dv + bh * TD; /* (T, Dh) */
        const float *mask = ctx->key_mask + (size_t)(bh / d.H) * T;      /* (T) */
        const float *P = ctx->params + (size_t)(bh % d.H) * LD;          /* (l, Dh) */
        const luna_slice w = luna_slice_at(ctx, &d, bh);
        const uint64_t key = lra_attn_step_stream(ctx, bh);
        const int n = luna_count(mask, T), nl = luna_live(ctx, n);

        memset(w.dYp, 0, LD * sizeof(float));
        /* Unpack, R queries at a time, accumulating dY_p over all of them. */
        for (int i0 = 0; nl > 0 && i0 < T; i0 += d.R) {
            const int ni = T - i0 < d.R ? T - i0 : d.R;
            const float *Qc = Q + (size_t)i0 * D, *dOc = dO + (size_t)i0 * D; /* (ni, Dh) */
            /* forward was B = exp(S₂ − L₂) with S₂ = s·Q_c Y_pᵀ: recompute it. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nl, D, s, Qc, D, w.Yp, D,
                        0.0f, w.W, nl);
            for (int i = 0; i < ni; i++)
                luna_softmax_recompute(w.W + (size_t)i * nl, NULL, nl, w.L2[i0 + i]);
            /* forward was O_c = B̃ Y_p, so dB̃ = dO_c Y_pᵀ; then dropout and B1 give dS₂, and
             * B becomes B̃. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nl, D, 1.0f, dOc, D, w.Yp, D,
                        0.0f, w.G, nl);
            for (int i = 0; i < ni; i++) {
                float *b = w.W + (size_t)i * nl, *g = w.G + (size_t)i * nl;
                if (p > 0.0f) {
                    luna_keep_row(w.z, nl, key, (uint64_t)(i0 + i) * L, p);
                    for (int r = 0; r < nl; r++) g[r] *= w.z[r];
                }
                luna_softmax_row_backward(g, b, nl);
                if (p > 0.0f)
                    for (int r = 0; r < nl; r++) b[r] *= w.z[r];
            }
            /* O_c = B̃ Y_p: dY_p += B̃ᵀ dO_c. S₂ = s·Q_c Y_pᵀ: dQ_c += s·dS₂ Y_p and
             * dY_p += s·dS₂ᵀ Q_c. */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nl, D, ni, 1.0f, w.W, nl, dOc, D,
                        1.0f, w.dYp, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, D, nl, s, w.G, nl, w.Yp, D,
                        1.0f, dQ + (size_t)i0 * D, D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nl, D, ni, s, w.G, nl, Qc, D,
                        1.0f, w.dYp, D);
        }

        /* Pack, Rp packed rows at a time, with the complete dY_p. */
        for (int r0 = 0; r0 < L; r0 += d.Rp) {
            const int nr = L - r0 < d.Rp ? L - r0 : d.Rp;
            const float *Pc = P + (size_t)r0 * D;           /* (nr, Dh) */
            const float *dYc = w.dYp + (size_t)r0 * D;      /* (nr, Dh) */
            /* forward was A = act(S₁) with S₁ = s·P_c Kᵀ: recompute S₁ into W. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, s, Pc, D, K, D, 0.0f,
                        w.W, T);
            /* forward was Y_p,c = Ã V, so dÃ = dY_p,c Vᵀ. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, 1.0f, dYc, D, V, D,
                        0.0f, w.G, T);
            for (int r = 0; r < nr; r++) {
                float *a = w.W + (size_t)r * T, *g = w.G + (size_t)r * T;
                if (pack_drop) {
                    luna_keep_row(w.z, T, key, (uint64_t)T * L + (uint64_t)(r0 + r) * T, p);
                    for (int j = 0; j < T; j++) g[j] *= w.z[j];
                }
                if (opt->pack == LUNA_PACK_SOFTMAX) {
                    /* A = softmax(S₁) over the real keys: B1. */
                    luna_softmax_recompute(a, mask, T, w.L1[r0 + r]);
                    luna_softmax_row_backward(g, a, T);
                } else {
                    /* A_j = m_j φ(S₁_j)/n: dS₁_j = m_j φ'(S₁_j) dA_j / n, then a = A. */
                    const float inv = n > 0 ? 1.0f / (float)n : 0.0f;
                    for (int j = 0; j < T; j++)
                        g[j] = mask[j] != 0.0f ? luna_dphi(opt->pack, a[j]) * g[j] * inv : 0.0f;
                    luna_pack_row(opt->pack, a, mask, T, n, 1, 0.0f);
                }
                if (pack_drop)
                    for (int j = 0; j < T; j++) a[j] *= w.z[j];
            }
            /* Y_p,c = Ã V: dV += Ãᵀ dY_p,c. S₁ = s·P_c Kᵀ: dK += s·dS₁ᵀ P_c, dP_c = s·dS₁ K. */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, nr, 1.0f, w.W, T, dYc, D,
                        1.0f, dV, D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, nr, s, w.G, T, Pc, D, 1.0f,
                        dK, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, T, s, w.G, T, K, D,
                        0.0f, w.dP + (size_t)r0 * D, D);
        }
    }

    /* dP of head h = Σ_b dP_slice(b, h), summed over b in order, then added: the same bits at
     * any thread count. */
    for (int h = 0; h < d.H; h++) {
        float *acc = luna_slice_at(ctx, &d, h).dP; /* slice (0, h) collects the sum */
        for (int b = 1; b < d.B; b++) {
            const float *part = luna_slice_at(ctx, &d, b * d.H + h).dP;
            for (size_t i = 0; i < LD; i++) acc[i] += part[i];
        }
        float *dst = ctx->dparams + (size_t)h * LD;
        for (size_t i = 0; i < LD; i++) dst[i] += acc[i];
    }
}

/* Attention dropout comes from the context and does not make the variant STOCHASTIC: P is drawn
 * once from ctx->seed and evaluation is deterministic. */
const lra_attention lra_attn_luna = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "luna",
    .help        = "Luna, linear unified nested attention: pack into l learned rows, unpack "
                   "(Ma et al. 2021, arXiv 2106.01540); O(T l Dh) time, O(T + l Dh) memory",
    .flags       = 0,
    .priv_size   = sizeof(luna_priv),
    .options     = luna_options,
    .check_options = "len=4,rows=3",
    .softmax_limit_options = NULL,
    .sizes       = luna_sizes,
    .flops       = luna_flops,
    .init        = luna_init,
    .forward     = luna_forward,
    .backward    = luna_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_luna)
