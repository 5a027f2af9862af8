/* pathfinder.c — Pathfinder (32x32) and Path-X (128x128): LRA's snake stimuli, generated in C
 * or loaded from LRA's release layout.
 *
 * An image shows two "target" snakes of dashed paddles among distractor snakes, and two disk
 * markers. Label 1: both markers sit on the ends of one target snake; label 0: one marker on
 * each. The generator follows drewlinsley/pathfinder (snakes2.py + snakes.py), which LRA used:
 *
 *   - a paddle is a line drawn at antialias scale a (width round(t*a)), Lanczos-downsampled as
 *     PIL does it (separable, 8-bit intermediate, 22-bit fixed-point weights); its occupancy
 *     mask is the same line dilated by a disk of radius m*a, downsampled the same way;
 *   - two target snakes start seed_distance apart and grow alternately, each new paddle's head
 *     drawn on the circle of radius L+m around the next pivot, weighted by free space and by a
 *     continuity term; one failed extension discards both snakes and starts over;
 *   - distractor snakes (and optional single paddles) fill the rest; markers are Lanczos disks;
 *     the image is the element-wise max, min-max rescaled to 0-255 on save (scipy's imsave).
 *
 * Speed: every paddle the generator can draw comes from a small set of stamps computed once
 * per generator — a first paddle has an integer-degree orientation (360 stamps), and a later
 * paddle's head lies at one of the ~2*pi*(L+m) integer offsets on the candidate circle, which do
 * not depend on the pivot because the pivot is an integer point. Occupancy is kept as bytes
 * (every mask value is k/255), together with its dilation by the margin disk, updated
 * incrementally, so an extension step costs a few dozen lookups.
 *
 * Release layout (§6.1): imgs/<batch>/sample_<i>.png and metadata/<batch>.npy, whose lines
 * are text: sub-path, file name, index, label, continuity, contour length, distractor length,
 * paddle length, paddle thickness, paddle margin, number of paddle contrasts.
 *
 * Tokens: pixel + 1 (0 stays padding; LRA pitfall 10) unless task.lra_tokens=1, which uses the
 * raw pixel values as LRA did — black pixels then become padding for the key mask.
 *
 * This file holds the two tasks (options, generated or loaded data, splits, provenance) and
 * `lra data generate pathfinder|pathx`. The generator and the release layout live in
 * pathfinder_{params,lanczos,stamps,render,codec,release_write,release_read}.c; the list with
 * what each holds is at the top of pathfinder_internal.h.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder_internal.h"
#include "source.h"
#include "task.h"
#include "util.h"

/* ==== The tasks =========================================================================== */

/* Drops empty (all-black) images as LRA's TFDS builder does, then splits 80/10/10 in order;
 * boundaries are rounded to the nearest example like TFDS percent slicing. */
static void make_splits(const uint8_t *pixels, const int32_t *labels, long n, int size,
                        int shift, lra_dataset split[LRA_N_SPLITS], long *dropped)
{
    size_t px = (size_t)size * size;
    long keep = 0;
    long *idx = lra_alloc((size_t)(n + 1) * sizeof *idx, "pathfinder index");
    for (long i = 0; i < n; i++) {
        int empty = 1;
        for (size_t k = 0; k < px && empty; k++) empty = pixels[(size_t)i * px + k] == 0;
        if (!empty) idx[keep++] = i;
    }
    *dropped = n - keep;
    long bound[4] = {0, (keep * 80 + 50) / 100, (keep * 90 + 50) / 100, keep};
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        lra_dataset_alloc(&split[s], (int)(bound[s + 1] - bound[s]), 1, (int)px);
        for (long j = bound[s]; j < bound[s + 1]; j++) {
            const uint8_t *src = pixels + (size_t)idx[j] * px;
            int32_t *dst = split[s].tokens + (size_t)(j - bound[s]) * px;
            for (size_t k = 0; k < px; k++) dst[k] = (int32_t)src[k] + shift;
            split[s].labels[j - bound[s]] = labels[idx[j]];
        }
    }
    lra_free(idx);
}

