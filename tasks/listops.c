/* listops.c — LRA ListOps: the generator of lra_benchmarks/data/listops.py, a loader of its
 * basic_{train,val,test}.tsv files (ours or the original release), and LRA's preprocessing.
 *
 * Vocabulary (fixed, so that ids never depend on which file was read first, unlike LRA's
 * TokenTextEncoder built from validation examples):
 *     0 padding   1-10 digits 0-9   11 [MIN   12 [MAX   13 [MED   14 [SM   15 ]
 * 16 ids, 10 classes. Preprocessing as in LRA's input pipeline: ( and ) are dropped, ] is kept
 * as a token of its own (pitfall 1: a tokenizer that dropped it made the task unsolvable), and
 * the rest is cut or padded to seq_len (LRA: 2000). What is left after dropping parentheses is
 * exactly the generator's counted length, so at LRA's settings nothing is ever cut (pitfall 2);
 * when a shorter seq_len cuts a sequence, provenance records how many were cut (LRA cuts
 * silently).
 *
 * Where data comes from: env->input (a directory or archive holding basic_*.tsv); else
 * <data root>/listops-1000/ or <data root>/listops/ when they hold the TSVs (unless
 * task.generate=1); else the generator, in memory.
 *
 * The generator follows LRA's recursion (reference §2.2) draw for draw in kind and order, but
 * with the suite's counter-based RNG: Python's random stream cannot be reproduced, only its
 * distribution. Candidate trees are numbered; candidate c is a pure function of (data_seed, c),
 * so candidates are generated in parallel and accepted in index order, and the result does not
 * depend on the number of threads. Accepted trees go to test, then val, then train (LRA cuts
 * its set in hash order, which is arbitrary anyway); this keeps val and test fixed when only
 * n_train changes.
 *
 * This file holds the task (options, where data comes from) and `lra data generate listops`.
 * The parser and loader live in listops_parse.c, the generator in listops_gen.c; what they
 * share is in listops_internal.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listops_internal.h"
#include "source.h"
#include "task.h"
#include "util.h"

/* ---- build ----------------------------------------------------------------------------- */

static const char *const listops_opts[] = {"n_train", "n_val",     "n_test",   "data_seed",
                                           "min_len", "max_len",   "max_depth", "max_args",
                                           "generate", NULL};

/* Defaults and ranges shared by task options and CLI flags. */
#define MAX_N 10000000L
#define MAX_LEN_LIMIT 1000000L
#define MAX_DEPTH_LIMIT 64L
#define MAX_ARGS_LIMIT 1000L

static int read_opts(const lra_config *cfg, gen_params *p, long *force_gen, char *err,
                     size_t errlen)
{
    const char *t = "listops";
    if (lra_task_check_opts(cfg, t, listops_opts, err, errlen) != 0) return -1;
    const struct {
        const char *name;
        long def, lo, hi, *out;
    } opts[] = {
        {"n_train", 96000, 1, MAX_N, &p->n[0]},
        {"n_val", 2000, 1, MAX_N, &p->n[1]},
        {"n_test", 2000, 1, MAX_N, &p->n[2]},
        {"data_seed", 1, 0, LONG_MAX, &p->seed},
        {"min_len", 500, 0, MAX_LEN_LIMIT, &p->min_len},
        {"max_len", 2000, 2, MAX_LEN_LIMIT, &p->max_len},
        {"max_depth", 10, 1, MAX_DEPTH_LIMIT, &p->max_depth},
        {"max_args", 10, 2, MAX_ARGS_LIMIT, &p->max_args},
        {"generate", 0, 0, 1, force_gen},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (lra_task_opt_int(cfg, t, opts[i].name, opts[i].def, opts[i].lo, opts[i].hi,
                             opts[i].out, err, errlen) != 0)
            return -1;
    return 0;
}

/* <root>/listops-1000 (the release's name) or <root>/listops, when it holds the TSVs. */
static int find_release(const char *root, char *dir, size_t n)
{
    static const char *const names[] = {"listops-1000", "listops"};
    for (size_t i = 0; root && i < sizeof names / sizeof names[0]; i++) {
        char probe[PATH_MAX + 64];
        snprintf(dir, n, "%s/%s", root, names[i]);
        snprintf(probe, sizeof probe, "%s/%s", dir, file_names[0]);
        if (lra_is_file(probe)) return 1;
    }
    return 0;
}

static int listops_build(const lra_task_env *env, lra_dataset split[LRA_N_SPLITS],
                         lra_provenance *prov, char *err, size_t errlen)
{
    const lra_config *cfg = env->cfg;
    gen_params p;
    long force_gen = 0;
    if (read_opts(cfg, &p, &force_gen, err, errlen) != 0) return -1;
    if (cfg->seq_len < 1) {
        snprintf(err, errlen, "task listops: seq_len must be at least 1 (got %d)",
                 cfg->seq_len);
        return -1;
    }
    lra_prov_add(prov, "vocabulary", "0 pad, 1-10 digits 0-9, 11 [MIN, 12 [MAX, 13 [MED, "
                 "14 [SM, 15 ]; ( and ) dropped; cut or padded to seq_len %d", cfg->seq_len);
    /* From files, only an explicit task.n_* limits the examples read. */
    long cap[LRA_N_SPLITS];
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        char name[16];
        snprintf(name, sizeof name, "n_%s", lra_split_names[s]);
        cap[s] = lra_task_opt(cfg, name) ? p.n[s] : LONG_MAX;
    }
    char dir[PATH_MAX];
    if (env->input)
        return listops_load_source(env->input, cfg->seq_len, cap, split, prov, err, errlen);
    if (!force_gen && find_release(env->data_root, dir, sizeof dir))
        return listops_load_source(dir, cfg->seq_len, cap, split, prov, err, errlen);
    return listops_build_generated(&p, cfg->seq_len, split, prov, err, errlen);
}

