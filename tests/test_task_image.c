/* test_task_image.c — the Image task (grey-scale CIFAR-10): TensorFlow's grey formula against
 * hand-computed values; the CIFAR binary record parser and PNG / JPEG decoding on fixtures
 * that hold the same real image in all three formats; image-folder and binary trees written
 * here with libpng, libjpeg and libarchive (exact tokens, labels, 45/5/10 split sizes on a
 * 60-image set); the repository sample; and every bad input with its message. Runs from the
 * source root with LRA_CACHE=off. Prints one line per check and "N passed, N failed".
 */
#include <archive.h>
#include <archive_entry.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

#include "source.h"
#include "task.h"
#include "util.h"

extern const lra_task lra_task_image;
/* Defined in tasks/image.c. */
int lra_cifar_grey(int r, int g, int b);
int lra_image_file_grey(const char *origin, const unsigned char *data, size_t size,
                        uint8_t grey[1024], char *err, size_t errlen);
int lra_cifar_parse(const char *origin, const unsigned char *data, size_t size, int lra_tokens,
                    lra_dataset *out, char *err, size_t errlen);

#define FIXTURES "tests/fixtures/cifar"
#define SAMPLE "tasks/samples/cifar10-sample.tar.gz"

static const char *const classes[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                        "dog",      "frog",       "horse", "ship", "truck"};

static int passed, failed;

static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s: ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    ok ? passed++ : failed++;
    return ok;
}

/* ---- writing files ---------------------------------------------------------------------- */

static char tmp_root[64];

static void make_dirs(const char *path)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
}

static void write_file(const char *path, const void *data, size_t n)
{
    make_dirs(path);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) lra_die("cannot write %s", path);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    char err[256];
    unsigned char *data = lra_read_file(path, n, 1 << 26, err, sizeof err);
    if (!data) lra_die("%s", err);
    return data;
}

