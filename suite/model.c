/* model.c — the LRA encoder classifier: parameter layout, activation plan, forward, backward.
 *
 * Dimension letters: B examples, S = B*docs sequences, T tokens per sequence (CLS included),
 * N = S*T rows of the residual stream, D model width, H heads, Dh head width, Q = H*Dh,
 * M MLP width, C classes, F head input width (D, 2D or 4D).
 */
#include "model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "lra_rng.h"
#include "ops.h"
#include "options.h"
#include "platform.h"
#include "util.h"

#define MAX_LAYERS 64
#define MAX_TENSORS (8 + 11 * MAX_LAYERS)

/* Dropout sites: each gets its own random stream per (step, layer). */
enum { SITE_EMBED, SITE_ATTN_OUT, SITE_MLP_HIDDEN, SITE_MLP_OUT };

/* Activations of one block kept for backward. */
typedef struct block_acts {
    float *res;        /* (N, D) input of the block (residual stream) */
    float *ln1;        /* (N, D) */
    float *mu1, *rs1;  /* (N) */
    float *qh, *kh, *vh; /* (S, H, T, Dh) each */
    float *ao;         /* (S, H, T, Dh) attention output */
    float *xmid;       /* (N, D) residual after the attention sub-block */
    float *ln2;        /* (N, D) */
    float *mu2, *rs2;  /* (N) */
    float *h1;         /* (N, M) before GELU */
    float *h1d;        /* (N, M) after GELU and dropout: input of W2 */
    float *cache;      /* plugin cache */
} block_acts;

struct lra_model {
    lra_config cfg;
    const lra_attention *attn;
    int V, C, docs, D, H, Dh, Q, M, T, L, layers, cls, F;

    lra_tensor tensors[MAX_TENSORS];
    int n_tensors;
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v;
    int t_tok, t_cls, t_pos, t_lnf_g, t_lnf_b, t_hw1, t_hb1, t_hw2, t_hb2;
    int t_block[MAX_LAYERS]; /* index of the block's first tensor (ln1.g); see block_view() */

    /* Attention plugin, one context per layer. */
    void *priv;              /* layers * priv_size bytes */
    lra_attn_ctx actx[MAX_LAYERS];
    lra_attn_sizes asz;      /* for the planned batch */
    size_t n_state;
    float *state;
    uint64_t layer_seed[MAX_LAYERS];

    /* Time and FLOPs of the dense layers since the last lra_model_dense_profile(reset). */
    double dense_secs, dense_flops;

    /* Activation arena, planned for `planned` examples. */
    int planned;
    float *arena;
    size_t arena_floats;
    int32_t *tok;            /* (S, T) token ids, CLS slot = 0 */
    float *mask;             /* (S, T) 1 = real token */
    block_acts acts[MAX_LAYERS + 1]; /* acts[layers].res = encoder output */
    float *lnf, *muf, *rsf;  /* (N, D), (N), (N) */
    float *pooled;           /* (S, D) */
    float *feats;            /* (B, F) head input */
    float *hh, *hr;          /* (B, M) head hidden before/after ReLU */
    float *logits, *probs;   /* (B, C) */
    int32_t *labels;         /* (B) */
    float *weight;           /* (B) */
    /* Temporaries shared by all layers. */
    float *t_qkv;            /* (N, 3Q) projection output / its gradient */
    float *t_q;              /* (N, Q) merged heads / their gradient */
    float *t_d;              /* (N, D) */
    float *d_res;            /* (N, D) gradient of the residual stream */
    float *wpart;            /* block partial sums of a dense weight gradient */
    float *d_ln;             /* (N, D) */
    float *d_m;              /* (N, M) */
    float *dqh, *dkh, *dvh, *dao; /* (S, H, T, Dh) */
    float *d_pooled;         /* (S, D) */
    float *d_feats;          /* (B, F) */
    float *d_hh, *d_hr;      /* (B, M) */
    float *d_logits;         /* (B, C) */
    float *scratch;          /* plugin scratch */

    /* Data parallelism: the batch of a forward pass is rows [shard_first, shard_first + batch)
     * of a global batch of shard_global examples (0: the batch is the whole batch). */
    int shard_first, shard_global;
    uint64_t *seq_id;        /* (S) each sequence's place in the global batch, docs included */

    /* The last forward pass. */
    int batch, training;
    uint64_t step;
    int have_labels;
};

/* ---- parameter layout ---------------------------------------------------------------- */

static int add_tensor(lra_model *m, const char *name, int rows, int cols, unsigned flags)
{
    LRA_ASSERT(m->n_tensors < MAX_TENSORS);
    lra_tensor *t = &m->tensors[m->n_tensors];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = m->n_params;
    t->count = (size_t)rows * (size_t)cols;
    t->rows = rows;
    t->cols = cols;
    t->flags = flags;
    m->n_params += (t->count + 15) & ~(size_t)15; /* 64-byte aligned slices */
    return m->n_tensors++;
}

/* Block tensors are added in this order; block_view() relies on it. */
enum { BT_LN1G, BT_LN1B, BT_WQKV, BT_WO, BT_LN2G, BT_LN2B, BT_W1, BT_B1, BT_W2, BT_B2, BT_ATTN };

