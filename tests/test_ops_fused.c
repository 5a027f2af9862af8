/* test_ops_fused.c — the fused passes equal the unfused chains they replace, and lra_vmath's
 * exp and tanh are within their stated accuracy of libm.
 *
 * The unfused ops (op_gelu_*, op_dropout_*, op_add_inplace, op_linear_backward) are checked
 * against finite differences in test_ops.c; here each fused op is compared with the chain of
 * them that it stands for, on sizes that take the OpenMP paths, with dropout on and off. The
 * element-wise ones must agree bit for bit (same formulas, same masks); the GEMM one within
 * float rounding of a different summation.
 *
 * --plant swaps in a fused GELU-dropout gradient that uses the wrong mask (key + 1): the
 * comparison must then fail (registered as a should_fail test).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lra_rng.h"
#include "lra_vmath.h"
#include "ops.h"

static int g_passed, g_failed, g_plant;

static void check(const char *name, int ok, const char *detail)
{
    printf("  %-44s %s  %s\n", name, ok ? "PASS" : "FAIL", detail ? detail : "");
    if (ok) g_passed++;
    else g_failed++;
}

static float *uniform(size_t n, uint64_t key, float scale)
{
    float *x = malloc(n * sizeof(float));
    if (!x) abort();
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * lra_uniform(key, i) - 1.0f);
    return x;
}

static float *zeros(size_t n)
{
    float *x = calloc(n, sizeof(float));
    if (!x) abort();
    return x;
}

static int same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof *a); }

enum { N = 3 * 16384 + 5 }; /* above the OpenMP threshold, not a multiple of any vector width */
/* Masks are drawn from stream position FIRST on: the fused ops must place them as the unfused
 * ones do (a data-parallel shard starts mid-stream). */
static const uint64_t FIRST = 1000003;

static void check_gelu_dropout(float p)
{
    char name[64];
    const uint64_t key = lra_key(7, 11);
    float *x = uniform(N, 1, 4.0f), *dy = uniform(N, 2, 1.0f);
    float *want = zeros(N), *got = zeros(N), *tmp = zeros(N);

    op_gelu_forward(tmp, x, N);
    op_dropout_forward(want, tmp, N, p, key, FIRST);
    op_gelu_dropout_forward(got, x, N, p, key, FIRST);
    snprintf(name, sizeof name, "gelu+dropout forward, p=%.1f", p);
    check(name, same(want, got, N), "(bit-identical)");

    memset(want, 0, N * sizeof(float));
    memset(tmp, 0, N * sizeof(float));
    op_dropout_backward(tmp, dy, N, p, key, FIRST);
    op_gelu_backward(want, tmp, x, N);
    memcpy(got, dy, N * sizeof(float)); /* in place, as the model calls it */
    op_gelu_dropout_grad(got, got, x, N, p, g_plant ? key + 1 : key, FIRST);
    /* GELU'(x)·(mask·dy) against (GELU'(x)·dy)·mask: one rounding apart at most. */
    double worst = 0.0;
    for (size_t i = 0; i < N; i++)
        worst = fmax(worst, fabs((double)want[i] - got[i]) / fmax(fabs(want[i]), 1e-30));
    char detail[64];
    snprintf(detail, sizeof detail, "(worst rel diff %.1e, bound 2.4e-7)", worst);
    snprintf(name, sizeof name, "gelu+dropout grad, p=%.1f", p);
    check(name, worst <= 2.4e-7, detail);
    free(x), free(dy), free(want), free(got), free(tmp);
}

static void check_residual_and_dropout_grad(float p)
{
    char name[64];
    const uint64_t key = lra_key(9, 3);
    float *res = uniform(N, 3, 1.0f), *y = uniform(N, 4, 1.0f);
    float *want = zeros(N), *got = zeros(N);
    op_dropout_forward(want, y, N, p, key, FIRST);
    op_add_inplace(want, res, N);
    memcpy(got, res, N * sizeof(float));
    op_residual_dropout_forward(got, got, y, N, p, key, FIRST); /* out == res allowed */
    snprintf(name, sizeof name, "residual+dropout forward, p=%.1f", p);
    check(name, same(want, got, N), "(bit-identical)");

    memset(want, 0, N * sizeof(float));
    op_dropout_backward(want, y, N, p, key, FIRST);
    memset(got, 0xff, N * sizeof(float)); /* NaN garbage: must be overwritten, not added to */
    op_dropout_grad(got, y, N, p, key, FIRST);
    snprintf(name, sizeof name, "dropout grad writes, p=%.1f", p);
    check(name, same(want, got, N), "(bit-identical)");
    free(res), free(y), free(want), free(got);
}

static void check_linear_grad_input(void)
{
    enum { n = 300, in = 40, out = 24 };
    float *dy = uniform((size_t)n * out, 5, 1.0f), *w = uniform((size_t)in * out, 6, 1.0f);
    float *want = zeros((size_t)n * in), *got = uniform((size_t)n * in, 7, 1e6f);
    op_linear_backward(want, NULL, NULL, dy, NULL, w, n, in, out);
    op_linear_grad_input(got, dy, w, n, in, out); /* overwrites the garbage */
    double worst = 0.0;
    for (size_t i = 0; i < (size_t)n * in; i++) worst = fmax(worst, fabs(want[i] - got[i]));
    char detail[64];
    snprintf(detail, sizeof detail, "(worst abs diff %.1e)", worst);
    check("linear grad input writes dy·wᵀ", worst <= 1e-5, detail);
    free(dy), free(w), free(want), free(got);
}

