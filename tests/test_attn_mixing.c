/* test_attn_mixing.c — checks of sinkformer, combiner, fnet and deltanet beyond the generic
 * harness (tests/test_attn.c).
 *
 *  1. Each variant against a double-precision reference written here from the definitions
 *     (attention-variants.md §18–§21), at B = 2, H = 2, T = 23, Dh = 4, batch 1 padded at
 *     tokens 7, 17, 20, 21, 22 (a whole last span of 5 for combiner, and interior gaps):
 *     forward (out), and backward (dq, dk, dv, dparams) against central differences of the
 *     double reference's loss L = Σ out∘R (step 1e-5 in double: error far below the tolerance).
 *     The references are deliberately formulated differently from the plugins:
 *       sinkformer — the masked logit matrix itself normalised row/column in turn (no
 *                    potentials), with padded queries outside the column sums;
 *       combiner   — brute force over each query's key set: own span's real keys plus one
 *                    (max-pooled key, local expectation) pair per other non-empty span;
 *       fnet       — the direct two-dimensional DFT Re Σ x e^{−2πi(ab/T + ef/Dh)} in double;
 *       deltanet   — the naive per-step recurrence in double, chunk sizes 1, 5 (not dividing
 *                    23), 23 and 64 (> T), both directions, both gates, with and without the
 *                    L2 normalisation.
 *  2. Limits that equal softmax at T = 23 with padding (sinkformer iters=1, combiner span >= T),
 *     against a double softmax reference.
 *  3. Sinkformer's doubly stochastic property after many steps, read through the public ABI:
 *     row sums are out with v = 1, column sums over real queries are dv with dout = mask.
 *  4. Distance from exact softmax at the default options, printed for each variant; bounded
 *     only for combiner, the one that approximates softmax: it must be closer to softmax than
 *     uniform attention over the real keys is.
 *  5. Cost: flops and cache at T = 4096 over T = 1024 follow each variant's complexity.
 *  6. FNet's FFTW path against the O(T²) matrix DFT it replaced (kept here, in double), at
 *     T = 1024, 1031 (prime), 97, 250 and 1, Dh = 32, 5 (odd), 6, 1, with interior and tail
 *     padding, both normalisations, aligned and unaligned scratch: out, and backward's increment
 *     of a non-zero dv, within 2e-6 of max |ref| (float FFT rounding is ~2e-7 there); dq and dk
 *     untouched and padded output rows exactly 0.
 *
 * Output: one line per check ("PASS|FAIL what — detail"), then "N passed, N failed"; exit
 * status 1 on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_testlib.h"
#include "lra_attention.h"
#include "lra_rng.h"
#include "registry.h"
#include "util.h"

enum { BATCH = 2, HEADS = 2, LEN = 23, DIM = 4 };
#define NX ((size_t)BATCH * HEADS * LEN * DIM) /* floats in each of q, k, v, out */
#define MAX_PARAMS 64

static const uint64_t TEST_SEED = 551177;
static const double TOL_FORWARD = 1e-5;  /* max |out − ref| / max |ref| */
static const double TOL_BACKWARD = 5e-5; /* the same for each gradient */
static const double FD_STEP = 1e-5;      /* central differences of the double reference */

/* One case: a variant, its options as text, and the same options for the reference. */
typedef struct tcase {
    const char *variant, *opts;
    int iters;                          /* sinkformer */
    int span;                           /* combiner (0 = ⌈√T⌉) */
    int normalize;                      /* fnet */
    int chunk, causal, gate_k, qk_norm; /* deltanet */
    float amp_qk;                       /* q, k uniform in (−amp, amp) */
} tcase;

/* The inputs of one reference evaluation, in double. */
typedef struct refin {
    const tcase *c;
    double q[NX], k[NX], v[NX], r[NX];
    double params[MAX_PARAMS];
    size_t n_params;
    float mask[BATCH * LEN];
} refin;

static size_t at(int b, int h, int t) { return (((size_t)b * HEADS + h) * LEN + t) * DIM; }

/* ---- Double-precision references, one (batch, head) slice: X (T, Dh) rows at X + at() ---- */

typedef void (*ref_slice_fn)(const refin *in, int b, int h, double *o);

static double ref_dot(const double *a, const double *b)
{
    double d = 0.0;
    for (int e = 0; e < DIM; e++) d += a[e] * b[e];
    return d;
}

/* Sinkformer's row step on L (every row, over the real keys) in double. */
static void ref_sink_rows(double L[LEN][LEN], const float *m)
{
    for (int i = 0; i < LEN; i++) {
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < LEN; j++)
            if (m[j] != 0.0f) mx = fmax(mx, L[i][j]);
        for (int j = 0; j < LEN; j++)
            if (m[j] != 0.0f) sum += exp(L[i][j] - mx);
        for (int j = 0; sum > 0.0 && j < LEN; j++) L[i][j] -= mx + log(sum);
    }
}

