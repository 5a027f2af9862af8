/* retrieval_rfc_pairs.c — from RFC documents to the three retrieval splits: the citation links
 * inside the corpus (hub and header-relation filters), document- or pair-level splits, the cap
 * on positives per cited document, one degree-matched negative per positive that is linked in
 * neither direction, and the shuffled, byte-encoded pairs.
 *
 * Split out of retrieval.c: the sampling design of the RFC substitute (described at the top of
 * retrieval.c), apart from reading the corpus (retrieval_rfc_corpus.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lra_rng.h"
#include "retrieval_internal.h"
#include "util.h"

/* The requirement-key-words and "Status of This Memo" references: cited for boilerplate,
 * not for content. */
static const int boilerplate_hubs[] = {2119, 8174, 5741, 7841};

/* ---- pair sets ------------------------------------------------------------------------ */

static uint64_t pair_key(int a, int b)
{
    uint32_t lo = (uint32_t)(a < b ? a : b), hi = (uint32_t)(a < b ? b : a);
    return (uint64_t)hi << 32 | lo;
}

void rfc_pair_set_init(pair_set *s, size_t expect)
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

/* Every citation between two corpus documents goes into `linked` (for negatives); the
 * undirected positives that pass the hub and relation filters into `pos`. */
void rfc_collect_links(const rfc_corpus *c, const rfc_opts *o, pair_set *linked, pairs *pos,
                       link_stats *st)
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
void rfc_assign_doc_splits(rfc_corpus *c, const rfc_opts *o)
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
void rfc_split_positives(const rfc_corpus *c, const rfc_opts *o, const pairs *all,
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

void rfc_make_split(int s, const rfc_corpus *c, const rfc_opts *o, pairs *pos,
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
