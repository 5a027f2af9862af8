/* test_task_listops.c — the ListOps task: generator, writer, loader, preprocessing, errors.
 *
 * The labels of generated files are re-checked by an evaluator written here from LRA's
 * to_value (pairs folded into "unsaturated functions"), which shares no code with the
 * generator's prefix-order stack; it also checks that every line has LRA's pair shape. Label
 * shares are compared with the re-run of LRA's generator in the reference (§2.2: 2,000 trees),
 * lengths and acceptance with the exact distribution of LRA's recursion, with 4 standard
 * errors of margin. Runs from the source root (fixtures) with LRA_CACHE=off. Prints one line
 * per check and "N passed, N failed".
 */
#include <archive.h>
#include <archive_entry.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"
#include "task.h"
#include "util.h"

extern const lra_task lra_task_listops;
/* Defined in tasks/listops.c. */
int lra_listops_parse(const char *origin, const char *data, size_t size, int seq_len,
                      lra_dataset *out, long *truncated, char *err, size_t errlen);

#define FIXTURES "tests/fixtures/listops"

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

/* ---- helpers ---------------------------------------------------------------------------- */

static char tmp_root[64];

static void write_text(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0) lra_die("cannot write %s", path);
}

static void config(lra_config *cfg, int seq_len, const char *const *opts)
{
    char err[256];
    lra_config_defaults(cfg);
    snprintf(cfg->task, sizeof cfg->task, "listops");
    cfg->seq_len = seq_len;
    for (int i = 0; opts && opts[i]; i++)
        if (lra_config_set_kv(cfg, opts[i], err, sizeof err) != 0) lra_die("%s", err);
}

static int build(const lra_config *cfg, const char *input, lra_dataset split[LRA_N_SPLITS],
                 lra_provenance *prov, char *err, size_t errlen)
{
    lra_task_env env = {.cfg = cfg, .input = input, .quiet = 1};
    memset(split, 0, LRA_N_SPLITS * sizeof *split);
    memset(prov, 0, sizeof *prov);
    return lra_task_listops.build(&env, split, prov, err, errlen);
}

static void free_splits(lra_dataset split[LRA_N_SPLITS])
{
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
}

static const char *prov_get(const lra_provenance *prov, const char *key)
{
    for (int i = 0; i < prov->n; i++)
        if (strcmp(prov->key[i], key) == 0) return prov->value[i];
    return "";
}

static int same_dataset(const lra_dataset *a, const lra_dataset *b)
{
    return a->n == b->n && a->len == b->len &&
           memcmp(a->tokens, b->tokens, (size_t)a->n * (size_t)a->len * 4) == 0 &&
           memcmp(a->labels, b->labels, (size_t)a->n * 4) == 0;
}

static int run_cli(const char *out, const char *seed, const char *n_train)
{
    char *argv[] = {"listops", "--out", (char *)out, "--train", (char *)n_train, "--val", "300",
                    "--test", "300", "--seed", (char *)seed, NULL};
    return lra_task_listops.generate_cli(11, argv);
}

static int files_equal(const char *a, const char *b)
{
    char err[256];
    size_t na = 0, nb = 0;
    unsigned char *da = lra_read_file(a, &na, 1u << 30, err, sizeof err);
    unsigned char *db = lra_read_file(b, &nb, 1u << 30, err, sizeof err);
    int eq = da && db && na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return eq;
}

/* ---- an independent evaluator: LRA's to_value over the pair grammar -------------------- */

enum { V_INT, V_OP, V_END, V_PARTIAL, V_BAD };
typedef struct value {
    int kind, op, n;
    int args[64];
} value;

typedef struct reader {
    const char *p, *end;
    int counted; /* tokens other than ( and ) */
} reader;

