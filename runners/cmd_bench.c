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
 */
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lra_build.h"
#include "lra_rng.h"
#include "model.h"
#include "optim.h"
#include "platform.h"
#include "presets.h"
#include "registry.h"

extern const char *const lra_code_version;

#define MAX_ITEMS 64
#define MAX_SETS 128
#define MAX_REPEATS 1000
#define SGEMM_N 2048
#define VOCAB 257 /* 256 bytes + padding id 0, as LRA's Text task */
#define CLASSES 2

typedef struct bench_opts {
    const char *attns[MAX_ITEMS];
    int lens[MAX_ITEMS];
    int n_attns, n_lens;
    int batch, repeats, warmup, threads, train, quiet;
    double max_seconds;
    const char *preset, *out;
    const char *sets[MAX_SETS];
    int n_sets;
} bench_opts;

enum { ST_OK, ST_SKIPPED, ST_FAILED, ST_TIMEOUT };
static const char *const status_names[] = {"ok", "skipped", "failed", "timeout"};

/* What the parent learns about one configuration. Negative numbers mean "not reported". */
typedef struct outcome {
    const char *variant;
    int len, status;
    char reason[512];
    double secs[MAX_REPEATS];
    int n_secs;
    double baseline, peak, hwm, flops, median, fastest, slowest;
    double dense_secs, dense_flops; /* summed over the timed steps */
    char config[16384];
} outcome;

typedef struct bench_run {
    bench_opts o;
    outcome *res;
    int n_res;
    double sgemm_gflops;
    char start[32], cmdline[4096];
} bench_run;

