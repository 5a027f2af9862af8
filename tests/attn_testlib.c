/* attn_testlib.c — see attn_testlib.h. */
#include "attn_testlib.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "options.h"
#include "registry.h"

/* ---- PASS/FAIL lines ---- */

static int n_pass, n_fail;
static char prefix[128];

void atest_line_prefix(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
}

/* Every line goes through here, so that the count and the final summary always agree. */
static void print_counted(const char *word, int failed, const char *what, const char *detail)
{
    printf("%s %s%s%s%s\n", word, prefix, what, *detail ? " — " : "", detail);
    if (failed)
        n_fail++;
    else
        n_pass++;
}

/* vsnprintf of an optional format: fmt NULL gives "". */
static void format_detail(char *buf, size_t n, const char *fmt, va_list ap)
{
    buf[0] = 0;
    if (fmt) vsnprintf(buf, n, fmt, ap);
}

void atest_check(int ok, const char *what, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    format_detail(detail, sizeof detail, fmt, ap);
    va_end(ap);
    print_counted(ok ? "PASS" : "FAIL", !ok, what, detail);
}

void atest_line(int ok, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    format_detail(line, sizeof line, fmt, ap);
    va_end(ap);
    print_counted(ok ? "PASS" : "FAIL", !ok, line, "");
}

void atest_verdict(lra_gc_verdict v, const char *what, const char *fmt, ...)
{
    static const char *const word[] = {[LRA_GC_PASS] = "PASS", [LRA_GC_WARN] = "WARN",
                                       [LRA_GC_FAIL] = "FAIL"};
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    format_detail(detail, sizeof detail, fmt, ap);
    va_end(ap);
    print_counted(word[v], v == LRA_GC_FAIL, what, detail);
}

int atest_failures(void) { return n_fail; }

int atest_summary(void)
{
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

/* ---- buffers and inputs ---- */

/* lra_alloc zeroes and gives a valid block for 0 bytes (n_params is often 0). */
float *atest_floats(size_t n) { return lra_alloc(n * sizeof(float), "test buffer"); }
double *atest_doubles(size_t n) { return lra_alloc(n * sizeof(double), "test buffer"); }

void atest_fill_uniform(float *x, size_t n, uint64_t key, float amplitude)
{
    for (size_t i = 0; i < n; i++) x[i] = amplitude * (2.0f * lra_uniform(key, i) - 1.0f);
}

void atest_fill_range(float *x, size_t n, uint64_t key, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * lra_uniform(key, i);
}

void atest_fill_normal(float *x, size_t n, uint64_t key, float sd)
{
    for (size_t i = 0; i < n; i++) x[i] = sd * lra_normal(key, i);
}

/* ---- errors: each over a double reference yd, or a float one yf when yd is NULL ---- */

static double ref_at(const double *yd, const float *yf, size_t i)
{
    return yd ? yd[i] : (double)yf[i];
}

static double max_abs_any(const double *yd, const float *yf, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(ref_at(yd, yf, i)));
    return m;
}

static double max_diff_any(const float *x, const double *yd, const float *yf, size_t n)
{
    double err = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)x[i] - ref_at(yd, yf, i));
        if (!(d <= err)) err = isnan(d) ? INFINITY : d; /* a NaN fails d <= err: kept */
    }
    return err;
}

static double rel_frobenius_any(const float *x, const double *yd, const float *yf, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double y = ref_at(yd, yf, i), d = (double)x[i] - y;
        num += d * d;
        den += y * y;
    }
    return sqrt(num / fmax(den, 1e-300));
}

double atest_max_abs(const float *x, size_t n) { return max_abs_any(NULL, x, n); }
double atest_max_abs_d(const double *y, size_t n) { return max_abs_any(y, NULL, n); }

double atest_max_diff(const float *x, const double *y, size_t n)
{
    return max_diff_any(x, y, NULL, n);
}

double atest_max_diff_f(const float *x, const float *y, size_t n)
{
    return max_diff_any(x, NULL, y, n);
}

double atest_rel_err(const float *x, const double *y, size_t n)
{
    return atest_max_diff(x, y, n) / fmax(atest_max_abs_d(y, n), 1e-30);
}

double atest_rel_err_f(const float *x, const float *y, size_t n)
{
    return atest_max_diff_f(x, y, n) / fmax(atest_max_abs(y, n), 1e-30);
}

double atest_rel_frobenius(const float *x, const double *y, size_t n)
{
    return rel_frobenius_any(x, y, NULL, n);
}

double atest_rel_frobenius_f(const float *x, const float *y, size_t n)
{
    return rel_frobenius_any(x, NULL, y, n);
}

/* ---- a variant's context ---- */

static int apply_options(const lra_attention *a, void *priv, const char *list, char *why,
                         size_t whylen)
{
    char buf[512]; /* strtok_r writes: a copy, as the list is often a literal */
    snprintf(buf, sizeof buf, "%s", list ? list : "");
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            snprintf(why, whylen, "option list '%s': '%s' is not name=value", list, kv);
            return 1;
        }
        *eq = 0;
        if (lra_opts_set(a->options, priv, kv, eq + 1, why, whylen) != 0) return 1;
    }
    return 0;
}

int atest_ctx_options(lra_attn_ctx *c, const lra_attention *a, const char *opts, char *why,
                      size_t whylen)
{
    c->priv = lra_alloc(a->priv_size ? a->priv_size : 1, "plugin options");
    lra_opts_defaults(a->options, c->priv);
    return apply_options(a, c->priv, opts, why, whylen);
}

