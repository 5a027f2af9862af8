/* approx_measure.c — how `lra approx` measures: a variant set up as a plugin on the inputs,
 * norms of (B, H, T, Dh) tensors, the spectral norm of an attention operator by power
 * iteration, the linearity probe, softmax's reference output, and the errors of one point.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "approx.h"
#include "lra_rng.h"
#include "options.h"
#include "platform.h"

static const uint64_t SALT_PLUGIN = 0xa9970c, SALT_PROBE = 0xa99707e;

/* ---- plugins ----------------------------------------------------------------------------- */

/* Sets variant a up on the input shape. Returns 0, or 1 with the reason when init refuses. */
static int plugin_open(plugin *p, const lra_attention *a, const approx_opts *o,
                       const inputs *in, const char *option, const char *value, uint64_t seed,
                       char *why, size_t whylen)
{
    memset(p, 0, sizeof *p);
    p->a = a;
    lra_attn_ctx *c = &p->ctx;
    c->shape = in->shape;
    c->priv = lra_alloc(a->priv_size, "plugin options");
    /* checked before anything runs */
    LRA_ASSERT(lra_approx_set_options(o, a, c->priv, option, value, why, whylen) == 0);
    c->key_mask = in->mask;
    c->seed = seed;
    c->threads = lra_threads();
    a->sizes(c, &p->sz);
    c->params = floats(p->sz.n_params);
    c->dparams = floats(p->sz.n_params);
    c->state = floats(p->sz.n_state);
    c->cache = floats(p->sz.n_cache);
    c->scratch = floats(p->sz.n_scratch);
    p->out = floats(in->nx);
    p->gq = floats(in->nx);
    p->gk = floats(in->nx);
    return a->init(c, why, whylen) == LRA_ATTN_OK ? 0 : 1;
}

static void plugin_close(plugin *p)
{
    lra_attn_ctx *c = &p->ctx;
    if (p->a->free) p->a->free(c);
    void *bufs[] = {c->priv, c->params, c->dparams, c->state, c->cache, c->scratch, p->out,
                    p->gq, p->gk};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
}

/* p->out = M x: the variant's output with values x. */
static void plugin_apply(plugin *p, const inputs *in, const float *x)
{
    p->a->forward(&p->ctx, in->q, in->k, x, p->out);
}

/* z (+)= Mᵀ y: backward at values x (after plugin_apply(x)) with dout = y. */
static void plugin_apply_t(plugin *p, const inputs *in, const float *x, const float *y,
                           float *z)
{
    p->a->backward(&p->ctx, in->q, in->k, x, p->out, y, p->gq, p->gk, z);
}

/* ---- linear algebra on (B, H, T, Dh) tensors ---------------------------------------------- */

/* Zeroes the rows of padded tokens: restricts a tensor to the real rows (or columns). */
static void mask_rows(float *x, const inputs *in)
{
    const lra_attn_shape *s = &in->shape;
    for (int bh = 0; bh < s->batch * s->heads; bh++)
        for (int t = 0; t < s->len; t++)
            if (in->mask[(size_t)(bh / s->heads) * s->len + t] == 0.0f)
                memset(x + ((size_t)bh * s->len + t) * s->dim, 0, (size_t)s->dim * sizeof(float));
}

/* out[s] = ‖x_s − y_s‖_F per slice (y may be NULL). */
static void slice_norms(const inputs *in, const float *x, const float *y, double *out)
{
    const size_t per = (size_t)in->shape.len * in->shape.dim;
    for (int bh = 0; bh < in->shape.batch * in->shape.heads; bh++) {
        double ss = 0.0;
        for (size_t i = bh * per; i < (bh + 1) * per; i++) {
            const double d = (double)x[i] - (y ? (double)y[i] : 0.0);
            ss += d * d;
        }
        out[bh] = sqrt(ss);
    }
}

