/* retrieval.c — LRA Retrieval: do two documents cite each other? (2 documents, 2 classes).
 *
 * Two sources, chosen by task.format (auto: AAN when the input holds new_aan_pairs.*.tsv):
 *
 * AAN (LRA's files): new_aan_pairs.{train,eval,test}.tsv, tab-separated, no header, columns
 *   label, id1, id2, text1, text2 (label "0", "1", "0.0" or "1.0"). As in LRA's
 *   matching/input_pipeline.py each text is cut to its first 10,000 bytes, encoded as byte + 1
 *   (0 = padding, 257 ids) and truncated or padded to seq_len tokens per document.
 *
 * RFC (the substitute of lra-tasks.md §4.4): a directory or archive of rfcN.txt. A positive
 *   pair is two RFCs of the corpus where one cites the other; a negative is a pair linked in
 *   neither direction. Design choices, each recorded in the provenance:
 *   - Citations: "RFC 2119", "RFC-2119", "[RFC2119]", "rfc2119.txt", "RFC\n   2119", plural
 *     lists ("RFCs 1034 and 1035"), and the Obsoletes:/Updates: header relations; only targets
 *     inside the corpus; self-mentions dropped. By default (cite=doc) the whole document is
 *     searched, like AAN's citation graph that comes from whole papers; cite=window counts only
 *     mentions that end inside the seq_len bytes the model sees.
 *   - Leaks: every RFC-number mention is replaced by the fixed placeholder "####" (whatever
 *     the number of digits, so that the length does not give the era away), as are the
 *     numbers of header relation lines and of "Request for Comments: N". Otherwise the task
 *     is number matching ("Obsoletes: 2068" against "Request for Comments: 2068").
 *   - Text (text=stripped, default): front matter (numbers, authors, dates), running page
 *     headers and footers, form feeds and the boilerplate sections (Status of This Memo,
 *     Copyright Notice, Table of Contents, IESG Note) are removed before truncation, because
 *     in recent RFCs they fill most of the first 4 kB with identical text and the dates in the
 *     header give the order of the pair away. text=raw keeps LRA's literal first 4,000 bytes
 *     (still masked).
 *   - Hubs: links to the boilerplate targets RFC 2119, 8174, 5741 and 7841 are dropped
 *     (hubs=drop), and at most hub_cap positives share one cited document, else "is the other
 *     document RFC 2119?" answers half of the positives.
 *   - Negatives: one per positive, linked in neither direction in the full citation graph.
 *     negatives=degree (default) keeps the positive's citing document and replaces the cited
 *     one by a document of the same split whose number of positives is in the same power-of-2
 *     bucket, so that how often a document occurs says nothing about the label;
 *     negatives=random draws both documents. The two documents of every pair are put in a
 *     random order (the citing document is usually the newer one).
 *   - Splits: split=docs (default) assigns each RFC to train/val/test by a hash of its number
 *     and keeps only pairs inside one split (document-disjoint; keeps about Σ p² = 66% of the
 *     links at 80/10/10); split=pairs splits the positive pairs at random, so documents recur
 *     across splits (memorising documents then helps). Either way no pair is in two splits.
 *   Everything random is a function of task.data_seed (lra_rng.h).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lra_rng.h"
#include "source.h"
#include "task.h"
#include "util.h"

enum { AAN_CHARS = 10000, MAX_RFC = 99999, MASK_LEN = 4, SEP_MAX = 16 };
static const char MASK[MASK_LEN + 1] = "####";

static const char *const retrieval_opts[] = {
    "format", "text", "cite", "relations", "hubs", "hub_cap", "negatives", "split", "val_pct",
    "test_pct", "n_train", "n_val", "n_test", "data_seed", "max_line", NULL};

/* The requirement-key-words and "Status of This Memo" references: cited for boilerplate,
 * not for content. */
static const int boilerplate_hubs[] = {2119, 8174, 5741, 7841};

/* ---- testing interface (also used by tests/ and tests/fuzz/) ------------------------- */

typedef struct lra_rfc_cite {
    int num;      /* cited RFC number */
    int relation; /* found in an Obsoletes:/Updates: header line */
    size_t end;   /* output offset just past the placeholder */
} lra_rfc_cite;

size_t lra_rfc_strip(const unsigned char *s, size_t n, unsigned char *out);
size_t lra_rfc_scan(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                    lra_rfc_cite **cites, int *n_cites);
int lra_aan_parse(const char *name, const unsigned char *data, size_t size, int seq_len,
                  long max_line, lra_dataset *d, char *err, size_t errlen);

/* ---- small helpers -------------------------------------------------------------------- */

static int starts_ci(const unsigned char *s, size_t n, const char *word)
{
    size_t m = strlen(word);
    if (n < m) return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower(s[i]) != tolower((unsigned char)word[i])) return 0;
    return 1;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alnum(unsigned char c) { return isalnum(c) != 0; }

