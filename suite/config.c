/* config.c — one table of every configuration key, shared by --set, preset files and the
 * results file, so the three cannot drift apart. */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lra_attention.h"
#include "options.h"

#define F(field) offsetof(lra_config, field)

/* The option struct of the plugin ABI describes configuration keys as well: same parser. */
static const lra_attn_option config_keys[] = {
    {"layers", "encoder blocks", F(layers), LRA_OPT_INT, 2, 1, 64, NULL},
    {"emb_dim", "model width D", F(emb_dim), LRA_OPT_INT, 64, 1, 8192, NULL},
    {"heads", "attention heads", F(heads), LRA_OPT_INT, 2, 1, 256, NULL},
    {"qkv_dim", "total width of q, k, v over all heads", F(qkv_dim), LRA_OPT_INT, 64, 1, 8192,
     NULL},
    {"mlp_dim", "FFN and classifier hidden width", F(mlp_dim), LRA_OPT_INT, 128, 1, 65536,
     NULL},
    {"dropout", "dropout rate", F(dropout), LRA_OPT_FLOAT, 0.1, 0, 0.95, NULL},
    {"attn_dropout", "attention-probability dropout", F(attn_dropout), LRA_OPT_FLOAT, 0.1, 0,
     0.95, NULL},
    {"pool", "sequence pooling", F(pool), LRA_OPT_CHOICE, LRA_POOL_MEAN, 0, 1, "cls|mean"},
    {"pos", "position embedding", F(pos), LRA_OPT_CHOICE, LRA_POS_LEARNED, 0, 2,
     "sinusoid|learned|none"},
    {"dual_head", "matching head input: nli = [u,v,u*v,u-v] (paper), concat = [u,v] (code)",
     F(dual_head), LRA_OPT_CHOICE, LRA_DUAL_NLI, 0, 1, "nli|concat"},
    {"seq_len", "tokens per document before CLS", F(seq_len), LRA_OPT_INT, 256, 1, 1 << 20,
     NULL},
    {"batch", "examples per step", F(batch), LRA_OPT_INT, 32, 1, 1 << 16, NULL},
    {"steps", "optimiser steps", F(steps), LRA_OPT_INT, 1000, 0, 1 << 30, NULL},
    {"lr", "base learning rate", F(lr), LRA_OPT_FLOAT, 1e-3, 0, 100, NULL},
    {"schedule", "learning-rate schedule", F(schedule), LRA_OPT_CHOICE, LRA_SCHED_LINEAR, 0, 3,
     "constant|rsqrt|cosine|linear"},
    {"warmup", "linear warm-up steps", F(warmup), LRA_OPT_INT, 100, 0, 1 << 30, NULL},
    {"weight_decay", "decoupled weight decay (not on biases, LayerNorm, CLS, positions)",
     F(weight_decay), LRA_OPT_FLOAT, 0.01, 0, 10, NULL},
    {"beta1", "Adam beta1", F(beta1), LRA_OPT_FLOAT, 0.9, 0, 1, NULL},
    {"beta2", "Adam beta2", F(beta2), LRA_OPT_FLOAT, 0.98, 0, 1, NULL},
    {"adam_eps", "Adam epsilon", F(adam_eps), LRA_OPT_FLOAT, 1e-9, 0, 1, NULL},
    {"clip", "global gradient-norm clipping, 0 = off", F(clip), LRA_OPT_FLOAT, 1.0, 0, 1e9,
     NULL},
    {"seed", "random seed: data order, initialisation, dropout", F(seed), LRA_OPT_INT, 1, 0,
     2147483647, NULL},
    {"threads", "OpenMP and BLAS threads, 0 = all cores", F(threads), LRA_OPT_INT, 0, 0, 1024,
     NULL},
    {"eval_every", "steps between validation passes, 0 = at the end only", F(eval_every),
     LRA_OPT_INT, 100, 0, 1 << 30, NULL},
    {"patience", "early stopping: validations without improvement before stopping, 0 = off",
     F(patience), LRA_OPT_INT, 0, 0, 1 << 30, NULL},
    {"log_every", "steps between log lines", F(log_every), LRA_OPT_INT, 10, 1, 1 << 30, NULL},
    {0},
};

void lra_config_defaults(lra_config *c)
{
    memset(c, 0, sizeof *c);
    lra_opts_defaults(config_keys, c);
    snprintf(c->task, sizeof c->task, "synthetic");
    snprintf(c->attn, sizeof c->attn, "softmax");
    snprintf(c->preset, sizeof c->preset, "none");
}

