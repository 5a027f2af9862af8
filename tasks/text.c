/* text.c — LRA "Text": byte-level IMDb sentiment classification (lra-tasks.md §3).
 *
 * Source: an aclImdb/ directory or the aclImdb.tar.gz archive, read in place. Reviews are the
 * files {train,test}/{pos,neg}/<id>_<rating>.txt; everything else (urls_*.txt, imdb.vocab,
 * train/unsup/) is ignored. The label comes from the folder (pos = 1, neg = 0) and the rating
 * in the file name must agree with it (neg 1-4, pos 7-10), which catches misfiled reviews.
 * Default: <data root>/imdb/aclImdb.tar.gz, else tasks/samples/aclImdb-sample.tar.gz.
 *
 * Tokens as TFDS's ByteTextEncoder: byte value + 1, 0 = padding, vocabulary 257; each review
 * is cut or padded to seq_len, which LRA left ambiguous (1K config, 4K paper, pitfall 3), so it
 * is a parameter recorded with the data: LRA's range is 1000 to 4096; shorter lengths (down to
 * 16) are accepted for smoke runs such as the quick preset.
 *
 * Validation: LRA has none and evaluates on the test split (pitfall 4); task.val=test (the
 * default) reproduces that and says so in the provenance, task.val=holdout holds out a seeded,
 * label-stratified 10% of train instead. Each split is put in a seeded order so that the caps
 * task.n_train / n_val / n_test keep both labels; all of it depends on task.data_seed only.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lra_rng.h"
#include "source.h"
#include "task.h"

enum { MIN_LEN = 16, MAX_LEN = 4096, VOCAB = 257, LABELS = 2, MAX_REVIEW = 8 << 20 };

static const char *const text_opts[] = {"val", "data_seed", "n_train", "n_val", "n_test", NULL};

/* ---- one review ------------------------------------------------------------------------ */

/* Copies path component `back` counted from the end (0 = file name) into buf. */
static void component(const char *path, int back, char *buf, size_t n)
{
    const char *end = path + strlen(path), *start = end;
    for (int k = 0; k <= back; k++) {
        end = start;
        if (k > 0 && end > path) end--; /* skip the '/' */
        start = end;
        while (start > path && start[-1] != '/') start--;
    }
    size_t len = (size_t)(end - start);
    snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), start);
}

/* Parses "<id>_<rating>.txt"; returns the rating or -1. */
static int name_rating(const char *name)
{
    const char *p = name;
    int rating = 0, digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (!digits || *p++ != '_') return -1;
    for (digits = 0; *p >= '0' && *p <= '9' && digits < 3; p++, digits++)
        rating = 10 * rating + (*p - '0');
    return digits && strcmp(p, ".txt") == 0 ? rating : -1;
}

/* Split and label from {train,test}/{pos,neg}/<id>_<rating>.txt. Returns 1 for a review, 0
 * for a file that is not one, -1 with a message naming the file and field. */
static int review_place(const char *path, int *split, int *label, char *err, size_t errlen)
{
    char dir[64], polarity[64], name[256];
    component(path, 2, dir, sizeof dir);
    component(path, 1, polarity, sizeof polarity);
    component(path, 0, name, sizeof name);
    *split = !strcmp(dir, "train") ? LRA_SPLIT_TRAIN : !strcmp(dir, "test") ? LRA_SPLIT_TEST : -1;
    *label = !strcmp(polarity, "pos") ? 1 : !strcmp(polarity, "neg") ? 0 : -1;
    if (*split < 0 || *label < 0) return 0;
    int rating = name_rating(name);
    if (rating < 0) {
        snprintf(err, errlen, "%s: file name is not <id>_<rating>.txt", path);
        return -1;
    }
    if (*label ? rating < 7 || rating > 10 : rating < 1 || rating > 4) {
        snprintf(err, errlen, "%s: field rating = %d contradicts folder %s (expected %s)", path,
                 rating, polarity, *label ? "7-10" : "1-4");
        return -1;
    }
    return 1;
}

/* Byte tokens: value + 1, then padding to seq_len. */
static void review_tokens(const unsigned char *data, size_t size, int seq_len, int32_t *tok)
{
    size_t kept = size < (size_t)seq_len ? size : (size_t)seq_len;
    for (size_t i = 0; i < kept; i++) tok[i] = (int32_t)data[i] + 1;
    for (size_t i = kept; i < (size_t)seq_len; i++) tok[i] = 0;
}

/* One aclImdb entry in memory, for the fuzz harness and the tests: 1 with its split, label and
 * seq_len tokens if it is a review, 0 if the path is not a review, -1 with a message. */
