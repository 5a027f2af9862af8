/* approx_inputs.c — the inputs `lra approx` compares every variant on: the configuration (a
 * preset with --set, or a checkpoint's own), the first --batch test sequences of the task, and
 * layer 0's q, k and v computed from them, with the key mask of their padding.
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approx.h"
#include "checkpoint.h"
#include "cli.h"
#include "model.h"
#include "ops.h"
#include "presets.h"
#include "task.h"

/* ---- inputs -------------------------------------------------------------------------------- */

/* The configuration a checkpoint was trained with: its "config" attribute, `key = value` lines
 * as lra_config_format writes them. */
static int config_from_checkpoint(const char *path, lra_config *cfg, char *err, size_t errlen)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = f < 0 ? -1 : H5Aopen(f, "config", H5P_DEFAULT);
    hid_t ft = a < 0 ? -1 : H5Aget_type(a);
    const size_t n = ft < 0 ? 0 : H5Tget_size(ft);
    char *text = n ? calloc(n + 1, 1) : NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, n ? n : 1);
    int rc = text && H5Aread(a, mt, text) >= 0 ? 0 : -1;
    if (rc != 0) snprintf(err, errlen, "cannot read the configuration of checkpoint %s", path);
    H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    if (f >= 0) H5Fclose(f);
    lra_config_defaults(cfg);
    for (char *save = NULL, *l = rc ? NULL : strtok_r(text, "\n", &save); l && rc == 0;
         l = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(l, '=');
        if (!eq) continue;
        char val[96];
        snprintf(val, sizeof val, "%s", eq + 1 + (eq[1] == ' '));
        /* task, attn and preset are names, not keys of the configuration table */
        char *names[] = {cfg->task, cfg->attn, cfg->preset};
        const char *keys[] = {"task = ", "attn = ", "preset = "};
        int named = 0;
        for (int i = 0; i < 3; i++)
            if (strncmp(l, keys[i], strlen(keys[i])) == 0) {
                snprintf(names[i], 32, "%.31s", val);
                named = 1;
            }
        if (!named && lra_config_set_kv(cfg, l, err, errlen) != 0) rc = -1;
    }
    free(text);
    return rc;
}

static int resolve_config(const approx_opts *o, lra_config *cfg, char *err, size_t errlen)
{
    if (o->checkpoint) {
        if (o->n_sets || strcmp(o->preset, "quick") != 0)
            lra_usage_error("approx", "--checkpoint brings its configuration: no --preset or "
                            "--set of model keys");
        if (config_from_checkpoint(o->checkpoint, cfg, err, errlen) != 0) return -1;
        if (o->len && o->len != cfg->seq_len)
            lra_usage_error("approx", "the checkpoint was trained at --len %d", cfg->seq_len);
        return 0;
    }
    lra_config_defaults(cfg);
    snprintf(cfg->task, sizeof cfg->task, "%s", o->task);
    snprintf(cfg->attn, sizeof cfg->attn, "softmax"); /* no plugin parameters in the layout */
    if (lra_preset_apply(cfg, o->preset, err, errlen) != 0) lra_usage_error("approx", "%s", err);
    for (int i = 0; i < o->n_sets; i++)
        if (lra_config_set_kv(cfg, o->sets[i], err, errlen) != 0)
            lra_usage_error("approx", "--set %s: %s", o->sets[i], err);
    if (o->len) cfg->seq_len = o->len;
    return 0;
}

/* Layer 0's q, k, v of the first B test sequences, as model.c computes them in evaluation:
 * x = embed(tokens) (+ CLS) + positions, LayerNorm ln1, x·Wqkv split into heads. */
