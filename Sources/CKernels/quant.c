/* Matrix products with weights kept in their storage type, read directly: llama.cpp's block
   formats (Q8_0, Q4_0, Q4_1) and half precision (F16, BF16), all in blocks of 32 values.

   One activation row (decode): for the integer block formats the activations are quantised once
   per row to 16-bit blocks of 32 (sy_block_q16: scale, scaled sum, 32 int16) and each weight block
   meets its activation block as an integer dot product (AVX2 madd_epi16), scaled by the two
   block scales. llama.cpp quantises activations to 8 bits; 16 bits costs the same instructions per
   block here and keeps the logits within llama.cpp's per-op error bound of the Float32 model
   end to end. Half-precision rows are widened in registers and multiplied in float.

   Several rows (batched decode, up to SY_SMALL_BATCH_ROWS): on CPUs with AVX-512 VNNI, the
   integer block formats take 16-bit activations split into two bytes and 8-bit dot products,
   8 rows at a time (vnni.c; Q8_0 kept in row pairs, q8pairs.c, whose one-row product is there
   too); otherwise each weight block is widened to 32 floats in registers
   once and multiplied with every activation row (Float32 arithmetic, the weights read from memory
   once for all rows; half precision on 512-bit registers where the CPU has AVX-512). More rows
   (prefill): half-precision weights on CPUs with AVX-512VL keep that register kernel, 8
   activation rows at a time; otherwise each task widens its chunk of weight rows to a float tile
   and calls sgemm. */
#include "CKernels.h"
#include "simd.h"
#include "half.h"
#include "scratch.h"
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}


size_t sy_weight_block_bytes(int type) {
    switch (type) {
    case SY_Q8_0: case SY_Q8_0_PAIRS: return 34;
    case SY_Q4_0: return 18;
    case SY_Q4_1: return 20;
    case SY_F16: case SY_BF16: return 64;
    default: return 0;
    }
}

static int is_integer_type(int type) {
    return type == SY_Q8_0 || type == SY_Q4_0 || type == SY_Q4_1 || type == SY_Q8_0_PAIRS;
}

/* The type whose activations a product of `type` takes: Q8_0 in row pairs takes Q8_0's. */
static int activations_type(int type) { return type == SY_Q8_0_PAIRS ? SY_Q8_0 : type; }

#if SY_X86_SIMD
/* One block of 32 floats to int16, exactly as the portable loop: the same float product x · id,
   rounded to nearest-even by vcvtps2dq (lrintf's default mode) instead of a libm call per value. */
__attribute__((target("avx2,fma")))
static void quantize_block_q16_avx2(const float *v, sy_block_q16 *o) {
    __m256 x[4];
    const float amax = sy_load_block_absmax256(v, x), d = amax / 32767.f, id = d != 0.f ? 1.f / d : 0.f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4], sum = _mm256_setzero_si256();
    for (int i = 0; i < 4; i++) { q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(x[i], idv)); sum = _mm256_add_epi32(sum, q[i]); }
    /* packs works per 128-bit lane: put the halves back in order. */
    __m256i p01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
    __m256i p23 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2], q[3]), 0xD8);
    _mm256_storeu_si256((__m256i *)o->qs, p01);
    _mm256_storeu_si256((__m256i *)(o->qs + 16), p23);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    o->d = d;
    o->s = d * (float)_mm_cvtsi128_si32(s);
}
#endif

void sy_quantize_rows_q16(const float *x, int M, int K, int ldx, sy_block_q16 *out) {
    int nb = K / 32;
#if SY_X86_SIMD
    if (sy_kernels_have_avx2()) {
        for (int m = 0; m < M; m++)
            for (int b = 0; b < nb; b++) quantize_block_q16_avx2(x + (size_t)m * ldx + 32 * b, out + (size_t)m * nb + b);
        return;
    }
#endif
    for (int m = 0; m < M; m++) {
        const float *row = x + (size_t)m * ldx;
        for (int b = 0; b < nb; b++) {
            const float *v = row + 32 * b;
            float amax = 0.f;
            for (int j = 0; j < 32; j++) { float a = fabsf(v[j]); if (a > amax) amax = a; }
            float d = amax / 32767.f, id = d != 0.f ? 1.f / d : 0.f;
            sy_block_q16 *o = out + (size_t)m * nb + b;
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                int q = (int)lrintf(v[j] * id);
                o->qs[j] = (int16_t)q;
                sum += q;
            }
            o->d = d;
            o->s = d * (float)sum;
        }
    }
}

/* ---- one block widened to floats (portable) --------------------------------------------------- */

static void widen_block(int type, const uint8_t *p, float *y) {
    switch (type) {
    case SY_Q8_0: {
        float d = sy_half_to_float(sy_load_u16(p));
        for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)p[2 + j];
        break;
    }
    case SY_Q4_0: {
        float d = sy_half_to_float(sy_load_u16(p));
        for (int j = 0; j < 16; j++) { y[j] = ((p[2 + j] & 15) - 8) * d; y[j + 16] = ((p[2 + j] >> 4) - 8) * d; }
        break;
    }
    case SY_Q4_1: {
        float d = sy_half_to_float(sy_load_u16(p)), mn = sy_half_to_float(sy_load_u16(p + 2));
        for (int j = 0; j < 16; j++) { y[j] = (p[4 + j] & 15) * d + mn; y[j + 16] = (p[4 + j] >> 4) * d + mn; }
        break;
    }
    case SY_F16:
        for (int j = 0; j < 32; j++) y[j] = sy_half_to_float(sy_load_u16(p + 2 * j));
        break;
    case SY_BF16:
        for (int j = 0; j < 32; j++) y[j] = bf16_to_float(sy_load_u16(p + 2 * j));
        break;
    }
}

/* ---- float rows to Q8_0 (ggml's quantize_row_q8_0_ref) ------------------------------------- */

void sy_quantize_rows_q8_0(const float *x, int M, int K, void *out) {
    const int nb = K / 32;
    uint8_t *o = (uint8_t *)out;
    for (int m = 0; m < M; m++) {
        for (int b = 0; b < nb; b++, o += 34) {
            const float *v = x + (size_t)m * K + 32 * b;
            float amax = 0.f;
            for (int j = 0; j < 32; j++) { float a = fabsf(v[j]); if (a > amax) amax = a; }
            const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
            const uint16_t dh = sy_float_to_half(d);
            memcpy(o, &dh, 2);
            for (int j = 0; j < 32; j++) o[2 + j] = (uint8_t)(int8_t)roundf(v[j] * id);
        }
    }
}

