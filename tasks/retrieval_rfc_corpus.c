/* retrieval_rfc_corpus.c — reads the RFC corpus for the retrieval substitute: every rfcN.txt of
 * a directory or archive becomes a document with its masked model input (stripped or raw text,
 * then lra_rfc_scan) and its distinct citations; other .txt files are counted and skipped, and
 * a directory's files are hashed one by one for the provenance.
 *
 * Split out of retrieval.c: from files to documents; pairing the documents is
 * retrieval_rfc_pairs.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval_internal.h"
#include "source.h"
#include "util.h"

/* ---- RFC corpus ------------------------------------------------------------------------ */

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

void rfc_corpus_free(rfc_corpus *c)
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

int rfc_corpus_read(const char *root, rfc_corpus *c, char *err, size_t errlen)
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
