/* listops.c — LRA ListOps: the generator of lra_benchmarks/data/listops.py, a loader of its
 * basic_{train,val,test}.tsv files (ours or the original release), and LRA's preprocessing.
 *
 * Vocabulary (fixed, so that ids never depend on which file was read first, unlike LRA's
 * TokenTextEncoder built from validation examples):
 *     0 padding   1-10 digits 0-9   11 [MIN   12 [MAX   13 [MED   14 [SM   15 ]
 * 16 ids, 10 classes. Preprocessing as in LRA's input pipeline: ( and ) are dropped, ] is kept
 * as a token of its own (pitfall 1: a tokenizer that dropped it made the task unsolvable), and
 * the rest is cut or padded to seq_len (LRA: 2000). What is left after dropping parentheses is
 * exactly the generator's counted length, so at LRA's settings nothing is ever cut (pitfall 2);
 * when a shorter seq_len cuts a sequence, provenance records how many were cut (LRA cuts
 * silently).
 *
 * Where data comes from: env->input (a directory or archive holding basic_*.tsv); else
 * <data root>/listops-1000/ or <data root>/listops/ when they hold the TSVs (unless
 * task.generate=1); else the generator, in memory.
 *
 * The generator follows LRA's recursion (reference §2.2) draw for draw in kind and order, but
 * with the suite's counter-based RNG: Python's random stream cannot be reproduced, only its
 * distribution. Candidate trees are numbered; candidate c is a pure function of (data_seed, c),
 * so candidates are generated in parallel and accepted in index order, and the result does not
 * depend on the number of threads. Accepted trees go to test, then val, then train (LRA cuts
 * its set in hash order, which is arbitrary anyway); this keeps val and test fixed when only
 * n_train changes.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lra_rng.h"
#include "source.h"
#include "task.h"
#include "util.h"

/* ---- vocabulary and limits ------------------------------------------------------------ */

enum {
    TOK_PAD = 0,
    TOK_DIGIT0 = 1, /* digit d is TOK_DIGIT0 + d */
    TOK_MIN = 11,   /* the four operators, in LRA's order */
    TOK_MAX,
    TOK_MED,
    TOK_SM,
    TOK_CLOSE, /* ] */
    LISTOPS_VOCAB,
    LISTOPS_CLASSES = 10,
    N_OPS = 4,
};
static const char *const op_names[N_OPS] = {"[MIN", "[MAX", "[MED", "[SM"};

/* A released Source line is about 10 kB; anything near this is not ListOps. */
#define LINE_LIMIT (1 << 20)
/* The released basic_train.tsv is several hundred MB. */
#define FILE_LIMIT ((size_t)4 << 30)
#define HEADER "Source\tTarget"

static const char *const file_names[LRA_N_SPLITS] = {"basic_train.tsv", "basic_val.tsv",
                                                     "basic_test.tsv"};

/* ---- parser ---------------------------------------------------------------------------- */

/* Copies a field of untrusted bytes into an error message: at most 24 of them, non-printable
 * ones as '?'. */
static const char *echo(char *buf, size_t n, const char *s, size_t len)
{
    size_t k = 0, shown = len < 24 ? len : 24;
    for (size_t i = 0; i < shown && k + 4 < n; i++)
        buf[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (shown < len && k + 4 < n) k += (size_t)snprintf(buf + k, n - k, "...");
    buf[k] = 0;
    return buf;
}

/* The id of one Source token, 0 for a parenthesis (dropped), -1 when unknown. */
static int token_id(const char *t, size_t n)
{
    if (n == 1) {
        if (*t == '(' || *t == ')') return 0;
        if (*t == ']') return TOK_CLOSE;
        if (*t >= '0' && *t <= '9') return TOK_DIGIT0 + (*t - '0');
        return -1;
    }
    for (int op = 0; op < N_OPS; op++)
        if (strlen(op_names[op]) == n && memcmp(t, op_names[op], n) == 0) return TOK_MIN + op;
    return -1;
}

typedef struct line_ctx {
    const char *origin;
    long lineno;
    char *err;
    size_t errlen;
} line_ctx;

static int field_error(const line_ctx *c, const char *field, const char *what, const char *s,
                       size_t len)
{
    char shown[128];
    snprintf(c->err, c->errlen, "%s:%ld: %s: %s '%s'", c->origin, c->lineno, field, what,
             echo(shown, sizeof shown, s, len));
    return -1;
}

/* Target: a decimal integer 0-9. */
static int parse_label(const line_ctx *c, const char *s, size_t len, int32_t *label)
{
    if (len == 0) return field_error(c, "Target", "empty label", s, len);
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return field_error(c, "Target", "not an integer label", s, len);
        if (v < 1000) v = 10 * v + (s[i] - '0');
    }
    if (v >= LISTOPS_CLASSES)
        return field_error(c, "Target", "label out of range 0-9", s, len);
    *label = (int32_t)v;
    return 0;
}

