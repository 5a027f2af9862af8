/* image.c — LRA "Image": sequential grey-scale CIFAR-10 (lra-tasks.md §5).
 *
 * Sources, read in place (directory or archive, never unpacked):
 *  - the official binary release, cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin:
 *    3,073-byte records of 1 label byte and 1,024 red, green and blue bytes;
 *  - image folders <root>/{train,test}/<class>/<name>.{png,jpg,jpeg} with CIFAR's class names
 *    (airplane .. truck give labels 0 .. 9), such as the shared CIFAR-10-images.tar.gz.
 * Default: <data root>/cifar10/CIFAR-10-images.tar.gz (or a binary release next to it), else
 * the 2,000-image sample tasks/samples/cifar10-sample.tar.gz.
 *
 * Preprocessing as LRA's input pipeline (§5.3): tf.image.rgb_to_grayscale evaluated as
 * TensorFlow does in float32, flattened row-major to 1,024 tokens. Tokens are intensity + 1 so
 * that black pixels are not mistaken for padding (pitfall 10); task.lra_tokens=1 gives LRA's raw
 * intensities 0-255 instead.
 *
 * Splits: LRA takes TFDS train[:90%] / train[90%:] / test = 45k / 5k / 10k. Which 5,000 images
 * TFDS put last depends on its storage order and cannot be reproduced, so validation is a
 * seeded class-stratified 10% hold-out of train (500 per class on the full data), equivalent
 * in distribution. Each split is then put in a seeded order, so task.n_train / n_val / n_test
 * (caps for quick runs) keep a class mix. Everything depends on task.data_seed only, never on
 * the training seed: the dataset is fixed as a real one is.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imgdec.h"
#include "lra_rng.h"
#include "source.h"
#include "task.h"

enum {
    SIDE = 32,
    PIXELS = SIDE * SIDE,
    RECORD = 1 + 3 * PIXELS, /* label byte, then the R, G and B planes */
    CLASSES = 10,
    VOCAB = 257,
    MAX_DECODE_SIDE = 1024,  /* larger images are refused before decoding */
    MAX_ENTRY = 32 << 20,    /* a batch file is 30,730,000 bytes */
};

static const char *const class_names[CLASSES] = {"airplane", "automobile", "bird", "cat",
                                                 "deer",     "dog",        "frog", "horse",
                                                 "ship",     "truck"};

static const char *const image_opts[] = {"lra_tokens", "data_seed", "n_train", "n_val",
                                         "n_test",     NULL};


/* ---- grey scale ------------------------------------------------------------------------ */

/* tf.image.rgb_to_grayscale on uint8 as TensorFlow evaluates it, all in float32:
 * convert_image_dtype scales each channel by 1/255, tensordot weighs them with
 * (0.2989, 0.5870, 0.1140), and the conversion back multiplies by 255 + 0.5 and truncates.
 * The result is within one level of rounding the weighted sum (§5.3). */
int lra_cifar_grey(int r, int g, int b)
{
    const float scale = (float)(1.0 / 255.0);
    float sum = (float)r * scale * 0.2989f + (float)g * scale * 0.5870f;
    sum += (float)b * scale * 0.1140f;
    return (int)(sum * 255.5f);
}

/* Grey sources are taken as they are; colour ones through the formula above. */
static void image_to_grey(const lra_image *img, uint8_t *grey)
{
    for (int i = 0; i < img->width * img->height; i++) {
        const unsigned char *p = img->pixels + (size_t)i * img->channels;
        grey[i] = (uint8_t)(img->channels == 1 ? p[0] : lra_cifar_grey(p[0], p[1], p[2]));
    }
}

