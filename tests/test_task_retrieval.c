/* test_task_retrieval.c — the retrieval task: AAN TSV loader, RFC citation pairs, leaks.
 *
 * Runs from the source root with LRA_CACHE=off. Prints one line per check and ends with
 * "N passed, N failed"; exits 1 when a check fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"
#include "task.h"

extern const lra_task lra_task_retrieval;

/* The testing interface of tasks/retrieval.c (declared there the same way). */
typedef struct lra_rfc_cite {
    int num;
    int relation;
    size_t end;
} lra_rfc_cite;
size_t lra_rfc_strip(const unsigned char *s, size_t n, unsigned char *out);
size_t lra_rfc_scan(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                    lra_rfc_cite **cites, int *n_cites);

#define SAMPLE "tasks/samples/rfc-sample.tar.xz"
#define AAN_DIR "tests/fixtures/aan"
#define RFC_DIR "tests/fixtures/rfc"

static int passed, failed;

static void check(int ok, const char *what, const char *detail)
{
    /* One line per check: line breaks in the detail are shown as '|'. */
    printf("%s: %s%s", ok ? "PASS" : "FAIL", what, detail && *detail ? " — " : "");
    for (const char *p = detail ? detail : ""; *p; p++) putchar(*p == '\n' ? '|' : *p);
    putchar('\n');
    if (ok) passed++;
    else failed++;
}

/* ---- running the task -------------------------------------------------------------------- */

typedef struct run {
    lra_dataset split[LRA_N_SPLITS];
    lra_provenance prov;
    char err[1024];
    int rc;
} run;

/* Builds with seq_len and NULL-terminated task options ("name=value"). */
static void build(run *r, const char *input, int seq_len, const char *const *opts)
{
    lra_config cfg;
    lra_config_defaults(&cfg);
    snprintf(cfg.task, sizeof cfg.task, "retrieval");
    cfg.seq_len = seq_len;
    for (int i = 0; opts && opts[i]; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "task.%s", opts[i]);
        if (lra_config_set_kv(&cfg, kv, r->err, sizeof r->err) != 0) {
            r->rc = -1;
            return;
        }
    }
    lra_task_env env = {.cfg = &cfg, .input = input, .data_root = NULL,
                        .samples_dir = "tasks/samples", .quiet = 1};
    memset(r, 0, sizeof *r);
    r->rc = lra_task_retrieval.build(&env, r->split, &r->prov, r->err, sizeof r->err);
}

static void run_free(run *r)
{
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&r->split[s]);
}

/* Document t of example i as bytes (tokens - 1 up to the padding); returns its length. */
static int doc_bytes(const lra_dataset *d, int i, int t, unsigned char *out)
{
    const int32_t *row = d->tokens + ((size_t)i * 2 + (size_t)t) * d->len;
    int n = 0;
    while (n < d->len && row[n] != 0) out[n] = (unsigned char)(row[n] - 1), n++;
    return n;
}

static int has_text(const unsigned char *s, int n, const char *word)
{
    size_t m = strlen(word);
    for (int i = 0; i + (int)m <= n; i++)
        if (memcmp(s + i, word, m) == 0) return 1;
    return 0;
}

/* Expects build() to fail with a message containing every NULL-terminated fragment. */
static void expect_error(const char *what, const char *input, const char *const *opts,
                         const char *const *frags)
{
    run r;
    build(&r, input, 64, opts);
    int ok = r.rc != 0;
    for (int k = 0; ok && frags[k]; k++) ok = strstr(r.err, frags[k]) != NULL;
    check(ok, what, r.rc ? r.err : "build succeeded");
    if (r.rc == 0) run_free(&r);
}

/* ---- temporary files ------------------------------------------------------------------- */

static char tmp_root[256];

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* A copy of the AAN fixtures in a fresh directory, with `file` replaced by `text`. */
static const char *aan_variant(const char *name, const char *file, const char *text)
{
    static char dir[512];
    static const char *const files[] = {"new_aan_pairs.train.tsv", "new_aan_pairs.eval.tsv",
                                        "new_aan_pairs.test.tsv"};
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    mkdir(dir, 0755);
    for (int k = 0; k < 3; k++) {
        char src[512], dst[1024], err[256];
        snprintf(src, sizeof src, "%s/%s", AAN_DIR, files[k]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[k]);
        if (file && strcmp(file, files[k]) == 0) {
            if (text) write_file(dst, text, strlen(text));
            continue;
        }
        size_t n;
        unsigned char *data = lra_read_file(src, &n, 1 << 20, err, sizeof err);
        if (!data) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        write_file(dst, data, n);
        free(data);
    }
    return dir;
}