/* ---- a variant on one shape with the buffers of L = Σ out∘r ---- */

int atest_run_open(atest_run *r, const lra_attention *a, const lra_attn_ctx *settings,
                   const char *opts, char *why, size_t whylen)
{
    memset(r, 0, sizeof *r);
    if (!a) {
        snprintf(why, whylen, "not registered");
        return 1;
    }
    r->a = a;
    r->ctx = *settings;
    const lra_attn_shape *s = &r->ctx.shape;
    r->B = s->batch, r->H = s->heads, r->T = s->len, r->D = s->dim;
    r->nx = (size_t)r->B * r->H * r->T * r->D;
    r->mask = atest_floats((size_t)r->B * r->T);
    for (size_t i = 0; i < (size_t)r->B * r->T; i++) r->mask[i] = 1.0f;
    r->ctx.key_mask = r->mask;
    lra_attn_ctx *c = &r->ctx;
    if (atest_ctx_options(c, a, opts, why, whylen)) return 1;
    a->sizes(c, &r->sz);
    c->params = atest_floats(r->sz.n_params);
    c->dparams = atest_floats(r->sz.n_params);
    c->state = atest_floats(r->sz.n_state);
    c->cache = atest_floats(r->sz.n_cache);
    c->scratch = atest_floats(r->sz.n_scratch);
    float **bufs[] = {&r->q, &r->k, &r->v, &r->out, &r->r, &r->dq, &r->dk, &r->dv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) *bufs[i] = atest_floats(r->nx);
    return 0;
}

void atest_run_open_or_die(atest_run *r, const char *name, const lra_attn_ctx *settings,
                           const char *opts)
{
    char why[256] = "";
    if (atest_run_open(r, lra_attn_find(name), settings, opts, why, sizeof why) != 0 ||
        r->a->init(&r->ctx, why, sizeof why) != LRA_ATTN_OK)
        lra_die("%s (%s): %s", name, opts ? opts : "defaults", why);
}

void atest_run_pad_last_keys(atest_run *r, int n)
{
    for (int b = 0; b < r->B; b++)
        for (int t = 0; t < r->T; t++)
            r->mask[b * r->T + t] = b >= 1 && t >= r->T - n ? 0.0f : 1.0f;
}

void atest_run_fill(atest_run *r, uint64_t seed, float amp_qk)
{
    atest_fill_uniform(r->q, r->nx, lra_key(seed, 1), amp_qk);
    atest_fill_uniform(r->k, r->nx, lra_key(seed, 2), amp_qk);
    atest_fill_uniform(r->v, r->nx, lra_key(seed, 3), 1.0f);
    atest_fill_uniform(r->r, r->nx, lra_key(seed, 4), 1.0f);
}

void atest_run_fill_range(atest_run *r, uint64_t seed, float amp_qk)
{
    atest_fill_range(r->q, r->nx, lra_key(seed, 1), -amp_qk, amp_qk);
    atest_fill_range(r->k, r->nx, lra_key(seed, 2), -amp_qk, amp_qk);
    atest_fill_range(r->v, r->nx, lra_key(seed, 3), -1.0f, 1.0f);
    atest_fill_range(r->r, r->nx, lra_key(seed, 4), -1.0f, 1.0f);
}

void atest_run_fill_padded(atest_run *r, uint64_t seed)
{
    const uint64_t key = lra_key(lra_key(seed, (uint64_t)r->T), (uint64_t)r->D);
    float *bufs[] = {r->q, r->k, r->v, r->r};
    const float amplitude[] = {2.0f, 2.0f, 1.0f, 1.0f};
    for (int i = 0; i < 4; i++)
        atest_fill_uniform(bufs[i], r->nx, lra_key(key, (uint64_t)i), amplitude[i]);
    const int T = r->T;
    for (int b = 0; b < r->B; b++)
        for (int t = 0; t < T; t++) {
            int real = 1;
            if (b == 1)
                real = t == 0 || (t < 0.6 * T && lra_uniform(lra_key(key, 9), (uint64_t)t) >= 0.2f);
            else if (b >= 2)
                real = 0;
            r->mask[(size_t)b * T + t] = (float)real;
        }
}

void atest_run_forward(atest_run *r) { r->a->forward(&r->ctx, r->q, r->k, r->v, r->out); }

void atest_run_gradients(atest_run *r)
{
    /* backward adds into the gradients: zero them for a fresh set. */
    memset(r->dq, 0, r->nx * sizeof(float));
    memset(r->dk, 0, r->nx * sizeof(float));
    memset(r->dv, 0, r->nx * sizeof(float));
    if (r->sz.n_params) memset(r->ctx.dparams, 0, r->sz.n_params * sizeof(float));
    atest_run_forward(r);
    r->a->backward(&r->ctx, r->q, r->k, r->v, r->out, r->r, r->dq, r->dk, r->dv);
}

double atest_run_loss(void *run)
{
    atest_run *r = run;
    atest_run_forward(r);
    double l = 0.0;
    for (size_t i = 0; i < r->nx; i++) l += (double)r->out[i] * r->r[i];
    return l;
}

void atest_run_close(atest_run *r)
{
    lra_attn_ctx *c = &r->ctx;
    if (r->a && r->a->free) r->a->free(c); /* the contract allows it after a failed init too */
    void *bufs[] = {c->priv, c->params, c->dparams, c->state, c->cache, c->scratch, r->mask,
                    r->q, r->k, r->v, r->out, r->r, r->dq, r->dk, r->dv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
}
