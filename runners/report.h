/* report.h — what the files of `lra report` share: the collected results (struct report),
 * the table grid, and the functions one file calls in another.
 *   cmd_report.c      the command: options, the files of --out, the order of the work
 *   report_collect.c  reading the run, benchmark, approximation and published files
 *   report_grid.c     a table (a grid of strings) written as Markdown, LaTeX and CSV
 *   report_tables.c   Table 1 (accuracy), Table 2 (speed and memory), Table 3 (approximation)
 *   report_gnuplot.c  gnuplot drivers: variant styles, terminals, running gnuplot
 *   report_figures.c  the figures: accuracy, speed, memory, trade-off, approximation, curves
 *   report_scaling.c  the strong-scaling figure of MPI runs
 */
#ifndef LRA_REPORT_H
#define LRA_REPORT_H

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "results.h"

enum { MAX_TASKS = 16, MAX_VARS = 48, MAX_SEEDS = 32, MAX_MODES = 8, MAX_LENS = 16 };
enum { MAX_ROWS = 64, MAX_COLS = 48, CELL = 96, NOTES = 16384 };
enum { PNG_W = 1600, PNG_H = 1000, FONT_PT = 22 };

/* Tasks known to LRA (report_collect.c lists them in Table 1 order); the first N_AVG make the
 * LRA average. */
enum { N_KNOWN = 6, N_AVG = 5, PATHX = 5 };

/* Variant styles (report_gnuplot.c): N_COLOURS colours, N_POINTS point types. */
extern const char *const lra_report_palette[];
enum { N_COLOURS = 7, N_POINTS = 12 };

typedef struct run {
    char *path, *group, *task, *variant, *status, *reason, *preset;
    double acc; /* test_acc × 100, NAN when absent */
} run;

typedef struct cell {
    double acc[MAX_SEEDS];
    int n, diverged, skipped, failed, unfinished;
    const char *reason; /* of the first skipped or failed seed */
    double mean, std;   /* std: sample (n - 1) standard deviation, NAN for one seed */
} cell;

typedef struct bench_pt {
    char *mode, *variant, *status, *reason;
    int len;
    double sps, sps_min, sps_max, rss, speed_ratio, mem_ratio; /* NAN when absent */
    double cfg_rss, cfg_ratio; /* peak RSS minus the RSS before the model was built */
} bench_pt;

/* One point of `lra approx`: /approx/<variant>/<option>=<value> (or /default). */
typedef struct approx_pt {
    char *variant, *option, *value, *status, *reason;
    int var, order; /* index in report.vars; position in the file's `groups` */
    double value_num, seeds, flops, frob, frob_sd, spec, spec_sd, op, op_sd; /* NAN if absent */
} approx_pt;

/* A published table: rows of strings exactly as printed, looked up by model (and length). */
typedef struct pubtab {
    char *cols[16], *rows[96][16];
    int ncols, nrows;
} pubtab;

typedef struct report {
    const char *in, *bench, *approx, *out;
    char out_buf[PATH_MAX], bench_buf[PATH_MAX], approx_buf[PATH_MAX], tpl_dir[PATH_MAX];
    int published, png, pdf, svg;
    run *runs;
    int nruns, cap;
    char *tasks[MAX_TASKS], *vars[MAX_VARS], *modes[MAX_MODES], *presets;
    int ntasks, nvars, ntrained, nmodes, lens[MAX_LENS], nlens; /* ntrained: have runs */
    cell cells[MAX_TASKS][MAX_VARS];
    double avg5[MAX_VARS], avg6[MAX_VARS];
    int any_avg5, any_avg6;
    bench_pt *pts;
    int npts;
    char machine[1024];
    approx_pt *apx; /* sorted: variant order, then swept value */
    int napx;
    char apx_task[64], apx_shape[256]; /* the approximation file's inputs, for captions */
    pubtab pub1, pub2;
} report;

/* A table as strings: column 0 labels the rows; `group` heads spans of columns, `sub` the
 * columns within a span (LaTeX: \multicolumn + \cmidrule; Markdown and CSV: joined). */
typedef struct grid {
    int nrows, ncols;
    char group[MAX_COLS][64], sub[MAX_COLS][64];
    char cell[MAX_ROWS][MAX_COLS][CELL];
    unsigned char bold[MAX_ROWS][MAX_COLS];
    char title[64], label[64], caption[2048], notes[NOTES];
} grid;

/* ---- small helpers ------------------------------------------------------------------- */

/* The index of `name` in names[0..n), or -1. */
static inline int find_name(char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

/* A number attribute of a loaded run or group, NAN when absent. */
static inline double num_attr(const lra_results *res, const char *name)
{
    double v;
    return lra_results_get_num(res, name, &v) == 0 ? v : NAN;
}

/* report_collect.c */
void lra_report_scan_runs(report *r);
void lra_report_organise(report *r);
void lra_report_load_bench(report *r);
void lra_report_load_approx(report *r);
void lra_report_load_pub(const report *r, pubtab *p, const char *file);
int lra_report_known_task(const char *t);
const char *lra_report_task_label(const char *t);
const char *lra_report_paper_name(const char *variant);
const bench_pt *lra_report_bench_find(const report *r, const char *mode, const char *var,
                                      int len);
int lra_report_bench_ok(const bench_pt *p);
int lra_report_approx_ok(const approx_pt *p);
void lra_report_approx_point(const approx_pt *p, char *buf, size_t n);
const char *lra_report_pub_get(const pubtab *p, const char *model, const char *length,
                               const char *col);

/* report_grid.c */
void lra_report_write_md(FILE *f, const grid *g);
void lra_report_write_tex(FILE *f, const grid *g);
void lra_report_write_csv(FILE *f, const grid *g);

/* report_tables.c */
void lra_report_cell_text(const cell *c, char *buf, size_t n);
void lra_report_table1(const report *r, grid *g, grid *csv);
void lra_report_write_tables(const report *r, grid *g1, grid *c1);

/* report_gnuplot.c */
int lra_report_have_gnuplot(void);
void lra_report_draw(const report *r, const char *name, const char *tpl, const char *vars,
                     int height);

/* report_figures.c, report_scaling.c */
void lra_report_figures(const report *r);
void lra_report_fig_scaling(const report *r);

/* cmd_report.c: opens NAME under --out for writing, or exits with a message. */
FILE *lra_report_open_out(const report *r, const char *name);

#endif