/* The next space-separated token, or NULL at the end. */
static const char *next_token(reader *r, int *len)
{
    while (r->p < r->end && *r->p == ' ') r->p++;
    if (r->p == r->end) return NULL;
    const char *t = r->p;
    while (r->p < r->end && *r->p != ' ') r->p++;
    *len = (int)(r->p - t);
    return t;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* The value of a saturated function, as LRA's to_value computes it. */
static int saturate(const value *f)
{
    int v[64], n = f->n, best = f->args[0], sum = 0;
    memcpy(v, f->args, sizeof v);
    for (int i = 0; i < n; i++) {
        sum += v[i];
        if ((f->op == 0 && v[i] < best) || (f->op == 1 && v[i] > best)) best = v[i];
    }
    qsort(v, (size_t)n, sizeof v[0], cmp_int);
    if (f->op == 2) return (v[(n - 1) / 2] + v[n / 2]) / 2; /* int(np.median) */
    return f->op == 3 ? sum % 10 : best;
}

/* Combines the two halves of a pair: (op, x) starts a function, (f, x) adds an argument and
 * (f, ]) applies it. */
static value combine(value l, value r)
{
    value out = {.kind = V_BAD};
    if (l.kind == V_OP && r.kind == V_INT) {
        out = (value){.kind = V_PARTIAL, .op = l.op, .n = 1, .args = {r.op}};
    } else if (l.kind == V_PARTIAL && r.kind == V_END) {
        out = (value){.kind = V_INT, .op = saturate(&l)};
    } else if (l.kind == V_PARTIAL && r.kind == V_INT && l.n < 64) {
        out = l;
        out.args[out.n++] = r.op;
    }
    return out;
}

/* expr := leaf | "(" expr expr ")"; an integer's value is kept in .op. */
static value eval_expr(reader *r, int depth)
{
    static const char *const ops[] = {"[MIN", "[MAX", "[MED", "[SM"};
    int len = 0;
    const char *t = next_token(r, &len);
    value bad = {.kind = V_BAD};
    if (!t || depth > 1000) return bad;
    if (len == 1 && *t == '(') {
        value l = eval_expr(r, depth + 1), rr = eval_expr(r, depth + 1);
        const char *close = next_token(r, &len);
        if (!close || len != 1 || *close != ')' || l.kind == V_BAD || rr.kind == V_BAD)
            return bad;
        return combine(l, rr);
    }
    r->counted++;
    if (len == 1 && *t >= '0' && *t <= '9') return (value){.kind = V_INT, .op = *t - '0'};
    if (len == 1 && *t == ']') return (value){.kind = V_END};
    for (int i = 0; i < 4; i++)
        if ((size_t)len == strlen(ops[i]) && memcmp(t, ops[i], (size_t)len) == 0)
            return (value){.kind = V_OP, .op = i};
    return bad;
}

/* Evaluates one Source field: its value (-1 if it is not a well-formed expression) and its
 * counted length. */
static int evaluate(const char *src, size_t n, int *counted)
{
    reader r = {.p = src, .end = src + n};
    value v = eval_expr(&r, 0);
    int len;
    *counted = r.counted;
    return v.kind == V_INT && !next_token(&r, &len) ? v.op : -1;
}

/* ---- the test's own tokenizer, from the documented vocabulary --------------------------- */

static int tokenize(const char *src, size_t n, int32_t *out, int cap)
{
    static const char *const names[] = {"0", "1", "2", "3", "4", "5", "6", "7",
                                        "8", "9", "[MIN", "[MAX", "[MED", "[SM", "]"};
    reader r = {.p = src, .end = src + n};
    int len, k = 0;
    for (const char *t; (t = next_token(&r, &len));) {
        int id = 0;
        for (int i = 0; i < 15 && !id; i++)
            if ((size_t)len == strlen(names[i]) && memcmp(t, names[i], (size_t)len) == 0)
                id = i + 1;
        if (id && k < cap) out[k] = id;
        k += id != 0;
    }
    return k;
}

/* ---- fixtures ------------------------------------------------------------------------- */

static void test_fixtures(void)
{
    lra_config cfg;
    lra_dataset split[LRA_N_SPLITS];
    lra_provenance prov;
    char err[512];
    config(&cfg, 16, NULL);
    int rc = build(&cfg, FIXTURES, split, &prov, err, sizeof err);
    if (!check(rc == 0, "fixtures load (%s)", rc ? err : FIXTURES)) return;
    check(split[0].n == 4 && split[1].n == 2 && split[2].n == 2 && split[0].len == 16,
          "fixture split sizes 4/2/2, 16 tokens");
    /* ( ( ( [MAX 2 ) 9 ) ] ) -> [MAX 2 9 ], the shape shown in reference §2.1. */
    static const int32_t first[16] = {12, 3, 10, 15};
    check(memcmp(split[0].tokens, first, sizeof first) == 0 && split[0].labels[0] == 9,
          "( ( ( [MAX 2 ) 9 ) ] ) -> 12 3 10 15 + padding, label 9");
    static const int32_t second[16] = {14, 6, 11, 4, 9, 15, 8, 15};
    check(memcmp(split[0].tokens + 16, second, sizeof second) == 0 &&
              split[0].labels[1] == 5,
          "[SM 5 [MIN 3 8 ] 7 ] -> 14 6 11 4 9 15 8 15, label 5 (15 mod 10)");
    static const int32_t med[16] = {13, 2, 3, 4, 5, 15};
    check(memcmp(split[0].tokens + 32, med, sizeof med) == 0 && split[0].labels[2] == 2,
          "[MED 1 2 3 4 ] label 2 (median 2.5 truncated)");
    static const int32_t cut[16] = {12, 11, 5, 7, 15, 13, 8, 2, 10, 15, 14, 10, 10, 10, 15, 1};
    check(memcmp(split[0].tokens + 48, cut, sizeof cut) == 0 && split[0].labels[3] == 7,
          "17-token line cut to seq_len 16, label 7");
    check(strncmp(prov_get(&prov, "truncated"), "1 sequence", 10) == 0,
          "provenance counts the cut sequence: %s", prov_get(&prov, "truncated"));
    check(strstr(prov_get(&prov, "val"), "sha256 ") != NULL, "provenance has sha256: %s",
          prov_get(&prov, "val"));
    check(split[2].tokens[16] == 8 && split[2].tokens[17] == 0 && split[2].labels[1] == 7,
          "a bare leaf '7' loads as one token, label 7");
    int evaluator_ok = 1;
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        char path[256], err2[256];
        size_t n = 0;
        snprintf(path, sizeof path, FIXTURES "/basic_%s.tsv", lra_split_names[s]);
        char *text = (char *)lra_read_file(path, &n, 1 << 20, err2, sizeof err2);
        lra_lines lines;
        const char *line;
        long len;
        lra_lines_init(&lines, text ? text : "", text ? n : 0);
        lra_lines_next(&lines, &line);
        for (int i = 0; (len = lra_lines_next(&lines, &line)) >= 0; i++) {
            const char *tab = memchr(line, '\t', (size_t)len);
            int counted;
            evaluator_ok &= tab && evaluate(line, (size_t)(tab - line), &counted) ==
                                       split[s].labels[i];
        }
        free(text);
    }
    check(evaluator_ok, "independent evaluator agrees with every fixture label");
    free_splits(split);
}