int lra_imdb_entry(const char *path, const unsigned char *data, size_t size, int seq_len,
                   int32_t *tokens, int *split, int *label, char *err, size_t errlen)
{
    int rc = review_place(path, split, label, err, errlen);
    if (rc == 1 && size == 0) {
        snprintf(err, errlen, "%s: empty review", path);
        return -1;
    }
    if (rc == 1) review_tokens(data, size, seq_len, tokens);
    return rc;
}

/* A traversal-independent sort key: the first 64 bits of sha256(name). Sorting by it before
 * the seeded shuffles makes the splits the same whether the files come from a directory or
 * an archive, in whatever order the archive stores them. */
static uint64_t name_key(const char *name)
{
    char hex[65];
    lra_sha256(name, strlen(name), hex);
    hex[16] = 0;
    return strtoull(hex, NULL, 16);
}

/* ---- the collected reviews ------------------------------------------------------------- */

typedef struct review {
    uint64_t key;    /* name_key of the path */
    size_t offset;   /* into review_set.bytes */
    size_t size;     /* full length in bytes */
    uint8_t split, label;
} review;

typedef struct review_set {
    int seq_len;
    unsigned char *bytes; /* the first seq_len bytes of every review, back to back */
    size_t used, room;
    review *r;
    long n, cap;
    char list_hash[65];   /* chained over (path, size) for directory sources */
} review_set;

static void set_free(review_set *s)
{
    free(s->bytes);
    free(s->r);
    memset(s, 0, sizeof *s);
}

static int set_grow(review_set *s, size_t bytes)
{
    if (s->used + bytes > s->room) {
        size_t room = 2 * (s->used + bytes) + (1 << 20);
        unsigned char *b = realloc(s->bytes, room);
        if (!b) return -1;
        s->bytes = b;
        s->room = room;
    }
    if (s->n == s->cap) {
        long cap = s->cap ? 2 * s->cap : 1024;
        review *r = realloc(s->r, (size_t)cap * sizeof *r);
        if (!r) return -1;
        s->r = r;
        s->cap = cap;
    }
    return 0;
}

