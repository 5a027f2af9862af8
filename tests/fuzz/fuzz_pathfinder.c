/* fuzz_pathfinder.c — libFuzzer harness for the Pathfinder release readers: a PNG decoded from
 * memory (any bytes must give 32x32 pixels or an error, never a crash, and never an allocation
 * sized by the file's header) and metadata text, line by line. Inputs starting with the PNG
 * signature go to the decoder; everything else to the metadata parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder_draw.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char sig[4] = {137, 'P', 'N', 'G'};
    char err[512];
    if (size >= 4 && memcmp(data, sig, 4) == 0) {
        uint8_t px[32 * 32];
        lra_pf_png_decode(data, size, 32, 32, px, err, sizeof err);
        return 0;
    }
    lra_lines lines;
    const char *line;
    long len;
    lra_lines_init(&lines, (const char *)data, size);
    while ((len = lra_lines_next(&lines, &line)) >= 0) {
        lra_pf_meta m;
        lra_pf_meta_parse(line, (size_t)len, &m, err, sizeof err);
    }
    return 0;
}
