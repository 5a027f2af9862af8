/* optim.c — AdamW, deterministic global-norm clipping, learning-rate schedules. */
#include "optim.h"

#include <math.h>

#include "util.h"

/* Below this many elements a parallel region costs more than it saves. */
#define PAR_MIN ((size_t)1 << 15)

/* The norm is summed over fixed chunks whatever the thread count: each chunk's partial sum is
 * computed by one thread in one order, and the partials are added in chunk order. OpenMP's own
 * reduction combines per-thread sums, so its result would change with OMP_NUM_THREADS and break
 * run-to-run reproducibility across machines. */
#define NORM_CHUNK ((size_t)1 << 14)
/* Independent accumulators inside a chunk: shorter dependency chains, same fixed order. */
#define NORM_LANES 8

void lra_adamw_update(float *p, const float *g, float *m, float *v, size_t n, double lr,
                      double beta1, double beta2, double eps, double wd, long t)
{
    LRA_ASSERT(t >= 1);
    /* Scalars in double: beta2^t for t ~ 1e5 and 1 - beta2^t for small t lose digits in float. */
    const double bc1 = 1.0 - pow(beta1, (double)t);
    const double bc2 = 1.0 - pow(beta2, (double)t);
    const double b1c = 1.0 - beta1, b2c = 1.0 - beta2;
    const ptrdiff_t len = (ptrdiff_t)n;

#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (ptrdiff_t i = 0; i < len; i++) {
        const double gi = g[i];
        const double mi = beta1 * m[i] + b1c * gi;
        const double vi = beta2 * v[i] + b2c * gi * gi;
        m[i] = (float)mi;
        v[i] = (float)vi;
        const double step = (mi / bc1) / (sqrt(vi / bc2) + eps) + wd * (double)p[i];
        p[i] = (float)((double)p[i] - lr * step);
    }
}

static double chunk_sumsq(const float *g, size_t lo, size_t hi)
{
    double acc[NORM_LANES] = {0};
    size_t i = lo;
    for (; i + NORM_LANES <= hi; i += NORM_LANES)
        for (int k = 0; k < NORM_LANES; k++) acc[k] += (double)g[i + k] * (double)g[i + k];
    for (int k = 0; i < hi; i++, k++) acc[k] += (double)g[i] * (double)g[i];
    double s = 0;
    for (int k = 0; k < NORM_LANES; k++) s += acc[k];
    return s;
}

double lra_grad_norm(const float *g, size_t n)
{
    if (n == 0) return 0.0;
    const size_t nchunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    if (nchunks == 1) return sqrt(chunk_sumsq(g, 0, n));

    double *partial = lra_alloc(nchunks * sizeof *partial, "gradient-norm partial sums");
    const ptrdiff_t nc = (ptrdiff_t)nchunks;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t c = 0; c < nc; c++) {
        const size_t lo = (size_t)c * NORM_CHUNK;
        const size_t hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
        partial[c] = chunk_sumsq(g, lo, hi);
    }
    double s = 0;
    for (size_t c = 0; c < nchunks; c++) s += partial[c];
    lra_free(partial);
    return sqrt(s);
}

void lra_scale(float *g, size_t n, float s)
{
    const ptrdiff_t len = (ptrdiff_t)n;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (ptrdiff_t i = 0; i < len; i++) g[i] *= s;
}

double lra_clip_grad_norm(float *g, size_t n, double max_norm)
{
    const double norm = lra_grad_norm(g, n);
    /* max_norm <= 0 means clipping is off. A non-finite norm is left for the caller to see:
     * scaling by max_norm/inf would silently zero the gradient. */
    if (max_norm > 0 && isfinite(norm) && norm > max_norm)
        lra_scale(g, n, (float)(max_norm / norm));
    return norm;
}

/* ---- schedules ------------------------------------------------------------------------- */

/* min(1, t/w); a warmup of 0 (or less) means none. */
static double warmup_factor(double t, double w) { return w > 0 && t < w ? t / w : 1.0; }

/* LRA's rsqrt decay; max(t, w, 1) keeps t = 0 without warmup from dividing by zero. */
static double rsqrt_factor(double t, double w)
{
    const double d = fmax(fmax(t, w), 1.0);
    return 1.0 / sqrt(d);
}

/* LRA's cosine decay, restarting every T steps after warmup; T <= 0 means no decay. */
static double cosine_factor(double t, double w, double total)
{
    if (total <= 0) return 1.0;
    const double progress = fmod(fmax(0.0, t - w) / total, 1.0);
    return fmax(0.0, 0.5 * (1.0 + cos(M_PI * progress)));
}

/* Linear from 1 at the end of warmup to 0 at T, then 0. With T <= w there is no decay span: the
 * rate is full before T and 0 from T on. */
static double linear_factor(double t, double w, double total)
{
    const double span = total - w;
    if (span <= 0) return t < total ? 1.0 : 0.0;
    return fmin(1.0, fmax(0.0, 1.0 - fmax(0.0, t - w) / span));
}

double lra_lr_at(int schedule, double lr, long warmup, long total, long t)
{
    const double td = t > 0 ? (double)t : 0.0;
    const double w = (double)warmup, T = (double)total;
    const double warm = warmup_factor(td, w);
    switch (schedule) {
    case LRA_SCHED_CONSTANT: return lr * warm;
    case LRA_SCHED_RSQRT: return lr * warm * rsqrt_factor(td, w);
    case LRA_SCHED_COSINE: return lr * warm * cosine_factor(td, w, T);
    case LRA_SCHED_LINEAR: return lr * warm * linear_factor(td, w, T);
    default: LRA_ASSERT(!"unknown learning-rate schedule"); return 0;
    }
}
