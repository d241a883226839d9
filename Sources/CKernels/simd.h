/* Private to CKernels: which SIMD code is compiled, and the helpers the AVX2 kernels share.

   SY_X86_SIMD is 1 on x86-64 unless SY_PORTABLE is defined (Package.swift defines it when
   SWITCHYARD_PORTABLE_KERNELS=1, so the portable C path, the only one on arm64, is built and
   tested on x86 machines too). Where it is 0, no intrinsics header is included and every kernel
   runs its portable twin; where it is 1, each kernel still checks the CPU at run time
   (sy_kernels_have_avx2) before taking its AVX2 path. */
#ifndef SWITCHYARD_CKERNELS_SIMD_H
#define SWITCHYARD_CKERNELS_SIMD_H

#if defined(__x86_64__) && !defined(SY_PORTABLE)
#define SY_X86_SIMD 1
#include <immintrin.h>
#else
#define SY_X86_SIMD 0
#endif

/* A spin-wait hint for busy loops (lets the sibling hyper-thread run). */
#if SY_X86_SIMD
#define sy_cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define sy_cpu_relax() __asm__ __volatile__("yield")
#else
#define sy_cpu_relax() ((void)0)
#endif

#include "half.h"

/* Values from which the elementwise kernels the decoder runs between products (RMSNorm, SwiGLU)
   split a call over the pool: a batch-8 step's 8 x 576 norm and 8 x 1536 SwiGLU, which the
   calling thread did alone while the other threads waited; a one-row step's stay serial (the
   hand-off, ~0.4 us, would cost more than the split saves). */
#define SY_ELEMENTWISE_PARALLEL_MIN 4096

#if SY_X86_SIMD
/* The half at p broadcast to 8 floats. A broadcast load writes the whole register: _cvtsh_ss (and
   any scalar form clang can narrow to) compiles to a vpinsrw that merges into a free register,
   which can be a loop's accumulator, a false dependency that chained every block to the last. */
__attribute__((target("avx2,fma,f16c")))
static inline __m256 sy_half_broadcast256(const uint8_t *p) { return _mm256_cvtph_ps(_mm_set1_epi16((short)sy_load_u16(p))); }

/* The sum of the eight lanes of `v`. */
__attribute__((target("avx2,fma")))
static inline float sy_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The largest of the eight lanes of `v`. */
__attribute__((target("avx2,fma")))
static inline float sy_hmax256(__m256 v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* The 32 floats at v loaded into x[0..3], returning max |v[j]| (what the activation quantisers
   scale a block by). */
__attribute__((target("avx2,fma")))
static inline float sy_load_block_absmax256(const float *v, __m256 x[4]) {
    const __m256 sign = _mm256_set1_ps(-0.f);
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) { x[i] = _mm256_loadu_ps(v + 8 * i); a = _mm256_max_ps(a, _mm256_andnot_ps(sign, x[i])); }
    return sy_hmax256(a);
}

/* exp(x) for x <= 0 (attention's max-subtracted scores, SwiGLU's exp(-|g|)): Cephes' range
   reduction and degree-5 polynomial, relative error ~2e-7; inputs below -87 give exp(-87). */
__attribute__((target("avx2,fma")))
static inline __m256 sy_exp256_nonpositive(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.f));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}
#endif

#endif
