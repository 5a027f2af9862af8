/* platform.h — process set-up that users should never have to think about. */
#ifndef LRA_PLATFORM_H
#define LRA_PLATFORM_H

/* Call first in main(). OpenBLAS 0.3.21 detects AVX-512 Zen 4 CPUs as Haswell and picks its
 * AVX2 sgemm kernel (about 210 GFLOP/s on 2 cores here, against 380 with the AVX-512 kernel).
 * OpenBLAS reads OPENBLAS_CORETYPE once, when the library is loaded, before main() runs. So when
 * the CPU has AVX-512 and the user has not chosen a core type, this sets it (Cooperlake when the
 * CPU has AVX512-BF16, SkylakeX otherwise) and re-executes the program, once. It never overrides
 * a value the user set. */
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