/* ---- AAN --------------------------------------------------------------------------------- */

static void test_aan_roundtrip(void)
{
    static const char *const opts[] = {"format=aan", NULL};
    run r;
    build(&r, AAN_DIR, 64, opts);
    check(r.rc == 0, "aan: fixtures load", r.err);
    if (r.rc) return;
    int sizes_ok = r.split[0].n == 4 && r.split[1].n == 2 && r.split[2].n == 2 &&
                   r.split[0].docs == 2 && r.split[0].len == 64;
    check(sizes_ok, "aan: 4 / 2 / 2 pairs of 2 x 64 tokens", NULL);
    const int32_t want[4] = {1, 0, 1, 0};
    check(memcmp(r.split[0].labels, want, sizeof want) == 0, "aan: labels 1, 0.0, 1.0, 0",
          NULL);
    unsigned char doc[64];
    int n1 = doc_bytes(&r.split[0], 0, 0, doc);
    int ok = n1 == 38 && memcmp(doc, "We study parsing with neural networks.", 38) == 0 &&
             r.split[0].tokens[38] == 0;
    check(ok, "aan: text1 is bytes + 1, then padding", NULL);
    int n2 = doc_bytes(&r.split[0], 2, 1, doc);
    check(n2 == 64 && memcmp(doc, "Improved alignment", 18) == 0,
          "aan: a long text2 is truncated to seq_len", NULL);
    run_free(&r);
}

static void test_aan_errors(void)
{
    static const char *const aan[] = {"format=aan", NULL};
    expect_error("aan: wrong column count names file, line and columns",
                 aan_variant("cols", "new_aan_pairs.eval.tsv", "1\ta\tb\ttext\ttext\n0\ta\tb\tx\n"),
                 aan, (const char *const[]){"new_aan_pairs.eval.tsv:2:", "5 tab-separated",
                                            "found 4", NULL});
    expect_error("aan: label 2 names file, line and field",
                 aan_variant("label", "new_aan_pairs.test.tsv", "2\ta\tb\tx\ty\n"), aan,
                 (const char *const[]){"new_aan_pairs.test.tsv:1:", "field 1 (label)", "'2'",
                                       NULL});
    static const char *const short_line[] = {"format=aan", "max_line=100", NULL};
    char long_line[400];
    memset(long_line, 'x', sizeof long_line);
    memcpy(long_line, "1\ta\tb\t", 6);
    memcpy(long_line + 300, "\ty\n", 4);
    expect_error("aan: overlong line names file, line and the limit",
                 aan_variant("long", "new_aan_pairs.train.tsv", long_line), short_line,
                 (const char *const[]){"new_aan_pairs.train.tsv:1:", "task.max_line", NULL});
    expect_error("aan: a missing split file is named",
                 aan_variant("missing", "new_aan_pairs.eval.tsv", NULL), aan,
                 (const char *const[]){"new_aan_pairs.eval.tsv not found", NULL});
}

/* ---- RFC fixture corpus ------------------------------------------------------------------ */

static const char *const markers[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta",
                                      "hub"};
static const int marker_num[] = {101, 102, 103, 104, 105, 106, 2119};

static int fixture_doc(const lra_dataset *d, int i, int t)
{
    unsigned char doc[4096];
    int n = doc_bytes(d, i, t, doc);
    char word[32];
    for (int k = 0; k < 7; k++) {
        snprintf(word, sizeof word, "Marker %s.", markers[k]);
        if (has_text(doc, n, word)) return marker_num[k];
    }
    return 0;
}

static void test_rfc_fixture(void)
{
    static const char *const opts[] = {"val_pct=0", "test_pct=0", NULL};
    run r;
    build(&r, RFC_DIR, 512, opts);
    check(r.rc == 0, "rfc fixture: builds", r.err);
    if (r.rc) return;
    /* 101 cites 102, 103 (as [RFC103]) and 104 (Obsoletes:); 102 cites 105 and 106 (plural
     * list); 104 cites 105 (number on the next line). 2119 is a dropped hub; "RFC 2119, 106"
     * is a singular list (masked, not cited); bare numbers are not citations. */
    static const int want[][2] = {{101, 102}, {101, 103}, {101, 104},
                                  {102, 105}, {102, 106}, {104, 105}};
    const lra_dataset *d = &r.split[0];
    int found[6] = {0}, extra = 0, pos = 0, unknown = 0;
    for (int i = 0; i < d->n; i++) {
        int a = fixture_doc(d, i, 0), b = fixture_doc(d, i, 1);
        unknown += !a || !b;
        if (d->labels[i] != 1) continue;
        pos++;
        int lo = a < b ? a : b, hi = a < b ? b : a, hit = 0;
        for (int k = 0; k < 6; k++)
            if (want[k][0] == lo && want[k][1] == hi) found[k]++, hit = 1;
        extra += !hit;
    }
    int all = 1;
    for (int k = 0; k < 6; k++) all &= found[k] == 1;
    char why[128];
    snprintf(why, sizeof why, "%d positives, %d unexpected, %d unidentified docs", pos, extra,
             unknown);
    check(all && extra == 0 && unknown == 0 && pos == 6, "rfc fixture: exactly the 6 known links",
          why);
    check(d->n == 12 && r.split[1].n == 0 && r.split[2].n == 0,
          "rfc fixture: balanced, one negative per positive", NULL);
    run_free(&r);
}

