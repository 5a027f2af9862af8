/* test_attn_hashing.c — checks of the hashing and sorting variants (reformer, sinkhorn) beyond
 * the generic harness of test_attn.c.
 *
 * Reformer:
 *  - forward and backward against a double-precision reference written here from §6 of
 *    attention-variants.md with scalar loops, using the sort orders the plugin stored in its
 *    cache (layout documented in attention/reformer.c); the reference gradients are central
 *    differences (h = 1e-6) of the reference forward, so they do not share the derivation;
 *    also at T = 100 with chunks longer than the plugin's 64-query row tile (several tiles per
 *    chunk, the last partial);
 *  - frozen choices: with freeze_choices = 1, perturbing q keeps the cached sort orders and the
 *    output changes linearly in the step;
 *  - the limit buckets = 1, chunk >= T equals full shared-QK attention with the self-exclusion
 *    rule, with 1 and with 3 (identical) hashing rounds;
 *  - measured error against full shared-QK attention on random inputs, by buckets and rounds.
 * Sinkhorn:
 *  - forward and backward (q, k, v and the SortNet parameters) against a double reference at a
 *    length that is not a multiple of the block, with padding, for the softmax sort and for
 *    Sinkhorn balancing;
 *  - Gumbel noise: evaluation ignores it, and the gradient is exact at a fixed step;
 *  - the limit block >= T equals softmax attention; measured error against softmax by block.
 *
 * Output: one line per check ("PASS|FAIL what — detail"), then "N passed, N failed". Exit
 * status 1 on any failure.
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

static const uint64_t TEST_SEED = 20240612;
static const double TOL_REF = 2e-5; /* float plugin against double reference, relative */
static const double FD_STEP = 1e-6; /* central differences of the double reference */

/* ---- one variant on one shape ----------------------------------------------------------- */

/* B·H·T·Dh buffers; r: the weights of L = Σ out∘r; mask: batch b >= 1 has its last n_pad keys
 * padded. */
typedef atest_run setup;

/* Variant `name` with options `opts` (over its defaults) on (B, H, T, Dh); q, k in (−2, 2), v and
 * r in (−1, 1) from `seed`. Returns 0, or 1 after reporting a failure. */
static int setup_open(setup *s, const char *name, int B, int H, int T, int D, int n_pad,
                      const char *opts, uint64_t seed)
{
    const lra_attn_ctx settings = {
        .shape = {.batch = B, .heads = H, .len = T, .dim = D, .max_len = T},
        .seed = 42,
        .step = 7,
        .threads = 2,
    };
    char why[256] = "";
    if (atest_run_open(s, lra_attn_find(name), &settings, opts, why, sizeof why)) {
        atest_check(0, name, "options '%s': %s", opts ? opts : "", why);
        return 1;
    }
    atest_run_pad_last_keys(s, n_pad);
    atest_run_fill(s, seed, 2.0f);
    if (s->a->init(&s->ctx, why, sizeof why) != LRA_ATTN_OK) {
        atest_check(0, name, "init rejected '%s': %s", opts ? opts : "", why);
        return 1;
    }
    return 0;
}

/* ---- double references and their finite-difference gradients ---------------------------- */

typedef struct ref ref;
/* Output o (T, Dh) of slice bh from the double inputs of rf. */
typedef void (*ref_slice_fn)(const ref *rf, int bh, double *o);

struct ref {
    const setup *s;
    double *q, *k, *v, *par; /* double copies of the inputs and parameters */
    ref_slice_fn slice;
    /* reformer */
    const float *perm;       /* (B·H, rounds, T) sort orders copied from the plugin's cache */
    int rounds, chunk;
    /* sinkhorn */
    int block, iters, nbmax;
    double tau;
    double scale;            /* logit scale */
};

