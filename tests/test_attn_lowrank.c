/* test_attn_lowrank.c — checks of Linformer and Synthesizer beyond the generic harness.
 *
 * tests/test_attn.c runs every variant at T = max_len = 8 with its default options. This file
 * runs both at T = 37 with padding (the last 7 tokens and token 2 of batch 1), every option that
 * changes the computation, and len < max_len, against double-precision references written here
 * from attention-variants.md §5 and §8:
 *  - linformer: forward and backward (dq, dk, dv, dE, dF) for share = layer|kv|none and
 *    mask_keys = true|false; mask_keys changes the output only when there is padding; the
 *    identity limit (k = max_len, E = F = I) equals softmax attention, also with len < max_len;
 *    parameters sized by max_len are sliced to len (columns ≥ len get no gradient and do not
 *    change the output); the error against exact softmax attention, measured and printed;
 *  - synthesizer: each mode with and without the dot product, forward and backward including
 *    the parameter gradients; init_zero with the dot product equals softmax in every mode;
 *    slicing of max_len-sized parameters; the key mask applies without the dot product; dense
 *    mode's frozen ReLU gate gives a passing finite-difference check.
 * Output: one line per check ("PASS|FAIL what — detail"), then "N passed, N failed". Exit status
 * 1 on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_testlib.h"
#include "gradcheck.h"
#include "lra_attention.h"
#include "lra_rng.h"
#include "util.h"

enum { BATCH = 2, HEADS = 2, DIM = 8, THREADS = 2 };
static const uint64_t TEST_SEED = 20240613;
static const double TOL_REFERENCE = 1e-5; /* relative to the largest reference value */

/* ---- one variant on one shape ------------------------------------------------------------- */

/* A variant on (BATCH, HEADS, len, DIM) with max_len >= len (N in the references). */
typedef atest_run run;

/* Batch 0 has no padding; batch 1 pads its last 7 tokens and token 2 (a hole, not a tail). */
static void set_mask(run *r, int padded)
{
    for (int b = 0; b < BATCH; b++)
        for (int t = 0; t < r->T; t++)
            r->mask[b * r->T + t] = padded && b == 1 && (t >= r->T - 7 || t == 2) ? 0.0f : 1.0f;
}

/* Sets variant `name` up on (B, H, len, Dh) with the given max_len and options ("a=1,b=2").
 * Dies on a rejected option or init: every set-up here is meant to be valid. */
static void run_open(run *r, const char *name, int len, int max_len, int padded, const char *opt)
{
    const lra_attn_ctx settings = {
        .shape = {.batch = BATCH, .heads = HEADS, .len = len, .dim = DIM, .max_len = max_len},
        .seed = TEST_SEED,
        .threads = THREADS,
    };
    atest_run_open_or_die(r, name, &settings, opt);
    set_mask(r, padded);
    atest_run_fill(r, TEST_SEED, 2.0f);
}

/* ---- double references -------------------------------------------------------------------- */

/* The reference results for one run: o, dq, dk, dv (B, H, T, Dh) and dparams (n_params). */
typedef struct ref {
    double *o, *dq, *dk, *dv, *dp;
} ref;

static ref ref_alloc(const run *r)
{
    const size_t n = 4 * r->nx + r->sz.n_params;
    double *all = lra_alloc(n * sizeof(double), "reference");
    return (ref){.o = all, .dq = all + r->nx, .dk = all + 2 * r->nx, .dv = all + 3 * r->nx,
                 .dp = all + 4 * r->nx};
}

static void ref_free(ref *f) { lra_free(f->o); }

/* Softmax attention of one slice over n columns, and its backward (B1). S (T, n) logits, live
 * (n) 1 for a column the softmax may use, Vb (n, Dh) values. Writes O (T, Dh) and dS (T, n) for
 * dO (T, Dh), and adds dVb (n, Dh). A row without a live column gets o = 0. */
