/* test_task_pathfinder.c — the Pathfinder / Path-X generator and loader.
 *
 * Checks: determinism (same seed and index give the same pixels; parallel = serial); label
 * semantics measured on the rendered pixels; the generator's bookkeeping with distractors on;
 * image statistics against the LRA release's profile; PNG round trip; release-layout round trip
 * through the writer and the task's loader; 80/10/10 split sizes; empty images dropped; and one
 * test per kind of bad input, whose message must name the file and the line or field.
 *
 * Label semantics in image space: with distractors off an image holds two target snakes. A
 * snake is a chain of dashes whose gaps are about 2m pixels (m = paddle margin). Threshold the
 * ink at 20 (dropping the faint Lanczos halo), dilate by m (3x3 at m = 1) so every gap closes
 * by construction, and take 8-connected components: a label-1 image must then have both markers
 * on one component, always. The converse cannot hold exactly in pixels: the occupancy rule lets
 * two different snakes pass as close as consecutive dashes of one snake (both ~2m), so the
 * dilation that bridges the gaps also joins snakes that pass close. At 32x32 the 14-paddle
 * snakes fill the image and nearly always pass close; at 256x256 (m = 3) they have room, and we
 * require most label-0 images to keep their markers on separate components. The exact label-0
 * statement is checked on the generator's own record (check_bookkeeping).
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "pathfinder_draw.h"
#include "source.h"
#include "task.h"
#include "util.h"

static int n_passed, n_failed;
static char g_dir[256];

LRA_PRINTF(2, 3) static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s: ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    ok ? n_passed++ : n_failed++;
    return ok;
}

static lra_pf_gen *make_gen(int size, const char *name, const char *value)
{
    lra_pf_params p;
    char err[256];
    lra_pf_defaults(&p, size, LRA_PF_HARD);
    if (name && lra_pf_set(&p, name, value, err, sizeof err) != 1) lra_die("%s", err);
    lra_pf_gen *g = lra_pf_gen_new(&p, err, sizeof err);
    if (!g) lra_die("%s", err);
    return g;
}

/* ---- determinism ------------------------------------------------------------------------ */

static void check_determinism(void)
{
    enum { N = 48, PX = 32 * 32 };
    lra_pf_gen *g = make_gen(32, NULL, NULL);
    uint8_t *serial = malloc(N * PX), *parallel = malloc(N * PX), once[PX];
    lra_pf_scratch *s = lra_pf_scratch_new(g);
    for (int i = 0; i < N; i++) lra_pf_render(g, s, 7, (uint64_t)i, serial + i * PX, NULL);
    lra_pf_render(g, s, 7, 5, once, NULL);
    check(memcmp(once, serial + 5 * PX, PX) == 0, "same seed and index give identical pixels");
#pragma omp parallel
    {
        lra_pf_scratch *t = lra_pf_scratch_new(g);
#pragma omp for schedule(dynamic, 1)
        for (int i = N - 1; i >= 0; i--)
            lra_pf_render(g, t, 7, (uint64_t)i, parallel + i * PX, NULL);
        lra_pf_scratch_free(t);
    }
    check(memcmp(serial, parallel, N * PX) == 0, "parallel generation (reversed order) equals "
          "serial, %d images", N);
    lra_pf_render(g, s, 8, 5, once, NULL);
    check(memcmp(once, serial + 5 * PX, PX) != 0, "another seed gives another image");
    lra_pf_scratch_free(s);
    lra_pf_gen_free(g);
    free(serial);
    free(parallel);
}

/* ---- label semantics -------------------------------------------------------------------- */

/* 8-connected components of px > 0; returns the component count, ids in comp (0 = none). */
/* 8-connected components of the ink >= 20 dilated by a (2 rho + 1) square; ids in comp
 * (0 = background). */
