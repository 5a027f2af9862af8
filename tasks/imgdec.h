/* imgdec.h — PNG and JPEG decoding from memory with Debian's libpng and libjpeg.
 *
 * Images come out as 8-bit grey (grey sources) or 8-bit RGB (colour sources), row-major with
 * interleaved channels. Alpha and 16-bit depth are dropped, palettes expanded. Every problem —
 * a truncated or corrupt file, an image larger than the caller allows, an unsupported colour
 * space — is an error with a message, never a crash; libjpeg's "corrupt data" warnings count
 * as errors too, since it would otherwise return a silently grey-filled image.

 */
#ifndef LRA_IMGDEC_H
#define LRA_IMGDEC_H

#include <stddef.h>

typedef struct lra_image {
    int width, height;
    int channels;           /* 1 = grey, 3 = RGB */
    unsigned char *pixels;  /* height × width × channels bytes; free with lra_image_free */
} lra_image;

/* Decodes a PNG or JPEG, told apart by its signature. Images wider or taller than max_side
 * are rejected from their header, before pixel memory is allocated. Returns 0, or -1 with a
 * message (without a file name: the caller knows it) and *out zeroed. */
int lra_image_decode(const unsigned char *data, size_t size, int max_side,
                                        lra_image *out, char *err, size_t errlen);
int lra_png_decode(const unsigned char *data, size_t size, int max_side,
                                      lra_image *out, char *err, size_t errlen);
int lra_jpeg_decode(const unsigned char *data, size_t size, int max_side,
                                       lra_image *out, char *err, size_t errlen);
void lra_image_free(lra_image *img);

#endif
