/* Rotary position embeddings applied to the queries and keys (Hugging Face's rotate_half form).

   The decoder rotates every layer's queries and keys on the calling thread while the pool waits;
   as a Swift loop (scalar: the Swift code is built for baseline x86-64) it was about 2% of that
   thread's time in a batch-8 decode step of SmolLM2. */
#include "CKernels.h"
#include "simd.h"

/* Each product rounded, then the sum: PyTorch's float32 order (q·cos + rotate_half(q)·sin), and
   the vector path's. */
#pragma STDC FP_CONTRACT OFF

/* Pairs i = begin ..< half, one at a time: the portable path and the vector path's tail. */
static void rope_portable(float *v, int half, int begin, const float *c, const float *s) {
    for (int i = begin; i < half; i++) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
    }
}

#if SY_X86_SIMD
__attribute__((target("avx2")))
static void rope_avx2(float *v, int half, const float *c, const float *s) {
    int i = 0;
    for (; i + 8 <= half; i += 8) {
        const __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + i + half);
        const __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
        _mm256_storeu_ps(v + i, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(b, sv)));
        _mm256_storeu_ps(v + i + half, _mm256_add_ps(_mm256_mul_ps(b, cv), _mm256_mul_ps(a, sv)));
    }
    rope_portable(v, half, i, c, s);
}
#endif

void sy_rope_apply(float *x, int rows, int heads, int stride, int hd, const float *cos, const float *sin,
                   int portable) {
    const int half = hd / 2;
#if SY_X86_SIMD
    const int simd = !portable && sy_kernels_have_avx2();
#endif
    (void)portable;
    for (int r = 0; r < rows; r++) {
        const float *c = cos + (size_t)r * half, *s = sin + (size_t)r * half;
        for (int h = 0; h < heads; h++) {
            float *v = x + (size_t)r * stride + (size_t)h * hd;
#if SY_X86_SIMD
            if (simd) { rope_avx2(v, half, c, s); continue; }
#endif
            rope_portable(v, half, 0, c, s);
        }
    }
}
