/* results.h — one HDF5 results file per run, written so that a crash never loses what was
 * already recorded.
 *
 * A run is kept in memory (attributes and append-only tables of float64 columns) and every
 * lra_results_flush() writes the whole run to "<path>.tmp", fsyncs it and renames it over
 * <path>. rename() is atomic, so after a SIGKILL at any moment <path> is either the previous
 * complete file or the new complete file, never a torn one. Runs are small (curves of at most a
 * few thousand rows), so rewriting is cheap. Different runs write different files, so concurrent
 * processes never share a file.
 *
 * Layout inside the file: one group (e.g. "/synthetic/softmax/seed1") holding the attributes as
 * HDF5 attributes (strings and float64 scalars) and each table as a group of 1-D float64
 * datasets, one per column, all of the same length.
 */
#ifndef LRA_RESULTS_H
#define LRA_RESULTS_H

#include <stddef.h>

typedef struct lra_results lra_results;

/* Starts a run to be written to `path` under `group`. Nothing touches the disk until the first
 * flush. */
lra_results *lra_results_create(const char *path, const char *group);
void lra_results_attr_str(lra_results *r, const char *name, const char *value);
void lra_results_attr_num(lra_results *r, const char *name, double value);
/* Appends one row to table `table` (created on first use with these column names; later calls
 * must pass the same columns in the same order). */
void lra_results_append(lra_results *r, const char *table, int ncols, const char *const *cols,
                        const double *vals);
/* Writes the run atomically. Returns 0, or -1 with a message naming the file. */
int lra_results_flush(lra_results *r, char *err, size_t errlen);
void lra_results_free(lra_results *r);

/* Reads back a run written by lra_results_flush (to resume it, or to report on it). Returns
 * NULL with a message when the file or the group is missing or malformed. */
lra_results *lra_results_load(const char *path, const char *group, char *err, size_t errlen);
/* Attribute values of an in-memory run: NULL / -1 when absent or of the other kind. */
const char *lra_results_get_str(const lra_results *r, const char *name);
int lra_results_get_num(const lra_results *r, const char *name, double *value);

#endif
