/* test_attn.c — the checks every registered attention variant must pass (style.md §7).
 *
 * For each variant in the registry, at 1 and at 2 OpenMP threads, on B = 2, H = 2, T = 8, Dh = 4
 * with the last 3 keys of batch 1 padded:
 *  - directional gradient checks of L = Σ out∘R, one set of directions per input (q, k, v,
 *    parameters), in evaluation and with attention dropout 0.25 (fixed seed and step, so the
 *    mask is fixed);
 *  - two runs at the same thread count give bit-identical outputs and gradients;
 *  - padded keys and values cannot change any output; (batch, head) slices are independent;
 *  - with dropout, swapping the two batch rows and passing their ids in ctx->seq_id swaps the
 *    outputs and gradients (per-slice draws are keyed by the sequence, not by its row);
 *  - backward adds into dq, dk and dv;
 *  - LRA_ATTN_EXACT variants match a double-precision softmax attention written here, forward
 *    and backward, also with a `scale` option when they have one, and give 0 for a batch whose
 *    keys are all padded;
 *  - the mean output over many dropout masks approaches the output without dropout.
 * Every descriptor also passes lra_attn_validate, and names are unique.
 *
 * Output: one line per check ("PASS|WARN|FAIL variant t=N: what — detail"), then
 * "N passed, N failed". Exit status 1 on any failure.
 *
 * --plant NAME runs the checks of variant NAME twice, each time with a bug planted in the
 * gradients its backward returns: (1) dq and dk multiplied by sqrt(Dh), the 1/sqrt(d) scale
 * dropped from backward (style.md §7); (2) the dk rows of two keys swapped. Each bug must make
 * at least one check fail. Exit status 1 means every planted bug was caught (meson registers
 * this run with should_fail); 0 means one slipped through, which turns that test red.
 *
 * Plugins: the .so files named by LRA_PLUGIN_PATH (colon-separated files or directories) are
 * loaded first and checked like the built-ins. LRA_ATTN_ONLY=name[,name...] limits the
 * per-variant checks to those variants (the descriptor checks still run over all of them).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_testlib.h"
#include "gradcheck.h"
#include "lra_attention.h"
#include "lra_rng.h"
#include "registry.h"
#include "util.h"

enum { BATCH = 2, HEADS = 2, LEN = 8, DIM = 4, N_PADDED = 3 };
#define NX ((size_t)BATCH * HEADS * LEN * DIM) /* floats in each of q, k, v, out */

static const uint64_t TEST_SEED = 20240611; /* inputs and R */
static const uint64_t CTX_SEED = 42;        /* ctx->seed: the plugin's fixed draws */
static const uint64_t CTX_STEP = 7;         /* ctx->step: the plugin's per-step draws */

/* Tolerances: reference comparisons relative to the largest reference value; 1e-6 where the
 * result should be equal up to reordering of float sums. */
static const double TOL_REFERENCE = 1e-5;
static const double TOL_REORDER = 1e-6;

/* Per-variant gradient-check overrides. A non-smooth variant (LRA_ATTN_NONSMOOTH: buckets,
 * top-k, arg-max) must freeze its discrete choices when ctx->training == 0 and the seed is
 * fixed, so that the finite differences see a smooth function. Where that is impossible, an
 * entry here may loosen its check, at most to warn level (tol_pass up to 1e-2), with a comment
 * saying why. Empty for now. */
static const struct gc_override {
    const char *name;
    double eps, tol_pass, tol_warn;
} gc_overrides[] = {
    /* {.name = "example", .eps = 1e-2, .tol_pass = 1e-2, .tol_warn = 1e-2}, -- why */
    {.name = NULL},
};

typedef enum { PLANT_NONE, PLANT_SCALE, PLANT_SWAP } plant_kind;
static const char *const plant_names[] = {
    [PLANT_NONE] = "none",
    [PLANT_SCALE] = "dq, dk times sqrt(Dh)",
    [PLANT_SWAP] = "dk rows of keys 1 and 5 swapped",
};
static plant_kind plant = PLANT_NONE;

/* The worst errors seen for the current variant, printed in its summary line. */
static double worst_gc, worst_ref_fwd, worst_ref_bwd;

