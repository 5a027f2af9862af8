/* task.h — a task turns files (or a generator) into three splits of token sequences.
 *
 * Tokens are int32 ids with 0 reserved for padding; the model's key mask is token != 0. Tasks
 * whose raw values include 0 (pixel intensities) shift them by +1 so that no real token is ever
 * mistaken for padding (LRA pitfall 10).
 */
#ifndef LRA_TASK_H
#define LRA_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct lra_dataset {
    int n;           /* examples */
    int docs;        /* documents per example: 1, or 2 for matching tasks */
    int len;         /* tokens per document */
    int32_t *tokens; /* (n, docs, len) */
    int32_t *labels; /* (n) */
} lra_dataset;

typedef struct lra_task {
    const char *name;
    const char *help;
    int classes;
    int vocab;       /* number of token ids including padding 0 */
    int docs;
    /* Fills the three splits for cfg (seq_len, seed, task.* options). Returns 0, or -1 with a
     * message naming the file, line or record and the field. */
    int (*load)(const lra_config *cfg, lra_dataset *train, lra_dataset *val, lra_dataset *test,
                char *err, size_t errlen);
} lra_task;

extern const lra_task *const lra_tasks[]; /* NULL-terminated */
const lra_task *lra_task_find(const char *name);

int lra_dataset_alloc(lra_dataset *d, int n, int docs, int len);
void lra_dataset_free(lra_dataset *d);

#endif
