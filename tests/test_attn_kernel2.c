/* test_attn_kernel2.c — checks of cosformer, ffkernel and rpefft beyond the generic harness of
 * test_attn.c.
 *
 *  (a) Each variant against a double-precision reference written here, at B 2, H 2, T 37,
 *      Dh 4 with the last 6 keys of batch 1 padded: the reference forms the explicit T×T
 *      weights A_ij (an independent route: cosFormer through cos(π(i − j)/(2M)) instead of the
 *      sin/cos split, ffkernel through its perceptron in double, rpefft through the direct
 *      O(T²) Toeplitz sum c_{j−i} Φ_i·Ψ_j instead of the FFT), and every gradient — q, k, v and
 *      the parameters — is the central difference of that double forward (step 1e-6), so the
 *      backward formulas are checked against nothing derived from them. This is also the
 *      "FFT against direct Toeplitz" check of rpefft (forward and bias gradient, with random
 *      biases and max_len 40 > T), and the finite-difference check of the ffkernel parameters.
 *      rpefft runs (a) twice: with the framework's 64-byte aligned buffers, and with cache and
 *      scratch moved one float off alignment, which selects its FFTW_UNALIGNED plans.
 *  (b) rpefft with its biases at 0 equals Performer's FAVOR+ with the same seed.
 *  (c) Distance from exact softmax attention at T 256, Dh 32, logit sd 0.5, printed without a
 *      bound: none of the three is an approximation of softmax. cosFormer is a ReLU kernel with
 *      a cos locality re-weighting; ffkernel a learnt positive kernel (at initialisation an
 *      arbitrary one); rpefft approximates softmax attention with a relative-position bias
 *      exp(q·k/√Dh + b_{j−i}) by FAVOR+ features — at b = 0 that is plain softmax, with the
 *      error of FAVOR+, which test_attn_kernel.c bounds.
 *
 * Output: one line per check ("PASS|FAIL what — detail", "INFO ..." for measurements), then
 * "N passed, N failed". Exit status 1 on any failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_testlib.h"
#include "lra_attention.h"
#include "lra_rng.h"
#include "util.h"

/* (a): float plugin against the double reference, max |err| / max |ref| per tensor. Measured
 * worst (gcc 12, OpenBLAS 0.3, FFTW 3.3.10, x86-64): 5.0e-7 (ffkernel dq), rpefft 4.0e-7, and
 * 1.2e-6 for rpefft's dk with unaligned buffers (the FAVOR+ key stabiliser amplifies rounding
 * differences of the other BLAS and FFT code paths). The bounds leave at least 4× room; every
 * planted bug tried (below) gave errors of 1e-2 or more.
 * Planted in scratch copies and caught: rpefft's transposed product without the conjugate
 * spectrum (dk, dv fail), its bias gradient mirrored δ → −δ (dparams); cosFormer's sin and cos
 * swapped in backward (dq, dk); ffkernel's db₁ dropped (dparams), GELU' without its a·φ(a)
 * term (dq, dk, dparams). */
static const double TOL_REF = 5e-6;
static const double TOL_REF_FFT = 5e-6; /* rpefft: FFT rounding over m·(Dh + 1) columns */
static const double TOL_SAME = 2e-6;    /* (b): measured 2.4e-7 */
static const double FD_STEP = 1e-6;     /* central differences in double */

/* ---- variant instances ------------------------------------------------------------------ */

typedef atest_run inst;

/* Variant `name` with options `opts` on (B, H, T, Dh) and max_len; batches b >= 1 have their
 * last `pad` keys padded. q, k uniform in (−amp, amp), v and r in (−1, 1), from `data`. */
static void inst_open(inst *s, const char *name, const char *opts, int B, int H, int T, int D,
                      int max_len, int pad, float amp, uint64_t data)
{
    const lra_attn_ctx settings = {
        .shape = {.batch = B, .heads = H, .len = T, .dim = D, .max_len = max_len},
        .seed = 11,
        .threads = 2,
    };
    atest_run_open_or_die(s, name, &settings, opts);
    atest_run_pad_last_keys(s, pad);
    atest_run_fill_range(s, data, amp);
}

/* ---- (a) double references: explicit weights A_ij, then o_i = Σ_j A_ij v_j / den_i -------- */

typedef enum { REF_COSFORMER, REF_FFKERNEL, REF_RPEFFT } ref_kind;

