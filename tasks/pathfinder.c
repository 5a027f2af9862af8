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
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lra_rng.h"
#include "pathfinder_draw.h"
#include "source.h"
#include "task.h"
#include "util.h"

#define PF_PI 3.14159265358979323846

/* ==== Parameters ========================================================================== */

const char *const lra_pf_difficulty_names[3] = {"baseline", "intermediate", "hard"};
const char *const lra_pf_difficulty_dirs[3] = {"curv_baseline", "curv_contour_length_9",
                                               "curv_contour_length_14"};
static const int pf_contour_lengths[3] = {6, 9, 14};

/* Per-resolution values from lra_benchmarks/data/pathfinder.py; what it leaves unset comes from
 * snakes2_wrapper.py's Args (padding 22, seed_distance 27, paddle_length 5, paddle contrast 1).
 * distractor_total / distractor_length gives the number of distractor snakes (Python 2 integer
 * division). */
typedef struct pf_preset {
    int size, padding, seed_distance, paddle_length, distractor_total;
    double thickness, marker_radius, continuity, snake_contrast, paddle_contrast;
    int margins[2], n_margins;
} pf_preset;

static const pf_preset pf_presets[] = {
    {32, 1, 7, 2, 20, 0.5, 1.5, 1.0, 2.0, 0.75, {1, 0}, 1},
    {64, 1, 12, 5, 22, 1.0, 2.5, 1.8, 0.8, 1.0, {1, 0}, 1},
    {128, 1, 20, 5, 35, 1.5, 3.0, 1.8, 0.9, 1.0, {2, 3}, 2},
    {256, 22, 27, 5, 30, 2.0, 5.0, 1.8, 1.0, 1.0, {3, 0}, 1},
};

int lra_pf_defaults(lra_pf_params *p, int size, int difficulty)
{
    const pf_preset *ps = NULL;
    for (size_t i = 0; i < sizeof pf_presets / sizeof pf_presets[0]; i++)
        if (pf_presets[i].size == size) ps = &pf_presets[i];
    if (!ps || difficulty < 0 || difficulty > 2) return -1;
    memset(p, 0, sizeof *p);
    p->size = size;
    p->padding = ps->padding;
    p->antialias = 2; /* the docstrings set 4 then 2; the later value wins */
    p->contour_length = pf_contour_lengths[difficulty];
    p->paddle_length = ps->paddle_length;
    p->paddle_thickness = ps->thickness;
    memcpy(p->margins, ps->margins, sizeof p->margins);
    p->n_margins = ps->n_margins;
    p->continuity = ps->continuity;
    p->distractor_length = p->contour_length / 3;
    p->num_distractors = ps->distractor_total / p->distractor_length;
    p->marker_radius = ps->marker_radius;
    p->seed_distance = ps->seed_distance;
    p->snake_contrasts[0] = ps->snake_contrast;
    p->n_snake_contrasts = 1;
    p->paddle_contrasts[0] = ps->paddle_contrast;
    p->n_paddle_contrasts = 1;
    p->single_paddles = 0; /* the wrapper's setting; LRA's choice is unknown (§6.3) */
    p->max_distractor_retrial = 4;
    p->max_paddle_retrial = 2;
    p->max_target_attempts = 100000;
    p->rescale = 1;
    return 0;
}

/* One table drives parsing, checking and describing the parameters. */
enum { PT_INT, PT_DOUBLE, PT_INTS, PT_DOUBLES };
typedef struct pf_field {
    const char *name;
    int type;
    size_t off, count_off; /* count_off: list length, for the list types */
    double lo, hi;
} pf_field;

#define PF_OFF(f) offsetof(lra_pf_params, f)
static const pf_field pf_fields[] = {
    {"resolution", PT_INT, PF_OFF(size), 0, 32, 256},
    {"padding", PT_INT, PF_OFF(padding), 0, 1, 64},
    {"antialias_scale", PT_INT, PF_OFF(antialias), 0, 1, 8},
    {"contour_length", PT_INT, PF_OFF(contour_length), 0, 1, LRA_PF_MAX_PADDLES},
    {"paddle_length", PT_INT, PF_OFF(paddle_length), 0, 1, 32},
    {"paddle_thickness", PT_DOUBLE, PF_OFF(paddle_thickness), 0, 0.125, 8},
    {"paddle_margin", PT_INTS, PF_OFF(margins), PF_OFF(n_margins), 1, 16},
    {"continuity", PT_DOUBLE, PF_OFF(continuity), 0, 0.01, 100},
    {"distractor_length", PT_INT, PF_OFF(distractor_length), 0, 1, 64},
    {"num_distractors", PT_INT, PF_OFF(num_distractors), 0, 0, 1000},
    {"marker_radius", PT_DOUBLE, PF_OFF(marker_radius), 0, 0.5, 32},
    {"seed_distance", PT_INT, PF_OFF(seed_distance), 0, 1, 128},
    {"snake_contrast", PT_DOUBLES, PF_OFF(snake_contrasts), PF_OFF(n_snake_contrasts), 0.01, 10},
    {"paddle_contrast", PT_DOUBLES, PF_OFF(paddle_contrasts), PF_OFF(n_paddle_contrasts), 0.01,
     10},
    {"single_paddles", PT_INT, PF_OFF(single_paddles), 0, 0, 1},
    {"max_distractor_retrial", PT_INT, PF_OFF(max_distractor_retrial), 0, 0, 100},
    {"max_paddle_retrial", PT_INT, PF_OFF(max_paddle_retrial), 0, 0, 100},
    {"max_target_attempts", PT_INT, PF_OFF(max_target_attempts), 0, 1, 100000000},
    {"rescale", PT_INT, PF_OFF(rescale), 0, 0, 1},
};
#define PF_N_FIELDS (sizeof pf_fields / sizeof pf_fields[0])

const char *const lra_pf_param_names[] = {
    "resolution", "padding", "antialias_scale", "contour_length", "paddle_length",
    "paddle_thickness", "paddle_margin", "continuity", "distractor_length", "num_distractors",
    "marker_radius", "seed_distance", "snake_contrast", "paddle_contrast", "single_paddles",
    "max_distractor_retrial", "max_paddle_retrial", "max_target_attempts", "rescale", NULL,
};

static int parse_number(const char *s, const char **end, int integer, double *out)
{
    char *e = NULL;
    errno = 0;
    *out = integer ? (double)strtol(s, &e, 10) : strtod(s, &e);
    *end = e;
    return e == s || errno != 0 || !isfinite(*out) ? -1 : 0;
}

