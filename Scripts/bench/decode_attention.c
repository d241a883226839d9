/* The attention of one batched decode step of SmolLM2-135M, through the library's own batched
   kernel (sy_causal_attention_batch) on the pool's threads: 8 sequences, one new row each at
   depth START + i, 9 query heads over 3 KV heads of 64, a half-precision cache per layer and
   sequence, 30 layers. Prints the best of 20 steps in ms. With LAYERS 1 the cache stays in cache;
   with 30 it streams as in the model.

       S=Sources/CKernels; clang -O2 -I$S/include -I$S Scripts/bench/decode_attention.c $S/[a-z]*.c \
           -lopenblas -lm -lpthread -o /tmp/decode_attention && /tmp/decode_attention 110

   Arguments (optional): START (default 110), LAYERS (default 30), threads (default 2), sequences
   (default 8, at most 8). */
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

int main(int argc, char **argv) {
    enum { SMAX = 8, H = 9, KVH = 3, HD = 64 };
    const int start = argc > 1 ? atoi(argv[1]) : 110, L = argc > 2 ? atoi(argv[2]) : 30;
    const int threads = argc > 3 ? atoi(argv[3]) : 2, S = argc > 4 ? atoi(argv[4]) : 8, capacity = start + SMAX + 1;
    if (start < 0 || L < 1 || L > 64 || threads < 1 || S < 1 || S > SMAX) {
        fprintf(stderr, "usage: decode_attention [start] [layers <= 64] [threads] [sequences <= 8]\n");
        return 2;
    }
    sy_set_threads(threads);
    srand(1);
    const size_t head_stride = (size_t)capacity * HD;
    uint16_t *keys[64][SMAX], *values[64][SMAX];
    for (int l = 0; l < L; l++)
        for (int s = 0; s < S; s++) {
            keys[l][s] = malloc(head_stride * KVH * 2);
            values[l][s] = malloc(head_stride * KVH * 2);
            if (!keys[l][s] || !values[l][s]) { perror("malloc"); return 1; }
            for (size_t i = 0; i < head_stride * KVH; i++) {
                keys[l][s][i] = (uint16_t)(0x3000 + (rand() & 0x3ff)); /* halves in [0.125, 0.25) */
                values[l][s][i] = (uint16_t)(0x3000 + (rand() & 0x3ff));
            }
        }
    float *q = malloc(sizeof(float) * S * H * HD), *out = malloc(sizeof(float) * S * H * HD);
    if (!q || !out) { perror("malloc"); return 1; }
    for (int i = 0; i < S * H * HD; i++) q[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    double best = 1e30;
    for (int step = 0; step < 20; step++) {
        const double t = now();
        for (int l = 0; l < L; l++) {
            sy_attention_sequence seqs[SMAX];
            for (int s = 0; s < S; s++)
                seqs[s] = (sy_attention_sequence){ q + s * H * HD, out + s * H * HD, keys[l][s], values[l][s],
                                                   head_stride, 1, start + s, 1 };
            sy_causal_attention_batch(seqs, S, H * HD, H * HD, H, KVH, HD, 0, 0.125f, 0);
        }
        const double dt = now() - t;
        if (dt < best) best = dt;
    }
    printf("%d sequences at depth %d-%d, %d layers, %d threads: %.3f ms a step\n", S, start, start + S - 1, L, threads,
           best * 1e3);
    return 0;
}
