/* test_ops.c — gradient checks and invariants for the layers in suite/ops.c.
 *
 * Gradients (style.md §7.1): for every op and every differentiable input separately, the
 * directional finite difference of L = sum(out ∘ R) (R fixed random, so dout = R) is compared
 * with the back-propagated gradient by lra_gradcheck. Two composed heads (linear → relu →
 * linear → xent, and the dual-encoder version) are checked per parameter. Every backward is also
 * called twice to check that it adds (+=) instead of overwriting.
 * Invariants: dropout masks, masked-mean padding, head layouts, zero-weight loss rows, the
 * sinusoid values, BLAS against plain loops, and bit-identical results for 1 and 4 threads.
 *
 * --plant swaps some backward passes for realistic buggy variants written in this file (never in
 * ops.c). Every check a planted bug corrupts must then fail; the program exits 1 only if all of
 * them did, so the meson test registered with should_fail turns red when a check goes blind.
 *
 * Output: one line per check, then "N passed, N failed". Exit 1 on any failure (without
 * --plant).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "lra_rng.h"
#include "ops.h"
#include "util.h"

#define SEED 20240611ULL
#define MAX_INPUTS 6

static int g_plant;                     /* --plant: use the buggy backward variants below */
static int g_passed, g_failed;          /* all checks */
static int g_planted, g_caught;         /* checks a planted bug corrupts, and those that failed */
static uint64_t g_next_key;             /* every buffer gets its own random stream */

/* ------------------------------------------------------------------------------------------ */
/* Buffers: allocated zeroed, freed together at exit. */

#define MAX_BUFS 256
static void *g_bufs[MAX_BUFS];
static int g_nbufs;

static void *buf_bytes(size_t bytes)
{
    LRA_ASSERT(g_nbufs < MAX_BUFS);
    return g_bufs[g_nbufs++] = lra_alloc(bytes, "test buffer");
}

static float *buf_zero(size_t n) { return buf_bytes(n * sizeof(float)); }

static void fill_uniform(float *x, size_t n)
{
    uint64_t key = lra_key(SEED, g_next_key++);
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * lra_uniform(key, i) - 1.0f;
}

/* A fresh buffer, uniform in (-1, 1). */
static float *buf_uniform(size_t n)
{
    float *x = buf_zero(n);
    fill_uniform(x, n);
    return x;
}

static int32_t *buf_labels(int n, int C)
{
    int32_t *y = buf_bytes((size_t)n * sizeof(int32_t));
    uint64_t key = lra_key(SEED, g_next_key++);
    for (int i = 0; i < n; i++) y[i] = (int32_t)lra_below(key, (uint64_t)i, (uint32_t)C);
    return y;
}

static void bufs_free_all(void)
{
    while (g_nbufs > 0) lra_free(g_bufs[--g_nbufs]);
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Reporting */

static void record_check(const char *name, int ok, const char *detail)
{
    printf("  %-28s %s%s%s\n", name, ok ? "PASS" : "FAIL", detail ? "  " : "",
           detail ? detail : "");
    if (ok) g_passed++;
    else g_failed++;
}

static void record_gradcheck(const char *name, const lra_gradcheck_result *r, const char *planted)
{
    lra_gradcheck_print(name, r);
    if (r->verdict == LRA_GC_FAIL) g_failed++;
    else g_passed++;
    if (!planted) return;
    g_planted++;
    if (r->verdict == LRA_GC_FAIL) {
        g_caught++;
        printf("    planted bug caught: %s\n", planted);
    } else {
        printf("    planted bug MISSED: %s\n", planted);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Planted bugs (--plant). Each is a mistake that compiles, runs and gives plausible numbers. */

/* dW as dy^T · x: the (out, in) product written into the (in, out) buffer, what a swapped pair
 * of GEMM transpose flags produces. Invisible when w is square. */
static void planted_linear_backward(float *dx, float *dw, float *db, const float *dy,
                                    const float *x, const float *w, int n, int in, int out)
{
    op_linear_backward(dx, NULL, db, dy, x, w, n, in, out);
    if (!dw) return;
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) {
            double s = 0.0;
            for (int r = 0; r < n; r++) s += (double)dy[r * out + o] * x[r * in + i];
            dw[o * in + i] += (float)s;
        }
}

/* LayerNorm dx without the -xhat * mean(dxhat * xhat) term (the variance path forgotten). */
static void planted_layernorm_backward(float *dx, float *dg, float *db, const float *dy,
                                       const float *x, const float *mean, const float *rstd,
                                       const float *g, int n, int d)
{
    op_layernorm_backward(NULL, dg, db, dy, x, mean, rstd, g, n, d);
    for (int i = 0; i < n; i++) {
        double sum = 0.0;
        for (int j = 0; j < d; j++) sum += dy[i * d + j] * g[j];
        for (int j = 0; j < d; j++)
            dx[i * d + j] += rstd[i] * (dy[i * d + j] * g[j] - (float)(sum / d));
    }
}

/* GELU derivative with the inner derivative k (1 + 3 c x^2) taken as just k. */
static void planted_gelu_backward(float *dx, const float *dy, const float *x, size_t n)
{
    const float k = 0.7978845608028654f, c = 0.044715f;
    for (size_t i = 0; i < n; i++) {
        float th = tanhf(k * (x[i] + c * x[i] * x[i] * x[i]));
        dx[i] += dy[i] * (0.5f * (1.0f + th) + 0.5f * x[i] * (1.0f - th * th) * k);
    }
}

/* Masked mean backward divided by T instead of the number of real tokens. */
static void planted_pool_mean_backward(float *dx, const float *dout, const float *mask, int B,
                                       int T, int D)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < D; j++)
                dx[(b * T + t) * D + j] += mask[b * T + t] / (float)T * dout[b * D + j];
}

