/* tasks.c — the table of tasks, dataset storage, provenance and task options. */
#include "task.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lra_rng.h"
#include "util.h"

extern const lra_task lra_task_listops, lra_task_text, lra_task_retrieval, lra_task_image,
    lra_task_pathfinder, lra_task_pathx, lra_task_synthetic;

/* LRA's order, then Path-X, then the built-in synthetic task. */
const lra_task *const lra_tasks[] = {
    &lra_task_listops,    &lra_task_text,  &lra_task_retrieval, &lra_task_image,
    &lra_task_pathfinder, &lra_task_pathx, &lra_task_synthetic, NULL,
};

const char *const lra_split_names[LRA_N_SPLITS] = {"train", "val", "test"};

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

void lra_prov_add(lra_provenance *prov, const char *key, const char *fmt, ...)
{
    if (!prov || prov->n == LRA_PROV_MAX) return;
    snprintf(prov->key[prov->n], sizeof prov->key[0], "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prov->value[prov->n], sizeof prov->value[0], fmt, ap);
    va_end(ap);
    prov->n++;
}

const char *lra_task_opt(const lra_config *cfg, const char *name)
{
    const char *found = NULL;
    size_t n = strlen(name);
    for (int i = 0; i < cfg->n_task_opts; i++)
        if (strncmp(cfg->task_opts[i], name, n) == 0 && cfg->task_opts[i][n] == '=')
            found = cfg->task_opts[i] + n + 1;
    return found;
}

int lra_task_opt_int(const lra_config *cfg, const char *task, const char *name, long def,
                     long lo, long hi, long *out, char *err, size_t errlen)
{
    const char *v = lra_task_opt(cfg, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi) {
        snprintf(err, errlen, "task %s: task.%s wants an integer in [%ld, %ld], got '%s'", task,
                 name, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

int lra_task_check_opts(const lra_config *cfg, const char *task, const char *const *known,
                        char *err, size_t errlen)
{
    for (int i = 0; i < cfg->n_task_opts; i++) {
        const char *kv = cfg->task_opts[i];
        size_t n = strcspn(kv, "=");
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++) ok = strlen(known[k]) == n && !strncmp(kv, known[k], n);
        if (!ok) {
            int off = snprintf(err, errlen, "task %s: unknown option 'task.%.*s'; known:", task,
                               (int)n, kv);
            for (int k = 0; known[k] && off > 0 && (size_t)off < errlen; k++)
                off += snprintf(err + off, errlen - (size_t)off, " %s", known[k]);
            return -1;
        }
    }
    return 0;
}

/* ---- seeded splits shared by the loaders ---------------------------------------------- */

/* Fisher–Yates driven by counter-based draws: the order is a pure function of key. */
void lra_shuffle_index(long *idx, long n, uint64_t key)
{
    for (long i = n - 1; i > 0; i--) {
        long j = (long)lra_below(key, (uint64_t)i, (uint32_t)(i + 1));
        long t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* Hold-out sizes per class: 10% of train in all (rounded half up), shared out in proportion
 * to the class sizes by largest remainder, ties going to classes in a seeded order. The total
 * and the class mix are then as exact as whole numbers allow: 500 of every 5,000, and 5 of 50
 * images spread over 5 classes. */
void lra_hold_out_quotas(const long *count, int classes, uint64_t key, long *quota)
{
    LRA_ASSERT(classes <= LRA_MAX_CLASSES);
    long n = 0, given = 0, rem[LRA_MAX_CLASSES];
    uint32_t tie[LRA_MAX_CLASSES];
    for (int c = 0; c < classes; c++) n += count[c];
    long total = (n + 5) / 10;
    for (int c = 0; c < classes; c++) {
        quota[c] = n ? count[c] * total / n : 0;
        rem[c] = n ? count[c] * total % n : 0;
        tie[c] = (uint32_t)lra_bits(key, (uint64_t)c);
        given += quota[c];
    }
    for (; given < total; given++) {
        int best = -1;
        for (int c = 0; c < classes; c++)
            if (rem[c] >= 0 && (best < 0 || rem[c] > rem[best] ||
                                (rem[c] == rem[best] && tie[c] > tie[best])))
                best = c;
        quota[best]++;
        rem[best] = -1; /* at most one extra per class */
    }
}
