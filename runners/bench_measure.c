/* bench_measure.c — the parent's side of `lra bench`'s measurements: starting a child with its
 * output on a pipe, reading its report within the deadline, and turning its exit into the
 * configuration's status (ok, skipped, failed, timeout) and statistics.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "platform.h"

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
        if (lra_bench_interrupted) { /* SIGTERM reaches only us; Ctrl-C reached the child already */
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

double lra_bench_measure_sgemm(const bench_opts *o)
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

void lra_bench_measure_config(const bench_opts *o, outcome *r)
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

