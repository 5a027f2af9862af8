/* test_model.c — whole-model checks.
 *
 *   test_model            directional gradient check of every named parameter slice, for CLS and
 *                         MEAN pooling, learned and sinusoidal positions, the dual encoder with
 *                         both heads, and with dropout (masks fixed by the step counter)
 *   test_model --plant    the same checks against deliberately broken gradients; must fail
 *   test_model --overfit  a tiny model drives the loss on one fixed batch below a bound
 *   test_model --repro    the same seed and thread count give bit-identical losses
 *   test_model --shards   a batch computed as shards (lra_model_set_shard, as data-parallel
 *                         ranks do) gives the whole batch's logits, loss and gradient, with
 *                         dropout and attention dropout on, one and two documents
 *
 * Tolerances: the gradcheck defaults (eps 1e-2, pass below 1e-3, warn below 1e-2), which the
 * softmax attention measurements in style.md §7 justify for float32.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "lra_rng.h"
#include "model.h"
#include "optim.h"
#include "registry.h"

static int n_pass, n_fail;

static void verdict(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
    ok ? n_pass++ : n_fail++;
}

typedef struct fixture {
    lra_model *m;
    int B, docs, len;
    int32_t *tokens, *labels;
} fixture;

static lra_config tiny_config(void)
{
    lra_config c;
    lra_config_defaults(&c);
    c.layers = 2;
    c.emb_dim = 8;
    c.heads = 2;
    c.qkv_dim = 8;
    c.mlp_dim = 12;
    c.seq_len = 6;
    c.dropout = 0.0;
    c.attn_dropout = 0.0;
    c.seed = 7;
    return c;
}

/* Random tokens with trailing padding in some rows; vocab 7, classes 3; attention `attn`. */
static fixture make_fixture_attn(const lra_config *c, const char *attn, int docs, int B)
{
    fixture f = {.B = B, .docs = docs, .len = c->seq_len};
    char err[256];
    f.m = lra_model_create(c, lra_attn_find(attn), 7, 3, docs, NULL, err, sizeof err);
    if (!f.m) {
        fprintf(stderr, "model: %s\n", err);
        exit(1);
    }
    if (lra_model_plan(f.m, B, err, sizeof err) != 0) exit(1);
    size_t n = (size_t)B * docs * c->seq_len;
    f.tokens = calloc(n, sizeof(int32_t));
    f.labels = calloc((size_t)B, sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        int t = (int)(i % (size_t)c->seq_len), row = (int)(i / (size_t)c->seq_len);
        int real = c->seq_len - (row % 3); /* 0, 1 or 2 padding tokens */
        f.tokens[i] = t < real ? 1 + (int32_t)lra_below(99, i, 6) : 0;
    }
    for (int b = 0; b < B; b++) f.labels[b] = (int32_t)lra_below(98, (uint64_t)b, 3);
    /* LRA initialises the CLS vector to zero, so the first LayerNorm sees a row whose variance
     * is only that of the position code (~4e-4): there a step of eps = 1e-2 is far outside the
     * linear regime and finite differences are meaningless. Checking at a generic point
     * (CLS ~ N(0, 1), like token embeddings) tests the same backward code. */
    int cls = lra_model_find_tensor(f.m, "embed.cls");
    if (cls >= 0) {
        const lra_tensor *t = lra_model_tensor(f.m, cls);
        for (size_t i = 0; i < t->count; i++)
            lra_model_params(f.m)[t->offset + i] = lra_normal(97, i);
    }
    return f;
}

static fixture make_fixture(const lra_config *c, int docs, int B)
{
    return make_fixture_attn(c, "softmax", docs, B);
}

static void free_fixture(fixture *f)
{
    lra_model_free(f->m);
    free(f->tokens);
    free(f->labels);
}

static double loss_fn(void *ctx)
{
    fixture *f = ctx;
    return lra_model_forward(f->m, f->tokens, f->labels, NULL, f->B, 1, 3);
}

static uint64_t signature_fn(void *ctx)
{
    return lra_model_branch_signature(((fixture *)ctx)->m);
}

/* Planted bugs, each the kind a hand-written backward really has: a view offset that swaps two
 * equal-sized gradient slices, and a transposed weight gradient. */
static void plant_bugs(lra_model *m)
{
    float *g = lra_model_grads(m);
    const lra_tensor *a = lra_model_tensor(m, lra_model_find_tensor(m, "layer0.ln1.g"));
    const lra_tensor *b = lra_model_tensor(m, lra_model_find_tensor(m, "layer0.ln2.g"));
    for (size_t i = 0; i < a->count; i++) {
        float t = g[a->offset + i];
        g[a->offset + i] = g[b->offset + i];
        g[b->offset + i] = t;
    }
    const lra_tensor *w = lra_model_tensor(m, lra_model_find_tensor(m, "layer1.attn.wo"));
    float *wo = g + w->offset;
    for (int r = 0; r < w->rows; r++)
        for (int c = r + 1; c < w->cols; c++) {
            float t = wo[r * w->cols + c];
            wo[r * w->cols + c] = wo[c * w->cols + r];
            wo[c * w->cols + r] = t;
        }
}