/* Source: space-separated tokens into row[0..seq_len), parentheses dropped. Sets *count to the
 * number of tokens kept before cutting. */
static int parse_source(const line_ctx *c, const char *s, size_t len, int32_t *row,
                        int seq_len, long *count)
{
    long kept = 0, index = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] == ' ') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && s[i] != ' ') i++;
        index++;
        int id = token_id(s + start, i - start);
        if (id < 0) {
            char what[64];
            snprintf(what, sizeof what, "unknown token %ld", index);
            return field_error(c, "Source", what, s + start, i - start);
        }
        if (id == 0) continue;
        if (kept < seq_len) row[kept] = id;
        kept++;
    }
    if (kept == 0) return field_error(c, "Source", "no ListOps tokens in", s, len);
    *count = kept;
    return 0;
}

/* One "Source<TAB>Target" line. */
static int parse_line(const line_ctx *c, const char *line, size_t len, int32_t *row,
                      int seq_len, int32_t *label, long *truncated)
{
    if (len > LINE_LIMIT) {
        snprintf(c->err, c->errlen, "%s:%ld: Source: line too long (%zu bytes; the limit is "
                 "%d)", c->origin, c->lineno, len, LINE_LIMIT);
        return -1;
    }
    const char *tab = memchr(line, '\t', len);
    if (!tab) {
        snprintf(c->err, c->errlen, "%s:%ld: Target: missing (1 tab-separated field, "
                 "expected 2: Source, Target)", c->origin, c->lineno);
        return -1;
    }
    size_t src_len = (size_t)(tab - line), tgt_len = len - src_len - 1;
    const char *target = tab + 1, *extra = memchr(target, '\t', tgt_len);
    if (extra) {
        long fields = 2;
        for (const char *p = extra; p; p = memchr(p + 1, '\t', len - (size_t)(p + 1 - line)))
            fields++;
        snprintf(c->err, c->errlen, "%s:%ld: Target: followed by more fields (%ld "
                 "tab-separated fields, expected 2: Source, Target)", c->origin, c->lineno,
                 fields);
        return -1;
    }
    long count = 0;
    if (parse_label(c, target, tgt_len, label) != 0 ||
        parse_source(c, line, src_len, row, seq_len, &count) != 0)
        return -1;
    if (count > seq_len) (*truncated)++;
    return 0;
}

static int check_header(const char *origin, lra_lines *lines, char *err, size_t errlen)
{
    const char *line;
    long len = lra_lines_next(lines, &line);
    if (len < 0) {
        snprintf(err, errlen, "%s:1: header: the file is empty (expected 'Source<TAB>Target')",
                 origin);
        return -1;
    }
    if ((size_t)len != strlen(HEADER) || memcmp(line, HEADER, (size_t)len) != 0) {
        char shown[128];
        snprintf(err, errlen, "%s:1: header: expected 'Source<TAB>Target', found '%s'", origin,
                 echo(shown, sizeof shown, line, (size_t)len));
        return -1;
    }
    return 0;
}

/* Declared again in tests/test_task_listops.c and tests/fuzz/fuzz_listops.c.
 * Parses one ListOps TSV held in memory (header, then Source<TAB>Target lines) into *out with
 * seq_len tokens per example; origin names it in messages ("dir/basic_val.tsv:12: Target: ...").
 * Adds the number of sequences cut to seq_len to *truncated. Returns 0, or -1 with a message
 * naming origin, line and field, and *out left empty. */
int lra_listops_parse(const char *origin, const char *data, size_t size, int seq_len,
                      lra_dataset *out, long *truncated, char *err, size_t errlen);

