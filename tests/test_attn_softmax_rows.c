/* test_attn_softmax_rows.c — softmax in chunks of query rows: every chunk size computes the same
 * attention, and memory grows linearly in T.
 *
 * attention/softmax.c processes each (batch, head) slice `rows` query rows at a time and keeps
 * only the row log-sum-exp from forward to backward; rows = 0 takes the whole slice at once (a
 * T × T score matrix, the materialised form). tests/test_attn.c checks the default at T = 8,
 * where one chunk covers everything. Here, on the same inputs, mask, seed and step, with padding
 * (a batch entry with none, one with 40% trailing and 20% scattered padded keys, one with all
 * keys padded), at T = 1, 7, 64, 100, 257 and Dh = 4, 32, in evaluation and with attention
 * dropout 0.1:
 *  - rows = 1, 7, 64, T against rows = 0: out, dq, dk and dv within TOL_ROWS of rows = 0,
 *    relative to the largest |value| of each buffer (dout random);
 *  - every chunk size against a double-precision reference computed here, with the dropout mask
 *    drawn from lra_rng as the contract specifies (key of seed, step and slice; counter i·T + j),
 *    within TOL_REF: the chunks not only agree with each other, they are right;
 *  - the all-padded batch entry gives exactly 0 in out, dq, dk and dv;
 *  - rows larger than T clamp to T: bit-identical to rows = 0;
 *  - a second backward after the same forward gives the same gradients (the cache is read only);
 *  - 1 and 2 threads give bit-identical results (work is split by slice only);
 *  - n_cache and n_cache + n_scratch grow linearly in T for rows > 0 (increments from T = 1024 to
 *    2048 to 4096 grow by <= 2.05), quadratically for rows = 0; flops do not depend on rows;
 *    and the Path-X shape (B 8, H 2, T 16384, default rows) needs well under 4 GiB.
 * It prints (does not check) forward + backward times at B 2, H 2, T 2048, Dh 32 for rows =
 * 0, 16, 64 and 256.
 *
 * Output: one line per check ("PASS|FAIL softmax_rows: what — detail"), then
 * "N passed, N failed". Exit status 1 on any failure.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_testlib.h"
#include "lra_attention.h"
#include "lra_rng.h"
#include "platform.h"
#include "registry.h"
#include "util.h"

/* Chunk sizes against rows = 0, relative to the largest |value| of each buffer. Every chunk size
 * does the same arithmetic on each row, but BLAS rounds blocks of other shapes differently (an
 * nr × T product S = s·Q_c Kᵀ or P̃ V is not computed like the same rows of a T × T one), and
 * dV and dK sum over the query rows chunk by chunk. Measured worst over the cases below (printed
 * in the summary line): 7.5e-7, as far as either is from the double reference; the tolerance
 * leaves room for other BLAS kernels. */
static const double TOL_ROWS = 2e-6;
/* Any chunk size against the double-precision reference: float32 rounding of S, the polynomial
 * exp (within 2 ulp of expf) and the products, at logits of standard deviation about 1.3.
 * Measured worst: 7.1e-7. */
static const double TOL_REF = 3e-6;

static const uint64_t TEST_SEED = 20240613; /* inputs, dout and padding */
static const uint64_t CTX_SEED = 42;
static const uint64_t CTX_STEP = 7;

static double worst_rows, worst_ref, worst_padded;

/* softmax on (B, H, T, Dh) with some options, on the inputs and padding of
 * atest_run_fill_padded(TEST_SEED): the same for every run at the same shape. r is dout. */
typedef atest_run run;

/* Sets softmax up with options `opts` ("name=value,..." or NULL), attention dropout and threads.
 * Dies on a rejection: every set-up here is meant to be valid. */
