/* retrieval_rfc_text.c — the text side of the RFC retrieval substitute: lra_rfc_strip removes
 * the front matter, page headers and footers, form feeds and boilerplate sections of an RFC;
 * lra_rfc_scan finds every RFC-number mention ("RFC 2119", "[RFC2119]", plural lists,
 * Obsoletes:/Updates: header lines, "Request for Comments: N"), replaces its digits by the
 * placeholder "####" and reports the citations.
 *
 * Split out of retrieval.c: pure functions on bytes, which tests/ and the fuzz harness call
 * directly; the corpus reader (retrieval_rfc_corpus.c) applies them to each document.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval_internal.h"
#include "util.h"

static int starts_ci(const unsigned char *s, size_t n, const char *word)
{
    size_t m = strlen(word);
    if (n < m) return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower(s[i]) != tolower((unsigned char)word[i])) return 0;
    return 1;
}

static int is_alnum(unsigned char c) { return isalnum(c) != 0; }

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
