/* test_task_text.c — the Text task (byte-level IMDb): the aclImdb loader on a directory, on a
 * tar.gz written here with libarchive and on a GNU-tar fixture; byte tokens, padding and
 * cutting; validation = test vs the stratified hold-out; the repository sample; and every bad
 * input (rating contradicting its folder, bad file name, empty review, corrupt archive, empty
 * or missing directory, bad options) with its message. Runs from the source root with
 * LRA_CACHE=off. Prints one line per check and "N passed, N failed".
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "task.h"
#include "util.h"

extern const lra_task lra_task_text;
/* Defined in tasks/text.c. */
int lra_imdb_entry(const char *path, const unsigned char *data, size_t size, int seq_len,
                   int32_t *tokens, int *split, int *label, char *err, size_t errlen);

#define FIXTURE "tests/fixtures/imdb/aclImdb-tiny.tar.gz"
#define SAMPLE "tasks/samples/aclImdb-sample.tar.gz"

static int passed, failed;

static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s: ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    ok ? passed++ : failed++;
    return ok;
}

/* ---- a tiny aclImdb tree ---------------------------------------------------------------- */

typedef struct file {
    const char *path, *text;
} file;

/* One review per split and label, plus files the loader must ignore. The train/neg review
 * has a 0xff byte (token 256) and the test/pos review is longer than seq_len. */
static char long_review[1501];
static const file tree[] = {
    {"aclImdb/README", "Large Movie Review Dataset v1.0"},
    {"aclImdb/train/pos/0_9.txt", "Great film."},
    {"aclImdb/train/neg/0_2.txt", "Bad \xff"},
    {"aclImdb/train/urls_pos.txt", "http://www.imdb.com/title/tt0453418/usercomments"},
    {"aclImdb/train/unsup/0_0.txt", "not labelled"},
    {"aclImdb/test/pos/0_10.txt", long_review},
    {"aclImdb/test/neg/0_1.txt", "Dull."},
};
#define N_TREE (sizeof tree / sizeof tree[0])

static char tmp_root[64];

static void make_dirs(const char *path)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
}

static void write_file(const char *path, const void *data, size_t n)
{
    make_dirs(path);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) lra_die("cannot write %s", path);
}

/* Writes files under dir (a fresh directory) and returns it. */
static const char *write_tree(const char *name, const file *files, size_t n)
{
    static char dir[4096];
    char path[8192];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    mkdir(dir, 0755);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].path);
        write_file(path, files[i].text, strlen(files[i].text));
    }
    return dir;
}

static const char *write_targz(const char *name, const file *files, size_t n)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmp_root, name);
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) lra_die("cannot write %s", path);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, files[i].path);
        archive_entry_set_size(e, (la_int64_t)strlen(files[i].text));
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        archive_write_data(a, files[i].text, strlen(files[i].text));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return path;
}

/* ---- running the task ------------------------------------------------------------------- */

static int build(const char *input, int seq_len, const char *const *opts,
                 lra_dataset split[LRA_N_SPLITS], lra_provenance *prov, char *err,
                 size_t errlen)
{
    lra_config cfg;
    char why[256];
    lra_config_defaults(&cfg);
    snprintf(cfg.task, sizeof cfg.task, "text");
    cfg.seq_len = seq_len;
    for (int i = 0; opts && opts[i]; i++)
        if (lra_config_set_kv(&cfg, opts[i], why, sizeof why) != 0) lra_die("%s", why);
    lra_task_env env = {.cfg = &cfg, .input = input, .quiet = 1};
    memset(split, 0, LRA_N_SPLITS * sizeof *split);
    memset(prov, 0, sizeof *prov);
    err[0] = 0;
    return lra_task_text.build(&env, split, prov, err, errlen);
}

static void free_splits(lra_dataset split[LRA_N_SPLITS])
{
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
}

static const char *prov_get(const lra_provenance *prov, const char *key)
{
    for (int i = 0; i < prov->n; i++)
        if (!strcmp(prov->key[i], key)) return prov->value[i];
    return "";
}

