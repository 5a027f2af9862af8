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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int n_pass, n_fail;

LRA_PRINTF(3, 4) static void report(int ok, const char *what, const char *fmt, ...)
{
    char detail[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("%s flash: %s — %s\n", ok ? "PASS" : "FAIL", what, detail);
    if (ok)
        n_pass++;
    else
        n_fail++;
}

/* The inputs shared by both variants: q, k, v, dout (B, H, T, Dh) and the key mask (B, T). */
typedef struct problem {
    lra_attn_shape shape;
    size_t nx;                 /* B·H·T·Dh */
    float *q, *k, *v, *dout;   /* (B, H, T, Dh) q, k in (−2, 2); v, dout in (−1, 1) */
    float *mask;               /* (B, T) */
} problem;

/* One variant set up on a problem, with its own outputs and gradients. */
typedef struct run {
    const lra_attention *a;
    lra_attn_ctx ctx;
    lra_attn_sizes sz;
    float *out, *dq, *dk, *dv; /* (B, H, T, Dh) */
} run;

static float *floats(size_t n) { return lra_alloc((n ? n : 1) * sizeof(float), "test buffer"); }

static void fill_uniform(float *x, size_t n, uint64_t key, float amplitude)
{
    for (size_t i = 0; i < n; i++) x[i] = amplitude * (2.0f * lra_uniform(key, i) - 1.0f);
}

/* Random inputs. Padding: batch entry 0 has none; entry 1 pads its last 40% of keys (whole
 * key tiles at long T) and a random 20% of the rest, keeping key 0; entry 2, if any, pads all. */
static problem problem_make(int B, int H, int T, int D)
{
    problem pr = {.shape = {.batch = B, .heads = H, .len = T, .dim = D, .max_len = T},
                  .nx = (size_t)B * H * T * D};
    const uint64_t key = lra_key(lra_key(TEST_SEED, (uint64_t)T), (uint64_t)D);
    float **bufs[] = {&pr.q, &pr.k, &pr.v, &pr.dout};
    const float amplitude[] = {2.0f, 2.0f, 1.0f, 1.0f};
    for (int i = 0; i < 4; i++) {
        *bufs[i] = floats(pr.nx);
        fill_uniform(*bufs[i], pr.nx, lra_key(key, (uint64_t)i), amplitude[i]);
    }
    pr.mask = floats((size_t)B * T);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int real = 1;
            if (b == 1)
                real = t == 0 || (t < 0.6 * T && lra_uniform(lra_key(key, 9), (uint64_t)t) >= 0.2f);
            else if (b >= 2)
                real = 0;
            pr.mask[(size_t)b * T + t] = (float)real;
        }
    return pr;
}

static void problem_free(problem *pr)
{
    void *bufs[] = {pr->q, pr->k, pr->v, pr->dout, pr->mask};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
}

/* Sets variant `name` up on pr: default options, then `opts` ("name=value,..."), then init.
 * Dies on a rejection: every set-up here is meant to be valid. */
static void run_open(run *r, const char *name, const problem *pr, const char *opts, float dropout,
                     int threads)
{
    memset(r, 0, sizeof *r);
    r->a = lra_attn_find(name);
    if (!r->a) lra_die("no attention variant named '%s' is registered", name);
    lra_attn_ctx *c = &r->ctx;
    c->shape = pr->shape;
    c->priv = lra_alloc(r->a->priv_size ? r->a->priv_size : 1, "plugin options");
    lra_opts_defaults(r->a->options, c->priv);
    char buf[256], why[256] = "";
    snprintf(buf, sizeof buf, "%s", opts ? opts : "");
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        LRA_ASSERT(eq);
        *eq = 0;
        if (lra_opts_set(r->a->options, c->priv, kv, eq + 1, why, sizeof why) != 0)
            lra_die("%s: %s", name, why);
    }
    c->key_mask = pr->mask;
    c->seed = CTX_SEED;
    c->step = CTX_STEP;
    c->training = dropout > 0.0f;
    c->dropout = dropout;
    c->threads = threads;
    r->a->sizes(c, &r->sz);
    c->params = floats(r->sz.n_params);
    c->dparams = floats(r->sz.n_params);
    c->state = floats(r->sz.n_state);
    c->cache = floats(r->sz.n_cache);
    c->scratch = floats(r->sz.n_scratch);
    r->out = floats(pr->nx);
    r->dq = floats(pr->nx);
    r->dk = floats(pr->nx);
    r->dv = floats(pr->nx);
    if (r->a->init(c, why, sizeof why) != LRA_ATTN_OK) lra_die("%s: init: %s", name, why);
}