/* Sinkformer's column step: each real key's column, normalised over the REAL queries, the
 * shift applied to every row. */
static void ref_sink_cols(double L[LEN][LEN], const float *m)
{
    for (int j = 0; j < LEN; j++) {
        if (m[j] == 0.0f) continue;
        double mx = -INFINITY, sum = 0.0;
        for (int i = 0; i < LEN; i++)
            if (m[i] != 0.0f) mx = fmax(mx, L[i][j]);
        for (int i = 0; i < LEN; i++)
            if (m[i] != 0.0f) sum += exp(L[i][j] - mx);
        for (int i = 0; sum > 0.0 && i < LEN; i++) L[i][j] -= mx + log(sum);
    }
}

/* Sinkformer (§18) on the logit matrix itself: L = s·Q Kᵀ; odd steps normalise rows, even
 * steps columns; A = exp(L) on real keys; O = A V. */
static void ref_sinkformer(const refin *in, int b, int h, double *o)
{
    static double L[LEN][LEN];
    const size_t base = at(b, h, 0);
    const float *m = in->mask + b * LEN;
    const double s = 1.0 / sqrt((double)DIM);
    for (int i = 0; i < LEN; i++)
        for (int j = 0; j < LEN; j++)
            L[i][j] = s * ref_dot(in->q + base + i * DIM, in->k + base + j * DIM);
    for (int l = 1; l <= in->c->iters; l++) {
        if (l % 2)
            ref_sink_rows(L, m);
        else
            ref_sink_cols(L, m);
    }
    for (int i = 0; i < LEN; i++)
        for (int e = 0; e < DIM; e++) {
            double acc = 0.0;
            for (int j = 0; j < LEN; j++)
                if (m[j] != 0.0f) acc += exp(L[i][j]) * in->v[base + j * DIM + e];
            o[base + i * DIM + e] = acc;
        }
}

/* Softmax over n (logit, value row) pairs into o (Dh); o = 0 when n = 0. */
static void ref_softmax_pairs(const double *logit, const double *val, int n, double *o)
{
    double mx = -INFINITY, sum = 0.0;
    for (int x = 0; x < n; x++) mx = fmax(mx, logit[x]);
    for (int e = 0; e < DIM; e++) o[e] = 0.0;
    for (int x = 0; x < n; x++) sum += exp(logit[x] - mx);
    for (int x = 0; x < n; x++)
        for (int e = 0; e < DIM; e++) o[e] += exp(logit[x] - mx) / sum * val[x * DIM + e];
}

/* Combiner-Fixed (§19), brute force over each query's key set. */
static void ref_combiner(const refin *in, int b, int h, double *o)
{
    const size_t base = at(b, h, 0);
    const float *m = in->mask + b * LEN;
    const double s = 1.0 / sqrt((double)DIM);
    const int sp = in->c->span > 0 ? (in->c->span < LEN ? in->c->span : LEN)
                                   : (int)ceil(sqrt((double)LEN));
    const int R = (LEN + sp - 1) / sp;
    double kO[LEN][DIM], eR[LEN][DIM];
    int has[LEN];
    for (int r = 0; r < R; r++) { /* region key, query and local expectation of span r */
        double qO[DIM], lg[LEN], vl[LEN * DIM];
        int n = 0;
        has[r] = 0;
        for (int e = 0; e < DIM; e++) qO[e] = kO[r][e] = -INFINITY;
        for (int j = r * sp; j < LEN && j < (r + 1) * sp; j++) {
            if (m[j] == 0.0f) continue;
            has[r] = 1;
            for (int e = 0; e < DIM; e++) {
                qO[e] = fmax(qO[e], in->q[base + j * DIM + e]);
                kO[r][e] = fmax(kO[r][e], in->k[base + j * DIM + e]);
            }
        }
        for (int j = r * sp; has[r] && j < LEN && j < (r + 1) * sp; j++) {
            if (m[j] == 0.0f) continue;
            lg[n] = s * ref_dot(qO, in->k + base + j * DIM);
            memcpy(vl + n * DIM, in->v + base + j * DIM, DIM * sizeof(double));
            n++;
        }
        ref_softmax_pairs(lg, vl, n, eR[r]);
    }
    for (int i = 0; i < LEN; i++) {
        double lg[2 * LEN], vl[2 * LEN * DIM];
        int n = 0;
        const double *qi = in->q + base + i * DIM;
        for (int j = 0; j < LEN; j++) /* direct: the real keys of i's span */
            if (m[j] != 0.0f && j / sp == i / sp) {
                lg[n] = s * ref_dot(qi, in->k + base + j * DIM);
                memcpy(vl + n * DIM, in->v + base + j * DIM, DIM * sizeof(double));
                n++;
            }
        for (int r = 0; r < R; r++) /* one summarised term per other non-empty span */
            if (has[r] && r != i / sp) {
                lg[n] = s * ref_dot(qi, kO[r]);
                memcpy(vl + n * DIM, eR[r], DIM * sizeof(double));
                n++;
            }
        ref_softmax_pairs(lg, vl, n, o + base + i * DIM);
    }
}

