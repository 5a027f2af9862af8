/* main.c — the `lra` command: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "platform.h"

int lra_cmd_list(int argc, char **argv);
int lra_cmd_train(int argc, char **argv);
int lra_cmd_data(int argc, char **argv);
int lra_cmd_suite(int argc, char **argv);
int lra_cmd_bench(int argc, char **argv);
int lra_cmd_report(int argc, char **argv);
int lra_cmd_approx(int argc, char **argv);

extern const char *const lra_code_version;

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"list", lra_cmd_list, "list attention variants, tasks or presets"},
    {"train", lra_cmd_train, "train and evaluate one variant on one task"},
    {"suite", lra_cmd_suite, "run the task x variant x seed matrix"},
    {"bench", lra_cmd_bench, "speed and memory benchmark (LRA Table 2 protocol)"},
    {"approx", lra_cmd_approx, "approximation error of each variant against softmax"},
    {"report", lra_cmd_report, "tables and gnuplot figures from the HDF5 results"},
    {"data", lra_cmd_data, "import, generate and inspect datasets"},
};

static void usage(FILE *f)
{
    fprintf(f, "lra — Long Range Arena benchmark suite (version %s)\n\n"
               "usage: lra <command> [options]   (lra <command> --help for details)\n\n"
               "commands:\n", lra_code_version);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-8s %s\n", "version", "print the code version");
}

int main(int argc, char **argv)
{
    lra_platform_init(argc, argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? LRA_EXIT_USAGE : LRA_EXIT_OK;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("lra %s\n", lra_code_version);
        return LRA_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lra: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return LRA_EXIT_USAGE;
}
