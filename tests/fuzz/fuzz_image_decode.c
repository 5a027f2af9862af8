/* fuzz_image_decode.c — libFuzzer harness for the PNG and JPEG decoders of tasks/imgdec.c.
 *
 * Inputs that start with a PNG or JPEG signature are decoded as they are. Any other input
 * describes a valid image — format, grey or RGB, size up to 48x48, pixels — that is encoded
 * here with libpng or libjpeg and then damaged as the input says (cut short, one byte
 * flipped). So the fuzzer reaches deep into both decoders without seeds, and two properties
 * are checked besides "no crash, no leak": an undamaged image must decode, and an undamaged
 * PNG must decode to exactly its pixels. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "imgdec.h"

enum { MAX_SIDE = 64 };

typedef struct membuf {
    unsigned char *data;
    size_t n, cap;
} membuf;

static void png_write_memory(png_structp png, png_bytep data, size_t n)
{
    membuf *b = png_get_io_ptr(png);
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n);
        b->data = realloc(b->data, b->cap);
        if (!b->data) abort();
    }
    memcpy(b->data + b->n, data, n);
    b->n += n;
}

static void png_flush_nothing(png_structp png) { (void)png; }

static membuf encode_png(const uint8_t *px, int w, int h, int channels, int interlace)
{
    membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) abort();
    png_set_write_fn(png, &b, png_write_memory, png_flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    for (int r = 0; r < h; r++) rows[r] = (png_bytep)px + (size_t)r * w * channels;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return b;
}

static membuf encode_jpeg(const uint8_t *px, int w, int h, int channels, int progressive)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *out = NULL;
    unsigned long n = 0;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &n);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = channels;
    c.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * w * channels;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return (membuf){out, n, n};
}

/* Decodes and checks the result's shape; returns 0 on success. */
static int decode(const unsigned char *data, size_t size, lra_image *img)
{
    char err[512] = "";
    int rc = lra_image_decode(data, size, MAX_SIDE, img, err, sizeof err);
    if (rc != 0) {
        if (!err[0] || img->pixels) abort(); /* a failure says why and holds nothing */
        return -1;
    }
    if (img->width < 1 || img->height < 1 || img->width > MAX_SIDE ||
        img->height > MAX_SIDE || (img->channels != 1 && img->channels != 3))
        abort();
    unsigned sum = 0; /* touches every byte, so a short buffer is caught */
    for (size_t i = 0; i < (size_t)img->width * img->height * img->channels; i++)
        sum += img->pixels[i];
    (void)sum;
    return 0;
}

/* Layout of a synthetic input: flags, width, height, cut, flip position (2), flip mask, then
 * pixel bytes (repeated as needed). */
static void synthesize(const uint8_t *d, size_t n)
{
    if (n < 8) return;
    int jpeg = d[0] & 1, channels = d[0] & 2 ? 3 : 1, variant = (d[0] >> 2) & 1;
    int w = 1 + d[1] % 48, h = 1 + d[2] % 48;
    size_t npx = (size_t)w * h * channels;
    uint8_t *px = malloc(npx);
    for (size_t i = 0; i < npx; i++) px[i] = n > 8 ? d[8 + i % (n - 8)] : (uint8_t)i;
    membuf enc = jpeg ? encode_jpeg(px, w, h, channels, variant)
                      : encode_png(px, w, h, channels, variant);
    int damaged = d[3] != 255 || d[6] != 0;
    size_t size = d[3] == 255 ? enc.n : enc.n * d[3] / 255;
    size_t at = ((size_t)d[4] << 8 | d[5]) % (enc.n ? enc.n : 1);
    if (at < size) enc.data[at] ^= d[6];
    lra_image img;
    unsigned char *copy = malloc(size ? size : 1);
    memcpy(copy, enc.data, size);
    int rc = decode(copy, size, &img);
    if (!damaged && rc != 0) abort();
    if (!damaged && !jpeg && (img.channels != channels || memcmp(img.pixels, px, npx) != 0))
        abort();
    if (rc == 0) lra_image_free(&img);
    free(copy);
    free(enc.data);
    free(px);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int png = size >= 8 && png_sig_cmp(data, 0, 8) == 0;
    int jpeg = size >= 2 && data[0] == 0xFF && data[1] == 0xD8;
    if (png || jpeg) {
        unsigned char *copy = malloc(size);
        memcpy(copy, data, size);
        lra_image img;
        if (decode(copy, size, &img) == 0) lra_image_free(&img);
        free(copy);
    } else {
        synthesize(data, size);
    }
    return 0;
}
