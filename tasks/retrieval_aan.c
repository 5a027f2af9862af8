/* retrieval_aan.c — LRA's own retrieval data: new_aan_pairs.{train,eval,test}.tsv (label, id1,
 * id2, text1, text2), each text cut to 10,000 bytes and encoded as byte + 1 as in LRA's
 * matching/input_pipeline.py (lra_aan_parse, aan_build), and the test that picks this format
 * for task.format=auto (aan_is_input).
 *
 * Split out of retrieval.c: the AAN reader shares nothing with the RFC substitute but the byte
 * encoding (retrieval_internal.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "retrieval_internal.h"
#include "source.h"
#include "util.h"

/* ---- AAN TSV ---------------------------------------------------------------------------- */

static const char *const aan_fields[5] = {"label", "id1", "id2", "text1", "text2"};

static int aan_label(const char *s, size_t n)
{
    if ((n == 1 || (n == 3 && memcmp(s + 1, ".0", 2) == 0)) && (s[0] == '0' || s[0] == '1'))
        return s[0] - '0';
    return -1;
}

/* Splits a line at tabs into at most 5 fields; returns the number of fields found. */
static int aan_split(const char *line, long len, const char *f[5], size_t flen[5])
{
    int k = 0;
    const char *p = line, *end = line + len;
    for (;;) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        const char *e = tab ? tab : end;
        if (k < 5) {
            f[k] = p;
            flen[k] = (size_t)(e - p);
        }
        k++;
        if (!tab) return k;
        p = tab + 1;
    }
}

static int aan_line(const char *name, long lineno, const char *line, long len, long max_line,
                    int seq_len, int32_t *tokens, int32_t *label, char *err, size_t errlen)
{
    if (len > max_line) {
        snprintf(err, errlen, "%s:%ld: line of %ld bytes is longer than the %ld accepted "
                 "(task.max_line); a field is missing its tab or newline", name, lineno, len,
                 max_line);
        return -1;
    }
    const char *f[5];
    size_t flen[5];
    int k = aan_split(line, len, f, flen);
    if (k != 5) {
        snprintf(err, errlen, "%s:%ld: expected 5 tab-separated fields (label, id1, id2, "
                 "text1, text2), found %d", name, lineno, k);
        return -1;
    }
    if ((*label = aan_label(f[0], flen[0])) < 0) {
        snprintf(err, errlen, "%s:%ld: field 1 (%s): expected 0, 1, 0.0 or 1.0, got '%.*s'",
                 name, lineno, aan_fields[0], (int)(flen[0] < 24 ? flen[0] : 24), f[0]);
        return -1;
    }
    for (int t = 0; t < 2; t++) {
        size_t n = flen[3 + t] < AAN_CHARS ? flen[3 + t] : AAN_CHARS;
        encode_bytes(tokens + (size_t)t * seq_len, (const unsigned char *)f[3 + t], n, seq_len);
    }
    return 0;
}

static size_t count_lines(const unsigned char *data, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < size; i++) n += data[i] == '\n';
    return n + (size > 0 && data[size - 1] != '\n');
}

int lra_aan_parse(const char *name, const unsigned char *data, size_t size, int seq_len,
                  long max_line, lra_dataset *d, char *err, size_t errlen)
{
    size_t cap = count_lines(data, size);
    if (cap == 0 || cap > INT32_MAX / 2) {
        snprintf(err, errlen, "%s: %s", name, cap ? "too many lines" : "no examples (empty file)");
        return -1;
    }
    lra_dataset_alloc(d, (int)cap, 2, seq_len);
    lra_lines lines;
    lra_lines_init(&lines, (const char *)data, size);
    const char *line;
    long len;
    int n = 0;
    while ((len = lra_lines_next(&lines, &line)) >= 0) {
        int32_t *row = d->tokens + (size_t)n * 2 * seq_len;
        if (aan_line(name, lines.lineno, line, len, max_line, seq_len, row, &d->labels[n], err,
                     errlen) != 0) {
            lra_dataset_free(d);
            return -1;
        }
        n++;
    }
    d->n = n;
    return 0;
}

typedef struct aan_ctx {
    lra_dataset *split;
    int seen[LRA_N_SPLITS];
    int seq_len;
    long max_line;
    char sha[LRA_N_SPLITS][65];
} aan_ctx;

static const char *const aan_files[LRA_N_SPLITS] = {
    "new_aan_pairs.train.tsv", "new_aan_pairs.eval.tsv", "new_aan_pairs.test.tsv"};

static int aan_entry(void *vctx, const char *path, const unsigned char *data, size_t size,
                     char *err, size_t errlen)
{
    aan_ctx *c = vctx;
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        if (strcmp(base_name(path), aan_files[s]) != 0) continue;
        if (c->seen[s]) {
            snprintf(err, errlen, "%s: a second %s (one per split)", path, aan_files[s]);
            return -1;
        }
        c->seen[s] = 1;
        lra_sha256(data, size, c->sha[s]);
        return lra_aan_parse(path, data, size, c->seq_len, c->max_line, &c->split[s], err,
                             errlen);
    }
    return 0;
}

int aan_build(const lra_task_env *env, const char *root, long max_line,
              lra_dataset split[LRA_N_SPLITS], lra_provenance *prov, char *err, size_t errlen)
{
    aan_ctx c = {.split = split, .seq_len = env->cfg->seq_len, .max_line = max_line};
    /* Whole files are read at once: allow the full LRA train file (a few GB). */
    if (lra_source_foreach(root, ".tsv", (size_t)16 << 30, aan_entry, &c, err, errlen) != 0)
        return -1;
    for (int s = 0; s < LRA_N_SPLITS; s++)
        if (!c.seen[s]) {
            snprintf(err, errlen, "%s: %s not found (AAN input needs new_aan_pairs."
                     "{train,eval,test}.tsv)", root, aan_files[s]);
            return -1;
        }
    lra_prov_add(prov, "source", "AAN TSV %s", root);
    for (int s = 0; s < LRA_N_SPLITS; s++)
        lra_prov_add(prov, s == 0 ? "sha256.train" : s == 1 ? "sha256.eval" : "sha256.test",
                     "%s", c.sha[s]);
    lra_prov_add(prov, "preprocessing", "text cut to its first %d bytes, byte + 1 (0 = pad), "
                 "truncated/padded to seq_len %d per document (LRA matching pipeline)",
                 AAN_CHARS, env->cfg->seq_len);
    lra_prov_add(prov, "splits", "train = %s, val = %s, test = %s (%d / %d / %d pairs)",
                 aan_files[0], aan_files[1], aan_files[2], split[0].n, split[1].n, split[2].n);
    return 0;
}

/* auto: AAN when the input is a directory with new_aan_pairs.train.tsv or a file whose name
 * says "aan"; the RFC corpus otherwise. */
int aan_is_input(const char *input)
{
    if (!input) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", input, aan_files[0]);
    return lra_is_dir(input) ? lra_is_file(path) : strstr(base_name(input), "aan") != NULL;
}
