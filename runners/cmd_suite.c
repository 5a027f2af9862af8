/* cmd_suite.c — `lra suite`: the task × variant × seed matrix.
 *
 * Every run is a child `lra train` process writing <out-dir>/<task>/<variant>/seed<N>.h5. A
 * crash in one variant therefore cannot end the sweep, and each run's peak memory is its own.
 * Finished, diverged and skipped runs are not run again; an interrupted run resumes from its
 * checkpoint; a failed run is retried. Ctrl-C reaches the running child, which stops after its
 * current step and keeps its checkpoint; the sweep then stops, and the same command continues
 * it later.
 *
 * Under an MPI launcher (`mpirun -np N lra suite ...`, built with MPI) the cells are spread
 * over the ranks by suite_mpi.c. What makes that safe to kill and rerun is kept here:
 *   - each child is exec'd without the launcher's environment (lra_mpi_scrub_child_env), so it
 *     trains as a plain process instead of joining the job as a second rank;
 *   - each child gets SIGTERM when its rank dies (PR_SET_PDEATHSIG), so it stops after its step
 *     and keeps its checkpoint, like Ctrl-C, instead of training on as an orphan;
 *   - while a cell runs, its rank holds an flock on <run>.h5.lock, inherited by the child. The
 *     kernel drops it when both have exited, however they die, so a rerun never starts a cell
 *     that a leftover child of an earlier invocation is still writing: it waits for the lock,
 *     then reads the status that child left.
 * Without a launcher none of this applies and the sweep behaves exactly as before.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mpi_util.h"
#include "registry.h"
#include "results.h"
#include "suite_mpi.h"
#include "task.h"
#include "util.h"

extern const char *const lra_code_version;

#define MAX_ITEMS 64

typedef struct sweep {
    const char *preset, *out_dir, *data_dir, *threads;
    const char *tasks[MAX_ITEMS], *attns[MAX_ITEMS];
    int n_tasks, n_attns, seeds;
    const char *sets[128];
    int n_sets;
    int quiet;
    int keep_model;    /* pass --keep-model: finished runs keep <run>.h5.model */
    /* Set under an MPI launcher (see the header): */
    int launched;      /* scrub the launcher's environment and set PDEATHSIG in children */
    int guard;         /* hold <run>.h5.lock while a cell runs */
    int poll;          /* wait for the child with naps, calling idle() and forwarding signals */
    void (*idle)(void);
    char rank_tag[32]; /* " (rank R)" in progress lines */
} sweep;

typedef struct tally {
    int finished, skipped, diverged, failed, done_before;
} tally;

static void help(void)
{
    printf("usage: lra suite --preset P [--tasks T,T|all] [--attn A,A|all] [--seeds N]\n"
           "                 [--out-dir DIR] [--set key=value]... [--threads N]\n"
           "                 [--data-dir DIR] [--keep-model] [--quiet]\n\n"
           "Trains every listed variant on every listed task for seeds 1..N, each run in its\n"
           "own process, writing DIR/<task>/<variant>/seed<N>.h5 (default DIR:\n"
           "results/<preset>). Runs that already finished, diverged or were skipped are not\n"
           "repeated; interrupted runs resume from their checkpoint; failed runs are retried.\n"
           "A variant that does not fit a task's shape is recorded as skipped with the reason;\n"
           "a failed or diverged run is recorded and the sweep goes on. Ctrl-C stops cleanly:\n"
           "run the same command again to continue.\n\n"
           "Under an MPI launcher (mpirun -np N lra suite ..., srun) the cells are spread\n"
           "over the ranks: rank 0 hands out the next cell to whichever rank is free and\n"
           "runs cells itself. Each run is still a child 'lra train' writing its own file, so\n"
           "killing a rank loses no finished run; rerun the same command to finish the rest.\n\n"
           "  --tasks   default: all LRA tasks (not synthetic)\n"
           "  --attn    default: all registered variants\n"
           "  --seeds   default 1\n"
           "  --keep-model  each finished run keeps its model as <run>.h5.model (for\n"
           "                'lra approx --checkpoint')\n");
}

/* Splits a comma-separated list in place. */
static int split_list(char *s, const char **out, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t && n < max;
         t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    return n;
}

static void default_tasks(sweep *w)
{
    for (int i = 0; lra_tasks[i] && w->n_tasks < MAX_ITEMS; i++)
        if (strcmp(lra_tasks[i]->name, "synthetic") != 0) w->tasks[w->n_tasks++] = lra_tasks[i]->name;
}

static void default_attns(sweep *w)
{
    for (int i = 0; i < lra_attn_count() && w->n_attns < MAX_ITEMS; i++)
        w->attns[w->n_attns++] = lra_attn_get(i)->name;
}