/* One variant set up on the test shape (BATCH, HEADS, LEN, DIM: NX floats per buffer), with its
 * inputs (q, k in (−2, 2), v in (−1, 1)), r (the weights of L = Σ out∘r, hence dout = r) and
 * gradient buffers. */
typedef atest_run harness;

/* One backward's increment of dq, dk and dv, to plant a bug in. */
static float plant_dq[NX], plant_dk[NX], plant_dv[NX];

static size_t at(int b, int h, int t) { return (((size_t)b * HEADS + h) * LEN + t) * DIM; }

/* Sets variant a up: options at their defaults, then the variant's check_options, then `opt`
 * ("name=value,...") if given. Returns 0, or 1 with the reason in why when the options or init
 * reject the set-up. */
static int harness_open(harness *h, const lra_attention *a, int threads, float dropout,
                        const char *opt, char *why, size_t whylen)
{
    char opts[512];
    snprintf(opts, sizeof opts, "%s%s%s", a->check_options ? a->check_options : "",
             a->check_options && opt ? "," : "", opt ? opt : "");
    const lra_attn_ctx settings = {
        .shape = {.batch = BATCH, .heads = HEADS, .len = LEN, .dim = DIM, .max_len = LEN},
        .seed = CTX_SEED,
        .step = CTX_STEP,
        .training = dropout > 0.0f,
        .dropout = dropout,
        .threads = threads,
    };
    if (atest_run_open(h, a, &settings, opts, why, whylen)) return 1;
    atest_run_pad_last_keys(h, N_PADDED); /* BATCH = 2: batch 1's last N_PADDED keys */
    /* q and k in (−2, 2), not (−1, 1): the logits then have a spread of about 1.3 instead of
     * 0.33, so attention is not nearly uniform. Near-uniform attention makes the q and k
     * gradients so small that float32 rounding of the loss (about 2e-5 on a finite difference
     * at eps = 1e-2) dominates the directional checks. */
    atest_run_fill(h, TEST_SEED, 2.0f);
    return a->init(&h->ctx, why, whylen) == LRA_ATTN_OK ? 0 : 1;
}

/* One backward pass with dout = r, adding into dq, dk, dv and dparams, as the plugin would. With
 * a planted bug the increment goes through tq, tk, tv, where the bug is applied. */
static void backward(harness *h)
{
    if (plant == PLANT_NONE) {
        h->a->backward(&h->ctx, h->q, h->k, h->v, h->out, h->r, h->dq, h->dk, h->dv);
        return;
    }
    float *tq = plant_dq, *tk = plant_dk, *tv = plant_dv;
    memset(tq, 0, NX * sizeof(float));
    memset(tk, 0, NX * sizeof(float));
    memset(tv, 0, NX * sizeof(float));
    h->a->backward(&h->ctx, h->q, h->k, h->v, h->out, h->r, tq, tk, tv);
    if (plant == PLANT_SCALE) {
        const float c = sqrtf((float)DIM);
        for (size_t i = 0; i < NX; i++) {
            tq[i] *= c;
            tk[i] *= c;
        }
    } else {
        float *k1 = tk + at(0, 0, 1), *k5 = tk + at(0, 0, 5);
        for (int e = 0; e < DIM; e++) {
            const float t = k1[e];
            k1[e] = k5[e];
            k5[e] = t;
        }
    }
    for (size_t i = 0; i < NX; i++) {
        h->dq[i] += tq[i];
        h->dk[i] += tk[i];
        h->dv[i] += tv[i];
    }
}

/* Fresh gradients at the current inputs: zero, forward, backward (with the planted bug). */
static void gradients(harness *h)
{
    memset(h->dq, 0, NX * sizeof(float));
    memset(h->dk, 0, NX * sizeof(float));
    memset(h->dv, 0, NX * sizeof(float));
    if (h->sz.n_params) memset(h->ctx.dparams, 0, h->sz.n_params * sizeof(float));
    atest_run_forward(h);
    backward(h);
}

