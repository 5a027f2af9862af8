/* pathfinder_stamps.c — the Pathfinder generator object (lra_pf_gen_new): every paddle the
 * generator can draw, precomputed once per paddle margin as a downsampled stamp with its
 * occupancy mask (360 first-paddle orientations and the candidate heads on the extension
 * circle), the dilation kernels of seed_snake, the padding border, and the marker resampler.
 *
 * Split out of pathfinder.c: this is the expensive, read-only setup that threads share; drawing
 * an image from it is pathfinder_render.c (see the "Speed" paragraph at the top of pathfinder.c).
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder_internal.h"
#include "util.h"

/* ==== Paddle stamps ======================================================================= */

/* snakes.translate_coord: move by d along theta, rounding each coordinate up. */
void pf_translate(const int in[2], double theta, double d, int out[2])
{
    out[0] = (int)ceil(in[0] + d * sin(theta));
    out[1] = (int)ceil(in[1] + d * cos(theta));
}

/* snakes.flip_by_pi */
double pf_flip(double theta) { return theta < 0 ? theta + PF_PI : theta - PF_PI; }

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
    pf_translate(centre, theta, (double)p->paddle_length * a, head);
    memset(w->blown, 0, (size_t)S * S);
    draw_line(w->blown, S, c, c, head[0], head[1], (int)round(p->paddle_thickness * a));
    dilate_disk(w->blown, w->dilated, S, g->margin * a);
    size_t n = (size_t)g->side * g->side;
    st->ink = lra_alloc(2 * n, "paddle stamp");
    st->mask = st->ink + n;
    pf_patch line = {w->blown, 0, 0, S, S}, dil = {w->dilated, 0, 0, S, S};
    pf_resample(&line, &w->coeffs, &w->coeffs, 0, g->side, 0, g->side, st->ink, g->side, w->tmp);
    pf_resample(&dil, &w->coeffs, &w->coeffs, 0, g->side, 0, g->side, st->mask, g->side, w->tmp);
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
    pf_coeffs_init(&w.coeffs, w.blown_side, g->side);
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
        make_stamp(p, g, &w, pf_flip(g->cand_theta[i]), &g->cand_stamp[i]);
    g->disk = lra_alloc((size_t)(2 * margin + 1) * (2 * margin + 1) * sizeof *g->disk, "disk");
    for (int dr = -margin; dr <= margin; dr++)
        for (int dc = -margin; dc <= margin; dc++)
            if (dr * dr + dc * dc <= margin * margin) {
                g->disk[g->n_disk][0] = dr;
                g->disk[g->n_disk++][1] = dc;
            }
    make_base(p, g);
    pf_coeffs_free(&w.coeffs);
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
    pf_coeffs_init(&g->marker_cx, p->size * p->antialias, p->size);
    g->marker_reach = (int)ceil(p->marker_radius) + 4; /* radius plus the 3-pixel support */
    return g;
}

void lra_pf_gen_free(lra_pf_gen *g)
{
    if (!g) return;
    for (int i = 0; i < g->p.n_margins; i++) free_geom(&g->geom[i]);
    pf_coeffs_free(&g->marker_cx);
    lra_free(g);
}

const lra_pf_params *lra_pf_gen_params(const lra_pf_gen *g) { return &g->p; }
