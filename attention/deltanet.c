/* deltanet.c — DeltaNet: linear attention whose fast-weight state is updated by the delta rule.
 *
 * Schlag, Irie, Schmidhuber, "Linear Transformers Are Secretly Fast Weight Programmers", ICML
 * 2021, arXiv 2102.11174; Yang, Wang, Zhang, Shen, Kim, "Parallelizing Linear Transformers with
 * the Delta Rule over Sequence Length", NeurIPS 2024, arXiv 2406.06484. attention-variants.md
 * §21. Per (batch, head) slice, with state S (Dh × Dh, values × keys), S = 0 before the first
 * step, the recurrent scan over the tokens t in scan order:
 *     u_t = S_{t−1} k̂_t,   S_t = S_{t−1} + β_t (v_t − u_t) k̂_tᵀ,   o_t = S_t q̂_t,
 * q̂ = q/‖q‖, k̂ = k/‖k‖ (Yang et al.'s L2 normalisation, ‖x‖ = sqrt(Σx² + 1e-6); qk_norm=0 uses
 * q and k as they come), β_t = m_t·σ(w_hᵀ g_t + b_h) with g = q (gate=q) or k (gate=k).
 * The gate's input: the papers compute β from the layer input x, which this ABI does not pass;
 * σ(w·q + b) is the linear reparametrisation of §0.1 (q = x W_q), a per-head w_h ∈ R^Dh and
 * b_h being the trainable parameters (H·(Dh + 1) floats, w ~ N(0, 1/Dh), b = 0 so β ≈ 0.5).
 * gate=k is §21's wording; the default follows the task's choice of q.
 * Encoder use (adaptation, §21 option (b)): direction=bidirectional (default) runs a second,
 * independent scan right to left with the same q̂, k̂, v, β and adds the two outputs, so every
 * token (a CLS token in front included) sees the whole sequence; direction=causal is the
 * papers' left-to-right scan, in which token t sees tokens ≤ t only.
 * Padding: β_t = 0 at padded tokens, so they never change the state (nothing a padded key,
 * value or query holds reaches an output), and outputs at padded positions are set to 0.
 * Attention dropout: there are no attention probabilities, so ctx->dropout is ignored.
 *
 * Complexity: the sequential scan, about 6·T·Dh² flops per direction and slice forward (u, the
 *          rank-one update, o), O(Dh²) state; backward about twice that plus one recomputation
 *          of the states. Yang et al.'s chunkwise-parallel (WY) form is not implemented: the
 *          (batch, head) loop already gives the parallelism this CPU suite uses.
 * Cache:   per slice and direction, the state before every `chunk`-th step of the scan:
 *          ⌈T/C⌉ snapshots of Dh² floats ((T/C)·Dh², §21). Backward recomputes the C states of
 *          one chunk at a time from its snapshot.
 * Scratch: per slice, q̂, k̂, β and their gradients (4·T·Dh + 2·T), the carried gradient G and
 *          the states of one chunk ((C + 2)·Dh²), three Dh vectors and a private copy of the
 *          gate's parameter gradient, reduced over slices in a fixed order after the loop.
 */
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lra_attention.h"
#include "lra_rng.h"

enum { DELTANET_BIDIR = 0, DELTANET_CAUSAL = 1 };
enum { DELTANET_GATE_Q = 0, DELTANET_GATE_K = 1 };

static const float DELTANET_EPS = 1e-6f; /* inside the square root of ‖x‖ */

typedef struct deltanet_priv {
    int chunk;     /* C: steps between cached state snapshots */
    int direction; /* DELTANET_BIDIR or DELTANET_CAUSAL */
    int gate;      /* DELTANET_GATE_Q or DELTANET_GATE_K: the input of β */
    int qk_norm;   /* 1: L2-normalise q and k */
} deltanet_priv;