/* The directory holding `path`, with its trailing slash ("." for a bare name). */
static void parent_dir(const char *path, char *buf, size_t n)
{
    const char *slash = strrchr(path, '/');
    snprintf(buf, n, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
}

static volatile sig_atomic_t interrupted;
static void on_int(int sig)
{
    (void)sig;
    interrupted = 1;
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
static void resolve_config(const bench_opts *o, const char *variant, int len, lra_config *cfg)
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

/* ---- child: one configuration -------------------------------------------------------- */

typedef struct inputs {
    int32_t *tokens, *labels;
} inputs;

static inputs random_bytes(int batch, int len)
{
    inputs in = {lra_alloc((size_t)batch * len * sizeof(int32_t), "benchmark tokens"),
                 lra_alloc((size_t)batch * sizeof(int32_t), "benchmark labels")};
    const uint64_t key = lra_key(0xbe9c, (uint64_t)len);
    for (size_t i = 0; i < (size_t)batch * len; i++)
        in.tokens[i] = 1 + (int32_t)lra_below(key, i, 256);
    for (int b = 0; b < batch; b++)
        in.labels[b] = (int32_t)lra_below(lra_key(key, 1), (uint64_t)b, CLASSES);
    return in;
}

/* The same work as train.c's step: forward with dropout, backward, norm or clip, AdamW. */
static void train_step(lra_model *m, const lra_config *c, const inputs *in, long t)
{
    const size_t np = lra_model_n_params(m);
    float *p = lra_model_params(m), *g = lra_model_grads(m);
    float *am = lra_model_adam_m(m), *av = lra_model_adam_v(m);
    memset(g, 0, np * sizeof(float));
    lra_model_forward(m, in->tokens, in->labels, NULL, c->batch, 1, (uint64_t)t);
    lra_model_backward(m);
    if (c->clip > 0)
        lra_clip_grad_norm(g, np, c->clip);
    else
        (void)lra_grad_norm(g, np); /* train computes it for its log */
    const double lr = lra_lr_at(c->schedule, c->lr, c->warmup, c->steps, t);
    for (int i = 0; i < lra_model_n_tensors(m); i++) {
        const lra_tensor *tt = lra_model_tensor(m, i);
        double wd = (tt->flags & LRA_TENSOR_NO_DECAY) ? 0.0 : c->weight_decay;
        lra_adamw_update(p + tt->offset, g + tt->offset, am + tt->offset, av + tt->offset,
                         tt->count, lr, c->beta1, c->beta2, c->adam_eps, wd, t + 1);
    }
}

static double timed_step(lra_model *m, const lra_config *c, const inputs *in, int train, long t)
{
    const double t0 = lra_now();
    if (train)
        train_step(m, c, in, t);
    else
        lra_model_forward(m, in->tokens, in->labels, NULL, c->batch, 0, 0);
    return lra_now() - t0;
}

/* Result lines go to stdout, which the parent reads through a pipe; progress to stderr. */
static int run_one(const bench_opts *o)
{
    lra_config cfg;
    char err[1024];
    int rejected = 0;
    resolve_config(o, o->attns[0], o->lens[0], &cfg);
    lra_set_threads(cfg.threads);
    printf("baseline %lld\n", lra_peak_rss());
    fflush(stdout);
    lra_model *m = lra_model_create(&cfg, lra_attn_find(cfg.attn), VOCAB, CLASSES, 1,
                                    &rejected, err, sizeof err);
    if (m && lra_model_plan(m, cfg.batch, err, sizeof err) != 0) {
        lra_model_free(m);
        m = NULL;
    }
    if (!m) {
        for (char *nl = strchr(err, '\n'); nl; nl = strchr(nl, '\n')) *nl = ' ';
        printf("%s %s\n", rejected ? "skip" : "fail", err);
        return rejected ? LRA_EXIT_SKIPPED : LRA_EXIT_FAIL;
    }
    printf("flops %.17g\n", lra_model_flops(m, cfg.batch, NULL) * (o->train ? 3.0 : 1.0));
    fflush(stdout);
    inputs in = random_bytes(cfg.batch, cfg.seq_len);
    for (int r = 0; r < o->warmup + o->repeats; r++) {
        const int timed = r >= o->warmup;
        if (r == o->warmup) lra_model_dense_profile(m, NULL, NULL, 1);
        const double s = timed_step(m, &cfg, &in, o->train, r);
        if (timed) printf("rep %.9g\n", s);
        fflush(stdout);
        if (!o->quiet)
            fprintf(stderr, "    %s %d/%d: %.3f s\n", timed ? "repeat" : "warm-up",
                    timed ? r - o->warmup + 1 : r + 1, timed ? o->repeats : o->warmup, s);
    }
    double dense_secs, dense_flops;
    lra_model_dense_profile(m, &dense_secs, &dense_flops, 0);
    printf("dense %.9g %.17g\n", dense_secs, dense_flops);
    printf("hwm %lld\ndone\n", lra_peak_rss());
    lra_free(in.tokens);
    lra_free(in.labels);
    lra_model_free(m);
    return LRA_EXIT_OK;
}

/* The machine's practical ceiling: best of a few large sgemm calls on all threads. */
static int run_sgemm(const bench_opts *o)
{
    const int n = SGEMM_N;
    const size_t bytes = (size_t)n * n * sizeof(float);
    float *a = lra_alloc(bytes, "sgemm A"), *b = lra_alloc(bytes, "sgemm B");
    float *c = lra_alloc(bytes, "sgemm C");
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = lra_uniform(1, i) - 0.5f;
        b[i] = lra_uniform(2, i) - 0.5f;
    }
    lra_set_threads(o->threads);
    double best = 1e30;
    for (int r = 0; r < 4; r++) { /* the first call pays for thread start-up and page faults */
        const double t0 = lra_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        const double t = lra_now() - t0;
        if (r > 0 && t < best) best = t;
    }
    printf("gflops %.6g\n", 2.0 * n * n * (double)n / best / 1e9);
    lra_free(a);
    lra_free(b);
    lra_free(c);
    return LRA_EXIT_OK;
}

/* ---- parent: spawning children ------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int fd;
    char errfile[64];
} child;

/* Starts `lra` with argv, its stdout on a pipe; lra_die() in the child leaves its message in
 * ch->errfile (LRA_ERROR_FILE), which becomes the recorded reason of a failure. */
static void spawn(const char *const *argv, child *ch)
{
    int p[2];
    snprintf(ch->errfile, sizeof ch->errfile, "/tmp/lra-bench-XXXXXX");
    int efd = mkstemp(ch->errfile);
    if (efd < 0 || pipe(p) != 0)
        lra_die("cannot create a pipe or a temporary file: %s", strerror(errno));
    close(efd);
    fflush(NULL);
    /* Set in the parent, not between fork and exec, where only async-signal-safe calls go. */
    setenv("LRA_ERROR_FILE", ch->errfile, 1);
    ch->pid = fork();
    if (ch->pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execv("/proc/self/exe", (char *const *)argv);
        _exit(127);
    }
    unsetenv("LRA_ERROR_FILE");
    if (ch->pid < 0) lra_die("cannot start a benchmark process: %s", strerror(errno));
    close(p[1]);
    ch->fd = p[0];
}

/* Feeds each complete output line to on_line until EOF or the deadline; then reaps the child
 * (killing it first on timeout). Returns 1 on timeout. */
static int collect(child *ch, double deadline, void (*on_line)(void *, char *), void *ctx,
                   int *wstatus, struct rusage *ru)
{
    char buf[8192];
    size_t used = 0;
    int timeout = 0;
    for (;;) {
        const double left = deadline - lra_now();
        if (interrupted) { /* SIGTERM reaches only us; Ctrl-C reached the child already */
            kill(ch->pid, SIGKILL);
            break;
        }
        if (left <= 0) {
            timeout = 1;
            break;
        }
        struct pollfd pfd = {.fd = ch->fd, .events = POLLIN};
        int rc = poll(&pfd, 1, left > 1e6 ? 1000000000 : (int)(left * 1000) + 1);
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) continue;
        ssize_t got = read(ch->fd, buf + used, sizeof buf - 1 - used);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        used += (size_t)got;
        buf[used] = 0;
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = 0;
            on_line(ctx, line);
            line = nl + 1;
        }
        used = strlen(line);
        memmove(buf, line, used + 1);
        if (used == sizeof buf - 1) used = 0; /* an over-long line is garbage: drop it */
    }
    if (timeout) kill(ch->pid, SIGKILL);
    close(ch->fd);
    while (wait4(ch->pid, wstatus, 0, ru) < 0 && errno == EINTR) {
    }
    return timeout;
}

