/* mpi_util.h — starting and stopping MPI, and the few helpers `lra suite` and `lra train` share.
 *
 * `lra` joins MPI only when an MPI launcher started it (mpirun, srun): a plain `lra train` never
 * calls MPI_Init, because Open MPI's singleton start forks a helper daemon and needs a network
 * interface, which a laptop or a sandbox may not have. Without LRA_HAVE_MPI (built with
 * -Dmpi=disabled, or MPI not installed) every function below is an inline stand-in for one
 * process, so callers need no #ifdef.
 */
#ifndef LRA_MPI_UTIL_H
#define LRA_MPI_UTIL_H

#ifdef LRA_HAVE_MPI

#include <mpi.h>

/* 1 when the environment says an MPI launcher started this process (Open MPI's mpirun, a PMIx
 * or PMI launcher such as srun --mpi=pmix). */
int lra_mpi_launched(void);
/* Calls MPI_Init_thread (funneled: only the main thread calls MPI, OpenMP threads do not) when
 * launched and not yet initialised. Returns the world size (1 when not launched). */
int lra_mpi_start(int *argc, char ***argv);
/* MPI_Finalize, if lra_mpi_start initialised MPI. */
void lra_mpi_stop(void);
int lra_mpi_rank(void); /* 0 when MPI is not running */
int lra_mpi_size(void); /* 1 when MPI is not running */
/* Removes every variable through which an MPI launcher hands its state to a process (OMPI_*,
 * PMIX_*, PMI_*, ...), so a child exec'd by a rank starts as a plain process, not as a second
 * copy of this rank. Call it in the child between fork() and exec(). */
void lra_mpi_scrub_child_env(void);
/* MPI_Wait that sleeps between tests instead of spinning: Open MPI's blocking calls poll at
 * full speed, and a rank that waits minutes for a peer (a sweep's dispatcher, a data-parallel
 * rank waiting while rank 0 generates the dataset) would take a core from the processes doing
 * the work. Not for the per-step gradient allreduce, where latency matters. */
void lra_mpi_wait_gently(MPI_Request *req);
/* MPI_Barrier over MPI_COMM_WORLD, waiting gently. */
void lra_mpi_barrier_gently(void);
/* Prints "lra: MESSAGE" on stderr and, when more than one rank runs, ends the whole job with
 * MPI_Abort: an error seen by one rank alone (a failed write on rank 0) must not leave the
 * others waiting forever in the next collective, whatever the launcher's policy. Otherwise
 * lra_die. Does not return. */
void lra_mpi_die(const char *message);

#else

static inline int lra_mpi_launched(void) { return 0; }
static inline int lra_mpi_start(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 1;
}
static inline void lra_mpi_stop(void) {}
static inline int lra_mpi_rank(void) { return 0; }
static inline int lra_mpi_size(void) { return 1; }
static inline void lra_mpi_scrub_child_env(void) {}
static inline void lra_mpi_barrier_gently(void) {}
#define lra_mpi_die(message) lra_die("%s", (message))

#endif

#endif
