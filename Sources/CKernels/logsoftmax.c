/* Reductions over a vocabulary of logits: log softmax(x)[index], what the engine reports as each
   generated token's logprob and what `score` sums, the softmax normaliser the sampler draws
   with, and the greedy token (argmax).

   A decode step computes it for every sequence of the batch on the engine's thread; with libm's
   double exp one logit at a time it took about 0.25 ms per token on SmolLM2's 49,152 logits
   (3% of a server's samples under load, the pool idle meanwhile). Here: AVX2 with the polynomial
   exp (relative error ~2e-7 per term), the terms summed in double. */
#include "CKernels.h"
#include "simd.h"
#include <math.h>

/* One value at a time, continuing from m (total): the portable paths and the SIMD tails. */
static float max_portable(const float *x, int n, float m) {
    for (int i = 0; i < n; i++) if (x[i] > m) m = x[i];
    return m;
}

static double sum_exp_portable(const float *x, int n, float shift, double total) {
    for (int i = 0; i < n; i++) total += exp((double)(x[i] - shift));
    return total;
}

#if SY_X86_SIMD
__attribute__((target("avx2,fma")))
static float max_avx2(const float *x, int n) {
    int i = 0;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    return max_portable(x + i, n - i, sy_hmax256(mv));
}

__attribute__((target("avx2,fma")))
static double sum_exp_avx2(const float *x, int n, float shift) {
    const __m256 mb = _mm256_set1_ps(shift);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = sy_exp256_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    return sum_exp_portable(x + i, n - i, shift, (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]));
}
#endif

float sy_max(const float *x, int n, int portable) {
#if SY_X86_SIMD
    if (!portable && sy_kernels_have_avx2()) return max_avx2(x, n);
#endif
    (void)portable;
    return max_portable(x, n, -INFINITY);
}

double sy_sum_exp(const float *x, int n, float shift, int portable) {
#if SY_X86_SIMD
    if (!portable && sy_kernels_have_avx2()) return sum_exp_avx2(x, n, shift);
#endif
    (void)portable;
    return sum_exp_portable(x, n, shift, 0);
}

/* The scalar rule: the first index of the largest value that compares greater than x[0] (NaNs
   never do), from `best` on; the portable path and the SIMD tail. */
static int argmax_portable(const float *x, int from, int n, int best) {
    for (int i = from; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

#if SY_X86_SIMD
/* Eight lanes, each the first index of its largest value (an ordered compare: NaN never wins),
   started at x[0]; then the largest of the lanes, the lowest index on ties. Same result as the
   scalar rule when x[0] is not NaN (the caller handles that case). */
__attribute__((target("avx2,fma")))
static int argmax_avx2(const float *x, int n) {
    __m256 best = _mm256_set1_ps(x[0]);
    __m256i at = _mm256_setzero_si256(), idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i step = _mm256_set1_epi32(8);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
        best = _mm256_blendv_ps(best, v, gt);
        at = _mm256_blendv_epi8(at, idx, _mm256_castps_si256(gt));
        idx = _mm256_add_epi32(idx, step);
    }
    float values[8];
    int indices[8];
    _mm256_storeu_ps(values, best);
    _mm256_storeu_si256((__m256i *)indices, at);
    int result = 0;
    for (int l = 0; l < 8; l++)
        if (values[l] > x[result] || (values[l] == x[result] && indices[l] < result)) result = indices[l];
    return argmax_portable(x, i, n, result);
}
#endif

int sy_argmax(const float *x, int n, int portable) {
    if (n <= 0) return 0;
#if SY_X86_SIMD
    if (!portable && sy_kernels_have_avx2() && x[0] == x[0]) return argmax_avx2(x, n);
#endif
    (void)portable;
    return argmax_portable(x, 1, n, 0);
}

float sy_log_softmax_at(const float *x, int n, int index, int portable) {
    const float m = sy_max(x, n, portable);
    return (float)((double)(x[index] - m) - log(sy_sum_exp(x, n, m, portable)));
}
