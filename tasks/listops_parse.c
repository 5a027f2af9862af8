/* listops_parse.c — reading ListOps data in LRA's published format: the parser of one
 * basic_*.tsv held in memory (lra_listops_parse: header, then Source<TAB>Target lines, with
 * errors naming file, line and field) and the loader that finds the three files in a directory
 * or archive and records their hashes (listops_load_source).
 *
 * Split out of listops.c: the side of the task that reads untrusted files (the fuzz harness
 * calls lra_listops_parse), apart from the generator (listops_gen.c).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "listops_internal.h"
#include "source.h"
#include "util.h"

/* A released Source line is about 10 kB; anything near this is not ListOps. */
#define LINE_LIMIT (1 << 20)
/* The released basic_train.tsv is several hundred MB. */
#define FILE_LIMIT ((size_t)4 << 30)

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

int listops_load_source(const char *root, int seq_len, const long cap[LRA_N_SPLITS],
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