/* Picks one of `choices` for task.<name> (the first is the default). */
static int opt_choice(const lra_config *cfg, const char *name, const char *const *choices,
                      int *out, char *err, size_t errlen)
{
    const char *v = lra_task_opt(cfg, name);
    *out = 0;
    if (!v) return 0;
    for (int i = 0; choices[i]; i++)
        if (strcmp(v, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    int off = snprintf(err, errlen, "task retrieval: task.%s wants one of", name);
    for (int i = 0; choices[i] && off > 0 && (size_t)off < errlen; i++)
        off += snprintf(err + off, errlen - (size_t)off, " %s", choices[i]);
    if (off > 0 && (size_t)off < errlen) snprintf(err + off, errlen - (size_t)off, ", got '%s'", v);
    return -1;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Byte tokens: value + 1, 0 is padding (the row must be zeroed). */
static void encode_bytes(int32_t *row, const unsigned char *s, size_t n, int len)
{
    if (n > (size_t)len) n = (size_t)len;
    for (size_t i = 0; i < n; i++) row[i] = (int32_t)s[i] + 1;
}

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

static int aan_build(const lra_task_env *env, const char *root, long max_line,
                     lra_dataset split[LRA_N_SPLITS], lra_provenance *prov, char *err,
                     size_t errlen)
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

/* ---- RFC text: stripping the layout and boilerplate ------------------------------------ */

static const char *const boilerplate_heads[] = {
    "status of this memo", "copyright notice", "table of contents", "iesg note",
    "full copyright statement", "intellectual property", NULL};

static int is_blank(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace(s[i])) return 0;
    return 1;
}

/* "Berger & Fedyk     Standards Track     [Page 1]" */
static int is_page_footer(const unsigned char *s, size_t n)
{
    while (n > 0 && isspace(s[n - 1])) n--;
    if (n == 0 || s[n - 1] != ']') return 0;
    size_t i = n - 1;
    while (i > 0 && is_digit(s[i - 1])) i--;
    return i >= 6 && i < n - 1 && starts_ci(s + i - 6, 6, "[page ");
}

/* "RFC 6002     GMPLS DCSC Channel Extensions     October 2010": at column 0, the number,
 * then a column gap. */
static int is_page_header(const unsigned char *s, size_t n)
{
    if (!starts_ci(s, n, "rfc")) return 0;
    size_t i = 3;
    if (i < n && (s[i] == ' ' || s[i] == '-')) i++;
    if (i >= n || !is_digit(s[i])) return 0;
    while (i < n && is_digit(s[i])) i++;
    return n - i >= 2 && s[i] == ' ' && s[i + 1] == ' ';
}

/* Table-of-contents lines: dot leaders ending in a page number. */
static int is_toc_line(const unsigned char *s, size_t n)
{
    while (n > 0 && isspace(s[n - 1])) n--;
    if (n == 0 || !is_digit(s[n - 1])) return 0;
    for (size_t i = 0; i + 5 <= n; i++)
        if (memcmp(s + i, ".....", 5) == 0) return 1;
    return 0;
}

static int is_boilerplate_head(const unsigned char *s, size_t n)
{
    for (int k = 0; boilerplate_heads[k]; k++)
        if (starts_ci(s, n, boilerplate_heads[k])) return 1;
    return 0;
}

static int contains(const unsigned char *s, size_t n, const char *word)
{
    for (size_t i = 0; i < n; i++)
        if (starts_ci(s + i, n - i, word)) return 1;
    return 0;
}

/* The front matter is the first paragraph when it names the series or a relation. */
static size_t front_matter_end(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n && isspace(s[i])) i++;
    size_t start = i;
    while (i < n) {
        const unsigned char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n;
        if (is_blank(s + i, e - i)) break;
        i = nl ? e + 1 : n;
    }
    static const char *const marks[] = {"request for comments", "network working group",
                                        "obsoletes", "updates:", "category:", NULL};
    for (int k = 0; marks[k]; k++)
        if (contains(s + start, i - start, marks[k])) return i;
    return 0;
}

/* Writes the text without front matter, page layout and boilerplate sections, with runs of
 * blank lines collapsed; out needs n + 1 bytes. Returns the length written. */
size_t lra_rfc_strip(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t o = 0, i = front_matter_end(s, n);
    int skipping = 0, last_blank = 1;
    while (i < n) {
        const unsigned char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n;
        const unsigned char *line = s + i;
        size_t len = e - i;
        i = nl ? e + 1 : n;
        while (len > 0 && *line == '\f') line++, len--; /* a page break starts the line */
        if (is_page_footer(line, len) || is_page_header(line, len) || is_toc_line(line, len))
            continue;
        int blank = is_blank(line, len);
        if (!blank && !isspace(line[0])) skipping = is_boilerplate_head(line, len);
        if (skipping || (blank && last_blank)) continue;
        for (size_t k = 0; k < len; k++)
            if (line[k] != '\f') out[o++] = line[k];
        out[o++] = '\n';
        last_blank = blank;
    }
    return o;
}

/* ---- RFC text: finding and masking RFC numbers ------------------------------------------ */

typedef struct scan {
    const unsigned char *s;
    size_t n, i;          /* input and position */
    unsigned char *out;   /* written up to cap bytes; len counts everything */
    size_t cap, len;
    lra_rfc_cite *cites;  /* NULL when the caller does not want them */
    int n_cites, max_cites;
    int relation_pending; /* a header relation list ended with a comma: continues below */
} scan;

static void emit(scan *sc, const unsigned char *p, size_t k)
{
    for (size_t j = 0; j < k; j++, sc->len++)
        if (sc->len < sc->cap) sc->out[sc->len] = p[j];
}

static void copy_to(scan *sc, size_t to)
{
    emit(sc, sc->s + sc->i, to - sc->i);
    sc->i = to;
}

static void add_cite(scan *sc, int num, int relation)
{
    if (!sc->cites && sc->max_cites < 0) return;
    if (sc->n_cites == sc->max_cites) {
        int cap = sc->max_cites ? 2 * sc->max_cites : 16;
        lra_rfc_cite *c = realloc(sc->cites, (size_t)cap * sizeof *c);
        if (!c) lra_die("out of memory collecting RFC citations");
        sc->cites = c;
        sc->max_cites = cap;
    }
    sc->cites[sc->n_cites++] = (lra_rfc_cite){num, relation, sc->len};
}

/* Masks the digit run at sc->i; cites it when `cite` and the run is a whole RFC number (it
 * does not touch the end of the text, where it may have been cut). */
static void mask_number(scan *sc, int cite, int relation)
{
    size_t j = sc->i;
    long value = 0;
    while (j < sc->n && is_digit(sc->s[j])) {
        if (value <= MAX_RFC) value = value * 10 + (sc->s[j] - '0');
        j++;
    }
    emit(sc, (const unsigned char *)MASK, MASK_LEN);
    sc->i = j;
    if (cite && j < sc->n && value >= 1 && value <= MAX_RFC) add_cite(sc, (int)value, relation);
}

/* Separators between "RFC" and its number: space, line breaks, '-', '_', '#', ':'. */
static size_t skip_separators(const unsigned char *s, size_t n, size_t i)
{
    size_t start = i;
    while (i < n && i - start < SEP_MAX && s[i] && strchr(" \t\r\n\f-_#:", s[i])) i++;
    return i;
}

/* After a number, another one of the same list: ", 1035", " and 1035", "/1122". Returns the
 * position of its first digit, or 0. The next number must be a whole word. */
static size_t list_next(const unsigned char *s, size_t n, size_t i)
{
    size_t j = i;
    while (j < n && j - i < SEP_MAX && (s[j] == ' ' || s[j] == '\n' || s[j] == '\t')) j++;
    if (j < n && (s[j] == ',' || s[j] == '/' || s[j] == '&')) j++;
    else if (starts_ci(s + j, n - j, "and ")) j += 4;
    else if (starts_ci(s + j, n - j, "or ")) j += 3;
    else return 0;
    if (j < n && s[j] == ' ' && j + 4 < n && starts_ci(s + j + 1, n - j - 1, "and ")) j += 5;
    while (j < n && j - i < 2 * SEP_MAX && (s[j] == ' ' || s[j] == '\n' || s[j] == '\t')) j++;
    if (starts_ci(s + j, n - j, "rfc")) return 0; /* "RFC 1, RFC 2": the main loop takes it */
    if (j >= n || !is_digit(s[j])) return 0;
    size_t k = j;
    while (k < n && is_digit(s[k])) k++;
    return k < n && is_alnum(s[k]) ? 0 : j;
}

/* "RFC", "RFCs", "RFC's", then separators and a number. Plural lists cite every member. */
static int rfc_mention(scan *sc)
{
    const unsigned char *s = sc->s;
    size_t n = sc->n, j = sc->i + 3;
    int plural = 0;
    if (j < n && (s[j] == 's' || s[j] == 'S')) j++, plural = 1;
    else if (j + 1 < n && s[j] == '\'' && (s[j + 1] == 's' || s[j + 1] == 'S')) j += 2, plural = 1;
    j = skip_separators(s, n, j);
    if (starts_ci(s + j, n - j, "no.")) j = skip_separators(s, n, j + 3); /* "RFC No. 60" */
    if (j >= n || !is_digit(s[j])) return 0;
    copy_to(sc, j);
    mask_number(sc, 1, 0);
    size_t next;
    while ((next = list_next(s, n, sc->i)) != 0) {
        copy_to(sc, next);
        mask_number(sc, plural, 0);
    }
    return 1;
}

static const char *const relation_heads[] = {"obsoletes", "updates", "obsoleted by",
                                             "updated by", NULL};

/* The value list of a header relation line: "Obsoletes: 2616, RFC 2068" up to the column
 * gap before the author column. */
static void relation_list(scan *sc)
{
    const unsigned char *s = sc->s;
    size_t n = sc->n;
    sc->relation_pending = 0;
    for (;;) {
        size_t j = sc->i;
        while (j < n && (s[j] == ' ' || s[j] == '\t') && j - sc->i < 3) j++;
        if (j - sc->i >= 3) return; /* the column gap */
        if (starts_ci(s + j, n - j, "rfc")) {
            j += 3;
            if (j < n && (s[j] == 's' || s[j] == 'S')) j++;
            j = skip_separators(s, n, j);
        }
        if (j >= n || !is_digit(s[j])) return;
        copy_to(sc, j);
        mask_number(sc, 1, 1);
        j = sc->i;
        while (j < n && s[j] == ' ') j++;
        if (j < n && s[j] == ',') {
            copy_to(sc, j + 1);
            size_t k = sc->i;
            while (k < n && s[k] == ' ') k++;
            if (k >= n || s[k] == '\n' || k - sc->i >= 3) sc->relation_pending = 1;
        } else if (starts_ci(s + j, n - j, "and ")) {
            copy_to(sc, j + 4);
        } else {
            return;
        }
        if (sc->relation_pending) return;
    }
}

/* At a line start: a relation line, or the continuation of one ("         4203, 5307"). */
static int line_start(scan *sc)
{
    const unsigned char *s = sc->s + sc->i;
    size_t n = sc->n - sc->i;
    if (sc->relation_pending) {
        size_t j = 0;
        while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
        sc->relation_pending = 0;
        if (j > 0 && j < n && is_digit(s[j])) {
            copy_to(sc, sc->i + j);
            relation_list(sc);
            return 1;
        }
    }
    for (int k = 0; relation_heads[k]; k++) {
        size_t m = strlen(relation_heads[k]);
        if (starts_ci(s, n, relation_heads[k]) && m < n && (s[m] == ':' || s[m] == ' ')) {
            copy_to(sc, sc->i + m + (s[m] == ':'));
            relation_list(sc);
            return 1;
        }
    }
    return 0;
}

/* "Request for Comments: 6002", "Request for Comments #60". */
static int rfc_long_form(scan *sc)
{
    static const char head[] = "request for comments";
    size_t j = sc->i + sizeof head - 1;
    j = skip_separators(sc->s, sc->n, j);
    if (starts_ci(sc->s + j, sc->n - j, "no.")) j = skip_separators(sc->s, sc->n, j + 3);
    if (j >= sc->n || !is_digit(sc->s[j])) return 0;
    copy_to(sc, j);
    mask_number(sc, 1, 0);
    return 1;
}

size_t lra_rfc_scan(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                    lra_rfc_cite **cites, int *n_cites)
{
    scan sc = {.s = s, .n = n, .out = out, .cap = out ? cap : 0, .max_cites = cites ? 0 : -1};
    while (sc.i < n) {
        int at_line = sc.i == 0 || s[sc.i - 1] == '\n';
        if (at_line && line_start(&sc)) continue;
        if (starts_ci(s + sc.i, n - sc.i, "rfc") && rfc_mention(&sc)) continue;
        if (starts_ci(s + sc.i, n - sc.i, "request for comments") && rfc_long_form(&sc)) continue;
        copy_to(&sc, sc.i + 1);
    }
    if (cites) {
        *cites = sc.cites;
        *n_cites = sc.n_cites;
    }
    return sc.len;
}

/* ---- RFC corpus ------------------------------------------------------------------------ */

enum { TEXT_STRIPPED, TEXT_RAW };
enum { CITE_DOC, CITE_WINDOW };
enum { NEG_DEGREE, NEG_RANDOM };
enum { SPLIT_DOCS, SPLIT_PAIRS };

typedef struct rfc_opts {
    int text, cite, keep_relations, keep_hubs, negatives, split_mode;
    long hub_cap, val_pct, test_pct, n[LRA_N_SPLITS], seed;
    int seq_len;
} rfc_opts;

typedef struct rfc_doc {
    int num;
    int split;
    unsigned char *input; /* masked model input, at most seq_len bytes */
    int input_len;
    int *cites;           /* distinct cited numbers (not yet filtered to the corpus) */
    unsigned char *relation_only; /* per cite: found only in a header relation line */
    int n_cites;
} rfc_doc;

typedef struct rfc_corpus {
    rfc_doc *docs;
    int n, cap;
    long skipped;         /* .txt entries that are not rfcN.txt */
    size_t bytes;
    int hash_files;       /* a directory: hash every file (an archive is hashed whole) */
    char *digests;        /* "path sha256\n" per file, hashed for the provenance */
    size_t digests_len, digests_cap;
    const rfc_opts *o;
} rfc_corpus;

/* "rfc2616.txt" -> 2616; 0 when the name is not an RFC file. */
static int rfc_number(const char *path)
{
    const char *b = base_name(path);
    if (strncmp(b, "rfc", 3) != 0 || !is_digit((unsigned char)b[3]) || b[3] == '0') return 0;
    char *end;
    long v = strtol(b + 3, &end, 10);
    return strcmp(end, ".txt") == 0 && v <= MAX_RFC ? (int)v : 0;
}

static int cmp_cite_num(const void *a, const void *b)
{
    const lra_rfc_cite *x = a, *y = b;
    return x->num != y->num ? (x->num > y->num) - (x->num < y->num)
                            : (x->relation > y->relation) - (x->relation < y->relation);
}

/* Distinct cited numbers, without the document's own; relation_only when no mention in the
 * text backs a header relation. */
static void keep_cites(rfc_doc *d, lra_rfc_cite *c, int n, size_t window)
{
    qsort(c, (size_t)n, sizeof *c, cmp_cite_num);
    d->cites = malloc((size_t)(n ? n : 1) * sizeof *d->cites);
    d->relation_only = malloc((size_t)(n ? n : 1));
    if (!d->cites || !d->relation_only) lra_die("out of memory collecting RFC citations");
    for (int i = 0; i < n; i++) {
        if (c[i].num == d->num || c[i].end > window) continue;
        if (d->n_cites > 0 && d->cites[d->n_cites - 1] == c[i].num) continue;
        d->cites[d->n_cites] = c[i].num;
        d->relation_only[d->n_cites++] = (unsigned char)c[i].relation; /* sorted: 0 first */
    }
}

static void add_digest(rfc_corpus *c, const char *path, const unsigned char *data, size_t n)
{
    char hex[65], line[4200];
    lra_sha256(data, n, hex);
    int k = snprintf(line, sizeof line, "%s %s\n", path, hex);
    if (c->digests_len + (size_t)k + 1 > c->digests_cap) {
        c->digests_cap = 2 * c->digests_cap + (size_t)k + 4096;
        c->digests = realloc(c->digests, c->digests_cap);
        if (!c->digests) lra_die("out of memory hashing the RFC corpus");
    }
    memcpy(c->digests + c->digests_len, line, (size_t)k);
    c->digests_len += (size_t)k;
}

/* One rfcN.txt: its model input and its citations. */
static void rfc_prepare(rfc_doc *d, const unsigned char *raw, size_t n, const rfc_opts *o)
{
    unsigned char *view = malloc(n + 1);
    if (!view) lra_die("out of memory reading RFC %d", d->num);
    size_t vlen = o->text == TEXT_STRIPPED ? lra_rfc_strip(raw, n, view) : n;
    if (o->text == TEXT_RAW) memcpy(view, raw, n);
    d->input = lra_alloc((size_t)o->seq_len, "RFC input");
    lra_rfc_cite *c = NULL;
    int nc = 0;
    size_t out = lra_rfc_scan(view, vlen, d->input, (size_t)o->seq_len,
                              o->cite == CITE_WINDOW ? &c : NULL, &nc);
    d->input_len = (int)(out < (size_t)o->seq_len ? out : (size_t)o->seq_len);
    if (o->cite == CITE_DOC) lra_rfc_scan(raw, n, NULL, 0, &c, &nc);
    keep_cites(d, c, nc, o->cite == CITE_WINDOW ? (size_t)o->seq_len : SIZE_MAX);
    free(c);
    free(view);
}

static int rfc_entry(void *vctx, const char *path, const unsigned char *data, size_t size,
                     char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    rfc_corpus *c = vctx;
    int num = rfc_number(path);
    if (!num) {
        c->skipped++;
        return 0;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->docs = realloc(c->docs, (size_t)c->cap * sizeof *c->docs);
        if (!c->docs) lra_die("out of memory reading the RFC corpus");
    }
    rfc_doc *d = &c->docs[c->n++];
    memset(d, 0, sizeof *d);
    d->num = num;
    rfc_prepare(d, data, size, c->o);
    if (c->hash_files) add_digest(c, path, data, size);
    c->bytes += size;
    return 0;
}

static void corpus_free(rfc_corpus *c)
{
    for (int i = 0; i < c->n; i++) {
        lra_free(c->docs[i].input);
        free(c->docs[i].cites);
        free(c->docs[i].relation_only);
    }
    free(c->docs);
    free(c->digests);
}

static int cmp_doc_num(const void *a, const void *b)
{
    const rfc_doc *x = a, *y = b;
    return (x->num > y->num) - (x->num < y->num);
}

static int corpus_read(const char *root, rfc_corpus *c, char *err, size_t errlen)
{
    if (lra_source_foreach(root, ".txt", (size_t)1 << 24, rfc_entry, c, err, errlen) != 0)
        return -1;
    if (c->n == 0) {
        snprintf(err, errlen, "%s: no rfcN.txt files found (%ld other .txt files)", root,
                 c->skipped);
        return -1;
    }
    qsort(c->docs, (size_t)c->n, sizeof *c->docs, cmp_doc_num);
    for (int i = 1; i < c->n; i++)
        if (c->docs[i].num == c->docs[i - 1].num) {
            snprintf(err, errlen, "%s: rfc%d.txt occurs twice", root, c->docs[i].num);
            return -1;
        }
    return 0;
}

/* ---- pair sets ------------------------------------------------------------------------ */

/* An open-addressing set of unordered document-index pairs. */
typedef struct pair_set {
    uint64_t *slot; /* 0 = empty; else key + 1 */
    size_t mask, n;
} pair_set;

static uint64_t pair_key(int a, int b)
{
    uint32_t lo = (uint32_t)(a < b ? a : b), hi = (uint32_t)(a < b ? b : a);
    return (uint64_t)hi << 32 | lo;
}

static void set_init(pair_set *s, size_t expect)
{
    size_t cap = 64;
    while (cap < 2 * expect + 64) cap *= 2;
    s->slot = calloc(cap, sizeof *s->slot);
    if (!s->slot) lra_die("out of memory for a pair set");
    s->mask = cap - 1;
    s->n = 0;
}

static int set_has(const pair_set *s, uint64_t key)
{
    for (size_t h = lra_mix64(key) & s->mask;; h = (h + 1) & s->mask) {
        if (s->slot[h] == 0) return 0;
        if (s->slot[h] == key + 1) return 1;
    }
}

/* Returns 1 when the key was new. The set is sized for its use and never fills up. */
static int set_add(pair_set *s, uint64_t key)
{
    size_t h = lra_mix64(key) & s->mask;
    for (; s->slot[h] != 0; h = (h + 1) & s->mask)
        if (s->slot[h] == key + 1) return 0;
    s->slot[h] = key + 1;
    s->n++;
    return 1;
}

/* ---- links, splits and pairs ------------------------------------------------------------- */

typedef struct link {
    int from, to;   /* document indices: `from` cites `to` */
    uint64_t order; /* random rank for capping and sampling */
} link;

typedef struct pairs {
    link *v;
    int n, cap;
} pairs;

static void pairs_push(pairs *p, link l)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->v = realloc(p->v, (size_t)p->cap * sizeof *p->v);
        if (!p->v) lra_die("out of memory collecting pairs");
    }
    p->v[p->n++] = l;
}