/* The row-blocked GEMMs against a double-precision loop, with n spanning several blocks and a
 * ragged last one: forward (256-row blocks) and the weight gradient (4096-row blocks). */
static void check_blocked_gemms(void)
{
    enum { n = 9000, in = 24, out = 40 };
    float *x = uniform((size_t)n * in, 8, 1.0f), *w = uniform((size_t)in * out, 9, 1.0f);
    float *b = uniform(out, 10, 1.0f), *dy = uniform((size_t)n * out, 11, 1.0f);
    float *y = zeros((size_t)n * out), *dw = uniform((size_t)in * out, 12, 1.0f);
    float *dw0 = malloc((size_t)in * out * sizeof(float));
    float *part = zeros(op_linear_grad_weight_scratch(n, in, out));
    memcpy(dw0, dw, (size_t)in * out * sizeof(float));
    op_linear_forward(y, x, w, b, n, in, out);
    op_linear_grad_weight(dw, x, dy, n, in, out, part);
    double worst_y = 0.0, worst_w = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < out; j++) {
            double ref = b[j];
            for (int k = 0; k < in; k++) ref += (double)x[i * in + k] * w[k * out + j];
            worst_y = fmax(worst_y, fabs(ref - y[i * out + j]));
        }
    for (int k = 0; k < in; k++)
        for (int j = 0; j < out; j++) {
            double ref = dw0[k * out + j];
            for (int i = 0; i < n; i++) ref += (double)x[i * in + k] * dy[i * out + j];
            /* sums of 9000 products of magnitude <= 1: scale the bound by sqrt(n) */
            worst_w = fmax(worst_w, fabs(ref - dw[k * out + j]) / sqrt((double)n));
        }
    char detail[80];
    snprintf(detail, sizeof detail, "(worst abs err %.1e, bound 1e-5)", worst_y);
    check("linear forward in row blocks", worst_y <= 1e-5, detail);
    snprintf(detail, sizeof detail, "(worst abs err / sqrt(n) %.1e, bound 1e-6)", worst_w);
    check("weight gradient in row blocks", worst_w <= 1e-6, detail);
    free(x), free(w), free(b), free(dy), free(y), free(dw), free(dw0), free(part);
}

/* Distance in units in the last place between two finite floats of the same sign. */
static double ulps(float a, float b)
{
    union { float f; int32_t i; } x = {.f = a}, y = {.f = b};
    return fabs((double)x.i - (double)y.i);
}

/* Every float in [lo, hi) at a stride of `step` bit patterns, plus the edges. */
static void check_vmath(void)
{
    double worst_exp = 0.0, worst_tanh = 0.0;
    float at_exp = 0.0f, at_tanh = 0.0f;
    for (int64_t bits = 0; bits < 0x100000000LL; bits += 97) {
        union { uint32_t u; float f; } v = {.u = (uint32_t)bits};
        const float x = v.f;
        if (!isfinite(x)) continue;
        if (x >= -87.3f && x <= 88.3f) {
            const float e = expf(x);
            const double d = e < 1.2e-38f ? 0.0 : ulps(lra_expf(x), e);
            if (d > worst_exp) worst_exp = d, at_exp = x;
        }
        const double t = fabs((double)lra_tanhf(x) - tanh((double)x));
        if (t > worst_tanh) worst_tanh = t, at_tanh = x;
    }
    char detail[96];
    snprintf(detail, sizeof detail, "(worst %.0f ulp at %.6g, bound 2)", worst_exp, at_exp);
    check("lra_expf vs expf on [-87.3, 88.3]", worst_exp <= 2.0, detail);
    snprintf(detail, sizeof detail, "(worst %.1e at %.6g, bound 2e-7)", worst_tanh, at_tanh);
    check("lra_tanhf vs tanh, all floats", worst_tanh <= 2e-7, detail);
    check("lra_expf(-inf) = 0, lra_expf(-100) = 0",
          lra_expf(-INFINITY) == 0.0f && lra_expf(-100.0f) == 0.0f, NULL);
    check("lra_tanhf(+-inf) = +-1", lra_tanhf(INFINITY) == 1.0f && lra_tanhf(-INFINITY) == -1.0f,
          NULL);
}

int main(int argc, char **argv)
{
    g_plant = argc > 1 && !strcmp(argv[1], "--plant");
    if (g_plant) printf("--plant: the fused GELU-dropout gradient uses the wrong mask\n");
    check_gelu_dropout(0.0f);
    check_gelu_dropout(0.3f);
    check_residual_and_dropout_grad(0.0f);
    check_residual_and_dropout_grad(0.3f);
    check_linear_grad_input();
    check_blocked_gemms();
    check_vmath();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
