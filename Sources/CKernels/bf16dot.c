/* Batched products of BF16 weights on bfloat16 dot products (AVX-512 BF16's vdpbf16ps), for CPUs
   that have them.

   Why: with more than one activation row the F16/BF16 widening kernels (quant.c) are bound by
   Float32 FMAs, one per weight per row (the core's peak: 16 multiply-adds a cycle). vdpbf16ps
   multiplies pairs of bfloat16 and adds both products to a Float32 lane: 32 multiply-adds per
   512-bit instruction, one a cycle here (Zen 4: 117 G/s against FMA's 55 on one core), so twice
   the arithmetic per cycle.

   The price: the activations are rounded to bfloat16 (round to nearest even), as llama.cpp does
   for BF16 weights and as PyTorch computes a bfloat16 model. The weights are exact (they are
   bfloat16 already), the sums Float32. On SmolLM2-135M with its weights rounded to BF16, rounding
   every projection's input to BF16 puts the logits 2e-5 to 9e-5 (NMSE) from the Float32
   activations, argmax identical on every position of four prompts (transformers, forward hooks):
   inside the 5e-4 this project holds native kernels to. F16 weights do not take this path:
   rounding them to BF16 as well cost up to 2.2e-4 and changed 1 argmax in 7 on one prompt.

   Layout: none of its own. Each call rounds the M activation rows once into a bfloat16 copy
   (sy_bf16_round_rows); the kernel takes two weight rows and up to 8 activation rows at a time,
   32 values of each per step: a 64-byte load of each weight row, one of each activation row,
   and 2·R vdpbf16ps into 2·R accumulators (16 for R = 8, of AVX-512's 32 registers), summed
   across lanes at the end of the row. */
#include "CKernels.h"
#include "simd.h"
#include "half.h"
#include <string.h>

/* As vcvtne2ps2bf16 converts: round to nearest, ties to even; NaN stays a (quiet) NaN; a
   subnormal float becomes a zero of its sign (the instruction treats them as zero, whatever
   MXCSR says), so both paths give the same bits for every input. */
static inline uint16_t float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    if ((x & 0x7f800000) == 0) return (uint16_t)((x >> 16) & 0x8000);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* Half h as a bfloat16, when it is one exactly: every half is a float, and the float is a
   bfloat16 when its low 16 bits are zero. A normal half has 11 significant bits and an exponent
   inside bfloat16's range, so that is its 3 lowest mantissa bits being zero; a subnormal one
   m·2^-24 needs m to have at most 8 significant bits. Returns -1 when it is not exact. */
static inline int32_t half_as_bf16(uint16_t h) {
    const float f = sy_half_to_float(h);
    uint32_t x;
    memcpy(&x, &f, 4);
    return (x & 0xffff) ? -1 : (int32_t)(x >> 16);
}

int64_t sy_f16_to_bf16_exact(const void *src, size_t count, uint16_t *dst) {
    const uint8_t *p = (const uint8_t *)src;
    for (size_t i = 0; i < count; i++) {
        const uint16_t h = sy_load_u16(p + 2 * i);
        const uint32_t e = (h >> 10) & 0x1f;
        if (e != 0 && e != 31) {
            /* A normal half, without the conversion: exact when its 3 low mantissa bits are zero;
               the float's exponent is e + 112, its top 7 mantissa bits the half's top 7. */
            if (h & 7) return (int64_t)i;
            dst[i] = (uint16_t)((h & 0x8000) | ((e + 112) << 7) | ((h & 0x3ff) >> 3));
            continue;
        }
        const int32_t b = half_as_bf16(h);
        if (b < 0) return (int64_t)i;
        dst[i] = (uint16_t)b;
    }
    return -1;
}

#if SY_X86_SIMD
static int have_bf16 = -1;

int sy_kernels_have_avx512bf16(void) {
    if (have_bf16 < 0) {
        __builtin_cpu_init();
        have_bf16 = sy_kernels_have_avx512vl() && __builtin_cpu_supports("avx512bf16");
    }
    return have_bf16;
}

#define SY_BF16_TARGET "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512bf16"

__attribute__((target(SY_BF16_TARGET)))
static void round_row_avx512(const float *x, int K, uint16_t *out) {
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
        _mm512_storeu_si512((void *)(out + k), (__m512i)v);
    }
    for (; k < K; k++) out[k] = float_to_bf16(x[k]);
}
#else
int sy_kernels_have_avx512bf16(void) { return 0; }
#endif

void sy_bf16_round_rows(const float *X, int M, int K, int ldx, uint16_t *out, int portable) {
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * ldx;
        uint16_t *o = out + (size_t)m * K;
#if SY_X86_SIMD
        if (!portable && sy_kernels_have_avx512bf16()) { round_row_avx512(x, K, o); continue; }
#endif
        for (int k = 0; k < K; k++) o[k] = float_to_bf16(x[k]);
    }
    (void)portable;
}

