/* listops_gen.c — the ListOps generator: LRA's generate_tree recursion draw for draw with the
 * suite's counter-based RNG, candidates generated in parallel and accepted in index order, a
 * hash set that keeps only distinct trees, and the splits built from them (test, then val, then
 * train) with their provenance.
 *
 * Split out of listops.c: generating trees, used both by the task (listops_build_generated)
 * and by `lra data generate listops` (listops.c), apart from reading files (listops_parse.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listops_internal.h"
#include "lra_rng.h"
#include "util.h"

/* ---- generator ------------------------------------------------------------------------- */

/* LRA's VALUE_P: below max_depth a node is a leaf when a uniform draw exceeds it. */
#define VALUE_P 0.25

typedef struct tree_gen {
    uint64_t key, counter;
    int max_depth, max_args, cap; /* cap: the longest tree kept, max_len - 1 */
    uint8_t *out;
    int n; /* tokens written = LRA's counted length */
} tree_gen;

/* Uniform in [0, 1) with 53 bits, like Python's random.random(). */
static double uniform53(uint64_t key, uint64_t counter)
{
    return (double)(lra_bits(key, counter) >> 11) * 0x1.0p-53;
}

static int emit(tree_gen *g, int token)
{
    if (g->n >= g->cap) return 0;
    g->out[g->n++] = (uint8_t)token;
    return 1;
}

/* The value of an operator over its arguments, given as counts of each digit. MED is LRA's
 * int(np.median(...)): the mean of the two middle values, truncated. */
static int apply_op(int op, const int count[10], int n, int sum)
{
    int lo = -1, hi = -1, seen = 0;
    for (int d = 0; d < 10; d++) {
        if (count[d] == 0) continue;
        if (lo < 0 && seen + count[d] > (n - 1) / 2) lo = d;
        if (hi < 0 && seen + count[d] > n / 2) hi = d;
        seen += count[d];
    }
    switch (op) {
    case 0: /* MIN: the smallest digit present */
        for (int d = 0; d < 10; d++)
            if (count[d]) return d;
        return 0;
    case 1:
        for (int d = 9; d > 0; d--)
            if (count[d]) return d;
        return 0;
    case 2:
        return (lo + hi) / 2;
    default:
        return sum % 10;
    }
}

/* LRA's generate_tree(depth): writes the tree's tokens in prefix order (operator, arguments,
 * ]) and returns its value, or -1 once it outgrows cap. A tree that long is rejected by the
 * length filter whatever comes next, so stopping early changes no accepted tree. */
static int gen_tree(tree_gen *g, int depth)
{
    double r = depth < g->max_depth ? uniform53(g->key, g->counter++) : 1.0;
    if (r > VALUE_P) {
        int v = (int)lra_below(g->key, g->counter++, 10);
        return emit(g, TOK_DIGIT0 + v) ? v : -1;
    }
    int slot = g->n;
    if (!emit(g, TOK_PAD)) return -1; /* the operator, drawn after the arguments as in LRA */
    int args = 2 + (int)lra_below(g->key, g->counter++, (uint32_t)(g->max_args - 1));
    int count[10] = {0}, sum = 0;
    for (int i = 0; i < args; i++) {
        int v = gen_tree(g, depth + 1);
        if (v < 0) return -1;
        count[v]++;
        sum += v;
    }
    int op = (int)lra_below(g->key, g->counter++, N_OPS);
    g->out[slot] = (uint8_t)(TOK_MIN + op);
    return emit(g, TOK_CLOSE) ? apply_op(op, count, args, sum) : -1;
}

/* Candidate number c: its length (0 when rejected) and value. */
static int gen_candidate(const gen_params *p, uint64_t key, uint64_t c, uint8_t *out,
                         int *value)
{
    tree_gen g = {.key = lra_key(key, c), .max_depth = (int)p->max_depth,
                  .max_args = (int)p->max_args, .cap = (int)p->max_len - 1, .out = out};
    *value = gen_tree(&g, 1);
    return *value >= 0 && g.n > p->min_len ? g.n : 0;
}

