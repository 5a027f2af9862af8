/* cmd_report.c — `lra report`: tables and gnuplot figures from the HDF5 results.
 *
 * Reads only HDF5: the run files under --in (any *.h5 holding a /<task>/<variant>/seed<N> run),
 * the benchmark file of `lra bench` and the approximation file of `lra approx`. Writes under --out:
 *   table1_accuracy.{md,tex,csv}    test accuracy per task and variant, mean ± std over seeds
 *   table2_efficiency.{md,tex,csv}  steps/s and peak memory per length, relative to softmax
 *   table3_approx.{md,tex,csv}      approximation error against softmax (`lra approx` file)
 *   NAME.dat, NAME.gp, NAME.{png,pdf,svg}  each figure's data, its gnuplot driver and the figure
 * A metric stored in a file (accuracy, speed, memory, ratio to softmax) is copied, never
 * recomputed. The report computes only statistics across files — mean and sample standard
 * deviation over seeds, means over tasks — and states each rule in the table caption.
 * Drivers set terminal, data and variant styles, then load a template from <source>/plots
 * (LRA_PLOTS_DIR overrides), so `cd OUT && gnuplot NAME.gp` redraws a figure after restyling.
 */
#include <errno.h>
#include <ftw.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "lra_build.h"
#include "results.h"

enum { MAX_TASKS = 16, MAX_VARS = 48, MAX_SEEDS = 32, MAX_MODES = 8, MAX_LENS = 16 };
enum { MAX_ROWS = 64, MAX_COLS = 48, CELL = 96, NOTES = 16384 };
enum { PNG_W = 1600, PNG_H = 1000, FONT_PT = 22 };

/* LRA Table 1 order and labels. The first N_AVG tasks make the LRA average (the paper's "Avg");
 * Path-X is reported but only ever joins a separate six-task mean (pitfall 16). */
static const char *const known_tasks[][2] = {
    {"listops", "ListOps"}, {"text", "Text"},       {"retrieval", "Retrieval"},
    {"image", "Image"},     {"pathfinder", "Pathfinder"}, {"pathx", "Path-X"}};
enum { N_KNOWN = 6, N_AVG = 5, PATHX = 5 };

/* Our variant names → model names in the LRA paper's tables (Tay et al., arXiv 2011.04006). */
static const char *const paper_names[][2] = {
    {"softmax", "Transformer"},     {"flash", "Transformer"},     {"local", "Local Attention"},
    {"sparse", "Sparse Trans."},    {"longformer", "Longformer"}, {"linformer", "Linformer"},
    {"reformer", "Reformer"},       {"sinkhorn", "Sinkhorn Trans."},
    {"synthesizer", "Synthesizer"}, {"bigbird", "BigBird"},       {"linear", "Linear Trans."},
    {"performer", "Performer"}};
static const char paper_label[] = "LRA paper (TPU)";

/* Okabe & Ito's colour-blind-safe palette (yellow dropped: unreadable on white). Variant i gets
 * colour i mod 7 and a point type and dash pattern that change every 7, so up to 84 variants get
 * distinct styles, and a variant keeps its style in every figure. */
static const char *const palette[] = {"#000000", "#E69F00", "#56B4E9", "#009E73",
                                      "#0072B2", "#D55E00", "#CC79A7"};
static const int point_types[] = {7, 5, 9, 11, 13, 15, 6, 4, 8, 10, 12, 14};
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

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) lra_die("out of memory");
    return d;
}

static int find_name(char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

static int add_name(char **names, int *n, int max, const char *name, const char *what)
{
    int i = find_name(names, *n, name);
    if (i >= 0) return i;
    if (*n == max) lra_die("more than %d %s in the results; raise the limit in cmd_report.c", max,
                           what);
    names[*n] = xstrdup(name);
    return (*n)++;
}

static int known_task(const char *t)
{
    for (int i = 0; i < N_KNOWN; i++)
        if (strcmp(known_tasks[i][0], t) == 0) return i;
    return N_KNOWN;
}

static const char *task_label(const char *t)
{
    int k = known_task(t);
    return k < N_KNOWN ? known_tasks[k][1] : t;
}

/* Tasks in LRA order, then others by name; softmax first (every ratio refers to it). */
static int cmp_task(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int d = known_task(x) - known_task(y);
    return d ? d : strcmp(x, y);
}

static int cmp_var(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int d = (strcmp(y, "softmax") == 0) - (strcmp(x, "softmax") == 0);
    return d ? d : strcmp(x, y);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static FILE *open_out(const report *r, const char *name)
{
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s", r->out, name);
    FILE *f = fopen(path, "w");
    if (!f) lra_die("cannot write %s: %s", path, strerror(errno));
    return f;
}

/* Copies a file of --out to stdout (the main job shows the tables). */
static void cat_out(const report *r, const char *name)
{
    char path[PATH_MAX + 128], buf[4096];
    snprintf(path, sizeof path, "%s/%s", r->out, name);
    FILE *f = fopen(path, "r");
    if (!f) lra_die("cannot read back %s: %s", path, strerror(errno));
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) fwrite(buf, 1, n, stdout);
    fclose(f);
}

static double num_attr(const lra_results *res, const char *name)
{
    double v;
    return lra_results_get_num(res, name, &v) == 0 ? v : NAN;
}

static const char *paper_name(const char *variant)
{
    for (size_t i = 0; i < sizeof paper_names / sizeof paper_names[0]; i++)
        if (strcmp(paper_names[i][0], variant) == 0) return paper_names[i][1];
    return NULL;
}

/* ---- reading the run files ------------------------------------------------------------ */

typedef struct scan_ctx {
    report *r;
    const char *path;
} scan_ctx;

static void add_run(report *r, const char *path, const char *group)
{
    char err[512];
    lra_results *res = lra_results_load(path, group, err, sizeof err);
    const char *status = res ? lra_results_get_str(res, "status") : NULL;
    if (!status) { /* not a run this report understands: say so, skip it */
        fprintf(stderr, "lra report: ignoring %s%s: %s\n", path, group,
                res ? "no status attribute" : err);
        lra_results_free(res);
        return;
    }
    if (r->nruns == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->runs = realloc(r->runs, (size_t)r->cap * sizeof *r->runs);
        if (!r->runs) lra_die("out of memory listing %d run files", r->cap);
    }
    /* The group name is authoritative when an attribute is missing (skipped runs of old
     * versions recorded fewer attributes). */
    char t[160], v[160];
    sscanf(group, "/%159[^/]/%159[^/]", t, v);
    const char *task = lra_results_get_str(res, "task"), *var = lra_results_get_str(res, "variant");
    run *u = &r->runs[r->nruns++];
    *u = (run){.path = xstrdup(path), .group = xstrdup(group), .task = xstrdup(task ? task : t),
               .variant = xstrdup(var ? var : v), .status = xstrdup(status),
               .reason = xstrdup(lra_results_get_str(res, "reason")),
               .preset = xstrdup(lra_results_get_str(res, "preset")),
               .acc = 100.0 * num_attr(res, "test_acc")};
    lra_results_free(res);
}

/* Runs live at depth three: task/variant/seed<N>. */
static herr_t visit_run(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)g;
    (void)info;
    const scan_ctx *c = arg;
    const char *a = strchr(name, '/'), *b = a ? strchr(a + 1, '/') : NULL;
    if (!b || strchr(b + 1, '/') || strncmp(b + 1, "seed", 4) != 0) return 0;
    char group[PATH_MAX];
    snprintf(group, sizeof group, "/%s", name);
    add_run(c->r, c->path, group);
    return 0;
}

static void scan_file(report *r, const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return; /* not HDF5, or a file being written: not a run file */
    scan_ctx c = {r, path};
    H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, visit_run, &c);
    H5Fclose(f);
}

static report *walk_report; /* nftw passes no user pointer */

static int walk_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    size_t n = strlen(path);
    if (type == FTW_F && n > 3 && strcmp(path + n - 3, ".h5") == 0) scan_file(walk_report, path);
    return 0;
}

/* Cells, their statistics over seeds and the averages over tasks. */
static void add_to_cell(cell *c, const run *u)
{
    if (!strcmp(u->status, "finished") && isfinite(u->acc) && c->n < MAX_SEEDS)
        c->acc[c->n++] = u->acc;
    else if (!strcmp(u->status, "diverged"))
        c->diverged++;
    else if (!strcmp(u->status, "skipped"))
        c->skipped++;
    else if (!strcmp(u->status, "failed"))
        c->failed++;
    else
        c->unfinished++; /* running or interrupted: not a result yet */
    if (!c->reason && u->reason[0]) c->reason = u->reason;
}

static void cell_stats(cell *c)
{
    double s = 0, ss = 0;
    for (int i = 0; i < c->n; i++) s += c->acc[i];
    c->mean = c->n ? s / c->n : NAN;
    for (int i = 0; i < c->n; i++) ss += (c->acc[i] - c->mean) * (c->acc[i] - c->mean);
    c->std = c->n > 1 ? sqrt(ss / (c->n - 1)) : NAN;
}

/* Mean over the first `k` known tasks of the variant's per-task means; NAN unless all k have
 * finished seeds: an average over a subset would not be comparable across variants. */
