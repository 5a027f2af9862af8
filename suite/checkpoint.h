/* checkpoint.h — everything a training run needs to continue exactly where it stopped.
 *
 * A checkpoint holds the parameters, both Adam moments, the attention plugins' persistent
 * state, the best-validation parameters, and the loop state (steps done, data position, the
 * partial logging window). Random draws are counter-based (keyed by seed and step), so no
 * generator state needs saving: a resumed run draws exactly what the uninterrupted run would
 * have. The configuration text is stored too, and a resume with a different configuration is
 * refused. Written to a temporary name, synced and renamed, like results files.
 */
#ifndef LRA_CHECKPOINT_H
#define LRA_CHECKPOINT_H

#include <stddef.h>

#include "model.h"

typedef struct lra_train_state {
    long step;            /* optimiser steps completed */
    long epoch, cursor;   /* data position: epoch of the current permutation, next index */
    double win_loss;      /* partial logging window: summed loss, */
    long win_ok, win_n;   /* correct predictions and examples since the last log line */
    double best_val_acc;  /* the kept checkpoint */
    long best_step;
    long evals_since_best; /* early-stopping counter */
    double seconds;       /* training time spent before this process */
} lra_train_state;

int lra_checkpoint_save(const char *path, lra_model *m, const float *best,
                        const lra_train_state *st, const char *config_text, char *err,
                        size_t errlen);
/* Restores into a model built from the same configuration. */
int lra_checkpoint_load(const char *path, lra_model *m, float *best, lra_train_state *st,
                        const char *config_text, char *err, size_t errlen);

#endif
