/* synthetic.c — a generated long-range retrieval task that needs attention to solve.
 *
 * Each sequence is seq_len noise digits (token ids 1-10), padded at the end to a random real
 * length between seq_len/2 and seq_len. Exactly one position inside the real part holds a
 * *marked* digit (ids 11-20), placed uniformly at random, so it is usually hundreds of tokens
 * from the CLS slot. The label is the marked digit's value (10 classes, chance 10%).
 *
 * With CLS pooling the classifier reads only position 0, and nothing but attention moves
 * information between positions, so the model has to learn to find the marked token wherever it
 * is. (With MEAN pooling a bag-of-tokens shortcut exists; the quick preset uses CLS.)
 *
 * Options: task.n_train, task.n_val, task.n_test (examples per split), task.data_seed.
 * Every example is a pure function of (data_seed, split, index): the splits never overlap in their
 * random streams and regenerate identically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lra_rng.h"
#include "task.h"

enum { NOISE_FIRST = 1, MARKED_FIRST = 11, SYNTH_VOCAB = 21 };

typedef struct synth_opts {
    int n_train, n_val, n_test;
    int data_seed; /* the dataset is fixed across training seeds, as a real dataset is */
} synth_opts;

static int parse_opts(const lra_config *cfg, synth_opts *o, char *err, size_t errlen)
{
    *o = (synth_opts){.n_train = 20000, .n_val = 1000, .n_test = 1000, .data_seed = 1};
    for (int i = 0; i < cfg->n_task_opts; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s", cfg->task_opts[i]);
        char *eq = strchr(key, '='), *end = NULL;
        *eq = 0;
        long v = strtol(eq + 1, &end, 10);
        int *field = strcmp(key, "n_train") == 0 ? &o->n_train
                   : strcmp(key, "n_val") == 0   ? &o->n_val
                   : strcmp(key, "n_test") == 0  ? &o->n_test
                   : strcmp(key, "data_seed") == 0 ? &o->data_seed : NULL;
        if (!field) {
            snprintf(err, errlen, "task synthetic: unknown option 'task.%s' (known: n_train, "
                     "n_val, n_test, data_seed)", key);
            return -1;
        }
        int lo = field == &o->data_seed ? 0 : 1;
        if (*end || end == eq + 1 || v < lo || v > 10000000) {
            snprintf(err, errlen, "task synthetic: task.%s wants an integer in [%d, 10000000], "
                     "got '%s'", key, lo, eq + 1);
            return -1;
        }
        *field = (int)v;
    }
    return 0;
}

static void make_example(int32_t *tok, int32_t *label, int len, uint64_t key)
{
    uint64_t c = 0;
    int real = len / 2 + (int)lra_below(key, c++, (uint32_t)(len - len / 2 + 1));
    if (real < 1) real = 1;
    for (int t = 0; t < len; t++)
        tok[t] = t < real ? NOISE_FIRST + (int32_t)lra_below(key, c++, 10) : 0;
    int pos = (int)lra_below(key, c++, (uint32_t)real);
    int value = (int)lra_below(key, c++, 10);
    tok[pos] = MARKED_FIRST + value;
    *label = value;
}

static void make_split(lra_dataset *d, int n, int len, uint64_t key)
{
    lra_dataset_alloc(d, n, 1, len);
    for (int i = 0; i < n; i++)
        make_example(d->tokens + (size_t)i * len, &d->labels[i], len, lra_key(key, (uint64_t)i));
}

static int synthetic_load(const lra_config *cfg, lra_dataset *train, lra_dataset *val,
                          lra_dataset *test, char *err, size_t errlen)
{
    synth_opts o;
    if (parse_opts(cfg, &o, err, errlen) != 0) return -1;
    if (cfg->seq_len < 2) {
        snprintf(err, errlen, "task synthetic: seq_len must be at least 2 (got %d)",
                 cfg->seq_len);
        return -1;
    }
    uint64_t key = lra_key((uint64_t)o.data_seed, 0x5e17);
    make_split(train, o.n_train, cfg->seq_len, lra_key(key, 0));
    make_split(val, o.n_val, cfg->seq_len, lra_key(key, 1));
    make_split(test, o.n_test, cfg->seq_len, lra_key(key, 2));
    return 0;
}

const lra_task lra_task_synthetic = {
    .name = "synthetic",
    .help = "find the one marked digit in a long noisy sequence (generated; 10 classes)",
    .classes = 10,
    .vocab = SYNTH_VOCAB,
    .docs = 1,
    .load = synthetic_load,
};