int lra_pf_set(lra_pf_params *p, const char *name, const char *value, char *err,
               size_t errlen)
{
    const pf_field *f = NULL;
    for (size_t i = 0; i < PF_N_FIELDS; i++)
        if (strcmp(pf_fields[i].name, name) == 0) f = &pf_fields[i];
    if (!f) return 0;
    int list = f->type == PT_INTS || f->type == PT_DOUBLES;
    int integer = f->type == PT_INT || f->type == PT_INTS;
    double v[LRA_PF_MAX_LIST];
    int n = 0;
    const char *s = value, *end = s;
    for (;;) {
        if (n == (list ? LRA_PF_MAX_LIST : 1) || parse_number(s, &end, integer, &v[n]) != 0 ||
            v[n] < f->lo || v[n] > f->hi)
            break;
        n++;
        if (*end != ',' || !list) break;
        s = end + 1;
    }
    if (n == 0 || *end) {
        snprintf(err, errlen, "pathfinder parameter %s wants %s in [%g, %g]%s, got '%s'", name,
                 integer ? "an integer" : "a number", f->lo, f->hi,
                 list ? " (a comma-separated list of up to 4)" : "", value);
        return -1;
    }
    char *base = (char *)p + f->off;
    for (int i = 0; i < n; i++) {
        if (integer) ((int *)base)[i] = (int)v[i];
        else ((double *)base)[i] = v[i];
    }
    if (list) *(int *)((char *)p + f->count_off) = n;
    return 1;
}

void lra_pf_describe(const lra_pf_params *p, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < PF_N_FIELDS && off < n; i++) {
        const pf_field *f = &pf_fields[i];
        const char *base = (const char *)p + f->off;
        int count = f->count_off ? *(const int *)((const char *)p + f->count_off) : 1;
        off += (size_t)snprintf(buf + off, n - off, "%s%s=", i ? " " : "", f->name);
        for (int k = 0; k < count && off < n; k++) {
            if (f->type == PT_INT || f->type == PT_INTS)
                off += (size_t)snprintf(buf + off, n - off, "%s%d", k ? "," : "",
                                        ((const int *)base)[k]);
            else
                off += (size_t)snprintf(buf + off, n - off, "%s%g", k ? "," : "",
                                        ((const double *)base)[k]);
        }
    }
}

int lra_pf_check(const lra_pf_params *p, char *err, size_t errlen)
{
    double ta = p->paddle_thickness * p->antialias;
    if (fabs(ta - round(ta)) > 1e-9 || round(ta) < 1) {
        /* snakes.draw_line_n_mask raises "thickness does not break even" */
        snprintf(err, errlen, "pathfinder: paddle_thickness x antialias_scale must be a "
                 "positive integer (got %g x %d)", p->paddle_thickness, p->antialias);
        return -1;
    }
    if (p->size != 32 && p->size != 64 && p->size != 128 && p->size != 256) {
        snprintf(err, errlen, "pathfinder: resolution must be 32, 64, 128 or 256 (got %d)",
                 p->size);
        return -1;
    }
    if (2 * p->padding >= p->size) {
        snprintf(err, errlen, "pathfinder: padding %d leaves no room in a %dx%d image",
                 p->padding, p->size, p->size);
        return -1;
    }
    return 0;
}

/* ==== Random numbers ====================================================================== */

typedef struct pf_rng {
    uint64_t key, ctr;
} pf_rng;

static uint32_t rng_below(pf_rng *r, uint32_t n) { return lra_below(r->key, r->ctr++, n); }

static double rng_unit(pf_rng *r)
{
    return (double)(lra_bits(r->key, r->ctr++) >> 11) * (1.0 / 9007199254740992.0);
}

/* ==== PIL-compatible Lanczos resampling ================================================== */

/* Pillow's Resample.c: lanczos (a = 3) weights per output pixel, normalised, then converted to
 * 22-bit fixed point; the image is resized horizontally then vertically with 8-bit rounding
 * and clipping in between. The clipping of the negative lobes is what leaves the faint halo
 * (values 1-8) around every paddle of the released images. */
enum { PF_PRECISION = 22 };

typedef struct pf_coeffs {
    int out, ksize;
    int *xmin, *n;
    int32_t *w; /* (out, ksize) */
} pf_coeffs;

static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x *= PF_PI;
    return sin(x) / x;
}

static double lanczos3(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0; }

static void coeffs_init(pf_coeffs *c, int in, int out)
{
    double scale = (double)in / out, fscale = scale < 1.0 ? 1.0 : scale;
    double support = 3.0 * fscale;
    c->out = out;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->xmin = lra_alloc((size_t)out * sizeof(int), "lanczos bounds");
    c->n = lra_alloc((size_t)out * sizeof(int), "lanczos bounds");
    c->w = lra_alloc((size_t)out * (size_t)c->ksize * sizeof(int32_t), "lanczos weights");
    double *k = lra_alloc((size_t)c->ksize * sizeof(double), "lanczos scratch");
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale, total = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in) xmax = in;
        int n = xmax - xmin;
        for (int x = 0; x < n; x++) total += k[x] = lanczos3((x + xmin - center + 0.5) / fscale);
        for (int x = 0; x < n; x++) {
            double w = total != 0.0 ? k[x] / total : k[x];
            c->w[(size_t)o * c->ksize + x] =
                (int32_t)(w < 0 ? -0.5 + w * (1 << PF_PRECISION) : 0.5 + w * (1 << PF_PRECISION));
        }
        c->xmin[o] = xmin;
        c->n[o] = n;
    }
    lra_free(k);
}

static void coeffs_free(pf_coeffs *c)
{
    lra_free(c->xmin);
    lra_free(c->n);
    lra_free(c->w);
}

static uint8_t clip8(int64_t acc)
{
    acc >>= PF_PRECISION;
    return acc < 0 ? 0 : acc > 255 ? 255 : (uint8_t)acc;
}

/* A patch of a larger, otherwise black, 8-bit image: rows [y0, y0 + h), columns [x0, x0 + w). */
typedef struct pf_patch {
    const uint8_t *px;
    int y0, x0, h, w;
} pf_patch;

/* Resamples output rows [oy0, oy1) x columns [ox0, ox1) of the whole image described by cx, cy
 * into dst (row stride ds). tmp holds src.h * (ox1 - ox0) bytes. */
