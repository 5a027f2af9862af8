/* cmd_approx.c — `lra approx`: how far each attention variant is from exact softmax attention
 * on realistic inputs, and how that error moves with the variant's size knob.
 *
 * Inputs. q, k and v are what layer 0 of the model sees: the first --batch test sequences of
 * the task (document 0 of two-document tasks), token embedding (+ CLS vector) + position code,
 * LayerNorm ln1, then Wqkv split into heads (B, H, T, Dh), with the parameters of a freshly
 * initialised model (cfg->seed) or, with --checkpoint, of a trained one (its best-validation
 * parameters; the configuration is read from the checkpoint itself). The sequences' padding is
 * the key mask. T is the model's token count: seq_len, plus 1 with CLS pooling.
 *
 * Measures, per (batch, head) slice s, over the real query rows and real key columns only:
 * padded queries' outputs never reach the prediction (pooling and later layers' keys are masked),
 * and padded keys cannot reach any output. O is the variant's output, O* softmax's, P the
 * softmax matrix, V the values; ‖·‖_F Frobenius, ‖·‖₂ spectral norm of a matrix.
 *   frobenius = ‖O − O*‖_F / ‖O*‖_F.
 *   spectral  = ‖O − O*‖₂ / (‖P‖₂ ‖V‖₂): KDEformer's normalisation (Zandieh et al. 2023, Thm.
 *               bounds ‖Att − Att*‖_op ≤ ε ‖D⁻¹A‖_op ‖V‖_op); O, V are (real rows × Dh).
 *   operator  = ‖M − P‖₂ / ‖P‖₂, where M: V ↦ O at these q, k is the variant's attention
 *               operator. Every variant that is linear in V has one, kernel methods included;
 *               for a map acting on each value column alike, M = A ⊗ I and this is the spectral
 *               norm of the T×T matrix A − P. M is applied by forward() with v = x, and Mᵀ by
 *               backward() with dout = y, whose dv is Mᵀy when q and k are fixed. NONSMOOTH
 *               variants set freeze_choices after the first forward (on the real V), so M
 *               stays the operator applied to the real V. The norm comes from power iteration
 *               on (M−P)ᵀ(M−P) from a fixed random start: σ_j = ‖(M−P)x_j‖ for unit x_j,
 *               at most POWER_MAX_ITERS (100) iterations, stopping when every slice has
 *               |σ_j − σ_{j−1}| ≤ POWER_TOL·σ_j (1e-4); σ_j approaches ‖M−P‖₂ from below.
 *               ‖P‖₂ comes the same way. Before that, a probe checks M(a+b) = Ma + Mb and
 *               ⟨Ma, c⟩ = ⟨a, Mᵀc⟩ to LINEAR_TOL (1e-4, relative); a variant failing it
 *               gets NaN ("n/a").
 * Each is averaged over the slices; STOCHASTIC variants run --seeds plugin seeds and report the
 * mean and the sample standard deviation over seeds. The cost axis is the plugin's flops().
 *
 * Output: a table, and an HDF5 file (results/README.md, "Approximation files") rewritten
 * atomically (tmp, fsync, rename) after every point.
 */
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cli.h"
#include "lra_rng.h"
#include "model.h"
#include "ops.h"
#include "options.h"
#include "platform.h"
#include "presets.h"
#include "registry.h"
#include "task.h"

extern const char *const lra_code_version;

enum { MAX_VARIANTS = 64, MAX_POINTS = 32, MAX_SPECS = 64, MAX_SEEDS = 100 };
enum { POWER_MAX_ITERS = 100, GRAM_MAX_ITERS = 500 };
static const double POWER_TOL = 1e-4;  /* relative change of σ between power iterations */
static const double LINEAR_TOL = 1e-4; /* relative residual of the linearity probe */
static const uint64_t SALT_PLUGIN = 0xa9970c, SALT_PROBE = 0xa99707e;

/* "[variant.]name=value[,value...]" from --set attn.… and --sweep. */
typedef struct spec {
    char variant[32]; /* empty: every variant that has the option */
    char name[48];
    char values[MAX_POINTS][48];
    int n;
} spec;

