/* test_optim.c — AdamW against a double-precision reference, clipping, the thread-count
 * independence of the gradient norm, the four schedules against closed forms written out here,
 * and Adam actually minimising something.
 */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "optim.h"
#include "util.h"

static int n_passed, n_failed;

LRA_PRINTF(2, 3) static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    if (ok)
        n_passed++;
    else
        n_failed++;
    return ok;
}

/* Deterministic uniform numbers in [-1, 1) (splitmix64). */
static double uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-52 - 1.0;
}

static float *random_floats(size_t n, uint64_t seed, double scale)
{
    float *x = lra_alloc(n * sizeof *x, "test vector");
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * uniform(&seed));
    return x;
}

static double rel_err(double got, double want)
{
    return fabs(got - want) / fmax(fabs(want), 1e-300);
}

/* ---- AdamW ------------------------------------------------------------------------------ */

typedef struct {
    double lr, b1, b2, eps, wd;
} hyper;

/* Textbook AdamW in double, one element at a time. */
static void adamw_reference(double *p, const double *g, double *m, double *v, size_t n,
                            const hyper *h, long t)
{
    for (size_t i = 0; i < n; i++) {
        m[i] = h->b1 * m[i] + (1 - h->b1) * g[i];
        v[i] = h->b2 * v[i] + (1 - h->b2) * g[i] * g[i];
        const double mhat = m[i] / (1 - pow(h->b1, (double)t));
        const double vhat = v[i] / (1 - pow(h->b2, (double)t));
        p[i] -= h->lr * (mhat / (sqrt(vhat) + h->eps) + h->wd * p[i]);
    }
}

/* Runs `steps` AdamW steps on n elements with fresh random gradients and returns the largest
 * deviation from the reference, relative to the size of one step (lr). */
static double adamw_vs_reference(size_t n, const hyper *h, int steps)
{
    const size_t fb = n * sizeof(float), db = n * sizeof(double);
    /* Small weights, so that rounding p to float stays far below one step. */
    float *p = random_floats(n, 1, 1e-2), *m = lra_alloc(fb, "m"), *v = lra_alloc(fb, "v");
    float *g = lra_alloc(fb, "g");
    double *pr = lra_alloc(db, "p ref"), *mr = lra_alloc(db, "m ref");
    double *vr = lra_alloc(db, "v ref"), *gr = lra_alloc(db, "g ref");
    for (size_t i = 0; i < n; i++) pr[i] = p[i];
    uint64_t seed = 99;
    for (long t = 1; t <= steps; t++) {
        for (size_t i = 0; i < n; i++) {
            g[i] = (float)uniform(&seed);
            gr[i] = g[i];
        }
        lra_adamw_update(p, g, m, v, n, h->lr, h->b1, h->b2, h->eps, h->wd, t);
        adamw_reference(pr, gr, mr, vr, n, h, t);
    }
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(p[i] - pr[i]) / h->lr);
    lra_free(p), lra_free(m), lra_free(v), lra_free(g);
    lra_free(pr), lra_free(mr), lra_free(vr), lra_free(gr);
    return worst;
}

static void test_adamw_reference(void)
{
    const hyper with_wd = {1e-2, 0.9, 0.98, 1e-9, 0.1}; /* LRA's betas and eps */
    const hyper no_wd = {1e-2, 0.9, 0.999, 1e-8, 0.0};
    /* p, m and v are stored in float: each step rounds them to about 6e-8 relative. A wrong
     * moment, bias correction or decay term is off by a sizeable fraction of a step. */
    const double tol = 1e-5;
    const size_t sizes[] = {37, 100003}; /* serial and parallel paths */
    for (int k = 0; k < 2; k++) {
        double e = adamw_vs_reference(sizes[k], &with_wd, 6);
        check(e < tol, "adamw: n=%zu wd=0.1, 6 steps match the double reference "
              "(max err %.2e steps < %.0e)", sizes[k], e, tol);
        e = adamw_vs_reference(sizes[k], &no_wd, 6);
        check(e < tol, "adamw: n=%zu wd=0, 6 steps match the double reference "
              "(max err %.2e steps < %.0e)", sizes[k], e, tol);
    }
}

/* At t = 1, mhat = g and vhat = g^2, so the step is lr * g / (|g| + eps) ~ lr * sign(g). */
static void test_adamw_first_step(void)
{
    const size_t n = 1000;
    const double lr = 1e-3;
    const size_t fb = n * sizeof(float);
    float *p = lra_alloc(fb, "p"), *m = lra_alloc(fb, "m"), *v = lra_alloc(fb, "v");
    float *g = random_floats(n, 7, 1.0);
    for (size_t i = 0; i < n; i++)
        if (fabsf(g[i]) < 1e-2f) g[i] = g[i] < 0 ? -1e-2f : 1e-2f; /* keep eps/|g| <= 1e-6 */
    lra_adamw_update(p, g, m, v, n, lr, 0.9, 0.999, 1e-8, 0.0, 1);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, rel_err(p[i], -lr * copysign(1, g[i])));
    check(worst < 1e-5, "adamw: bias-corrected first step is lr*sign(g) (max rel err %.1e)",
          worst);
    lra_free(p), lra_free(m), lra_free(v), lra_free(g);
}