static void ref_attend(int T, int n, const double *S, const double *live, const double *Vb,
                       const float *dO, double *O, double *dS, double *dVb)
{
    double *p = lra_alloc((size_t)2 * n * sizeof(double), "reference row"), *dp = p + n;
    for (int i = 0; i < T; i++) {
        double mx = -INFINITY, sum = 0.0, d = 0.0;
        for (int j = 0; j < n; j++)
            if (live[j] != 0.0) mx = fmax(mx, S[(size_t)i * n + j]);
        for (int j = 0; j < n; j++) {
            p[j] = live[j] != 0.0 ? exp(S[(size_t)i * n + j] - mx) : 0.0;
            sum += p[j];
        }
        for (int j = 0; j < n; j++) p[j] = sum > 0.0 ? p[j] / sum : 0.0;
        for (int e = 0; e < DIM; e++) {
            O[i * DIM + e] = 0.0;
            for (int j = 0; j < n; j++) O[i * DIM + e] += p[j] * Vb[j * DIM + e];
        }
        for (int j = 0; j < n; j++) {
            dp[j] = 0.0;
            for (int e = 0; e < DIM; e++) {
                dp[j] += (double)dO[i * DIM + e] * Vb[j * DIM + e];
                dVb[j * DIM + e] += p[j] * dO[i * DIM + e];
            }
            d += p[j] * dp[j];
        }
        for (int j = 0; j < n; j++) dS[(size_t)i * n + j] = p[j] * (dp[j] - d);
    }
    lra_free(p);
}

/* Exact softmax attention of the whole run (attention-variants.md §1), into f. */
static void ref_softmax(const run *r, ref *f)
{
    const int T = r->T;
    const double s = 1.0 / sqrt((double)DIM);
    double *S = lra_alloc((size_t)2 * T * T * sizeof(double), "reference"), *dS = S + T * T;
    double *live = lra_alloc((size_t)T * (1 + DIM) * sizeof(double), "reference"), *V = live + T;
    memset(f->dq, 0, 3 * r->nx * sizeof(double));
    for (int bh = 0; bh < BATCH * HEADS; bh++) {
        const size_t base = (size_t)bh * T * DIM;
        const float *q = r->q + base, *k = r->k + base;
        for (int j = 0; j < T; j++) live[j] = r->mask[bh / HEADS * T + j];
        for (int i = 0; i < T * DIM; i++) V[i] = r->v[base + i];
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) {
                double acc = 0.0;
                for (int e = 0; e < DIM; e++) acc += (double)q[i * DIM + e] * k[j * DIM + e];
                S[i * T + j] = s * acc;
            }
        ref_attend(T, T, S, live, V, r->r + base, f->o + base, dS, f->dv + base);
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++)
                for (int e = 0; e < DIM; e++) {
                    f->dq[base + i * DIM + e] += s * dS[i * T + j] * k[j * DIM + e];
                    f->dk[base + j * DIM + e] += s * dS[i * T + j] * q[i * DIM + e];
                }
    }
    lra_free(live);
    lra_free(S);
}

/* Linformer's options as the reference reads them. */
typedef struct lin_cfg {
    int k, share, mask_keys; /* share: 0 layer, 1 kv, 2 none, the option's choice order */
} lin_cfg;

/* Projection of one slice: Xm = m∘X (T, Dh) and Xb = E[:, :T] Xm (k, Dh). */
static void ref_project(const run *r, const lin_cfg *c, const float *E, const float *X,
                        const float *m, double *Xm, double *Xb)
{
    const int N = r->ctx.shape.max_len;
    for (int j = 0; j < r->T; j++)
        for (int e = 0; e < DIM; e++)
            Xm[j * DIM + e] = !c->mask_keys || m[j] != 0.0f ? X[j * DIM + e] : 0.0;
    for (int u = 0; u < c->k; u++)
        for (int e = 0; e < DIM; e++) {
            double acc = 0.0;
            for (int j = 0; j < r->T; j++) acc += (double)E[(size_t)u * N + j] * Xm[j * DIM + e];
            Xb[u * DIM + e] = acc;
        }
}