/* ---- non-finite weights --------------------------------------------------------------------- */

static int half_is_nonfinite(uint16_t h) { return (h & 0x7C00) == 0x7C00; }
static int bf16_is_nonfinite(uint16_t h) { return (h & 0x7F80) == 0x7F80; }

int64_t sy_weights_first_nonfinite(int type, const void *W, size_t row_bytes, int K, int N) {
    const int nb = K / 32;
    if (type == SY_Q8_0_PAIRS) {
        /* Only a scale can be non-finite: the scales are scanned in place (row by row: row n's
           at byte 2·(n & 1) of its pair blocks), and only a row with a bad one is unpacked, a
           block at a time. */
        for (int n = 0; n < N; n++) {
            const uint8_t *pair = (const uint8_t *)W + (size_t)(n / 2) * 2 * row_bytes + 2 * (n & 1);
            int bad = 0;
            for (int b = 0; b < nb && !bad; b++) bad = half_is_nonfinite(sy_load_u16(pair + 68 * (size_t)b));
            if (!bad) continue;
            for (int b = 0; b < nb; b++) {
                uint8_t block[34];
                sy_q8_0_pairs_block(W, row_bytes, n, b, block);
                const int64_t at = sy_weights_first_nonfinite(SY_Q8_0, block, 34, 32, 1);
                if (at >= 0) return (int64_t)n * K + 32 * b + at;
            }
        }
        return -1;
    }
    const size_t bb = sy_weight_block_bytes(type);
    for (int n = 0; n < N; n++) {
        const uint8_t *row = (const uint8_t *)W + (size_t)n * row_bytes;
        for (int b = 0; b < nb; b++) {
            const uint8_t *p = row + (size_t)b * bb;
            int bad = 0;
            switch (type) {
            case SY_Q8_0: case SY_Q4_0: bad = half_is_nonfinite(sy_load_u16(p)); break;
            case SY_Q4_1: bad = half_is_nonfinite(sy_load_u16(p)) || half_is_nonfinite(sy_load_u16(p + 2)); break;
            case SY_F16: for (int j = 0; j < 32 && !bad; j++) bad = half_is_nonfinite(sy_load_u16(p + 2 * j)); break;
            case SY_BF16: for (int j = 0; j < 32 && !bad; j++) bad = bf16_is_nonfinite(sy_load_u16(p + 2 * j)); break;
            default: return -2;
            }
            if (!bad) continue;
            float y[32];
            widen_block(type, p, y);
            for (int j = 0; j < 32; j++)
                if (!isfinite(y[j])) return (int64_t)n * K + 32 * b + j;
            return (int64_t)n * K + 32 * b;  /* an infinite scale times zero quants: the block's first */
        }
    }
    return -1;
}

int64_t sy_floats_first_nonfinite(const float *x, size_t count) {
    /* Eight lanes at a time, so the loop vectorises; the exact index is found afterwards. */
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        int bad = 0;
        for (int j = 0; j < 8; j++) bad |= !isfinite(x[i + j]);
        if (bad) break;
    }
    for (; i < count; i++)
        if (!isfinite(x[i])) return (int64_t)i;
    return -1;
}

/* ---- portable products (the reference, and the path without AVX2) ----------------------------- */

static float qdot_portable(int type, const uint8_t *w, const sy_block_q16 *x, int nb) {
    float total = 0.f;
    for (int b = 0; b < nb; b++, x++) {
        int acc = 0;
        switch (type) {
        case SY_Q8_0: {
            const uint8_t *p = w + 34 * (size_t)b;
            for (int j = 0; j < 32; j++) acc += (int8_t)p[2 + j] * x->qs[j];
            total += sy_half_to_float(sy_load_u16(p)) * x->d * (float)acc;
            break;
        }
        case SY_Q4_0: {
            const uint8_t *p = w + 18 * (size_t)b;
            for (int j = 0; j < 16; j++) acc += (p[2 + j] & 15) * x->qs[j] + (p[2 + j] >> 4) * x->qs[j + 16];
            float d = sy_half_to_float(sy_load_u16(p));
            total += d * x->d * (float)acc - 8.f * d * x->s;
            break;
        }
        case SY_Q4_1: {
            const uint8_t *p = w + 20 * (size_t)b;
            for (int j = 0; j < 16; j++) acc += (p[4 + j] & 15) * x->qs[j] + (p[4 + j] >> 4) * x->qs[j + 16];
            total += sy_half_to_float(sy_load_u16(p)) * x->d * (float)acc + sy_half_to_float(sy_load_u16(p + 2)) * x->s;
            break;
        }
        }
    }
    return total;
}

float sy_qdot_portable(int type, const void *w, const sy_block_q16 *x, int nb) {
    return is_integer_type(type) && type != SY_Q8_0_PAIRS ? qdot_portable(type, (const uint8_t *)w, x, nb) : 0.f;
}

/* (SY_Q8_0_PAIRS: each block unpacked to Q8_0 first.) */
static void wgemm_portable(int type, const uint8_t *W, size_t row_bytes, int K, const float *X, int M, int ldx,
                           int n_begin, int n_end, float *Y, int ldy) {
    const int pairs = type == SY_Q8_0_PAIRS;
    if (pairs) type = SY_Q8_0;
    size_t bb = sy_weight_block_bytes(type);
    float wb[32];
    uint8_t unpacked[34];
    for (int n = n_begin; n < n_end; n++) {
        const uint8_t *w = W + (size_t)n * row_bytes;
        for (int m = 0; m < M; m++) Y[(size_t)m * ldy + n] = 0.f;
        for (int b = 0; b < K / 32; b++) {
            const uint8_t *p = w + bb * (size_t)b;
            if (pairs) {
                sy_q8_0_pairs_block(W, row_bytes, n, b, unpacked);
                p = unpacked;
            }
            widen_block(type, p, wb);
            for (int m = 0; m < M; m++) {
                const float *x = X + (size_t)m * ldx + 32 * b;
                float s = 0.f;
                for (int j = 0; j < 32; j++) s += wb[j] * x[j];
                Y[(size_t)m * ldy + n] += s;
            }
        }
    }
}

/* ---- AVX2 ------------------------------------------------------------------------------------ */

#if SY_X86_SIMD


