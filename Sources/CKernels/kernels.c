#include "CKernels.h"
#include "simd.h"
#include <stddef.h>

/* x·w over K floats in eight interleaved partial sums: the rounding of the AVX2 kernels (a single
   running sum drifts by ~1e-4 in the logits over 30 layers of SmolLM2), and a loop compilers can
   vectorise for any target without reassociating floats themselves. */
static float dot_portable(const float *x, const float *w, int K) {
    float p[8] = { 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f };
    int k = 0;
    for (; k + 8 <= K; k += 8)
        for (int l = 0; l < 8; l++) p[l] += x[k + l] * w[k + l];
    float s = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
    for (; k < K; k++) s += x[k] * w[k];
    return s;
}

static void gemm_small_portable(const float *X, int M, int K, int ldx, const float *W, int ldw,
                                int n0, int n1, float *Y, int ldy, float alpha, float beta) {
    for (int n = n0; n < n1; n++) {
        const float *w = W + (size_t)n * ldw;
        for (int m = 0; m < M; m++) {
            const float *x = X + (size_t)m * ldx;
            float s = dot_portable(x, w, K);
            float *y = Y + (size_t)m * ldy + n;
            *y = alpha * s + (beta != 0.f ? *y : 0.f);
        }
    }
}

#if SY_X86_SIMD
/* Weight rows the small-batch kernel fetches ahead of the rows it multiplies, in triples: with the
   hardware prefetcher alone the FMAs waited on memory (batch 8, the 1536 x 576 projection streamed
   from memory, one thread: 14.5 -> 22.5 G multiply-adds/s). Fetched into L2 (T1), not L1, as the
   half-precision kernels' rows are (quant.c, SY_WEIGHT_PREFETCH_HINT): `bench decode --batch 8` on
   the Float32 bench model, medians of 5 alternated runs, batch 8 258 -> 334 tokens/s. */
#define SY_SMALL_PREFETCH_TRIPLES 2

/* Dot products of weight rows w[0..R) with input rows x[0..C), R <= 3, C <= 4: 12 accumulators,
   each input vector loaded once and used for R weight rows (FMA-bound, not load-bound). With
   `pf`, also prefetches one line of each of the three rows pf[0..3) every 16·passes floats of K,
   at pf + k / passes: each of the `passes` passes over the same weight rows (one per 4 input
   rows) fetches its share of the rows ahead, so memory is busy during every pass. */
