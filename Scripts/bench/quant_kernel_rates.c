/* Multiply-adds per second of Switchyard's kernels for integer weights, one thread, on one
   projection shape, with the weights cache-warm (one copy, re-read) and streamed from memory
   (many copies, cycled): the one-row kernel of batch-1 decode (sy_qgemv_rows, int16
   activations) and the 8-row kernel of batched decode (sy_q8x8_rows, 16-bit activations split
   into bytes, 8-bit dot products, where the CPU has AVX-512 VNNI; elsewhere sy_wgemm_rows, each
   weight block widened to Float32 in registers for all 8 rows, what batched decode runs there);
   on CPUs with VNNI also both for Q8_0 kept in row pairs (q8pairs.c: sy_q8_0_pairs_gemv and
   sy_q8_0_pairs_rows, the layout QuantizedMatrix keeps Q8_0 in there).
   Their ratio bounds how much batch 8 can speed decode up over batch 1 before anything else in
   a decode step (attention, norms, the pool's joins) is counted. On CPUs with VNNI the last line
   is the core's vpdpbusd peak, the roof of the 8-row kernel.

   Built against the library's own C sources with SwiftPM's release optimisation (-O2):

       S=Sources/CKernels; clang -O2 -I$S/include -I$S Scripts/bench/quant_kernel_rates.c $S/[a-z]*.c \
           -lopenblas -lm -lpthread -o /tmp/quant_kernel_rates && taskset -c 0 /tmp/quant_kernel_rates

   Arguments (optional): K N copies — the shape (default 576 1536, SmolLM2-135M's gate/up
   projection) and how many weight copies the streamed figure cycles through (default 150, about
   80 MB of Q4_1: more than any last-level cache here). */
#include "CKernels.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Random blocks of `type` with a small positive scale (and minimum) in every block. */
static uint8_t *random_weights(int type, size_t rows, int K, size_t *row_bytes) {
    const size_t bb = sy_weight_block_bytes(type), nb = (size_t)K / 32;
    *row_bytes = bb * nb;
    uint8_t *w = malloc(*row_bytes * rows);
    if (!w) { perror("malloc"); exit(1); }
    for (size_t i = 0; i < *row_bytes * rows; i++) w[i] = (uint8_t)rand();
    const uint16_t scale = 0x2000; /* 2^-7 as an IEEE half */
    for (size_t b = 0; b < rows * nb; b++) {
        memcpy(w + b * bb, &scale, 2);
        if (type == SY_Q4_1) memcpy(w + b * bb + 2, &scale, 2);
    }
    return w;
}

/* Best of 5 timings of `reps` calls over `copies` weight copies; returns G multiply-adds/s.
   SY_Q8_0_PAIRS: Q8_0 weights packed in row pairs, through the pair kernels. */
static double rate(int type, int K, int N, int copies, int rows) {
    size_t rb;
    const int pairs = type == SY_Q8_0_PAIRS;
    uint8_t *W = random_weights(pairs ? SY_Q8_0 : type, (size_t)N * copies, K, &rb);
    if (pairs) {
        uint8_t *P = malloc(rb * N * copies);
        if (!P) { perror("malloc"); exit(1); }
        for (size_t h = 0; h < (size_t)N * copies / 2; h++) sy_q8_0_pack_pair(W + 2 * h * rb, W + (2 * h + 1) * rb, K, P + 2 * h * rb);
        free(W);
        W = P;
    }
    const int nb = K / 32;
    float *x = malloc(sizeof(float) * (size_t)rows * K), *y = malloc(sizeof(float) * (size_t)rows * N);
    for (int i = 0; i < rows * K; i++) x[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
    sy_block_q16 *xq = malloc(sizeof(sy_block_q16) * nb);
    sy_block_q8x8 *x8 = malloc(sizeof(sy_block_q8x8) * nb);
    if (rows == 1) sy_quantize_rows_q16(x, 1, K, K, xq);
    else sy_quantize_rows_q8x8(x, rows, K, 0, K, x8);
    const int reps = rows == 1 ? 2000 : 300;
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        const double t = now();
        for (int i = 0; i < reps; i++) {
            const uint8_t *w = W + (size_t)(i % copies) * rb * N;
            if (pairs && rows == 1) sy_q8_0_pairs_gemv(w, rb, K, xq, 1, 0, N, y, N, 0);
            else if (pairs) sy_q8_0_pairs_rows(w, rb, K, x8, rows, 0, N, y, N, 0);
            else if (rows == 1) sy_qgemv_rows(type, w, rb, K, xq, 1, 0, N, y, N, NULL);
            else if (sy_kernels_have_vnni()) sy_q8x8_rows(type, w, rb, K, x8, rows, 0, N, y, N, 0, NULL);
            else sy_wgemm_rows(type, w, rb, K, x, rows, K, 0, N, y, N, 0);
        }
        const double dt = now() - t;
        if (dt < best) best = dt;
    }
    free(W); free(x); free(y); free(xq); free(x8);
    return (double)rows * K * N * reps / best / 1e9;
}

