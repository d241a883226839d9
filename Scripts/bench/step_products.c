/* The weight products of one decode step of SmolLM2-135M, through the library's own fused
   product (sy_qgemm_nt_fused) on the pool's threads, without the model around them: 30 layers of
   q/k/v (576 + 192 + 192 rows, fused), o (576), gate/up (1536 + 1536, fused) and down (576 x 1536),
   then the 49,152-row head (Q8_0, as in the real Q4_1 file), on random weights allocated like the
   model's (sy_weight_alloc). Prints the best of 12 steps and its parts, in ms. What `bench decode`
   reports as weight_products_ms, in C, so that changes to the task split, the kernels or the pool
   can be compared in seconds, alternating two builds.

       S=Sources/CKernels; clang -O2 -I$S/include -I$S Scripts/bench/step_products.c $S/[a-z]*.c \
           -lopenblas -lm -lpthread -o /tmp/step_products && /tmp/step_products 8 3

   Arguments (optional): rows (the batch: 1 decode, 8 a batch of 8, 64 a prefill chunk; default 8),
   the layers' weight type (3 Q4_1, 2 Q4_0, 8 Q8_0, 1 F16, 30 BF16; default 3), threads (default 2),
   layers (default 30; 2 keeps every weight in cache). */
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

/* N rows of K random values of `type`: random bytes, every block's scale (and Q4_1 minimum) a
   small positive half, half-precision types with their exponents kept finite. */
static void *weights(int type, int N, int K, size_t *row_bytes) {
    const size_t bb = sy_weight_block_bytes(type), nb = (size_t)K / 32;
    *row_bytes = bb * nb;
    uint8_t *w = sy_weight_alloc(*row_bytes * N);
    if (!w) { perror("sy_weight_alloc"); exit(1); }
    for (size_t i = 0; i < *row_bytes * N; i++) w[i] = (uint8_t)rand();
    const uint16_t scale = 0x2000; /* 2^-7 */
    if (type == SY_F16 || type == SY_BF16) {
        for (size_t i = 1; i < *row_bytes * N; i += 2) w[i] &= type == SY_F16 ? 0xBB : 0xBE;
        return w;
    }
    for (size_t b = 0; b < (size_t)N * nb; b++) {
        memcpy(w + b * bb, &scale, 2);
        if (type == SY_Q4_1) memcpy(w + b * bb + 2, &scale, 2);
    }
    return w;
}

int main(int argc, char **argv) {
    const int M = argc > 1 ? atoi(argv[1]) : 8, type = argc > 2 ? atoi(argv[2]) : SY_Q4_1;
    const int threads = argc > 3 ? atoi(argv[3]) : 2, L = argc > 4 ? atoi(argv[4]) : 30;
    if (M < 1 || threads < 1 || L < 1 || L > 64 || sy_weight_block_bytes(type) == 0) {
        fprintf(stderr, "usage: step_products [rows] [type: 3 Q4_1, 2 Q4_0, 8 Q8_0, 1 F16, 30 BF16] [threads] [layers <= 64]\n");
        return 2;
    }
    sy_set_threads(threads);
    srand(1);
    enum { H = 576, F = 1536, KV = 192, V = 49152 };
    size_t rq, rk, rg, rd, rh;
    void *q[64], *k[64], *v[64], *o[64], *g[64], *u[64], *d[64];
    for (int l = 0; l < L; l++) {
        q[l] = weights(type, H, H, &rq); k[l] = weights(type, KV, H, &rk); v[l] = weights(type, KV, H, &rk);
        o[l] = weights(type, H, H, &rq); g[l] = weights(type, F, H, &rg); u[l] = weights(type, F, H, &rg);
        d[l] = weights(type, H, F, &rd);
    }
    void *head = weights(SY_Q8_0, V, H, &rh);
    float *A = malloc(sizeof(float) * (size_t)M * F), *C = malloc(sizeof(float) * (size_t)M * V);
    sy_block_q16 *scratch = malloc(sizeof(sy_block_q16) * (F / 32));
    if (!A || !C || !scratch) { perror("malloc"); return 1; }
    for (int i = 0; i < M * F; i++) A[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    double best = 1e30, parts[5] = { 0 };
    for (int step = 0; step < 12; step++) {
        double part[5] = { 0 }, t0 = now();
        for (int l = 0; l < L; l++) {
            double a = now();
            const sy_qgemm_output qkv[3] = { { type, H, q[l], rq, C, H + 2 * KV, NULL },
                                             { type, KV, k[l], rk, C + H, H + 2 * KV, NULL },
                                             { type, KV, v[l], rk, C + H + KV, H + 2 * KV, NULL } };
            sy_qgemm_nt_fused(M, H, A, H, qkv, 3, scratch, 1);
            double b = now(); part[0] += b - a;
            const sy_qgemm_output out = { type, H, o[l], rq, C, H, NULL };
            sy_qgemm_nt_fused(M, H, A, H, &out, 1, scratch, 1);
            a = now(); part[1] += a - b;
            const sy_qgemm_output gu[2] = { { type, F, g[l], rg, C, 2 * F, NULL }, { type, F, u[l], rg, C + F, 2 * F, NULL } };
            sy_qgemm_nt_fused(M, H, A, H, gu, 2, scratch, 1);
            b = now(); part[2] += b - a;
            const sy_qgemm_output down = { type, H, d[l], rd, C, H, NULL };
            sy_qgemm_nt_fused(M, F, A, F, &down, 1, scratch, 1);
            part[3] += now() - b;
        }
        double a = now();
        const sy_qgemm_output logits = { SY_Q8_0, V, head, rh, C, V, NULL };
        sy_qgemm_nt_fused(M, H, A, H, &logits, 1, scratch, 1);
        part[4] = now() - a;
        const double t = now() - t0;
        if (t < best) { best = t; memcpy(parts, part, sizeof part); }
    }
    printf("%d rows, type %d, %d threads, %d layers: %.2f ms a step (q/k/v %.2f, o %.2f, gate/up %.2f, down %.2f, head %.2f)\n",
           M, type, threads, L, best * 1e3, parts[0] * 1e3, parts[1] * 1e3, parts[2] * 1e3, parts[3] * 1e3, parts[4] * 1e3);
    return 0;
}
