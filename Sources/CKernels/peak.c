#include "CKernels.h"
#include <time.h>
#include "simd.h"

/* The machine's multiply-add peak, measured: every pool thread runs a loop of independent fused
   multiply-adds (10 accumulators: more than the FMA latency × throughput of any x86 core, so no
   chain waits on itself) and the wall time of the whole job gives multiply-adds per second. This is
   the ceiling a compute-bound kernel (batched decode, prefill) can approach; the bench reports its
   figures as fractions of it. It is a Float32 roofline: where the integer multiply-add units are
   faster per multiply-add than the FMAs (two 256-bit integer multipliers, or VNNI), kernels built on
   llama.cpp's int8 block dots could go above it. On the Zen 1 cores this project measures on they
   are not (Scripts/bench/int8_vs_fma.c: a 32-value vpmaddubsw + vpmaddwd block dot takes as long as
   four 8-lane FMAs). */

#define SY_PEAK_ACCUMULATORS 10

typedef struct {
    long iterations;
    float sink[64];
} peak_job;

#if SY_X86_SIMD
__attribute__((target("avx2,fma"))) static float fma_loop_avx2(long iterations) {
    __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
    for (long n = 0; n < iterations; n++) {
        a0 = _mm256_fmadd_ps(a0, x, y); a1 = _mm256_fmadd_ps(a1, x, y); a2 = _mm256_fmadd_ps(a2, x, y);
        a3 = _mm256_fmadd_ps(a3, x, y); a4 = _mm256_fmadd_ps(a4, x, y); a5 = _mm256_fmadd_ps(a5, x, y);
        a6 = _mm256_fmadd_ps(a6, x, y); a7 = _mm256_fmadd_ps(a7, x, y); a8 = _mm256_fmadd_ps(a8, x, y);
        a9 = _mm256_fmadd_ps(a9, x, y);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)),
                                           _mm256_add_ps(a8, a9)));
    return _mm256_cvtss_f32(s);
}

/* The same on 512-bit registers, where the CPU has them: on cores whose vector units are 512 bits
   wide (AMD Zen 5, Intel's server cores with two FMA units) twice the 256-bit peak, which the
   half-precision kernels' 512-bit paths reach; where 512-bit operations are split in two (Zen 4)
   the same peak as the loop above. */
__attribute__((target("avx2,fma,avx512f"))) static float fma_loop_avx512(long iterations) {
    __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    __m512 a[SY_PEAK_ACCUMULATORS];
    for (int i = 0; i < SY_PEAK_ACCUMULATORS; i++) a[i] = _mm512_set1_ps(1.0f);
    for (long n = 0; n < iterations; n++)
        for (int i = 0; i < SY_PEAK_ACCUMULATORS; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    __m512 s = a[0];
    for (int i = 1; i < SY_PEAK_ACCUMULATORS; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}
#endif

/* The portable loop: 10 independent scalar chains (what the compiler vectorises is its business). */
static float fma_loop_portable(long iterations) {
    float a[SY_PEAK_ACCUMULATORS];
    for (int i = 0; i < SY_PEAK_ACCUMULATORS; i++) a[i] = 1.0f;
    for (long n = 0; n < iterations; n++)
        for (int i = 0; i < SY_PEAK_ACCUMULATORS; i++) a[i] = a[i] * 0.999999f + 1e-7f;
    float s = 0;
    for (int i = 0; i < SY_PEAK_ACCUMULATORS; i++) s += a[i];
    return s;
}

static int lanes(void) {
    return SY_X86_SIMD && sy_kernels_have_avx512vl() ? 16 : SY_X86_SIMD && sy_kernels_have_avx2() ? 8 : 1;
}

static void peak_task(void *ctx, int t) {
    peak_job *job = ctx;
#if SY_X86_SIMD
    float r = sy_kernels_have_avx512vl() ? fma_loop_avx512(job->iterations)
              : sy_kernels_have_avx2()   ? fma_loop_avx2(job->iterations)
                                         : fma_loop_portable(job->iterations);
#else
    float r = fma_loop_portable(job->iterations);
#endif
    job->sink[t & 63] = r;  /* keeps the loop's result alive */
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double sy_multiply_add_peak(double seconds) {
    const int threads = sy_threads();
    const double macs_per_iteration = SY_PEAK_ACCUMULATORS * (double)lanes();
    if (!(seconds >= 0.01)) seconds = 0.01;  /* also catches NaN */
    peak_job job = {.iterations = 100000};
    /* Grow the loop until one job takes ~1/4 of the time asked for, then keep the best of the rest. */
    double best = 0, spent = 0;
    while (spent < seconds) {
        double t0 = seconds_now();
        sy_parallel_for(threads, peak_task, &job);
        double dt = seconds_now() - t0;
        spent += dt;
        if (dt < seconds / 4 && job.iterations < (1L << 40)) {
            job.iterations *= 2;
            continue;
        }
        double rate = threads * (double)job.iterations * macs_per_iteration / dt;
        if (rate > best) best = rate;
    }
    if (best == 0) best = threads * (double)job.iterations * macs_per_iteration / (spent > 0 ? spent : 1);
    return best;
}
