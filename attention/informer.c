/* informer.c — Informer's ProbSparse self-attention (non-causal, encoder form).
 *
 * Zhou, Zhang, Peng, Zhang, Li, Xiong, Zhang, "Informer: Beyond Efficient Transformer for Long
 * Sequence Time-Series Forecasting", AAAI 2021, arXiv 2012.07436 (§"ProbSparse Self-attention",
 * Algorithm 1); official code zhouhaoyi/Informer2020, models/attn.py, ProbAttention with
 * mask_flag=False. For each (batch, head) slice, with s = 1/sqrt(Dh) unless `scale` says
 * otherwise, n_r real keys and the counts
 *     u = min(c·⌈ln T⌉, T) active queries,   U = min(c·⌈ln T⌉, T) sampled keys per query
 * (c = `factor`, default 5 as in the paper and the code, which also rounds ln up; `top` and
 * `samples` override u and U; both are at least 1). T is the call's padded length, not the
 * sequence's real length, so that the counts and sizes() depend on the shape only:
 *  1. Sparsity measurement: the paper's max-mean measurement M̄(q_i, K) = max_j a_ij −
 *     mean_j a_ij, estimated as Algorithm 1 does, on sampled keys: every real query i draws U
 *     keys j_i1 … j_iU uniformly WITH replacement from the real keys (torch.randint in the
 *     code) and scores
 *         M̄_i = max_t a_it − (1/U) Σ_t a_it,   a_it = s·q_i·k_{j_it}
 *     (Algorithm 1: "max(S̄) − mean(S̄) by row"). `mean=keys` divides the sampled sum by n_r
 *     instead, as the official code does (Q_K_sample.sum(-1) / L_K). s > 0 does not change the
 *     ranking.
 *  2. Top-u: the u queries of largest M̄_i are "active" (ties: the lower position first).
 *     Padded queries rank after every real query, by position, so they are active only when
 *     u > n_r: the real queries' choice never depends on a padded query.
 *  3. Active query i: exact softmax attention over the real keys, o_i = Σ_j P̃_ij v_j,
 *     P_i = softmax_j(s·q_i·k_j), P̃ = P ∘ Z/(1−p) after attention dropout, with the stream and
 *     counters of softmax.c (lra_attn_step_stream(ctx, bh), counter i·T + j, i and j original
 *     positions). So with u >= T every query is active and the output IS softmax attention,
 *     dropout mask included (softmax_limit_options "factor=3" at the test's T = 8).
 *  4. Lazy query i (not active): o_i = v̄ = (1/n_r) Σ_{j real} v_j, the non-causal initial
 *     context of the code (V.mean over the keys). No dropout on it: the code applies none
 *     anywhere in ProbAttention (its nn.Dropout is never called); here the active rows get the
 *     suite's attention dropout so that the softmax limit holds with dropout too.
 *
 * Adaptations, each documented: padding (real keys only for sampling, softmax and the mean; the
 * code has no key mask); the samples are drawn per (batch, head) slice, keyed by the slice's
 * global id (the code draws one index set per call shared by the batch and heads); M̄ uses the
 * sample mean by default (above). Draws: fixed by (ctx->seed, slice) by default, so evaluation
 * is deterministic and the output a fixed function of q, k, v; `redraw=1` keys a training
 * forward by ctx->step too, fresh samples every step like the code's torch.randint at every
 * call (evaluation then still uses the fixed draws). Stream: lra_key(lra_key(seed, salt)
 * [, step], lra_attn_slice_id(ctx, bh)); draw t of query i is lra_below(stream, i·U + t, n_r),
 * an index into the list of real positions. The default is fixed draws, as skyformer.c and
 * kdeformer.c: with per-step draws the training output is a different random function at
 * every step, and the eval output is not the mean of the training outputs.
 * Padding: padded keys and values reach no output (never sampled, left out of the softmax and
 * of v̄). A slice without real keys outputs 0 (empty softmax rows and an empty mean).
 *
 * Complexity per slice: sampling 2·T·U·Dh flops, selection O(T log u), active rows
 * 4·u·T·Dh + 5·u·T, lazy rows T·Dh: O(T log T · Dh) at the default counts (u, U ~ c·ln T), as
 * the paper claims. Backward: 10·u·T·Dh for the active rows (2·u·T·Dh of them recomputing S),
 * 2·T·Dh for the lazy mean. Memory O(T·u) per slice (rows × T probability tiles, rows <= 64),
 * never T × T; the samples are drawn on the fly and never stored.
 *
 * Cache (per slice, floats): act (u) the active positions in ascending order (float-encoded,
 *          exact below 2^24): the discrete choice, reused by a forward with
 *          ctx->freeze_choices; lse (u) each active row's log-sum-exp over the real keys
 *          (−∞ when there is none). The samples are not kept: only the choice they lead to is.
 * Scratch (per slice): the real positions (T), M̄ (T), an active flag per position (T), the
 *          top-u heap (2u), the gathered active q and dq rows (rows, Dh) each, two rows × T
 *          tiles (S → P → P̃; dP̃ → dS), one T row of keep factors and one Dh row (v̄ or Σ do).
 *          rows = min(u, INFORMER_ROWS).
 * Backward (M̄, the samples and the top-u choice are constants, attention-variants.md §0.7):
 *   active rows: B1/B2 of softmax.c through dropout (recomputing P = exp(S − lse));
 *   lazy rows: o_i = (1/n_r) Σ_j v_j, so dv_j += (1/n_r) Σ_{i lazy} do_i for real j; no
 *   gradient to q or k. q and k therefore get gradients only through the active rows.
 * Threads: one OpenMP loop over the B·H slices; BLAS runs single-threaded inside it.
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

/* Active query rows processed at once: bounds the rows × T tiles when u is large. */
enum { INFORMER_ROWS = 64, INFORMER_LANES = 16 };