/* Cross-entropy gradient normalised by the batch size instead of the sum of weights. */
static void planted_xent_backward(float *dlogits, const float *probs, const int32_t *labels,
                                  const float *weight, int n, int C)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            float w = weight ? weight[i] : 1.0f;
            dlogits[i * C + c] += (probs[i * C + c] - (c == labels[i])) * w / (float)n;
        }
}

/* Dual features with the sign of the u - v block wrong in dv. */
static void planted_dual_features_backward(float *du, float *dv, const float *df, const float *u,
                                           const float *v, int B, int D)
{
    op_dual_features_backward(du, NULL, df, u, v, B, D);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++) {
            const float *f = df + b * 4 * D;
            dv[b * D + j] += f[D + j] + f[2 * D + j] * u[b * D + j] + f[3 * D + j];
        }
}

/* Dropout backward that forgets the 1/(1-p) scale of kept elements. */
static void planted_dropout_backward(float *dx, const float *dy, size_t n, float p, uint64_t key,
                                     uint64_t first)
{
    for (size_t i = 0; i < n; i++)
        if (lra_uniform(key, first + i) >= p) dx[i] += dy[i];
}

/* Embedding backward that assigns instead of adding: repeated tokens keep only the last row. */
static void planted_embed_backward(float *dtable, const float *dout, const int32_t *tok, int n,
                                   int d)
{
    for (int i = 0; i < n; i++) memcpy(dtable + tok[i] * d, dout + i * d, d * sizeof(float));
}

/* The backward passes the checks call: the real ones, or the planted ones under --plant. */
static void linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int n, int in, int out)
{
    (g_plant ? planted_linear_backward : op_linear_backward)(dx, dw, db, dy, x, w, n, in, out);
}

static void layernorm_backward(float *dx, float *dg, float *db, const float *dy, const float *x,
                               const float *mean, const float *rstd, const float *g, int n, int d)
{
    (g_plant ? planted_layernorm_backward : op_layernorm_backward)(dx, dg, db, dy, x, mean, rstd,
                                                                   g, n, d);
}

static void xent_backward(float *dlogits, const float *probs, const int32_t *labels,
                          const float *weight, int n, int C)
{
    (g_plant ? planted_xent_backward : op_xent_backward)(dlogits, probs, labels, weight, n, C);
}

static void dual_features_backward(float *du, float *dv, const float *df, const float *u,
                                   const float *v, int B, int D)
{
    (g_plant ? planted_dual_features_backward : op_dual_features_backward)(du, dv, df, u, v, B,
                                                                           D);
}

/* The planted bug that corrupts a gradient, or NULL without --plant. */
static const char *planted(const char *what) { return g_plant ? what : NULL; }

#define PLANT_LINEAR "linear dW stored transposed"
#define PLANT_LAYERNORM "layernorm dx without the mean(dxhat*xhat) term"
#define PLANT_GELU "gelu derivative without 3*0.044715*x^2"
#define PLANT_POOL_MEAN "masked mean backward divided by T"
#define PLANT_XENT "xent gradient divided by n, not sum(weight)"
#define PLANT_DUAL "dual features dv with +d(u-v)"
#define PLANT_DROPOUT "dropout backward without 1/(1-p)"
#define PLANT_EMBED "embedding backward assigns instead of adding"

/* ------------------------------------------------------------------------------------------ */
/* The harness: one op, its loss, its backward, and the inputs to check one at a time. */

typedef struct grad_input {
    const char *name;
    float *x;            /* perturbed in place by the check */
    float *g;            /* dL/dx, filled by backward */
    size_t n;
    const char *planted; /* the planted bug that corrupts g, or NULL */
} grad_input;

typedef struct op_case {
    const char *name;
    void *ctx;
    lra_loss_fn loss;            /* forward, then L accumulated in double */
    void (*backward)(void *ctx); /* adds dL/dx into every grad_input.g */
    grad_input in[MAX_INPUTS];
    int n_in;
    lra_gradcheck_opts opt;
} op_case;

static void zero_grads(const op_case *c)
{
    for (int k = 0; k < c->n_in; k++) memset(c->in[k].g, 0, c->in[k].n * sizeof(float));
}

/* Backward run a second time must double every gradient (it adds). Leaves one run's worth. */
static void check_accumulates(const op_case *c)
{
    double worst = 0.0;
    float *once[MAX_INPUTS];
    for (int k = 0; k < c->n_in; k++) {
        once[k] = malloc(c->in[k].n * sizeof(float));
        LRA_ASSERT(once[k]);
        memcpy(once[k], c->in[k].g, c->in[k].n * sizeof(float));
    }
    c->backward(c->ctx);
    for (int k = 0; k < c->n_in; k++) {
        for (size_t i = 0; i < c->in[k].n; i++) {
            double want = 2.0 * once[k][i];
            double err = fabs(c->in[k].g[i] - want) / (fabs(want) + 1e-6);
            worst = err > worst || isnan(err) ? err : worst;
        }
        memcpy(c->in[k].g, once[k], c->in[k].n * sizeof(float));
        free(once[k]);
    }
    char name[64], detail[64];
    snprintf(name, sizeof name, "%s: accumulates", c->name);
    snprintf(detail, sizeof detail, "(worst rel err %.1e)", worst);
    record_check(name, worst < 1e-6, detail);
}

static void run_case(const op_case *c)
{
    printf("%s\n", c->name);
    zero_grads(c);
    c->loss(c->ctx); /* backward reads the state of an unperturbed forward */
    c->backward(c->ctx);
    check_accumulates(c);
    for (int k = 0; k < c->n_in; k++) {
        const grad_input *in = &c->in[k];
        lra_gradcheck_result r = lra_gradcheck(c->loss, c->ctx, in->x, in->g, in->n, &c->opt);
        char name[64];
        snprintf(name, sizeof name, "%s: %s", c->name, in->name);
        record_gradcheck(name, &r, in->planted);
    }
}

static grad_input input(const char *name, float *x, float *g, size_t n, const char *planted_bug)
{
    return (grad_input){.name = name, .x = x, .g = g, .n = n, .planted = planted_bug};
}