static void run_open(run *r, int B, int H, int T, int D, const char *opts, float dropout,
                     int threads)
{
    const lra_attn_ctx settings = {
        .shape = {.batch = B, .heads = H, .len = T, .dim = D, .max_len = T},
        .seed = CTX_SEED,
        .step = CTX_STEP,
        .training = dropout > 0.0f,
        .dropout = dropout,
        .threads = threads,
    };
    atest_run_open_or_die(r, "softmax", &settings, opts);
    atest_run_fill_padded(r, TEST_SEED);
}

/* out, dq, dk, dv of the reference, in double. */
typedef struct reference {
    double *out, *dq, *dk, *dv; /* (B, H, T, Dh) */
} reference;

/* Softmax attention with dropout, forward and backward, in double, straight from the
 * definitions: S = s·Q Kᵀ over the real keys, P = softmax(S), P̃ = P ∘ Z/(1−p), O = P̃ V;
 * dV = P̃ᵀ dO, dP = (dO Vᵀ) ∘ Z/(1−p), dS = P ∘ (dP − rowsum(P ∘ dP)), dQ = s·dS K,
 * dK = s·dSᵀ Q. Z_ij = [lra_uniform(key(seed, step, slice), i·T + j) >= p]. */
static reference reference_make(const run *r, float p)
{
    const int B = r->B, H = r->H, T = r->T, D = r->D;
    const double s = 1.0 / sqrt((double)D), inv_keep = 1.0 / (1.0 - (double)p);
    reference ref;
    double **bufs[] = {&ref.out, &ref.dq, &ref.dk, &ref.dv};
    for (int i = 0; i < 4; i++) *bufs[i] = calloc(r->nx, sizeof(double));
    double *P = malloc((size_t)T * T * sizeof(double)), *Z = malloc((size_t)T * T * sizeof(double));
    double *G = malloc((size_t)T * T * sizeof(double));
    LRA_ASSERT(ref.out && ref.dq && ref.dk && ref.dv && P && Z && G);
    for (int bh = 0; bh < B * H; bh++) {
        const size_t off = (size_t)bh * T * D;
        const float *Q = r->q + off, *K = r->k + off, *V = r->v + off, *dO = r->r + off;
        const float *mask = r->mask + (size_t)(bh / H) * T;
        const uint64_t key = lra_key(lra_key(CTX_SEED, CTX_STEP), (uint64_t)bh);
        for (int i = 0; i < T; i++) {
            double mx = -INFINITY, sum = 0.0;
            for (int j = 0; j < T; j++) {
                double sij = 0.0;
                for (int e = 0; e < D; e++) sij += (double)Q[i * D + e] * K[j * D + e];
                P[i * T + j] = mask[j] != 0.0f ? s * sij : -INFINITY;
                mx = fmax(mx, P[i * T + j]);
                Z[i * T + j] = p > 0.0f ? (lra_uniform(key, (uint64_t)i * T + j) >= p) * inv_keep
                                        : 1.0;
            }
            for (int j = 0; j < T; j++) {
                P[i * T + j] = mx == -INFINITY ? 0.0 : exp(P[i * T + j] - mx);
                sum += P[i * T + j];
            }
            for (int j = 0; j < T; j++) P[i * T + j] = sum > 0.0 ? P[i * T + j] / sum : 0.0;
        }
        for (int i = 0; i < T; i++) {
            double d = 0.0;
            for (int j = 0; j < T; j++) {
                const double pt = P[i * T + j] * Z[i * T + j];
                double dpt = 0.0;
                for (int e = 0; e < D; e++) {
                    ref.out[off + i * D + e] += pt * V[j * D + e];
                    ref.dv[off + j * D + e] += pt * dO[i * D + e];
                    dpt += (double)dO[i * D + e] * V[j * D + e];
                }
                G[i * T + j] = dpt * Z[i * T + j]; /* dP */
                d += P[i * T + j] * G[i * T + j];
            }
            for (int j = 0; j < T; j++) G[i * T + j] = P[i * T + j] * (G[i * T + j] - d); /* dS */
        }
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++)
                for (int e = 0; e < D; e++) {
                    ref.dq[off + i * D + e] += s * G[i * T + j] * K[j * D + e];
                    ref.dk[off + j * D + e] += s * G[i * T + j] * Q[i * D + e];
                }
    }
    free(P);
    free(Z);
    free(G);
    return ref;
}