/* Renders n images in parallel; a pure function of (params, seed, index). */
static void generate_all(const lra_pf_gen *g, long n, uint64_t seed, uint8_t *pixels,
                         int32_t *labels)
{
    size_t px = (size_t)g->p.size * g->p.size;
#pragma omp parallel
    {
        lra_pf_scratch *s = lra_pf_scratch_new(g);
#pragma omp for schedule(dynamic, 16)
        for (long i = 0; i < n; i++) {
            lra_pf_info info = {0};
            lra_pf_render(g, s, seed, (uint64_t)i, pixels + (size_t)i * px, &info);
            labels[i] = info.label;
        }
        lra_pf_scratch_free(s);
    }
}

typedef struct pf_task_opts {
    lra_pf_params params;
    int difficulty;
    long n, seed, lra_tokens;
} pf_task_opts;

static const char *const pf_task_opt_names[] = {"difficulty", "n", "data_seed", "lra_tokens"};

static int parse_difficulty(const char *v, int *out)
{
    for (int d = 0; d < 3; d++)
        if (strcmp(v, lra_pf_difficulty_names[d]) == 0 ||
            strcmp(v, lra_pf_difficulty_dirs[d]) == 0) {
            *out = d;
            return 0;
        }
    return -1;
}

static int task_options(const lra_config *cfg, const char *task, int def_size, long def_n,
                        pf_task_opts *o, char *err, size_t errlen)
{
    const char *known[64];
    int k = 0;
    for (size_t i = 0; i < sizeof pf_task_opt_names / sizeof *pf_task_opt_names; i++)
        known[k++] = pf_task_opt_names[i];
    for (int i = 0; lra_pf_param_names[i]; i++) known[k++] = lra_pf_param_names[i];
    known[k] = NULL;
    long size;
    if (lra_task_check_opts(cfg, task, known, err, errlen) != 0 ||
        lra_task_opt_int(cfg, task, "resolution", def_size, 32, 256, &size, err, errlen) ||
        lra_task_opt_int(cfg, task, "n", def_n, 10, 100000000, &o->n, err, errlen) ||
        lra_task_opt_int(cfg, task, "data_seed", 1, 0, 2147483647, &o->seed, err, errlen) ||
        lra_task_opt_int(cfg, task, "lra_tokens", 0, 0, 1, &o->lra_tokens, err, errlen))
        return -1;
    const char *d = lra_task_opt(cfg, "difficulty");
    o->difficulty = LRA_PF_HARD;
    if (d && parse_difficulty(d, &o->difficulty) != 0) {
        snprintf(err, errlen, "task %s: task.difficulty wants baseline, intermediate or hard, "
                 "got '%s'", task, d);
        return -1;
    }
    if (lra_pf_defaults(&o->params, (int)size, o->difficulty) != 0) {
        snprintf(err, errlen, "task %s: task.resolution must be 32, 64, 128 or 256 (got %ld)",
                 task, size);
        return -1;
    }
    for (int i = 1; lra_pf_param_names[i]; i++) {
        const char *v = lra_task_opt(cfg, lra_pf_param_names[i]);
        char e[300];
        if (v && lra_pf_set(&o->params, lra_pf_param_names[i], v, e, sizeof e) < 0) {
            snprintf(err, errlen, "task %s: task.%s", task, e);
            return -1;
        }
    }
    if (cfg->seq_len != o->params.size * o->params.size) {
        snprintf(err, errlen, "task %s: seq_len must be %d (%dx%d pixels), got %d; set "
                 "seq_len=%d", task, o->params.size * o->params.size, o->params.size,
                 o->params.size, cfg->seq_len, o->params.size * o->params.size);
        return -1;
    }
    return lra_pf_check(&o->params, err, errlen);
}

/* Provenance for generated data: every parameter, split across entries of <= 400 bytes. */
static void prov_params(lra_provenance *prov, const lra_pf_params *p)
{
    char desc[1536];
    lra_pf_describe(p, desc, sizeof desc);
    const char *s = desc;
    for (int part = 1; *s; part++) {
        size_t n = strlen(s);
        if (n > 380) {
            n = 380;
            while (n > 0 && s[n] != ' ') n--;
        }
        char key[48];
        snprintf(key, sizeof key, "generator_params_%d", part);
        lra_prov_add(prov, key, "%.*s", (int)n, s);
        s += n;
        while (*s == ' ') s++;
    }
}