static void ref_open(ref *rf, const setup *s, ref_slice_fn fn)
{
    memset(rf, 0, sizeof *rf);
    rf->s = s;
    rf->slice = fn;
    rf->q = atest_doubles(s->nx), rf->k = atest_doubles(s->nx), rf->v = atest_doubles(s->nx);
    rf->par = atest_doubles(s->sz.n_params);
    for (size_t i = 0; i < s->nx; i++) rf->q[i] = s->q[i], rf->k[i] = s->k[i], rf->v[i] = s->v[i];
    for (size_t i = 0; i < s->sz.n_params; i++) rf->par[i] = s->ctx.params[i];
    rf->scale = 1.0 / sqrt((double)s->D);
}

static void ref_close(ref *rf)
{
    lra_free(rf->q), lra_free(rf->k), lra_free(rf->v), lra_free(rf->par);
}

static void ref_forward(const ref *rf, double *o)
{
    const size_t TD = (size_t)rf->s->T * rf->s->D;
    for (int bh = 0; bh < rf->s->B * rf->s->H; bh++) rf->slice(rf, bh, o + bh * TD);
}

/* Σ o∘r over slice bh, or over all slices when bh < 0. */
static double ref_loss(const ref *rf, int bh, double *o)
{
    const size_t TD = (size_t)rf->s->T * rf->s->D;
    const int lo = bh < 0 ? 0 : bh, hi = bh < 0 ? rf->s->B * rf->s->H : bh + 1;
    double l = 0.0;
    for (int x = lo; x < hi; x++) {
        rf->slice(rf, x, o);
        for (size_t i = 0; i < TD; i++) l += o[i] * rf->s->r[x * TD + i];
    }
    return l;
}

/* g (n) = central differences of the loss in x (n); an input element of slice bh only moves
 * that slice (per_slice), a parameter moves all of them. */
static void ref_fd(const ref *rf, double *x, size_t n, int per_slice, double *g)
{
    const size_t TD = (size_t)rf->s->T * rf->s->D;
    double *o = atest_doubles(TD);
    for (size_t i = 0; i < n; i++) {
        const int bh = per_slice ? (int)(i / TD) : -1;
        const double x0 = x[i];
        x[i] = x0 + FD_STEP;
        const double lp = ref_loss(rf, bh, o);
        x[i] = x0 - FD_STEP;
        const double lm = ref_loss(rf, bh, o);
        x[i] = x0;
        g[i] = (lp - lm) / (2.0 * FD_STEP);
    }
    lra_free(o);
}

/* Runs forward and backward of the plugin and compares out, dq, dk, dv (and dparams) with the
 * reference and its finite-difference gradients. */
static void check_against_ref(setup *s, ref *rf, const char *what)
{
    const size_t nx = s->nx, np = s->sz.n_params;
    double *want = atest_doubles(4 * nx + np);
    ref_forward(rf, want);
    ref_fd(rf, rf->q, nx, 1, want + nx);
    ref_fd(rf, rf->k, nx, 1, want + 2 * nx);
    ref_fd(rf, rf->v, nx, 1, want + 3 * nx);
    if (np) ref_fd(rf, rf->par, np, 0, want + 4 * nx);
    s->ctx.freeze_choices = rf->perm != NULL; /* keep the orders the reference was given */
    atest_run_gradients(s);
    s->ctx.freeze_choices = 0;
    const float *got[] = {s->out, s->dq, s->dk, s->dv, s->ctx.dparams};
    const char *name[] = {"out", "dq", "dk", "dv", "dparams"};
    char line[200];
    for (int i = 0; i < 5; i++) {
        const size_t n = i < 4 ? nx : np;
        if (n == 0) continue;
        const double *y = want + (size_t)i * nx;
        double err = atest_rel_err(got[i], y, n);
        double scale = 0.0;
        for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs(y[j]));
        int ok = err <= TOL_REF;
        if (scale == 0.0) { /* e.g. reformer's dk: must be exactly zero */
            err = atest_max_abs(got[i], n);
            ok = err == 0.0;
        }
        snprintf(line, sizeof line, "%s: %s matches double reference", what, name[i]);
        atest_check(ok, line, "%s %.2e", scale == 0.0 ? "max |value|" : "rel err", err);
    }
    lra_free(want);
}

/* ---- reformer --------------------------------------------------------------------------- */

static int real_count(const float *mask, int T)
{
    int n = 0;
    for (int j = 0; j < T; j++) n += mask[j] != 0.0f;
    return n;
}

