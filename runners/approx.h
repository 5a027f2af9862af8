/* approx.h — what the files of `lra approx` share: limits, the options, the inputs, a plugin
 * set up on them, one measured point, and the functions one file calls in another.
 *   cmd_approx.c      the command: help, options, sweeps, the run loop
 *   approx_inputs.c   layer 0's q, k, v from real sequences (freshly initialised or a checkpoint)
 *   approx_measure.c  plugins on the inputs, norms, power iteration, the errors of one point
 *   approx_output.c   the printed table and the HDF5 results file
 */
#ifndef LRA_APPROX_H
#define LRA_APPROX_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "registry.h"
#include "util.h"

enum { MAX_VARIANTS = 64, MAX_POINTS = 32, MAX_SPECS = 64, MAX_SEEDS = 100 };
enum { POWER_MAX_ITERS = 100, GRAM_MAX_ITERS = 500 };
static const double POWER_TOL = 1e-4;  /* relative change of σ between power iterations */
static const double LINEAR_TOL = 1e-4; /* relative residual of the linearity probe */

/* "[variant.]name=value[,value...]" from --set attn.… and --sweep. */
typedef struct spec {
    char variant[32]; /* empty: every variant that has the option */
    char name[48];
    char values[MAX_POINTS][48];
    int n;
} spec;

typedef struct approx_opts {
    const lra_attention *attn[MAX_VARIANTS];
    int n_attn;
    const char *task, *preset, *checkpoint, *out, *data_dir, *input;
    int len, batch, seeds, quiet;
    const char *sets[MAX_SPECS]; /* configuration settings other than attn.* */
    int n_sets;
    spec fixed[MAX_SPECS], sweep[MAX_SPECS];
    int n_fixed, n_sweep;
} approx_opts;

/* The inputs every variant is compared on, and softmax's answers. */
typedef struct inputs {
    lra_config cfg;
    lra_attn_shape shape;
    size_t nx;            /* floats in one (B, H, T, Dh) tensor */
    float *q, *k, *v;     /* (B, H, T, Dh) */
    float *mask;          /* (B, T) 1 = real token */
    float *ref;           /* (B, H, T, Dh) softmax output O* */
    double *p_norm;       /* (B·H) ‖P_s‖₂ */
    double *v_norm;       /* (B·H) ‖V_s‖₂ */
    char config_text[16384];
} inputs;

/* One variant set up on the input shape, with the buffers its calls need. */
typedef struct plugin {
    const lra_attention *a;
    lra_attn_ctx ctx;
    lra_attn_sizes sz;
    float *out, *gq, *gk; /* (B, H, T, Dh): forward's output; backward's discarded dq, dk */
} plugin;

/* One (variant, sweep point): what the table and the file report. */
typedef struct point {
    const lra_attention *a;
    const char *option, *value; /* "" without a sweep */
    char options[512];          /* every option of the variant, resolved */
    char status[16], reason[256];
    int seeds, linear, power_iters;
    double flops;
    double frob[MAX_SEEDS], spec[MAX_SEEDS], oper[MAX_SEEDS];
} point;

/* A float buffer of n elements (lra_alloc: exits when out of memory). */
static inline float *floats(size_t n) { return lra_alloc(n * sizeof(float), "approx buffer"); }

/* cmd_approx.c: fills priv with a's defaults, the fixed options that apply, then option=value. */
int lra_approx_set_options(const approx_opts *o, const lra_attention *a, void *priv,
                           const char *option, const char *value, char *err, size_t errlen);

/* approx_inputs.c: the inputs of every point; free_inputs releases them. */
int lra_approx_build_inputs(const approx_opts *o, inputs *in, char *err, size_t errlen);
void lra_approx_free_inputs(inputs *in);

/* approx_measure.c */
void lra_approx_reference(inputs *in, const approx_opts *o);
void lra_approx_measure_point(const approx_opts *o, const inputs *in, point *pt);
void lra_approx_mean_std(const double *x, int n, double *mean, double *std);

/* approx_output.c */
void lra_approx_print_row(const point *pt);
void lra_approx_flush_file(const approx_opts *o, const inputs *in, const point *pts, int n,
                           const char *status, const char *cmdline);

#endif
