/* presets.c — find and apply presets. */
#include "presets.h"

#include "source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int lra_preset_apply(lra_config *cfg, const char *name_or_path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(name_or_path, &st) == 0 && S_ISREG(st.st_mode)) {
        size_t size = 0;
        char *text = (char *)lra_read_file(name_or_path, &size, 1 << 20, err, errlen);
        if (!text) return -1;
        int rc = lra_config_apply_ini(cfg, text, name_or_path, err, errlen);
        free(text);
        if (rc == 0) snprintf(cfg->preset, sizeof cfg->preset, "%s", name_or_path);
        return rc;
    }
    for (const lra_preset *p = lra_presets; p->name; p++) {
        if (strcmp(p->name, name_or_path) != 0) continue;
        if (lra_config_apply_ini(cfg, p->text, p->origin, err, errlen) != 0) return -1;
        snprintf(cfg->preset, sizeof cfg->preset, "%s", p->name);
        return 0;
    }
    int off = snprintf(err, errlen, "unknown preset '%s' (not a file either); presets:",
                       name_or_path);
    for (const lra_preset *p = lra_presets; p->name && off > 0 && (size_t)off < errlen; p++)
        off += snprintf(err + off, errlen - (size_t)off, " %s", p->name);
    return -1;
}

void lra_preset_summary(const lra_preset *p, char *buf, size_t n)
{
    const char *s = p->text;
    while (*s == '#' || *s == ' ') s++;
    const char *dash = strstr(s, " — ");
    const char *nl = strchr(s, '\n');
    if (dash && (!nl || dash < nl)) s = dash + strlen(" — ");
    size_t len = nl ? (size_t)(nl - s) : strlen(s);
    snprintf(buf, n, "%.*s", (int)len, s);
}