/* k̂_j = q_j/‖q_j‖ for the T rows of q. */
static void unit_rows(const double *q, int T, int D, double *kn)
{
    for (int j = 0; j < T; j++) {
        double ss = 0.0;
        for (int e = 0; e < D; e++) ss += q[j * D + e] * q[j * D + e];
        const double inv = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
        for (int e = 0; e < D; e++) kn[j * D + e] = q[j * D + e] * inv;
    }
}

/* Softmax attention of query qi over the keys listed in keys (n of them) with values v:
 * o (Dh), returns lse. */
static double attend(const double *qi, const int *keys, int n, const double *kn,
                     const double *v, int D, double scale, double *o)
{
    double a[1024], mx = -INFINITY, sum = 0.0;
    for (int x = 0; x < n; x++) {
        a[x] = 0.0;
        for (int e = 0; e < D; e++) a[x] += qi[e] * kn[keys[x] * D + e];
        a[x] *= scale;
        mx = fmax(mx, a[x]);
    }
    for (int x = 0; x < n; x++) sum += exp(a[x] - mx);
    for (int e = 0; e < D; e++) o[e] = 0.0;
    for (int x = 0; x < n; x++)
        for (int e = 0; e < D; e++) o[e] += exp(a[x] - mx) / sum * v[keys[x] * D + e];
    return mx + log(sum);
}

/* §6 from the definitions: per round, the query at sorted slot t attends to the real tokens of
 * its chunk and the previous one (wrapping), itself excluded unless alone; rounds combine by
 * exp(lse_r − lse_all). The orders come from the plugin (rf->perm). */
static void reformer_ref_slice(const ref *rf, int bh, double *o)
{
    const setup *s = rf->s;
    const int T = s->T, D = s->D, c = rf->chunk, R = rf->rounds;
    const size_t TD = (size_t)T * D;
    const double *q = rf->q + bh * TD, *v = rf->v + bh * TD;
    const int n = real_count(s->mask + (bh / s->H) * T, T), nc = (n + c - 1) / c;
    double *kn = atest_doubles(TD), *orr = atest_doubles((size_t)R * TD);
    double *lse = atest_doubles((size_t)R * T);
    unit_rows(q, T, D, kn);
    for (int r = 0; r < R; r++) {
        const float *perm = rf->perm + ((size_t)bh * R + r) * T;
        for (int t = 0; t < n; t++) {
            const int g = t / c, p = (g + nc - 1) % nc, i = (int)perm[t];
            int keys[1024], m = 0;
            for (int u = 0; u < n; u++) {
                const int gu = u / c;
                if ((gu == g || (nc > 1 && gu == p)) && u != t) keys[m++] = (int)perm[u];
            }
            if (m == 0) keys[m++] = i;
            lse[r * T + i] = attend(q + i * D, keys, m, kn, v, D, rf->scale, orr + r * TD + i * D);
        }
    }
    memset(o, 0, TD * sizeof(double));
    const float *mask = s->mask + (bh / s->H) * T;
    for (int i = 0; i < T; i++) {
        if (mask[i] == 0.0f) continue;
        double mx = -INFINITY, sum = 0.0;
        for (int r = 0; r < R; r++) mx = fmax(mx, lse[r * T + i]);
        for (int r = 0; r < R; r++) sum += exp(lse[r * T + i] - mx);
        for (int r = 0; r < R; r++)
            for (int e = 0; e < D; e++)
                o[i * D + e] += exp(lse[r * T + i] - mx) / sum * orr[r * TD + i * D + e];
    }
    lra_free(kn), lra_free(orr), lra_free(lse);
}

/* Full shared-QK attention: every real query attends to every other real token (itself only
 * when alone), keys q_j/‖q_j‖. Padded queries output 0. */