static void resample(const pf_patch *src, const pf_coeffs *cx, const pf_coeffs *cy, int oy0,
                     int oy1, int ox0, int ox1, uint8_t *dst, int ds, uint8_t *tmp)
{
    int ow = ox1 - ox0;
    for (int y = 0; y < src->h; y++)
        for (int o = ox0; o < ox1; o++) {
            const int32_t *w = cx->w + (size_t)o * cx->ksize;
            int64_t acc = 1 << (PF_PRECISION - 1);
            for (int k = 0; k < cx->n[o]; k++) {
                int x = cx->xmin[o] + k - src->x0;
                if (x >= 0 && x < src->w) acc += (int64_t)src->px[(size_t)y * src->w + x] * w[k];
            }
            tmp[(size_t)y * ow + (o - ox0)] = clip8(acc);
        }
    for (int o = oy0; o < oy1; o++)
        for (int xo = 0; xo < ow; xo++) {
            const int32_t *w = cy->w + (size_t)o * cy->ksize;
            int64_t acc = 1 << (PF_PRECISION - 1);
            for (int k = 0; k < cy->n[o]; k++) {
                int y = cy->xmin[o] + k - src->y0;
                if (y >= 0 && y < src->h) acc += (int64_t)tmp[(size_t)y * ow + xo] * w[k];
            }
            dst[(size_t)(o - oy0) * ds + xo] = clip8(acc);
        }
}

/* ==== Paddle stamps ======================================================================= */

/* snakes.translate_coord: move by d along theta, rounding each coordinate up. */
static void translate(const int in[2], double theta, double d, int out[2])
{
    out[0] = (int)ceil(in[0] + d * sin(theta));
    out[1] = (int)ceil(in[1] + d * cos(theta));
}

/* snakes.flip_by_pi */
static double flip(double theta) { return theta < 0 ? theta + PF_PI : theta - PF_PI; }

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

/* PIL ImageDraw.line on a black canvas: Bresenham for width 1, else the pixels whose centres lie
 * in the width x length rectangle along the segment (PIL fills that polygon). */
static void draw_line(uint8_t *img, int side, int r0, int c0, int r1, int c1, int width)
{
    if (width <= 1) {
        int dr = abs(r1 - r0), dc = abs(c1 - c0), sr = r0 < r1 ? 1 : -1, sc = c0 < c1 ? 1 : -1;
        int e = dc - dr;
        for (;;) {
            if (r0 >= 0 && r0 < side && c0 >= 0 && c0 < side) img[r0 * side + c0] = 255;
            if (r0 == r1 && c0 == c1) break;
            int e2 = 2 * e;
            if (e2 > -dr) e -= dr, c0 += sc;
            if (e2 < dc) e += dc, r0 += sr;
        }
        return;
    }
    double len = hypot(r1 - r0, c1 - c0), ur = len > 0 ? (r1 - r0) / len : 0;
    double uc = len > 0 ? (c1 - c0) / len : 1;
    double lo = -ceil((width - 1) / 2.0) - 0.5, hi = floor((width - 1) / 2.0) + 0.5;
    for (int r = 0; r < side; r++)
        for (int c = 0; c < side; c++) {
            double along = (r - r0) * ur + (c - c0) * uc, across = (c - c0) * ur - (r - r0) * uc;
            if (along >= -0.5 && along < len + 0.5 && across >= lo && across < hi)
                img[r * side + c] = 255;
        }
}

/* cv2.dilate with a disk of radius rad (generate_dilation_struct) on a 0/255 image. */
static void dilate_disk(const uint8_t *in, uint8_t *out, int side, int rad)
{
    memset(out, 0, (size_t)side * side);
    for (int r = 0; r < side; r++)
        for (int c = 0; c < side; c++) {
            if (!in[r * side + c]) continue;
            for (int dr = -rad; dr <= rad; dr++)
                for (int dc = -rad; dc <= rad; dc++)
                    if (dr * dr + dc * dc <= rad * rad && r + dr >= 0 && r + dr < side &&
                        c + dc >= 0 && c + dc < side)
                        out[(r + dr) * side + c + dc] = 255;
        }
}

typedef struct pf_stamp_work {
    pf_coeffs coeffs;        /* blown side -> side */
    uint8_t *blown, *dilated, *tmp;
    int blown_side;
} pf_stamp_work;

/* snakes.draw_line_n_mask for one orientation, before placement. */
static void make_stamp(const lra_pf_params *p, const pf_geom *g, pf_stamp_work *w, double theta,
                       pf_stamp *st)
{
    int a = p->antialias, S = w->blown_side, c = g->R * a;
    int centre[2] = {c, c}, head[2];
    translate(centre, theta, (double)p->paddle_length * a, head);
    memset(w->blown, 0, (size_t)S * S);
    draw_line(w->blown, S, c, c, head[0], head[1], (int)round(p->paddle_thickness * a));
    dilate_disk(w->blown, w->dilated, S, g->margin * a);
    size_t n = (size_t)g->side * g->side;
    st->ink = lra_alloc(2 * n, "paddle stamp");
    st->mask = st->ink + n;
    pf_patch line = {w->blown, 0, 0, S, S}, dil = {w->dilated, 0, 0, S, S};
    resample(&line, &w->coeffs, &w->coeffs, 0, g->side, 0, g->side, st->ink, g->side, w->tmp);
    resample(&dil, &w->coeffs, &w->coeffs, 0, g->side, 0, g->side, st->mask, g->side, w->tmp);
    st->r0 = st->c0 = g->side;
    st->r1 = st->c1 = -1;
    for (int r = 0; r < g->side; r++)
        for (int k = 0; k < g->side; k++)
            if (st->ink[r * g->side + k] || st->mask[r * g->side + k]) {
                if (r < st->r0) st->r0 = r;
                if (r > st->r1) st->r1 = r;
                if (k < st->c0) st->c0 = k;
                if (k > st->c1) st->c1 = k;
            }
}

/* The dilation struct of seed_snake: the stamp's fully saturated mask pixels, placed in a grid
 * of side 2(L+m)+1 with the start point at (L+m+1, L+m+1) while cv2 anchors the kernel at the
 * grid centre (L+m, L+m). Both quirks shift the kernel by one pixel; kept for fidelity. */
static void make_kernel(const lra_pf_params *p, pf_geom *g, int k)
{
    const pf_stamp *st = &g->seed[k];
    int half = p->paddle_length + g->margin, n = 0;
    g->kern[k] = lra_alloc((size_t)g->side * g->side * 2 * sizeof(int), "seed kernel");
    int *box = g->kbox[k];
    box[0] = box[2] = INT_MAX;
    box[1] = box[3] = INT_MIN;
    for (int i = 0; i < g->side; i++)
        for (int j = 0; j < g->side; j++) {
            int dr = i - g->R + 1, dc = j - g->R + 1;
            if (st->mask[i * g->side + j] != 255 || abs(dr) > half || abs(dc) > half) continue;
            g->kern[k][2 * n] = dr;
            g->kern[k][2 * n++ + 1] = dc;
            if (dr < box[0]) box[0] = dr;
            if (dr > box[1]) box[1] = dr;
            if (dc < box[2]) box[2] = dc;
            if (dc > box[3]) box[3] = dc;
        }
    if (n == 0) { /* cannot happen for sane parameters; behave as a one-pixel kernel */
        g->kern[k][0] = g->kern[k][1] = 0;
        n = 1;
        box[0] = box[1] = box[2] = box[3] = 0;
    }
    g->n_kern[k] = n;
}

