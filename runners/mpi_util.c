/* mpi_util.c — joining MPI when a launcher started us, and leaving it (see mpi_util.h). */
#include "mpi_util.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "util.h"

extern char **environ;

static int we_initialised;

int lra_mpi_launched(void)
{
    /* Open MPI's mpirun; PMIx launchers (Open MPI 5, srun --mpi=pmix); PMI-1/2 launchers (srun
     * --mpi=pmi2, MPICH's hydra). */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int lra_mpi_start(int *argc, char ***argv)
{
    int up = 0, down = 0;
    MPI_Finalized(&down);
    if (down) return 1;
    MPI_Initialized(&up);
    if (!up) {
        if (!lra_mpi_launched()) return 1;
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            lra_die("MPI_Init_thread failed");
        we_initialised = 1;
    }
    return lra_mpi_size();
}

void lra_mpi_stop(void)
{
    int down = 0;
    MPI_Finalized(&down);
    if (we_initialised && !down) MPI_Finalize();
}

static int running(void)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    return up && !down;
}

int lra_mpi_rank(void)
{
    int r = 0;
    if (running()) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int lra_mpi_size(void)
{
    int n = 1;
    if (running()) MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

void lra_mpi_scrub_child_env(void)
{
    /* OMPI_ALLOW_RUN_AS_ROOT* are the user's, not the launcher's: keeping them is harmless. */
    static const char *const prefixes[] = {"OMPI_", "PMIX_", "PMI_", "OPAL_", "ORTE_", "PRTE_"};
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; e && *e; e++) {
            int hit = 0;
            for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++)
                hit |= strncmp(*e, prefixes[p], strlen(prefixes[p])) == 0;
            if (!hit || strncmp(*e, "OMPI_ALLOW_RUN_AS_ROOT", 22) == 0) continue;
            char name[256];
            size_t n = strcspn(*e, "=");
            if (n >= sizeof name) continue;
            memcpy(name, *e, n);
            name[n] = 0;
            unsetenv(name); /* changes environ: start the scan again */
            again = 1;
            break;
        }
    }
}

void lra_mpi_wait_gently(MPI_Request *req)
{
    /* Test at once for a while (answers within microseconds stay fast), then back off to 2 ms
     * naps: one wake-up every 2 ms costs nothing measurable. */
    int done = 0;
    long naps = 0;
    for (;;) {
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done) return;
        long ns = naps < 50 ? 20000 : naps < 500 ? 200000 : 2000000;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
        naps++;
    }
}

void lra_mpi_barrier_gently(void)
{
    if (lra_mpi_size() < 2) return;
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    lra_mpi_wait_gently(&req);
}

void lra_mpi_die(const char *message)
{
    if (lra_mpi_size() < 2) lra_die("%s", message);
    fprintf(stderr, "lra: %s (rank %d; aborting the other ranks)\n", message, lra_mpi_rank());
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, LRA_EXIT_FAIL);
    exit(LRA_EXIT_FAIL); /* not reached */
}