static void sharedqk_ref_slice(const ref *rf, int bh, double *o)
{
    const setup *s = rf->s;
    const int T = s->T, D = s->D;
    const size_t TD = (size_t)T * D;
    const double *q = rf->q + bh * TD, *v = rf->v + bh * TD;
    const float *mask = s->mask + (bh / s->H) * T;
    double *kn = atest_doubles(TD);
    unit_rows(q, T, D, kn);
    memset(o, 0, TD * sizeof(double));
    for (int i = 0; i < T; i++) {
        if (mask[i] == 0.0f) continue;
        int keys[1024], m = 0;
        for (int j = 0; j < T; j++)
            if (mask[j] != 0.0f && j != i) keys[m++] = j;
        if (m == 0) keys[m++] = i;
        attend(q + i * D, keys, m, kn, v, D, rf->scale, o + i * D);
    }
    lra_free(kn);
}

/* The plugin's sort orders: the first rounds·T floats of each slice's cache block of
 * rounds·T·(3 + Dh) floats (attention/reformer.c). Copied, as forward rewrites the cache. */
static float *reformer_orders(const setup *s, int rounds)
{
    const size_t slice = (size_t)rounds * s->T * (3 + s->D), BH = (size_t)s->B * s->H;
    float *perm = atest_floats(BH * rounds * s->T);
    for (size_t bh = 0; bh < BH; bh++)
        memcpy(perm + bh * rounds * s->T, s->ctx.cache + bh * slice,
               (size_t)rounds * s->T * sizeof(float));
    return perm;
}

/* Against the §6 reference with the plugin's own bucket orders, at (B, H, T, Dh) =
 * (2, H, T, 4), batch 1 with its last n_pad tokens padded. */
static void check_reformer_reference_at(const char *opts, int rounds, int chunk, double scale,
                                        int H, int T, int n_pad)
{
    setup s;
    if (setup_open(&s, "reformer", 2, H, T, 4, n_pad, opts, lra_key(TEST_SEED, 10)) == 0) {
        atest_run_forward(&s); /* makes the discrete choices */
        ref rf;
        ref_open(&rf, &s, reformer_ref_slice);
        float *perm = reformer_orders(&s, rounds);
        rf.perm = perm, rf.rounds = rounds, rf.chunk = chunk;
        if (scale > 0.0) rf.scale = scale;
        char what[128];
        snprintf(what, sizeof what, "reformer %s (T %d, %d padded)", opts, T, n_pad);
        check_against_ref(&s, &rf, what);
        lra_free(perm);
        ref_close(&rf);
    }
    atest_run_close(&s);
}

static void check_reformer_reference(const char *opts, int rounds, int chunk, double scale)
{
    check_reformer_reference_at(opts, rounds, chunk, scale, 2, 13, 4);
}

/* Each sorted order is the real positions by (bucket, position): buckets non-decreasing,
 * positions increasing within a bucket, every real token once. */
static void check_reformer_orders(void)
{
    setup s;
    const int R = 3, T = 13, D = 4;
    if (setup_open(&s, "reformer", 2, 2, T, 4, 4, "buckets=4,chunk=3,hashes=3",
                   lra_key(TEST_SEED, 11)) == 0) {
        atest_run_forward(&s);
        const size_t slice = (size_t)R * T * (3 + D); /* cache floats per slice */
        int ok = 1, used_buckets = 0;
        for (int bh = 0; bh < 4; bh++)
            for (int r = 0; r < R; r++) {
                const float *perm = s.ctx.cache + bh * slice + r * T;
                const float *bucket = s.ctx.cache + bh * slice + (size_t)R * T + r * T;
                const float *mask = s.mask + (bh / 2) * T;
                const int n = real_count(mask, T);
                int seen[64] = {0}, mask_b = 0;
                for (int t = 0; t < T; t++) {
                    const int i = (int)perm[t];
                    if (t >= n) {
                        ok &= perm[t] == -1.0f;
                        continue;
                    }
                    ok &= i >= 0 && i < T && mask[i] != 0.0f && !seen[i];
                    seen[i] = 1;
                    mask_b |= 1 << (int)bucket[i];
                    if (t > 0) {
                        const int j = (int)perm[t - 1];
                        ok &= bucket[j] < bucket[i] || (bucket[j] == bucket[i] && j < i);
                    }
                }
                for (int u = 0; u < 4; u++) used_buckets += (mask_b >> u) & 1;
            }
        atest_check(ok, "reformer: cached orders sort the real tokens by (bucket, position)",
                    "%.1f distinct buckets per round on average", used_buckets / 12.0);
    }
    atest_run_close(&s);
}