static void read_errfile(child *ch, char *buf, size_t n)
{
    FILE *f = fopen(ch->errfile, "r");
    buf[0] = 0;
    if (f) {
        size_t got = fread(buf, 1, n - 1, f);
        buf[got] = 0;
        buf[strcspn(buf, "\n")] = 0;
        fclose(f);
    }
    unlink(ch->errfile);
}

static void on_sgemm_line(void *ctx, char *line)
{
    sscanf(line, "gflops %lf", (double *)ctx);
}

static double measure_sgemm(const bench_opts *o)
{
    char threads[16];
    snprintf(threads, sizeof threads, "%d", o->threads);
    const char *argv[] = {"lra", "bench", "--sgemm", "--threads", threads, NULL};
    child ch;
    int ws;
    struct rusage ru;
    double gflops = -1.0;
    spawn(argv, &ch);
    /* Not bound by a tiny --max-seconds meant for configurations: a ceiling is always wanted. */
    collect(&ch, lra_now() + fmax(o->max_seconds, 120.0), on_sgemm_line, &gflops, &ws, &ru);
    char why[512];
    read_errfile(&ch, why, sizeof why); /* also removes it */
    if (gflops <= 0)
        fprintf(stderr, "lra bench: the sgemm ceiling could not be measured%s%s\n",
                why[0] ? ": " : "", why);
    return gflops;
}

/* ---- parent: one configuration ------------------------------------------------------- */