/* Backward of ref_project given dXb (k, Dh): dE[:, :T] += dXb Xmᵀ, dX += m ∘ (E[:, :T]ᵀ dXb). */
static void ref_project_backward(const run *r, const lin_cfg *c, const float *E, const double *Xm,
                                 const float *m, const double *dXb, double *dE, double *dX)
{
    const int N = r->ctx.shape.max_len;
    for (int u = 0; u < c->k; u++)
        for (int j = 0; j < r->T; j++)
            for (int e = 0; e < DIM; e++) {
                dE[(size_t)u * N + j] += dXb[u * DIM + e] * Xm[j * DIM + e];
                if (!c->mask_keys || m[j] != 0.0f)
                    dX[j * DIM + e] += (double)E[(size_t)u * N + j] * dXb[u * DIM + e];
            }
}

/* Linformer (attention-variants.md §5) straight from the definitions, into f. A projection is
 * live when a real token contributes to it (see attention/linformer.c); always, without mask. */
static void ref_linformer(const run *r, const lin_cfg *c, ref *f)
{
    const int T = r->T, N = r->ctx.shape.max_len, K = c->k;
    const size_t mat = (size_t)K * N, TD = (size_t)T * DIM, kD = (size_t)K * DIM;
    const double s = 1.0 / sqrt((double)DIM);
    double *w = lra_alloc((4 * TD + 5 * kD + 2 * (size_t)T * K + K) * sizeof(double), "ref");
    double *Km = w, *Vm = Km + TD, *Kb = Vm + TD, *Vb = Kb + kD, *dKb = Vb + kD, *dVb = dKb + kD;
    double *S = dVb + kD, *dS = S + (size_t)T * K, *live = dS + (size_t)T * K;
    memset(f->dq, 0, (3 * r->nx + r->sz.n_params) * sizeof(double));
    for (int bh = 0; bh < BATCH * HEADS; bh++) {
        const int h = bh % HEADS;
        const size_t base = (size_t)bh * TD;
        const float *m = r->mask + bh / HEADS * T, *q = r->q + base;
        const int ei = c->share == 0 ? 0 : c->share == 1 ? h : 2 * h, fi = ei + (c->share == 2);
        const float *E = r->ctx.params + ei * mat, *F = r->ctx.params + fi * mat;
        ref_project(r, c, E, r->k + base, m, Km, Kb);
        ref_project(r, c, F, r->v + base, m, Vm, Vb);
        for (int u = 0; u < K; u++) {
            live[u] = !c->mask_keys;
            for (int j = 0; j < T; j++) live[u] += m[j] != 0.0f && E[(size_t)u * N + j] != 0.0f;
        }
        for (int i = 0; i < T; i++)
            for (int u = 0; u < K; u++) {
                double acc = 0.0;
                for (int e = 0; e < DIM; e++) acc += (double)q[i * DIM + e] * Kb[u * DIM + e];
                S[i * K + u] = s * acc;
            }
        memset(dVb, 0, kD * sizeof(double));
        ref_attend(T, K, S, live, Vb, r->r + base, f->o + base, dS, dVb);
        memset(dKb, 0, kD * sizeof(double));
        for (int i = 0; i < T; i++)
            for (int u = 0; u < K; u++)
                for (int e = 0; e < DIM; e++) {
                    f->dq[base + i * DIM + e] += s * dS[i * K + u] * Kb[u * DIM + e];
                    dKb[u * DIM + e] += s * dS[i * K + u] * q[i * DIM + e];
                }
        ref_project_backward(r, c, E, Km, m, dKb, f->dp + ei * mat, f->dk + base);
        ref_project_backward(r, c, F, Vm, m, dVb, f->dp + fi * mat, f->dv + base);
    }
    lra_free(w);
}

/* Synthesizer's options as the reference reads them. */
typedef struct syn_cfg {
    int mode, k, dot; /* mode: 0 random, 1 factorized, 2 dense, the option's choice order */
} syn_cfg;