static void components(const uint8_t *px, int N, int rho, int *comp, int *queue, uint8_t *on)
{
    memset(on, 0, (size_t)N * N);
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++)
            for (int dr = -rho; dr <= rho && px[r * N + c] >= 20; dr++)
                for (int dc = -rho; dc <= rho; dc++)
                    if (r + dr >= 0 && r + dr < N && c + dc >= 0 && c + dc < N)
                        on[(r + dr) * N + c + dc] = 1;
    int n = 0;
    memset(comp, 0, (size_t)N * N * sizeof *comp);
    for (int start = 0; start < N * N; start++) {
        if (!on[start] || comp[start]) continue;
        int head = 0, tail = 0;
        comp[start] = ++n;
        queue[tail++] = start;
        while (head < tail) {
            int at = queue[head++], r = at / N, c = at % N;
            for (int dr = -1; dr <= 1; dr++)
                for (int dc = -1; dc <= 1; dc++) {
                    int rr = r + dr, cc = c + dc;
                    if (rr < 0 || rr >= N || cc < 0 || cc >= N) continue;
                    int k = rr * N + cc;
                    if (on[k] && !comp[k]) {
                        comp[k] = n;
                        queue[tail++] = k;
                    }
                }
        }
    }
}

/* The component under a marker: the brightest inked pixel within 1 pixel of its centre. */
static int marker_component(const uint8_t *px, const int *comp, int N, const int tip[2])
{
    int best = -1, id = 0;
    for (int dr = -1; dr <= 1; dr++)
        for (int dc = -1; dc <= 1; dc++) {
            int r = tip[0] + dr, c = tip[1] + dc;
            if (r < 0 || r >= N || c < 0 || c >= N || !comp[r * N + c]) continue;
            if (px[r * N + c] > best) best = px[r * N + c], id = comp[r * N + c];
        }
    return id;
}

static void check_label_semantics(int N, int rho, double min_separated)
{
    enum { MIN_PER_LABEL = 200 };
    lra_pf_gen *g = make_gen(N, "num_distractors", "0");
    lra_pf_scratch *s = lra_pf_scratch_new(g);
    uint8_t *px = malloc((size_t)N * N), *on = malloc((size_t)N * N);
    int *comp = malloc((size_t)N * N * sizeof *comp);
    int *queue = malloc((size_t)N * N * sizeof *queue);
    int seen[2] = {0, 0}, same[2] = {0, 0}, off_image = 0;
    for (uint64_t i = 0; seen[0] < MIN_PER_LABEL || seen[1] < MIN_PER_LABEL; i++) {
        lra_pf_info info;
        lra_pf_render(g, s, 3, i, px, &info);
        components(px, N, rho, comp, queue, on);
        int a = marker_component(px, comp, N, info.tips[0]);
        int b = marker_component(px, comp, N, info.tips[1]);
        if (!a || !b) {
            off_image++;
            continue;
        }
        seen[info.label]++;
        same[info.label] += a == b;
    }
    check(same[1] == seen[1], "%dx%d label 1: both markers on one ink component in %d/%d "
          "images (distractors off)", N, N, same[1], seen[1]);
    check(seen[0] - same[0] >= min_separated * seen[0], "%dx%d label 0: markers on separate "
          "components in %d/%d images (want >= %.0f%%; the rest pass within 2m)", N, N,
          seen[0] - same[0], seen[0], 100 * min_separated);
    check(off_image <= (seen[0] + seen[1]) / 50, "%dx%d markers off the ink: %d", N, N,
          off_image);
    free(px);
    free(on);
    free(comp);
    free(queue);
    lra_pf_scratch_free(s);
    lra_pf_gen_free(g);
}

/* The generator's own record, with distractors on: markers at the first paddle of the origin
 * snake and at the last paddle of the same (label 1) or the other (label 0) snake, and the
 * marker centres bright in the saved image. */
