/* registry.h — the attention variants this process knows: the built-in table generated from
 * attention/ at configure time, plus plugins loaded at run time from shared objects. */
#ifndef LRA_REGISTRY_H
#define LRA_REGISTRY_H

#include <stddef.h>

#include "lra_attention.h"

/* Generated: NULL-terminated, sorted by file name. */
extern const lra_attention *const lra_builtin_attention[];
extern const char *const lra_builtin_attention_files[];

/* Number of known variants (built-in and loaded) and the i-th one, built-ins first. */
int lra_attn_count(void);
const lra_attention *lra_attn_get(int i);
/* NULL when unknown. */
const lra_attention *lra_attn_find(const char *name);
/* 1 when the variant came from a loaded shared object. */
int lra_attn_is_loaded(const lra_attention *a);

/* Checks one descriptor: ABI version, a valid name, mandatory callbacks, options table.
 * Returns 0, or -1 with a message. */
int lra_attn_validate(const lra_attention *a, char *err, size_t errlen);

/* Loads one plugin .so, or every *.so of a directory. Refuses a wrong ABI version or a name that
 * is already registered. Returns 0, or -1 with a message naming the file. */
int lra_attn_load(const char *path, char *err, size_t errlen);
/* Loads every entry of the colon-separated LRA_PLUGIN_PATH, if set. */
int lra_attn_load_env(char *err, size_t errlen);

#endif
