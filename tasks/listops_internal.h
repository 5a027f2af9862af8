/* listops_internal.h — what the files of the ListOps task share and nothing outside
 * tasks/listops*.c sees: the fixed vocabulary, the file names and header of LRA's TSVs, the
 * generator's parameters and tree set, and the functions one file calls in another.
 *
 * The task is split by concern (the design is described at the top of listops.c):
 *   listops.c        the task (options, where data comes from) and `lra data generate listops`,
 *                    which prints trees as LRA's TSV lines
 *   listops_parse.c  the TSV parser (lra_listops_parse) and the loader of a directory or archive
 *   listops_gen.c    the generator: LRA's recursion, de-duplication, splits of generated trees
 */
#ifndef LRA_LISTOPS_INTERNAL_H
#define LRA_LISTOPS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "task.h"

/* ---- vocabulary and limits ------------------------------------------------------------ */

enum {
    TOK_PAD = 0,
    TOK_DIGIT0 = 1, /* digit d is TOK_DIGIT0 + d */
    TOK_MIN = 11,   /* the four operators, in LRA's order */
    TOK_MAX,
    TOK_MED,
    TOK_SM,
    TOK_CLOSE, /* ] */
    LISTOPS_VOCAB,
    LISTOPS_CLASSES = 10,
    N_OPS = 4,
};
static const char *const op_names[N_OPS] = {"[MIN", "[MAX", "[MED", "[SM"};

#define HEADER "Source\tTarget"

static const char *const file_names[LRA_N_SPLITS] = {"basic_train.tsv", "basic_val.tsv",
                                                     "basic_test.tsv"};

/* ---- loading a directory or archive (listops_parse.c) ---------------------------------- */

/* Reads basic_{train,val,test}.tsv from root (a directory or archive) into the splits, keeping
 * at most cap[s] examples of split s. */
int listops_load_source(const char *root, int seq_len, const long cap[LRA_N_SPLITS],
                        lra_dataset split[LRA_N_SPLITS], lra_provenance *prov, char *err,
                        size_t errlen);

/* ---- generator (listops_gen.c) --------------------------------------------------------- */

typedef struct gen_params {
    long n[LRA_N_SPLITS];
    long seed, min_len, max_len, max_depth, max_args;
} gen_params;

/* The distinct accepted trees, in acceptance order, with a hash set over their tokens (the
 * printed expression is a function of the token sequence and back, so this de-duplicates the
 * printed expressions). */
typedef struct tree_set {
    uint8_t *tokens; /* concatenated */
    size_t used, cap;
    size_t *start;
    int *len;
    int32_t *label;
    long n, want;
    long *slot; /* open addressing: tree index + 1, 0 = empty */
    uint64_t *slot_hash;
    size_t mask;
} tree_set;

/* Generates p->n[*] distinct trees in acceptance order. *tried: candidates drawn. */
int listops_generate_trees(const gen_params *p, tree_set *set, long *tried, char *err,
                           size_t errlen);
void listops_set_free(tree_set *s);

/* The index of split s's first tree in the set. */
long listops_split_first(const gen_params *p, int s);

/* The three splits of generated trees, with their provenance. */
int listops_build_generated(const gen_params *p, int seq_len, lra_dataset split[LRA_N_SPLITS],
                            lra_provenance *prov, char *err, size_t errlen);

#endif