static const uint64_t INFORMER_SALT = 0x70726f6273706172ULL; /* "probspar" */

typedef struct informer_priv {
    int factor;   /* c: u = U = c·⌈ln T⌉ */
    int top;      /* u override; 0 = c·⌈ln T⌉ */
    int samples;  /* U override; 0 = c·⌈ln T⌉ */
    int mean;     /* 0: sampled sum / U (paper); 1: sampled sum / n_r (official code) */
    int redraw;   /* draw the samples afresh at every training step */
    double scale; /* logit scale; 0 = 1/sqrt(Dh) */
} informer_priv;

static const lra_attn_option informer_options[] = {
    {.name = "factor", .help = "sampling factor c: u = c*ceil(ln T) active queries and "
     "U = c*ceil(ln T) sampled keys per query (both at most T)",
     .offset = offsetof(informer_priv, factor), .type = LRA_OPT_INT,
     .def = 5, .min = 1, .max = 1000},
    {.name = "top", .help = "active queries u (clamped to T); 0 = factor*ceil(ln T)",
     .offset = offsetof(informer_priv, top), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 1000000},
    {.name = "samples", .help = "sampled keys per query U (clamped to T); 0 = factor*ceil(ln T)",
     .offset = offsetof(informer_priv, samples), .type = LRA_OPT_INT,
     .def = 0, .min = 0, .max = 1000000},
    {.name = "mean", .help = "mean term of the sparsity measurement: sample = sampled sum / U "
     "(paper, Algorithm 1); keys = sampled sum / real keys (official code)",
     .offset = offsetof(informer_priv, mean), .type = LRA_OPT_CHOICE,
     .def = 0, .min = 0, .max = 1, .choices = "sample|keys"},
    {.name = "redraw", .help = "draw the sampled keys afresh at every training step "
     "(official code: every call); 0 = fixed by the seed",
     .offset = offsetof(informer_priv, redraw), .type = LRA_OPT_BOOL,
     .def = 0, .min = 0, .max = 1},
    {.name = "scale", .help = "logit scale s; 0 = 1/sqrt(head dim)",
     .offset = offsetof(informer_priv, scale), .type = LRA_OPT_FLOAT,
     .def = 0.0, .min = 0.0, .max = 1e3},
    {.name = NULL},
};

/* Everything the slice loops need, derived once per call from the shape and the options. */
typedef struct informer_dims {
    int T, D, u, U, R; /* tokens, head dim, active queries, samples, rows per tile */
    int key_mean;      /* mean=keys */
    float s, rate;     /* logit scale; attention dropout in effect */
} informer_dims;