int lra_listops_parse(const char *origin, const char *data, size_t size, int seq_len,
                      lra_dataset *out, long *truncated, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    lra_lines lines;
    lra_lines_init(&lines, data, size);
    if (check_header(origin, &lines, err, errlen) != 0) return -1;
    const char *line;
    long n = 0;
    while (lra_lines_next(&lines, &line) >= 0) n++;
    if (n == 0 || n > INT_MAX) {
        snprintf(err, errlen, "%s:2: Source: %s", origin,
                 n ? "too many lines" : "no examples after the header");
        return -1;
    }
    lra_dataset_alloc(out, (int)n, 1, seq_len);
    lra_lines_init(&lines, data, size);
    lra_lines_next(&lines, &line);
    line_ctx c = {.origin = origin, .err = err, .errlen = errlen};
    for (long i = 0; i < n; i++) {
        long len = lra_lines_next(&lines, &line);
        c.lineno = lines.lineno;
        if (parse_line(&c, line, (size_t)len, out->tokens + (size_t)i * (size_t)seq_len,
                       seq_len, &out->labels[i], truncated) != 0) {
            lra_dataset_free(out);
            return -1;
        }
    }
    return 0;
}

/* ---- loading a directory or archive ---------------------------------------------------- */

typedef struct load_ctx {
    const char *root;
    int seq_len;
    long truncated;
    char found[LRA_N_SPLITS][PATH_MAX];
    char sha[LRA_N_SPLITS][65];
    lra_dataset *split;
} load_ctx;

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int load_entry(void *arg, const char *path, const unsigned char *data, size_t size,
                      char *err, size_t errlen)
{
    load_ctx *ctx = arg;
    int s = 0;
    while (s < LRA_N_SPLITS && strcmp(base_name(path), file_names[s]) != 0) s++;
    if (s == LRA_N_SPLITS) return 0;
    if (ctx->found[s][0]) {
        snprintf(err, errlen, "%s: holds both %s and %s; expected one", ctx->root,
                 ctx->found[s], path);
        return -1;
    }
    snprintf(ctx->found[s], sizeof ctx->found[s], "%s", path);
    lra_sha256(data, size, ctx->sha[s]);
    char origin[PATH_MAX + 64];
    snprintf(origin, sizeof origin, "%s/%s", ctx->root, path);
    return lra_listops_parse(origin, (const char *)data, size, ctx->seq_len, &ctx->split[s],
                             &ctx->truncated, err, errlen);
}

/* Keeps the first n examples of d (an explicit task.n_* caps what is read from files). */
static void keep_first(lra_dataset *d, long n)
{
    if (n < d->n) d->n = (int)n;
}

static int load_source(const char *root, int seq_len, const long cap[LRA_N_SPLITS],
                       lra_dataset split[LRA_N_SPLITS], lra_provenance *prov, char *err,
                       size_t errlen)
{
    load_ctx ctx = {.root = root, .seq_len = seq_len, .split = split};
    if (lra_source_foreach(root, ".tsv", FILE_LIMIT, load_entry, &ctx, err, errlen) != 0)
        return -1;
    for (int s = 0; s < LRA_N_SPLITS; s++)
        if (!ctx.found[s][0]) {
            snprintf(err, errlen, "%s: no %s (expected LRA's basic_{train,val,test}.tsv)", root,
                     file_names[s]);
            return -1;
        }
    lra_prov_add(prov, "source", "%s", root);
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        keep_first(&split[s], cap[s]);
        lra_prov_add(prov, lra_split_names[s], "%s: %d examples, sha256 %s", ctx.found[s],
                     split[s].n, ctx.sha[s]);
    }
    lra_prov_add(prov, "truncated", "%ld sequences longer than seq_len %d were cut",
                 ctx.truncated, seq_len);
    return 0;
}

/* ---- generator ------------------------------------------------------------------------- */

typedef struct gen_params {
    long n[LRA_N_SPLITS];
    long seed, min_len, max_len, max_depth, max_args;
} gen_params;

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

/* The distinct accepted trees, in acceptance order, with a hash set over their tokens (the
 * printed expression is a function of the token sequence and back, so this de-duplicates the
 * printed expressions). */
typedef struct tree_set {
    uint8_t *tokens; /* concatenated */
    size_t used, cap;
    size_t *start;
    int *len;
    int32_t *label;
    long n, want;
    long *slot; /* open addressing: tree index + 1, 0 = empty */
    uint64_t *slot_hash;
    size_t mask;
} tree_set;

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

