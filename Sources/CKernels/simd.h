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
#endif

#endif