/* freeze_choices = 1: a small change of q keeps the cached orders and moves the output
 * linearly; without freezing, a large one changes the buckets (the choices are real). */
static void check_reformer_frozen(void)
{
    setup s;
    const char *opts = "buckets=4,chunk=3,hashes=2";
    if (setup_open(&s, "reformer", 2, 2, 13, 4, 4, opts, lra_key(TEST_SEED, 12)) != 0) {
        atest_run_close(&s);
        return;
    }
    const size_t nx = s.nx, nc = s.sz.n_cache;
    float *q0 = atest_floats(nx), *u = atest_floats(nx), *o0 = atest_floats(nx);
    float *o1 = atest_floats(nx), *orders = atest_floats(nc);
    memcpy(q0, s.q, nx * sizeof(float));
    atest_fill_uniform(u, nx, lra_key(TEST_SEED, 13), 1.0f);
    atest_run_forward(&s);
    memcpy(o0, s.out, nx * sizeof(float));
    /* cache floats per slice: rounds·T·(3 + Dh), of which perm and bucket are 2·rounds·T */
    const size_t slice = (size_t)2 * 13 * (3 + 4), part = (size_t)2 * 2 * 13;
    for (size_t bh = 0; bh < 4; bh++) memcpy(orders + bh * part, s.ctx.cache + bh * slice,
                                             part * sizeof(float));
    s.ctx.freeze_choices = 1;
    double d1 = 0.0, d2 = 0.0, lin = 0.0;
    for (int step = 1; step <= 2; step++) {
        for (size_t i = 0; i < nx; i++) s.q[i] = q0[i] + 1e-3f * step * u[i];
        atest_run_forward(&s);
        if (step == 1) memcpy(o1, s.out, nx * sizeof(float));
    }
    for (size_t i = 0; i < nx; i++) {
        const double a = (double)o1[i] - o0[i], b = (double)s.out[i] - o0[i];
        d1 = fmax(d1, fabs(a)), d2 = fmax(d2, fabs(b)), lin = fmax(lin, fabs(b - 2.0 * a));
    }
    int same = 1;
    for (size_t bh = 0; bh < 4; bh++)
        same &= !memcmp(orders + bh * part, s.ctx.cache + bh * slice, part * sizeof(float));
    atest_check(same && d1 > 0.0 && lin <= 0.02 * d2,
                "reformer: frozen choices, q + 1e-3 u and + 2e-3 u change out linearly",
                "orders kept %s, |d1| %.2e, |d2| %.2e, |d2 - 2 d1| %.2e", same ? "yes" : "NO", d1,
                d2, lin);

    s.ctx.freeze_choices = 0;
    for (size_t i = 0; i < nx; i++) s.q[i] = q0[i] + 1.0f * u[i];
    atest_run_forward(&s);
    same = 1;
    for (size_t bh = 0; bh < 4; bh++)
        same &= !memcmp(orders + bh * part, s.ctx.cache + bh * slice, part * sizeof(float));
    atest_check(!same, "reformer: unfrozen, q + u re-hashes", "buckets changed: %s",
                same ? "no" : "yes");
    lra_free(q0), lra_free(u), lra_free(o0), lra_free(o1), lra_free(orders);
    atest_run_close(&s);
}

/* buckets = 1 and chunk >= T: one chunk holding every real token, i.e. full shared-QK
 * attention with self-exclusion; identical rounds combine to the same output. */
static void check_reformer_limit(int rounds)
{
    setup s;
    char opts[64];
    snprintf(opts, sizeof opts, "buckets=1,chunk=13,hashes=%d", rounds);
    if (setup_open(&s, "reformer", 2, 2, 13, 4, 4, opts, lra_key(TEST_SEED, 14)) == 0) {
        ref rf;
        ref_open(&rf, &s, sharedqk_ref_slice);
        char what[128];
        snprintf(what, sizeof what, "reformer %s = full shared-QK softmax", opts);
        check_against_ref(&s, &rf, what);
        ref_close(&rf);
    }
    atest_run_close(&s);
}