/* ------------------------------------------------------------------------------------------ */
/* Embedding: out (n, d) = table[tok] with repeated tokens, so backward must accumulate. */

typedef struct embed_ctx {
    int n, d;
    int32_t *tok;
    float *table, *out, *R, *dtable;
} embed_ctx;

static double embed_loss(void *p)
{
    embed_ctx *c = p;
    op_embed_forward(c->out, c->tok, c->table, c->n, c->d);
    return dot(c->out, c->R, (size_t)c->n * c->d);
}

static void embed_backward(void *p)
{
    embed_ctx *c = p;
    (g_plant ? planted_embed_backward : op_embed_backward)(c->dtable, c->R, c->tok, c->n, c->d);
}

static void test_embed(void)
{
    enum { N = 6, D = 8, V = 5 };
    static int32_t tok[N] = {3, 1, 3, 0, 4, 3};
    embed_ctx c = {.n = N, .d = D, .tok = tok, .table = buf_uniform(V * D),
                   .out = buf_zero(N * D), .R = buf_uniform(N * D), .dtable = buf_zero(V * D)};
    op_case oc = {.name = "embedding", .ctx = &c, .loss = embed_loss,
                  .backward = embed_backward, .opt = lra_gradcheck_defaults(), .n_in = 1};
    oc.in[0] = input("table", c.table, c.dtable, V * D, planted(PLANT_EMBED));
    run_case(&oc);
}

/* ------------------------------------------------------------------------------------------ */
/* Learned position embedding: x (B, T, D) + pos (T, D). */

typedef struct pos_ctx {
    int B, T, D;
    float *x, *pos, *xw, *R, *dpos;
} pos_ctx;

static double pos_loss(void *p)
{
    pos_ctx *c = p;
    size_t n = (size_t)c->B * c->T * c->D;
    memcpy(c->xw, c->x, n * sizeof(float));
    op_add_pos_forward(c->xw, c->pos, c->B, c->T, c->D);
    return dot(c->xw, c->R, n);
}

static void pos_backward(void *p)
{
    pos_ctx *c = p;
    op_add_pos_backward(c->dpos, c->R, c->B, c->T, c->D);
}

static void test_add_pos(void)
{
    enum { B = 2, T = 3, D = 8 };
    pos_ctx c = {.B = B, .T = T, .D = D, .x = buf_uniform(B * T * D), .pos = buf_uniform(T * D),
                 .xw = buf_zero(B * T * D), .R = buf_uniform(B * T * D), .dpos = buf_zero(T * D)};
    op_case oc = {.name = "learned pos", .ctx = &c, .loss = pos_loss, .backward = pos_backward,
                  .opt = lra_gradcheck_defaults(), .n_in = 1};
    oc.in[0] = input("pos", c.pos, c.dpos, T * D, NULL);
    run_case(&oc);
}

/* ------------------------------------------------------------------------------------------ */
/* Linear: y (n, out) = x (n, in) · w (in, out) + b, with in != out so a transposed dW shows. */

typedef struct linear_ctx {
    int n, in, out;
    float *x, *w, *b, *y, *R, *dx, *dw, *db;
} linear_ctx;

static double linear_loss(void *p)
{
    linear_ctx *c = p;
    op_linear_forward(c->y, c->x, c->w, c->b, c->n, c->in, c->out);
    return dot(c->y, c->R, (size_t)c->n * c->out);
}

static void linear_backward_case(void *p)
{
    linear_ctx *c = p;
    linear_backward(c->dx, c->dw, c->db, c->R, c->x, c->w, c->n, c->in, c->out);
}

static void test_linear(void)
{
    enum { N = 6, IN = 8, OUT = 5 };
    linear_ctx c = {.n = N, .in = IN, .out = OUT, .x = buf_uniform(N * IN),
                    .w = buf_uniform(IN * OUT), .b = buf_uniform(OUT), .y = buf_zero(N * OUT),
                    .R = buf_uniform(N * OUT), .dx = buf_zero(N * IN),
                    .dw = buf_zero(IN * OUT), .db = buf_zero(OUT)};
    op_case oc = {.name = "linear", .ctx = &c, .loss = linear_loss,
                  .backward = linear_backward_case, .opt = lra_gradcheck_defaults(), .n_in = 3};
    oc.in[0] = input("x", c.x, c.dx, N * IN, NULL);
    oc.in[1] = input("w", c.w, c.dw, IN * OUT, planted(PLANT_LINEAR));
    oc.in[2] = input("b", c.b, c.db, OUT, NULL);
    run_case(&oc);

    /* BLAS against plain loops, tolerance scaled by the magnitude of the terms (FFmpeg). */
    linear_loss(&c);
    double worst = 0.0;
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OUT; o++) {
            double ref = c.b[o], mag = fabs(c.b[o]);
            for (int k = 0; k < IN; k++) {
                ref += (double)c.x[i * IN + k] * c.w[k * OUT + o];
                mag += fabs((double)c.x[i * IN + k] * c.w[k * OUT + o]);
            }
            double err = fabs(c.y[i * OUT + o] - ref) / (mag + 1e-30);
            worst = err > worst ? err : worst;
        }
    char detail[64];
    snprintf(detail, sizeof detail, "(worst err / magnitude %.1e)", worst);
    record_check("linear: BLAS matches loops", worst < 4 * 1.2e-7 * IN, detail);
}

/* ------------------------------------------------------------------------------------------ */
/* LayerNorm */

typedef struct layernorm_ctx {
    int n, d;
    float *x, *g, *b, *y, *mean, *rstd, *R, *dx, *dg, *db;
} layernorm_ctx;

static double layernorm_loss(void *p)
{
    layernorm_ctx *c = p;
    op_layernorm_forward(c->y, c->mean, c->rstd, c->x, c->g, c->b, c->n, c->d);
    return dot(c->y, c->R, (size_t)c->n * c->d);
}