/* ---- lra data generate listops ---------------------------------------------------------- */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lra data generate listops --out DIR [--train N] [--val N] [--test N]\n"
            "           [--seed S] [--min-len N] [--max-len N] [--max-depth N] "
            "[--max-args N]\n\n"
            "Writes DIR/basic_{train,val,test}.tsv in LRA's format (header Source<TAB>Target,\n"
            "fully parenthesised expressions) with LRA's generator: MIN, MAX, MED, SM over\n"
            "2..max-args arguments, leaf probability 0.75 below max-depth, trees kept when\n"
            "min-len < length < max-len (counted without parentheses), de-duplicated.\n"
            "Defaults: 96000/2000/2000 trees, seed 1, lengths 500..2000, depth 10, 10 args.\n");
}

typedef struct cli_flag {
    const char *name;
    long *value;
    long lo, hi;
} cli_flag;

/* Parses "--name V" or "--name=V" at argv[*i]. Returns 1 when matched, 0 when not, -1 on a
 * bad value (message printed). */
static int cli_int(int argc, char **argv, int *i, const cli_flag *f)
{
    size_t n = strlen(f->name);
    const char *a = argv[*i], *v;
    if (strncmp(a, f->name, n) != 0 || (a[n] != 0 && a[n] != '=')) return 0;
    if (a[n] == '=') {
        v = a + n + 1;
    } else if (*i + 1 < argc) {
        v = argv[++*i];
    } else {
        fprintf(stderr, "lra data generate listops: %s needs a value\n", f->name);
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < f->lo || x > f->hi) {
        fprintf(stderr, "lra data generate listops: %s wants an integer in [%ld, %ld], got "
                "'%s'\n", f->name, f->lo, f->hi, v);
        return -1;
    }
    *f->value = x;
    return 1;
}

