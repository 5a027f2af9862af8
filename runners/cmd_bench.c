/* cmd_bench.c — `lra bench`: training (or inference) speed and peak memory of each attention
 * variant at each length, following the protocol of LRA's Table 2 (lra-tasks.md §9.2, and the
 * advice of pitfall 20: fixed shapes, warm-up, median of repeats, hardware recorded).
 *
 * Every (variant, length) runs in a fresh child process (`lra bench --one ...`, an exec of this
 * binary), so the peak resident memory that wait4() returns belongs to that configuration alone
 * and is measured, not estimated. The child also reports its resident memory just before the
 * model is built (the binary, OpenBLAS and the C runtime), so peak − baseline is the memory the
 * configuration itself needs. A child that dies (an out-of-memory kill, a crash) or outlives
 * --max-seconds is recorded as failed or timeout and the benchmark goes on; a variant whose init
 * refuses the shape is recorded as skipped with its reason.
 *
 * A train step is exactly the work of `lra train`'s step: zero gradients, forward with dropout,
 * backward, gradient norm (or clipping) and the AdamW update; an infer step is one forward pass.
 * Inputs are random byte tokens (ids 1-256 of a 257-id vocabulary, every position real, no
 * padding) with 2 classes, the shape of LRA's byte-level Text task; no variant's work depends
 * on token values, so random bytes time the same as real text.
 *
 * Useful FLOP/s = model FLOPs per step / median step time, where a train step counts 3× the
 * forward FLOPs of lra_model_flops() (the usual convention: the backward pass costs about twice
 * the forward) and an infer step 1×. It is reported as a fraction of the sgemm ceiling, the best
 * GFLOP/s of a 2048³ sgemm measured once per invocation in its own child with all threads.
 * The dense layers (the encoder's Wqkv, Wo, W1 and W2 GEMMs, forward and backward) are also
 * timed on their own inside the step (lra_model_dense_profile), and their FLOP rate is reported
 * against the same ceiling: the part of the step that BLAS, not this code, makes fast or slow.
 *
 * Results go to an HDF5 file (schema in results/README.md, "Benchmark files"), rewritten
 * atomically (tmp + fsync + rename) after every configuration and merged with what the file
 * already held, so repeated invocations accumulate.
 *
 * This file: the help, the options, each configuration's settings and the sweep; bench.h lists
 * the files of the child processes, the measurement, the results file and the table.
 */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "platform.h"
#include "presets.h"
#include "registry.h"

volatile sig_atomic_t lra_bench_interrupted;
static void on_int(int sig)
{
    (void)sig;
    lra_bench_interrupted = 1;
}

static void help(void)
{
    printf("usage: lra bench [--attn A,B|all] [--len L,L,...] [--batch N] [--mode train|infer]\n"
           "                 [--preset P] [--set key=value]... [--repeats N] [--warmup N]\n"
           "                 [--threads N] [--max-seconds S] [--out FILE.h5] [--quiet]\n\n"
           "Speed and peak memory per attention variant and length (LRA Table 2 protocol):\n"
           "each configuration runs in a fresh process on random byte tokens; steps/s is the\n"
           "median of the repeats after warm-up, peak memory the process's RSS high-water\n"
           "mark. Prints a table with ratios to softmax and writes FILE.h5 (merged with what\n"
           "it already holds).\n\n"
           "  --attn      variants (default all)\n"
           "  --len       sequence lengths (default 1024,2048,3072,4096)\n"
           "  --batch     default 32, as in LRA\n"
           "  --mode      train (forward, backward, AdamW; default) or infer (forward only)\n"
           "  --preset    model from the preset's [text] section (default small)\n"
           "  --set       override a key; attn.VARIANT.NAME=V sets option NAME of VARIANT only\n"
           "  --repeats   timed steps (default 5); --warmup: untimed steps first (default 2)\n"
           "  --threads   OpenMP and BLAS threads (default: all cores)\n"
           "  --max-seconds  per configuration, else recorded as timeout (default 300)\n"
           "  --out       default results/bench.h5\n\n"
           "A configuration that is skipped, fails (e.g. out of memory) or times out is\n"
           "recorded as such and the others still run.\n"
           "Exit status: 0 done, 2 usage error, 130 interrupted.\n");
}

/* ---- options ------------------------------------------------------------------------- */

static int split_list(char *s, const char **out, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == max) lra_usage_error("bench", "a list holds at most %d items", max);
        out[n++] = t;
    }
    return n;
}

static void parse_attns(bench_opts *o, char *list)
{
    if (strcmp(list, "all") == 0) {
        for (int i = 0; i < lra_attn_count() && o->n_attns < MAX_ITEMS; i++)
            o->attns[o->n_attns++] = lra_attn_get(i)->name;
        return;
    }
    o->n_attns = split_list(list, o->attns, MAX_ITEMS);
    if (o->n_attns == 0) lra_usage_error("bench", "--attn wants at least one variant");
    for (int i = 0; i < o->n_attns; i++)
        if (!lra_attn_find(o->attns[i]))
            lra_usage_error("bench", "--attn: unknown attention variant '%s' (see 'lra list "
                            "attention')", o->attns[i]);
}