static double task_mean(const report *r, int v, int k)
{
    double s = 0;
    for (int i = 0; i < k; i++) {
        int t = find_name(r->tasks, r->ntasks, known_tasks[i][0]);
        if (t < 0 || r->cells[t][v].n == 0) return NAN;
        s += r->cells[t][v].mean;
    }
    return s / k;
}

static void organise(report *r)
{
    for (int i = 0; i < r->nruns; i++) {
        add_name(r->tasks, &r->ntasks, MAX_TASKS, r->runs[i].task, "tasks");
        add_name(r->vars, &r->nvars, MAX_VARS, r->runs[i].variant, "variants");
    }
    qsort(r->tasks, (size_t)r->ntasks, sizeof r->tasks[0], cmp_task);
    qsort(r->vars, (size_t)r->nvars, sizeof r->vars[0], cmp_var);
    r->ntrained = r->nvars;
    char presets[256] = "";
    for (int i = 0; i < r->nruns; i++) {
        const run *u = &r->runs[i];
        add_to_cell(&r->cells[find_name(r->tasks, r->ntasks, u->task)]
                             [find_name(r->vars, r->nvars, u->variant)], u);
        if (u->preset[0] && !strstr(presets, u->preset) && strlen(presets) < 200)
            snprintf(presets + strlen(presets), sizeof presets - strlen(presets), "%s%s",
                     presets[0] ? ", " : "", u->preset);
    }
    r->presets = xstrdup(presets);
    int t_pathx = find_name(r->tasks, r->ntasks, "pathx");
    for (int v = 0; v < r->nvars; v++) {
        for (int t = 0; t < r->ntasks; t++) cell_stats(&r->cells[t][v]);
        r->avg5[v] = task_mean(r, v, N_AVG);
        r->avg6[v] = t_pathx >= 0 ? task_mean(r, v, N_KNOWN) : NAN;
        r->any_avg5 |= isfinite(r->avg5[v]);
        r->any_avg6 |= isfinite(r->avg6[v]);
    }
}

/* ---- reading the benchmark file ------------------------------------------------------ */

static herr_t visit_bench(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)g;
    (void)info;
    scan_ctx *c = arg;
    report *r = c->r;
    char mode[64], var[128], group[PATH_MAX], err[512];
    int len;
    if (sscanf(name, "%63[^/]/%127[^/]/L%d", mode, var, &len) != 3) return 0;
    snprintf(group, sizeof group, "/bench/%s", name);
    lra_results *res = lra_results_load(c->path, group, err, sizeof err);
    if (!res || !lra_results_get_str(res, "status")) {
        lra_results_free(res);
        return 0;
    }
    bench_pt *p = realloc(r->pts, (size_t)(r->npts + 1) * sizeof *r->pts);
    if (!p) lra_die("out of memory reading %s", c->path);
    r->pts = p;
    p[r->npts++] = (bench_pt){.mode = xstrdup(mode), .variant = xstrdup(var), .len = len,
                              .status = xstrdup(lra_results_get_str(res, "status")),
                              .reason = xstrdup(lra_results_get_str(res, "reason")),
                              .sps = num_attr(res, "steps_per_s_median"),
                              .sps_min = num_attr(res, "steps_per_s_min"),
                              .sps_max = num_attr(res, "steps_per_s_max"),
                              .rss = num_attr(res, "peak_rss_bytes"),
                              .speed_ratio = num_attr(res, "speed_ratio_to_softmax"),
                              .mem_ratio = num_attr(res, "memory_ratio_to_softmax"),
                              .cfg_rss = num_attr(res, "config_rss_bytes"),
                              .cfg_ratio = num_attr(res, "config_memory_ratio_to_softmax")};
    add_name(r->modes, &r->nmodes, MAX_MODES, mode, "benchmark modes");
    add_name(r->vars, &r->nvars, MAX_VARS, var, "variants");
    int seen = 0;
    for (int i = 0; i < r->nlens; i++) seen |= r->lens[i] == len;
    if (!seen && r->nlens < MAX_LENS) r->lens[r->nlens++] = len;
    lra_results_free(res);
    return 0;
}

/* Variants seen only in the benchmark are appended after the trained ones (their cells stay
 * empty), so each keeps the same style in every figure. */
static void load_bench(report *r)
{
    char err[512];
    hid_t f = H5Fopen(r->bench, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) lra_die("cannot open benchmark file %s", r->bench);
    scan_ctx c = {r, r->bench};
    if (H5Lexists(f, "/bench", H5P_DEFAULT) > 0)
        H5Lvisit_by_name(f, "/bench", H5_INDEX_NAME, H5_ITER_INC, visit_bench, &c, H5P_DEFAULT);
    H5Fclose(f);
    qsort(r->lens, (size_t)r->nlens, sizeof r->lens[0], cmp_int);
    lra_results *top = lra_results_load(r->bench, "/", err, sizeof err);
    const char *cpu = top ? lra_results_get_str(top, "cpu") : NULL;
    const char *blas = top ? lra_results_get_str(top, "blas") : NULL;
    const char *ver = top ? lra_results_get_str(top, "code_version") : NULL;
    double threads = top ? num_attr(top, "threads") : NAN;
    snprintf(r->machine, sizeof r->machine, "%s; %s; %.0f threads; code %s", cpu ? cpu : "?",
             blas ? blas : "?", threads, ver ? ver : "?");
    lra_results_free(top);
}

static const bench_pt *bench_find(const report *r, const char *mode, const char *var, int len)
{
    for (int i = 0; i < r->npts; i++)
        if (r->pts[i].len == len && !strcmp(r->pts[i].mode, mode) &&
            !strcmp(r->pts[i].variant, var))
            return &r->pts[i];
    return NULL;
}

static int bench_ok(const bench_pt *p)
{
    /* "ok" in results/README.md's schema; "finished" accepted as the run files' word. */
    return p && (!strcmp(p->status, "ok") || !strcmp(p->status, "finished")) &&
           isfinite(p->sps) && isfinite(p->rss);
}

/* ---- reading the approximation file ------------------------------------------------------ */

/* A variant's points in sweep order: by swept value (default / non-numeric first), else as
 * listed in the file. */
static int cmp_approx(const void *a, const void *b)
{
    const approx_pt *x = a, *y = b;
    if (x->var != y->var) return x->var - y->var;
    int fx = isfinite(x->value_num), fy = isfinite(y->value_num);
    if (fx != fy) return fx - fy;
    if (fx && x->value_num != y->value_num) return x->value_num < y->value_num ? -1 : 1;
    return x->order - y->order;
}

/* Points come from the file attribute `groups` (results/README.md, "Approximation files").
 * Variants seen only here are appended to the list, so each keeps its style in every figure. */
static void load_approx(report *r)
{
    char err[512];
    lra_results *top = lra_results_load(r->approx, "/", err, sizeof err);
    const char *groups = top ? lra_results_get_str(top, "groups") : NULL;
    if (!groups) lra_die("%s is not an approximation file of 'lra approx' (no 'groups' "
                         "attribute)%s%s", r->approx, top ? "" : ": ", top ? "" : err);
    const char *task = lra_results_get_str(top, "task"), *src = lra_results_get_str(top, "source");
    snprintf(r->apx_task, sizeof r->apx_task, "%s", task ? task : "?");
    snprintf(r->apx_shape, sizeof r->apx_shape,
             "%.0f tokens, batch %.0f, %.0f heads of dim %.0f, q, k, v of layer 0 at %s",
             num_attr(top, "tokens"), num_attr(top, "batch"), num_attr(top, "heads"),
             num_attr(top, "head_dim"), src ? src : "?");
    for (const char *s = groups; *s;) {
        s += strspn(s, " \t\r\n");
        size_t k = strcspn(s, " \t\r\n");
        char group[PATH_MAX];
        snprintf(group, sizeof group, "%.*s", (int)k, s);
        s += k;
        lra_results *g = k ? lra_results_load(r->approx, group, err, sizeof err) : NULL;
        const char *var = g ? lra_results_get_str(g, "variant") : NULL;
        if (!var || !lra_results_get_str(g, "status")) {
            if (k) fprintf(stderr, "lra report: ignoring %s%s: %s\n", r->approx, group,
                           g ? "no variant or status attribute" : err);
            lra_results_free(g);
            continue;
        }
        approx_pt *p = realloc(r->apx, (size_t)(r->napx + 1) * sizeof *r->apx);
        if (!p) lra_die("out of memory reading %s", r->approx);
        r->apx = p;
        p[r->napx] = (approx_pt){
            .variant = xstrdup(var), .option = xstrdup(lra_results_get_str(g, "option")),
            .value = xstrdup(lra_results_get_str(g, "value")),
            .status = xstrdup(lra_results_get_str(g, "status")),
            .reason = xstrdup(lra_results_get_str(g, "reason")),
            .var = add_name(r->vars, &r->nvars, MAX_VARS, var, "variants"), .order = r->napx,
            .value_num = num_attr(g, "value_num"), .seeds = num_attr(g, "seeds"),
            .flops = num_attr(g, "flops"), .frob = num_attr(g, "frob_mean"),
            .frob_sd = num_attr(g, "frob_std"), .spec = num_attr(g, "spectral_mean"),
            .spec_sd = num_attr(g, "spectral_std"), .op = num_attr(g, "operator_spectral_mean"),
            .op_sd = num_attr(g, "operator_spectral_std")};
        r->napx++;
        lra_results_free(g);
    }
    lra_results_free(top);
    qsort(r->apx, (size_t)r->napx, sizeof *r->apx, cmp_approx);
}