/* Offsets of head h's dense-mode tensors in the parameters (layout in attention/synthesizer.c):
 * W1 (H, Dh, Dh), b1 (H, Dh), W2 (H, max_len, Dh), b2 (H, max_len). */
typedef struct dense_at {
    size_t W1, b1, W2, b2;
} dense_at;

static dense_at dense_offsets(int N, int h)
{
    const size_t H = HEADS, D = DIM;
    return (dense_at){.W1 = h * D * D, .b1 = H * D * D + h * D,
                      .W2 = H * (D * D + D) + (size_t)h * N * D,
                      .b2 = H * (D * D + D + (size_t)N * D) + (size_t)h * N};
}

/* The synthetic logits of head h, B (T, T), with dense mode's hidden layer Z (T, Dh). */
static void ref_synthetic(const run *r, const syn_cfg *c, int h, const float *q, double *B,
                          double *Z)
{
    const int T = r->T, N = r->ctx.shape.max_len, K = c->k;
    const float *p = r->ctx.params;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            double acc = 0.0;
            if (c->mode == 0) acc = p[((size_t)h * N + i) * N + j];
            for (int u = 0; c->mode == 1 && u < K; u++)
                acc += (double)p[((size_t)h * N + i) * K + u] *
                       p[(size_t)HEADS * N * K + ((size_t)h * N + j) * K + u];
            B[i * T + j] = acc;
        }
    if (c->mode != 2) return;
    const dense_at at = dense_offsets(N, h);
    const float *W1 = p + at.W1, *b1 = p + at.b1, *W2 = p + at.W2, *b2 = p + at.b2;
    for (int i = 0; i < T; i++) {
        for (int o = 0; o < DIM; o++) {
            double z = b1[o];
            for (int e = 0; e < DIM; e++) z += (double)W1[o * DIM + e] * q[i * DIM + e];
            Z[i * DIM + o] = z;
        }
        for (int j = 0; j < T; j++) {
            double acc = b2[j];
            for (int o = 0; o < DIM; o++) acc += W2[j * DIM + o] * fmax(Z[i * DIM + o], 0.0);
            B[i * T + j] += acc;
        }
    }
}

/* Backward of ref_synthetic for dB = dS: adds the parameter gradients of head h and, in dense
 * mode, dq. */
static void ref_synthetic_backward(const run *r, const syn_cfg *c, int h, const float *q,
                                   const double *dS, const double *Z, double *dp, double *dq)
{
    const int T = r->T, N = r->ctx.shape.max_len, K = c->k;
    const float *p = r->ctx.params;
    const size_t nr1 = (size_t)HEADS * N * K;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            const double g = dS[i * T + j];
            if (c->mode == 0) dp[((size_t)h * N + i) * N + j] += g;
            for (int u = 0; c->mode == 1 && u < K; u++) {
                dp[((size_t)h * N + i) * K + u] += g * p[nr1 + ((size_t)h * N + j) * K + u];
                dp[nr1 + ((size_t)h * N + j) * K + u] += g * p[((size_t)h * N + i) * K + u];
            }
        }
    if (c->mode != 2) return;
    const dense_at at = dense_offsets(N, h);
    const size_t oW1 = at.W1, ob1 = at.b1, oW2 = at.W2, ob2 = at.b2;
    for (int i = 0; i < T; i++)
        for (int o = 0; o < DIM; o++) {
            const double a = fmax(Z[i * DIM + o], 0.0);
            double da = 0.0;
            for (int j = 0; j < T; j++) {
                dp[oW2 + j * DIM + o] += dS[i * T + j] * a;
                da += dS[i * T + j] * p[oW2 + j * DIM + o];
            }
            const double dz = Z[i * DIM + o] > 0.0 ? da : 0.0;
            dp[ob1 + o] += dz;
            for (int e = 0; e < DIM; e++) {
                dp[oW1 + o * DIM + e] += dz * q[i * DIM + e];
                dq[i * DIM + e] += dz * p[oW1 + o * DIM + e];
            }
        }
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) dp[ob2 + j] += dS[i * T + j];
}