static void set_free(tree_set *s)
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
static int generate(const gen_params *p, tree_set *set, long *tried, char *err, size_t errlen)
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
            set_free(set);
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

/* Acceptance order: test, then val, then train (see the top of the file). */
static const int gen_order[LRA_N_SPLITS] = {LRA_SPLIT_TEST, LRA_SPLIT_VAL, LRA_SPLIT_TRAIN};

/* The index of split s's first tree in the set. */
static long split_first(const gen_params *p, int s)
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

static int build_generated(const gen_params *p, int seq_len, lra_dataset split[LRA_N_SPLITS],
                           lra_provenance *prov, char *err, size_t errlen)
{
    tree_set set;
    long tried = 0, truncated = 0;
    if (generate(p, &set, &tried, err, errlen) != 0) return -1;
    for (int s = 0; s < LRA_N_SPLITS; s++)
        fill_split(&set, split_first(p, s), p->n[s], seq_len, &split[s], &truncated);
    set_free(&set);
    describe_params(p, tried, prov);
    lra_prov_add(prov, "truncated", "%ld sequences longer than seq_len %d were cut", truncated,
                 seq_len);
    return 0;
}

/* ---- build ----------------------------------------------------------------------------- */

static const char *const listops_opts[] = {"n_train", "n_val",     "n_test",   "data_seed",
                                           "min_len", "max_len",   "max_depth", "max_args",
                                           "generate", NULL};

/* Defaults and ranges shared by task options and CLI flags. */
#define MAX_N 10000000L
#define MAX_LEN_LIMIT 1000000L
#define MAX_DEPTH_LIMIT 64L
#define MAX_ARGS_LIMIT 1000L

static int read_opts(const lra_config *cfg, gen_params *p, long *force_gen, char *err,
                     size_t errlen)
{
    const char *t = "listops";
    if (lra_task_check_opts(cfg, t, listops_opts, err, errlen) != 0) return -1;
    const struct {
        const char *name;
        long def, lo, hi, *out;
    } opts[] = {
        {"n_train", 96000, 1, MAX_N, &p->n[0]},
        {"n_val", 2000, 1, MAX_N, &p->n[1]},
        {"n_test", 2000, 1, MAX_N, &p->n[2]},
        {"data_seed", 1, 0, LONG_MAX, &p->seed},
        {"min_len", 500, 0, MAX_LEN_LIMIT, &p->min_len},
        {"max_len", 2000, 2, MAX_LEN_LIMIT, &p->max_len},
        {"max_depth", 10, 1, MAX_DEPTH_LIMIT, &p->max_depth},
        {"max_args", 10, 2, MAX_ARGS_LIMIT, &p->max_args},
        {"generate", 0, 0, 1, force_gen},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (lra_task_opt_int(cfg, t, opts[i].name, opts[i].def, opts[i].lo, opts[i].hi,
                             opts[i].out, err, errlen) != 0)
            return -1;
    return 0;
}

/* <root>/listops-1000 (the release's name) or <root>/listops, when it holds the TSVs. */
static int find_release(const char *root, char *dir, size_t n)
{
    static const char *const names[] = {"listops-1000", "listops"};
    for (size_t i = 0; root && i < sizeof names / sizeof names[0]; i++) {
        char probe[PATH_MAX + 64];
        snprintf(dir, n, "%s/%s", root, names[i]);
        snprintf(probe, sizeof probe, "%s/%s", dir, file_names[0]);
        if (lra_is_file(probe)) return 1;
    }
    return 0;
}

static int listops_build(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                         lra_provenance *prov, char *err, size_t errlen)
{
    const lra_config *cfg = env->cfg;
    gen_params p;
    long force_gen = 0;
    if (read_opts(cfg, &p, &force_gen, err, errlen) != 0) return -1;
    if (cfg->seq_len < 1) {
        snprintf(err, errlen, "task listops: seq_len must be at least 1 (got %d)",
                 cfg->seq_len);
        return -1;
    }
    lra_prov_add(prov, "vocabulary", "0 pad, 1-10 digits 0-9, 11 [MIN, 12 [MAX, 13 [MED, "
                 "14 [SM, 15 ]; ( and ) dropped; cut or padded to seq_len %d", cfg->seq_len);
    /* From files, only an explicit task.n_* limits the examples read. */
    long cap[LRA_N_SPLITS];
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        char name[16];
        snprintf(name, sizeof name, "n_%s", lra_split_names[s]);
        cap[s] = lra_task_opt(cfg, name) ? p.n[s] : LONG_MAX;
    }
    char dir[PATH_MAX];
    if (env->input) return load_source(env->input, cfg->seq_len, cap, split, prov, err, errlen);
    if (!force_gen && find_release(env->data_root, dir, sizeof dir))
        return load_source(dir, cfg->seq_len, cap, split, prov, err, errlen);
    return build_generated(&p, cfg->seq_len, split, prov, err, errlen);
}