/* The fixtures again, as a .tar.gz with the release's folder name. */
static void test_archive(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/listops.tar.gz", tmp_root);
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, path);
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        char file[128], name[128], err[256];
        size_t n = 0;
        snprintf(file, sizeof file, FIXTURES "/basic_%s.tsv", lra_split_names[s]);
        snprintf(name, sizeof name, "listops-1000/basic_%s.tsv", lra_split_names[s]);
        unsigned char *data = lra_read_file(file, &n, 1 << 20, err, sizeof err);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_size(e, (la_int64_t)n);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        archive_write_data(a, data, n);
        archive_entry_free(e);
        free(data);
    }
    archive_write_close(a);
    archive_write_free(a);

    lra_config cfg;
    lra_dataset from_dir[LRA_N_SPLITS], from_tar[LRA_N_SPLITS];
    lra_provenance prov;
    char err[512];
    config(&cfg, 16, NULL);
    int rc = build(&cfg, FIXTURES, from_dir, &prov, err, sizeof err) ||
             build(&cfg, path, from_tar, &prov, err, sizeof err);
    int same = rc == 0;
    for (int s = 0; s < LRA_N_SPLITS && same; s++)
        same = same_dataset(&from_dir[s], &from_tar[s]);
    check(same, "a .tar.gz of the fixtures loads the same examples (%s)", rc ? err : path);
    free_splits(from_dir);
    free_splits(from_tar);
}

