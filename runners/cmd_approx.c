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
 *
 * This file: the help, the options and the run loop; approx.h lists the files that build the
 * inputs, measure and write the results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approx.h"
#include "cli.h"
#include "options.h"
#include "registry.h"

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
           "  --checkpoint FILE trained parameters and their configuration: FILE.h5.model of\n"
           "                    'lra train --out FILE.h5 --keep-model', or the FILE.h5.ckpt\n"
           "                    of a run in progress or interrupted\n"
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
    /* --attn lists are resolved after every --plugin is loaded, in whatever order they came. */
    const char *attn_lists[MAX_VARIANTS];
    int n_lists = 0;
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
            if (n_lists == MAX_VARIANTS) lra_usage_error("approx", "too many variants");
            attn_lists[n_lists++] = v;
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
    for (int k = 0; k < n_lists; k++) parse_attn_list(o, attn_lists[k]);
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
int lra_approx_set_options(const approx_opts *o, const lra_attention *a, void *priv,
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
            if (lra_approx_set_options(o, a, priv, s ? s->name : NULL, s ? s->values[p] : NULL,
                                       err, sizeof err) != 0)
                lra_usage_error("approx", "%s: %s", a->name, err);
        lra_free(priv);
    }
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
    if (lra_approx_build_inputs(&o, &in, err, sizeof err) != 0) lra_die("%s", err);

    int n;
    point *pts = plan_points(&o, &n);
    printf("# task %s, len %d (%d tokens), batch %d, heads %d, head dim %d, q/k/v from %s\n",
           in.cfg.task, in.cfg.seq_len, in.shape.len, in.shape.batch, in.shape.heads,
           in.shape.dim, o.checkpoint ? o.checkpoint : "layer 0 at initialisation");
    printf("%-12s %-16s %5s  %-19s  %-19s  %-19s  %10s\n", "variant", "option", "seeds",
           "rel_frobenius", "spectral", "operator", "flops");
    lra_approx_flush_file(&o, &in, pts, n, "running", cmdline);
    for (int i = 0; i < n; i++) {
        lra_approx_measure_point(&o, &in, &pts[i]);
        lra_approx_print_row(&pts[i]);
        lra_approx_flush_file(&o, &in, pts, n, i + 1 < n ? "running" : "finished", cmdline);
    }
    if (!o.quiet) printf("# results in %s\n", o.out);
    lra_free(pts);
    lra_approx_free_inputs(&in);
    return LRA_EXIT_OK;
}
