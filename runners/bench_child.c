/* bench_child.c — the child processes of `lra bench`: `--one` builds one configuration's
 * model and times its steps on random byte tokens, reporting on stdout; `--sgemm` measures the
 * machine's sgemm ceiling.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "lra_rng.h"
#include "model.h"
#include "optim.h"
#include "platform.h"
#include "registry.h"

#define SGEMM_N 2048
#define VOCAB 257 /* 256 bytes + padding id 0, as LRA's Text task */
#define CLASSES 2

/* ---- child: one configuration -------------------------------------------------------- */

typedef struct inputs {
    int32_t *tokens, *labels;
} inputs;

static inputs random_bytes(int batch, int len)
{
    inputs in = {lra_alloc((size_t)batch * len * sizeof(int32_t), "benchmark tokens"),
                 lra_alloc((size_t)batch * sizeof(int32_t), "benchmark labels")};
    const uint64_t key = lra_key(0xbe9c, (uint64_t)len);
    for (size_t i = 0; i < (size_t)batch * len; i++)
        in.tokens[i] = 1 + (int32_t)lra_below(key, i, 256);
    for (int b = 0; b < batch; b++)
        in.labels[b] = (int32_t)lra_below(lra_key(key, 1), (uint64_t)b, CLASSES);
    return in;
}

/* The same work as train.c's step: forward with dropout, backward, norm or clip, AdamW. */
static void train_step(lra_model *m, const lra_config *c, const inputs *in, long t)
{
    const size_t np = lra_model_n_params(m);
    float *p = lra_model_params(m), *g = lra_model_grads(m);
    float *am = lra_model_adam_m(m), *av = lra_model_adam_v(m);
    memset(g, 0, np * sizeof(float));
    lra_model_forward(m, in->tokens, in->labels, NULL, c->batch, 1, (uint64_t)t);
    lra_model_backward(m);
    if (c->clip > 0)
        lra_clip_grad_norm(g, np, c->clip);
    else
        (void)lra_grad_norm(g, np); /* train computes it for its log */
    const double lr = lra_lr_at(c->schedule, c->lr, c->warmup, c->steps, t);
    for (int i = 0; i < lra_model_n_tensors(m); i++) {
        const lra_tensor *tt = lra_model_tensor(m, i);
        double wd = (tt->flags & LRA_TENSOR_NO_DECAY) ? 0.0 : c->weight_decay;
        lra_adamw_update(p + tt->offset, g + tt->offset, am + tt->offset, av + tt->offset,
                         tt->count, lr, c->beta1, c->beta2, c->adam_eps, wd, t + 1);
    }
}

static double timed_step(lra_model *m, const lra_config *c, const inputs *in, int train, long t)
{
    const double t0 = lra_now();
    if (train)
        train_step(m, c, in, t);
    else
        lra_model_forward(m, in->tokens, in->labels, NULL, c->batch, 0, 0);
    return lra_now() - t0;
}

/* Result lines go to stdout, which the parent reads through a pipe; progress to stderr. */
int lra_bench_run_one(const bench_opts *o)
{
    lra_config cfg;
    char err[1024];
    int rejected = 0;
    lra_bench_resolve_config(o, o->attns[0], o->lens[0], &cfg);
    lra_set_threads(cfg.threads);
    printf("baseline %lld\n", lra_peak_rss());
    fflush(stdout);
    lra_model *m = lra_model_create(&cfg, lra_attn_find(cfg.attn), VOCAB, CLASSES, 1,
                                    &rejected, err, sizeof err);
    if (m && lra_model_plan(m, cfg.batch, err, sizeof err) != 0) {
        lra_model_free(m);
        m = NULL;
    }
    if (!m) {
        for (char *nl = strchr(err, '\n'); nl; nl = strchr(nl, '\n')) *nl = ' ';
        printf("%s %s\n", rejected ? "skip" : "fail", err);
        return rejected ? LRA_EXIT_SKIPPED : LRA_EXIT_FAIL;
    }
    printf("flops %.17g\n", lra_model_flops(m, cfg.batch, NULL) * (o->train ? 3.0 : 1.0));
    fflush(stdout);
    inputs in = random_bytes(cfg.batch, cfg.seq_len);
    for (int r = 0; r < o->warmup + o->repeats; r++) {
        const int timed = r >= o->warmup;
        if (r == o->warmup) lra_model_dense_profile(m, NULL, NULL, 1);
        const double s = timed_step(m, &cfg, &in, o->train, r);
        if (timed) printf("rep %.9g\n", s);
        fflush(stdout);
        if (!o->quiet)
            fprintf(stderr, "    %s %d/%d: %.3f s\n", timed ? "repeat" : "warm-up",
                    timed ? r - o->warmup + 1 : r + 1, timed ? o->repeats : o->warmup, s);
    }
    double dense_secs, dense_flops;
    lra_model_dense_profile(m, &dense_secs, &dense_flops, 0);
    printf("dense %.9g %.17g\n", dense_secs, dense_flops);
    printf("hwm %lld\ndone\n", lra_peak_rss());
    lra_free(in.tokens);
    lra_free(in.labels);
    lra_model_free(m);
    return LRA_EXIT_OK;
}

/* The machine's practical ceiling: best of a few large sgemm calls on all threads. */
int lra_bench_run_sgemm(const bench_opts *o)
{
    const int n = SGEMM_N;
    const size_t bytes = (size_t)n * n * sizeof(float);
    float *a = lra_alloc(bytes, "sgemm A"), *b = lra_alloc(bytes, "sgemm B");
    float *c = lra_alloc(bytes, "sgemm C");
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = lra_uniform(1, i) - 0.5f;
        b[i] = lra_uniform(2, i) - 0.5f;
    }
    lra_set_threads(o->threads);
    double best = 1e30;
    for (int r = 0; r < 4; r++) { /* the first call pays for thread start-up and page faults */
        const double t0 = lra_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        const double t = lra_now() - t0;
        if (r > 0 && t < best) best = t;
    }
    printf("gflops %.6g\n", 2.0 * n * n * (double)n / best / 1e9);
    lra_free(a);
    lra_free(b);
    lra_free(c);
    return LRA_EXIT_OK;
}