/* Decodes one PNG or JPEG file to 32x32 grey. Errors name origin (the file). */
int lra_image_file_grey(const char *origin, const unsigned char *data, size_t size,
                        uint8_t grey[PIXELS], char *err, size_t errlen)
{
    lra_image img;
    char why[300];
    if (lra_image_decode(data, size, MAX_DECODE_SIDE, &img, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", origin, why);
        return -1;
    }
    int ok = img.width == SIDE && img.height == SIDE;
    if (ok)
        image_to_grey(&img, grey);
    else
        snprintf(err, errlen, "%s: wrong image size %dx%d, expected %dx%d", origin,
                 img.width, img.height, SIDE, SIDE);
    lra_image_free(&img);
    return ok ? 0 : -1;
}

/* A traversal-independent sort key: the first 64 bits of sha256(name). Sorting by it before
 * the seeded shuffles makes the splits the same whether the files come from a directory or
 * an archive, in whatever order the archive stores them. */
static uint64_t name_key(const char *name)
{
    char hex[65];
    lra_sha256(name, strlen(name), hex);
    hex[16] = 0;
    return strtoull(hex, NULL, 16);
}

/* ---- the collected images -------------------------------------------------------------- */

enum { KIND_BATCH = 1, KIND_FOLDER = 2 };

typedef struct image_set {
    uint8_t *grey;   /* n × PIXELS */
    int32_t *label;
    uint8_t *split;  /* LRA_SPLIT_TRAIN or LRA_SPLIT_TEST from the source, VAL once held out */
    uint64_t *key;   /* name_key of the file (and record) */
    long n, cap;
    int kinds;       /* KIND_* seen */
    char list_hash[65]; /* chained over (path, size) for directory sources */
} image_set;

static void set_free(image_set *s)
{
    free(s->grey);
    free(s->label);
    free(s->split);
    free(s->key);
    memset(s, 0, sizeof *s);
}

/* Room for one more image; returns its grey row, or NULL (out of memory). */
static uint8_t *set_push(image_set *s, int split, int label, uint64_t key)
{
    if (s->n == s->cap) {
        long cap = s->cap ? 2 * s->cap : 1024;
        uint8_t *g = realloc(s->grey, (size_t)cap * PIXELS);
        if (g) s->grey = g;
        int32_t *l = realloc(s->label, (size_t)cap * sizeof *l);
        if (l) s->label = l;
        uint8_t *sp = realloc(s->split, (size_t)cap);
        if (sp) s->split = sp;
        uint64_t *k = realloc(s->key, (size_t)cap * sizeof *k);
        if (k) s->key = k;
        if (!g || !l || !sp || !k) return NULL;
        s->cap = cap;
    }
    s->label[s->n] = label;
    s->split[s->n] = (uint8_t)split;
    s->key[s->n] = key;
    return s->grey + (size_t)s->n++ * PIXELS;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- CIFAR binary batches -------------------------------------------------------------- */

/* Appends the records of one batch file. Checks the whole file first, so that a bad file
 * adds nothing. */
static int batch_records(const char *origin, const unsigned char *data, size_t size, int split,
                         image_set *s, char *err, size_t errlen)
{
    if (size == 0 || size % RECORD != 0) {
        snprintf(err, errlen, "%s: %zu bytes is not a whole number of %d-byte records "
                 "(record %zu is truncated: %zu bytes)", origin, size, RECORD, size / RECORD,
                 size % RECORD);
        return -1;
    }
    size_t n = size / RECORD;
    for (size_t r = 0; r < n; r++)
        if (data[r * RECORD] >= CLASSES) {
            snprintf(err, errlen, "%s: record %zu: field label = %d, expected 0-9", origin, r,
                     data[r * RECORD]);
            return -1;
        }
    for (size_t r = 0; r < n; r++) {
        const unsigned char *rec = data + r * RECORD, *red = rec + 1;
        char name[4200];
        snprintf(name, sizeof name, "%s#%zu", base_name(origin), r);
        uint8_t *grey = set_push(s, split, rec[0], name_key(name));
        if (!grey) {
            snprintf(err, errlen, "%s: out of memory at record %zu", origin, r);
            return -1;
        }
        for (int i = 0; i < PIXELS; i++)
            grey[i] = (uint8_t)lra_cifar_grey(red[i], red[PIXELS + i], red[2 * PIXELS + i]);
    }
    return 0;
}

/* ---- paths ----------------------------------------------------------------------------- */

static int has_image_suffix(const char *name)
{
    static const char *const suffixes[] = {".png", ".jpg", ".jpeg"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t m = strlen(suffixes[i]);
        if (n > m && strcasecmp(name + n - m, suffixes[i]) == 0) return 1;
    }
    return 0;
}

/* The split of an official batch file name, or -1 for any other file. */
static int batch_split(const char *name)
{
    if (strcmp(name, "test_batch.bin") == 0) return LRA_SPLIT_TEST;
    if (strncmp(name, "data_batch_", 11) == 0 && name[11] >= '1' && name[11] <= '5' &&
        strcmp(name + 12, ".bin") == 0)
        return LRA_SPLIT_TRAIN;
    return -1;
}

/* Copies path component `back` counted from the end (0 = file name) into buf. */
static void component(const char *path, int back, char *buf, size_t n)
{
    const char *end = path + strlen(path), *start = end;
    for (int k = 0; k <= back; k++) {
        end = start;
        if (k > 0 && end > path) end--; /* skip the '/' */
        start = end;
        while (start > path && start[-1] != '/') start--;
    }
    size_t len = (size_t)(end - start);
    snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), start);
}