static int approx_ok(const approx_pt *p)
{
    return !strcmp(p->status, "ok") && isfinite(p->flops) && isfinite(p->frob);
}

/* "option=value", or "default" for a variant without a sweep. */
static void approx_point(const approx_pt *p, char *buf, size_t n)
{
    if (p->option[0]) snprintf(buf, n, "%s=%s", p->option, p->value);
    else snprintf(buf, n, "default");
}

/* ---- published numbers (plots/published/NAME.csv, transcribed by hand from the paper) ---- */

static void load_pub(const report *r, pubtab *p, const char *file)
{
    char path[PATH_MAX + 64], line[1024];
    snprintf(path, sizeof path, "%s/published/%s", r->tpl_dir, file);
    FILE *f = fopen(path, "r");
    if (!f) lra_die("--published: cannot read %s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char **dst = p->ncols ? p->rows[p->nrows] : p->cols;
        int n = 0;
        for (char *s = line, *e; s && n < 16; s = e ? e + 1 : NULL, n++) {
            e = strchr(s, ',');
            if (e) *e = 0;
            dst[n] = xstrdup(s);
        }
        if (!p->ncols) p->ncols = n;
        else if (p->nrows < 95) p->nrows++;
    }
    fclose(f);
}

/* The printed value of column `col` for `model` (and `length` when the table has one). */
static const char *pub_get(const pubtab *p, const char *model, const char *length, const char *col)
{
    int c = find_name(p->cols, p->ncols, col), lc = find_name(p->cols, p->ncols, "length");
    if (!model || c < 0) return NULL;
    for (int i = 0; i < p->nrows; i++)
        if (p->rows[i][0] && !strcmp(p->rows[i][0], model) &&
            (!length || (lc >= 0 && p->rows[i][lc] && !strcmp(p->rows[i][lc], length))))
            return p->rows[i][c];
    return NULL;
}

/* ---- tables: Markdown, LaTeX (booktabs), CSV ------------------------------------------ */

/* Appends a footnote (one line each). */
LRA_PRINTF(2, 3) static void grid_note(grid *g, const char *fmt, ...)
{
    size_t n = strlen(g->notes);
    va_list ap;
    va_start(ap, fmt);
    if (n + 600 < sizeof g->notes) vsnprintf(g->notes + n, sizeof g->notes - n, fmt, ap);
    va_end(ap);
}

static void header(const grid *g, int c, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s", g->group[c], g->group[c][0] && g->sub[c][0] ? " " : "",
             g->sub[c]);
}

static void write_md(FILE *f, const grid *g)
{
    char h[160];
    fprintf(f, "**%s.** %s\n\n|", g->title, g->caption);
    for (int c = 0; c < g->ncols; c++) header(g, c, h, sizeof h), fprintf(f, " %s |", h);
    fprintf(f, "\n|");
    for (int c = 0; c < g->ncols; c++) fprintf(f, c ? "---:|" : "---|");
    for (int row = 0; row < g->nrows; row++) {
        fprintf(f, "\n|");
        for (int c = 0; c < g->ncols; c++)
            fprintf(f, g->bold[row][c] ? " **%s** |" : " %s |", g->cell[row][c]);
    }
    fprintf(f, "\n\n");
    for (const char *s = g->notes; *s;) { /* one note per line, as list items */
        size_t k = strcspn(s, "\n");
        fprintf(f, "- %.*s\n", (int)k, s);
        s += k + (s[k] != 0);
    }
    fprintf(f, "\n");
}

/* LaTeX-escapes s; the UTF-8 signs the tables use become their math or text forms. */
static void tex_put(FILE *f, const char *s)
{
    static const char *const map[][2] = {
        {"±", "$\\pm$"}, {"—", "---"},  {"×", "$\\times$"}, {"†", "$^\\dagger$"},
        {"_", "\\_"},    {"%", "\\%"},  {"&", "\\&"},       {"#", "\\#"},
        {"$", "\\$"},    {"~", "\\~{}"}, {"^", "\\^{}"},    {"{", "\\{"}, {"}", "\\}"},
        {"\\", "\\textbackslash{}"}, {"∝", "$\\propto$"}, {"‖", "$\\|$"},
        {"₂", "$_2$"}, {"−", "$-$"}, {"↦", "$\\mapsto$"}, {"≤", "$\\le$"}};
    while (*s) {
        size_t i = 0, n = sizeof map / sizeof map[0];
        while (i < n && strncmp(s, map[i][0], strlen(map[i][0])) != 0) i++;
        if (i < n) {
            fputs(map[i][1], f);
            s += strlen(map[i][0]);
        } else {
            fputc(*s++, f);
        }
    }
}

static void tex_headers(FILE *f, const grid *g)
{
    int grouped = 0;
    for (int c = 1; c < g->ncols; c++) grouped |= g->sub[c][0] != 0;
    if (grouped) { /* spans of equal group names, each underlined by a \cmidrule */
        char rules[1024] = "";
        for (int c = 1, e; c < g->ncols; c = e) {
            for (e = c + 1; e < g->ncols && !strcmp(g->group[e], g->group[c]); e++) {
            }
            fprintf(f, " & \\multicolumn{%d}{c}{", e - c);
            tex_put(f, g->group[c]);
            fprintf(f, "}");
            if (e - c > 1)
                snprintf(rules + strlen(rules), sizeof rules - strlen(rules),
                         "\\cmidrule(lr){%d-%d}", c + 1, e);
        }
        fprintf(f, " \\\\\n%s\n", rules);
    }
    for (int c = 0; c < g->ncols; c++) {
        if (c) fprintf(f, " & ");
        tex_put(f, grouped && c ? g->sub[c] : g->group[c]);
    }
    fprintf(f, " \\\\\n\\midrule\n");
}

static void write_tex(FILE *f, const grid *g)
{
    fprintf(f, "%% Generated by `lra report` from HDF5 results: regenerate, do not edit.\n"
               "%% Needs \\usepackage{booktabs}.\n\\begin{table}[tbp]\n\\centering\n"
               "\\caption{");
    tex_put(f, g->caption);
    fprintf(f, "}\n\\label{%s}\n\\footnotesize\n\\setlength{\\tabcolsep}{4pt}\n"
               "\\begin{tabular}{l%.*s}\n\\toprule\n", g->label, g->ncols - 1,
            "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr");
    tex_headers(f, g);
    for (int row = 0; row < g->nrows; row++) {
        for (int c = 0; c < g->ncols; c++) {
            fprintf(f, c ? " & " : "");
            fprintf(f, g->bold[row][c] ? "\\textbf{" : "");
            tex_put(f, g->cell[row][c]);
            fprintf(f, g->bold[row][c] ? "}" : "");
        }
        fprintf(f, " \\\\\n");
    }
    fprintf(f, "\\bottomrule\n\\end{tabular}\n");
    for (const char *s = g->notes; *s;) {
        size_t k = strcspn(s, "\n");
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)k, s);
        fprintf(f, "\\par\\smallskip\\raggedright ");
        tex_put(f, line);
        fprintf(f, "\n");
        s += k + (s[k] != 0);
    }
    fprintf(f, "\\end{table}\n\n");
}

static void csv_put(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) fprintf(f, *s == '"' ? "\"\"" : "%c", *s);
    fputc('"', f);
}

static void write_csv(FILE *f, const grid *g)
{
    for (int c = 0; c < g->ncols; c++) fprintf(f, "%s%s", c ? "," : "", g->sub[c]);
    for (int row = 0; row < g->nrows; row++)
        for (int c = 0; c < g->ncols; c++) {
            fprintf(f, c ? "," : "\n");
            csv_put(f, g->cell[row][c]);
        }
    fprintf(f, "\n");
}

static int add_col(grid *g, const char *group, const char *sub)
{
    LRA_ASSERT(g->ncols < MAX_COLS);
    snprintf(g->group[g->ncols], sizeof g->group[0], "%.63s", group);
    snprintf(g->sub[g->ncols], sizeof g->sub[0], "%.63s", sub);
    return g->ncols++;
}

static void set_num(grid *g, int row, int col, double v)
{
    if (isfinite(v)) snprintf(g->cell[row][col], CELL, "%.6g", v);
}

/* Marks the largest value of each listed column bold (all of them on a tie). */
static void mark_best(grid *g, int col, const double *vals, int n)
{
    double best = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(vals[i]) && vals[i] > best) best = vals[i];
    for (int i = 0; i < n; i++) g->bold[i][col] = isfinite(vals[i]) && vals[i] == best;
}

/* ---- Table 1: accuracy ------------------------------------------------------------------ */