/* c·⌈ln T⌉, computed as the code does (np.ceil(np.log(L))), clamped to [1, T]. */
static int informer_count(int factor, int T)
{
    const double n = (double)factor * ceil(log((double)T));
    return n < 1.0 ? 1 : n > (double)T ? T : (int)n;
}

static informer_dims informer_dims_of(const lra_attn_ctx *ctx)
{
    const informer_priv *opt = ctx->priv;
    informer_dims d = {.T = ctx->shape.len, .D = ctx->shape.dim, .key_mean = opt->mean == 1};
    d.u = opt->top > 0 ? (opt->top < d.T ? opt->top : d.T) : informer_count(opt->factor, d.T);
    d.U = opt->samples > 0 ? (opt->samples < d.T ? opt->samples : d.T)
                           : informer_count(opt->factor, d.T);
    d.R = d.u < INFORMER_ROWS ? d.u : INFORMER_ROWS;
    d.s = opt->scale > 0.0 ? (float)opt->scale : 1.0f / sqrtf((float)d.D);
    d.rate = ctx->training && ctx->dropout > 0.0f ? ctx->dropout : 0.0f;
    return d;
}

static int informer_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

/* ---- memory layout ---------------------------------------------------------------------- */

typedef struct informer_cache {
    float *act; /* (u) active positions, ascending */
    float *lse; /* (u) log-sum-exp of each active row */
} informer_cache;

typedef struct informer_work {
    float *real;     /* (T) positions of the real keys; n_r of them */
    float *M;        /* (T) sparsity measurement M̄ */
    float *flag;     /* (T) 1 for an active position */
    float *hm, *hp;  /* (u) heap of the best u so far: measurement, position */
    float *qa, *dqa; /* (R, Dh) gathered active q rows and their gradient */
    float *P, *G;    /* (R, T) S → P → P̃; dP̃ → dS */
    float *z;        /* (T) keep factors of one row */
    float *vec;      /* (Dh) v̄ (forward) or Σ_lazy do_i (backward) */
} informer_work;

static size_t informer_cache_floats(const informer_dims *d) { return 2 * (size_t)d->u; }

static size_t informer_scratch_floats(const informer_dims *d)
{
    const size_t T = (size_t)d->T, D = (size_t)d->D, R = (size_t)d->R;
    return 4 * T + 2 * (size_t)d->u + 2 * R * D + 2 * R * T + D;
}

static informer_cache informer_cache_at(const lra_attn_ctx *ctx, const informer_dims *d, int bh)
{
    float *base = ctx->cache + (size_t)bh * informer_cache_floats(d);
    return (informer_cache){.act = base, .lse = base + d->u};
}

static informer_work informer_work_at(const lra_attn_ctx *ctx, const informer_dims *d, int bh)
{
    float *p = ctx->scratch + (size_t)bh * informer_scratch_floats(d);
    const size_t T = (size_t)d->T, D = (size_t)d->D, R = (size_t)d->R;
    informer_work w;
    w.real = p, p += T;
    w.M = p, p += T;
    w.flag = p, p += T;
    w.z = p, p += T;
    w.hm = p, p += d->u;
    w.hp = p, p += d->u;
    w.qa = p, p += R * D;
    w.dqa = p, p += R * D;
    w.P = p, p += R * T;
    w.G = p, p += R * T;
    w.vec = p;
    return w;
}

/* ---- row softmax (as softmax.c) ---------------------------------------------------------- */

/* Σ_j a[j]·b[j] over n entries, in double. */
static double informer_dot(const float *a, const float *b, int n)
{
    double acc[INFORMER_LANES] = {0};
    int j = 0;
    for (; j + INFORMER_LANES <= n; j += INFORMER_LANES)
        for (int l = 0; l < INFORMER_LANES; l++) acc[l] += (double)a[j + l] * b[j + l];
    for (; j < n; j++) acc[0] += (double)a[j] * b[j];
    double sum = 0.0;
    for (int l = 0; l < INFORMER_LANES; l++) sum += acc[l];
    return sum;
}

/* Softmax of the logit row x (T) in place over the real keys; returns its log-sum-exp. A row
 * without real keys becomes 0 and returns −∞. */
