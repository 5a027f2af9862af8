/* report_collect.c — `lra report`'s input: finds the run files under --in and gathers their
 * accuracies into cells (task × variant) with statistics over seeds and averages over tasks;
 * reads the benchmark file, the approximation file and the published numbers of the LRA paper.
 * Names and labels of tasks and variants live here too.
 */
#include <errno.h>
#include <ftw.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report.h"
#include "util.h"

/* LRA Table 1 order and labels. The first N_AVG tasks make the LRA average (the paper's "Avg");
 * Path-X is reported but only ever joins a separate six-task mean (pitfall 16). */
static const char *const known_tasks[][2] = {
    {"listops", "ListOps"}, {"text", "Text"},       {"retrieval", "Retrieval"},
    {"image", "Image"},     {"pathfinder", "Pathfinder"}, {"pathx", "Path-X"}};

/* Our variant names → model names in the LRA paper's tables (Tay et al., arXiv 2011.04006). */
static const char *const paper_names[][2] = {
    {"softmax", "Transformer"},     {"flash", "Transformer"},     {"local", "Local Attention"},
    {"sparse", "Sparse Trans."},    {"longformer", "Longformer"}, {"linformer", "Linformer"},
    {"reformer", "Reformer"},       {"sinkhorn", "Sinkhorn Trans."},
    {"synthesizer", "Synthesizer"}, {"bigbird", "BigBird"},       {"linear", "Linear Trans."},
    {"performer", "Performer"}};

/* ---- small helpers ------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) lra_die("out of memory");
    return d;
}


static int add_name(char **names, int *n, int max, const char *name, const char *what)
{
    int i = find_name(names, *n, name);
    if (i >= 0) return i;
    if (*n == max) lra_die("more than %d %s in the results; raise the limit in report.h", max,
                           what);
    names[*n] = xstrdup(name);
    return (*n)++;
}

int lra_report_known_task(const char *t)
{
    for (int i = 0; i < N_KNOWN; i++)
        if (strcmp(known_tasks[i][0], t) == 0) return i;
    return N_KNOWN;
}

const char *lra_report_task_label(const char *t)
{
    int k = lra_report_known_task(t);
    return k < N_KNOWN ? known_tasks[k][1] : t;
}

/* Tasks in LRA order, then others by name; softmax first (every ratio refers to it). */
static int cmp_task(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int d = lra_report_known_task(x) - lra_report_known_task(y);
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

const char *lra_report_paper_name(const char *variant)
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

/* Scans every *.h5 under --in for runs. */
void lra_report_scan_runs(report *r)
{
    walk_report = r;
    nftw(r->in, walk_entry, 16, FTW_PHYS);
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

void lra_report_organise(report *r)
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
void lra_report_load_bench(report *r)
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

const bench_pt *lra_report_bench_find(const report *r, const char *mode, const char *var, int len)
{
    for (int i = 0; i < r->npts; i++)
        if (r->pts[i].len == len && !strcmp(r->pts[i].mode, mode) &&
            !strcmp(r->pts[i].variant, var))
            return &r->pts[i];
    return NULL;
}

int lra_report_bench_ok(const bench_pt *p)
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
void lra_report_load_approx(report *r)
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

int lra_report_approx_ok(const approx_pt *p)
{
    return !strcmp(p->status, "ok") && isfinite(p->flops) && isfinite(p->frob);
}

/* "option=value", or "default" for a variant without a sweep. */
void lra_report_approx_point(const approx_pt *p, char *buf, size_t n)
{
    if (p->option[0]) snprintf(buf, n, "%s=%s", p->option, p->value);
    else snprintf(buf, n, "default");
}

/* ---- published numbers (plots/published/NAME.csv, transcribed by hand from the paper) ---- */

void lra_report_load_pub(const report *r, pubtab *p, const char *file)
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
const char *lra_report_pub_get(const pubtab *p, const char *model, const char *length,
                               const char *col)
{
    int c = find_name(p->cols, p->ncols, col), lc = find_name(p->cols, p->ncols, "length");
    if (!model || c < 0) return NULL;
    for (int i = 0; i < p->nrows; i++)
        if (p->rows[i][0] && !strcmp(p->rows[i][0], model) &&
            (!length || (lc >= 0 && p->rows[i][lc] && !strcmp(p->rows[i][lc], length))))
            return p->rows[i][c];
    return NULL;
}