static int cmp_offset(const void *a, const void *b)
{
    const int *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

/* snakes.get_coords_cmf's candidates: samples every 360 / (2 pi r) degrees on the circle of
 * radius r = L + m around an integer pivot, truncated to pixels. Truncation of pivot + f equals
 * pivot + floor(f) (out-of-image points are removed anyway), so the offsets, and their
 * np.unique order (by row, then column), are the same for every pivot. */
static void make_candidates(pf_geom *g, int r)
{
    double step = 360.0 / (2.0 * r * PF_PI);
    int n = (int)ceil(360.0 / step);
    int (*off)[2] = lra_alloc((size_t)n * sizeof *off, "candidates");
    for (int i = 0; i < n; i++) {
        double rad = (i * step) * PF_PI / 180.0;
        off[i][0] = (int)floor(r * sin(rad));
        off[i][1] = (int)floor(r * cos(rad));
    }
    qsort(off, (size_t)n, sizeof *off, cmp_offset);
    int u = 0;
    for (int i = 0; i < n; i++)
        if (u == 0 || cmp_offset(off[u - 1], off[i]) != 0) memcpy(off[u++], off[i], sizeof *off);
    g->cand = off;
    g->n_cand = u;
    g->cand_theta = lra_alloc((size_t)u * sizeof(double), "candidate angles");
    for (int i = 0; i < u; i++) g->cand_theta[i] = atan2(off[i][0], off[i][1]);
}

static void make_base(const lra_pf_params *p, pf_geom *g)
{
    int N = p->size, pad = p->padding;
    g->base_mask = lra_alloc((size_t)N * N, "base mask");
    g->base_dmask = lra_alloc((size_t)N * N, "base mask");
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++)
            if (r < pad || r >= N - pad || c < pad || c >= N - pad) g->base_mask[r * N + c] = 255;
    dilate_disk(g->base_mask, g->base_dmask, N, g->margin);
}

static void make_geom(const lra_pf_params *p, pf_geom *g, int margin)
{
    int a = p->antialias;
    g->margin = margin;
    g->R = p->paddle_length + (int)ceil(p->paddle_thickness) + margin;
    g->side = 2 * g->R + 1;
    pf_stamp_work w;
    w.blown_side = 2 * g->R * a + 1;
    coeffs_init(&w.coeffs, w.blown_side, g->side);
    w.blown = lra_alloc((size_t)w.blown_side * w.blown_side, "blown paddle");
    w.dilated = lra_alloc((size_t)w.blown_side * w.blown_side, "blown paddle");
    w.tmp = lra_alloc((size_t)w.blown_side * g->side, "resample scratch");
    for (int k = 0; k < 360; k++) {
        make_stamp(p, g, &w, (k - 180) * PF_PI / 180.0, &g->seed[k]);
        make_kernel(p, g, k);
    }
    make_candidates(g, p->paddle_length + margin);
    g->cand_stamp = lra_alloc((size_t)g->n_cand * sizeof(pf_stamp), "candidate stamps");
    for (int i = 0; i < g->n_cand; i++)
        make_stamp(p, g, &w, flip(g->cand_theta[i]), &g->cand_stamp[i]);
    g->disk = lra_alloc((size_t)(2 * margin + 1) * (2 * margin + 1) * sizeof *g->disk, "disk");
    for (int dr = -margin; dr <= margin; dr++)
        for (int dc = -margin; dc <= margin; dc++)
            if (dr * dr + dc * dc <= margin * margin) {
                g->disk[g->n_disk][0] = dr;
                g->disk[g->n_disk++][1] = dc;
            }
    make_base(p, g);
    coeffs_free(&w.coeffs);
    lra_free(w.blown);
    lra_free(w.dilated);
    lra_free(w.tmp);
}

static void free_geom(pf_geom *g)
{
    for (int k = 0; k < 360; k++) {
        lra_free(g->seed[k].ink);
        lra_free(g->kern[k]);
    }
    for (int i = 0; i < g->n_cand; i++) lra_free(g->cand_stamp[i].ink);
    lra_free(g->cand_stamp);
    lra_free(g->cand);
    lra_free(g->cand_theta);
    lra_free(g->disk);
    lra_free(g->base_mask);
    lra_free(g->base_dmask);
}

lra_pf_gen *lra_pf_gen_new(const lra_pf_params *p, char *err, size_t errlen)
{
    if (lra_pf_check(p, err, errlen) != 0) return NULL;
    lra_pf_gen *g = lra_alloc(sizeof *g, "pathfinder generator");
    g->p = *p;
    for (int i = 0; i < p->n_margins; i++) make_geom(p, &g->geom[i], p->margins[i]);
    coeffs_init(&g->marker_cx, p->size * p->antialias, p->size);
    g->marker_reach = (int)ceil(p->marker_radius) + 4; /* radius plus the 3-pixel support */
    return g;
}

void lra_pf_gen_free(lra_pf_gen *g)
{
    if (!g) return;
    for (int i = 0; i < g->p.n_margins; i++) free_geom(&g->geom[i]);
    coeffs_free(&g->marker_cx);
    lra_free(g);
}

const lra_pf_params *lra_pf_gen_params(const lra_pf_gen *g) { return &g->p; }

/* ==== One image =========================================================================== */

/* Occupancy values are k/255 in the Python; here they are the bytes k. */
enum { PF_FIT_LIMIT = 459,   /* max(mask + paddle mask) < 1.8 = 459 / 255 */
       PF_FREE_LIMIT = 76 }; /* ceil(mask - 0.3) == 0, i.e. mask <= 0.3 */

struct lra_pf_scratch {
    uint8_t *mask, *dmask;         /* occupancy and its dilation by the margin disk */
    uint8_t *saved, *blocked;      /* undo copy of both; seed-blocked map */
    double *ink;
    int *free_px;                  /* free seed pixels, row-major */
    double *pmf;
    int *pmf_idx;
    uint8_t *patch, *patch_tmp, *marker; /* marker rendering at antialias scale */
};

