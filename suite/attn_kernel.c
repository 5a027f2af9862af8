/* attn_kernel.c — the B3 normalised-kernel attention engine and FAVOR+ random features.
 *
 * See attn_kernel.h for the interface and attention-variants.md §0.4 and §11 for the equations.
 * Sums that BLAS does not do (z, den, the row sums of the FAVOR+ backward) run in a fixed order
 * per slice, so results do not depend on the thread count.
 * The FAVOR+ elementwise passes are written to vectorise: exp is lra_expf (lra_vmath.h) instead
 * of libm's expf call, and the row maxima and row sums use fixed sets of partial results
 * combined in a fixed order (a single running max or sum is a serial chain GCC does not
 * reorder). Performer with the softmax kernel (m = 256, Dh = 32, T = 4096): 0.28 → 0.20 s of
 * CPU per layer forward + backward, single-threaded; the rest is mostly the GEMMs.
 */
#include "attn_kernel.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "lra_rng.h"
#include "lra_vmath.h"

size_t lra_kernel_cache_floats(const lra_kernel_spec *sp)
{
    const size_t T = (size_t)sp->T, r = (size_t)sp->r, dv = (size_t)sp->dv;
    return 2 * T * r + r * dv + r + T; /* Φ, Ψ, S, z, den */
}

size_t lra_kernel_work_floats(const lra_kernel_spec *sp)
{
    const size_t T = (size_t)sp->T, r = (size_t)sp->r, dv = (size_t)sp->dv;
    return T * dv + T + r * dv + r; /* G = dO/den, h, dS, dz */
}

lra_kernel_cache lra_kernel_cache_view(const lra_kernel_spec *sp, float *base)
{
    const size_t T = (size_t)sp->T, r = (size_t)sp->r, dv = (size_t)sp->dv;
    lra_kernel_cache c;
    c.phi = base;
    c.psi = c.phi + T * r;
    c.S = c.psi + T * r;
    c.z = c.S + r * dv;
    c.den = c.z + r;
    return c;
}

double lra_kernel_flops(const lra_kernel_spec *sp)
{
    const double T = sp->T, r = sp->r, dv = sp->dv;
    /* S = ΨᵀV and ΦS: 2·T·r·dv each; z: T·r; den: 2·T·r; the division: T·dv. */
    if (sp->norm == LRA_KERNEL_NORM_NONE) return 4.0 * T * r * dv;
    return 4.0 * T * r * dv + 3.0 * T * r + T * dv;
}

/* The stabilised denominator for the raw value R = Φ_i · z. */
static float kernel_stabilise(const lra_kernel_spec *sp, float R)
{
    switch (sp->norm) {
    case LRA_KERNEL_NORM_EPS: return R + sp->eps;
    case LRA_KERNEL_NORM_RENORM: return fabsf(R) <= sp->eps ? R + 2.0f * sp->eps : R;
    case LRA_KERNEL_NORM_CLAMP: return R > sp->eps ? R : sp->eps;
    case LRA_KERNEL_NORM_NONE: break;
    }
    return 1.0f;
}

/* 1 when den_i depends on Φ_i · z, 0 when a clamp cut that dependence. */
static int kernel_den_is_live(const lra_kernel_spec *sp, float den)
{
    return sp->norm != LRA_KERNEL_NORM_CLAMP || den > sp->eps;
}

/* z (r) = Σ_j Ψ_j over the rows of psi (T, r), in row order. */
static void kernel_column_sums(const float *psi, int T, int r, float *z)
{
    memset(z, 0, (size_t)r * sizeof(float));
    for (int j = 0; j < T; j++) {
        const float *row = psi + (size_t)j * r; /* (r) */
        for (int l = 0; l < r; l++) z[l] += row[l];
    }
}

void lra_kernel_forward(const lra_kernel_spec *sp, const lra_kernel_cache *c, const float *V,
                        float *O)
{
    const int T = sp->T, r = sp->r, dv = sp->dv;

    /* S = Ψᵀ V (r, dv); O = Φ S (T, dv), not yet divided. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, dv, T, 1.0f, c->psi, r, V, dv, 0.0f,
                c->S, dv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dv, r, 1.0f, c->phi, r, c->S, dv,
                0.0f, O, dv);
    if (sp->norm == LRA_KERNEL_NORM_NONE) {
        memset(c->z, 0, (size_t)r * sizeof(float));
        for (int i = 0; i < T; i++) c->den[i] = 1.0f;
        return;
    }

    /* z = Σ_j Ψ_j (r); den = stab(Φ z) (T); o_i /= den_i. */
    kernel_column_sums(c->psi, T, r, c->z);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, T, r, 1.0f, c->phi, r, c->z, 1, 0.0f, c->den, 1);
    for (int i = 0; i < T; i++) {
        c->den[i] = kernel_stabilise(sp, c->den[i]);
        const float inv = 1.0f / c->den[i];
        for (int e = 0; e < dv; e++) O[(size_t)i * dv + e] *= inv;
    }
}