static void check_gradients(harness *h, const char *when)
{
    lra_gradcheck_opts o = lra_gradcheck_defaults();
    for (const struct gc_override *ov = gc_overrides; ov->name; ov++)
        if (strcmp(ov->name, h->a->name) == 0) {
            o.eps = ov->eps;
            o.tol_pass = ov->tol_pass;
            o.tol_warn = ov->tol_warn;
        }
    /* ctx->seed and ctx->step stay fixed, so the random draws of stochastic variants and the
     * dropout mask are the same at every evaluation of the loss. Non-smooth variants make their
     * discrete choices once, in this unperturbed pass, and reuse them while perturbed. */
    h->ctx.freeze_choices = 0;
    gradients(h);
    h->ctx.freeze_choices = (h->a->flags & LRA_ATTN_NONSMOOTH) != 0;
    const struct {
        const char *name;
        float *x;
        const float *g;
        size_t n;
    } in[] = {
        {"q", h->q, h->dq, NX},
        {"k", h->k, h->dk, NX},
        {"v", h->v, h->dv, NX},
        {"params", h->ctx.params, h->ctx.dparams, h->sz.n_params},
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        if (in[i].n == 0) continue;
        const lra_gradcheck_result r =
            lra_gradcheck(atest_run_loss, h, in[i].x, in[i].g, in[i].n, &o);
        char what[64];
        snprintf(what, sizeof what, "gradient check %s%s", in[i].name, when);
        atest_verdict(r.verdict, what, "worst rel err %.2e (fd %+.6e, analytic %+.6e)", r.worst_rel,
                      r.fd_at_worst, r.an_at_worst);
        worst_gc = fmax(worst_gc, r.worst_rel);
    }
    h->ctx.freeze_choices = 0;
}

/* Two runs at the same thread count give bit-identical outputs and gradients. */
static void check_repeatable(harness *h, const char *when)
{
    float o1[NX], q1[NX], k1[NX], v1[NX];
    gradients(h);
    memcpy(o1, h->out, sizeof o1);
    memcpy(q1, h->dq, sizeof q1);
    memcpy(k1, h->dk, sizeof k1);
    memcpy(v1, h->dv, sizeof v1);
    gradients(h);
    const int same = !memcmp(o1, h->out, sizeof o1) && !memcmp(q1, h->dq, sizeof q1) &&
                     !memcmp(k1, h->dk, sizeof k1) && !memcmp(v1, h->dv, sizeof v1);
    char what[64];
    snprintf(what, sizeof what, "two runs bit-identical%s", when);
    atest_check(same, what, NULL);
}

/* Changing the keys and values at padded positions changes no output: bit-identical for
 * exact variants, within TOL_REORDER for the others (their sums may be ordered differently). */
static void check_padding(harness *h)
{
    float base[NX], k0[NX], v0[NX];
    atest_run_forward(h);
    memcpy(base, h->out, sizeof base);
    memcpy(k0, h->k, sizeof k0);
    memcpy(v0, h->v, sizeof v0);
    for (int b = 0; b < BATCH; b++)
        for (int t = 0; t < LEN; t++) {
            if (h->mask[b * LEN + t] != 0.0f) continue;
            for (int hh = 0; hh < HEADS; hh++) {
                const size_t x = at(b, hh, t);
                atest_fill_uniform(h->k + x, DIM, lra_key(TEST_SEED, 100 + x), 5);
                atest_fill_uniform(h->v + x, DIM, lra_key(TEST_SEED, 200 + x), 5);
            }
        }
    atest_run_forward(h);
    memcpy(h->k, k0, sizeof k0);
    memcpy(h->v, v0, sizeof v0);
    if (h->a->flags & LRA_ATTN_EXACT) {
        atest_check(!memcmp(base, h->out, sizeof base), "padded keys and values ignored",
                    "bit-identical outputs");
    } else {
        const double d = atest_rel_err_f(h->out, base, NX);
        atest_check(d <= TOL_REORDER, "padded keys and values ignored", "rel diff %.2e", d);
    }
}

/* Perturbing q, k and v of slice (b = 1, h = 1) leaves every other slice's output
 * bit-identical. */