/* ---- lra data generate listops ---------------------------------------------------------- */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lra data generate listops --out DIR [--train N] [--val N] [--test N]\n"
            "           [--seed S] [--min-len N] [--max-len N] [--max-depth N] "
            "[--max-args N]\n\n"
            "Writes DIR/basic_{train,val,test}.tsv in LRA's format (header Source<TAB>Target,\n"
            "fully parenthesised expressions) with LRA's generator: MIN, MAX, MED, SM over\n"
            "2..max-args arguments, leaf probability 0.75 below max-depth, trees kept when\n"
            "min-len < length < max-len (counted without parentheses), de-duplicated.\n"
            "Defaults: 96000/2000/2000 trees, seed 1, lengths 500..2000, depth 10, 10 args.\n");
}

typedef struct cli_flag {
    const char *name;
    long *value;
    long lo, hi;
} cli_flag;

/* Parses "--name V" or "--name=V" at argv[*i]. Returns 1 when matched, 0 when not, -1 on a
 * bad value (message printed). */
static int cli_int(int argc, char **argv, int *i, const cli_flag *f)
{
    size_t n = strlen(f->name);
    const char *a = argv[*i], *v;
    if (strncmp(a, f->name, n) != 0 || (a[n] != 0 && a[n] != '=')) return 0;
    if (a[n] == '=') {
        v = a + n + 1;
    } else if (*i + 1 < argc) {
        v = argv[++*i];
    } else {
        fprintf(stderr, "lra data generate listops: %s needs a value\n", f->name);
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < f->lo || x > f->hi) {
        fprintf(stderr, "lra data generate listops: %s wants an integer in [%ld, %ld], got "
                "'%s'\n", f->name, f->lo, f->hi, v);
        return -1;
    }
    *f->value = x;
    return 1;
}

