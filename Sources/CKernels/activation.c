/* The decoder's elementwise activation: SwiGLU's silu(gate) · up.

   A decode step of 8 sequences on SmolLM2-135M applies it to 8 × 1536 values per layer; with
   libm's expf one value at a time it was the largest piece of the work the calling thread does
   alone while the pool waits (about 4% of the step). With the polynomial below it was still 3% of
   that thread's time, so a call of SY_ELEMENTWISE_PARALLEL_MIN values or more is split over the
   pool (the parts' results are the same as one call's). */
#include "CKernels.h"
#include "simd.h"
#include <math.h>

/* silu(g) · u as PyTorch writes it, one value at a time: the portable path and the SIMD tail. */
static void silu_multiply_portable(float *gate, const float *up, int count) {
    for (int i = 0; i < count; i++) gate[i] = gate[i] / (1.f + expf(-gate[i])) * up[i];
}

#if SY_X86_SIMD
/* silu(g) = g · sigmoid(g), sigmoid(g) = 1 / (1 + e) for g >= 0 and e / (1 + e) below, with
   e = exp(-|g|) <= 1: no overflow for any g. */
__attribute__((target("avx2,fma")))
static void silu_multiply_avx2(float *gate, const float *up, int count) {
    const __m256 one = _mm256_set1_ps(1.f), sign = _mm256_set1_ps(-0.f);
    int i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = sy_exp256_nonpositive(_mm256_or_ps(g, sign));  /* -|g| */
        const __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, e));
        const __m256 s = _mm256_blendv_ps(r, _mm256_mul_ps(e, r), g);  /* sign bit of g: e/(1+e) */
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_mul_ps(g, s), _mm256_loadu_ps(up + i)));
    }
    silu_multiply_portable(gate + i, up + i, count - i);
}
#endif

static void silu_multiply_serial(float *gate, const float *up, int count, int portable) {
#if SY_X86_SIMD
    if (!portable && sy_kernels_have_avx2()) {
        silu_multiply_avx2(gate, up, count);
        return;
    }
#endif
    (void)portable;
    silu_multiply_portable(gate, up, count);
}

/* One thread's part: `chunk` values (a multiple of 8, so that every value takes the same path,
   vector or tail, as in one serial call), the last part the rest. */
typedef struct { float *gate; const float *up; int count, chunk, portable; } silu_job;

static void silu_task(void *ctx, int index) {
    const silu_job *j = (const silu_job *)ctx;
    const int begin = index * j->chunk, n = j->count - begin < j->chunk ? j->count - begin : j->chunk;
    if (n > 0) silu_multiply_serial(j->gate + begin, j->up + begin, n, j->portable);
}

void sy_silu_multiply(float *gate, const float *up, int count, int portable) {
    const int threads = sy_threads();
    if (count < SY_ELEMENTWISE_PARALLEL_MIN || threads < 2) {
        silu_multiply_serial(gate, up, count, portable);
        return;
    }
    const int chunk = ((count + threads - 1) / threads + 7) & ~7;
    silu_job job = { gate, up, count, chunk, portable };
    sy_parallel_for((count + chunk - 1) / chunk, silu_task, &job);
}
