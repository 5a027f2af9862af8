/* bench_results.c — `lra bench`'s HDF5 results file (results/README.md, "Benchmark files"):
 * one group per configuration, ratios to softmax of the same invocation, the groups of the
 * previous file that were not measured again, and the atomic rewrite after every configuration.
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "h5_write.h"
#include "lra_build.h"
#include "platform.h"
#include "util.h"

extern const char *const lra_code_version;

/* The directory holding `path`, with its trailing slash ("." for a bare name). */
void lra_bench_parent_dir(const char *path, char *buf, size_t n)
{
    const char *slash = strrchr(path, '/');
    snprintf(buf, n, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
}

/* ---- HDF5 output --------------------------------------------------------------------- */

static void group_name(const bench_opts *o, const outcome *r, char *buf, size_t n)
{
    snprintf(buf, n, "bench/%s/%s/L%d", o->train ? "train" : "infer", r->variant, r->len);
}

/* Failed HDF5 calls while writing one file; any makes the flush fail and keep the old file. */
static int h5_errors;

static void h5_str(hid_t loc, const char *name, const char *v)
{
    lra_h5_attr_str(loc, name, v, &h5_errors);
}

static void h5_num(hid_t loc, const char *name, double v)
{
    lra_h5_attr_num(loc, name, v, &h5_errors);
}

static void h5_column(hid_t loc, const char *name, const double *v, int n)
{
    const hsize_t dims[1] = {(hsize_t)n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || (n > 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0))
        h5_errors++;
    H5Dclose(d);
    H5Sclose(s);
}

/* Softmax at the same length, measured in this invocation: ratios only compare like with like. */
const outcome *lra_bench_softmax_of(const bench_run *b, int len)
{
    for (int i = 0; i < b->n_res; i++)
        if (b->res[i].len == len && !strcmp(b->res[i].variant, "softmax") &&
            b->res[i].status == ST_OK)
            return &b->res[i];
    return NULL;
}

static void write_config(hid_t g, const bench_run *b, const outcome *r)
{
    const bench_opts *o = &b->o;
    h5_str(g, "status", status_names[r->status]);
    h5_str(g, "reason", r->reason);
    h5_str(g, "variant", r->variant);
    h5_str(g, "mode", o->train ? "train" : "infer");
    h5_str(g, "config", r->config);
    h5_str(g, "measured_at", b->start);
    h5_num(g, "length", r->len);
    h5_num(g, "batch", o->batch);
    h5_num(g, "repeats", o->repeats);
    h5_num(g, "warmup", o->warmup);
    h5_num(g, "threads", lra_threads());
    h5_column(g, "step_seconds", r->secs, r->n_secs);
    if (r->peak > 0) h5_num(g, "peak_rss_bytes", r->peak);
    if (r->hwm > 0) h5_num(g, "child_vm_hwm_bytes", r->hwm);
    if (r->baseline > 0) h5_num(g, "baseline_rss_bytes", r->baseline);
    if (r->baseline > 0 && r->peak > 0) h5_num(g, "config_rss_bytes", r->peak - r->baseline);
    if (r->flops > 0) h5_num(g, "flops_per_step", r->flops);
    if (b->sgemm_gflops > 0) h5_num(g, "sgemm_gflops", b->sgemm_gflops);
    if (r->status != ST_OK) return;
    h5_num(g, "step_seconds_median", r->median);
    h5_num(g, "steps_per_s_median", 1.0 / r->median);
    h5_num(g, "steps_per_s_min", 1.0 / r->slowest);
    h5_num(g, "steps_per_s_max", 1.0 / r->fastest);
    h5_num(g, "useful_gflops", r->flops / r->median / 1e9);
    if (b->sgemm_gflops > 0)
        h5_num(g, "fraction_of_ceiling", r->flops / r->median / 1e9 / b->sgemm_gflops);
    if (r->dense_secs > 0) {
        h5_num(g, "dense_seconds_per_step", r->dense_secs / r->n_secs);
        h5_num(g, "dense_gflops", r->dense_flops / r->dense_secs / 1e9);
        if (b->sgemm_gflops > 0)
            h5_num(g, "dense_fraction_of_ceiling",
                   r->dense_flops / r->dense_secs / 1e9 / b->sgemm_gflops);
    }
    const outcome *sm = lra_bench_softmax_of(b, r->len);
    if (!sm) return;
    h5_num(g, "speed_ratio_to_softmax", sm->median / r->median);
    h5_num(g, "memory_ratio_to_softmax", r->peak / sm->peak);
    if (r->baseline > 0 && sm->baseline > 0)
        h5_num(g, "config_memory_ratio_to_softmax",
               (r->peak - r->baseline) / (sm->peak - sm->baseline));
}

static void write_file_attrs(hid_t f, const bench_run *b, const char *status, const char *list)
{
    char when[32];
    lra_utc_now(when, sizeof when);
    h5_num(f, "lra_bench_version", 1);
    h5_str(f, "status", status);
    h5_str(f, "cpu", lra_cpu_model());
    h5_str(f, "blas", lra_blas_info());
    h5_num(f, "threads", lra_threads());
    h5_str(f, "code_version", lra_code_version);
    h5_str(f, "compiler", LRA_C_COMPILER);
    h5_str(f, "compiler_flags", LRA_C_FLAGS);
    h5_str(f, "preset", b->o.preset);
    h5_str(f, "config", b->n_res ? b->res[0].config : "");
    h5_num(f, "sgemm_gflops", b->sgemm_gflops);
    h5_str(f, "start_time", b->start);
    h5_str(f, "end_time", when);
    h5_str(f, "command_line", b->cmdline);
    h5_str(f, "configs", list);
}

typedef struct merge_ctx {
    const bench_run *b;
    hid_t dst, lcpl;
    char *list;
    size_t list_len;
} merge_ctx;

static void list_add(merge_ctx *m, const char *name)
{
    const size_t n = strlen(name) + 2;
    m->list = realloc(m->list, m->list_len + n + 1);
    if (!m->list) lra_die("out of memory listing benchmark groups");
    snprintf(m->list + m->list_len, n + 1, "/%s\n", name);
    m->list_len += n;
}

static int written_now(const bench_run *b, const char *name)
{
    char mine[256];
    for (int i = 0; i < b->n_res; i++) {
        group_name(&b->o, &b->res[i], mine, sizeof mine);
        if (strcmp(mine, name) == 0) return 1;
    }
    return 0;
}

/* Configuration groups are exactly the links three levels below the root under "bench/". */
static herr_t merge_link(hid_t src, const char *name, const H5L_info_t *info, void *arg)
{
    merge_ctx *m = arg;
    (void)info;
    int depth = 0;
    for (const char *p = name; *p; p++) depth += *p == '/';
    if (depth != 3 || strncmp(name, "bench/", 6) != 0 || written_now(m->b, name)) return 0;
    if (H5Ocopy(src, name, m->dst, name, H5P_DEFAULT, m->lcpl) < 0) return -1;
    list_add(m, name);
    return 0;
}

/* Copies the groups of the existing file that this invocation did not re-measure. */
static int merge_old(const char *path, merge_ctx *m)
{
    if (access(path, F_OK) != 0) return 0;
    hid_t src = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (src < 0) return -1;
    herr_t rc = H5Lvisit(src, H5_INDEX_NAME, H5_ITER_INC, merge_link, m);
    H5Fclose(src);
    return rc < 0 ? -1 : 0;
}

static int write_contents(hid_t f, const bench_run *b, const char *status)
{
    merge_ctx m = {.b = b, .dst = f, .lcpl = H5Pcreate(H5P_LINK_CREATE)};
    H5Pset_create_intermediate_group(m.lcpl, 1);
    int rc = 0;
    for (int i = 0; i < b->n_res && rc == 0; i++) {
        char name[256];
        group_name(&b->o, &b->res[i], name, sizeof name);
        hid_t g = H5Gcreate2(f, name, m.lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) rc = -1;
        else write_config(g, b, &b->res[i]);
        if (g >= 0) H5Gclose(g);
        list_add(&m, name);
    }
    if (rc == 0) rc = merge_old(b->o.out, &m);
    write_file_attrs(f, b, status, m.list ? m.list : "");
    H5Pclose(m.lcpl);
    free(m.list);
    return rc;
}

/* Writes <out>.tmp, syncs it and renames it over <out>, as results.c does for run files:
 * whatever happens, <out> is the previous complete file or the new one. */
void lra_bench_flush_results(const bench_run *b, const char *status)
{
    const char *out = b->o.out;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    h5_errors = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int rc = f < 0 ? -1 : write_contents(f, b, status);
    if (f >= 0 && H5Fclose(f) < 0) rc = -1;
    if (h5_errors) rc = -1;
    if (rc != 0) unlink(tmp);
    if (rc != 0 || lra_h5_commit(tmp, out) != 0)
        lra_die("cannot write benchmark file %s (or merge its previous contents); it is "
                "unchanged", out);
}