static void check_bookkeeping(void)
{
    enum { N = 32, COUNT = 300 };
    lra_pf_gen *g = make_gen(N, NULL, NULL);
    lra_pf_scratch *s = lra_pf_scratch_new(g);
    uint8_t px[N * N];
    int bad = 0, dim = 0, length = 0;
    for (uint64_t i = 0; i < COUNT; i++) {
        lra_pf_info f;
        lra_pf_render(g, s, 4, i, px, &f);
        int term = f.label ? f.origin : 1 - f.origin, last = f.n_paddles[term] - 1;
        bad += f.tips[0][0] != f.paddles[f.origin][0][0] ||
               f.tips[0][1] != f.paddles[f.origin][0][1] ||
               f.tips[1][0] != f.paddles[term][last][0] || f.tips[1][1] != f.paddles[term][last][1];
        length += f.n_paddles[0] != 14 || f.n_paddles[1] != 14;
        for (int k = 0; k < 2; k++) {
            int r = f.tips[k][0], c = f.tips[k][1];
            if (r >= 0 && r < N && c >= 0 && c < N && px[r * N + c] < 100) dim++;
        }
    }
    check(bad == 0, "markers sit on the recorded snake ends (%d mismatches in %d)", bad, COUNT);
    check(length == 0, "both target snakes have contour_length 14 paddles (%d exceptions)",
          length);
    check(dim == 0, "marker centres are bright (>= 100) in the saved image (%d dim)", dim);
    lra_pf_scratch_free(s);
    lra_pf_gen_free(g);
}

/* ---- statistics ------------------------------------------------------------------------- */

static void check_statistics(void)
{
    enum { N = 32, COUNT = 400 };
    lra_pf_gen *g = make_gen(N, NULL, NULL);
    lra_pf_scratch *s = lra_pf_scratch_new(g);
    uint8_t px[N * N];
    long ink = 0, faint = 0, pos = 0, full_range = 0;
    double sum = 0;
    for (uint64_t i = 0; i < COUNT; i++) {
        lra_pf_info f;
        lra_pf_render(g, s, 5, i, px, &f);
        int lo = 255, hi = 0;
        for (int k = 0; k < N * N; k++) {
            ink += px[k] > 0;
            faint += px[k] > 0 && px[k] <= 8;
            sum += px[k];
            if (px[k] < lo) lo = px[k];
            if (px[k] > hi) hi = px[k];
        }
        full_range += lo == 0 && hi == 255;
        pos += f.label;
    }
    double ink_frac = (double)ink / COUNT / (N * N), mean = sum / COUNT / (N * N);
    check(ink_frac > 0.30 && ink_frac < 0.60, "ink fraction %.3f in (0.30, 0.60)", ink_frac);
    check(mean > 15 && mean < 45, "mean intensity %.1f in (15, 45)", mean);
    check((double)faint / ink > 0.35 && (double)faint / ink < 0.65,
          "faint pixels (1-8, the Lanczos halo) are %.2f of the ink, about half as in LRA's "
          "release", (double)faint / ink);
    check(pos > COUNT * 0.42 && pos < COUNT * 0.58, "positives %ld of %d", pos, COUNT);
    check(full_range == COUNT, "every image spans 0..255 (min-max rescale): %ld of %d",
          full_range, COUNT);
    lra_pf_scratch_free(s);
    lra_pf_gen_free(g);
}

/* ---- files ------------------------------------------------------------------------------ */

static void put_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) lra_die("cannot write %s", path);
}

static unsigned char *png_of(const uint8_t *px, int w, int h, size_t *n)
{
    unsigned char *png;
    char err[256];
    if (lra_pf_png_encode(px, w, h, &png, n, err, sizeof err) != 0) lra_die("%s", err);
    return png;
}

