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
 *
 * This file: the options, the files of --out and the order of the work; report.h lists the
 * files that read the results, build the tables and draw the figures.
 */
#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "lra_build.h"
#include "report.h"

/* ---- files of --out ----------------------------------------------------------------------- */

FILE *lra_report_open_out(const report *r, const char *name)
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
    lra_report_scan_runs(r);
    if (!r->nruns) lra_die("no run files under '%s' (*.h5 with a /<task>/<variant>/seed<N> run)",
                           r->in);
    lra_report_organise(r);
    if (r->bench) lra_report_load_bench(r);
    if (r->approx) lra_report_load_approx(r);
    if (r->published) lra_report_load_pub(r, &r->pub1, "lra_table1.csv"),
                      lra_report_load_pub(r, &r->pub2, "lra_table2.csv");
    if (lra_mkdirs(r->out) != 0) lra_die("cannot create %s: %s", r->out, strerror(errno));
    lra_report_table1(r, g1, c1);
    lra_report_write_tables(r, g1, c1);
    if (!r->bench)
        fprintf(stderr, "lra report: no benchmark file (%s): Table 2 and the speed, memory and "
                        "trade-off figures are skipped (run 'lra bench')\n", r->bench_buf);
    if (!r->approx)
        fprintf(stderr, "lra report: no approximation file (%s): Table 3 and the approx_error "
                        "figure are skipped (run 'lra approx')\n", r->approx_buf);
    lra_report_figures(r);
    fprintf(stderr, "lra report: %d runs, %d tasks, %d variants; tables and figures in %s/\n",
            r->nruns, r->ntasks, r->ntrained, r->out);
    cat_out(r, "table1_accuracy.md");
    if (r->bench) cat_out(r, "table2_efficiency.md");
    if (r->approx) cat_out(r, "table3_approx.md");
    free(g1), free(c1);
    return LRA_EXIT_OK;
}
