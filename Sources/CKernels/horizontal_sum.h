/* Private to CKernels: the horizontal sum every AVX2 kernel ends its dot products with. */
#ifndef SWITCHYARD_CKERNELS_HORIZONTAL_SUM_H
#define SWITCHYARD_CKERNELS_HORIZONTAL_SUM_H
#include <immintrin.h>

/// The sum of the eight lanes of `v`.
__attribute__((target("avx2,fma")))
static inline float sy_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif
