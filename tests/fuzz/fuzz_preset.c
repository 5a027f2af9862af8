/* fuzz_preset.c — libFuzzer harness for the preset (INI) parser: any text must give either a
 * configuration or an error message, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    lra_config cfg;
    char err[512];
    lra_config_defaults(&cfg);
    lra_config_apply_ini(&cfg, text, "fuzz", err, sizeof err);
    free(text);
    return 0;
}
