/* pathfinder_render.c — one Pathfinder / Path-X image (lra_pf_render): the two target snakes
 * grown alternately paddle by paddle, the distractor snakes and single paddles, the two disk
 * markers and the final rescale to bytes, following snakes2.py draw for draw. Every random draw
 * is keyed by (seed, image index), so an image is a pure function of its inputs.
 *
 * Split out of pathfinder.c: the per-image drawing, with its per-thread scratch memory, on top of
 * the stamps that pathfinder_stamps.c computes once per generator.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lra_rng.h"
#include "pathfinder_internal.h"
#include "util.h"

/* ==== Random numbers ====================================================================== */

typedef struct pf_rng {
    uint64_t key, ctr;
} pf_rng;

static uint32_t rng_below(pf_rng *r, uint32_t n) { return lra_below(r->key, r->ctr++, n); }

static double rng_unit(pf_rng *r)
{
    return (double)(lra_bits(r->key, r->ctr++) >> 11) * (1.0 / 9007199254740992.0);
}

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
    pf_translate(sn->pivot, sn->theta, im->p->paddle_length + 2.0 * g->margin, pivot);
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
    pf_translate(tail, theta, im->p->paddle_length, head);
    pf_translate(head, pf_flip(theta), im->p->paddle_length + im->g->margin, pivot);
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
    pf_resample(&pt, cx, cx, y0, y1, x0, x1, im->s->marker, x1 - x0, im->s->patch_tmp);
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