/* max |out − ref| / max |ref| of the plugin against a reference slice function. */
static double error_vs(setup *s, ref_slice_fn fn)
{
    ref rf;
    ref_open(&rf, s, fn);
    double *want = atest_doubles(s->nx);
    ref_forward(&rf, want);
    atest_run_forward(s);
    const double err = atest_rel_err(s->out, want, s->nx);
    lra_free(want);
    ref_close(&rf);
    return err;
}

/* Measured approximation error against full shared-QK attention (T 256, Dh 16, no padding):
 * more rounds must not be worse than one round at the same buckets. */
static void measure_reformer(void)
{
    const int buckets[] = {8, 32}, rounds[] = {1, 2, 4, 8};
    for (int bi = 0; bi < 2; bi++) {
        double first = 0.0, last = 0.0;
        char line[256] = "";
        for (int ri = 0; ri < 4; ri++) {
            setup s;
            char opts[64];
            snprintf(opts, sizeof opts, "buckets=%d,hashes=%d", buckets[bi], rounds[ri]);
            if (setup_open(&s, "reformer", 1, 2, 256, 16, 0, opts, lra_key(TEST_SEED, 15))) {
                atest_run_close(&s);
                return;
            }
            const double err = error_vs(&s, sharedqk_ref_slice);
            if (ri == 0) first = err;
            last = err;
            const size_t len = strlen(line);
            snprintf(line + len, sizeof line - len, "%shashes %d: %.3f", ri ? ", " : "",
                     rounds[ri], err);
            atest_run_close(&s);
        }
        char what[128];
        snprintf(what, sizeof what, "reformer buckets=%d, chunk 2T/buckets: measured error vs "
                 "full shared-QK (8 rounds <= 1 round)", buckets[bi]);
        atest_check(isfinite(last) && last <= first, what, "%s", line);
    }
}

/* ---- sinkhorn --------------------------------------------------------------------------- */

/* L ← L − lse(L) along rows (step even) or columns (odd), nb × nb. */
static void lse_step(int nb, int step, double *L)
{
    const int along = step % 2 ? nb : 1, across = step % 2 ? 1 : nb;
    for (int x = 0; x < nb; x++) {
        double *line = L + x * across, mx = -INFINITY, sum = 0.0;
        for (int y = 0; y < nb; y++) mx = fmax(mx, line[y * along]);
        for (int y = 0; y < nb; y++) sum += exp(line[y * along] - mx);
        for (int y = 0; y < nb; y++) line[y * along] -= mx + log(sum);
    }
}

