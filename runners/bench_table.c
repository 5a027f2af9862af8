/* bench_table.c — the table `lra bench` prints at the end: steps/s, speed and memory relative
 * to softmax, FLOP rates against the sgemm ceiling, and how each variant's memory grows.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "platform.h"

/* ---- parent: table ------------------------------------------------------------------- */

static void print_row(const bench_run *b, const outcome *r)
{
    printf("%-12s %6d  ", r->variant, r->len);
    if (r->status != ST_OK) {
        printf("%-8s %s\n", status_names[r->status], r->reason);
        return;
    }
    const outcome *sm = lra_bench_softmax_of(b, r->len);
    char spread[48], speed[16] = "-", mem[16] = "-", frac[16] = "-", dense[16] = "-";
    snprintf(spread, sizeof spread, "%.3g [%.3g-%.3g]", 1 / r->median, 1 / r->slowest,
             1 / r->fastest);
    if (sm) snprintf(speed, sizeof speed, "%.2fx", sm->median / r->median);
    if (sm) snprintf(mem, sizeof mem, "%.2fx", r->peak / sm->peak);
    const double gf = r->flops / r->median / 1e9;
    if (b->sgemm_gflops > 0) snprintf(frac, sizeof frac, "%.1f%%", 100 * gf / b->sgemm_gflops);
    if (b->sgemm_gflops > 0 && r->dense_secs > 0)
        snprintf(dense, sizeof dense, "%.1f%%",
                 100 * r->dense_flops / r->dense_secs / 1e9 / b->sgemm_gflops);
    printf("%-24s %7s %9.1f %7s %9.2f %7s %7s\n", spread, speed, r->peak / 1048576.0, mem, gf,
           frac, dense);
}

/* How each variant's memory grows with length: the exponent k of config memory ∝ L^k between
 * its shortest and longest measured length, config memory being peak RSS minus the child's
 * baseline (the binary and libraries), which is what the configuration itself adds. k near 1
 * is linear memory, near 2 quadratic. */
static void print_memory_growth(const bench_run *b)
{
    int header = 0;
    for (int i = 0; i < b->n_res; i++) {
        const outcome *lo = NULL, *hi = NULL;
        int first = 1;
        for (int j = 0; j < b->n_res; j++) {
            const outcome *r = &b->res[j];
            if (strcmp(r->variant, b->res[i].variant)) continue;
            if (j < i) first = 0; /* reported once, at the variant's first row */
            if (r->status != ST_OK || r->baseline <= 0) continue;
            if (!lo || r->len < lo->len) lo = r;
            if (!hi || r->len > hi->len) hi = r;
        }
        if (!first || !lo || lo->len == hi->len) continue;
        const double mlo = lo->peak - lo->baseline, mhi = hi->peak - hi->baseline;
        if (mlo <= 0 || mhi <= 0) continue;
        if (!header) printf("memory growth (peak - baseline ∝ L^k):");
        header = 1;
        printf(" %s %.2f", b->res[i].variant, log(mhi / mlo) / log((double)hi->len / lo->len));
    }
    if (header) printf("\n");
}

void lra_bench_print_table(const bench_run *b)
{
    char ceiling[48] = "not measured";
    if (b->sgemm_gflops > 0) snprintf(ceiling, sizeof ceiling, "%.1f GFLOP/s", b->sgemm_gflops);
    printf("lra bench: mode %s, batch %d, preset %s, %d threads, sgemm ceiling %s\n",
           b->o.train ? "train" : "infer", b->o.batch, b->o.preset, lra_threads(), ceiling);
    printf("%-12s %6s  %-24s %7s %9s %7s %9s %7s %7s\n", "variant", "len", "steps/s [min-max]",
           "speed", "peak MB", "memory", "GFLOP/s", "ceiling", "dense");
    for (int i = 0; i < b->n_res; i++) print_row(b, &b->res[i]);
    print_memory_growth(b);
}
