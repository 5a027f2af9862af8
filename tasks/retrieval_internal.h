/* retrieval_internal.h — what the files of the retrieval task share and nothing outside
 * tasks/retrieval*.c sees: limits, the masking placeholder, the testing interface, the RFC
 * options, corpus and pair types, and the functions one file calls in another.
 *
 * The task is split by concern (the design is described at the top of retrieval.c):
 *   retrieval.c            the task: options, format choice, the RFC build and its provenance
 *   retrieval_aan.c        LRA's AAN TSV files (new_aan_pairs.{train,eval,test}.tsv)
 *   retrieval_rfc_text.c   RFC text: stripping layout and boilerplate, finding and masking
 *                          RFC numbers (lra_rfc_strip, lra_rfc_scan)
 *   retrieval_rfc_corpus.c reading a directory or archive of rfcN.txt into documents
 *   retrieval_rfc_pairs.c  citation links, document splits, hub caps, degree-matched
 *                          negatives and the assembled splits
 */
#ifndef LRA_RETRIEVAL_INTERNAL_H
#define LRA_RETRIEVAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "task.h"

enum { AAN_CHARS = 10000, MAX_RFC = 99999, MASK_LEN = 4, SEP_MAX = 16 };
static const char MASK[MASK_LEN + 1] = "####";

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

/* ---- small helpers shared by the retrieval files ------------------------------------------ */

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static inline const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Byte tokens: value + 1, 0 is padding (the row must be zeroed). */
static inline void encode_bytes(int32_t *row, const unsigned char *s, size_t n, int len)
{
    if (n > (size_t)len) n = (size_t)len;
    for (size_t i = 0; i < n; i++) row[i] = (int32_t)s[i] + 1;
}

/* ---- AAN TSV (retrieval_aan.c) ------------------------------------------------------------ */

/* Reads new_aan_pairs.{train,eval,test}.tsv from root (a directory or archive) into the three
 * splits. */
int aan_build(const lra_task_env *env, const char *root, long max_line,
              lra_dataset split[LRA_N_SPLITS], lra_provenance *prov, char *err, size_t errlen);

/* auto: AAN when the input is a directory with new_aan_pairs.train.tsv or a file whose name
 * says "aan"; the RFC corpus otherwise. */
int aan_is_input(const char *input);

/* ---- RFC corpus (retrieval_rfc_corpus.c) ---------------------------------------------------- */

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

/* Reads every rfcN.txt under root into c (sorted by number); -1 with a message. */
int rfc_corpus_read(const char *root, rfc_corpus *c, char *err, size_t errlen);
void rfc_corpus_free(rfc_corpus *c);

/* ---- links, splits, negatives and pairs (retrieval_rfc_pairs.c) ----------------------------- */

/* An open-addressing set of unordered document-index pairs. */
typedef struct pair_set {
    uint64_t *slot; /* 0 = empty; else key + 1 */
    size_t mask, n;
} pair_set;

/* A set sized for about `expect` pairs. */
void rfc_pair_set_init(pair_set *s, size_t expect);

typedef struct link {
    int from, to;   /* document indices: `from` cites `to` */
    uint64_t order; /* random rank for capping and sampling */
} link;

typedef struct pairs {
    link *v;
    int n, cap;
} pairs;

typedef struct link_stats {
    long directed, hub_dropped, relation_dropped, undirected;
} link_stats;

typedef struct split_stats {
    long positives[LRA_N_SPLITS], unmatched[LRA_N_SPLITS], docs[LRA_N_SPLITS];
} split_stats;

/* The document split depends on the RFC number only, not on the seed. */
void rfc_assign_doc_splits(rfc_corpus *c, const rfc_opts *o);

/* Every citation between two corpus documents goes into `linked` (for negatives); the
 * undirected positives that pass the hub and relation filters into `pos`. */
void rfc_collect_links(const rfc_corpus *c, const rfc_opts *o, pair_set *linked, pairs *pos,
                       link_stats *st);

/* Positives of each split: split by documents or by pairs, capped, sampled to n/2. */
void rfc_split_positives(const rfc_corpus *c, const rfc_opts *o, const pairs *all,
                         pairs out[LRA_N_SPLITS], long *cross_split);

/* Split s: each positive with a sampled negative, shuffled and encoded into d. */
void rfc_make_split(int s, const rfc_corpus *c, const rfc_opts *o, pairs *pos,
                    const pair_set *linked, pair_set *used, lra_dataset *d, split_stats *st);

#endif
