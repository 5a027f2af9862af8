/* report_scaling.c — the strong-scaling figures of `lra report`: steps/s against cores for
 * runs trained with several MPI ranks × threads configurations.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

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
    FILE *f = lra_report_open_out(r, dat);
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
    lra_report_draw(r, name, "scaling.gp", vars, PNG_H);
}

void lra_report_fig_scaling(const report *r)
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