static void check_gradients(const char *label, const lra_config *c, int docs, int plant)
{
    fixture f = make_fixture(c, docs, 3);
    lra_model *m = f.m;
    size_t np = lra_model_n_params(m);
    float *g = malloc(np * sizeof(float));
    memset(lra_model_grads(m), 0, np * sizeof(float));
    loss_fn(&f);
    lra_model_backward(m);
    if (plant) plant_bugs(m);
    memcpy(g, lra_model_grads(m), np * sizeof(float));
    printf("%s\n", label);
    int worst = LRA_GC_PASS;
    for (int i = 0; i < lra_model_n_tensors(m); i++) {
        const lra_tensor *t = lra_model_tensor(m, i);
        lra_gradcheck_opts o = lra_gradcheck_defaults();
        o.seed = 1000 + (uint64_t)i;
        o.signature = signature_fn;
        lra_gradcheck_result r = lra_gradcheck(loss_fn, &f, lra_model_params(m) + t->offset,
                                               g + t->offset, t->count, &o);
        lra_gradcheck_print(t->name, &r);
        if ((int)r.verdict > worst) worst = (int)r.verdict;
    }
    char what[160];
    snprintf(what, sizeof what, "%s: every parameter slice", label);
    verdict(worst != LRA_GC_FAIL, what);
    free(g);
    free_fixture(&f);
}

static void gradient_suite(int plant)
{
    lra_config c = tiny_config();
    c.pool = LRA_POOL_CLS;
    c.pos = LRA_POS_LEARNED;
    check_gradients("CLS pooling, learned positions", &c, 1, plant);
    c.pool = LRA_POOL_MEAN;
    c.pos = LRA_POS_SINUSOID;
    check_gradients("MEAN pooling, sinusoidal positions", &c, 1, plant);
    c.dropout = 0.2;
    c.attn_dropout = 0.2;
    check_gradients("MEAN pooling, dropout 0.2 and attention dropout 0.2", &c, 1, plant);
    c = tiny_config();
    c.dual_head = LRA_DUAL_NLI;
    check_gradients("dual encoder, [u, v, u*v, u-v] head", &c, 2, plant);
    c.dual_head = LRA_DUAL_CONCAT;
    c.pool = LRA_POOL_CLS;
    check_gradients("dual encoder, [u, v] head, CLS pooling", &c, 2, plant);
}

/* Trains for `steps` AdamW steps and returns the losses. */
static void train_steps(const lra_config *c, fixture *f, int steps, double *losses)
{
    lra_model *m = f->m;
    size_t np = lra_model_n_params(m);
    for (int s = 0; s < steps; s++) {
        memset(lra_model_grads(m), 0, np * sizeof(float));
        losses[s] = lra_model_forward(m, f->tokens, f->labels, NULL, f->B, 1, (uint64_t)s);
        lra_model_backward(m);
        lra_clip_grad_norm(lra_model_grads(m), np, 1.0);
        double lr = lra_lr_at(LRA_SCHED_CONSTANT, c->lr, 0, steps, s);
        for (int i = 0; i < lra_model_n_tensors(m); i++) {
            const lra_tensor *t = lra_model_tensor(m, i);
            lra_adamw_update(lra_model_params(m) + t->offset, lra_model_grads(m) + t->offset,
                             lra_model_adam_m(m) + t->offset, lra_model_adam_v(m) + t->offset,
                             t->count, lr, 0.9, 0.98, 1e-9, 0.0, s + 1);
        }
    }
}

/* 16 fixed examples, 3 classes: a 1-layer model must memorise them. Bound: loss < 0.05 after
 * 300 steps (it reaches about 1e-3 in practice; chance level is ln 3 = 1.10). */
static void overfit(void)
{
    lra_config c = tiny_config();
    c.layers = 1;
    c.emb_dim = 32;
    c.qkv_dim = 32;
    c.mlp_dim = 64;
    c.seq_len = 24;
    c.lr = 3e-3;
    fixture f = make_fixture(&c, 1, 16);
    double losses[300];
    train_steps(&c, &f, 300, losses);
    printf("overfit: loss %.4f at step 1, %.4f at step 100, %.5f at step 300\n", losses[0],
           losses[99], losses[299]);
    verdict(losses[299] < 0.05, "tiny model overfits one fixed batch (loss < 0.05)");
    free_fixture(&f);
}