static int doc_index(const rfc_corpus *c, int num)
{
    int lo = 0, hi = c->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c->docs[mid].num == num) return mid;
        if (c->docs[mid].num < num) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static int is_boilerplate_hub(int num)
{
    for (size_t k = 0; k < sizeof boilerplate_hubs / sizeof boilerplate_hubs[0]; k++)
        if (boilerplate_hubs[k] == num) return 1;
    return 0;
}

typedef struct link_stats {
    long directed, hub_dropped, relation_dropped, undirected;
} link_stats;

/* Every citation between two corpus documents goes into `linked` (for negatives); the
 * undirected positives that pass the hub and relation filters into `pos`. */
static void collect_links(const rfc_corpus *c, const rfc_opts *o, pair_set *linked,
                          pairs *pos, link_stats *st)
{
    uint64_t key = lra_key((uint64_t)o->seed, 0x11c5);
    for (int a = 0; a < c->n; a++) {
        const rfc_doc *d = &c->docs[a];
        for (int k = 0; k < d->n_cites; k++) {
            int b = doc_index(c, d->cites[k]);
            if (b < 0) continue;
            st->directed++;
            if (!set_add(linked, pair_key(a, b))) continue; /* the other direction came first */
            if (!o->keep_hubs && is_boilerplate_hub(c->docs[b].num)) {
                st->hub_dropped++;
                continue;
            }
            if (!o->keep_relations && d->relation_only[k]) {
                st->relation_dropped++;
                continue;
            }
            pairs_push(pos, (link){a, b, lra_bits(key, pair_key(a, b))});
        }
    }
    st->undirected = (long)linked->n;
}