static void fill_uniform(float *x, size_t n, uint64_t key)
{
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * lra_uniform(key, i) - 1.0f;
}

/* ‖A‖₂ of one (T, Dh) slice: the square root of the top eigenvalue of the Dh×Dh Gram matrix
 * AᵀA, by power iteration in double (relative change ≤ 1e-12, or GRAM_MAX_ITERS steps). Padded
 * rows must be zero already. */
static double slice_spectral(const float *A, int T, int D)
{
    double *g = lra_alloc(((size_t)D * D + 2 * (size_t)D) * sizeof(double), "Gram matrix");
    double *u = g + (size_t)D * D, *w = u + D;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++)
                g[i * D + j] += (double)A[(size_t)t * D + i] * A[(size_t)t * D + j];
    for (int i = 0; i < D; i++) u[i] = 1.0 + 0.01 * i; /* not orthogonal to the top vector */
    double lambda = 0.0;
    for (int it = 0; it < GRAM_MAX_ITERS; it++) {
        double nrm = 0.0;
        for (int i = 0; i < D; i++) {
            w[i] = 0.0;
            for (int j = 0; j < D; j++) w[i] += g[i * D + j] * u[j];
            nrm += w[i] * w[i];
        }
        nrm = sqrt(nrm); /* ‖G u‖ for unit u: tends to the top eigenvalue */
        if (nrm == 0.0) break;
        for (int i = 0; i < D; i++) u[i] = w[i] / nrm;
        const int done = fabs(nrm - lambda) <= 1e-12 * nrm;
        lambda = nrm;
        if (done) break;
    }
    lra_free(g);
    return sqrt(lambda);
}

/* E = plus − minus (minus may be NULL), restricted to real rows and columns. Power iteration
 * on EᵀE per slice: sigma[s] = ‖E_s‖₂. Returns the iterations used. */
static int operator_norm(plugin *plus, plugin *minus, const inputs *in, double *sigma)
{
    const int S = in->shape.batch * in->shape.heads;
    const size_t nx = in->nx, per = nx / (size_t)S;
    float *x = floats(nx), *y = floats(nx), *z = floats(nx);
    double *nrm = lra_alloc((size_t)S * sizeof(double), "norms");
    fill_uniform(x, nx, lra_key(SALT_PROBE, 1));
    mask_rows(x, in);
    slice_norms(in, x, NULL, nrm);
    for (int s = 0; s < S; s++) sigma[s] = 0.0;
    int it = 0, converged = 0;
    while (it < POWER_MAX_ITERS && !converged) {
        it++;
        for (size_t i = 0; i < nx; i++) x[i] = nrm[i / per] > 0 ? x[i] / (float)nrm[i / per] : 0;
        plugin_apply(plus, in, x);
        if (minus) plugin_apply(minus, in, x);
        for (size_t i = 0; i < nx; i++) y[i] = plus->out[i] - (minus ? minus->out[i] : 0.0f);
        mask_rows(y, in);
        slice_norms(in, y, NULL, nrm);
        converged = 1;
        for (int s = 0; s < S; s++) {
            converged &= fabs(nrm[s] - sigma[s]) <= POWER_TOL * nrm[s];
            sigma[s] = nrm[s];
        }
        /* x ← Eᵀ E x: the backward of plus adds Mᵀy, the negated dout makes minus subtract. */
        memset(z, 0, nx * sizeof(float));
        plugin_apply_t(plus, in, x, y, z);
        if (minus) {
            for (size_t i = 0; i < nx; i++) y[i] = -y[i];
            plugin_apply_t(minus, in, x, y, z);
        }
        mask_rows(z, in);
        memcpy(x, z, nx * sizeof(float));
        slice_norms(in, x, NULL, nrm);
    }
    lra_free(x);
    lra_free(y);
    lra_free(z);
    lra_free(nrm);
    return it;
}