static void add_block_tensors(lra_model *m, int l)
{
    char n[48];
    const unsigned nd = LRA_TENSOR_NO_DECAY;
    m->t_block[l] = add_tensor(m, lra_fmt(n, sizeof n, "layer%d.ln1.g", l), m->D, 1, nd);
    add_tensor(m, lra_fmt(n, sizeof n, "layer%d.ln1.b", l), m->D, 1, nd);
    add_tensor(m, lra_fmt(n, sizeof n, "layer%d.attn.wqkv", l), m->D, 3 * m->Q, 0);
    add_tensor(m, lra_fmt(n, sizeof n, "layer%d.attn.wo", l), m->Q, m->D, 0);
    add_tensor(m, lra_fmt(n, sizeof n, "layer%d.ln2.g", l), m->D, 1, nd);
    add_tensor(m, lra_fmt(n, sizeof n, "layer%d.ln2.b", l), m->D, 1, nd);
    add_tensor(m, lra_fmt(n, sizeof n, "layer%d.mlp.w1", l), m->D, m->M, 0);
    add_tensor(m, lra_fmt(n, sizeof n, "layer%d.mlp.b1", l), m->M, 1, nd);
    add_tensor(m, lra_fmt(n, sizeof n, "layer%d.mlp.w2", l), m->M, m->D, 0);
    add_tensor(m, lra_fmt(n, sizeof n, "layer%d.mlp.b2", l), m->D, 1, nd);
    if (m->asz.n_params)
        add_tensor(m, lra_fmt(n, sizeof n, "layer%d.attn.%s", l, m->attn->name),
                   (int)m->asz.n_params, 1, 0);
}

static lra_block_view block_view(const lra_model *m, float *base, int l)
{
    const lra_tensor *t = &m->tensors[m->t_block[l]];
    lra_block_view v = {
        .ln1_g = base + t[BT_LN1G].offset, .ln1_b = base + t[BT_LN1B].offset,
        .wqkv = base + t[BT_WQKV].offset,  .wo = base + t[BT_WO].offset,
        .ln2_g = base + t[BT_LN2G].offset, .ln2_b = base + t[BT_LN2B].offset,
        .w1 = base + t[BT_W1].offset,      .b1 = base + t[BT_B1].offset,
        .w2 = base + t[BT_W2].offset,      .b2 = base + t[BT_B2].offset,
        .attn = m->asz.n_params ? base + t[BT_ATTN].offset : NULL,
    };
    return v;
}

static float *P(lra_model *m, int t) { return m->params + m->tensors[t].offset; }
static float *G(lra_model *m, int t) { return m->grads + m->tensors[t].offset; }

/* ---- initialisation ------------------------------------------------------------------ */

static void init_normal(float *p, size_t n, double std, uint64_t key)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(std * lra_normal(key, i));
}

static void init_uniform(float *p, size_t n, double a, uint64_t key)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(a * (2.0 * lra_uniform(key, i) - 1.0));
}

static void init_const(float *p, size_t n, float c)
{
    for (size_t i = 0; i < n; i++) p[i] = c;
}

/* LRA's initialisers: N(0, 1) token embedding, zero CLS, N(0, 0.02) learned positions,
 * Xavier-uniform projections (fan-out of each of q, k, v is Q), N(0, 1e-6) MLP biases,
 * LeCun-normal head, unit LayerNorm gains. */
static void init_params(lra_model *m, uint64_t seed)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const lra_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        uint64_t key = lra_key(seed, (uint64_t)i);
        const char *leaf = strrchr(t->name, '.') + 1;
        if (strstr(t->name, ".attn.") && strcmp(leaf, "wqkv") != 0 && strcmp(leaf, "wo") != 0)
            continue; /* plugin parameters: the plugin's init() fills them */
        if (strcmp(t->name, "embed.tokens") == 0)
            init_normal(p, t->count, 1.0, key);
        else if (strcmp(t->name, "embed.cls") == 0)
            init_const(p, t->count, 0.0f);
        else if (strcmp(t->name, "embed.pos") == 0)
            init_normal(p, t->count, 0.02, key);
        else if (strcmp(leaf, "g") == 0)
            init_const(p, t->count, 1.0f);
        else if (strncmp(t->name, "head.w", 6) == 0)
            init_normal(p, t->count, 1.0 / sqrt((double)t->rows), key);
        else if (strcmp(leaf, "wqkv") == 0)
            init_uniform(p, t->count, sqrt(6.0 / (m->D + m->Q)), key);
        else if (leaf[0] == 'w')
            init_uniform(p, t->count, sqrt(6.0 / (t->rows + t->cols)), key);
        else if (strcmp(leaf, "b1") == 0 || strcmp(leaf, "b2") == 0)
            init_normal(p, t->count, strncmp(t->name, "head.", 5) == 0 ? 0.0 : 1e-6, key);
        else
            init_const(p, t->count, 0.0f); /* LayerNorm biases */
    }
}

/* ---- creation ------------------------------------------------------------------------ */

static void attn_ctx_shape(lra_model *m, int l, int sequences)
{
    lra_attn_ctx *c = &m->actx[l];
    c->shape = (lra_attn_shape){.batch = sequences, .heads = m->H, .len = m->T, .dim = m->Dh,
                                .max_len = m->T};
}

