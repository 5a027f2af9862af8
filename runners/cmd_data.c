/* cmd_data.c — `lra data import|generate|info`: convert datasets once into the HDF5 cache. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "presets.h"
#include "source.h"
#include "task.h"

static void help(void)
{
    printf("usage: lra data import TASK PATH [--preset P] [--set key=value]...\n"
           "       lra data generate TASK [options]   (lra data generate TASK --help)\n"
           "       lra data info [--data-dir DIR]\n\n"
           "import    read TASK's data from PATH (a file, directory or archive in the published\n"
           "          format) and store the splits in the dataset cache, so that training\n"
           "          starts fast. seq_len and task.* options shape the result, as in train.\n"
           "generate  write a generated task (listops, pathfinder) in LRA's release format\n"
           "info      where data is looked for, and what the cache holds\n\n"
           "The cache is $LRA_CACHE, else $XDG_CACHE_HOME/lra, else ~/.cache/lra.\n");
}

static int cmd_import(int argc, char **argv)
{
    if (argc < 3) lra_usage_error("data", "import needs TASK and PATH");
    const lra_task *task = lra_task_find(argv[1]);
    if (!task) lra_usage_error("data", "unknown task '%s' (see 'lra list tasks')", argv[1]);
    const char *path = argv[2], *v = NULL, *preset = NULL;
    lra_config cfg;
    char err[1024];
    lra_config_defaults(&cfg);
    snprintf(cfg.task, sizeof cfg.task, "%s", task->name);
    const char *sets[128];
    int n_sets = 0;
    for (int i = 3; i < argc; i++) {
        if (lra_arg_value(argc, argv, &i, "--preset", &preset, "data")) continue;
        if (lra_arg_value(argc, argv, &i, "--set", &v, "data") && n_sets < 128) {
            sets[n_sets++] = v;
            continue;
        }
        lra_usage_error("data", "unexpected argument '%s'", argv[i]);
    }
    if (preset && lra_preset_apply(&cfg, preset, err, sizeof err) != 0)
        lra_usage_error("data", "%s", err);
    for (int i = 0; i < n_sets; i++)
        if (lra_config_set_kv(&cfg, sets[i], err, sizeof err) != 0)
            lra_usage_error("data", "--set %s: %s", sets[i], err);

    lra_dataset split[LRA_N_SPLITS] = {{0}};
    lra_provenance prov = {0};
    lra_task_env env = {.cfg = &cfg, .input = path, .data_root = NULL,
                        .samples_dir = NULL, .quiet = 0};
    if (task->build(&env, split, &prov, err, sizeof err) != 0) lra_die("%s", err);
    char cache[PATH_MAX], key[8192];
    lra_cache_path(&cfg, path, NULL, cache, sizeof cache, key, sizeof key);
    if (lra_cache_write(cache, task->name, key, split, &prov, err, sizeof err) != 0)
        lra_die("%s", err);
    printf("%s: %d train, %d val, %d test examples of %d x %d tokens -> %s\n", task->name,
           split[0].n, split[1].n, split[2].n, split[0].docs, split[0].len, cache);
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
    return LRA_EXIT_OK;
}

static int cmd_generate(int argc, char **argv)
{
    if (argc < 2) lra_usage_error("data", "generate needs a TASK");
    const lra_task *task = lra_task_find(argv[1]);
    if (!task) lra_usage_error("data", "unknown task '%s' (see 'lra list tasks')", argv[1]);
    if (!task->generate_cli)
        lra_usage_error("data", "task %s has no generator; use 'lra data import'", task->name);
    return task->generate_cli(argc - 1, argv + 1);
}

static int cmd_info(int argc, char **argv)
{
    const char *dir = NULL;
    for (int i = 1; i < argc; i++)
        if (!lra_arg_value(argc, argv, &i, "--data-dir", &dir, "data"))
            lra_usage_error("data", "unexpected argument '%s'", argv[i]);
    const char *root = lra_data_root(dir);
    printf("data root: %s\n", root ? root : "(none found: --data-dir, LRA_DATA or "
                                            "../shared/data)");
    char cache[PATH_MAX], key[64];
    lra_config cfg;
    lra_config_defaults(&cfg);
    lra_cache_path(&cfg, NULL, NULL, cache, sizeof cache, key, sizeof key);
    char *slash = strrchr(cache, '/');
    if (slash) *slash = 0;
    printf("cache: %s\n", cache);
    DIR *d = opendir(cache);
    if (!d) return LRA_EXIT_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".h5") != 0) continue;
        char path[PATH_MAX + 256], err[512];
        snprintf(path, sizeof path, "%s/%s", cache, e->d_name);
        lra_dataset split[LRA_N_SPLITS] = {{0}};
        lra_provenance prov;
        if (lra_cache_read(path, NULL, split, &prov, NULL, 0, err, sizeof err) != 0) {
            printf("  %s: unreadable (%s)\n", e->d_name, err);
            continue;
        }
        printf("  %s: %d/%d/%d examples, %d x %d tokens\n", e->d_name, split[0].n, split[1].n,
               split[2].n, split[0].docs, split[0].len);
        for (int i = 0; i < prov.n; i++) printf("      %s: %s\n", prov.key[i], prov.value[i]);
        for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
    }
    closedir(d);
    return LRA_EXIT_OK;
}

int lra_cmd_data(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help();
        return argc < 2 ? LRA_EXIT_USAGE : LRA_EXIT_OK;
    }
    if (strcmp(argv[1], "import") == 0) return cmd_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "generate") == 0) return cmd_generate(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0) return cmd_info(argc - 1, argv + 1);
    lra_usage_error("data", "unknown data command '%s'; choose import, generate or info",
                    argv[1]);
}
