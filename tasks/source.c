/* source.c — directory-or-archive iteration, whole-file reads, lines, SHA-256. */
#include "source.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int lra_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int lra_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_suffix(const char *s, const char *suffix)
{
    if (!suffix) return 1;
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

unsigned char *lra_read_file(const char *path, size_t *size, size_t max, char *err,
                             size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (size_t)st.st_size > max) {
        snprintf(err, errlen, "%s: larger than the %zu bytes accepted", path, max);
        fclose(f);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)st.st_size) {
        snprintf(err, errlen, "cannot read %s", path);
        free(buf);
        return NULL;
    }
    buf[got] = 0;
    *size = got;
    return buf;
}

/* ---- directories ---------------------------------------------------------------------- */

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int walk_dir(const char *root, const char *rel, const char *suffix, size_t max_size,
                    lra_entry_fn fn, void *ctx, char *err, size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0) {
        snprintf(err, errlen, "cannot read directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (rc == 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            char sub[4096], full[8192];
            snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", name);
            snprintf(full, sizeof full, "%s/%s", root, sub);
            if (lra_is_dir(full)) {
                rc = walk_dir(root, sub, suffix, max_size, fn, ctx, err, errlen);
            } else if (lra_is_file(full) && has_suffix(sub, suffix)) {
                size_t size = 0;
                unsigned char *data = lra_read_file(full, &size, max_size, err, errlen);
                rc = data ? fn(ctx, sub, data, size, err, errlen) : -1;
                free(data);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* ---- archives ------------------------------------------------------------------------- */

static int walk_archive(const char *path, const char *suffix, size_t max_size, lra_entry_fn fn,
                        void *ctx, char *err, size_t errlen)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: not a readable archive: %s", path, archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    int rc = 0;
    unsigned char *buf = NULL;
    size_t cap = 0;
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            snprintf(err, errlen, "%s: corrupt or truncated archive: %s", path,
                     archive_error_string(a));
            rc = -1;
            break;
        }
        const char *name = archive_entry_pathname(e);
        if (archive_entry_filetype(e) != AE_IFREG || !name || !has_suffix(name, suffix))
            continue;
        int64_t size = archive_entry_size(e);
        if (size < 0 || (uint64_t)size > max_size) {
            snprintf(err, errlen, "%s: entry %s is larger than the %zu bytes accepted", path,
                     name, max_size);
            rc = -1;
            break;
        }
        if ((size_t)size + 1 > cap) {
            cap = (size_t)size + 1;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory reading %s", path, name);
                rc = -1;
                break;
            }
            buf = nb;
        }
        la_ssize_t got = archive_read_data(a, buf, (size_t)size);
        if (got != size) {
            snprintf(err, errlen, "%s: entry %s is truncated or corrupt: %s", path, name,
                     got < 0 ? archive_error_string(a) : "short read");
            rc = -1;
            break;
        }
        buf[size] = 0;
        if ((rc = fn(ctx, name, buf, (size_t)size, err, errlen)) != 0) break;
    }
    free(buf);
    archive_read_free(a);
    return rc;
}

int lra_source_foreach(const char *root, const char *suffix, size_t max_size, lra_entry_fn fn,
                       void *ctx, char *err, size_t errlen)
{
    if (lra_is_dir(root)) return walk_dir(root, "", suffix, max_size, fn, ctx, err, errlen);
    if (lra_is_file(root)) return walk_archive(root, suffix, max_size, fn, ctx, err, errlen);
    snprintf(err, errlen, "%s does not exist (expected a directory or an archive)", root);
    return -1;
}

/* ---- lines ---------------------------------------------------------------------------- */

void lra_lines_init(lra_lines *l, const char *data, size_t size)
{
    l->p = data;
    l->end = data + size;
    l->lineno = 0;
}

long lra_lines_next(lra_lines *l, const char **line)
{
    if (l->p >= l->end) return -1;
    const char *s = l->p, *nl = memchr(s, '\n', (size_t)(l->end - s));
    const char *e = nl ? nl : l->end;
    l->p = nl ? nl + 1 : l->end;
    if (e > s && e[-1] == '\r') e--;
    l->lineno++;
    *line = s;
    return (long)(e - s);
}

/* ---- SHA-256 (FIPS 180-4) -------------------------------------------------------------- */

typedef struct sha256 {
    uint32_t h[8];
    uint64_t bytes;
    unsigned char block[64];
    size_t fill;
} sha256;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha_block(sha256 *s, const unsigned char *p)
{
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, s->h, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i];
        uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof v[0]);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) s->h[i] += v[i];
}

static void sha_init(sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->bytes = 0;
    s->fill = 0;
}

static void sha_update(sha256 *s, const unsigned char *p, size_t n)
{
    s->bytes += n;
    while (n) {
        size_t take = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->block + s->fill, p, take);
        s->fill += take;
        p += take;
        n -= take;
        if (s->fill == 64) {
            sha_block(s, s->block);
            s->fill = 0;
        }
    }
}

static void sha_final(sha256 *s, char hex[65])
{
    uint64_t bits = s->bytes * 8;
    unsigned char pad = 0x80, zero = 0, len[8];
    sha_update(s, &pad, 1);
    while (s->fill != 56) sha_update(s, &zero, 1);
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha_update(s, len, 8);
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", s->h[i]);
}

void lra_sha256(const void *data, size_t n, char hex[65])
{
    sha256 s;
    sha_init(&s);
    sha_update(&s, data, n);
    sha_final(&s, hex);
}

int lra_sha256_file(const char *path, char hex[65], char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    sha256 s;
    sha_init(&s);
    unsigned char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) sha_update(&s, buf, got);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    sha_final(&s, hex);
    return 0;
}