/* Status recorded in an existing results file, or "" when there is none. */
static void existing_status(const char *path, const char *group, char *status, size_t n)
{
    char err[256];
    status[0] = 0;
    if (access(path, F_OK) != 0) return;
    lra_results *r = lra_results_load(path, group, err, sizeof err);
    const char *s = r ? lra_results_get_str(r, "status") : NULL;
    snprintf(status, n, "%s", s ? s : "unreadable");
    lra_results_free(r);
}

/* A run that never got as far as writing its own results still gets a file: status and why. */
static void record_outcome(const char *path, const char *group, const sweep *w, const char *task,
                           const char *attn, int seed, const char *status, const char *reason)
{
    char when[32], err[512];
    lra_utc_now(when, sizeof when);
    lra_results *r = lra_results_create(path, group);
    lra_results_attr_str(r, "task", task);
    lra_results_attr_str(r, "variant", attn);
    lra_results_attr_str(r, "preset", w->preset);
    lra_results_attr_num(r, "seed", seed);
    lra_results_attr_str(r, "code_version", lra_code_version);
    lra_results_attr_str(r, "status", status);
    lra_results_attr_str(r, "reason", reason);
    lra_results_attr_str(r, "end_time", when);
    if (lra_results_flush(r, err, sizeof err) != 0) fprintf(stderr, "lra suite: %s\n", err);
    lra_results_free(r);
}

static volatile sig_atomic_t interrupted;
static void on_int(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* In the child of a rank, before exec: no MPI identity, and SIGTERM when the rank dies. */
static void child_leaves_mpi(pid_t parent)
{
    lra_mpi_scrub_child_env();
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) raise(SIGTERM); /* the rank died before prctl took effect */
#else
    (void)parent;
#endif
}

/* Waits for the child in naps: the dispatcher answers other ranks meanwhile, and a signal the
 * rank receives (mpirun forwards SIGTERM/SIGINT to ranks, not to their children) is passed on
 * once, so the child stops after its step and keeps its checkpoint. */
static void wait_polling(const sweep *w, pid_t pid, int *status)
{
    int forwarded = 0;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return;
        if (interrupted && !forwarded) {
            kill(pid, SIGTERM);
            forwarded = 1;
        }
        if (w->idle) w->idle();
        nap_ms(10);
    }
}

/* Takes <out>.lock (see the header), waiting while another process holds it. Returns the
 * descriptor, inherited by the child and closed when the cell is done; -1 when interrupted. */
static int take_cell_lock(const sweep *w, const char *out)
{
    char path[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s.lock", out);
    int fd = open(path, O_RDWR | O_CREAT, 0644); /* no O_CLOEXEC: the child must hold it too */
    if (fd < 0) lra_die("cannot create lock file %s: %s", path, strerror(errno));
    for (int said = 0; flock(fd, LOCK_EX | LOCK_NB) != 0;) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            lra_die("cannot lock %s: %s", path, strerror(errno));
        if (interrupted) {
            close(fd);
            return -1;
        }
        if (!said++)
            fprintf(stderr, "  waiting%s: another process is still running this cell (%s)\n",
                    w->rank_tag, path);
        if (w->idle) w->idle();
        nap_ms(100);
    }
    return fd;
}