typedef struct approx_opts {
    const lra_attention *attn[MAX_VARIANTS];
    int n_attn;
    const char *task, *preset, *checkpoint, *out, *data_dir, *input;
    int len, batch, seeds, quiet;
    const char *sets[MAX_SPECS]; /* configuration settings other than attn.* */
    int n_sets;
    spec fixed[MAX_SPECS], sweep[MAX_SPECS];
    int n_fixed, n_sweep;
} approx_opts;

/* The inputs every variant is compared on, and softmax's answers. */
typedef struct inputs {
    lra_config cfg;
    lra_attn_shape shape;
    size_t nx;            /* floats in one (B, H, T, Dh) tensor */
    float *q, *k, *v;     /* (B, H, T, Dh) */
    float *mask;          /* (B, T) 1 = real token */
    float *ref;           /* (B, H, T, Dh) softmax output O* */
    double *p_norm;       /* (B·H) ‖P_s‖₂ */
    double *v_norm;       /* (B·H) ‖V_s‖₂ */
    char config_text[16384];
} inputs;

/* One variant set up on the input shape, with the buffers its calls need. */
typedef struct plugin {
    const lra_attention *a;
    lra_attn_ctx ctx;
    lra_attn_sizes sz;
    float *out, *gq, *gk; /* (B, H, T, Dh): forward's output; backward's discarded dq, dk */
} plugin;

/* One (variant, sweep point): what the table and the file report. */
typedef struct point {
    const lra_attention *a;
    const char *option, *value; /* "" without a sweep */
    char options[512];          /* every option of the variant, resolved */
    char status[16], reason[256];
    int seeds, linear, power_iters;
    double flops;
    double frob[MAX_SEEDS], spec[MAX_SEEDS], oper[MAX_SEEDS];
} point;

static void help(void)
{
    printf("usage: lra approx --attn A[,B...] [--len L] [--task T] [--sweep [A.]NAME=V1,V2...]\n"
           "                  [--seeds N] [--batch B] [--preset P] [--set key=value]...\n"
           "                  [--checkpoint FILE] [--out FILE.h5] [--data-dir DIR]\n"
           "                  [--input PATH] [--plugin PATH] [--quiet]\n\n"
           "Measures how far each attention variant is from exact softmax on the queries, keys\n"
           "and values that layer 0 of the model computes from real sequences of the task:\n"
           "relative Frobenius and spectral (KDEformer) error of the output, and the spectral\n"
           "error of the attention operator V -> O, by power iteration.\n\n"
           "  --attn A,B        variants from 'lra list attention'\n"
           "  --len L           tokens per sequence (seq_len; default: the preset's)\n"
           "  --task T          task whose sequences are used (default text)\n"
           "  --sweep [A.]N=V,V one point per value of option N (of variant A only, or of\n"
           "                    every variant that has N); repeatable, one per variant\n"
           "  --seeds N         plugin seeds for stochastic variants (default 3)\n"
           "  --batch B         sequences (default 2)\n"
           "  --preset P        model configuration (default quick)\n"
           "  --set key=value   configuration key; attn.NAME=V or attn.VARIANT.NAME=V sets a\n"
           "                    variant option (e.g. attn.performer.kernel=softmax)\n"
           "  --checkpoint FILE trained parameters and their configuration (from --out\n"
           "                    FILE.h5 of 'lra train': FILE.h5.ckpt)\n"
           "  --out FILE.h5     results (default results/approx.h5)\n\n"
           "Exit status: 0 done (variants that reject the shape are recorded as skipped),\n"
           "1 failure, 2 usage error.\n");
}

/* ---- arguments ------------------------------------------------------------------------- */