/* Split and label of <...>/{train,test}/<class>/<file>; -1 with a message naming the file. */
static int folder_place(const char *path, int *split, int *label, char *err, size_t errlen)
{
    char dir[64], cls[64];
    component(path, 2, dir, sizeof dir);
    component(path, 1, cls, sizeof cls);
    *split = strcmp(dir, "train") == 0 ? LRA_SPLIT_TRAIN
             : strcmp(dir, "test") == 0 ? LRA_SPLIT_TEST : -1;
    *label = -1;
    for (int c = 0; c < CLASSES; c++)
        if (strcmp(cls, class_names[c]) == 0) *label = c;
    if (*split < 0) {
        snprintf(err, errlen, "%s: field split = '%s', expected train or test "
                 "(layout <root>/{train,test}/<class>/<image>)", path, dir);
        return -1;
    }
    if (*label < 0) {
        snprintf(err, errlen, "%s: field class = '%s' is not a CIFAR-10 class (airplane, "
                 "automobile, bird, cat, deer, dog, frog, horse, ship, truck)", path, cls);
        return -1;
    }
    return 0;
}

/* ---- reading a source ------------------------------------------------------------------ */

static int folder_image(const char *path, const unsigned char *data, size_t size,
                        image_set *s, char *err, size_t errlen)
{
    int split, label;
    if (folder_place(path, &split, &label, err, errlen) != 0) return -1;
    uint8_t grey[PIXELS];
    if (lra_image_file_grey(path, data, size, grey, err, errlen) != 0) return -1;
    uint8_t *row = set_push(s, split, label, name_key(path));
    if (!row) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(row, grey, PIXELS);
    return 0;
}

static int image_entry(void *ctx, const char *path, const unsigned char *data, size_t size,
                       char *err, size_t errlen)
{
    image_set *s = ctx;
    const char *name = base_name(path);
    int kind = has_image_suffix(name) ? KIND_FOLDER : batch_split(name) >= 0 ? KIND_BATCH : 0;
    if (!kind) return 0; /* batches.meta.txt, readme.html, ... */
    s->kinds |= kind;
    /* Chaining (path, size) digests the sorted listing without storing it. */
    char link[4200];
    int n = snprintf(link, sizeof link, "%s %s %zu", s->list_hash, path, size);
    lra_sha256(link, (size_t)n < sizeof link ? (size_t)n : sizeof link - 1, s->list_hash);
    if (kind == KIND_FOLDER) return folder_image(path, data, size, s, err, errlen);
    return batch_records(path, data, size, batch_split(name), s, err, errlen);
}

typedef struct keyed {
    uint64_t key;
    long index;
} keyed;

static int by_key(const void *a, const void *b)
{
    uint64_t x = ((const keyed *)a)->key, y = ((const keyed *)b)->key;
    return (x > y) - (x < y);
}