/* Which split a document (split=docs) or a pair (split=pairs) belongs to. */
static int split_of(uint64_t h, const rfc_opts *o)
{
    long r = (long)(h % 1000);
    if (r < 10 * o->test_pct) return LRA_SPLIT_TEST;
    if (r < 10 * (o->test_pct + o->val_pct)) return LRA_SPLIT_VAL;
    return LRA_SPLIT_TRAIN;
}

/* The document split depends on the RFC number only, not on the seed: a document stays in
 * its split across data seeds. */
static void assign_doc_splits(rfc_corpus *c, const rfc_opts *o)
{
    for (int i = 0; i < c->n; i++)
        c->docs[i].split = split_of(lra_key(0xd0c5, (uint64_t)c->docs[i].num), o);
}

static int cmp_link_target(const void *a, const void *b)
{
    const link *x = a, *y = b;
    if (x->to != y->to) return (x->to > y->to) - (x->to < y->to);
    return (x->order > y->order) - (x->order < y->order);
}

static int cmp_link_order(const void *a, const void *b)
{
    const link *x = a, *y = b;
    return (x->order > y->order) - (x->order < y->order);
}

/* Keeps at most `cap` positives per cited document (a random subset). */
static void cap_targets(pairs *p, long cap)
{
    if (cap <= 0) return;
    qsort(p->v, (size_t)p->n, sizeof *p->v, cmp_link_target);
    int m = 0;
    for (int i = 0, run = 0; i < p->n; i++) {
        run = i > 0 && p->v[i].to == p->v[i - 1].to ? run + 1 : 0;
        if (run < cap) p->v[m++] = p->v[i];
    }
    p->n = m;
}