/* Parses "[variant.]name=v1[,v2...]" into s; returns 0, or -1 with a message. */
static int parse_spec(const char *text, spec *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    const char *eq = strchr(text, '=');
    if (!eq || eq == text) {
        snprintf(err, errlen, "'%s' is not [VARIANT.]NAME=VALUE[,VALUE...]", text);
        return -1;
    }
    const char *dot = memchr(text, '.', (size_t)(eq - text));
    const char *name = dot ? dot + 1 : text;
    if (dot && (dot == text || (size_t)(dot - text) >= sizeof s->variant)) {
        snprintf(err, errlen, "'%s': bad variant name", text);
        return -1;
    }
    if (dot) snprintf(s->variant, sizeof s->variant, "%.*s", (int)(dot - text), text);
    if (name == eq || (size_t)(eq - name) >= sizeof s->name) {
        snprintf(err, errlen, "'%s': bad option name", text);
        return -1;
    }
    snprintf(s->name, sizeof s->name, "%.*s", (int)(eq - name), name);
    for (const char *v = eq + 1;; s->n++) {
        size_t n = strcspn(v, ",");
        if (n == 0 || n >= sizeof s->values[0] || s->n == MAX_POINTS) {
            snprintf(err, errlen, "'%s': empty or too long value, or more than %d values", text,
                     MAX_POINTS);
            return -1;
        }
        snprintf(s->values[s->n], sizeof s->values[0], "%.*s", (int)n, v);
        if (v[n] == 0) break;
        v += n + 1;
    }
    s->n++;
    return 0;
}

static void parse_attn_list(approx_opts *o, const char *list)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *n = strtok_r(buf, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
        const lra_attention *a = lra_attn_find(n);
        if (!a) lra_usage_error("approx", "unknown attention variant '%s' (see 'lra list "
                                "attention')", n);
        if (o->n_attn == MAX_VARIANTS) lra_usage_error("approx", "too many variants");
        o->attn[o->n_attn++] = a;
    }
    if (o->n_attn == 0) lra_usage_error("approx", "--attn names no variant");
}

/* --set attn.… becomes a fixed plugin option; anything else configures the model. */
static void add_setting(approx_opts *o, const char *kv)
{
    char err[256];
    if (o->n_sets == MAX_SPECS || o->n_fixed == MAX_SPECS)
        lra_usage_error("approx", "too many settings");
    if (strncmp(kv, "attn.", 5) != 0) {
        o->sets[o->n_sets++] = kv;
        return;
    }
    spec *s = &o->fixed[o->n_fixed++];
    if (parse_spec(kv + 5, s, err, sizeof err) != 0 || s->n != 1)
        lra_usage_error("approx", "--set %s: %s", kv, s->n != 1 ? "one value only" : err);
}

static void parse_args(approx_opts *o, int argc, char **argv)
{
    const char *v = NULL;
    char err[1024];
    *o = (approx_opts){.task = "text", .preset = "quick", .out = "results/approx.h5",
                       .batch = 2, .seeds = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            exit(LRA_EXIT_OK);
        } else if (lra_arg_value(argc, argv, &i, "--task", &o->task, "approx") ||
                   lra_arg_value(argc, argv, &i, "--preset", &o->preset, "approx") ||
                   lra_arg_value(argc, argv, &i, "--checkpoint", &o->checkpoint, "approx") ||
                   lra_arg_value(argc, argv, &i, "--out", &o->out, "approx") ||
                   lra_arg_value(argc, argv, &i, "--data-dir", &o->data_dir, "approx") ||
                   lra_arg_value(argc, argv, &i, "--input", &o->input, "approx")) {
            continue;
        } else if (lra_arg_value(argc, argv, &i, "--attn", &v, "approx")) {
            parse_attn_list(o, v);
        } else if (lra_arg_value(argc, argv, &i, "--len", &v, "approx")) {
            o->len = lra_arg_int("approx", "--len", v, 1, 1 << 20);
        } else if (lra_arg_value(argc, argv, &i, "--batch", &v, "approx")) {
            o->batch = lra_arg_int("approx", "--batch", v, 1, 1024);
        } else if (lra_arg_value(argc, argv, &i, "--seeds", &v, "approx")) {
            o->seeds = lra_arg_int("approx", "--seeds", v, 1, MAX_SEEDS);
        } else if (lra_arg_value(argc, argv, &i, "--set", &v, "approx")) {
            add_setting(o, v);
        } else if (lra_arg_value(argc, argv, &i, "--sweep", &v, "approx")) {
            if (o->n_sweep == MAX_SPECS) lra_usage_error("approx", "too many sweeps");
            if (parse_spec(v, &o->sweep[o->n_sweep++], err, sizeof err) != 0)
                lra_usage_error("approx", "--sweep %s", err);
        } else if (lra_arg_value(argc, argv, &i, "--plugin", &v, "approx")) {
            if (lra_attn_load(v, err, sizeof err) != 0) lra_die("%s", err);
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            o->quiet = 1;
        } else {
            lra_usage_error("approx", "unexpected argument '%s'", a);
        }
    }
    if (o->n_attn == 0) lra_usage_error("approx", "--attn is required (see 'lra list "
                                        "attention')");
}