static int pf_build(const lra_task_env *env, const char *task, int def_size, long def_n,
                    lra_dataset split[LRA_N_SPLITS], lra_provenance *prov, char *err,
                    size_t errlen)
{
    pf_task_opts o;
    if (task_options(env->cfg, task, def_size, def_n, &o, err, errlen) != 0) return -1;
    int size = o.params.size;
    uint8_t *pixels = NULL;
    int32_t *labels = NULL;
    long n = 0, dropped = 0;
    char found[PATH_MAX + 128];
    const char *source = env->input;
    if (!source && env->data_root) {
        pf_path(found, sizeof found, "%s/pathfinder%d/%s", env->data_root, size,
                 lra_pf_difficulty_dirs[o.difficulty]);
        if (lra_is_dir(found)) source = found;
    }
    if (source) {
        if (pf_load_release(source, size, o.difficulty, &pixels, &labels, &n, err, errlen) != 0)
            return -1;
        lra_prov_add(prov, "source", "%s (LRA release layout)", source);
    } else {
        lra_pf_gen *g = lra_pf_gen_new(&o.params, err, errlen);
        if (!g) return -1;
        n = o.n;
        pixels = malloc((size_t)n * size * size);
        labels = malloc((size_t)n * sizeof *labels);
        if (!pixels || !labels) lra_die("out of memory for %ld pathfinder images", n);
        if (!env->quiet)
            fprintf(stderr, "%s: generating %ld images of %dx%d (%s)...\n", task, n, size, size,
                    lra_pf_difficulty_names[o.difficulty]);
        generate_all(g, n, (uint64_t)o.seed, pixels, labels);
        lra_pf_gen_free(g);
        lra_prov_add(prov, "source", "generated by tasks/pathfinder.c (snakes2 algorithm), "
                     "data_seed %ld, %ld images", o.seed, n);
        prov_params(prov, &o.params);
    }
    make_splits(pixels, labels, n, size, o.lra_tokens ? 0 : 1, split, &dropped);
    free(pixels);
    free(labels);
    lra_prov_add(prov, "difficulty", "%s (%s)", lra_pf_difficulty_names[o.difficulty],
                 lra_pf_difficulty_dirs[o.difficulty]);
    lra_prov_add(prov, "resolution", "%dx%d", size, size);
    lra_prov_add(prov, "split", "80/10/10 of the non-empty images in metadata order (batch "
                 "number, then line); %ld empty images dropped", dropped);
    lra_prov_add(prov, "tokens", "%s", o.lra_tokens ? "raw pixel values 0-255 as LRA (black "
                 "pixels are padding to the key mask)" : "pixel + 1 (0 is padding only)");
    return 0;
}

static int pathfinder_build(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                            lra_provenance *prov, char *err, size_t errlen)
{
    return pf_build(env, "pathfinder", 32, 200000, split, prov, err, errlen);
}

/* Path-X in memory: 10,000 images (655 MB of int32 tokens) unless task.n says otherwise. */
static int pathx_build(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                       lra_provenance *prov, char *err, size_t errlen)
{
    return pf_build(env, "pathx", 128, 10000, split, prov, err, errlen);
}

/* ==== lra data generate =================================================================== */

static void cli_help(const char *task, int size)
{
    printf("usage: lra data generate %s --out DIR [options]\n\n"
           "Writes LRA's release layout: DIR/imgs/<batch>/sample_<i>.png, "
           "DIR/metadata/<batch>.npy\n(text lines), DIR/lra_pathfinder_params.txt. Batches "
           "already complete are kept.\n\n"
           "  --n N              images (default 200000)\n"
           "  --resolution R     32, 64, 128 or 256 (default %d)\n"
           "  --difficulty D     baseline, intermediate or hard (default hard)\n"
           "  --seed S           data seed (default 1)\n"
           "  --threads T        OpenMP threads (default: all)\n"
           "  --batch-size B     images per imgs/<batch> folder (default 1000)\n"
           "  --quiet            no progress on stderr\n"
           "  --PARAM VALUE      a generator parameter:", task, size);
    for (int i = 1; lra_pf_param_names[i]; i++)
        printf("%s%s", i % 5 == 1 ? "\n                     " : " ", lra_pf_param_names[i]);
    printf("\n");
}

typedef struct pf_cli {
    const char *out;
    long n, seed, threads, batch;
    int quiet;
} pf_cli;

