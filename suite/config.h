/* config.h — the fully resolved configuration of one run.
 *
 * Every field is reachable by name through one table (config.c), so `--set key=value`, preset
 * files and the results file all use the same keys, and an unknown key is an error rather than
 * a silent no-op (LRA pitfall 9). Keys starting with "attn." go to the attention plugin's options;
 * keys starting with "task." go to the task.
 */
#ifndef LRA_CONFIG_H
#define LRA_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum { LRA_POOL_CLS, LRA_POOL_MEAN };
enum { LRA_POS_SINUSOID, LRA_POS_LEARNED, LRA_POS_NONE };
enum { LRA_SCHED_CONSTANT, LRA_SCHED_RSQRT, LRA_SCHED_COSINE, LRA_SCHED_LINEAR };
enum { LRA_DUAL_NLI, LRA_DUAL_CONCAT };

#define LRA_MAX_EXTRA 32

typedef struct lra_config {
    char task[32];
    char attn[32];
    char preset[64];

    /* Model (names follow LRA's configs). */
    int layers;
    int emb_dim;       /* D: model width */
    int heads;         /* H */
    int qkv_dim;       /* H * Dh */
    int mlp_dim;       /* FFN hidden width, and the classifier head's hidden width */
    double dropout;
    double attn_dropout;
    int pool;          /* LRA_POOL_* */
    int pos;           /* LRA_POS_* */
    int dual_head;     /* LRA_DUAL_*: [u, v, u*v, u-v] (paper) or [u, v] (released code) */

    /* Data. */
    int seq_len;       /* tokens per document, before the CLS token */

    /* Training. */
    int batch;
    int steps;
    double lr;
    int schedule;      /* LRA_SCHED_* */
    int warmup;
    double weight_decay;
    double beta1, beta2, adam_eps;
    double clip;       /* global-norm clipping; 0 = off */
    int seed;
    int threads;       /* 0 = all cores */
    int eval_every;    /* steps between validation passes; 0 = only at the end */
    int patience;      /* stop after this many validations without improvement; 0 = never */
    int log_every;

    /* Plugin and task options, kept as text until the plugin or task parses them. */
    char attn_opts[LRA_MAX_EXTRA][96];
    int n_attn_opts;
    char task_opts[LRA_MAX_EXTRA][96];
    int n_task_opts;
} lra_config;

/* Built-in defaults: the `small` model of the PyTorch ports with LRA's optimiser. */
void lra_config_defaults(lra_config *c);

/* Sets one key from text; returns 0 or -1 with a message naming the key and what it accepts. */
int lra_config_set(lra_config *c, const char *key, const char *value, char *err, size_t errlen);

/* Applies "key=value". */
int lra_config_set_kv(lra_config *c, const char *kv, char *err, size_t errlen);

/* Applies a preset: an INI text with `key = value` lines, applied in file order; lines under
 * `[task]` apply only to that task, under `[task/variant]` only to that task and attention
 * variant; a task part `*` matches every task; `#` starts a comment. cfg->task
 * and cfg->attn must be set first. `origin` names the source in messages
 * ("runners/presets/quick.ini:12: unknown key 'lr_'"). */
int lra_config_apply_ini(lra_config *c, const char *text, const char *origin, char *err,
                         size_t errlen);

/* Writes every key as `key = value` lines (the resolved configuration). */
void lra_config_write(const lra_config *c, FILE *f);
/* The same into a string buffer; returns the length needed. */
size_t lra_config_format(const lra_config *c, char *buf, size_t n);

/* Derived sizes. */
int lra_config_head_dim(const lra_config *c);
int lra_config_tokens(const lra_config *c); /* seq_len + 1 with CLS pooling, else seq_len */

#endif