static void layernorm_backward_case(void *p)
{
    layernorm_ctx *c = p;
    layernorm_backward(c->dx, c->dg, c->db, c->R, c->x, c->mean, c->rstd, c->g, c->n, c->d);
}

static void test_layernorm(void)
{
    enum { N = 6, D = 8 };
    layernorm_ctx c = {.n = N, .d = D, .x = buf_uniform(N * D), .g = buf_uniform(D),
                       .b = buf_uniform(D), .y = buf_zero(N * D), .mean = buf_zero(N),
                       .rstd = buf_zero(N), .R = buf_uniform(N * D), .dx = buf_zero(N * D),
                       .dg = buf_zero(D), .db = buf_zero(D)};
    op_case oc = {.name = "layernorm", .ctx = &c, .loss = layernorm_loss,
                  .backward = layernorm_backward_case, .opt = lra_gradcheck_defaults(),
                  .n_in = 3};
    oc.in[0] = input("x", c.x, c.dx, N * D, planted(PLANT_LAYERNORM));
    oc.in[1] = input("g", c.g, c.dg, D, NULL);
    oc.in[2] = input("b", c.b, c.db, D, NULL);
    run_case(&oc);
}

/* ------------------------------------------------------------------------------------------ */
/* Elementwise ops: GELU, ReLU, dropout. */

typedef struct unary_ctx {
    size_t n;
    float *x, *y, *R, *dx;
    float p;      /* dropout rate */
    uint64_t key; /* dropout mask */
} unary_ctx;

static unary_ctx unary_make(size_t n)
{
    return (unary_ctx){.n = n, .x = buf_uniform(n), .y = buf_zero(n), .R = buf_uniform(n),
                       .dx = buf_zero(n)};
}

static double gelu_loss(void *p)
{
    unary_ctx *c = p;
    op_gelu_forward(c->y, c->x, c->n);
    return dot(c->y, c->R, c->n);
}

static void gelu_backward(void *p)
{
    unary_ctx *c = p;
    (g_plant ? planted_gelu_backward : op_gelu_backward)(c->dx, c->R, c->x, c->n);
}

static double relu_loss(void *p)
{
    unary_ctx *c = p;
    op_relu_forward(c->y, c->x, c->n);
    return dot(c->y, c->R, c->n);
}

static void relu_backward(void *p)
{
    unary_ctx *c = p;
    op_relu_backward(c->dx, c->R, c->x, c->n);
}

static double dropout_loss(void *p)
{
    unary_ctx *c = p;
    op_dropout_forward(c->y, c->x, c->n, c->p, c->key, 0);
    return dot(c->y, c->R, c->n);
}

static void dropout_backward(void *p)
{
    unary_ctx *c = p;
    (g_plant ? planted_dropout_backward : op_dropout_backward)(c->dx, c->R, c->n, c->p, c->key, 0);
}

/* directions: 0 keeps gradcheck's default. */
static void run_unary(const char *name, unary_ctx *c, lra_loss_fn loss, void (*bwd)(void *),
                      const char *planted_bug, int directions)
{
    op_case oc = {.name = name, .ctx = c, .loss = loss, .backward = bwd,
                  .opt = lra_gradcheck_defaults(), .n_in = 1};
    if (directions > 0) oc.opt.directions = directions;
    oc.in[0] = input("x", c->x, c->dx, c->n, planted_bug);
    run_case(&oc);
}

static void test_unary(void)
{
    enum { N = 6 * 8 };
    /* GELU on (-2, 2) with 16 directions (override): the derivative of the cubic term is only
     * a few percent of the gradient, and on (-1, 1) even less, so a check on the default
     * shape and 4 directions sees a wrong cubic term at 2.5e-2, barely above the 1e-2 line.
     * Here it shows at 8.8e-2 while the correct derivative stays near 5e-5. MLP
     * pre-activations reach |x| = 2 routinely, so the range is realistic. */
    unary_ctx gelu = unary_make(N);
    for (size_t i = 0; i < N; i++) gelu.x[i] *= 2.0f;
    run_unary("gelu", &gelu, gelu_loss, gelu_backward, planted(PLANT_GELU), 16);

    /* ReLU: move every input at least 2*eps from the kink, so that no perturbation (each
     * element moves by at most eps along a unit direction) crosses it. */
    unary_ctx relu = unary_make(N);
    float margin = 2.0f * (float)lra_gradcheck_defaults().eps;
    for (size_t i = 0; i < N; i++)
        relu.x[i] = copysignf(margin + (1.0f - margin) * fabsf(relu.x[i]), relu.x[i]);
    run_unary("relu", &relu, relu_loss, relu_backward, NULL, 0);

    unary_ctx drop = unary_make(N);
    drop.p = 0.3f;
    drop.key = lra_key(SEED, 777);
    run_unary("dropout p=0.3", &drop, dropout_loss, dropout_backward, planted(PLANT_DROPOUT),
              0);
}

/* ------------------------------------------------------------------------------------------ */
/* Softmax cross-entropy: L is the loss itself. */

typedef struct xent_ctx {
    int n, C;
    int32_t *labels;
    float *logits, *weight, *probs, *dlogits;
} xent_ctx;

static double xent_loss(void *p)
{
    xent_ctx *c = p;
    return op_xent_forward(c->probs, c->logits, c->labels, c->weight, c->n, c->C);
}

static void xent_backward_case(void *p)
{
    xent_ctx *c = p;
    xent_backward(c->dlogits, c->probs, c->labels, c->weight, c->n, c->C);
}

static xent_ctx xent_make(int n, int C, float *weight)
{
    return (xent_ctx){.n = n, .C = C, .labels = buf_labels(n, C), .logits = buf_uniform(n * C),
                      .weight = weight, .probs = buf_zero(n * C), .dlogits = buf_zero(n * C)};
}

