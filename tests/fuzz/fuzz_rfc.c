/* fuzz_rfc.c — libFuzzer harness for the RFC text functions of tasks/retrieval.c: stripping
 * the layout, and finding and masking RFC numbers. Any bytes must give a text, its citations
 * and a bounded output, never a crash, an overrun or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct lra_rfc_cite {
    int num;
    int relation;
    size_t end;
} lra_rfc_cite;
size_t lra_rfc_strip(const unsigned char *s, size_t n, unsigned char *out);
size_t lra_rfc_scan(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                    lra_rfc_cite **cites, int *n_cites);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *view = malloc(size + 1), out[64];
    size_t vlen = lra_rfc_strip(data, size, view);
    if (vlen > size + 1) __builtin_trap();
    lra_rfc_cite *c = NULL;
    int nc = 0;
    /* A small output buffer: the scan must stop writing at cap but keep counting. */
    size_t len = lra_rfc_scan(view, vlen, out, sizeof out, &c, &nc);
    for (int i = 0; i < nc; i++)
        if (c[i].num < 1 || c[i].end > len) __builtin_trap();
    free(c);
    lra_rfc_scan(data, size, NULL, 0, NULL, NULL);
    free(view);
    return 0;
}