static int add_extra(char (*list)[96], int *n, const char *key, const char *value, char *err,
                     size_t errlen)
{
    if (*n == LRA_MAX_EXTRA) {
        snprintf(err, errlen, "too many options (at most %d)", LRA_MAX_EXTRA);
        return -1;
    }
    if (!*key || strlen(key) + strlen(value) + 2 > sizeof list[0]) {
        snprintf(err, errlen, "option '%s=%s' is empty or too long", key, value);
        return -1;
    }
    snprintf(list[(*n)++], sizeof list[0], "%s=%s", key, value);
    return 0;
}

int lra_config_set(lra_config *c, const char *key, const char *value, char *err, size_t errlen)
{
    if (strncmp(key, "attn.", 5) == 0)
        return add_extra(c->attn_opts, &c->n_attn_opts, key + 5, value, err, errlen);
    if (strncmp(key, "task.", 5) == 0)
        return add_extra(c->task_opts, &c->n_task_opts, key + 5, value, err, errlen);
    return lra_opts_set(config_keys, c, key, value, err, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

int lra_config_set_kv(lra_config *c, const char *kv, char *err, size_t errlen)
{
    char buf[256];
    if (strlen(kv) >= sizeof buf) {
        snprintf(err, errlen, "setting '%.40s...' is too long", kv);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", kv);
    char *eq = strchr(buf, '=');
    if (!eq) {
        snprintf(err, errlen, "'%s' is not of the form key=value", kv);
        return -1;
    }
    *eq = 0;
    return lra_config_set(c, trim(buf), trim(eq + 1), err, errlen);
}

/* Section names: "task" or "task/variant"; the task part "*" matches every task. */
static int section_applies(const lra_config *c, const char *name)
{
    const char *slash = strchr(name, '/');
    size_t tlen = slash ? (size_t)(slash - name) : strlen(name);
    int task_ok = (tlen == 1 && name[0] == '*') ||
                  (tlen == strlen(c->task) && strncmp(name, c->task, tlen) == 0);
    if (!slash) return task_ok;
    return task_ok && (strcmp(slash + 1, "*") == 0 || strcmp(slash + 1, c->attn) == 0);
}

int lra_config_apply_ini(lra_config *c, const char *text, const char *origin, char *err,
                         size_t errlen)
{
    int applies = 1, lineno = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[512], why[384];
        lineno++;
        if (len >= sizeof line) {
            snprintf(err, errlen, "%s:%d: line longer than %zu characters", origin, lineno,
                     sizeof line - 1);
            return -1;
        }
        memcpy(line, p, len);
        line[len] = 0;
        p = nl ? nl + 1 : p + len;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = trim(line);
        if (!*s) continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || end[1]) {
                snprintf(err, errlen, "%s:%d: malformed section header '%s'", origin, lineno, s);
                return -1;
            }
            *end = 0;
            applies = section_applies(c, trim(s + 1));
            continue;
        }
        if (!applies) continue;
        if (lra_config_set_kv(c, s, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s:%d: %s", origin, lineno, why);
            return -1;
        }
    }
    return 0;
}

size_t lra_config_format(const lra_config *c, char *buf, size_t n)
{
    size_t off = 0;
#define PUT(...)                                                                         \
    do {                                                                                 \
        int k_ = snprintf(buf ? buf + (off < n ? off : n) : NULL,                        \
                          buf && off < n ? n - off : 0, __VA_ARGS__);                    \
        if (k_ > 0) off += (size_t)k_;                                                   \
    } while (0)
    PUT("task = %s\nattn = %s\npreset = %s\n", c->task, c->attn, c->preset);
    for (int i = 0; config_keys[i].name; i++) {
        char v[64];
        lra_opts_get(&config_keys[i], c, v, sizeof v);
        PUT("%s = %s\n", config_keys[i].name, v);
    }
    for (int i = 0; i < c->n_attn_opts; i++) PUT("attn.%s\n", c->attn_opts[i]);
    for (int i = 0; i < c->n_task_opts; i++) PUT("task.%s\n", c->task_opts[i]);
#undef PUT
    return off;
}

void lra_config_write(const lra_config *c, FILE *f)
{
    size_t n = lra_config_format(c, NULL, 0) + 1;
    char buf[16384];
    if (n > sizeof buf) n = sizeof buf;
    lra_config_format(c, buf, n);
    fputs(buf, f);
}

int lra_config_head_dim(const lra_config *c) { return c->qkv_dim / c->heads; }

int lra_config_tokens(const lra_config *c)
{
    return c->seq_len + (c->pool == LRA_POOL_CLS ? 1 : 0);
}
