/* suite_mpi.c — the dispatcher and the workers of a distributed `lra suite` (see suite_mpi.h).
 *
 * Protocol (point-to-point, MPI_COMM_WORLD): a free worker sends ASK_WORK to rank 0 and gets a
 * cell index back, or -1 when nothing is left; a worker that was interrupted sends
 * ASK_STOPPING, after which rank 0 hands out no more cells, so the whole sweep stops as a
 * single-process sweep does on Ctrl-C. Rank 0 runs cells itself and answers between naps while
 * its child trains. Every cell is handed out once per invocation, so a run that fails is not
 * retried by another rank within the same invocation (the single-process rule).
 *
 * Idle waits nap instead of spinning (lra_mpi_wait_gently): Open MPI's blocking receive polls
 * at full speed and would steal a core from the training children.
 */
#include "suite_mpi.h"

#include <mpi.h>
#include <time.h>

#include "mpi_util.h"
#include "util.h"

enum { TAG_ASK = 7101, TAG_CELL = 7102 };
enum { ASK_WORK = 0, ASK_STOPPING = 1 };

static struct dispatcher {
    int active, total, next, stop, workers_done;
} disp;

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Answers every request that has arrived; never blocks. */
static void serve(void)
{
    for (;;) {
        int flag = 0, msg = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_ASK, MPI_COMM_WORLD, &flag, &st);
        if (!flag) return;
        MPI_Recv(&msg, 1, MPI_INT, st.MPI_SOURCE, TAG_ASK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (msg == ASK_STOPPING) {
            disp.stop = 1;
            disp.workers_done++;
            continue;
        }
        int idx = !disp.stop && disp.next < disp.total ? disp.next++ : -1;
        /* One int goes eagerly: MPI_Send returns without waiting for the worker. */
        MPI_Send(&idx, 1, MPI_INT, st.MPI_SOURCE, TAG_CELL, MPI_COMM_WORLD);
        if (idx < 0) disp.workers_done++;
    }
}

void lra_suite_mpi_idle(void)
{
    if (disp.active) serve();
}

static int dispatch_and_work(int total, int (*run_cell)(void *, int), void *ctx, int size)
{
    int stopped = 0;
    disp = (struct dispatcher){.active = 1, .total = total};
    while (!stopped) {
        serve();
        if (disp.stop || disp.next >= total) break;
        stopped = run_cell(ctx, disp.next++);
        if (stopped) disp.stop = 1;
    }
    while (disp.workers_done < size - 1) { /* the others finish their last cells */
        serve();
        nap_ms(10);
    }
    disp.active = 0;
    return stopped;
}

static int work(int (*run_cell)(void *, int), void *ctx)
{
    int stopped = 0;
    for (;;) {
        int ask = stopped ? ASK_STOPPING : ASK_WORK, idx = -1;
        MPI_Send(&ask, 1, MPI_INT, 0, TAG_ASK, MPI_COMM_WORLD);
        if (stopped) break;
        MPI_Request req;
        MPI_Irecv(&idx, 1, MPI_INT, 0, TAG_CELL, MPI_COMM_WORLD, &req);
        lra_mpi_wait_gently(&req);
        if (idx < 0) break;
        stopped = run_cell(ctx, idx);
    }
    return stopped;
}

int lra_suite_mpi_run(int total, int (*run_cell)(void *ctx, int index), void *ctx)
{
    return lra_mpi_rank() == 0 ? dispatch_and_work(total, run_cell, ctx, lra_mpi_size())
                               : work(run_cell, ctx);
}

void lra_suite_mpi_sum(int *counts, int n)
{
    MPI_Request req;
    MPI_Iallreduce(MPI_IN_PLACE, counts, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &req);
    lra_mpi_wait_gently(&req);
}
