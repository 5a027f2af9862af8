/* cmd_train.c — `lra train`: resolve the configuration, run it, print the outcome.
 * Under an MPI launcher (MPI build) the run is trained data-parallel over the ranks
 * (train_dp.h); rank 0 alone prints and writes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mpi_util.h"
#include "presets.h"
#include "registry.h"
#include "train.h"

static void help(void)
{
    printf("usage: lra train --task T --attn A [--preset P] [--steps N] [--seed S]\n"
           "                 [--set key=value]... [--threads N] [--out FILE.h5]\n"
           "                 [--resume] [--keep-model] [--data-dir DIR] [--input PATH]\n"
           "                 [--plugin PATH] [--print-config] [--quiet]\n\n"
           "Trains the LRA encoder with attention variant A on task T, evaluates on the\n"
           "validation split every eval_every steps, keeps the best parameters and reports\n"
           "their test accuracy.\n\n"
           "  --task T          a task from 'lra list tasks'\n"
           "  --attn A          an attention variant from 'lra list attention'\n"
           "  --preset P        a preset from 'lra list presets', or a preset file path\n"
           "  --steps N, --seed S, --threads N   shortcuts for --set steps=N etc.\n"
           "  --set key=value   override any configuration key; attn.NAME sets a variant\n"
           "                    option, task.NAME a task option (applied after the preset,\n"
           "                    in order)\n"
           "  --out FILE.h5     write the run (config, curves, final metrics) to HDF5, and\n"
           "                    a checkpoint FILE.h5.ckpt at every validation\n"
           "  --resume          continue from FILE.h5.ckpt if it exists (same settings)\n"
           "  --keep-model      when the run finishes, keep its checkpoint (best parameters)\n"
           "                    as FILE.h5.model, e.g. for 'lra approx --checkpoint'\n"
           "  --data-dir DIR    where the full datasets are (default: $LRA_DATA, else\n"
           "                    ../shared/data; without them the samples in tasks/samples/)\n"
           "  --input PATH      read the task from this file, directory or archive\n"
           "  --print-config    print the resolved configuration and exit\n"
           "  --plugin PATH     load an attention plugin .so (or a directory of them)\n"
           "  --quiet           no progress output\n\n"
           "Ctrl-C stops after the current step and keeps the checkpoint.\n"
           "Under mpirun/srun (MPI build), mpirun -np N lra train ... trains this one run\n"
           "data-parallel: each rank computes a shard of every batch, gradients are averaged\n"
           "with MPI_Allreduce, rank 0 writes the results. The run equals a single-process\n"
           "run up to reduction order, dropout included (masks follow the global batch).\n"
           "Exit status: 0 finished, 1 failed or diverged, 2 usage error, 3 the variant does not\n"
           "fit this configuration (its init refused), 130 interrupted.\n");
}

#define MAX_SETTINGS 128

static void report_error_file(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lra_report_error_file(fmt, ap);
    va_end(ap);
}

/* --steps N, --seed S and --threads N are shortcuts for --set: returns the key, or NULL. */
static const char *shortcut_key(int argc, char **argv, int *i, const char **value)
{
    static const char *const keys[] = {"steps", "seed", "threads"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        char opt[16];
        snprintf(opt, sizeof opt, "--%s", keys[k]);
        if (lra_arg_value(argc, argv, i, opt, value, "train")) return keys[k];
    }
    return NULL;
}

/* Settings are kept as key=value text and applied in command-line order after the preset. */
static void add_setting(char (*sets)[256], int *n, const char *key, const char *value)
{
    if (*n == MAX_SETTINGS) lra_usage_error("train", "too many settings (at most %d)",
                                            MAX_SETTINGS);
    if (key)
        snprintf(sets[(*n)++], sizeof sets[0], "%s=%s", key, value);
    else
        snprintf(sets[(*n)++], sizeof sets[0], "%s", value);
}