static float informer_softmax_row(float *x, const float *mask, int T)
{
    float mx = -INFINITY;
    for (int j = 0; j < T; j++)
        if (mask[j] != 0.0f && x[j] > mx) mx = x[j];
    if (mx == -INFINITY) {
        for (int j = 0; j < T; j++) x[j] = 0.0f;
        return -INFINITY;
    }
    for (int j = 0; j < T; j++) x[j] = mask[j] != 0.0f ? lra_expf(x[j] - mx) : 0.0f;
    double sum = 0.0;
    for (int j = 0; j < T; j++) sum += x[j];
    const float inv = (float)(1.0 / sum);
    for (int j = 0; j < T; j++) x[j] *= inv;
    return mx + (float)log(sum);
}

/* P = exp(S − L) in place on the logit row x (T), forward's probabilities from its L. */
static void informer_recompute_row(float *x, const float *mask, int T, float L)
{
    if (L == -INFINITY) {
        for (int j = 0; j < T; j++) x[j] = 0.0f;
        return;
    }
    for (int j = 0; j < T; j++) x[j] = mask[j] != 0.0f ? lra_expf(x[j] - L) : 0.0f;
}

/* z[j] = Z_ij/(1−p) for query position i: softmax.c's mask, stream `key`, counter i·T + j. */
static void informer_keep_row(float *z, int i, int T, uint64_t key, float p)
{
    const float inv_keep = 1.0f / (1.0f - p);
    const uint64_t row = (uint64_t)i * (uint64_t)T;
    for (int j = 0; j < T; j++) z[j] = lra_uniform(key, row + (uint64_t)j) >= p ? inv_keep : 0.0f;
}

/* ---- the discrete choice ----------------------------------------------------------------- */

/* The slice's sampling stream: fixed by the seed, or this training step's with redraw. */
static uint64_t informer_sample_key(const lra_attn_ctx *ctx, int bh)
{
    const informer_priv *opt = ctx->priv;
    const uint64_t base = lra_key(ctx->seed, INFORMER_SALT);
    const uint64_t key = opt->redraw && ctx->training ? lra_key(base, ctx->step) : base;
    return lra_key(key, lra_attn_slice_id(ctx, bh));
}

/* Candidate (m, p) ranks before (m2, p2): larger measurement, then lower position. */
static int informer_better(float m, float p, float m2, float p2)
{
    return m > m2 || (m == m2 && p < p2);
}

/* Restores the heap below slot i: the root holds the worst of the kept candidates. */
static void informer_sift_down(float *hm, float *hp, int n, int i)
{
    for (;;) {
        int w = i;
        const int l = 2 * i + 1, r = l + 1;
        if (l < n && informer_better(hm[w], hp[w], hm[l], hp[l])) w = l;
        if (r < n && informer_better(hm[w], hp[w], hm[r], hp[r])) w = r;
        if (w == i) return;
        float t = hm[i];
        hm[i] = hm[w], hm[w] = t;
        t = hp[i];
        hp[i] = hp[w], hp[w] = t;
        i = w;
    }
}

/* M̄_i for every position (−∞ for padded queries and when there is no real key), then the top u
 * by (M̄ desc, position asc) into act (u, ascending). n = n_r real keys listed in w->real. */