/* FNet (§20): Y[a][f] = c·m_a·Σ_{b,e} m_b x[b][e] cos(2π(ab/T + ef/Dh)), the real part of the
 * two-dimensional DFT, written directly. */
static void ref_fnet(const refin *in, int b, int h, double *o)
{
    const size_t base = at(b, h, 0);
    const float *m = in->mask + b * LEN;
    const double c = in->c->normalize ? 1.0 / sqrt((double)LEN * DIM) : 1.0;
    for (int a = 0; a < LEN; a++)
        for (int f = 0; f < DIM; f++) {
            double acc = 0.0;
            for (int t = 0; t < LEN; t++)
                for (int e = 0; e < DIM && m[t] != 0.0f; e++)
                    acc += in->v[base + t * DIM + e] *
                           cos(2.0 * M_PI * ((double)a * t / LEN + (double)e * f / DIM));
            o[base + a * DIM + f] = m[a] != 0.0f ? c * acc : 0.0;
        }
}

/* x/sqrt(|x|² + 1e-6), or x. */
static void ref_normalise(const double *x, double *y, int norm)
{
    const double n = norm ? sqrt(ref_dot(x, x) + 1e-6) : 1.0;
    for (int e = 0; e < DIM; e++) y[e] = x[e] / n;
}

/* DeltaNet (§21): the naive recurrence, step by step, in both scan orders when bidirectional. */
static void ref_deltanet(const refin *in, int b, int h, double *o)
{
    const size_t base = at(b, h, 0);
    const float *m = in->mask + b * LEN;
    const double *w = in->params + (size_t)h * (DIM + 1);
    for (int t = 0; t < LEN * DIM; t++) o[base + t] = 0.0;
    for (int dir = 0; dir < (in->c->causal ? 1 : 2); dir++) {
        double S[DIM][DIM] = {{0}};
        for (int step = 0; step < LEN; step++) {
            const int t = dir ? LEN - 1 - step : step;
            if (m[t] == 0.0f) continue;
            double qn[DIM], kn[DIM], u[DIM];
            const double *x = (in->c->gate_k ? in->k : in->q) + base + t * DIM;
            ref_normalise(in->q + base + t * DIM, qn, in->c->qk_norm);
            ref_normalise(in->k + base + t * DIM, kn, in->c->qk_norm);
            const double beta = 1.0 / (1.0 + exp(-(ref_dot(w, x) + w[DIM])));
            for (int a = 0; a < DIM; a++) u[a] = ref_dot(S[a], kn);
            for (int a = 0; a < DIM; a++)
                for (int c = 0; c < DIM; c++)
                    S[a][c] += beta * (in->v[base + t * DIM + a] - u[a]) * kn[c];
            for (int a = 0; a < DIM; a++) o[base + t * DIM + a] += ref_dot(S[a], qn);
        }
    }
}

/* Exact softmax attention over the real keys (for the limits and the distances). */
static void ref_softmax(const refin *in, int b, int h, double *o)
{
    const size_t base = at(b, h, 0);
    const float *m = in->mask + b * LEN;
    for (int i = 0; i < LEN; i++) {
        double lg[LEN], vl[LEN * DIM];
        int n = 0;
        for (int j = 0; j < LEN; j++)
            if (m[j] != 0.0f) {
                lg[n] = ref_dot(in->q + at(b, h, i), in->k + at(b, h, j)) / sqrt((double)DIM);
                memcpy(vl + n * DIM, in->v + at(b, h, j), DIM * sizeof(double));
                n++;
            }
        ref_softmax_pairs(lg, vl, n, o + base + i * DIM);
    }
}