static const lra_attn_option deltanet_options[] = {
    {.name = "chunk", .help = "scan steps between cached state snapshots (memory vs recompute)",
     .offset = offsetof(deltanet_priv, chunk), .type = LRA_OPT_INT,
     .def = 64, .min = 1, .max = 1 << 20},
    {.name = "direction", .help = "bidirectional = left-to-right plus right-to-left scan "
                                  "(encoder adaptation); causal = the papers' scan",
     .offset = offsetof(deltanet_priv, direction), .type = LRA_OPT_CHOICE,
     .def = DELTANET_BIDIR, .min = 0, .max = 1, .choices = "bidirectional|causal"},
    {.name = "gate", .help = "input of the gate beta = sigmoid(w.g + b): q or k",
     .offset = offsetof(deltanet_priv, gate), .type = LRA_OPT_CHOICE,
     .def = DELTANET_GATE_Q, .min = 0, .max = 1, .choices = "q|k"},
    {.name = "qk_norm", .help = "L2-normalise q and k (Yang et al. 2024)",
     .offset = offsetof(deltanet_priv, qk_norm), .type = LRA_OPT_BOOL,
     .def = 1, .min = 0, .max = 1},
    {.name = NULL},
};

typedef struct deltanet_dims {
    int T, D, C, n_chunks, dirs, gate, norm;
} deltanet_dims;

/* One slice's buffers: inputs, masks and work. */
typedef struct deltanet_slice {
    const float *q, *k, *v, *mask; /* (T, Dh) ×3, (T) */
    const float *w;                /* (Dh + 1) this head's gate: w_h, then b_h */
    float *snap;                   /* (dirs, n_chunks, Dh, Dh) cached states */
    float *qn, *kn, *beta;         /* (T, Dh), (T, Dh), (T) */
    float *dqn, *dkn, *dbeta;      /* (T, Dh), (T, Dh), (T) */
    float *G, *states;             /* (Dh, Dh), (C + 1, Dh, Dh) */
    float *u, *e, *gk;             /* (Dh) each */
    float *dw;                     /* (Dh + 1) this slice's gate gradient */
} deltanet_slice;

static deltanet_dims deltanet_dims_of(const lra_attn_ctx *ctx)
{
    const deltanet_priv *opt = ctx->priv;
    const int T = ctx->shape.len, C = opt->chunk > 0 ? opt->chunk : 1;
    return (deltanet_dims){.T = T, .D = ctx->shape.dim, .C = C, .n_chunks = (T + C - 1) / C,
                           .dirs = opt->direction == DELTANET_CAUSAL ? 1 : 2,
                           .gate = opt->gate, .norm = opt->qk_norm};
}

static size_t deltanet_cache_floats(const deltanet_dims *d)
{
    return (size_t)d->dirs * d->n_chunks * d->D * d->D;
}

static size_t deltanet_scratch_floats(const deltanet_dims *d)
{
    const size_t TD = (size_t)d->T * d->D, DD = (size_t)d->D * d->D;
    return 4 * TD + 2 * (size_t)d->T + (size_t)(d->C + 2) * DD + 4 * (size_t)d->D + 1;
}

static int deltanet_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}

static deltanet_slice deltanet_slice_at(const lra_attn_ctx *ctx, const deltanet_dims *d, int bh,
                                        const float *q, const float *k, const float *v)
{
    const int D = d->D, h = bh % ctx->shape.heads;
    const size_t TD = (size_t)d->T * D, DD = (size_t)D * D;
    float *s = ctx->scratch + (size_t)bh * deltanet_scratch_floats(d);
    deltanet_slice z = {.q = q + bh * TD, .k = k + bh * TD, .v = v + bh * TD,
                        .mask = ctx->key_mask + (size_t)(bh / ctx->shape.heads) * d->T,
                        .w = ctx->params + (size_t)h * (D + 1),
                        .snap = ctx->cache + (size_t)bh * deltanet_cache_floats(d)};
    z.qn = s, z.kn = s + TD, z.dqn = s + 2 * TD, z.dkn = s + 3 * TD;
    z.beta = s + 4 * TD, z.dbeta = z.beta + d->T;
    z.G = z.dbeta + d->T, z.states = z.G + DD;
    z.u = z.states + (size_t)(d->C + 1) * DD, z.e = z.u + D, z.gk = z.e + D, z.dw = z.gk + D;
    return z;
}