/* Runs `lra train` for one cell; returns its exit status (128 + signal if killed). */
static int run_child(const sweep *w, const char *task, const char *attn, int seed,
                     const char *out, const char *errfile)
{
    char seed_s[16];
    snprintf(seed_s, sizeof seed_s, "%d", seed);
    const char *argv[300];
    int n = 0;
    argv[n++] = "lra";
    argv[n++] = "train";
    const char *fixed[] = {"--task", task, "--attn", attn, "--preset", w->preset, "--seed",
                           seed_s, "--out", out, "--resume"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[n++] = fixed[i];
    if (w->threads) argv[n++] = "--threads", argv[n++] = w->threads;
    if (w->data_dir) argv[n++] = "--data-dir", argv[n++] = w->data_dir;
    if (w->quiet) argv[n++] = "--quiet";
    if (w->keep_model) argv[n++] = "--keep-model";
    for (int i = 0; i < w->n_sets; i++) argv[n++] = "--set", argv[n++] = w->sets[i];
    argv[n] = NULL;
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (w->launched) child_leaves_mpi(parent);
        setenv("LRA_ERROR_FILE", errfile, 1);
        execv("/proc/self/exe", (char *const *)argv);
        fprintf(stderr, "lra suite: cannot start lra train: %s\n", strerror(errno));
        _exit(127);
    }
    int status = 0;
    if (w->poll)
        wait_polling(w, pid, &status);
    else
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void read_reason(const char *errfile, char *buf, size_t n)
{
    FILE *f = fopen(errfile, "r");
    buf[0] = 0;
    if (f) {
        size_t got = fread(buf, 1, n - 1, f);
        buf[got] = 0;
        fclose(f);
    }
    if (!buf[0]) snprintf(buf, n, "no message (see the log above)");
}

static int run_cell_outcome(const sweep *w, const char *task, const char *attn, int seed,
                            const char *out, const char *group, const char *status, int rc,
                            const char *reason, tally *t);

/* Returns 1 when the sweep must stop (interrupted). */
static int run_cell(const sweep *w, const char *task, const char *attn, int seed, int index,
                    int total, tally *t)
{
    char dir[PATH_MAX], out[PATH_MAX + 32], group[160], status[64], errfile[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s/%s", w->out_dir, task, attn);
    snprintf(out, sizeof out, "%s/seed%d.h5", dir, seed);
    snprintf(group, sizeof group, "/%s/%s/seed%d", task, attn, seed);
    existing_status(out, group, status, sizeof status);
    if (!strcmp(status, "finished") || !strcmp(status, "diverged") || !strcmp(status, "skipped")) {
        t->done_before++;
        return 0;
    }
    if (lra_mkdirs(dir) != 0) lra_die("cannot create results directory %s: %s", dir, strerror(errno));
    int lock_fd = -1;
    if (w->guard) {
        if ((lock_fd = take_cell_lock(w, out)) < 0) return 1;
        existing_status(out, group, status, sizeof status); /* the last holder may have ended it */
        if (!strcmp(status, "finished") || !strcmp(status, "diverged") ||
            !strcmp(status, "skipped")) {
            close(lock_fd);
            t->done_before++;
            return 0;
        }
    }
    fprintf(stderr, "[%d/%d] %s / %s / seed %d%s%s\n", index, total, task, attn, seed,
            !strcmp(status, "interrupted") || !strcmp(status, "running") ? " (resuming)" : "",
            w->rank_tag);
    snprintf(errfile, sizeof errfile, "%s/seed%d.error", dir, seed);
    unlink(errfile);
    int rc = run_child(w, task, attn, seed, out, errfile);
    char reason[1024];
    read_reason(errfile, reason, sizeof reason);
    unlink(errfile);
    existing_status(out, group, status, sizeof status);
    /* Held until the outcome below is recorded. */
    int stop = run_cell_outcome(w, task, attn, seed, out, group, status, rc, reason, t);
    if (lock_fd >= 0) close(lock_fd);
    return stop;
}

/* Tallies how a child ended and records what it could not record itself. Returns 1 when the
 * sweep must stop (interrupted). */
static int run_cell_outcome(const sweep *w, const char *task, const char *attn, int seed,
                            const char *out, const char *group, const char *status, int rc,
                            const char *reason, tally *t)
{
    if (rc == LRA_EXIT_OK) {
        t->finished++;
    } else if (rc == LRA_EXIT_SKIPPED) {
        fprintf(stderr, "  skipped: %s\n", reason);
        record_outcome(out, group, w, task, attn, seed, "skipped", reason);
        t->skipped++;
    } else if (rc == LRA_EXIT_INTERRUPTED || rc == 128 + SIGINT || interrupted) {
        return 1;
    } else if (!strcmp(status, "diverged")) {
        t->diverged++;
    } else {
        fprintf(stderr, "  failed (exit %d): %s\n", rc, reason);
        if (strcmp(status, "running") != 0 || rc >= 128)
            record_outcome(out, group, w, task, attn, seed, "failed", reason);
        t->failed++;
    }
    return 0;
}

#ifdef LRA_HAVE_MPI
/* Cell i of the matrix, in the single-process order (task, then variant, then seed). */
typedef struct cell_ctx {
    const sweep *w;
    tally *t;
    int total;
} cell_ctx;

static int run_cell_index(void *arg, int i)
{
    const cell_ctx *c = arg;
    const sweep *w = c->w;
    int s = i % w->seeds, b = i / w->seeds % w->n_attns, a = i / w->seeds / w->n_attns;
    return run_cell(w, w->tasks[a], w->attns[b], s + 1, i + 1, c->total, c->t) || interrupted;
}

/* The matrix over MPI ranks (suite_mpi.c). Returns 1 when stopped; t holds the sums. */
static int run_distributed(sweep *w, tally *t, int total)
{
    w->launched = w->guard = w->poll = 1;
    w->idle = lra_suite_mpi_idle;
    snprintf(w->rank_tag, sizeof w->rank_tag, " (rank %d)", lra_mpi_rank());
    cell_ctx c = {w, t, total};
    int stopped = lra_suite_mpi_run(total, run_cell_index, &c);
    /* Sums on every rank, so all exit with the same status. */
    int counts[6] = {t->finished, t->skipped, t->diverged, t->failed, t->done_before, stopped};
    lra_suite_mpi_sum(counts, 6);
    *t = (tally){counts[0], counts[1], counts[2], counts[3], counts[4]};
    return counts[5] > 0;
}
#endif

int lra_cmd_suite(int argc, char **argv)
{
    sweep w = {.seeds = 1};
    char *tasks_arg = NULL, *attn_arg = NULL, out_default[PATH_MAX];
    const char *v;
    lra_cli_load_env_plugins();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return LRA_EXIT_OK;
        } else if (lra_arg_value(argc, argv, &i, "--preset", &w.preset, "suite") ||
                   lra_arg_value(argc, argv, &i, "--out-dir", &w.out_dir, "suite") ||
                   lra_arg_value(argc, argv, &i, "--data-dir", &w.data_dir, "suite") ||
                   lra_arg_value(argc, argv, &i, "--threads", &w.threads, "suite")) {
            continue;
        } else if (lra_arg_value(argc, argv, &i, "--tasks", &v, "suite")) {
            tasks_arg = strdup(v);
        } else if (lra_arg_value(argc, argv, &i, "--attn", &v, "suite")) {
            attn_arg = strdup(v);
        } else if (lra_arg_value(argc, argv, &i, "--seeds", &v, "suite")) {
            w.seeds = lra_arg_int("suite", "--seeds", v, 1, 100);
        } else if (lra_arg_value(argc, argv, &i, "--set", &v, "suite")) {
            if (w.n_sets == 128) lra_usage_error("suite", "too many --set options");
            w.sets[w.n_sets++] = v;
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            w.quiet = 1;
        } else if (!strcmp(argv[i], "--keep-model")) {
            w.keep_model = 1;
        } else {
            lra_usage_error("suite", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!w.preset) lra_usage_error("suite", "--preset is required (see 'lra list presets')");
    if (!tasks_arg || !strcmp(tasks_arg, "all"))
        default_tasks(&w);
    else
        w.n_tasks = split_list(tasks_arg, w.tasks, MAX_ITEMS);
    if (!attn_arg || !strcmp(attn_arg, "all"))
        default_attns(&w);
    else
        w.n_attns = split_list(attn_arg, w.attns, MAX_ITEMS);
    for (int i = 0; i < w.n_tasks; i++)
        if (!lra_task_find(w.tasks[i]))
            lra_usage_error("suite", "unknown task '%s' (see 'lra list tasks')", w.tasks[i]);
    for (int i = 0; i < w.n_attns; i++)
        if (!lra_attn_find(w.attns[i]))
            lra_usage_error("suite", "unknown attention variant '%s'", w.attns[i]);
    if (!w.out_dir) {
        const char *base = strrchr(w.preset, '/') ? strrchr(w.preset, '/') + 1 : w.preset;
        snprintf(out_default, sizeof out_default, "results/%.*s", (int)strcspn(base, "."), base);
        w.out_dir = out_default;
    }

    /* The children get Ctrl-C from the terminal themselves; the sweep only notes it. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_int;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tally t = {0};
    int total = w.n_tasks * w.n_attns * w.seeds, index = 0, stopped = 0, lead = 1;
#ifdef LRA_HAVE_MPI
    if (lra_mpi_launched()) {
        lra_mpi_start(NULL, NULL);
        lead = lra_mpi_rank() == 0;
        if (lead)
            fprintf(stderr, "lra suite: %d cells over %d MPI ranks\n", total, lra_mpi_size());
        stopped = run_distributed(&w, &t, total);
        lra_mpi_stop();
    } else
#endif
    for (int a = 0; a < w.n_tasks && !stopped; a++)
        for (int b = 0; b < w.n_attns && !stopped; b++)
            for (int s = 1; s <= w.seeds && !stopped; s++)
                stopped = run_cell(&w, w.tasks[a], w.attns[b], s, ++index, total, &t) ||
                          interrupted;
    if (lead)
        fprintf(stderr, "lra suite: %d finished, %d skipped, %d diverged, %d failed, %d done "
                "before; results in %s/\n", t.finished, t.skipped, t.diverged, t.failed,
                t.done_before, w.out_dir);
    free(tasks_arg);
    free(attn_arg);
    if (stopped) {
        if (lead) fprintf(stderr, "lra suite: interrupted; run the same command to continue\n");
        return LRA_EXIT_INTERRUPTED;
    }
    return t.failed ? LRA_EXIT_FAIL : LRA_EXIT_OK;
}
