/* pathfinder.c — placeholder while the task is being written in this session; removed if unfinished. */
#include <stdio.h>

#include "task.h"

static int pathfinder_build(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                      lra_provenance *prov, char *err, size_t errlen)
{
    (void)env;
    (void)split;
    (void)prov;
    snprintf(err, errlen, "task pathfinder is not implemented yet");
    return -1;
}

const lra_task lra_task_pathfinder = {
    .name = "pathfinder",
    .help = "(being implemented)",
    .classes = 2,
    .vocab = 2,
    .docs = 1,
    .build = pathfinder_build,
};

const lra_task lra_task_pathx = {
    .name = "pathx",
    .help = "(being implemented)",
    .classes = 2,
    .vocab = 2,
    .docs = 1,
    .build = pathfinder_build,
};
