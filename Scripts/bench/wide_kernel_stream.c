/* Multiply-adds per second of batched decode's product on half-precision (or other block) weights,
   streamed from memory: sy_qgemm_nt over the thread pool (all cores, or T=n threads), 8 input rows
   (batch 8), one projection shape, cycling through enough weight copies that none is in cache,
   and the same on one copy (cache-warm: the arithmetic alone). The gap between the two is what the
   kernels' prefetching (quant.c, SY_WIDE_PREFETCH, SY_WEIGHT_PREFETCH_HINT) has to close.

   Built against the library's own C sources with SwiftPM's release optimisation (-O2); the
   prefetch distance and hint can be overridden for a sweep (-DSY_WIDE_PREFETCH=8
   -DSY_WEIGHT_PREFETCH_HINT=_MM_HINT_T0):

       S=Sources/CKernels; clang -O2 -I$S/include -I$S Scripts/bench/wide_kernel_stream.c $S/[a-z]*.c \
           -lopenblas -lm -lpthread -o /tmp/wide_kernel_stream && /tmp/wide_kernel_stream

   BF16 weights take bfloat16 dot products (bf16dot.c) where the CPU has them; BF16_ACTIVATIONS=0
   in the environment keeps their activations Float32 (the widening kernel), as --bf16-activations
   f32 does.

   Arguments (optional): type rows copies K N — the weight type (SY_F16 = 1, SY_Q4_1 = 3, SY_Q8_0 = 8,
   SY_BF16 = 30; default 1), the input rows (default 8), the copies streamed (default 120: 200 MB
   of F16, more than any last-level cache here) and the shape (default 576 1536, SmolLM2-135M's
   gate/up projection; its down projection is 1536 576). */
#include "CKernels.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Best of 7 passes over `copies` weight copies: G multiply-adds/s and the weight GB/s read. */
static void measure(int type, int K, int N, int M, int copies, const float *x, float *y, sy_block_q16 *scratch,
                    int bf16) {
    const size_t row_bytes = sy_weight_block_bytes(type) * (size_t)(K / 32), bytes = row_bytes * N * (size_t)copies;
    uint8_t *W = malloc(bytes);
    if (!W) { perror("malloc"); exit(1); }
    /* Small finite values in every type: each byte's top bits clear. */
    for (size_t i = 0; i < bytes; i++) W[i] = (uint8_t)(rand() & 0x3b);
    double best = 1e30;
    for (int round = 0; round < 7; round++) {
        const double t = now();
        for (int c = 0; c < copies; c++) sy_qgemm_nt(type, M, N, K, x, K, W + row_bytes * N * (size_t)c, row_bytes, y, N, scratch, bf16);
        const double s = now() - t;
        if (s < best) best = s;
    }
    printf("%-12s %6.1f G multiply-adds/s  %5.1f GB/s of weights\n", copies > 1 ? "streamed" : "cache-warm",
           (double)M * K * N * copies / best / 1e9, (double)bytes / best / 1e9);
    free(W);
}

int main(int argc, char **argv) {
    const int type = argc > 1 ? atoi(argv[1]) : SY_F16, M = argc > 2 ? atoi(argv[2]) : 8;
    const int copies = argc > 3 ? atoi(argv[3]) : 120;
    const int K = argc > 4 ? atoi(argv[4]) : 576, N = argc > 5 ? atoi(argv[5]) : 1536;
    if (sy_weight_block_bytes(type) == 0 || M < 1 || copies < 1 || K < 32 || K % 32 || N < 1) { fprintf(stderr, "bad arguments\n"); return 2; }
    if (getenv("T")) sy_set_threads(atoi(getenv("T")));
    float *x = malloc(sizeof(float) * (size_t)M * K), *y = malloc(sizeof(float) * (size_t)M * N);
    sy_block_q16 *scratch = malloc(sizeof(sy_block_q16) * (K / 32));
    if (!x || !y || !scratch) { perror("malloc"); return 1; }
    for (int i = 0; i < M * K; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    printf("type %d, %d x %d, %d input rows, %d threads\n", type, N, K, M, sy_threads());
    const int bf16 = getenv("BF16_ACTIVATIONS") ? atoi(getenv("BF16_ACTIVATIONS")) : 1;
    measure(type, K, N, M, copies, x, y, scratch, bf16);
    measure(type, K, N, M, 1, x, y, scratch, bf16);
    return 0;
}