/* Positives of each split: split by documents or by pairs, capped, sampled to n/2. */
static void split_positives(const rfc_corpus *c, const rfc_opts *o, const pairs *all,
                            pairs out[LRA_N_SPLITS], long *cross_split)
{
    uint64_t key = lra_key((uint64_t)o->seed, 0x5b17);
    *cross_split = 0;
    for (int i = 0; i < all->n; i++) {
        const link *l = &all->v[i];
        int s;
        if (o->split_mode == SPLIT_PAIRS) {
            s = split_of(lra_bits(key, pair_key(l->from, l->to)), o);
        } else if (c->docs[l->from].split == c->docs[l->to].split) {
            s = c->docs[l->from].split;
        } else {
            (*cross_split)++;
            continue;
        }
        pairs_push(&out[s], *l);
    }
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        cap_targets(&out[s], o->hub_cap);
        qsort(out[s].v, (size_t)out[s].n, sizeof *out[s].v, cmp_link_order);
        if (o->n[s] > 0 && out[s].n > o->n[s] / 2) out[s].n = (int)(o->n[s] / 2);
    }
}

/* ---- negatives ------------------------------------------------------------------------ */

enum { DEGREE_BUCKETS = 32, NEG_TRIES = 64 };

/* The documents of one split's positives, by power-of-2 bucket of their positive count. */
typedef struct pool {
    int *docs[DEGREE_BUCKETS];
    int n[DEGREE_BUCKETS];
    int *all;
    int n_all;
    int *degree; /* per corpus document: positives in this split */
} pool;

