/* lra_attention.h — the attention plugin ABI.
 *
 * One attention variant is one C file whose last object is a `const lra_attention` descriptor.
 * The framework owns every byte: it asks the plugin for the float counts it needs (trainable
 * parameters, persistent state, the cache kept from forward for backward, and scratch), allocates
 * them, and hands them over in an lra_attn_ctx. Plugins never call malloc.
 *
 * Layout: q, k, v, out and their gradients are contiguous float32 arrays of shape
 * (B, H, T, Dh) — batch, heads, tokens, head dimension — i.e. element [b][h][t][e] is at
 * ((b*H + h)*T + t)*Dh + e. The key mask is (B, T) with 1 for a real token and 0 for padding.
 * q, k and v arrive after the Q/K/V projections; the caller applies the output projection.
 *
 * Contract:
 *  - sizes() and flops() depend only on ctx->shape and the options in ctx->priv.
 *    n_params and n_state may depend on heads, dim and max_len, never on batch or len.
 *  - init() validates the options against the shape (return a negative LRA_ATTN_E* code and a
 *    message on rejection) and fills params and state from ctx->seed. It runs once per model.
 *  - forward() writes out and the cache. backward() reads the cache and ADDS into dq, dk, dv and
 *    dparams, so gradients from several consumers accumulate. backward() leaves the cache as it
 *    found it, so it may run more than once per forward (the tests do). Neither returns an
 *    error: every failure was ruled out in init().
 *  - Scratch is shared by all threads of one call; a plugin that wants per-thread scratch sizes
 *    it per (batch, head) slice, which bounds any thread count.
 *  - Variants flagged NONSMOOTH keep their discrete choices in the cache and honour
 *    ctx->freeze_choices (see below).
 *  - Random draws use lra_rng.h keyed by ctx->seed (fixed draws) or by ctx->seed and ctx->step
 *    (per-step draws such as dropout), so backward can regenerate them and results do not depend
 *    on the thread count. A draw that differs per (batch, head) slice is keyed by the slice's
 *    global id lra_attn_slice_id(ctx, bh), never by bh itself: under data-parallel training a
 *    process sees a shard of the batch, and keyed this way it draws what one process over the
 *    whole batch would (lra_attn_step_stream is the per-step stream of a slice).
 *  - A plugin may parallelise with OpenMP over (batch, head) using ctx->threads threads.
 *
 * Versioning: abi_version must equal LRA_ATTN_ABI_VERSION; the loader refuses anything else.
 * Any change to the structs below bumps the version.
 */
#ifndef LRA_ATTENTION_H
#define LRA_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "lra_rng.h"

#define LRA_ATTN_ABI_VERSION 2 /* 2: lra_attn_ctx.seq_id */

typedef struct lra_attn_shape {
    int batch;   /* B: sequences per call */
    int heads;   /* H */
    int len;     /* T: tokens per sequence, CLS included */
    int dim;     /* Dh: head dimension of q, k and v */
    int max_len; /* the largest T this model will see: sizes length-dependent parameters */
} lra_attn_shape;

typedef enum lra_opt_type {
    LRA_OPT_INT,    /* field is int */
    LRA_OPT_FLOAT,  /* field is double */
    LRA_OPT_BOOL,   /* field is int, 0 or 1; accepts 0/1/true/false/yes/no */
    LRA_OPT_CHOICE, /* field is int: index into `choices` */
} lra_opt_type;

/* One user-settable option (FFmpeg's AVOption, reduced). Tables end with a zeroed entry. */
typedef struct lra_attn_option {
    const char *name;
    const char *help;
    size_t offset;        /* offsetof(private struct, field) */
    lra_opt_type type;
    double def, min, max; /* default and inclusive range; CHOICE: def is the index */
    const char *choices;  /* CHOICE only: names separated by '|', e.g. "relu|softmax" */
} lra_attn_option;

/* Flags describing the variant, used by the tests and the report. */
enum {
    LRA_ATTN_EXACT      = 1u << 0, /* computes exact softmax attention (up to rounding) */
    LRA_ATTN_STOCHASTIC = 1u << 1, /* makes random draws (fixed by the seed for a check) */
    LRA_ATTN_NONSMOOTH  = 1u << 2, /* makes discrete choices (buckets, top-k, max) */
    LRA_ATTN_MIXES_KEYS = 1u << 3, /* output depends on padded positions' q (e.g. no query mask) */
};

typedef enum lra_attn_err {
    LRA_ATTN_OK = 0,
    LRA_ATTN_EINVAL = -1,  /* an option is out of range or inconsistent */
    LRA_ATTN_ESHAPE = -2,  /* the option does not fit this shape (e.g. landmarks > tokens) */
} lra_attn_err;

typedef struct lra_attn_sizes {
    size_t n_params;  /* trainable floats; gradients, Adam moments and checkpoints follow */
    size_t n_state;   /* persistent, non-trainable floats (fixed random draws); checkpointed */
    size_t n_cache;   /* floats written by forward and read by backward */
    size_t n_scratch; /* floats usable inside one forward or backward call */
} lra_attn_sizes;

