/* train_dp.h — data-parallel training of one run over MPI ranks (mpirun -np N lra train ...).
 *
 * Every rank holds the whole model and the whole dataset and draws the same seeded sample
 * order; each takes a contiguous shard of every global batch (lra_dp_shard) and tells the model
 * where it lies (lra_model_set_shard), so dropout and the attention plugins' per-slice draws
 * are those of one process over the whole batch. The model's loss on a shard is the mean over
 * the shard's n_r rows, so the gradient of the global-batch mean is sum_r (n_r / B) g_r: each
 * rank scales its gradient by n_r / B and an MPI_Allreduce sums them
 * (lra_dp_reduce_grads). Every rank then applies the same clipping and AdamW update to the same
 * gradient, so parameters stay identical without being exchanged again. Scalars (loss,
 * correct predictions, a stop request) travel in one small allreduce per step (lra_dp_sum).
 *
 * Without LRA_HAVE_MPI the functions are inline single-process stand-ins (rank 0 of 1).
 */
#ifndef LRA_TRAIN_DP_H
#define LRA_TRAIN_DP_H

#include <stddef.h>

typedef struct lra_dp {
    int rank, size;
    double allreduce_seconds; /* wall time in the gradient allreduce, this process */
} lra_dp;

/* Rows [*lo, *lo + *n) of a global batch of B rows belong to this rank: contiguous shards whose
 * sizes differ by at most one. */
static inline void lra_dp_shard(const lra_dp *dp, int B, int *lo, int *n)
{
    long a = (long)B * dp->rank / dp->size, b = (long)B * (dp->rank + 1) / dp->size;
    *lo = (int)a;
    *n = (int)(b - a);
}

#ifdef LRA_HAVE_MPI

/* This process's rank and the world size (0 of 1 when MPI is not running). */
void lra_dp_init(lra_dp *dp);
/* Sums v[0..n) over the ranks, in place, on every rank. */
void lra_dp_sum(lra_dp *dp, double *v, int n);
/* g[0..n) *= scale, then sums g over the ranks in place (timed into allreduce_seconds). */
void lra_dp_reduce_grads(lra_dp *dp, float *g, size_t n, float scale);
/* Copies rank 0's bytes to every rank. */
void lra_dp_bcast(lra_dp *dp, void *buf, size_t bytes);
/* Waits for every rank, napping instead of spinning. */
void lra_dp_barrier(lra_dp *dp);

#else

static inline void lra_dp_init(lra_dp *dp) { *dp = (lra_dp){.rank = 0, .size = 1}; }
static inline void lra_dp_sum(lra_dp *dp, double *v, int n)
{
    (void)dp, (void)v, (void)n;
}
static inline void lra_dp_reduce_grads(lra_dp *dp, float *g, size_t n, float scale)
{
    (void)dp, (void)g, (void)n, (void)scale;
}
static inline void lra_dp_bcast(lra_dp *dp, void *buf, size_t bytes)
{
    (void)dp, (void)buf, (void)bytes;
}
static inline void lra_dp_barrier(lra_dp *dp) { (void)dp; }

#endif

#endif