/* §7 from the definitions, padding as attention/sinkhorn.c documents it. */
static void sinkhorn_ref_slice(const ref *rf, int bh, double *o)
{
    const setup *s = rf->s;
    const int T = s->T, D = s->D, b = rf->block, nb = (T + b - 1) / b, tp = nb * b;
    const size_t TD = (size_t)T * D;
    const double *q = rf->q + bh * TD, *k = rf->k + bh * TD, *v = rf->v + bh * TD;
    const double *W = rf->par, *beta = rf->par + (size_t)D * rf->nbmax;
    const float *mask = s->mask + (bh / s->H) * T;
    double *m = atest_doubles(tp), *khat = atest_doubles((size_t)nb * D);
    double *L = atest_doubles((size_t)nb * nb), *ks = atest_doubles((size_t)tp * D);
    double *vs = atest_doubles((size_t)tp * D), *ms = atest_doubles(tp);
    for (int j = 0; j < T; j++) m[j] = mask[j] != 0.0f;
    for (int j = 0; j < T; j++)
        for (int e = 0; e < D; e++) khat[(j / b) * D + e] += m[j] * k[j * D + e];
    for (int t = 0; t < nb; t++)
        for (int u = 0; u < nb; u++) {
            double x = beta[u];
            for (int e = 0; e < D; e++) x += khat[t * D + e] * W[e * rf->nbmax + u];
            L[t * nb + u] = x / rf->tau;
        }
    const int steps = rf->iters > 0 ? 2 * rf->iters : 1;
    for (int st = 0; st < steps; st++) lse_step(nb, st, L);
    for (int t = 0; t < nb; t++)
        for (int u = 0; u < nb; u++) {
            const double S = exp(L[t * nb + u]);
            for (int i = 0; i < b; i++) {
                const int src = u * b + i, dst = t * b + i;
                if (src >= T || m[src] == 0.0) continue;
                ms[dst] += S;
                for (int e = 0; e < D; e++) {
                    ks[dst * D + e] += S * k[src * D + e];
                    vs[dst * D + e] += S * v[src * D + e];
                }
            }
        }
    for (int i = 0; i < T; i++) {
        const int t = i / b;
        double a[512], mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < 2 * b; j++) {
            const int pos = t * b + j % b;
            const int real = j < b ? pos < T && m[pos] != 0.0 : ms[pos] > 0.0;
            a[j] = -INFINITY;
            if (!real) continue;
            const double *key = j < b ? k + pos * D : ks + pos * D;
            a[j] = 0.0;
            for (int e = 0; e < D; e++) a[j] += q[i * D + e] * key[e];
            a[j] = a[j] * rf->scale + (j < b ? 0.0 : log(ms[pos]));
            mx = fmax(mx, a[j]);
        }
        for (int j = 0; j < 2 * b; j++) sum += a[j] > -INFINITY ? exp(a[j] - mx) : 0.0;
        for (int e = 0; e < D; e++) o[i * D + e] = 0.0;
        for (int j = 0; j < 2 * b && sum > 0.0; j++) {
            if (a[j] == -INFINITY) continue;
            const int pos = t * b + j % b;
            const double *val = j < b ? v + pos * D : vs + pos * D, p = exp(a[j] - mx) / sum;
            for (int e = 0; e < D; e++) o[i * D + e] += p * val[e];
        }
    }
    lra_free(m), lra_free(khat), lra_free(L), lra_free(ks), lra_free(vs), lra_free(ms);
}

/* Exact softmax attention over the real keys. */
static void softmax_ref_slice(const ref *rf, int bh, double *o)
{
    const setup *s = rf->s;
    const int T = s->T, D = s->D;
    const size_t TD = (size_t)T * D;
    const float *mask = s->mask + (bh / s->H) * T;
    int keys[1024], m = 0;
    for (int j = 0; j < T; j++)
        if (mask[j] != 0.0f) keys[m++] = j;
    for (int i = 0; i < T; i++)
        attend(rf->q + bh * TD + i * D, keys, m, rf->k + bh * TD, rf->v + bh * TD, D, rf->scale,
               o + i * D);
}

/* Sinkhorn at T = 11, block 3 (a partial last block), batch 1 with 4 padded keys, random SortNet
 * parameters (the bias too). */
static void check_sinkhorn_reference(const char *opts, int block, int iters, double tau,
                                     int nbmax)
{
    setup s;
    if (setup_open(&s, "sinkhorn", 2, 2, 11, 4, 4, opts, lra_key(TEST_SEED, 20)) == 0) {
        atest_fill_uniform(s.ctx.params, s.sz.n_params, lra_key(TEST_SEED, 21), 0.7f);
        ref rf;
        ref_open(&rf, &s, sinkhorn_ref_slice);
        rf.block = block, rf.iters = iters, rf.tau = tau, rf.nbmax = nbmax;
        char what[128];
        snprintf(what, sizeof what, "sinkhorn %s", opts);
        check_against_ref(&s, &rf, what);
        ref_close(&rf);
    }
    atest_run_close(&s);
}

/* Gumbel noise: evaluation (training 0) ignores it; while training at a fixed step the noise is
 * fixed and the gradient exact (directional checks of q, k and the parameters). */