static int bucket_of(int degree)
{
    int b = 0;
    while (degree > 1 && b < DEGREE_BUCKETS - 1) degree >>= 1, b++;
    return b;
}

static void pool_build(pool *p, const rfc_corpus *c, const pairs *pos)
{
    memset(p, 0, sizeof *p);
    p->degree = calloc((size_t)c->n, sizeof *p->degree);
    p->all = malloc((size_t)c->n * sizeof *p->all);
    for (int b = 0; b < DEGREE_BUCKETS; b++) p->docs[b] = malloc((size_t)c->n * sizeof(int));
    if (!p->degree || !p->all) lra_die("out of memory sampling negatives");
    for (int i = 0; i < pos->n; i++) p->degree[pos->v[i].from]++, p->degree[pos->v[i].to]++;
    for (int d = 0; d < c->n; d++) {
        if (!p->degree[d]) continue;
        int b = bucket_of(p->degree[d]);
        if (!p->docs[b]) lra_die("out of memory sampling negatives");
        p->docs[b][p->n[b]++] = d;
        p->all[p->n_all++] = d;
    }
}

static void pool_free(pool *p)
{
    for (int b = 0; b < DEGREE_BUCKETS; b++) free(p->docs[b]);
    free(p->all);
    free(p->degree);
}

static int draw(const int *v, int n, uint64_t key, uint64_t *ctr)
{
    return v[lra_below(key, (*ctr)++, (uint32_t)n)];
}

/* A negative for positive l: returns 1 and sets *neg, or 0 when none was found. `used`
 * holds every pair already in the dataset, across splits. */
static int sample_negative(const link *l, const pool *p, const rfc_opts *o,
                           const pair_set *linked, pair_set *used, uint64_t key, link *neg)
{
    uint64_t ctr = 0;
    int b = bucket_of(p->degree[l->to]);
    for (int t = 0; t < 3 * NEG_TRIES; t++) {
        /* Degree-matched: the citing document with a document of the same bucket, then with
         * any document; last (and for negatives=random) any two documents of the split. */
        int keep_from = o->negatives == NEG_DEGREE && t < 2 * NEG_TRIES;
        int matched = o->negatives == NEG_DEGREE && t < NEG_TRIES;
        int x = keep_from ? l->from : draw(p->all, p->n_all, key, &ctr);
        int y = matched ? draw(p->docs[b], p->n[b], key, &ctr)
                        : draw(p->all, p->n_all, key, &ctr);
        uint64_t k = pair_key(x, y);
        if (x == y || set_has(linked, k) || set_has(used, k)) continue;
        set_add(used, k);
        *neg = (link){x, y, 0};
        return 1;
    }
    return 0;
}

/* ---- assembling the splits -------------------------------------------------------------- */

typedef struct example {
    int a, b, label;
} example;

