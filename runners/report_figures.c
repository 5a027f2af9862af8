/* report_figures.c — the figures of `lra report`, each as NAME.dat (its data) and NAME.gp
 * (its gnuplot driver): the accuracy heatmap, speed and memory against length, the
 * speed-accuracy-memory trade-off, approximation error against cost and the training curves.
 */
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

static void style_index_list(const report *r, char *buf, size_t n, char *const *names, int k)
{
    buf[0] = 0;
    for (int i = 0; i < k; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%d", i ? " " : "",
                 find_name(r->vars, r->nvars, names[i]) + 1);
}

/* Heatmap: variants (rows) × tasks (columns) plus the averages, value = mean accuracy. */
static void fig_accuracy(const report *r)
{
    FILE *f = lra_report_open_out(r, "accuracy.dat");
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
            if (c && !c->n) lra_report_cell_text(c, label, sizeof label);
            else if (isfinite(m)) snprintf(label, sizeof label, "%.1f", m);
            fprintf(f, "%d %d %g \"%s\" %d\n", x, y, isfinite(m) ? m : 0, label, isfinite(m));
        }
    }
    fclose(f);
    for (int x = 0; x < ncols; x++)
        snprintf(xt + strlen(xt), sizeof xt - strlen(xt), "%s\"%s\" %d", x ? ", " : "",
                 x < r->ntasks ? lra_report_task_label(r->tasks[x]) : x == r->ntasks && r->any_avg5
                 ? "Avg" : "Avg-6", x);
    char vars[8192];
    snprintf(vars, sizeof vars,
             "ncols = %d\nnrows = %d\navg_from = %d\nset xtics (%s)\nset ytics (%s)\n"
             "plot_title = \"Test accuracy (%%), mean over seeds\"", ncols, r->ntrained,
             r->any_avg5 || r->any_avg6 ? r->ntasks : -1, xt, yt);
    int h = 300 + 48 * r->ntrained;
    lra_report_draw(r, "accuracy", "heatmap.gp", vars, h < 800 ? 800 : h);
}

/* Speed or memory against length, one line per variant, log-log. */
static void fig_lines(const report *r, const char *mode, int memory)
{
    char name[96], vars[4096], names[2048] = "", *listed[MAX_VARS], xt[512] = "";
    int n = 0;
    snprintf(name, sizeof name, "%s_%s", memory ? "memory" : "speed", mode);
    char dat[112];
    snprintf(dat, sizeof dat, "%s.dat", name);
    FILE *f = lra_report_open_out(r, dat);
    fprintf(f, "# one block per variant: length_tokens %s\n",
            memory ? "peak_rss_MiB" : "steps_per_s_median steps_per_s_min steps_per_s_max");
    for (int v = 0; v < r->nvars; v++) {
        int any = 0;
        for (int i = 0; i < r->nlens; i++) {
            const bench_pt *p = lra_report_bench_find(r, mode, r->vars[v], r->lens[i]);
            if (!lra_report_bench_ok(p)) continue;
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
    lra_report_draw(r, name, "lines.gp", vars, PNG_H);
}

/* LRA's trade-off chart at the longest length: speed (x), average accuracy (y), memory (area). */
static void fig_bubble(const report *r, const char *mode)
{
    int len = r->lens[r->nlens - 1], n = 0;
    const double *score = r->any_avg5 ? r->avg5 : NULL;
    char name[96], dat[112], what[256], vars[2048];
    /* Without the five LRA tasks the y axis is one task's accuracy: the first task, said so. */
    if (score) snprintf(what, sizeof what, "LRA average accuracy, 5 tasks (%%)");
    else snprintf(what, sizeof what, "test accuracy on %s (%%)",
                  lra_report_task_label(r->tasks[0]));
    snprintf(name, sizeof name, "tradeoff_%s", mode);
    snprintf(dat, sizeof dat, "%s.dat", name);
    FILE *f = lra_report_open_out(r, dat);
    fprintf(f, "# variant steps_per_s score_percent peak_rss_MiB colour_argb line_style\n");
    double ref = NAN;
    for (int v = 0; v < r->nvars; v++) {
        const bench_pt *p = lra_report_bench_find(r, mode, r->vars[v], len);
        double y = v >= r->ntrained ? NAN : score ? score[v] : r->cells[0][v].mean;
        if (!lra_report_bench_ok(p) || !isfinite(y)) continue;
        if (!strcmp(r->vars[v], "softmax")) ref = p->rss / 1048576.0;
        unsigned rgb = (unsigned)strtoul(lra_report_palette[v % N_COLOURS] + 1, NULL, 16);
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
    lra_report_draw(r, name, "bubble.gp", vars, PNG_H);
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
    FILE *f = lra_report_open_out(r, "approx_error.dat");
    fprintf(f, "# lines: flops frob_low frob_mean frob_high spectral_low spectral_mean "
               "spectral_high \"value\"; then exact points (error <= %g): flops \"value\"\n",
            EXACT_TOL);
    for (int exact = 0; exact < 2; exact++)
        for (int i = 0, any = 0; i < r->napx; i++) {
            const approx_pt *p = &r->apx[i];
            if (i && p->var != r->apx[i - 1].var) any = 0; /* a new variant */
            if (!lra_report_approx_ok(p) || (p->frob <= EXACT_TOL) != exact) continue;
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
    lra_report_draw(r, "approx_error", "approx.gp", vars, PNG_H + 150);
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
    FILE *f = lra_report_open_out(r, dat);
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
             names, styles, titled, lra_report_task_label(r->tasks[t]));
    lra_report_draw(r, name, "curves.gp", vars, PNG_H);
}

void lra_report_figures(const report *r)
{
    if (!lra_report_have_gnuplot()) {
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
    lra_report_fig_scaling(r);
}