static int apply_attn_options(lra_model *m, void *priv, char *err, size_t errlen)
{
    lra_opts_defaults(m->attn->options, priv);
    for (int i = 0; i < m->cfg.n_attn_opts; i++) {
        char key[96], why[256];
        snprintf(key, sizeof key, "%s", m->cfg.attn_opts[i]);
        char *eq = strchr(key, '=');
        LRA_ASSERT(eq);
        *eq = 0;
        if (lra_opts_set(m->attn->options, priv, key, eq + 1, why, sizeof why) != 0) {
            snprintf(err, errlen, "attention '%s': %s", m->attn->name, why);
            return -1;
        }
    }
    return 0;
}

static int check_config(const lra_config *c, int docs, char *err, size_t errlen)
{
    if (c->layers > MAX_LAYERS) {
        snprintf(err, errlen, "layers = %d exceeds the maximum of %d", c->layers, MAX_LAYERS);
        return -1;
    }
    if (c->qkv_dim % c->heads != 0) {
        snprintf(err, errlen, "qkv_dim = %d is not divisible by heads = %d", c->qkv_dim,
                 c->heads);
        return -1;
    }
    if (c->pos == LRA_POS_SINUSOID && c->emb_dim % 2 != 0) {
        snprintf(err, errlen, "sinusoidal positions need an even emb_dim (got %d)", c->emb_dim);
        return -1;
    }
    if (docs != 1 && docs != 2) {
        snprintf(err, errlen, "a task must have 1 or 2 documents per example (got %d)", docs);
        return -1;
    }
    return 0;
}

lra_model *lra_model_create(const lra_config *cfg, const lra_attention *attn, int vocab,
                            int classes, int docs, int *rejected, char *err, size_t errlen)
{
    if (rejected) *rejected = 0;
    if (check_config(cfg, docs, err, errlen) != 0) return NULL;
    lra_model *m = lra_alloc(sizeof *m, "model");
    m->cfg = *cfg;
    m->attn = attn;
    m->V = vocab;
    m->C = classes;
    m->docs = docs;
    m->D = cfg->emb_dim;
    m->H = cfg->heads;
    m->Q = cfg->qkv_dim;
    m->Dh = m->Q / m->H;
    m->M = cfg->mlp_dim;
    m->L = cfg->seq_len;
    m->cls = cfg->pool == LRA_POOL_CLS;
    m->T = m->L + m->cls;
    m->layers = cfg->layers;
    m->F = docs == 1 ? m->D : cfg->dual_head == LRA_DUAL_NLI ? 4 * m->D : 2 * m->D;

    /* Plugin private state and sizes (parameters do not depend on the batch). */
    m->priv = lra_alloc(attn->priv_size * (size_t)m->layers + 1, "attention options");
    for (int l = 0; l < m->layers; l++) {
        void *priv = (char *)m->priv + attn->priv_size * (size_t)l;
        if (apply_attn_options(m, priv, err, errlen) != 0) goto fail;
        m->actx[l].priv = priv;
        attn_ctx_shape(m, l, 1);
    }
    attn->sizes(&m->actx[0], &m->asz);

    m->t_tok = add_tensor(m, "embed.tokens", m->V, m->D, 0);
    m->t_cls = m->cls ? add_tensor(m, "embed.cls", m->D, 1, LRA_TENSOR_NO_DECAY) : -1;
    m->t_pos = cfg->pos == LRA_POS_LEARNED
                   ? add_tensor(m, "embed.pos", m->T, m->D, LRA_TENSOR_NO_DECAY) : -1;
    for (int l = 0; l < m->layers; l++) add_block_tensors(m, l);
    m->t_lnf_g = add_tensor(m, "final_ln.g", m->D, 1, LRA_TENSOR_NO_DECAY);
    m->t_lnf_b = add_tensor(m, "final_ln.b", m->D, 1, LRA_TENSOR_NO_DECAY);
    m->t_hw1 = add_tensor(m, "head.w1", m->F, m->M, 0);
    m->t_hb1 = add_tensor(m, "head.b1", m->M, 1, LRA_TENSOR_NO_DECAY);
    m->t_hw2 = add_tensor(m, "head.w2", m->M, m->C, 0);
    m->t_hb2 = add_tensor(m, "head.b2", m->C, 1, LRA_TENSOR_NO_DECAY);

    size_t bytes = m->n_params * sizeof(float);
    m->params = lra_alloc(bytes, "parameters");
    m->grads = lra_alloc(bytes, "gradients");
    m->adam_m = lra_alloc(bytes, "Adam first moments");
    m->adam_v = lra_alloc(bytes, "Adam second moments");
    m->n_state = m->asz.n_state * (size_t)m->layers;
    m->state = lra_alloc(m->n_state * sizeof(float) + 64, "attention state");

    uint64_t seed = lra_key((uint64_t)cfg->seed, 0x1a17);
    init_params(m, lra_key(seed, 1));
    for (int l = 0; l < m->layers; l++) {
        lra_attn_ctx *c = &m->actx[l];
        lra_block_view pv = block_view(m, m->params, l), gv = block_view(m, m->grads, l);
        c->params = pv.attn;
        c->dparams = gv.attn;
        c->state = m->state + m->asz.n_state * (size_t)l;
        m->layer_seed[l] = lra_key(lra_key(seed, 2), (uint64_t)l);
        c->seed = m->layer_seed[l];
        c->threads = lra_threads();
        char why[256] = "";
        int rc = attn->init(c, why, sizeof why);
        if (rc != LRA_ATTN_OK) {
            snprintf(err, errlen, "attention '%s' rejects this model (seq_len %d, heads %d, head "
                     "dim %d): %s", attn->name, m->L, m->H, m->Dh, why);
            if (rejected) *rejected = 1;
            goto fail;
        }
    }
    return m;
fail:
    lra_model_free(m);
    return NULL;
}

