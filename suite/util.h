/* util.h — errors in three tiers, and allocation.
 *
 * 1. Invariants: LRA_ASSERT is always on; it prints file:line and the failed condition, then
 *    aborts. A failure is a bug in the suite.
 * 2. Environment failures (files, memory, HDF5): lra_die() prints the context and exits with
 *    status 1. The message names what failed and, where possible, what to do about it.
 * 3. Legitimate rejections (bad options, bad input data): functions return a negative code and
 *    write a message into a caller buffer; the runner decides whether to stop or skip.
 */
#ifndef LRA_UTIL_H
#define LRA_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__)
#define LRA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LRA_NORETURN __attribute__((noreturn))
#else
#define LRA_PRINTF(a, b)
#define LRA_NORETURN
#endif

#define LRA_ASSERT(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) lra_assert_fail(#cond, __FILE__, __LINE__);                           \
    } while (0)

LRA_NORETURN void lra_assert_fail(const char *cond, const char *file, int line);
LRA_NORETURN LRA_PRINTF(1, 2) void lra_die(const char *fmt, ...);
/* Writes the message to the file named by $LRA_ERROR_FILE, if set (lra_die does this too). */
void lra_report_error_file(const char *fmt, va_list ap);

/* Allocation that dies with a message naming the purpose and size. Memory is zeroed and
 * 64-byte aligned (cache lines, AVX-512 loads). Free with lra_free. */
void *lra_alloc(size_t bytes, const char *what);
void lra_free(void *p);

/* snprintf into a fixed buffer; returns the buffer. */
LRA_PRINTF(3, 4) char *lra_fmt(char *buf, size_t n, const char *fmt, ...);

/* Creates a directory and its missing parents (mode 0755); 0, or -1 with errno set. */
int lra_mkdirs(const char *path);

/* The current UTC time as ISO 8601, "2026-11-22T21:04:00Z". */
void lra_utc_now(char *buf, size_t n);

/* Monotonic wall time in seconds. */
double lra_now(void);

#endif