/* x̂ = x/‖x‖ (or x when norm is 0); returns ‖x‖ (1 when norm is 0). */
static float deltanet_normalise(const float *x, float *xn, int D, int norm)
{
    double ss = 0.0;
    for (int e = 0; e < D; e++) ss += (double)x[e] * x[e];
    const float n = norm ? sqrtf((float)ss + DELTANET_EPS) : 1.0f;
    for (int e = 0; e < D; e++) xn[e] = x[e] / n;
    return n;
}

static float deltanet_sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

/* q̂, k̂ and β of every token of the slice. */
static void deltanet_prepare(const deltanet_dims *d, deltanet_slice *z)
{
    const int D = d->D;
    for (int t = 0; t < d->T; t++) {
        const size_t o = (size_t)t * D;
        deltanet_normalise(z->q + o, z->qn + o, D, d->norm);
        deltanet_normalise(z->k + o, z->kn + o, D, d->norm);
        const float *g = (d->gate == DELTANET_GATE_Q ? z->q : z->k) + o;
        float a = z->w[D];
        for (int e = 0; e < D; e++) a += z->w[e] * g[e];
        z->beta[t] = z->mask[t] != 0.0f ? deltanet_sigmoid(a) : 0.0f;
    }
}

/* y = A x for A (D, D). */
static void deltanet_matvec(const float *A, const float *x, float *y, int D)
{
    for (int a = 0; a < D; a++) {
        float acc = 0.0f;
        for (int b = 0; b < D; b++) acc += A[(size_t)a * D + b] * x[b];
        y[a] = acc;
    }
}

/* y += Aᵀ x for A (D, D). */
static void deltanet_matvec_t_add(const float *A, const float *x, float *y, int D)
{
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) y[b] += A[(size_t)a * D + b] * x[a];
}

/* A += c·x yᵀ for A (D, D). */
static void deltanet_outer_add(float *A, float c, const float *x, const float *y, int D)
{
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) A[(size_t)a * D + b] += c * x[a] * y[b];
}

/* The token of scan step `step` in direction dir (0: left to right, 1: right to left). */
static int deltanet_token(const deltanet_dims *d, int dir, int step)
{
    return dir == 0 ? step : d->T - 1 - step;
}

/* One step of the delta rule on S in place: S ← S + β (v − S k̂) k̂ᵀ. Skipped when β = 0. */
static void deltanet_step(const deltanet_dims *d, deltanet_slice *z, int t, float *S)
{
    const int D = d->D;
    const float beta = z->beta[t];
    if (beta == 0.0f) return;
    const float *kt = z->kn + (size_t)t * D, *vt = z->v + (size_t)t * D;
    deltanet_matvec(S, kt, z->u, D);
    for (int a = 0; a < D; a++) z->e[a] = vt[a] - z->u[a];
    deltanet_outer_add(S, beta, z->e, kt, D);
}

/* One direction's scan: snapshots every C steps into the cache, out (T, Dh) += S_t q̂_t. */
static void deltanet_scan(const deltanet_dims *d, deltanet_slice *z, int dir, float *out)
{
    const int D = d->D;
    const size_t DD = (size_t)D * D;
    float *S = z->states; /* (Dh, Dh) the running state */
    memset(S, 0, DD * sizeof(float));
    for (int step = 0; step < d->T; step++) {
        if (step % d->C == 0)
            memcpy(z->snap + ((size_t)dir * d->n_chunks + step / d->C) * DD, S,
                   DD * sizeof(float));
        const int t = deltanet_token(d, dir, step);
        deltanet_step(d, z, t, S);
        deltanet_matvec(S, z->qn + (size_t)t * D, z->u, D);
        for (int a = 0; a < D; a++) out[(size_t)t * D + a] += z->u[a];
    }
}