static void cell_text(const cell *c, char *buf, size_t n)
{
    int partial = c->diverged + c->skipped + c->failed + c->unfinished;
    if (c->n > 1)
        snprintf(buf, n, "%.2f ± %.2f (%d)%s", c->mean, c->std, c->n, partial ? " †" : "");
    else if (c->n == 1)
        snprintf(buf, n, "%.2f (1)%s", c->mean, partial ? " †" : "");
    else if (c->diverged)
        snprintf(buf, n, "div.");
    else if (c->failed)
        snprintf(buf, n, "fail");
    else if (c->skipped)
        snprintf(buf, n, "—");
    else
        snprintf(buf, n, c->unfinished ? "running" : "");
}

static void cell_notes(grid *g, const cell *c, const char *var, const char *task)
{
    char counts[160];
    if (c->n == 0 && c->skipped && !c->diverged && !c->failed)
        grid_note(g, "— %s on %s skipped: %s\n", var, task, c->reason);
    else if (c->n == 0 && c->failed && !c->diverged)
        grid_note(g, "fail: %s on %s failed: %s\n", var, task, c->reason);
    if (c->n == 0 || !(c->diverged + c->skipped + c->failed + c->unfinished)) return;
    snprintf(counts, sizeof counts, "%d diverged, %d skipped, %d failed, %d unfinished",
             c->diverged, c->skipped, c->failed, c->unfinished);
    grid_note(g, "† %s on %s: mean over the finished seeds only (%s)\n", var, task, counts);
}

static void table1_caption(const report *r, grid *g)
{
    snprintf(g->caption, sizeof g->caption,
             "Test accuracy (%%) per task: mean ± sample standard deviation over finished "
             "seeds, number of seeds in brackets; best mean per column in bold. "
             "%s%s%sRuns from %s (preset %s).",
             r->any_avg5 ? "Avg: mean of the five LRA tasks (ListOps, Text, Retrieval, Image, "
                           "Pathfinder), Path-X excluded, as in the LRA paper; given only for "
                           "variants with all five tasks. "
                         : "No average: the LRA average needs all five tasks (ListOps, Text, "
                           "Retrieval, Image, Pathfinder; Path-X excluded). ",
             r->any_avg6 ? "Avg-6 adds the measured Path-X accuracy: a six-task mean, never to "
                           "be compared with Avg. "
                         : "",
             r->published ? "Columns \"LRA paper (TPU)\": Tay et al., arXiv 2011.04006, Table 1, "
                            "as printed (larger model, TPU; for orientation only). "
                          : "",
             r->in, r->presets[0] ? r->presets : "?");
    grid_note(g, "div.: every seed diverged (non-finite loss); fail: the run failed; —: the "
                 "variant refused the configuration.\n");
}

/* One average column (and its published twin); `avg` per variant. */
static void table1_avg(const report *r, grid *g, grid *csv, const char *name, const double *avg,
                       const char *pub_col)
{
    int c = add_col(g, name, ""), k = add_col(csv, "", name), pc = -1, pk = -1;
    if (pub_col) pc = add_col(g, name, paper_label), pk = add_col(csv, "", "avg_lra_paper");
    if (pub_col) snprintf(g->sub[c], sizeof g->sub[c], "ours");
    for (int v = 0; v < r->ntrained; v++) {
        if (isfinite(avg[v])) snprintf(g->cell[v][c], CELL, "%.2f", avg[v]);
        set_num(csv, v, k, avg[v]);
        const char *p = pub_col ? pub_get(&r->pub1, paper_name(r->vars[v]), NULL, pub_col) : 0;
        if (p) snprintf(g->cell[v][pc], CELL, "%s", p), snprintf(csv->cell[v][pk], CELL, "%s", p);
    }
    mark_best(g, c, avg, r->ntrained);
}

static void table1_task(const report *r, grid *g, grid *csv, int t)
{
    const char *task = r->tasks[t], *label = task_label(task);
    int pub = r->published && known_task(task) < N_KNOWN;
    int c = add_col(g, label, pub ? "ours" : ""), pc = pub ? add_col(g, label, paper_label) : -1;
    char name[96];
    int k = csv->ncols;
    const char *suffix[] = {"mean", "std", "n", "note", "lra_paper"};
    for (int i = 0; i < 4 + pub; i++)
        snprintf(name, sizeof name, "%s_%s", task, suffix[i]), add_col(csv, "", name);
    double means[MAX_VARS];
    for (int v = 0; v < r->ntrained; v++) {
        const cell *x = &r->cells[t][v];
        cell_text(x, g->cell[v][c], CELL);
        cell_notes(g, x, r->vars[v], label);
        means[v] = x->mean;
        set_num(csv, v, k, x->mean);
        set_num(csv, v, k + 1, x->std);
        snprintf(csv->cell[v][k + 2], CELL, "%d", x->n);
        snprintf(csv->cell[v][k + 3], CELL, "%.*s", CELL - 1, x->n ? "" : x->reason ? x->reason
                                                                  : g->cell[v][c]);
        const char *p = pub ? pub_get(&r->pub1, paper_name(r->vars[v]), NULL, task) : NULL;
        if (p) snprintf(g->cell[v][pc], CELL, "%s", p),
               snprintf(csv->cell[v][k + 4], CELL, "%s", p);
    }
    mark_best(g, c, means, r->ntrained);
}

static void table1(const report *r, grid *g, grid *csv)
{
    snprintf(g->title, sizeof g->title, "Table 1");
    snprintf(g->label, sizeof g->label, "tab:lra-accuracy");
    table1_caption(r, g);
    add_col(g, "Variant", ""), add_col(csv, "", "variant");
    g->nrows = csv->nrows = r->ntrained;
    for (int v = 0; v < r->ntrained; v++) {
        snprintf(g->cell[v][0], CELL, "%s", r->vars[v]);
        snprintf(csv->cell[v][0], CELL, "%s", r->vars[v]);
    }
    for (int t = 0; t < r->ntasks; t++) table1_task(r, g, csv, t);
    if (r->any_avg5) table1_avg(r, g, csv, "Avg", r->avg5, r->published ? "avg" : NULL);
    if (r->any_avg6) table1_avg(r, g, csv, "Avg-6", r->avg6, NULL);
}

/* ---- Table 2: speed and memory relative to softmax ---------------------------------------- */

static void t2_cells(grid *g, int row, int c, const bench_pt *p, int is_ref)
{
    char *s = g->cell[row][c], *m = g->cell[row][c + 1];
    if (!bench_ok(p)) {
        snprintf(s, CELL, p ? "—" : "");
        snprintf(m, CELL, p ? "—" : "");
        if (p) grid_note(g, "— %s at %s tokens: %s\n", p->variant, g->group[c],
                         p->reason[0] ? p->reason : p->status);
    } else if (is_ref) {
        snprintf(s, CELL, "%.3g", p->sps);
        snprintf(m, CELL, "%.0f MiB", p->rss / 1048576.0);
    } else {
        snprintf(s, CELL, isfinite(p->speed_ratio) ? "%.2f×" : "n/a", p->speed_ratio);
        snprintf(m, CELL, isfinite(p->mem_ratio) ? "%.2f×" : "n/a", p->mem_ratio);
        if ((!isfinite(p->speed_ratio) || !isfinite(p->mem_ratio)) && !strstr(g->notes, "n/a:"))
            grid_note(g, "n/a: no ratio, because softmax was not measured ok in the same "
                         "invocation (the file stores ratios only then)\n");
    }
}

static void t2_paper(const report *r, grid *g, int row, int c, const char *var, int len)
{
    char l[16];
    snprintf(l, sizeof l, "%d", len);
    const char *model = paper_name(var);
    int ref = !strcmp(var, "softmax"); /* absolute, like our softmax row; flash gets 1.0× */
    const char *s = pub_get(&r->pub2, model, l, ref ? "steps_per_s" : "speed_ratio");
    const char *m = pub_get(&r->pub2, model, l, ref ? "peak_mem_gb" : "memory_ratio");
    if (s) snprintf(g->cell[row][c], CELL, ref ? "%s" : "%s×", s);
    if (m) snprintf(g->cell[row][c + 1], CELL, ref ? "%s GB" : "%s×", m);
}

/* The paper timed training steps: its columns join the "train" table only. */
static void table2_mode(const report *r, grid *g, const char *mode)
{
    int cols[MAX_LENS], pcols[MAX_LENS], paper = r->published && !strcmp(mode, "train");
    char len_s[32];
    add_col(g, "Variant", "");
    for (int i = 0; i < r->nlens; i++) {
        snprintf(len_s, sizeof len_s, "%d", r->lens[i]);
        cols[i] = add_col(g, len_s, "steps/s");
        add_col(g, len_s, "memory");
        if (!paper || !pub_get(&r->pub2, "Transformer", len_s, "steps_per_s")) {
            pcols[i] = -1; /* the paper has no such length */
            continue;
        }
        pcols[i] = add_col(g, len_s, "paper steps/s");
        add_col(g, len_s, "paper memory");
    }
    for (int v = 0; v < r->nvars; v++) {
        int any = 0, row = g->nrows;
        for (int i = 0; i < r->nlens; i++) any |= bench_find(r, mode, r->vars[v], r->lens[i]) != 0;
        if (!any || row == MAX_ROWS) continue;
        g->nrows++;
        snprintf(g->cell[row][0], CELL, "%s", r->vars[v]);
        for (int i = 0; i < r->nlens; i++) {
            t2_cells(g, row, cols[i], bench_find(r, mode, r->vars[v], r->lens[i]),
                     !strcmp(r->vars[v], "softmax"));
            if (pcols[i] >= 0) t2_paper(r, g, row, pcols[i], r->vars[v], r->lens[i]);
        }
    }
    snprintf(g->caption, sizeof g->caption,
             "Benchmark mode \"%s\": speed (steps/s, median of repeats) and peak memory (RSS) "
             "at each sequence length (tokens), as ratios to softmax (softmax row: absolute "
             "values), like LRA Table 2. Measured on %s. Speed and memory depend on hardware "
             "and implementation: compare ratios, not absolute numbers.%s",
             mode, r->machine, paper ? " \"paper\" columns: Tay et al., arXiv "
             "2011.04006, Table 2 (byte-level Text, batch 32, TPU v3; memory ratios computed "
             "from the printed GB); Transformer row absolute." : "");
}