static void fill_split(lra_dataset *d, const rfc_corpus *c, example *ex, int n, int len,
                       uint64_t key)
{
    /* Fisher-Yates with counter-based draws: positives and negatives interleave. */
    for (int i = n - 1; i > 0; i--) {
        int j = (int)lra_below(key, (uint64_t)i, (uint32_t)(i + 1));
        example t = ex[i];
        ex[i] = ex[j];
        ex[j] = t;
    }
    lra_dataset_alloc(d, n, 2, len);
    for (int i = 0; i < n; i++) {
        int swap = (int)(lra_bits(key, (uint64_t)n + (uint64_t)i) & 1);
        const rfc_doc *first = &c->docs[swap ? ex[i].b : ex[i].a];
        const rfc_doc *second = &c->docs[swap ? ex[i].a : ex[i].b];
        int32_t *row = d->tokens + (size_t)i * 2 * len;
        encode_bytes(row, first->input, (size_t)first->input_len, len);
        encode_bytes(row + len, second->input, (size_t)second->input_len, len);
        d->labels[i] = ex[i].label;
    }
}

typedef struct split_stats {
    long positives[LRA_N_SPLITS], unmatched[LRA_N_SPLITS], docs[LRA_N_SPLITS];
} split_stats;

static void make_split(int s, const rfc_corpus *c, const rfc_opts *o, pairs *pos,
                       const pair_set *linked, pair_set *used, lra_dataset *d, split_stats *st)
{
    pool p;
    pool_build(&p, c, pos);
    example *ex = malloc((size_t)(2 * pos->n + 1) * sizeof *ex);
    if (!ex) lra_die("out of memory assembling pairs");
    uint64_t key = lra_key(lra_key((uint64_t)o->seed, 0x9e6a), (uint64_t)s);
    int n = 0;
    for (int i = 0; i < pos->n; i++) {
        link neg;
        if (!sample_negative(&pos->v[i], &p, o, linked, used, lra_key(key, (uint64_t)i), &neg)) {
            st->unmatched[s]++;
            continue;
        }
        ex[n++] = (example){pos->v[i].from, pos->v[i].to, 1};
        ex[n++] = (example){neg.from, neg.to, 0};
    }
    st->positives[s] = n / 2;
    st->docs[s] = p.n_all;
    fill_split(d, c, ex, n, o->seq_len, lra_key(key, 0xf111));
    free(ex);
    pool_free(&p);
}

/* ---- the RFC build -------------------------------------------------------------------- */

static int rfc_options(const lra_config *cfg, rfc_opts *o, char *err, size_t errlen)
{
    static const char *const text[] = {"stripped", "raw", NULL};
    static const char *const cite[] = {"doc", "window", NULL};
    static const char *const keep_drop[] = {"keep", "drop", NULL};
    static const char *const drop_keep[] = {"drop", "keep", NULL};
    static const char *const neg[] = {"degree", "random", NULL};
    static const char *const split[] = {"docs", "pairs", NULL};
    int relations_drop, hubs_keep;
    memset(o, 0, sizeof *o);
    o->seq_len = cfg->seq_len;
    if (opt_choice(cfg, "text", text, &o->text, err, errlen) ||
        opt_choice(cfg, "cite", cite, &o->cite, err, errlen) ||
        opt_choice(cfg, "relations", keep_drop, &relations_drop, err, errlen) ||
        opt_choice(cfg, "hubs", drop_keep, &hubs_keep, err, errlen) ||
        opt_choice(cfg, "negatives", neg, &o->negatives, err, errlen) ||
        opt_choice(cfg, "split", split, &o->split_mode, err, errlen))
        return -1;
    o->keep_relations = !relations_drop;
    o->keep_hubs = hubs_keep;
    const char *t = "retrieval";
    if (lra_task_opt_int(cfg, t, "hub_cap", 25, 0, 1000000, &o->hub_cap, err, errlen) ||
        lra_task_opt_int(cfg, t, "val_pct", 10, 0, 50, &o->val_pct, err, errlen) ||
        lra_task_opt_int(cfg, t, "test_pct", 10, 0, 50, &o->test_pct, err, errlen) ||
        lra_task_opt_int(cfg, t, "n_train", 0, 0, 100000000, &o->n[0], err, errlen) ||
        lra_task_opt_int(cfg, t, "n_val", 0, 0, 100000000, &o->n[1], err, errlen) ||
        lra_task_opt_int(cfg, t, "n_test", 0, 0, 100000000, &o->n[2], err, errlen) ||
        lra_task_opt_int(cfg, t, "data_seed", 1, 0, 2147483647, &o->seed, err, errlen))
        return -1;
    return 0;
}

static int rfc_default_root(const lra_task_env *env, char *buf, size_t n, char *err,
                            size_t errlen)
{
    if (env->input) {
        snprintf(buf, n, "%s", env->input);
        return 0;
    }
    if (env->data_root) {
        snprintf(buf, n, "%s/rfc/rfc-subset.tar.xz", env->data_root);
        if (lra_is_file(buf)) return 0;
    }
    if (env->samples_dir) {
        snprintf(buf, n, "%s/rfc-sample.tar.xz", env->samples_dir);
        if (lra_is_file(buf)) return 0;
    }
    snprintf(err, errlen, "task retrieval: no RFC corpus: give --input, or put "
             "rfc/rfc-subset.tar.xz under the data root, or restore "
             "tasks/samples/rfc-sample.tar.xz");
    return -1;
}