void lra_model_free(lra_model *m)
{
    if (!m) return;
    if (m->attn && m->attn->free)
        for (int l = 0; l < m->layers; l++)
            if (m->actx[l].priv) m->attn->free(&m->actx[l]);
    lra_free(m->priv);
    lra_free(m->params);
    lra_free(m->grads);
    lra_free(m->adam_m);
    lra_free(m->adam_v);
    lra_free(m->state);
    lra_free(m->arena);
    lra_free(m);
}

/* ---- activation plan ----------------------------------------------------------------- */

/* Carves the arena. With base == NULL only counts, so planning and allocation share one
 * function and cannot disagree. */
static size_t carve(lra_model *m, float *base, int B)
{
    size_t off = 0;
    const size_t S = (size_t)B * m->docs, N = S * m->T, D = m->D, Q = m->Q, M = m->M;
#define TAKE(ptr, count)                                                     \
    do {                                                                     \
        if (base) (ptr) = base + off;                                        \
        off += ((size_t)(count) + 15) & ~(size_t)15;                         \
    } while (0)
    float *tok_f = NULL;
    TAKE(tok_f, N); /* int32 and float have the same size */
    if (base) m->tok = (int32_t *)tok_f;
    TAKE(m->mask, N);
    float *seq_f = NULL;
    TAKE(seq_f, 2 * S); /* uint64, 8-byte aligned like every slice */
    if (base) m->seq_id = (uint64_t *)(void *)seq_f;
    for (int l = 0; l <= m->layers; l++) {
        block_acts *a = &m->acts[l];
        TAKE(a->res, N * D);
        if (l == m->layers) break;
        TAKE(a->ln1, N * D);
        TAKE(a->mu1, N);
        TAKE(a->rs1, N);
        TAKE(a->qh, N * Q);
        TAKE(a->kh, N * Q);
        TAKE(a->vh, N * Q);
        TAKE(a->ao, N * Q);
        TAKE(a->xmid, N * D);
        TAKE(a->ln2, N * D);
        TAKE(a->mu2, N);
        TAKE(a->rs2, N);
        TAKE(a->h1, N * M);
        TAKE(a->h1d, N * M);
        TAKE(a->cache, m->asz.n_cache);
    }
    TAKE(m->lnf, N * D);
    TAKE(m->muf, N);
    TAKE(m->rsf, N);
    TAKE(m->pooled, S * D);
    TAKE(m->feats, (size_t)B * m->F);
    TAKE(m->hh, (size_t)B * M);
    TAKE(m->hr, (size_t)B * M);
    TAKE(m->logits, (size_t)B * m->C);
    TAKE(m->probs, (size_t)B * m->C);
    float *lab_f = NULL;
    TAKE(lab_f, B);
    if (base) m->labels = (int32_t *)lab_f;
    TAKE(m->weight, B);
    TAKE(m->t_qkv, N * 3 * Q);
    TAKE(m->t_q, N * Q);
    TAKE(m->t_d, N * D);
    TAKE(m->d_res, N * D);
    TAKE(m->d_ln, N * D);
    TAKE(m->d_m, N * M);
    TAKE(m->dqh, N * Q);
    TAKE(m->dkh, N * Q);
    TAKE(m->dvh, N * Q);
    TAKE(m->dao, N * Q);
    TAKE(m->d_pooled, S * D);
    TAKE(m->d_feats, (size_t)B * m->F);
    TAKE(m->d_hh, (size_t)B * M);
    TAKE(m->d_hr, (size_t)B * M);
    TAKE(m->d_logits, (size_t)B * m->C);
    TAKE(m->scratch, m->asz.n_scratch);
    /* Block partial sums of the dense weight gradients; the largest of the four layers. */
    size_t wpart = op_linear_grad_weight_scratch((int)N, (int)D, (int)(3 * Q));
    const size_t w_o = op_linear_grad_weight_scratch((int)N, (int)Q, (int)D);
    const size_t w_1 = op_linear_grad_weight_scratch((int)N, (int)D, (int)M);
    const size_t w_2 = op_linear_grad_weight_scratch((int)N, (int)M, (int)D);
    wpart = w_o > wpart ? w_o : wpart;
    wpart = w_1 > wpart ? w_1 : wpart;
    wpart = w_2 > wpart ? w_2 : wpart;
    TAKE(m->wpart, wpart);
#undef TAKE
    return off;
}

int lra_model_plan(lra_model *m, int batch, char *err, size_t errlen)
{
    if (batch == m->planned) return 0;
    for (int l = 0; l < m->layers; l++) attn_ctx_shape(m, l, batch * m->docs);
    m->attn->sizes(&m->actx[0], &m->asz);
    size_t n = carve(m, NULL, batch);
    lra_free(m->arena);
    m->arena = NULL;
    double gib = (double)n * sizeof(float) / 1073741824.0;
    if (gib > 64.0) {
        snprintf(err, errlen, "the activations for batch %d and length %d need %.1f GiB",
                 batch, m->T, gib);
        return -1;
    }
    m->arena = lra_alloc(n * sizeof(float), "activations");
    m->arena_floats = n;
    carve(m, m->arena, batch);
    m->planned = batch;
    for (int l = 0; l < m->layers; l++) {
        m->actx[l].cache = m->acts[l].cache;
        m->actx[l].scratch = m->scratch;
    }
    return 0;
}