static void check_slices(harness *h)
{
    float base[NX], q0[NX], k0[NX], v0[NX];
    atest_run_forward(h);
    memcpy(base, h->out, sizeof base);
    memcpy(q0, h->q, sizeof q0);
    memcpy(k0, h->k, sizeof k0);
    memcpy(v0, h->v, sizeof v0);
    const size_t off = at(1, 1, 0), n = (size_t)LEN * DIM;
    atest_fill_uniform(h->q + off, n, lra_key(TEST_SEED, 301), 1.0f);
    atest_fill_uniform(h->k + off, n, lra_key(TEST_SEED, 302), 1.0f);
    atest_fill_uniform(h->v + off, n, lra_key(TEST_SEED, 303), 1.0f);
    atest_run_forward(h);
    memcpy(h->q, q0, sizeof q0);
    memcpy(h->k, k0, sizeof k0);
    memcpy(h->v, v0, sizeof v0);
    const int same = !memcmp(base, h->out, off * sizeof(float)) &&
                     !memcmp(base + off + n, h->out + off + n, (NX - off - n) * sizeof(float));
    atest_check(same, "slices independent", "perturbed (b=1, h=1), others bit-identical");
}

/* Swaps batch rows 0 and 1 of x (n floats a row). */
static void swap_rows(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float t = x[i];
        x[i] = x[n + i];
        x[n + i] = t;
    }
}

/* Swaps the two batch rows of everything a forward and backward read and write. */
static void swap_batch(harness *h)
{
    float *bufs[] = {h->q, h->k, h->v, h->r, h->out, h->dq, h->dk, h->dv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) swap_rows(bufs[i], NX / BATCH);
    swap_rows(h->mask, LEN);
}

/* Random draws follow the sequence, not its row in the call: with the two rows swapped and
 * their global ids passed in ctx->seq_id, outputs and gradients are the swapped ones. This is
 * what lets a data-parallel shard draw what one process over the whole batch would; a plugin
 * keying a per-slice draw by bh instead of lra_attn_slice_id fails it (with dropout on). */
static void check_seq_ids(harness *h, const char *when)
{
    static const uint64_t swapped[BATCH] = {1, 0};
    const size_t np = h->sz.n_params;
    float *base = atest_floats(4 * NX + np); /* out, dq, dk, dv, dparams in the natural order */
    gradients(h);
    const float *now[] = {h->out, h->dq, h->dk, h->dv, h->ctx.dparams};
    const size_t n[] = {NX, NX, NX, NX, np};
    for (size_t i = 0, off = 0; i < 5; off += n[i], i++)
        if (n[i]) memcpy(base + off, now[i], n[i] * sizeof(float));
    swap_batch(h);
    h->ctx.seq_id = swapped;
    gradients(h);
    h->ctx.seq_id = NULL;
    swap_batch(h);
    double worst = 0.0;
    for (size_t i = 0, off = 0; i < 5; off += n[i], i++)
        if (n[i]) worst = fmax(worst, atest_rel_err_f(now[i], base + off, n[i]));
    lra_free(base);
    atest_check(worst <= TOL_REORDER, "draws follow seq_id, not the row",
                "rows swapped%s: rel diff %.2e", when, worst);
}

/* Backward adds: a second backward on the same forward doubles dq, dk, dv (and dparams). */
static void check_accumulates(harness *h)
{
    const size_t np = h->sz.n_params;
    float *once = atest_floats(3 * NX + np); /* dq, dk, dv, dparams after one backward */
    gradients(h);
    memcpy(once, h->dq, NX * sizeof(float));
    memcpy(once + NX, h->dk, NX * sizeof(float));
    memcpy(once + 2 * NX, h->dv, NX * sizeof(float));
    if (np) memcpy(once + 3 * NX, h->ctx.dparams, np * sizeof(float));
    backward(h);
    const float *now[] = {h->dq, h->dk, h->dv, h->ctx.dparams};
    const size_t n[] = {NX, NX, NX, np};
    double *twice = lra_alloc((3 * NX + np) * sizeof(double), "test buffer");
    double worst = 0.0;
    for (size_t i = 0, off = 0; i < 4; off += n[i], i++) {
        for (size_t j = 0; j < n[i]; j++) twice[off + j] = 2.0 * once[off + j];
        if (n[i]) worst = fmax(worst, atest_rel_err(now[i], twice + off, n[i]));
    }
    lra_free(twice);
    lra_free(once);
    atest_check(worst <= TOL_REORDER, "backward accumulates", "2nd call doubles: rel %.2e",
                worst);
}

