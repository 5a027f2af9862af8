/* suite_mpi.h — spreading the cells of `lra suite` over MPI ranks (mpirun -np N lra suite ...).
 *
 * Dynamic load balancing with rank 0 as the dispatcher that also works: every rank asks rank 0
 * for the next cell index when it is free, so a rank that drew short runs simply takes more.
 * Rank 0 answers while its own child runs (lra_suite_mpi_idle, called from the child-wait
 * loop). Only the dispatcher's counter lives in memory; the state of the sweep lives in the
 * per-run results files, so a rerun after any death re-derives it (see cmd_suite.c).
 */
#ifndef LRA_SUITE_MPI_H
#define LRA_SUITE_MPI_H

#ifdef LRA_HAVE_MPI

/* Runs cells 0..total-1 over all ranks: run_cell(ctx, i) runs cell i and returns 1 when the
 * sweep must stop (interrupted). Returns 1 when this rank stopped. */
int lra_suite_mpi_run(int total, int (*run_cell)(void *ctx, int index), void *ctx);
/* Sums counts[0..n) over the ranks, in place, on every rank (napping while others finish). */
void lra_suite_mpi_sum(int *counts, int n);
/* Answers pending requests for work when this rank is the dispatcher; else does nothing. */
void lra_suite_mpi_idle(void);

#endif

#endif