/* One weight block against its int16 activation block: the 8 int32 partial sums of q_w · q_x. */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline __m256i qblock_avx2(const int type, const uint8_t *p, const sy_block_q16 *x) {
    __m256i lo, hi;  /* weights 0..15 and 16..31 as int16 */
    if (type == SY_Q8_0) {
        lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 2)));
        hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 18)));
    } else {
        /* Each byte widened once: its low nibble is value i, its high nibble (the 16-bit lane
           shifted right by 4) value 16 + i. */
        const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p + (type == SY_Q4_0 ? 2 : 4))));
        lo = _mm256_and_si256(v, _mm256_set1_epi16(15));
        hi = _mm256_srli_epi16(v, 4);
    }
    return _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)x->qs)),
                            _mm256_madd_epi16(hi, _mm256_loadu_si256((const __m256i *)(x->qs + 16))));
}

/* The scale products of blocks b and b + 1 in one 128-bit register: [d_w·d_x, c·s_x] of block b
   in lanes 0–1, of block b + 1 in lanes 2–3 (c the offset's scale: the block minimum for Q4_1, d_w
   for Q4_0, whose offset −8·d_w is applied when the lanes are summed; for Q8_0 lanes 1 and 3 are
   not used). Both blocks' halves go through one conversion, and d_x, s_x are adjacent in
   sy_block_q16, so one multiply makes all four: converting and broadcasting each half on its own
   cost more than the block's integer dot product on a Zen 3 host (AVX2, where batch 1 is bound by
   these instructions, not by memory). One row, one thread, Scripts/bench/quant_kernel_rates.c, three alternated runs, G
   multiply-adds/s warm / streamed, with Q4 nibbles widened once (qblock_avx2): Q4_1 9.0-12.4 /
   8.6-11.8 -> 12.8-13.8 / 11.6-12.5, Q8_0 15.0-17.2 -> 15.9-18.0 warm (streamed unchanged). */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline __m128 qscales2_avx2(const int type, const uint8_t *p0, const uint8_t *p1, const sy_block_q16 *x) {
    /* The 32 bits at the start of each block: Q4_1's d and m; Q4_0's and Q8_0's d and two bytes
       of values, converted too but never used (Q4_0 takes d twice). */
    __m128 halves = _mm_cvtph_ps(_mm_unpacklo_epi32(_mm_loadu_si32(p0), _mm_loadu_si32(p1)));
    if (type == SY_Q4_0) halves = _mm_moveldup_ps(halves);
    const __m128 xs = _mm_castpd_ps(
        _mm_loadh_pd(_mm_castsi128_pd(_mm_loadl_epi64((const __m128i *)&x[0].d)), (const double *)&x[1].d));
    return _mm_mul_ps(halves, xs);
}

/* Integer dot of one weight row (nb blocks) with one int16 activation row, `type` a constant after
   inlining. Two blocks per step into two accumulators, so consecutive blocks do not wait on one
   another's multiply-adds, their scales made together (qscales2_avx2); the offset terms are summed
   in lanes 1 and 3 of one register (Q8_0's offsets, from K-quants, in a float of their own). */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline float qdot_avx2_typed(const int type, const uint8_t *w, const sy_block_q16 *x, int nb,
                                    const float *offsets) {
    const size_t bb = type == SY_Q8_0 ? 34 : type == SY_Q4_0 ? 18 : 20;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m128 offsets2 = _mm_setzero_ps();  /* the blocks' offset terms, in lanes 1 and 3 */
    int b = 0;
    float offset = 0.f;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *p0 = w + bb * (size_t)b, *p1 = p0 + bb;
        const __m128 sc = qscales2_avx2(type, p0, p1, x + b);
        acc0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(sc), _mm256_cvtepi32_ps(qblock_avx2(type, p0, x + b)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehl_ps(sc, sc)),
                               _mm256_cvtepi32_ps(qblock_avx2(type, p1, x + b + 1)), acc1);
        if (type != SY_Q8_0) offsets2 = _mm_add_ps(offsets2, sc);
        else if (offsets) offset += offsets[b] * x[b].s + offsets[b + 1] * x[b + 1].s;
    }
    if (b < nb) {
        /* An odd last block. */
        const uint8_t *p = w + bb * (size_t)b;
        const float d = _cvtsh_ss(sy_load_u16(p));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d * x[b].d), _mm256_cvtepi32_ps(qblock_avx2(type, p, x + b)), acc0);
        if (type == SY_Q4_1) offset += _cvtsh_ss(sy_load_u16(p + 2)) * x[b].s;
        else if (type == SY_Q4_0) offset += d * x[b].s * -8.f;
        else if (offsets) offset += offsets[b] * x[b].s;
    }
    float lanes[4];
    _mm_storeu_ps(lanes, offsets2);
    return sy_hsum256(_mm256_add_ps(acc0, acc1)) + ((lanes[1] + lanes[3]) * (type == SY_Q4_0 ? -8.f : 1.f) + offset);
}

__attribute__((target("avx2,fma,f16c")))
static float qdot_avx2(int type, const uint8_t *w, const sy_block_q16 *x, int nb, const float *offsets) {
    switch (type) {
    case SY_Q8_0: return qdot_avx2_typed(SY_Q8_0, w, x, nb, offsets);
    case SY_Q4_0: return qdot_avx2_typed(SY_Q4_0, w, x, nb, NULL);
    default: return qdot_avx2_typed(SY_Q4_1, w, x, nb, NULL);
    }
}

/* One weight block widened to 32 floats in four registers. */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void widen_block_avx2(int type, const uint8_t *p, __m256 w[4]) {
    switch (type) {
    case SY_Q8_0: {
        __m256 d = sy_half_broadcast256(p);
        for (int i = 0; i < 4; i++)
            w[i] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2 + 8 * i)))));
        break;
    }
    case SY_Q4_0: case SY_Q4_1: {
        const __m128i low4 = _mm_set1_epi8(15);
        __m128i raw = _mm_loadu_si128((const __m128i *)(p + (type == SY_Q4_0 ? 2 : 4)));
        __m128i lo = _mm_and_si128(raw, low4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), low4);
        __m256 d = sy_half_broadcast256(p);
        __m256 m = type == SY_Q4_0 ? _mm256_mul_ps(d, _mm256_set1_ps(-8.f)) : sy_half_broadcast256(p + 2);
        w[0] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), m);
        w[1] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), m);
        w[2] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), m);
        w[3] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), m);
        break;
    }
    case SY_F16:
        for (int i = 0; i < 4; i++) w[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * i)));
        break;
    case SY_BF16:
        for (int i = 0; i < 4; i++)
            w[i] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 16 * i))), 16));
        break;
    }
}