/* ---- forward ------------------------------------------------------------------------- */

static uint64_t dropout_key(const lra_model *m, int layer, int site)
{
    uint64_t k = lra_key(lra_key((uint64_t)m->cfg.seed, 0xd409), m->step);
    return lra_key(k, (uint64_t)(layer + 1) * 8 + (uint64_t)site);
}

static float drop_rate(const lra_model *m) { return m->training ? (float)m->cfg.dropout : 0.0f; }

/* Where a dropout site's masks come from: element e of sequence s, at a site with `per`
 * elements a sequence, draws stream position seq_id[s]·per + e. A process holding a shard of
 * the batch thus draws the masks one process over the whole batch would. Each document half is
 * contiguous both here and in the global batch, so a site is one op call per half. */
typedef struct drop_span {
    size_t off, n;  /* elements [off, off + n) of the site's buffer */
    uint64_t first; /* their first stream position */
} drop_span;

static int drop_spans(const lra_model *m, size_t per, drop_span span[2])
{
    const size_t B = (size_t)m->batch;
    for (int d = 0; d < m->docs; d++)
        span[d] = (drop_span){.off = d * B * per, .n = B * per, .first = m->seq_id[d * B] * per};
    return m->docs;
}

/* The sequence ids of this forward pass: document d of row b is d·G + first + b. */
static void set_seq_ids(lra_model *m, int B)
{
    const int G = m->shard_global ? m->shard_global : B;
    LRA_ASSERT(m->shard_first >= 0 && m->shard_first + B <= G);
    for (int d = 0; d < m->docs; d++)
        for (int b = 0; b < B; b++)
            m->seq_id[(size_t)d * B + b] = (uint64_t)d * G + (uint64_t)(m->shard_first + b);
}

/* Sequence s = d*B + b holds document d of example b, so the dual encoder's u and v are the
 * two contiguous halves of the pooled output. */
static void load_tokens(lra_model *m, const int32_t *tokens, int B)
{
    const int T = m->T, L = m->L;
    for (int d = 0; d < m->docs; d++)
        for (int b = 0; b < B; b++) {
            int32_t *row = m->tok + ((size_t)d * B + b) * T;
            float *mrow = m->mask + ((size_t)d * B + b) * T;
            const int32_t *src = tokens + ((size_t)b * m->docs + d) * L;
            if (m->cls) {
                row[0] = 0;
                mrow[0] = 1.0f; /* the CLS token is always a real key */
            }
            for (int t = 0; t < L; t++) {
                LRA_ASSERT(src[t] >= 0 && src[t] < m->V);
                row[m->cls + t] = src[t];
                mrow[m->cls + t] = src[t] != 0 ? 1.0f : 0.0f;
            }
        }
}

static void embed_forward(lra_model *m, int S)
{
    const int T = m->T, D = m->D;
    float *x = m->acts[0].res;
    for (int s = 0; s < S; s++) {
        float *xs = x + (size_t)s * T * D;
        if (m->cls) memcpy(xs, P(m, m->t_cls), (size_t)D * sizeof(float));
        op_embed_forward(xs + (size_t)m->cls * D, m->tok + (size_t)s * T + m->cls,
                         P(m, m->t_tok), T - m->cls, D);
    }
    if (m->cfg.pos == LRA_POS_SINUSOID) op_add_sinusoid(x, S, T, D);
    if (m->cfg.pos == LRA_POS_LEARNED) op_add_pos_forward(x, P(m, m->t_pos), S, T, D);
    drop_span sp[2];
    for (int i = 0, n = drop_spans(m, (size_t)T * D, sp); i < n; i++)
        op_dropout_forward(x + sp[i].off, x + sp[i].off, sp[i].n, drop_rate(m),
                           dropout_key(m, -1, SITE_EMBED), sp[i].first);
}

/* The per-call part of layer l's plugin context: shape, mask, step, mode. */
static lra_attn_ctx *prepare_attn(lra_model *m, int l, int S)
{
    lra_attn_ctx *c = &m->actx[l];
    attn_ctx_shape(m, l, S);
    c->key_mask = m->mask;
    c->step = m->step;
    c->training = m->training;
    c->dropout = m->training ? (float)m->cfg.attn_dropout : 0.0f;
    c->threads = lra_threads();
    c->seq_id = m->seq_id;
    return c;
}

/* The encoder's dense layers (projections and MLP) go through these two, which time them so
 * that lra bench can report their FLOP rate against the sgemm ceiling (lra_model_dense_profile).
 * Two clock reads per GEMM cost nothing next to the GEMM. */
static void dense_forward(lra_model *m, float *y, const float *x, const float *w, const float *b,
                          int n, int in, int out)
{
    const double t0 = lra_now();
    op_linear_forward(y, x, w, b, n, in, out);
    m->dense_secs += lra_now() - t0;
    m->dense_flops += 2.0 * n * in * out;
}