/* With g = 0 the Adam part vanishes and only the decoupled decay remains: p *= 1 - lr*wd. */
static void test_adamw_decay(void)
{
    float p[4] = {1.0f, -2.0f, 0.5f, 0.0f}, g[4] = {0}, m[4] = {0}, v[4] = {0};
    const double lr = 0.01, wd = 0.1;
    lra_adamw_update(p, g, m, v, 4, lr, 0.9, 0.999, 1e-8, wd, 3);
    const double want[4] = {1.0 * 0.999, -2.0 * 0.999, 0.5 * 0.999, 0.0};
    double worst = 0;
    for (int i = 0; i < 4; i++) worst = fmax(worst, fabs(p[i] - want[i]));
    check(worst < 1e-7, "adamw: weight decay is decoupled, p *= 1 - lr*wd (max err %.1e)",
          worst);
}

/* ---- norm and clipping ------------------------------------------------------------------ */

static double norm_reference(const float *g, size_t n)
{
    long double s = 0;
    for (size_t i = 0; i < n; i++) s += (long double)g[i] * g[i];
    return (double)sqrtl(s);
}

static void test_norm_threads(void)
{
    const size_t n = 3000017; /* many chunks, ragged tail */
    float *g = random_floats(n, 3, 1e-3);
    const int counts[] = {1, 2, 3, 4};
    double norms[4];
    for (int k = 0; k < 4; k++) {
        omp_set_num_threads(counts[k]);
        norms[k] = lra_grad_norm(g, n);
    }
    omp_set_num_threads(2);
    for (int k = 1; k < 4; k++)
        check(memcmp(&norms[0], &norms[k], sizeof(double)) == 0,
              "norm: bit-identical at 1 and %d OpenMP threads (%.17g vs %.17g)", counts[k],
              norms[0], norms[k]);
    const double ref = norm_reference(g, n);
    check(rel_err(norms[0], ref) < 1e-12, "norm: matches a long-double sum (rel err %.1e)",
          rel_err(norms[0], ref));
    const float small[3] = {3, 4, 12};
    check(lra_grad_norm(small, 3) == 13.0 && lra_grad_norm(small, 0) == 0.0,
          "norm: |(3,4,12)| = 13 and the empty norm is 0");
    lra_free(g);
}

static void test_clip(void)
{
    const size_t n = 100003;
    float *g = random_floats(n, 5, 0.3);
    const double before = norm_reference(g, n);
    const double ret = lra_clip_grad_norm(g, n, 1.0);
    const double after = norm_reference(g, n);
    check(rel_err(ret, before) < 1e-12 && before > 1.0,
          "clip: returns the norm before clipping (%.6f)", ret);
    check(rel_err(after, 1.0) < 1e-6, "clip: norm after clipping equals max_norm (rel err %.1e)",
          rel_err(after, 1.0));

    float *copy = lra_alloc(n * sizeof *copy, "copy");
    memcpy(copy, g, n * sizeof *g);
    lra_clip_grad_norm(g, n, 2.0);
    check(memcmp(copy, g, n * sizeof *g) == 0, "clip: a norm below max_norm is left untouched");
    lra_clip_grad_norm(g, n, 0.0);
    check(memcmp(copy, g, n * sizeof *g) == 0, "clip: max_norm = 0 means no clipping");
    lra_free(copy);
    lra_free(g);
}

/* ---- schedules -------------------------------------------------------------------------- */

static void expect_lr(int sched, const char *name, double lr, long w, long T, long t, double want)
{
    const double got = lra_lr_at(sched, lr, w, T, t);
    const int ok = want == 0 ? got == 0 : rel_err(got, want) < 1e-12;
    check(ok, "schedule %s (lr=%g w=%ld T=%ld) at t=%ld: %.12g, expected %.12g", name, lr, w, T,
          t, got, want);
}

