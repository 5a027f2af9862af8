/* presets.h — named configurations shipped in runners/presets/ and embedded in the binary. */
#ifndef LRA_PRESETS_H
#define LRA_PRESETS_H

#include <stddef.h>

#include "config.h"

typedef struct lra_preset {
    const char *name;
    const char *origin; /* path in the source tree, for messages */
    const char *text;   /* INI text */
} lra_preset;

extern const lra_preset lra_presets[]; /* terminated by a zeroed entry */

/* Applies a preset by name, or the file at `name_or_path` when it names an existing file.
 * cfg->task must already be set (sections select the task). Returns 0, or -1 with a message. */
int lra_preset_apply(lra_config *cfg, const char *name_or_path, char *err, size_t errlen);

/* First line of a preset's text with the leading "# name — " removed: a one-line summary. */
void lra_preset_summary(const lra_preset *p, char *buf, size_t n);

#endif