/* 1 when spec s applies to variant a: named for it, or unnamed and a has the option. */
static int spec_applies(const spec *s, const lra_attention *a)
{
    if (s->variant[0]) return strcmp(s->variant, a->name) == 0;
    for (const lra_attn_option *t = a->options; t && t->name; t++)
        if (strcmp(t->name, s->name) == 0) return 1;
    return 0;
}

/* The sweep of variant a: the first one naming it, else the first unnamed one it has. */
static const spec *sweep_of(const approx_opts *o, const lra_attention *a)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < o->n_sweep; i++)
            if ((pass == 0) == (o->sweep[i].variant[0] != 0) && spec_applies(&o->sweep[i], a))
                return &o->sweep[i];
    return NULL;
}

/* Fills priv with a's defaults, the fixed options that apply, then option=value (if given). */
static int set_options(const approx_opts *o, const lra_attention *a, void *priv,
                       const char *option, const char *value, char *err, size_t errlen)
{
    lra_opts_defaults(a->options, priv);
    for (int i = 0; i < o->n_fixed; i++)
        if (spec_applies(&o->fixed[i], a) &&
            lra_opts_set(a->options, priv, o->fixed[i].name, o->fixed[i].values[0], err,
                         errlen) != 0)
            return -1;
    if (option && *option) return lra_opts_set(a->options, priv, option, value, err, errlen);
    return 0;
}

/* Every option and sweep value is checked before anything runs: a typo is a usage error, not a
 * file of skipped points. */
static void check_specs(const approx_opts *o)
{
    char err[512];
    const spec *lists[2] = {o->fixed, o->sweep};
    const int counts[2] = {o->n_fixed, o->n_sweep};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < counts[l]; i++) {
            int used = 0;
            for (int j = 0; j < o->n_attn; j++) used += spec_applies(&lists[l][i], o->attn[j]);
            if (!used)
                lra_usage_error("approx", "option '%s%s%s' belongs to none of the variants",
                                lists[l][i].variant, lists[l][i].variant[0] ? "." : "",
                                lists[l][i].name);
        }
    for (int j = 0; j < o->n_attn; j++) {
        const lra_attention *a = o->attn[j];
        const spec *s = sweep_of(o, a);
        void *priv = lra_alloc(a->priv_size, "plugin options");
        for (int p = 0; p < (s ? s->n : 1); p++)
            if (set_options(o, a, priv, s ? s->name : NULL, s ? s->values[p] : NULL, err,
                            sizeof err) != 0)
                lra_usage_error("approx", "%s: %s", a->name, err);
        lra_free(priv);
    }
}

/* ---- plugins ----------------------------------------------------------------------------- */

static float *floats(size_t n) { return lra_alloc(n * sizeof(float), "approx buffer"); }

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
    LRA_ASSERT(set_options(o, a, c->priv, option, value, why, whylen) == 0); /* checked */
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

/* ---- inputs -------------------------------------------------------------------------------- */

/* The configuration a checkpoint was trained with: its "config" attribute, `key = value` lines
 * as lra_config_format writes them. */