/* Returns EXIT_OK with *out set, or an exit status (after --help or a usage error). */
static int parse_cli(int argc, char **argv, gen_params *p, const char **out, int *done)
{
    *p = (gen_params){.n = {96000, 2000, 2000}, .seed = 1, .min_len = 500, .max_len = 2000,
                      .max_depth = 10, .max_args = 10};
    const cli_flag flags[] = {
        {"--train", &p->n[0], 1, MAX_N},         {"--val", &p->n[1], 1, MAX_N},
        {"--test", &p->n[2], 1, MAX_N},          {"--seed", &p->seed, 0, LONG_MAX},
        {"--min-len", &p->min_len, 0, MAX_LEN_LIMIT},
        {"--max-len", &p->max_len, 2, MAX_LEN_LIMIT},
        {"--max-depth", &p->max_depth, 1, MAX_DEPTH_LIMIT},
        {"--max-args", &p->max_args, 2, MAX_ARGS_LIMIT},
    };
    *out = NULL;
    *done = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            *done = 1;
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            *out = argv[++i];
            continue;
        }
        if (strncmp(argv[i], "--out=", 6) == 0) {
            *out = argv[i] + 6;
            continue;
        }
        int matched = 0;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0] && !matched; f++)
            matched = cli_int(argc, argv, &i, &flags[f]);
        if (matched < 0) return EXIT_USAGE;
        if (!matched) {
            fprintf(stderr, "lra data generate listops: unexpected argument '%s' (see "
                    "--help)\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!*out || !**out) {
        fprintf(stderr, "lra data generate listops: --out DIR is required (see --help)\n");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Arguments of each operator node in a prefix token sequence, indexed by its position. */
static void count_args(const uint8_t *t, int n, int *args)
{
    int stack[MAX_DEPTH_LIMIT + 1], depth = 0;
    for (int i = 0; i < n; i++) {
        if (t[i] == TOK_CLOSE) {
            depth--;
            continue;
        }
        if (depth > 0) args[stack[depth - 1]]++;
        if (t[i] >= TOK_MIN) {
            args[i] = 0;
            stack[depth++] = i;
        }
    }
}

/* Prints one tree as LRA's to_string does. An operator node with k arguments is a left-nested
 * chain of k + 1 pairs, "( ( ( [MAX 2 ) 9 ) ] )", so it opens k + 1 parentheses before the
 * operator, and each argument and the final ] close one. Returns the bytes written; out must
 * hold 16 bytes per token. */
static size_t print_tree(const uint8_t *t, int n, int *args, char *out)
{
    char *o = out;
    int depth = 0;
    count_args(t, n, args);
    for (int i = 0; i < n; i++) {
        if (i > 0) *o++ = ' ';
        if (t[i] >= TOK_MIN && t[i] < TOK_CLOSE) {
            const char *name = op_names[t[i] - TOK_MIN];
            for (int k = 0; k <= args[i]; k++, o += 2) memcpy(o, "( ", 2);
            memcpy(o, name, strlen(name));
            o += strlen(name);
            depth++;
            continue;
        }
        if (t[i] == TOK_CLOSE) {
            memcpy(o, "] )", 3);
            o += 3;
            depth--;
        } else {
            *o++ = (char)('0' + t[i] - TOK_DIGIT0);
        }
        if (depth > 0) {
            memcpy(o, " )", 2);
            o += 2;
        }
    }
    return (size_t)(o - out);
}

/* Writes one split to DIR/name through a temporary file, so that a reader never sees a
 * partial file. Lines end in \r\n, as Python's csv.writer writes them. */
static int write_split(const char *dir, const char *name, const tree_set *set, long first,
                       long n, long max_len)
{
    char path[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "lra data generate listops: cannot create %s: %s\n", tmp,
                strerror(errno));
        return -1;
    }
    char *text = lra_alloc(16 * (size_t)max_len + 64, "listops line");
    int *args = lra_alloc((size_t)max_len * sizeof *args, "listops line");
    fputs(HEADER "\r\n", f);
    for (long i = first; i < first + n; i++) {
        size_t len = print_tree(set->tokens + set->start[i], set->len[i], args, text);
        len += (size_t)sprintf(text + len, "\t%d\r\n", (int)set->label[i]);
        fwrite(text, 1, len, f);
    }
    lra_free(text);
    lra_free(args);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        fprintf(stderr, "lra data generate listops: cannot write %s: %s\n", path,
                strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int make_dirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int listops_generate_cli(int argc, char **argv)
{
    gen_params p;
    const char *out;
    int done;
    int rc = parse_cli(argc, argv, &p, &out, &done);
    if (rc != EXIT_OK || done) return rc;
    if (make_dirs(out) != 0 || !lra_is_dir(out)) {
        fprintf(stderr, "lra data generate listops: cannot create %s: %s\n", out,
                strerror(errno));
        return EXIT_FAIL;
    }
    tree_set set;
    long tried = 0;
    char err[512];
    double t0 = lra_now();
    if (listops_generate_trees(&p, &set, &tried, err, sizeof err) != 0) {
        fprintf(stderr, "lra data generate %s\n", err);
        return EXIT_FAIL;
    }
    double t1 = lra_now();
    for (int s = 0; s < LRA_N_SPLITS && rc == EXIT_OK; s++)
        if (write_split(out, file_names[s], &set, listops_split_first(&p, s), p.n[s],
                        p.max_len) != 0)
            rc = EXIT_FAIL;
    listops_set_free(&set);
    if (rc == EXIT_OK)
        printf("listops: %ld train, %ld val, %ld test trees (seed %ld; %ld candidates, %.1f%% "
               "kept) generated in %.2f s, written to %s in %.2f s\n", p.n[0], p.n[1], p.n[2],
               p.seed, tried, 100.0 * (double)(p.n[0] + p.n[1] + p.n[2]) / (double)tried,
               t1 - t0, out, lra_now() - t1);
    return rc;
}

const lra_task lra_task_listops = {
    .name = "listops",
    .help = "evaluate nested MIN/MAX/MED/SM expressions, 500-2000 tokens (LRA's files or "
            "generated; 10 classes)",
    .classes = LISTOPS_CLASSES,
    .vocab = LISTOPS_VOCAB,
    .docs = 1,
    .build = listops_build,
    .generate_cli = listops_generate_cli,
};
