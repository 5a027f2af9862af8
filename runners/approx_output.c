/* approx_output.c — what `lra approx` reports: one printed row per point, and the HDF5
 * results file (results/README.md, "Approximation files"), rewritten atomically after every
 * point.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "approx.h"
#include "h5_write.h"
#include "platform.h"

extern const char *const lra_code_version;

/* ---- output -------------------------------------------------------------------------------- */

static void print_stat(const double *x, int n)
{
    double m, s;
    lra_approx_mean_std(x, n, &m, &s);
    if (isnan(m))
        printf("  %-19s", "n/a");
    else
        printf("  %9.3e±%-9.2e", m, s);
}

void lra_approx_print_row(const point *pt)
{
    char opt[64];
    snprintf(opt, sizeof opt, "%s%s%s", *pt->option ? pt->option : "default",
             *pt->option ? "=" : "", pt->value);
    printf("%-12s %-16s", pt->a->name, opt);
    if (strcmp(pt->status, "ok") != 0) {
        printf(" %-7s %s\n", pt->status, pt->reason);
        return;
    }
    printf(" %5d", pt->seeds);
    print_stat(pt->frob, pt->seeds);
    print_stat(pt->spec, pt->seeds);
    print_stat(pt->oper, pt->seeds);
    printf("  %10.3e\n", pt->flops);
    fflush(stdout);
}

static void group_name(const point *pt, char *buf, size_t n)
{
    if (*pt->option)
        snprintf(buf, n, "/approx/%s/%s=%s", pt->a->name, pt->option, pt->value);
    else
        snprintf(buf, n, "/approx/%s/default", pt->a->name);
}

static int h5_errors; /* failed HDF5 calls while writing one file: the flush then fails */

static void h5_str(hid_t loc, const char *name, const char *v)
{
    lra_h5_attr_str(loc, name, v, &h5_errors);
}

static void h5_num(hid_t loc, const char *name, double v)
{
    lra_h5_attr_num(loc, name, v, &h5_errors);
}

static void write_stat(hid_t g, const char *name, const double *x, int n)
{
    char key[64];
    double m, s;
    lra_approx_mean_std(x, n, &m, &s);
    h5_num(g, lra_fmt(key, sizeof key, "%s_mean", name), m);
    h5_num(g, lra_fmt(key, sizeof key, "%s_std", name), s);
}

static void write_point(hid_t f, hid_t lcpl, const point *pt, const inputs *in)
{
    char name[256];
    group_name(pt, name, sizeof name);
    hid_t g = H5Gcreate2(f, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        h5_errors++;
        return;
    }
    char *end;
    const double num = strtod(pt->value, &end);
    h5_str(g, "variant", pt->a->name);
    h5_str(g, "option", pt->option);
    h5_str(g, "value", pt->value);
    h5_num(g, "value_num", *pt->value && !*end ? num : NAN);
    h5_str(g, "options", pt->options);
    h5_str(g, "status", pt->status);
    h5_str(g, "reason", pt->reason);
    h5_str(g, "task", in->cfg.task);
    h5_num(g, "len", in->cfg.seq_len);
    h5_num(g, "tokens", in->shape.len);
    h5_num(g, "seeds", pt->seeds);
    h5_num(g, "stochastic", (pt->a->flags & LRA_ATTN_STOCHASTIC) != 0);
    h5_num(g, "exact", (pt->a->flags & LRA_ATTN_EXACT) != 0);
    h5_num(g, "linear", pt->linear);
    h5_num(g, "power_iters", pt->power_iters);
    h5_num(g, "flops", pt->flops);
    write_stat(g, "frob", pt->frob, pt->seeds);
    write_stat(g, "spectral", pt->spec, pt->seeds);
    write_stat(g, "operator_spectral", pt->oper, pt->seeds);
    if (H5Gclose(g) < 0) h5_errors++;
}

static void write_file_attrs(hid_t f, const inputs *in, const approx_opts *o, const char *status,
                             const char *groups, const char *cmdline)
{
    h5_num(f, "lra_approx_version", 1);
    h5_str(f, "status", status);
    h5_str(f, "groups", groups);
    h5_str(f, "task", in->cfg.task);
    h5_num(f, "len", in->cfg.seq_len);
    h5_num(f, "tokens", in->shape.len);
    h5_num(f, "batch", in->shape.batch);
    h5_num(f, "heads", in->shape.heads);
    h5_num(f, "head_dim", in->shape.dim);
    h5_str(f, "preset", in->cfg.preset);
    h5_str(f, "config", in->config_text);
    h5_str(f, "source", o->checkpoint ? "checkpoint" : "initialisation");
    h5_str(f, "checkpoint", o->checkpoint ? o->checkpoint : "");
    h5_num(f, "power_max_iters", POWER_MAX_ITERS);
    h5_num(f, "power_tol", POWER_TOL);
    h5_num(f, "linear_tol", LINEAR_TOL);
    h5_str(f, "code_version", lra_code_version);
    h5_str(f, "cpu", lra_cpu_model());
    h5_str(f, "blas", lra_blas_info());
    h5_num(f, "threads", lra_threads());
    h5_str(f, "command_line", cmdline);
}

/* Writes <out>.tmp, syncs it and renames it over <out>: <out> is always a complete file. */
void lra_approx_flush_file(const approx_opts *o, const inputs *in, const point *pts, int n,
                           const char *status, const char *cmdline)
{
    char tmp[4200], groups[65536] = "";
    snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
    for (int i = 0, off = 0; i < n && off < (int)sizeof groups; i++) {
        char g[256];
        group_name(&pts[i], g, sizeof g);
        off += snprintf(groups + off, sizeof groups - (size_t)off, "%s\n", g);
    }
    h5_errors = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (f >= 0) {
        write_file_attrs(f, in, o, status, groups, cmdline);
        for (int i = 0; i < n; i++) write_point(f, lcpl, &pts[i], in);
    }
    H5Pclose(lcpl);
    int rc = f < 0 || H5Fclose(f) < 0 || h5_errors ? -1 : 0;
    if (rc != 0) unlink(tmp);
    if (rc != 0 || lra_h5_commit(tmp, o->out) != 0)
        lra_die("cannot write %s (it is unchanged)", o->out);
}