/* Probes whether V ↦ O is linear and backward its adjoint: M(a+b) = Ma + Mb and
 * ⟨Ma, c⟩ = ⟨a, Mᵀc⟩, each to LINEAR_TOL. Returns 1, or 0 with the reason. */
static int probe_linear(plugin *p, const inputs *in, char *why, size_t whylen)
{
    const size_t nx = in->nx;
    float *a = floats(nx), *b = floats(nx), *c = floats(nx), *ma = floats(nx), *mab = floats(nx);
    fill_uniform(a, nx, lra_key(SALT_PROBE, 2));
    fill_uniform(b, nx, lra_key(SALT_PROBE, 3));
    mask_rows(a, in);
    mask_rows(b, in);
    for (size_t i = 0; i < nx; i++) c[i] = a[i] + b[i];
    plugin_apply(p, in, c);
    memcpy(mab, p->out, nx * sizeof(float));
    plugin_apply(p, in, b);
    for (size_t i = 0; i < nx; i++) mab[i] -= p->out[i]; /* M(a+b) − Mb, should be Ma */
    plugin_apply(p, in, a); /* last: backward below needs forward's cache at a */
    memcpy(ma, p->out, nx * sizeof(float));
    mask_rows(ma, in);
    mask_rows(mab, in);
    fill_uniform(c, nx, lra_key(SALT_PROBE, 4));
    mask_rows(c, in);
    double res = 0.0, ref = 0.0, lhs = 0.0, rhs = 0.0, cc = 0.0;
    for (size_t i = 0; i < nx; i++) {
        res += ((double)mab[i] - ma[i]) * ((double)mab[i] - ma[i]);
        ref += (double)ma[i] * ma[i];
        lhs += (double)ma[i] * c[i];
        cc += (double)c[i] * c[i];
    }
    memset(b, 0, nx * sizeof(float));
    plugin_apply_t(p, in, a, c, b); /* b = Mᵀ c */
    mask_rows(b, in);
    for (size_t i = 0; i < nx; i++) rhs += (double)a[i] * b[i];
    const double add = sqrt(res / (ref > 0 ? ref : 1));
    const double adj = fabs(lhs - rhs) / (sqrt(ref * cc) > 0 ? sqrt(ref * cc) : 1);
    if (add > LINEAR_TOL)
        snprintf(why, whylen, "output is not linear in V (additivity residual %.2g)", add);
    else if (adj > LINEAR_TOL)
        snprintf(why, whylen, "backward's dv is not the adjoint of V -> O (residual %.2g)", adj);
    void *bufs[] = {a, b, c, ma, mab};
    for (size_t i = 0; i < 5; i++) lra_free(bufs[i]);
    return add <= LINEAR_TOL && adj <= LINEAR_TOL;
}

/* Softmax's output and the norms every error is normalised by. */
void lra_approx_reference(inputs *in, const approx_opts *o)
{
    const int S = in->shape.batch * in->shape.heads;
    const size_t per = in->nx / (size_t)S;
    char why[256];
    plugin sm;
    if (plugin_open(&sm, lra_attn_find("softmax"), o, in, NULL, NULL, 0, why, sizeof why))
        lra_die("softmax rejects the inputs: %s", why);
    plugin_apply(&sm, in, in->v);
    memcpy(in->ref, sm.out, in->nx * sizeof(float));
    mask_rows(in->ref, in);
    operator_norm(&sm, NULL, in, in->p_norm);
    float *v = floats(in->nx);
    memcpy(v, in->v, in->nx * sizeof(float));
    mask_rows(v, in);
    for (int s = 0; s < S; s++)
        in->v_norm[s] = slice_spectral(v + s * per, in->shape.len, in->shape.dim);
    lra_free(v);
    plugin_close(&sm);
}

/* ---- one point ----------------------------------------------------------------------------- */

/* Mean and sample standard deviation of x[0..n); NaN when n is 0 or any x is NaN. */
void lra_approx_mean_std(const double *x, int n, double *mean, double *std)
{
    double s = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : n ? 0.0 * *mean : NAN;
}

