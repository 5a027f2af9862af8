/* pathfinder_internal.h — what the files of the Pathfinder / Path-X task share and nothing
 * outside tasks/pathfinder*.c sees: the Lanczos resampler, the precomputed paddle stamps and
 * the generator's layout, the path helper of the release layout, and the release reader.
 *
 * The task is split by concern (the algorithm is described at the top of pathfinder.c):
 *   pathfinder.c               the pathfinder and pathx tasks, and `lra data generate`
 *   pathfinder_params.c        generator parameters: LRA's presets, parsing, checking
 *   pathfinder_lanczos.c       PIL-compatible Lanczos downsampling
 *   pathfinder_stamps.c        paddle stamps computed once per generator (lra_pf_gen_new)
 *   pathfinder_render.c        drawing one image: snakes, distractors, markers (lra_pf_render)
 *   pathfinder_codec.c         8-bit grey PNG in memory and the metadata lines
 *   pathfinder_release_write.c writing LRA's release layout (lra_pf_write_release)
 *   pathfinder_release_read.c  reading LRA's release layout from a directory or archive
 */
#ifndef LRA_PATHFINDER_INTERNAL_H
#define LRA_PATHFINDER_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pathfinder_draw.h"

#define PF_PI 3.14159265358979323846

/* ==== PIL-compatible Lanczos resampling (pathfinder_lanczos.c) ============================ */

typedef struct pf_coeffs {
    int out, ksize;
    int *xmin, *n;
    int32_t *w; /* (out, ksize) */
} pf_coeffs;

/* Weights for resampling `in` pixels to `out` along one axis. */
void pf_coeffs_init(pf_coeffs *c, int in, int out);
void pf_coeffs_free(pf_coeffs *c);

/* A patch of a larger, otherwise black, 8-bit image: rows [y0, y0 + h), columns [x0, x0 + w). */
typedef struct pf_patch {
    const uint8_t *px;
    int y0, x0, h, w;
} pf_patch;

/* Resamples output rows [oy0, oy1) x columns [ox0, ox1) of the whole image described by cx, cy
 * into dst (row stride ds). tmp holds src.h * (ox1 - ox0) bytes. */
void pf_resample(const pf_patch *src, const pf_coeffs *cx, const pf_coeffs *cy, int oy0,
                 int oy1, int ox0, int ox1, uint8_t *dst, int ds, uint8_t *tmp);

/* ==== Paddle stamps and the generator (pathfinder_stamps.c) =============================== */

/* snakes.translate_coord: move by d along theta, rounding each coordinate up. */
void pf_translate(const int in[2], double theta, double d, int out[2]);

/* snakes.flip_by_pi */
double pf_flip(double theta);

/* A downsampled paddle and its occupancy mask, centred on the paddle's start point. */
typedef struct pf_stamp {
    uint8_t *ink, *mask; /* (side, side), 0-255 */
    int r0, r1, c0, c1;  /* bounding box (inclusive) of the non-zero pixels of either */
} pf_stamp;

/* Everything that depends on the paddle margin (Path-X draws it per image from [2, 3]). */
typedef struct pf_geom {
    int margin, R, side;           /* stamp half-size R = L + ceil(t) + m, side = 2R + 1 */
    pf_stamp seed[360];            /* first paddles, orientation (deg + 180) degrees */
    int *kern[360], n_kern[360];   /* seed-dilation kernels: (dr, dc) pairs ... */
    int kbox[360][4];              /* ... and their bounding boxes dr0, dr1, dc0, dc1 */
    int n_cand;                    /* head offsets on the circle of radius L + m */
    int (*cand)[2];
    double *cand_theta;            /* direction of each offset from the pivot */
    pf_stamp *cand_stamp;          /* paddle drawn from the head back to the pivot */
    int (*disk)[2], n_disk;        /* disk of radius m: the small dilation struct */
    uint8_t *base_mask, *base_dmask; /* padding border, and its dilation by the disk */
} pf_geom;

struct lra_pf_gen {
    lra_pf_params p;
    pf_geom geom[LRA_PF_MAX_LIST];
    pf_coeffs marker_cx;           /* size * a -> size, for the markers */
    int marker_reach;              /* output pixels a marker can touch around its centre */
};

/* ==== The release layout ================================================================== */

/* snprintf for paths: vsnprintf so that long-path truncation is checked at run time. */
static inline int pf_path(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int pf_path(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* Reads a release directory or archive: pixels and labels in metadata order
 * (pathfinder_release_read.c). */
int pf_load_release(const char *input, int size, int difficulty, uint8_t **pixels,
                    int32_t **labels, long *n, char *err, size_t errlen);

#endif