lra_pf_scratch *lra_pf_scratch_new(const lra_pf_gen *g)
{
    size_t n = (size_t)g->p.size * g->p.size;
    int max_cand = 0;
    for (int i = 0; i < g->p.n_margins; i++)
        if (g->geom[i].n_cand > max_cand) max_cand = g->geom[i].n_cand;
    int box = 2 * g->marker_reach + 1, span = (box + 8) * g->p.antialias + 2;
    lra_pf_scratch *s = lra_alloc(sizeof *s, "pathfinder scratch");
    s->mask = lra_alloc(n, "occupancy");
    s->dmask = lra_alloc(n, "occupancy");
    s->saved = lra_alloc(2 * n, "occupancy");
    s->blocked = lra_alloc(n, "occupancy");
    s->ink = lra_alloc(n * sizeof(double), "ink");
    s->free_px = lra_alloc(n * sizeof(int), "free pixels");
    s->pmf = lra_alloc((size_t)max_cand * sizeof(double), "candidates");
    s->pmf_idx = lra_alloc((size_t)max_cand * sizeof(int), "candidates");
    s->patch = lra_alloc((size_t)span * span, "marker");
    s->patch_tmp = lra_alloc((size_t)span * box, "marker");
    s->marker = lra_alloc((size_t)box * box, "marker");
    return s;
}

void lra_pf_scratch_free(lra_pf_scratch *s)
{
    if (!s) return;
    uint8_t *bytes[] = {s->mask, s->dmask, s->saved, s->blocked, s->patch, s->patch_tmp,
                        s->marker};
    for (size_t i = 0; i < sizeof bytes / sizeof bytes[0]; i++) lra_free(bytes[i]);
    lra_free(s->ink);
    lra_free(s->free_px);
    lra_free(s->pmf);
    lra_free(s->pmf_idx);
    lra_free(s);
}

typedef struct pf_paddle {
    const pf_stamp *st;
    int at[2];
    double contrast;
} pf_paddle;

typedef struct pf_snake {
    int pivot[2];
    double theta;
    pf_paddle paddles[LRA_PF_MAX_PADDLES]; /* the last one's mask joins the occupancy late */
    int n;
    int tip[2], end[2]; /* start of the first paddle, head of the last */
} pf_snake;

typedef struct pf_image {
    const lra_pf_params *p;
    const pf_geom *g;
    lra_pf_scratch *s;
    pf_rng rng;
    int N;
} pf_image;

static int inside(int N, const int pt[2])
{
    return pt[0] >= 0 && pt[0] < N && pt[1] >= 0 && pt[1] < N;
}

/* The stamp's rows/columns clipped to the image: image (r, c) = at - R + stamp (i, j). */
typedef struct pf_span {
    int i0, i1, j0, j1, dr, dc;
} pf_span;

static pf_span clip_stamp(const pf_image *im, const pf_stamp *st, const int at[2])
{
    pf_span s = {st->r0, st->r1, st->c0, st->c1, at[0] - im->g->R, at[1] - im->g->R};
    if (s.i0 + s.dr < 0) s.i0 = -s.dr;
    if (s.i1 + s.dr >= im->N) s.i1 = im->N - 1 - s.dr;
    if (s.j0 + s.dc < 0) s.j0 = -s.dc;
    if (s.j1 + s.dc >= im->N) s.j1 = im->N - 1 - s.dc;
    return s;
}

static int stamp_fits(const pf_image *im, const pf_stamp *st, const int at[2])
{
    pf_span s = clip_stamp(im, st, at);
    int side = im->g->side;
    for (int i = s.i0; i <= s.i1; i++) {
        const uint8_t *m = im->s->mask + (size_t)(i + s.dr) * im->N + s.dc;
        for (int j = s.j0; j <= s.j1; j++)
            if (m[j] + st->mask[i * side + j] >= PF_FIT_LIMIT) return 0;
    }
    return 1;
}

/* mask = max(mask, paddle mask), keeping dmask = mask dilated by the margin disk. */
static void stamp_occupy(const pf_image *im, const pf_paddle *pd)
{
    pf_span s = clip_stamp(im, pd->st, pd->at);
    const pf_geom *g = im->g;
    int N = im->N;
    for (int i = s.i0; i <= s.i1; i++)
        for (int j = s.j0; j <= s.j1; j++) {
            uint8_t v = pd->st->mask[i * g->side + j];
            int r = i + s.dr, c = j + s.dc;
            if (v <= im->s->mask[r * N + c]) continue;
            im->s->mask[r * N + c] = v;
            for (int k = 0; k < g->n_disk; k++) {
                int rr = r + g->disk[k][0], cc = c + g->disk[k][1];
                if (rr >= 0 && rr < N && cc >= 0 && cc < N && im->s->dmask[rr * N + cc] < v)
                    im->s->dmask[rr * N + cc] = v;
            }
        }
}

static void stamp_ink(const pf_image *im, const pf_paddle *pd)
{
    pf_span s = clip_stamp(im, pd->st, pd->at);
    double scale = pd->contrast / 255.0;
    for (int i = s.i0; i <= s.i1; i++)
        for (int j = s.j0; j <= s.j1; j++) {
            double v = pd->st->ink[i * im->g->side + j] * scale, *o;
            o = &im->s->ink[(size_t)(i + s.dr) * im->N + j + s.dc];
            if (v > *o) *o = v;
        }
}

static void snake_add(pf_snake *sn, const pf_stamp *st, const int at[2], double contrast)
{
    pf_paddle *pd = &sn->paddles[sn->n++];
    pd->st = st;
    pd->at[0] = at[0];
    pd->at[1] = at[1];
    pd->contrast = contrast;
    sn->end[0] = at[0];
    sn->end[1] = at[1];
}

/* The candidate weights of get_coords_cmf, normalised and accumulated; returns how many
 * candidates lie in the image, 0 for a dead end. */
static int candidate_cmf(const pf_image *im, const int pivot[2], double theta)
{
    const pf_geom *g = im->g;
    double total = 0.0, half_pi = PF_PI / 2;
    int n = 0;
    for (int i = 0; i < g->n_cand; i++) {
        int at[2] = {pivot[0] + g->cand[i][0], pivot[1] + g->cand[i][1]};
        if (!inside(im->N, at)) continue;
        double d = fabs(g->cand_theta[i] - theta);
        d = fmin(fmin(d, 2 * PF_PI - d) * im->p->continuity, half_pi);
        double w = fmax(cos(d), 0.0);
        w = w * w * (1.0 - im->s->dmask[at[0] * im->N + at[1]] / 255.0);
        im->s->pmf[n] = w;
        im->s->pmf_idx[n++] = i;
        total += w;
    }
    if (n == 0 || total < 1e-4) return 0;
    double acc = 0.0;
    for (int k = 0; k < n; k++) im->s->pmf[k] = acc += im->s->pmf[k] / total;
    return n;
}