/* Synthesizer (attention-variants.md §8) straight from the definitions, into f. */
static void ref_synthesizer(const run *r, const syn_cfg *c, ref *f)
{
    const int T = r->T;
    const size_t TT = (size_t)T * T, TD = (size_t)T * DIM;
    const double s = 1.0 / sqrt((double)DIM);
    double *w = lra_alloc((2 * TT + 2 * TD + T) * sizeof(double), "reference");
    double *S = w, *dS = S + TT, *Z = dS + TT, *V = Z + TD, *live = V + TD;
    memset(f->dq, 0, (3 * r->nx + r->sz.n_params) * sizeof(double));
    for (int bh = 0; bh < BATCH * HEADS; bh++) {
        const int h = bh % HEADS;
        const size_t base = (size_t)bh * TD;
        const float *q = r->q + base, *k = r->k + base;
        for (int j = 0; j < T; j++) live[j] = r->mask[bh / HEADS * T + j];
        for (size_t i = 0; i < TD; i++) V[i] = r->v[base + i];
        ref_synthetic(r, c, h, q, S, Z);
        for (int i = 0; c->dot && i < T; i++)
            for (int j = 0; j < T; j++) {
                double acc = 0.0;
                for (int e = 0; e < DIM; e++) acc += (double)q[i * DIM + e] * k[j * DIM + e];
                S[i * T + j] += s * acc;
            }
        ref_attend(T, T, S, live, V, r->r + base, f->o + base, dS, f->dv + base);
        for (int i = 0; c->dot && i < T; i++)
            for (int j = 0; j < T; j++)
                for (int e = 0; e < DIM; e++) {
                    f->dq[base + i * DIM + e] += s * dS[i * T + j] * k[j * DIM + e];
                    f->dk[base + j * DIM + e] += s * dS[i * T + j] * q[i * DIM + e];
                }
        ref_synthetic_backward(r, c, h, q, dS, Z, f->dp, f->dq + base);
    }
    lra_free(w);
}

/* Compares out, dq, dk, dv and dparams with the reference; one line. */
static void check_against(run *r, const ref *f, const char *what)
{
    atest_run_gradients(r);
    const float *got[] = {r->out, r->dq, r->dk, r->dv, r->ctx.dparams};
    const double *want[] = {f->o, f->dq, f->dk, f->dv, f->dp};
    const size_t n[] = {r->nx, r->nx, r->nx, r->nx, r->sz.n_params};
    double err[5];
    int ok = 1;
    for (int i = 0; i < 5; i++) {
        err[i] = n[i] ? atest_rel_err(got[i], want[i], n[i]) : 0.0;
        ok &= err[i] <= TOL_REFERENCE;
    }
    atest_check(ok, what, "rel err out %.1e, dq %.1e, dk %.1e, dv %.1e, dparams %.1e", err[0],
                err[1], err[2], err[3], err[4]);
}

/* ---- linformer ---------------------------------------------------------------------------- */

static const char *const share_names[] = {"layer", "kv", "none"};

static void linformer_reference_checks(void)
{
    for (int share = 0; share < 3; share++)
        for (int mk = 1; mk >= 0; mk--) {
            const lin_cfg c = {.k = 12, .share = share, .mask_keys = mk};
            char opt[96], what[192];
            snprintf(opt, sizeof opt, "k=12,share=%s,mask_keys=%d", share_names[share], mk);
            run r;
            run_open(&r, "linformer", 37, 40, 1, opt);
            ref f = ref_alloc(&r);
            ref_linformer(&r, &c, &f);
            snprintf(what, sizeof what, "linformer T=37 max_len=40 %s: double reference", opt);
            check_against(&r, &f, what);
            ref_free(&f);
            atest_run_close(&r);
        }
}

