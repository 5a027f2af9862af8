/* task.h — a task turns files (or a generator) into three splits of token sequences.
 *
 * Tokens are int32 ids with 0 reserved for padding; the model's key mask is token != 0. Tasks
 * whose raw values include 0 (pixel intensities) shift them by +1 so that no real token is ever
 * mistaken for padding (LRA pitfall 10).
 *
 * Where data comes from (lra_task_load): the dataset cache when it holds this task and
 * configuration; otherwise the task's build(), which reads env->input when the user named one,
 * else the full data under the data root (--data-dir, LRA_DATA, or ../shared/data), else the
 * small real sample shipped in tasks/samples/; generated tasks generate. The result is written
 * to the cache so the next run starts fast.
 */
#ifndef LRA_TASK_H
#define LRA_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum { LRA_SPLIT_TRAIN, LRA_SPLIT_VAL, LRA_SPLIT_TEST, LRA_N_SPLITS };
extern const char *const lra_split_names[LRA_N_SPLITS]; /* "train", "val", "test" */

typedef struct lra_dataset {
    int n;           /* examples */
    int docs;        /* documents per example: 1, or 2 for matching tasks */
    int len;         /* tokens per document */
    int32_t *tokens; /* (n, docs, len) */
    int32_t *labels; /* (n) */
} lra_dataset;

/* Where a dataset came from, recorded in the cache and in every results file: source paths,
 * sha256 of input files, generator seeds and parameters, preprocessing choices. */
#define LRA_PROV_MAX 48
typedef struct lra_provenance {
    int n;
    char key[LRA_PROV_MAX][48];
    char value[LRA_PROV_MAX][400];
} lra_provenance;

typedef struct lra_task_env {
    const lra_config *cfg;   /* seq_len, seed, task.* options (cfg->task_opts) */
    const char *input;       /* explicit source: file, directory or archive; NULL = default */
    const char *data_root;   /* directory holding imdb/, cifar10/, rfc/ ...; NULL if none */
    const char *samples_dir; /* the repository's tasks/samples/ */
    int quiet;
} lra_task_env;

typedef struct lra_task {
    const char *name;
    const char *help;
    int classes;
    int vocab;       /* number of token ids including padding 0 */
    int docs;
    unsigned flags;  /* LRA_TASK_* */
    /* Fills split[LRA_SPLIT_*] and prov for env. Returns 0, or -1 with a message naming the
     * file, line or record and the field. */
    int (*build)(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                 lra_provenance *prov, char *err, size_t errlen);
    /* Optional: `lra data generate <name> ...` writes the raw published format (argv[0] is
     * the task name). Returns an exit status. */
    int (*generate_cli)(int argc, char **argv);
} lra_task;

/* Generating is faster than reading a cache file: never cache. */
#define LRA_TASK_NO_CACHE 1u

extern const lra_task *const lra_tasks[]; /* NULL-terminated */
const lra_task *lra_task_find(const char *name);

int lra_dataset_alloc(lra_dataset *d, int n, int docs, int len);

/* Seeded splits shared by the loaders (tasks.c). lra_shuffle_index: Fisher–Yates driven by
 * counter-based draws, so the order is a pure function of key. lra_hold_out_quotas: how many
 * of each class's count[c] training examples go to validation: 10% in all (rounded half up),
 * shared out by largest remainder with seeded ties, for at most LRA_MAX_CLASSES classes. */
#define LRA_MAX_CLASSES 64
void lra_shuffle_index(long *idx, long n, uint64_t key);
void lra_hold_out_quotas(const long *count, int classes, uint64_t key, long *quota);
void lra_dataset_free(lra_dataset *d);

/* Appends "key = printf(...)" to prov (silently keeps the first LRA_PROV_MAX entries). */
void lra_prov_add(lra_provenance *prov, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Task options: the value of task.<name> from cfg, or NULL. Later settings win. */
const char *lra_task_opt(const lra_config *cfg, const char *name);
/* Parses task.<name> as an integer in [lo, hi], or returns def when unset. Returns 0, or -1
 * with a message naming the option. Unknown task.* names are caught by lra_task_check_opts. */
int lra_task_opt_int(const lra_config *cfg, const char *task, const char *name, long def,
                     long lo, long hi, long *out, char *err, size_t errlen);
/* Fails with a message when cfg has a task.* option not in the NULL-terminated `known`. */
int lra_task_check_opts(const lra_config *cfg, const char *task, const char *const *known,
                        char *err, size_t errlen);

/* The data root: dir if given, else $LRA_DATA, else ../shared/data next to the source tree or
 * the working directory, if it exists; NULL otherwise. */
const char *lra_data_root(const char *dir);

/* Loads the splits of cfg->task through the cache as described above. input may be NULL.
 * The cache lives in $LRA_CACHE, else $XDG_CACHE_HOME/lra, else ~/.cache/lra; LRA_CACHE=off
 * disables it. Returns 0, or -1 with a message. */
int lra_task_load(const lra_config *cfg, const char *input, const char *data_dir,
                  lra_dataset split[LRA_N_SPLITS], lra_provenance *prov, int quiet, char *err,
                  size_t errlen);

/* Writes / reads one cache file (used by `lra data import` too). */
int lra_cache_write(const char *path, const char *task, const char *key,
                    const lra_dataset split[LRA_N_SPLITS], const lra_provenance *prov, char *err,
                    size_t errlen);
int lra_cache_read(const char *path, const char *task, lra_dataset split[LRA_N_SPLITS],
                   lra_provenance *prov, char *key_out, size_t keylen, char *err,
                   size_t errlen);
/* The cache path for cfg and input, and the key recorded inside it. */
int lra_cache_path(const lra_config *cfg, const char *input, const char *data_root, char *path,
                   size_t pathlen, char *key, size_t keylen);

#endif