static void reference_free(reference *ref)
{
    free(ref->out);
    free(ref->dq);
    free(ref->dk);
    free(ref->dv);
}

/* max |x − y| / max |y|, or max |x − y| when y is all 0 (then x must be 0 too); NaN: INFINITY. */
static double rel_diff(const float *x, const float *y, size_t n)
{
    const double err = atest_max_diff_f(x, y, n), scale = atest_max_abs(y, n);
    return scale > 0.0 ? err / scale : err;
}

static double rel_diff_ref(const float *x, const double *y, size_t n)
{
    const double err = atest_max_diff(x, y, n), scale = atest_max_abs_d(y, n);
    return scale > 0.0 ? err / scale : err;
}

/* One shape: rows = 1, 7, 64, T against rows = 0 and everything against the reference. */
static void check_case(int T, int D, float dropout)
{
    run base;
    run_open(&base, 3, 2, T, D, "rows=0", dropout, 2);
    atest_run_gradients(&base);
    reference ref = reference_make(&base, dropout);
    const size_t nx = base.nx;

    const int rows[] = {0, 1, 7, 64, T};
    for (size_t c = 0; c < sizeof rows / sizeof rows[0]; c++) {
        char opts[32];
        snprintf(opts, sizeof opts, "rows=%d", rows[c]);
        run got;
        run_open(&got, 3, 2, T, D, opts, dropout, 2);
        atest_run_gradients(&got);
        const float *g[] = {got.out, got.dq, got.dk, got.dv};
        const float *b[] = {base.out, base.dq, base.dk, base.dv};
        const double *d[] = {ref.out, ref.dq, ref.dk, ref.dv};
        double er[4], ed[4];
        for (int i = 0; i < 4; i++) {
            er[i] = rel_diff(g[i], b[i], nx);
            ed[i] = rel_diff_ref(g[i], d[i], nx);
        }
        const double wr = fmax(fmax(er[0], er[1]), fmax(er[2], er[3]));
        const double wd = fmax(fmax(ed[0], ed[1]), fmax(ed[2], ed[3]));
        worst_rows = fmax(worst_rows, wr);
        worst_ref = fmax(worst_ref, wd);
        if (rows[c] != 0)
            atest_line(wr <= TOL_ROWS, "T %d Dh %d dropout %.1f rows %d = rows 0 — rel err out "
                       "%.1e, dq %.1e, dk %.1e, dv %.1e (tol %.0e)", T, D, dropout, rows[c],
                       er[0], er[1], er[2], er[3], TOL_ROWS);
        atest_line(wd <= TOL_REF, "T %d Dh %d dropout %.1f rows %d = double reference — rel err "
                   "out %.1e, dq %.1e, dk %.1e, dv %.1e (tol %.0e)", T, D, dropout, rows[c],
                   ed[0], ed[1], ed[2], ed[3], TOL_REF);

        /* Batch entry 2 has no real key: o = 0 and no gradient reaches its q, k or v. */
        const size_t from = 2 * (size_t)got.H * T * D;
        double mx = 0.0;
        for (int i = 0; i < 4; i++)
            for (size_t j = from; j < nx; j++) mx = fmax(mx, fabs((double)g[i][j]));
        worst_padded = fmax(worst_padded, mx);
        atest_run_close(&got);
    }
    atest_run_close(&base);
    reference_free(&ref);
}

/* Collected over every case and chunk size above, reported once. */
static void report_all_padded(void)
{
    atest_line(worst_padded == 0.0, "all-padded batch entry gives exactly 0 in out, dq, dk, dv "
               "(every case above) — max |value| there %.2e", worst_padded);
}

