/* pathfinder_release_read.c — reads LRA's Pathfinder / Path-X release layout from a directory
 * or an archive (pf_load_release): every metadata/<batch>.npy line names an image and its label,
 * every PNG under imgs/ is decoded, and the examples come out in metadata order (directory, batch
 * number, line). Entries of another difficulty's curv_* directory are skipped.
 *
 * Split out of pathfinder.c: the loader of the published format, apart from the generator; the
 * task (pathfinder.c) calls it when the user or the data root supplies a release.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder_internal.h"
#include "source.h"
#include "util.h"

/* ==== Reading the release layout ========================================================== */

typedef struct pf_entry {
    char *path;  /* image path relative to the input root */
    int label, file;
    long line;
} pf_entry;

typedef struct pf_mfile {
    char *path;
    long batch;
    int index;
} pf_mfile;

typedef struct pf_loader {
    int size;
    const char *want_dir, *root;
    char **img_path;       /* decoded images, pixels in store */
    size_t n_img, cap_img;
    uint8_t *store;
    pf_entry *ent;
    size_t n_ent, cap_ent;
    pf_mfile *files;
    size_t n_files, cap_files;
} pf_loader;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return p;
    *cap = need * 2 + 16;
    void *q = realloc(p, *cap * elem);
    if (!q) lra_die("out of memory reading pathfinder data (%zu items)", need);
    return q;
}

/* Entries under another difficulty's directory (curv_*) are not ours. */
static int other_difficulty(const char *path, const char *want)
{
    for (const char *s = path; s; s = strchr(s, '/') ? strchr(s, '/') + 1 : NULL) {
        if (strncmp(s, "curv_", 5) != 0) continue;
        size_t n = strcspn(s, "/");
        if (strlen(want) != n || strncmp(s, want, n) != 0) return 1;
    }
    return 0;
}

static int add_metadata(pf_loader *L, const char *path, const unsigned char *data, size_t size,
                        char *err, size_t errlen)
{
    const char *md = strstr(path, "metadata/");
    if (md != path && (!md || md[-1] != '/')) return 0; /* some other .npy file */
    L->files = grow(L->files, &L->cap_files, L->n_files + 1, sizeof *L->files);
    pf_mfile *f = &L->files[L->n_files];
    f->path = strdup(path);
    f->batch = strtol(md + 9, NULL, 10);
    f->index = (int)L->n_files++;
    lra_lines lines;
    const char *line;
    long len;
    lra_lines_init(&lines, (const char *)data, size);
    while ((len = lra_lines_next(&lines, &line)) >= 0) {
        if (len == 0) continue;
        lra_pf_meta m;
        char e[256];
        if (lra_pf_meta_parse(line, (size_t)len, &m, e, sizeof e) != 0) {
            snprintf(err, errlen, "%s/%s:%ld: %s", L->root, path, lines.lineno, e);
            return -1;
        }
        L->ent = grow(L->ent, &L->cap_ent, L->n_ent + 1, sizeof *L->ent);
        pf_entry *en = &L->ent[L->n_ent++];
        size_t need = (size_t)(md - path) + strlen(m.subpath) + strlen(m.file) + 2;
        en->path = malloc(need);
        snprintf(en->path, need, "%.*s%s/%s", (int)(md - path), path, m.subpath, m.file);
        en->label = m.label;
        en->file = f->index;
        en->line = lines.lineno;
    }
    return 0;
}

static int add_image(pf_loader *L, const char *path, const unsigned char *data, size_t size,
                     char *err, size_t errlen)
{
    size_t px = (size_t)L->size * L->size, cap = L->cap_img;
    L->img_path = grow(L->img_path, &L->cap_img, L->n_img + 1, sizeof *L->img_path);
    if (L->cap_img != cap) {
        uint8_t *s = realloc(L->store, L->cap_img * px);
        if (!s) lra_die("out of memory reading pathfinder images");
        L->store = s;
    }
    char e[256];
    if (lra_pf_png_decode(data, size, L->size, L->size, L->store + L->n_img * px, e,
                          sizeof e) != 0) {
        snprintf(err, errlen, "%s/%s: %s", L->root, path, e);
        return -1;
    }
    L->img_path[L->n_img++] = strdup(path);
    return 0;
}

static int on_entry(void *ctx, const char *path, const unsigned char *data, size_t size,
                    char *err, size_t errlen)
{
    pf_loader *L = ctx;
    size_t n = strlen(path);
    if (other_difficulty(path, L->want_dir)) return 0;
    if (n > 4 && strcmp(path + n - 4, ".npy") == 0)
        return add_metadata(L, path, data, size, err, errlen);
    if (n > 4 && strcmp(path + n - 4, ".png") == 0)
        return add_image(L, path, data, size, err, errlen);
    return 0;
}

