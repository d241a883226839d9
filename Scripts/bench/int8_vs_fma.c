/* Throughput of the AVX2 multiply-add instructions a quantised matmul can be built on, one core:
   8-lane Float32 FMA (what Switchyard's batched kernels issue), and llama.cpp's int8 block dot
   (vpmaddubsw + vpmaddwd, 32 multiply-adds per block; with and without the per-block convert and
   scale that a block format needs). Independent accumulators, so throughput, not latency, is timed.
   It tells whether integer kernels could raise batched decode above the Float32 FMA roofline that
   `switchyard bench decode` reports: on AVX2-only cores without VNNI they cannot when the block dot
   is no faster per multiply-add than the FMA.

       gcc -O2 -mavx2 -mfma Scripts/bench/int8_vs_fma.c -o /tmp/int8_vs_fma && /tmp/int8_vs_fma
*/
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define N 50000000L
#define FMA(i) "vfmadd213ps %[y], %[x], %[a" #i "]\n"
#define DOT(i) "vpmaddubsw %[v], %[w], %%ymm" #i "\n vpmaddwd %[o], %%ymm" #i ", %%ymm" #i "\n vpaddd %%ymm" #i ", %[f" #i "], %[f" #i "]\n"
#define BLOCK(i)                                                                                         \
    "vpmaddubsw %[v], %[w], %%ymm" #i "\n vpmaddwd %[o], %%ymm" #i ", %%ymm" #i "\n vcvtdq2ps %%ymm" #i \
    ", %%ymm" #i "\n vfmadd231ps %[s], %%ymm" #i ", %[f" #i "]\n"

int main(void) {
    double t;
    {
        __m256 a0 = _mm256_set1_ps(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
        t = now();
        for (long n = 0; n < N; n++)
            __asm__ volatile(FMA(0) FMA(1) FMA(2) FMA(3) FMA(4) FMA(5) FMA(6) FMA(7)
                             : [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4),
                               [a5] "+x"(a5), [a6] "+x"(a6), [a7] "+x"(a7)
                             : [x] "x"(x), [y] "x"(y));
        t = now() - t;
        printf("vfmadd ps ymm (8 lanes):                      %6.2f G multiply-adds/s\n", N * 8.0 * 8 / t / 1e9);
    }
    __m256i w = _mm256_set1_epi8(7), v = _mm256_set1_epi8(3), o = _mm256_set1_epi16(1);
    {
        __m256i f0 = _mm256_setzero_si256(), f1 = f0, f2 = f0, f3 = f0;
        t = now();
        for (long n = 0; n < N; n++)
            __asm__ volatile(DOT(0) DOT(1) DOT(2) DOT(3)
                             : [f0] "+x"(f0), [f1] "+x"(f1), [f2] "+x"(f2), [f3] "+x"(f3)
                             : [w] "x"(w), [v] "x"(v), [o] "x"(o)
                             : "xmm0", "xmm1", "xmm2", "xmm3");
        t = now() - t;
        printf("int8 block dot (maddubs + maddwd + add):      %6.2f G multiply-adds/s\n", N * 4.0 * 32 / t / 1e9);
    }
    {
        __m256 s = _mm256_set1_ps(1e-3f);
        __m256 f0 = _mm256_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;
        t = now();
        for (long n = 0; n < N; n++)
            __asm__ volatile(BLOCK(0) BLOCK(1) BLOCK(2) BLOCK(3)
                             : [f0] "+x"(f0), [f1] "+x"(f1), [f2] "+x"(f2), [f3] "+x"(f3)
                             : [w] "x"(w), [v] "x"(v), [o] "x"(o), [s] "x"(s)
                             : "xmm0", "xmm1", "xmm2", "xmm3");
        t = now() - t;
        printf("int8 block dot + convert + scale (per block): %6.2f G multiply-adds/s\n", N * 4.0 * 32 / t / 1e9);
    }
    return 0;
}
