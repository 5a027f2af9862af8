/* cmd_bench.c — placeholder while it is being written in this session. */
#include "cli.h"

int lra_cmd_bench(int argc, char **argv);
int lra_cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    lra_die("this command is being implemented");
}