/* Keeps only the bytes that can become tokens: 65 MB of reviews need not all stay. */
static int review_entry(void *ctx, const char *path, const unsigned char *data, size_t size,
                        char *err, size_t errlen)
{
    review_set *s = ctx;
    int split, label, rc = review_place(path, &split, &label, err, errlen);
    if (rc <= 0) return rc;
    if (size == 0) {
        snprintf(err, errlen, "%s: empty review", path);
        return -1;
    }
    char link[4200];
    int n = snprintf(link, sizeof link, "%s %s %zu", s->list_hash, path, size);
    lra_sha256(link, (size_t)n < sizeof link ? (size_t)n : sizeof link - 1, s->list_hash);
    size_t kept = size < (size_t)s->seq_len ? size : (size_t)s->seq_len;
    if (set_grow(s, kept) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(s->bytes + s->used, data, kept);
    s->r[s->n++] = (review){.key = name_key(path), .offset = s->used, .size = size,
                            .split = (uint8_t)split, .label = (uint8_t)label};
    s->used += kept;
    return 0;
}

static int by_key(const void *a, const void *b)
{
    uint64_t x = ((const review *)a)->key, y = ((const review *)b)->key;
    return (x > y) - (x < y);
}

/* Entry errors name the entry; say which directory or archive it is in as well. */
static void name_root(const char *root, char *err, size_t errlen)
{
    if (strncmp(err, root, strlen(root)) == 0) return;
    char entry[1024];
    snprintf(entry, sizeof entry, "%s", err);
    snprintf(err, errlen, "%s: %s", root, entry);
}

static int read_source(const char *root, review_set *s, char *err, size_t errlen)
{
    if (lra_source_foreach(root, ".txt", MAX_REVIEW, review_entry, s, err, errlen) != 0) {
        name_root(root, err, errlen);
        return -1;
    }
    if (s->n > 1) qsort(s->r, (size_t)s->n, sizeof *s->r, by_key);
    long count[2] = {0, 0};
    for (long i = 0; i < s->n; i++) count[s->r[i].split == LRA_SPLIT_TEST]++;
    if (count[0] == 0 || count[1] == 0) {
        snprintf(err, errlen, "%s: no %s reviews found (expected aclImdb/%s/{pos,neg}/"
                 "<id>_<rating>.txt)", root, count[0] ? "test" : "training",
                 count[0] ? "test" : "train");
        return -1;
    }
    return 0;
}

/* ---- splits ---------------------------------------------------------------------------- */

/* Moves a seeded, label-stratified 10% of train to validation (see lra_hold_out_quotas). */
static int hold_out(review_set *s, uint64_t key)
{
    long *idx = malloc((size_t)s->n * sizeof *idx), count[LABELS] = {0}, quota[LABELS];
    if (!idx) return -1;
    for (long i = 0; i < s->n; i++)
        if (s->r[i].split == LRA_SPLIT_TRAIN) count[s->r[i].label]++;
    lra_hold_out_quotas(count, LABELS, lra_key(key, 0x9a07a), quota);
    for (int c = 0; c < LABELS; c++) {
        long m = 0;
        for (long i = 0; i < s->n; i++)
            if (s->r[i].split == LRA_SPLIT_TRAIN && s->r[i].label == c) idx[m++] = i;
        lra_shuffle_index(idx, m, lra_key(key, (uint64_t)c));
        for (long k = 0; k < quota[c]; k++) s->r[idx[k]].split = LRA_SPLIT_VAL;
    }
    free(idx);
    return 0;
}

static int has_split(const review_set *s, int split)
{
    for (long i = 0; i < s->n; i++)
        if (s->r[i].split == split) return 1;
    return 0;
}

/* Fills a split from the reviews of source split `from` in a seeded order, keeping at most cap
 * (0 = all). */
static int fill_split(const review_set *s, int from, long cap, uint64_t key, lra_dataset *d)
{
    long *idx = malloc((size_t)s->n * sizeof *idx), m = 0;
    if (!idx) return -1;
    for (long i = 0; i < s->n; i++)
        if (s->r[i].split == from) idx[m++] = i;
    lra_shuffle_index(idx, m, key);
    if (cap > 0 && cap < m) m = cap;
    lra_dataset_alloc(d, (int)m, 1, s->seq_len);
    for (long k = 0; k < m; k++) {
        const review *r = &s->r[idx[k]];
        review_tokens(s->bytes + r->offset, r->size, s->seq_len,
                      d->tokens + (size_t)k * s->seq_len);
        d->labels[k] = r->label;
    }
    free(idx);
    return 0;
}

/* ---- the task -------------------------------------------------------------------------- */

typedef struct text_options {
    int holdout;
    long data_seed, cap[LRA_N_SPLITS];
} text_options;

static int read_options(const lra_config *cfg, text_options *o, char *err, size_t errlen)
{
    const char *t = "text", *val = lra_task_opt(cfg, "val");
    if (lra_task_check_opts(cfg, t, text_opts, err, errlen) ||
        lra_task_opt_int(cfg, t, "data_seed", 1, 0, INT_MAX, &o->data_seed, err, errlen) ||
        lra_task_opt_int(cfg, t, "n_train", 0, 0, INT_MAX, &o->cap[0], err, errlen) ||
        lra_task_opt_int(cfg, t, "n_val", 0, 0, INT_MAX, &o->cap[1], err, errlen) ||
        lra_task_opt_int(cfg, t, "n_test", 0, 0, INT_MAX, &o->cap[2], err, errlen))
        return -1;
    o->holdout = val && !strcmp(val, "holdout");
    if (val && !o->holdout && strcmp(val, "test") != 0) {
        snprintf(err, errlen, "task text: task.val wants test or holdout, got '%s'", val);
        return -1;
    }
    if (cfg->seq_len < MIN_LEN || cfg->seq_len > MAX_LEN) {
        snprintf(err, errlen, "task text: seq_len must be in [%d, %d] (LRA: 1000 in the "
                 "released config, 4000 in the paper), got %d", MIN_LEN, MAX_LEN, cfg->seq_len);
        return -1;
    }
    return 0;
}

/* env->input, else the full data under the data root, else the repository's sample. */
static int default_source(const lra_task_env *env, char *buf, size_t n, int *sample,
                          char *err, size_t errlen)
{
    static const char *const full[] = {"aclImdb.tar.gz", "aclImdb"};
    *sample = 0;
    if (env->input) {
        snprintf(buf, n, "%s", env->input);
        return 0;
    }
    for (size_t i = 0; env->data_root && i < sizeof full / sizeof full[0]; i++) {
        snprintf(buf, n, "%s/imdb/%s", env->data_root, full[i]);
        if (lra_is_file(buf) || lra_is_dir(buf)) return 0;
    }
    snprintf(buf, n, "%s/aclImdb-sample.tar.gz", env->samples_dir ? env->samples_dir : ".");
    if (!lra_is_file(buf)) {
        snprintf(err, errlen, "task text: no IMDb data: give --input, or put "
                 "imdb/aclImdb.tar.gz under the data root (--data-dir, LRA_DATA), or restore "
                 "tasks/samples/aclImdb-sample.tar.gz");
        return -1;
    }
    *sample = 1;
    if (!env->quiet)
        fprintf(stderr, "lra: text: using the small sample %s; for the full IMDb put "
                "imdb/aclImdb.tar.gz under --data-dir or LRA_DATA\n", buf);
    return 0;
}

static void describe(const char *root, int sample, const review_set *s, const text_options *o,
                     const lra_dataset split[LRA_N_SPLITS], lra_provenance *prov)
{
    char hex[65], why[256];
    long longer = 0;
    size_t longest = 0;
    for (long i = 0; i < s->n; i++) {
        longer += s->r[i].size > (size_t)s->seq_len;
        if (s->r[i].size > longest) longest = s->r[i].size;
    }
    lra_prov_add(prov, "source", "%s%s", root, sample ? " (repository sample)" : "");
    if (lra_is_dir(root))
        lra_prov_add(prov, "source_list_sha256", "%s (chained over sorted path and size)",
                     s->list_hash);
    else if (lra_sha256_file(root, hex, why, sizeof why) == 0)
        lra_prov_add(prov, "source_sha256", "%s", hex);
    lra_prov_add(prov, "reviews", "%ld read; train/val/test = %d/%d/%d", s->n, split[0].n,
                 split[1].n, split[2].n);
    lra_prov_add(prov, "val", "%s", o->holdout
                 ? "holdout: seeded label-stratified 10% of train"
                 : "test: validation IS the test split, as in LRA (model selection on it "
                   "sees the test set, pitfall 4)");
    lra_prov_add(prov, "length", "seq_len %d bytes; %ld of %ld reviews longer (cut), longest "
                 "%zu bytes", s->seq_len, longer, s->n, longest);
    lra_prov_add(prov, "tokens", "byte + 1 (TFDS ByteTextEncoder), 0 = padding, vocab 257");
    lra_prov_add(prov, "order", "seeded shuffle per split (data_seed %ld)", o->data_seed);
    if (o->cap[0] || o->cap[1] || o->cap[2])
        lra_prov_add(prov, "caps", "n_train %ld, n_val %ld, n_test %ld (0 = all)", o->cap[0],
                     o->cap[1], o->cap[2]);
}

static int text_build(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                      lra_provenance *prov, char *err, size_t errlen)
{
    text_options o;
    char root[4096];
    int sample;
    if (read_options(env->cfg, &o, err, errlen) != 0 ||
        default_source(env, root, sizeof root, &sample, err, errlen) != 0)
        return -1;
    review_set s = {.seq_len = env->cfg->seq_len};
    uint64_t key = lra_key((uint64_t)o.data_seed, 0x1bdb);
    int rc = read_source(root, &s, err, errlen);
    if (rc == 0 && o.holdout && hold_out(&s, lra_key(key, 99)) != 0) {
        snprintf(err, errlen, "task text: out of memory");
        rc = -1;
    }
    if (rc == 0 && o.holdout && !has_split(&s, LRA_SPLIT_VAL)) {
        snprintf(err, errlen, "%s: too few training reviews for a 10%% validation hold-out "
                 "(it needs at least 5)", root);
        rc = -1;
    }
    /* val=test reads the test reviews with the test split's key: the same examples in the
     * same order, so equal caps give identical splits. */
    const int from[LRA_N_SPLITS] = {LRA_SPLIT_TRAIN, o.holdout ? LRA_SPLIT_VAL : LRA_SPLIT_TEST,
                                    LRA_SPLIT_TEST};
    const long cap[LRA_N_SPLITS] = {o.cap[0], o.cap[1] || o.holdout ? o.cap[1] : o.cap[2],
                                    o.cap[2]};
    for (int k = 0; k < LRA_N_SPLITS && rc == 0; k++)
        if (fill_split(&s, from[k], cap[k], lra_key(key, (uint64_t)from[k]), &split[k]) != 0) {
            snprintf(err, errlen, "task text: out of memory");
            rc = -1;
        }
    if (rc == 0) describe(root, sample, &s, &o, split, prov);
    set_free(&s);
    return rc;
}

const lra_task lra_task_text = {
    .name = "text",
    .help = "byte-level IMDb sentiment, 1,000-4,096 bytes (aclImdb directory or tar.gz; "
            "2 classes)",
    .classes = 2,
    .vocab = VOCAB,
    .docs = 1,
    .build = text_build,
};