static void parse_lens(bench_opts *o, char *list)
{
    const char *items[MAX_ITEMS];
    o->n_lens = split_list(list, items, MAX_ITEMS);
    if (o->n_lens == 0) lra_usage_error("bench", "--len wants at least one length");
    for (int i = 0; i < o->n_lens; i++)
        o->lens[i] = lra_arg_int("bench", "--len", items[i], 1, 1 << 20);
}

static double parse_seconds(const char *v)
{
    char *end = NULL;
    double s = strtod(v, &end);
    if (!*v || *end || !(s > 0.0) || !isfinite(s))
        lra_usage_error("bench", "--max-seconds wants a positive number, got '%s'", v);
    return s;
}

/* Parses everything but the list options, which the caller splits once it owns copies. */
static int parse_one(bench_opts *o, int argc, char **argv, int *i, char **attn, char **len)
{
    const char *v;
    if (lra_arg_value(argc, argv, i, "--attn", &v, "bench")) {
        free(*attn); /* the last one counts, as for every option */
        *attn = strdup(v);
    } else if (lra_arg_value(argc, argv, i, "--len", &v, "bench")) {
        free(*len);
        *len = strdup(v);
    } else if (lra_arg_value(argc, argv, i, "--batch", &v, "bench")) {
        o->batch = lra_arg_int("bench", "--batch", v, 1, 4096);
    } else if (lra_arg_value(argc, argv, i, "--repeats", &v, "bench")) {
        o->repeats = lra_arg_int("bench", "--repeats", v, 1, MAX_REPEATS);
    } else if (lra_arg_value(argc, argv, i, "--warmup", &v, "bench")) {
        o->warmup = lra_arg_int("bench", "--warmup", v, 0, 1000);
    } else if (lra_arg_value(argc, argv, i, "--threads", &v, "bench")) {
        o->threads = lra_arg_int("bench", "--threads", v, 0, 4096);
    } else if (lra_arg_value(argc, argv, i, "--max-seconds", &v, "bench")) {
        o->max_seconds = parse_seconds(v);
    } else if (lra_arg_value(argc, argv, i, "--mode", &v, "bench")) {
        if (strcmp(v, "train") != 0 && strcmp(v, "infer") != 0)
            lra_usage_error("bench", "--mode wants train or infer, got '%s'", v);
        o->train = strcmp(v, "train") == 0;
    } else if (lra_arg_value(argc, argv, i, "--preset", &o->preset, "bench") ||
               lra_arg_value(argc, argv, i, "--out", &o->out, "bench")) {
        /* stored by lra_arg_value */
    } else if (lra_arg_value(argc, argv, i, "--set", &v, "bench")) {
        if (o->n_sets == MAX_SETS) lra_usage_error("bench", "--set: at most %d", MAX_SETS);
        o->sets[o->n_sets++] = v;
    } else if (strcmp(argv[*i], "--quiet") == 0 || strcmp(argv[*i], "-q") == 0) {
        o->quiet = 1;
    } else {
        return 0;
    }
    return 1;
}

/* ---- configuration ------------------------------------------------------------------- */

/* `attn.VARIANT.NAME=V` targets one variant, so one invocation can tune, say, local's block
 * without handing an unknown option to every other variant. Returns the setting to apply to
 * `variant` (possibly rewritten into buf), or NULL when it belongs to another variant. */
static const char *setting_for(const char *set, const char *variant, char *buf, size_t n)
{
    if (strncmp(set, "attn.", 5) != 0) return set;
    const char *name = set + 5, *dot = strchr(name, '.'), *eq = strchr(name, '=');
    if (!dot || (eq && eq < dot)) return set;
    char target[64];
    snprintf(target, sizeof target, "%.*s", (int)(dot - name), name);
    if (!lra_attn_find(target)) return set;
    if (strcmp(target, variant) != 0) return NULL;
    snprintf(buf, n, "attn.%s", dot + 1);
    return buf;
}

/* Defaults, the preset's [text] section, --set, then the benchmark's own shape. Exits with a
 * usage error naming the offending option, so the parent catches mistakes before measuring. */
void lra_bench_resolve_config(const bench_opts *o, const char *variant, int len, lra_config *cfg)
{
    char err[1024], buf[256];
    lra_config_defaults(cfg);
    snprintf(cfg->task, sizeof cfg->task, "text");
    snprintf(cfg->attn, sizeof cfg->attn, "%s", variant);
    if (lra_preset_apply(cfg, o->preset, err, sizeof err) != 0)
        lra_usage_error("bench", "--preset: %s", err);
    for (int i = 0; i < o->n_sets; i++) {
        const char *s = setting_for(o->sets[i], variant, buf, sizeof buf);
        if (s && lra_config_set_kv(cfg, s, err, sizeof err) != 0)
            lra_usage_error("bench", "--set %s: %s", o->sets[i], err);
    }
    cfg->seq_len = len;
    cfg->batch = o->batch;
    cfg->threads = o->threads;
}