/* Puts the images in key order (see name_key). */
static int sort_by_key(image_set *s)
{
    keyed *order = malloc((size_t)s->n * sizeof *order);
    image_set t = {.n = 0};
    for (long i = 0; order && i < s->n; i++) order[i] = (keyed){s->key[i], i};
    if (order) qsort(order, (size_t)s->n, sizeof *order, by_key);
    for (long k = 0; order && k < s->n; k++) {
        long i = order[k].index;
        uint8_t *row = set_push(&t, s->split[i], s->label[i], s->key[i]);
        if (!row) break;
        memcpy(row, s->grey + (size_t)i * PIXELS, PIXELS);
    }
    int ok = order && t.n == s->n;
    free(order);
    if (!ok) {
        set_free(&t);
        return -1;
    }
    t.kinds = s->kinds;
    memcpy(t.list_hash, s->list_hash, sizeof t.list_hash);
    set_free(s);
    *s = t;
    return 0;
}

/* Entry errors name the entry; say which directory or archive it is in as well. */
static void name_root(const char *root, char *err, size_t errlen)
{
    if (strncmp(err, root, strlen(root)) == 0) return;
    char entry[1024];
    snprintf(entry, sizeof entry, "%s", err);
    snprintf(err, errlen, "%s: %s", root, entry);
}

static int read_source(const char *root, image_set *s, char *err, size_t errlen)
{
    if (lra_source_foreach(root, NULL, MAX_ENTRY, image_entry, s, err, errlen) != 0) {
        name_root(root, err, errlen);
        return -1;
    }
    if (sort_by_key(s) != 0) {
        snprintf(err, errlen, "%s: out of memory", root);
        return -1;
    }
    if (s->kinds == (KIND_BATCH | KIND_FOLDER)) {
        snprintf(err, errlen, "%s: mixes CIFAR binary batches and image files; give one",
                 root);
        return -1;
    }
    long count[2] = {0, 0};
    for (long i = 0; i < s->n; i++) count[s->split[i] == LRA_SPLIT_TEST]++;
    if (count[0] == 0 || count[1] == 0) {
        snprintf(err, errlen, "%s: no %s images found (expected cifar-10-batches-bin/"
                 "{data_batch_1..5,test_batch}.bin or {train,test}/<class>/*.png|jpg)", root,
                 count[0] == 0 ? "training" : "test");
        return -1;
    }
    return 0;
}

/* ---- splits ---------------------------------------------------------------------------- */

/* Moves a seeded, class-stratified 10% of train to validation (see lra_hold_out_quotas). */
static int hold_out(image_set *s, uint64_t key)
{
    long *idx = malloc((size_t)s->n * sizeof *idx), count[CLASSES] = {0}, quota[CLASSES];
    if (!idx) return -1;
    for (long i = 0; i < s->n; i++)
        if (s->split[i] == LRA_SPLIT_TRAIN) count[s->label[i]]++;
    lra_hold_out_quotas(count, CLASSES, lra_key(key, 0x9a07a), quota);
    for (int c = 0; c < CLASSES; c++) {
        long m = 0;
        for (long i = 0; i < s->n; i++)
            if (s->split[i] == LRA_SPLIT_TRAIN && s->label[i] == c) idx[m++] = i;
        lra_shuffle_index(idx, m, lra_key(key, (uint64_t)c));
        for (long k = 0; k < quota[c]; k++) s->split[idx[k]] = LRA_SPLIT_VAL;
    }
    free(idx);
    return 0;
}

/* Fills one split in a seeded order, keeping at most cap images (0 = all). */
static int fill_split(const image_set *s, int split, long cap, int offset, uint64_t key,
                      lra_dataset *d)
{
    long *idx = malloc((size_t)s->n * sizeof *idx), m = 0;
    if (!idx) return -1;
    for (long i = 0; i < s->n; i++)
        if (s->split[i] == split) idx[m++] = i;
    lra_shuffle_index(idx, m, key);
    if (cap > 0 && cap < m) m = cap;
    lra_dataset_alloc(d, (int)m, 1, PIXELS);
    for (long k = 0; k < m; k++) {
        const uint8_t *grey = s->grey + (size_t)idx[k] * PIXELS;
        int32_t *tok = d->tokens + (size_t)k * PIXELS;
        for (int i = 0; i < PIXELS; i++) tok[i] = grey[i] + offset;
        d->labels[k] = s->label[idx[k]];
    }
    free(idx);
    return 0;
}