static void table2_csv(const report *r, grid *csv)
{
    const char *h[] = {"mode", "variant", "length", "status", "reason", "steps_per_s_median",
                       "steps_per_s_min", "steps_per_s_max", "peak_rss_bytes",
                       "speed_ratio_to_softmax", "memory_ratio_to_softmax", "config_rss_bytes",
                       "config_memory_ratio_to_softmax"};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) add_col(csv, "", h[i]);
    for (int i = 0; i < r->npts && csv->nrows < MAX_ROWS; i++) {
        const bench_pt *p = &r->pts[i];
        int row = csv->nrows++;
        snprintf(csv->cell[row][0], CELL, "%s", p->mode);
        snprintf(csv->cell[row][1], CELL, "%s", p->variant);
        snprintf(csv->cell[row][2], CELL, "%d", p->len);
        snprintf(csv->cell[row][3], CELL, "%s", p->status);
        snprintf(csv->cell[row][4], CELL, "%.*s", CELL - 1, p->reason);
        const double v[] = {p->sps,         p->sps_min,   p->sps_max, p->rss,
                            p->speed_ratio, p->mem_ratio, p->cfg_rss, p->cfg_ratio};
        for (int k = 0; k < 8; k++) set_num(csv, row, 5 + k, v[k]);
    }
}

/* ---- Table 3: approximation error against softmax ------------------------------------------ */

/* An error as printed: mean ± std over seeds (one seed: no ±), "n/a" when not defined. */
static void err_text(char *buf, double m, double sd, double seeds)
{
    if (!isfinite(m)) snprintf(buf, CELL, "n/a");
    else if (m == 0) snprintf(buf, CELL, "0");
    else if (seeds > 1 && isfinite(sd)) snprintf(buf, CELL, "%#.3g ± %#.2g", m, sd);
    else snprintf(buf, CELL, "%#.3g", m);
}

/* Markdown/LaTeX rows: one per point; the CSV (`csv`) has the stored values in full. */
static void table3(const report *r, grid *g, grid *csv)
{
    const char *h[] = {"variant", "option", "value", "value_num", "status", "seeds", "flops",
                       "frob_mean", "frob_std", "spectral_mean", "spectral_std",
                       "operator_spectral_mean", "operator_spectral_std", "reason"};
    const char *cols[] = {"Variant", "Point", "FLOPs", "Frobenius", "Spectral", "Operator"};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) add_col(csv, "", h[i]);
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) add_col(g, cols[i], "");
    snprintf(g->title, sizeof g->title, "Table 3");
    snprintf(g->label, sizeof g->label, "tab:lra-approx");
    for (int i = 0; i < r->napx; i++) {
        const approx_pt *p = &r->apx[i];
        char pt[CELL];
        approx_point(p, pt, sizeof pt);
        if (g->nrows == MAX_ROWS) {
            grid_note(g, "Only the first %d points are listed (of %d).\n", MAX_ROWS, r->napx);
            break;
        }
        int row = g->nrows++;
        csv->nrows++;
        const char *text[] = {p->variant, p->option, p->value, "", p->status, "", "", "", "",
                              "", "", "", "", p->reason};
        const double num[] = {NAN, NAN, NAN, p->value_num, NAN, p->seeds, p->flops, p->frob,
                              p->frob_sd, p->spec, p->spec_sd, p->op, p->op_sd, NAN};
        for (int k = 0; k < (int)(sizeof h / sizeof h[0]); k++) {
            snprintf(csv->cell[row][k], CELL, "%.*s", CELL - 1, text[k]);
            set_num(csv, row, k, num[k]);
        }
        snprintf(g->cell[row][0], CELL, "%s", i && r->apx[i - 1].var == p->var ? "" : p->variant);
        snprintf(g->cell[row][1], CELL, "%s", pt);
        if (isfinite(p->flops)) snprintf(g->cell[row][2], CELL, "%.3g", p->flops);
        if (strcmp(p->status, "ok") != 0) {
            for (int c = 3; c < 6; c++) snprintf(g->cell[row][c], CELL, "—");
            grid_note(g, "— %s %s %s: %s\n", p->variant, pt, p->status,
                      p->reason[0] ? p->reason : "no reason recorded");
            continue;
        }
        err_text(g->cell[row][3], p->frob, p->frob_sd, p->seeds);
        err_text(g->cell[row][4], p->spec, p->spec_sd, p->seeds);
        err_text(g->cell[row][5], p->op, p->op_sd, p->seeds);
        if (!isfinite(p->op))
            grid_note(g, "n/a: %s %s: %s\n", p->variant, pt,
                      p->reason[0] ? p->reason : "operator error not defined");
    }
    snprintf(g->caption, sizeof g->caption,
             "Approximation error against exact softmax attention on task %s (%s), from %s. "
             "Frobenius: ‖O − O*‖_F / ‖O*‖_F of the output; spectral: ‖O − O*‖₂ / (‖P‖₂ ‖V‖₂) "
             "(KDEformer's normalisation); operator: ‖M − P‖₂ / ‖P‖₂ of the attention operator "
             "V ↦ O (n/a when the output is not linear in V); each averaged over (batch, head) "
             "slices. Stochastic variants: mean ± sample standard deviation over plugin seeds; "
             "deterministic ones: one value. FLOPs: the plugin's count for one forward pass "
             "over the batch. Values copied from the file, never recomputed.",
             r->apx_task, r->apx_shape, r->approx);
}

/* ---- figures ------------------------------------------------------------------------------ */

static int have_gnuplot(void)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    for (const char *s = path ? path : "/usr/bin"; *s;) {
        size_t k = strcspn(s, ":");
        snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)k, s);
        if (access(buf, X_OK) == 0) return 1;
        s += k + (s[k] != 0);
    }
    return 0;
}

/* gnuplot reads a driver from --out; its errors go to our stderr. */
static int run_gnuplot(const report *r, const char *script)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (chdir(r->out) != 0) _exit(127);
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void style_index_list(const report *r, char *buf, size_t n, char *const *names, int k)
{
    buf[0] = 0;
    for (int i = 0; i < k; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%d", i ? " " : "",
                 find_name(r->vars, r->nvars, names[i]) + 1);
}

/* Settings shared by every terminal of a driver: reset (a template loaded twice must not see
 * the ranges of the first pass), data, variables, one line style per variant. */
static void prelude(FILE *f, const report *r, const char *name, const char *vars)
{
    fprintf(f, "reset\ndatafile = '%s.dat'\n%s\n", name, vars);
    for (int v = 0; v < r->nvars; v++)
        fprintf(f, "set linetype %d lc rgb '%s' lw 3 pt %d ps 1.6 dt %d  # %s\n", v + 1,
                palette[v % N_COLOURS], point_types[(v + v / N_COLOURS) % N_POINTS],
                1 + (v / N_COLOURS) % 5, r->vars[v]);
}

/* Writes NAME.gp — per format: prelude, terminal, template — and runs it. `height` in pixels
 * for a PNG_W-wide PNG; PDF keeps the proportions (8 in wide, fonts scaled alike), so the PNG
 * one looks at is what the paper gets. */
static void draw(const report *r, const char *name, const char *tpl, const char *vars,
                 int height)
{
    static const char *const term[] = {
        "pngcairo size %d,%d font 'DejaVu Sans,%.1f' noenhanced",
        "pdfcairo size %.2fin,%.2fin font 'DejaVu Sans,%.1f' noenhanced",
        "svg size %d,%d font 'DejaVu Sans,%.1f' noenhanced"};
    static const char *const ext[] = {"png", "pdf", "svg"};
    const int want[] = {r->png, r->pdf, r->svg};
    const double pdf_in = 8.0, pdf_scale = pdf_in * 72.0 / PNG_W;
    char file[160];
    snprintf(file, sizeof file, "%s.gp", name);
    FILE *f = open_out(r, file);
    fprintf(f, "# %s — generated by `lra report`; to redraw: cd here, gnuplot %s\n", file, file);
    for (int k = 0; k < 3; k++) {
        if (!want[k]) continue;
        prelude(f, r, name, vars);
        fprintf(f, "set terminal ");
        if (k == 1) fprintf(f, term[k], pdf_in, pdf_in * height / PNG_W, FONT_PT * pdf_scale);
        else fprintf(f, term[k], PNG_W, height, (double)FONT_PT);
        fprintf(f, "\nset output '%s.%s'\nload '%s/%s'\nunset output\n\n", name, ext[k],
                r->tpl_dir, tpl);
    }
    fclose(f);
    if (run_gnuplot(r, file) != 0)
        fprintf(stderr, "lra report: gnuplot failed on %s/%s (figure %s missing)\n", r->out,
                file, name);
    else
        fprintf(stderr, "lra report: figure %s/%s\n", r->out, name);
}