/* Uniform attention over the real keys: the mean of the real values. */
static void ref_uniform(const refin *in, int b, int h, double *o)
{
    const float *m = in->mask + b * LEN;
    double mean[DIM] = {0};
    int n = 0;
    for (int j = 0; j < LEN; j++)
        if (m[j] != 0.0f) {
            for (int e = 0; e < DIM; e++) mean[e] += in->v[at(b, h, j) + e];
            n++;
        }
    for (int i = 0; i < LEN; i++)
        for (int e = 0; e < DIM; e++) o[at(b, h, i) + e] = n ? mean[e] / n : 0.0;
}

static void ref_all(ref_slice_fn f, const refin *in, double *o)
{
    for (int b = 0; b < BATCH; b++)
        for (int h = 0; h < HEADS; h++) f(in, b, h, o);
}

static double ref_loss(ref_slice_fn f, const refin *in)
{
    static double o[NX];
    ref_all(f, in, o);
    double l = 0.0;
    for (size_t i = 0; i < NX; i++) l += o[i] * in->r[i];
    return l;
}

/* g = ∂L/∂x by central differences of the double reference, x one of in's arrays. */
static void ref_gradient(ref_slice_fn f, refin *in, double *x, size_t n, double *g)
{
    for (size_t i = 0; i < n; i++) {
        const double x0 = x[i];
        x[i] = x0 + FD_STEP;
        const double lp = ref_loss(f, in);
        x[i] = x0 - FD_STEP;
        const double lm = ref_loss(f, in);
        x[i] = x0;
        g[i] = (lp - lm) / (2.0 * FD_STEP);
    }
}

/* ---- The plugin under test ---- */

/* A case on (BATCH, HEADS, LEN, DIM): every buffer holds NX floats. */
typedef atest_run run;

static int is_padded(int b, int t)
{
    return b == 1 && (t == 7 || t == 17 || t >= 20);
}

/* Sets the case up at (B, H, T, Dh) = (2, 2, 23, 4); 0 on success, else 1 with a reported
 * failure. */
static int run_open(run *u, const tcase *c)
{
    const lra_attn_ctx settings = {
        .shape = {.batch = BATCH, .heads = HEADS, .len = LEN, .dim = DIM, .max_len = LEN},
        .seed = 42,
        .threads = 2,
    };
    char why[256];
    if (atest_run_open(u, lra_attn_find(c->variant), &settings, c->opts, why, sizeof why)) {
        atest_line(0, "%s %s: set-up rejected: %s", c->variant, c->opts, why);
        return 1;
    }
    LRA_ASSERT(u->sz.n_params <= MAX_PARAMS);
    for (int b = 0; b < BATCH; b++)
        for (int t = 0; t < LEN; t++) u->mask[b * LEN + t] = is_padded(b, t) ? 0.0f : 1.0f;
    atest_run_fill(u, TEST_SEED, c->amp_qk);
    if (u->a->init(&u->ctx, why, sizeof why) != LRA_ATTN_OK) {
        atest_line(0, "%s %s: init failed: %s", c->variant, c->opts, why);
        return 1;
    }
    return 0;
}

static void to_refin(const run *u, const tcase *c, refin *in)
{
    in->c = c;
    for (size_t i = 0; i < NX; i++) {
        in->q[i] = u->q[i];
        in->k[i] = u->k[i];
        in->v[i] = u->v[i];
        in->r[i] = u->r[i];
    }
    in->n_params = u->sz.n_params;
    for (size_t i = 0; i < in->n_params; i++) in->params[i] = u->ctx.params[i];
    memcpy(in->mask, u->mask, sizeof in->mask);
}

/* max |x − y| / max |y| over the rows of real tokens (all rows when all_rows), NaN → ∞. */
static double rel_err(const float *x, const double *y, size_t n, const float *mask,
                      int all_rows)
{
    double err = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!all_rows && mask[(i / DIM / LEN / HEADS) * LEN + (i / DIM) % LEN] == 0.0f) continue;
        const double d = fabs((double)x[i] - y[i]);
        err = d <= err ? err : isnan(d) ? INFINITY : d;
        scale = fmax(scale, fabs(y[i]));
    }
    return err / fmax(scale, 1e-30);
}

