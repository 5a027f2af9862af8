/* pathfinder_draw.h — the Pathfinder / Path-X snake generator and the codecs of LRA's release
 * layout (8-bit grey PNG, text metadata lines): the internals of the Pathfinder task
 * (tasks/pathfinder*.c; which file holds what: pathfinder_internal.h) that its test and its fuzz
 * harness exercise directly.
 *
 * The generator follows drewlinsley/pathfinder (snakes2.py, snakes.py) step by step; see the
 * comment at the top of pathfinder.c and /work/shared/reference/lra-tasks.md §6.4. Every random
 * draw comes from lra_rng.h keyed by (seed, image index), so an image is a pure function of the
 * parameters, the seed and its index, whatever the thread count.
 */
#ifndef LRA_PATHFINDER_DRAW_H
#define LRA_PATHFINDER_DRAW_H

#include <stddef.h>
#include <stdint.h>

#define LRA_PF_MAX_LIST 4

/* Generator parameters, named as in snakes2_wrapper.py's Args. */
typedef struct lra_pf_params {
    int size;                 /* window side: 32, 64, 128, 256 */
    int padding;              /* blocked border rows/columns for the first target seed */
    int antialias;            /* antialias_scale: paddles are drawn this much larger */
    int contour_length;       /* paddles per target snake (6, 9, 14) */
    int paddle_length;        /* L */
    double paddle_thickness;  /* t; t * antialias must be an integer */
    int margins[LRA_PF_MAX_LIST], n_margins;  /* paddle_margin_list: one drawn per image */
    double continuity;        /* larger = straighter snakes */
    int distractor_length;    /* paddles per distractor snake */
    int num_distractors;      /* num_distractor_snakes; 0 = none */
    double marker_radius;
    int seed_distance;        /* distance between the two target snakes' starts */
    double snake_contrasts[LRA_PF_MAX_LIST], paddle_contrasts[LRA_PF_MAX_LIST];
    int n_snake_contrasts, n_paddle_contrasts;
    int single_paddles;       /* use_single_paddles: add one-paddle distractors */
    int max_distractor_retrial;
    int max_paddle_retrial;
    int max_target_attempts;  /* cap on two-target-snake attempts (Python: unbounded) */
    int rescale;              /* per-image min-max rescale to 0-255 when saving (imsave) */
} lra_pf_params;

enum { LRA_PF_BASELINE, LRA_PF_INTERMEDIATE, LRA_PF_HARD };
extern const char *const lra_pf_difficulty_names[3]; /* "baseline", ... */
extern const char *const lra_pf_difficulty_dirs[3];  /* "curv_baseline", ... */

/* LRA's parameters for a resolution (32, 64, 128, 256) and difficulty. Returns -1 for an
 * unsupported resolution. */
int lra_pf_defaults(lra_pf_params *p, int size, int difficulty);

/* Checks a parameter set; returns 0 or -1 with a message naming the parameter. */
int lra_pf_check(const lra_pf_params *p, char *err, size_t errlen);

/* All parameters as "name=value ..." text (for provenance and the release's parameter file). */
void lra_pf_describe(const lra_pf_params *p, char *buf, size_t n);

/* Sets one parameter from text by its name; returns 1 if the name is a parameter, 0 if not,
 * -1 with a message for a bad value. */
int lra_pf_set(lra_pf_params *p, const char *name, const char *value, char *err,
               size_t errlen);
/* The parameter names, NULL-terminated. */
extern const char *const lra_pf_param_names[];

/* A generator: parameters plus precomputed paddle stamps. Read-only once made, so threads
 * share it. */
typedef struct lra_pf_gen lra_pf_gen;
lra_pf_gen *lra_pf_gen_new(const lra_pf_params *p, char *err, size_t errlen);
void lra_pf_gen_free(lra_pf_gen *g);
const lra_pf_params *lra_pf_gen_params(const lra_pf_gen *g);

/* What the generator knows about one image, for tests and the metadata line. */
#define LRA_PF_MAX_PADDLES 64
typedef struct lra_pf_info {
    int label;                 /* 1: both markers on one target snake */
    int margin;                /* the paddle margin drawn for this image */
    int origin;                /* which target snake carries the first marker */
    int attempts;              /* two-target-snake attempts until success */
    int distractors;           /* distractor snakes actually drawn */
    int tips[2][2];            /* marker centres (row, col): origin tip, terminal tip */
    int n_paddles[2];          /* paddles of each target snake */
    int16_t paddles[2][LRA_PF_MAX_PADDLES][2]; /* each paddle's start point (row, col) */
} lra_pf_info;

/* Scratch memory for one thread. */
typedef struct lra_pf_scratch lra_pf_scratch;
lra_pf_scratch *lra_pf_scratch_new(const lra_pf_gen *g);
void lra_pf_scratch_free(lra_pf_scratch *s);

/* Renders image `index` of the stream `seed` into px (size * size bytes, row-major). Returns
 * 0, or -1 when max_target_attempts ran out (then px is all zero). info may be NULL. */
int lra_pf_render(const lra_pf_gen *g, lra_pf_scratch *s, uint64_t seed, uint64_t index,
                  uint8_t *px, lra_pf_info *info);

/* 8-bit grey PNG in memory. encode: *out is malloc'ed. decode: the image must be exactly
 * want_w x want_h (checked before any pixel is read); other bit depths and colour types are
 * converted to 8-bit grey. Both return 0 or -1 with a message naming the problem. */
int lra_pf_png_encode(const uint8_t *px, int w, int h, unsigned char **out, size_t *n,
                      char *err, size_t errlen);
int lra_pf_png_decode(const unsigned char *data, size_t n, int want_w, int want_h,
                      uint8_t *px, char *err, size_t errlen);

/* One metadata line: "imgs/<batch> sample_<i>.png <i> <label> <continuity> ..." (§6.1).
 * Fields 0 (sub-path), 1 (file name) and 3 (label 0/1) are required, as in LRA's loader. */
typedef struct lra_pf_meta {
    char subpath[128];
    char file[128];
    int label;
    int n_fields;
} lra_pf_meta;
/* Returns 0, or -1 with a message naming the field ("field 3 (label): ..."). */
int lra_pf_meta_parse(const char *line, size_t len, lra_pf_meta *m, char *err, size_t errlen);
/* Writes the 11-field line of image `i` of a batch (no newline). */
int lra_pf_meta_format(char *buf, size_t n, const lra_pf_params *p, int batch, int i,
                       const lra_pf_info *info);

/* Writes LRA's release layout under dir: imgs/<batch>/sample_<i>.png, metadata/<batch>.npy
 * and lra_pathfinder_params.txt. Each batch is written under a temporary name and renamed, and
 * its metadata file last, so a metadata file always describes a complete batch; batches whose
 * metadata file exists are kept (resume). threads <= 0: OpenMP's default. */
int lra_pf_write_release(const lra_pf_gen *g, const char *dir, long n, uint64_t seed,
                         int batch_size, int threads, int quiet, char *err, size_t errlen);

#endif