/* The reference: each product of two bfloat16 exact in Float32, summed in order. */
static void bf16dot_rows_portable(const uint8_t *W, size_t row_bytes, int K, const uint16_t *Xb, int M, int n_begin,
                                  int n_end, float *Y, int ldy) {
    for (int n = n_begin; n < n_end; n++) {
        const uint8_t *w = W + (size_t)n * row_bytes;
        for (int m = 0; m < M; m++) {
            const uint16_t *x = Xb + (size_t)m * K;
            float acc = 0.f;
            for (int k = 0; k < K; k++) acc += bf16_to_float(sy_load_u16(w + 2 * (size_t)k)) * bf16_to_float(x[k]);
            Y[(size_t)m * ldy + n] = acc;
        }
    }
}

#if SY_X86_SIMD
/* Weight rows this many on from the pair being multiplied are fetched into L2 as it goes, 64
   bytes a step (the widening kernels' distance and hint, quant.c). */
#define SY_BF16_PREFETCH 6

/* Two weight rows (w0, w1) times R activation rows (R a constant after inlining), K a multiple of
   32. */
__attribute__((target(SY_BF16_TARGET), always_inline))
static inline void pair_rows(const uint8_t *w0, const uint8_t *w1, int K, const uint16_t *Xb, const int R, float *Y,
                             int ldy, const uint8_t *ahead0, const uint8_t *ahead1) {
    __m512 a[8], c[8];
    for (int m = 0; m < R; m++) { a[m] = _mm512_setzero_ps(); c[m] = a[m]; }
    for (int k = 0; k < K; k += 32) {
        _mm_prefetch((const char *)(ahead0 + 2 * (size_t)k), _MM_HINT_T1);
        _mm_prefetch((const char *)(ahead1 + 2 * (size_t)k), _MM_HINT_T1);
        const __m512bh u = (__m512bh)_mm512_loadu_si512((const void *)(w0 + 2 * (size_t)k));
        const __m512bh v = (__m512bh)_mm512_loadu_si512((const void *)(w1 + 2 * (size_t)k));
        for (int m = 0; m < R; m++) {
            const __m512bh x = (__m512bh)_mm512_loadu_si512((const void *)(Xb + (size_t)m * K + k));
            a[m] = _mm512_dpbf16_ps(a[m], u, x);
            c[m] = _mm512_dpbf16_ps(c[m], v, x);
        }
    }
    for (int m = 0; m < R; m++) {
        Y[(size_t)m * ldy] = _mm512_reduce_add_ps(a[m]);
        Y[(size_t)m * ldy + 1] = _mm512_reduce_add_ps(c[m]);
    }
}

/* Weight rows [n_begin, n_end) in pairs (an odd last row is paired with itself and only its first
   output kept), for every group of up to 8 activation rows. */
__attribute__((target(SY_BF16_TARGET)))
static void bf16dot_rows_avx512(const uint8_t *W, size_t row_bytes, int K, const uint16_t *Xb, int M, int n_begin,
                                int n_end, float *Y, int ldy) {
    for (int n = n_begin; n < n_end; n += 2) {
        const int two = n + 1 < n_end;
        const uint8_t *w0 = W + (size_t)n * row_bytes, *w1 = two ? w0 + row_bytes : w0;
        const uint8_t *ahead0 = n + SY_BF16_PREFETCH + 1 < n_end ? w0 + SY_BF16_PREFETCH * row_bytes : w0;
        const uint8_t *ahead1 = n + SY_BF16_PREFETCH + 1 < n_end ? ahead0 + row_bytes : w1;
        for (int m0 = 0; m0 < M; m0 += 8) {
            const int r = M - m0 < 8 ? M - m0 : 8;
            const uint16_t *x = Xb + (size_t)m0 * K;
            float out[16];
            /* The outputs go to a local tile (ldy 2): the pair's second column does not exist for
               an odd last row. */
            switch (r) {
            case 8: pair_rows(w0, w1, K, x, 8, out, 2, ahead0, ahead1); break;
            case 7: pair_rows(w0, w1, K, x, 7, out, 2, ahead0, ahead1); break;
            case 6: pair_rows(w0, w1, K, x, 6, out, 2, ahead0, ahead1); break;
            case 5: pair_rows(w0, w1, K, x, 5, out, 2, ahead0, ahead1); break;
            case 4: pair_rows(w0, w1, K, x, 4, out, 2, ahead0, ahead1); break;
            case 3: pair_rows(w0, w1, K, x, 3, out, 2, ahead0, ahead1); break;
            case 2: pair_rows(w0, w1, K, x, 2, out, 2, ahead0, ahead1); break;
            default: pair_rows(w0, w1, K, x, 1, out, 2, ahead0, ahead1); break;
            }
            for (int m = 0; m < r; m++) {
                Y[(size_t)(m0 + m) * ldy + n] = out[2 * m];
                if (two) Y[(size_t)(m0 + m) * ldy + n + 1] = out[2 * m + 1];
            }
        }
    }
}
#endif

void sy_bf16dot_rows(const void *W, size_t row_bytes, int K, const uint16_t *Xb, int M, int n_begin, int n_end,
                     float *Y, int ldy, int portable) {
    const uint8_t *w = (const uint8_t *)W;
#if SY_X86_SIMD
    if (!portable && K % 32 == 0 && sy_kernels_have_avx512bf16()) {
        bf16dot_rows_avx512(w, row_bytes, K, Xb, M, n_begin, n_end, Y, ldy);
        return;
    }
#endif
    (void)portable;
    bf16dot_rows_portable(w, row_bytes, K, Xb, M, n_begin, n_end, Y, ldy);
}