/* A dataset (one split, file order) from one batch file in memory: the fuzz harness's and the
 * tests' entry to the record parser. Errors name origin, record and field. */
int lra_cifar_parse(const char *origin, const unsigned char *data, size_t size, int lra_tokens,
                    lra_dataset *out, char *err, size_t errlen)
{
    image_set s = {.n = 0};
    memset(out, 0, sizeof *out);
    int rc = batch_records(origin, data, size, LRA_SPLIT_TRAIN, &s, err, errlen);
    if (rc == 0) {
        lra_dataset_alloc(out, (int)s.n, 1, PIXELS);
        for (long i = 0; i < s.n * PIXELS; i++) out->tokens[i] = s.grey[i] + !lra_tokens;
        memcpy(out->labels, s.label, (size_t)s.n * sizeof *s.label);
    }
    set_free(&s);
    return rc;
}

/* ---- the task -------------------------------------------------------------------------- */

typedef struct image_options {
    long lra_tokens, data_seed, cap[LRA_N_SPLITS];
} image_options;

/* task.<name> as a boolean: 1/0, true/false, yes/no; def when unset. */
static int opt_bool(const lra_config *cfg, const char *name, long def, long *out, char *err,
                    size_t errlen)
{
    const char *v = lra_task_opt(cfg, name);
    *out = def;
    if (!v) return 0;
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) *out = 1;
    else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) *out = 0;
    else {
        snprintf(err, errlen, "task image: task.%s wants true or false, got '%s'", name, v);
        return -1;
    }
    return 0;
}

static int read_options(const lra_config *cfg, image_options *o, char *err, size_t errlen)
{
    const char *t = "image";
    return lra_task_check_opts(cfg, t, image_opts, err, errlen) ||
           opt_bool(cfg, "lra_tokens", 0, &o->lra_tokens, err, errlen) ||
           lra_task_opt_int(cfg, t, "data_seed", 1, 0, INT_MAX, &o->data_seed, err, errlen) ||
           lra_task_opt_int(cfg, t, "n_train", 0, 0, INT_MAX, &o->cap[0], err, errlen) ||
           lra_task_opt_int(cfg, t, "n_val", 0, 0, INT_MAX, &o->cap[1], err, errlen) ||
           lra_task_opt_int(cfg, t, "n_test", 0, 0, INT_MAX, &o->cap[2], err, errlen)
               ? -1 : 0;
}

/* env->input, else the full data under the data root, else the repository's sample. */
static int default_source(const lra_task_env *env, char *buf, size_t n, int *sample,
                          char *err, size_t errlen)
{
    static const char *const full[] = {"CIFAR-10-images.tar.gz", "CIFAR-10-images",
                                       "cifar-10-binary.tar.gz", "cifar-10-batches-bin"};
    *sample = 0;
    if (env->input) {
        snprintf(buf, n, "%s", env->input);
        return 0;
    }
    for (size_t i = 0; env->data_root && i < sizeof full / sizeof full[0]; i++) {
        snprintf(buf, n, "%s/cifar10/%s", env->data_root, full[i]);
        if (lra_is_file(buf) || lra_is_dir(buf)) return 0;
    }
    snprintf(buf, n, "%s/cifar10-sample.tar.gz", env->samples_dir ? env->samples_dir : ".");
    if (!lra_is_file(buf)) {
        snprintf(err, errlen, "task image: no CIFAR-10 data: give --input, or put "
                 "cifar10/CIFAR-10-images.tar.gz under the data root (--data-dir, LRA_DATA), "
                 "or restore tasks/samples/cifar10-sample.tar.gz");
        return -1;
    }
    *sample = 1;
    if (!env->quiet)
        fprintf(stderr, "lra: image: using the small sample %s; for the full CIFAR-10 put "
                "cifar10/CIFAR-10-images.tar.gz under --data-dir or LRA_DATA\n", buf);
    return 0;
}

