/* ops.c — the model's layers as forward/backward pairs over flat row-major buffers (see ops.h).
 *
 * Dimension letters: n rows (usually B*T tokens), d features, B batch, T tokens, D model width,
 * H heads, Dh head width, C classes.
 *
 * Determinism: every output element is written by exactly one thread, and every reduction
 * (bias and LayerNorm parameter gradients, pooling, learned-position gradients, the loss) runs
 * in a fixed order inside that thread. Column reductions are parallelised over blocks of
 * columns rather than over rows, so the result does not even depend on the thread count.
 * Nothing here allocates.
 */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "lra_rng.h"
#include "util.h"

/* Below this many elements, starting an OpenMP team costs more than the loop. */
#define OMP_MIN_WORK 16384
/* Column reductions accumulate this many columns at a time in a double buffer on the stack. */
#define COL_BLOCK 64

#define LN_EPS 1e-6

/* ------------------------------------------------------------------------------------------ */
/* Deterministic column sums: acc (d) += sum_i x[i, :] for x (n, d), accumulated in double.
 * Parallel over blocks of columns; each block reads all rows in order. */
static void column_sums_add(float *restrict acc, const float *restrict x, int n, int d)
{
    int nblocks = (d + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((long)n * d >= OMP_MIN_WORK)
    for (int blk = 0; blk < nblocks; blk++) {
        int j0 = blk * COL_BLOCK;
        int nj = d - j0 < COL_BLOCK ? d - j0 : COL_BLOCK;
        double sum[COL_BLOCK] = {0};
        for (int i = 0; i < n; i++) {
            const float *row = x + (size_t)i * d + j0;
            for (int j = 0; j < nj; j++) sum[j] += row[j];
        }
        for (int j = 0; j < nj; j++) acc[j0 + j] += (float)sum[j];
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Embedding */

void op_embed_forward(float *restrict out, const int32_t *restrict tok,
                      const float *restrict table, int n, int d)
{
#pragma omp parallel for schedule(static) if ((long)n * d >= OMP_MIN_WORK)
    for (int i = 0; i < n; i++) {
        LRA_ASSERT(tok[i] >= 0);
        memcpy(out + (size_t)i * d, table + (size_t)tok[i] * d, (size_t)d * sizeof(float));
    }
}

void op_embed_backward(float *restrict dtable, const float *restrict dout,
                       const int32_t *restrict tok, int n, int d)
{
    if (!dtable) return;
    /* Repeated tokens scatter into the same table row, so rows cannot be split across threads;
     * columns can: each thread owns a block of columns and visits the tokens in order. */
    int nblocks = (d + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((long)n * d >= OMP_MIN_WORK)
    for (int blk = 0; blk < nblocks; blk++) {
        int j0 = blk * COL_BLOCK;
        int nj = d - j0 < COL_BLOCK ? d - j0 : COL_BLOCK;
        for (int i = 0; i < n; i++) {
            // forward was: out[i, j] = table[tok[i], j]
            float *drow = dtable + (size_t)tok[i] * d + j0;
            const float *dorow = dout + (size_t)i * d + j0;
            for (int j = 0; j < nj; j++) drow[j] += dorow[j];
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Position codes */

void op_add_sinusoid(float *restrict x, int B, int T, int D)
{
    /* flax AddPositionEmbs: div_term = exp(arange(0, D, 2) * -(log(10000) / D)), computed in
     * double like the numpy original, then rounded once to float. */
    const double log_base = log(10000.0);
#pragma omp parallel for schedule(static) if ((long)B * T * D >= OMP_MIN_WORK)
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < D; j += 2) {
            double angle = (double)t * exp(-log_base * (double)j / (double)D);
            float s = (float)sin(angle), c = (float)cos(angle);
            for (int b = 0; b < B; b++) {
                float *row = x + ((size_t)b * T + t) * D;
                row[j] += s;
                if (j + 1 < D) row[j + 1] += c;
            }
        }
    }
}

void op_add_pos_forward(float *restrict x, const float *restrict pos, int B, int T, int D)
{
    size_t td = (size_t)T * D;
#pragma omp parallel for schedule(static) if ((long)B * T * D >= OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        float *xb = x + (size_t)b * td;
        for (size_t i = 0; i < td; i++) xb[i] += pos[i];
    }
}

void op_add_pos_backward(float *restrict dpos, const float *restrict dx, int B, int T, int D)
{
    if (!dpos) return;
    /* Parallel over positions; each sums its B contributions in batch order. */
#pragma omp parallel for schedule(static) if ((long)B * T * D >= OMP_MIN_WORK)
    for (int t = 0; t < T; t++) {
        float *dp = dpos + (size_t)t * D;
        for (int b = 0; b < B; b++) {
            // forward was: x[b, t, :] += pos[t, :]
            const float *dxr = dx + ((size_t)b * T + t) * D;
            for (int j = 0; j < D; j++) dp[j] += dxr[j];
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Linear */

/* OpenBLAS runs a tall, thin product such as (B·T × 64) · (64 × 192) at under half of its
 * square-matrix rate: it packs the whole tall operand in one sweep that leaves the caches before
 * the kernel reads it. Cut into blocks of GEMM_ROWS rows, one single-threaded sgemm per block
 * inside our own parallel loop, each block's operand and result stay in L2; measured on 2 cores,
 * 32768 × 192 × 64 rose from 184 to 332 GFLOP/s, 32768 × 64 × 64 from 151 to 307 (ceiling 390).
 * The block size is fixed, so every output row is computed the same way at any thread count. */
#define GEMM_ROWS 256

void op_gemm_rows(int trans_w, int n, int cols, int k, const float *a, int lda, const float *w,
                  int ldw, float beta, float *c, int ldc)
{
    const CBLAS_TRANSPOSE tw = trans_w ? CblasTrans : CblasNoTrans;
    const int blocks = (n + GEMM_ROWS - 1) / GEMM_ROWS;
    /* Always inside our parallel region, even for one block, so that OpenBLAS never threads a
     * call itself and every row is computed by one single-threaded sgemm of a fixed shape. */
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < blocks; blk++) {
        const int i0 = blk * GEMM_ROWS, rows = n - i0 < GEMM_ROWS ? n - i0 : GEMM_ROWS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tw, rows, cols, k, 1.0f, a + (size_t)i0 * lda,
                    lda, w, ldw, beta, c + (size_t)i0 * ldc, ldc);
    }
}

void op_linear_forward(float *restrict y, const float *restrict x, const float *restrict w,
                       const float *restrict b, int n, int in, int out)
{
    /* Seed y with the bias so one GEMM with beta = 1 adds the product. */
    float beta = 0.0f;
    if (b) {
#pragma omp parallel for schedule(static) if ((long)n * out >= OMP_MIN_WORK)
        for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    // y (n, out) = x (n, in) · w (in, out) + beta * y
    op_gemm_rows(0, n, out, in, x, in, w, out, beta, y, out);
}

void op_linear_backward(float *restrict dx, float *restrict dw, float *restrict db,
                        const float *restrict dy, const float *restrict x,
                        const float *restrict w, int n, int in, int out)
{
    // forward was: y = x · w + b, so
    // dx (n, in) += dy (n, out) · w^T
    if (dx) op_gemm_rows(1, n, in, out, dy, out, w, out, 1.0f, dx, in);
    // dw (in, out) += x^T (in, n) · dy (n, out)
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, n, 1.0f, x, in, dy, out,
                    1.0f, dw, out);
    // db (out) += column sums of dy
    if (db) column_sums_add(db, dy, n, out);
}

/* ------------------------------------------------------------------------------------------ */
/* LayerNorm */

void op_layernorm_forward(float *restrict y, float *restrict mean, float *restrict rstd,
                          const float *restrict x, const float *restrict g,
                          const float *restrict b, int n, int d)
{
#pragma omp parallel for schedule(static) if ((long)n * d >= OMP_MIN_WORK)
    for (int i = 0; i < n; i++) {
        const float *xr = x + (size_t)i * d;
        float *yr = y + (size_t)i * d;
        /* Two passes in double: the variance never suffers the E[x^2] - E[x]^2 cancellation. */
        double sum = 0.0;
        for (int j = 0; j < d; j++) sum += xr[j];
        double m = sum / d;
        double sq = 0.0;
        for (int j = 0; j < d; j++) sq += ((double)xr[j] - m) * ((double)xr[j] - m);
        float mf = (float)m;
        float rs = (float)(1.0 / sqrt(sq / d + LN_EPS));
        for (int j = 0; j < d; j++) yr[j] = (xr[j] - mf) * rs * g[j] + b[j];
        mean[i] = mf;
        rstd[i] = rs;
    }
}

/* dx for one row: xhat = (x - mean) * rstd and dxhat = dy * g, so
 * dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)). */
static void layernorm_backward_row(float *restrict dx, const float *restrict dy,
                                   const float *restrict x, float mean, float rstd,
                                   const float *restrict g, int d)
{
    double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
    for (int j = 0; j < d; j++) {
        float xhat = (x[j] - mean) * rstd;
        float dxhat = dy[j] * g[j];
        sum_dxhat += dxhat;
        sum_dxhat_xhat += (double)dxhat * xhat;
    }
    float mean_dxhat = (float)(sum_dxhat / d);
    float mean_dxhat_xhat = (float)(sum_dxhat_xhat / d);
    for (int j = 0; j < d; j++) {
        float xhat = (x[j] - mean) * rstd;
        float dxhat = dy[j] * g[j];
        dx[j] += rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
    }
}

/* dg (d) += sum_i dy[i, :] * xhat[i, :] and db (d) += sum_i dy[i, :], by column blocks. */
static void layernorm_backward_params(float *restrict dg, float *restrict db,
                                      const float *restrict dy, const float *restrict x,
                                      const float *restrict mean, const float *restrict rstd,
                                      int n, int d)
{
    int nblocks = (d + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((long)n * d >= OMP_MIN_WORK)
    for (int blk = 0; blk < nblocks; blk++) {
        int j0 = blk * COL_BLOCK;
        int nj = d - j0 < COL_BLOCK ? d - j0 : COL_BLOCK;
        double sg[COL_BLOCK] = {0}, sb[COL_BLOCK] = {0};
        for (int i = 0; i < n; i++) {
            const float *dyr = dy + (size_t)i * d + j0;
            const float *xr = x + (size_t)i * d + j0;
            for (int j = 0; j < nj; j++) {
                // forward was: y = xhat * g + b
                sg[j] += (double)dyr[j] * ((xr[j] - mean[i]) * rstd[i]);
                sb[j] += dyr[j];
            }
        }
        for (int j = 0; j < nj; j++) {
            if (dg) dg[j0 + j] += (float)sg[j];
            if (db) db[j0 + j] += (float)sb[j];
        }
    }
}

void op_layernorm_backward(float *restrict dx, float *restrict dg, float *restrict db,
                           const float *restrict dy, const float *restrict x,
                           const float *restrict mean, const float *restrict rstd,
                           const float *restrict g, int n, int d)
{
    if (dx) {
#pragma omp parallel for schedule(static) if ((long)n * d >= OMP_MIN_WORK)
        for (int i = 0; i < n; i++) {
            size_t o = (size_t)i * d;
            layernorm_backward_row(dx + o, dy + o, x + o, mean[i], rstd[i], g, d);
        }
    }
    if (dg || db) layernorm_backward_params(dg, db, dy, x, mean, rstd, n, d);
}

/* ------------------------------------------------------------------------------------------ */
/* Activations. No restrict on y and x: callers may apply them in place. */

/* GELU: see ops_fused.c. */

void op_relu_forward(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void op_relu_backward(float *restrict dx, const float *restrict dy, const float *restrict x,
                      size_t n)
{
    if (!dx) return;
#pragma omp parallel for schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        // forward was: y = max(x, 0), so the gradient passes where x > 0
        if (x[i] > 0.0f) dx[i] += dy[i];
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Dropout */

/* Scale of kept elements; p >= 1 drops everything (lra_uniform < 1 always), so 0. */
static float dropout_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

void op_dropout_forward(float *y, const float *x, size_t n, float p, uint64_t key,
                        uint64_t first)
{
    /* No restrict: y may equal x. */
    if (p <= 0.0f) {
        if (y != x) memmove(y, x, n * sizeof(float));
        return;
    }
    float scale = dropout_scale(p);
#pragma omp parallel for schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) y[i] = lra_uniform(key, first + i) >= p ? x[i] * scale : 0.0f;
}

void op_dropout_backward(float *restrict dx, const float *restrict dy, size_t n, float p,
                         uint64_t key, uint64_t first)
{
    if (!dx) return;
    if (p <= 0.0f) {
        op_add_inplace(dx, dy, n);
        return;
    }
    float scale = dropout_scale(p);
#pragma omp parallel for schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        // forward was: y = keep(i) ? x * scale : 0, with the mask regenerated from the key
        if (lra_uniform(key, first + i) >= p) dx[i] += dy[i] * scale;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Softmax cross-entropy. n is the batch (tens of rows), so these loops stay serial; that also
 * keeps the double loss sum in one fixed order. */

/* Writes the softmax of one row of logits into probs and returns -log p[label] in double,
 * computed as logsumexp - logit[label] so it stays finite when p[label] underflows. */
static double softmax_xent_row(float *restrict probs, const float *restrict logits, int label,
                               int C)
{
    float maxv = logits[0];
    for (int c = 1; c < C; c++) maxv = logits[c] > maxv ? logits[c] : maxv;
    double sum = 0.0;
    for (int c = 0; c < C; c++) {
        double e = exp((double)logits[c] - maxv);
        probs[c] = (float)e;
        sum += e;
    }
    for (int c = 0; c < C; c++) probs[c] = (float)(probs[c] / sum);
    return log(sum) + maxv - logits[label];
}

/* sum_i weight[i] (n for weight == NULL). */
static double weight_total(const float *weight, int n)
{
    if (!weight) return (double)n;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += weight[i];
    return s;
}

double op_xent_forward(float *restrict probs, const float *restrict logits,
                       const int32_t *restrict labels, const float *restrict weight, int n,
                       int C)
{
    /* Returns sum_i w_i loss_i / sum_i w_i: with 0/1 weights, the mean over the rows with
     * weight != 0, and in general exactly the loss whose gradient op_xent_backward adds. */
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        LRA_ASSERT(labels[i] >= 0 && labels[i] < C);
        double loss = softmax_xent_row(probs + (size_t)i * C, logits + (size_t)i * C,
                                       labels[i], C);
        /* Skip zero-weight rows instead of adding 0 * loss, which is NaN for a NaN row. */
        if (!weight) total += loss;
        else if (weight[i] != 0.0f) total += (double)weight[i] * loss;
    }
    double wsum = weight_total(weight, n);
    return wsum != 0.0 ? total / wsum : 0.0;
}

void op_xent_backward(float *restrict dlogits, const float *restrict probs,
                      const int32_t *restrict labels, const float *restrict weight, int n,
                      int C)
{
    if (!dlogits) return;
    double wsum = weight_total(weight, n);
    if (wsum == 0.0) return;
    for (int i = 0; i < n; i++) {
        if (weight && weight[i] == 0.0f) continue;
        // forward was: loss = sum_i w_i (-log softmax(logits_i)[label_i]) / sum(w), so
        // dlogits_i = (probs_i - onehot(label_i)) * w_i / sum(w)
        float scale = (float)((weight ? weight[i] : 1.0) / wsum);
        const float *p = probs + (size_t)i * C;
        float *dl = dlogits + (size_t)i * C;
        for (int c = 0; c < C; c++) dl[c] += (p[c] - (c == labels[i] ? 1.0f : 0.0f)) * scale;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Pooling */

void op_pool_cls_forward(float *restrict out, const float *restrict x, int B, int T, int D)
{
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * D, x + (size_t)b * T * D, (size_t)D * sizeof(float));
}

void op_pool_cls_backward(float *restrict dx, const float *restrict dout, int B, int T, int D)
{
    if (!dx) return;
    for (int b = 0; b < B; b++) {
        // forward was: out[b] = x[b, 0]
        float *dxr = dx + (size_t)b * T * D;
        const float *dor = dout + (size_t)b * D;
        for (int j = 0; j < D; j++) dxr[j] += dor[j];
    }
}

/* max(1, sum_t mask[t]) for one batch row. */
static double mask_count(const float *mask, int T)
{
    double cnt = 0.0;
    for (int t = 0; t < T; t++) cnt += mask[t];
    return cnt > 1.0 ? cnt : 1.0;
}

void op_pool_mean_forward(float *restrict out, const float *restrict x,
                          const float *restrict mask, int B, int T, int D)
{
#pragma omp parallel for schedule(static) if ((long)B * T * D >= OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        const float *mb = mask + (size_t)b * T;
        double inv = 1.0 / mask_count(mb, T);
        /* Column blocks with a double accumulator: T can be thousands of tokens. */
        for (int j0 = 0; j0 < D; j0 += COL_BLOCK) {
            int nj = D - j0 < COL_BLOCK ? D - j0 : COL_BLOCK;
            double sum[COL_BLOCK] = {0};
            for (int t = 0; t < T; t++) {
                if (mb[t] == 0.0f) continue; /* padded rows are never read */
                const float *xr = x + ((size_t)b * T + t) * D + j0;
                for (int j = 0; j < nj; j++) sum[j] += (double)mb[t] * xr[j];
            }
            for (int j = 0; j < nj; j++) out[(size_t)b * D + j0 + j] = (float)(sum[j] * inv);
        }
    }
}

void op_pool_mean_backward(float *restrict dx, const float *restrict dout,
                           const float *restrict mask, int B, int T, int D)
{
    if (!dx) return;
#pragma omp parallel for schedule(static) if ((long)B * T * D >= OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        const float *mb = mask + (size_t)b * T;
        double inv = 1.0 / mask_count(mb, T);
        const float *dor = dout + (size_t)b * D;
        for (int t = 0; t < T; t++) {
            if (mb[t] == 0.0f) continue;
            // forward was: out[b] = sum_t mask[b, t] x[b, t] / max(1, count[b])
            float s = (float)(mb[t] * inv);
            float *dxr = dx + ((size_t)b * T + t) * D;
            for (int j = 0; j < D; j++) dxr[j] += s * dor[j];
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Dual-encoder features */

void op_dual_features_forward(float *restrict f, const float *restrict u,
                              const float *restrict v, int B, int D)
{
    for (int b = 0; b < B; b++) {
        const float *ub = u + (size_t)b * D, *vb = v + (size_t)b * D;
        float *fb = f + (size_t)b * 4 * D;
        for (int j = 0; j < D; j++) {
            fb[j] = ub[j];
            fb[D + j] = vb[j];
            fb[2 * D + j] = ub[j] * vb[j];
            fb[3 * D + j] = ub[j] - vb[j];
        }
    }
}

void op_dual_features_backward(float *restrict du, float *restrict dv, const float *restrict df,
                               const float *restrict u, const float *restrict v, int B, int D)
{
    for (int b = 0; b < B; b++) {
        const float *ub = u + (size_t)b * D, *vb = v + (size_t)b * D;
        const float *dfb = df + (size_t)b * 4 * D;
        for (int j = 0; j < D; j++) {
            // forward was: f = [u, v, u*v, u-v], so
            // du = df0 + df2 * v + df3 and dv = df1 + df2 * u - df3
            if (du) du[(size_t)b * D + j] += dfb[j] + dfb[2 * D + j] * vb[j] + dfb[3 * D + j];
            if (dv) dv[(size_t)b * D + j] += dfb[D + j] + dfb[2 * D + j] * ub[j] - dfb[3 * D + j];
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Plumbing */

void op_add_inplace(float *x, const float *y, size_t n)
{
    /* No restrict: x += x is a legitimate (if odd) call. */
#pragma omp parallel for schedule(static) if (n >= OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void op_split_heads(float *restrict dst, const float *restrict src, int ld, int B, int T, int H,
                    int Dh)
{
#pragma omp parallel for collapse(2) schedule(static) if ((long)B * T * H * Dh >= OMP_MIN_WORK)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                memcpy(dst + (((size_t)b * H + h) * T + t) * Dh,
                       src + ((size_t)b * T + t) * ld + (size_t)h * Dh, (size_t)Dh * sizeof(float));
}

void op_merge_heads(float *restrict dst, int ld, const float *restrict src, int B, int T, int H,
                    int Dh, int accumulate)
{
    /* Parallel over (b, h): each pair owns its own columns of dst, so += is race-free. */
#pragma omp parallel for collapse(2) schedule(static) if ((long)B * T * H * Dh >= OMP_MIN_WORK)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                float *d = dst + ((size_t)b * T + t) * ld + (size_t)h * Dh;
                const float *s = src + (((size_t)b * H + h) * T + t) * Dh;
                if (accumulate)
                    for (int j = 0; j < Dh; j++) d[j] += s[j];
                else
                    memcpy(d, s, (size_t)Dh * sizeof(float));
            }
}
