/* platform.c — OpenBLAS core selection, and what the process runs on. */
#include "platform.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define LRA_X86 1
#endif

/* Declared here rather than taken from cblas.h: the netlib-style cblas.h a system build may pick
 * up lacks them, and the prototypes below match OpenBLAS's own. */
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);
extern int openblas_get_parallel(void);
extern void openblas_set_num_threads(int num_threads);

/* The core OpenBLAS chose at load time is already an AVX-512 one. */
static int blas_core_has_avx512(void)
{
    static const char *const fast[] = {"skylakex", "cooperlake", "sapphirerapids"};
    const char *core = openblas_get_corename();
    if (!core) return 0;
    for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++)
        if (strcasecmp(core, fast[i]) == 0) return 1;
    return 0;
}

/* The best OpenBLAS core type for this CPU, or NULL when OpenBLAS's own choice is fine. */
static const char *best_coretype(void)
{
#ifdef LRA_X86
    unsigned a, b, c, d;
    /* __builtin_cpu_supports also checks XCR0, i.e. that the OS saves the AVX-512 state. */
    if (!__builtin_cpu_supports("avx512f")) return NULL;
    /* AVX512-BF16: CPUID leaf 7, subleaf 1, EAX bit 5. */
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5))) return "Cooperlake";
    return "SkylakeX";
#else
    return NULL;
#endif
}

static int env_is_one(const char *name)
{
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

/* The OpenBLAS core type wanted, or NULL to keep what is loaded.
 * LRA_OPENBLAS_CORETYPE, when set, is the user's explicit choice and always wins. Otherwise lra
 * wants the best core the CPU supports: if the kernel OpenBLAS loaded is weaker, because it
 * misdetected the CPU or because the environment carries an OPENBLAS_CORETYPE naming an older
 * core (machine images here set Haswell), the best one replaces it. */
static const char *wanted_coretype(void)
{
    const char *forced = getenv("LRA_OPENBLAS_CORETYPE");
    const char *current = getenv("OPENBLAS_CORETYPE");
    if (forced && *forced) return current && strcasecmp(current, forced) == 0 ? NULL : forced;
    const char *best = best_coretype();
    return !best || blas_core_has_avx512() ? NULL : best;
}

/* How long an idle OpenMP thread spins before it sleeps. libgomp's default (300,000 spins, some
 * milliseconds) burns the time slices busy peers need whenever the machine has more runnable
 * threads than cores (two test processes at once, a shared node): a short training run took
 * 119 s with it and 4.6 s with passive waiting. But fully passive waiting makes every one of a
 * step's few hundred parallel regions wake its threads through the kernel (~1300 context
 * switches per step at linear attention, L 2048): a short bounded spin of 10,000 (well under a
 * millisecond) kept the oversubscription safety and measured 5-10 % more steps/s than passive
 * on short steps (results/perf-log.md). An explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT wins. */
#define LRA_SPINCOUNT "10000"
static int wants_spin_limit(void)
{
    return !getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT");
}

/* Sets what the libraries read at load time and re-executes once. The replaced core type is
 * kept in LRA_INHERITED_CORETYPE and reported by lra_blas_info(), so results say what happened.
 * LRA_NO_REEXEC=1 turns all of this off. */
void lra_platform_init(int argc, char **argv)
{
    if (env_is_one("LRA_REEXEC") || env_is_one("LRA_NO_REEXEC")) return;
    const char *core = wanted_coretype();
    int spin = wants_spin_limit();
    if (!core && !spin) return;
    const char *current = getenv("OPENBLAS_CORETYPE");
    if (core) {
        if (current) setenv("LRA_INHERITED_CORETYPE", current, 1);
        setenv("OPENBLAS_CORETYPE", core, 1);
    }
    if (spin) setenv("GOMP_SPINCOUNT", LRA_SPINCOUNT, 1);
    /* The guard survives the exec, so the new image never tries again. */
    setenv("LRA_REEXEC", "1", 1);
    char *fallback[] = {(char *)"/proc/self/exe", NULL};
    char **args = (argc > 0 && argv && argv[0]) ? argv : fallback;
    fflush(NULL);
    execv("/proc/self/exe", args);
    /* Exec failed (no /proc, say): run on with what is loaded, and say so in the environment
     * children inherit by undoing the changes. */
    unsetenv("LRA_REEXEC");
    if (spin) unsetenv("GOMP_SPINCOUNT");
    if (core) {
        unsetenv("LRA_INHERITED_CORETYPE");
        if (current) setenv("OPENBLAS_CORETYPE", current, 1);
        else unsetenv("OPENBLAS_CORETYPE");
    }
}

const char *lra_cpu_model(void)
{
    static char model[256];
    if (model[0]) return model;

    snprintf(model, sizeof model, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return model;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *colon = strchr(line, ':');
        if (!colon) continue;
        const char *s = colon + 1;
        while (*s == ' ' || *s == '\t') s++;
        size_t len = strcspn(s, "\n");
        if (len > 0) snprintf(model, sizeof model, "%.*s", (int)len, s);
        break;
    }
    fclose(f);
    return model;
}

static const char *parallel_name(int p)
{
    switch (p) {
    case 0: return "sequential";
    case 1: return "pthread";
    case 2: return "openmp";
    default: return "unknown";
    }
}

const char *lra_blas_info(void)
{
    static char info[256];
    /* The config string starts "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."; keep the name and version. */
    const char *config = openblas_get_config();
    char version[64] = "OpenBLAS";
    if (config) {
        char name[32], ver[32];
        if (sscanf(config, "%31s %31s", name, ver) == 2)
            snprintf(version, sizeof version, "%s %s", name, ver);
    }
    const char *core = openblas_get_corename();
    const char *inherited = getenv("LRA_INHERITED_CORETYPE");
    const char *wait = getenv("OMP_WAIT_POLICY"), *spins = getenv("GOMP_SPINCOUNT");
    snprintf(info, sizeof info,
             "%s core=%s parallel=%s%s%s%s; OpenMP wait policy %s, GOMP_SPINCOUNT %s", version,
             core ? core : "unknown", parallel_name(openblas_get_parallel()),
             inherited ? " (replaced inherited OPENBLAS_CORETYPE=" : "",
             inherited ? inherited : "", inherited ? ")" : "", wait ? wait : "default",
             spins ? spins : "default");
    return info;
}

int lra_threads(void) { return omp_get_max_threads(); }

void lra_set_threads(int n)
{
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

long long lra_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}