/* What the reference needs to know about the configuration under test. */
typedef struct ref_cfg {
    ref_kind kind;
    int M;                /* cosformer: the horizon */
    int hidden, features; /* ffkernel: h, r; rpefft: features = m */
    int relu, elu1;       /* ffkernel: activation relu, output elu + 1 */
    int shared;           /* ffkernel: one perceptron for all heads */
} ref_cfg;

/* The double inputs of the reference: copies of the instance's buffers, perturbed by the finite
 * differences. */
typedef struct ref_in {
    double *q, *k, *v, *p; /* (B, H, T, Dh) ×3, (n_params) */
} ref_in;

/* ffkernel: φ(x) (r) in double for perceptron block w (layout in ffkernel.c). */
static void ref_ffk_phi(const ref_cfg *cf, int d, const double *w, const double *x, double *f)
{
    const int h = cf->hidden, r = cf->features;
    const double *W1 = w, *b1 = W1 + h * d, *W2 = b1 + h, *b2 = W2 + r * h;
    double hid[256];
    LRA_ASSERT(h <= 256);
    for (int a = 0; a < h; a++) {
        double u = b1[a];
        for (int e = 0; e < d; e++) u += W1[a * d + e] * x[e];
        hid[a] = cf->relu ? fmax(u, 0.0) : 0.5 * u * (1.0 + erf(u / sqrt(2.0)));
    }
    for (int l = 0; l < r; l++) {
        double u = b2[l];
        for (int a = 0; a < h; a++) u += W2[l * h + a] * hid[a];
        f[l] = cf->elu1 ? (u > 0 ? u + 1.0 : exp(u)) : log1p(exp(u));
    }
}

/* rpefft: FAVOR+ features F (T, m) in double of X (T, d), rows ω_l of W (m, d): stabiliser c
 * per row for queries (mask NULL), over all real rows for keys; padded rows 0. */
static void ref_favor(const float *W, int m, int d, const double *X, int T, const float *mask,
                      double *F)
{
    const double xs = pow(d, -0.25);
    double ckeys = -INFINITY;
    for (int i = 0; i < T; i++)
        for (int l = 0; l < m; l++) {
            double u = 0.0;
            for (int e = 0; e < d; e++) u += W[l * d + e] * X[i * d + e] * xs;
            F[i * m + l] = u;
            if (mask && mask[i] != 0.0f) ckeys = fmax(ckeys, u);
        }
    for (int i = 0; i < T; i++) {
        double half = 0.0, c = ckeys;
        for (int e = 0; e < d; e++) half += 0.5 * X[i * d + e] * xs * X[i * d + e] * xs;
        if (!mask)
            for (int l = 0; l < m; l++) c = l ? fmax(c, F[i * m + l]) : F[i * m + l];
        for (int l = 0; l < m; l++)
            F[i * m + l] = mask && mask[i] == 0.0f
                               ? 0.0
                               : (exp(F[i * m + l] - half - c) + 1e-4) / sqrt((double)m);
    }
}

/* Features Φ (queries) and Ψ (keys, padded rows 0) of one slice, r per row; NULL for cosFormer,
 * which does not factor through per-token features in this reference. */
static void ref_features(const inst *s, const ref_cfg *cf, const ref_in *in, int bh,
                         double *Phi, double *Psi)
{
    const lra_attn_shape *sh = &s->ctx.shape;
    const int T = sh->len, d = sh->dim, H = sh->heads;
    const float *mask = s->mask + (size_t)(bh / H) * T;
    const double *Q = in->q + (size_t)bh * T * d, *K = in->k + (size_t)bh * T * d;
    if (cf->kind == REF_FFKERNEL) {
        const int r = cf->features, h = cf->hidden;
        const size_t block = (size_t)h * d + h + (size_t)r * h + r;
        const double *w = in->p + (cf->shared ? 0 : (size_t)(bh % H)) * block;
        for (int i = 0; i < T; i++) {
            ref_ffk_phi(cf, d, w, Q + i * d, Phi + i * r);
            ref_ffk_phi(cf, d, w, K + i * d, Psi + i * r);
            for (int l = 0; l < r; l++) Psi[i * r + l] *= mask[i];
        }
    } else if (cf->kind == REF_RPEFFT) {
        ref_favor(s->ctx.state, cf->features, d, Q, T, NULL, Phi);
        ref_favor(s->ctx.state, cf->features, d, K, T, mask, Psi);
    }
}