/* Tokens of the example with this label (each split of the tree has one per label). */
static const int32_t *example(const lra_dataset *d, int label)
{
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] == label) return d->tokens + (size_t)i * d->len;
    return NULL;
}

/* Whether tok is text's bytes + 1, then zeros up to len (or cut at len). */
static int tokens_are(const int32_t *tok, int len, const char *text)
{
    size_t n = strlen(text);
    if (!tok) return 0;
    for (int i = 0; i < len; i++) {
        int32_t want = (size_t)i < n ? (int32_t)(unsigned char)text[i] + 1 : 0;
        if (tok[i] != want) return 0;
    }
    return 1;
}

static int same_dataset(const lra_dataset *a, const lra_dataset *b)
{
    return a->n == b->n && a->len == b->len &&
           !memcmp(a->labels, b->labels, (size_t)a->n * sizeof *a->labels) &&
           !memcmp(a->tokens, b->tokens, (size_t)a->n * a->len * sizeof *a->tokens);
}

/* ---- checks ----------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    lra_dataset d[LRA_N_SPLITS], t[LRA_N_SPLITS];
    lra_provenance prov;
    char err[512];
    const char *dir = write_tree("tree", tree, N_TREE);
    int rc = build(dir, 1000, NULL, d, &prov, err, sizeof err);
    if (!check(rc == 0, "aclImdb directory loads (%s)", rc ? err : "ok")) return;
    check(d[0].n == 2 && d[1].n == 2 && d[2].n == 2 && d[0].len == 1000,
          "split sizes 2/2/2 of 1000 tokens (unsup/, urls and README ignored): %d/%d/%d",
          d[0].n, d[1].n, d[2].n);
    check(tokens_are(example(&d[0], 1), 1000, "Great film.") &&
              tokens_are(example(&d[0], 0), 1000, "Bad \xff"),
          "train tokens are bytes + 1 (0xff -> 256), padded with 0, labels pos=1 neg=0");
    check(tokens_are(example(&d[2], 1), 1000, long_review),
          "a 1500-byte review is cut to seq_len 1000");
    check(same_dataset(&d[1], &d[2]), "validation is the test split by default (as LRA)");
    check(strstr(prov_get(&prov, "val"), "IS the test split") != NULL,
          "provenance records val = test: %s", prov_get(&prov, "val"));
    check(strstr(prov_get(&prov, "length"), "1 of 4 reviews longer") != NULL,
          "provenance counts cut reviews: %s", prov_get(&prov, "length"));
    check(strlen(prov_get(&prov, "source_list_sha256")) >= 64,
          "a directory is identified by a hash over its listing");

    const char *tgz = write_targz("tree.tar.gz", tree, N_TREE);
    rc = build(tgz, 1000, NULL, t, &prov, err, sizeof err);
    check(rc == 0 && same_dataset(&d[0], &t[0]) && same_dataset(&d[2], &t[2]),
          "the same tree as tar.gz (libarchive, read in place) gives identical splits");
    check(rc == 0 && strlen(prov_get(&prov, "source_sha256")) == 64,
          "an archive is identified by its sha256");
    free_splits(t);
    free_splits(d);
}

static void test_fixture_and_sample(void)
{
    lra_dataset d[LRA_N_SPLITS];
    lra_provenance prov;
    char err[512];
    int rc = build(FIXTURE, 4096, NULL, d, &prov, err, sizeof err);
    /* The positive train review train/pos/0_9.txt is the dataset's well-known first file. */
    const char *bromwell = "Bromwell High is a cartoon comedy.";
    int found = 0;
    for (int i = 0; rc == 0 && i < d[0].n && !found; i++) {
        const int32_t *tok = d[0].tokens + (size_t)i * d[0].len;
        found = d[0].labels[i] == 1;
        for (size_t k = 0; found && k < strlen(bromwell); k++)
            found = tok[k] == (unsigned char)bromwell[k] + 1;
    }
    check(rc == 0 && d[0].n == 4 && d[2].n == 2 && found,
          "GNU tar fixture (real reviews) at seq_len 4096: 4 train, 2 test; train/pos/0_9.txt "
          "begins \"Bromwell High\" (%s)", rc ? err : "ok");
    free_splits(d);

    rc = build(SAMPLE, 1000, NULL, d, &prov, err, sizeof err);
    long pos_train = 0;
    for (int i = 0; rc == 0 && i < d[0].n; i++) pos_train += d[0].labels[i];
    check(rc == 0 && d[0].n == 2000 && d[1].n == 1000 && d[2].n == 1000 && pos_train == 1000,
          "repository sample: 2000/1000/1000 reviews, balanced (%s)", rc ? err : "ok");
    free_splits(d);
    const char *capped[] = {"task.n_train=100", "task.n_test=50", NULL};
    rc = build(SAMPLE, 1000, capped, d, &prov, err, sizeof err);
    pos_train = 0;
    for (int i = 0; rc == 0 && i < d[0].n; i++) pos_train += d[0].labels[i];
    check(rc == 0 && d[0].n == 100 && d[1].n == 50 && d[2].n == 50 && pos_train > 25 &&
              pos_train < 75,
          "caps keep a seeded mix: n_train=100 has %ld positive; val follows n_test",
          pos_train);
    free_splits(d);
}