static int config_from_checkpoint(const char *path, lra_config *cfg, char *err, size_t errlen)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = f < 0 ? -1 : H5Aopen(f, "config", H5P_DEFAULT);
    hid_t ft = a < 0 ? -1 : H5Aget_type(a);
    const size_t n = ft < 0 ? 0 : H5Tget_size(ft);
    char *text = n ? calloc(n + 1, 1) : NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, n ? n : 1);
    int rc = text && H5Aread(a, mt, text) >= 0 ? 0 : -1;
    if (rc != 0) snprintf(err, errlen, "cannot read the configuration of checkpoint %s", path);
    H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    if (f >= 0) H5Fclose(f);
    lra_config_defaults(cfg);
    for (char *save = NULL, *l = rc ? NULL : strtok_r(text, "\n", &save); l && rc == 0;
         l = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(l, '=');
        if (!eq) continue;
        char val[96];
        snprintf(val, sizeof val, "%s", eq + 1 + (eq[1] == ' '));
        /* task, attn and preset are names, not keys of the configuration table */
        char *names[] = {cfg->task, cfg->attn, cfg->preset};
        const char *keys[] = {"task = ", "attn = ", "preset = "};
        int named = 0;
        for (int i = 0; i < 3; i++)
            if (strncmp(l, keys[i], strlen(keys[i])) == 0) {
                snprintf(names[i], 32, "%.31s", val);
                named = 1;
            }
        if (!named && lra_config_set_kv(cfg, l, err, errlen) != 0) rc = -1;
    }
    free(text);
    return rc;
}

static int resolve_config(const approx_opts *o, lra_config *cfg, char *err, size_t errlen)
{
    if (o->checkpoint) {
        if (o->n_sets || strcmp(o->preset, "quick") != 0)
            lra_usage_error("approx", "--checkpoint brings its configuration: no --preset or "
                            "--set of model keys");
        if (config_from_checkpoint(o->checkpoint, cfg, err, errlen) != 0) return -1;
        if (o->len && o->len != cfg->seq_len)
            lra_usage_error("approx", "the checkpoint was trained at --len %d", cfg->seq_len);
        return 0;
    }
    lra_config_defaults(cfg);
    snprintf(cfg->task, sizeof cfg->task, "%s", o->task);
    snprintf(cfg->attn, sizeof cfg->attn, "softmax"); /* no plugin parameters in the layout */
    if (lra_preset_apply(cfg, o->preset, err, errlen) != 0) lra_usage_error("approx", "%s", err);
    for (int i = 0; i < o->n_sets; i++)
        if (lra_config_set_kv(cfg, o->sets[i], err, errlen) != 0)
            lra_usage_error("approx", "--set %s: %s", o->sets[i], err);
    if (o->len) cfg->seq_len = o->len;
    return 0;
}

/* Layer 0's q, k, v of the first B test sequences, as model.c computes them in evaluation:
 * x = embed(tokens) (+ CLS) + positions, LayerNorm ln1, x·Wqkv split into heads. */