/* G (T, dv) = dO / den by rows; h (T) = −(do_i · o_i) / den_i, or 0 where the clamp is active. */
static void kernel_scaled_dout(const lra_kernel_spec *sp, const lra_kernel_cache *c,
                               const float *O, const float *dO, float *G, float *h)
{
    const int T = sp->T, dv = sp->dv;
    for (int i = 0; i < T; i++) {
        const float *o = O + (size_t)i * dv, *dout = dO + (size_t)i * dv; /* (dv) */
        float *g = G + (size_t)i * dv;                                    /* (dv) */
        const float inv = 1.0f / c->den[i];
        double dot = 0.0;
        for (int e = 0; e < dv; e++) {
            g[e] = dout[e] * inv;
            dot += (double)dout[e] * o[e];
        }
        h[i] = kernel_den_is_live(sp, c->den[i]) ? (float)(-dot) * inv : 0.0f;
    }
}

void lra_kernel_backward(const lra_kernel_spec *sp, const lra_kernel_cache *c, const float *mask,
                         const float *V, const float *O, const float *dO, float *dphi,
                         float *dpsi, float *dV, float *work)
{
    const int T = sp->T, r = sp->r, dv = sp->dv;
    const int normalised = sp->norm != LRA_KERNEL_NORM_NONE;
    float *G = work;                          /* (T, dv) do_i / den_i */
    float *h = G + (size_t)T * dv;            /* (T) −(do_i·o_i) / den_i */
    float *dS = h + T;                        /* (r, dv) */
    float *dz = dS + (size_t)r * dv;          /* (r) */
    const float *g = normalised ? G : dO;     /* un-normalised: g_i = do_i */

    /* forward was o_i = Φ_i S / den_i with den_i = stab(Φ_i·z), so with g_i = do_i / den_i and
     * h_i = −(do_i·o_i) / den_i: dΦ_i = S g_i + h_i z, dS = Σ_i Φ_i g_iᵀ, dz = Σ_i h_i Φ_i. */
    if (normalised) kernel_scaled_dout(sp, c, O, dO, G, h);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, r, dv, 1.0f, g, dv, c->S, dv, 0.0f,
                dphi, r);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, dv, T, 1.0f, c->phi, r, g, dv, 0.0f,
                dS, dv);
    if (normalised) {
        cblas_sger(CblasRowMajor, T, r, 1.0f, h, 1, c->z, 1, dphi, r);
        cblas_sgemv(CblasRowMajor, CblasTrans, T, r, 1.0f, c->phi, r, h, 1, 0.0f, dz, 1);
    }

    /* forward was S = Σ_j Ψ_j v_jᵀ and z = Σ_j Ψ_j, so dΨ_j = dS v_j + dz and dv_j += dSᵀ Ψ_j.
     * Ψ_j = m_j φ_k(k_j), so the rows of padded keys get 0; their Ψ_j = 0 gives dv_j += 0. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, r, dv, 1.0f, V, dv, dS, dv, 0.0f,
                dpsi, r);
    for (int j = 0; j < T; j++) {
        float *row = dpsi + (size_t)j * r; /* (r) */
        if (mask[j] == 0.0f)
            memset(row, 0, (size_t)r * sizeof(float));
        else if (normalised)
            for (int l = 0; l < r; l++) row[l] += dz[l];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dv, r, 1.0f, c->psi, r, dS, dv,
                1.0f, dV, dv);
}

/* ---- random features ------------------------------------------------------------------- */

/* Norm of an independent standard Gaussian d-vector drawn from stream `key` at counters from
 * `first`: chi-distributed with d degrees of freedom. */
static double kernel_chi(int d, uint64_t key, uint64_t first)
{
    double s = 0.0;
    for (int e = 0; e < d; e++) {
        const double g = lra_normal(key, first + (uint64_t)e);
        s += g * g;
    }
    return sqrt(s);
}

/* Makes x (d, double) orthogonal to the n rows of Q (n, d, float, orthonormal), two passes of
 * modified Gram–Schmidt ("twice is enough"), then unit length. Returns 0 if x collapsed. */