static int cli_long(const char *name, const char *v, long lo, long hi, long *out)
{
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "lra data generate: %s wants an integer in [%ld, %ld], got '%s'\n",
                name, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* First pass: resolution and difficulty, which choose the defaults the overrides apply to. */
static int cli_base(int argc, char **argv, int def_size, lra_pf_params *p)
{
    long size = def_size;
    int difficulty = LRA_PF_HARD;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--resolution") == 0 &&
            cli_long("--resolution", argv[i + 1], 32, 256, &size) != 0)
            return -1;
        if (strcmp(argv[i], "--difficulty") == 0 &&
            parse_difficulty(argv[i + 1], &difficulty) != 0) {
            fprintf(stderr, "lra data generate: --difficulty wants baseline, intermediate or "
                    "hard, got '%s'\n", argv[i + 1]);
            return -1;
        }
    }
    if (lra_pf_defaults(p, (int)size, difficulty) != 0) {
        fprintf(stderr, "lra data generate: --resolution must be 32, 64, 128 or 256\n");
        return -1;
    }
    return 0;
}

static int cli_args(int argc, char **argv, pf_cli *c, lra_pf_params *p)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quiet") == 0) {
            c->quiet = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "lra data generate: unexpected argument '%s' (see --help)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        char name[64], e[300];
        snprintf(name, sizeof name, "%s", a + 2);
        for (char *s = name; *s; s++)
            if (*s == '-') *s = '_';
        int rc = 0;
        if (strcmp(name, "out") == 0) c->out = v;
        else if (strcmp(name, "n") == 0) rc = cli_long(a, v, 1, 100000000, &c->n);
        else if (strcmp(name, "seed") == 0) rc = cli_long(a, v, 0, 2147483647, &c->seed);
        else if (strcmp(name, "threads") == 0) rc = cli_long(a, v, 1, 1024, &c->threads);
        else if (strcmp(name, "batch_size") == 0) rc = cli_long(a, v, 1, 1000000, &c->batch);
        else if (strcmp(name, "difficulty") == 0) continue;
        else if ((rc = lra_pf_set(p, name, v, e, sizeof e)) == 0) {
            fprintf(stderr, "lra data generate: unknown option '%s' (see --help)\n", a);
            return -1;
        } else if (rc < 0) {
            fprintf(stderr, "lra data generate: %s\n", e);
            return -1;
        } else {
            rc = 0;
        }
        if (rc != 0) return -1;
    }
    if (!c->out) {
        fprintf(stderr, "lra data generate: --out DIR is required\n");
        return -1;
    }
    return 0;
}

static int pf_generate_cli(int argc, char **argv, int def_size)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_help(argv[0], def_size);
            return 0;
        }
    lra_pf_params p;
    pf_cli c = {NULL, 200000, 1, 0, 1000, 0};
    char err[512];
    if (cli_base(argc, argv, def_size, &p) != 0 || cli_args(argc, argv, &c, &p) != 0) return 2;
    lra_pf_gen *g = lra_pf_gen_new(&p, err, sizeof err);
    if (!g) {
        fprintf(stderr, "lra data generate: %s\n", err);
        return 2;
    }
    double t0 = lra_now();
    int rc = lra_pf_write_release(g, c.out, c.n, (uint64_t)c.seed, (int)c.batch,
                                  (int)c.threads, c.quiet, err, sizeof err);
    lra_pf_gen_free(g);
    if (rc != 0) {
        fprintf(stderr, "lra data generate: %s\n", err);
        return 1;
    }
    double dt = lra_now() - t0;
    if (!c.quiet)
        fprintf(stderr, "%s: %ld images in %.1f s (%.0f images/s) -> %s\n", argv[0], c.n, dt,
                c.n / (dt + 1e-9), c.out);
    return 0;
}

static int pathfinder_generate(int argc, char **argv) { return pf_generate_cli(argc, argv, 32); }
static int pathx_generate(int argc, char **argv) { return pf_generate_cli(argc, argv, 128); }

const lra_task lra_task_pathfinder = {
    .name = "pathfinder",
    .help = "are the two disks on one dashed contour? 32x32 snake images (LRA hard set; "
            "generated, or read from LRA's release layout; 2 classes)",
    .classes = 2,
    .vocab = 257,
    .docs = 1,
    .build = pathfinder_build,
    .generate_cli = pathfinder_generate,
};

const lra_task lra_task_pathx = {
    .name = "pathx",
    .help = "Path-X: Pathfinder at 128x128 (16,384 tokens; generated or read from LRA's "
            "release layout; 2 classes)",
    .classes = 2,
    .vocab = 257,
    .docs = 1,
    .build = pathx_build,
    .generate_cli = pathx_generate,
};
