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
 *
 * This file holds the task: its options, the choice of format, and the RFC build that runs the
 * steps below and records the provenance. The steps live in retrieval_aan.c,
 * retrieval_rfc_text.c, retrieval_rfc_corpus.c and retrieval_rfc_pairs.c; the list with what
 * each holds is at the top of retrieval_internal.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval_internal.h"
#include "source.h"
#include "task.h"
#include "util.h"

static const char *const retrieval_opts[] = {
    "format", "text", "cite", "relations", "hubs", "hub_cap", "negatives", "split", "val_pct",
    "test_pct", "n_train", "n_val", "n_test", "data_seed", "max_line", NULL};

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
    if (rfc_corpus_read(root, &c, err, errlen) != 0) {
        rfc_corpus_free(&c);
        return -1;
    }
    rfc_assign_doc_splits(&c, &o);
    pair_set linked, used;
    long total_cites = 0;
    for (int i = 0; i < c.n; i++) total_cites += c.docs[i].n_cites;
    rfc_pair_set_init(&linked, (size_t)total_cites);
    pairs all = {0}, pos[LRA_N_SPLITS] = {{0}};
    link_stats ls = {0};
    rfc_collect_links(&c, &o, &linked, &all, &ls);
    long cross;
    rfc_split_positives(&c, &o, &all, pos, &cross);
    rfc_pair_set_init(&used, (size_t)all.n);
    split_stats ss = {0};
    for (int s = 0; s < LRA_N_SPLITS; s++)
        rfc_make_split(s, &c, &o, &pos[s], &linked, &used, &split[s], &ss);
    rfc_provenance(prov, root, &c, &o, &ls, cross, &ss, lra_now() - t0);
    for (int s = 0; s < LRA_N_SPLITS; s++) free(pos[s].v);
    free(all.v);
    free(linked.slot);
    free(used.slot);
    rfc_corpus_free(&c);
    return 0;
}

/* ---- the task --------------------------------------------------------------------------- */

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
    if (format == 1 || (format == 0 && aan_is_input(env->input))) {
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