static uint64_t hash_tokens(const uint8_t *t, int n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (int i = 0; i < n; i++) h = (h ^ t[i]) * 0x100000001b3ULL;
    return lra_mix64(h);
}

static void set_init(tree_set *s, long want)
{
    memset(s, 0, sizeof *s);
    s->want = want;
    size_t slots = 16;
    while (slots < 2 * (size_t)want) slots *= 2;
    s->mask = slots - 1;
    s->slot = lra_alloc(slots * sizeof *s->slot, "listops hash set");
    s->slot_hash = lra_alloc(slots * sizeof *s->slot_hash, "listops hash set");
    s->start = lra_alloc((size_t)want * sizeof *s->start, "listops trees");
    s->len = lra_alloc((size_t)want * sizeof *s->len, "listops trees");
    s->label = lra_alloc((size_t)want * sizeof *s->label, "listops trees");
}

void listops_set_free(tree_set *s)
{
    lra_free(s->slot);
    lra_free(s->slot_hash);
    lra_free(s->start);
    lra_free(s->len);
    lra_free(s->label);
    free(s->tokens);
    memset(s, 0, sizeof *s);
}

static void set_append(tree_set *s, const uint8_t *t, int n, int value)
{
    if (s->used + (size_t)n > s->cap) {
        s->cap = 2 * s->cap + (size_t)n + (1u << 20);
        s->tokens = realloc(s->tokens, s->cap);
        if (!s->tokens) lra_die("out of memory storing %ld ListOps trees", s->n);
    }
    memcpy(s->tokens + s->used, t, (size_t)n);
    s->start[s->n] = s->used;
    s->len[s->n] = n;
    s->label[s->n] = value;
    s->used += (size_t)n;
    s->n++;
}

/* Adds a tree unless an identical one is present. Returns 1 when added. */
static int set_add(tree_set *s, const uint8_t *t, int n, int value)
{
    uint64_t h = hash_tokens(t, n);
    size_t i = (size_t)h & s->mask;
    for (; s->slot[i]; i = (i + 1) & s->mask) {
        long k = s->slot[i] - 1;
        if (s->slot_hash[i] == h && s->len[k] == n &&
            memcmp(s->tokens + s->start[k], t, (size_t)n) == 0)
            return 0;
    }
    set_append(s, t, n, value);
    s->slot[i] = s->n;
    s->slot_hash[i] = h;
    return 1;
}

/* The longest tree the recursion can build: a bound to reject settings that never finish. */
static double longest_tree(long depth, const gen_params *p)
{
    if (depth >= p->max_depth) return 1;
    return 2 + (double)p->max_args * longest_tree(depth + 1, p);
}

static int check_params(const gen_params *p, char *err, size_t errlen)
{
    if (p->max_len - p->min_len < 2) {
        snprintf(err, errlen, "listops: no length fits min_len %ld < length < max_len %ld",
                 p->min_len, p->max_len);
        return -1;
    }
    if (longest_tree(1, p) <= (double)p->min_len) {
        snprintf(err, errlen, "listops: with max_depth %ld and max_args %ld no tree is longer "
                 "than min_len %ld", p->max_depth, p->max_args, p->min_len);
        return -1;
    }
    return 0;
}

/* Candidates per parallel batch, and when to give up: fewer than 1 in 10^4 candidates gives a
 * new tree (a length window that is too unlikely, or too few distinct trees). */
#define BATCH 1024
#define GIVE_UP_AFTER 20000000L
#define GIVE_UP_RATE 10000L