static int same_bits(const run *x, const run *y, size_t nx)
{
    const size_t bytes = nx * sizeof(float);
    return !memcmp(x->out, y->out, bytes) && !memcmp(x->dq, y->dq, bytes) &&
           !memcmp(x->dk, y->dk, bytes) && !memcmp(x->dv, y->dv, bytes);
}

/* rows above T is clamped to T, which is one chunk: exactly what rows = 0 does. */
static void check_clamp(void)
{
    run a, b;
    run_open(&a, 3, 2, 100, 32, "rows=0", 0.1f, 2);
    run_open(&b, 3, 2, 100, 32, "rows=1000", 0.1f, 2);
    atest_run_gradients(&a);
    atest_run_gradients(&b);
    atest_line(same_bits(&a, &b, a.nx) && a.sz.n_scratch == b.sz.n_scratch,
               "rows 1000 at T 100 = rows 0, bit for bit, same scratch (%zu floats)",
               b.sz.n_scratch);
    atest_run_close(&a);
    atest_run_close(&b);
}

/* backward reads the cache without changing it: a second backward gives the same gradients. */
static void check_backward_twice(void)
{
    run r;
    run_open(&r, 3, 2, 100, 32, "rows=7", 0.1f, 2);
    atest_run_gradients(&r);
    const size_t nx = r.nx, bytes = nx * sizeof(float);
    float *first = atest_floats(3 * nx);
    memcpy(first, r.dq, bytes);
    memcpy(first + nx, r.dk, bytes);
    memcpy(first + 2 * nx, r.dv, bytes);
    memset(r.dq, 0, bytes);
    memset(r.dk, 0, bytes);
    memset(r.dv, 0, bytes);
    r.a->backward(&r.ctx, r.q, r.k, r.v, r.out, r.r, r.dq, r.dk, r.dv);
    atest_line(!memcmp(first, r.dq, bytes) && !memcmp(first + nx, r.dk, bytes) &&
               !memcmp(first + 2 * nx, r.dv, bytes),
               "a second backward (rows 7, dropout 0.1) gives bit-identical gradients");
    lra_free(first);
    atest_run_close(&r);
}

/* Work is split by slice only, so 1 and 2 threads give bit-identical results when the process's
 * threads are set as the runner sets them (lra_set_threads: OpenMP and OpenBLAS alike; see
 * tests/test_attn_flash.c). */
static void check_threads(void)
{
    const int threads = lra_threads();
    run one, two;
    run_open(&one, 3, 2, 257, 32, NULL, 0.1f, 1);
    run_open(&two, 3, 2, 257, 32, NULL, 0.1f, 2);
    lra_set_threads(1);
    atest_run_gradients(&one);
    lra_set_threads(2);
    atest_run_gradients(&two);
    lra_set_threads(threads);
    atest_line(same_bits(&one, &two, one.nx),
               "1 and 2 threads bit-identical — B 3 H 2 T 257 Dh 32, default rows, dropout 0.1");
    atest_run_close(&one);
    atest_run_close(&two);
}

/* Float counts and flops of softmax with `opts` at B, H 2, T, Dh 32. */
static lra_attn_sizes sizes_at(const char *opts, int B, int T, double *flops)
{
    const lra_attention *a = lra_attn_find("softmax");
    lra_attn_ctx c = {.shape = {.batch = B, .heads = 2, .len = T, .dim = 32, .max_len = T}};
    char why[256] = "";
    if (atest_ctx_options(&c, a, opts, why, sizeof why)) lra_die("softmax: %s", why);
    lra_attn_sizes sz;
    a->sizes(&c, &sz);
    if (flops) *flops = a->flops(&c);
    lra_free(c.priv);
    return sz;
}

/* Growth of n_cache and of n_cache + n_scratch with T: the increments from 1024 to 2048 and from
 * 2048 to 4096 grow by 2 for a·T + b and by 4 for a quadratic. */