/* Weight rows the widening kernel fetches ahead of the row it multiplies. */
#define SY_WROW_PREFETCH 4
/* The same for the two-row kernel (wrow2x8_avx2): three pairs on. */
#ifndef SY_WIDE_PREFETCH
#define SY_WIDE_PREFETCH 6
#endif
/* Where both widening kernels fetch the rows ahead: into L2 (T1), not L1 (T0), whose miss slots
   bound the lines in flight. Streamed F16, 1536x576, 8 input rows, two threads
   (Scripts/bench/wide_kernel_stream.c), medians of 6 rounds, G multiply-adds/s: into L1, 4 rows
   on 59; into L2, 4 / 6 / 8 / 12 / 16 rows on 70 / 69 / 70 / 65 / 63. One thread, medians of 5:
   F16 34 -> 43, BF16 36 -> 42 (T0 4 rows -> T1 6 rows). */
#ifndef SY_WEIGHT_PREFETCH_HINT
#define SY_WEIGHT_PREFETCH_HINT _MM_HINT_T1
#endif

/* R activation rows (R a compile-time constant after inlining) times one weight row: each block
   is widened once and used for every row. */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void wrow_avx2(int type, const uint8_t *w, size_t bb, int nb, const float *X, int ldx, const int R,
                             float *Y, int ldy, const uint8_t *ahead) {
    __m256 acc[8];
    for (int m = 0; m < R; m++) acc[m] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        /* With several input rows, the row `ahead` (SY_WROW_PREFETCH rows on), block by block:
           the hardware prefetcher alone leaves the FMAs waiting on memory, as in the Float32 and
           8-bit kernels (into L2 rather than L1: bench decode --batch 4 on the SmolLM2 F16 GGUF,
           medians of 4 alternated rounds, 268 -> 307 tokens/s). One input row streams fast
           enough without (and was 5-8% slower with). */
        if (R > 1) _mm_prefetch((const char *)(ahead + bb * (size_t)b), SY_WEIGHT_PREFETCH_HINT);
        __m256 wv[4];
        widen_block_avx2(type, w + bb * (size_t)b, wv);
        const float *xb = X + 32 * b;
        for (int m = 0; m < R; m++) {
            const float *x = xb + (size_t)m * ldx;
            acc[m] = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(x), acc[m]);
            acc[m] = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(x + 8), acc[m]);
            acc[m] = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(x + 16), acc[m]);
            acc[m] = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(x + 24), acc[m]);
        }
    }
    for (int m = 0; m < R; m++) Y[(size_t)m * ldy] = sy_hsum256(acc[m]);
}

/* Eight activation rows times two weight rows (w0, w1): each activation vector loaded once for
   both rows. Its 16 accumulators and 8 widened weight vectors need the 32 vector registers of
   AVX-512VL: inlined only into the instantiations compiled for it (with AVX2's 16 they spill and
   it ran at 21 G multiply-adds/s against the one-row kernel's 28; with 32, 54, the core's FMA
   peak, F16, 1536×576, one thread, cache-warm). */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void wrow2x8_avx2(int type, const uint8_t *w0, const uint8_t *w1, size_t bb, int nb, const float *X,
                                int ldx, float *Y, int ldy, const uint8_t *ahead0, const uint8_t *ahead1) {
    __m256 a[8], c[8];
    for (int m = 0; m < 8; m++) { a[m] = _mm256_setzero_ps(); c[m] = a[m]; }
    for (int b = 0; b < nb; b++) {
        _mm_prefetch((const char *)(ahead0 + bb * (size_t)b), SY_WEIGHT_PREFETCH_HINT);
        _mm_prefetch((const char *)(ahead1 + bb * (size_t)b), SY_WEIGHT_PREFETCH_HINT);
        __m256 u[4], v[4];
        widen_block_avx2(type, w0 + bb * (size_t)b, u);
        widen_block_avx2(type, w1 + bb * (size_t)b, v);
        const float *xb = X + 32 * b;
        for (int m = 0; m < 8; m++) {
            const float *x = xb + (size_t)m * ldx;
            for (int i = 0; i < 4; i++) {
                const __m256 xv = _mm256_loadu_ps(x + 8 * i);
                a[m] = _mm256_fmadd_ps(u[i], xv, a[m]);
                c[m] = _mm256_fmadd_ps(v[i], xv, c[m]);
            }
        }
    }
    for (int m = 0; m < 8; m++) {
        Y[(size_t)m * ldy] = sy_hsum256(a[m]);
        Y[(size_t)m * ldy + 1] = sy_hsum256(c[m]);
    }
}

/* The 512-bit kernels' instruction set (AVX-512F on top of the AVX2 ones). */
#define SY_ZMM_TARGET "avx2,fma,f16c,avx512f,avx512vl"

