/* source.h — read task inputs the same way whether they are a directory tree or an archive
 * (tar, tar.gz, tar.xz, zip: whatever libarchive reads), without unpacking; read lines with
 * their numbers so that errors can name file and line; hash inputs for provenance. */
#ifndef LRA_SOURCE_H
#define LRA_SOURCE_H

#include <stddef.h>

/* Called once per regular file. `path` is relative to the root ("aclImdb/train/pos/0_9.txt").
 * Return 0 to go on, non-zero to stop (the value is passed back by lra_source_foreach). */
typedef int (*lra_entry_fn)(void *ctx, const char *path, const unsigned char *data, size_t size,
                            char *err, size_t errlen);

/* Calls fn for every regular file under root whose path ends with `suffix` (NULL: all files).
 * A directory is walked in sorted path order, an archive in its own order; both orders are
 * deterministic. Entries larger than max_size are an error naming them. Returns 0, the first
 * non-zero value fn returned, or -1 with a message naming root (and the entry). */
int lra_source_foreach(const char *root, const char *suffix, size_t max_size, lra_entry_fn fn,
                       void *ctx, char *err, size_t errlen);

int lra_is_dir(const char *path);
int lra_is_file(const char *path);

/* Reads a whole file (at most max bytes, else an error). Free with free(). */
unsigned char *lra_read_file(const char *path, size_t *size, size_t max, char *err,
                             size_t errlen);

/* Lines of a memory buffer, numbered from 1, without their "\n" or "\r\n". */
typedef struct lra_lines {
    const char *p, *end;
    long lineno;
} lra_lines;
void lra_lines_init(lra_lines *l, const char *data, size_t size);
/* Sets *line and returns its length, or -1 at the end. */
long lra_lines_next(lra_lines *l, const char **line);

/* SHA-256 as 64 hex digits. */
void lra_sha256(const void *data, size_t n, char hex[65]);
/* Of a whole file, streamed. Returns 0, or -1 with a message. */
int lra_sha256_file(const char *path, char hex[65], char *err, size_t errlen);

#endif
