/* fuzz_listops.c — libFuzzer harness for the ListOps TSV parser: any bytes must give either a
 * dataset or an error naming the line, never a crash, an out-of-bounds access or a leak. Seeds:
 * tests/fixtures/listops/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"

/* Defined in tasks/listops.c. */
int lra_listops_parse(const char *origin, const char *data, size_t size, int seq_len,
                      lra_dataset *out, long *truncated, char *err, size_t errlen);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A short seq_len so that cutting is exercised too. The copy drops the trailing byte the
     * file readers add, so reads past the end are caught. */
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    lra_dataset d;
    long truncated = 0;
    char err[512];
    if (lra_listops_parse("fuzz", copy, size, 24, &d, &truncated, err, sizeof err) == 0) {
        if (d.n < 1 || truncated > d.n) abort();
        for (long i = 0; i < (long)d.n * d.len; i++)
            if (d.tokens[i] < 0 || d.tokens[i] > 15) abort();
        for (int i = 0; i < d.n; i++)
            if (d.labels[i] < 0 || d.labels[i] > 9) abort();
        lra_dataset_free(&d);
    } else if (strncmp(err, "fuzz:", 5) != 0) {
        abort(); /* every parser error names the origin and line */
    }
    free(copy);
    return 0;
}
