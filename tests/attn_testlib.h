/* attn_testlib.h — the plumbing the attention test programs (tests/test_attn*.c) share.
 *
 * Each of those programs checks some variants against references of its own; around those
 * checks they all need the same things, kept here once:
 *  - PASS/FAIL lines and their count, ending in "N passed, N failed";
 *  - zeroed test buffers, seeded inputs, relative errors of a float result;
 *  - a variant set up on one shape: an lra_attn_ctx with its options, params, state, cache and
 *    scratch (atest_ctx_*), or that and the buffers of the loss L = Σ out∘r whose gradients the
 *    tests compare (atest_run_*).
 * For tests only: it dies (lra_die) where a test could not go on.
 */
#ifndef ATTN_TESTLIB_H
#define ATTN_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "gradcheck.h"
#include "lra_attention.h"
#include "util.h"

/* ---- PASS/FAIL lines ---- */

/* Every line printed from now on starts with this, after the PASS/FAIL word (printf format;
 * "" for none), e.g. "flash: " or "softmax t=2: ". */
LRA_PRINTF(1, 2) void atest_line_prefix(const char *fmt, ...);

/* Counts a check and prints "PASS|FAIL <prefix>what — detail"; without " — " when the detail
 * is empty or fmt is NULL. */
LRA_PRINTF(3, 4) void atest_check(int ok, const char *what, const char *fmt, ...);

/* The same for a check described by one formatted line: "PASS|FAIL <prefix>line". */
LRA_PRINTF(2, 3) void atest_line(int ok, const char *fmt, ...);

/* atest_check with a gradient-check verdict: WARN is printed as such and counts as passed (a
 * warning is a tolerance loosened on purpose, not a failure). */
LRA_PRINTF(3, 4) void atest_verdict(lra_gc_verdict v, const char *what, const char *fmt, ...);

/* Failures so far. */
int atest_failures(void);

/* Prints "N passed, N failed"; returns the exit status, 1 if any check failed. */
int atest_summary(void);

/* ---- buffers and inputs ---- */

/* n zeroed floats or doubles, 64-byte aligned (n may be 0); free with lra_free. */
float *atest_floats(size_t n);
double *atest_doubles(size_t n);

/* x_i = amplitude·(2·u_i − 1) with u_i = lra_uniform(key, i): uniform in (−amplitude,
 * amplitude). */
void atest_fill_uniform(float *x, size_t n, uint64_t key, float amplitude);

/* x_i = lo + (hi − lo)·u_i. For lo = −hi this is the distribution of atest_fill_uniform but not
 * the same floats unless hi is a power of 2 (the two round differently), so the tests written
 * with it keep it: their measured tolerances are for those inputs. */
void atest_fill_range(float *x, size_t n, uint64_t key, float lo, float hi);

/* x_i = sd·lra_normal(key, i). */
void atest_fill_normal(float *x, size_t n, uint64_t key, float sd);

/* ---- errors of a float result x against a reference y (double, or float: _f) ---- */

/* max_i |x_i|, max_i |y_i|. */
double atest_max_abs(const float *x, size_t n);
double atest_max_abs_d(const double *y, size_t n);

/* max_i |x_i − y_i|; a NaN anywhere gives INFINITY (fmax would drop it and pass). */
double atest_max_diff(const float *x, const double *y, size_t n);
double atest_max_diff_f(const float *x, const float *y, size_t n);

/* max |x − y| / max |y| (the scale floored at 1e-30); a NaN gives INFINITY. */
double atest_rel_err(const float *x, const double *y, size_t n);
double atest_rel_err_f(const float *x, const float *y, size_t n);

/* ‖x − y‖_F / ‖y‖_F, summed in double (‖y‖² floored at 1e-300). */
double atest_rel_frobenius(const float *x, const double *y, size_t n);
double atest_rel_frobenius_f(const float *x, const float *y, size_t n);

/* ---- a variant's context ---- */

/* c->priv for variant a: its option defaults, then `opts` ("name=value,name=value"; NULL or ""
 * for none). Returns 0, or 1 with the reason in why. Enough for sizes() and flops(); free
 * c->priv with lra_free. */
int atest_ctx_options(lra_attn_ctx *c, const lra_attention *a, const char *opts, char *why,
                      size_t whylen);

/* ---- a variant on one shape with the buffers of L = Σ out∘r ---- */

typedef struct atest_run {
    const lra_attention *a;
    lra_attn_ctx ctx;
    lra_attn_sizes sz;
    int B, H, T, D;          /* ctx.shape: batch, heads, len, dim */
    size_t nx;               /* B·H·T·Dh: floats in each of the buffers below */
    float *q, *k, *v, *out;  /* (B, H, T, Dh) */
    float *r;                /* (B, H, T, Dh) the weights of L = Σ out∘r, hence dout = r */
    float *dq, *dk, *dv;     /* (B, H, T, Dh) */
    float *mask;             /* (B, T) ctx.key_mask: all 1 (real keys) until the test pads */
} atest_run;

/* Sets variant a up with the shape and settings (seed, step, training, dropout, threads) of
 * `settings`, its key_mask replaced by r->mask, and options `opts`: priv, then zeroed params,
 * dparams, state, cache and scratch as a->sizes() asks for them, and the buffers above. Returns
 * 0, or 1 with the reason in why when a is NULL (not registered) or an option is rejected;
 * atest_run_close frees whatever was set up either way. init() is left to the test, which may
 * check its code and message. */
int atest_run_open(atest_run *r, const lra_attention *a, const lra_attn_ctx *settings,
                   const char *opts, char *why, size_t whylen);

/* atest_run_open of variant `name`, then init, for set-ups meant to be valid: a rejection dies
 * naming the variant, its options and the reason. The test may pad r->mask and write the inputs
 * afterwards: init sees only the shape, the options and the seed. */
void atest_run_open_or_die(atest_run *r, const char *name, const lra_attn_ctx *settings,
                           const char *opts);

/* Every batch entry but the first pads its last n keys; the first keeps all of them. */
void atest_run_pad_last_keys(atest_run *r, int n);

/* Inputs: q and k uniform in (−amp_qk, amp_qk), v and r in (−1, 1), from lra_key(seed, 1 … 4). */
void atest_run_fill(atest_run *r, uint64_t seed, float amp_qk);

/* The same drawn with atest_fill_range, for the tests whose tolerances were measured on those
 * floats. */
void atest_run_fill_range(atest_run *r, uint64_t seed, float amp_qk);

/* Inputs and padding on which two forms of exact attention must agree, also where whole tiles
 * or chunks of keys are padded: q and k uniform in (−2, 2), v and r in (−1, 1), from
 * lra_key(key, 0 … 3) with key = lra_key(lra_key(seed, T), Dh). Batch entry 0 has no padding;
 * entry 1 pads its last 40% of keys and a random 20% of the rest, never key 0; entries from 2
 * on pad every key. */
void atest_run_fill_padded(atest_run *r, uint64_t seed);

void atest_run_forward(atest_run *r);

/* Fresh gradients at the current inputs: dq, dk, dv and dparams zeroed, forward, backward with
 * dout = r. */
void atest_run_gradients(atest_run *r);

/* L = Σ out∘r after a forward, summed in double. void * so that lra_gradcheck can call it. */
double atest_run_loss(void *run);

void atest_run_close(atest_run *r);

#endif