/* mask_keys=false (LRA's code) differs from true only where padding exists. */
static void linformer_mask_keys_check(void)
{
    for (int padded = 0; padded <= 1; padded++) {
        run a, b;
        run_open(&a, "linformer", 37, 40, padded, "k=12,mask_keys=true");
        run_open(&b, "linformer", 37, 40, padded, "k=12,mask_keys=false");
        atest_run_forward(&a);
        atest_run_forward(&b);
        double *ya = lra_alloc(a.nx * sizeof(double), "test");
        for (size_t i = 0; i < a.nx; i++) ya[i] = a.out[i];
        const double d = atest_rel_err(b.out, ya, a.nx);
        const int ok = padded ? d > 1e-3 : !memcmp(a.out, b.out, a.nx * sizeof(float));
        atest_check(ok, padded ? "linformer mask_keys=false differs with padding"
                               : "linformer mask_keys=false identical without padding",
                    "rel diff %.2e", d);
        lra_free(ya);
        atest_run_close(&a);
        atest_run_close(&b);
    }
}

/* k = max_len with E = F = I is softmax attention, also when len < max_len. */
static void linformer_identity_check(int len, int max_len)
{
    char opt[64], what[128];
    snprintf(opt, sizeof opt, "k=%d,init=identity", max_len);
    run r;
    run_open(&r, "linformer", len, max_len, 1, opt);
    ref f = ref_alloc(&r);
    ref_softmax(&r, &f);
    memset(f.dp, 0, r.sz.n_params * sizeof(double)); /* not compared: softmax has no params */
    atest_run_gradients(&r);
    memset(r.ctx.dparams, 0, r.sz.n_params * sizeof(float));
    const float *got[] = {r.out, r.dq, r.dk, r.dv};
    const double *want[] = {f.o, f.dq, f.dk, f.dv};
    double worst = 0.0;
    for (int i = 0; i < 4; i++) worst = fmax(worst, atest_rel_err(got[i], want[i], r.nx));
    snprintf(what, sizeof what, "linformer identity limit = softmax (T=%d, max_len=%d)", len,
             max_len);
    atest_check(worst <= TOL_REFERENCE, what, "worst rel err over out, dq, dk, dv %.2e", worst);
    ref_free(&f);
    atest_run_close(&r);
}

/* Parameters are sized by max_len and sliced to len: columns ≥ len get no gradient and do not
 * change the output; columns of padded tokens get no gradient either (mask_keys). */
static void linformer_slicing_check(void)
{
    enum { LEN = 20, MAXLEN = 32 };
    run r;
    run_open(&r, "linformer", LEN, MAXLEN, 1, "k=6,share=none");
    atest_run_gradients(&r);
    /* Batch 0 is unpadded, so every column < len is real in some sequence. */
    int zero_beyond = 1, live_real = 1;
    for (size_t u = 0; u < r.sz.n_params / MAXLEN; u++)
        for (int j = 0; j < MAXLEN; j++) {
            const float g = r.ctx.dparams[u * MAXLEN + j];
            if (j >= LEN)
                zero_beyond &= g == 0.0f;
            else
                live_real &= g != 0.0f;
        }
    atest_check(zero_beyond && live_real, "linformer len=20 max_len=32: dE, dF zero beyond len",
                "columns >= len all zero: %s; real columns non-zero: %s",
                zero_beyond ? "yes" : "no", live_real ? "yes" : "no");

    float *before = atest_floats(r.nx);
    memcpy(before, r.out, r.nx * sizeof(float));
    for (size_t u = 0; u < r.sz.n_params / MAXLEN; u++)
        for (int j = LEN; j < MAXLEN; j++) r.ctx.params[u * MAXLEN + j] = 1e3f;
    atest_run_forward(&r);
    atest_check(!memcmp(before, r.out, r.nx * sizeof(float)),
                "linformer len=20 max_len=32: columns >= len unused", "outputs bit-identical");
    lra_free(before);
    atest_run_close(&r);
}

/* With mask_keys, a column of E whose token is padded in every sequence gets no gradient:
 * both batches padded alike (tokens 2 and 30..36), share=layer, len 37 < max_len 40. */