/* A_ij of one slice for query i (row A (T)). */
static void ref_weights(const inst *s, const ref_cfg *cf, const ref_in *in, int bh, int i,
                        const double *Phi, const double *Psi, double *A)
{
    const lra_attn_shape *sh = &s->ctx.shape;
    const int T = sh->len, d = sh->dim, H = sh->heads;
    const float *mask = s->mask + (size_t)(bh / H) * T;
    const double *Q = in->q + (size_t)bh * T * d, *K = in->k + (size_t)bh * T * d;
    const int r = cf->features;
    for (int j = 0; j < T; j++) {
        double a = 0.0;
        if (cf->kind == REF_COSFORMER) {
            for (int e = 0; e < d; e++) a += fmax(Q[i * d + e], 0.0) * fmax(K[j * d + e], 0.0);
            a *= mask[j] * cos(3.14159265358979323846 * (i - j) / (2.0 * cf->M));
        } else {
            for (int l = 0; l < r; l++) a += Phi[i * r + l] * Psi[j * r + l];
            if (cf->kind == REF_RPEFFT)
                a *= exp(in->p[(size_t)(bh % H) * (2 * sh->max_len - 1) + sh->max_len - 1 +
                               (j - i)]);
        }
        A[j] = a;
    }
}

/* The stabilised denominator: cosFormer clamps at 1e-6, ffkernel adds 1e-6, rpefft
 * renormalises. */
static double ref_den(const ref_cfg *cf, double R)
{
    switch (cf->kind) {
    case REF_COSFORMER: return fmax(R, 1e-6);
    case REF_FFKERNEL: return R + 1e-6;
    case REF_RPEFFT: return fabs(R) <= 1e-6 ? R + 2e-6 : R;
    }
    return R;
}

/* out (B, H, T, Dh) of the variant at the double inputs in. */
static void ref_forward(const inst *s, const ref_cfg *cf, const ref_in *in, double *out)
{
    const lra_attn_shape *sh = &s->ctx.shape;
    const int T = sh->len, d = sh->dim, r = cf->features > 0 ? cf->features : 1;
    double *Phi = atest_doubles((size_t)T * r), *Psi = atest_doubles((size_t)T * r);
    double *A = atest_doubles(T);
    for (int bh = 0; bh < sh->batch * sh->heads; bh++) {
        const double *V = in->v + (size_t)bh * T * d;
        ref_features(s, cf, in, bh, Phi, Psi);
        for (int i = 0; i < T; i++) {
            ref_weights(s, cf, in, bh, i, Phi, Psi, A);
            double R = 0.0;
            for (int j = 0; j < T; j++) R += A[j];
            const double den = ref_den(cf, R);
            for (int e = 0; e < d; e++) {
                double acc = 0.0;
                for (int j = 0; j < T; j++) acc += A[j] * V[j * d + e];
                out[((size_t)bh * T + i) * d + e] = acc / den;
            }
        }
    }
    lra_free(Phi);
    lra_free(Psi);
    lra_free(A);
}

/* L = Σ out∘r in double. */
static double ref_loss(const inst *s, const ref_cfg *cf, const ref_in *in, double *scratch)
{
    ref_forward(s, cf, in, scratch);
    double l = 0.0;
    for (size_t i = 0; i < s->nx; i++) l += scratch[i] * s->r[i];
    return l;
}

/* g (n) = ∂L/∂x by central differences of the double forward, x (n) one of in's buffers. */
static void ref_fd(const inst *s, const ref_cfg *cf, ref_in *in, double *x, size_t n, double *g,
                   double *scratch)
{
    for (size_t i = 0; i < n; i++) {
        const double x0 = x[i], h = FD_STEP * fmax(1.0, fabs(x0));
        x[i] = x0 + h;
        const double lp = ref_loss(s, cf, in, scratch);
        x[i] = x0 - h;
        const double lm = ref_loss(s, cf, in, scratch);
        x[i] = x0;
        g[i] = (lp - lm) / (2.0 * h);
    }
}

