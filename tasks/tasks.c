/* tasks.c — the table of tasks and dataset storage. */
#include "task.h"

#include <string.h>

#include "util.h"

extern const lra_task lra_task_synthetic;

const lra_task *const lra_tasks[] = {
    &lra_task_synthetic,
    NULL,
};

const lra_task *lra_task_find(const char *name)
{
    for (int i = 0; lra_tasks[i]; i++)
        if (strcmp(lra_tasks[i]->name, name) == 0) return lra_tasks[i];
    return NULL;
}

int lra_dataset_alloc(lra_dataset *d, int n, int docs, int len)
{
    d->n = n;
    d->docs = docs;
    d->len = len;
    d->tokens = lra_alloc((size_t)n * docs * len * sizeof(int32_t), "dataset tokens");
    d->labels = lra_alloc((size_t)n * sizeof(int32_t), "dataset labels");
    return 0;
}

void lra_dataset_free(lra_dataset *d)
{
    lra_free(d->tokens);
    lra_free(d->labels);
    memset(d, 0, sizeof *d);
}