/* Sixteen half-precision weights widened to floats: F16 converted, BF16 the high halves of floats. */
__attribute__((target(SY_ZMM_TARGET), always_inline))
static inline __m512 widen16_zmm(const int type, const __m256i *p) {
    const __m256i h = _mm256_loadu_si256(p);
    return type == SY_F16 ? _mm512_cvtph_ps(h) : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The same for half-precision weights in 512-bit registers: each block's 32 values widened into
   two, 16 accumulators of 16 lanes. On CPUs whose vector units are 512 bits wide (AMD Zen 5,
   Intel's server cores with two FMA units) that is twice the multiply-adds per instruction and
   per cycle: F16 weight products of a SmolLM2 step on a Zen 5 host (Scripts/bench/step_products.c,
   two threads) 64 rows 65 -> 49 ms, 8 rows 8.8 -> 7.3; where 512-bit operations are split in two
   (Zen 4) it issues half the instructions for the same work. Not inlined: it needs AVX-512F, which
   the shared AVX2 body calling it is not compiled for. */
__attribute__((target(SY_ZMM_TARGET), always_inline))
static inline void wrow2x8_zmm_typed(const int type, const uint8_t *w0, const uint8_t *w1, size_t bb, int nb,
                                     const float *X, int ldx, float *Y, int ldy, const uint8_t *ahead0,
                                     const uint8_t *ahead1) {
    __m512 a[8], c[8];
    for (int m = 0; m < 8; m++) { a[m] = _mm512_setzero_ps(); c[m] = a[m]; }
    for (int b = 0; b < nb; b++) {
        _mm_prefetch((const char *)(ahead0 + bb * (size_t)b), SY_WEIGHT_PREFETCH_HINT);
        _mm_prefetch((const char *)(ahead1 + bb * (size_t)b), SY_WEIGHT_PREFETCH_HINT);
        const __m256i *p0 = (const __m256i *)(w0 + bb * (size_t)b), *p1 = (const __m256i *)(w1 + bb * (size_t)b);
        const __m512 u0 = widen16_zmm(type, p0), u1 = widen16_zmm(type, p0 + 1);
        const __m512 v0 = widen16_zmm(type, p1), v1 = widen16_zmm(type, p1 + 1);
        const float *xb = X + 32 * b;
        for (int m = 0; m < 8; m++) {
            const float *x = xb + (size_t)m * ldx;
            const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
            a[m] = _mm512_fmadd_ps(u0, x0, a[m]);
            c[m] = _mm512_fmadd_ps(v0, x0, c[m]);
            a[m] = _mm512_fmadd_ps(u1, x1, a[m]);
            c[m] = _mm512_fmadd_ps(v1, x1, c[m]);
        }
    }
    for (int m = 0; m < 8; m++) {
        Y[(size_t)m * ldy] = _mm512_reduce_add_ps(a[m]);
        Y[(size_t)m * ldy + 1] = _mm512_reduce_add_ps(c[m]);
    }
}

#define SY_WROW2X8_ZMM(NAME, TYPE)                                                                           \
    __attribute__((target(SY_ZMM_TARGET), noinline)) static void NAME(                                       \
        const uint8_t *w0, const uint8_t *w1, size_t bb, int nb, const float *X, int ldx, float *Y, int ldy, \
        const uint8_t *ahead0, const uint8_t *ahead1) {                                                      \
        wrow2x8_zmm_typed(TYPE, w0, w1, bb, nb, X, ldx, Y, ldy, ahead0, ahead1);                             \
    }
SY_WROW2X8_ZMM(wrow2x8_zmm_f16, SY_F16)
SY_WROW2X8_ZMM(wrow2x8_zmm_bf16, SY_BF16)

/* `type` is a constant in each instantiation below (wgemm_avx2 dispatches once per call), so the
   block widening compiles without a switch per block. */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void wgemm_avx2_typed(const int type, const int wide, const uint8_t *W, size_t row_bytes, int K,
                                    const float *X, int M, int ldx, int n_begin, int n_end, float *Y, int ldy) {
    size_t bb = sy_weight_block_bytes(type);
    int nb = K / 32;
    for (int m0 = 0; m0 < M;) {
        int r = M - m0 >= 8 ? 8 : M - m0 >= 4 ? 4 : M - m0 >= 2 ? 2 : 1;
        const float *x = X + (size_t)m0 * ldx;
        int n = n_begin;
        if (wide && r == 8)
            for (; n + 2 <= n_end; n += 2) {
                const uint8_t *w = W + (size_t)n * row_bytes;
                const uint8_t *ahead = n + SY_WIDE_PREFETCH + 1 < n_end ? w + SY_WIDE_PREFETCH * row_bytes : w;
                if (type == SY_F16)
                    wrow2x8_zmm_f16(w, w + row_bytes, bb, nb, x, ldx, Y + (size_t)m0 * ldy + n, ldy, ahead,
                                    ahead + row_bytes);
                else if (type == SY_BF16)
                    wrow2x8_zmm_bf16(w, w + row_bytes, bb, nb, x, ldx, Y + (size_t)m0 * ldy + n, ldy, ahead,
                                     ahead + row_bytes);
                else
                    wrow2x8_avx2(type, w, w + row_bytes, bb, nb, x, ldx, Y + (size_t)m0 * ldy + n, ldy, ahead,
                                 ahead + row_bytes);
            }
        for (; n < n_end; n++) {
            const uint8_t *w = W + (size_t)n * row_bytes;
            const uint8_t *ahead = n + SY_WROW_PREFETCH < n_end ? w + SY_WROW_PREFETCH * row_bytes : w;
            float *y = Y + (size_t)m0 * ldy + n;
            switch (r) {
            case 8: wrow_avx2(type, w, bb, nb, x, ldx, 8, y, ldy, ahead); break;
            case 4: wrow_avx2(type, w, bb, nb, x, ldx, 4, y, ldy, ahead); break;
            case 2: wrow_avx2(type, w, bb, nb, x, ldx, 2, y, ldy, ahead); break;
            default: wrow_avx2(type, w, bb, nb, x, ldx, 1, y, ldy, ahead); break;
            }
        }
        m0 += r;
    }
}

/* The AVX2 instantiations, and on CPUs with AVX-512VL ones compiled for its 32 registers, which
   take two weight rows at a time for groups of 8 activation rows (wrow2x8_avx2). */
#define SY_WGEMM_TYPED(NAME, TARGET, TYPE, WIDE)                                                          \
    __attribute__((target(TARGET))) static void NAME(const uint8_t *W, size_t row_bytes, int K,           \
                                                     const float *X, int M, int ldx, int n_begin,         \
                                                     int n_end, float *Y, int ldy) {                      \
        wgemm_avx2_typed(TYPE, WIDE, W, row_bytes, K, X, M, ldx, n_begin, n_end, Y, ldy);                 \
    }
#define SY_WIDE_TARGET "avx2,fma,f16c,avx512f,avx512vl"
SY_WGEMM_TYPED(wgemm_avx2_q8_0, "avx2,fma,f16c", SY_Q8_0, 0)
SY_WGEMM_TYPED(wgemm_avx2_q4_0, "avx2,fma,f16c", SY_Q4_0, 0)
SY_WGEMM_TYPED(wgemm_avx2_q4_1, "avx2,fma,f16c", SY_Q4_1, 0)
SY_WGEMM_TYPED(wgemm_avx2_f16, "avx2,fma,f16c", SY_F16, 0)
SY_WGEMM_TYPED(wgemm_avx2_bf16, "avx2,fma,f16c", SY_BF16, 0)
SY_WGEMM_TYPED(wgemm_wide_q8_0, SY_WIDE_TARGET, SY_Q8_0, 1)
SY_WGEMM_TYPED(wgemm_wide_q4_0, SY_WIDE_TARGET, SY_Q4_0, 1)
SY_WGEMM_TYPED(wgemm_wide_q4_1, SY_WIDE_TARGET, SY_Q4_1, 1)
SY_WGEMM_TYPED(wgemm_wide_f16, SY_WIDE_TARGET, SY_F16, 1)
SY_WGEMM_TYPED(wgemm_wide_bf16, SY_WIDE_TARGET, SY_BF16, 1)

static void wgemm_avx2(int type, const uint8_t *W, size_t row_bytes, int K, const float *X, int M, int ldx,
                       int n_begin, int n_end, float *Y, int ldy) {
    typedef void (*fn)(const uint8_t *, size_t, int, const float *, int, int, int, int, float *, int);
    static const fn narrow[] = { wgemm_avx2_q8_0, wgemm_avx2_q4_0, wgemm_avx2_q4_1, wgemm_avx2_f16, wgemm_avx2_bf16 };
    static const fn wide[] = { wgemm_wide_q8_0, wgemm_wide_q4_0, wgemm_wide_q4_1, wgemm_wide_f16, wgemm_wide_bf16 };
    /* Only the five types reach here (sy_wgemm_rows refuses the others). */
    const int i = type == SY_Q8_0 ? 0 : type == SY_Q4_0 ? 1 : type == SY_Q4_1 ? 2 : type == SY_F16 ? 3 : 4;
    (M >= 8 && sy_kernels_have_avx512vl() ? wide : narrow)[i](W, row_bytes, K, X, M, ldx, n_begin, n_end, Y, ldy);
}

/* Rows widened in registers and stored (the prefill tiles): F16C/AVX2 instead of a scalar loop. */
__attribute__((target("avx2,fma,f16c")))
static void dequantize_rows_avx2(int type, const uint8_t *W, size_t row_bytes, int K, int n_begin, int n_end, float *out) {
    size_t bb = sy_weight_block_bytes(type);
    for (int n = n_begin; n < n_end; n++) {
        const uint8_t *w = W + (size_t)n * row_bytes;
        float *o = out + (size_t)(n - n_begin) * K;
        for (int b = 0; b < K / 32; b++) {
            __m256 v[4];
            widen_block_avx2(type, w + bb * (size_t)b, v);
            for (int i = 0; i < 4; i++) _mm256_storeu_ps(o + 32 * b + 8 * i, v[i]);
        }
    }
}

#endif /* SY_X86_SIMD */

/* ---- products ----------------------------------------------------------------------------- */

void sy_qgemv_rows(int type, const void *W, size_t row_bytes, int K, const sy_block_q16 *xq, int M,
                   int n_begin, int n_end, float *Y, int ldy, const float *offsets) {
    if (type == SY_Q8_0_PAIRS) {
        sy_q8_0_pairs_gemv(W, row_bytes, K, xq, M, n_begin, n_end, Y, ldy, 0);
        return;
    }
    int nb = K / 32, avx2 = sy_kernels_have_avx2();
    for (int n = n_begin; n < n_end; n++) {
        const uint8_t *w = (const uint8_t *)W + (size_t)n * row_bytes;
        const float *r = offsets ? offsets + (size_t)n * nb : NULL;
        for (int m = 0; m < M; m++) {
            const sy_block_q16 *x = xq + (size_t)m * nb;
#if SY_X86_SIMD
            if (avx2 && (!r || type == SY_Q8_0)) {
                Y[(size_t)m * ldy + n] = qdot_avx2(type, w, x, nb, r);
                continue;
            }
#endif
            (void)avx2;
            float y = qdot_portable(type, w, x, nb);
            if (r)
                for (int b = 0; b < nb; b++) y += r[b] * x[b].s;
            Y[(size_t)m * ldy + n] = y;
        }
    }
}

int sy_wgemm_rows(int type, const void *W, size_t row_bytes, int K, const float *X, int M, int ldx,
                  int n_begin, int n_end, float *Y, int ldy, int portable) {
    if (sy_weight_block_bytes(type) == 0) return -1;
    if (type == SY_Q8_0_PAIRS) {
        /* Only when the 8-bit kernel's activations could not be had (no memory): the portable
           loop, a block unpacked at a time, nothing allocated. */
        wgemm_portable(type, (const uint8_t *)W, row_bytes, K, X, M, ldx, n_begin, n_end, Y, ldy);
        return 0;
    }
#if SY_X86_SIMD
    if (sy_kernels_have_avx2() && !portable) {
        wgemm_avx2(type, (const uint8_t *)W, row_bytes, K, X, M, ldx, n_begin, n_end, Y, ldy);
        return 0;
    }
#endif
    (void)portable;
    wgemm_portable(type, (const uint8_t *)W, row_bytes, K, X, M, ldx, n_begin, n_end, Y, ldy);
    return 0;
}

int sy_dequantize_rows(int type, const void *W, size_t row_bytes, int K, int n_begin, int n_end, float *out) {
    const size_t bb = sy_weight_block_bytes(type);
    if (bb == 0) return -1;
    if (type == SY_Q8_0_PAIRS) {
        /* A block unpacked at a time (nothing allocated); each value d·q, as for Q8_0. */
        for (int n = n_begin; n < n_end; n++)
            for (int b = 0; b < K / 32; b++) {
                uint8_t block[34];
                sy_q8_0_pairs_block(W, row_bytes, n, b, block);
                sy_dequantize_rows(SY_Q8_0, block, 34, 32, 0, 1, out + (size_t)(n - n_begin) * K + 32 * b);
            }
        return 0;
    }
#if SY_X86_SIMD
    if (sy_kernels_have_avx2()) {
        dequantize_rows_avx2(type, (const uint8_t *)W, row_bytes, K, n_begin, n_end, out);
        return 0;
    }
#endif
    for (int n = n_begin; n < n_end; n++) {
        const uint8_t *w = (const uint8_t *)W + (size_t)n * row_bytes;
        float *o = out + (size_t)(n - n_begin) * K;
        for (int b = 0; b < K / 32; b++) widen_block(type, w + bb * (size_t)b, o + 32 * b);
    }
    return 0;
}

/* A fused product's tasks: part p owns tasks [first[p], first[p + 1]). Prefill tiles are
   `chunk[p]` weight rows each; decode batches (`guided`) take shrinking ranges (guided_rows). */
typedef struct {
    int M, K, lda, count;
    const float *A;
    const sy_qgemm_output *outs;
    const sy_block_q16 *xq;   /* one row of an integer type: A quantised once for every part */
    const sy_block_q8x8 *x8;  /* (M + 7) / 8 groups of K/32 blocks, when the 8-bit kernel runs */
    const uint16_t *xb;       /* A rounded to bfloat16 (M rows of K), when the BF16 dot-product kernel runs */
    const float *sums;        /* A's sums over each block of 32 columns (M x K/32), when a part has offsets */
    int first[SY_QGEMM_MAX_PARTS + 1], chunk[SY_QGEMM_MAX_PARTS];
    int guided;
} qgemm_job;

/* Rows [*lo, *hi) of task i of T over N rows, guided: task i starts at N·(1 − (1 − i/T)²), so the
   first tasks are the longest and the last the shortest (at T = 4, two a thread: the first 7/16
   of N, the last 1/16), their starts multiples of 4 (the VNNI kernel's step, two of the wide
   kernels').
   The pool's threads claim tasks as they come free; what one waits for at the end of a product is
   the other's last task, and a thread that arrives late (the caller, back from serial work) takes
   the short ones. Weight products of one SmolLM2 step on two threads (Scripts/bench/step_products.c,
   medians of 8 alternated rounds): batch 8 Q4_1 9.03 → 8.83 ms, Q8_0 9.88 → 9.08, F16 12.23 →
   11.74; batch 1 Q4_1 4.62 → 4.46. */
static void guided_rows(int N, int T, int i, int *lo, int *hi) {
    const double a = 1.0 - (double)i / T, b = 1.0 - (double)(i + 1) / T;
    *lo = (int)((1.0 - a * a) * N / 4) * 4;
    *hi = i + 1 == T ? N : (int)((1.0 - b * b) * N / 4) * 4;
}

static void qgemm_task(void *ctx, int t) {
    const qgemm_job *j = (const qgemm_job *)ctx;
    int p = 0;
    while (t >= j->first[p + 1]) p++;
    const sy_qgemm_output *o = &j->outs[p];
    int lo, hi;
    if (j->guided) {
        guided_rows(o->N, j->first[p + 1] - j->first[p], t - j->first[p], &lo, &hi);
    } else {
        lo = (t - j->first[p]) * j->chunk[p];
        hi = lo + j->chunk[p];
    }
    if (hi > o->N) hi = o->N;
    if (lo >= hi) return;
    if (j->xq) {
        sy_qgemv_rows(o->type, o->W, o->row_bytes, j->K, j->xq, j->M, lo, hi, o->C, o->ldc, o->offsets);
    } else if (j->x8) {
        /* 64 activation rows at a time (at most 64·K·2 bytes: they stay in cache while this
           task's weight rows pass over them). */
        const int nb = j->K / 32;
        for (int m0 = 0; m0 < j->M; m0 += 64)
            sy_q8x8_rows(o->type, o->W, o->row_bytes, j->K, j->x8 + (size_t)(m0 / 8) * nb,
                         j->M - m0 < 64 ? j->M - m0 : 64, lo, hi, o->C + (size_t)m0 * o->ldc, o->ldc, 0, o->offsets);
    } else if (j->xb) {
        for (int m0 = 0; m0 < j->M; m0 += 64)
            sy_bf16dot_rows(o->W, o->row_bytes, j->K, j->xb + (size_t)m0 * j->K, j->M - m0 < 64 ? j->M - m0 : 64, lo, hi,
                            o->C + (size_t)m0 * o->ldc, o->ldc, 0);
    } else if (j->M <= SY_SMALL_BATCH_ROWS
               || (!is_integer_type(o->type) && sy_kernels_have_avx512vl())) {
        /* Half-precision weights on a CPU with AVX-512VL take the register kernel in prefill too:
           each group of 8 activation rows passes over this task's weight rows (about 64, in L2),
           each block widened in registers for the group, where a widened float tile and sgemm
           repacked the task's activations for every tile. F16 weight products of a SmolLM2 step
           (Scripts/bench/step_products.c, two threads, a Zen 5 host): 32 rows 53 -> 35 ms, 64 rows 84 ->
           65, 512 rows 570 -> 530, 2,048 rows 2,200 -> 2,110; BF16 with Float32 activations 64
           rows 83 -> 67. The integer formats (when they take no 8-bit dot products) keep the
           tiles: unpacking their nibbles for every group cost more than sgemm past 64 rows
           (Q4_1, 512 rows: 600 -> 650 ms). */
        sy_wgemm_rows(o->type, o->W, o->row_bytes, j->K, j->A, j->M, j->lda, lo, hi, o->C, o->ldc, 0);
    } else {
        /* Prefill: this chunk of weight rows widened to a float tile, then sgemm. */
        float *tile = (float *)malloc((size_t)(hi - lo) * j->K * sizeof(float));
        if (!tile) {
            sy_wgemm_rows(o->type, o->W, o->row_bytes, j->K, j->A, j->M, j->lda, lo, hi, o->C, o->ldc, 0);
            return;
        }
        sy_dequantize_rows(o->type, o->W, o->row_bytes, j->K, lo, hi, tile);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->M, hi - lo, j->K, 1.f, j->A, j->lda, tile, j->K, 0.f,
                    o->C + lo, o->ldc);
        free(tile);
    }
    if (o->offsets && !j->x8 && !j->xq) {
        /* (The integer kernels add them themselves.) C[m][n] += Σ_b sums[m][b] · offsets[n][b] for
           this task's rows: 8 partial sums, so that the compiler vectorises them instead of
           chaining one add after another. */
        const int nb = j->K / 32;
        for (int n = lo; n < hi; n++) {
            const float *on = o->offsets + (size_t)n * nb;
            for (int m = 0; m < j->M; m++) {
                const float *sm = j->sums + (size_t)m * nb;
                float acc[8] = { 0 };
                int b = 0;
                for (; b + 8 <= nb; b += 8)
                    for (int i = 0; i < 8; i++) acc[i] += sm[b + i] * on[b + i];
                for (; b < nb; b++) acc[b % 8] += sm[b] * on[b];
                o->C[(size_t)m * o->ldc + n] += ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            }
        }
    }
}

typedef struct {
    const float *A;
    int M, lda, K, parts;
    sy_block_q8x8 *x8;
} quantize_q8x8_job;

/* Part t % parts of the blocks of group t / parts of 8 activation rows, quantised for the 8-bit
   kernel: prefill has hundreds of groups (one part each); a decode batch has one group, split by
   blocks so that the pool's threads share it instead of waiting on the caller. */
static void quantize_q8x8_task(void *ctx, int t) {
    const quantize_q8x8_job *j = (const quantize_q8x8_job *)ctx;
    const int nb = j->K / 32, g = t / j->parts, part = t % j->parts;
    const int b0 = part * nb / j->parts, b1 = (part + 1) * nb / j->parts;
    sy_quantize_rows_q8x8(j->A + 32 * b0, j->M, j->lda, 8 * g, 32 * (b1 - b0), j->x8 + (size_t)g * nb + b0);
}

int sy_qgemm_nt_fused(int M, int K, const float *A, int lda, const sy_qgemm_output *outs, int count,
                      sy_block_q16 *scratch, int bf16_activations) {
    if (count < 1 || count > SY_QGEMM_MAX_PARTS || K % 32 != 0) return -1;
    /* One type, Q8_0 in row pairs or not (the activations are quantised alike). */
    const int type = activations_type(outs[0].type);
    for (int p = 0; p < count; p++)
        if (activations_type(outs[p].type) != type || outs[p].N < 0 || sy_weight_block_bytes(type) == 0) return -1;
    if (M <= 0) return 0;
    qgemm_job job = { M, K, lda, count, A, outs, NULL, NULL, NULL, NULL, { 0 }, { 0 }, 0 };
    sy_block_q8x8 *x8 = NULL;
    const int threads = sy_threads();
    if (M > 1 && is_integer_type(type) && sy_kernels_have_vnni()) {
        /* Batched decode and prefill on a CPU with 8-bit dot products (vnni.c); without memory
           for the quantised activations, the Float32 paths below. */
        const int groups = (M + 7) / 8;
        x8 = (sy_block_q8x8 *)sy_scratch_take(SY_SCRATCH_ACTIVATIONS, (size_t)groups * (K / 32) * sizeof(sy_block_q8x8));
        if (x8) {
            const int parts = groups == 1 && K / 32 >= threads ? threads : 1;
            quantize_q8x8_job q = { A, M, lda, K, parts, x8 };
            sy_parallel_for(groups * parts, quantize_q8x8_task, &q);
            job.x8 = x8;
        }
    }
    uint16_t *xb = NULL;
    if (bf16_activations && M > 1 && type == SY_BF16 && sy_kernels_have_avx512bf16()) {
        /* More than one row of BF16 weights on a CPU with bfloat16 dot products (bf16dot.c): the
           activations rounded to bfloat16 once for every part; without memory for them, the
           widening kernels below. */
        xb = (uint16_t *)malloc((size_t)M * K * sizeof(uint16_t));
        if (xb) {
            sy_bf16_round_rows(A, M, K, lda, xb, 0);
            job.xb = xb;
        }
    }
    const int small = M <= SY_SMALL_BATCH_ROWS || x8 || xb;
    job.guided = small;
    if (small && M == 1 && is_integer_type(type)) {
        sy_quantize_rows_q16(A, M, K, lda, scratch);
        job.xq = scratch;
    }
    /* Offsets the kernels do not add themselves (the integer ones do) are added from A's exact
       block sums after each task's rows (qgemm_task). */
    float *sums = NULL;
    for (int p = 0; p < count && !sums && !job.x8 && !job.xq; p++)
        if (outs[p].offsets) {
            sums = (float *)malloc((size_t)M * (K / 32) * sizeof(float));
            if (!sums) { sy_scratch_give(SY_SCRATCH_ACTIVATIONS, x8); free(xb); return -1; }
            for (int m = 0; m < M; m++)
                for (int b = 0; b < K / 32; b++) {
                    const float *a = A + (size_t)m * lda + 32 * b;
                    float t = 0.f;
                    for (int i = 0; i < 32; i++) t += a[i];
                    sums[(size_t)m * (K / 32) + b] = t;
                }
            job.sums = sums;
        }
    for (int p = 0; p < count; p++) {
        const int N = outs[p].N;
        int tasks;
        if (small) {
            /* Guided tasks (guided_rows), two a thread: fewer, longer runs of rows a task stream
               the weights faster and join less often than four a thread (measured on a Zen 4
               host before the 512-bit kernels). On a Zen 5 host, the weight products of a
               SmolLM2 step (bench decode's weight_products_ms_b1/_b8, alternated runs): batch 1
               Q4_1 3.54-3.63 -> 3.02-3.14 ms, Q8_0 3.21-3.27 -> 2.68-2.77, F16 5.68-5.80 ->
               5.22-5.26; batch 8 Q8_0 4.18-5.26 -> 3.92-4.76, Q4_1 4.13-5.68 -> 4.01-5.07 (each
               pair lower), F16 8.41-8.66 -> 7.83-8.08. Decode at batch 1 (three alternated runs,
               Q4_1): 254-264 tok/s with four tasks a thread, 262-279 with one, 292-310 with two,
               280-303 with three. */
            tasks = threads * 2;
            if (tasks > N / 16) tasks = N / 16 > 0 ? N / 16 : 1;
        } else {
            /* Tiles of about 64 weight rows, their count a multiple of the threads so that no
               thread waits on another's last tile (192 rows in 3 tiles on 2 threads cost a third). */
            tasks = (N + 63) / 64;
            if (tasks % threads != 0) tasks += threads - tasks % threads;
            if (tasks > N) tasks = N;
        }
        if (N == 0) tasks = 0;
        job.chunk[p] = tasks > 0 ? (N + tasks - 1) / tasks : 0;
        job.first[p + 1] = job.first[p] + tasks;
    }
    sy_parallel_for(job.first[count], qgemm_task, &job);
    sy_scratch_give(SY_SCRATCH_ACTIVATIONS, x8);
    free(xb);
    free(sums);
    return 0;
}

int sy_qgemm_nt(int type, int M, int N, int K, const float *A, int lda, const void *W, size_t row_bytes,
                float *C, int ldc, sy_block_q16 *scratch, int bf16_activations) {
    if (M <= 0 || N <= 0) return 0;
    const sy_qgemm_output out = { type, N, W, row_bytes, C, ldc, NULL };
    return sy_qgemm_nt_fused(M, K, A, lda, &out, 1, scratch, bf16_activations);
}