/* Prints the outcome (rank 0 only under MPI) and returns the exit status. */
static int report_outcome(const lra_config *cfg, const lra_train_result *res, const char *out,
                          const char *err, int lead)
{
    if (res->status == LRA_RUN_SKIPPED) {
        if (lead) fprintf(stderr, "lra train: skipped: %s\n", err);
        if (lead) report_error_file("%s", err);
        return LRA_EXIT_SKIPPED;
    }
    if (res->status == LRA_RUN_INTERRUPTED) {
        if (lead)
            fprintf(stderr, "lra train: interrupted at step %d; continue with the same command "
                    "and --resume\n", res->steps_done);
        return LRA_EXIT_INTERRUPTED;
    }
    if (res->status == LRA_RUN_DIVERGED) {
        if (lead) printf("%s %s: diverged at step %d\n", cfg->task, cfg->attn, res->diverged_step);
        return LRA_EXIT_FAIL;
    }
    if (!lead) return LRA_EXIT_OK;
    char dp[128] = "";
    if (res->ranks > 1)
        snprintf(dp, sizeof dp, " on %d MPI ranks (%.2f steps/s, allreduce %.2f ms/step)",
                 res->ranks, res->steps_per_s, 1e3 * res->allreduce_seconds_per_step);
    printf("%s %s: test accuracy %.2f%% (best validation %.2f%% at step %d), %d steps in "
           "%.1f s%s%s%s\n", cfg->task, cfg->attn, 100.0 * res->test_acc,
           100.0 * res->best_val_acc, res->best_step, res->steps_done, res->seconds, dp,
           out ? ", results in " : "", out ? out : "");
    return LRA_EXIT_OK;
}

int lra_cmd_train(int argc, char **argv)
{
    const char *task = NULL, *attn = NULL, *preset = NULL, *out = NULL, *v = NULL;
    const char *data_dir = NULL, *input = NULL;
    const char *key;
    static char sets[MAX_SETTINGS][256];
    int n_sets = 0, print_config = 0, quiet = 0, resume = 0, keep_model = 0;
    char err[1024];

    lra_cli_load_env_plugins();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return LRA_EXIT_OK;
        } else if (lra_arg_value(argc, argv, &i, "--task", &task, "train") ||
                   lra_arg_value(argc, argv, &i, "--attn", &attn, "train") ||
                   lra_arg_value(argc, argv, &i, "--preset", &preset, "train") ||
                   lra_arg_value(argc, argv, &i, "--out", &out, "train") ||
                   lra_arg_value(argc, argv, &i, "--data-dir", &data_dir, "train") ||
                   lra_arg_value(argc, argv, &i, "--input", &input, "train")) {
            continue;
        } else if (lra_arg_value(argc, argv, &i, "--plugin", &v, "train")) {
            if (lra_attn_load(v, err, sizeof err) != 0) lra_die("%s", err);
        } else if (lra_arg_value(argc, argv, &i, "--set", &v, "train")) {
            add_setting(sets, &n_sets, NULL, v);
        } else if ((key = shortcut_key(argc, argv, &i, &v)) != NULL) {
            add_setting(sets, &n_sets, key, v);
        } else if (strcmp(a, "--print-config") == 0) {
            print_config = 1;
        } else if (strcmp(a, "--resume") == 0) {
            resume = 1;
        } else if (strcmp(a, "--keep-model") == 0) {
            keep_model = 1;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = 1;
        } else {
            lra_usage_error("train", "unexpected argument '%s'", a);
        }
    }
    if (!task) lra_usage_error("train", "--task is required (see 'lra list tasks')");
    if (!attn) lra_usage_error("train", "--attn is required (see 'lra list attention')");
    if (!lra_attn_find(attn))
        lra_usage_error("train", "unknown attention variant '%s' (see 'lra list attention')",
                        attn);

    lra_config cfg;
    lra_config_defaults(&cfg);
    snprintf(cfg.task, sizeof cfg.task, "%s", task);
    snprintf(cfg.attn, sizeof cfg.attn, "%s", attn);
    if (preset && lra_preset_apply(&cfg, preset, err, sizeof err) != 0)
        lra_usage_error("train", "%s", err);
    for (int i = 0; i < n_sets; i++)
        if (lra_config_set_kv(&cfg, sets[i], err, sizeof err) != 0)
            lra_usage_error("train", "--set %s: %s", sets[i], err);
    if (print_config) {
        lra_config_write(&cfg, stdout);
        return LRA_EXIT_OK;
    }

    if (resume && !out) lra_usage_error("train", "--resume needs --out (the checkpoint is "
                                        "FILE.h5.ckpt)");
    if (keep_model && !out) lra_usage_error("train", "--keep-model needs --out (the model is "
                                            "FILE.h5.model)");
    lra_train_opts opts = {.out = out, .data_dir = data_dir, .input = input, .quiet = quiet,
                           .resume = resume, .keep_model = keep_model};
    lra_train_result res;
    lra_train_catch_signals();
    /* Joins MPI only when a launcher started us: a plain `lra train` never touches MPI. */
    lra_mpi_start(NULL, NULL);
    const int lead = lra_mpi_rank() == 0;
    if (lra_train_run(&cfg, &opts, &res, err, sizeof err) != 0) lra_mpi_die(err);
    int rc = report_outcome(&cfg, &res, out, err, lead);
    lra_mpi_stop();
    return rc;
}