/* Two runs with the same seed and threads, dropout on: bit-identical losses. A run with
 * another seed must differ, or the comparison would prove nothing. */
static void repro(void)
{
    lra_config c = tiny_config();
    c.dropout = 0.1;
    c.attn_dropout = 0.1;
    c.lr = 1e-3;
    double a[20], b[20], d[20];
    fixture f1 = make_fixture(&c, 1, 4), f2 = make_fixture(&c, 1, 4);
    train_steps(&c, &f1, 20, a);
    train_steps(&c, &f2, 20, b);
    c.seed = 8;
    fixture f3 = make_fixture(&c, 1, 4);
    train_steps(&c, &f3, 20, d);
    printf("repro: loss after 20 steps %.9g and %.9g; other seed %.9g\n", a[19], b[19], d[19]);
    verdict(memcmp(a, b, sizeof a) == 0, "same seed and threads: bit-identical losses");
    verdict(memcmp(a, d, sizeof a) != 0, "another seed changes the losses");
    free_fixture(&f1);
    free_fixture(&f2);
    free_fixture(&f3);
}

/* One training forward and backward of rows [lo, lo + n) of the fixture's batch as a shard
 * (global = 0: as a batch of its own). Adds (n / B) · gradient into acc and returns the loss;
 * the logits go to logits + lo·C. */
static double shard_pass(fixture *f, int lo, int n, int global, double *acc, float *logits)
{
    lra_model *m = f->m;
    const size_t np = lra_model_n_params(m), row = (size_t)f->docs * f->len;
    memset(lra_model_grads(m), 0, np * sizeof(float));
    lra_model_set_shard(m, lo, global);
    const double loss = lra_model_forward(m, f->tokens + lo * row, f->labels + lo, NULL, n, 1, 3);
    lra_model_backward(m);
    for (size_t i = 0; i < np; i++) acc[i] += (double)n / f->B * lra_model_grads(m)[i];
    memcpy(logits + (size_t)lo * 3, lra_model_logits(m), (size_t)n * 3 * sizeof(float));
    lra_model_set_shard(m, 0, 0);
    return loss * n / f->B;
}

/* max |x − y| / max |y| over logits, loss and gradient together. */
static double shard_diff(const double *g, const double *want, size_t n)
{
    double err = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        err = fmax(err, fabs(g[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    return err / fmax(scale, 1e-30);
}

/* The batch of 5 split 2 + 3, as two data-parallel ranks split it, gives the whole batch's
 * logits, mean loss and gradient to float rounding (1e-5 relative; the sums only regroup).
 * With the shards' places withheld (each shard its own batch) the dropout masks move and the
 * same comparison must fail, or it would prove nothing. */
static void shards(void)
{
    static const char *const attns[] = {"softmax", "kdeformer", "reformer"};
    for (size_t a = 0; a < sizeof attns / sizeof attns[0]; a++)
        for (int docs = 1; docs <= 2; docs++) {
            lra_config c = tiny_config();
            c.dropout = 0.2;
            c.attn_dropout = 0.2;
            fixture f = make_fixture_attn(&c, attns[a], docs, 5);
            const size_t np = lra_model_n_params(f.m), nv = 15 + 1 + np;
            double *want = calloc(nv, sizeof(double)), *got = calloc(nv, sizeof(double));
            double *placeless = calloc(nv, sizeof(double));
            float logits[15];
            double *res[] = {want, got, placeless};
            for (int k = 0; k < 3; k++) {
                double *v = res[k];
                if (k == 0) {
                    v[15] = shard_pass(&f, 0, 5, 0, v + 16, logits);
                } else {
                    const int global = k == 1 ? 5 : 0;
                    v[15] = shard_pass(&f, 0, 2, global, v + 16, logits) +
                            shard_pass(&f, 2, 3, global, v + 16, logits);
                }
                for (int i = 0; i < 15; i++) v[i] = logits[i];
            }
            const double d = shard_diff(got, want, nv), dp = shard_diff(placeless, want, nv);
            char what[160];
            snprintf(what, sizeof what, "%s, %d doc(s): shards 2 + 3 = batch of 5 "
                     "(rel %.1e; without their places %.1e)", attns[a], docs, d, dp);
            verdict(d <= 1e-5 && dp > 1e-3, what);
            free(want), free(got), free(placeless);
            free_fixture(&f);
        }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "--overfit") == 0)
        overfit();
    else if (strcmp(mode, "--repro") == 0)
        repro();
    else if (strcmp(mode, "--shards") == 0)
        shards();
    else
        gradient_suite(strcmp(mode, "--plant") == 0);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