static void test_scan_units(void)
{
    const char *text = "Obsoletes: 2616, 2068                  June 1999\n"
                       "Request for Comments: 7230\n   see RFC 1945 and RFCs 1034 and 1035; "
                       "rfc-editor.org/rfc/rfc7230.txt; RFC 3";
    unsigned char out[512];
    lra_rfc_cite *c = NULL;
    int nc = 0;
    size_t n = lra_rfc_scan((const unsigned char *)text, strlen(text), out, sizeof out, &c,
                            &nc);
    out[n < sizeof out ? n : sizeof out - 1] = 0;
    int digits_left = 0;
    for (const char *p = strstr((char *)out, "June 1999") + 9; *p; p++)
        digits_left += *p >= '0' && *p <= '9';
    check(strstr((char *)out, "Obsoletes: ####, ####  ") && strstr((char *)out, "June 1999") &&
              digits_left == 0, "scan: every RFC number masked, dates kept", (char *)out);
    /* 2616 2068 (relations) 7230 (long form) 1945 1034 1035 7230; "RFC 3" touches the end
     * of the text and may have been cut: not cited. */
    static const int want[] = {2616, 2068, 7230, 1945, 1034, 1035, 7230};
    int ok = nc == 7;
    for (int k = 0; ok && k < 7; k++) ok = c[k].num == want[k] && c[k].relation == (k < 2);
    check(ok, "scan: citations, relation lines flagged, a number cut at the end dropped", NULL);
    free(c);
    const char *page = "Intro text.\n\nAuthor                 Standards Track        [Page 3]\n"
                       "\fRFC 7230            HTTP/1.1 Syntax          June 2014\n\n"
                       "Table of Contents\n\n   1. Introduction ....... 2\n\n"
                       "1.  Introduction\n\n   Body.\n";
    unsigned char s[512];
    size_t m = lra_rfc_strip((const unsigned char *)page, strlen(page), s);
    s[m] = 0;
    check(strcmp((char *)s, "Intro text.\n\n1.  Introduction\n\n   Body.\n") == 0,
          "strip: page footer/header, form feed and table of contents removed", (char *)s);
}

/* ---- the sample corpus: splits, leaks, determinism ---------------------------------------- */

typedef struct sample_doc {
    int num;
    unsigned char *input;
    size_t len;
} sample_doc;

typedef struct sample {
    sample_doc d[1024];
    int n, seq_len;
} sample;

static int sample_entry(void *ctx, const char *path, const unsigned char *data, size_t size,
                        char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    sample *s = ctx;
    const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (s->n == 1024 || sscanf(b, "rfc%d.txt", &s->d[s->n].num) != 1) return 0;
    unsigned char *view = malloc(size + 1);
    size_t vlen = lra_rfc_strip(data, size, view);
    sample_doc *d = &s->d[s->n++];
    d->input = malloc((size_t)s->seq_len);
    d->len = lra_rfc_scan(view, vlen, d->input, (size_t)s->seq_len, NULL, NULL);
    if (d->len > (size_t)s->seq_len) d->len = (size_t)s->seq_len;
    free(view);
    return 0;
}

/* The RFC number of a model input, identified by content. */
static int identify(const sample *s, const unsigned char *doc, int n)
{
    for (int k = 0; k < s->n; k++)
        if (s->d[k].len == (size_t)n && memcmp(s->d[k].input, doc, (size_t)n) == 0)
            return s->d[k].num;
    return 0;
}

static int lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int word_at(const unsigned char *s, int n, int i, const char *w)
{
    int m = (int)strlen(w);
    if (i + m > n) return 0;
    for (int k = 0; k < m; k++)
        if (lower(s[i + k]) != w[k]) return 0;
    return 1;
}

