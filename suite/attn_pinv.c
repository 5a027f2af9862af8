/* attn_pinv.c — the B4 engine: Newton–Schulz pseudo-inverse and its backward (see attn_pinv.h).
 * Functions are per matrix and touch only the buffers they are given, so they may be called
 * from inside an OpenMP loop over slices; Debian's OpenMP OpenBLAS then runs the products
 * single-threaded. */
#include "attn_pinv.h"

#include <cblas.h>
#include <string.h>

/* C (m, n) = alpha · op(A) op(B) + beta · C, row-major, op = transpose when ta / tb. */
static void gemm(int ta, int tb, int m, int n, int k, float alpha, const float *A,
                 const float *B, float beta, float *C)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, A, ta ? m : k, B, tb ? k : n, beta, C, n);
}

/* out (L, L) = c·I − Y·X. */
static void pinv_poly(float *out, const float *Y, const float *X, int L, float c)
{
    gemm(0, 0, L, L, L, -1.0f, Y, X, 0.0f, out);
    for (int i = 0; i < L; i++) out[(size_t)i * L + i] += c;
}

/* One iteration's intermediates from its input Z: Y = A Z, T1 = 7I − Y, T2 = 15I − Y T1,
 * T3 = 13I − Y T2 (each (L, L)). */
static void pinv_terms(const float *A, const float *Z, int L, float *Y, float *T1, float *T2,
                       float *T3)
{
    gemm(0, 0, L, L, L, 1.0f, A, Z, 0.0f, Y);
    for (size_t i = 0; i < (size_t)L * L; i++) T1[i] = -Y[i];
    for (int i = 0; i < L; i++) T1[(size_t)i * L + i] += 7.0f;
    pinv_poly(T2, Y, T1, L, 15.0f);
    pinv_poly(T3, Y, T2, L, 13.0f);
}

/* The sum of column j of A (L, L). */
static float pinv_colsum(const float *A, int L, int j)
{
    float sum = 0.0f;
    for (int i = 0; i < L; i++) sum += A[(size_t)i * L + j];
    return sum;
}

void lra_pinv_forward(const float *A, int L, int it, int frozen, float *Zs, float *col,
                         float *work)
{
    const size_t LL = (size_t)L * L;
    int jstar = frozen ? (int)col[1] : 0;
    if (!frozen)
        for (int j = 1; j < L; j++)
            if (pinv_colsum(A, L, j) > pinv_colsum(A, L, jstar)) jstar = j;
    const float c = pinv_colsum(A, L, jstar);
    col[0] = c;
    col[1] = (float)jstar;
    for (int i = 0; i < L; i++)
        for (int j = 0; j < L; j++) Zs[(size_t)i * L + j] = A[(size_t)j * L + i] / c;
    float *Y = work, *T1 = Y + LL, *T2 = T1 + LL, *T3 = T2 + LL;
    for (int n = 0; n < it; n++) {
        const float *Z = Zs + n * LL;
        pinv_terms(A, Z, L, Y, T1, T2, T3);
        gemm(0, 0, L, L, L, 0.25f, Z, T3, 0.0f, Zs + (n + 1) * LL); /* Z ← ¼ Z T3 */
    }
}

void lra_pinv_backward(const float *A, int L, int it, const float *Zs, const float *col,
                          float *dZ, float *dA, float *work)
{
    const size_t LL = (size_t)L * L;
    float *Y = work, *T1 = Y + LL, *T2 = T1 + LL, *T3 = T2 + LL;
    float *dZin = T3 + LL, *dTa = dZin + LL, *dTb = dTa + LL, *dY = dTb + LL;
    for (int n = it - 1; n >= 0; n--) {
        const float *Z = Zs + n * LL; /* this iteration's input */
        pinv_terms(A, Z, L, Y, T1, T2, T3);
        /* forward was Z' = ¼ Z T3, so dZ_in = ¼ dZ' T3ᵀ and dT3 = ¼ Zᵀ dZ'. */
        gemm(0, 1, L, L, L, 0.25f, dZ, T3, 0.0f, dZin);
        gemm(1, 0, L, L, L, 0.25f, Z, dZ, 0.0f, dTa);
        /* forward was T3 = 13I − Y T2, so dY = −dT3 T2ᵀ and dT2 = −Yᵀ dT3. */
        gemm(0, 1, L, L, L, -1.0f, dTa, T2, 0.0f, dY);
        gemm(1, 0, L, L, L, -1.0f, Y, dTa, 0.0f, dTb);
        /* forward was T2 = 15I − Y T1, so dY −= dT2 T1ᵀ and dT1 = −Yᵀ dT2. */
        gemm(0, 1, L, L, L, -1.0f, dTb, T1, 1.0f, dY);
        gemm(1, 0, L, L, L, -1.0f, Y, dTb, 0.0f, dTa);
        /* forward was T1 = 7I − Y, so dY −= dT1. */
        for (size_t i = 0; i < LL; i++) dY[i] -= dTa[i];
        /* forward was Y = A Z, so dA += dY Zᵀ and dZ_in += Aᵀ dY. */
        gemm(0, 1, L, L, L, 1.0f, dY, Z, 1.0f, dA);
        gemm(1, 0, L, L, L, 1.0f, A, dY, 1.0f, dZin);
        memcpy(dZ, dZin, LL * sizeof(float));
    }
    /* forward was Z₀ = Aᵀ/c with c = Σ_i A_ij*, so dA += dZ₀ᵀ/c and every entry of column j*
     * gets dc = −⟨dZ₀, Aᵀ⟩/c². */
    const float c = col[0];
    const int jstar = (int)col[1];
    double dot = 0.0;
    for (int i = 0; i < L; i++)
        for (int j = 0; j < L; j++) {
            dA[(size_t)i * L + j] += dZ[(size_t)j * L + i] / c;
            dot += (double)dZ[(size_t)j * L + i] * A[(size_t)i * L + j];
        }
    const float dc = (float)(-dot / ((double)c * c));
    for (int i = 0; i < L; i++) dA[(size_t)i * L + jstar] += dc;
}
