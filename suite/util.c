/* util.c — assertion, fatal errors, aligned allocation, time. */
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void lra_assert_fail(const char *cond, const char *file, int line)
{
    fflush(stdout);
    fprintf(stderr, "lra: internal error at %s:%d: assertion '%s' failed (this is a bug)\n",
            file, line, cond);
    abort();
}

void lra_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("lra: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    va_start(ap, fmt);
    lra_report_error_file(fmt, ap);
    va_end(ap);
    exit(1);
}

void lra_report_error_file(const char *fmt, va_list ap)
{
    /* A parent process (lra suite) names a file through which it learns why a run failed. */
    const char *path = getenv("LRA_ERROR_FILE");
    FILE *f = path && *path ? fopen(path, "w") : NULL;
    if (!f) return;
    vfprintf(f, fmt, ap);
    fclose(f);
}

void *lra_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    if (posix_memalign(&p, 64, rounded) != 0 || !p)
        lra_die("out of memory allocating %.1f MiB for %s", (double)bytes / 1048576.0, what);
    memset(p, 0, rounded);
    return p;
}

void lra_free(void *p) { free(p); }

char *lra_fmt(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return buf;
}

double lra_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lra_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

void lra_utc_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}