static void check_memory(void)
{
    const char *cases[] = {"", "rows=1", "rows=64", "rows=256", "rows=0"};
    double f0 = 0.0;
    int same_flops = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double f;
        const lra_attn_sizes s0 = sizes_at(cases[i], 2, 1024, &f);
        const lra_attn_sizes s1 = sizes_at(cases[i], 2, 2048, NULL);
        const lra_attn_sizes s2 = sizes_at(cases[i], 2, 4096, NULL);
        if (i == 0) f0 = f;
        same_flops &= f == f0;
        const double t0 = (double)(s0.n_cache + s0.n_scratch);
        const double t1 = (double)(s1.n_cache + s1.n_scratch);
        const double t2 = (double)(s2.n_cache + s2.n_scratch);
        const double rc = ((double)s2.n_cache - s1.n_cache) / ((double)s1.n_cache - s0.n_cache);
        const double rt = (t2 - t1) / (t1 - t0);
        const int quadratic = strcmp(cases[i], "rows=0") == 0;
        const int ok = quadratic ? rt >= 3.9 : rc <= 2.05 && rt <= 2.05;
        atest_line(ok, "%s: cache + scratch %s in T — increments x%.3f (n_cache x%.3f), %.1f MB at "
                   "B 2 H 2 T 4096", *cases[i] ? cases[i] : "default rows",
                   quadratic ? "quadratic" : "linear", rt, rc, 4e-6 * t2);
    }
    atest_line(same_flops, "flops do not depend on rows");

    /* Path-X: B 8, H 2, T 16384, Dh 32, default rows, per attention layer. */
    const lra_attn_sizes px = sizes_at("", 8, 16384, NULL);
    const double mb = 4.0 * (double)(px.n_cache + px.n_scratch) / 1048576.0;
    atest_line(mb < 512.0, "Path-X shape (B 8 H 2 T 16384): cache + scratch %.1f MiB per layer, "
               "limit 512", mb);
}

/* Forward + backward time, best of 3, at B 2, H 2, T 2048, Dh 32 for a few chunk sizes. Printed
 * for information; timing is not a pass/fail criterion. */
static void report_timing(void)
{
    const int rows[] = {0, 16, 64, 256};
    printf("     time at B 2, H 2, T 2048, Dh 32, %d threads, forward + backward (best of 3):",
           omp_get_max_threads());
    for (size_t c = 0; c < sizeof rows / sizeof rows[0]; c++) {
        char opts[32];
        snprintf(opts, sizeof opts, "rows=%d", rows[c]);
        run r;
        run_open(&r, 2, 2, 2048, 32, opts, 0.0f, omp_get_max_threads());
        for (size_t i = 0; i < (size_t)2 * 2048; i++) r.mask[i] = 1.0f; /* no padding */
        double best = INFINITY;
        for (int i = 0; i < 3; i++) {
            const double t0 = lra_now();
            atest_run_gradients(&r);
            best = fmin(best, lra_now() - t0);
        }
        printf(" rows %d %.1f ms%s", rows[c], 1e3 * best,
               c + 1 < sizeof rows / sizeof rows[0] ? "," : "\n");
        atest_run_close(&r);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    atest_line_prefix("softmax_rows: ");
    if (!lra_attn_find("softmax")) {
        printf("FAIL softmax_rows: registry — softmax is not registered\n0 passed, 1 failed\n");
        return 1;
    }
    const int lens[] = {1, 7, 64, 100, 257};
    const int dims[] = {4, 32};
    const float drops[] = {0.0f, 0.1f};
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++)
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
            for (size_t p = 0; p < sizeof drops / sizeof drops[0]; p++)
                check_case(lens[t], dims[d], drops[p]);
    report_all_padded();
    printf("     worst rel err: chunks vs rows 0 %.2e, any chunk vs double reference %.2e\n",
           worst_rows, worst_ref);
    check_clamp();
    check_backward_twice();
    check_threads();
    check_memory();
    report_timing();
    return atest_summary();
}
