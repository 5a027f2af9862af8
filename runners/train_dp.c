/* train_dp.c — the MPI side of data-parallel training (see train_dp.h). */
#include "train_dp.h"

#include <mpi.h>
#include <stdint.h>

#include "mpi_util.h"
#include "util.h"

/* MPI counts are ints: large buffers go in pieces. */
enum { CHUNK = 1 << 28 };

void lra_dp_init(lra_dp *dp)
{
    *dp = (lra_dp){.rank = lra_mpi_rank(), .size = lra_mpi_size()};
}

void lra_dp_sum(lra_dp *dp, double *v, int n)
{
    if (dp->size < 2) return;
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void lra_dp_reduce_grads(lra_dp *dp, float *g, size_t n, float scale)
{
    if (dp->size < 2) return;
    for (size_t i = 0; i < n; i++) g[i] *= scale;
    /* Blocking on purpose: the ranks arrive together (equal shards), and a napping wait would
     * add its nap to every step. The time includes waiting for the slowest rank. */
    double t0 = MPI_Wtime();
    for (size_t at = 0; at < n; at += CHUNK) {
        int count = (int)(n - at < CHUNK ? n - at : CHUNK);
        MPI_Allreduce(MPI_IN_PLACE, g + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    dp->allreduce_seconds += MPI_Wtime() - t0;
}

void lra_dp_bcast(lra_dp *dp, void *buf, size_t bytes)
{
    if (dp->size < 2) return;
    for (size_t at = 0; at < bytes; at += CHUNK) {
        int count = (int)(bytes - at < CHUNK ? bytes - at : CHUNK);
        MPI_Bcast((uint8_t *)buf + at, count, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
}

void lra_dp_barrier(lra_dp *dp)
{
    if (dp->size > 1) lra_mpi_barrier_gently();
}
