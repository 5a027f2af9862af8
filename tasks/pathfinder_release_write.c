/* pathfinder_release_write.c — writes generated images in LRA's release layout
 * (lra_pf_write_release): imgs/<batch>/sample_<i>.png, metadata/<batch>.npy and
 * lra_pathfinder_params.txt, rendering each batch in parallel, committing it by renames so that
 * an interrupted run resumes at the first incomplete batch.
 *
 * Split out of pathfinder.c: the file-system side of `lra data generate pathfinder|pathx`,
 * between the renderer (pathfinder_render.c) and the codecs (pathfinder_codec.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "pathfinder_internal.h"
#include "source.h"
#include "util.h"

/* ==== Writing the release layout ========================================================== */

static int make_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    snprintf(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
    return -1;
}

static int write_file(const char *path, const void *data, size_t n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %.200s: %s", path, strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    return 0;
}

/* Removes the files of a directory left by an interrupted run, then the directory. */
static void remove_tree(const char *dir, int count)
{
    char path[PATH_MAX];
    for (int i = 0; i < count; i++) {
        pf_path(path, sizeof path, "%s/sample_%d.png", dir, i);
        unlink(path);
    }
    rmdir(dir);
}

/* Renders and writes one batch into imgs/<batch>.partial, then renames it; returns the metadata
 * text (malloc'ed) or NULL with err set. */
static char *write_batch(const lra_pf_gen *g, lra_pf_scratch **scratch, const char *dir,
                         int batch, int count, long first, uint64_t seed, char *err,
                         size_t errlen)
{
    const lra_pf_params *p = &g->p;
    char tmp[PATH_MAX], final[PATH_MAX];
    pf_path(tmp, sizeof tmp, "%s/imgs/%d.partial", dir, batch);
    pf_path(final, sizeof final, "%s/imgs/%d", dir, batch);
    remove_tree(tmp, count);
    remove_tree(final, count);
    if (make_dir(tmp, err, errlen) != 0) return NULL;
    size_t line_cap = 256, nbytes = (size_t)p->size * p->size;
    char *meta = lra_alloc((size_t)count * line_cap, "metadata");
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < count; i++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        uint8_t px[256 * 256];
        lra_pf_info info;
        char path[PATH_MAX + 32], e[256];
        unsigned char *png = NULL;
        size_t n = 0;
        int rc = lra_pf_render(g, scratch[t], seed, (uint64_t)(first + i), px, &info);
        if (rc == 0) rc = lra_pf_png_encode(px, p->size, p->size, &png, &n, e, sizeof e);
        pf_path(path, sizeof path, "%s/sample_%d.png", tmp, i);
        if (rc == 0) rc = write_file(path, png, n, e, sizeof e);
        else snprintf(e, sizeof e, "image %ld: no two target snakes after %d attempts",
                      first + i, p->max_target_attempts);
        free(png);
        (void)nbytes;
        lra_pf_meta_format(meta + (size_t)i * line_cap, line_cap, p, batch, i, &info);
        if (rc != 0) {
#pragma omp critical(pf_error)
            if (!failed++) snprintf(err, errlen, "%s", e);
        }
    }
    if (failed || rename(tmp, final) != 0) {
        if (!failed) snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
        lra_free(meta);
        return NULL;
    }
    return meta;
}

static int write_metadata(const char *dir, int batch, const char *meta, int count,
                          char *err, size_t errlen)
{
    char tmp[PATH_MAX], final[PATH_MAX];
    pf_path(tmp, sizeof tmp, "%s/metadata/%d.npy.partial", dir, batch);
    pf_path(final, sizeof final, "%s/metadata/%d.npy", dir, batch);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    for (int i = 0; i < count; i++) fprintf(f, "%s\n", meta + (size_t)i * 256);
    if (fclose(f) != 0 || rename(tmp, final) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", final, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_params_file(const lra_pf_gen *g, const char *dir, long n, uint64_t seed,
                             int batch_size, char *err, size_t errlen)
{
    char path[PATH_MAX], text[2048], desc[1536];
    lra_pf_describe(&g->p, desc, sizeof desc);
    int len = snprintf(text, sizeof text, "generator = tasks/pathfinder.c (drewlinsley/pathfinder "
                       "snakes2 algorithm)\nseed = %llu\nn = %ld\nbatch_size = %d\nparams = %s\n",
                       (unsigned long long)seed, n, batch_size, desc);
    pf_path(path, sizeof path, "%s/lra_pathfinder_params.txt", dir);
    return write_file(path, text, (size_t)len, err, errlen);
}

int lra_pf_write_release(const lra_pf_gen *g, const char *dir, long n, uint64_t seed,
                         int batch_size, int threads, int quiet, char *err, size_t errlen)
{
    char sub[PATH_MAX];
    if (make_dir(dir, err, errlen) != 0) return -1;
    pf_path(sub, sizeof sub, "%s/imgs", dir);
    if (make_dir(sub, err, errlen) != 0) return -1;
    pf_path(sub, sizeof sub, "%s/metadata", dir);
    if (make_dir(sub, err, errlen) != 0) return -1;
    if (write_params_file(g, dir, n, seed, batch_size, err, errlen) != 0) return -1;
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
    int nt = omp_get_max_threads();
#else
    (void)threads;
    int nt = 1;
#endif
    lra_pf_scratch **scratch = lra_alloc((size_t)nt * sizeof *scratch, "scratch");
    for (int t = 0; t < nt; t++) scratch[t] = lra_pf_scratch_new(g);
    int n_batches = (int)((n + batch_size - 1) / batch_size), rc = 0;
    double t0 = lra_now();
    long done = 0;
    for (int b = 0; b < n_batches && rc == 0; b++) {
        int count = (int)(n - (long)b * batch_size < batch_size ? n - (long)b * batch_size
                                                                 : batch_size);
        pf_path(sub, sizeof sub, "%s/metadata/%d.npy", dir, b);
        if (lra_is_file(sub)) continue; /* complete from an earlier run */
        char *meta = write_batch(g, scratch, dir, b, count, (long)b * batch_size, seed, err,
                                 errlen);
        rc = meta ? write_metadata(dir, b, meta, count, err, errlen) : -1;
        lra_free(meta);
        done += count;
        if (!quiet)
            fprintf(stderr, "pathfinder: batch %d/%d written (%ld images, %.0f images/s)\n",
                    b + 1, n_batches, done, done / (lra_now() - t0 + 1e-9));
    }
    for (int t = 0; t < nt; t++) lra_pf_scratch_free(scratch[t]);
    lra_free(scratch);
    return rc;
}