static void informer_choose(const lra_attn_ctx *ctx, const informer_dims *d, int bh, int n,
                            const float *Q, const float *K, const float *mask, informer_work *w,
                            float *act)
{
    const int T = d->T, D = d->D, U = d->U, u = d->u;
    const uint64_t key = informer_sample_key(ctx, bh);
    const float div = d->key_mean ? (float)n : (float)U;
    for (int i = 0; i < T; i++) {
        w->M[i] = -INFINITY;
        if (mask[i] == 0.0f || n == 0) continue;
        const float *qi = Q + (size_t)i * D;
        float mx = -INFINITY, sum = 0.0f;
        for (int t = 0; t < U; t++) {
            const uint32_t r = lra_below(key, (uint64_t)i * (uint64_t)U + (uint64_t)t,
                                         (uint32_t)n);
            const float *kj = K + (size_t)w->real[r] * D;
            float a = 0.0f;
            for (int e = 0; e < D; e++) a += qi[e] * kj[e];
            mx = a > mx ? a : mx;
            sum += a;
        }
        w->M[i] = d->s * (mx - sum / div);
    }
    /* The u best in a heap whose root is the worst kept: O(T log u). */
    int h = 0;
    for (int i = 0; i < T; i++) {
        const float m = w->M[i], p = (float)i;
        if (h < u) {
            int c = h++;
            w->hm[c] = m, w->hp[c] = p;
            while (c > 0) { /* sift up: the parent must rank after the child */
                const int par = (c - 1) / 2;
                if (!informer_better(w->hm[par], w->hp[par], w->hm[c], w->hp[c])) break;
                float t = w->hm[par];
                w->hm[par] = w->hm[c], w->hm[c] = t;
                t = w->hp[par];
                w->hp[par] = w->hp[c], w->hp[c] = t;
                c = par;
            }
        } else if (informer_better(m, p, w->hm[0], w->hp[0])) {
            w->hm[0] = m, w->hp[0] = p;
            informer_sift_down(w->hm, w->hp, u, 0);
        }
    }
    for (int i = 0; i < T; i++) w->flag[i] = 0.0f;
    for (int c = 0; c < u; c++) w->flag[(int)w->hp[c]] = 1.0f;
    for (int i = 0, c = 0; i < T; i++)
        if (w->flag[i] != 0.0f) act[c++] = (float)i;
}

/* The real key positions into w->real; returns n_r. */
static int informer_real(const informer_dims *d, const float *mask, informer_work *w)
{
    int n = 0;
    for (int j = 0; j < d->T; j++)
        if (mask[j] != 0.0f) w->real[n++] = (float)j;
    return n;
}

/* ---- forward ----------------------------------------------------------------------------- */

static void informer_forward_slice(const lra_attn_ctx *ctx, const informer_dims *d, int bh,
                                   const float *Q, const float *K, const float *V, float *O)
{
    const int T = d->T, D = d->D;
    const float *mask = ctx->key_mask + (size_t)(bh / ctx->shape.heads) * T; /* (T) */
    const informer_cache cc = informer_cache_at(ctx, d, bh);
    informer_work w = informer_work_at(ctx, d, bh);
    const int n = informer_real(d, mask, &w);

    if (!ctx->freeze_choices) informer_choose(ctx, d, bh, n, Q, K, mask, &w, cc.act);
    for (int i = 0; i < T; i++) w.flag[i] = 0.0f;
    for (int c = 0; c < d->u; c++) w.flag[(int)cc.act[c]] = 1.0f;

    /* Lazy rows: o_i = v̄ = (1/n_r) Σ_{j real} v_j (0 without real keys). */
    for (int e = 0; e < D; e++) {
        double acc = 0.0;
        for (int t = 0; t < n; t++) acc += V[(size_t)w.real[t] * D + e];
        w.vec[e] = n > 0 ? (float)(acc / n) : 0.0f;
    }
    for (int i = 0; i < T; i++)
        if (w.flag[i] == 0.0f) memcpy(O + (size_t)i * D, w.vec, (size_t)D * sizeof(float));

    /* Active rows, R at a time: S = s·Q_a Kᵀ → P (lse cached) → P̃ → O_a = P̃ V. */
    const uint64_t dkey = lra_attn_step_stream(ctx, bh);
    for (int c0 = 0; c0 < d->u; c0 += d->R) {
        const int nr = d->u - c0 < d->R ? d->u - c0 : d->R;
        for (int r = 0; r < nr; r++)
            memcpy(w.qa + (size_t)r * D, Q + (size_t)cc.act[c0 + r] * D,
                   (size_t)D * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, d->s, w.qa, D, K, D,
                    0.0f, w.P, T);
        for (int r = 0; r < nr; r++) {
            float *row = w.P + (size_t)r * T;
            cc.lse[c0 + r] = informer_softmax_row(row, mask, T);
            if (d->rate > 0.0f) {
                informer_keep_row(w.z, (int)cc.act[c0 + r], T, dkey, d->rate);
                for (int j = 0; j < T; j++) row[j] *= w.z[j];
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, T, 1.0f, w.P, T, V, D,
                    0.0f, w.dqa, D);
        for (int r = 0; r < nr; r++)
            memcpy(O + (size_t)cc.act[c0 + r] * D, w.dqa + (size_t)r * D,
                   (size_t)D * sizeof(float));
    }
}

static void informer_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                             float *out)
{
    const informer_dims d = informer_dims_of(ctx);
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)d.T * d.D;
#pragma omp parallel for schedule(static) num_threads(informer_threads(ctx))
    for (int bh = 0; bh < BH; bh++)
        informer_forward_slice(ctx, &d, bh, q + bh * TD, k + bh * TD, v + bh * TD,
                               out + bh * TD);
}

