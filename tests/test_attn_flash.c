/* test_attn_flash.c — flash (tiled exact attention) against softmax, at shapes the generic
 * harness does not reach.
 *
 * tests/test_attn.c already checks flash at T = 8, where one tile covers everything. Here flash
 * and softmax run on the same inputs, mask, seed and step at T = 1, 7, 64, 100, 257 and 1000
 * (257 and 1000 end in partial tiles of the default size; other sizes below), Dh = 4, 32, 64,
 * in evaluation and with attention dropout 0.1, with padding that includes whole padded key
 * tiles and a batch entry whose keys are all padded:
 *  - forward: max |out_flash − out_softmax| / max |out_softmax| <= TOL_FORWARD;
 *  - backward: the same for dq, dk and dv (dout random) <= TOL_BACKWARD;
 *  - the all-padded batch entry gives exactly 0 in out, dq, dk and dv;
 *  - non-default tiles (1×1, tiles longer than T, odd sizes) and a non-default scale;
 *  - 1 and 2 threads give bit-identical results (work is split by slice only);
 *  - n_cache grows linearly in T (and so does cache + scratch), as softmax's (row chunks) do;
 *  - the default tiles do not divide T = 257 and 1000, so those cases end in partial tiles.
 * It also prints (does not check) forward and backward times of both at B 2, H 2, T 2048, Dh 32,
 * after checking that their outputs agree there too.
 *
 * Output: one line per check ("PASS|FAIL flash: what — detail"), then "N passed, N failed".
 * Exit status 1 on any failure.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_testlib.h"
#include "lra_attention.h"
#include "lra_rng.h"
#include "options.h"
#include "platform.h"
#include "registry.h"
#include "util.h"

/* Tolerances, relative to the largest reference value of each buffer, at the default logit
 * scale 1/sqrt(Dh) (logits of standard deviation about 1.3 here). The two variants round in
 * float32 in different orders: S = s·Q Kᵀ from BLAS calls of other shapes, per-tile maxima and
 * rescaling, a polynomial exp of about 1 ulp against libm's expf, float tile sums against
 * softmax's double row sums. Measured worst over the cases below (see the summary line): forward
 * about 1.2e-6, backward about 1.0e-6; either variant is that far from a double-precision
 * reference too (softmax up to 5e-6 at T 1000, Dh 32), flash no farther than softmax.
 * The rounding of S grows with the size of the logits, and so does the difference: the
 * tolerances scale with s·sqrt(Dh) when s is above the default (scale=0.75 at Dh 32: 1.6e-6
 * measured, 4.2× the default logits). */
static const double TOL_FORWARD = 2e-6;
static const double TOL_BACKWARD = 1e-5;

static const uint64_t TEST_SEED = 20240612; /* inputs, dout and padding */
static const uint64_t CTX_SEED = 42;
static const uint64_t CTX_STEP = 7;

/* One variant on (B, H, T, Dh) with the inputs and padding of atest_run_fill_padded(TEST_SEED),
 * which are therefore the same for flash and softmax at the same shape. r is dout. */
typedef atest_run run;

/* Sets variant `name` up with options `opts` ("name=value,..." or NULL), attention dropout and
 * threads. Dies on a rejection: every set-up here is meant to be valid. */
static void run_open(run *r, const char *name, int B, int H, int T, int D, const char *opts,
                     float dropout, int threads)
{
    const lra_attn_ctx settings = {
        .shape = {.batch = B, .heads = H, .len = T, .dim = D, .max_len = T},
        .seed = CTX_SEED,
        .step = CTX_STEP,
        .training = dropout > 0.0f,
        .dropout = dropout,
        .threads = threads,
    };
    atest_run_open_or_die(r, name, &settings, opts);
    atest_run_fill_padded(r, TEST_SEED);
}

/* Fresh gradients for dout: backward into zeroed dq, dk, dv, after a forward. */
static void run_backward(run *r)
{
    memset(r->dq, 0, r->nx * sizeof(float));
    memset(r->dk, 0, r->nx * sizeof(float));
    memset(r->dv, 0, r->nx * sizeof(float));
    r->a->backward(&r->ctx, r->q, r->k, r->v, r->out, r->r, r->dq, r->dk, r->dv);
}