static void rfc_provenance(lra_provenance *prov, const char *root, const rfc_corpus *c,
                           const rfc_opts *o, const link_stats *ls, long cross,
                           const split_stats *ss, double seconds)
{
    char hex[65], why[256];
    lra_prov_add(prov, "source", "RFC corpus %s (%d rfcN.txt, %zu bytes, %ld other .txt "
                 "skipped)", root, c->n, c->bytes, c->skipped);
    if (c->hash_files) {
        lra_sha256(c->digests ? c->digests : "", c->digests_len, hex);
        lra_prov_add(prov, "sha256.files", "%s (of the 'path sha256' lines of every rfcN.txt)",
                     hex);
    } else if (lra_sha256_file(root, hex, why, sizeof why) == 0) {
        lra_prov_add(prov, "sha256", "%s", hex);
    }
    lra_prov_add(prov, "text", o->text == TEXT_STRIPPED
                 ? "stripped: front matter, page headers/footers, form feeds, boilerplate "
                   "sections and blank-line runs removed, then first %d bytes"
                 : "raw: first %d bytes of the file", o->seq_len);
    lra_prov_add(prov, "encoding", "byte + 1, 0 = padding (257 ids), %d per document",
                 o->seq_len);
    lra_prov_add(prov, "masking", "digits of every RFC-number mention (RFC/RFCs + number, "
                 "lists, Obsoletes/Updates lines, Request for Comments: N) -> '%s'", MASK);
    lra_prov_add(prov, "cite", o->cite == CITE_DOC ? "whole document (doc)"
                 : "only mentions ending inside the model's window (window)");
    lra_prov_add(prov, "links", "%ld directed citations inside the corpus, %ld linked pairs; "
                 "%ld dropped as hub targets (%s), %ld as header relations only",
                 ls->directed, ls->undirected, ls->hub_dropped,
                 o->keep_hubs ? "hubs=keep" : "2119 8174 5741 7841", ls->relation_dropped);
    lra_prov_add(prov, "hub_cap", "%ld positives per cited document at most (0 = no cap)",
                 o->hub_cap);
    lra_prov_add(prov, "split", "%s, val %ld%% test %ld%%; %ld positives dropped as "
                 "cross-split", o->split_mode == SPLIT_DOCS ? "docs (by hash of RFC number)"
                 : "pairs (random)", o->val_pct, o->test_pct, cross);
    lra_prov_add(prov, "negatives", "%s, one per positive, never linked in either direction, "
                 "random order within each pair", o->negatives == NEG_DEGREE
                 ? "degree-matched (same citing document, same positive-count bucket)"
                 : "random");
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        char k[32];
        snprintf(k, sizeof k, "pairs.%s", lra_split_names[s]);
        lra_prov_add(prov, k, "%ld positives + %ld negatives over %ld documents (%ld "
                     "positives without a negative dropped; requested n = %ld)",
                     ss->positives[s], ss->positives[s], ss->docs[s], ss->unmatched[s],
                     o->n[s]);
    }
    lra_prov_add(prov, "data_seed", "%ld", o->seed);
    lra_prov_add(prov, "build_seconds", "%.2f", seconds);
}

static int rfc_build(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                     lra_provenance *prov, char *err, size_t errlen)
{
    double t0 = lra_now();
    rfc_opts o;
    char root[4096];
    if (rfc_options(env->cfg, &o, err, errlen) || rfc_default_root(env, root, sizeof root, err,
                                                                   errlen))
        return -1;
    rfc_corpus c = {.o = &o, .hash_files = lra_is_dir(root)};
    if (corpus_read(root, &c, err, errlen) != 0) {
        corpus_free(&c);
        return -1;
    }
    assign_doc_splits(&c, &o);
    pair_set linked, used;
    long total_cites = 0;
    for (int i = 0; i < c.n; i++) total_cites += c.docs[i].n_cites;
    set_init(&linked, (size_t)total_cites);
    pairs all = {0}, pos[LRA_N_SPLITS] = {{0}};
    link_stats ls = {0};
    collect_links(&c, &o, &linked, &all, &ls);
    long cross;
    split_positives(&c, &o, &all, pos, &cross);
    set_init(&used, (size_t)all.n);
    split_stats ss = {0};
    for (int s = 0; s < LRA_N_SPLITS; s++)
        make_split(s, &c, &o, &pos[s], &linked, &used, &split[s], &ss);
    rfc_provenance(prov, root, &c, &o, &ls, cross, &ss, lra_now() - t0);
    for (int s = 0; s < LRA_N_SPLITS; s++) free(pos[s].v);
    free(all.v);
    free(linked.slot);
    free(used.slot);
    corpus_free(&c);
    return 0;
}

/* ---- the task --------------------------------------------------------------------------- */

/* auto: AAN when the input is a directory with new_aan_pairs.train.tsv or a file whose name
 * says "aan"; the RFC corpus otherwise. */
static int is_aan_input(const char *input)
{
    if (!input) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", input, aan_files[0]);
    return lra_is_dir(input) ? lra_is_file(path) : strstr(base_name(input), "aan") != NULL;
}

static int retrieval_build(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                           lra_provenance *prov, char *err, size_t errlen)
{
    static const char *const formats[] = {"auto", "aan", "rfc", NULL};
    const lra_config *cfg = env->cfg;
    int format;
    long max_line;
    if (lra_task_check_opts(cfg, "retrieval", retrieval_opts, err, errlen) ||
        opt_choice(cfg, "format", formats, &format, err, errlen) ||
        lra_task_opt_int(cfg, "retrieval", "max_line", 1 << 20, 16, 1L << 30, &max_line, err,
                         errlen))
        return -1;
    if (cfg->seq_len < 1) {
        snprintf(err, errlen, "task retrieval: seq_len must be at least 1 (got %d)",
                 cfg->seq_len);
        return -1;
    }
    if (format == 1 || (format == 0 && is_aan_input(env->input))) {
        if (!env->input) {
            snprintf(err, errlen, "task retrieval: task.format=aan needs --input (a directory "
                     "or archive with new_aan_pairs.{train,eval,test}.tsv)");
            return -1;
        }
        return aan_build(env, env->input, max_line, split, prov, err, errlen);
    }
    return rfc_build(env, split, prov, err, errlen);
}

const lra_task lra_task_retrieval = {
    .name = "retrieval",
    .help = "do two documents cite each other? RFC citations (default) or LRA's AAN TSV "
            "(2 documents, 2 classes)",
    .classes = 2,
    .vocab = 257,
    .docs = 2,
    .build = retrieval_build,
};
