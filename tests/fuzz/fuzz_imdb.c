/* fuzz_imdb.c — libFuzzer harness for the IMDb (aclImdb) reader: any bytes must give reviews
 * or an error naming the file, never a crash, an out-of-bounds access or a leak.
 *
 * Inputs that look like an archive (gzip, xz, zip or tar) are written to a temporary file and
 * loaded by the whole task, through libarchive; anything else is "<path>\n<review bytes>" for
 * the entry parser, which decides split and label from the path and checks the rating. Seeds:
 * tests/fixtures/imdb/ (a GNU-tar aclImdb and two entries). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "task.h"

extern const lra_task lra_task_text;
/* Defined in tasks/text.c. */
int lra_imdb_entry(const char *path, const unsigned char *data, size_t size, int seq_len,
                   int32_t *tokens, int *split, int *label, char *err, size_t errlen);

enum { SEQ_LEN = 1000 };

static int looks_like_archive(const uint8_t *d, size_t n)
{
    return (n >= 2 && d[0] == 0x1f && d[1] == 0x8b) || (n >= 6 && !memcmp(d, "\xfd" "7zXZ", 5)) ||
           (n >= 4 && !memcmp(d, "PK\3\4", 4)) || (n >= 262 && !memcmp(d + 257, "ustar", 5));
}

static void check_split(const lra_dataset *d)
{
    for (long i = 0; i < (long)d->n * d->len; i++)
        if (d->tokens[i] < 0 || d->tokens[i] > 256) abort();
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] != 0 && d->labels[i] != 1) abort();
}

static void load_archive(const uint8_t *data, size_t size)
{
    char path[64], err[1024] = "";
    snprintf(path, sizeof path, "/tmp/fuzz_imdb_%d.tar.gz", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, size, f);
    fclose(f);
    lra_config cfg;
    lra_config_defaults(&cfg);
    snprintf(cfg.task, sizeof cfg.task, "text");
    cfg.seq_len = SEQ_LEN;
    lra_task_env env = {.cfg = &cfg, .input = path, .quiet = 1};
    lra_dataset split[LRA_N_SPLITS];
    lra_provenance prov;
    memset(split, 0, sizeof split);
    memset(&prov, 0, sizeof prov);
    if (lra_task_text.build(&env, split, &prov, err, sizeof err) == 0) {
        for (int s = 0; s < LRA_N_SPLITS; s++) {
            check_split(&split[s]);
            lra_dataset_free(&split[s]);
        }
    } else if (!strstr(err, path)) {
        abort(); /* every error names the archive */
    }
    unlink(path);
}

static void parse_entry(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || nl - data > 255) return;
    char path[256];
    memcpy(path, data, (size_t)(nl - data));
    path[nl - data] = 0;
    /* The body is copied so that reads past its end are caught. */
    size_t n = size - (size_t)(nl + 1 - data);
    unsigned char *body = malloc(n ? n : 1);
    memcpy(body, nl + 1, n);
    int32_t tok[SEQ_LEN];
    int split = -1, label = -1;
    char err[512] = "";
    int rc = lra_imdb_entry(path, body, n, SEQ_LEN, tok, &split, &label, err, sizeof err);
    if (rc == 1) {
        if (label < 0 || label > 1 || (split != LRA_SPLIT_TRAIN && split != LRA_SPLIT_TEST))
            abort();
        for (int i = 0; i < SEQ_LEN; i++)
            if (tok[i] != (i < (long)n ? body[i] + 1 : 0)) abort();
    } else if (rc == -1 && strncmp(err, path, strlen(path)) != 0) {
        abort(); /* errors name the file */
    }
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (looks_like_archive(data, size))
        load_archive(data, size);
    else
        parse_entry(data, size);
    return 0;
}
