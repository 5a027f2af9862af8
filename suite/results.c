/* results.c — in-memory run, rewritten atomically to an HDF5 file on every flush.
 *
 * Flush protocol: write "<path>.tmp" with the HDF5 C API, close it, fsync it, rename() it over
 * <path>, fsync the directory. A SIGKILL before the rename leaves the previous <path> intact; the
 * rename itself is atomic; the directory fsync makes the rename survive a power cut too.
 */
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

enum { ATTR_STR, ATTR_NUM };

typedef struct {
    char *name;
    int kind;
    char *str;
    double num;
} attr;

typedef struct {
    char *name;
    int ncols;
    char **cols;     /* column names */
    double **vals;   /* vals[c][row] */
    size_t nrows, cap;
} table;

struct lra_results {
    char *path, *group;
    attr *attrs;
    size_t nattrs, attrs_cap;
    table *tables;
    size_t ntables, tables_cap;
};

/* ---- memory ---------------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) lra_die("out of memory copying a results string of %zu bytes", strlen(s));
    return d;
}

/* Grows an array to hold at least `need` items, doubling so appends are amortised O(1). */
static void *grow(void *p, size_t *cap, size_t need, size_t item, const char *what)
{
    if (need <= *cap) return p;
    size_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *q = realloc(p, n * item);
    if (!q) lra_die("out of memory growing %s to %zu entries", what, n);
    *cap = n;
    return q;
}

lra_results *lra_results_create(const char *path, const char *group)
{
    LRA_ASSERT(path && group);
    lra_results *r = calloc(1, sizeof *r);
    if (!r) lra_die("out of memory creating results for %s", path);
    r->path = xstrdup(path);
    r->group = xstrdup(group);
    return r;
}

/* Setting an attribute twice keeps the last value, as HDF5 attributes would. */
static attr *attr_slot(lra_results *r, const char *name)
{
    for (size_t i = 0; i < r->nattrs; i++)
        if (strcmp(r->attrs[i].name, name) == 0) {
            free(r->attrs[i].str);
            r->attrs[i].str = NULL;
            return &r->attrs[i];
        }
    r->attrs = grow(r->attrs, &r->attrs_cap, r->nattrs + 1, sizeof *r->attrs, "attributes");
    attr *a = &r->attrs[r->nattrs++];
    memset(a, 0, sizeof *a);
    a->name = xstrdup(name);
    return a;
}

void lra_results_attr_str(lra_results *r, const char *name, const char *value)
{
    LRA_ASSERT(r && name && value);
    attr *a = attr_slot(r, name);
    a->kind = ATTR_STR;
    a->str = xstrdup(value);
}

void lra_results_attr_num(lra_results *r, const char *name, double value)
{
    LRA_ASSERT(r && name);
    attr *a = attr_slot(r, name);
    a->kind = ATTR_NUM;
    a->num = value;
}

static table *table_find(lra_results *r, const char *name)
{
    for (size_t i = 0; i < r->ntables; i++)
        if (strcmp(r->tables[i].name, name) == 0) return &r->tables[i];
    return NULL;
}

static table *table_new(lra_results *r, const char *name, int ncols, const char *const *cols)
{
    r->tables = grow(r->tables, &r->tables_cap, r->ntables + 1, sizeof *r->tables, "tables");
    table *t = &r->tables[r->ntables++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->ncols = ncols;
    t->cols = calloc((size_t)ncols, sizeof *t->cols);
    t->vals = calloc((size_t)ncols, sizeof *t->vals);
    if (!t->cols || !t->vals) lra_die("out of memory creating results table %s", name);
    for (int c = 0; c < ncols; c++) t->cols[c] = xstrdup(cols[c]);
    return t;
}

void lra_results_append(lra_results *r, const char *table_name, int ncols,
                        const char *const *cols, const double *vals)
{
    LRA_ASSERT(r && table_name && ncols > 0 && cols && vals);
    table *t = table_find(r, table_name);
    if (!t) t = table_new(r, table_name, ncols, cols);
    /* A changed column list is a bug in the caller, not a run-time condition. */
    LRA_ASSERT(t->ncols == ncols);
    for (int c = 0; c < ncols; c++) LRA_ASSERT(strcmp(t->cols[c], cols[c]) == 0);

    /* All columns share one capacity, so they grow together. */
    if (t->nrows == t->cap) {
        const size_t cap = t->cap ? 2 * t->cap : 64;
        for (int c = 0; c < ncols; c++) {
            double *q = realloc(t->vals[c], cap * sizeof *q);
            if (!q) lra_die("out of memory growing results table %s to %zu rows", t->name, cap);
            t->vals[c] = q;
        }
        t->cap = cap;
    }
    for (int c = 0; c < ncols; c++) t->vals[c][t->nrows] = vals[c];
    t->nrows++;
}

const char *lra_results_get_str(const lra_results *r, const char *name)
{
    for (size_t i = 0; i < r->nattrs; i++)
        if (strcmp(r->attrs[i].name, name) == 0)
            return r->attrs[i].kind == ATTR_STR ? r->attrs[i].str : NULL;
    return NULL;
}

int lra_results_get_num(const lra_results *r, const char *name, double *value)
{
    for (size_t i = 0; i < r->nattrs; i++)
        if (strcmp(r->attrs[i].name, name) == 0 && r->attrs[i].kind == ATTR_NUM) {
            *value = r->attrs[i].num;
            return 0;
        }
    return -1;
}

void lra_results_free(lra_results *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nattrs; i++) {
        free(r->attrs[i].name);
        free(r->attrs[i].str);
    }
    for (size_t i = 0; i < r->ntables; i++) {
        table *t = &r->tables[i];
        for (int c = 0; c < t->ncols; c++) {
            free(t->cols[c]);
            free(t->vals[c]);
        }
        free(t->cols);
        free(t->vals);
        free(t->name);
    }
    free(r->attrs);
    free(r->tables);
    free(r->path);
    free(r->group);
    free(r);
}

