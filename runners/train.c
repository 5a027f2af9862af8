/* train.c — the training loop shared by `lra train` (and later `lra suite`).
 *
 * Protocol: shuffle the training set with a seeded permutation per epoch; evaluate on the
 * validation split every eval_every steps and keep the parameters with the best validation
 * accuracy; evaluate the test split once, with those parameters, at the end. Evaluation covers
 * every example: the last batch is padded with zero-weight rows (LRA pitfall 17).
 *
 * Under mpirun (MPI build) one run is trained data-parallel (train_dp.h): each rank computes a
 * contiguous shard of every global batch and the gradients are averaged; evaluation batches are
 * dealt round-robin to the ranks and the sums reduced; rank 0 alone writes results and
 * checkpoints and prints progress. With one process every path below is the plain one.
 */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lra_build.h"
#include "lra_rng.h"
#include "checkpoint.h"
#include "model.h"
#include "optim.h"
#include "platform.h"
#include "registry.h"
#include "results.h"
#include "task.h"
#include "train_dp.h"
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

/* Mean loss and accuracy over every example of d. Batch k goes to rank k mod size. */
static void evaluate(lra_model *m, const lra_dataset *d, batch_buf *bb, int B, int C,
                     lra_dp *dp, double *loss, double *acc)
{
    int idx[4096];
    double sum_loss = 0.0;
    long correct = 0;
    LRA_ASSERT(B <= 4096);
    lra_model_set_shard(m, 0, 0); /* every evaluation batch is whole on its rank */
    for (int start = 0, k = 0; start < d->n; start += B, k++) {
        if (k % dp->size != dp->rank) continue;
        int n = d->n - start < B ? d->n - start : B;
        for (int b = 0; b < n; b++) idx[b] = start + b;
        fill_batch(bb, d, idx, n, B);
        sum_loss += lra_model_forward(m, bb->tokens, bb->labels, bb->weight, B, 0, 0) * n;
        correct += count_correct(m, bb, n, C);
    }
    if (dp->size > 1) {
        double v[2] = {sum_loss, (double)correct};
        lra_dp_sum(dp, v, 2);
        sum_loss = v[0];
        correct = (long)v[1];
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

static void record_setup(lra_results *r, const lra_config *c, const lra_model *m,
                         const lra_task *task)
{
    char text[16384], when[32];
    lra_config_format(c, text, sizeof text);
    lra_utc_now(when, sizeof when);
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
    long first_step; /* steps already done when this process started (resume) */
} progress;

static void show_progress(const progress *pg, int step, int steps, double loss, double acc,
                          double ex_per_s)
{
    if (pg->quiet) return;
    long done = step - pg->first_step;
    double eta = done > 0 ? (lra_now() - pg->t0) / done * (steps - step) : 0.0;
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

/* ---- signals ------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int lra_train_stop_requested(void) { return stop_requested != 0; }

void lra_train_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- one run ------------------------------------------------------------------------- */

typedef struct run {
    const lra_config *cfg;
    const lra_train_opts *opts;
    const lra_task *task;
    lra_dataset split[LRA_N_SPLITS];
    lra_provenance prov;
    lra_model *m;
    lra_results *r;
    float *best;
    int *perm;
    batch_buf bb;
    lra_train_state st;
    int rejected; /* the plugin refused the shape */
    char ckpt[4200];
    char config_text[16384];
    progress pg;
    double win_t;
    uint64_t data_key;
    lra_dp dp;
    int shard_lo, shard_n; /* this rank's rows of every global batch (all of it: 0, batch) */
    int plan_b;            /* the batch the model is planned for: the largest shard */
    int stop_all;          /* data-parallel: some rank was asked to stop */
    double step_seconds;   /* time inside train_step in this process, */
    long timed_steps;      /* over this many steps */
} run;

static const char *const train_cols[] = {"step", "loss", "acc", "lr", "grad_norm", "seconds",
                                         "examples_per_s"};
static const char *const eval_cols[] = {"step", "loss", "acc", "seconds"};

static double run_seconds(const run *x) { return x->st.seconds + lra_now() - x->pg.t0; }

static int load_data(run *x, char *err, size_t errlen)
{
    const lra_config *cfg = x->cfg;
    if (lra_task_load(cfg, x->opts->input, x->opts->data_dir, x->split, &x->prov,
                      x->opts->quiet, err, errlen) != 0)
        return -1;
    const lra_dataset *s = x->split;
    if (s[0].n < 1 || s[1].n < 1 || s[2].n < 1) {
        snprintf(err, errlen, "task %s produced an empty split (train %d, val %d, test %d)",
                 cfg->task, s[0].n, s[1].n, s[2].n);
        return -1;
    }
    if (s[0].len != cfg->seq_len) {
        snprintf(err, errlen, "task %s produced documents of %d tokens, but seq_len is %d",
                 cfg->task, s[0].len, cfg->seq_len);
        return -1;
    }
    return 0;
}

static int setup(run *x, const lra_attention *attn, char *err, size_t errlen)
{
    const lra_config *cfg = x->cfg;
    /* Data-parallel ranks go after rank 0, which fills the dataset cache they then read. */
    if (x->dp.rank != 0) lra_dp_barrier(&x->dp);
    int loaded = load_data(x, err, errlen);
    if (x->dp.rank == 0) lra_dp_barrier(&x->dp);
    if (loaded != 0) return -1;
    lra_dp_shard(&x->dp, cfg->batch, &x->shard_lo, &x->shard_n);
    x->plan_b = (cfg->batch + x->dp.size - 1) / x->dp.size;
    const int B = x->plan_b;
    x->m = lra_model_create(cfg, attn, x->task->vocab, x->task->classes, x->task->docs,
                            &x->rejected, err, errlen);
    if (!x->m || lra_model_plan(x->m, B, err, errlen) != 0) return -1;
    const size_t row = (size_t)x->task->docs * cfg->seq_len, np = lra_model_n_params(x->m);
    x->bb.tokens = lra_alloc((size_t)B * row * sizeof(int32_t), "batch tokens");
    x->bb.labels = lra_alloc((size_t)B * sizeof(int32_t), "batch labels");
    x->bb.weight = lra_alloc((size_t)B * sizeof(float), "batch weights");
    x->perm = lra_alloc((size_t)x->split[0].n * sizeof(int), "training permutation");
    x->best = lra_alloc(np * sizeof(float), "best checkpoint");
    memcpy(x->best, lra_model_params(x->m), np * sizeof(float));
    x->st = (lra_train_state){.epoch = -1, .cursor = x->split[0].n, .best_val_acc = -1.0};
    x->data_key = lra_key((uint64_t)cfg->seed, 0xda7a);
    lra_config_format(cfg, x->config_text, sizeof x->config_text);
    if (x->opts->out) snprintf(x->ckpt, sizeof x->ckpt, "%s.ckpt", x->opts->out);
    return 0;
}

/* Continue from the checkpoint and the results written so far, when --resume finds them. */
static int try_resume(run *x, const char *group, int *resumed, char *err, size_t errlen)
{
    *resumed = 0;
    if (!x->opts->resume || !x->opts->out || access(x->ckpt, F_OK) != 0) return 0;
    if (lra_checkpoint_load(x->ckpt, x->m, x->best, &x->st, x->config_text, err, errlen) != 0)
        return -1;
    x->r = lra_results_load(x->opts->out, group, err, errlen);
    if (!x->r) return -1;
    if (x->st.epoch >= 0)
        shuffle(x->perm, x->split[0].n, lra_key(x->data_key, (uint64_t)x->st.epoch));
    lra_results_attr_str(x->r, "status", "running");
    lra_results_attr_num(x->r, "resumed_at_step", (double)x->st.step);
    *resumed = 1;
    return 0;
}

/* Data-parallel ranks start from rank 0's parameters, optimiser state and data position: those
 * of a fresh initialisation or of the checkpoint that only rank 0 reads. */
static void sync_from_rank0(run *x)
{
    if (x->dp.size < 2) return;
    const size_t np = lra_model_n_params(x->m), bytes = np * sizeof(float);
    lra_dp_bcast(&x->dp, lra_model_params(x->m), bytes);
    lra_dp_bcast(&x->dp, lra_model_adam_m(x->m), bytes);
    lra_dp_bcast(&x->dp, lra_model_adam_v(x->m), bytes);
    lra_dp_bcast(&x->dp, x->best, bytes);
    lra_dp_bcast(&x->dp, lra_model_state(x->m), lra_model_n_state(x->m) * sizeof(float));
    lra_dp_bcast(&x->dp, &x->st, sizeof x->st);
    if (x->dp.rank != 0 && x->st.epoch >= 0)
        shuffle(x->perm, x->split[0].n, lra_key(x->data_key, (uint64_t)x->st.epoch));
}

static void next_batch(run *x)
{
    const lra_dataset *train = &x->split[0];
    int idx[4096];
    LRA_ASSERT(x->cfg->batch <= 4096);
    for (int b = 0; b < x->cfg->batch; b++) {
        if (x->st.cursor == train->n) {
            shuffle(x->perm, train->n, lra_key(x->data_key, (uint64_t)++x->st.epoch));
            x->st.cursor = 0;
        }
        idx[b] = x->perm[x->st.cursor++];
    }
    fill_batch(&x->bb, train, idx + x->shard_lo, x->shard_n, x->shard_n);
}

/* One optimiser step. Returns the loss (non-finite: the run diverged, nothing was updated). */
static double train_step(run *x, double *lr, double *gnorm)
{
    const lra_config *cfg = x->cfg;
    lra_model *m = x->m;
    const size_t np = lra_model_n_params(m);
    float *grads = lra_model_grads(m);
    next_batch(x);
    memset(grads, 0, np * sizeof(float));
    lra_model_set_shard(m, x->shard_lo, cfg->batch);
    double loss = lra_model_forward(m, x->bb.tokens, x->bb.labels, NULL, x->shard_n, 1,
                                    (uint64_t)x->st.step);
    int ok = isfinite(loss) ? count_correct(m, &x->bb, x->shard_n, x->task->classes) : 0;
    if (x->dp.size > 1) {
        /* Global-batch mean loss (non-finite on every rank if on any), correct predictions,
         * and whether any rank was asked to stop: all ranks then decide alike. */
        double v[3] = {loss * x->shard_n, (double)ok, (double)stop_requested};
        lra_dp_sum(&x->dp, v, 3);
        loss = v[0] / cfg->batch;
        ok = (int)v[1];
        x->stop_all = v[2] > 0;
    }
    if (!isfinite(loss)) return loss;
    x->st.win_ok += ok;
    lra_model_backward(m);
    lra_dp_reduce_grads(&x->dp, grads, np, (float)x->shard_n / (float)cfg->batch);
    *gnorm = cfg->clip > 0 ? lra_clip_grad_norm(grads, np, cfg->clip) : lra_grad_norm(grads, np);
    *lr = lra_lr_at(cfg->schedule, cfg->lr, cfg->warmup, cfg->steps, x->st.step);
    optimizer_step(m, cfg, *lr, x->st.step + 1);
    x->st.step++;
    x->st.win_loss += loss * cfg->batch;
    x->st.win_n += cfg->batch;
    return loss;
}

static void log_window(run *x, double lr, double gnorm)
{
    double now = lra_now(), ex_s = x->st.win_n / (now - x->win_t);
    double vals[] = {(double)x->st.step, x->st.win_loss / x->st.win_n,
                     (double)x->st.win_ok / x->st.win_n, lr, gnorm, run_seconds(x), ex_s};
    if (x->r) lra_results_append(x->r, "train", 7, train_cols, vals);
    show_progress(&x->pg, (int)x->st.step, x->cfg->steps, vals[1], vals[2], ex_s);
    x->st.win_loss = 0.0;
    x->st.win_ok = x->st.win_n = 0;
    x->win_t = now;
}

static int save_progress(run *x, char *err, size_t errlen);

/* Validation pass; keeps the best parameters; writes results and the checkpoint. */
static int validate(run *x, char *err, size_t errlen)
{
    double vl, va;
    const size_t np = lra_model_n_params(x->m);
    evaluate(x->m, &x->split[1], &x->bb, x->plan_b, x->task->classes, &x->dp, &vl, &va);
    double vals[] = {(double)x->st.step, vl, va, run_seconds(x)};
    if (x->r) lra_results_append(x->r, "val", 4, eval_cols, vals);
    if (va > x->st.best_val_acc) {
        x->st.best_val_acc = va;
        x->st.best_step = x->st.step;
        x->st.evals_since_best = 0;
        memcpy(x->best, lra_model_params(x->m), np * sizeof(float));
    } else {
        x->st.evals_since_best++;
    }
    if (!x->opts->quiet) {
        end_progress_line(&x->pg);
        fprintf(stderr, "  validation at step %ld: loss %.4f, accuracy %.2f%%\n", x->st.step,
                vl, 100.0 * va);
    }
    return save_progress(x, err, errlen);
}

/* The checkpoint alone: parameters, best parameters, optimiser and data state, configuration. */
static int save_checkpoint(run *x, char *err, size_t errlen)
{
    if (!x->ckpt[0]) return 0;
    lra_train_state st = x->st;
    st.seconds = run_seconds(x);
    return lra_checkpoint_save(x->ckpt, x->m, x->best, &st, x->config_text, err, errlen);
}

static int save_progress(run *x, char *err, size_t errlen)
{
    if (flush_results(x->r, err, errlen) != 0) return -1;
    return save_checkpoint(x, err, errlen);
}

/* --keep-model: the finished run's checkpoint (its best parameters, which `lra approx
 * --checkpoint` reads, with the final optimiser state and configuration) becomes <out>.model.
 * A new name, so that --resume never mistakes a finished run for an interrupted one. */
static int keep_model(run *x, char *err, size_t errlen)
{
    char model[sizeof x->ckpt];
    snprintf(model, sizeof model, "%s.model", x->opts->out);
    if (save_checkpoint(x, err, errlen) != 0) return -1; /* the results were just flushed */
    if (rename(x->ckpt, model) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", x->ckpt, model, strerror(errno));
        return -1;
    }
    return 0;
}

/* Speed of the training steps alone (no evaluation, logging or checkpoints) and the share of
 * the gradient allreduce, for strong-scaling comparisons (results/README.md). */
static void record_scaling(run *x)
{
    const double n = x->timed_steps > 0 ? (double)x->timed_steps : NAN;
    lra_results_attr_num(x->r, "mpi_ranks", x->dp.size);
    lra_results_attr_num(x->r, "local_batch", x->plan_b);
    lra_results_attr_num(x->r, "timed_steps", (double)x->timed_steps);
    lra_results_attr_num(x->r, "steps_per_s", n / x->step_seconds);
    lra_results_attr_num(x->r, "allreduce_seconds_per_step", x->dp.allreduce_seconds / n);
    lra_results_attr_num(x->r, "allreduce_floats_per_step",
                         x->dp.size > 1 ? (double)lra_model_n_params(x->m) : 0.0);
}

static void record_end(run *x, const char *status)
{
    char when[32];
    lra_utc_now(when, sizeof when);
    lra_results_attr_str(x->r, "status", status);
    lra_results_attr_str(x->r, "end_time", when);
    lra_results_attr_num(x->r, "steps_done", (double)x->st.step);
    lra_results_attr_num(x->r, "train_seconds", run_seconds(x));
    lra_results_attr_num(x->r, "peak_rss_bytes", (double)lra_peak_rss());
    lra_results_attr_num(x->r, "activation_bytes", (double)lra_model_arena_bytes(x->m));
    record_scaling(x);
}

/* Test once, with the parameters that scored best on validation. */
static void finish(run *x, lra_train_result *res)
{
    const size_t np = lra_model_n_params(x->m);
    memcpy(lra_model_params(x->m), x->best, np * sizeof(float));
    evaluate(x->m, &x->split[2], &x->bb, x->plan_b, x->task->classes, &x->dp, &res->test_loss,
             &res->test_acc);
    res->status = LRA_RUN_FINISHED;
    if (!x->r) return;
    record_end(x, "finished");
    lra_results_attr_num(x->r, "test_acc", res->test_acc);
    lra_results_attr_num(x->r, "test_loss", res->test_loss);
    lra_results_attr_num(x->r, "best_val_acc", x->st.best_val_acc);
    lra_results_attr_num(x->r, "best_step", (double)x->st.best_step);
    double sum = 0.0; /* identifies the tested parameters: resume tests compare it */
    for (size_t i = 0; i < np; i++) sum += (double)x->best[i] * (double)((i % 7) + 1);
    lra_results_attr_num(x->r, "param_checksum", sum);
}

static void free_run(run *x)
{
    lra_results_free(x->r);
    lra_free(x->best);
    lra_free(x->perm);
    lra_free(x->bb.tokens);
    lra_free(x->bb.labels);
    lra_free(x->bb.weight);
    lra_model_free(x->m);
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&x->split[s]);
}

/* ", data-parallel over N MPI ranks (shards of B)" for the start line, or "". */
static const char *dp_note(const run *x)
{
    static char note[96];
    note[0] = 0;
    if (x->dp.size > 1)
        snprintf(note, sizeof note, " per rank, data-parallel over %d MPI ranks (shards of %d)",
                 x->dp.size, x->plan_b);
    return note;
}

int lra_train_run(const lra_config *cfg, const lra_train_opts *opts, lra_train_result *res,
                  char *err, size_t errlen)
{
    lra_dp dp;
    lra_dp_init(&dp);
    /* Only rank 0 writes results and checkpoints and talks; the others get its state. */
    lra_train_opts mine = *opts;
    if (dp.rank != 0) mine.out = NULL, mine.quiet = 1, mine.resume = 0;
    run x = {.cfg = cfg, .opts = &mine, .dp = dp};
    const lra_attention *attn = lra_attn_find(cfg->attn);
    memset(res, 0, sizeof *res);
    res->diverged_step = -1;
    res->status = LRA_RUN_FAILED;
    res->ranks = dp.size;
    opts = &mine;
    if (cfg->batch < dp.size) {
        snprintf(err, errlen, "batch %d is smaller than the %d MPI ranks: every rank needs at "
                 "least one example of each batch", cfg->batch, dp.size);
        return -1;
    }
    x.task = lra_task_find(cfg->task);
    if (!x.task) {
        snprintf(err, errlen, "unknown task '%s' (see 'lra list tasks')", cfg->task);
        return -1;
    }
    if (!attn) {
        snprintf(err, errlen, "unknown attention variant '%s' (see 'lra list attention')",
                 cfg->attn);
        return -1;
    }
    lra_set_threads(cfg->threads);
    int rc = -1, resumed = 0;
    char group[160];
    snprintf(group, sizeof group, "/%s/%s/seed%d", cfg->task, cfg->attn, cfg->seed);
    if (setup(&x, attn, err, errlen) != 0 || try_resume(&x, group, &resumed, err, errlen) != 0)
        goto out;
    sync_from_rank0(&x);
    if (opts->out && !resumed) {
        x.r = lra_results_create(opts->out, group);
        record_setup(x.r, cfg, x.m, x.task);
        record_data(x.r, x.split, &x.prov);
        if (flush_results(x.r, err, errlen) != 0) goto out;
    }
    if (!opts->quiet)
        fprintf(stderr, "lra train: task %s, attention %s, %zu parameters, %d steps of batch %d, "
                "%d threads%s%s\n", cfg->task, cfg->attn, lra_model_n_trainable(x.m), cfg->steps,
                cfg->batch, lra_threads(), dp_note(&x), resumed ? ", resumed from the checkpoint" : "");

    x.pg = (progress){.tty = isatty(2), .quiet = opts->quiet, .t0 = lra_now(),
                      .first_step = x.st.step};
    x.win_t = lra_now();
    double lr = 0.0, gnorm = 0.0;
    int early_stop = 0;
    while (x.st.step < cfg->steps) {
        double t0 = lra_now();
        double loss = train_step(&x, &lr, &gnorm);
        x.step_seconds += lra_now() - t0;
        x.timed_steps++;
        if (!isfinite(loss)) {
            res->status = LRA_RUN_DIVERGED;
            res->diverged_step = (int)x.st.step;
            break;
        }
        int last = x.st.step == cfg->steps;
        if (x.st.step % cfg->log_every == 0 || last) log_window(&x, lr, gnorm);
        if ((cfg->eval_every > 0 && x.st.step % cfg->eval_every == 0) || last) {
            if (validate(&x, err, errlen) != 0) goto out;
            if (cfg->patience > 0 && x.st.evals_since_best >= cfg->patience && !last) {
                early_stop = 1;
                break;
            }
        }
        if (x.dp.size > 1 ? x.stop_all : stop_requested) break;
    }
    end_progress_line(&x.pg);
    res->steps_done = (int)x.st.step;
    res->seconds = run_seconds(&x);
    res->best_val_acc = x.st.best_val_acc;
    res->best_step = (int)x.st.best_step;
    res->steps_per_s = x.timed_steps ? x.timed_steps / x.step_seconds : 0.0;
    res->allreduce_seconds_per_step = x.timed_steps ? x.dp.allreduce_seconds / x.timed_steps : 0;

    if (res->status == LRA_RUN_DIVERGED) {
        if (!opts->quiet)
            fprintf(stderr, "lra train: loss became non-finite at step %d; run recorded as "
                    "diverged\n", res->diverged_step);
        if (x.r) {
            record_end(&x, "diverged");
            lra_results_attr_num(x.r, "diverged_step", res->diverged_step);
        }
    } else if (early_stop) {
        if (!opts->quiet)
            fprintf(stderr, "lra train: no validation improvement in %d evaluations; stopping at "
                    "step %ld (best at step %ld)\n", cfg->patience, x.st.step, x.st.best_step);
        finish(&x, res);
        if (x.r) lra_results_attr_num(x.r, "stopped_early_at", (double)x.st.step);
    } else if (x.st.step < cfg->steps) {
        /* Stopped by a signal: keep everything so --resume continues from here. */
        res->status = LRA_RUN_INTERRUPTED;
        if (x.r) record_end(&x, "interrupted");
        if (save_progress(&x, err, errlen) != 0) goto out;
    } else {
        finish(&x, res);
    }
    if (flush_results(x.r, err, errlen) != 0) goto out;
    if (res->status == LRA_RUN_FINISHED && opts->keep_model && x.ckpt[0]) {
        if (keep_model(&x, err, errlen) != 0) goto out;
    } else if (res->status != LRA_RUN_INTERRUPTED && x.ckpt[0]) {
        unlink(x.ckpt);
    }
    rc = 0;
out:
    if (rc != 0 && x.rejected) {
        res->status = LRA_RUN_SKIPPED;
        rc = 0;
    }
    free_run(&x);
    return rc;
}