static int kernel_orthonormalise(double *x, const float *Q, int n, int d)
{
    for (int pass = 0; pass < 2; pass++)
        for (int p = 0; p < n; p++) {
            const float *q = Q + (size_t)p * d; /* (d) */
            double dot = 0.0;
            for (int e = 0; e < d; e++) dot += x[e] * q[e];
            for (int e = 0; e < d; e++) x[e] -= dot * q[e];
        }
    double nrm = 0.0;
    for (int e = 0; e < d; e++) nrm += x[e] * x[e];
    nrm = sqrt(nrm);
    if (!(nrm > 1e-12)) return 0;
    for (int e = 0; e < d; e++) x[e] /= nrm;
    return 1;
}

/* One orthonormal block: rows (n ≤ d, d) = the first n of the Q factor's columns of a d × d
 * Gaussian matrix, i.e. Gram–Schmidt of Gaussian rows. Counters from `first`; a row that
 * collapses (probability 0 in exact arithmetic) is redrawn from further counters. */
static void kernel_ortho_block(float *rows, int n, int d, uint64_t key, uint64_t first)
{
    double x[LRA_KERNEL_MAX_ORTHO_DIM];
    uint64_t ctr = first;
    for (int i = 0; i < n; i++) {
        do {
            for (int e = 0; e < d; e++) x[e] = lra_normal(key, ctr++);
        } while (!kernel_orthonormalise(x, rows, i, d));
        for (int e = 0; e < d; e++) rows[(size_t)i * d + e] = (float)x[e];
    }
}

void lra_kernel_draw_features(float *W, int m, int d, int ortho, lra_kernel_scaling scaling,
                              uint64_t key)
{
    const uint64_t k_dir = lra_key(key, 1), k_norm = lra_key(key, 2);
    if (!ortho) {
        for (size_t i = 0; i < (size_t)m * d; i++) W[i] = lra_normal(k_dir, i);
        return;
    }
    /* Each block has its own counter range, wide enough for redrawn rows. */
    const uint64_t block_span = 4 * (uint64_t)d * d;
    for (int b0 = 0, blk = 0; b0 < m; b0 += d, blk++) {
        const int n = m - b0 < d ? m - b0 : d;
        kernel_ortho_block(W + (size_t)b0 * d, n, d, k_dir, (uint64_t)blk * block_span);
    }
    for (int l = 0; l < m; l++) {
        const double s = scaling == LRA_KERNEL_SCALE_CHI ? kernel_chi(d, k_norm, (uint64_t)l * d)
                                                         : sqrt((double)d);
        for (int e = 0; e < d; e++) W[(size_t)l * d + e] = (float)(W[(size_t)l * d + e] * s);
    }
}

/* ‖x'‖²/2 for x' = d^(−1/4) x: ‖x‖² / (2√d). */
static float kernel_half_sqnorm(const float *x, int d)
{
    double s = 0.0;
    for (int e = 0; e < d; e++) s += (double)x[e] * x[e];
    return (float)(s / (2.0 * sqrt((double)d)));
}

/* Max of u (n). Sixteen running maxima, combined at the end, instead of one: the loop then
 * vectorises (a single running max is a serial chain GCC will not reorder without
 * -ffast-math). The value is the same whatever the order; NaNs are not expected here. */
static float kernel_max(const float *u, size_t n)
{
    enum { LANES = 16 };
    float lane[LANES];
    for (int k = 0; k < LANES; k++) lane[k] = -INFINITY;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) lane[k] = u[i + k] > lane[k] ? u[i + k] : lane[k];
    for (; i < n; i++) lane[0] = u[i] > lane[0] ? u[i] : lane[0];
    float c = lane[0];
    for (int k = 1; k < LANES; k++) c = lane[k] > c ? lane[k] : c;
    return c;
}

/* Index of the first element of u (n) equal to c, which is in u. */
static size_t kernel_find(const float *u, size_t n, float c)
{
    size_t i = 0;
    while (i + 1 < n && u[i] != c) i++;
    return i;
}

/* The key stabiliser: max of U (T, m) over all entries of real rows, with its (row, column) in
 * arg (2); 0 and (−1, −1) if there are no real rows. The first maximum in row order wins. */
static float kernel_key_max(const float *U, int T, int m, const float *mask, float *arg)
{
    float c = -INFINITY;
    int best = -1;
    arg[0] = arg[1] = -1.0f;
    for (int j = 0; j < T; j++) {
        if (mask[j] == 0.0f) continue;
        const float row = kernel_max(U + (size_t)j * m, (size_t)m);
        if (best < 0 || row > c) {
            c = row;
            best = j;
        }
    }
    if (best < 0) return 0.0f;
    arg[0] = (float)best;
    arg[1] = (float)kernel_find(U + (size_t)best * m, (size_t)m, c);
    return c;
}

