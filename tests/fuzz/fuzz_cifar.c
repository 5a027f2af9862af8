/* fuzz_cifar.c — libFuzzer harness for the CIFAR-10 readers: any bytes must give images or an
 * error naming the file (and record), never a crash, an out-of-bounds access or a leak. Inputs
 * with a PNG or JPEG signature go through the image-folder path (decode, 32x32 check, grey
 * scale); everything else is a binary batch file of 3073-byte records. Seeds:
 * tests/fixtures/cifar/ (one real CIFAR image as JPEG, PNG and a 3-record batch). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"

/* Defined in tasks/image.c. */
int lra_image_file_grey(const char *origin, const unsigned char *data, size_t size,
                        uint8_t grey[1024], char *err, size_t errlen);
int lra_cifar_parse(const char *origin, const unsigned char *data, size_t size, int lra_tokens,
                    lra_dataset *out, char *err, size_t errlen);

static int is_image(const uint8_t *d, size_t n)
{
    return (n >= 2 && d[0] == 0xFF && d[1] == 0xD8) || (n >= 4 && !memcmp(d, "\x89PNG", 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    /* A copy of exactly size bytes, so that reads past the end are caught. */
    unsigned char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (is_image(copy, size)) {
        uint8_t grey[1024];
        if (lra_image_file_grey("fuzz.img", copy, size, grey, err, sizeof err) != 0 &&
            strncmp(err, "fuzz.img: ", 10) != 0)
            abort();
    } else {
        lra_dataset d;
        if (lra_cifar_parse("fuzz.bin", copy, size, 0, &d, err, sizeof err) == 0) {
            if ((size_t)d.n != size / 3073 || d.len != 1024) abort();
            for (long i = 0; i < (long)d.n * d.len; i++)
                if (d.tokens[i] < 1 || d.tokens[i] > 256) abort();
            for (int i = 0; i < d.n; i++)
                if (d.labels[i] < 0 || d.labels[i] > 9) abort();
            lra_dataset_free(&d);
        } else if (strncmp(err, "fuzz.bin: ", 10) != 0) {
            abort();
        }
    }
    free(copy);
    return 0;
}