static void check_png_round_trip(void)
{
    uint8_t px[32 * 32], back[32 * 32];
    for (int i = 0; i < 32 * 32; i++) px[i] = (uint8_t)(i * 7 + i / 32);
    size_t n;
    char err[256];
    unsigned char *png = png_of(px, 32, 32, &n);
    int rc = lra_pf_png_decode(png, n, 32, 32, back, err, sizeof err);
    check(rc == 0 && memcmp(px, back, sizeof px) == 0, "PNG round trip (8-bit grey, %zu bytes)",
          n);
    free(png);
}

static int build(const char *task, const char *input, const char *const *opts,
                 lra_dataset split[LRA_N_SPLITS], char *err, size_t errlen)
{
    lra_config cfg;
    lra_config_defaults(&cfg);
    snprintf(cfg.task, sizeof cfg.task, "%s", task);
    cfg.seq_len = strcmp(task, "pathx") == 0 ? 128 * 128 : 32 * 32;
    for (int i = 0; opts && opts[i]; i++)
        if (lra_config_set_kv(&cfg, opts[i], err, errlen) != 0) return -1;
    lra_task_env env = {.cfg = &cfg, .input = input, .quiet = 1};
    lra_provenance prov = {0};
    memset(split, 0, sizeof(lra_dataset) * LRA_N_SPLITS);
    return lra_task_find(task)->build(&env, split, &prov, err, errlen);
}

static void free_splits(lra_dataset split[LRA_N_SPLITS])
{
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
}

/* Writes a 50-image release with the generate CLI, loads it, and compares with the images the
 * generator renders directly. */
static void check_release_round_trip(void)
{
    char dir[300], err[1024];
    snprintf(dir, sizeof dir, "%s/rel", g_dir);
    char *argv[] = {"pathfinder", "--out", dir, "--n", "50", "--batch-size", "20", "--seed",
                    "9", "--quiet", NULL};
    int rc = lra_task_find("pathfinder")->generate_cli(10, argv);
    check(rc == 0, "lra data generate pathfinder --n 50 --batch-size 20 writes a release");
    char probe[400];
    snprintf(probe, sizeof probe, "%s/imgs/2/sample_9.png", dir);
    int layout = lra_is_file(probe);
    snprintf(probe, sizeof probe, "%s/metadata/2.npy", dir);
    check(layout && lra_is_file(probe), "layout imgs/2/sample_9.png and metadata/2.npy exist");
    lra_dataset split[LRA_N_SPLITS];
    rc = build("pathfinder", dir, NULL, split, err, sizeof err);
    if (!check(rc == 0, "loader reads the release%s%s", rc ? ": " : "", rc ? err : "")) return;
    check(split[0].n == 40 && split[1].n == 5 && split[2].n == 5 && split[0].len == 1024,
          "split sizes %d/%d/%d of 50 (80/10/10), 1024 tokens", split[0].n, split[1].n,
          split[2].n);
    lra_pf_gen *g = make_gen(32, NULL, NULL);
    lra_pf_scratch *s = lra_pf_scratch_new(g);
    int same = 1, labels = 1, minimum = 1;
    for (int i = 0; i < 50; i++) {
        int sp = i < 40 ? 0 : i < 45 ? 1 : 2, j = i - (sp == 0 ? 0 : sp == 1 ? 40 : 45);
        uint8_t px[1024];
        lra_pf_info f;
        lra_pf_render(g, s, 9, (uint64_t)i, px, &f);
        const int32_t *t = split[sp].tokens + (size_t)j * 1024;
        for (int k = 0; k < 1024; k++) {
            same &= t[k] == px[k] + 1;
            minimum &= t[k] >= 1;
        }
        labels &= split[sp].labels[j] == f.label;
    }
    check(same && labels, "loaded tokens are pixel + 1 and labels match the generator");
    check(minimum, "no token is 0 (padding) with the default token shift");
    free_splits(split);
    const char *lra[] = {"task.lra_tokens=1", NULL};
    rc = build("pathfinder", dir, lra, split, err, sizeof err);
    int zero = 0;
    for (int k = 0; rc == 0 && k < 1024; k++) zero += split[0].tokens[k] == 0;
    check(rc == 0 && zero > 0, "task.lra_tokens=1 keeps raw pixels (black = 0)");
    if (rc == 0) free_splits(split);
    lra_pf_scratch_free(s);
    lra_pf_gen_free(g);
}

