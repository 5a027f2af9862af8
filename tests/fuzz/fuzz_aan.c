/* fuzz_aan.c — libFuzzer harness for the AAN TSV parser of tasks/retrieval.c: any bytes must
 * give either pairs or an error message naming the line, never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>

#include "task.h"

int lra_aan_parse(const char *name, const unsigned char *data, size_t size, int seq_len,
                  long max_line, lra_dataset *d, char *err, size_t errlen);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lra_dataset d = {0};
    char err[512];
    /* A short line limit so that the overlong-line path is reached too. */
    if (lra_aan_parse("fuzz.tsv", data, size, 24, 2048, &d, err, sizeof err) == 0) {
        for (int i = 0; i < d.n; i++)
            if (d.labels[i] != 0 && d.labels[i] != 1) __builtin_trap();
        lra_dataset_free(&d);
    }
    return 0;
}