static void embed_qkv(inputs *in, lra_model *m, const lra_dataset *d, int B)
{
    const lra_config *c = &in->cfg;
    const int cls = c->pool == LRA_POOL_CLS, T = in->shape.len, D = c->emb_dim;
    const int Q = c->qkv_dim, N = B * T;
    float *params = lra_model_params(m);
#define TENSOR(name) (params + lra_model_tensor(m, lra_model_find_tensor(m, name))->offset)
    int32_t *tok = lra_alloc((size_t)N * sizeof(int32_t), "tokens");
    float *x = floats((size_t)N * D), *y = floats((size_t)N * D), *qkv = floats((size_t)N * 3 * Q);
    float *mu = floats((size_t)N), *rs = floats((size_t)N);
    for (int b = 0; b < B; b++) {
        const int32_t *src = d->tokens + (size_t)b * d->docs * d->len; /* document 0 */
        for (int t = 0; t < T; t++) {
            tok[b * T + t] = t < cls ? 0 : src[t - cls];
            in->mask[b * T + t] = t < cls || tok[b * T + t] != 0 ? 1.0f : 0.0f;
        }
        float *xb = x + (size_t)b * T * D;
        op_embed_forward(xb + (size_t)cls * D, tok + b * T + cls, TENSOR("embed.tokens"),
                         T - cls, D);
        if (cls) memcpy(xb, TENSOR("embed.cls"), (size_t)D * sizeof(float));
    }
    if (c->pos == LRA_POS_SINUSOID) op_add_sinusoid(x, B, T, D);
    if (c->pos == LRA_POS_LEARNED) op_add_pos_forward(x, TENSOR("embed.pos"), B, T, D);
    op_layernorm_forward(y, mu, rs, x, TENSOR("layer0.ln1.g"), TENSOR("layer0.ln1.b"), N, D);
    op_linear_forward(qkv, y, TENSOR("layer0.attn.wqkv"), NULL, N, D, 3 * Q);
#undef TENSOR
    const int H = in->shape.heads, Dh = in->shape.dim;
    op_split_heads(in->q, qkv, 3 * Q, B, T, H, Dh);
    op_split_heads(in->k, qkv + Q, 3 * Q, B, T, H, Dh);
    op_split_heads(in->v, qkv + 2 * Q, 3 * Q, B, T, H, Dh);
    void *bufs[] = {tok, x, y, qkv, mu, rs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
}

/* Softmax's output and the norms every error is normalised by. */
static void reference(inputs *in, const approx_opts *o)
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

static int build_inputs(const approx_opts *o, inputs *in, char *err, size_t errlen)
{
    memset(in, 0, sizeof *in);
    lra_config *c = &in->cfg;
    if (resolve_config(o, c, err, errlen) != 0) return -1;
    const lra_task *task = lra_task_find(c->task);
    if (!task) lra_usage_error("approx", "unknown task '%s' (see 'lra list tasks')", c->task);
    lra_dataset split[LRA_N_SPLITS];
    lra_provenance prov;
    if (lra_task_load(c, o->input, o->data_dir, split, &prov, o->quiet, err, errlen) != 0)
        return -1;
    const lra_dataset *d = &split[LRA_SPLIT_TEST];
    lra_model *m = lra_model_create(c, lra_attn_find(c->attn), task->vocab, task->classes,
                                    task->docs, NULL, err, errlen);
    int rc = m && d->n >= o->batch ? 0 : -1;
    if (m && rc) snprintf(err, errlen, "the test split has %d sequences, fewer than --batch %d",
                          d->n, o->batch);
    float *best = m ? floats(lra_model_n_params(m)) : NULL;
    lra_train_state st;
    lra_config_format(c, in->config_text, sizeof in->config_text);
    if (rc == 0 && o->checkpoint) {
        rc = lra_checkpoint_load(o->checkpoint, m, best, &st, in->config_text, err, errlen);
        if (rc == 0) memcpy(lra_model_params(m), best, lra_model_n_params(m) * sizeof(float));
    }
    if (rc == 0) {
        in->shape = (lra_attn_shape){.batch = o->batch, .heads = c->heads,
                                     .len = lra_config_tokens(c),
                                     .dim = lra_config_head_dim(c)};
        in->shape.max_len = in->shape.len;
        in->nx = (size_t)o->batch * c->heads * in->shape.len * in->shape.dim;
        in->q = floats(in->nx), in->k = floats(in->nx), in->v = floats(in->nx);
        in->ref = floats(in->nx);
        in->mask = floats((size_t)o->batch * in->shape.len);
        in->p_norm = lra_alloc((size_t)o->batch * c->heads * sizeof(double), "norms");
        in->v_norm = lra_alloc((size_t)o->batch * c->heads * sizeof(double), "norms");
        embed_qkv(in, m, d, o->batch);
        reference(in, o);
    }
    lra_free(best);
    lra_model_free(m);
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
    return rc;
}

static void free_inputs(inputs *in)
{
    void *bufs[] = {in->q, in->k, in->v, in->mask, in->ref, in->p_norm, in->v_norm};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
}

/* ---- one point ----------------------------------------------------------------------------- */

/* Mean and sample standard deviation of x[0..n); NaN when n is 0 or any x is NaN. */
static void mean_std(const double *x, int n, double *mean, double *std)
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
    mean_std(x, n, &m, &sd);
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

static void measure_point(const approx_opts *o, const inputs *in, point *pt)
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

/* ---- output -------------------------------------------------------------------------------- */

static void print_stat(const double *x, int n)
{
    double m, s;
    mean_std(x, n, &m, &s);
    if (isnan(m))
        printf("  %-19s", "n/a");
    else
        printf("  %9.3e±%-9.2e", m, s);
}

static void print_row(const point *pt)
{
    char opt[64];
    snprintf(opt, sizeof opt, "%s%s%s", *pt->option ? pt->option : "default",
             *pt->option ? "=" : "", pt->value);
    printf("%-12s %-16s", pt->a->name, opt);
    if (strcmp(pt->status, "ok") != 0) {
        printf(" %-7s %s\n", pt->status, pt->reason);
        return;
    }
    printf(" %5d", pt->seeds);
    print_stat(pt->frob, pt->seeds);
    print_stat(pt->spec, pt->seeds);
    print_stat(pt->oper, pt->seeds);
    printf("  %10.3e\n", pt->flops);
    fflush(stdout);
}

static void group_name(const point *pt, char *buf, size_t n)
{
    if (*pt->option)
        snprintf(buf, n, "/approx/%s/%s=%s", pt->a->name, pt->option, pt->value);
    else
        snprintf(buf, n, "/approx/%s/default", pt->a->name);
}

static int h5_errors; /* failed HDF5 calls while writing one file: the flush then fails */

static void h5_str(hid_t loc, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8); /* variable-length UTF-8, as run and bench files */
    hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, &value) < 0) h5_errors++;
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