/* ---- generated files ------------------------------------------------------------------- */

typedef struct corpus {
    long n_lines[LRA_N_SPLITS];
    long bad_label, bad_shape, bad_length, crlf_missing, n, sum_len;
    long label_count[10];
    int *lengths;
    char **sources;
} corpus;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_line(corpus *c, const char *line, long len)
{
    const char *tab = memchr(line, '\t', (size_t)len);
    int counted = 0, value = tab ? evaluate(line, (size_t)(tab - line), &counted) : -1;
    int label = tab ? atoi(tab + 1) : -1;
    c->bad_shape += value < 0;
    c->bad_label += value != label;
    c->bad_length += !(counted > 500 && counted < 2000);
    if (label >= 0 && label < 10) c->label_count[label]++;
    c->lengths[c->n] = counted;
    c->sum_len += counted;
    c->sources[c->n++] = tab ? strndup(line, (size_t)(tab - line)) : strdup("");
}

/* Reads DIR/basic_*.tsv line by line with the independent evaluator. */
static int scan_dir(const char *dir, corpus *c, long max_lines)
{
    memset(c, 0, sizeof *c);
    c->lengths = calloc((size_t)max_lines, sizeof *c->lengths);
    c->sources = calloc((size_t)max_lines, sizeof *c->sources);
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        char path[256], err[256];
        size_t n = 0;
        snprintf(path, sizeof path, "%s/basic_%s.tsv", dir, lra_split_names[s]);
        char *text = (char *)lra_read_file(path, &n, 1u << 30, err, sizeof err);
        if (!text) return -1;
        lra_lines lines;
        const char *line;
        long len;
        lra_lines_init(&lines, text, n);
        lra_lines_next(&lines, &line);
        while ((len = lra_lines_next(&lines, &line)) >= 0 && c->n < max_lines) {
            c->crlf_missing += line[len] != '\r';
            scan_line(c, line, len);
            c->n_lines[s]++;
        }
        free(text);
    }
    return 0;
}

static void free_corpus(corpus *c)
{
    for (long i = 0; i < c->n; i++) free(c->sources[i]);
    free(c->sources);
    free(c->lengths);
}

/* Label shares against the reference re-run (2,000 trees; the five values reported together
 * as "151-160 each" at their mean, 154): within 4 standard errors of the difference of two
 * binomial proportions. */
static void check_label_frequencies(const corpus *c)
{
    static const double ref_count[10] = {337, 188, 154, 154, 192, 179, 154, 154, 154, 334};
    int ok = 1, top1 = 0, top2 = -1;
    printf("      label shares:");
    for (int v = 0; v < 10; v++) {
        double p = ref_count[v] / 2000, f = (double)c->label_count[v] / (double)c->n;
        double margin = 4 * sqrt(p * (1 - p) * (1.0 / 2000 + 1.0 / (double)c->n));
        ok &= fabs(f - p) <= margin;
        printf(" %d:%.3f", v, f);
        if (c->label_count[v] > c->label_count[top1]) {
            top2 = top1;
            top1 = v;
        } else if (v != top1 && (top2 < 0 || c->label_count[v] > c->label_count[top2])) {
            top2 = v;
        }
    }
    printf("\n");
    check(ok, "every label share within 4 s.e. of LRA's re-run (0,9 ~17%%; others 7.5-9.6%%)");
    check((top1 == 0 && top2 == 9) || (top1 == 9 && top2 == 0),
          "0 and 9 are the two most frequent labels");
}