static double *to_doubles(const float *x, size_t n)
{
    double *y = atest_doubles(n);
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

/* (a) for one configuration: out, dq, dk, dv and the parameter gradient against the double
 * reference; one line each. `label` names the configuration. misalign: cache and scratch are
 * moved one float off their 64-byte alignment (rpefft then runs its FFTW_UNALIGNED plans). */
static void test_reference(const char *name, const char *opts, const ref_cfg *cf, int max_len,
                           const char *label, double tol, void (*setup)(inst *), int misalign)
{
    enum { B = 2, H = 2, T = 37, D = 4, PAD = 6 };
    inst s;
    inst_open(&s, name, opts, B, H, T, D, max_len, PAD, 1.5f, 707);
    if (setup) setup(&s);
    float *own_cache = s.ctx.cache, *own_scratch = s.ctx.scratch;
    float *cache1 = atest_floats(s.sz.n_cache + 1), *scratch1 = atest_floats(s.sz.n_scratch + 1);
    if (misalign) {
        s.ctx.cache = cache1 + 1;
        s.ctx.scratch = scratch1 + 1;
    }
    atest_run_gradients(&s);

    const size_t np = s.sz.n_params;
    ref_in in = {to_doubles(s.q, s.nx), to_doubles(s.k, s.nx), to_doubles(s.v, s.nx),
                 to_doubles(s.ctx.params, np)};
    double *out = atest_doubles(s.nx), *scratch = atest_doubles(s.nx);
    double *g = atest_doubles(s.nx + np);
    ref_forward(&s, cf, &in, out);
    const struct { const char *what; const float *got; double *x; size_t n; } cmp[] = {
        {"out", s.out, NULL, s.nx}, {"dq", s.dq, in.q, s.nx}, {"dk", s.dk, in.k, s.nx},
        {"dv", s.dv, in.v, s.nx}, {"dparams", s.ctx.dparams, in.p, np}};
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
        if (cmp[i].n == 0) continue;
        const double *ref = out;
        if (cmp[i].x) {
            ref_fd(&s, cf, &in, cmp[i].x, cmp[i].n, g, scratch);
            ref = g;
        }
        const double e = atest_rel_err(cmp[i].got, ref, cmp[i].n);
        char what[160];
        snprintf(what, sizeof what, "%s: %s matches the double reference%s", label, cmp[i].what,
                 cmp[i].x ? " (central differences)" : "");
        atest_check(e <= tol, what, "max err / max |ref| = %.2e (bound %.0e)", e, tol);
    }
    void *bufs[] = {in.q, in.k, in.v, in.p, out, scratch, g, cache1, scratch1};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
    s.ctx.cache = own_cache;
    s.ctx.scratch = own_scratch;
    atest_run_close(&s);
}

/* ffkernel: parameters ×4 after init, so that the pre-activations of both layers reach |a| of
 * 10 and more: the vectorised erf, GELU', softplus (log1p) and softplus' (its small-f series and
 * 1 − e^(−f) branch) are then checked far into their tails, not only near 0. */
static void ffk_wide_weights(inst *s)
{
    for (size_t i = 0; i < s->sz.n_params; i++) s->ctx.params[i] *= 4.0f;
}

/* rpefft: random biases N(0, 0.5²) instead of init's zeros, so that c_{j−i} is not symmetric. */
static void rpe_random_biases(inst *s)
{
    atest_fill_normal(s->ctx.params, s->sz.n_params, lra_key(909, 1), 0.5f);
}

/* ---- (b) rpefft at b = 0 is FAVOR+ ----------------------------------------------------- */

static void test_rpe_is_favor(void)
{
    inst a, b;
    inst_open(&a, "rpefft", "features=24", 2, 2, 37, 4, 37, 6, 1.5f, 808);
    inst_open(&b, "performer", "kernel=softmax,features=24", 2, 2, 37, 4, 37, 6, 1.5f, 808);
    atest_run_forward(&a);
    atest_run_forward(&b);
    double *ref = to_doubles(b.out, b.nx);
    const double e = atest_rel_err(a.out, ref, a.nx);
    atest_check(e <= TOL_SAME,
                "rpefft with b = 0 equals performer kernel=softmax (same seed, m 24)",
                "max err / max |ref| = %.2e (bound %.0e)", e, TOL_SAME);
    lra_free(ref);
    atest_run_close(&a);
    atest_run_close(&b);
}

/* ---- (c) distance from exact softmax ---------------------------------------------------- */

enum { APX_T = 256, APX_D = 32, APX_H = 2 };

/* Opens `name` with one batch of APX_H heads, no padding, q and k entries N(0, sd²), v N(0, 1):
 * the same inputs for every variant. */
static void apx_open(inst *s, const char *name, const char *opts, float sd)
{
    inst_open(s, name, opts, 1, APX_H, APX_T, APX_D, APX_T, 0, 1.0f, 303);
    atest_fill_normal(s->q, s->nx, lra_key(404, 1), sd);
    atest_fill_normal(s->k, s->nx, lra_key(404, 2), sd);
    atest_fill_normal(s->v, s->nx, lra_key(404, 3), 1.0f);
}