static void deltanet_forward_slice(const deltanet_dims *d, deltanet_slice *z, float *out)
{
    const int D = d->D;
    memset(out, 0, (size_t)d->T * D * sizeof(float));
    deltanet_prepare(d, z);
    for (int dir = 0; dir < d->dirs; dir++) deltanet_scan(d, z, dir, out);
    for (int t = 0; t < d->T; t++)
        if (z->mask[t] == 0.0f) memset(out + (size_t)t * D, 0, (size_t)D * sizeof(float));
}

/* Backward of scan step `step` (token t), given G = ∂L/∂S_t without this step's output term;
 * S_prev = S_{t−1}, S_cur = S_t. Leaves G = ∂L/∂S_{t−1}. */
static void deltanet_step_backward(const deltanet_dims *d, deltanet_slice *z, int t,
                                   const float *S_prev, const float *S_cur, const float *dO,
                                   float *dv)
{
    const int D = d->D;
    const size_t o = (size_t)t * D;
    const float *qt = z->qn + o, *kt = z->kn + o, *vt = z->v + o, *dot = dO + o;
    const float beta = z->beta[t];
    float *G = z->G;
    if (z->mask[t] == 0.0f) return; /* out_t was zeroed and β_t = 0: the step is the identity */
    /* forward was o_t = S_t q̂_t, so G += do_t q̂_tᵀ and dq̂_t += S_tᵀ do_t. */
    deltanet_outer_add(G, 1.0f, dot, qt, D);
    deltanet_matvec_t_add(S_cur, dot, z->dqn + o, D);
    /* forward was S_t = S_{t−1} + β e kᵀ with e = v − u, u = S_{t−1} k̂, so with Gk = G k̂:
     * dβ = eᵀ Gk; de = β Gk; dv += de; dk̂ += β Gᵀ e; du = −de; dk̂ += S_{t−1}ᵀ du. */
    deltanet_matvec(S_prev, kt, z->u, D);
    for (int a = 0; a < D; a++) z->e[a] = vt[a] - z->u[a];
    deltanet_matvec(G, kt, z->gk, D);
    double db = 0.0;
    for (int a = 0; a < D; a++) db += (double)z->e[a] * z->gk[a];
    z->dbeta[t] += (float)db;
    for (int a = 0; a < D; a++) z->u[a] = beta * z->e[a]; /* u is free again: u = β e */
    deltanet_matvec_t_add(G, z->u, z->dkn + o, D);
    for (int a = 0; a < D; a++) {
        const float de = beta * z->gk[a];
        dv[o + a] += de;
        z->gk[a] = -de; /* gk now holds du */
    }
    deltanet_matvec_t_add(S_prev, z->gk, z->dkn + o, D);
    /* ... and S_{t−1} enters S_t as S_{t−1} − β S_{t−1} k̂ k̂ᵀ, so G ← G + du k̂ᵀ. */
    deltanet_outer_add(G, 1.0f, z->gk, kt, D);
}

/* One direction's backward: chunks from last to first, each chunk's states recomputed from its
 * snapshot, then its steps walked backwards carrying G. */
static void deltanet_scan_backward(const deltanet_dims *d, deltanet_slice *z, int dir,
                                   const float *dO, float *dv)
{
    const size_t DD = (size_t)d->D * d->D;
    memset(z->G, 0, DD * sizeof(float));
    for (int c = d->n_chunks - 1; c >= 0; c--) {
        const int s0 = c * d->C, n = d->T - s0 < d->C ? d->T - s0 : d->C;
        /* states[i] = the state before step s0 + i, i = 0 … n. */
        memcpy(z->states, z->snap + ((size_t)dir * d->n_chunks + c) * DD, DD * sizeof(float));
        for (int i = 0; i < n; i++) {
            memcpy(z->states + (i + 1) * DD, z->states + i * DD, DD * sizeof(float));
            deltanet_step(d, z, deltanet_token(d, dir, s0 + i), z->states + (i + 1) * DD);
        }
        for (int i = n - 1; i >= 0; i--)
            deltanet_step_backward(d, z, deltanet_token(d, dir, s0 + i), z->states + i * DD,
                                   z->states + (i + 1) * DD, dO, dv);
    }
}