static void check_lengths(corpus *c)
{
    qsort(c->lengths, (size_t)c->n, sizeof c->lengths[0], cmp_int);
    double mean = (double)c->sum_len / (double)c->n;
    int median = c->lengths[c->n / 2];
    check(c->bad_length == 0, "every counted length is in (500, 2000): min %d, max %d",
          c->lengths[0], c->lengths[c->n - 1]);
    /* The exact distribution of LRA's recursion, computed by convolving the length
     * distributions depth by depth (10 levels, 2-10 arguments, cut at 2,000), gives acceptance
     * 8.28%, mean 1035.0, standard deviation 394 and median 954. At n = 3000 the standard
     * errors are 7.2 (mean) and 10.6 (median); the bounds are 4 of them. (The reference's
     * single re-run, 997 and 1061 from 2,000 trees, lies about 3 standard errors high.) */
    check(median >= 912 && median <= 996 && mean >= 1006 && mean <= 1064,
          "median length %d and mean %.0f match LRA's recursion (954 +- 42, 1035 +- 29)",
          median, mean);
}

/* The share of candidates kept, from the generator's provenance "N distinct of M candidates":
 * 8.28% exactly (see check_lengths), 4 binomial standard errors either side. */
static void check_acceptance(const char *generator)
{
    const char *at = strstr(generator, "; ");
    long kept = 0, tried = 0;
    int ok = at && sscanf(at, "; %ld distinct of %ld candidates", &kept, &tried) == 2 && tried;
    double rate = ok ? (double)kept / (double)tried : 0;
    double margin = ok ? 4 * sqrt(0.0828 * (1 - 0.0828) / (double)tried) : 0;
    check(ok && fabs(rate - 0.0828) <= margin, "%.2f%% of candidates kept (LRA's recursion: "
          "8.28%% +- %.2f%%)", 100 * rate, 100 * margin);
}

static void test_generated_files(void)
{
    char a[128], b[128], c2[128], fa[192], fb[192];
    snprintf(a, sizeof a, "%s/gen-a", tmp_root);
    snprintf(b, sizeof b, "%s/gen-b", tmp_root);
    snprintf(c2, sizeof c2, "%s/gen-c", tmp_root);
    int rc = run_cli(a, "1", "2400") | run_cli(b, "1", "2400") | run_cli(c2, "2", "2400");
    if (!check(rc == 0, "lra data generate listops writes three sets (3000 trees each)")) return;
    int same = 1, differ = 1;
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        snprintf(fa, sizeof fa, "%s/basic_%s.tsv", a, lra_split_names[s]);
        snprintf(fb, sizeof fb, "%s/basic_%s.tsv", b, lra_split_names[s]);
        same &= files_equal(fa, fb);
        snprintf(fb, sizeof fb, "%s/basic_%s.tsv", c2, lra_split_names[s]);
        differ &= !files_equal(fa, fb);
    }
    check(same, "same seed -> byte-identical files");
    check(differ, "different seed -> different files");

    corpus c;
    if (!check(scan_dir(a, &c, 4000) == 0, "generated files are readable")) return;
    check(c.n_lines[0] == 2400 && c.n_lines[1] == 300 && c.n_lines[2] == 300,
          "split sizes 2400/300/300 (got %ld/%ld/%ld)", c.n_lines[0], c.n_lines[1],
          c.n_lines[2]);
    check(c.crlf_missing == 0, "lines end in \\r\\n like Python's csv.writer");
    check(c.bad_shape == 0, "every Source has LRA's fully parenthesised pair shape");
    check(c.bad_label == 0, "independent evaluator agrees with all %ld labels", c.n);
    check_lengths(&c);
    check_label_frequencies(&c);
    qsort(c.sources, (size_t)c.n, sizeof c.sources[0], cmp_str);
    long dups = 0;
    for (long i = 1; i < c.n; i++) dups += strcmp(c.sources[i - 1], c.sources[i]) == 0;
    check(dups == 0, "no duplicate expression across the three splits");
    free_corpus(&c);
}

/* Tokens loaded from the files equal the test's own tokenization and the in-memory
 * generation with the same options. */