static void describe(const char *root, int sample, const image_set *s,
                     const image_options *o, const lra_dataset split[LRA_N_SPLITS],
                     lra_provenance *prov)
{
    char hex[65], why[256];
    lra_prov_add(prov, "source", "%s%s", root, sample ? " (repository sample)" : "");
    if (lra_is_dir(root))
        lra_prov_add(prov, "source_list_sha256", "%s (chained over sorted path and size)",
                     s->list_hash);
    else if (lra_sha256_file(root, hex, why, sizeof why) == 0)
        lra_prov_add(prov, "source_sha256", "%s", hex);
    lra_prov_add(prov, "format", "%s", s->kinds == KIND_BATCH
                 ? "CIFAR-10 binary batches (3073-byte records)"
                 : "image folders {train,test}/<class>/*.png|jpg");
    lra_prov_add(prov, "split", "train/val/test = %d/%d/%d; val = seeded class-stratified 10%% "
                 "hold-out of train (data_seed %ld; LRA's TFDS train[90%%:] membership cannot "
                 "be reproduced)", split[0].n, split[1].n, split[2].n, o->data_seed);
    if (o->cap[0] || o->cap[1] || o->cap[2])
        lra_prov_add(prov, "caps", "n_train %ld, n_val %ld, n_test %ld (0 = all)", o->cap[0],
                     o->cap[1], o->cap[2]);
    lra_prov_add(prov, "grey", "tf.image.rgb_to_grayscale in float32: "
                 "trunc((0.2989 R + 0.5870 G + 0.1140 B) / 255 * 255.5)");
    lra_prov_add(prov, "tokens", "%s", o->lra_tokens
                 ? "raw intensity 0-255 as LRA (black pixels look like padding, pitfall 10)"
                 : "intensity + 1 (0 = padding), row-major, 1024 per image");
}

static int image_build(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                       lra_provenance *prov, char *err, size_t errlen)
{
    image_options o;
    char root[4096];
    int sample;
    if (read_options(env->cfg, &o, err, errlen) != 0) return -1;
    if (env->cfg->seq_len != PIXELS) {
        snprintf(err, errlen, "task image: seq_len must be %d (32x32 pixels), got %d", PIXELS,
                 env->cfg->seq_len);
        return -1;
    }
    if (default_source(env, root, sizeof root, &sample, err, errlen) != 0) return -1;
    image_set s = {.n = 0};
    uint64_t key = lra_key((uint64_t)o.data_seed, 0xc1fa);
    int rc = read_source(root, &s, err, errlen);
    if (rc == 0 && hold_out(&s, lra_key(key, 99)) != 0) {
        snprintf(err, errlen, "task image: out of memory");
        rc = -1;
    }
    if (rc == 0 && !memchr(s.split, LRA_SPLIT_VAL, (size_t)s.n)) {
        snprintf(err, errlen, "%s: too few training images for a 10%% validation hold-out "
                 "(it needs at least 5)", root);
        rc = -1;
    }
    for (int k = 0; k < LRA_N_SPLITS && rc == 0; k++)
        if (fill_split(&s, k, o.cap[k], o.lra_tokens ? 0 : 1, lra_key(key, (uint64_t)k),
                       &split[k]) != 0) {
            snprintf(err, errlen, "task image: out of memory");
            rc = -1;
        }
    if (rc == 0) describe(root, sample, &s, &o, split, prov);
    set_free(&s);
    return rc;
}

const lra_task lra_task_image = {
    .name = "image",
    .help = "sequential grey-scale CIFAR-10, 1,024 pixels (binary batches or PNG/JPEG "
            "folders; 10 classes)",
    .classes = CLASSES,
    .vocab = VOCAB,
    .docs = 1,
    .build = image_build,
};