/* dx += the gradient of x̂ = x/‖x‖ given dx̂: dx̂/‖x‖ − x (x·dx̂)/‖x‖³. */
static void deltanet_normalise_backward(const float *x, const float *dxn, float *dx, int D,
                                        int norm)
{
    double ss = 0.0, xd = 0.0;
    for (int e = 0; e < D; e++) {
        ss += (double)x[e] * x[e];
        xd += (double)x[e] * dxn[e];
    }
    const float n = norm ? sqrtf((float)ss + DELTANET_EPS) : 1.0f;
    const float c = norm ? (float)xd / (n * n * n) : 0.0f;
    for (int e = 0; e < D; e++) dx[e] += dxn[e] / n - x[e] * c;
}

/* Chains dq̂, dk̂ and dβ of the slice into dq, dk and the slice's gate gradient dw. */
static void deltanet_chain(const deltanet_dims *d, deltanet_slice *z, float *dq, float *dk)
{
    const int D = d->D;
    memset(z->dw, 0, (size_t)(D + 1) * sizeof(float));
    for (int t = 0; t < d->T; t++) {
        const size_t o = (size_t)t * D;
        deltanet_normalise_backward(z->q + o, z->dqn + o, dq + o, D, d->norm);
        deltanet_normalise_backward(z->k + o, z->dkn + o, dk + o, D, d->norm);
        if (z->mask[t] == 0.0f) continue; /* β_t = 0 there, whatever the gate says */
        /* forward was β = σ(a), a = w·g + b, so da = dβ β (1 − β). */
        const float b = z->beta[t], da = z->dbeta[t] * b * (1.0f - b);
        const float *g = (d->gate == DELTANET_GATE_Q ? z->q : z->k) + o;
        float *dg = (d->gate == DELTANET_GATE_Q ? dq : dk) + o;
        for (int e = 0; e < D; e++) {
            z->dw[e] += da * g[e];
            dg[e] += da * z->w[e];
        }
        z->dw[D] += da;
    }
}

static void deltanet_backward_slice(const deltanet_dims *d, deltanet_slice *z, const float *dO,
                                    float *dq, float *dk, float *dv)
{
    const size_t TD = (size_t)d->T * d->D;
    deltanet_prepare(d, z);
    memset(z->dqn, 0, TD * sizeof(float));
    memset(z->dkn, 0, TD * sizeof(float));
    memset(z->dbeta, 0, (size_t)d->T * sizeof(float));
    /* forward was out = Σ_dirs (scan outputs), zeroed at padded tokens: each direction gets the
     * same dout, and padded tokens' dout is dropped (deltanet_step_backward skips them). */
    for (int dir = 0; dir < d->dirs; dir++) deltanet_scan_backward(d, z, dir, dO, dv);
    deltanet_chain(d, z, dq, dk);
}

static void deltanet_sizes(const lra_attn_ctx *ctx, lra_attn_sizes *out)
{
    const deltanet_dims d = deltanet_dims_of(ctx);
    const size_t slices = (size_t)ctx->shape.batch * ctx->shape.heads;
    *out = (lra_attn_sizes){
        .n_params  = (size_t)ctx->shape.heads * (ctx->shape.dim + 1), /* w_h, b_h per head */
        .n_state   = 0,
        .n_cache   = slices * deltanet_cache_floats(&d),   /* state snapshots */
        .n_scratch = slices * deltanet_scratch_floats(&d), /* per slice: see the header */
    };
}