static void test_round_trip(void)
{
    static const char *const opts[] = {"task.n_train=2400", "task.n_val=300",
                                       "task.n_test=300", "task.data_seed=1", NULL};
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/gen-a", tmp_root);
    lra_config cfg;
    lra_dataset loaded[LRA_N_SPLITS], made[LRA_N_SPLITS], made1[LRA_N_SPLITS];
    lra_provenance prov;
    config(&cfg, 2000, opts);
    int rc = build(&cfg, dir, loaded, &prov, err, sizeof err);
    if (!check(rc == 0, "generated files load (%s)", rc ? err : dir)) return;
    rc = build(&cfg, NULL, made, &prov, err, sizeof err);
    check(rc == 0 && strstr(prov_get(&prov, "source"), "generated") != NULL,
          "without input the task generates (%s)", rc ? err : prov_get(&prov, "generator"));
    check_acceptance(prov_get(&prov, "generator"));
    int same = rc == 0;
    for (int s = 0; s < LRA_N_SPLITS && same; s++) same = same_dataset(&loaded[s], &made[s]);
    check(same, "generate -> write -> load gives the in-memory generation's tokens");
    omp_set_num_threads(1);
    rc = build(&cfg, NULL, made1, &prov, err, sizeof err);
    omp_set_num_threads(2);
    same = rc == 0;
    for (int s = 0; s < LRA_N_SPLITS && same; s++) same = same_dataset(&made1[s], &made[s]);
    check(same, "1 thread and 2 threads generate identical data");
    check(strncmp(prov_get(&prov, "truncated"), "0 sequences", 11) == 0,
          "nothing cut at seq_len 2000: %s", prov_get(&prov, "truncated"));

    /* Compare with the test's own tokenizer, and check ( ) are gone and ] is there. */
    int tokens_ok = 1, close_ok = 1, range_ok = 1;
    char path[256];
    snprintf(path, sizeof path, "%s/basic_val.tsv", dir);
    size_t n = 0;
    char *text = (char *)lra_read_file(path, &n, 1u << 30, err, sizeof err);
    lra_lines lines;
    const char *line;
    long len;
    int32_t row[2000];
    lra_lines_init(&lines, text ? text : "", text ? n : 0);
    lra_lines_next(&lines, &line);
    for (int i = 0; (len = lra_lines_next(&lines, &line)) >= 0 && i < loaded[1].n; i++) {
        const int32_t *got = loaded[1].tokens + (size_t)i * 2000;
        memset(row, 0, sizeof row);
        tokenize(line, (size_t)((const char *)memchr(line, '\t', (size_t)len) - line), row,
                 2000);
        tokens_ok &= memcmp(row, got, sizeof row) == 0;
        int ops = 0, closes = 0;
        for (int t = 0; t < 2000; t++) {
            ops += got[t] >= 11 && got[t] <= 14;
            closes += got[t] == 15;
            range_ok &= got[t] >= 0 && got[t] < lra_task_listops.vocab;
        }
        close_ok &= closes > 0 && closes == ops;
    }
    free(text);
    check(tokens_ok, "loaded val tokens equal an independent tokenization of the text");
    check(close_ok && range_ok, "] is a token (one per operator); ids in [0, 16), no ( )");
    free_splits(loaded);
    free_splits(made);
    free_splits(made1);

    static const char *const seed2[] = {"task.n_train=2400", "task.n_val=300",
                                        "task.n_test=300", "task.data_seed=2", NULL};
    config(&cfg, 2000, seed2);
    lra_dataset other[LRA_N_SPLITS];
    rc = build(&cfg, dir, loaded, &prov, err, sizeof err) ||
         build(&cfg, NULL, other, &prov, err, sizeof err);
    check(rc == 0 && !same_dataset(&loaded[0], &other[0]), "data_seed 2 generates other data");
    free_splits(loaded);
    free_splits(other);
}