static void embed_qkv(inputs *in, lra_model *m, const lra_dataset *d, int B)
{
    const lra_config *c = &in->cfg;
    const int cls = c->pool == LRA_POOL_CLS, T = in->shape.len, D = c->emb_dim;
    const int Q = c->qkv_dim, N = B * T;
    float *params = lra_model_params(m);
#define TENSOR(name) (params + lra_model_tensor(m, lra_model_find_tensor(m, name))->offset)
    int32_t *tok = lra_alloc((size_t)N * sizeof(int32_t), "tokens");
    float *x = floats((size_t)N * D), *y = floats((size_t)N * D), *qkv = floats((size_t)N * 3 * Q);
    float *mu = floats((size_t)N), *rs = floats((size_t)N);
    for (int b = 0; b < B; b++) {
        const int32_t *src = d->tokens + (size_t)b * d->docs * d->len; /* document 0 */
        for (int t = 0; t < T; t++) {
            tok[b * T + t] = t < cls ? 0 : src[t - cls];
            in->mask[b * T + t] = t < cls || tok[b * T + t] != 0 ? 1.0f : 0.0f;
        }
        float *xb = x + (size_t)b * T * D;
        op_embed_forward(xb + (size_t)cls * D, tok + b * T + cls, TENSOR("embed.tokens"),
                         T - cls, D);
        if (cls) memcpy(xb, TENSOR("embed.cls"), (size_t)D * sizeof(float));
    }
    if (c->pos == LRA_POS_SINUSOID) op_add_sinusoid(x, B, T, D);
    if (c->pos == LRA_POS_LEARNED) op_add_pos_forward(x, TENSOR("embed.pos"), B, T, D);
    op_layernorm_forward(y, mu, rs, x, TENSOR("layer0.ln1.g"), TENSOR("layer0.ln1.b"), N, D);
    op_linear_forward(qkv, y, TENSOR("layer0.attn.wqkv"), NULL, N, D, 3 * Q);
#undef TENSOR
    const int H = in->shape.heads, Dh = in->shape.dim;
    op_split_heads(in->q, qkv, 3 * Q, B, T, H, Dh);
    op_split_heads(in->k, qkv + Q, 3 * Q, B, T, H, Dh);
    op_split_heads(in->v, qkv + 2 * Q, 3 * Q, B, T, H, Dh);
    void *bufs[] = {tok, x, y, qkv, mu, rs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
}

int lra_approx_build_inputs(const approx_opts *o, inputs *in, char *err, size_t errlen)
{
    memset(in, 0, sizeof *in);
    lra_config *c = &in->cfg;
    if (resolve_config(o, c, err, errlen) != 0) return -1;
    const lra_task *task = lra_task_find(c->task);
    if (!task) lra_usage_error("approx", "unknown task '%s' (see 'lra list tasks')", c->task);
    lra_dataset split[LRA_N_SPLITS];
    lra_provenance prov;
    if (lra_task_load(c, o->input, o->data_dir, split, &prov, o->quiet, err, errlen) != 0)
        return -1;
    const lra_dataset *d = &split[LRA_SPLIT_TEST];
    lra_model *m = lra_model_create(c, lra_attn_find(c->attn), task->vocab, task->classes,
                                    task->docs, NULL, err, errlen);
    int rc = m && d->n >= o->batch ? 0 : -1;
    if (m && rc) snprintf(err, errlen, "the test split has %d sequences, fewer than --batch %d",
                          d->n, o->batch);
    float *best = m ? floats(lra_model_n_params(m)) : NULL;
    lra_train_state st;
    lra_config_format(c, in->config_text, sizeof in->config_text);
    if (rc == 0 && o->checkpoint) {
        rc = lra_checkpoint_load(o->checkpoint, m, best, &st, in->config_text, err, errlen);
        if (rc == 0) memcpy(lra_model_params(m), best, lra_model_n_params(m) * sizeof(float));
    }
    if (rc == 0) {
        in->shape = (lra_attn_shape){.batch = o->batch, .heads = c->heads,
                                     .len = lra_config_tokens(c),
                                     .dim = lra_config_head_dim(c)};
        in->shape.max_len = in->shape.len;
        in->nx = (size_t)o->batch * c->heads * in->shape.len * in->shape.dim;
        in->q = floats(in->nx), in->k = floats(in->nx), in->v = floats(in->nx);
        in->ref = floats(in->nx);
        in->mask = floats((size_t)o->batch * in->shape.len);
        in->p_norm = lra_alloc((size_t)o->batch * c->heads * sizeof(double), "norms");
        in->v_norm = lra_alloc((size_t)o->batch * c->heads * sizeof(double), "norms");
        embed_qkv(in, m, d, o->batch);
        lra_approx_reference(in, o);
    }
    lra_free(best);
    lra_model_free(m);
    for (int s = 0; s < LRA_N_SPLITS; s++) lra_dataset_free(&split[s]);
    return rc;
}

void lra_approx_free_inputs(inputs *in)
{
    void *bufs[] = {in->q, in->k, in->v, in->mask, in->ref, in->p_norm, in->v_norm};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lra_free(bufs[i]);
}