/* Heatmap: variants (rows) × tasks (columns) plus the averages, value = mean accuracy. */
static void fig_accuracy(const report *r)
{
    FILE *f = open_out(r, "accuracy.dat");
    fprintf(f, "# x y mean_test_acc_percent label has_value\n");
    char xt[2048] = "", yt[4096] = "", label[CELL];
    int ncols = r->ntasks + r->any_avg5 + r->any_avg6;
    for (int v = 0; v < r->ntrained; v++) {
        int y = r->ntrained - 1 - v; /* first variant at the top */
        snprintf(yt + strlen(yt), sizeof yt - strlen(yt), "%s\"%s\" %d", v ? ", " : "",
                 r->vars[v], y);
        for (int x = 0; x < ncols; x++) {
            const cell *c = x < r->ntasks ? &r->cells[x][v] : NULL;
            double m = c ? c->mean : x == r->ntasks && r->any_avg5 ? r->avg5[v] : r->avg6[v];
            label[0] = 0;
            if (c && !c->n) cell_text(c, label, sizeof label);
            else if (isfinite(m)) snprintf(label, sizeof label, "%.1f", m);
            fprintf(f, "%d %d %g \"%s\" %d\n", x, y, isfinite(m) ? m : 0, label, isfinite(m));
        }
    }
    fclose(f);
    for (int x = 0; x < ncols; x++)
        snprintf(xt + strlen(xt), sizeof xt - strlen(xt), "%s\"%s\" %d", x ? ", " : "",
                 x < r->ntasks ? task_label(r->tasks[x]) : x == r->ntasks && r->any_avg5
                 ? "Avg" : "Avg-6", x);
    char vars[8192];
    snprintf(vars, sizeof vars,
             "ncols = %d\nnrows = %d\navg_from = %d\nset xtics (%s)\nset ytics (%s)\n"
             "plot_title = \"Test accuracy (%%), mean over seeds\"", ncols, r->ntrained,
             r->any_avg5 || r->any_avg6 ? r->ntasks : -1, xt, yt);
    int h = 300 + 48 * r->ntrained;
    draw(r, "accuracy", "heatmap.gp", vars, h < 800 ? 800 : h);
}

/* Speed or memory against length, one line per variant, log-log. */
static void fig_lines(const report *r, const char *mode, int memory)
{
    char name[96], vars[4096], names[2048] = "", *listed[MAX_VARS], xt[512] = "";
    int n = 0;
    snprintf(name, sizeof name, "%s_%s", memory ? "memory" : "speed", mode);
    char dat[112];
    snprintf(dat, sizeof dat, "%s.dat", name);
    FILE *f = open_out(r, dat);
    fprintf(f, "# one block per variant: length_tokens %s\n",
            memory ? "peak_rss_MiB" : "steps_per_s_median steps_per_s_min steps_per_s_max");
    for (int v = 0; v < r->nvars; v++) {
        int any = 0;
        for (int i = 0; i < r->nlens; i++) {
            const bench_pt *p = bench_find(r, mode, r->vars[v], r->lens[i]);
            if (!bench_ok(p)) continue;
            if (!any) fprintf(f, "%s# %s\n", n ? "\n\n" : "", r->vars[v]);
            any = 1;
            if (memory) fprintf(f, "%d %g\n", p->len, p->rss / 1048576.0);
            else fprintf(f, "%d %g %g %g\n", p->len, p->sps,
                         isfinite(p->sps_min) ? p->sps_min : p->sps,
                         isfinite(p->sps_max) ? p->sps_max : p->sps);
        }
        if (any) listed[n++] = r->vars[v];
    }
    fclose(f);
    if (!n) return;
    for (int i = 0; i < n; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? " " : "",
                 listed[i]);
    for (int i = 0; i < r->nlens; i++)
        snprintf(xt + strlen(xt), sizeof xt - strlen(xt), "%s\"%d\" %d", i ? ", " : "",
                 r->lens[i], r->lens[i]);
    char styles[512];
    style_index_list(r, styles, sizeof styles, listed, n);
    snprintf(vars, sizeof vars,
             "names = \"%s\"\nstyles = \"%s\"\nerrbars = %d\nset xtics (%s)\n"
             "set xlabel \"sequence length (tokens)\"\nset ylabel \"%s\"\n"
             "plot_title = \"%s against sequence length (benchmark mode: %s)\"",
             names, styles, !memory, xt,
             memory ? "peak memory, RSS (MiB)" : "training speed (steps/s)",
             memory ? "Peak memory" : "Speed", mode);
    draw(r, name, "lines.gp", vars, PNG_H);
}

/* LRA's trade-off chart at the longest length: speed (x), average accuracy (y), memory (area). */
static void fig_bubble(const report *r, const char *mode)
{
    int len = r->lens[r->nlens - 1], n = 0;
    const double *score = r->any_avg5 ? r->avg5 : NULL;
    char name[96], dat[112], what[256], vars[2048];
    /* Without the five LRA tasks the y axis is one task's accuracy: the first task, said so. */
    if (score) snprintf(what, sizeof what, "LRA average accuracy, 5 tasks (%%)");
    else snprintf(what, sizeof what, "test accuracy on %s (%%)", task_label(r->tasks[0]));
    snprintf(name, sizeof name, "tradeoff_%s", mode);
    snprintf(dat, sizeof dat, "%s.dat", name);
    FILE *f = open_out(r, dat);
    fprintf(f, "# variant steps_per_s score_percent peak_rss_MiB colour_argb line_style\n");
    double ref = NAN;
    for (int v = 0; v < r->nvars; v++) {
        const bench_pt *p = bench_find(r, mode, r->vars[v], len);
        double y = v >= r->ntrained ? NAN : score ? score[v] : r->cells[0][v].mean;
        if (!bench_ok(p) || !isfinite(y)) continue;
        if (!strcmp(r->vars[v], "softmax")) ref = p->rss / 1048576.0;
        unsigned rgb = (unsigned)strtoul(palette[v % N_COLOURS] + 1, NULL, 16);
        fprintf(f, "\"%s\" %g %g %g %u %d\n", r->vars[v], p->sps, y, p->rss / 1048576.0,
                0x50000000u | rgb, v + 1);
        n++;
    }
    fclose(f);
    if (!n) return;
    char ref_s[64] = "";
    if (isfinite(ref)) snprintf(ref_s, sizeof ref_s, "; softmax: %.0f MiB", ref);
    snprintf(vars, sizeof vars,
             "set xlabel \"training speed at %d tokens (steps/s)\"\nset ylabel \"%s\"\n"
             "plot_title = \"Speed, accuracy and memory (benchmark mode: %s)\"\n"
             "size_title = \"bubble area ∝ peak memory at %d tokens%s\"",
             len, what, mode, len, ref_s);
    draw(r, name, "bubble.gp", vars, PNG_H);
}

/* Error against cost from the approximation file, log-log: one line per variant through its
 * sweep points (by swept value, each point labelled with its value), error bars ± 1 std over
 * seeds; points with error ≤ EXACT_TOL cannot sit on a log axis and form a marker row at
 * `floor`, a decade below every other error. Blocks: the lines first, then one per variant
 * with exact points. */
static void fig_approx(const report *r)
{
    static const double EXACT_TOL = 1e-6;
    char names[4096] = "", styles[512] = "", title[256], vars[8192];
    int nlines = 0, nblocks = 0;
    double lo = INFINITY, hi = 0, xlo = INFINITY, xhi = 0;
    FILE *f = open_out(r, "approx_error.dat");
    fprintf(f, "# lines: flops frob_low frob_mean frob_high spectral_low spectral_mean "
               "spectral_high \"value\"; then exact points (error <= %g): flops \"value\"\n",
            EXACT_TOL);
    for (int exact = 0; exact < 2; exact++)
        for (int i = 0, any = 0; i < r->napx; i++) {
            const approx_pt *p = &r->apx[i];
            if (i && p->var != r->apx[i - 1].var) any = 0; /* a new variant */
            if (!approx_ok(p) || (p->frob <= EXACT_TOL) != exact) continue;
            if (!any) {
                fprintf(f, "%s# %s%s\n", nblocks ? "\n\n" : "", p->variant,
                        exact ? " (exact)" : "");
                snprintf(title, sizeof title, "%s%s%s%s", p->variant,
                         p->option[0] ? ": " : "", p->option, exact ? " (exact)" : "");
                if (strlen(names) + strlen(title) + 4 < sizeof names)
                    snprintf(names + strlen(names), sizeof names - strlen(names), " \"%s\"",
                             title);
                snprintf(styles + strlen(styles), sizeof styles - strlen(styles), " %d",
                         p->var + 1);
                nblocks++, nlines += !exact;
            }
            any = 1;
            xlo = fmin(xlo, p->flops), xhi = fmax(xhi, p->flops);
            const double m[2] = {p->frob, p->spec}, sd[2] = {p->frob_sd, p->spec_sd};
            fprintf(f, "%g", p->flops);
            for (int k = 0; k < 2 && !exact; k++) {
                double s = isfinite(sd[k]) && p->seeds > 1 ? sd[k] : 0;
                double l = m[k] - s > 0 ? m[k] - s : m[k]; /* no bar to 0 on a log axis */
                fprintf(f, " %g %g %g", l, m[k], m[k] + s);
                if (isfinite(m[k])) lo = fmin(lo, l), hi = fmax(hi, m[k] + s);
            }
            fprintf(f, " \"%s\"\n", p->option[0] ? p->value : " "); /* "": a missing column */
        }
    fclose(f);
    if (!nblocks) return;
    if (!isfinite(lo)) lo = hi = 1; /* every point exact */
    double decade = pow(10, floor(log10(lo))), floor_y = decade / 4;
    snprintf(vars, sizeof vars,
             "names = '%s'\nstyles = \"%s\"\nnlines = %d\nexact_tol = \"1e%.0f\"\n"
             "floor_y = %g\ndecade = %g\nylo = %g\nyhi = %g\nxlo = %g\nxhi = %g\n"
             "x_label = \"attention FLOPs, one forward pass over the batch (log scale)\"\n"
             "plot_title = \"Approximation error against cost, task %s\\n(%s)\"",
             names, styles, nlines, log10(EXACT_TOL), floor_y, decade, floor_y / 1.8, hi * 1.5,
             xlo / 1.5, xhi * 1.5, r->apx_task, r->apx_shape);
    draw(r, "approx_error", "approx.gp", vars, PNG_H + 150);
}

