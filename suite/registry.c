/* registry.c — built-in variants (generated table) and plugins loaded from shared objects. */
#include "registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "options.h"

#define MAX_LOADED 64

static const lra_attention *loaded[MAX_LOADED];
static int n_loaded;

static int n_builtin(void)
{
    int n = 0;
    while (lra_builtin_attention[n]) n++;
    return n;
}

int lra_attn_count(void) { return n_builtin() + n_loaded; }

const lra_attention *lra_attn_get(int i)
{
    int nb = n_builtin();
    if (i < 0 || i >= nb + n_loaded) return NULL;
    return i < nb ? lra_builtin_attention[i] : loaded[i - nb];
}

const lra_attention *lra_attn_find(const char *name)
{
    for (int i = 0; i < lra_attn_count(); i++)
        if (strcmp(lra_attn_get(i)->name, name) == 0) return lra_attn_get(i);
    return NULL;
}

int lra_attn_is_loaded(const lra_attention *a)
{
    for (int i = 0; i < n_loaded; i++)
        if (loaded[i] == a) return 1;
    return 0;
}

static int valid_name(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z')) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
    return 1;
}

int lra_attn_validate(const lra_attention *a, char *err, size_t errlen)
{
    if (a->abi_version != LRA_ATTN_ABI_VERSION) {
        snprintf(err, errlen, "ABI version %d, but this lra speaks version %d: rebuild the plugin "
                 "against this lra's lra_attention.h", a->abi_version, LRA_ATTN_ABI_VERSION);
        return -1;
    }
    if (!valid_name(a->name)) {
        snprintf(err, errlen, "name '%s' is not a lower-case C identifier",
                 a->name ? a->name : "(null)");
        return -1;
    }
    const char *missing = !a->sizes ? "sizes" : !a->flops ? "flops" : !a->init ? "init"
                        : !a->forward ? "forward" : !a->backward ? "backward" : NULL;
    if (missing) {
        snprintf(err, errlen, "variant '%s' has no %s callback", a->name, missing);
        return -1;
    }
    if (!a->help || !*a->help) {
        snprintf(err, errlen, "variant '%s' has no help text", a->name);
        return -1;
    }
    for (int i = 0; a->options && a->options[i].name; i++) {
        const lra_attn_option *o = &a->options[i];
        size_t width = o->type == LRA_OPT_FLOAT ? sizeof(double) : sizeof(int);
        if (o->offset + width > a->priv_size) {
            snprintf(err, errlen, "variant '%s': option '%s' lies outside priv_size", a->name,
                     o->name);
            return -1;
        }
        if (o->type == LRA_OPT_CHOICE && !o->choices) {
            snprintf(err, errlen, "variant '%s': choice option '%s' has no choices", a->name,
                     o->name);
            return -1;
        }
    }
    return 0;
}

static int load_one(const char *path, char *err, size_t errlen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "cannot load plugin %s: %s", path, dlerror());
        return -1;
    }
    const lra_attention *const *sym = dlsym(h, LRA_PLUGIN_SYMBOL);
    if (!sym || !*sym) {
        snprintf(err, errlen, "%s: no symbol '%s'; build it with -DLRA_PLUGIN_SHARED and end the "
                 "file with LRA_ATTENTION_EXPORT(...)", path, LRA_PLUGIN_SYMBOL);
        dlclose(h);
        return -1;
    }
    const lra_attention *a = *sym;
    char why[256];
    if (lra_attn_validate(a, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        dlclose(h);
        return -1;
    }
    if (lra_attn_find(a->name)) {
        snprintf(err, errlen, "%s: an attention variant named '%s' is already registered; "
                 "rename the plugin", path, a->name);
        dlclose(h);
        return -1;
    }
    if (n_loaded == MAX_LOADED) {
        snprintf(err, errlen, "%s: too many plugins (at most %d)", path, MAX_LOADED);
        dlclose(h);
        return -1;
    }
    loaded[n_loaded++] = a; /* the handle stays open for the life of the process */
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int lra_attn_load(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "plugin path %s does not exist", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return load_one(path, err, errlen);

    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, errlen, "cannot read plugin directory %s", path);
        return -1;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (ends_with(e->d_name, ".so")) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], by_name); /* load order independent of readdir */
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        if (rc == 0 && load_one(full, err, errlen) != 0) rc = -1;
        free(names[i]);
    }
    return rc;
}

int lra_attn_load_env(char *err, size_t errlen)
{
    const char *env = getenv("LRA_PLUGIN_PATH");
    if (!env || !*env) return 0;
    char *copy = strdup(env), *save = NULL;
    int rc = 0;
    for (char *p = strtok_r(copy, ":", &save); p && rc == 0; p = strtok_r(NULL, ":", &save))
        if (*p) rc = lra_attn_load(p, err, errlen);
    free(copy);
    return rc;
}