static void linformer_padded_columns_check(void)
{
    enum { LEN = 37, MAXLEN = 40, K = 12 };
    run r;
    run_open(&r, "linformer", LEN, MAXLEN, 1, "k=12,share=layer");
    for (int t = 0; t < LEN; t++) r.mask[t] = r.mask[LEN + t]; /* both batches padded alike */
    atest_run_gradients(&r);
    int ok = 1;
    for (int u = 0; u < K; u++)
        for (int j = 0; j < MAXLEN; j++) {
            const float g = r.ctx.dparams[u * MAXLEN + j];
            ok &= (j < LEN && r.mask[j] != 0.0f) ? g != 0.0f : g == 0.0f;
        }
    atest_check(ok, "linformer mask_keys: padded and >= len columns of dE are zero",
                "padded tokens 2, 30..36; len 37, max_len 40");
    atest_run_close(&r);
}

/* The approximation error against exact softmax attention at initialisation, printed. No bound:
 * with a random E the projections mix tokens, and Linformer is not meant to match softmax until
 * E is learned; the identity row shows the limit. */
static void linformer_error_vs_softmax(void)
{
    const char *const opts[] = {"k=4", "k=8", "k=16", "k=32", "k=37,init=identity"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        run r;
        run_open(&r, "linformer", 37, 37, 1, opts[i]);
        ref f = ref_alloc(&r);
        ref_softmax(&r, &f);
        atest_run_forward(&r);
        const double e = atest_rel_frobenius(r.out, f.o, r.nx);
        char what[128];
        snprintf(what, sizeof what, "linformer %s vs exact softmax (T=37)", opts[i]);
        atest_check(isfinite(e) && (i + 1 < sizeof opts / sizeof opts[0] || e < 1e-6), what,
                    "measured |O - O_softmax|_F / |O_softmax|_F = %.3e", e);
        ref_free(&f);
        atest_run_close(&r);
    }
}

/* ---- synthesizer -------------------------------------------------------------------------- */

static const char *const mode_names[] = {"random", "factorized", "dense"};

static void synthesizer_reference_checks(void)
{
    for (int mode = 0; mode < 3; mode++)
        for (int dot = 1; dot >= 0; dot--) {
            const syn_cfg c = {.mode = mode, .k = 6, .dot = dot};
            char opt[96], what[192];
            snprintf(opt, sizeof opt, "mode=%s,k=6,dot=%d", mode_names[mode], dot);
            run r;
            run_open(&r, "synthesizer", 37, 40, 1, opt);
            ref f = ref_alloc(&r);
            ref_synthesizer(&r, &c, &f);
            snprintf(what, sizeof what, "synthesizer T=37 max_len=40 %s: double reference", opt);
            check_against(&r, &f, what);
            ref_free(&f);
            atest_run_close(&r);
        }
}

/* init_zero with the dot product is softmax attention in every mode. */
static void synthesizer_zero_limit_checks(void)
{
    for (int mode = 0; mode < 3; mode++) {
        char opt[96], what[192];
        snprintf(opt, sizeof opt, "mode=%s,k=6,init_zero=true", mode_names[mode]);
        run r;
        run_open(&r, "synthesizer", 37, 40, 1, opt);
        ref f = ref_alloc(&r);
        ref_softmax(&r, &f);
        atest_run_gradients(&r);
        const float *got[] = {r.out, r.dq, r.dk, r.dv};
        const double *want[] = {f.o, f.dq, f.dk, f.dv};
        double worst = 0.0;
        for (int i = 0; i < 4; i++) worst = fmax(worst, atest_rel_err(got[i], want[i], r.nx));
        snprintf(what, sizeof what, "synthesizer %s = softmax", opt);
        atest_check(worst <= TOL_REFERENCE, what, "worst rel err over out, dq, dk, dv %.2e", worst);
        ref_free(&f);
        atest_run_close(&r);
    }
}

/* Random mode at len=20, max_len=32: dR is zero outside [:len, :len]. Batch 0 is unpadded, so
 * every entry inside gets a gradient. */
