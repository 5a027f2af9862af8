/* data.c — where task data comes from: data root, embedded samples, and the HDF5 dataset cache.
 *
 * Cache file layout: attributes `task`, `key` (what the file was built from), `lra_cache_version`
 * and `prov.<name>` (provenance strings); groups train, val and test each with `tokens`
 * (n, docs, len) int32 and `labels` (n) int32, deflate-compressed. Written to a temporary name
 * and renamed, so a cache file is always complete.
 */
#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lra_build.h"
#include "source.h"
#include "task.h"
#include "util.h"

#define CACHE_VERSION 1

const char *lra_data_root(const char *dir)
{
    static char found[PATH_MAX];
    if (dir && *dir) return dir;
    const char *env = getenv("LRA_DATA");
    if (env && *env) return env;
    const char *candidates[] = {LRA_SOURCE_ROOT "/../shared/data", "../shared/data"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (lra_is_dir(candidates[i]) && realpath(candidates[i], found)) return found;
    return NULL;
}

static void cache_dir(char *buf, size_t n)
{
    const char *env = getenv("LRA_CACHE"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    if (env && *env)
        snprintf(buf, n, "%s", env);
    else if (xdg && *xdg)
        snprintf(buf, n, "%s/lra", xdg);
    else if (home && *home)
        snprintf(buf, n, "%s/.cache/lra", home);
    else
        snprintf(buf, n, "/tmp/lra-cache");
}

/* Identity of an input path: resolved name, size and modification time, so that a changed
 * file gets a new cache entry. */
static void describe_input(const char *path, char *buf, size_t n)
{
    char real[PATH_MAX];
    struct stat st;
    if (!path) {
        snprintf(buf, n, "none");
    } else if (realpath(path, real) && stat(real, &st) == 0) {
        snprintf(buf, n, "%s:%lld:%lld", real, (long long)st.st_size, (long long)st.st_mtime);
    } else {
        snprintf(buf, n, "%s", path);
    }
}

int lra_cache_path(const lra_config *cfg, const char *input, const char *data_root, char *path,
                   size_t pathlen, char *key, size_t keylen)
{
    char text[8192], in[PATH_MAX + 64], root[PATH_MAX + 64], hex[65], dir[PATH_MAX];
    describe_input(input, in, sizeof in);
    describe_input(data_root, root, sizeof root);
    int off = snprintf(text, sizeof text, "v%d task=%s seq_len=%d input=%s root=%s",
                       CACHE_VERSION, cfg->task, cfg->seq_len, in, root);
    /* Later settings of the same task option win, so hash the effective values. */
    for (int i = 0; i < cfg->n_task_opts && off > 0 && (size_t)off < sizeof text; i++) {
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(cfg->task_opts[i], "="),
                 cfg->task_opts[i]);
        const char *v = lra_task_opt(cfg, name);
        if (strcmp(cfg->task_opts[i] + strlen(name) + 1, v) == 0)
            off += snprintf(text + off, sizeof text - (size_t)off, " %s=%s", name, v);
    }
    lra_sha256(text, strlen(text), hex);
    snprintf(key, keylen, "%s", text);
    cache_dir(dir, sizeof dir);
    snprintf(path, pathlen, "%s/%s-%.16s.h5", dir, cfg->task, hex);
    return 0;
}

/* ---- HDF5 ----------------------------------------------------------------------------- */

static int write_str_attr(hid_t loc, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return rc < 0 ? -1 : 0;
}

static int read_str_attr(hid_t loc, const char *name, char *buf, size_t n)
{
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    size_t size = H5Tget_size(ft);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, size);
    char *tmp = calloc(size + 1, 1);
    herr_t rc = H5Aread(a, t, tmp);
    snprintf(buf, n, "%s", tmp);
    free(tmp);
    H5Tclose(t);
    H5Tclose(ft);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

static int write_ints(hid_t g, const char *name, const int32_t *data, int rank,
                      const hsize_t *dims)
{
    hsize_t total = 1, chunk[3];
    for (int i = 0; i < rank; i++) total *= dims[i];
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    if (total > 0) {
        /* Chunks of about 1 Mi values, whole rows. */
        for (int i = 0; i < rank; i++) chunk[i] = dims[i] ? dims[i] : 1;
        hsize_t row = total / (dims[0] ? dims[0] : 1);
        chunk[0] = row ? (hsize_t)(1 << 20) / row + 1 : 1;
        if (chunk[0] > dims[0]) chunk[0] = dims[0];
        H5Pset_chunk(p, rank, chunk);
        H5Pset_deflate(p, 1);
    }
    hid_t d = H5Dcreate2(g, name, H5T_STD_I32LE, s, H5P_DEFAULT, p, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0) H5Dclose(d);
    H5Pclose(p);
    H5Sclose(s);
    return rc < 0 ? -1 : 0;
}

int lra_cache_write(const char *path, const char *task, const char *key,
                    const lra_dataset split[LRA_N_SPLITS], const lra_provenance *prov, char *err,
                    size_t errlen)
{
    char tmp[PATH_MAX + 16], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    if (slash && lra_mkdirs(dir) != 0) {
        snprintf(err, errlen, "cannot create cache directory %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = -1;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, errlen, "cannot create cache file %s", tmp);
        goto out;
    }
    char version[16];
    snprintf(version, sizeof version, "%d", CACHE_VERSION);
    int bad = write_str_attr(f, "task", task) || write_str_attr(f, "key", key) ||
              write_str_attr(f, "lra_cache_version", version);
    for (int i = 0; i < prov->n && !bad; i++) {
        char name[64];
        snprintf(name, sizeof name, "prov.%s", prov->key[i]);
        bad = write_str_attr(f, name, prov->value[i]);
    }
    for (int s = 0; s < LRA_N_SPLITS && !bad; s++) {
        const lra_dataset *d = &split[s];
        hid_t g = H5Gcreate2(f, lra_split_names[s], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t tdims[3] = {(hsize_t)d->n, (hsize_t)d->docs, (hsize_t)d->len};
        hsize_t ldims[1] = {(hsize_t)d->n};
        bad = g < 0 || write_ints(g, "tokens", d->tokens, 3, tdims) ||
              write_ints(g, "labels", d->labels, 1, ldims);
        if (g >= 0) H5Gclose(g);
    }
    if (H5Fclose(f) < 0 || bad) {
        snprintf(err, errlen, "cannot write cache file %s", tmp);
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return rc;
}

static int read_split(hid_t f, int s, lra_dataset *d, char *err, size_t errlen,
                      const char *path)
{
    hid_t g = H5Gopen2(f, lra_split_names[s], H5P_DEFAULT);
    hid_t dt = g < 0 ? -1 : H5Dopen2(g, "tokens", H5P_DEFAULT);
    hid_t dl = g < 0 ? -1 : H5Dopen2(g, "labels", H5P_DEFAULT);
    int rc = -1;
    hsize_t dims[3] = {0, 0, 0};
    if (dt < 0 || dl < 0) goto out;
    hid_t sp = H5Dget_space(dt);
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    if (rank != 3 || dims[0] > INT_MAX || dims[1] > 2 || dims[2] > (1u << 24)) goto out;
    lra_dataset_alloc(d, (int)dims[0], (int)dims[1], (int)dims[2]);
    if (dims[0] > 0 &&
        (H5Dread(dt, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->tokens) < 0 ||
         H5Dread(dl, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->labels) < 0))
        goto out;
    rc = 0;
out:
    if (rc) snprintf(err, errlen, "%s: split '%s' is missing or malformed", path,
                     lra_split_names[s]);
    if (dt >= 0) H5Dclose(dt);
    if (dl >= 0) H5Dclose(dl);
    if (g >= 0) H5Gclose(g);
    return rc;
}

static herr_t collect_prov(hid_t loc, const char *name, const H5A_info_t *info, void *arg)
{
    (void)info;
    lra_provenance *prov = arg;
    if (strncmp(name, "prov.", 5) != 0 || prov->n == LRA_PROV_MAX) return 0;
    snprintf(prov->key[prov->n], sizeof prov->key[0], "%s", name + 5);
    read_str_attr(loc, name, prov->value[prov->n], sizeof prov->value[0]);
    prov->n++;
    return 0;
}

int lra_cache_read(const char *path, const char *task, lra_dataset split[LRA_N_SPLITS],
                   lra_provenance *prov, char *key_out, size_t keylen, char *err,
                   size_t errlen)
{
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = -1;
    char got_task[64] = "";
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, errlen, "%s is not a readable HDF5 dataset file", path);
        goto out;
    }
    if (read_str_attr(f, "task", got_task, sizeof got_task) != 0 ||
        (task && strcmp(got_task, task) != 0)) {
        snprintf(err, errlen, "%s holds task '%s', not '%s'", path, got_task,
                 task ? task : "?");
        goto close;
    }
    if (key_out) read_str_attr(f, "key", key_out, keylen);
    memset(prov, 0, sizeof *prov);
    hsize_t idx = 0;
    H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_prov, prov);
    for (int s = 0; s < LRA_N_SPLITS; s++)
        if (read_split(f, s, &split[s], err, errlen, path) != 0) goto close;
    rc = 0;
close:
    H5Fclose(f);
out:
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    if (rc)
        for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
    return rc;
}

int lra_task_load(const lra_config *cfg, const char *input, const char *data_dir,
                  lra_dataset split[LRA_N_SPLITS], lra_provenance *prov, int quiet, char *err,
                  size_t errlen)
{
    const lra_task *task = lra_task_find(cfg->task);
    if (!task) {
        snprintf(err, errlen, "unknown task '%s' (see 'lra list tasks')", cfg->task);
        return -1;
    }
    memset(prov, 0, sizeof *prov);
    const char *root = lra_data_root(data_dir);
    if (data_dir && !lra_is_dir(data_dir)) {
        snprintf(err, errlen, "data directory %s does not exist", data_dir);
        return -1;
    }
    const char *cache_env = getenv("LRA_CACHE");
    int use_cache = !(task->flags & LRA_TASK_NO_CACHE) &&
                    !(cache_env && strcmp(cache_env, "off") == 0);
    char path[PATH_MAX], key[8192], why[512];
    lra_cache_path(cfg, input, root, path, sizeof path, key, sizeof key);
    if (use_cache && lra_is_file(path)) {
        char stored[8192] = "";
        if (lra_cache_read(path, task->name, split, prov, stored, sizeof stored, why,
                           sizeof why) == 0 && strcmp(stored, key) == 0) {
            if (!quiet) fprintf(stderr, "lra: %s data from cache %s\n", task->name, path);
            lra_prov_add(prov, "cache", "%s", path);
            return 0;
        }
        for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
        memset(prov, 0, sizeof *prov);
    }
    lra_task_env env = {.cfg = cfg, .input = input, .data_root = root,
                        .samples_dir = LRA_SOURCE_ROOT "/tasks/samples", .quiet = quiet};
    if (task->build(&env, split, prov, err, errlen) != 0) {
        for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
        return -1;
    }
    if (use_cache && lra_cache_write(path, task->name, key, split, prov, why, sizeof why) != 0 &&
        !quiet)
        fprintf(stderr, "lra: warning: %s (continuing without a cache)\n", why);
    return 0;
}