static void h5_num(hid_t loc, const char *name, double value)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, &value) < 0) h5_errors++;
    H5Aclose(a);
    H5Sclose(s);
}

static void write_stat(hid_t g, const char *name, const double *x, int n)
{
    char key[64];
    double m, s;
    mean_std(x, n, &m, &s);
    h5_num(g, lra_fmt(key, sizeof key, "%s_mean", name), m);
    h5_num(g, lra_fmt(key, sizeof key, "%s_std", name), s);
}

static void write_point(hid_t f, hid_t lcpl, const point *pt, const inputs *in)
{
    char name[256];
    group_name(pt, name, sizeof name);
    hid_t g = H5Gcreate2(f, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        h5_errors++;
        return;
    }
    char *end;
    const double num = strtod(pt->value, &end);
    h5_str(g, "variant", pt->a->name);
    h5_str(g, "option", pt->option);
    h5_str(g, "value", pt->value);
    h5_num(g, "value_num", *pt->value && !*end ? num : NAN);
    h5_str(g, "options", pt->options);
    h5_str(g, "status", pt->status);
    h5_str(g, "reason", pt->reason);
    h5_str(g, "task", in->cfg.task);
    h5_num(g, "len", in->cfg.seq_len);
    h5_num(g, "tokens", in->shape.len);
    h5_num(g, "seeds", pt->seeds);
    h5_num(g, "stochastic", (pt->a->flags & LRA_ATTN_STOCHASTIC) != 0);
    h5_num(g, "exact", (pt->a->flags & LRA_ATTN_EXACT) != 0);
    h5_num(g, "linear", pt->linear);
    h5_num(g, "power_iters", pt->power_iters);
    h5_num(g, "flops", pt->flops);
    write_stat(g, "frob", pt->frob, pt->seeds);
    write_stat(g, "spectral", pt->spec, pt->seeds);
    write_stat(g, "operator_spectral", pt->oper, pt->seeds);
    if (H5Gclose(g) < 0) h5_errors++;
}