static void synthesizer_slicing_check(void)
{
    enum { LEN = 20, MAXLEN = 32 };
    run r;
    run_open(&r, "synthesizer", LEN, MAXLEN, 1, "mode=random");
    atest_run_gradients(&r);
    int zero_beyond = 1, nonzero_inside = 1;
    for (int h = 0; h < HEADS; h++)
        for (int i = 0; i < MAXLEN; i++)
            for (int j = 0; j < MAXLEN; j++) {
                const float g = r.ctx.dparams[((size_t)h * MAXLEN + i) * MAXLEN + j];
                if (i >= LEN || j >= LEN)
                    zero_beyond &= g == 0.0f;
                else
                    nonzero_inside &= g != 0.0f;
            }
    atest_check(zero_beyond && nonzero_inside, "synthesizer len=20 max_len=32: dR sliced",
                "outside [:len, :len] zero: %s; inside non-zero: %s", zero_beyond ? "yes" : "no",
                nonzero_inside ? "yes" : "no");
    atest_run_close(&r);
}

/* Without the dot product the key mask still applies: padded keys and values change nothing. */
static void synthesizer_mask_without_dot_check(void)
{
    run r;
    run_open(&r, "synthesizer", 37, 40, 1, "mode=random,dot=false");
    atest_run_forward(&r);
    float *before = atest_floats(r.nx);
    memcpy(before, r.out, r.nx * sizeof(float));
    for (int h = 0; h < HEADS; h++)
        for (int t = 0; t < r.T; t++)
            if (r.mask[r.T + t] == 0.0f) {
                const size_t at = (((size_t)1 * HEADS + h) * r.T + t) * DIM;
                atest_fill_uniform(r.k + at, DIM, lra_key(TEST_SEED, 50 + at), 5.0f);
                atest_fill_uniform(r.v + at, DIM, lra_key(TEST_SEED, 60 + at), 5.0f);
            }
    atest_run_forward(&r);
    atest_check(!memcmp(before, r.out, r.nx * sizeof(float)),
                "synthesizer dot=false: padded keys and values ignored", "outputs bit-identical");
    lra_free(before);
    atest_run_close(&r);
}

/* Dense mode with the ReLU gate frozen by the unperturbed pass: finite differences on q and on
 * the parameters agree with backward. */
static void synthesizer_dense_gradcheck(void)
{
    run r;
    run_open(&r, "synthesizer", 37, 40, 1, "mode=dense");
    r.ctx.freeze_choices = 0;
    atest_run_gradients(&r);
    r.ctx.freeze_choices = 1;
    lra_gradcheck_opts o = lra_gradcheck_defaults();
    const struct {
        const char *name;
        float *x;
        const float *g;
        size_t n;
    } in[] = {{"q", r.q, r.dq, r.nx}, {"params", r.ctx.params, r.ctx.dparams, r.sz.n_params}};
    for (int i = 0; i < 2; i++) {
        const lra_gradcheck_result g =
            lra_gradcheck(atest_run_loss, &r, in[i].x, in[i].g, in[i].n, &o);
        char what[96];
        snprintf(what, sizeof what, "synthesizer dense, frozen gate: gradient check %s",
                 in[i].name);
        atest_check(g.verdict != LRA_GC_FAIL, what, "worst rel err %.2e (fd %+.6e, analytic %+.6e)",
                    g.worst_rel, g.fd_at_worst, g.an_at_worst);
    }
    r.ctx.freeze_choices = 0;
    atest_run_close(&r);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    linformer_reference_checks();
    linformer_mask_keys_check();
    linformer_identity_check(8, 8);
    linformer_identity_check(37, 37);
    linformer_identity_check(20, 32);
    linformer_slicing_check();
    linformer_padded_columns_check();
    linformer_error_vs_softmax();
    synthesizer_reference_checks();
    synthesizer_zero_limit_checks();
    synthesizer_slicing_check();
    synthesizer_mask_without_dot_check();
    synthesizer_dense_gradcheck();
    return atest_summary();
}
