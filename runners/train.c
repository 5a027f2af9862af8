/* train.c — the training loop shared by `lra train` (and later `lra suite`).
 *
 * Protocol: shuffle the training set with a seeded permutation per epoch; evaluate on the
 * validation split every eval_every steps and keep the parameters with the best validation
 * accuracy; evaluate the test split once, with those parameters, at the end. Evaluation covers
 * every example: the last batch is padded with zero-weight rows (LRA pitfall 17).
 */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lra_build.h"
#include "lra_rng.h"
#include "model.h"
#include "optim.h"
#include "platform.h"
#include "registry.h"
#include "results.h"
#include "task.h"
#include "util.h"

extern const char *const lra_code_version;

typedef struct batch_buf {
    int32_t *tokens; /* (B, docs, len) */
    int32_t *labels; /* (B) */
    float *weight;   /* (B) */
} batch_buf;

/* Copies examples idx[0..n) of d into the batch; rows n..B-1 become zero-weight padding. */
static void fill_batch(batch_buf *bb, const lra_dataset *d, const int *idx, int n, int B)
{
    const size_t row = (size_t)d->docs * d->len;
    for (int b = 0; b < B; b++) {
        if (b < n) {
            memcpy(bb->tokens + b * row, d->tokens + (size_t)idx[b] * row, row * sizeof(int32_t));
            bb->labels[b] = d->labels[idx[b]];
            bb->weight[b] = 1.0f;
        } else {
            memset(bb->tokens + b * row, 0, row * sizeof(int32_t));
            bb->labels[b] = 0;
            bb->weight[b] = 0.0f;
        }
    }
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int count_correct(lra_model *m, const batch_buf *bb, int n, int C)
{
    const float *logits = lra_model_logits(m);
    int ok = 0;
    for (int b = 0; b < n; b++) ok += argmax(logits + (size_t)b * C, C) == bb->labels[b];
    return ok;
}

/* Mean loss and accuracy over every example of d. */
static void evaluate(lra_model *m, const lra_dataset *d, batch_buf *bb, int B, int C,
                     double *loss, double *acc)
{
    int idx[4096];
    double sum_loss = 0.0;
    long correct = 0;
    LRA_ASSERT(B <= 4096);
    for (int start = 0; start < d->n; start += B) {
        int n = d->n - start < B ? d->n - start : B;
        for (int b = 0; b < n; b++) idx[b] = start + b;
        fill_batch(bb, d, idx, n, B);
        sum_loss += lra_model_forward(m, bb->tokens, bb->labels, bb->weight, B, 0, 0) * n;
        correct += count_correct(m, bb, n, C);
    }
    *loss = sum_loss / d->n;
    *acc = (double)correct / d->n;
}

/* Fisher–Yates with counter-based draws: the permutation of epoch e is a function of the seed. */
static void shuffle(int *perm, int n, uint64_t key)
{
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)lra_below(key, (uint64_t)i, (uint32_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static void optimizer_step(lra_model *m, const lra_config *c, double lr, long t)
{
    float *p = lra_model_params(m), *g = lra_model_grads(m);
    float *am = lra_model_adam_m(m), *av = lra_model_adam_v(m);
    for (int i = 0; i < lra_model_n_tensors(m); i++) {
        const lra_tensor *tt = lra_model_tensor(m, i);
        double wd = (tt->flags & LRA_TENSOR_NO_DECAY) ? 0.0 : c->weight_decay;
        lra_adamw_update(p + tt->offset, g + tt->offset, am + tt->offset, av + tt->offset,
                         tt->count, lr, c->beta1, c->beta2, c->adam_eps, wd, t);
    }
}

static void iso_time(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void record_setup(lra_results *r, const lra_config *c, const lra_model *m,
                         const lra_task *task)
{
    char text[16384], when[32];
    lra_config_format(c, text, sizeof text);
    iso_time(when, sizeof when);
    lra_results_attr_str(r, "task", c->task);
    lra_results_attr_str(r, "variant", c->attn);
    lra_results_attr_str(r, "preset", c->preset);
    lra_results_attr_str(r, "config", text);
    lra_results_attr_num(r, "seed", c->seed);
    lra_results_attr_str(r, "code_version", lra_code_version);
    lra_results_attr_str(r, "compiler", LRA_C_COMPILER);
    lra_results_attr_str(r, "compiler_flags", LRA_C_FLAGS);
    lra_results_attr_str(r, "cpu", lra_cpu_model());
    lra_results_attr_str(r, "blas", lra_blas_info());
    lra_results_attr_num(r, "threads", lra_threads());
    lra_results_attr_str(r, "start_time", when);
    lra_results_attr_str(r, "status", "running");
    lra_results_attr_num(r, "classes", task->classes);
    lra_results_attr_num(r, "param_count", (double)lra_model_n_trainable(m));
    double attn_flops = 0.0;
    double flops = lra_model_flops(m, 1, &attn_flops);
    lra_results_attr_num(r, "flops_forward_per_example", flops);
    lra_results_attr_num(r, "attn_flops_forward_per_example", attn_flops);
}

static void record_data(lra_results *r, const lra_dataset split[LRA_N_SPLITS],
                        const lra_provenance *prov)
{
    for (int s = 0; s < LRA_N_SPLITS; s++) {
        char name[32];
        snprintf(name, sizeof name, "data.n_%s", lra_split_names[s]);
        lra_results_attr_num(r, name, split[s].n);
    }
    for (int i = 0; i < prov->n; i++) {
        char name[64];
        snprintf(name, sizeof name, "data.%s", prov->key[i]);
        lra_results_attr_str(r, name, prov->value[i]);
    }
}

typedef struct progress {
    int tty, quiet;
    double t0;
} progress;

static void show_progress(const progress *pg, int step, int steps, double loss, double acc,
                          double ex_per_s)
{
    if (pg->quiet) return;
    double eta = ex_per_s > 0 ? (lra_now() - pg->t0) / step * (steps - step) : 0.0;
    if (pg->tty)
        fprintf(stderr, "\r  step %6d/%d  loss %.4f  acc %5.1f%%  %7.1f ex/s  ETA %5.0fs   ",
                step, steps, loss, 100.0 * acc, ex_per_s, eta);
    else
        fprintf(stderr, "  step %d/%d loss %.4f acc %.1f%% %.1f ex/s ETA %.0fs\n", step, steps,
                loss, 100.0 * acc, ex_per_s, eta);
}

static void end_progress_line(const progress *pg)
{
    if (pg->tty && !pg->quiet) fputc('\n', stderr);
}

static int flush_results(lra_results *r, char *err, size_t errlen)
{
    return r ? lra_results_flush(r, err, errlen) : 0;
}

int lra_train_run(const lra_config *cfg, const lra_train_opts *opts, lra_train_result *res,
                  char *err, size_t errlen)
{
    const lra_task *task = lra_task_find(cfg->task);
    const lra_attention *attn = lra_attn_find(cfg->attn);
    memset(res, 0, sizeof *res);
    res->diverged_step = -1;
    res->status = LRA_RUN_FAILED;
    if (!task) return snprintf(err, errlen, "unknown task '%s' (see 'lra list tasks')",
                               cfg->task), -1;
    if (!attn) return snprintf(err, errlen, "unknown attention variant '%s' (see 'lra list "
                               "attention')", cfg->attn), -1;
    lra_set_threads(cfg->threads);

    int rc = -1;
    lra_dataset split[LRA_N_SPLITS] = {{0}};
    lra_dataset *train = &split[LRA_SPLIT_TRAIN], *val = &split[LRA_SPLIT_VAL],
                *test = &split[LRA_SPLIT_TEST];
    lra_provenance prov;
    lra_model *m = NULL;
    lra_results *r = NULL;
    float *best = NULL;
    int *perm = NULL;
    batch_buf bb = {0};
    const int B = cfg->batch, C = task->classes;

    if (lra_task_load(cfg, opts->input, opts->data_dir, split, &prov, opts->quiet, err,
                      errlen) != 0)
        goto out;
    if (train->n < 1 || val->n < 1 || test->n < 1) {
        snprintf(err, errlen, "task %s produced an empty split (train %d, val %d, test %d)",
                 cfg->task, train->n, val->n, test->n);
        goto out;
    }
    if (train->len != cfg->seq_len) {
        snprintf(err, errlen, "task %s produced documents of %d tokens, but seq_len is %d",
                 cfg->task, train->len, cfg->seq_len);
        goto out;
    }
    m = lra_model_create(cfg, attn, task->vocab, C, task->docs, err, errlen);
    if (!m || lra_model_plan(m, B, err, errlen) != 0) goto out;

    const size_t row = (size_t)task->docs * cfg->seq_len;
    bb.tokens = lra_alloc((size_t)B * row * sizeof(int32_t), "batch tokens");
    bb.labels = lra_alloc((size_t)B * sizeof(int32_t), "batch labels");
    bb.weight = lra_alloc((size_t)B * sizeof(float), "batch weights");
    perm = lra_alloc((size_t)train->n * sizeof(int), "training permutation");
    best = lra_alloc(lra_model_n_params(m) * sizeof(float), "best checkpoint");
    memcpy(best, lra_model_params(m), lra_model_n_params(m) * sizeof(float));

    if (opts->out) {
        char group[160];
        snprintf(group, sizeof group, "/%s/%s/seed%d", cfg->task, cfg->attn, cfg->seed);
        r = lra_results_create(opts->out, group);
        record_setup(r, cfg, m, task);
        record_data(r, split, &prov);
        if (flush_results(r, err, errlen) != 0) goto out;
    }
    if (!opts->quiet)
        fprintf(stderr, "lra train: task %s, attention %s, %zu parameters, %d steps of batch %d, "
                "%d threads\n", cfg->task, cfg->attn, lra_model_n_trainable(m), cfg->steps, B,
                lra_threads());

    progress pg = {.tty = isatty(2), .quiet = opts->quiet, .t0 = lra_now()};
    static const char *const train_cols[] = {"step", "loss", "acc", "lr", "grad_norm",
                                             "seconds", "examples_per_s"};
    static const char *const eval_cols[] = {"step", "loss", "acc", "seconds"};
    double win_loss = 0.0, win_t = lra_now();
    long win_ok = 0, win_n = 0, cursor = train->n, epoch = -1;
    res->best_val_acc = -1.0;
    const uint64_t data_key = lra_key((uint64_t)cfg->seed, 0xda7a);
    float *grads = lra_model_grads(m);
    const size_t np = lra_model_n_params(m);

    for (int step = 0; step < cfg->steps; step++) {
        int idx[4096];
        LRA_ASSERT(B <= 4096);
        for (int b = 0; b < B; b++) {
            if (cursor == train->n) {
                shuffle(perm, train->n, lra_key(data_key, (uint64_t)++epoch));
                cursor = 0;
            }
            idx[b] = perm[cursor++];
        }
        fill_batch(&bb, train, idx, B, B);
        memset(grads, 0, np * sizeof(float));
        double loss = lra_model_forward(m, bb.tokens, bb.labels, NULL, B, 1, (uint64_t)step);
        if (!isfinite(loss)) {
            res->status = LRA_RUN_DIVERGED;
            res->diverged_step = step;
            break;
        }
        win_ok += count_correct(m, &bb, B, C);
        lra_model_backward(m);
        double gnorm = cfg->clip > 0 ? lra_clip_grad_norm(grads, np, cfg->clip)
                                     : lra_grad_norm(grads, np);
        double lr = lra_lr_at(cfg->schedule, cfg->lr, cfg->warmup, cfg->steps, step);
        optimizer_step(m, cfg, lr, step + 1);
        res->steps_done = step + 1;
        win_loss += loss;
        win_n += B;

        int last = step + 1 == cfg->steps;
        if ((step + 1) % cfg->log_every == 0 || last) {
            double now = lra_now(), ex_s = win_n / (now - win_t);
            double vals[] = {step + 1, win_loss * B / win_n, (double)win_ok / win_n, lr, gnorm,
                             now - pg.t0, ex_s};
            if (r) lra_results_append(r, "train", 7, train_cols, vals);
            show_progress(&pg, step + 1, cfg->steps, vals[1], vals[2], ex_s);
            win_loss = 0.0;
            win_ok = win_n = 0;
            win_t = now;
        }
        if ((cfg->eval_every > 0 && (step + 1) % cfg->eval_every == 0) || last) {
            double vl, va;
            evaluate(m, val, &bb, B, C, &vl, &va);
            double vals[] = {step + 1, vl, va, lra_now() - pg.t0};
            if (r) lra_results_append(r, "val", 4, eval_cols, vals);
            if (va > res->best_val_acc) {
                res->best_val_acc = va;
                res->best_step = step + 1;
                memcpy(best, lra_model_params(m), np * sizeof(float));
            }
            if (!opts->quiet) {
                end_progress_line(&pg);
                fprintf(stderr, "  validation at step %d: loss %.4f, accuracy %.2f%%\n",
                        step + 1, vl, 100.0 * va);
            }
            if (flush_results(r, err, errlen) != 0) goto out;
        }
    }
    res->seconds = lra_now() - pg.t0;
    end_progress_line(&pg);

    char when[32];
    iso_time(when, sizeof when);
    if (res->status == LRA_RUN_DIVERGED) {
        if (!opts->quiet)
            fprintf(stderr, "lra train: loss became non-finite at step %d; run recorded as "
                    "diverged\n", res->diverged_step);
        if (r) {
            lra_results_attr_str(r, "status", "diverged");
            lra_results_attr_num(r, "diverged_step", res->diverged_step);
        }
    } else {
        /* Test once, with the parameters that scored best on validation. */
        memcpy(lra_model_params(m), best, np * sizeof(float));
        evaluate(m, test, &bb, B, C, &res->test_loss, &res->test_acc);
        res->status = LRA_RUN_FINISHED;
        if (r) {
            lra_results_attr_str(r, "status", "finished");
            lra_results_attr_num(r, "test_acc", res->test_acc);
            lra_results_attr_num(r, "test_loss", res->test_loss);
            lra_results_attr_num(r, "best_val_acc", res->best_val_acc);
            lra_results_attr_num(r, "best_step", res->best_step);
        }
    }
    if (r) {
        lra_results_attr_str(r, "end_time", when);
        lra_results_attr_num(r, "steps_done", res->steps_done);
        lra_results_attr_num(r, "train_seconds", res->seconds);
        lra_results_attr_num(r, "peak_rss_bytes", (double)lra_peak_rss());
        lra_results_attr_num(r, "activation_bytes", (double)lra_model_arena_bytes(m));
        if (flush_results(r, err, errlen) != 0) goto out;
    }
    rc = 0;
out:
    lra_results_free(r);
    lra_free(best);
    lra_free(perm);
    lra_free(bb.tokens);
    lra_free(bb.labels);
    lra_free(bb.weight);
    lra_model_free(m);
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
    return rc;
}