static void write_file_attrs(hid_t f, const inputs *in, const approx_opts *o, const char *status,
                             const char *groups, const char *cmdline)
{
    h5_num(f, "lra_approx_version", 1);
    h5_str(f, "status", status);
    h5_str(f, "groups", groups);
    h5_str(f, "task", in->cfg.task);
    h5_num(f, "len", in->cfg.seq_len);
    h5_num(f, "tokens", in->shape.len);
    h5_num(f, "batch", in->shape.batch);
    h5_num(f, "heads", in->shape.heads);
    h5_num(f, "head_dim", in->shape.dim);
    h5_str(f, "preset", in->cfg.preset);
    h5_str(f, "config", in->config_text);
    h5_str(f, "source", o->checkpoint ? "checkpoint" : "initialisation");
    h5_str(f, "checkpoint", o->checkpoint ? o->checkpoint : "");
    h5_num(f, "power_max_iters", POWER_MAX_ITERS);
    h5_num(f, "power_tol", POWER_TOL);
    h5_num(f, "linear_tol", LINEAR_TOL);
    h5_str(f, "code_version", lra_code_version);
    h5_str(f, "cpu", lra_cpu_model());
    h5_str(f, "blas", lra_blas_info());
    h5_num(f, "threads", lra_threads());
    h5_str(f, "command_line", cmdline);
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes <out>.tmp, syncs it and renames it over <out>: <out> is always a complete file. */
static void flush_file(const approx_opts *o, const inputs *in, const point *pts, int n,
                       const char *status, const char *cmdline)
{
    char tmp[4200], dir[4200], groups[65536] = "";
    snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
    snprintf(dir, sizeof dir, "%s", o->out);
    char *slash = strrchr(dir, '/');
    snprintf(slash ? slash : dir, sizeof dir - (size_t)(slash ? slash - dir : 0), "%s",
             slash ? (slash == dir ? "/" : "") : ".");
    for (int i = 0, off = 0; i < n && off < (int)sizeof groups; i++) {
        char g[256];
        group_name(&pts[i], g, sizeof g);
        off += snprintf(groups + off, sizeof groups - (size_t)off, "%s\n", g);
    }
    h5_errors = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (f >= 0) {
        write_file_attrs(f, in, o, status, groups, cmdline);
        for (int i = 0; i < n; i++) write_point(f, lcpl, &pts[i], in);
    }
    H5Pclose(lcpl);
    int rc = f < 0 || H5Fclose(f) < 0 || h5_errors ? -1 : 0;
    if (rc == 0) rc = fsync_path(tmp, O_RDONLY);
    if (rc == 0) rc = rename(tmp, o->out);
    if (rc != 0) {
        unlink(tmp);
        lra_die("cannot write %s (it is unchanged)", o->out);
    }
    fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

/* ---- command ------------------------------------------------------------------------------- */

/* One point per variant and value of its sweep (one default point without a sweep). */
static point *plan_points(const approx_opts *o, int *n)
{
    point *pts = lra_alloc((size_t)o->n_attn * MAX_POINTS * sizeof *pts, "points");
    *n = 0;
    for (int j = 0; j < o->n_attn; j++) {
        const spec *s = sweep_of(o, o->attn[j]);
        for (int v = 0; v < (s ? s->n : 1); v++)
            pts[(*n)++] = (point){.a = o->attn[j], .option = s ? s->name : "",
                                  .value = s ? s->values[v] : "", .status = "pending"};
    }
    return pts;
}

int lra_cmd_approx(int argc, char **argv);
int lra_cmd_approx(int argc, char **argv)
{
    approx_opts o;
    inputs in;
    char err[1024], cmdline[4096] = "lra";
    lra_cli_load_env_plugins();
    parse_args(&o, argc, argv);
    check_specs(&o);
    for (int i = 0, off = 3; i < argc && off < (int)sizeof cmdline; i++)
        off += snprintf(cmdline + off, sizeof cmdline - (size_t)off, " %s", argv[i]);
    if (build_inputs(&o, &in, err, sizeof err) != 0) lra_die("%s", err);

    int n;
    point *pts = plan_points(&o, &n);
    printf("# task %s, len %d (%d tokens), batch %d, heads %d, head dim %d, q/k/v from %s\n",
           in.cfg.task, in.cfg.seq_len, in.shape.len, in.shape.batch, in.shape.heads,
           in.shape.dim, o.checkpoint ? o.checkpoint : "layer 0 at initialisation");
    printf("%-12s %-16s %5s  %-19s  %-19s  %-19s  %10s\n", "variant", "option", "seeds",
           "rel_frobenius", "spectral", "operator", "flops");
    flush_file(&o, &in, pts, n, "running", cmdline);
    for (int i = 0; i < n; i++) {
        measure_point(&o, &in, &pts[i]);
        print_row(&pts[i]);
        flush_file(&o, &in, pts, n, i + 1 < n ? "running" : "finished", cmdline);
    }
    if (!o.quiet) printf("# results in %s\n", o.out);
    lra_free(pts);
    free_inputs(&in);
    return LRA_EXIT_OK;
}
