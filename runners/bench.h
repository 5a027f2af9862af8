/* bench.h — what the files of `lra bench` share: the options, one configuration's outcome,
 * the state of an invocation, and the functions one file calls in another.
 *   cmd_bench.c      the command: help, options, configurations, the sweep
 *   bench_child.c    the child processes: one configuration's steps, the sgemm ceiling
 *   bench_measure.c  the parent's side: spawning a child, reading its report, its status
 *   bench_results.c  the HDF5 results file, merged with what it already held
 *   bench_table.c    the printed table
 */
#ifndef LRA_BENCH_H
#define LRA_BENCH_H

#include <signal.h>
#include <stddef.h>

#include "config.h"

#define MAX_ITEMS 64
#define MAX_SETS 128
#define MAX_REPEATS 1000

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

/* Set by SIGINT or SIGTERM in the parent (cmd_bench.c). */
extern volatile sig_atomic_t lra_bench_interrupted;

/* cmd_bench.c */
void lra_bench_resolve_config(const bench_opts *o, const char *variant, int len, lra_config *cfg);

/* bench_child.c: the hidden `--one` and `--sgemm` modes, run in a child. */
int lra_bench_run_one(const bench_opts *o);
int lra_bench_run_sgemm(const bench_opts *o);

/* bench_measure.c */
double lra_bench_measure_sgemm(const bench_opts *o);
void lra_bench_measure_config(const bench_opts *o, outcome *r);

/* bench_results.c */
void lra_bench_parent_dir(const char *path, char *buf, size_t n);
const outcome *lra_bench_softmax_of(const bench_run *b, int len);
void lra_bench_flush_results(const bench_run *b, const char *status);

/* bench_table.c */
void lra_bench_print_table(const bench_run *b);

#endif
