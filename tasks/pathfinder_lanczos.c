/* pathfinder_lanczos.c — PIL-compatible Lanczos downsampling for the Pathfinder generator:
 * paddles and markers are drawn at antialias scale and brought down to the image with exactly
 * Pillow's arithmetic, because its clipping shapes the faint halo of LRA's released images.
 *
 * Split out of pathfinder.c: a self-contained resampler used both by the paddle stamps
 * (pathfinder_stamps.c) and by the marker disks (pathfinder_render.c).
 */
#include <math.h>
#include <stdint.h>

#include "pathfinder_internal.h"
#include "util.h"

/* ==== PIL-compatible Lanczos resampling ================================================== */

/* Pillow's Resample.c: lanczos (a = 3) weights per output pixel, normalised, then converted to
 * 22-bit fixed point; the image is resized horizontally then vertically with 8-bit rounding
 * and clipping in between. The clipping of the negative lobes is what leaves the faint halo
 * (values 1-8) around every paddle of the released images. */
enum { PF_PRECISION = 22 };

static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x *= PF_PI;
    return sin(x) / x;
}

static double lanczos3(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0; }

void pf_coeffs_init(pf_coeffs *c, int in, int out)
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

void pf_coeffs_free(pf_coeffs *c)
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

/* Resamples output rows [oy0, oy1) x columns [ox0, ox1) of the whole image described by cx, cy
 * into dst (row stride ds). tmp holds src.h * (ox1 - ox0) bytes. */
void pf_resample(const pf_patch *src, const pf_coeffs *cx, const pf_coeffs *cy, int oy0,
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
