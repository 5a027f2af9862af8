/* report_tables.c — the tables of `lra report`: Table 1 (test accuracy per task and variant),
 * Table 2 (speed and memory per length relative to softmax, from the benchmark file) and
 * Table 3 (approximation error against softmax, from the approximation file), each written as
 * NAME.{md,tex,csv} under --out.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "util.h"

static const char paper_label[] = "LRA paper (TPU)";

/* ---- building a table ------------------------------------------------------------------ */

/* Appends a footnote (one line each). */
LRA_PRINTF(2, 3) static void grid_note(grid *g, const char *fmt, ...)
{
    size_t n = strlen(g->notes);
    va_list ap;
    va_start(ap, fmt);
    if (n + 600 < sizeof g->notes) vsnprintf(g->notes + n, sizeof g->notes - n, fmt, ap);
    va_end(ap);
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

void lra_report_cell_text(const cell *c, char *buf, size_t n)
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
        const char *model = lra_report_paper_name(r->vars[v]);
        const char *p = pub_col ? lra_report_pub_get(&r->pub1, model, NULL, pub_col) : 0;
        if (p) snprintf(g->cell[v][pc], CELL, "%s", p), snprintf(csv->cell[v][pk], CELL, "%s", p);
    }
    mark_best(g, c, avg, r->ntrained);
}

static void table1_task(const report *r, grid *g, grid *csv, int t)
{
    const char *task = r->tasks[t], *label = lra_report_task_label(task);
    int pub = r->published && lra_report_known_task(task) < N_KNOWN;
    int c = add_col(g, label, pub ? "ours" : ""), pc = pub ? add_col(g, label, paper_label) : -1;
    char name[96];
    int k = csv->ncols;
    const char *suffix[] = {"mean", "std", "n", "note", "lra_paper"};
    for (int i = 0; i < 4 + pub; i++)
        snprintf(name, sizeof name, "%s_%s", task, suffix[i]), add_col(csv, "", name);
    double means[MAX_VARS];
    for (int v = 0; v < r->ntrained; v++) {
        const cell *x = &r->cells[t][v];
        lra_report_cell_text(x, g->cell[v][c], CELL);
        cell_notes(g, x, r->vars[v], label);
        means[v] = x->mean;
        set_num(csv, v, k, x->mean);
        set_num(csv, v, k + 1, x->std);
        snprintf(csv->cell[v][k + 2], CELL, "%d", x->n);
        snprintf(csv->cell[v][k + 3], CELL, "%.*s", CELL - 1, x->n ? "" : x->reason ? x->reason
                                                                  : g->cell[v][c]);
        const char *model = lra_report_paper_name(r->vars[v]);
        const char *p = pub ? lra_report_pub_get(&r->pub1, model, NULL, task) : NULL;
        if (p) snprintf(g->cell[v][pc], CELL, "%s", p),
               snprintf(csv->cell[v][k + 4], CELL, "%s", p);
    }
    mark_best(g, c, means, r->ntrained);
}

void lra_report_table1(const report *r, grid *g, grid *csv)
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
    if (!lra_report_bench_ok(p)) {
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
    const char *model = lra_report_paper_name(var);
    int ref = !strcmp(var, "softmax"); /* absolute, like our softmax row; flash gets 1.0× */
    const char *s = lra_report_pub_get(&r->pub2, model, l, ref ? "steps_per_s" : "speed_ratio");
    const char *m = lra_report_pub_get(&r->pub2, model, l, ref ? "peak_mem_gb" : "memory_ratio");
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
        if (!paper || !lra_report_pub_get(&r->pub2, "Transformer", len_s, "steps_per_s")) {
            pcols[i] = -1; /* the paper has no such length */
            continue;
        }
        pcols[i] = add_col(g, len_s, "paper steps/s");
        add_col(g, len_s, "paper memory");
    }
    for (int v = 0; v < r->nvars; v++) {
        int any = 0, row = g->nrows;
        for (int i = 0; i < r->nlens; i++)
            any |= lra_report_bench_find(r, mode, r->vars[v], r->lens[i]) != 0;
        if (!any || row == MAX_ROWS) continue;
        g->nrows++;
        snprintf(g->cell[row][0], CELL, "%s", r->vars[v]);
        for (int i = 0; i < r->nlens; i++) {
            t2_cells(g, row, cols[i], lra_report_bench_find(r, mode, r->vars[v], r->lens[i]),
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
        lra_report_approx_point(p, pt, sizeof pt);
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

void lra_report_write_tables(const report *r, grid *g1, grid *c1)
{
    FILE *md = lra_report_open_out(r, "table1_accuracy.md");
    FILE *tex = lra_report_open_out(r, "table1_accuracy.tex");
    FILE *csv = lra_report_open_out(r, "table1_accuracy.csv");
    lra_report_write_md(md, g1), lra_report_write_tex(tex, g1), lra_report_write_csv(csv, c1);
    fclose(md), fclose(tex), fclose(csv);
    grid *g = calloc(1, sizeof *g), *c3 = calloc(1, sizeof *c3);
    if (!g || !c3) lra_die("out of memory");
    if (r->approx) {
        table3(r, g, c3);
        md = lra_report_open_out(r, "table3_approx.md");
        tex = lra_report_open_out(r, "table3_approx.tex");
        csv = lra_report_open_out(r, "table3_approx.csv");
        lra_report_write_md(md, g), lra_report_write_tex(tex, g), lra_report_write_csv(csv, c3);
        fclose(md), fclose(tex), fclose(csv);
    }
    free(c3);
    if (!r->bench) {
        free(g);
        return;
    }
    md = lra_report_open_out(r, "table2_efficiency.md");
    tex = lra_report_open_out(r, "table2_efficiency.tex");
    for (int m = 0; m < r->nmodes; m++) {
        memset(g, 0, sizeof *g);
        snprintf(g->title, sizeof g->title, "Table 2%s%s", r->nmodes > 1 ? ", " : "",
                 r->nmodes > 1 ? r->modes[m] : "");
        snprintf(g->label, sizeof g->label, "tab:lra-efficiency-%s", r->modes[m]);
        table2_mode(r, g, r->modes[m]);
        lra_report_write_md(md, g), lra_report_write_tex(tex, g);
    }
    memset(g, 0, sizeof *g);
    table2_csv(r, g);
    csv = lra_report_open_out(r, "table2_efficiency.csv");
    lra_report_write_csv(csv, g);
    fclose(md), fclose(tex), fclose(csv);
    free(g);
}