static void run_xent(const char *name, xent_ctx *c, const char *planted_bug)
{
    op_case oc = {.name = name, .ctx = c, .loss = xent_loss, .backward = xent_backward_case,
                  .opt = lra_gradcheck_defaults(), .n_in = 1};
    oc.in[0] = input("logits", c->logits, c->dlogits, (size_t)c->n * c->C, planted_bug);
    run_case(&oc);
}

/* Zero-weight rows: their logits do not change the loss (bit for bit) and get no gradient,
 * and the loss equals the unweighted loss of the real rows alone. */
static void check_xent_zero_weights(xent_ctx *c)
{
    double loss = xent_loss(c);
    int real = 0, zero_grad = 1;
    xent_ctx sub = xent_make(c->n, c->C, NULL);
    for (int i = 0; i < c->n; i++) {
        if (c->weight[i] == 0.0f) continue;
        memcpy(sub.logits + real * c->C, c->logits + i * c->C, c->C * sizeof(float));
        sub.labels[real++] = c->labels[i];
    }
    sub.n = real;
    double sub_loss = xent_loss(&sub);
    for (int i = 0; i < c->n; i++)
        if (c->weight[i] == 0.0f)
            for (int k = 0; k < c->C; k++) c->logits[i * c->C + k] = 50.0f * (k + 1);
    double changed = xent_loss(c);
    memset(c->dlogits, 0, (size_t)c->n * c->C * sizeof(float));
    op_xent_backward(c->dlogits, c->probs, c->labels, c->weight, c->n, c->C);
    for (int i = 0; i < c->n; i++)
        for (int k = 0; k < c->C && c->weight[i] == 0.0f; k++)
            zero_grad &= c->dlogits[i * c->C + k] == 0.0f;
    record_check("xent: zero-weight rows ignored", loss == changed && zero_grad, NULL);
    char detail[64];
    snprintf(detail, sizeof detail, "(%.9f vs %.9f)", loss, sub_loss);
    record_check("xent: = mean over real rows", fabs(loss - sub_loss) <= 1e-12 * fabs(loss),
                 detail);
}

static void test_xent(void)
{
    enum { N = 6, C = 5 };
    xent_ctx plain = xent_make(N, C, NULL);
    run_xent("xent", &plain, NULL);

    static float weight[N] = {1, 1, 0, 1, 1, 0}; /* a padded final batch: 4 real rows */
    xent_ctx weighted = xent_make(N, C, weight);
    run_xent("xent weighted", &weighted, planted(PLANT_XENT));
    check_xent_zero_weights(&weighted);
}

/* ------------------------------------------------------------------------------------------ */
/* Pooling: x (B, T, D) → out (B, D). */

typedef struct pool_ctx {
    int B, T, D;
    float *x, *mask, *out, *R, *dx;
} pool_ctx;

static double pool_cls_loss(void *p)
{
    pool_ctx *c = p;
    op_pool_cls_forward(c->out, c->x, c->B, c->T, c->D);
    return dot(c->out, c->R, (size_t)c->B * c->D);
}

static void pool_cls_backward(void *p)
{
    pool_ctx *c = p;
    op_pool_cls_backward(c->dx, c->R, c->B, c->T, c->D);
}

static double pool_mean_loss(void *p)
{
    pool_ctx *c = p;
    op_pool_mean_forward(c->out, c->x, c->mask, c->B, c->T, c->D);
    return dot(c->out, c->R, (size_t)c->B * c->D);
}

static void pool_mean_backward(void *p)
{
    pool_ctx *c = p;
    (g_plant ? planted_pool_mean_backward : op_pool_mean_backward)(c->dx, c->R, c->mask, c->B,
                                                                   c->T, c->D);
}

/* Padded tokens: new values there leave the output bit-identical and get no gradient. */
static void check_pool_mean_padding(pool_ctx *c)
{
    size_t nout = (size_t)c->B * c->D;
    float *before = buf_zero(nout);
    op_pool_mean_forward(before, c->x, c->mask, c->B, c->T, c->D);
    for (int bt = 0; bt < c->B * c->T; bt++)
        if (c->mask[bt] == 0.0f)
            for (int j = 0; j < c->D; j++) c->x[bt * c->D + j] = 1e30f * (j % 2 ? 1.0f : -1.0f);
    op_pool_mean_forward(c->out, c->x, c->mask, c->B, c->T, c->D);
    int same = memcmp(before, c->out, nout * sizeof(float)) == 0;

    memset(c->dx, 0, (size_t)c->B * c->T * c->D * sizeof(float));
    op_pool_mean_backward(c->dx, c->R, c->mask, c->B, c->T, c->D);
    int zero_grad = 1;
    for (int bt = 0; bt < c->B * c->T; bt++)
        for (int j = 0; j < c->D && c->mask[bt] == 0.0f; j++)
            zero_grad &= c->dx[bt * c->D + j] == 0.0f;
    record_check("pool mean: padding ignored", same && zero_grad, NULL);
}

static void test_pool(void)
{
    enum { B = 3, T = 4, D = 8 };
    pool_ctx cls = {.B = B, .T = T, .D = D, .x = buf_uniform(B * T * D), .out = buf_zero(B * D),
                    .R = buf_uniform(B * D), .dx = buf_zero(B * T * D)};
    op_case oc = {.name = "pool cls", .ctx = &cls, .loss = pool_cls_loss,
                  .backward = pool_cls_backward, .opt = lra_gradcheck_defaults(), .n_in = 1};
    oc.in[0] = input("x", cls.x, cls.dx, B * T * D, NULL);
    run_case(&oc);

    /* Row 0 has gaps, row 1 is all padding but one token, row 2 has none. */
    static float mask[B * T] = {1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1};
    pool_ctx mean = {.B = B, .T = T, .D = D, .x = buf_uniform(B * T * D), .mask = mask,
                     .out = buf_zero(B * D), .R = buf_uniform(B * D), .dx = buf_zero(B * T * D)};
    oc = (op_case){.name = "pool mean", .ctx = &mean, .loss = pool_mean_loss,
                   .backward = pool_mean_backward, .opt = lra_gradcheck_defaults(), .n_in = 1};
    oc.in[0] = input("x", mean.x, mean.dx, B * T * D, planted(PLANT_POOL_MEAN));
    run_case(&oc);
    check_pool_mean_padding(&mean);
}