/* max |x − y| / scale, with scale = max |y| unless given (> 0); a NaN anywhere gives INFINITY. */
static double rel_diff_to(const float *x, const float *y, size_t n, double scale)
{
    if (!(scale > 0.0)) scale = atest_max_abs(y, n);
    return atest_max_diff_f(x, y, n) / fmax(scale, 1e-30);
}

static double worst_forward, worst_backward; /* relative to the widened tolerance's base */

/* The logit scale in effect for a run: its `scale` option, or 1/sqrt(Dh) when that is 0. */
static double ref_scale(const run *r)
{
    char buf[64] = "0";
    for (const lra_attn_option *o = r->a->options; o && o->name; o++)
        if (strcmp(o->name, "scale") == 0) lra_opts_get(o, r->ctx.priv, buf, sizeof buf);
    const double s = strtod(buf, NULL);
    return s > 0.0 ? s : 1.0 / sqrt((double)r->ctx.shape.dim);
}

/* flash against softmax on one shape: forward, backward, and the all-padded batch entry.
 * `both` ("name=value,..." or NULL) goes to both variants, `tiles` to flash only. */
static void check_case(int B, int H, int T, int D, float dropout, const char *both,
                       const char *tiles)
{
    char opts[128];
    snprintf(opts, sizeof opts, "%s%s%s", both ? both : "", both && tiles ? "," : "",
             tiles ? tiles : "");
    run ref, got;
    run_open(&ref, "softmax", B, H, T, D, both, dropout, 2);
    run_open(&got, "flash", B, H, T, D, opts, dropout, 2);
    atest_run_gradients(&ref);
    atest_run_gradients(&got);
    const size_t nx = ref.nx;

    char what[160];
    snprintf(what, sizeof what, "B %d H %d T %d Dh %d dropout %.1f%s%s", B, H, T, D, dropout,
             *opts ? " " : "", opts);
    /* Larger logits round more coarsely in S: widen by s·sqrt(Dh) above the default. */
    const double widen = fmax(1.0, ref_scale(&ref) * sqrt((double)D));
    const double tol_fwd = TOL_FORWARD * widen, tol_bwd = TOL_BACKWARD * widen;
    /* With one key per query (T = 1) P = 1 and dq = dk = 0 exactly in softmax, which sums
     * D = Σ P dP over the same dP; flash's D = do·o rounds differently and leaves dS at rounding
     * level. A gradient whose reference is exactly 0 is therefore measured against |dv|. */
    const double vscale = atest_max_abs(ref.dv, nx);
    const double fwd = atest_rel_err_f(got.out, ref.out, nx);
    const double bq = rel_diff_to(got.dq, ref.dq, nx, atest_max_abs(ref.dq, nx) > 0 ? 0 : vscale);
    const double bk = rel_diff_to(got.dk, ref.dk, nx, atest_max_abs(ref.dk, nx) > 0 ? 0 : vscale);
    const double bv = atest_rel_err_f(got.dv, ref.dv, nx);
    const double bwd = fmax(bq, fmax(bk, bv));
    char line[200];
    snprintf(line, sizeof line, "%s: forward", what);
    atest_check(fwd <= tol_fwd, line, "out rel err %.2e (tol %.1e)", fwd, tol_fwd);
    snprintf(line, sizeof line, "%s: backward", what);
    atest_check(bwd <= tol_bwd, line, "rel err dq %.2e, dk %.2e, dv %.2e (tol %.1e)", bq, bk, bv,
                tol_bwd);
    worst_forward = fmax(worst_forward, fwd / widen);
    worst_backward = fmax(worst_backward, bwd / widen);

    if (B >= 3) {
        /* Batch entry 2 has no real key: o = 0 and no gradient reaches its q, k or v. */
        const size_t from = 2 * (size_t)H * T * D, n = nx - from;
        double mx = 0.0;
        const float *bufs[] = {got.out, got.dq, got.dk, got.dv};
        for (int i = 0; i < 4; i++)
            for (size_t j = 0; j < n; j++) mx = fmax(mx, fabs((double)bufs[i][from + j]));
        snprintf(line, sizeof line, "%s: all-padded batch entry gives 0", what);
        atest_check(mx == 0.0, line, "max |out, dq, dk, dv| there %.2e", mx);
    }
    atest_run_close(&ref);
    atest_run_close(&got);
}