/* snakes.extend_snake: one more paddle, or -1 (dead end, or every sample collided). */
static int extend(pf_image *im, pf_snake *sn, double contrast)
{
    const pf_geom *g = im->g;
    int pivot[2];
    translate(sn->pivot, sn->theta, im->p->paddle_length + 2.0 * g->margin, pivot);
    int n = candidate_cmf(im, pivot, sn->theta);
    if (n == 0) return -1;
    for (int trial = 0; trial <= im->p->max_paddle_retrial; trial++) {
        double u = rng_unit(&im->rng);
        int k = 0;
        while (k < n && im->s->pmf[k] - u <= 0) k++;
        int i = im->s->pmf_idx[k < n ? k : 0];
        int head[2] = {pivot[0] + g->cand[i][0], pivot[1] + g->cand[i][1]};
        if (!stamp_fits(im, &g->cand_stamp[i], head)) continue;
        stamp_occupy(im, &sn->paddles[sn->n - 1]);
        snake_add(sn, &g->cand_stamp[i], head, contrast);
        sn->pivot[0] = pivot[0];
        sn->pivot[1] = pivot[1];
        sn->theta = g->cand_theta[i];
        return 0;
    }
    return -1;
}

/* A first paddle from tail with orientation index k; -1 if its head or pivot leaves the
 * image (the Python's "missampled seed"). */
static int seed_at(pf_image *im, pf_snake *sn, int k, const int tail[2], double contrast)
{
    double theta = (k - 180) * PF_PI / 180.0;
    int head[2], pivot[2];
    translate(tail, theta, im->p->paddle_length, head);
    translate(head, flip(theta), im->p->paddle_length + im->g->margin, pivot);
    if (!inside(im->N, head) || !inside(im->N, pivot)) return -1;
    sn->n = 0;
    snake_add(sn, &im->g->seed[k], tail, contrast);
    sn->pivot[0] = pivot[0];
    sn->pivot[1] = pivot[1];
    sn->theta = theta;
    sn->tip[0] = tail[0];
    sn->tip[1] = tail[1];
    return 0;
}

/* First target snake: the free region is a rectangle (border band of max(padding,
 * 2 seed_distance)), so its dilation by the paddle kernel is the rectangle shrunk by the
 * kernel's bounding box; no per-pixel scan needed. */
static int seed_target_first(pf_image *im, pf_snake *sn, double contrast)
{
    int N = im->N, band = im->p->padding;
    if (2 * im->p->seed_distance > band) band = 2 * im->p->seed_distance;
    for (int trial = 0; trial <= im->p->max_paddle_retrial; trial++) {
        int k = (int)rng_below(&im->rng, 360);
        const int *kb = im->g->kbox[k];
        int r0 = band - kb[0], r1 = N - 1 - band - kb[1];
        int c0 = band - kb[2], c1 = N - 1 - band - kb[3];
        if (r0 < 0) r0 = 0;
        if (c0 < 0) c0 = 0;
        if (r1 > N - 1) r1 = N - 1;
        if (c1 > N - 1) c1 = N - 1;
        if (r1 < r0 || c1 < c0) return -1;
        uint32_t pick = rng_below(&im->rng, (uint32_t)((r1 - r0 + 1) * (c1 - c0 + 1)));
        int tail[2] = {r0 + (int)pick / (c1 - c0 + 1), c0 + (int)pick % (c1 - c0 + 1)};
        if (seed_at(im, sn, k, tail, contrast) == 0) return 0;
    }
    return -1;
}

/* Second target snake: starts seed_distance from the first, rounded half to even (np.round). */
static int seed_target_second(pf_image *im, const pf_snake *first, pf_snake *sn,
                              double contrast)
{
    double d = im->p->seed_distance;
    for (int trial = 0; trial <= im->p->max_paddle_retrial; trial++) {
        int k = (int)rng_below(&im->rng, 360);
        double rad = rng_below(&im->rng, 360) * PF_PI / 180.0;
        int tail[2] = {(int)rint(first->tip[0] + d * sin(rad)),
                       (int)rint(first->tip[1] + d * cos(rad))};
        if (seed_at(im, sn, k, tail, contrast) == 0) return 0;
    }
    return -1;
}

static double pick(pf_rng *r, const double *list, int n)
{
    return list[n > 1 ? rng_below(r, (uint32_t)n) : 0];
}

/* two_snakes: both target snakes, or -1. The snake contrasts are two entries drawn from the
 * snake contrast list repeated twice (shuffle, take two). */
static int two_snakes(pf_image *im, pf_snake sn[2])
{
    const lra_pf_params *p = im->p;
    size_t n = (size_t)im->N * im->N;
    memcpy(im->s->mask, im->g->base_mask, n);
    memcpy(im->s->dmask, im->g->base_dmask, n);
    int m = 2 * p->n_snake_contrasts, i = (int)rng_below(&im->rng, (uint32_t)m);
    int j = (int)rng_below(&im->rng, (uint32_t)m - 1);
    double sc[2] = {p->snake_contrasts[i / 2], p->snake_contrasts[(j + (j >= i)) / 2]};
    if (seed_target_first(im, &sn[0], pick(&im->rng, p->paddle_contrasts,
                                           p->n_paddle_contrasts) * sc[0]) != 0 ||
        seed_target_second(im, &sn[0], &sn[1], pick(&im->rng, p->paddle_contrasts,
                                                     p->n_paddle_contrasts) * sc[1]) != 0)
        return -1;
    for (int seg = 1; seg < p->contour_length; seg++) {
        double c = pick(&im->rng, p->paddle_contrasts, p->n_paddle_contrasts);
        for (int k = 0; k < 2; k++)
            if (extend(im, &sn[k], c * sc[k]) != 0) return -1;
    }
    /* two_snakes adds only the second snake's last paddle to the occupancy (faithful). */
    stamp_occupy(im, &sn[1].paddles[sn[1].n - 1]);
    return 0;
}

/* seed_snake for distractors: a uniformly drawn free pixel of the occupancy (plus a one-pixel
 * border) dilated by the paddle's kernel; -1 when less than 1% of the image is free. */
static int seed_distractor(pf_image *im, pf_snake *sn, double contrast)
{
    int N = im->N, n_free = 0;
    uint8_t *b = im->s->blocked;
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++) {
            int free = im->s->mask[r * N + c] <= PF_FREE_LIMIT;
            n_free += free;
            b[r * N + c] = !free || r == 0 || c == 0 || r == N - 1 || c == N - 1;
        }
    if (n_free < 0.01 * N * N) return -1; /* stop_with_availability = 0.01 */
    for (int trial = 0; trial <= im->p->max_paddle_retrial; trial++) {
        int k = (int)rng_below(&im->rng, 360), n = 0;
        const int *kern = im->g->kern[k];
        for (int r = 0; r < N; r++)
            for (int c = 0; c < N; c++) {
                int t = 0;
                for (; t < im->g->n_kern[k]; t++) {
                    int rr = r + kern[2 * t], cc = c + kern[2 * t + 1];
                    if (rr >= 0 && rr < N && cc >= 0 && cc < N && b[rr * N + cc]) break;
                }
                if (t == im->g->n_kern[k]) im->s->free_px[n++] = r * N + c;
            }
        if (n == 0) return -1;
        int at = im->s->free_px[rng_below(&im->rng, (uint32_t)n)];
        int tail[2] = {at / N, at % N};
        if (seed_at(im, sn, k, tail, contrast) == 0) return 0;
    }
    return -1;
}

