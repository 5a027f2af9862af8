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

/* Policy. LRA_OPENBLAS_CORETYPE, when set, is the user's explicit choice and always wins.
 * Otherwise lra wants the best core the CPU supports: if the kernel OpenBLAS loaded is weaker,
 * because it misdetected the CPU or because the environment carries an OPENBLAS_CORETYPE naming
 * an older core (machine images here set Haswell), lra sets the best one and re-executes once.
 * The replaced value is kept in LRA_INHERITED_CORETYPE and reported by lra_blas_info(), so
 * results say what happened. LRA_NO_REEXEC=1 turns all of this off. */
void lra_platform_init(int argc, char **argv)
{
    if (env_is_one("LRA_REEXEC") || env_is_one("LRA_NO_REEXEC")) return;
    const char *forced = getenv("LRA_OPENBLAS_CORETYPE");
    const char *current = getenv("OPENBLAS_CORETYPE");
    const char *want;
    if (forced && *forced) {
        if (current && strcasecmp(current, forced) == 0) return;
        want = forced;
    } else {
        want = best_coretype();
        if (!want || blas_core_has_avx512()) return;
    }
    char inherited[64] = "";
    if (current) snprintf(inherited, sizeof inherited, "%s", current);
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
    if (current && setenv("LRA_INHERITED_CORETYPE", inherited, 1) != 0) goto restore;
    /* The guard survives the exec, so the new image never tries again even if OpenBLAS ignores
     * the variable. */
    if (setenv("LRA_REEXEC", "1", 1) != 0) goto restore;

    char *fallback[] = {(char *)"/proc/self/exe", NULL};
    char **args = (argc > 0 && argv && argv[0]) ? argv : fallback;
    fflush(NULL);
    execv("/proc/self/exe", args);

    /* Exec failed (no /proc, say): run on with the kernel already loaded, and leave the
     * environment as it was, so that child processes inherit what this process really uses. */
    unsetenv("LRA_REEXEC");
restore:
    unsetenv("LRA_INHERITED_CORETYPE");
    if (current)
        setenv("OPENBLAS_CORETYPE", inherited, 1);
    else
        unsetenv("OPENBLAS_CORETYPE");
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
    snprintf(info, sizeof info, "%s core=%s parallel=%s%s%s%s", version,
             core ? core : "unknown", parallel_name(openblas_get_parallel()),
             inherited ? " (replaced inherited OPENBLAS_CORETYPE=" : "",
             inherited ? inherited : "", inherited ? ")" : "");
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