/* A hand-made release: `count` images of size x size, some all black. */
static void write_small_release(const char *dir, int count, int size, int empty_every)
{
    char path[400];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/imgs", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/imgs/0", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/metadata", dir);
    mkdir(path, 0755);
    uint8_t *px = malloc((size_t)size * size);
    char *meta = malloc((size_t)count * 64 + 1);
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        int empty = empty_every && i % empty_every == 0;
        for (int k = 0; k < size * size; k++) px[k] = empty ? 0 : (uint8_t)((k + i) % 200);
        size_t n;
        unsigned char *png = png_of(px, size, size, &n);
        snprintf(path, sizeof path, "%s/imgs/0/sample_%d.png", dir, i);
        put_file(path, png, n);
        free(png);
        off += (size_t)sprintf(meta + off, "imgs/0 sample_%d.png %d %d 1.0 14 4 2 0.5 1 1\n", i,
                               i, i % 2);
    }
    snprintf(path, sizeof path, "%s/metadata/0.npy", dir);
    put_file(path, meta, off);
    free(px);
    free(meta);
}

static void check_empty_dropped(void)
{
    char dir[300], err[1024];
    snprintf(dir, sizeof dir, "%s/empty", g_dir);
    write_small_release(dir, 30, 32, 10); /* images 0, 10, 20 are black */
    lra_dataset split[LRA_N_SPLITS];
    int rc = build("pathfinder", dir, NULL, split, err, sizeof err);
    check(rc == 0 && split[0].n == 22 && split[1].n == 2 && split[2].n == 3,
          "3 empty images of 30 dropped, then 80/10/10: %d/%d/%d (want 22/2/3)%s%s",
          rc ? -1 : split[0].n, rc ? -1 : split[1].n, rc ? -1 : split[2].n, rc ? ": " : "",
          rc ? err : "");
    if (rc == 0) {
        check(split[0].labels[0] == 1 && split[0].tokens[0] == 1 + 1,
              "first kept example is sample_1 (metadata order, label 1)");
        free_splits(split);
    }
}

/* Builds from dir and expects an error containing every needle. */
static void expect_error(const char *what, const char *dir, const char *const *needles)
{
    char err[1024] = "";
    lra_dataset split[LRA_N_SPLITS];
    int rc = build("pathfinder", dir, NULL, split, err, sizeof err), ok = rc != 0;
    for (int i = 0; ok && needles[i]; i++) ok = strstr(err, needles[i]) != NULL;
    check(ok, "%s: %s", what, rc ? err : "(no error)");
    if (rc == 0) free_splits(split);
}

static void rewrite(const char *path, const char *text)
{
    put_file(path, text, strlen(text));
}

