/* options.c — parse, print and default the options tables of plugins and of the run
 * configuration (one parser for all, as in FFmpeg's AVOption). */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int *int_field(void *priv, const lra_attn_option *o)
{
    return (int *)((char *)priv + o->offset);
}

static double *float_field(void *priv, const lra_attn_option *o)
{
    return (double *)((char *)priv + o->offset);
}

int lra_opts_count(const lra_attn_option *table)
{
    int n = 0;
    while (table && table[n].name) n++;
    return n;
}

void lra_opts_defaults(const lra_attn_option *table, void *priv)
{
    for (int i = 0; table && table[i].name; i++) {
        const lra_attn_option *o = &table[i];
        if (o->type == LRA_OPT_FLOAT)
            *float_field(priv, o) = o->def;
        else
            *int_field(priv, o) = (int)o->def;
    }
}

/* Index of `name` in a '|'-separated list, or -1. */
static int choice_index(const char *choices, const char *name)
{
    size_t len = strlen(name);
    int idx = 0;
    for (const char *p = choices; *p; idx++) {
        const char *end = strchr(p, '|');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0) return idx;
        if (!end) break;
        p = end + 1;
    }
    return -1;
}

static void choice_name(const char *choices, int idx, char *buf, size_t n)
{
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) {
        snprintf(buf, n, "?%d", idx);
        return;
    }
    const char *end = strchr(p, '|');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    snprintf(buf, n, "%.*s", (int)len, p);
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

int lra_opts_set(const lra_attn_option *table, void *priv, const char *name, const char *value,
                 char *err, size_t errlen)
{
    const lra_attn_option *o = NULL;
    for (int i = 0; table && table[i].name; i++)
        if (strcmp(table[i].name, name) == 0) o = &table[i];
    if (!o) {
        int off = snprintf(err, errlen, "unknown option '%s'; known:", name);
        for (int i = 0; table && table[i].name && off > 0 && (size_t)off < errlen; i++)
            off += snprintf(err + off, errlen - (size_t)off, " %s", table[i].name);
        if (!table || !table[0].name) snprintf(err, errlen, "unknown option '%s' (none)", name);
        return -1;
    }
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case LRA_OPT_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            snprintf(err, errlen, "option '%s' wants an integer in [%g, %g], got '%s'", name,
                     o->min, o->max, value);
            return -1;
        }
        *int_field(priv, o) = (int)v;
        return 0;
    }
    case LRA_OPT_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || v < o->min || v > o->max) {
            snprintf(err, errlen, "option '%s' wants a number in [%g, %g], got '%s'", name,
                     o->min, o->max, value);
            return -1;
        }
        *float_field(priv, o) = v;
        return 0;
    }
    case LRA_OPT_BOOL: {
        int v;
        if (parse_bool(value, &v) != 0) {
            snprintf(err, errlen, "option '%s' wants true or false, got '%s'", name, value);
            return -1;
        }
        *int_field(priv, o) = v;
        return 0;
    }
    case LRA_OPT_CHOICE: {
        int idx = choice_index(o->choices, value);
        if (idx < 0) {
            snprintf(err, errlen, "option '%s' wants one of %s, got '%s'", name, o->choices,
                     value);
            return -1;
        }
        *int_field(priv, o) = idx;
        return 0;
    }
    }
    snprintf(err, errlen, "option '%s' has an unknown type", name);
    return -1;
}

void lra_opts_get(const lra_attn_option *o, const void *priv, char *buf, size_t n)
{
    const char *base = (const char *)priv + o->offset;
    int iv;
    double dv;
    switch (o->type) {
    case LRA_OPT_FLOAT:
        memcpy(&dv, base, sizeof dv);
        snprintf(buf, n, "%.9g", dv);
        return;
    case LRA_OPT_BOOL:
        memcpy(&iv, base, sizeof iv);
        snprintf(buf, n, "%s", iv ? "true" : "false");
        return;
    case LRA_OPT_CHOICE:
        memcpy(&iv, base, sizeof iv);
        choice_name(o->choices, iv, buf, n);
        return;
    case LRA_OPT_INT:
    default:
        memcpy(&iv, base, sizeof iv);
        snprintf(buf, n, "%d", iv);
        return;
    }
}
