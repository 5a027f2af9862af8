/* lra_vmath.h — exp and tanh that vectorise, header-only.
 *
 * libm's expf and tanhf are calls, so a loop over them runs one element at a time; these are
 * straight-line float arithmetic without branches, and GCC turns loops over them into AVX-512 (or
 * AVX2) code. The model's GELU, the attention softmaxes and the kernel feature maps spend most of
 * their non-GEMM time in exp, which is why this exists. Header-only, like lra_rng.h, so that
 * out-of-tree plugins get the same numbers without linking the core.
 *
 * Accuracy (tests/test_ops_fused.c checks it against libm over a sweep of all floats):
 *   lra_expf:  within 2 ulp of expf on [−87.3, 88.3]; 0 below −87.3 (including −∞), where expf
 *              returns subnormals under 1.2e-38; saturates near 2.3e38 above 88.3.
 *   lra_tanhf: within 2e-7 absolute of tanhf on every float (|tanh| <= 1); NaN stays NaN.
 */
#ifndef LRA_VMATH_H
#define LRA_VMATH_H

#include <stdint.h>

/* exp(x) after Cephes expf: x = n·ln 2 + r with |r| <= ln 2/2 (Cody–Waite split of ln 2), exp(r)
 * by a degree-7 polynomial, 2ⁿ built in the exponent bits. */
static inline float lra_expf(float x)
{
    const float lo = -87.3f, hi = 88.3f, round = 12582912.0f; /* 1.5·2²³ */
    const float xc = x < lo ? lo : x > hi ? hi : x;
    /* Adding 1.5·2²³ rounds xc/ln 2 to an integer n held in the low mantissa bits of t. */
    const float t = xc * 1.44269504088896341f + round;
    const float n = t - round;
    const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
    float poly = 1.9875691500e-4f;
    poly = poly * r + 1.3981999507e-3f;
    poly = poly * r + 8.3334519073e-3f;
    poly = poly * r + 4.1665795894e-2f;
    poly = poly * r + 1.6666665459e-1f;
    poly = poly * r + 5.0000001201e-1f;
    const float e = poly * (r * r) + r + 1.0f;
    union { float f; uint32_t u; } bits = {.f = t}, two_n;
    two_n.u = (bits.u - 0x4b400000u + 127u) << 23; /* 2ⁿ, n in [−126, 127] */
    return x < lo ? 0.0f : e * two_n.f;
}

/* tanh(x) = sign(x)·(1 − 2/(exp(2|x|) + 1)) for |x| >= 0.625, where the subtraction loses
 * nothing; below, the odd Taylor-like minimax polynomial of Cephes tanhf (relative error
 * ~1e-7), since 1 − 2/(e+1) would cancel there. Both branches are computed and one selected,
 * so the loop stays branch-free. */
static inline float lra_tanhf(float x)
{
    const float ax = x < 0.0f ? -x : x;
    const float big = 1.0f - 2.0f / (lra_expf(2.0f * (ax < 44.0f ? ax : 44.0f)) + 1.0f);
    const float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = ax + ax * z * p;
    const float mag = ax < 0.625f ? small : big;
    return x != x ? x : x < 0.0f ? -mag : mag; /* NaN in, NaN out */
}

/* Σ x[0..n) as 16 independent float partial sums, so the loop vectorises without the
 * compiler reassociating anything, then added in a fixed order in double: the same bits at any
 * thread count. The attention rows' softmax denominators use it. */
static inline double lra_sumf(const float *x, int n)
{
    float acc[16] = {0.0f};
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) acc[l] += x[j + l];
    double sum = 0.0;
    for (; j < n; j++) sum += x[j];
    for (int l = 0; l < 16; l++) sum += acc[l];
    return sum;
}

#endif
