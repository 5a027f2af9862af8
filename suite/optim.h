/* optim.h — AdamW, global-norm clipping and learning-rate schedules. */
#ifndef LRA_OPTIM_H
#define LRA_OPTIM_H

#include <stddef.h>

#include "config.h"

/* One AdamW step on n floats (Loshchilov & Hutter): m and v are the moment buffers, t the step
 * number starting at 1 (bias correction). Decay is decoupled and scaled by the learning rate:
 * p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p). Pass wd = 0 for biases and LayerNorm. */
void lra_adamw_update(float *p, const float *g, float *m, float *v, size_t n, double lr,
                      double beta1, double beta2, double eps, double wd, long t);

/* Euclidean norm of g (n floats), accumulated in double in a fixed order. */
double lra_grad_norm(const float *g, size_t n);
/* g *= s. */
void lra_scale(float *g, size_t n, float s);
/* Scales g so that its norm is at most max_norm; returns the norm before clipping. */
double lra_clip_grad_norm(float *g, size_t n, double max_norm);

/* Learning rate at step t (from 0) for base rate lr, warmup w and total steps T:
 * constant: lr * min(1, t/w); rsqrt: lr * min(1, t/w) / sqrt(max(t, w)) (LRA text tasks);
 * cosine: lr * min(1, t/w) * 0.5 * (1 + cos(pi * ((t - w)^+ / T mod 1))) (LRA image tasks);
 * linear: lr * min(1, t/w) * (1 - (t - w)^+ / (T - w)). A warmup of 0 means none. */
double lra_lr_at(int schedule, double lr, long warmup, long total, long t);

#endif