/* Max of u (m) with its index in *arg; the first maximum wins. */
static float kernel_row_max(const float *u, int m, float *arg)
{
    const float c = kernel_max(u, (size_t)m);
    *arg = (float)kernel_find(u, (size_t)m, c);
    return c;
}

void lra_kernel_favor_features(const lra_kernel_favor *fv, const float *X, int T,
                               const float *mask, float *F, float *arg)
{
    const int m = fv->m, d = fv->d;
    const float xscale = 1.0f / sqrtf(sqrtf((float)d)); /* d^(−1/4) */
    const float ratio = 1.0f / sqrtf((float)m);         /* m^(−1/2) */

    /* U = X' Wᵀ (T, m), in F: U_il = ω_l · x'_i. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, m, d, xscale, X, d, fv->W, d, 0.0f,
                F, m);
    const float c_keys = mask ? kernel_key_max(F, T, m, mask, arg) : 0.0f;
    for (int i = 0; i < T; i++) {
        float *f = F + (size_t)i * m; /* (m) */
        if (mask && mask[i] == 0.0f) {
            memset(f, 0, (size_t)m * sizeof(float));
            continue;
        }
        const float c = mask ? c_keys : kernel_row_max(f, m, arg + i);
        const float shift = kernel_half_sqnorm(X + (size_t)i * d, d) + c;
        for (int l = 0; l < m; l++) f[l] = ratio * (lra_expf(f[l] - shift) + fv->eps);
    }
}

/* Σ u (n) in double, over eight interleaved partial sums added in a fixed order at the end,
 * so that the loop vectorises and the result does not depend on the thread count. */
static double kernel_sum(const float *u, size_t n)
{
    enum { LANES = 8 };
    double lane[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) lane[k] += u[i + k];
    for (; i < n; i++) lane[0] += u[i];
    double s = 0.0;
    for (int k = 0; k < LANES; k++) s += lane[k];
    return s;
}

/* dx (d) += coef · ω_l, the gradient through a stabiliser c = ω_l·x' (coef = d^(−1/4)·∂L/∂c). */
static void kernel_add_row(float *dx, const float *W, int l, int d, float coef)
{
    for (int e = 0; e < d; e++) dx[e] += coef * W[(size_t)l * d + e];
}

void lra_kernel_favor_backward(const lra_kernel_favor *fv, const float *X, int T, int keys,
                               const float *F, const float *arg, float *G, float *dX)
{
    const int m = fv->m, d = fv->d;
    const float xscale = 1.0f / sqrtf(sqrtf((float)d)); /* d^(−1/4) */
    const float eps_term = fv->eps / sqrtf((float)m);    /* m^(−1/2)·ε */
    double total = 0.0;                                  /* Σ_il Ĝ_il = −∂L/∂c for keys */

    /* forward was F_il = m^(−1/2)(exp(ω_l·x'_i − ‖x'_i‖²/2 − c) + ε), so with
     * Ĝ = G ∘ (F − m^(−1/2)ε): dx'_i = Σ_l Ĝ_il ω_l − x'_i Σ_l Ĝ_il, and ∂L/∂c = −Σ Ĝ over
     * the rows c was subtracted from. */
    for (int i = 0; i < T; i++) {
        float *g = G + (size_t)i * m;       /* (m) */
        const float *f = F + (size_t)i * m; /* (m) */
        float *dx = dX + (size_t)i * d;     /* (d) */
        for (int l = 0; l < m; l++) g[l] *= f[l] - eps_term;
        const double rowsum = kernel_sum(g, (size_t)m);
        total += rowsum;
        /* forward was x' = d^(−1/4) x, so dx = d^(−1/4) dx'; the x' term is d^(−1/2)·x·Σ Ĝ. */
        const float coef = (float)(-rowsum) * xscale * xscale;
        for (int e = 0; e < d; e++) dx[e] += coef * X[(size_t)i * d + e];
        /* forward was c_i = ω_{l*}·x'_i (queries), so dx_i += d^(−1/4)·∂L/∂c_i·ω_{l*}. */
        if (!keys) kernel_add_row(dx, fv->W, (int)arg[i], d, (float)(-rowsum) * xscale);
    }
    /* forward was c = ω_{l*}·x'_{j*} over all real keys, so dx_{j*} += d^(−1/4)·∂L/∂c·ω_{l*}. */
    if (keys && arg[0] >= 0.0f)
        kernel_add_row(dX + (size_t)arg[0] * d, fv->W, (int)arg[1], d, (float)(-total) * xscale);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, d, m, xscale, G, m, fv->W, d, 1.0f,
                dX, d);
}

int lra_kernel_threads(const lra_attn_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
}