/* Softmax attention and its gradients for dout = r, in double, straight from the definitions
 * (attention-variants.md §1): o_i = Σ_j p_ij v_j over real keys; dv_j = Σ_i p_ij do_i;
 * dp_ij = do_i·v_j; ds_ij = p_ij (dp_ij − Σ_k p_ik dp_ik); dq_i = s Σ_j ds_ij k_j;
 * dk_j = s Σ_i ds_ij q_i. A query without real keys gets o = 0. */
static void reference(const harness *h, double s, double *o, double *gq, double *gk, double *gv)
{
    memset(gq, 0, NX * sizeof(double));
    memset(gk, 0, NX * sizeof(double));
    memset(gv, 0, NX * sizeof(double));
    for (int b = 0; b < BATCH; b++)
        for (int hh = 0; hh < HEADS; hh++) {
            const size_t base = at(b, hh, 0);
            const float *q = h->q + base, *k = h->k + base, *v = h->v + base, *dO = h->r + base;
            const float *m = h->mask + b * LEN;
            for (int i = 0; i < LEN; i++) {
                double p[LEN], mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < LEN; j++) {
                    p[j] = 0.0;
                    for (int e = 0; e < DIM; e++) p[j] += (double)q[i * DIM + e] * k[j * DIM + e];
                    p[j] *= s;
                    if (m[j] != 0.0f) mx = fmax(mx, p[j]);
                }
                for (int j = 0; j < LEN; j++) {
                    p[j] = m[j] != 0.0f ? exp(p[j] - mx) : 0.0;
                    sum += p[j];
                }
                for (int j = 0; j < LEN; j++) p[j] = sum > 0.0 ? p[j] / sum : 0.0;
                double dp[LEN], d = 0.0;
                for (int e = 0; e < DIM; e++) {
                    double acc = 0.0;
                    for (int j = 0; j < LEN; j++) acc += p[j] * v[j * DIM + e];
                    o[base + i * DIM + e] = acc;
                }
                for (int j = 0; j < LEN; j++) {
                    dp[j] = 0.0;
                    for (int e = 0; e < DIM; e++) {
                        dp[j] += (double)dO[i * DIM + e] * v[j * DIM + e];
                        gv[base + j * DIM + e] += p[j] * dO[i * DIM + e];
                    }
                    d += p[j] * dp[j];
                }
                for (int j = 0; j < LEN; j++) {
                    const double ds = p[j] * (dp[j] - d);
                    for (int e = 0; e < DIM; e++) {
                        gq[base + i * DIM + e] += s * ds * k[j * DIM + e];
                        gk[base + j * DIM + e] += s * ds * q[i * DIM + e];
                    }
                }
            }
        }
}

static void check_reference(harness *h, double s, const char *when)
{
    double *ref = malloc(4 * NX * sizeof(double)); /* o, dq, dk, dv: (B, H, T, Dh) each */
    reference(h, s, ref, ref + NX, ref + 2 * NX, ref + 3 * NX);
    gradients(h);
    const float *got[] = {h->out, h->dq, h->dk, h->dv};
    const char *name[] = {"out", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
        const double err = atest_rel_err(got[i], ref + i * NX, NX);
        char what[64];
        snprintf(what, sizeof what, "matches double reference: %s%s", name[i], when);
        atest_check(err <= TOL_REFERENCE, what, "max abs err / max |ref| = %.2e", err);
        if (i == 0)
            worst_ref_fwd = fmax(worst_ref_fwd, err);
        else
            worst_ref_bwd = fmax(worst_ref_bwd, err);
    }
    free(ref);
}

/* Exact variants: a batch whose keys are all padded gives o = 0 and no gradient for it. Other
 * variants: outputs and gradients stay finite. */
static void check_all_padded(harness *h)
{
    for (int t = 0; t < LEN; t++) h->mask[LEN + t] = 0.0f;
    gradients(h);
    for (int t = 0; t < LEN; t++) h->mask[LEN + t] = t >= LEN - N_PADDED ? 0.0f : 1.0f;
    const size_t b1 = at(1, 0, 0), n = NX - b1;
    const float *buf[] = {h->out, h->dq, h->dk, h->dv};
    int finite = 1;
    double mx = 0.0;
    for (int i = 0; i < 4; i++) {
        for (size_t j = 0; j < NX; j++) finite &= isfinite(buf[i][j]);
        mx = fmax(mx, atest_max_abs(buf[i] + b1, n));
    }
    if (h->a->flags & LRA_ATTN_EXACT)
        atest_check(finite && mx == 0.0, "all-padded batch gives 0", "max |value| %.2e", mx);
    else
        atest_check(finite, "all-padded batch stays finite", NULL);
}