static double deltanet_flops(const lra_attn_ctx *ctx)
{
    const deltanet_dims d = deltanet_dims_of(ctx);
    const double slices = (double)ctx->shape.batch * ctx->shape.heads, T = d.T, D = d.D;
    /* Per token and direction: u = S k̂ (2Dh²), the rank-one update (2Dh²), o = S q̂ (2Dh²).
     * Per token once: two normalisations and the gate (about 8·Dh plus a sigmoid). */
    return slices * T * (d.dirs * 6.0 * D * D + 8.0 * D + 4.0);
}

static int deltanet_init(lra_attn_ctx *ctx, char *err, size_t errlen)
{
    const deltanet_priv *opt = ctx->priv;
    if (opt->chunk < 1 || opt->direction < 0 || opt->direction > 1 || opt->gate < 0 ||
        opt->gate > 1 || opt->qk_norm < 0 || opt->qk_norm > 1) {
        snprintf(err, errlen, "chunk must be >= 1, direction bidirectional or causal, gate q "
                              "or k, qk_norm 0 or 1");
        return LRA_ATTN_EINVAL;
    }
    /* w_h ~ N(0, 1/Dh), b_h = 0: β starts near 0.5 with some spread across tokens. */
    const int D = ctx->shape.dim;
    const uint64_t key = lra_key(ctx->seed, 1);
    const float sd = 1.0f / sqrtf((float)D);
    for (int h = 0; h < ctx->shape.heads; h++) {
        float *w = ctx->params + (size_t)h * (D + 1);
        for (int e = 0; e < D; e++) w[e] = sd * lra_normal(key, (uint64_t)h * (D + 1) + e);
        w[D] = 0.0f;
    }
    return LRA_ATTN_OK;
}

static void deltanet_forward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                             float *out)
{
    const deltanet_dims d = deltanet_dims_of(ctx);
    const int BH = ctx->shape.batch * ctx->shape.heads;
    const size_t TD = (size_t)d.T * d.D;

#pragma omp parallel for schedule(static) num_threads(deltanet_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        deltanet_slice z = deltanet_slice_at(ctx, &d, bh, q, k, v);
        deltanet_forward_slice(&d, &z, out + bh * TD);
    }
}

static void deltanet_backward(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                              const float *out, const float *dout, float *dq, float *dk,
                              float *dv)
{
    (void)out; /* the states are recomputed from the cached snapshots */
    const deltanet_dims d = deltanet_dims_of(ctx);
    const int H = ctx->shape.heads, BH = ctx->shape.batch * H, D = d.D;
    const size_t TD = (size_t)d.T * D;

#pragma omp parallel for schedule(static) num_threads(deltanet_threads(ctx))
    for (int bh = 0; bh < BH; bh++) {
        deltanet_slice z = deltanet_slice_at(ctx, &d, bh, q, k, v);
        deltanet_backward_slice(&d, &z, dout + bh * TD, dq + bh * TD, dk + bh * TD,
                                dv + bh * TD);
    }
    /* The gate is shared by the batch: sum the slices' gradients in a fixed order. */
    for (int bh = 0; bh < BH; bh++) {
        const deltanet_slice z = deltanet_slice_at(ctx, &d, bh, q, k, v);
        float *dw = ctx->dparams + (size_t)(bh % H) * (D + 1);
        for (int e = 0; e <= D; e++) dw[e] += z.dw[e];
    }
}

const lra_attention lra_attn_deltanet = {
    .abi_version   = LRA_ATTN_ABI_VERSION,
    .name          = "deltanet",
    .help          = "DeltaNet: delta-rule linear attention as a recurrent scan, bidirectional "
                     "by default (Schlag et al. 2021; Yang et al. 2024, arXiv 2406.06484); "
                     "O(T Dh^2) time, O((T/C) Dh^2) memory",
    .flags         = 0,
    .priv_size     = sizeof(deltanet_priv),
    .options       = deltanet_options,
    .check_options = "chunk=3",
    .sizes         = deltanet_sizes,
    .flops         = deltanet_flops,
    .init          = deltanet_init,
    .forward       = deltanet_forward,
    .backward      = deltanet_backward,
    .free          = NULL,
};

LRA_ATTENTION_EXPORT(lra_attn_deltanet)