/* Work is split by (batch, head) slice only, so 1 and 2 threads give bit-identical results
 * when the process's threads are set as the runner sets them (lra_set_threads: OpenMP and
 * OpenBLAS alike). Left at 2 OpenBLAS threads, a 1-thread context's BLAS calls run outside an
 * active parallel region, and OpenBLAS splits the larger tiles over its own threads, which
 * rounds differently (softmax alike). */
static void check_threads(void)
{
    const int threads = lra_threads();
    run one, two;
    run_open(&one, "flash", 3, 2, 257, 32, NULL, 0.1f, 1);
    run_open(&two, "flash", 3, 2, 257, 32, NULL, 0.1f, 2);
    lra_set_threads(1);
    atest_run_gradients(&one);
    lra_set_threads(2);
    atest_run_gradients(&two);
    lra_set_threads(threads);
    const size_t bytes = one.nx * sizeof(float);
    const int same = !memcmp(one.out, two.out, bytes) && !memcmp(one.dq, two.dq, bytes) &&
                     !memcmp(one.dk, two.dk, bytes) && !memcmp(one.dv, two.dv, bytes);
    atest_check(same, "1 and 2 threads bit-identical", "B 3 H 2 T 257 Dh 32 dropout 0.1");
    atest_run_close(&one);
    atest_run_close(&two);
}

/* Float counts of variant `name` at length T (B 2, H 2, Dh 32, default options). */
static lra_attn_sizes sizes_at(const char *name, int T)
{
    const lra_attention *a = lra_attn_find(name);
    LRA_ASSERT(a);
    lra_attn_ctx c = {.shape = {.batch = 2, .heads = 2, .len = T, .dim = 32, .max_len = T}};
    char why[256];
    LRA_ASSERT(atest_ctx_options(&c, a, NULL, why, sizeof why) == 0);
    lra_attn_sizes sz;
    a->sizes(&c, &sz);
    lra_free(c.priv);
    return sz;
}

/* flash keeps O(T) floats from forward to backward; so does softmax at its default row chunks
 * (tests/test_attn_softmax_rows.c checks its rows = 0 form, which is quadratic). */
static void check_memory(void)
{
    const lra_attn_sizes f1 = sizes_at("flash", 1024), f2 = sizes_at("flash", 2048);
    const lra_attn_sizes s1 = sizes_at("softmax", 1024), s2 = sizes_at("softmax", 2048);
    const double cache = (double)f2.n_cache / (double)f1.n_cache;
    const double total = (double)(f2.n_cache + f2.n_scratch) / (double)(f1.n_cache + f1.n_scratch);
    const double sm = (double)(s2.n_cache + s2.n_scratch) / (double)(s1.n_cache + s1.n_scratch);
    atest_check(cache <= 2.01, "n_cache linear in T",
                "T 2048 / T 1024 = %.3f (%zu floats at T 2048), limit 2.01", cache, f2.n_cache);
    atest_check(total <= 2.01, "n_cache + n_scratch linear in T",
                "T 2048 / T 1024 = %.3f (%zu floats at T 2048), limit 2.01", total,
                f2.n_cache + f2.n_scratch);
    atest_check(sm <= 2.01, "softmax's n_cache + n_scratch linear in T too",
                "T 2048 / T 1024 = %.3f (%zu floats at T 2048), limit 2.01", sm,
                s2.n_cache + s2.n_scratch);
}

/* The default of option `name` of variant `variant`. */
static int option_default(const char *variant, const char *name)
{
    const lra_attention *a = lra_attn_find(variant);
    LRA_ASSERT(a && a->options);
    for (const lra_attn_option *o = a->options; o->name; o++)
        if (strcmp(o->name, name) == 0) return (int)o->def;
    lra_die("%s has no option '%s'", variant, name);
}