static void run_close(run *r)
{
    lra_attn_ctx *c = &r->ctx;
    if (r->a->free) r->a->free(c);
    void *bufs[] = {c->priv, c->params, c->dparams, c->state, c->cache, c->scratch, r->out,
                    r->dq, r->dk, r->dv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
}

static void run_forward(run *r, const problem *pr)
{
    r->a->forward(&r->ctx, pr->q, pr->k, pr->v, r->out);
}

/* Fresh gradients for dout: backward into zeroed dq, dk, dv, after run_forward. */
static void run_backward(run *r, const problem *pr)
{
    memset(r->dq, 0, pr->nx * sizeof(float));
    memset(r->dk, 0, pr->nx * sizeof(float));
    memset(r->dv, 0, pr->nx * sizeof(float));
    r->a->backward(&r->ctx, pr->q, pr->k, pr->v, r->out, pr->dout, r->dq, r->dk, r->dv);
}

static double max_abs(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

/* max |x − y| / scale, with scale = max |y| unless given (> 0); a NaN anywhere gives INFINITY. */
static double rel_diff_to(const float *x, const float *y, size_t n, double scale)
{
    double err = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)x[i] - y[i]);
        if (!(d <= err)) err = isnan(d) ? INFINITY : d;
    }
    if (!(scale > 0.0)) scale = max_abs(y, n);
    return err / fmax(scale, 1e-30);
}

static double rel_diff(const float *x, const float *y, size_t n)
{
    return rel_diff_to(x, y, n, 0.0);
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
    problem pr = problem_make(B, H, T, D);
    char opts[128];
    snprintf(opts, sizeof opts, "%s%s%s", both ? both : "", both && tiles ? "," : "",
             tiles ? tiles : "");
    run ref, got;
    run_open(&ref, "softmax", &pr, both, dropout, 2);
    run_open(&got, "flash", &pr, opts, dropout, 2);
    run_forward(&ref, &pr);
    run_backward(&ref, &pr);
    run_forward(&got, &pr);
    run_backward(&got, &pr);

    char what[160];
    snprintf(what, sizeof what, "B %d H %d T %d Dh %d dropout %.1f%s%s", B, H, T, D, dropout,
             *opts ? " " : "", opts);
    /* Larger logits round more coarsely in S: widen by s·sqrt(Dh) above the default. */
    const double widen = fmax(1.0, ref_scale(&ref) * sqrt((double)D));
    const double tol_fwd = TOL_FORWARD * widen, tol_bwd = TOL_BACKWARD * widen;
    /* With one key per query (T = 1) P = 1 and dq = dk = 0 exactly in softmax, which sums
     * D = Σ P dP over the same dP; flash's D = do·o rounds differently and leaves dS at rounding
     * level. A gradient whose reference is exactly 0 is therefore measured against |dv|. */
    const double vscale = max_abs(ref.dv, pr.nx);
    const double fwd = rel_diff(got.out, ref.out, pr.nx);
    const double bq = rel_diff_to(got.dq, ref.dq, pr.nx, max_abs(ref.dq, pr.nx) > 0 ? 0 : vscale);
    const double bk = rel_diff_to(got.dk, ref.dk, pr.nx, max_abs(ref.dk, pr.nx) > 0 ? 0 : vscale);
    const double bv = rel_diff(got.dv, ref.dv, pr.nx);
    const double bwd = fmax(bq, fmax(bk, bv));
    char line[200];
    snprintf(line, sizeof line, "%s: forward", what);
    report(fwd <= tol_fwd, line, "out rel err %.2e (tol %.1e)", fwd, tol_fwd);
    snprintf(line, sizeof line, "%s: backward", what);
    report(bwd <= tol_bwd, line, "rel err dq %.2e, dk %.2e, dv %.2e (tol %.1e)", bq, bk, bv,
           tol_bwd);
    worst_forward = fmax(worst_forward, fwd / widen);
    worst_backward = fmax(worst_backward, bwd / widen);

    if (B >= 3) {
        /* Batch entry 2 has no real key: o = 0 and no gradient reaches its q, k or v. */
        const size_t from = 2 * (size_t)H * T * D, n = pr.nx - from;
        double mx = 0.0;
        const float *bufs[] = {got.out, got.dq, got.dk, got.dv};
        for (int i = 0; i < 4; i++)
            for (size_t j = 0; j < n; j++) mx = fmax(mx, fabs((double)bufs[i][from + j]));
        snprintf(line, sizeof line, "%s: all-padded batch entry gives 0", what);
        report(mx == 0.0, line, "max |out, dq, dk, dv| there %.2e", mx);
    }
    run_close(&ref);
    run_close(&got);
    problem_free(&pr);
}

