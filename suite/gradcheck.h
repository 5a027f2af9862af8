/* gradcheck.h — directional finite-difference gradient checks.
 *
 * For a loss L(x) and its back-propagated gradient g, each check draws a random unit direction u
 * and compares the central difference (L(x + eps*u) - L(x - eps*u)) / (2*eps) with <g, u>.
 * Directional checks test a whole buffer at once; one set of directions is drawn per input
 * buffer (q, k, v, each parameter slice), because a combined direction can hide a broken input.
 *
 * Measured on exact softmax attention in float32 (style.md §7): eps = 1e-2 gives relative errors
 * of 6e-6 to 4e-5, and a smaller eps is worse in float32. Default verdicts: pass below 1e-3,
 * warn below 1e-2 (counted as a pass but reported), fail otherwise or on NaN/Inf.
 */
#ifndef LRA_GRADCHECK_H
#define LRA_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

/* Evaluates the loss at the current contents of all inputs; accumulates in double. */
typedef double (*lra_loss_fn)(void *ctx);

/* Optional: a hash of the discrete choices the last loss evaluation made (ReLU signs, hash
 * buckets, top-k picks). Where the +eps and -eps evaluations disagree with the unperturbed one,
 * the central difference straddles a kink and says nothing about the gradient: that direction
 * is skipped and another is drawn (ggml's filter for meaningless points). */
typedef uint64_t (*lra_signature_fn)(void *ctx);

typedef struct lra_gradcheck_opts {
    int directions;  /* random directions per buffer (default 4) */
    double eps;      /* step (default 1e-2) */
    double tol_pass; /* relative error for a pass (default 1e-3) */
    double tol_warn; /* relative error for a warning (default 1e-2) */
    uint64_t seed;   /* directions */
    lra_signature_fn signature; /* NULL: every direction counts */
} lra_gradcheck_opts;

typedef enum { LRA_GC_PASS = 0, LRA_GC_WARN = 1, LRA_GC_FAIL = 2 } lra_gc_verdict;

typedef struct lra_gradcheck_result {
    double worst_rel;     /* largest relative error over the directions */
    double fd_at_worst;   /* finite-difference value at the worst direction */
    double an_at_worst;   /* analytic value at the worst direction */
    int skipped;          /* directions skipped because they crossed a kink */
    lra_gc_verdict verdict;
} lra_gradcheck_result;

lra_gradcheck_opts lra_gradcheck_defaults(void);

/* Checks the gradient g (n floats) of f with respect to x (n floats, perturbed in place and
 * restored bit-exactly). The relative error of one direction is
 *     |fd - an| / max(|fd|, |an|, |g|_2 / sqrt(n), 1e-6)
 * where |g|_2 / sqrt(n) is the typical size of a directional derivative along a random unit
 * direction. Without it, a direction that happens to be nearly orthogonal to g would be judged
 * on float32 rounding noise in the loss (about |L| * 1e-7 / eps absolute), not on the gradient.
 * A real bug changes g by a fraction of |g|, which still shows as an O(1) relative error. */
lra_gradcheck_result lra_gradcheck(lra_loss_fn f, void *ctx, float *x, const float *g, size_t n,
                                   const lra_gradcheck_opts *opt);

/* Prints "  name: worst rel err 3.1e-06 (fd 0.123, an 0.123) PASS" to stdout. */
void lra_gradcheck_print(const char *name, const lra_gradcheck_result *r);

#endif