static int skip_set(const unsigned char *s, int n, int j, const char *set)
{
    while (j < n && s[j] && strchr(set, s[j])) j++;
    return j;
}

/* After a number or placeholder: list glue (, / & and or) and the start of the next item. */
static int list_glue(const unsigned char *s, int n, int j)
{
    j = skip_set(s, n, j, " \t\r\n");
    if (j < n && s[j] && strchr(",/&", s[j])) j++;
    else if (word_at(s, n, j, "and ")) j += 4;
    else if (word_at(s, n, j, "or ")) j += 3;
    else return -1;
    if (word_at(s, n, j, " and ")) j += 5;
    return skip_set(s, n, j, " \t\r\n");
}

/* An independent reading of "RFC-mention context": after "rfc"/"rfcs"/"rfc's", "request for
 * comments" or a line starting "obsoletes:", "updates:", "obsoleted by", "updated by", then
 * separators (space, line breaks, - _ : and "no."), a number, and further numbers joined by
 * list glue. Counts the digit runs in such contexts (the placeholder "####" is not one) and
 * sets *pair_hit when one of them is a or b. */
static int context_numbers(const unsigned char *s, int n, int a, int b, int *pair_hit)
{
    static const char *const heads[] = {"request for comments", "rfc's", "rfcs", "rfc", NULL};
    static const char *const line_heads[] = {"obsoletes:", "updates:", "obsoleted by",
                                             "updated by", NULL};
    int count = 0;
    for (int i = 0; i < n; i++) {
        int j = -1;
        for (int k = 0; heads[k] && j < 0; k++)
            if (word_at(s, n, i, heads[k])) j = i + (int)strlen(heads[k]);
        for (int k = 0; line_heads[k] && j < 0 && (i == 0 || s[i - 1] == '\n'); k++)
            if (word_at(s, n, i, line_heads[k])) j = i + (int)strlen(line_heads[k]);
        if (j < 0) continue;
        j = skip_set(s, n, j, " \t\r\n\f-_:");
        if (word_at(s, n, j, "no.")) j = skip_set(s, n, j + 3, " \t\r\n\f-_:");
        while (j >= 0 && j < n) {
            if (s[j] >= '0' && s[j] <= '9') {
                long v = 0;
                while (j < n && s[j] >= '0' && s[j] <= '9')
                    v = v < 1000000 ? v * 10 + (s[j] - '0') : v, j++;
                count++;
                *pair_hit |= v == a || v == b;
            } else if (word_at(s, n, j, "####")) {
                j += 4;
            } else {
                break;
            }
            j = list_glue(s, n, j);
        }
    }
    return count;
}

