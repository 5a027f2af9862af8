/* h5_write.h — the small HDF5 writers shared by the files `lra approx` and `lra bench` write
 * themselves (run files go through suite/results.c instead).
 *
 * Scalar attributes count their failures in *errors instead of stopping, so that a file is
 * written whole and then either committed or dropped as a unit: lra_h5_commit() moves a
 * finished "<out>.tmp" over <out> with the same protocol as results.c (fsync, rename, fsync of
 * the directory), so <out> is always the previous complete file or the new one.
 */
#ifndef LRA_H5_WRITE_H
#define LRA_H5_WRITE_H

#include <hdf5.h>

/* A variable-length UTF-8 string attribute (h5py reads it as str, as in run files). */
void lra_h5_attr_str(hid_t loc, const char *name, const char *value, int *errors);
/* A float64 attribute. */
void lra_h5_attr_num(hid_t loc, const char *name, double value, int *errors);
/* Syncs tmp, renames it over out and syncs out's directory. Returns 0, or -1 with tmp removed
 * and out untouched. */
int lra_h5_commit(const char *tmp, const char *out);

#endif