/* ---- errors ------------------------------------------------------------------------------ */

/* Flush errors carry the file, the failing call, and the innermost HDF5 (or errno) reason. */
typedef struct {
    char *buf;
    size_t len;
    const char *path;
} errctx;

enum { REASON_LEN = 256 };

/* Walking upward, entry 0 is where HDF5 first detected the error: the most specific reason.
 * File-driver errors embed strerror as "error message = '...'" amid flags and the file name we
 * already print; keep just that part when it is there. */
static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    static const char key[] = "error message = '";
    char *reason = data;
    if (n != 0 || !e->desc) return 0;
    const char *m = strstr(e->desc, key);
    if (m) {
        m += sizeof key - 1;
        snprintf(reason, REASON_LEN, "%.*s", (int)strcspn(m, "'"), m);
    } else {
        snprintf(reason, REASON_LEN, "%s", e->desc);
    }
    return 0;
}

static int fail_h5(const errctx *ec, const char *call, const char *what)
{
    char reason[REASON_LEN] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_cb, reason);
    if (ec->buf && ec->len)
        snprintf(ec->buf, ec->len, "cannot write results file '%s': %s(%s) failed%s%s%s",
                 ec->path, call, what, reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
    return -1;
}

static int fail_errno(const errctx *ec, const char *call, const char *what)
{
    const int e = errno;
    if (ec->buf && ec->len)
        snprintf(ec->buf, ec->len, "cannot write results file '%s': %s(%s) failed: %s",
                 ec->path, call, what, strerror(e));
    return -1;
}

/* ---- HDF5 writing ------------------------------------------------------------------------ */

static int write_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *buf,
                      const errctx *ec)
{
    int rc = -1;
    hid_t space = H5Screate(H5S_SCALAR);
    if (space < 0) return fail_h5(ec, "H5Screate", name);
    hid_t a = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) {
        fail_h5(ec, "H5Acreate2", name);
        goto close_space;
    }
    if (H5Awrite(a, mtype, buf) < 0) {
        fail_h5(ec, "H5Awrite", name);
        goto close_attr;
    }
    rc = 0;
close_attr:
    if (H5Aclose(a) < 0 && rc == 0) rc = fail_h5(ec, "H5Aclose", name);
close_space:
    H5Sclose(space);
    return rc;
}

/* Variable-length UTF-8 strings, so that h5py hands back str rather than bytes. */
static int write_attrs(hid_t grp, const lra_results *r, const errctx *ec)
{
    int rc = -1;
    hid_t str = H5Tcopy(H5T_C_S1);
    if (str < 0) return fail_h5(ec, "H5Tcopy", "H5T_C_S1");
    if (H5Tset_size(str, H5T_VARIABLE) < 0) {
        fail_h5(ec, "H5Tset_size", "H5T_VARIABLE");
        goto close_type;
    }
    if (H5Tset_cset(str, H5T_CSET_UTF8) < 0) {
        fail_h5(ec, "H5Tset_cset", "H5T_CSET_UTF8");
        goto close_type;
    }
    for (size_t i = 0; i < r->nattrs; i++) {
        const attr *a = &r->attrs[i];
        const int w = a->kind == ATTR_STR
                          ? write_attr(grp, a->name, str, str, &a->str, ec)
                          : write_attr(grp, a->name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &a->num,
                                       ec);
        if (w < 0) goto close_type;
    }
    rc = 0;
close_type:
    H5Tclose(str);
    return rc;
}