static void test_sample(const sample *s)
{
    static const char *const opts[] = {"data_seed=7", NULL};
    const int len = s->seq_len;
    run r, again;
    build(&r, SAMPLE, len, opts);
    check(r.rc == 0, "sample: builds from tasks/samples/rfc-sample.tar.xz", r.err);
    if (r.rc) return;
    int unknown = 0, leaks = 0, in_context = 0, unbalanced = 0, docs_shared = 0;
    static unsigned char seen[100000];
    memset(seen, 0, sizeof seen);
    unsigned char *doc = malloc((size_t)len);
    for (int sp = 0; sp < LRA_N_SPLITS; sp++) {
        const lra_dataset *d = &r.split[sp];
        long pos = 0;
        for (int i = 0; i < d->n; i++) {
            int num[2];
            for (int t = 0; t < 2; t++) {
                int n = doc_bytes(d, i, t, doc);
                num[t] = identify(s, doc, n);
                unknown += !num[t];
                if (num[t] && seen[num[t]] && seen[num[t]] != sp + 1) docs_shared++;
                if (num[t]) seen[num[t]] = (unsigned char)(sp + 1);
            }
            for (int t = 0; t < 2; t++) {
                int n = doc_bytes(d, i, t, doc), hit = 0;
                in_context += context_numbers(doc, n, num[0], num[1], &hit);
                leaks += hit;
            }
            pos += d->labels[i];
        }
        unbalanced += d->n == 0 || pos * 2 != d->n;
    }
    char why[160];
    snprintf(why, sizeof why, "%d inputs unidentified", unknown);
    check(unknown == 0, "sample: every input is one RFC of the sample", why);
    snprintf(why, sizeof why, "%d pair numbers and %d numbers at all in RFC-mention contexts",
             leaks, in_context);
    check(leaks == 0 && in_context == 0, "sample: no RFC number in any mention context (leak)",
          why);
    check(unbalanced == 0, "sample: every split non-empty and balanced", NULL);
    check(docs_shared == 0, "sample: split=docs is document-disjoint", NULL);
    build(&again, SAMPLE, len, opts);
    int same = again.rc == 0;
    for (int sp = 0; same && sp < LRA_N_SPLITS; sp++)
        same = again.split[sp].n == r.split[sp].n &&
               memcmp(again.split[sp].tokens, r.split[sp].tokens,
                      (size_t)r.split[sp].n * 2 * len * sizeof(int32_t)) == 0 &&
               memcmp(again.split[sp].labels, r.split[sp].labels,
                      (size_t)r.split[sp].n * sizeof(int32_t)) == 0;
    check(same, "sample: the same data_seed gives identical splits", NULL);
    if (again.rc == 0) run_free(&again);
    run_free(&r);
    free(doc);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Pairs are told apart by the RFC numbers of their documents, not by content: an RFC and the
 * one it obsoletes can share their first bytes. */
static void test_pairs_split(const sample *s)
{
    static const char *const opts[] = {"split=pairs", "n_train=200", "n_val=40", "n_test=40",
                                       "negatives=random", NULL};
    const int len = s->seq_len;
    run r;
    build(&r, SAMPLE, len, opts);
    check(r.rc == 0, "sample split=pairs: builds", r.err);
    if (r.rc) return;
    check(r.split[0].n == 200 && r.split[1].n == 40 && r.split[2].n == 40,
          "sample split=pairs: requested sizes 200 / 40 / 40", NULL);
    int total = r.split[0].n + r.split[1].n + r.split[2].n, k = 0, unknown = 0;
    uint64_t *keys = malloc((size_t)total * sizeof *keys);
    unsigned char *doc = malloc((size_t)len);
    for (int sp = 0; sp < LRA_N_SPLITS; sp++)
        for (int i = 0; i < r.split[sp].n; i++) {
            int a = identify(s, doc, doc_bytes(&r.split[sp], i, 0, doc));
            int b = identify(s, doc, doc_bytes(&r.split[sp], i, 1, doc));
            unknown += !a || !b;
            keys[k++] = (uint64_t)(a < b ? a : b) << 32 | (uint64_t)(a < b ? b : a);
        }
    qsort(keys, (size_t)total, sizeof *keys, cmp_u64);
    int dups = 0;
    for (int i = 1; i < total; i++) dups += keys[i] == keys[i - 1];
    check(dups == 0 && unknown == 0,
          "sample split=pairs: no pair occurs twice (within or across splits)", NULL);
    free(doc);
    free(keys);
    run_free(&r);
}

/* ---- bad inputs ---------------------------------------------------------------------------- */

static void test_bad_inputs(void)
{
    char path[512], dir[512], err[256];
    snprintf(path, sizeof path, "%s/corrupt.tar.xz", tmp_root);
    size_t n;
    unsigned char *data = lra_read_file(SAMPLE, &n, 1 << 24, err, sizeof err);
    if (data) write_file(path, data, n / 2);
    free(data);
    expect_error("rfc: truncated .tar.xz names the archive", path, NULL,
                 (const char *const[]){"corrupt.tar.xz", NULL});
    snprintf(dir, sizeof dir, "%s/empty", tmp_root);
    mkdir(dir, 0755);
    expect_error("rfc: an empty directory is an error naming it", dir, NULL,
                 (const char *const[]){"empty", "no rfcN.txt", NULL});
    snprintf(dir, sizeof dir, "%s/does-not-exist", tmp_root);
    expect_error("rfc: a missing directory is an error naming it", dir, NULL,
                 (const char *const[]){"does-not-exist", "does not exist", NULL});
    expect_error("options: an unknown task option is rejected", RFC_DIR,
                 (const char *const[]){"colour=red", NULL},
                 (const char *const[]){"task.colour", NULL});
    expect_error("options: a bad choice names the option", RFC_DIR,
                 (const char *const[]){"text=pretty", NULL},
                 (const char *const[]){"task.text", "pretty", NULL});
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/lra-test-retrieval-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_aan_roundtrip();
    test_aan_errors();
    test_scan_units();
    test_rfc_fixture();
    /* The sample's model inputs, to tell which RFC each document of a pair is. */
    sample *s = calloc(1, sizeof *s);
    char err[512];
    s->seq_len = 4000;
    if (lra_source_foreach(SAMPLE, ".txt", 1 << 24, sample_entry, s, err, sizeof err) != 0)
        check(0, "sample: readable", err);
    test_sample(s);
    test_pairs_split(s);
    for (int k = 0; k < s->n; k++) free(s->d[k].input);
    free(s);
    test_bad_inputs();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmp_root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