/* make_snake: a distractor of `len` paddles, all or nothing. */
static int make_snake(pf_image *im, int len)
{
    const lra_pf_params *p = im->p;
    size_t n = (size_t)im->N * im->N;
    pf_snake sn;
    if (seed_distractor(im, &sn, pick(&im->rng, p->snake_contrasts, p->n_snake_contrasts)))
        return -1;
    if (len > 1) {
        memcpy(im->s->saved, im->s->mask, n);
        memcpy(im->s->saved + n, im->s->dmask, n);
    }
    for (int seg = 1; seg < len; seg++)
        if (extend(im, &sn, pick(&im->rng, p->snake_contrasts, p->n_snake_contrasts)) != 0) {
            memcpy(im->s->mask, im->s->saved, n);
            memcpy(im->s->dmask, im->s->saved + n, n);
            return -1;
        }
    stamp_occupy(im, &sn.paddles[sn.n - 1]);
    for (int i = 0; i < sn.n; i++) stamp_ink(im, &sn.paddles[i]);
    return 0;
}

/* make_many_snakes with allow_incomplete: returns how many snakes were drawn. */
static int many_snakes(pf_image *im, int count, int retrial, int len)
{
    int drawn = 0;
    for (int i = 0; i < count; i++)
        for (int t = 0; t <= retrial; t++)
            if (make_snake(im, len) == 0) {
                drawn++;
                break;
            }
    return drawn;
}

/* snakes2.draw_circle: a disk of marker_radius drawn at antialias scale, Lanczos-downsampled
 * over the whole image (only the affected box is computed), intensity 1. */
static void draw_marker(pf_image *im, const lra_pf_gen *gen, const int tip[2])
{
    int N = im->N, a = im->p->antialias, reach = gen->marker_reach;
    int y0 = tip[0] - reach, y1 = tip[0] + reach + 1, x0 = tip[1] - reach, x1 = tip[1] + reach + 1;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    if (y1 > N) y1 = N;
    if (x1 > N) x1 = N;
    if (y1 <= y0 || x1 <= x0) return;
    const pf_coeffs *cx = &gen->marker_cx;
    pf_patch pt;
    pt.y0 = cx->xmin[y0];
    pt.h = cx->xmin[y1 - 1] + cx->n[y1 - 1] - pt.y0;
    pt.x0 = cx->xmin[x0];
    pt.w = cx->xmin[x1 - 1] + cx->n[x1 - 1] - pt.x0;
    double rad2 = (im->p->marker_radius * a) * (im->p->marker_radius * a);
    for (int i = 0; i < pt.h; i++)
        for (int j = 0; j < pt.w; j++) {
            double dy = pt.y0 + i - tip[0] * a, dx = pt.x0 + j - tip[1] * a;
            im->s->patch[i * pt.w + j] = dx * dx + dy * dy <= rad2 ? 255 : 0;
        }
    pt.px = im->s->patch;
    resample(&pt, cx, cx, y0, y1, x0, x1, im->s->marker, x1 - x0, im->s->patch_tmp);
    for (int r = y0; r < y1; r++)
        for (int c = x0; c < x1; c++) {
            double v = im->s->marker[(r - y0) * (x1 - x0) + c - x0] / 255.0;
            if (v > im->s->ink[r * N + c]) im->s->ink[r * N + c] = v;
        }
}

/* scipy.misc.imsave -> bytescale: (x - min) * 255 / (max - min), clipped, +0.5, truncated. */
static void to_bytes(const double *ink, size_t n, int rescale, uint8_t *px)
{
    double lo = ink[0], hi = ink[0];
    for (size_t i = 1; i < n; i++) {
        if (ink[i] < lo) lo = ink[i];
        if (ink[i] > hi) hi = ink[i];
    }
    double scale = rescale ? 255.0 / (hi - lo != 0 ? hi - lo : 1.0) : 255.0;
    if (!rescale) lo = 0;
    for (size_t i = 0; i < n; i++) {
        double v = (ink[i] - lo) * scale;
        px[i] = (uint8_t)((v < 0 ? 0 : v > 255 ? 255 : v) + 0.5);
    }
}

static void fill_info(lra_pf_info *info, const pf_snake sn[2], int label, int origin)
{
    int term = label ? origin : 1 - origin;
    info->label = label;
    info->origin = origin;
    memcpy(info->tips[0], sn[origin].tip, sizeof info->tips[0]);
    memcpy(info->tips[1], sn[term].end, sizeof info->tips[1]);
    for (int k = 0; k < 2; k++) {
        info->n_paddles[k] = sn[k].n;
        for (int i = 0; i < sn[k].n; i++) {
            info->paddles[k][i][0] = (int16_t)sn[k].paddles[i].at[0];
            info->paddles[k][i][1] = (int16_t)sn[k].paddles[i].at[1];
        }
    }
}

int lra_pf_render(const lra_pf_gen *gen, lra_pf_scratch *s, uint64_t seed, uint64_t index,
                  uint8_t *px, lra_pf_info *info)
{
    const lra_pf_params *p = &gen->p;
    size_t n = (size_t)p->size * p->size;
    pf_image im = {p, NULL, s, {lra_key(lra_key(seed, 0x9a7f1de5), index), 0}, p->size};
    int label = (int)rng_below(&im.rng, 2);
    int gi = (int)rng_below(&im.rng, (uint32_t)p->n_margins);
    im.g = &gen->geom[gi];
    pf_snake sn[2];
    int attempts = 1;
    while (two_snakes(&im, sn) != 0)
        if (++attempts > p->max_target_attempts) {
            memset(px, 0, n);
            return -1;
        }
    memset(s->ink, 0, n * sizeof(double));
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < sn[k].n; i++) stamp_ink(&im, &sn[k].paddles[i]);
    int drawn = 0;
    if (p->num_distractors > 0)
        drawn = many_snakes(&im, p->num_distractors, p->max_distractor_retrial,
                            p->distractor_length);
    if (p->single_paddles) {
        int m = im.g->margin;
        int count = (int)(150.0 / ((7.5 + 13 * m + 4 * m * m) / 123.5)) -
                    2 * p->contour_length - p->num_distractors * p->distractor_length;
        many_snakes(&im, count, p->max_paddle_retrial, 1);
    }
    int origin = (int)rng_below(&im.rng, 2), term = label ? origin : 1 - origin;
    draw_marker(&im, gen, sn[origin].tip);
    draw_marker(&im, gen, sn[term].end);
    to_bytes(s->ink, n, p->rescale, px);
    if (info) {
        fill_info(info, sn, label, origin);
        info->margin = im.g->margin;
        info->attempts = attempts;
        info->distractors = drawn;
    }
    return 0;
}

