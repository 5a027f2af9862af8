/* pathfinder_codec.c — the two codecs of LRA's Pathfinder release layout, on bytes in memory:
 * 8-bit grey PNG (libpng; lra_pf_png_encode, lra_pf_png_decode) and the text metadata lines
 * of metadata/<batch>.npy (lra_pf_meta_parse, lra_pf_meta_format).
 *
 * Split out of pathfinder.c: the writer and the reader of the release layout share these, and
 * the fuzz harness exercises them directly on untrusted bytes.
 */
#include <limits.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder_draw.h"

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