/* dx is written, dw and db accumulate. */
static void dense_backward(lra_model *m, float *dx, float *dw, float *db, const float *dy,
                           const float *x, const float *w, int n, int in, int out)
{
    const double t0 = lra_now();
    op_linear_grad_input(dx, dy, w, n, in, out);
    op_linear_grad_weight(dw, x, dy, n, in, out, m->wpart);
    m->dense_secs += lra_now() - t0;
    m->dense_flops += 4.0 * n * in * out;
    if (db) op_linear_backward(NULL, NULL, db, dy, x, w, n, in, out); /* bias: not a GEMM */
}

static void block_forward(lra_model *m, int l, int S)
{
    const int N = S * m->T, D = m->D, Q = m->Q, M = m->M;
    block_acts *a = &m->acts[l];
    lra_block_view p = block_view(m, m->params, l);
    const float pd = drop_rate(m);
    drop_span sd[2], sm[2]; /* sites of D and of M elements a token */
    const int halves = drop_spans(m, (size_t)m->T * D, sd);
    drop_spans(m, (size_t)m->T * M, sm);

    /* x + Dropout(Wo · Attn(LN(x) Wqkv)) */
    op_layernorm_forward(a->ln1, a->mu1, a->rs1, a->res, p.ln1_g, p.ln1_b, N, D);
    dense_forward(m, m->t_qkv, a->ln1, p.wqkv, NULL, N, D, 3 * Q);
    op_split_heads(a->qh, m->t_qkv, 3 * Q, S, m->T, m->H, m->Dh);
    op_split_heads(a->kh, m->t_qkv + Q, 3 * Q, S, m->T, m->H, m->Dh);
    op_split_heads(a->vh, m->t_qkv + 2 * Q, 3 * Q, S, m->T, m->H, m->Dh);
    m->attn->forward(prepare_attn(m, l, S), a->qh, a->kh, a->vh, a->ao);
    op_merge_heads(m->t_q, Q, a->ao, S, m->T, m->H, m->Dh, 0);
    dense_forward(m, m->t_d, m->t_q, p.wo, NULL, N, Q, D);
    for (int i = 0; i < halves; i++)
        op_residual_dropout_forward(a->xmid + sd[i].off, a->res + sd[i].off, m->t_d + sd[i].off,
                                    sd[i].n, pd, dropout_key(m, l, SITE_ATTN_OUT), sd[i].first);

    /* x + Dropout(W2 · Dropout(GELU(W1 · LN(x) + b1)) + b2) */
    op_layernorm_forward(a->ln2, a->mu2, a->rs2, a->xmid, p.ln2_g, p.ln2_b, N, D);
    dense_forward(m, a->h1, a->ln2, p.w1, p.b1, N, D, M);
    for (int i = 0; i < halves; i++)
        op_gelu_dropout_forward(a->h1d + sm[i].off, a->h1 + sm[i].off, sm[i].n, pd,
                                dropout_key(m, l, SITE_MLP_HIDDEN), sm[i].first);
    dense_forward(m, m->t_d, a->h1d, p.w2, p.b2, N, M, D);
    float *out = m->acts[l + 1].res;
    for (int i = 0; i < halves; i++)
        op_residual_dropout_forward(out + sd[i].off, a->xmid + sd[i].off, m->t_d + sd[i].off,
                                    sd[i].n, pd, dropout_key(m, l, SITE_MLP_OUT), sd[i].first);
}

static void head_forward(lra_model *m, int B)
{
    const int S = B * m->docs, D = m->D;
    const float *enc = m->acts[m->layers].res;
    op_layernorm_forward(m->lnf, m->muf, m->rsf, enc, P(m, m->t_lnf_g), P(m, m->t_lnf_b),
                         S * m->T, D);
    if (m->cls)
        op_pool_cls_forward(m->pooled, m->lnf, S, m->T, D);
    else
        op_pool_mean_forward(m->pooled, m->lnf, m->mask, S, m->T, D);
    if (m->docs == 1) {
        memcpy(m->feats, m->pooled, (size_t)B * D * sizeof(float));
    } else if (m->cfg.dual_head == LRA_DUAL_NLI) {
        op_dual_features_forward(m->feats, m->pooled, m->pooled + (size_t)B * D, B, D);
    } else {
        for (int b = 0; b < B; b++) {
            memcpy(m->feats + (size_t)b * 2 * D, m->pooled + (size_t)b * D, D * sizeof(float));
            memcpy(m->feats + (size_t)b * 2 * D + D, m->pooled + (size_t)(B + b) * D,
                   D * sizeof(float));
        }
    }
    op_linear_forward(m->hh, m->feats, P(m, m->t_hw1), P(m, m->t_hb1), B, m->F, m->M);
    op_relu_forward(m->hr, m->hh, (size_t)B * m->M);
    op_linear_forward(m->logits, m->hr, P(m, m->t_hw2), P(m, m->t_hb2), B, m->M, m->C);
}

double lra_model_forward(lra_model *m, const int32_t *tokens, const int32_t *labels,
                         const float *weight, int batch, int training, uint64_t step)
{
    LRA_ASSERT(batch >= 1 && batch <= m->planned);
    const int S = batch * m->docs;
    m->batch = batch;
    m->training = training;
    m->step = step;
    m->have_labels = labels != NULL;
    set_seq_ids(m, batch);
    load_tokens(m, tokens, batch);
    embed_forward(m, S);
    for (int l = 0; l < m->layers; l++) block_forward(m, l, S);
    head_forward(m, batch);
    if (!labels) return 0.0;
    memcpy(m->labels, labels, (size_t)batch * sizeof(int32_t));
    for (int b = 0; b < batch; b++) m->weight[b] = weight ? weight[b] : 1.0f;
    return op_xent_forward(m->probs, m->logits, m->labels, m->weight, batch, m->C);
}