/* With dropout the mean output over many steps approaches the output without dropout: each
 * element within 5 standard errors (plus rounding). A variant that ignores dropout passes. */
static void check_dropout_mean(harness *h)
{
    enum { STEPS = 500 };
    double base[NX], mean[NX] = {0}, sq[NX] = {0};
    lra_attn_ctx *c = &h->ctx;
    const float rate = c->dropout;
    c->training = 0;
    c->dropout = 0.0f;
    atest_run_forward(h);
    for (size_t i = 0; i < NX; i++) base[i] = h->out[i];
    c->training = 1;
    c->dropout = rate;
    for (int s = 0; s < STEPS; s++) {
        c->step = (uint64_t)s;
        atest_run_forward(h);
        for (size_t i = 0; i < NX; i++) {
            mean[i] += h->out[i];
            sq[i] += (double)h->out[i] * h->out[i];
        }
    }
    c->step = CTX_STEP;
    double worst = 0.0, scale = 0.0; /* worst |mean − base| in standard errors */
    for (size_t i = 0; i < NX; i++) scale = fmax(scale, fabs(base[i]));
    for (size_t i = 0; i < NX; i++) {
        mean[i] /= STEPS;
        const double var = fmax(sq[i] / STEPS - mean[i] * mean[i], 0.0);
        const double se = sqrt(var / STEPS) + TOL_REORDER * scale;
        worst = fmax(worst, fabs(mean[i] - base[i]) / se);
    }
    atest_check(worst <= 5.0, "dropout mean ~ no-dropout output",
                "worst |mean - ref| = %.1f standard errors over %d steps", worst, STEPS);
}

/* All checks of one variant at one thread count. */
static void run_variant(const lra_attention *a, int threads)
{
    char why[256] = "";
    harness h;
    atest_line_prefix("%s t=%d: ", a->name, threads);
    if (harness_open(&h, a, threads, 0.0f, NULL, why, sizeof why) != 0) {
        /* Every variant must be testable: check_options exists to make it fit this shape. */
        atest_check(0, "init", "rejected the test shape (set check_options in the "
                    "descriptor): %s", why);
        atest_run_close(&h);
        return;
    }
    check_repeatable(&h, "");
    check_gradients(&h, "");
    check_padding(&h);
    check_slices(&h);
    check_accumulates(&h);
    check_all_padded(&h);
    if (a->flags & LRA_ATTN_EXACT) check_reference(&h, 1.0 / sqrt((double)DIM), "");
    atest_run_close(&h);

    /* The reference comparison with a non-default scale, for exact variants that have one. */
    if (a->flags & LRA_ATTN_EXACT) {
        if (harness_open(&h, a, threads, 0.0f, "scale=0.75", why, sizeof why) == 0)
            check_reference(&h, 0.75, " (scale=0.75)");
        atest_run_close(&h);
    }

    /* A declared limit in which the variant equals softmax attention is verified here. */
    if (a->softmax_limit_options) {
        if (harness_open(&h, a, threads, 0.0f, a->softmax_limit_options, why, sizeof why) == 0)
            check_reference(&h, 1.0 / sqrt((double)DIM), " (softmax limit)");
        else
            atest_check(0, "softmax limit", "options '%s' rejected: %s",
                        a->softmax_limit_options, why);
        atest_run_close(&h);
    }

    /* Attention dropout: fixed seed and step give a fixed mask, so the gradient is exact. */
    if (harness_open(&h, a, threads, 0.25f, NULL, why, sizeof why) == 0) {
        check_repeatable(&h, " (dropout 0.25)");
        check_gradients(&h, " (dropout 0.25)");
        check_seq_ids(&h, " (dropout 0.25)");
        check_dropout_mean(&h);
    } else {
        atest_check(0, "init with dropout 0.25", "%s", why);
    }
    atest_run_close(&h);
}

/* Descriptor checks: lra_attn_validate, option defaults in range, names unique and equal to the
 * file names of built-ins. */
