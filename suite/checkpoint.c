/* checkpoint.c — save and restore a training run (see checkpoint.h). */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_VERSION 1

/* Scalar fields of the loop state, stored as float64 attributes (exact for these ranges). */
#define STATE_FIELDS(X)                                                                    \
    X(step) X(epoch) X(cursor) X(win_loss) X(win_ok) X(win_n) X(best_val_acc) X(best_step) \
    X(evals_since_best) X(seconds)

typedef struct buffer {
    const char *name;
    float *data;
    size_t n;
} buffer;

static int buffers(lra_model *m, float *best, buffer out[5])
{
    size_t np = lra_model_n_params(m);
    out[0] = (buffer){"params", lra_model_params(m), np};
    out[1] = (buffer){"adam_m", lra_model_adam_m(m), np};
    out[2] = (buffer){"adam_v", lra_model_adam_v(m), np};
    out[3] = (buffer){"best_params", best, np};
    out[4] = (buffer){"attn_state", lra_model_state(m), lra_model_n_state(m)};
    return 5;
}

static int put_num(hid_t f, const char *name, double v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, &v) < 0 ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return rc;
}

static int get_num(hid_t f, const char *name, double *v)
{
    if (H5Aexists(f, name) <= 0) return -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    int rc = H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0 ? -1 : 0;
    H5Aclose(a);
    return rc;
}

static int put_str(hid_t f, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, t, v) < 0 ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

static char *get_str(hid_t f, const char *name)
{
    if (H5Aexists(f, name) <= 0) return NULL;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    size_t n = H5Tget_size(ft);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    char *s = calloc(n + 1, 1);
    if (H5Aread(a, t, s) < 0) {
        free(s);
        s = NULL;
    }
    H5Tclose(t);
    H5Tclose(ft);
    H5Aclose(a);
    return s;
}

static int put_floats(hid_t f, const buffer *b)
{
    hsize_t dims[1] = {b->n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, b->name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 ? -1 : 0;
    if (d >= 0 && b->n && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                   b->data) < 0)
        rc = -1;
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    return rc;
}

static int get_floats(hid_t f, const buffer *b)
{
    hid_t d = H5Dopen2(f, b->name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    hsize_t dims[1] = {0};
    int rc = H5Sget_simple_extent_ndims(s) == 1 && H5Sget_simple_extent_dims(s, dims, NULL) == 1 &&
                     dims[0] == b->n ? 0 : -1;
    H5Sclose(s);
    if (rc == 0 && b->n &&
        H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b->data) < 0)
        rc = -1;
    H5Dclose(d);
    return rc;
}

static int fsync_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int lra_checkpoint_save(const char *path, lra_model *m, const float *best,
                        const lra_train_state *st, const char *config_text, char *err,
                        size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = -1;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, errlen, "cannot create checkpoint %s", tmp);
        goto out;
    }
    buffer b[5];
    int nb = buffers(m, (float *)best, b), bad = 0;
    for (int i = 0; i < nb && !bad; i++) bad = put_floats(f, &b[i]);
#define PUT(field) bad = bad || put_num(f, #field, (double)st->field);
    STATE_FIELDS(PUT)
#undef PUT
    bad = bad || put_num(f, "checkpoint_version", CKPT_VERSION) ||
          put_str(f, "config", config_text);
    if (H5Fclose(f) < 0 || bad) {
        snprintf(err, errlen, "cannot write checkpoint %s", tmp);
        unlink(tmp);
        goto out;
    }
    if (fsync_file(tmp) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot move checkpoint into place at %s: %s", path,
                 strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return rc;
}

int lra_checkpoint_load(const char *path, lra_model *m, float *best, lra_train_state *st,
                        const char *config_text, char *err, size_t errlen)
{
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = -1;
    char *stored = NULL;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, errlen, "cannot open checkpoint %s", path);
        goto out;
    }
    stored = get_str(f, "config");
    if (!stored || strcmp(stored, config_text) != 0) {
        snprintf(err, errlen, "checkpoint %s was written by a run with another configuration; "
                 "remove it or use the original settings", path);
        goto close;
    }
    buffer b[5];
    int nb = buffers(m, best, b);
    for (int i = 0; i < nb; i++)
        if (get_floats(f, &b[i]) != 0) {
            snprintf(err, errlen, "checkpoint %s: dataset '%s' is missing or has the wrong size",
                     path, b[i].name);
            goto close;
        }
    double v;
#define GET(field)                                                                           \
    if (get_num(f, #field, &v) != 0) {                                                       \
        snprintf(err, errlen, "checkpoint %s: attribute '%s' is missing", path, #field);     \
        goto close;                                                                          \
    }                                                                                        \
    st->field = (__typeof__(st->field))v;
    STATE_FIELDS(GET)
#undef GET
    rc = 0;
close:
    H5Fclose(f);
out:
    free(stored);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return rc;
}