/* The comparisons run with the default tiles; at T = 257 and 1000 those leave a partial last
 * tile of queries and of keys (at T <= the tile size the tile is clamped to T). */
static void check_default_tiles(void)
{
    const int bq = option_default("flash", "block_q"), bk = option_default("flash", "block_k");
    const int lens[] = {257, 1000};
    int partial = 1;
    for (int i = 0; i < 2; i++)
        partial &= lens[i] > bq && lens[i] > bk && lens[i] % bq != 0 && lens[i] % bk != 0;
    atest_check(partial, "default tiles leave partial tiles",
                "block_q %d, block_k %d at T = 257 and 1000", bq, bk);
}

/* Forward and backward time, best of `reps`, of variant `name` at B 2, H 2, T 2048, Dh 32, no
 * padding; out gets its output. Printed for information; timing is not a pass/fail criterion. */
static void time_variant(const char *name, int reps, double *fwd, double *bwd, float *out)
{
    run r;
    run_open(&r, name, 2, 2, 2048, 32, NULL, 0.0f, omp_get_max_threads());
    for (size_t i = 0; i < (size_t)2 * 2048; i++) r.mask[i] = 1.0f;
    *fwd = *bwd = INFINITY;
    for (int i = 0; i < reps; i++) {
        const double t0 = lra_now();
        atest_run_forward(&r);
        const double t1 = lra_now();
        run_backward(&r);
        const double t2 = lra_now();
        *fwd = fmin(*fwd, t1 - t0);
        *bwd = fmin(*bwd, t2 - t1);
    }
    memcpy(out, r.out, r.nx * sizeof(float));
    atest_run_close(&r);
}

static void report_timing(void)
{
    const size_t nx = (size_t)2 * 2 * 2048 * 32;
    float *o_ref = atest_floats(nx), *o_got = atest_floats(nx);
    double sf, sb, ff, fb;
    time_variant("softmax", 3, &sf, &sb, o_ref);
    time_variant("flash", 3, &ff, &fb, o_got);
    const double fwd = atest_rel_err_f(o_got, o_ref, nx);
    atest_check(fwd <= TOL_FORWARD, "B 2 H 2 T 2048 Dh 32 (timing run): forward",
                "out rel err %.2e (tol %.0e)", fwd, TOL_FORWARD);
    printf("     time at B 2, H 2, T 2048, Dh 32, %d threads (best of 3): softmax forward %.1f "
           "ms, backward %.1f ms; flash forward %.1f ms, backward %.1f ms "
           "(flash/softmax forward+backward %.2f)\n", omp_get_max_threads(), 1e3 * sf, 1e3 * sb,
           1e3 * ff, 1e3 * fb, (ff + fb) / (sf + sb));
    lra_free(o_ref);
    lra_free(o_got);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    atest_line_prefix("flash: ");
    if (!lra_attn_find("flash") || !lra_attn_find("softmax")) {
        printf("FAIL flash: registry — flash or softmax is not registered\n0 passed, 1 failed\n");
        return 1;
    }
    const int lens[] = {1, 7, 64, 100, 257, 1000};
    const int dims[] = {4, 32, 64};
    const float drops[] = {0.0f, 0.1f};
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++)
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
            for (size_t p = 0; p < sizeof drops / sizeof drops[0]; p++)
                check_case(3, 2, lens[t], dims[d], drops[p], NULL, NULL);
    /* Other tiles: single entries, odd sizes, tiles longer than T; and a non-default scale. */
    check_case(3, 2, 37, 8, 0.1f, NULL, "block_q=1,block_k=1");
    check_case(3, 2, 100, 32, 0.1f, NULL, "block_q=16,block_k=48");
    check_case(3, 2, 100, 32, 0.0f, NULL, "block_q=7,block_k=300");
    check_case(3, 2, 257, 32, 0.1f, NULL, "block_q=256,block_k=256");
    check_case(3, 2, 100, 32, 0.1f, "scale=0.75", NULL);
    printf("     flash vs softmax: worst forward %.2e, worst backward %.2e\n", worst_forward,
           worst_backward);
    check_threads();
    check_memory();
    check_default_tiles();
    report_timing();
    return atest_summary();
}
