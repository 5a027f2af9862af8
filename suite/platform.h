/* platform.h — process set-up that users should never have to think about. */
#ifndef LRA_PLATFORM_H
#define LRA_PLATFORM_H

/* Call first in main(). On this machine OpenBLAS 0.3.21 runs its AVX2 "Haswell" sgemm (about
 * 210 GFLOP/s on 2 cores) instead of the AVX-512 kernel (about 390), because the environment
 * carries OPENBLAS_CORETYPE=Haswell (older OpenBLAS builds also misdetect AVX-512 Zen CPUs).
 * OpenBLAS reads the variable once, when the library loads, before main() runs. So when the
 * loaded kernel is weaker than the CPU supports, this sets OPENBLAS_CORETYPE to the best core
 * (Cooperlake with AVX512-BF16, else SkylakeX) and re-executes the program once.
 * LRA_OPENBLAS_CORETYPE=NAME forces a core type; LRA_NO_REEXEC=1 disables the mechanism.
 * The same re-exec sets GOMP_SPINCOUNT=10000 unless the user chose a wait policy: libgomp's
 * long default spin makes an oversubscribed machine (parallel tests, shared nodes) many times
 * slower, and fully passive waiting costs a kernel wake-up per parallel region. */
void lra_platform_init(int argc, char **argv);

/* What the process runs on, for results files: CPU model name, the OpenBLAS core type and
 * build ("openmp" or "pthread"), and thread counts. Strings are static. */
const char *lra_cpu_model(void);
const char *lra_blas_info(void);
int lra_threads(void);
/* Sets OpenMP and BLAS threads (n <= 0: keep the default, all cores). */
void lra_set_threads(int n);
/* Peak resident set size of this process in bytes (VmHWM). */
long long lra_peak_rss(void);

#endif
