/* model.h — the LRA encoder classifier with hand-written forward and backward passes.
 *
 * Architecture (LRA's transformer.py, pre-LayerNorm):
 *   tokens -> embedding (+ learned CLS vector in front when pooling is CLS) -> + position code
 *   -> dropout -> N x [ x += Dropout(Wo · Attn(LN(x) Wqkv)) ; x += Dropout(W2 · Dropout(GELU(LN(x) W1 + b1)) + b2) ]
 *   -> LN -> pool (CLS or masked MEAN) -> Dense(mlp) -> ReLU -> Dense(classes).
 * Two-document tasks run both documents through the same encoder (shared weights) and the head
 * sees [u, v, u*v, u-v] (or [u, v]).
 *
 * Memory: four equal float buffers (parameters, gradients, Adam m, Adam v) share one layout; a
 * tensor table names every slice, including each layer's attention-plugin slice. Activations live
 * in one arena planned for a batch size; nothing is allocated inside a step.
 */
#ifndef LRA_MODEL_H
#define LRA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lra_attention.h"

#define LRA_TENSOR_NO_DECAY 1u /* biases, LayerNorm, CLS and position vectors */

typedef struct lra_tensor {
    char name[48];    /* "layer0.attn.wqkv" */
    size_t offset;    /* in floats, into params/grads/adam_m/adam_v */
    size_t count;
    int rows, cols;   /* shape for documentation and checkpoints (cols = 1 for vectors) */
    unsigned flags;
} lra_tensor;

/* Parameter views of one block into a flat buffer (params or grads). */
typedef struct lra_block_view {
    float *ln1_g, *ln1_b; /* (D) */
    float *wqkv;          /* (D, 3*Q): columns [q | k | v], each head-major within */
    float *wo;            /* (Q, D) */
    float *ln2_g, *ln2_b; /* (D) */
    float *w1, *b1;       /* (D, M), (M) */
    float *w2, *b2;       /* (M, D), (D) */
    float *attn;          /* the plugin's slice, or NULL when it has no parameters */
} lra_block_view;

typedef struct lra_model lra_model;

/* Builds the model, draws its parameters from cfg->seed and initialises the plugin in every
 * layer with the options in cfg->attn_opts. vocab counts token ids including padding (0).
 * docs is 1, or 2 for the dual encoder. Returns NULL with a message when the configuration or
 * the plugin rejects the shape; *rejected (if not NULL) is then 1 when it was the plugin's
 * init() that refused (a legitimate "this variant does not fit", which sweeps record as
 * skipped), 0 for any other error. */
lra_model *lra_model_create(const lra_config *cfg, const lra_attention *attn, int vocab,
                            int classes, int docs, int *rejected, char *err, size_t errlen);
void lra_model_free(lra_model *m);

/* (Re)plans the activation arena for up to `batch` examples. Returns 0, or -1 with a message. */
int lra_model_plan(lra_model *m, int batch, char *err, size_t errlen);

/* Forward pass over `batch` examples (at most the planned batch): tokens (batch, docs, seq_len),
 * 0 = padding. With labels, returns the mean cross-entropy over examples whose weight is
 * non-zero (weight NULL = all 1); without labels returns 0. Training enables dropout; `step`
 * keys the dropout masks. */
double lra_model_forward(lra_model *m, const int32_t *tokens, const int32_t *labels,
                         const float *weight, int batch, int training, uint64_t step);
/* Data-parallel training: the following forward passes compute rows [first, first + batch) of
 * a global batch of global_batch examples. Their random draws (dropout masks, attention
 * plugins' per-slice draws through lra_attn_ctx.seq_id) are keyed by each example's place in
 * the global batch, so the shards of all processes draw exactly what one process over the whole
 * batch would. (0, 0), the default, makes each batch its own global batch. */
void lra_model_set_shard(lra_model *m, int first, int global_batch);
/* Back-propagates the loss of the last forward pass (which must have had labels) and ADDS into
 * the gradient buffer. */
void lra_model_backward(lra_model *m);

const float *lra_model_logits(const lra_model *m); /* (batch, classes) of the last forward */

/* A hash of the discrete choices of the last forward pass (the signs of the head's ReLU
 * inputs). Gradient checks skip directions that change it: there the loss has a kink. */
uint64_t lra_model_branch_signature(const lra_model *m);

/* Flat buffers and their table. The buffers are lra_model_n_params() floats long, including
 * alignment padding between tensors (always zero); lra_model_n_trainable() counts real
 * parameters only. */
size_t lra_model_n_params(const lra_model *m);
size_t lra_model_n_trainable(const lra_model *m);
float *lra_model_params(lra_model *m);
float *lra_model_grads(lra_model *m);
float *lra_model_adam_m(lra_model *m);
float *lra_model_adam_v(lra_model *m);
int lra_model_n_tensors(const lra_model *m);
const lra_tensor *lra_model_tensor(const lra_model *m, int i);
/* Index of a tensor by name, or -1. */
int lra_model_find_tensor(const lra_model *m, const char *name);
/* Persistent plugin state of all layers (fixed random draws): checkpointed with the params. */
size_t lra_model_n_state(const lra_model *m);
float *lra_model_state(lra_model *m);

/* Bytes of the activation arena for the planned batch, and the attention share of it. */
/* Wall time and FLOPs spent in the encoder's dense layers (the Wqkv, Wo, W1 and W2 GEMMs,
 * forward and backward) since the last reset; reset != 0 clears them after reading. */
void lra_model_dense_profile(lra_model *m, double *secs, double *flops, int reset);
size_t lra_model_arena_bytes(const lra_model *m);
/* Estimated floating-point operations of one forward pass over `batch` examples; the attention
 * part comes from the plugin's flops(). */
double lra_model_flops(const lra_model *m, int batch, double *attn_flops);

const lra_config *lra_model_config(const lra_model *m);
const lra_attention *lra_model_attention(const lra_model *m);

#endif