/* Strong scaling (runs carrying `mpi_ranks`, written by `lra train` since the MPI build): per
 * task and variant with at least two (ranks, threads) configurations, steps/s of the training
 * steps against cores = ranks × threads, the mean over runs of the same configuration. Scaling
 * runs belong in a directory of their own (docs_mpi_section.md): they repeat one seed. */
enum { MAX_SCALE = 32 };
typedef struct scale_pt {
    int ranks, threads, n;
    double sps, allreduce_ms; /* sums until averaged */
} scale_pt;

static void fig_scaling_one(const report *r, const char *task, const char *var,
                            scale_pt *pts, int n)
{
    double ideal = 0;
    int xmax = 1;
    char name[200], dat[220], vars[1024];
    for (int i = 0; i < n; i++) {
        pts[i].sps /= pts[i].n, pts[i].allreduce_ms /= pts[i].n;
        if (pts[i].ranks == 1 && pts[i].threads == 1) ideal = pts[i].sps;
        if (pts[i].ranks * pts[i].threads > xmax) xmax = pts[i].ranks * pts[i].threads;
    }
    snprintf(name, sizeof name, "scaling_%s_%s", task, var);
    snprintf(dat, sizeof dat, "%s.dat", name);
    FILE *f = open_out(r, dat);
    fprintf(f, "# cores steps_per_s ranks threads allreduce_ms_per_step \"label\"; blocks: "
               "ranks x 1 thread, 1 rank x threads, other mixes\n");
    for (int block = 0; block < 3; block++) {
        fprintf(f, "%s# block %d\n", block ? "\n\n" : "", block);
        for (int c = 1; c <= xmax; c++)
            for (int i = 0; i < n; i++) {
                const scale_pt *p = &pts[i];
                /* 1 × 1 starts both lines; it is labelled once, in block 0. */
                int in = block == 0 ? p->threads == 1 : block == 1 ? p->ranks == 1
                                    : p->threads > 1 && p->ranks > 1;
                if (!in || p->ranks * p->threads != c) continue;
                fprintf(f, "%d %g %d %d %g \"", c, p->sps, p->ranks, p->threads,
                        p->allreduce_ms);
                if (block == 1 && p->threads == 1) fprintf(f, " \"\n");
                else if (p->ranks > 1)
                    fprintf(f, "%d×%d, allreduce %.2g ms\"\n", p->ranks, p->threads,
                            p->allreduce_ms);
                else fprintf(f, "%d×%d\"\n", p->ranks, p->threads);
            }
        /* An empty block would end the file for gnuplot, and one of NaN rows crashes its
         * label plot (5.4): a point left of the x range, after a blank line (no line to it). */
        fprintf(f, "\n-10 0 0 0 0 \" \"\n");
    }
    fclose(f);
    snprintf(vars, sizeof vars,
             "ideal = %g\nxmax = %d\nplot_title = \"Strong scaling, %s / %s: one run, fixed "
             "global batch\"", ideal, xmax, task, var);
    draw(r, name, "scaling.gp", vars, PNG_H);
}

static void fig_scaling(const report *r)
{
    for (int i = 0; i < r->nruns; i++) {
        const run *u = &r->runs[i];
        int seen = 0; /* one figure per (task, variant): done at its first run */
        for (int j = 0; j < i && !seen; j++)
            seen = !strcmp(r->runs[j].task, u->task) && !strcmp(r->runs[j].variant, u->variant);
        if (seen) continue;
        scale_pt pts[MAX_SCALE];
        int n = 0;
        for (int j = i; j < r->nruns; j++) {
            const run *v = &r->runs[j];
            if (strcmp(v->task, u->task) || strcmp(v->variant, u->variant)) continue;
            char err[256];
            lra_results *res = lra_results_load(v->path, v->group, err, sizeof err);
            if (!res) continue;
            double ranks = num_attr(res, "mpi_ranks"), thr = num_attr(res, "threads");
            double sps = num_attr(res, "steps_per_s");
            double ar = num_attr(res, "allreduce_seconds_per_step");
            lra_results_free(res);
            if (!isfinite(ranks) || !isfinite(thr) || !isfinite(sps) || sps <= 0) continue;
            int k = 0;
            while (k < n && !(pts[k].ranks == (int)ranks && pts[k].threads == (int)thr)) k++;
            if (k == n) {
                if (n == MAX_SCALE) continue;
                pts[n++] = (scale_pt){.ranks = (int)ranks, .threads = (int)thr};
            }
            pts[k].n++, pts[k].sps += sps, pts[k].allreduce_ms += isfinite(ar) ? 1e3 * ar : 0;
        }
        if (n >= 2) fig_scaling_one(r, u->task, u->variant, pts, n);
    }
}

static int read_column(hid_t f, const char *group, const char *col, double **out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", group, col);
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0 || H5Lexists(f, path, H5P_DEFAULT) <= 0) return 0;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT), s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    *out = malloc((size_t)(n > 0 ? n : 1) * sizeof **out);
    if (!*out || H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) n = 0;
    H5Sclose(s);
    H5Dclose(d);
    return (int)n;
}

/* Writes the `table` curve of one run (column `col`, × `scale`) as one data block. */
static int write_curve(FILE *f, hid_t h, const run *u, const char *table, const char *col,
                       double scale)
{
    char g[PATH_MAX];
    double *x = NULL, *y = NULL;
    snprintf(g, sizeof g, "%s/%s", u->group, table);
    int n = read_column(h, g, "step", &x), m = read_column(h, g, col, &y);
    fprintf(f, "# %s %s %s/%s\n", u->variant, u->group, table, col);
    for (int i = 0; i < n && i < m; i++) fprintf(f, "%g %g\n", x[i], scale * y[i]);
    fprintf(f, "\n\n");
    free(x);
    free(y);
    return n && m;
}

/* Training loss and validation accuracy against step, every seed of every variant on `task`. */
static void fig_curves(const report *r, int t)
{
    char name[96], dat[112], names[4096] = "", styles[1024] = "", titled[1024] = "";
    char vars[8192], seen[MAX_VARS] = {0};
    int blocks = 0;
    snprintf(name, sizeof name, "curves_%s", r->tasks[t]);
    snprintf(dat, sizeof dat, "%s.dat", name);
    FILE *f = open_out(r, dat);
    fprintf(f, "# per run: block 2i train (step loss), block 2i+1 validation (step acc %%)\n");
    for (int v = 0; v < r->nvars; v++)
        for (int i = 0; i < r->nruns; i++) {
            const run *u = &r->runs[i];
            if (strcmp(u->variant, r->vars[v]) || strcmp(u->task, r->tasks[t])) continue;
            hid_t h = H5Fopen(u->path, H5F_ACC_RDONLY, H5P_DEFAULT);
            if (h < 0) continue;
            int ok = write_curve(f, h, u, "train", "loss", 1.0);
            ok &= write_curve(f, h, u, "val", "acc", 100.0);
            H5Fclose(h);
            if (!ok || strlen(names) > sizeof names - 80) continue; /* blocks stay in pairs */
            blocks++;
            snprintf(names + strlen(names), sizeof names - strlen(names), " %s", u->variant);
            snprintf(styles + strlen(styles), sizeof styles - strlen(styles), " %d", v + 1);
            snprintf(titled + strlen(titled), sizeof titled - strlen(titled), " %d", !seen[v]);
            seen[v] = 1;
        }
    fclose(f);
    if (!blocks) return;
    snprintf(vars, sizeof vars,
             "names = \"%s\"\nstyles = \"%s\"\ntitled = \"%s\"\n"
             "plot_title = \"%s: training and validation curves (one line per seed)\"",
             names, styles, titled, task_label(r->tasks[t]));
    draw(r, name, "curves.gp", vars, PNG_H);
}

