/* presets.c — find and apply presets. */
#include "presets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open preset file %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1 << 20)) {
        snprintf(err, errlen, "preset file %s is unreadable or larger than 1 MiB", path);
        fclose(f);
        return NULL;
    }
    char *text = malloc((size_t)n + 1);
    size_t got = text ? fread(text, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!text || got != (size_t)n) {
        snprintf(err, errlen, "cannot read preset file %s", path);
        free(text);
        return NULL;
    }
    text[n] = 0;
    return text;
}

int lra_preset_apply(lra_config *cfg, const char *name_or_path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(name_or_path, &st) == 0 && S_ISREG(st.st_mode)) {
        char *text = read_file(name_or_path, err, errlen);
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