__attribute__((target("avx2,fma")))
static inline void block_avx2(const float *const *w, int R, const float *const *x, int C, int K,
                              float out[3][4], const float *const *pf, int passes) {
    __m256 acc[3][4];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = _mm256_setzero_ps();
    int k = 0;
    if (R == 3 && C == 4) {
        /* The next prefetch: at k == due, of line `line` (no division in the loop: with K cache-warm
           one per step cost the kernel 40%). */
        int due = pf ? 0 : K, line = 0;
        for (; k + 8 <= K; k += 8) {
            if (k == due) {
                _mm_prefetch((const char *)(pf[0] + line), _MM_HINT_T1);
                _mm_prefetch((const char *)(pf[1] + line), _MM_HINT_T1);
                _mm_prefetch((const char *)(pf[2] + line), _MM_HINT_T1);
                due += 16 * passes;
                line += 16;
            }
            __m256 w0 = _mm256_loadu_ps(w[0] + k), w1 = _mm256_loadu_ps(w[1] + k), w2 = _mm256_loadu_ps(w[2] + k);
            __m256 xv = _mm256_loadu_ps(x[0] + k);
            acc[0][0] = _mm256_fmadd_ps(w0, xv, acc[0][0]); acc[1][0] = _mm256_fmadd_ps(w1, xv, acc[1][0]); acc[2][0] = _mm256_fmadd_ps(w2, xv, acc[2][0]);
            xv = _mm256_loadu_ps(x[1] + k);
            acc[0][1] = _mm256_fmadd_ps(w0, xv, acc[0][1]); acc[1][1] = _mm256_fmadd_ps(w1, xv, acc[1][1]); acc[2][1] = _mm256_fmadd_ps(w2, xv, acc[2][1]);
            xv = _mm256_loadu_ps(x[2] + k);
            acc[0][2] = _mm256_fmadd_ps(w0, xv, acc[0][2]); acc[1][2] = _mm256_fmadd_ps(w1, xv, acc[1][2]); acc[2][2] = _mm256_fmadd_ps(w2, xv, acc[2][2]);
            xv = _mm256_loadu_ps(x[3] + k);
            acc[0][3] = _mm256_fmadd_ps(w0, xv, acc[0][3]); acc[1][3] = _mm256_fmadd_ps(w1, xv, acc[1][3]); acc[2][3] = _mm256_fmadd_ps(w2, xv, acc[2][3]);
        }
    } else {
        for (; k + 8 <= K; k += 8) {
            for (int r = 0; r < R; r++) {
                __m256 wv = _mm256_loadu_ps(w[r] + k);
                for (int c = 0; c < C; c++)
                    acc[r][c] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[c] + k), acc[r][c]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float s = sy_hsum256(acc[r][c]);
            for (int kk = k; kk < K; kk++) s += w[r][kk] * x[c][kk];
            out[r][c] = s;
        }
}

__attribute__((target("avx2,fma")))
static void gemm_small_avx2(const float *X, int M, int K, int ldx, const float *W, int ldw,
                            int n0, int n1, float *Y, int ldy, float alpha, float beta) {
    float out[3][4];
    for (int n = n0; n < n1; n += 3) {
        int R = (n1 - n >= 3) ? 3 : n1 - n;
        const float *w[3];
        for (int r = 0; r < 3; r++) w[r] = W + (size_t)(n + (r < R ? r : 0)) * ldw;
        for (int m = 0; m < M; m += 4) {
            int C = (M - m >= 4) ? 4 : M - m;
            const float *x[4];
            for (int c = 0; c < 4; c++) x[c] = X + (size_t)(m + (c < C ? c : 0)) * ldx;
            /* Pass m / 4 of (M + 3) / 4 prefetches its part of the rows SY_SMALL_PREFETCH_TRIPLES
               triples on (past the range: the current rows again, already cached). */
            const int passes = (M + 3) / 4, part = (K / passes + 15) / 16 * 16 * (m / 4);
            const float *pf[3];
            for (int r = 0; r < 3; r++) {
                const int ahead = 3 * SY_SMALL_PREFETCH_TRIPLES + r;
                pf[r] = (n + ahead < n1 ? w[0] + (size_t)ahead * ldw : w[0]) + part;
            }
            block_avx2(w, R, x, C, K, out, pf, passes);
            for (int r = 0; r < R; r++)
                for (int c = 0; c < C; c++) {
                    float *y = Y + (size_t)(m + c) * ldy + n + r;
                    *y = alpha * out[r][c] + (beta != 0.f ? *y : 0.f);
                }
        }
    }
}

__attribute__((target("avx2,fma")))
static void gemv_avx2(const float *x, int K, const float *W, int ldw, int n0, int n1,
                      float *Y, float alpha, float beta) {
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        const float *w0 = W + (size_t)n * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), x0, a0); b0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k + 8), x1, b0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), x0, a1); b1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k + 8), x1, b1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), x0, a2); b2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k + 8), x1, b2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), x0, a3); b3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k + 8), x1, b3);
        }
        for (; k + 8 <= K; k += 8) {
            __m256 x0 = _mm256_loadu_ps(x + k);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), x0, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), x0, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), x0, a3);
        }
        float s[4] = { sy_hsum256(_mm256_add_ps(a0, b0)), sy_hsum256(_mm256_add_ps(a1, b1)),
                       sy_hsum256(_mm256_add_ps(a2, b2)), sy_hsum256(_mm256_add_ps(a3, b3)) };
        const float *ws[4] = { w0, w1, w2, w3 };
        for (int r = 0; r < 4; r++) {
            for (int kk = k; kk < K; kk++) s[r] += ws[r][kk] * x[kk];
            Y[n + r] = alpha * s[r] + (beta != 0.f ? Y[n + r] : 0.f);
        }
    }
    if (n < n1) gemm_small_avx2(x, 1, K, K, W, ldw, n, n1, Y, n1, alpha, beta);
}

#endif /* SY_X86_SIMD */

#if SY_X86_SIMD
static int have_avx2 = -1, have_avx512vl = -1;
#endif

int sy_kernels_have_avx512vl(void) {
#if SY_X86_SIMD
    if (have_avx512vl < 0) {
        __builtin_cpu_init();
        have_avx512vl = sy_kernels_have_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    }
    return have_avx512vl;
#else
    return 0;
#endif
}

int sy_kernels_have_avx2(void) {
#if SY_X86_SIMD
    if (have_avx2 < 0) {
        __builtin_cpu_init();
        have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return have_avx2;
#else
    return 0;
#endif
}

void sy_gemm_small_rows(const float *X, int M, int K, int ldx, const float *W, int ldw,
                        int n_begin, int n_end, float *Y, int ldy, float alpha, float beta) {
#if SY_X86_SIMD
    if (sy_kernels_have_avx2()) {
        gemm_small_avx2(X, M, K, ldx, W, ldw, n_begin, n_end, Y, ldy, alpha, beta);
        return;
    }
#endif
    gemm_small_portable(X, M, K, ldx, W, ldw, n_begin, n_end, Y, ldy, alpha, beta);
}

void sy_gemv_rows(const float *x, int K, const float *W, int ldw, int n_begin, int n_end,
                  float *Y, float alpha, float beta) {
#if SY_X86_SIMD
    if (sy_kernels_have_avx2()) {
        gemv_avx2(x, K, W, ldw, n_begin, n_end, Y, alpha, beta);
        return;
    }
#endif
    gemm_small_portable(x, 1, K, K, W, ldw, n_begin, n_end, Y, 1, alpha, beta);
}
