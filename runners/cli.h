/* cli.h — small helpers shared by the subcommands: option matching and error exits. */
#ifndef LRA_CLI_H
#define LRA_CLI_H

#include "config.h"
#include "util.h"

/* Exit statuses: 0 success, 1 runtime failure (files, data, divergence), 2 usage error,
 * 3 skipped (an attention variant refused the configuration), 130 interrupted. */
enum {
    LRA_EXIT_OK = 0,
    LRA_EXIT_FAIL = 1,
    LRA_EXIT_USAGE = 2,
    LRA_EXIT_SKIPPED = 3,
    LRA_EXIT_INTERRUPTED = 130
};

/* Prints "lra <cmd>: <message>" and a hint to stderr and exits with LRA_EXIT_USAGE. */
LRA_NORETURN LRA_PRINTF(2, 3) void lra_usage_error(const char *cmd, const char *fmt, ...);

/* If argv[*i] is `--name VALUE` or `--name=VALUE`, stores VALUE, advances *i and returns 1. */
int lra_arg_value(int argc, char **argv, int *i, const char *name, const char **value,
                  const char *cmd);
/* Parses a non-negative int or exits with a usage error naming the option. */
int lra_arg_int(const char *cmd, const char *opt, const char *value, int min, int max);

/* Loads plugins named by LRA_PLUGIN_PATH, or exits with the loader's message. */
void lra_cli_load_env_plugins(void);

#endif