static void test_schedules(void)
{
    const double pi = 3.14159265358979323846;
    const int C = LRA_SCHED_CONSTANT, R = LRA_SCHED_RSQRT, Co = LRA_SCHED_COSINE,
              L = LRA_SCHED_LINEAR;

    expect_lr(C, "constant", 0.1, 100, 1000, 0, 0.0);
    expect_lr(C, "constant", 0.1, 100, 1000, 25, 0.025);
    expect_lr(C, "constant", 0.1, 100, 1000, 100, 0.1);
    expect_lr(C, "constant", 0.1, 100, 1000, 5000, 0.1);
    expect_lr(C, "constant", 0.1, 0, 1000, 0, 0.1);

    /* LRA text tasks: lr 0.05, warmup 8000. */
    expect_lr(R, "rsqrt", 0.05, 8000, 20000, 8000, 0.05 / sqrt(8000.0));
    expect_lr(R, "rsqrt", 0.05, 8000, 20000, 2000, 0.05 * 0.25 / sqrt(8000.0));
    expect_lr(R, "rsqrt", 0.05, 8000, 20000, 32000, 0.05 / sqrt(32000.0));
    expect_lr(R, "rsqrt", 0.05, 0, 20000, 0, 0.05); /* max(t, w) = 0 is guarded */
    expect_lr(R, "rsqrt", 0.05, 0, 20000, 16, 0.05 / 4);

    expect_lr(Co, "cosine", 1e-3, 100, 1000, 50, 0.5e-3);
    expect_lr(Co, "cosine", 1e-3, 100, 1000, 100, 1e-3);
    expect_lr(Co, "cosine", 1e-3, 100, 1000, 350, 1e-3 * 0.5 * (1 + cos(pi / 4)));
    expect_lr(Co, "cosine", 1e-3, 100, 1000, 600, 1e-3 * 0.5 * (1 + cos(pi / 2)));
    expect_lr(Co, "cosine", 1e-3, 100, 1000, 1099, 1e-3 * 0.5 * (1 + cos(pi * 0.999)));
    /* LRA's "mod 1": after T steps past warmup the cycle restarts at full rate. */
    expect_lr(Co, "cosine", 1e-3, 100, 1000, 1100, 1e-3);
    expect_lr(Co, "cosine", 1e-3, 0, 1000, 0, 1e-3);

    expect_lr(L, "linear", 1e-3, 100, 1100, 100, 1e-3);
    expect_lr(L, "linear", 1e-3, 100, 1100, 600, 0.5e-3);
    expect_lr(L, "linear", 1e-3, 100, 1100, 1100, 0.0);
    expect_lr(L, "linear", 1e-3, 100, 1100, 5000, 0.0);
    expect_lr(L, "linear", 1e-3, 0, 1000, 0, 1e-3);
    expect_lr(L, "linear", 1e-3, 0, 1000, 1000, 0.0);

    /* Degenerate settings never produce NaN, infinity, a negative rate or one above lr. */
    int bad = 0;
    const long ws[] = {0, 1, 10, 100}, Ts[] = {0, 1, 10, 100};
    for (int s = 0; s < 4; s++)
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
                for (long t = -2; t <= 300; t++) {
                    const double x = lra_lr_at(s, 0.5, ws[a], Ts[b], t);
                    if (!(x >= 0 && x <= 0.5)) bad++;
                }
    check(bad == 0, "schedules: rates stay in [0, lr] for warmup, total in {0,1,10,100} and "
          "t in [-2, 300] (%d bad)", bad);
}

/* ---- Adam minimises a quadratic --------------------------------------------------------- */

/* f(p) = 1/2 sum a_i (p_i - c_i)^2 with curvatures a_i from 0.1 to 10. */
static double quadratic(const float *p, float *g, const double *a, const double *c, size_t n)
{
    double f = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = p[i] - c[i];
        f += 0.5 * a[i] * d * d;
        g[i] = (float)(a[i] * d);
    }
    return f;
}

static void test_minimise(void)
{
    enum { N = 64, STEPS = 2000 };
    const double bound = 1e-8;
    float p[N] = {0}, g[N], m[N] = {0}, v[N] = {0};
    double a[N], c[N];
    uint64_t seed = 11;
    for (int i = 0; i < N; i++) {
        a[i] = pow(10.0, -1.0 + 2.0 * i / (N - 1));
        c[i] = uniform(&seed);
    }
    const double f0 = quadratic(p, g, a, c, N);
    double f = f0;
    for (long t = 0; t < STEPS; t++) {
        f = quadratic(p, g, a, c, N);
        lra_clip_grad_norm(g, N, 5.0);
        const double lr = lra_lr_at(LRA_SCHED_LINEAR, 0.05, 100, STEPS, t);
        lra_adamw_update(p, g, m, v, N, lr, 0.9, 0.999, 1e-8, 0.0, t + 1);
    }
    f = quadratic(p, g, a, c, N);
    check(f < bound, "minimise: Adam takes a 64-d quadratic from f=%.3f to %.2e < %.0e in %d "
          "steps", f0, f, bound, STEPS);
}

int main(void)
{
    test_adamw_reference();
    test_adamw_first_step();
    test_adamw_decay();
    test_norm_threads();
    test_clip();
    test_schedules();
    test_minimise();
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