typedef struct lra_attn_ctx {
    lra_attn_shape shape;
    void *priv;             /* priv_size bytes: zeroed, then options applied */
    float *params;          /* (n_params) this layer's trainable slice of the model buffer */
    float *dparams;         /* (n_params) matching gradient slice; backward adds into it */
    float *state;           /* (n_state) */
    float *cache;           /* (n_cache) */
    float *scratch;         /* (n_scratch) */
    const float *key_mask;  /* (B, T) 1 = real token, 0 = padding */
    uint64_t seed;          /* fixed for this layer for the model's lifetime */
    uint64_t step;          /* optimiser step; changes per-step draws */
    float dropout;          /* attention-probability dropout rate in [0, 1); 0 when not
                               training. Dropout alone does not make a variant STOCHASTIC. */
    int training;           /* 1 in a training step, 0 in evaluation */
    int threads;            /* OpenMP threads to use, >= 1 */
    int freeze_choices;     /* NONSMOOTH variants: when 1, forward reuses the discrete choices
                               (hash buckets, sort orders, top-k, sampled indices) that the
                               last forward with freeze_choices == 0 stored in the cache,
                               instead of recomputing them. Gradient checks set it so that
                               finite differences see one smooth branch. */
    const uint64_t *seq_id; /* (B) the global id of each batch row's sequence, or NULL when
                               row b is sequence b. Read it through lra_attn_slice_id. */
} lra_attn_ctx;

/* The global id of slice bh = b·H + h: seq_id[b]·H + h (bh when seq_id is NULL). Per-slice
 * random draws are keyed by it so that they follow the sequence, not its row in this call. */
static inline uint64_t lra_attn_slice_id(const lra_attn_ctx *ctx, int bh)
{
    const int H = ctx->shape.heads;
    if (!ctx->seq_id) return (uint64_t)bh;
    return ctx->seq_id[bh / H] * (uint64_t)H + (uint64_t)(bh % H);
}

/* The per-step random stream of slice bh (attention dropout and other per-step draws):
 * lra_key(lra_key(seed, step), lra_attn_slice_id(ctx, bh)). */
static inline uint64_t lra_attn_step_stream(const lra_attn_ctx *ctx, int bh)
{
    return lra_key(lra_key(ctx->seed, ctx->step), lra_attn_slice_id(ctx, bh));
}

typedef struct lra_attention {
    int abi_version;                  /* LRA_ATTN_ABI_VERSION */
    const char *name;                 /* equals the file name without .c */
    const char *help;                 /* one line: what it is, paper, complexity */
    unsigned flags;                   /* LRA_ATTN_* */
    size_t priv_size;                 /* bytes of private state */
    const lra_attn_option *options;   /* zero-terminated table, or NULL */
    /* Options ("name=value,name=value") that fit the tests' small shape (B 2, H 2, T 8, Dh 4):
     * block sizes, feature counts. Applied before any other test option. NULL: defaults fit. */
    const char *check_options;
    /* Options under which the variant computes exact softmax attention at that shape (a window
     * covering the sequence, all landmarks); the tests then compare it with the reference.
     * NULL when the variant has no such limit. */
    const char *softmax_limit_options;

    /* Float counts for ctx->shape and ctx->priv. Mandatory. */
    void (*sizes)(const lra_attn_ctx *ctx, lra_attn_sizes *out);
    /* Floating-point operations of one forward pass over the whole batch. Mandatory. */
    double (*flops)(const lra_attn_ctx *ctx);
    /* Validate, then fill params and state. Returns LRA_ATTN_OK or an error, with a message
     * written to err (errlen bytes). Mandatory. */
    int (*init)(lra_attn_ctx *ctx, char *err, size_t errlen);
    /* out (B, H, T, Dh). Mandatory. */
    void (*forward)(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                    float *out);
    /* Adds the gradients into dq, dk, dv (B, H, T, Dh) and ctx->dparams. `out` is what forward
     * returned. Mandatory. */
    void (*backward)(lra_attn_ctx *ctx, const float *q, const float *k, const float *v,
                     const float *out, const float *dout, float *dq, float *dk, float *dv);
    /* Releases whatever init acquired outside the framework. Optional (NULL). */
    void (*free)(lra_attn_ctx *ctx);
} lra_attention;

/* A loadable plugin (a .so built from one variant file with -DLRA_PLUGIN_SHARED) exports this
 * data symbol pointing at its descriptor. A data pointer, so no function-pointer cast. */
#define LRA_PLUGIN_SYMBOL "lra_plugin_descriptor"
#ifdef LRA_PLUGIN_SHARED
#define LRA_ATTENTION_EXPORT(var) \
    __attribute__((visibility("default"))) const lra_attention *const lra_plugin_descriptor = &var;
#else
#define LRA_ATTENTION_EXPORT(var)
#endif

#endif