/* ------------------------------------------------------------------------------------------ */
/* Dual-encoder features f (B, 4D) = [u, v, u*v, u-v]. */

typedef struct dual_ctx {
    int B, D;
    float *u, *v, *f, *R, *du, *dv;
} dual_ctx;

static double dual_loss(void *p)
{
    dual_ctx *c = p;
    op_dual_features_forward(c->f, c->u, c->v, c->B, c->D);
    return dot(c->f, c->R, (size_t)c->B * 4 * c->D);
}

static void dual_backward(void *p)
{
    dual_ctx *c = p;
    dual_features_backward(c->du, c->dv, c->R, c->u, c->v, c->B, c->D);
}

static void test_dual(void)
{
    enum { B = 3, D = 8 };
    dual_ctx c = {.B = B, .D = D, .u = buf_uniform(B * D), .v = buf_uniform(B * D),
                  .f = buf_zero(B * 4 * D), .R = buf_uniform(B * 4 * D), .du = buf_zero(B * D),
                  .dv = buf_zero(B * D)};
    op_case oc = {.name = "dual features", .ctx = &c, .loss = dual_loss,
                  .backward = dual_backward, .opt = lra_gradcheck_defaults(), .n_in = 2};
    oc.in[0] = input("u", c.u, c.du, B * D, NULL);
    oc.in[1] = input("v", c.v, c.dv, B * D, planted(PLANT_DUAL));
    run_case(&oc);
}

/* ------------------------------------------------------------------------------------------ */
/* The classifier head: linear (D → Hd) → relu → linear (Hd → C) → xent, and the dual head
 * that feeds it [u, v, u*v, u-v]. */

typedef struct head_ctx {
    int n, D, Hd, C;
    int32_t *labels;
    float *x, *w1, *b1, *h, *a, *w2, *b2, *logits, *probs;         /* forward */
    float *dx, *dw1, *db1, *dh, *da, *dw2, *db2, *dlogits;         /* gradients */
} head_ctx;

static head_ctx head_make(int n, int D, int Hd, int C, float *x)
{
    return (head_ctx){
        .n = n, .D = D, .Hd = Hd, .C = C, .labels = buf_labels(n, C), .x = x,
        .w1 = buf_uniform(D * Hd), .b1 = buf_uniform(Hd), .h = buf_zero(n * Hd),
        .a = buf_zero(n * Hd), .w2 = buf_uniform(Hd * C), .b2 = buf_uniform(C),
        .logits = buf_zero(n * C), .probs = buf_zero(n * C), .dx = buf_zero(n * D),
        .dw1 = buf_zero(D * Hd), .db1 = buf_zero(Hd), .dh = buf_zero(n * Hd),
        .da = buf_zero(n * Hd), .dw2 = buf_zero(Hd * C), .db2 = buf_zero(C),
        .dlogits = buf_zero(n * C)};
}

static double head_loss(void *p)
{
    head_ctx *c = p;
    op_linear_forward(c->h, c->x, c->w1, c->b1, c->n, c->D, c->Hd);
    op_relu_forward(c->a, c->h, (size_t)c->n * c->Hd);
    op_linear_forward(c->logits, c->a, c->w2, c->b2, c->n, c->Hd, c->C);
    return op_xent_forward(c->probs, c->logits, c->labels, NULL, c->n, c->C);
}

static void head_backward(void *p)
{
    head_ctx *c = p;
    size_t nh = (size_t)c->n * c->Hd;
    memset(c->dlogits, 0, (size_t)c->n * c->C * sizeof(float));
    memset(c->da, 0, nh * sizeof(float));
    memset(c->dh, 0, nh * sizeof(float));
    xent_backward(c->dlogits, c->probs, c->labels, NULL, c->n, c->C);
    linear_backward(c->da, c->dw2, c->db2, c->dlogits, c->a, c->w2, c->n, c->Hd, c->C);
    op_relu_backward(c->dh, c->da, c->h, nh);
    linear_backward(c->dx, c->dw1, c->db1, c->dh, c->x, c->w1, c->n, c->D, c->Hd);
}

/* Redraws the first layer until every hidden pre-activation is at least `margin` from the ReLU
 * kink, so no finite-difference step crosses it (a deterministic search over seeds). */
static void head_clear_kink(head_ctx *c, float margin)
{
    for (int attempt = 0;; attempt++) {
        LRA_ASSERT(attempt < 1000);
        op_linear_forward(c->h, c->x, c->w1, c->b1, c->n, c->D, c->Hd);
        float nearest = INFINITY;
        for (int i = 0; i < c->n * c->Hd; i++) nearest = fminf(nearest, fabsf(c->h[i]));
        if (nearest >= margin) return;
        fill_uniform(c->w1, (size_t)c->D * c->Hd);
        fill_uniform(c->b1, (size_t)c->Hd);
    }
}

/* The head's parameters as checked inputs, starting at slot k. */
static int head_inputs(op_case *oc, int k, head_ctx *c)
{
    size_t d = c->D, hd = c->Hd, C = c->C;
    oc->in[k++] = input("w1", c->w1, c->dw1, d * hd, planted(PLANT_LINEAR));
    oc->in[k++] = input("b1", c->b1, c->db1, hd, NULL);
    oc->in[k++] = input("w2", c->w2, c->dw2, hd * C, planted(PLANT_LINEAR));
    oc->in[k++] = input("b2", c->b2, c->db2, C, NULL);
    return k;
}

/* A preactivation margin of 5 eps: worst-case steps are a few eps, typical ones far less. */
#define KINK_MARGIN (5.0f * (float)lra_gradcheck_defaults().eps)