static int write_column(hid_t grp, const char *name, const double *vals, size_t n,
                        const errctx *ec)
{
    int rc = -1;
    const hsize_t dims[1] = {n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    if (space < 0) return fail_h5(ec, "H5Screate_simple", name);
    hid_t d = H5Dcreate2(grp, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    if (d < 0) {
        fail_h5(ec, "H5Dcreate2", name);
        goto close_space;
    }
    if (n > 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals) < 0) {
        fail_h5(ec, "H5Dwrite", name);
        goto close_dataset;
    }
    rc = 0;
close_dataset:
    if (H5Dclose(d) < 0 && rc == 0) rc = fail_h5(ec, "H5Dclose", name);
close_space:
    H5Sclose(space);
    return rc;
}

static int write_table(hid_t grp, hid_t lcpl, const table *t, const errctx *ec)
{
    hid_t tg = H5Gcreate2(grp, t->name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (tg < 0) return fail_h5(ec, "H5Gcreate2", t->name);
    /* HDF5 lists datasets by name; the `columns` attribute keeps the table's own order. */
    char order[1024] = "";
    for (int c = 0; c < t->ncols; c++) {
        size_t used = strlen(order);
        snprintf(order + used, sizeof order - used, "%s%s", c ? "," : "", t->cols[c]);
    }
    const char *order_p = order;
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    H5Tset_cset(str, H5T_CSET_UTF8);
    int rc = write_attr(tg, "columns", str, str, &order_p, ec);
    H5Tclose(str);
    for (int c = 0; c < t->ncols && rc == 0; c++)
        rc = write_column(tg, t->cols[c], t->vals[c], t->nrows, ec);
    if (H5Gclose(tg) < 0 && rc == 0) rc = fail_h5(ec, "H5Gclose", t->name);
    return rc;
}

/* The run group: the root itself for "" or "/", else created with its parents. */
static hid_t open_run_group(hid_t file, hid_t lcpl, const char *group, const errctx *ec)
{
    hid_t g;
    if (group[0] == '\0' || strcmp(group, "/") == 0) {
        g = H5Gopen2(file, "/", H5P_DEFAULT);
        if (g < 0) fail_h5(ec, "H5Gopen2", "/");
    } else {
        g = H5Gcreate2(file, group, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) fail_h5(ec, "H5Gcreate2", group);
    }
    return g;
}

static int write_contents(hid_t file, const lra_results *r, const errctx *ec)
{
    const int version = 1;
    if (write_attr(file, "lra_results_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, ec) <
        0)
        return -1;

    int rc = -1;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0) return fail_h5(ec, "H5Pcreate", "H5P_LINK_CREATE");
    if (H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        fail_h5(ec, "H5Pset_create_intermediate_group", "1");
        goto close_lcpl;
    }
    hid_t grp = open_run_group(file, lcpl, r->group, ec);
    if (grp < 0) goto close_lcpl;
    if (write_attrs(grp, r, ec) < 0) goto close_group;
    for (size_t i = 0; i < r->ntables; i++)
        if (write_table(grp, lcpl, &r->tables[i], ec) < 0) goto close_group;
    rc = 0;
close_group:
    if (H5Gclose(grp) < 0 && rc == 0) rc = fail_h5(ec, "H5Gclose", r->group);
close_lcpl:
    H5Pclose(lcpl);
    return rc;
}

static int write_hdf5(const char *tmp, const lra_results *r, const errctx *ec)
{
    int rc = -1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fail_h5(ec, "H5Pcreate", "H5P_FILE_ACCESS");
    /* STRONG: H5Fclose closes anything left open, so the file is complete when it returns. */
    if (H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        fail_h5(ec, "H5Pset_fclose_degree", tmp);
        goto close_fapl;
    }
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) {
        fail_h5(ec, "H5Fcreate", tmp);
        goto close_fapl;
    }
    rc = write_contents(file, r, ec);
    if (H5Fclose(file) < 0 && rc == 0) rc = fail_h5(ec, "H5Fclose", tmp);
close_fapl:
    H5Pclose(fapl);
    return rc;
}

/* ---- durability -------------------------------------------------------------------------- */

static int fsync_path(const char *p, int flags, const errctx *ec)
{
    int fd = open(p, flags | O_CLOEXEC);
    if (fd < 0) return fail_errno(ec, "open", p);
    int rc = 0;
    if (fsync(fd) < 0) rc = fail_errno(ec, "fsync", p);
    close(fd);
    return rc;
}

static int fsync_parent_dir(const char *path, const errctx *ec)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    return fsync_path(dir, O_RDONLY | O_DIRECTORY, ec);
}

int lra_results_flush(lra_results *r, char *err, size_t errlen)
{
    LRA_ASSERT(r);
    const errctx ec = {err, errlen, r->path};
    const size_t tlen = strlen(r->path) + 5;
    char *tmp = malloc(tlen);
    if (!tmp) lra_die("out of memory flushing results to %s", r->path);
    snprintf(tmp, tlen, "%s.tmp", r->path);

    /* We report errors ourselves, with the file name; HDF5's stack dump would only add noise.
     * The previous handler is restored so other HDF5 users in the process are unaffected. */
    H5E_auto2_t old_func = NULL;
    void *old_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    int rc = write_hdf5(tmp, r, &ec);
    if (rc == 0) rc = fsync_path(tmp, O_RDONLY, &ec);
    if (rc == 0 && rename(tmp, r->path) < 0) rc = fail_errno(&ec, "rename", tmp);
    if (rc == 0) rc = fsync_parent_dir(r->path, &ec);
    /* A half-written temporary is useless; the previous <path> is still intact. The rename
     * already happened if only the directory fsync failed, so there is nothing to remove then. */
    if (rc < 0) unlink(tmp);

    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    free(tmp);
    return rc;
}