/* ---- backward ------------------------------------------------------------------------ */

static void zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

static void head_backward(lra_model *m, int B)
{
    const int S = B * m->docs, D = m->D, M = m->M;
    zero(m->d_logits, (size_t)B * m->C);
    op_xent_backward(m->d_logits, m->probs, m->labels, m->weight, B, m->C);
    zero(m->d_hr, (size_t)B * M);
    op_linear_backward(m->d_hr, G(m, m->t_hw2), G(m, m->t_hb2), m->d_logits, m->hr,
                       P(m, m->t_hw2), B, M, m->C);
    zero(m->d_hh, (size_t)B * M);
    op_relu_backward(m->d_hh, m->d_hr, m->hh, (size_t)B * M);
    zero(m->d_feats, (size_t)B * m->F);
    op_linear_backward(m->d_feats, G(m, m->t_hw1), G(m, m->t_hb1), m->d_hh, m->feats,
                       P(m, m->t_hw1), B, m->F, M);
    zero(m->d_pooled, (size_t)S * D);
    if (m->docs == 1) {
        op_add_inplace(m->d_pooled, m->d_feats, (size_t)B * D);
    } else if (m->cfg.dual_head == LRA_DUAL_NLI) {
        op_dual_features_backward(m->d_pooled, m->d_pooled + (size_t)B * D, m->d_feats,
                                  m->pooled, m->pooled + (size_t)B * D, B, D);
    } else {
        for (int b = 0; b < B; b++) {
            op_add_inplace(m->d_pooled + (size_t)b * D, m->d_feats + (size_t)b * 2 * D, D);
            op_add_inplace(m->d_pooled + (size_t)(B + b) * D,
                           m->d_feats + (size_t)b * 2 * D + D, D);
        }
    }
    const size_t ND = (size_t)S * m->T * D;
    zero(m->d_ln, ND);
    if (m->cls)
        op_pool_cls_backward(m->d_ln, m->d_pooled, S, m->T, D);
    else
        op_pool_mean_backward(m->d_ln, m->d_pooled, m->mask, S, m->T, D);
    zero(m->d_res, ND);
    op_layernorm_backward(m->d_res, G(m, m->t_lnf_g), G(m, m->t_lnf_b), m->d_ln,
                          m->acts[m->layers].res, m->muf, m->rsf, P(m, m->t_lnf_g), S * m->T,
                          D);
}

/* On entry d_res holds dL/d(output of block l); on exit dL/d(input of block l). The fused
 * *_grad ops and dense_backward write their outputs, so only the attention gradients, which
 * plugins add into, are zeroed. */
static void block_backward(lra_model *m, int l, int S)
{
    const int N = S * m->T, D = m->D, Q = m->Q, M = m->M;
    const size_t NQ = (size_t)N * Q;
    block_acts *a = &m->acts[l];
    lra_block_view p = block_view(m, m->params, l), g = block_view(m, m->grads, l);
    const float pd = drop_rate(m);
    drop_span sd[2], sm[2]; /* sites of D and of M elements a token, as in block_forward */
    const int halves = drop_spans(m, (size_t)m->T * D, sd);
    drop_spans(m, (size_t)m->T * M, sm);

    /* forward was: out = xmid + Dropout(W2 · h1d + b2), h1d = Dropout(GELU(h1)),
     * h1 = W1 · LN(xmid) + b1. d_res already carries the identity path into xmid. */
    for (int i = 0; i < halves; i++)
        op_dropout_grad(m->t_d + sd[i].off, m->d_res + sd[i].off, sd[i].n, pd,
                        dropout_key(m, l, SITE_MLP_OUT), sd[i].first);
    dense_backward(m, m->d_m, g.w2, g.b2, m->t_d, a->h1d, p.w2, N, M, D);
    for (int i = 0; i < halves; i++)
        op_gelu_dropout_grad(m->d_m + sm[i].off, m->d_m + sm[i].off, a->h1 + sm[i].off, sm[i].n,
                             pd, dropout_key(m, l, SITE_MLP_HIDDEN), sm[i].first);
    dense_backward(m, m->d_ln, g.w1, g.b1, m->d_m, a->ln2, p.w1, N, D, M);
    op_layernorm_backward(m->d_res, g.ln2_g, g.ln2_b, m->d_ln, a->xmid, a->mu2, a->rs2,
                          p.ln2_g, N, D);

    /* forward was: xmid = x + Dropout(Wo · merge(Attn(q, k, v))), [q k v] = LN(x) · Wqkv.
     * d_res now holds dL/dxmid, which is also the identity path into x. */
    for (int i = 0; i < halves; i++)
        op_dropout_grad(m->t_d + sd[i].off, m->d_res + sd[i].off, sd[i].n, pd,
                        dropout_key(m, l, SITE_ATTN_OUT), sd[i].first);
    op_merge_heads(m->t_q, Q, a->ao, S, m->T, m->H, m->Dh, 0); /* recompute Wo's input */
    /* t_qkv is borrowed as the (N, Q) gradient of the merged heads */
    dense_backward(m, m->t_qkv, g.wo, NULL, m->t_d, m->t_q, p.wo, N, Q, D);
    op_split_heads(m->dao, m->t_qkv, Q, S, m->T, m->H, m->Dh);
    zero(m->dqh, NQ);
    zero(m->dkh, NQ);
    zero(m->dvh, NQ);
    m->attn->backward(prepare_attn(m, l, S), a->qh, a->kh, a->vh, a->ao, m->dao, m->dqh, m->dkh,
                      m->dvh);
    op_merge_heads(m->t_qkv, 3 * Q, m->dqh, S, m->T, m->H, m->Dh, 0);
    op_merge_heads(m->t_qkv + Q, 3 * Q, m->dkh, S, m->T, m->H, m->Dh, 0);
    op_merge_heads(m->t_qkv + 2 * Q, 3 * Q, m->dvh, S, m->T, m->H, m->Dh, 0);
    dense_backward(m, m->d_ln, g.wqkv, NULL, m->t_qkv, a->ln1, p.wqkv, N, D, 3 * Q);
    op_layernorm_backward(m->d_res, g.ln1_g, g.ln1_b, m->d_ln, a->res, a->mu1, a->rs1,
                          p.ln1_g, N, D);
}