static const pf_loader *sort_ctx;

static int cmp_img(const void *a, const void *b)
{
    return strcmp(sort_ctx->img_path[*(const size_t *)a], sort_ctx->img_path[*(const size_t *)b]);
}

/* Metadata order: by directory, then batch number (0, 1, 2, ..., 10), then line. */
static int cmp_entry(const void *a, const void *b)
{
    const pf_entry *x = a, *y = b;
    const pf_mfile *f = &sort_ctx->files[x->file], *g = &sort_ctx->files[y->file];
    size_t lf = (size_t)(strstr(f->path, "metadata/") - f->path);
    size_t lg = (size_t)(strstr(g->path, "metadata/") - g->path);
    int d = strncmp(f->path, g->path, lf < lg ? lf : lg);
    if (d == 0 && lf != lg) d = lf < lg ? -1 : 1;
    if (f->batch != g->batch) return f->batch < g->batch ? -1 : 1;
    if (x->file != y->file) return strcmp(f->path, g->path);
    return x->line < y->line ? -1 : x->line > y->line;
}

static void loader_free(pf_loader *L)
{
    for (size_t i = 0; i < L->n_img; i++) free(L->img_path[i]);
    for (size_t i = 0; i < L->n_ent; i++) free(L->ent[i].path);
    for (size_t i = 0; i < L->n_files; i++) free(L->files[i].path);
    free(L->img_path);
    free(L->store);
    free(L->ent);
    free(L->files);
}

/* The examples in metadata order: pixels (n, size*size) and labels, malloc'ed. */
static int loader_collect(pf_loader *L, uint8_t **pixels, int32_t **labels, long *n, char *err,
                          size_t errlen)
{
    size_t px = (size_t)L->size * L->size;
    size_t *order = malloc((L->n_img + 1) * sizeof *order);
    for (size_t i = 0; i < L->n_img; i++) order[i] = i;
    sort_ctx = L;
    qsort(order, L->n_img, sizeof *order, cmp_img);
    qsort(L->ent, L->n_ent, sizeof *L->ent, cmp_entry);
    *pixels = malloc(L->n_ent * px + 1);
    *labels = malloc((L->n_ent + 1) * sizeof **labels);
    for (size_t e = 0; e < L->n_ent; e++) {
        size_t lo = 0, hi = L->n_img;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int c = strcmp(L->img_path[order[mid]], L->ent[e].path);
            if (c == 0) lo = hi = mid;
            else if (c < 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo >= L->n_img || strcmp(L->img_path[order[lo]], L->ent[e].path) != 0) {
            snprintf(err, errlen, "%s/%s:%ld: image %s is missing", L->root,
                     L->files[L->ent[e].file].path, L->ent[e].line, L->ent[e].path);
            free(order);
            return -1;
        }
        memcpy(*pixels + e * px, L->store + order[lo] * px, px);
        (*labels)[e] = L->ent[e].label;
    }
    *n = (long)L->n_ent;
    free(order);
    return 0;
}

/* Reads a release directory or archive: pixels and labels in metadata order. */
int pf_load_release(const char *input, int size, int difficulty, uint8_t **pixels,
                    int32_t **labels, long *n, char *err, size_t errlen)
{
    char root[PATH_MAX];
    pf_path(root, sizeof root, "%s", input);
    if (lra_is_dir(input)) {
        char sub[PATH_MAX + 64];
        pf_path(sub, sizeof sub, "%s/metadata", input);
        if (!lra_is_dir(sub)) {
            pf_path(sub, sizeof sub, "%s/%s", input, lra_pf_difficulty_dirs[difficulty]);
            if (lra_is_dir(sub)) pf_path(root, sizeof root, "%s", sub);
        }
    }
    pf_loader L = {.size = size, .want_dir = lra_pf_difficulty_dirs[difficulty], .root = root};
    int rc = lra_source_foreach(root, NULL, 64u << 20, on_entry, &L, err, errlen);
    if (rc == 0 && L.n_files == 0) {
        snprintf(err, errlen, "%s: no metadata/<batch>.npy files (LRA's release layout is "
                 "imgs/<batch>/sample_<i>.png plus metadata/<batch>.npy, e.g. "
                 "pathfinder%d/%s/)", root, size, lra_pf_difficulty_dirs[difficulty]);
        rc = -1;
    }
    if (rc == 0 && L.n_ent == 0) {
        snprintf(err, errlen, "%s: the metadata files list no images", root);
        rc = -1;
    }
    if (rc == 0) rc = loader_collect(&L, pixels, labels, n, err, errlen);
    loader_free(&L);
    return rc ? -1 : 0;
}
