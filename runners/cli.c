/* cli.c — argument helpers shared by the subcommands. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

void lra_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lra %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'lra %s --help')\n", cmd);
    exit(LRA_EXIT_USAGE);
}

int lra_arg_value(int argc, char **argv, int *i, const char *name, const char **value,
                  const char *cmd)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != 0) return 0;
    if (*i + 1 >= argc) lra_usage_error(cmd, "%s needs a value", name);
    *value = argv[++*i];
    return 1;
}

int lra_arg_int(const char *cmd, const char *opt, const char *value, int min, int max)
{
    char *end = NULL;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < min || v > max)
        lra_usage_error(cmd, "%s wants an integer in [%d, %d], got '%s'", opt, min, max, value);
    return (int)v;
}

void lra_cli_load_env_plugins(void)
{
    char err[512];
    if (lra_attn_load_env(err, sizeof err) != 0) lra_die("LRA_PLUGIN_PATH: %s", err);
}