static void embed_backward(lra_model *m, int S)
{
    const int T = m->T, D = m->D;
    /* forward was: x = Dropout(embed(tok) + pos) */
    drop_span sp[2];
    for (int i = 0, n = drop_spans(m, (size_t)T * D, sp); i < n; i++)
        op_dropout_grad(m->t_d + sp[i].off, m->d_res + sp[i].off, sp[i].n, drop_rate(m),
                        dropout_key(m, -1, SITE_EMBED), sp[i].first);
    if (m->cfg.pos == LRA_POS_LEARNED) op_add_pos_backward(G(m, m->t_pos), m->t_d, S, T, D);
    for (int s = 0; s < S; s++) {
        const float *ds = m->t_d + (size_t)s * T * D;
        if (m->cls) op_add_inplace(G(m, m->t_cls), ds, (size_t)D);
        op_embed_backward(G(m, m->t_tok), ds + (size_t)m->cls * D,
                          m->tok + (size_t)s * T + m->cls, T - m->cls, D);
    }
}

void lra_model_backward(lra_model *m)
{
    LRA_ASSERT(m->have_labels);
    const int S = m->batch * m->docs;
    head_backward(m, m->batch);
    for (int l = m->layers - 1; l >= 0; l--) block_backward(m, l, S);
    embed_backward(m, S);
}

/* ---- accessors ----------------------------------------------------------------------- */

const float *lra_model_logits(const lra_model *m) { return m->logits; }

void lra_model_set_shard(lra_model *m, int first, int global_batch)
{
    LRA_ASSERT(first >= 0 && (global_batch == 0 || first < global_batch));
    m->shard_first = global_batch ? first : 0;
    m->shard_global = global_batch;
}

uint64_t lra_model_branch_signature(const lra_model *m)
{
    uint64_t h = 0;
    for (size_t i = 0; i < (size_t)m->batch * m->M; i++)
        h = lra_mix64(h ^ (m->hh[i] > 0.0f ? 2 * i + 1 : 2 * i));
    return h;
}
size_t lra_model_n_params(const lra_model *m) { return m->n_params; }
float *lra_model_params(lra_model *m) { return m->params; }
float *lra_model_grads(lra_model *m) { return m->grads; }
float *lra_model_adam_m(lra_model *m) { return m->adam_m; }
float *lra_model_adam_v(lra_model *m) { return m->adam_v; }
int lra_model_n_tensors(const lra_model *m) { return m->n_tensors; }
const lra_tensor *lra_model_tensor(const lra_model *m, int i) { return &m->tensors[i]; }
size_t lra_model_n_state(const lra_model *m) { return m->n_state; }
float *lra_model_state(lra_model *m) { return m->state; }
void lra_model_dense_profile(lra_model *m, double *secs, double *flops, int reset)
{
    if (secs) *secs = m->dense_secs;
    if (flops) *flops = m->dense_flops;
    if (reset) m->dense_secs = m->dense_flops = 0.0;
}

size_t lra_model_arena_bytes(const lra_model *m) { return m->arena_floats * sizeof(float); }
const lra_config *lra_model_config(const lra_model *m) { return &m->cfg; }
const lra_attention *lra_model_attention(const lra_model *m) { return m->attn; }

size_t lra_model_n_trainable(const lra_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->n_tensors; i++) n += m->tensors[i].count;
    return n;
}

int lra_model_find_tensor(const lra_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

double lra_model_flops(const lra_model *m, int batch, double *attn_flops)
{
    const double S = (double)batch * m->docs, N = S * m->T;
    const double D = m->D, Q = m->Q, M = m->M;
    double dense = 2.0 * N * (D * 3 * Q + Q * D + 2 * D * M);
    lra_attn_ctx c = m->actx[0];
    c.shape.batch = (int)S;
    double att = m->attn->flops(&c);
    double head = 2.0 * batch * ((double)m->F * M + M * m->C);
    if (attn_flops) *attn_flops = att * m->layers;
    return (dense + att) * m->layers + head;
}