/* Generates p->n[*] distinct trees in acceptance order. *tried: candidates drawn. */
int listops_generate_trees(const gen_params *p, tree_set *set, long *tried, char *err,
                           size_t errlen)
{
    if (check_params(p, err, errlen) != 0) return -1;
    long want = p->n[0] + p->n[1] + p->n[2];
    uint64_t key = lra_key((uint64_t)p->seed, 0x11570b5);
    size_t width = (size_t)p->max_len;
    uint8_t *buf = lra_alloc(BATCH * width, "listops candidates");
    int len[BATCH], value[BATCH];
    set_init(set, want);
    long c0 = 0;
    for (; set->n < want; c0 += BATCH) {
        if (c0 >= GIVE_UP_AFTER && c0 / GIVE_UP_RATE > set->n) {
            snprintf(err, errlen, "listops: only %ld distinct trees in %ld candidates with "
                     "%ld < length < %ld, max_depth %ld, max_args %ld: giving up", set->n, c0,
                     p->min_len, p->max_len, p->max_depth, p->max_args);
            lra_free(buf);
            listops_set_free(set);
            return -1;
        }
#pragma omp parallel for schedule(dynamic, 16)
        for (int i = 0; i < BATCH; i++)
            len[i] = gen_candidate(p, key, (uint64_t)(c0 + i), buf + (size_t)i * width,
                                   &value[i]);
        for (int i = 0; i < BATCH && set->n < want; i++) {
            if (len[i]) set_add(set, buf + (size_t)i * width, len[i], value[i]);
            *tried = c0 + i + 1;
        }
    }
    lra_free(buf);
    return 0;
}

/* Acceptance order: test, then val, then train (see the top of listops.c). */
static const int gen_order[LRA_N_SPLITS] = {LRA_SPLIT_TEST, LRA_SPLIT_VAL, LRA_SPLIT_TRAIN};

/* The index of split s's first tree in the set. */
long listops_split_first(const gen_params *p, int s)
{
    long first = 0;
    for (int k = 0; gen_order[k] != s; k++) first += p->n[gen_order[k]];
    return first;
}

static void fill_split(const tree_set *set, long first, long n, int seq_len, lra_dataset *d,
                       long *truncated)
{
    lra_dataset_alloc(d, (int)n, 1, seq_len);
    for (long i = 0; i < n; i++) {
        long k = first + i;
        int32_t *row = d->tokens + (size_t)i * (size_t)seq_len;
        int len = set->len[k] < seq_len ? set->len[k] : seq_len;
        for (int t = 0; t < len; t++) row[t] = set->tokens[set->start[k] + (size_t)t];
        d->labels[i] = set->label[k];
        if (set->len[k] > seq_len) (*truncated)++;
    }
}

static void describe_params(const gen_params *p, long tried, lra_provenance *prov)
{
    lra_prov_add(prov, "source", "generated by tasks/listops.c (LRA listops.py recursion)");
    lra_prov_add(prov, "generator", "data_seed %ld, %ld < length < %ld, max_depth %ld, "
                 "max_args %ld, leaf probability %.2f, ops MIN MAX MED SM; %ld distinct of %ld "
                 "candidates; split order test, val, train", p->seed, p->min_len, p->max_len,
                 p->max_depth, p->max_args, 1 - VALUE_P, p->n[0] + p->n[1] + p->n[2], tried);
}

int listops_build_generated(const gen_params *p, int seq_len, lra_dataset split[LRA_N_SPLITS],
                            lra_provenance *prov, char *err, size_t errlen)
{
    tree_set set;
    long tried = 0, truncated = 0;
    if (listops_generate_trees(p, &set, &tried, err, errlen) != 0) return -1;
    for (int s = 0; s < LRA_N_SPLITS; s++)
        fill_split(&set, listops_split_first(p, s), p->n[s], seq_len, &split[s], &truncated);
    listops_set_free(&set);
    describe_params(p, tried, prov);
    lra_prov_add(prov, "truncated", "%ld sequences longer than seq_len %d were cut", truncated,
                 seq_len);
    return 0;
}