static void check_descriptors(void)
{
    int nb = 0;
    while (lra_builtin_attention[nb]) nb++;
    for (int i = 0; i < lra_attn_count(); i++) {
        const lra_attention *a = lra_attn_get(i);
        char err[256] = "";
        atest_line_prefix("%s: ", a->name ? a->name : "(null)");
        int ok = lra_attn_validate(a, err, sizeof err) == 0;
        for (int j = 0; ok && a->options && a->options[j].name; j++) {
            const lra_attn_option *o = &a->options[j];
            if (o->type != LRA_OPT_CHOICE && !(o->def >= o->min && o->def <= o->max)) {
                snprintf(err, sizeof err, "option '%s': default %g outside [%g, %g]", o->name,
                         o->def, o->min, o->max);
                ok = 0;
            }
        }
        if (ok && i < nb && strcmp(a->name, lra_builtin_attention_files[i]) != 0) {
            snprintf(err, sizeof err, "name differs from file attention/%s.c",
                     lra_builtin_attention_files[i]);
            ok = 0;
        }
        atest_check(ok, "descriptor valid", "%s", err);
        for (int j = 0; ok && j < i; j++)
            if (strcmp(a->name, lra_attn_get(j)->name) == 0) {
                atest_check(0, "name unique", "variants %d and %d share it", j, i);
                break;
            }
    }
}

/* All checks of one variant, at 1 and 2 threads, with its summary line. */
static void run_all_threads(const lra_attention *a)
{
    worst_gc = worst_ref_fwd = worst_ref_bwd = 0.0;
    for (int threads = 1; threads <= 2; threads++) run_variant(a, threads);
    printf("     %s: worst gradient check %.2e", a->name, worst_gc);
    if (a->flags & LRA_ATTN_EXACT)
        printf(", reference forward %.2e, backward %.2e", worst_ref_fwd, worst_ref_bwd);
    printf("\n");
}

int main(int argc, char **argv)
{
    const char *plant_target = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--plant") == 0 && i + 1 < argc) {
            plant_target = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--plant VARIANT]\n", argv[0]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Out-of-tree plugins named by LRA_PLUGIN_PATH get the same checks as the built-ins. A
     * plugin that does not load is a failure in both modes (--plant succeeds with status 1). */
    char load_err[512];
    if (lra_attn_load_env(load_err, sizeof load_err) != 0) {
        printf("FAIL LRA_PLUGIN_PATH: %s\n0 passed, 1 failed\n", load_err);
        return plant_target ? 0 : 1;
    }

    if (plant_target) {
        /* Exit 1 only if every planted bug made a check fail: that is this mode's success. */
        const lra_attention *a = lra_attn_find(plant_target);
        if (!a) {
            printf("--plant: no variant named '%s'; nothing was caught\n", plant_target);
            return 0;
        }
        int all_caught = 1;
        for (plant = PLANT_SCALE; plant <= PLANT_SWAP; plant++) {
            const int before = atest_failures();
            printf("== planted bug: %s\n", plant_names[plant]);
            run_all_threads(a);
            printf("== planted bug %s: %s by %d failing checks\n", plant_names[plant],
                   atest_failures() > before ? "caught" : "NOT CAUGHT",
                   atest_failures() - before);
            all_caught &= atest_failures() > before;
        }
        atest_summary();
        return all_caught ? 1 : 0;
    }

    check_descriptors();
    /* LRA_ATTN_ONLY=name[,name...] runs the per-variant checks of those variants only (e.g. a
     * plugin under development); the descriptor checks above still cover every variant. */
    const char *only = getenv("LRA_ATTN_ONLY");
    if (only && *only) {
        char list[512];
        snprintf(list, sizeof list, "%s", only);
        for (char *save = NULL, *n = strtok_r(list, ",", &save); n;
             n = strtok_r(NULL, ",", &save)) {
            const lra_attention *a = lra_attn_find(n);
            atest_line_prefix("%s: ", n);
            if (a)
                run_all_threads(a);
            else
                atest_check(0, "LRA_ATTN_ONLY", "no variant named '%s'", n);
        }
    } else {
        for (int i = 0; i < lra_attn_count(); i++) run_all_threads(lra_attn_get(i));
    }
    return atest_summary();
}