static void test_split_caps(void)
{
    static const char *const opts[] = {"task.n_train=2", NULL};
    lra_config cfg;
    lra_dataset split[LRA_N_SPLITS];
    lra_provenance prov;
    char err[512];
    config(&cfg, 16, opts);
    int rc = build(&cfg, FIXTURES, split, &prov, err, sizeof err);
    check(rc == 0 && split[0].n == 2 && split[1].n == 2,
          "an explicit task.n_train caps the examples read from files");
    free_splits(split);
    static const char *const small[] = {"task.n_train=50", "task.n_val=7", "task.n_test=9",
                                        "task.min_len=20", "task.max_len=64", NULL};
    config(&cfg, 64, small);
    rc = build(&cfg, NULL, split, &prov, err, sizeof err);
    check(rc == 0 && split[0].n == 50 && split[1].n == 7 && split[2].n == 9,
          "generated split sizes follow task.n_train/n_val/n_test (50/7/9)");
    free_splits(split);
}

/* ---- bad input ------------------------------------------------------------------------- */

static const char good[] = "Source\tTarget\n( ( ( [MAX 2 ) 9 ) ] )\t9\n";

/* Writes a fresh directory of good files, replaces `file` with `text`, loads it, and checks
 * that the error names the file, the line and the field. */
static void expect_bad(const char *what, const char *file, const char *text, size_t n,
                       const char *line, const char *field)
{
    static int serial;
    char dir[128], path[256], err[512];
    snprintf(dir, sizeof dir, "%s/bad%d", tmp_root, serial++);
    mkdir(dir, 0700);
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        snprintf(path, sizeof path, "%s/basic_%s.tsv", dir, lra_split_names[s]);
        write_text(path, good, sizeof good - 1);
    }
    snprintf(path, sizeof path, "%s/%s", dir, file);
    write_text(path, text, n);
    lra_config cfg;
    lra_dataset split[LRA_N_SPLITS];
    lra_provenance prov;
    config(&cfg, 32, NULL);
    int rc = build(&cfg, dir, split, &prov, err, sizeof err);
    char where[300];
    snprintf(where, sizeof where, "%s:%s:", file, line);
    check(rc != 0 && strstr(err, where) && strstr(err, field), "%s -> \"%s\"", what,
          rc ? err : "(no error)");
    free_splits(split);
}

static void test_bad_input(void)
{
    const char *h = "Source\tTarget\n( ( ( [MAX 2 ) 9 ) ] )\t9\n";
    char text[512];
#define BAD(what, file, line, field, body)                                                   \
    do {                                                                                     \
        snprintf(text, sizeof text, "%s%s", h, body);                                        \
        expect_bad(what, file, text, strlen(text), line, field);                             \
    } while (0)
    BAD("three columns", "basic_val.tsv", "3", "Target", "( ( ( [MIN 2 ) 9 ) ] )\t2\tx\n");
    BAD("one column", "basic_train.tsv", "3", "Target", "( ( ( [MIN 2 ) 9 ) ] )\n");
    BAD("non-integer label", "basic_test.tsv", "3", "Target", "( ( ( [MIN 2 ) 9 ) ] )\tx\n");
    BAD("negative label", "basic_test.tsv", "3", "Target", "( ( ( [MIN 2 ) 9 ) ] )\t-1\n");
    BAD("label 10", "basic_train.tsv", "3", "Target", "( ( ( [MIN 2 ) 9 ) ] )\t10\n");
    BAD("empty label", "basic_train.tsv", "3", "Target", "( ( ( [MIN 2 ) 9 ) ] )\t\n");
    BAD("unknown token", "basic_val.tsv", "3", "Source", "( ( ( [MEAN 2 ) 9 ) ] )\t2\n");
    BAD("no tokens", "basic_val.tsv", "3", "Source", "( )\t2\n");
    BAD("blank line", "basic_val.tsv", "3", "Target", "\n( ( ( [MIN 2 ) 9 ) ] )\t2\n");
#undef BAD
    expect_bad("missing header", "basic_train.tsv", "( ( ( [MAX 2 ) 9 ) ] )\t9\n", 25, "1",
               "header");
    expect_bad("empty file", "basic_val.tsv", "", 0, "1", "header");
    expect_bad("header only", "basic_test.tsv", "Source\tTarget\r\n", 15, "2", "examples");

    /* Overlong: a valid-looking line just over the 1 MiB limit. */
    size_t big = (1u << 20) + 64;
    char *line = malloc(big + 32);
    int k = snprintf(line, big, "Source\tTarget\n");
    while ((size_t)k < big) k += snprintf(line + k, big + 32 - (size_t)k, "( 1 ");
    k += snprintf(line + k, 8, "\t1\n");
    expect_bad("line over 1 MiB", "basic_train.tsv", line, (size_t)k, "2", "line too long");
    free(line);

    char err[512], dir[128];
    lra_config cfg;
    lra_dataset split[LRA_N_SPLITS];
    lra_provenance prov;
    config(&cfg, 32, NULL);
    snprintf(dir, sizeof dir, "%s/no-such-dir", tmp_root);
    int rc = build(&cfg, dir, split, &prov, err, sizeof err);
    check(rc != 0 && strstr(err, dir) && strstr(err, "does not exist"),
          "missing directory -> \"%s\"", err);
    snprintf(dir, sizeof dir, "%s/empty", tmp_root);
    mkdir(dir, 0700);
    rc = build(&cfg, dir, split, &prov, err, sizeof err);
    check(rc != 0 && strstr(err, dir) && strstr(err, "basic_train.tsv"),
          "empty directory -> \"%s\"", err);
    static const char *const unknown[] = {"task.max_lenght=3", NULL};
    config(&cfg, 32, unknown);
    rc = build(&cfg, NULL, split, &prov, err, sizeof err);
    check(rc != 0 && strstr(err, "max_lenght"), "unknown task option -> \"%s\"", err);
    free_splits(split);
}