/* An 8-bit PNG, RGB (channels 3) or grey (1). */
static void write_png(const char *path, const uint8_t *px, int w, int h, int channels)
{
    make_dirs(path);
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!f || !info || setjmp(png_jmpbuf(png))) lra_die("cannot write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int r = 0; r < h; r++) png_write_row(png, px + (size_t)r * w * channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* A baseline RGB JPEG at quality 100. */
static void write_jpeg(const char *path, const uint8_t *rgb, int w, int h)
{
    make_dirs(path);
    FILE *f = fopen(path, "wb");
    if (!f) lra_die("cannot write %s", path);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)rgb + (size_t)c.next_scanline * w * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* Packs a directory's files (paths relative to dir) into dir.tar.gz. */
typedef struct packer {
    struct archive *a;
    const char *dir;
} packer;

static int pack_entry(void *ctx, const char *path, const unsigned char *data, size_t size,
                      char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    packer *p = ctx;
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(p->a, e);
    archive_write_data(p->a, data, size);
    archive_entry_free(e);
    return 0;
}

static const char *pack_targz(const char *dir)
{
    static char path[4096];
    char err[256];
    snprintf(path, sizeof path, "%s.tar.gz", dir);
    packer p = {archive_write_new(), dir};
    archive_write_add_filter_gzip(p.a);
    archive_write_set_format_pax_restricted(p.a);
    if (archive_write_open_filename(p.a, path) != ARCHIVE_OK ||
        lra_source_foreach(dir, NULL, 1 << 26, pack_entry, &p, err, sizeof err) != 0)
        lra_die("cannot pack %s", dir);
    archive_write_close(p.a);
    archive_write_free(p.a);
    return path;
}

/* ---- running the task ------------------------------------------------------------------- */

static int build(const char *input, int seq_len, const char *const *opts,
                 lra_dataset split[LRA_N_SPLITS], char *err, size_t errlen)
{
    lra_config cfg;
    lra_provenance prov;
    char why[256];
    lra_config_defaults(&cfg);
    snprintf(cfg.task, sizeof cfg.task, "image");
    cfg.seq_len = seq_len;
    for (int i = 0; opts && opts[i]; i++)
        if (lra_config_set_kv(&cfg, opts[i], why, sizeof why) != 0) lra_die("%s", why);
    lra_task_env env = {.cfg = &cfg, .input = input, .quiet = 1};
    memset(split, 0, LRA_N_SPLITS * sizeof *split);
    memset(&prov, 0, sizeof prov);
    err[0] = 0;
    return lra_task_image.build(&env, split, &prov, err, errlen);
}

static void free_splits(lra_dataset split[LRA_N_SPLITS])
{
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
}

static int same_dataset(const lra_dataset *a, const lra_dataset *b)
{
    return a->n == b->n && a->len == b->len &&
           !memcmp(a->labels, b->labels, (size_t)a->n * sizeof *a->labels) &&
           !memcmp(a->tokens, b->tokens, (size_t)a->n * a->len * sizeof *a->tokens);
}

/* ---- grey scale ------------------------------------------------------------------------- */

static void test_grey(void)
{
    /* By hand: g = (0.2989 R + 0.5870 G + 0.1140 B) / 255; trunc(g * 255.5). */
    static const int cases[][4] = {
        {0, 0, 0, 0},       {255, 255, 255, 255}, /* 0.9999 * 255.5 = 255.47 */
        {255, 0, 0, 76},    /* 0.2989 * 255.5 = 76.37 */
        {0, 255, 0, 149},   /* 0.5870 * 255.5 = 149.98: truncated, not rounded to 150 */
        {0, 0, 255, 29},    /* 0.1140 * 255.5 = 29.13 */
        {100, 150, 200, 141}, /* 140.74 / 255 * 255.5 = 141.02 */
        {1, 1, 1, 1},       /* 0.9999 / 255 * 255.5 = 1.0018 */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = lra_cifar_grey(cases[i][0], cases[i][1], cases[i][2]);
        if (got != cases[i][3]) {
            ok = 0;
            printf("  grey(%d,%d,%d) = %d, expected %d\n", cases[i][0], cases[i][1],
                   cases[i][2], got, cases[i][3]);
        }
    }
    check(ok, "grey formula matches 7 hand-computed values (pure green gives 149, not 150)");

    /* float32 may differ from exact arithmetic only where the exact value is within float
     * rounding of an integer. */
    long differ = 0, unexplained = 0;
    for (int r = 0; r < 256; r++)
        for (int g = 0; g < 256; g++)
            for (int b = 0; b < 256; b++) {
                double exact = (0.2989 * r + 0.5870 * g + 0.1140 * b) / 255.0 * 255.5;
                int want = (int)exact, got = lra_cifar_grey(r, g, b);
                if (got == want) continue;
                differ++;
                unexplained += fabs(exact - round(exact)) > 1e-4 || abs(got - want) > 1;
            }
    check(unexplained == 0, "all 16.7M colours agree with exact arithmetic up to float32 "
          "rounding at integer boundaries (%ld boundary cases)", differ);
}

/* ---- fixtures: one real CIFAR-10 image as JPEG, as PNG, and as a binary record ---------- */

static void test_fixtures(void)
{
    size_t nb, np, nj;
    unsigned char *bin = read_all(FIXTURES "/data_batch_1.bin", &nb);
    unsigned char *png = read_all(FIXTURES "/train_cat_0000.png", &np);
    unsigned char *jpg = read_all(FIXTURES "/train_cat_0000.jpg", &nj);
    lra_dataset d, raw;
    char err[512];
    int rc = lra_cifar_parse("data_batch_1.bin", bin, nb, 0, &d, err, sizeof err);
    check(rc == 0 && d.n == 3 && d.labels[0] == 3 && d.labels[1] == 0 && d.labels[2] == 8,
          "fixture batch: 3 records, labels cat airplane ship (%s)", rc ? err : "ok");
    int rc2 = lra_cifar_parse("data_batch_1.bin", bin, nb, 1, &raw, err, sizeof err);
    int shifted = rc == 0 && rc2 == 0, lo = 999, hi = -1;
    for (long i = 0; shifted && i < 3 * 1024; i++) {
        shifted = d.tokens[i] == raw.tokens[i] + 1;
        lo = raw.tokens[i] < lo ? raw.tokens[i] : lo;
        hi = raw.tokens[i] > hi ? raw.tokens[i] : hi;
    }
    check(shifted, "tokens are intensity + 1; lra_tokens gives raw intensities (%d-%d)", lo,
          hi);
    int by_hand = rc == 0;
    for (int i = 0; by_hand && i < 1024; i++) {
        const unsigned char *rec = bin + 1;
        by_hand = d.tokens[i] == lra_cifar_grey(rec[i], rec[1024 + i], rec[2048 + i]) + 1;
    }
    check(by_hand, "record tokens come from planes R, G, B in row-major order");

    uint8_t gp[1024], gj[1024];
    int rp = lra_image_file_grey("train_cat_0000.png", png, np, gp, err, sizeof err);
    int rj = lra_image_file_grey("train_cat_0000.jpg", jpg, nj, gj, err, sizeof err);
    int png_same = rp == 0 && rc == 0, jpg_same = rj == 0 && rc == 0;
    for (int i = 0; i < 1024; i++) {
        png_same = png_same && gp[i] + 1 == d.tokens[i];
        jpg_same = jpg_same && gj[i] + 1 == d.tokens[i];
    }
    check(png_same, "the PNG fixture (same pixels) gives the record's tokens exactly");
    check(jpg_same, "the real CIFAR JPEG decoded with libjpeg gives the same pixels as "
          "ImageMagick's decode stored in the fixtures");
    if (rc == 0) lra_dataset_free(&d);
    if (rc2 == 0) lra_dataset_free(&raw);
    free(bin);
    free(png);
    free(jpg);
}

/* ---- written trees ---------------------------------------------------------------------- */

/* Class c's colour: distinct grey levels for every class. */
static void class_colour(int c, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(20 * c + 10);
    rgb[1] = (uint8_t)(250 - 17 * c);
    rgb[2] = (uint8_t)(13 * c * c % 256);
}

static void fill_colour(uint8_t *px, const uint8_t rgb[3])
{
    for (int i = 0; i < 1024; i++) memcpy(px + 3 * i, rgb, 3);
}

/* 50 train PNGs (5 per class) and 10 test JPEGs (1 per class), each of its class's colour. */
static const char *write_folder_tree(void)
{
    static char dir[2048];
    char path[4096];
    uint8_t px[3 * 1024], rgb[3];
    snprintf(dir, sizeof dir, "%s/CIFAR-10-images", tmp_root);
    for (int c = 0; c < 10; c++) {
        class_colour(c, rgb);
        fill_colour(px, rgb);
        for (int k = 0; k < 5; k++) {
            snprintf(path, sizeof path, "%s/train/%s/%04d.png", dir, classes[c], k);
            write_png(path, px, 32, 32, 3);
        }
        snprintf(path, sizeof path, "%s/test/%s/0000.jpg", dir, classes[c]);
        write_jpeg(path, px, 32, 32);
    }
    return dir;
}

/* 60 records as cifar-10-batches-bin: 50 in data_batch_1.bin, 10 in test_batch.bin. */
static const char *write_batch_tree(void)
{
    static char dir[2048];
    char path[4096];
    static unsigned char buf[50 * 3073];
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", tmp_root);
    for (int part = 0; part < 2; part++) {
        int n = part ? 10 : 50;
        for (int r = 0; r < n; r++) {
            unsigned char *rec = buf + (size_t)r * 3073;
            uint8_t rgb[3];
            rec[0] = (unsigned char)(r % 10);
            class_colour(r % 10, rgb);
            for (int ch = 0; ch < 3; ch++) memset(rec + 1 + 1024 * ch, rgb[ch], 1024);
        }
        snprintf(path, sizeof path, "%s/%s", dir, part ? "test_batch.bin" : "data_batch_1.bin");
        write_file(path, buf, (size_t)n * 3073);
    }
    snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
    write_file(path, "airplane\n", 9);
    return dir;
}

/* Every example's tokens are its label's colour (within tol grey levels) plus 1. */
static int tokens_match_labels(const lra_dataset *d, int tol)
{
    for (int i = 0; i < d->n; i++) {
        uint8_t rgb[3];
        class_colour(d->labels[i], rgb);
        int want = lra_cifar_grey(rgb[0], rgb[1], rgb[2]) + 1;
        for (int k = 0; k < 1024; k++)
            if (abs(d->tokens[(size_t)i * 1024 + k] - want) > tol) return 0;
    }
    return 1;
}

static int per_class(const lra_dataset *d, int want)
{
    int count[10] = {0};
    for (int i = 0; i < d->n; i++) count[d->labels[i]]++;
    for (int c = 0; c < 10; c++)
        if (count[c] != want) return 0;
    return 1;
}

/* Whether no class has more than one example in d (a stratified 5 of 50). */
static int spread(const lra_dataset *d)
{
    int count[10] = {0};
    for (int i = 0; i < d->n; i++)
        if (count[d->labels[i]]++) return 0;
    return 1;
}

static void test_trees(void)
{
    lra_dataset d[LRA_N_SPLITS], t[LRA_N_SPLITS];
    char err[512];
    const char *dir = write_folder_tree();
    int rc = build(dir, 1024, NULL, d, err, sizeof err);
    if (!check(rc == 0, "image-folder tree of PNG and JPEG loads (%s)", rc ? err : "ok")) return;
    check(d[0].n == 45 && d[1].n == 5 && d[2].n == 10 && d[0].len == 1024,
          "60 images split 45/5/10 (LRA's 45k/5k/10k scaled): %d/%d/%d", d[0].n, d[1].n,
          d[2].n);
    check(spread(&d[1]) && per_class(&d[2], 1), "hold-out is class-stratified: the 5 "
          "validation images are of 5 classes");
    check(tokens_match_labels(&d[0], 0) && tokens_match_labels(&d[1], 0),
          "PNG round trip: exact tokens for every train and val image, labels from folders");
    check(tokens_match_labels(&d[2], 1), "JPEG round trip (quality 100): tokens within 1");
    rc = build(pack_targz(dir), 1024, NULL, t, err, sizeof err);
    check(rc == 0 && same_dataset(&d[0], &t[0]) && same_dataset(&d[1], &t[1]) &&
              same_dataset(&d[2], &t[2]),
          "the same tree as tar.gz (libarchive order) gives identical splits");
    if (rc == 0) free_splits(t);
    free_splits(d);

    dir = write_batch_tree();
    rc = build(dir, 1024, NULL, d, err, sizeof err);
    check(rc == 0 && d[0].n == 45 && d[1].n == 5 && d[2].n == 10 && spread(&d[1]) &&
              tokens_match_labels(&d[0], 0) && tokens_match_labels(&d[2], 0),
          "binary batches: 45/5/10, exact tokens and labels (%s)", rc ? err : "ok");
    if (rc == 0) free_splits(d);
    const char *opts[] = {"task.lra_tokens=true", "task.n_train=20", NULL};
    rc = build(dir, 1024, opts, d, err, sizeof err);
    uint8_t rgb[3];
    class_colour(rc == 0 ? d[0].labels[0] : 0, rgb);
    check(rc == 0 && d[0].n == 20 && d[0].tokens[0] == lra_cifar_grey(rgb[0], rgb[1], rgb[2]),
          "task.lra_tokens=true gives raw intensities; task.n_train=20 caps train");
    if (rc == 0) free_splits(d);
}

static void test_sample(void)
{
    lra_dataset d[LRA_N_SPLITS];
    char err[512];
    int rc = build(SAMPLE, 1024, NULL, d, err, sizeof err);
    check(rc == 0 && d[0].n == 2700 && d[1].n == 300 && d[2].n == 1000 && per_class(&d[1], 30)
              && per_class(&d[2], 100),
          "repository sample (real JPEGs): 2700/300/1000, 30 and 100 per class (%s)",
          rc ? err : "ok");
    if (rc == 0) free_splits(d);
}

/* ---- bad input -------------------------------------------------------------------------- */

static void expect_error(const char *what, const char *input, int seq_len, const char *part1,
                         const char *part2)
{
    lra_dataset d[LRA_N_SPLITS];
    char err[1024];
    int rc = build(input, seq_len, NULL, d, err, sizeof err);
    check(rc != 0 && strstr(err, part1) && (!part2 || strstr(err, part2)), "%s -> %s", what,
          rc ? err : "no error");
    if (rc == 0) free_splits(d);
}

/* A copy of the folder tree at name with one file replaced (or added). */
static const char *tree_with(const char *name, const char *file, const void *data, size_t n)
{
    static char dir[4096];
    char cmd[8400], path[8192];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    snprintf(cmd, sizeof cmd, "cp -r %s/CIFAR-10-images %s", tmp_root, dir);
    if (system(cmd) != 0) lra_die("%s failed", cmd);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    write_file(path, data, n);
    return dir;
}

static void test_bad_images(void)
{
    char path[4096];
    size_t n;
    snprintf(path, sizeof path, "%s/CIFAR-10-images/train/cat/0000.png", tmp_root);
    unsigned char *png = read_all(path, &n);
    expect_error("truncated PNG", tree_with("cutpng", "train/cat/0000.png", png, n / 2), 1024,
                 "train/cat/0000.png", "truncated");
    free(png);

    snprintf(path, sizeof path, "%s/CIFAR-10-images/test/dog/0000.jpg", tmp_root);
    unsigned char *jpg = read_all(path, &n);
    expect_error("truncated JPEG", tree_with("cutjpg", "test/dog/0000.jpg", jpg, n * 2 / 3),
                 1024, "test/dog/0000.jpg", "corrupt JPEG: Premature end");
    for (size_t i = 2; i + 9 < n; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) jpg[i + 5] = jpg[i + 6] = 0; /* height 0 */
    expect_error("corrupt JPEG header (height 0)", tree_with("badjpg", "test/dog/0000.jpg",
                 jpg, n), 1024, "test/dog/0000.jpg", "corrupt JPEG");
    free(jpg);

    uint8_t px[3 * 33 * 32];
    memset(px, 7, sizeof px);
    snprintf(path, sizeof path, "%s/wide.png", tmp_root);
    write_png(path, px, 33, 32, 3);
    unsigned char *wide = read_all(path, &n);
    expect_error("33x32 PNG", tree_with("wide", "train/cat/0001.png", wide, n), 1024,
                 "train/cat/0001.png", "wrong image size 33x32, expected 32x32");
    free(wide);
    expect_error("unknown class folder", tree_with("kitten", "train/kitten/0.png", "x", 1),
                 1024, "train/kitten/0.png", "field class = 'kitten'");
    expect_error("images outside train/test", tree_with("valdir", "val/cat/0.png", "x", 1),
                 1024, "val/cat/0.png", "field split = 'val'");
    static const unsigned char record[3073];
    expect_error("binary batches mixed with images",
                 tree_with("mixed", "test_batch.bin", record, sizeof record), 1024, "mixes",
                 NULL);
    expect_error("seq_len 1000", tree_with("seqlen", "README", "x", 1), 1000,
                 "seq_len must be 1024", NULL);
}

static void test_bad_batches(void)
{
    char path[4096], dir[2048];
    static unsigned char buf[3 * 3073];
    memset(buf, 0, sizeof buf);
    snprintf(dir, sizeof dir, "%s/short/cifar-10-batches-bin", tmp_root);
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    write_file(path, buf, 3072);
    expect_error("CIFAR file of 3072 bytes", dir, 1024, "data_batch_1.bin: 3072 bytes",
                 "record 0 is truncated");

    buf[2 * 3073] = 11;
    snprintf(dir, sizeof dir, "%s/label/cifar-10-batches-bin", tmp_root);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    write_file(path, buf, sizeof buf);
    expect_error("label 11", dir, 1024, "test_batch.bin: record 2: field label = 11", NULL);

    lra_dataset d;
    char err[256];
    int rc = lra_cifar_parse("x.bin", buf, 0, 0, &d, err, sizeof err);
    check(rc != 0 && strstr(err, "x.bin: 0 bytes"), "empty batch file -> %s", err);

    snprintf(dir, sizeof dir, "%s/few/cifar-10-batches-bin", tmp_root);
    buf[2 * 3073] = 1;
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    write_file(path, buf, sizeof buf);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    write_file(path, buf, sizeof buf);
    expect_error("3 training images", dir, 1024, "too few training images", NULL);
}

static void test_bad_sources(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/empty", tmp_root);
    mkdir(path, 0755);
    expect_error("empty directory", path, 1024, "/empty: no training images", NULL);
    snprintf(path, sizeof path, "%s/missing", tmp_root);
    expect_error("missing directory", path, 1024, "/missing does not exist", NULL);

    size_t n;
    unsigned char *tgz = read_all(SAMPLE, &n);
    snprintf(path, sizeof path, "%s/cut.tar.gz", tmp_root);
    write_file(path, tgz, n / 3);
    expect_error("truncated tar.gz", path, 1024, "cut.tar.gz", "truncated");
    for (size_t i = 4096; i < n; i += 4099) tgz[i] ^= 0xa5;
    snprintf(path, sizeof path, "%s/garbled.tar.gz", tmp_root);
    write_file(path, tgz, n);
    expect_error("corrupt tar.gz (an entry's JPEG is damaged)", path, 1024, "garbled.tar.gz: ",
                 NULL);
    free(tgz);
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/lra-test-image-XXXXXX");
    if (!mkdtemp(tmp_root)) lra_die("cannot create a temporary directory");
    test_grey();
    test_fixtures();
    test_trees();
    test_sample();
    test_bad_images();
    test_bad_batches();
    test_bad_sources();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmp_root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