/* ---- backward ---------------------------------------------------------------------------- */

static void informer_backward_slice(const lra_attn_ctx *ctx, const informer_dims *d, int bh,
                                    const float *Q, const float *K, const float *V,
                                    const float *dO, float *dQ, float *dK, float *dV)
{
    const int T = d->T, D = d->D;
    const float *mask = ctx->key_mask + (size_t)(bh / ctx->shape.heads) * T; /* (T) */
    const informer_cache cc = informer_cache_at(ctx, d, bh);
    informer_work w = informer_work_at(ctx, d, bh);
    const int n = informer_real(d, mask, &w);
    for (int i = 0; i < T; i++) w.flag[i] = 0.0f;
    for (int c = 0; c < d->u; c++) w.flag[(int)cc.act[c]] = 1.0f;

    /* forward was o_i = (1/n_r) Σ_{j real} v_j for lazy i, so dv_j += (1/n_r) Σ_{i lazy} do_i. */
    if (n > 0) {
        for (int e = 0; e < D; e++) {
            double acc = 0.0;
            for (int i = 0; i < T; i++)
                if (w.flag[i] == 0.0f) acc += dO[(size_t)i * D + e];
            w.vec[e] = (float)(acc / n);
        }
        for (int t = 0; t < n; t++) {
            float *dv = dV + (size_t)w.real[t] * D;
            for (int e = 0; e < D; e++) dv[e] += w.vec[e];
        }
    }

    const uint64_t dkey = lra_attn_step_stream(ctx, bh);
    for (int c0 = 0; c0 < d->u; c0 += d->R) {
        const int nr = d->u - c0 < d->R ? d->u - c0 : d->R;
        /* The active rows' q and do, gathered: qa (nr, Dh), dqa (nr, Dh) holds do first. */
        for (int r = 0; r < nr; r++) {
            const size_t i = (size_t)cc.act[c0 + r];
            memcpy(w.qa + (size_t)r * D, Q + i * D, (size_t)D * sizeof(float));
            memcpy(w.dqa + (size_t)r * D, dO + i * D, (size_t)D * sizeof(float));
        }
        /* forward was P = exp(S − lse) with S = s·Q_a Kᵀ: recompute it. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, d->s, w.qa, D, K, D,
                    0.0f, w.P, T);
        for (int r = 0; r < nr; r++)
            informer_recompute_row(w.P + (size_t)r * T, mask, T, cc.lse[c0 + r]);
        /* forward was O_a = P̃ V, so dP̃ = dO_a Vᵀ. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, T, D, 1.0f, w.dqa, D, V, D,
                    0.0f, w.G, T);
        for (int r = 0; r < nr; r++) {
            float *g = w.G + (size_t)r * T, *pr = w.P + (size_t)r * T;
            if (d->rate > 0.0f) {
                /* forward was P̃ = P ∘ Z/(1−p), so dP = dP̃ ∘ Z/(1−p). */
                informer_keep_row(w.z, (int)cc.act[c0 + r], T, dkey, d->rate);
                for (int j = 0; j < T; j++) g[j] *= w.z[j];
            }
            /* forward was P = softmax(S), so dS = P ∘ (dP − Σ_k P_k dP_k). */
            const float dd = (float)informer_dot(pr, g, T);
            for (int j = 0; j < T; j++) g[j] = pr[j] * (g[j] - dd);
            if (d->rate > 0.0f)
                for (int j = 0; j < T; j++) pr[j] *= w.z[j]; /* P → P̃ for dV */
        }
        /* forward was O_a = P̃ V, so dV += P̃ᵀ dO_a. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, nr, 1.0f, w.P, T, w.dqa, D,
                    1.0f, dV, D);
        /* forward was S = s·Q_a Kᵀ, so dK += s·dSᵀ Q_a and dQ_a = s·dS K (scattered back). */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, nr, d->s, w.G, T, w.qa, D,
                    1.0f, dK, D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, D, T, d->s, w.G, T, K, D,
                    0.0f, w.dqa, D);
        for (int r = 0; r < nr; r++) {
            float *dq = dQ + (size_t)cc.act[c0 + r] * D;
            for (int e = 0; e < D; e++) dq[e] += w.dqa[(size_t)r * D + e];
        }
    }
}

