/* imgdec.c — PNG and JPEG decoding from memory (see imgdec.h). */
#include "imgdec.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>


void lra_image_free(lra_image *img)
{
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* ---- PNG ------------------------------------------------------------------------------- */

typedef struct png_source {
    const unsigned char *data;
    size_t size, pos;
    char msg[160];
} png_source;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_source *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Ancillary-chunk complaints (bad CRC in a text chunk, ...) do not affect the pixels. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_memory(png_structp png, png_bytep out, size_t n)
{
    png_source *s = png_get_io_ptr(png);
    if (n > s->size - s->pos) png_error(png, "file is truncated");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

/* Asks libpng for 8-bit rows of grey or RGB without alpha; returns the channel count. */
static int png_configure(png_structp png, png_infop info)
{
    int type = png_get_color_type(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return type & PNG_COLOR_MASK_COLOR ? 3 : 1;
}

int lra_png_decode(const unsigned char *data, size_t size, int max_side,
                                      lra_image *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(err, errlen, "not a PNG file (bad signature)");
        return -1;
    }
    png_source src = {.data = data, .size = size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error,
                                             png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* Assigned after setjmp and freed after a longjmp back to it, hence volatile. */
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        snprintf(err, errlen, "corrupt PNG: %s", src.msg[0] ? src.msg : "out of memory");
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return -1;
    }
    png_set_read_fn(png, &src, png_read_memory);
    /* Bound what a hostile header can make libpng allocate. */
    png_set_user_limits(png, (png_uint_32)max_side, (png_uint_32)max_side);
    png_set_chunk_malloc_max(png, 1 << 20);
    png_read_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    int channels = png_configure(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * channels)
        png_error(png, "unsupported pixel format");
    pixels = malloc((size_t)w * h * channels);
    rows = malloc((size_t)h * sizeof *rows);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (int r = 0; r < h; r++) rows[r] = pixels + (size_t)r * w * channels;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *out = (lra_image){.width = w, .height = h, .channels = channels, .pixels = pixels};
    return 0;
}

/* ---- JPEG ------------------------------------------------------------------------------ */

typedef struct jpeg_failure {
    struct jpeg_error_mgr mgr; /* first, so that cinfo->err points at the whole struct */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_failure *f = (jpeg_failure *)c->err;
    c->err->format_message(c, f->msg);
    longjmp(f->jump, 1);
}

/* libjpeg reports truncated or corrupt entropy data as a warning (level -1) and fills the
 * rest of the image with grey; a dataset must not learn from that, so warnings are errors.
 * Trace messages (level >= 0) are ignored. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level < 0) jpeg_on_error(c);
}

/* Chooses grey or RGB output from the stream's colour space; -1 for CMYK and the like. */
static int jpeg_configure(struct jpeg_decompress_struct *cinfo)
{
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo->out_color_space = JCS_GRAYSCALE;
        return 1;
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo->out_color_space = JCS_RGB;
        return 3;
    default:
        return -1;
    }
}

int lra_jpeg_decode(const unsigned char *data, size_t size, int max_side,
                                       lra_image *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail = {.msg = ""};
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_on_error;
    fail.mgr.emit_message = jpeg_on_message;
    unsigned char *volatile pixels = NULL;
    jpeg_create_decompress(&cinfo);
    if (setjmp(fail.jump)) {
        snprintf(err, errlen, "corrupt JPEG: %s", fail.msg);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return -1;
    }
    cinfo.mem->max_memory_to_use = 64L << 20;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int w = (int)cinfo.image_width, h = (int)cinfo.image_height;
    int channels = jpeg_configure(&cinfo);
    if (w > max_side || h > max_side || channels < 0) {
        snprintf(err, errlen, channels < 0 ? "unsupported JPEG colour space %d"
                 : "JPEG image %dx%d is larger than %d pixels on a side",
                 channels < 0 ? (int)cinfo.jpeg_color_space : w, h, max_side);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_start_decompress(&cinfo);
    pixels = malloc((size_t)w * h * channels);
    if (!pixels) ERREXIT(&cinfo, JERR_OUT_OF_MEMORY);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * w * channels;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *out = (lra_image){.width = w, .height = h, .channels = channels, .pixels = pixels};
    return 0;
}

/* ---- either ---------------------------------------------------------------------------- */

int lra_image_decode(const unsigned char *data, size_t size, int max_side,
                                        lra_image *out, char *err, size_t errlen)
{
    if (size >= 2 && data[0] == 0xFF && data[1] == 0xD8)
        return lra_jpeg_decode(data, size, max_side, out, err, errlen);
    if (size >= 8 && png_sig_cmp(data, 0, 8) == 0)
        return lra_png_decode(data, size, max_side, out, err, errlen);
    memset(out, 0, sizeof *out);
    snprintf(err, errlen, "neither a PNG nor a JPEG file (unknown signature)");
    return -1;
}