static void test_distance(void)
{
    const float sd = (float)sqrt(0.5); /* logit sd sd²·√Dh/√Dh = 0.5 */
    static const struct { const char *name, *opts, *what; } vars[] = {
        {"cosformer", NULL, "ReLU kernel with cos re-weighting"},
        {"ffkernel", NULL, "trainable kernel at initialisation"},
        {"rpefft", NULL, "FAVOR+ m=64 with RPE, b = 0"},
        {"rpefft", "features=256", "FAVOR+ m=256 with RPE, b = 0"},
    };
    inst sm;
    apx_open(&sm, "softmax", NULL, sd);
    atest_run_forward(&sm);
    printf("INFO distance from exact softmax attention, T=%d Dh=%d, logit sd 0.5, relative "
           "Frobenius error of the output (no bound: these are different attention "
           "functions)\n", APX_T, APX_D);
    /* Uniform attention (the mean of v over the keys) knows nothing about q and k. */
    float *uni = atest_floats(sm.nx);
    for (int bh = 0; bh < APX_H; bh++)
        for (int e = 0; e < APX_D; e++) {
            double mean = 0.0;
            for (int j = 0; j < APX_T; j++) mean += sm.v[((size_t)bh * APX_T + j) * APX_D + e];
            for (int i = 0; i < APX_T; i++)
                uni[((size_t)bh * APX_T + i) * APX_D + e] = (float)(mean / APX_T);
        }
    printf("INFO   %-9s %-32s %.4f\n", "uniform", "baseline: mean of v",
           atest_rel_frobenius_f(uni, sm.out, sm.nx));
    lra_free(uni);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        inst s;
        apx_open(&s, vars[i].name, vars[i].opts, sd);
        atest_run_forward(&s);
        printf("INFO   %-9s %-32s %.4f\n", vars[i].name, vars[i].what,
               atest_rel_frobenius_f(s.out, sm.out, s.nx));
        atest_run_close(&s);
    }
    atest_run_close(&sm);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    const ref_cfg cos_len = {.kind = REF_COSFORMER, .M = 37};
    const ref_cfg cos_max = {.kind = REF_COSFORMER, .M = 50};
    test_reference("cosformer", NULL, &cos_len, 37, "cosformer horizon=len", TOL_REF, NULL, 0);
    test_reference("cosformer", "horizon=max_len", &cos_max, 50, "cosformer horizon=max_len",
                   TOL_REF, NULL, 0);

    const ref_cfg ffk = {.kind = REF_FFKERNEL, .hidden = 8, .features = 4};
    const ref_cfg ffk_relu = {.kind = REF_FFKERNEL, .hidden = 6, .features = 5, .relu = 1,
                              .elu1 = 1, .shared = 1};
    test_reference("ffkernel", NULL, &ffk, 37, "ffkernel gelu/softplus per head", TOL_REF,
                   NULL, 0);
    test_reference("ffkernel", "hidden=6,features=5,activation=relu,output=elu1,shared=1",
                   &ffk_relu, 37, "ffkernel relu/elu1 shared", TOL_REF, NULL, 0);

    test_reference("ffkernel", NULL, &ffk, 37, "ffkernel gelu/softplus, weights x4",
                   TOL_REF, ffk_wide_weights, 0);
    test_reference("ffkernel", "hidden=6,features=5,activation=relu,output=elu1,shared=1",
                   &ffk_relu, 37, "ffkernel relu/elu1 shared, weights x4", TOL_REF,
                   ffk_wide_weights, 0);

    const ref_cfg rpe = {.kind = REF_RPEFFT, .features = 12};
    /* m (Dh + 1) = 15 columns: the last FFT carries one column instead of a pair. */
    const ref_cfg rpe_odd = {.kind = REF_RPEFFT, .features = 3};
    test_reference("rpefft", "features=3", &rpe_odd, 40, "rpefft odd column count",
                   TOL_REF_FFT, rpe_random_biases, 0);
    test_reference("rpefft", "features=12", &rpe, 40, "rpefft FFT vs direct Toeplitz",
                   TOL_REF_FFT, rpe_random_biases, 0);
    test_reference("rpefft", "features=12", &rpe, 40, "rpefft unaligned buffers",
                   TOL_REF_FFT, rpe_random_biases, 1);
    test_rpe_is_favor();
    test_distance();

    return atest_summary();
}
