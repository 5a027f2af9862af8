/* results_read.c — read a results file back into an in-memory run (resume, suite, report). */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results.h"

typedef struct load_ctx {
    lra_results *r;
    hid_t group;
    int failed;
} load_ctx;

/* Scalar attributes: float64 numbers and strings (variable or fixed length). */
static herr_t load_attr(hid_t loc, const char *name, const H5A_info_t *info, void *arg)
{
    (void)info;
    load_ctx *c = arg;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    if (H5Tget_class(t) == H5T_FLOAT) {
        double v = 0.0;
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0) lra_results_attr_num(c->r, name, v);
    } else if (H5Tget_class(t) == H5T_STRING) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(t)); /* HDF5 does not convert between character sets */
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &s) >= 0 && s) lra_results_attr_str(c->r, name, s);
            H5free_memory(s);
        } else {
            size_t n = H5Tget_size(t);
            char *s = calloc(n + 1, 1);
            H5Tset_size(mt, n + 1);
            if (s && H5Aread(a, mt, s) >= 0) lra_results_attr_str(c->r, name, s);
            free(s);
        }
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    return 0;
}

static int read_column(hid_t tg, const char *name, double **vals, size_t *n)
{
    hid_t d = H5Dopen2(tg, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[1] = {0};
    int ok = H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, dims, NULL) == 1;
    H5Sclose(sp);
    *n = (size_t)dims[0];
    *vals = malloc((*n ? *n : 1) * sizeof(double));
    if (ok && *n) ok = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *vals) >= 0;
    H5Dclose(d);
    return ok ? 0 : -1;
}

/* A table: a group with a `columns` attribute naming its 1-D float64 datasets in order. */
static int load_table(load_ctx *c, const char *name)
{
    hid_t tg = H5Gopen2(c->group, name, H5P_DEFAULT);
    if (tg < 0 || H5Aexists(tg, "columns") <= 0) {
        if (tg >= 0) H5Gclose(tg);
        return 0; /* not a table */
    }
    lra_results *tmp = lra_results_create("", "");
    load_ctx tc = {tmp, tg, 0};
    hsize_t idx = 0;
    H5Aiterate2(tg, H5_INDEX_NAME, H5_ITER_INC, &idx, load_attr, &tc);
    const char *order = lra_results_get_str(tmp, "columns");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", order ? order : "");
    const char *cols[64];
    double *vals[64];
    size_t nrows = 0;
    int ncols = 0, rc = 0;
    for (char *save = NULL, *col = strtok_r(buf, ",", &save); col && ncols < 64;
         col = strtok_r(NULL, ",", &save)) {
        size_t n = 0;
        if (read_column(tg, col, &vals[ncols], &n) != 0 || (ncols && n != nrows)) rc = -1;
        cols[ncols++] = col;
        nrows = n;
    }
    for (size_t row = 0; rc == 0 && row < nrows; row++) {
        double v[64];
        for (int k = 0; k < ncols; k++) v[k] = vals[k][row];
        lra_results_append(c->r, name, ncols, cols, v);
    }
    for (int k = 0; k < ncols; k++) free(vals[k]);
    lra_results_free(tmp);
    H5Gclose(tg);
    return rc;
}

static herr_t load_link(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)g;
    (void)info;
    load_ctx *c = arg;
    if (load_table(c, name) != 0) c->failed = 1;
    return 0;
}

lra_results *lra_results_load(const char *path, const char *group, char *err, size_t errlen)
{
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    lra_results *r = NULL;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = f < 0 ? -1 : H5Gopen2(f, group, H5P_DEFAULT);
    if (f < 0)
        snprintf(err, errlen, "cannot open results file %s", path);
    else if (g < 0)
        snprintf(err, errlen, "results file %s has no run %s", path, group);
    if (g >= 0) {
        r = lra_results_create(path, group);
        load_ctx c = {r, g, 0};
        hsize_t idx = 0;
        H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, load_attr, &c);
        idx = 0;
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, load_link, &c);
        if (c.failed) {
            snprintf(err, errlen, "results file %s: a table of run %s is malformed", path,
                     group);
            lra_results_free(r);
            r = NULL;
        }
        H5Gclose(g);
    }
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return r;
}