static void test_head(void)
{
    enum { N = 6, D = 8, HD = 6, C = 4 };
    head_ctx c = head_make(N, D, HD, C, buf_uniform(N * D));
    head_clear_kink(&c, KINK_MARGIN);
    op_case oc = {.name = "head", .ctx = &c, .loss = head_loss, .backward = head_backward,
                  .opt = lra_gradcheck_defaults()};
    oc.in[0] = input("x", c.x, c.dx, N * D, NULL);
    oc.n_in = head_inputs(&oc, 1, &c);
    run_case(&oc);
}

typedef struct dual_head_ctx {
    int B, D;
    float *u, *v, *du, *dv;
    head_ctx head; /* its x is the feature buffer f (B, 4D), its dx is df */
} dual_head_ctx;

static double dual_head_loss(void *p)
{
    dual_head_ctx *c = p;
    op_dual_features_forward(c->head.x, c->u, c->v, c->B, c->D);
    return head_loss(&c->head);
}

static void dual_head_backward(void *p)
{
    dual_head_ctx *c = p;
    memset(c->head.dx, 0, (size_t)c->B * 4 * c->D * sizeof(float));
    head_backward(&c->head);
    dual_features_backward(c->du, c->dv, c->head.dx, c->u, c->v, c->B, c->D);
}

static void test_dual_head(void)
{
    enum { B = 4, D = 4, HD = 6, C = 3 };
    dual_head_ctx c = {.B = B, .D = D, .u = buf_uniform(B * D), .v = buf_uniform(B * D),
                       .du = buf_zero(B * D), .dv = buf_zero(B * D)};
    c.head = head_make(B, 4 * D, HD, C, buf_zero(B * 4 * D));
    op_dual_features_forward(c.head.x, c.u, c.v, B, D);
    head_clear_kink(&c.head, KINK_MARGIN);
    op_case oc = {.name = "dual head", .ctx = &c, .loss = dual_head_loss,
                  .backward = dual_head_backward, .opt = lra_gradcheck_defaults()};
    oc.in[0] = input("u", c.u, c.du, B * D, NULL);
    oc.in[1] = input("v", c.v, c.dv, B * D, planted(PLANT_DUAL));
    oc.n_in = head_inputs(&oc, 2, &c.head);
    run_case(&oc);
}

/* ------------------------------------------------------------------------------------------ */
/* Invariants without gradients. */

static void check_dropout_mask(void)
{
    enum { N = 100000 };
    const float p = 0.3f;
    const uint64_t key = lra_key(SEED, 4242);
    float *ones = buf_zero(N), *y1 = buf_zero(N), *y2 = buf_zero(N), *dx = buf_zero(N);
    for (int i = 0; i < N; i++) ones[i] = 1.0f;

    op_dropout_forward(y1, ones, N, p, key, 0);
    op_dropout_forward(y2, ones, N, p, key, 0);
    op_dropout_backward(dx, ones, N, p, key, 0);
    record_check("dropout: same key, same mask", !memcmp(y1, y2, sizeof(float) * N), NULL);
    record_check("dropout: backward uses mask", !memcmp(y1, dx, sizeof(float) * N), NULL);

    op_dropout_forward(y2, ones, N, p, key + 1, 0);
    record_check("dropout: new key, new mask", memcmp(y1, y2, sizeof(float) * N) != 0, NULL);

    /* Two parts placed with `first` draw the whole tensor's mask (a shard of a batch), and
     * the same part at another place draws another. */
    const size_t cut = 31337;
    op_dropout_forward(y2, ones, cut, p, key, 0);
    op_dropout_forward(y2 + cut, ones, N - cut, p, key, cut);
    record_check("dropout: parts placed by first = whole", !memcmp(y1, y2, sizeof(float) * N),
                 NULL);
    op_dropout_forward(y2 + cut, ones, N - cut, p, key, 0);
    record_check("dropout: first moves the mask",
                 memcmp(y1 + cut, y2 + cut, sizeof(float) * (N - cut)) != 0, NULL);

    int kept = 0;
    for (int i = 0; i < N; i++) kept += y1[i] != 0.0f;
    double sigma = sqrt(N * p * (1.0 - p)), dev = fabs(kept - N * (1.0 - p));
    char detail[80];
    snprintf(detail, sizeof detail, "(kept %d of %d, %.2f sigma)", kept, N, dev / sigma);
    record_check("dropout: keep rate 1-p", dev <= 3.0 * sigma, detail);

    /* p = 0: an exact copy, in place too, and backward passes dy through unchanged. */
    float *x = buf_uniform(N), *y = buf_zero(N), *g = buf_zero(N);
    op_dropout_forward(y, x, N, 0.0f, key, 0);
    int copy = !memcmp(x, y, sizeof(float) * N);
    op_dropout_forward(y, y, N, 0.0f, key, 0);
    copy &= !memcmp(x, y, sizeof(float) * N);
    op_dropout_backward(g, x, N, 0.0f, key, 0);
    copy &= !memcmp(x, g, sizeof(float) * N);
    record_check("dropout: p=0 is identity", copy, NULL);
}

/* split_heads of the q, k and v column blocks of a fused (B, T, 3*H*Dh) buffer, then
 * merge_heads back, reproduces it bit for bit; elements land where the ABI says. */
static void check_heads_layout(void)
{
    enum { B = 2, T = 5, H = 3, DH = 4, W = H * DH, LD = 3 * W };
    float *qkv = buf_uniform(B * T * LD), *back = buf_zero(B * T * LD);
    float *heads = buf_zero(3 * B * H * T * DH);
    for (int s = 0; s < 3; s++)
        op_split_heads(heads + s * B * H * T * DH, qkv + s * W, LD, B, T, H, DH);
    int placed = 1;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                for (int j = 0; j < DH; j++) {
                    float want = qkv[(b * T + t) * LD + 2 * W + h * DH + j]; /* the v block */
                    placed &= heads[2 * B * H * T * DH + ((b * H + h) * T + t) * DH + j] == want;
                }
    record_check("split_heads: layout", placed, NULL);

    for (int s = 0; s < 3; s++)
        op_merge_heads(back + s * W, LD, heads + s * B * H * T * DH, B, T, H, DH, 0);
    record_check("split/merge heads round trip", !memcmp(qkv, back, sizeof(float) * B * T * LD),
                 NULL);

    for (int s = 0; s < 3; s++)
        op_merge_heads(back + s * W, LD, heads + s * B * H * T * DH, B, T, H, DH, 1);
    int doubled = 1;
    for (int i = 0; i < B * T * LD; i++) doubled &= back[i] == 2.0f * qkv[i];
    record_check("merge_heads: accumulate", doubled, NULL);
}