/* The parser on memory, as the fuzz harness calls it. */
static void test_parse_memory(void)
{
    static const char text[] = "Source\tTarget\r\n( ( ( [SM 9 ) 8 ) ] )\t7\r\n";
    lra_dataset d;
    long cut = 0;
    char err[256];
    int rc = lra_listops_parse("mem", text, sizeof text - 1, 4, &d, &cut, err, sizeof err);
    check(rc == 0 && d.n == 1 && d.tokens[0] == 14 && d.tokens[3] == 15 && d.labels[0] == 7,
          "lra_listops_parse reads a buffer ([SM 9 8 ] = 7)");
    lra_dataset_free(&d);
    rc = lra_listops_parse("mem", text, 20, 4, &d, &cut, err, sizeof err);
    check(rc != 0 && strstr(err, "mem:2:"), "a cut-off buffer is an error: %s", err);
}

static void test_cli_errors(void)
{
    char out[128];
    snprintf(out, sizeof out, "%s/cli", tmp_root);
    char *help[] = {"listops", "--help", NULL};
    char *no_out[] = {"listops", "--train", "5", NULL};
    char *bad_n[] = {"listops", "--out", out, "--train", "five", NULL};
    char *unknown[] = {"listops", "--out", out, "--trian", "5", NULL};
    char *shallow[] = {"listops", "--out", out, "--max-depth", "2", NULL};
    char *narrow[] = {"listops", "--out", out, "--min-len", "10", "--max-len", "11", NULL};
    check(lra_task_listops.generate_cli(2, help) == 0, "--help exits 0");
    check(lra_task_listops.generate_cli(3, no_out) == 2, "missing --out exits 2");
    check(lra_task_listops.generate_cli(5, bad_n) == 2, "--train five exits 2");
    check(lra_task_listops.generate_cli(5, unknown) == 2, "unknown flag exits 2");
    check(lra_task_listops.generate_cli(5, shallow) == 1,
          "--max-depth 2 (no tree reaches 500 tokens) exits 1");
    check(lra_task_listops.generate_cli(7, narrow) == 1, "empty length window exits 1");
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/lra-test-listops-XXXXXX");
    if (!mkdtemp(tmp_root)) lra_die("cannot create a temporary directory");
    omp_set_num_threads(2);
    test_fixtures();
    test_archive();
    test_parse_memory();
    test_generated_files();
    test_round_trip();
    test_split_caps();
    test_bad_input();
    test_cli_errors();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmp_root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