/* The plugin against the double reference f: out, then each gradient. */
static void check_reference(const tcase *c, ref_slice_fn f, const char *what)
{
    run u;
    static refin in;
    static double o[NX], g[NX];
    if (run_open(&u, c)) {
        atest_run_close(&u);
        return;
    }
    atest_run_gradients(&u);
    to_refin(&u, c, &in);
    ref_all(f, &in, o);
    const double ef = rel_err(u.out, o, NX, u.mask, 1);
    atest_line(ef <= TOL_FORWARD, "%s %s vs %s: out rel err %.2e", c->variant, c->opts, what, ef);
    struct { const char *name; double *x; const float *got; size_t n; } grads[] = {
        {"dq", in.q, u.dq, NX}, {"dk", in.k, u.dk, NX}, {"dv", in.v, u.dv, NX},
        {"dparams", in.params, u.ctx.dparams, in.n_params},
    };
    for (size_t i = 0; i < sizeof grads / sizeof grads[0]; i++) {
        if (grads[i].n == 0) continue;
        ref_gradient(f, &in, grads[i].x, grads[i].n, g);
        double scale = 0.0;
        for (size_t j = 0; j < grads[i].n; j++) scale = fmax(scale, fabs(g[j]));
        /* fnet's q and k gradients are exactly 0: then the error is the largest |value|. */
        double e = 0.0;
        if (scale > 0.0)
            e = rel_err(grads[i].got, g, grads[i].n, u.mask, 1);
        else
            for (size_t j = 0; j < grads[i].n; j++) e = fmax(e, fabs((double)grads[i].got[j]));
        atest_line(e <= TOL_BACKWARD, "%s %s vs %s: %s rel err %.2e", c->variant, c->opts, what,
                   grads[i].name, e);
    }
    atest_run_close(&u);
}

/* Sinkformer after many steps: rows and columns of A on the real block sum to 1. */
static void check_doubly_stochastic(int iters)
{
    run u;
    char opts[32];
    snprintf(opts, sizeof opts, "iters=%d", iters);
    const tcase c = {.variant = "sinkformer", .opts = opts, .iters = iters, .amp_qk = 2.0f};
    if (run_open(&u, &c)) {
        atest_run_close(&u);
        return;
    }
    for (size_t i = 0; i < NX; i++) u.v[i] = 1.0f; /* out_i = Σ_j A_ij */
    for (int b = 0; b < BATCH; b++) /* dout = m: dv_j = Σ_{i real} A_ij */
        for (size_t i = 0; i < (size_t)HEADS * LEN * DIM; i++)
            u.r[b * HEADS * LEN * DIM + i] = u.mask[b * LEN + (i / DIM) % LEN];
    atest_run_gradients(&u);
    double row = 0.0, col = 0.0;
    for (size_t i = 0; i < NX; i++) {
        if (u.mask[(i / DIM / LEN / HEADS) * LEN + (i / DIM) % LEN] == 0.0f) continue;
        row = fmax(row, fabs(u.out[i] - 1.0));
        col = fmax(col, fabs(u.dv[i] - 1.0));
    }
    const double tol_row = iters % 2 ? 1e-5 : 1e-4, tol_col = iters % 2 ? 1e-4 : 1e-5;
    atest_line(row <= tol_row && col <= tol_col,
               "sinkformer iters=%d doubly stochastic on real tokens: max |row sum − 1| %.2e "
               "(tol %.0e), max |column sum − 1| %.2e (tol %.0e)", iters, row, tol_row, col,
               tol_col);
    atest_run_close(&u);
}

/* The largest spread max_j v_je − min_j v_je of the real values over the slices and
 * coordinates: a convex combination of real values is within it of any other one. */
static double value_spread(const run *u)
{
    double worst = 0.0;
    for (int b = 0; b < BATCH; b++)
        for (int h = 0; h < HEADS; h++)
            for (int e = 0; e < DIM; e++) {
                double lo = INFINITY, hi = -INFINITY;
                for (int j = 0; j < LEN; j++)
                    if (u->mask[b * LEN + j] != 0.0f) {
                        lo = fmin(lo, u->v[at(b, h, j) + e]);
                        hi = fmax(hi, u->v[at(b, h, j) + e]);
                    }
                worst = fmax(worst, hi - lo);
            }
    return worst;
}

/* Distance of the default options' output from exact softmax, over real query rows, relative
 * to max |softmax output|; uniform attention's distance is printed for scale. */
static void check_distance(const tcase *c)
{
    run u;
    static refin in;
    static double o[NX], un[NX];
    if (run_open(&u, c)) {
        atest_run_close(&u);
        return;
    }
    atest_run_gradients(&u);
    to_refin(&u, c, &in);
    ref_all(ref_softmax, &in, o);
    ref_all(ref_uniform, &in, un);
    const double d = rel_err(u.out, o, NX, u.mask, 0);
    double scale = 0.0, du = 0.0, dabs = 0.0;
    for (size_t i = 0; i < NX; i++)
        if (u.mask[(i / DIM / LEN / HEADS) * LEN + (i / DIM) % LEN] != 0.0f) {
            scale = fmax(scale, fabs(o[i]));
            du = fmax(du, fabs(un[i] - o[i]));
            dabs = fmax(dabs, fabs(u.out[i] - o[i]));
        }
    if (strcmp(c->variant, "combiner") == 0) {
        /* Combiner approximates softmax by convex combinations of the real values (the local
         * expectations are ones too), so it cannot be further from softmax, per coordinate,
         * than the spread of those values: the bound. It is no closer than uniform attention
         * at this span (max-pooled region keys are large and draw mass to the summaries). */
        const double spread = value_spread(&u);
        atest_line(dabs <= spread * (1.0 + 1e-6),
                   "%s (defaults) distance from softmax %.3f (abs %.3f <= value spread %.3f; "
                   "uniform attention %.3f)", c->variant, d, dabs, spread, du / scale);
    } else {
        atest_line(1, "%s (defaults) distance from softmax %.3f (uniform attention %.3f; not an "
                      "approximation of softmax: no bound)", c->variant, d, du / scale);
    }
    atest_run_close(&u);
}