/* Work is split by (batch, head) slice only, so 1 and 2 threads give bit-identical results
 * when the process's threads are set as the runner sets them (lra_set_threads: OpenMP and
 * OpenBLAS alike). Left at 2 OpenBLAS threads, a 1-thread context's BLAS calls run outside an
 * active parallel region, and OpenBLAS splits the larger tiles over its own threads, which
 * rounds differently (softmax alike). */
static void check_threads(void)
{
    problem pr = problem_make(3, 2, 257, 32);
    const int threads = lra_threads();
    run one, two;
    run_open(&one, "flash", &pr, NULL, 0.1f, 1);
    run_open(&two, "flash", &pr, NULL, 0.1f, 2);
    lra_set_threads(1);
    run_forward(&one, &pr);
    run_backward(&one, &pr);
    lra_set_threads(2);
    run_forward(&two, &pr);
    run_backward(&two, &pr);
    lra_set_threads(threads);
    const size_t bytes = pr.nx * sizeof(float);
    const int same = !memcmp(one.out, two.out, bytes) && !memcmp(one.dq, two.dq, bytes) &&
                     !memcmp(one.dk, two.dk, bytes) && !memcmp(one.dv, two.dv, bytes);
    report(same, "1 and 2 threads bit-identical", "B 3 H 2 T 257 Dh 32 dropout 0.1");
    run_close(&one);
    run_close(&two);
    problem_free(&pr);
}

/* Float counts of variant `name` at length T (B 2, H 2, Dh 32, default options). */
static lra_attn_sizes sizes_at(const char *name, int T)
{
    const lra_attention *a = lra_attn_find(name);
    LRA_ASSERT(a);
    lra_attn_ctx c = {.shape = {.batch = 2, .heads = 2, .len = T, .dim = 32, .max_len = T}};
    c.priv = lra_alloc(a->priv_size ? a->priv_size : 1, "plugin options");
    lra_opts_defaults(a->options, c.priv);
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
    report(cache <= 2.01, "n_cache linear in T",
           "T 2048 / T 1024 = %.3f (%zu floats at T 2048), limit 2.01", cache, f2.n_cache);
    report(total <= 2.01, "n_cache + n_scratch linear in T",
           "T 2048 / T 1024 = %.3f (%zu floats at T 2048), limit 2.01", total,
           f2.n_cache + f2.n_scratch);
    report(sm <= 2.01, "softmax's n_cache + n_scratch linear in T too",
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
    report(partial, "default tiles leave partial tiles", "block_q %d, block_k %d at T = 257 and "
           "1000", bq, bk);
}

/* Forward and backward time, best of `reps`, of variant `name` at B 2, H 2, T 2048, Dh 32.
 * Printed for information; timing is not a pass/fail criterion. */
static void time_variant(const char *name, const problem *pr, int reps, double *fwd, double *bwd,
                         float *out)
{
    run r;
    run_open(&r, name, pr, NULL, 0.0f, omp_get_max_threads());
    *fwd = *bwd = INFINITY;
    for (int i = 0; i < reps; i++) {
        const double t0 = lra_now();
        run_forward(&r, pr);
        const double t1 = lra_now();
        run_backward(&r, pr);
        const double t2 = lra_now();
        *fwd = fmin(*fwd, t1 - t0);
        *bwd = fmin(*bwd, t2 - t1);
    }
    memcpy(out, r.out, pr->nx * sizeof(float));
    run_close(&r);
}

static void report_timing(void)
{
    problem pr = problem_make(2, 2, 2048, 32);
    for (size_t i = 0; i < (size_t)2 * 2048; i++) pr.mask[i] = 1.0f; /* no padding */
    float *o_ref = floats(pr.nx), *o_got = floats(pr.nx);
    double sf, sb, ff, fb;
    time_variant("softmax", &pr, 3, &sf, &sb, o_ref);
    time_variant("flash", &pr, 3, &ff, &fb, o_got);
    const double fwd = rel_diff(o_got, o_ref, pr.nx);
    report(fwd <= TOL_FORWARD, "B 2 H 2 T 2048 Dh 32 (timing run): forward",
           "out rel err %.2e (tol %.0e)", fwd, TOL_FORWARD);
    printf("     time at B 2, H 2, T 2048, Dh 32, %d threads (best of 3): softmax forward %.1f "
           "ms, backward %.1f ms; flash forward %.1f ms, backward %.1f ms "
           "(flash/softmax forward+backward %.2f)\n", omp_get_max_threads(), 1e3 * sf, 1e3 * sb,
           1e3 * ff, 1e3 * fb, (ff + fb) / (sf + sb));
    lra_free(o_ref);
    lra_free(o_got);
    problem_free(&pr);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
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
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