static void on_config_line(void *ctx, char *line)
{
    outcome *r = ctx;
    double x;
    if (sscanf(line, "baseline %lf", &x) == 1) r->baseline = x;
    else if (sscanf(line, "flops %lf", &x) == 1) r->flops = x;
    else if (sscanf(line, "hwm %lf", &x) == 1) r->hwm = x;
    else if (sscanf(line, "dense %lf %lf", &r->dense_secs, &r->dense_flops) == 2) return;
    else if (sscanf(line, "rep %lf", &x) == 1 && r->n_secs < MAX_REPEATS) r->secs[r->n_secs++] = x;
    else if (strncmp(line, "skip ", 5) == 0 || strncmp(line, "fail ", 5) == 0)
        snprintf(r->reason, sizeof r->reason, "%s", line + 5);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarise(outcome *r)
{
    double s[MAX_REPEATS];
    memcpy(s, r->secs, (size_t)r->n_secs * sizeof *s);
    qsort(s, (size_t)r->n_secs, sizeof *s, cmp_double);
    const int n = r->n_secs;
    r->median = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    r->fastest = s[0];
    r->slowest = s[n - 1];
}

/* Turns the child's exit into a status; the reason says what a reader needs to act on it. */
static void classify(outcome *r, const bench_opts *o, int timeout, int ws, const char *errmsg)
{
    if (timeout) {
        r->status = ST_TIMEOUT;
        snprintf(r->reason, sizeof r->reason, "exceeded --max-seconds %g after %d of %d timed "
                 "steps", o->max_seconds, r->n_secs, o->repeats);
    } else if (WIFSIGNALED(ws)) {
        r->status = ST_FAILED;
        snprintf(r->reason, sizeof r->reason, "killed by signal %d (%s)%s", WTERMSIG(ws),
                 strsignal(WTERMSIG(ws)),
                 WTERMSIG(ws) == SIGKILL ? ": probably the out-of-memory killer" : "");
    } else if (WEXITSTATUS(ws) == LRA_EXIT_SKIPPED) {
        r->status = ST_SKIPPED;
    } else if (WEXITSTATUS(ws) != LRA_EXIT_OK || r->n_secs != o->repeats) {
        r->status = ST_FAILED;
        if (errmsg[0]) snprintf(r->reason, sizeof r->reason, "%s", errmsg);
        if (!r->reason[0])
            snprintf(r->reason, sizeof r->reason, "exit status %d", WEXITSTATUS(ws));
    } else {
        r->status = ST_OK;
        summarise(r);
    }
}

static void measure_config(const bench_opts *o, outcome *r)
{
    char len[16], batch[16], rep[16], warm[16], thr[16];
    snprintf(len, sizeof len, "%d", r->len);
    snprintf(batch, sizeof batch, "%d", o->batch);
    snprintf(rep, sizeof rep, "%d", o->repeats);
    snprintf(warm, sizeof warm, "%d", o->warmup);
    snprintf(thr, sizeof thr, "%d", o->threads);
    const char *argv[2 * MAX_SETS + 32];
    int n = 0;
    const char *fixed[] = {"lra", "bench", "--one", "--attn", r->variant, "--len", len,
                           "--batch", batch, "--repeats", rep, "--warmup", warm, "--threads",
                           thr, "--mode", o->train ? "train" : "infer", "--preset", o->preset};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[n++] = fixed[i];
    for (int i = 0; i < o->n_sets; i++) argv[n++] = "--set", argv[n++] = o->sets[i];
    if (o->quiet) argv[n++] = "--quiet";
    argv[n] = NULL;

    child ch;
    int ws = 0;
    struct rusage ru;
    char errmsg[512];
    spawn(argv, &ch);
    int timeout = collect(&ch, lra_now() + o->max_seconds, on_config_line, r, &ws, &ru);
    read_errfile(&ch, errmsg, sizeof errmsg);
    r->peak = (double)ru.ru_maxrss * 1024.0; /* Linux reports kilobytes */
    classify(r, o, timeout, ws, errmsg);
}

/* ---- HDF5 output --------------------------------------------------------------------- */

static void group_name(const bench_opts *o, const outcome *r, char *buf, size_t n)
{
    snprintf(buf, n, "bench/%s/%s/L%d", o->train ? "train" : "infer", r->variant, r->len);
}

/* Failed HDF5 calls while writing one file; any makes the flush fail and keep the old file. */
static int h5_errors;

static void h5_str(hid_t loc, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8); /* variable-length UTF-8: h5py returns str, as run files */
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

static void h5_column(hid_t loc, const char *name, const double *v, int n)
{
    const hsize_t dims[1] = {(hsize_t)n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || (n > 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0))
        h5_errors++;
    H5Dclose(d);
    H5Sclose(s);
}

/* Softmax at the same length, measured in this invocation: ratios only compare like with like. */
static const outcome *softmax_of(const bench_run *b, int len)
{
    for (int i = 0; i < b->n_res; i++)
        if (b->res[i].len == len && !strcmp(b->res[i].variant, "softmax") &&
            b->res[i].status == ST_OK)
            return &b->res[i];
    return NULL;
}

static void write_config(hid_t g, const bench_run *b, const outcome *r)
{
    const bench_opts *o = &b->o;
    h5_str(g, "status", status_names[r->status]);
    h5_str(g, "reason", r->reason);
    h5_str(g, "variant", r->variant);
    h5_str(g, "mode", o->train ? "train" : "infer");
    h5_str(g, "config", r->config);
    h5_str(g, "measured_at", b->start);
    h5_num(g, "length", r->len);
    h5_num(g, "batch", o->batch);
    h5_num(g, "repeats", o->repeats);
    h5_num(g, "warmup", o->warmup);
    h5_num(g, "threads", lra_threads());
    h5_column(g, "step_seconds", r->secs, r->n_secs);
    if (r->peak > 0) h5_num(g, "peak_rss_bytes", r->peak);
    if (r->hwm > 0) h5_num(g, "child_vm_hwm_bytes", r->hwm);
    if (r->baseline > 0) h5_num(g, "baseline_rss_bytes", r->baseline);
    if (r->baseline > 0 && r->peak > 0) h5_num(g, "config_rss_bytes", r->peak - r->baseline);
    if (r->flops > 0) h5_num(g, "flops_per_step", r->flops);
    if (b->sgemm_gflops > 0) h5_num(g, "sgemm_gflops", b->sgemm_gflops);
    if (r->status != ST_OK) return;
    h5_num(g, "step_seconds_median", r->median);
    h5_num(g, "steps_per_s_median", 1.0 / r->median);
    h5_num(g, "steps_per_s_min", 1.0 / r->slowest);
    h5_num(g, "steps_per_s_max", 1.0 / r->fastest);
    h5_num(g, "useful_gflops", r->flops / r->median / 1e9);
    if (b->sgemm_gflops > 0)
        h5_num(g, "fraction_of_ceiling", r->flops / r->median / 1e9 / b->sgemm_gflops);
    if (r->dense_secs > 0) {
        h5_num(g, "dense_seconds_per_step", r->dense_secs / r->n_secs);
        h5_num(g, "dense_gflops", r->dense_flops / r->dense_secs / 1e9);
        if (b->sgemm_gflops > 0)
            h5_num(g, "dense_fraction_of_ceiling",
                   r->dense_flops / r->dense_secs / 1e9 / b->sgemm_gflops);
    }
    const outcome *sm = softmax_of(b, r->len);
    if (!sm) return;
    h5_num(g, "speed_ratio_to_softmax", sm->median / r->median);
    h5_num(g, "memory_ratio_to_softmax", r->peak / sm->peak);
    if (r->baseline > 0 && sm->baseline > 0)
        h5_num(g, "config_memory_ratio_to_softmax",
               (r->peak - r->baseline) / (sm->peak - sm->baseline));
}

static void write_file_attrs(hid_t f, const bench_run *b, const char *status, const char *list)
{
    char when[32];
    lra_utc_now(when, sizeof when);
    h5_num(f, "lra_bench_version", 1);
    h5_str(f, "status", status);
    h5_str(f, "cpu", lra_cpu_model());
    h5_str(f, "blas", lra_blas_info());
    h5_num(f, "threads", lra_threads());
    h5_str(f, "code_version", lra_code_version);
    h5_str(f, "compiler", LRA_C_COMPILER);
    h5_str(f, "compiler_flags", LRA_C_FLAGS);
    h5_str(f, "preset", b->o.preset);
    h5_str(f, "config", b->n_res ? b->res[0].config : "");
    h5_num(f, "sgemm_gflops", b->sgemm_gflops);
    h5_str(f, "start_time", b->start);
    h5_str(f, "end_time", when);
    h5_str(f, "command_line", b->cmdline);
    h5_str(f, "configs", list);
}

typedef struct merge_ctx {
    const bench_run *b;
    hid_t dst, lcpl;
    char *list;
    size_t list_len;
} merge_ctx;

static void list_add(merge_ctx *m, const char *name)
{
    const size_t n = strlen(name) + 2;
    m->list = realloc(m->list, m->list_len + n + 1);
    if (!m->list) lra_die("out of memory listing benchmark groups");
    snprintf(m->list + m->list_len, n + 1, "/%s\n", name);
    m->list_len += n;
}

static int written_now(const bench_run *b, const char *name)
{
    char mine[256];
    for (int i = 0; i < b->n_res; i++) {
        group_name(&b->o, &b->res[i], mine, sizeof mine);
        if (strcmp(mine, name) == 0) return 1;
    }
    return 0;
}

/* Configuration groups are exactly the links three levels below the root under "bench/". */
static herr_t merge_link(hid_t src, const char *name, const H5L_info_t *info, void *arg)
{
    merge_ctx *m = arg;
    (void)info;
    int depth = 0;
    for (const char *p = name; *p; p++) depth += *p == '/';
    if (depth != 3 || strncmp(name, "bench/", 6) != 0 || written_now(m->b, name)) return 0;
    if (H5Ocopy(src, name, m->dst, name, H5P_DEFAULT, m->lcpl) < 0) return -1;
    list_add(m, name);
    return 0;
}

/* Copies the groups of the existing file that this invocation did not re-measure. */
static int merge_old(const char *path, merge_ctx *m)
{
    if (access(path, F_OK) != 0) return 0;
    hid_t src = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (src < 0) return -1;
    herr_t rc = H5Lvisit(src, H5_INDEX_NAME, H5_ITER_INC, merge_link, m);
    H5Fclose(src);
    return rc < 0 ? -1 : 0;
}

static int write_contents(hid_t f, const bench_run *b, const char *status)
{
    merge_ctx m = {.b = b, .dst = f, .lcpl = H5Pcreate(H5P_LINK_CREATE)};
    H5Pset_create_intermediate_group(m.lcpl, 1);
    int rc = 0;
    for (int i = 0; i < b->n_res && rc == 0; i++) {
        char name[256];
        group_name(&b->o, &b->res[i], name, sizeof name);
        hid_t g = H5Gcreate2(f, name, m.lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) rc = -1;
        else write_config(g, b, &b->res[i]);
        if (g >= 0) H5Gclose(g);
        list_add(&m, name);
    }
    if (rc == 0) rc = merge_old(b->o.out, &m);
    write_file_attrs(f, b, status, m.list ? m.list : "");
    H5Pclose(m.lcpl);
    free(m.list);
    return rc;
}

static int fsync_file(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes <out>.tmp, syncs it and renames it over <out>, as results.c does for run files:
 * whatever happens, <out> is the previous complete file or the new one. */
static void flush_results(const bench_run *b, const char *status)
{
    const char *out = b->o.out;
    char tmp[4200], dir[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    parent_dir(out, dir, sizeof dir);
    h5_errors = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int rc = f < 0 ? -1 : write_contents(f, b, status);
    if (f >= 0 && H5Fclose(f) < 0) rc = -1;
    if (h5_errors) rc = -1;
    if (rc == 0) rc = fsync_file(tmp, O_RDONLY);
    if (rc == 0) rc = rename(tmp, out);
    if (rc != 0) {
        unlink(tmp);
        lra_die("cannot write benchmark file %s (or merge its previous contents); it is "
                "unchanged", out);
    }
    fsync_file(dir, O_RDONLY | O_DIRECTORY);
}

/* ---- parent: table ------------------------------------------------------------------- */

static void print_row(const bench_run *b, const outcome *r)
{
    printf("%-12s %6d  ", r->variant, r->len);
    if (r->status != ST_OK) {
        printf("%-8s %s\n", status_names[r->status], r->reason);
        return;
    }
    const outcome *sm = softmax_of(b, r->len);
    char spread[48], speed[16] = "-", mem[16] = "-", frac[16] = "-", dense[16] = "-";
    snprintf(spread, sizeof spread, "%.3g [%.3g-%.3g]", 1 / r->median, 1 / r->slowest,
             1 / r->fastest);
    if (sm) snprintf(speed, sizeof speed, "%.2fx", sm->median / r->median);
    if (sm) snprintf(mem, sizeof mem, "%.2fx", r->peak / sm->peak);
    const double gf = r->flops / r->median / 1e9;
    if (b->sgemm_gflops > 0) snprintf(frac, sizeof frac, "%.1f%%", 100 * gf / b->sgemm_gflops);
    if (b->sgemm_gflops > 0 && r->dense_secs > 0)
        snprintf(dense, sizeof dense, "%.1f%%",
                 100 * r->dense_flops / r->dense_secs / 1e9 / b->sgemm_gflops);
    printf("%-24s %7s %9.1f %7s %9.2f %7s %7s\n", spread, speed, r->peak / 1048576.0, mem, gf,
           frac, dense);
}

/* How each variant's memory grows with length: the exponent k of config memory ∝ L^k between
 * its shortest and longest measured length, config memory being peak RSS minus the child's
 * baseline (the binary and libraries), which is what the configuration itself adds. k near 1
 * is linear memory, near 2 quadratic. */
static void print_memory_growth(const bench_run *b)
{
    int header = 0;
    for (int i = 0; i < b->n_res; i++) {
        const outcome *lo = NULL, *hi = NULL;
        int first = 1;
        for (int j = 0; j < b->n_res; j++) {
            const outcome *r = &b->res[j];
            if (strcmp(r->variant, b->res[i].variant)) continue;
            if (j < i) first = 0; /* reported once, at the variant's first row */
            if (r->status != ST_OK || r->baseline <= 0) continue;
            if (!lo || r->len < lo->len) lo = r;
            if (!hi || r->len > hi->len) hi = r;
        }
        if (!first || !lo || lo->len == hi->len) continue;
        const double mlo = lo->peak - lo->baseline, mhi = hi->peak - hi->baseline;
        if (mlo <= 0 || mhi <= 0) continue;
        if (!header) printf("memory growth (peak - baseline ∝ L^k):");
        header = 1;
        printf(" %s %.2f", b->res[i].variant, log(mhi / mlo) / log((double)hi->len / lo->len));
    }
    if (header) printf("\n");
}

static void print_table(const bench_run *b)
{
    char ceiling[48] = "not measured";
    if (b->sgemm_gflops > 0) snprintf(ceiling, sizeof ceiling, "%.1f GFLOP/s", b->sgemm_gflops);
    printf("lra bench: mode %s, batch %d, preset %s, %d threads, sgemm ceiling %s\n",
           b->o.train ? "train" : "infer", b->o.batch, b->o.preset, lra_threads(), ceiling);
    printf("%-12s %6s  %-24s %7s %9s %7s %9s %7s %7s\n", "variant", "len", "steps/s [min-max]",
           "speed", "peak MB", "memory", "GFLOP/s", "ceiling", "dense");
    for (int i = 0; i < b->n_res; i++) print_row(b, &b->res[i]);
    print_memory_growth(b);
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
            resolve_config(&b->o, b->o.attns[a], b->o.lens[l], &cfg);
    const char *out = b->o.out;
    char dir[4200];
    parent_dir(out, dir, sizeof dir);
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
    b->sgemm_gflops = measure_sgemm(o);
    b->res = calloc((size_t)(o->n_attns * o->n_lens), sizeof *b->res);
    if (!b->res) lra_die("out of memory for %d benchmark results", o->n_attns * o->n_lens);
    for (int a = 0; a < o->n_attns && !interrupted; a++)
        for (int l = 0; l < o->n_lens && !interrupted; l++) {
            outcome *r = &b->res[b->n_res];
            lra_config cfg;
            *r = (outcome){.variant = o->attns[a], .len = o->lens[l], .baseline = -1,
                           .peak = -1, .hwm = -1, .flops = -1};
            resolve_config(o, r->variant, r->len, &cfg);
            lra_config_format(&cfg, r->config, sizeof r->config);
            if (!o->quiet) fprintf(stderr, "[%d/%d] %s, length %d, batch %d, %s\n",
                                   b->n_res + 1, o->n_attns * o->n_lens, r->variant, r->len,
                                   o->batch, o->train ? "train" : "infer");
            measure_config(o, r);
            if (interrupted) break; /* the child got Ctrl-C too: its numbers are not real */
            b->n_res++;
            if (!o->quiet && r->status != ST_OK)
                fprintf(stderr, "  %s: %s\n", status_names[r->status], r->reason);
            flush_results(b, "running");
        }
    flush_results(b, interrupted ? "interrupted" : "finished");
    print_table(b);
    if (!o->quiet) fprintf(stderr, "lra bench: results in %s\n", o->out);
    return interrupted ? LRA_EXIT_INTERRUPTED : LRA_EXIT_OK;
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
    if (sgemm) return run_sgemm(&b.o);
    if (one) return run_one(&b.o);
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
