/* train.h — one training run: data, model, optimiser, evaluation, results file. */
#ifndef LRA_TRAIN_H
#define LRA_TRAIN_H

#include <stddef.h>

#include "config.h"

typedef enum {
    LRA_RUN_FINISHED,
    LRA_RUN_DIVERGED,
    LRA_RUN_INTERRUPTED, /* SIGINT or SIGTERM: checkpoint and results kept for --resume */
    LRA_RUN_SKIPPED,     /* the variant's init() rejects this shape; err says why */
    LRA_RUN_FAILED,
} lra_run_status;

typedef struct lra_train_opts {
    const char *out;      /* HDF5 results file, or NULL */
    const char *data_dir; /* data root (--data-dir), or NULL for LRA_DATA / ../shared/data */
    const char *input;    /* explicit task input (file, directory, archive), or NULL */
    int quiet;            /* no progress output */
    int resume;           /* continue from <out>.ckpt when it exists */
    int keep_model;       /* a finished run keeps its checkpoint as <out>.model */
} lra_train_opts;

typedef struct lra_train_result {
    lra_run_status status;
    int steps_done;
    int diverged_step;   /* first step with a non-finite loss, or -1 */
    double best_val_acc; /* validation accuracy of the kept checkpoint */
    int best_step;
    double test_acc, test_loss;
    double seconds;      /* wall time of the training loop */
    int ranks;           /* MPI ranks that trained the run data-parallel (1: none) */
    double steps_per_s;  /* training steps alone, in this process (no evaluation) */
    double allreduce_seconds_per_step; /* gradient allreduce (0 with one rank) */
} lra_train_result;

/* Runs cfg to the end. With opts->out, results are flushed and a checkpoint <out>.ckpt is
 * written at every validation; the checkpoint is removed when the run ends. Returns 0 when the
 * run finished, diverged, was interrupted or was skipped (see res->status; err holds the reason
 * for a skip), or -1
 * with a message when it could not run (unknown task or variant, bad data, rejected shape,
 * unwritable results file). */
int lra_train_run(const lra_config *cfg, const lra_train_opts *opts, lra_train_result *res,
                  char *err, size_t errlen);

/* Installs SIGINT/SIGTERM handlers that make the running training loop stop after the current
 * step, write its checkpoint and results, and return LRA_RUN_INTERRUPTED. */
void lra_train_catch_signals(void);
int lra_train_stop_requested(void);

#endif
