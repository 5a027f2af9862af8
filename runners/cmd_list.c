/* cmd_list.c — `lra list attention|tasks|presets`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "presets.h"
#include "registry.h"
#include "task.h"

static void list_attention(int names_only, int verbose)
{
    for (int i = 0; i < lra_attn_count(); i++) {
        const lra_attention *a = lra_attn_get(i);
        if (names_only) {
            printf("%s\n", a->name);
            continue;
        }
        printf("%-14s %s%s\n", a->name, a->help, lra_attn_is_loaded(a) ? " [plugin]" : "");
        if (!verbose) continue;
        char def[64];
        /* Defaults are shown from a private block initialised by the option table itself. */
        unsigned char priv[4096] = {0};
        if (a->priv_size <= sizeof priv) lra_opts_defaults(a->options, priv);
        for (int k = 0; a->options && a->options[k].name; k++) {
            const lra_attn_option *o = &a->options[k];
            if (a->priv_size <= sizeof priv)
                lra_opts_get(o, priv, def, sizeof def);
            else
                snprintf(def, sizeof def, "?");
            if (o->type == LRA_OPT_CHOICE)
                printf("    attn.%-16s %s (default %s; one of %s)\n", o->name, o->help, def,
                       o->choices);
            else if (o->type == LRA_OPT_BOOL)
                printf("    attn.%-16s %s (default %s)\n", o->name, o->help, def);
            else
                printf("    attn.%-16s %s (default %s; range %g to %g)\n", o->name, o->help, def,
                       o->min, o->max);
        }
    }
}

static void list_tasks(void)
{
    for (int i = 0; lra_tasks[i]; i++) {
        const lra_task *t = lra_tasks[i];
        printf("%-12s %s\n", t->name, t->help);
    }
}

static void list_presets(void)
{
    char summary[256];
    for (const lra_preset *p = lra_presets; p->name; p++) {
        lra_preset_summary(p, summary, sizeof summary);
        printf("%-10s %s  (%s)\n", p->name, summary, p->origin);
    }
}

static void help(void)
{
    printf("usage: lra list attention [--names] [--verbose] [--plugin PATH]\n"
           "       lra list tasks\n"
           "       lra list presets\n\n"
           "--names      only the names, one per line\n"
           "--verbose    also each variant's options (settable with --set attn.NAME=VALUE)\n"
           "--plugin P   load an attention plugin .so, or every .so in directory P, first\n"
           "             (LRA_PLUGIN_PATH, colon-separated, is loaded too)\n");
}

int lra_cmd_list(int argc, char **argv)
{
    const char *what = NULL, *plugin = NULL;
    int names = 0, verbose = 0;
    lra_cli_load_env_plugins();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help();
            return LRA_EXIT_OK;
        } else if (strcmp(argv[i], "--names") == 0) {
            names = 1;
        } else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
            verbose = 1;
        } else if (lra_arg_value(argc, argv, &i, "--plugin", &plugin, "list")) {
            char err[512];
            if (lra_attn_load(plugin, err, sizeof err) != 0) lra_die("%s", err);
        } else if (argv[i][0] == '-' || what) {
            lra_usage_error("list", "unexpected argument '%s'", argv[i]);
        } else {
            what = argv[i];
        }
    }
    if (!what) lra_usage_error("list", "say what to list: attention, tasks or presets");
    if (strcmp(what, "attention") == 0 || strcmp(what, "attn") == 0)
        list_attention(names, verbose);
    else if (strcmp(what, "tasks") == 0)
        list_tasks();
    else if (strcmp(what, "presets") == 0)
        list_presets();
    else
        lra_usage_error("list", "cannot list '%s'; choose attention, tasks or presets", what);
    return LRA_EXIT_OK;
}