/* ---- command ------------------------------------------------------------------------------ */

static void help(void)
{
    printf("usage: lra report [--in DIR] [--bench FILE] [--approx FILE] [--out DIR]\n"
           "                  [--published] [--format png,pdf,svg]\n\n"
           "Reads the run files under DIR (default results/quick; any *.h5 holding a\n"
           "/<task>/<variant>/seed<N> run), the benchmark file (default DIR/bench.h5 if\n"
           "present) and the approximation file of 'lra approx' (default DIR/approx.h5, else\n"
           "results/approx.h5, if present) and writes to --out (default plots/<basename of DIR>):\n"
           "  table1_accuracy.{md,tex,csv}    accuracy per task, mean ± std over seeds, average\n"
           "  table2_efficiency.{md,tex,csv}  steps/s and memory per length relative to softmax\n"
           "  table3_approx.{md,tex,csv}      approximation error against softmax, with FLOPs\n"
           "  accuracy, speed_<mode>, memory_<mode>, tradeoff_<mode>, curves_<task>,\n"
           "  approx_error, scaling_<task>_<variant> (runs with several MPI ranks x\n"
           "  threads configurations):\n"
           "      gnuplot figures (.png, .pdf) with their .dat data and .gp drivers\n"
           "The Markdown tables are also printed. --published adds the LRA paper's numbers\n"
           "(Tay et al., arXiv 2011.04006, Tables 1 and 2) beside ours. Needs gnuplot\n"
           "(Debian: gnuplot-nox) for the figures; the tables are written without it.\n");
}

static void parse_args(report *r, int argc, char **argv)
{
    const char *fmt = "png,pdf";
    r->in = "results/quick";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            exit(LRA_EXIT_OK);
        } else if (lra_arg_value(argc, argv, &i, "--in", &r->in, "report") ||
                   lra_arg_value(argc, argv, &i, "--out", &r->out, "report") ||
                   lra_arg_value(argc, argv, &i, "--bench", &r->bench, "report") ||
                   lra_arg_value(argc, argv, &i, "--approx", &r->approx, "report") ||
                   lra_arg_value(argc, argv, &i, "--format", &fmt, "report")) {
            continue;
        } else if (!strcmp(argv[i], "--published")) {
            r->published = 1;
        } else {
            lra_usage_error("report", "unexpected argument '%s'", argv[i]);
        }
    }
    r->png = strstr(fmt, "png") != NULL;
    r->pdf = strstr(fmt, "pdf") != NULL;
    r->svg = strstr(fmt, "svg") != NULL;
    if (!r->png && !r->pdf && !r->svg)
        lra_usage_error("report", "--format wants png, pdf and/or svg, got '%s'", fmt);
    size_t n = strlen(r->in);
    while (n > 1 && r->in[n - 1] == '/') n--;
    const char *base = r->in + n;
    while (base > r->in && base[-1] != '/') base--;
    snprintf(r->out_buf, sizeof r->out_buf, "plots/%.*s", (int)(r->in + n - base), base);
    if (!r->out) r->out = r->out_buf;
    snprintf(r->bench_buf, sizeof r->bench_buf, "%.*s/bench.h5", (int)n, r->in);
    if (!r->bench && access(r->bench_buf, R_OK) != 0) /* lra bench's own default location */
        snprintf(r->bench_buf, sizeof r->bench_buf, "%.*s%sbench.h5", (int)(base - r->in), r->in,
                 base == r->in ? "../" : "");
    if (!r->bench && access(r->bench_buf, R_OK) == 0) r->bench = r->bench_buf;
    snprintf(r->approx_buf, sizeof r->approx_buf, "%.*s/approx.h5", (int)n, r->in);
    if (!r->approx && access(r->approx_buf, R_OK) != 0) /* lra approx's own default */
        snprintf(r->approx_buf, sizeof r->approx_buf, "results/approx.h5");
    if (!r->approx && access(r->approx_buf, R_OK) == 0) r->approx = r->approx_buf;
    const char *tpl = getenv("LRA_PLOTS_DIR");
    snprintf(r->tpl_dir, sizeof r->tpl_dir, "%s", tpl ? tpl : LRA_SOURCE_ROOT "/plots");
}

static void write_tables(const report *r, grid *g1, grid *c1)
{
    FILE *md = open_out(r, "table1_accuracy.md"), *tex = open_out(r, "table1_accuracy.tex");
    FILE *csv = open_out(r, "table1_accuracy.csv");
    write_md(md, g1), write_tex(tex, g1), write_csv(csv, c1);
    fclose(md), fclose(tex), fclose(csv);
    grid *g = calloc(1, sizeof *g), *c3 = calloc(1, sizeof *c3);
    if (!g || !c3) lra_die("out of memory");
    if (r->approx) {
        table3(r, g, c3);
        md = open_out(r, "table3_approx.md"), tex = open_out(r, "table3_approx.tex");
        csv = open_out(r, "table3_approx.csv");
        write_md(md, g), write_tex(tex, g), write_csv(csv, c3);
        fclose(md), fclose(tex), fclose(csv);
    }
    free(c3);
    if (!r->bench) {
        free(g);
        return;
    }
    md = open_out(r, "table2_efficiency.md"), tex = open_out(r, "table2_efficiency.tex");
    for (int m = 0; m < r->nmodes; m++) {
        memset(g, 0, sizeof *g);
        snprintf(g->title, sizeof g->title, "Table 2%s%s", r->nmodes > 1 ? ", " : "",
                 r->nmodes > 1 ? r->modes[m] : "");
        snprintf(g->label, sizeof g->label, "tab:lra-efficiency-%s", r->modes[m]);
        table2_mode(r, g, r->modes[m]);
        write_md(md, g), write_tex(tex, g);
    }
    memset(g, 0, sizeof *g);
    table2_csv(r, g);
    csv = open_out(r, "table2_efficiency.csv");
    write_csv(csv, g);
    fclose(md), fclose(tex), fclose(csv);
    free(g);
}

static void figures(const report *r)
{
    if (!have_gnuplot()) {
        fprintf(stderr, "lra report: warning: gnuplot not found, figures skipped (install "
                        "gnuplot-nox); the tables are written\n");
        return;
    }
    char tpl[PATH_MAX + 32];
    snprintf(tpl, sizeof tpl, "%s/heatmap.gp", r->tpl_dir);
    if (access(tpl, R_OK) != 0) {
        fprintf(stderr, "lra report: warning: no gnuplot templates in %s (set LRA_PLOTS_DIR); "
                        "figures skipped\n", r->tpl_dir);
        return;
    }
    fig_accuracy(r);
    for (int m = 0; m < r->nmodes && r->nlens; m++) {
        fig_lines(r, r->modes[m], 0);
        fig_lines(r, r->modes[m], 1);
        fig_bubble(r, r->modes[m]);
    }
    for (int t = 0; t < r->ntasks; t++) fig_curves(r, t);
    if (r->approx) fig_approx(r);
    fig_scaling(r);
}

int lra_cmd_report(int argc, char **argv);
int lra_cmd_report(int argc, char **argv)
{
    report *r = calloc(1, sizeof *r);
    grid *g1 = calloc(1, sizeof *g1), *c1 = calloc(1, sizeof *c1);
    if (!r || !g1 || !c1) lra_die("out of memory");
    parse_args(r, argc, argv);
    struct stat st;
    if (stat(r->in, &st) != 0 || !S_ISDIR(st.st_mode))
        lra_die("results directory '%s' not found (run 'lra suite' first, or pass --in DIR)",
                r->in);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* unreadable files are skipped, not dumped */
    walk_report = r;
    nftw(r->in, walk_entry, 16, FTW_PHYS);
    if (!r->nruns) lra_die("no run files under '%s' (*.h5 with a /<task>/<variant>/seed<N> run)",
                           r->in);
    organise(r);
    if (r->bench) load_bench(r);
    if (r->approx) load_approx(r);
    if (r->published) load_pub(r, &r->pub1, "lra_table1.csv"), load_pub(r, &r->pub2,
                                                                         "lra_table2.csv");
    if (lra_mkdirs(r->out) != 0) lra_die("cannot create %s: %s", r->out, strerror(errno));
    table1(r, g1, c1);
    write_tables(r, g1, c1);
    if (!r->bench)
        fprintf(stderr, "lra report: no benchmark file (%s): Table 2 and the speed, memory and "
                        "trade-off figures are skipped (run 'lra bench')\n", r->bench_buf);
    if (!r->approx)
        fprintf(stderr, "lra report: no approximation file (%s): Table 3 and the approx_error "
                        "figure are skipped (run 'lra approx')\n", r->approx_buf);
    figures(r);
    fprintf(stderr, "lra report: %d runs, %d tasks, %d variants; tables and figures in %s/\n",
            r->nruns, r->ntasks, r->ntrained, r->out);
    cat_out(r, "table1_accuracy.md");
    if (r->bench) cat_out(r, "table2_efficiency.md");
    if (r->approx) cat_out(r, "table3_approx.md");
    free(g1), free(c1);
    return LRA_EXIT_OK;
}