static void test_holdout(void)
{
    /* 20 reviews per label in train, 2 in test. */
    file files[44];
    static char paths[44][64];
    int k = 0;
    for (int split = 0; split < 2; split++)
        for (int label = 0; label < 2; label++)
            for (int i = 0; i < (split ? 2 : 20); i++) {
                snprintf(paths[k], sizeof paths[k], "aclImdb/%s/%s/%d_%d.txt",
                         split ? "test" : "train", label ? "pos" : "neg", i, label ? 8 : 3);
                files[k] = (file){paths[k], label ? "good" : "poor"};
                k++;
            }
    const char *dir = write_tree("holdout", files, (size_t)k);
    lra_dataset d[LRA_N_SPLITS], again[LRA_N_SPLITS];
    lra_provenance prov;
    char err[512];
    const char *opts[] = {"task.val=holdout", NULL};
    int rc = build(dir, 1000, opts, d, &prov, err, sizeof err);
    int val_pos = 0;
    for (int i = 0; rc == 0 && i < d[1].n; i++) val_pos += d[1].labels[i];
    check(rc == 0 && d[0].n == 36 && d[1].n == 4 && val_pos == 2 && d[2].n == 4,
          "val=holdout: 10%% of train per label (36/4/4, 2 positive in val) (%s)",
          rc ? err : "ok");
    check(strstr(prov_get(&prov, "val"), "holdout") != NULL, "provenance records the hold-out");
    int rc2 = build(dir, 1000, opts, again, &prov, err, sizeof err);
    check(rc == 0 && rc2 == 0 && same_dataset(&d[0], &again[0]) &&
              same_dataset(&d[1], &again[1]),
          "the hold-out and the order are reproducible");
    free_splits(again);
    free_splits(d);
}

/* Builds input and checks that it fails with a message containing every part. */
static void expect_error(const char *what, const char *input, int seq_len,
                         const char *const *opts, const char *part1, const char *part2)
{
    lra_dataset d[LRA_N_SPLITS];
    lra_provenance prov;
    char err[1024];
    int rc = build(input, seq_len, opts, d, &prov, err, sizeof err);
    check(rc != 0 && strstr(err, part1) && (!part2 || strstr(err, part2)), "%s -> %s", what,
          rc ? err : "no error");
    if (rc == 0) free_splits(d);
}