static void check_bad_inputs(void)
{
    char dir[300], path[400];
    size_t n;
    char err[256];
    snprintf(dir, sizeof dir, "%s/bad", g_dir);
    write_small_release(dir, 4, 32, 0);
    snprintf(path, sizeof path, "%s/imgs/0/sample_2.png", dir);
    unsigned char *png = lra_read_file(path, &n, 1 << 20, err, sizeof err);

    put_file(path, png, n / 2);
    expect_error("truncated PNG", dir, (const char *const[]){"sample_2.png", "truncated", NULL});
    unsigned char *corrupt = malloc(n);
    memcpy(corrupt, png, n);
    for (size_t i = 40; i < n - 12; i++) corrupt[i] ^= 0x5a; /* inside the IDAT stream */
    put_file(path, corrupt, n);
    expect_error("corrupt PNG", dir, (const char *const[]){"sample_2.png", "corrupt", NULL});
    uint8_t small[16 * 16] = {1};
    unsigned char *wrong = png_of(small, 16, 16, &n);
    put_file(path, wrong, n);
    expect_error("wrong image size", dir,
                 (const char *const[]){"sample_2.png", "16x16", "32x32", NULL});
    put_file(path, png, n);
    free(wrong);
    free(corrupt);
    free(png);
    write_small_release(dir, 4, 32, 0);

    snprintf(path, sizeof path, "%s/metadata/0.npy", dir);
    rewrite(path, "imgs/0 sample_0.png 0 1\nimgs/0 sample_1.png\n");
    expect_error("metadata line with missing fields", dir,
                 (const char *const[]){"metadata/0.npy:2", "field 2", NULL});
    rewrite(path, "imgs/0 sample_0.png 0 1\nimgs/0 sample_1.png 1 7 1.0\n");
    expect_error("metadata line with a bad label", dir,
                 (const char *const[]){"metadata/0.npy:2", "field 3 (label)", "'7'", NULL});
    rewrite(path, "imgs/0 sample_0.png 0 1\nimgs/0 sample_9.png 1 0\n");
    expect_error("metadata naming a missing image", dir,
                 (const char *const[]){"metadata/0.npy:2", "sample_9.png", "missing", NULL});
    unlink(path);
    snprintf(path, sizeof path, "%s/metadata", dir);
    rmdir(path);
    expect_error("missing metadata directory", dir, (const char *const[]){dir, "metadata",
                                                                          NULL});
    snprintf(path, sizeof path, "%s/void", g_dir);
    mkdir(path, 0755);
    expect_error("empty directory", path, (const char *const[]){path, "metadata", NULL});
    snprintf(path, sizeof path, "%s/does-not-exist", g_dir);
    expect_error("missing directory", path, (const char *const[]){"does-not-exist", NULL});
}

static void check_options(void)
{
    char err[1024];
    lra_dataset split[LRA_N_SPLITS];
    const char *gen[] = {"task.n=60", "task.difficulty=baseline", NULL};
    int rc = build("pathfinder", NULL, gen, split, err, sizeof err);
    check(rc == 0 && split[0].n == 48 && split[1].n == 6 && split[2].n == 6,
          "generated in memory: task.n=60 gives 48/6/6%s%s", rc ? ": " : "", rc ? err : "");
    if (rc == 0) free_splits(split);
    const char *bad[] = {"task.paddle_thickness=0.3", NULL};
    rc = build("pathfinder", NULL, bad, split, err, sizeof err);
    check(rc != 0 && strstr(err, "paddle_thickness"), "thickness x antialias not an integer is "
          "rejected: %s", rc ? err : "(accepted)");
    lra_config cfg;
    lra_config_defaults(&cfg);
    snprintf(cfg.task, sizeof cfg.task, "pathx");
    cfg.seq_len = 1024;
    lra_task_env env = {.cfg = &cfg, .quiet = 1};
    lra_provenance prov = {0};
    rc = lra_task_find("pathx")->build(&env, split, &prov, err, sizeof err);
    check(rc != 0 && strstr(err, "16384"), "pathx with seq_len 1024 is refused: %s",
          rc ? err : "(accepted)");
    if (rc == 0) free_splits(split);
}

/* ---- driver ----------------------------------------------------------------------------- */

static void remove_dir(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/lra-test-pathfinder-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) lra_die("cannot create a temporary directory");
    double t0 = lra_now();
    check_determinism();
    check_label_semantics(32, 1, 0.0);
    check_label_semantics(256, 3, 0.5);
    check_bookkeeping();
    check_statistics();
    check_png_round_trip();
    check_release_round_trip();
    check_empty_dropped();
    check_bad_inputs();
    check_options();
    remove_dir(g_dir);
    printf("(%.1f s)\n%d passed, %d failed\n", lra_now() - t0, n_passed, n_failed);
    return n_failed ? 1 : 0;
}