/* ==== PNG (libpng, in memory) ============================================================= */

typedef struct pf_membuf {
    unsigned char *data;
    size_t n, cap, pos;
    char msg[200];
} pf_membuf;

static void png_on_error(png_structp png, png_const_charp msg)
{
    pf_membuf *b = png_get_error_ptr(png);
    snprintf(b->msg, sizeof b->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_write_mem(png_structp png, png_bytep data, png_size_t n)
{
    pf_membuf *b = png_get_io_ptr(png);
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 256;
        unsigned char *p = realloc(b->data, cap);
        if (!p) png_error(png, "out of memory");
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->n, data, n);
    b->n += n;
}

static void png_flush_mem(png_structp png) { (void)png; }

int lra_pf_png_encode(const uint8_t *px, int w, int h, unsigned char **out, size_t *n,
                      char *err, size_t errlen)
{
    pf_membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &b, png_on_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        snprintf(err, errlen, "PNG encoding failed: %s", b.msg[0] ? b.msg : "out of memory");
        png_destroy_write_struct(&png, &info);
        free(b.data);
        return -1;
    }
    png_set_write_fn(png, &b, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int r = 0; r < h; r++) png_write_row(png, px + (size_t)r * w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out = b.data;
    *n = b.n;
    return 0;
}

static void png_read_mem(png_structp png, png_bytep data, png_size_t n)
{
    pf_membuf *b = png_get_io_ptr(png);
    if (n > b->n - b->pos) png_error(png, "file is truncated");
    memcpy(data, b->data + b->pos, n);
    b->pos += n;
}

/* Reads the header and configures libpng to deliver 8-bit grey; -1 with a message. */
static int png_read_header(png_structp png, png_infop info, int want_w, int want_h, char *err,
                           size_t errlen)
{
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((int)w != want_w || (int)h != want_h || w > INT_MAX || h > INT_MAX) {
        snprintf(err, errlen, "wrong image size %ux%u, expected %dx%d", (unsigned)w,
                 (unsigned)h, want_w, want_h);
        return -1;
    }
    int type = png_get_color_type(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
    if (type & PNG_COLOR_MASK_COLOR || type == PNG_COLOR_TYPE_PALETTE)
        png_set_rgb_to_gray_fixed(png, 1, -1, -1);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)want_w) {
        snprintf(err, errlen, "unsupported PNG pixel format");
        return -1;
    }
    return 0;
}

int lra_pf_png_decode(const unsigned char *data, size_t n, int want_w, int want_h,
                      uint8_t *px, char *err, size_t errlen)
{
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (n < 8 || memcmp(data, sig, 8) != 0) {
        snprintf(err, errlen, "not a PNG file (bad signature)");
        return -1;
    }
    pf_membuf b = {.data = (unsigned char *)data, .n = n};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &b, png_on_error,
                                             png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        snprintf(err, errlen, "corrupt PNG: %s", b.msg[0] ? b.msg : "out of memory");
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        return -1;
    }
    png_set_read_fn(png, &b, png_read_mem);
    png_set_user_limits(png, 4096, 4096);
    if (png_read_header(png, info, want_w, want_h, err, errlen) != 0) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    rows = malloc((size_t)want_h * sizeof *rows);
    if (!rows) png_error(png, "out of memory");
    for (int r = 0; r < want_h; r++) rows[r] = px + (size_t)r * want_w;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return 0;
}

/* ==== Metadata lines ====================================================================== */

int lra_pf_meta_parse(const char *line, size_t len, lra_pf_meta *m, char *err, size_t errlen)
{
    static const char *const names[4] = {"sub-path", "file name", "index", "label"};
    const char *field[4] = {0};
    size_t flen[4] = {0};
    int n = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
        if (i == len) break;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t') i++;
        if (n < 4) {
            field[n] = line + start;
            flen[n] = i - start;
        }
        n++;
    }
    m->n_fields = n;
    if (n < 4) {
        snprintf(err, errlen, "%d field%s, need at least 4 (sub-path, file name, index, "
                 "label); field %d (%s) is missing", n, n == 1 ? "" : "s", n, names[n]);
        return -1;
    }
    for (int k = 0; k < 2; k++)
        if (flen[k] >= sizeof m->subpath) {
            snprintf(err, errlen, "field %d (%s) is longer than %zu bytes", k, names[k],
                     sizeof m->subpath - 1);
            return -1;
        }
    if (memchr(field[1], '/', flen[1])) {
        snprintf(err, errlen, "field 1 (file name) '%.*s' contains '/'", (int)flen[1], field[1]);
        return -1;
    }
    if (memmem(field[0], flen[0], "..", 2)) {
        snprintf(err, errlen, "field 0 (sub-path) '%.*s' leaves the release directory",
                 (int)flen[0], field[0]);
        return -1;
    }
    if (flen[3] != 1 || (field[3][0] != '0' && field[3][0] != '1')) {
        snprintf(err, errlen, "field 3 (label): expected 0 or 1, got '%.*s'",
                 (int)(flen[3] > 40 ? 40 : flen[3]), field[3]);
        return -1;
    }
    memcpy(m->subpath, field[0], flen[0]);
    m->subpath[flen[0]] = 0;
    memcpy(m->file, field[1], flen[1]);
    m->file[flen[1]] = 0;
    m->label = field[3][0] - '0';
    return 0;
}

/* Python's str() of a float: "1.0", "0.5", "1.8". */
static const char *py_float(char *buf, size_t n, double v)
{
    snprintf(buf, n, "%.12g", v);
    if (!strpbrk(buf, ".eni")) strncat(buf, ".0", n - strlen(buf) - 1);
    return buf;
}

int lra_pf_meta_format(char *buf, size_t n, const lra_pf_params *p, int batch, int i,
                       const lra_pf_info *info)
{
    char cont[32], thick[32];
    return snprintf(buf, n, "imgs/%d sample_%d.png %d %d %s %d %d %d %s %d %d", batch, i, i,
                    info->label, py_float(cont, sizeof cont, p->continuity), p->contour_length,
                    p->distractor_length, p->paddle_length,
                    py_float(thick, sizeof thick, p->paddle_thickness), info->margin,
                    p->n_paddle_contrasts);
}

/* ==== Writing the release layout ========================================================== */

/* snprintf for paths: vsnprintf so that long-path truncation is checked at run time. */
static int pf_path(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int pf_path(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

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
static int load_release(const char *input, int size, int difficulty, uint8_t **pixels,
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
        if (load_release(source, size, o.difficulty, &pixels, &labels, &n, err, errlen) != 0)
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