/* ---- parent: the sweep --------------------------------------------------------------- */

static void join_args(int argc, char **argv, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "lra");
    for (int i = 0; i < argc && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, " %s", argv[i]);
}

static int is_hdf5(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) H5Fclose(f);
    return f >= 0;
}

/* Checks every configuration and the output file before minutes of measuring are spent. */
static void check_setup(bench_run *b)
{
    lra_config cfg;
    for (int a = 0; a < b->o.n_attns; a++)
        for (int l = 0; l < b->o.n_lens; l++)
            lra_bench_resolve_config(&b->o, b->o.attns[a], b->o.lens[l], &cfg);
    const char *out = b->o.out;
    char dir[4200];
    lra_bench_parent_dir(out, dir, sizeof dir);
    if (access(dir, W_OK) != 0)
        lra_usage_error("bench", "--out: cannot write into directory %s: %s", dir,
                        strerror(errno));
    if (access(out, F_OK) == 0 && !is_hdf5(out))
        lra_usage_error("bench", "--out: %s exists and is not an HDF5 file; it is kept, so "
                        "choose another name", out);
}

static int run_sweep(bench_run *b)
{
    const bench_opts *o = &b->o;
    lra_utc_now(b->start, sizeof b->start);
    if (!o->quiet) fprintf(stderr, "lra bench: measuring the sgemm ceiling\n");
    b->sgemm_gflops = lra_bench_measure_sgemm(o);
    b->res = calloc((size_t)(o->n_attns * o->n_lens), sizeof *b->res);
    if (!b->res) lra_die("out of memory for %d benchmark results", o->n_attns * o->n_lens);
    for (int a = 0; a < o->n_attns && !lra_bench_interrupted; a++)
        for (int l = 0; l < o->n_lens && !lra_bench_interrupted; l++) {
            outcome *r = &b->res[b->n_res];
            lra_config cfg;
            *r = (outcome){.variant = o->attns[a], .len = o->lens[l], .baseline = -1,
                           .peak = -1, .hwm = -1, .flops = -1};
            lra_bench_resolve_config(o, r->variant, r->len, &cfg);
            lra_config_format(&cfg, r->config, sizeof r->config);
            if (!o->quiet) fprintf(stderr, "[%d/%d] %s, length %d, batch %d, %s\n",
                                   b->n_res + 1, o->n_attns * o->n_lens, r->variant, r->len,
                                   o->batch, o->train ? "train" : "infer");
            lra_bench_measure_config(o, r);
            /* the child got Ctrl-C too: its numbers are not real */
            if (lra_bench_interrupted) break;
            b->n_res++;
            if (!o->quiet && r->status != ST_OK)
                fprintf(stderr, "  %s: %s\n", status_names[r->status], r->reason);
            lra_bench_flush_results(b, "running");
        }
    lra_bench_flush_results(b, lra_bench_interrupted ? "interrupted" : "finished");
    lra_bench_print_table(b);
    if (!o->quiet) fprintf(stderr, "lra bench: results in %s\n", o->out);
    return lra_bench_interrupted ? LRA_EXIT_INTERRUPTED : LRA_EXIT_OK;
}

int lra_cmd_bench(int argc, char **argv)
{
    static bench_run b = {.o = {.batch = 32, .repeats = 5, .warmup = 2, .train = 1,
                                .max_seconds = 300, .preset = "small",
                                .out = "results/bench.h5"}};
    char *attn = NULL, *len = NULL;
    int one = 0, sgemm = 0;
    lra_cli_load_env_plugins();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return LRA_EXIT_OK;
        } else if (!strcmp(argv[i], "--one")) { /* hidden: one configuration, in a child */
            one = 1;
        } else if (!strcmp(argv[i], "--sgemm")) { /* hidden: the ceiling, in a child */
            sgemm = 1;
        } else if (!parse_one(&b.o, argc, argv, &i, &attn, &len)) {
            lra_usage_error("bench", "unexpected argument '%s'", argv[i]);
        }
    }
    parse_attns(&b.o, attn ? attn : (char[]){"all"});
    parse_lens(&b.o, len ? len : (char[]){"1024,2048,3072,4096"});
    if (sgemm) return lra_bench_run_sgemm(&b.o);
    if (one) return lra_bench_run_one(&b.o);
    /* The parent reports its own HDF5 errors, naming the file; HDF5's stack dumps add noise. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    check_setup(&b);
    lra_set_threads(b.o.threads); /* only so that lra_threads() reports what children use */
    join_args(argc, argv, b.cmdline, sizeof b.cmdline);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_int;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int rc = run_sweep(&b);
    free(attn);
    free(len);
    free(b.res);
    return rc;
}