/* Returns EXIT_OK with *out set, or an exit status (after --help or a usage error). */
static int parse_cli(int argc, char **argv, gen_params *p, const char **out, int *done)
{
    *p = (gen_params){.n = {96000, 2000, 2000}, .seed = 1, .min_len = 500, .max_len = 2000,
                      .max_depth = 10, .max_args = 10};
    const cli_flag flags[] = {
        {"--train", &p->n[0], 1, MAX_N},         {"--val", &p->n[1], 1, MAX_N},
        {"--test", &p->n[2], 1, MAX_N},          {"--seed", &p->seed, 0, LONG_MAX},
        {"--min-len", &p->min_len, 0, MAX_LEN_LIMIT},
        {"--max-len", &p->max_len, 2, MAX_LEN_LIMIT},
        {"--max-depth", &p->max_depth, 1, MAX_DEPTH_LIMIT},
        {"--max-args", &p->max_args, 2, MAX_ARGS_LIMIT},
    };
    *out = NULL;
    *done = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            *done = 1;
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            *out = argv[++i];
            continue;
        }
        if (strncmp(argv[i], "--out=", 6) == 0) {
            *out = argv[i] + 6;
            continue;
        }
        int matched = 0;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0] && !matched; f++)
            matched = cli_int(argc, argv, &i, &flags[f]);
        if (matched < 0) return EXIT_USAGE;
        if (!matched) {
            fprintf(stderr, "lra data generate listops: unexpected argument '%s' (see "
                    "--help)\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!*out || !**out) {
        fprintf(stderr, "lra data generate listops: --out DIR is required (see --help)\n");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Arguments of each operator node in a prefix token sequence, indexed by its position. */
static void count_args(const uint8_t *t, int n, int *args)
{
    int stack[MAX_DEPTH_LIMIT + 1], depth = 0;
    for (int i = 0; i < n; i++) {
        if (t[i] == TOK_CLOSE) {
            depth--;
            continue;
        }
        if (depth > 0) args[stack[depth - 1]]++;
        if (t[i] >= TOK_MIN) {
            args[i] = 0;
            stack[depth++] = i;
        }
    }
}

/* Prints one tree as LRA's to_string does. An operator node with k arguments is a left-nested
 * chain of k + 1 pairs, "( ( ( [MAX 2 ) 9 ) ] )", so it opens k + 1 parentheses before the
 * operator, and each argument and the final ] close one. Returns the bytes written; out must
 * hold 16 bytes per token. */
static size_t print_tree(const uint8_t *t, int n, int *args, char *out)
{
    char *o = out;
    int depth = 0;
    count_args(t, n, args);
    for (int i = 0; i < n; i++) {
        if (i > 0) *o++ = ' ';
        if (t[i] >= TOK_MIN && t[i] < TOK_CLOSE) {
            const char *name = op_names[t[i] - TOK_MIN];
            for (int k = 0; k <= args[i]; k++, o += 2) memcpy(o, "( ", 2);
            memcpy(o, name, strlen(name));
            o += strlen(name);
            depth++;
            continue;
        }
        if (t[i] == TOK_CLOSE) {
            memcpy(o, "] )", 3);
            o += 3;
            depth--;
        } else {
            *o++ = (char)('0' + t[i] - TOK_DIGIT0);
        }
        if (depth > 0) {
            memcpy(o, " )", 2);
            o += 2;
        }
    }
    return (size_t)(o - out);
}

/* Writes one split to DIR/name through a temporary file, so that a reader never sees a
 * partial file. Lines end in \r\n, as Python's csv.writer writes them. */
static int write_split(const char *dir, const char *name, const tree_set *set, long first,
                       long n, long max_len)
{
    char path[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "lra data generate listops: cannot create %s: %s\n", tmp,
                strerror(errno));
        return -1;
    }
    char *text = lra_alloc(16 * (size_t)max_len + 64, "listops line");
    int *args = lra_alloc((size_t)max_len * sizeof *args, "listops line");
    fputs(HEADER "\r\n", f);
    for (long i = first; i < first + n; i++) {
        size_t len = print_tree(set->tokens + set->start[i], set->len[i], args, text);
        len += (size_t)sprintf(text + len, "\t%d\r\n", (int)set->label[i]);
        fwrite(text, 1, len, f);
    }
    lra_free(text);
    lra_free(args);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        fprintf(stderr, "lra data generate listops: cannot write %s: %s\n", path,
                strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int make_dirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int listops_generate_cli(int argc, char **argv)
{
    gen_params p;
    const char *out;
    int done;
    int rc = parse_cli(argc, argv, &p, &out, &done);
    if (rc != EXIT_OK || done) return rc;
    if (make_dirs(out) != 0 || !lra_is_dir(out)) {
        fprintf(stderr, "lra data generate listops: cannot create %s: %s\n", out,
                strerror(errno));
        return EXIT_FAIL;
    }
    tree_set set;
    long tried = 0;
    char err[512];
    double t0 = lra_now();
    if (generate(&p, &set, &tried, err, sizeof err) != 0) {
        fprintf(stderr, "lra data generate %s\n", err);
        return EXIT_FAIL;
    }
    double t1 = lra_now();
    for (int s = 0; s < LRA_N_SPLITS && rc == EXIT_OK; s++)
        if (write_split(out, file_names[s], &set, split_first(&p, s), p.n[s], p.max_len) != 0)
            rc = EXIT_FAIL;
    set_free(&set);
    if (rc == EXIT_OK)
        printf("listops: %ld train, %ld val, %ld test trees (seed %ld; %ld candidates, %.1f%% "
               "kept) generated in %.2f s, written to %s in %.2f s\n", p.n[0], p.n[1], p.n[2],
               p.seed, tried, 100.0 * (double)(p.n[0] + p.n[1] + p.n[2]) / (double)tried,
               t1 - t0, out, lra_now() - t1);
    return rc;
}

const lra_task lra_task_listops = {
    .name = "listops",
    .help = "evaluate nested MIN/MAX/MED/SM expressions, 500-2000 tokens (LRA's files or "
            "generated; 10 classes)",
    .classes = LISTOPS_CLASSES,
    .vocab = LISTOPS_VOCAB,
    .docs = 1,
    .build = listops_build,
    .generate_cli = listops_generate_cli,
};