static double mean_of(const double *x, int n)
{
    double m, sd;
    lra_approx_mean_std(x, n, &m, &sd);
    return m;
}

/* Errors of variant p (set up, not yet run) at one seed into pt->…[seed]. */
static void measure_seed(plugin *p, plugin *sm, const inputs *in, point *pt, int seed)
{
    const int S = in->shape.batch * in->shape.heads, T = in->shape.len, D = in->shape.dim;
    const size_t per = in->nx / (size_t)S;
    double *num = lra_alloc((size_t)S * sizeof(double), "norms");
    double *den = lra_alloc((size_t)S * sizeof(double), "norms");
    plugin_apply(p, in, in->v);
    /* the discrete choices made on the real V define the operator measured below */
    if (p->a->flags & LRA_ATTN_NONSMOOTH) p->ctx.freeze_choices = 1;
    float *o = floats(in->nx);
    memcpy(o, p->out, in->nx * sizeof(float));
    mask_rows(o, in);
    for (size_t i = 0; i < in->nx; i++) o[i] -= in->ref[i]; /* O − O* on the real rows */
    slice_norms(in, o, NULL, num);
    slice_norms(in, in->ref, NULL, den);
    for (int s = 0; s < S; s++) {
        num[s] = den[s] > 0 ? num[s] / den[s] : 0.0;
        den[s] = slice_spectral(o + s * per, T, D) / (in->p_norm[s] * in->v_norm[s]);
    }
    pt->frob[seed] = mean_of(num, S);
    pt->spec[seed] = mean_of(den, S);
    pt->linear = probe_linear(p, in, pt->reason, sizeof pt->reason);
    pt->oper[seed] = NAN;
    if (pt->linear) {
        const int it = operator_norm(p, sm, in, num);
        if (it > pt->power_iters) pt->power_iters = it;
        for (int s = 0; s < S; s++) num[s] /= in->p_norm[s];
        pt->oper[seed] = mean_of(num, S);
    }
    lra_free(o);
    lra_free(num);
    lra_free(den);
}

/* "name=value,..." of every option of a, as set in priv. */
static void format_options(const lra_attention *a, const void *priv, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (const lra_attn_option *t = a->options; t && t->name && off < n; t++) {
        char v[64];
        lra_opts_get(t, priv, v, sizeof v);
        off += (size_t)snprintf(buf + off, n - off, "%s%s=%s", off ? "," : "", t->name, v);
    }
}

void lra_approx_measure_point(const approx_opts *o, const inputs *in, point *pt)
{
    char why[256] = "";
    plugin sm, p;
    LRA_ASSERT(plugin_open(&sm, lra_attn_find("softmax"), o, in, NULL, NULL, 0, why,
                           sizeof why) == 0);
    const int stochastic = (pt->a->flags & LRA_ATTN_STOCHASTIC) != 0;
    snprintf(pt->status, sizeof pt->status, "ok");
    for (int seed = 0; seed < (stochastic ? o->seeds : 1); seed++) {
        const uint64_t key = lra_key(lra_key((uint64_t)in->cfg.seed, SALT_PLUGIN),
                                     (uint64_t)seed);
        int rejected = plugin_open(&p, pt->a, o, in, pt->option, pt->value, key, why,
                                   sizeof why);
        if (seed == 0) {
            pt->flops = p.a->flops(&p.ctx);
            format_options(pt->a, p.ctx.priv, pt->options, sizeof pt->options);
        }
        if (rejected) {
            snprintf(pt->status, sizeof pt->status, "skipped");
            snprintf(pt->reason, sizeof pt->reason, "%s", why);
        } else {
            measure_seed(&p, &sm, in, pt, seed);
            pt->seeds = seed + 1;
        }
        plugin_close(&p);
        if (rejected) break;
    }
    plugin_close(&sm);
}