#if defined(__x86_64__)
#include <immintrin.h>
/* The core's vpdpbusd peak on 512-bit registers, the kernel's: 12 independent chains (throughput,
   not latency), G instructions/s. Each does 64 byte products, so 32 multiply-adds of the kernel's
   16-bit activations (two bytes each): 32 x this is the most sy_q8x8_rows could reach. (Where the
   vector units are 256 bits wide, as on Zen 4, a 512-bit instruction takes two of their slots and
   this rate is half the 256-bit one: the same multiply-adds.) */
__attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) static double vpdpbusd_peak(void) {
    __m512i a[12];
    const __m512i b = _mm512_set1_epi32(0x01010101), c = _mm512_set1_epi32(0x02020202);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_epi32(i);
    const long n = 50000000;
    const double t = now();
    for (long i = 0; i < n; i++) {
        for (int j = 0; j < 12; j++) a[j] = _mm512_dpbusd_epi32(a[j], b, c);
        __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]), "+v"(a[6]),
                         "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
    }
    return (double)n * 12 / (now() - t) / 1e9;
}
#endif

int main(int argc, char **argv) {
    const int K = argc > 1 ? atoi(argv[1]) : 576, N = argc > 2 ? atoi(argv[2]) : 1536;
    const int copies = argc > 3 ? atoi(argv[3]) : 150;
    if (K <= 0 || K % 32 != 0 || N <= 0 || copies <= 0) {
        fprintf(stderr, "usage: quant_kernel_rates [K (a multiple of 32)] [N] [copies]\n");
        return 2;
    }
    printf("one thread, %d x %d weights; G multiply-adds/s, cache-warm / streamed (%d copies); 8-bit dot products: %s\n",
           N, K, copies,
           sy_kernels_have_vnni() ? "yes (AVX-512 VNNI)" : "no (8 rows: sy_wgemm_rows, widened to Float32)");
    const int types[] = { SY_Q4_1, SY_Q8_0, SY_Q8_0_PAIRS };
    const char *names[] = { "Q4_1", "Q8_0", "Q8_0 in row pairs" };
    for (int t = 0; t < (sy_kernels_have_vnni() && N % 2 == 0 ? 3 : 2); t++) {
        const double b1w = rate(types[t], K, N, 1, 1), b1s = rate(types[t], K, N, copies, 1);
        const double b8w = rate(types[t], K, N, 1, 8), b8s = rate(types[t], K, N, copies, 8);
        printf("%-17s  1 row %6.1f / %6.1f   8 rows %6.1f / %6.1f   8-row / 1-row %.2fx / %.2fx\n",
               names[t], b1w, b1s, b8w, b8s, b8w / b1w, b8s / b1s);
    }
#if defined(__x86_64__)
    if (sy_kernels_have_vnni()) {
        const double peak = vpdpbusd_peak();
        printf("vpdpbusd (512-bit) peak %.2f G/s: at most %.0f G multiply-adds/s with 16-bit activations\n", peak,
               32 * peak);
    }
#endif
    return 0;
}