/* ---- FNet's FFT path against the O(T²) matrix DFT at LRA-like shapes ---- */

static const double TOL_FNET_FFT = 2e-6; /* max |x − ref| / max |ref|, out and dv */

/* The matrix DFT that fnet computed before it used FFTW, kept here as the reference, in
 * double: Y = c·m∘(C_T X̄ C_Dh − S_T X̄ S_Dh), X̄ = m∘X, with C_N[a][b] = cos(2π·(ab mod N)/N)
 * and S_N likewise (tables indexed by ab mod N, as the plugin built its tiles). One slice:
 * X, Y (T, Dh); xc, xs (T, Dh) scratch. Self-adjoint, so it is also backward's reference. */
static void ref_fnet_matrix(int T, int D, int normalize, const float *X, const float *m,
                            double *Y, double *xc, double *xs)
{
    const double c = normalize ? 1.0 / sqrt((double)T * D) : 1.0, tau = 2.0 * M_PI;
    for (int t = 0; t < T; t++)
        for (int f = 0; f < D; f++) {
            double ac = 0.0, as = 0.0;
            for (int e = 0; e < D && m[t] != 0.0f; e++) {
                const double x = X[(size_t)t * D + e], ang = tau * (double)((e * f) % D) / D;
                ac += x * cos(ang);
                as += x * sin(ang);
            }
            xc[(size_t)t * D + f] = ac;
            xs[(size_t)t * D + f] = as;
        }
    double *ct = malloc((size_t)T * sizeof(double)), *st = malloc((size_t)T * sizeof(double));
    LRA_ASSERT(ct && st);
    for (int j = 0; j < T; j++) {
        ct[j] = cos(tau * j / T);
        st[j] = sin(tau * j / T);
    }
    for (int a = 0; a < T; a++) {
        double *y = Y + (size_t)a * D;
        for (int f = 0; f < D; f++) y[f] = 0.0;
        if (m[a] == 0.0f) continue;
        for (int b = 0; b < T; b++) {
            const size_t j = (size_t)a * b % (size_t)T;
            for (int f = 0; f < D; f++)
                y[f] += ct[j] * xc[(size_t)b * D + f] - st[j] * xs[(size_t)b * D + f];
        }
        for (int f = 0; f < D; f++) y[f] *= c;
    }
    free(ct);
    free(st);
}

/* fnet at (B, H, T, Dh) against ref_fnet_matrix: out, and backward's increment of dv (dv
 * starts non-zero, so accumulation is checked); dq and dk must stay untouched and padded output
 * rows exactly 0. Batch b > 0 is padded at every 7th token from 3 and its last T/5 tokens.
 * misalign = 1 shifts scratch by one float, so FFTW's unaligned plan runs. */