static void informer_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              const float *out, const float *dout, float *dq, float *dk,
                              float *dv)
{
    (void)out;
    const informer_dims d = informer_dims_of(ctx);
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)d.T * d.D;
#pragma omp parallel for schedule(static) num_threads(informer_threads(ctx))
    for (int bh = 0; bh < BH; bh++)
        informer_backward_slice(ctx, &d, bh, q + bh * TD, k + bh * TD, v + bh * TD,
                                dout + bh * TD, dq + bh * TD, dk + bh * TD, dv + bh * TD);
}

/* ---- descriptor --------------------------------------------------------------------------- */

static void informer_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const informer_dims d = informer_dims_of(ctx);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = 0,
        .n_state   = 0, /* the samples are regenerated from the seed, never stored */
        .n_cache   = slices * informer_cache_floats(&d),
        .n_scratch = slices * informer_scratch_floats(&d),
    };
}

static double informer_flops(const lra_attn_ctx *ctx)
{
    const informer_dims d = informer_dims_of(ctx);
    const double slices = (double)ctx->shape.batch * ctx->shape.heads;
    const double T = d.T, D = d.D, u = d.u, U = d.U;
    /* Sampled logits 2·Dh each plus max and sum; the heap about log2(u) compares per query;
     * active rows as softmax.c (4·Dh + 5 per logit); the mean of V, Dh per key. */
    return slices * (T * U * (2.0 * D + 2.0) + T * log2(u + 1.0) + u * T * (4.0 * D + 5.0) +
                     T * D);
}

static int informer_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const informer_priv *opt = ctx->priv;
    if (opt->factor < 1 || opt->top < 0 || opt->samples < 0) {
        snprintf(err, errlen, "factor must be >= 1, top and samples >= 0 (0 = factor*ceil(ln T))");
        return LRA_ATTN_EINVAL;
    }
    if (opt->mean < 0 || opt->mean > 1) {
        snprintf(err, errlen, "mean must be sample or keys");
        return LRA_ATTN_EINVAL;
    }
    if (!(opt->scale >= 0.0 && isfinite(opt->scale))) {
        snprintf(err, errlen, "scale must be a finite number >= 0 (0 = 1/sqrt(head dim)), got %g",
                 opt->scale);
        return LRA_ATTN_EINVAL;
    }
    if (ctx->shape.max_len >= (1 << 24) || ctx->shape.len >= (1 << 24)) {
        snprintf(err, errlen, "positions are stored as floats: max_len must be < 2^24");
        return LRA_ATTN_ESHAPE;
    }
    return LRA_ATTN_OK;
}

const lra_attention lra_attn_informer = {
    .abi_version = LRA_ATTN_ABI_VERSION,
    .name        = "informer",
    .help        = "Informer ProbSparse attention (Zhou et al. 2021, arXiv 2012.07436): the top "
                   "c*ln T queries by sampled max-mean get softmax, the rest mean(V); "
                   "O(T log T Dh)",
    .flags       = LRA_ATTN_STOCHASTIC | LRA_ATTN_NONSMOOTH,
    .priv_size   = sizeof(informer_priv),
    .options     = informer_options,
    /* T = 8: ⌈ln 8⌉ = 3, so the default c = 5 makes every query active (plain softmax); c = 1
     * gives u = 3 active queries and U = 3 samples, exercising the sparse path. */
    .check_options = "factor=1",
    /* c = 3 gives u = 9 >= T = 8: every query active, exactly softmax attention. */
    .softmax_limit_options = "factor=3",
    .sizes       = informer_sizes,
    .flops       = informer_flops,
    .init        = informer_init,
    .forward     = informer_forward,
    .backward    = informer_backward,
    .free        = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_informer)
