/* h5_write.c — shared HDF5 attribute writers and the atomic commit of a written file. */
#include "h5_write.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void lra_h5_attr_str(hid_t loc, const char *name, const char *value, int *errors)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, &value) < 0) ++*errors;
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

void lra_h5_attr_num(hid_t loc, const char *name, double value, int *errors)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, &value) < 0) ++*errors;
    H5Aclose(a);
    H5Sclose(s);
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int lra_h5_commit(const char *tmp, const char *out)
{
    int rc = fsync_path(tmp, O_RDONLY);
    if (rc == 0) rc = rename(tmp, out);
    if (rc != 0) {
        unlink(tmp);
        return -1;
    }
    /* The rename survives a power cut only once the directory is synced; its failure cannot
     * undo the rename, so it is not an error. */
    char dir[4200];
    const char *slash = strrchr(out, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - out) + 1 : 1, slash ? out : ".");
    fsync_path(dir, O_RDONLY | O_DIRECTORY);
    return 0;
}