static void check_fnet_fft(int B, int H, int T, int D, int normalize, int misalign)
{
    const lra_attention *a = lra_attn_find("fnet");
    if (!a) {
        atest_line(0, "fnet: not registered");
        return;
    }
    const size_t n = (size_t)B * H * T * D, TD = (size_t)T * D;
    lra_attn_ctx x = {.shape = {.batch = B, .heads = H, .len = T, .dim = D, .max_len = T}};
    char why[256];
    LRA_ASSERT(atest_ctx_options(&x, a, normalize ? "normalize=1" : "normalize=0", why,
                                 sizeof why) == 0);
    lra_attn_sizes sz;
    a->sizes(&x, &sz);
    float *mask = atest_floats((size_t)B * T), *v = atest_floats(n), *r = atest_floats(n);
    float *out = atest_floats(n), *dq = atest_floats(n), *dk = atest_floats(n);
    float *dv = atest_floats(n), *dv0 = atest_floats(n);
    float *scratch = atest_floats(sz.n_scratch + 1);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            mask[(size_t)b * T + t] = b > 0 && (t % 7 == 3 || t >= T - T / 5) ? 0.0f : 1.0f;
    atest_fill_uniform(v, n, lra_key(TEST_SEED, 11), 1.0f);
    atest_fill_uniform(r, n, lra_key(TEST_SEED, 12), 1.0f);
    atest_fill_uniform(dv0, n, lra_key(TEST_SEED, 13), 1.0f);
    atest_fill_uniform(dq, n, lra_key(TEST_SEED, 14), 1.0f);
    memcpy(dk, dq, n * sizeof(float));
    memcpy(dv, dv0, n * sizeof(float));
    x.key_mask = mask;
    x.scratch = scratch + misalign;
    x.seed = 42;
    x.threads = 2;
    if (a->init(&x, why, sizeof why) != LRA_ATTN_OK) {
        atest_line(0, "fnet (%d, %d, %d, %d): init failed: %s", B, H, T, D, why);
        return;
    }
    a->forward(&x, v, v, v, out);
    a->backward(&x, v, v, v, out, r, dq, dk, dv);

    double *y = malloc(TD * sizeof(double)), *w1 = malloc(TD * sizeof(double));
    double *w2 = malloc(TD * sizeof(double));
    LRA_ASSERT(y && w1 && w2);
    double eo = 0.0, so = 0.0, eg = 0.0, sg = 0.0;
    int untouched = memcmp(dq, dk, n * sizeof(float)) == 0, zero_rows = 1;
    for (int s = 0; s < B * H; s++) {
        const float *m = mask + (size_t)(s / H) * T;
        const size_t o = (size_t)s * TD;
        ref_fnet_matrix(T, D, normalize, v + o, m, y, w1, w2);
        for (size_t i = 0; i < TD; i++) {
            eo = fmax(eo, fabs(out[o + i] - y[i]));
            so = fmax(so, fabs(y[i]));
            if (m[i / D] == 0.0f && out[o + i] != 0.0f) zero_rows = 0;
        }
        ref_fnet_matrix(T, D, normalize, r + o, m, y, w1, w2);
        for (size_t i = 0; i < TD; i++) {
            eg = fmax(eg, fabs(((double)dv[o + i] - dv0[o + i]) - y[i]));
            sg = fmax(sg, fabs(y[i]));
        }
    }
    eo = isnan(eo) ? INFINITY : eo / fmax(so, 1e-30);
    eg = isnan(eg) ? INFINITY : eg / fmax(sg, 1e-30);
    atest_line(eo <= TOL_FNET_FFT && eg <= TOL_FNET_FFT && untouched && zero_rows,
               "fnet FFT vs O(T^2) matrix DFT, (B, H, T, Dh) = (%d, %d, %d, %d) normalize=%d%s: "
               "out rel err %.2e, dv rel err %.2e (tol %.0e), dq/dk untouched %d, padded rows 0 %d",
               B, H, T, D, normalize, misalign ? " unaligned" : "", eo, eg, TOL_FNET_FFT,
               untouched, zero_rows);
    if (a->free) a->free(&x);
    free(y);
    free(w1);
    free(w2);
    void *bufs[] = {x.priv, mask, v, r, out, dq, dk, dv, dv0, scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
}

/* Flops and cache at T = 4096 over T = 1024 (Dh 64, B = H = 1) within [lo, hi]. */
static void check_cost(const char *variant, const char *opts, double lo, double hi,
                       double cache_lo, double cache_hi)
{
    const lra_attention *a = lra_attn_find(variant);
    if (!a) return;
    double f[2], m[2];
    for (int i = 0; i < 2; i++) {
        lra_attn_ctx x = {.shape = {.batch = 1, .heads = 1, .len = i ? 4096 : 1024, .dim = 64,
                                    .max_len = 4096}};
        char why[256];
        LRA_ASSERT(atest_ctx_options(&x, a, opts, why, sizeof why) == 0);
        lra_attn_sizes sz;
        a->sizes(&x, &sz);
        f[i] = a->flops(&x);
        m[i] = (double)sz.n_cache;
        lra_free(x.priv);
    }
    const double rf = f[1] / f[0], rm = m[0] > 0 ? m[1] / m[0] : 0.0;
    atest_line(rf >= lo && rf <= hi && rm >= cache_lo && rm <= cache_hi,
               "%s %s cost T 1024 -> 4096: flops x%.2f (expect %.1f..%.1f), cache x%.2f "
               "(expect %.1f..%.1f)", variant, opts, rf, lo, hi, rm, cache_lo, cache_hi);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const tcase sink[] = {
        {.variant = "sinkformer", .opts = "iters=1", .iters = 1, .amp_qk = 2},
        {.variant = "sinkformer", .opts = "iters=2", .iters = 2, .amp_qk = 2},
        {.variant = "sinkformer", .opts = "iters=5", .iters = 5, .amp_qk = 2},
        {.variant = "sinkformer", .opts = "iters=8", .iters = 8, .amp_qk = 2},
    };
    static const tcase comb[] = {
        {.variant = "combiner", .opts = "span=0", .span = 0, .amp_qk = 2},
        {.variant = "combiner", .opts = "span=4", .span = 4, .amp_qk = 2},
        {.variant = "combiner", .opts = "span=1", .span = 1, .amp_qk = 2},
        {.variant = "combiner", .opts = "span=7", .span = 7, .amp_qk = 2},
        {.variant = "combiner", .opts = "span=23", .span = 23, .amp_qk = 2},
    };
    static const tcase fnet[] = {
        {.variant = "fnet", .opts = "normalize=1", .normalize = 1, .amp_qk = 2},
        {.variant = "fnet", .opts = "normalize=0", .normalize = 0, .amp_qk = 2},
    };
    static const tcase delta[] = {
        {.variant = "deltanet", .opts = "chunk=5", .chunk = 5, .qk_norm = 1, .amp_qk = 2},
        {.variant = "deltanet", .opts = "chunk=1", .chunk = 1, .qk_norm = 1, .amp_qk = 2},
        {.variant = "deltanet", .opts = "chunk=23", .chunk = 23, .qk_norm = 1, .amp_qk = 2},
        {.variant = "deltanet", .opts = "chunk=64", .chunk = 64, .qk_norm = 1, .amp_qk = 2},
        {.variant = "deltanet", .opts = "chunk=5,direction=causal", .chunk = 5, .causal = 1,
         .qk_norm = 1, .amp_qk = 2},
        {.variant = "deltanet", .opts = "chunk=4,gate=k", .chunk = 4, .gate_k = 1, .qk_norm = 1,
         .amp_qk = 2},
        {.variant = "deltanet", .opts = "chunk=6,qk_norm=0", .chunk = 6, .qk_norm = 0,
         .amp_qk = 0.4f},
    };
    for (size_t i = 0; i < sizeof sink / sizeof sink[0]; i++)
        check_reference(&sink[i], ref_sinkformer, "double reference");
    for (size_t i = 0; i < sizeof comb / sizeof comb[0]; i++)
        check_reference(&comb[i], ref_combiner, "brute-force key sets");
    for (size_t i = 0; i < sizeof fnet / sizeof fnet[0]; i++)
        check_reference(&fnet[i], ref_fnet, "direct 2-D DFT");
    for (size_t i = 0; i < sizeof delta / sizeof delta[0]; i++)
        check_reference(&delta[i], ref_deltanet, "naive recurrence");

    /* The limits that equal softmax, at T = 23 with interior padding. */
    check_reference(&sink[0], ref_softmax, "softmax (limit)");
    check_reference(&comb[4], ref_softmax, "softmax (limit)");

    check_doubly_stochastic(201);
    check_doubly_stochastic(200);

    static const tcase defaults[] = {
        {.variant = "sinkformer", .opts = "", .amp_qk = 2},
        {.variant = "combiner", .opts = "", .amp_qk = 2},
        {.variant = "fnet", .opts = "", .amp_qk = 2},
        {.variant = "deltanet", .opts = "", .amp_qk = 2},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        check_distance(&defaults[i]);

    /* FNet's FFT path at lengths where the O(T²) DFT was in use: powers of 2 (the bench), a
     * prime T, odd Dh (the Hermitian half row has no Nyquist term), the unaligned plan. */
    check_fnet_fft(2, 2, 1024, 32, 1, 0);
    check_fnet_fft(2, 1, 1031, 32, 0, 1);
    check_fnet_fft(2, 2, 97, 5, 1, 0);
    check_fnet_fft(3, 1, 250, 6, 0, 1);
    check_fnet_fft(1, 1, 1, 1, 1, 0);

    /* O(T²) flops; the cache is O(T) (issue 7: the plan matrices are recomputed, not cached). */
    check_cost("sinkformer", "", 15.5, 16.5, 3.5, 4.5);
    /* Combiner: O(T^1.5) flops; cache T + 3·(T/s)·Dh grows between √T and T. */
    check_cost("combiner", "", 7.0, 9.0, 2.0, 4.0);
    check_cost("fnet", "", 4.0, 5.0, 0.0, 0.0); /* O(T·Dh·log(T·Dh)), no cache */
    check_cost("deltanet", "chunk=64", 3.9, 4.1, 3.9, 4.1); /* O(T) both */

    return atest_summary();
}