/* The fixed position code against the flax formula evaluated in double. */
static void check_sinusoid(void)
{
    enum { B = 2, T = 7, D = 8 };
    float *x = buf_zero(B * T * D);
    op_add_sinusoid(x, B, T, D);
    double worst = 0.0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < D / 2; i++) {
                double div = exp(-log(10000.0) * 2.0 * i / D);
                const float *row = x + (b * T + t) * D;
                worst = fmax(worst, fabs(row[2 * i] - sin(t * div)));
                worst = fmax(worst, fabs(row[2 * i + 1] - cos(t * div)));
            }
    char detail[64];
    snprintf(detail, sizeof detail, "(worst abs err %.1e)", worst);
    record_check("sinusoid: flax values", worst < 1e-6, detail);
}

/* Large enough for every OpenMP path (the ops stay serial below 16384 elements). */
enum { BIG_B = 16, BIG_T = 128, BIG_N = BIG_B * BIG_T, BIG_D = 96, BIG_V = 50 };
#define BIG_OUT_FLOATS ((size_t)BIG_N * BIG_D * 7 + 2 * BIG_N + 3 * BIG_D + BIG_B * BIG_D \
                        + BIG_V * BIG_D)

/* Runs every op that parallelises without BLAS (GEMM blocking is OpenBLAS's business) and
 * writes all outputs and gradients into out (BIG_OUT_FLOATS, zeroed here). */
static void run_big_ops(float *out, const float *x, const float *dy, const float *g,
                        const float *b, const int32_t *tok, const float *mask)
{
    const size_t nd = (size_t)BIG_N * BIG_D;
    memset(out, 0, BIG_OUT_FLOATS * sizeof(float));
    float *y = out, *dx = y + nd, *gelu = dx + nd, *dgelu = gelu + nd, *drop = dgelu + nd;
    float *ddrop = drop + nd, *dpool = ddrop + nd, *mean = dpool + nd, *rstd = mean + BIG_N;
    float *dg = rstd + BIG_N, *db = dg + BIG_D, *dbias = db + BIG_D, *pooled = dbias + BIG_D;
    float *dtable = pooled + BIG_B * BIG_D;
    op_layernorm_forward(y, mean, rstd, x, g, b, BIG_N, BIG_D);
    op_layernorm_backward(dx, dg, db, dy, x, mean, rstd, g, BIG_N, BIG_D);
    op_linear_backward(NULL, NULL, dbias, dy, x, NULL, BIG_N, BIG_D, BIG_D);
    op_gelu_forward(gelu, x, nd);
    op_gelu_backward(dgelu, dy, x, nd);
    op_dropout_forward(drop, x, nd, 0.3f, 99, 0);
    op_dropout_backward(ddrop, dy, nd, 0.3f, 99, 0);
    op_pool_mean_forward(pooled, x, mask, BIG_B, BIG_T, BIG_D);
    op_pool_mean_backward(dpool, dy, mask, BIG_B, BIG_T, BIG_D);
    op_embed_backward(dtable, dy, tok, BIG_N, BIG_D);
}

/* One thread and several give bit-identical results: no reduction depends on the split. */
static void check_thread_invariance(void)
{
    const size_t nd = (size_t)BIG_N * BIG_D;
    float *x = buf_uniform(nd), *dy = buf_uniform(nd), *g = buf_uniform(BIG_D);
    float *b = buf_uniform(BIG_D), *mask = buf_uniform(BIG_N);
    int32_t *tok = buf_labels(BIG_N, BIG_V);
    for (int i = 0; i < BIG_N; i++) mask[i] = mask[i] > -0.3f; /* about 35% padding */
    float *serial = buf_zero(BIG_OUT_FLOATS), *parallel = buf_zero(BIG_OUT_FLOATS);

    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    run_big_ops(serial, x, dy, g, b, tok, mask);
    omp_set_num_threads(threads > 4 ? threads : 4);
    run_big_ops(parallel, x, dy, g, b, tok, mask);
    omp_set_num_threads(threads);
    char detail[64];
    snprintf(detail, sizeof detail, "(1 vs %d threads)", threads > 4 ? threads : 4);
    int same = !memcmp(serial, parallel, BIG_OUT_FLOATS * sizeof(float));
    record_check("threads: bit-identical", same, detail);
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--plant")) {
            g_plant = 1;
        } else {
            fprintf(stderr, "usage: %s [--plant]\n", argv[0]);
            return 2;
        }
    }
    if (g_plant) printf("--plant: backward passes replaced by planted bugs; checks must fail\n");

    test_embed();
    test_add_pos();
    test_linear();
    test_layernorm();
    test_unary();
    test_xent();
    test_pool();
    test_dual();
    test_head();
    test_dual_head();
    printf("invariants\n");
    check_dropout_mask();
    check_heads_layout();
    check_sinusoid();
    check_thread_invariance();
    bufs_free_all();

    printf("%d passed, %d failed\n", g_passed, g_failed);
    if (!g_plant) return g_failed ? 1 : 0;
    printf("planted bugs: %d of %d corrupted checks caught\n", g_caught, g_planted);
    if (g_planted == 0 || g_caught < g_planted) {
        printf("a planted bug went unnoticed: the checks are too weak\n");
        return 0; /* the should_fail meson test turns red */
    }
    return 1;
}