static void test_bad_input(void)
{
    file contradict[] = {{"aclImdb/train/pos/0_9.txt", "fine"},
                         {"aclImdb/train/pos/5_2.txt", "misfiled"},
                         {"aclImdb/test/neg/0_1.txt", "x"}};
    expect_error("rating 2 in pos/", write_tree("contradict", contradict, 3), 1000, NULL,
                 "train/pos/5_2.txt", "field rating = 2 contradicts folder pos");
    file badname[] = {{"aclImdb/train/neg/review.txt", "x"}};
    expect_error("file name without rating", write_tree("badname", badname, 1), 1000, NULL,
                 "train/neg/review.txt", "<id>_<rating>.txt");
    file empty_review[] = {{"aclImdb/train/neg/0_1.txt", ""}};
    expect_error("empty review", write_tree("emptyreview", empty_review, 1), 1000, NULL,
                 "train/neg/0_1.txt", "empty review");
    file no_test[] = {{"aclImdb/train/neg/0_1.txt", "x"}};
    expect_error("no test reviews", write_tree("notest", no_test, 1), 1000, NULL,
                 "no test reviews", NULL);

    char path[4096];
    snprintf(path, sizeof path, "%s/empty", tmp_root);
    mkdir(path, 0755);
    expect_error("empty directory", path, 1000, NULL, "/empty", "no training reviews");
    snprintf(path, sizeof path, "%s/missing", tmp_root);
    expect_error("missing directory", path, 1000, NULL, "/missing", "does not exist");

    /* A tar.gz cut in half, and one with its gzip stream damaged. */
    const char *tgz = write_targz("whole.tar.gz", tree, N_TREE);
    size_t n = 0;
    FILE *f = fopen(tgz, "rb");
    unsigned char buf[1 << 16];
    n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/cut.tar.gz", tmp_root);
    write_file(path, buf, n / 2);
    expect_error("truncated tar.gz", path, 1000, NULL, "cut.tar.gz", "truncated");
    for (size_t i = 20; i < n; i += 7) buf[i] ^= 0x5a;
    snprintf(path, sizeof path, "%s/garbled.tar.gz", tmp_root);
    write_file(path, buf, n);
    expect_error("corrupt tar.gz", path, 1000, NULL, "garbled.tar.gz", NULL);

    const char *bad_val[] = {"task.val=dev", NULL}, *unknown[] = {"task.vocab=3", NULL};
    expect_error("seq_len 8", FIXTURE, 8, NULL, "seq_len must be in [16, 4096]", NULL);
    expect_error("task.val=dev", FIXTURE, 1000, bad_val, "task.val wants test or holdout",
                 NULL);
    expect_error("unknown option", FIXTURE, 1000, unknown, "unknown option 'task.vocab'", NULL);
}

static void test_entry_parser(void)
{
    int32_t tok[1000];
    int split = -1, label = -1;
    char err[256];
    int rc = lra_imdb_entry("aclImdb/test/pos/7_10.txt", (const unsigned char *)"ab", 2, 1000,
                            tok, &split, &label, err, sizeof err);
    check(rc == 1 && split == LRA_SPLIT_TEST && label == 1 && tok[0] == 'a' + 1 &&
              tok[1] == 'b' + 1 && tok[2] == 0,
          "entry parser: test/pos/7_10.txt -> test, label 1, tokens a+1 b+1 0");
    rc = lra_imdb_entry("aclImdb/imdbEr.txt", (const unsigned char *)"1", 1, 1000, tok, &split,
                        &label, err, sizeof err);
    check(rc == 0, "entry parser: files outside {train,test}/{pos,neg}/ are not reviews");
    rc = lra_imdb_entry("aclImdb/train/neg/3_7.txt", (const unsigned char *)"x", 1, 1000, tok,
                        &split, &label, err, sizeof err);
    check(rc == -1 && strstr(err, "train/neg/3_7.txt") && strstr(err, "rating = 7"),
          "entry parser: rating 7 in neg/ -> %s", err);
}

int main(void)
{
    memset(long_review, 'z', sizeof long_review - 1);
    snprintf(tmp_root, sizeof tmp_root, "/tmp/lra-test-text-XXXXXX");
    if (!mkdtemp(tmp_root)) lra_die("cannot create a temporary directory");
    test_round_trip();
    test_fixture_and_sample();
    test_holdout();
    test_bad_input();
    test_entry_parser();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmp_root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