static void check_sinkhorn_gumbel(void)
{
    setup s, plain;
    const char *opts = "block=3,iters=3,gumbel=1";
    if (setup_open(&s, "sinkhorn", 2, 2, 11, 4, 4, opts, lra_key(TEST_SEED, 22)) == 0 &&
        setup_open(&plain, "sinkhorn", 2, 2, 11, 4, 4, "block=3,iters=3",
                   lra_key(TEST_SEED, 22)) == 0) {
        atest_run_forward(&s);
        atest_run_forward(&plain);
        const int same = !memcmp(s.out, plain.out, s.nx * sizeof(float));
        s.ctx.training = 1;
        atest_run_forward(&s);
        const int noisy = memcmp(s.out, plain.out, s.nx * sizeof(float)) != 0;
        atest_check(same && noisy, "sinkhorn gumbel=1: evaluation noise-free, training noisy",
                    "eval bit-identical to gumbel=0: %s; training differs: %s", same ? "yes" : "NO",
                    noisy ? "yes" : "NO");
        atest_run_gradients(&s);
        lra_gradcheck_opts o = lra_gradcheck_defaults();
        struct { const char *name; float *x; const float *g; size_t n; } in[] = {
            {"q", s.q, s.dq, s.nx}, {"k", s.k, s.dk, s.nx},
            {"params", s.ctx.params, s.ctx.dparams, s.sz.n_params}};
        for (int i = 0; i < 3; i++) {
            const lra_gradcheck_result r =
                lra_gradcheck(atest_run_loss, &s, in[i].x, in[i].g, in[i].n, &o);
            char what[96];
            snprintf(what, sizeof what, "sinkhorn gumbel=1 training: gradient check %s",
                     in[i].name);
            atest_check(r.verdict != LRA_GC_FAIL, what, "worst rel err %.2e", r.worst_rel);
        }
        atest_run_close(&plain);
    }
    atest_run_close(&s);
}

/* Measured error against exact softmax (T 256, Dh 16, no padding) by block; block = T is the
 * limit in which the variant IS softmax attention. */
static void measure_sinkhorn(void)
{
    const int blocks[] = {256, 128, 64, 32, 16};
    char line[256] = "";
    double limit = INFINITY;
    for (int bi = 0; bi < 5; bi++) {
        setup s;
        char opts[64];
        snprintf(opts, sizeof opts, "block=%d", blocks[bi]);
        if (setup_open(&s, "sinkhorn", 1, 2, 256, 16, 0, opts, lra_key(TEST_SEED, 23))) {
            atest_run_close(&s);
            return;
        }
        const double err = error_vs(&s, softmax_ref_slice);
        if (bi == 0) limit = err;
        const size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, "%sblock %d: %.3g", bi ? ", " : "", blocks[bi],
                 err);
        atest_run_close(&s);
    }
    atest_check(limit <= TOL_REF, "sinkhorn: measured error vs exact softmax (block = T is exact)",
                "%s", line);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    check_reformer_orders();
    check_reformer_reference("buckets=4,chunk=3,hashes=3", 3, 3, 0.0);
    check_reformer_reference("buckets=4,hashes=2", 2, 7, 0.0); /* chunk ceil(2·13/4) = 7 */
    check_reformer_reference("buckets=2,chunk=2,lra_scale=1", 1, 2, 2.0);
    /* Chunks longer than the plugin's row tile (64 queries): a chunk's queries run in several
     * tiles, the last one partial (70 = 64 + 6; the padded batch's 100 − 17 = 83 real tokens
     * give chunks of 70 and 13, and with chunk 0 one chunk of 83 = 64 + 19 or 100). */
    check_reformer_reference_at("buckets=4,chunk=70,hashes=2", 2, 70, 0.0, 1, 100, 17);
    check_reformer_reference_at("buckets=2,hashes=1", 1, 100, 0.0, 1, 100, 17);
    check_reformer_frozen();
    check_reformer_limit(1);
    check_reformer_limit(3);
    measure_reformer();

    check_sinkhorn_reference("block=3", 3, 0, 1.0, 4);
    check_sinkhorn_reference("block=3,iters=3", 3, 3, 0.75, 4);
    check_sinkhorn_reference("block=3,iters=2,tau=0.5,max_blocks=6", 3, 2, 0.5, 6);
    check_sinkhorn_gumbel();
    measure_sinkhorn();

    return atest_summary();
}
