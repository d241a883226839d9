/* Causal self-attention over a KV cache, for prefill chunks and decode steps alike.

   Work is split over the thread pool by (query head, chunk of query rows); each task computes
   only the keys its rows may see (causal, and the sliding window), so a long prefill does half
   the products of a full score matrix, and the softmax runs in parallel with a vectorised exp.
   Keys and values are Float32 or IEEE half (kv_half), widened as they are read.

   A prefill chunk of SY_ATTN_BLAS_ROWS rows or more of a sequence of SY_ATTN_BLAS_KEYS positions or
   more (with the SIMD kernels) is computed instead as two matrix products (OpenBLAS,
   single-threaded inside the task): scores = Q·Kᵀ for the chunk's rows and heads at once, the
   causal and window mask and a vectorised softmax, then P·V. Each key and value is then read once
   for the chunk's rows (16, or 64 in a long prefill) × its heads instead of once per row: at a
   2,048-token prompt attention took a third of prefill row by row. A half cache is widened once
   per call (every KV head's rows up to the last position) for those products.

   Decode rows (fewer than SY_ATTN_BLAS_ROWS new rows) of a sequence longer than
   SY_ATTN_SPLIT_KEYS positions split their keys into ranges of that many, one task each (split-K,
   "flash-decoding"): each range's softmax is normalised on its own and reports its maximum and
   sum, and the ranges are combined after the join, weighted by sum · exp(max − the overall max).
   Without it one sequence's decode step had one task per KV head (3 for SmolLM2), so at depth
   2,048 one of 2 threads did two tasks while the other did one and then waited. The ranges follow
   from the sequence alone, never from the batch or the thread count, so a sequence gets the same
   numbers in any batch. */
#include "CKernels.h"
#include <cblas.h>  /* OpenBLAS's, single-threaded (sy_blas_single_threaded) */
#include "simd.h"
#include "half.h"
#include "scratch.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SY_ATTN_CHUNK 16
/* Rows per task of a long prefill on the matrix-product path: each task packs its keys once for
   all of them (with 16, OpenBLAS's packing of the same keys was redone 4x as often). */
#define SY_ATTN_LONG_CHUNK 64
#define SY_ATTN_LONG_ROWS 256
/* Query heads of one GQA group computed together by a task (they share every key/value load). */
#define SY_ATTN_HEADS 4
/* Chunks with at least this many rows, of sequences with at least SY_ATTN_BLAS_KEYS positions,
   take the two matrix products (SIMD builds only); short prompts, where attention is a small part
   of prefill, keep the row kernel and its lower fixed costs. */
#define SY_ATTN_BLAS_ROWS 8
#define SY_ATTN_BLAS_KEYS 256
/* Keys per task of a decode row past this many positions (see above). */
#ifndef SY_ATTN_SPLIT_KEYS
#define SY_ATTN_SPLIT_KEYS 1024
#endif

typedef struct {
    const float *q;
    int n, start, q_stride, num_heads, group, hd, window;
    const void *keys, *values;
    size_t head_stride;
    float scale;
    float *out;
    int out_stride, chunks, avx2, kv_half;
    int slice, slices;  /* heads per task (≤ SY_ATTN_HEADS), tasks per KV group */
    int chunk_rows;     /* rows per task: SY_ATTN_CHUNK, or SY_ATTN_LONG_CHUNK for a long prefill */
    /* For the matrix-product path (NULL when it is not taken): the keys and values as floats, the
       cache itself or its widened copy, `wide_stride` floats per KV head. */
    const float *wide_keys, *wide_values;
    size_t wide_stride;
    float *widened;  /* the widened copy this job owns (a half cache), freed after the job; else NULL */
    /* Key ranges of SY_ATTN_SPLIT_KEYS per row (1: not split). With more than one, `partial` holds
       per row and range a block of num_heads·hd normalised outputs, then num_heads maxima, then
       num_heads sums (split_block floats); combine_splits writes `out` from them after the join. */
    int splits;
    size_t split_block;
    float *partial;
} attn_job;

/* First key position row `pos` may see. */
static inline int first_key(int pos, int window) { return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0; }

/* Softmax in place; the maximum and the sum of exp(x − max) in *max_out / *sum_out when given. */
static void softmax_portable(float *x, int count, float *max_out, float *sum_out) {
    float m = -INFINITY, sum = 0.f;
    for (int i = 0; i < count; i++) if (x[i] > m) m = x[i];
    for (int i = 0; i < count; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    float inv = 1.f / sum;
    for (int i = 0; i < count; i++) x[i] *= inv;
    if (max_out) { *max_out = m; *sum_out = sum; }
}

/* Element i of a key/value head stored as floats or halves. */
static inline float kv_at(const void *base, size_t i, int half) {
    return half ? sy_half_to_float(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}

/* One query row of one head against keys [first, last]; with `mx`, its softmax's maximum and sum
   go to *mx and *sum (a key range of a split row). */
static void row_portable(const float *q, const void *K, const void *V, int half, int first, int last, int hd,
                         float scale, float *scores, float *out, float *mx, float *sum) {
    int count = last - first + 1;
    for (int t = 0; t < count; t++) {
        size_t k = (size_t)(first + t) * hd;
        float s = 0.f;
        for (int i = 0; i < hd; i++) s += q[i] * kv_at(K, k + i, half);
        scores[t] = s * scale;
    }
    softmax_portable(scores, count, mx, sum);
    for (int i = 0; i < hd; i++) out[i] = 0.f;
    for (int t = 0; t < count; t++) {
        size_t v = (size_t)(first + t) * hd;
        for (int i = 0; i < hd; i++) out[i] += scores[t] * kv_at(V, v + i, half);
    }
}

#if SY_X86_SIMD
/* Eight keys/values from element i: floats, or halves widened with F16C. */
__attribute__((target("avx2,fma,f16c")))
static inline __m256 kv8(const void *base, size_t i, const int half) {
    return half ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)))
                : _mm256_loadu_ps((const float *)base + i);
}

/* x[i] = exp(x[i] − max x) in place over `count` values (vectorised exp); returns their sum, and
   the maximum in *max_out when given. */
__attribute__((target("avx2,fma")))
static float exp_shifted_avx2(float *x, int count, float *max_out) {
    /* The maximum 16 values at a time (vmaxps returns its second operand when the first is NaN, so
       NaN scores are skipped as the scalar comparison skips them): one compare-and-branch chain per
       score was 12% of a decode row's attention at depth 110. */
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    int j = 0;
    for (; j + 16 <= count; j += 16) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + j), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + j + 8), m1);
    }
    float m = sy_hmax256(_mm256_max_ps(m0, m1));
    for (; j < count; j++) if (x[j] > m) m = x[j];
    if (max_out) *max_out = m;
    __m256 mv = _mm256_set1_ps(m), sv = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 e = sy_exp256_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        sv = _mm256_add_ps(sv, e);
    }
    float sum = sy_hsum256(sv);
    for (; i < count; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    return sum;
}

/* The scores of `nh` heads (`count` apart) exponentiated in place, shifted by each head's maximum;
   inv[g] = 1 / their sum, and with `mx` each head's maximum and sum in mx[g] and sums[g]. */
__attribute__((target("avx2,fma"), always_inline))
static inline void softmax_heads(float *scores, int nh, int count, float *inv, float *mx, float *sums) {
    for (int g = 0; g < nh; g++) {
        float m;
        const float sum = exp_shifted_avx2(scores + (size_t)g * count, count, &m);
        inv[g] = 1.f / sum;
        if (mx) { mx[g] = m; sums[g] = sum; }
    }
}

/* One query row of `nh` (1..SY_ATTN_HEADS) heads of one GQA group, side by side `hd` apart in q
   and out, against keys [first, last] (hd a multiple of 8). Every key and value is loaded (and
   widened, for a half cache) once for all the group's heads. `half` and `nh` are constants in each
   instantiation below, so the head loops unroll into registers and the loads compile without a
   branch. `scores` holds nh · count floats. With `mx` (a key range of a split row), each head's
   softmax maximum and sum go to mx[g] and sums[g]. */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void group_row_avx2_typed(const float *q, const void *K, const void *V, const int half, const int nh,
                                        int first, int last, int hd, float scale, float *scores, float *out,
                                        float *mx, float *sums) {
    const int count = last - first + 1;
    const size_t k0 = (size_t)first * hd;
    int t = 0;
    /* Two keys at a time for every head: the two keys' vectors are loaded once per step. */
    for (; t + 2 <= count; t += 2) {
        const size_t k = k0 + (size_t)t * hd;
        __m256 a[SY_ATTN_HEADS], b[SY_ATTN_HEADS];
        for (int g = 0; g < nh; g++) { a[g] = _mm256_setzero_ps(); b[g] = a[g]; }
        for (int i = 0; i < hd; i += 8) {
            const __m256 ka = kv8(K, k + i, half), kb = kv8(K, k + hd + i, half);
            for (int g = 0; g < nh; g++) {
                const __m256 qv = _mm256_loadu_ps(q + (size_t)g * hd + i);
                a[g] = _mm256_fmadd_ps(qv, ka, a[g]);
                b[g] = _mm256_fmadd_ps(qv, kb, b[g]);
            }
        }
        for (int g = 0; g < nh; g++) {
            /* Both sums at once: lane 0 the first key's, lane 1 the second's. */
            __m256 h = _mm256_hadd_ps(a[g], b[g]);
            __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            s = _mm_mul_ps(_mm_hadd_ps(s, s), _mm_set1_ps(scale));
            scores[(size_t)g * count + t] = _mm_cvtss_f32(s);
            scores[(size_t)g * count + t + 1] = _mm_cvtss_f32(_mm_shuffle_ps(s, s, 1));
        }
    }
    for (; t < count; t++) {
        const size_t k = k0 + (size_t)t * hd;
        for (int g = 0; g < nh; g++) {
            __m256 a = _mm256_setzero_ps();
            for (int i = 0; i < hd; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t)g * hd + i), kv8(K, k + i, half), a);
            scores[(size_t)g * count + t] = sy_hsum256(a) * scale;
        }
    }
    /* Softmax per head; the normalisation is applied once to the outputs. */
    float inv[SY_ATTN_HEADS];
    softmax_heads(scores, nh, count, inv, mx, sums);
    /* Weighted sums of the values, 16 columns at a time (8 for a last odd chunk). */
    const size_t v0 = (size_t)first * hd;
    for (int c = 0; c < hd; c += 16) {
        const int two = hd - c >= 16;
        __m256 o0[SY_ATTN_HEADS], o1[SY_ATTN_HEADS];
        for (int g = 0; g < nh; g++) { o0[g] = _mm256_setzero_ps(); o1[g] = o0[g]; }
        for (int u = 0; u < count; u++) {
            const size_t v = v0 + (size_t)u * hd + c;
            const __m256 va = kv8(V, v, half);
            if (two) {
                const __m256 vb = kv8(V, v + 8, half);
                for (int g = 0; g < nh; g++) {
                    const __m256 p = _mm256_broadcast_ss(scores + (size_t)g * count + u);
                    o0[g] = _mm256_fmadd_ps(p, va, o0[g]);
                    o1[g] = _mm256_fmadd_ps(p, vb, o1[g]);
                }
            } else {
                for (int g = 0; g < nh; g++)
                    o0[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + (size_t)g * count + u), va, o0[g]);
            }
        }
        for (int g = 0; g < nh; g++) {
            const __m256 s = _mm256_set1_ps(inv[g]);
            _mm256_storeu_ps(out + (size_t)g * hd + c, _mm256_mul_ps(o0[g], s));
            if (two) _mm256_storeu_ps(out + (size_t)g * hd + c + 8, _mm256_mul_ps(o1[g], s));
        }
    }
}

/* The instantiations of a row kernel BODY for both cache types and 1..SY_ATTN_HEADS heads, named
   PREFIX##f32_1 … PREFIX##f16_4 (`half` and `nh` constants in each). */
#define SY_GROUP_ROW(NAME, TARGET, BODY, HALF, NH)                                                            \
    __attribute__((target(TARGET))) static void NAME(const float *q, const void *K, const void *V, int first, \
                                                     int last, int hd, float scale, float *scores, float *out, \
                                                     float *mx, float *sums) {                                \
        BODY(q, K, V, HALF, NH, first, last, hd, scale, scores, out, mx, sums);                               \
    }
#define SY_GROUP_ROWS(PREFIX, TARGET, BODY)                 \
    SY_GROUP_ROW(PREFIX##f32_1, TARGET, BODY, 0, 1)         \
    SY_GROUP_ROW(PREFIX##f32_2, TARGET, BODY, 0, 2)         \
    SY_GROUP_ROW(PREFIX##f32_3, TARGET, BODY, 0, 3)         \
    SY_GROUP_ROW(PREFIX##f32_4, TARGET, BODY, 0, 4)         \
    SY_GROUP_ROW(PREFIX##f16_1, TARGET, BODY, 1, 1)         \
    SY_GROUP_ROW(PREFIX##f16_2, TARGET, BODY, 1, 2)         \
    SY_GROUP_ROW(PREFIX##f16_3, TARGET, BODY, 1, 3)         \
    SY_GROUP_ROW(PREFIX##f16_4, TARGET, BODY, 1, 4)
SY_GROUP_ROWS(group_row_, "avx2,fma,f16c", group_row_avx2_typed)

typedef void (*group_row_fn)(const float *, const void *, const void *, int, int, int, float, float *, float *,
                             float *, float *);

/* How many keys ahead the 512-bit decode kernel prefetches key rows (8 to 32 measured alike on
   Scripts/bench/decode_attention.c; 64 slower). */
#define SY_ATTN_KEYS_AHEAD 16
#define SY_ATTN_ZMM_TARGET "avx2,fma,f16c,avx512f,avx512vl"

/* Sixteen keys/values from element i: floats, or halves widened. */
__attribute__((target(SY_ATTN_ZMM_TARGET), always_inline))
static inline __m512 kv16(const void *base, size_t i, const int half) {
    return half ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + i)))
                : _mm512_loadu_ps((const float *)base + i);
}

/* group_row_avx2_typed on 512-bit registers, for head sizes that are multiples of 64: four keys
   at a time for every head (their 16-lane sums reduced together, four scores per store), and the
   values' weighted sums 64 columns at a time (nh × 4 accumulators), so each value row is read
   once per 64 columns instead of once per 16. On a Zen 5 host, whose vector units are 512 bits
   wide, the attention of a SmolLM2 decode step (Scripts/bench/decode_attention.c, 30 layers, two
   threads, best of 20, three runs): batch 8 at depth 110 0.60-0.80 -> 0.51-0.55 ms, one
   sequence at depth 2,048 1.80-1.91 -> 1.14-1.16, batch 8 at depth 2,048 15.9-16.5 -> 11.3-11.7. */
__attribute__((target(SY_ATTN_ZMM_TARGET), always_inline))
static inline void group_row_zmm_typed(const float *q, const void *K, const void *V, const int half, const int nh,
                                       int first, int last, int hd, float scale, float *scores, float *out,
                                       float *mx, float *sums) {
    const int count = last - first + 1;
    const size_t k0 = (size_t)first * hd;
    const __m128 sv = _mm_set1_ps(scale);
    int t = 0;
    const size_t es = half ? 2 : 4, row_bytes = (size_t)hd * es;
    for (; t + 4 <= count; t += 4) {
        const size_t k = k0 + (size_t)t * hd;
        {
            /* These four keys' value rows, read by the second pass, and the key rows SY_ATTN_KEYS_AHEAD
               on: in a decode step the cache was last read a step ago and has since left the caches
               (the weights stream through them), so both passes would otherwise wait on memory. */
            const char *vp = (const char *)V + es * k;
            const char *kp = (const char *)K + es * (k + (size_t)SY_ATTN_KEYS_AHEAD * hd);
            const char *kend = (const char *)K + es * (k0 + (size_t)count * hd);
            for (size_t o = 0; o < 4 * row_bytes; o += 64) {
                _mm_prefetch(vp + o, _MM_HINT_T0);
                if (kp + o < kend) _mm_prefetch(kp + o, _MM_HINT_T0);
            }
        }
        __m512 a[SY_ATTN_HEADS][4];
        for (int g = 0; g < nh; g++)
            for (int u = 0; u < 4; u++) a[g][u] = _mm512_setzero_ps();
        for (int i = 0; i < hd; i += 16) {
            __m512 kv[4];
            for (int u = 0; u < 4; u++) kv[u] = kv16(K, k + (size_t)u * hd + i, half);
            for (int g = 0; g < nh; g++) {
                const __m512 qv = _mm512_loadu_ps(q + (size_t)g * hd + i);
                for (int u = 0; u < 4; u++) a[g][u] = _mm512_fmadd_ps(qv, kv[u], a[g][u]);
            }
        }
        for (int g = 0; g < nh; g++) {
            /* The four keys' sums reduced together: within each 128-bit lane, pairs interleaved
               (unpack) and added, then the four keys' partial sums gathered (shuffle) and added,
               so lane 4L+u holds key u's sum over 128-bit lane L; then the lanes added. Thirteen
               single-operation steps where extracting each sum and three hadds took nineteen. */
            const __m512 t01 = _mm512_add_ps(_mm512_unpacklo_ps(a[g][0], a[g][1]), _mm512_unpackhi_ps(a[g][0], a[g][1]));
            const __m512 t23 = _mm512_add_ps(_mm512_unpacklo_ps(a[g][2], a[g][3]), _mm512_unpackhi_ps(a[g][2], a[g][3]));
            const __m512 u4 = _mm512_add_ps(_mm512_shuffle_ps(t01, t23, _MM_SHUFFLE(1, 0, 1, 0)),
                                            _mm512_shuffle_ps(t01, t23, _MM_SHUFFLE(3, 2, 3, 2)));
            const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u4),
                                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u4), 1)));
            const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            _mm_storeu_ps(scores + (size_t)g * count + t, _mm_mul_ps(s4, sv));
        }
    }
    for (; t < count; t++) {
        const size_t k = k0 + (size_t)t * hd;
        for (int g = 0; g < nh; g++) {
            __m512 a = _mm512_setzero_ps();
            for (int i = 0; i < hd; i += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + (size_t)g * hd + i), kv16(K, k + i, half), a);
            scores[(size_t)g * count + t] = _mm512_reduce_add_ps(a) * scale;
        }
    }
    float inv[SY_ATTN_HEADS];
    softmax_heads(scores, nh, count, inv, mx, sums);
    const size_t v0 = (size_t)first * hd;
    for (int c = 0; c < hd; c += 64) {
        __m512 o[SY_ATTN_HEADS][4];
        for (int g = 0; g < nh; g++)
            for (int i = 0; i < 4; i++) o[g][i] = _mm512_setzero_ps();
        for (int u = 0; u < count; u++) {
            const size_t v = v0 + (size_t)u * hd + c;
            __m512 vv[4];
            for (int i = 0; i < 4; i++) vv[i] = kv16(V, v + 16 * (size_t)i, half);
            for (int g = 0; g < nh; g++) {
                const __m512 p = _mm512_set1_ps(scores[(size_t)g * count + u]);
                for (int i = 0; i < 4; i++) o[g][i] = _mm512_fmadd_ps(p, vv[i], o[g][i]);
            }
        }
        for (int g = 0; g < nh; g++) {
            const __m512 s = _mm512_set1_ps(inv[g]);
            for (int i = 0; i < 4; i++) _mm512_storeu_ps(out + (size_t)g * hd + c + 16 * i, _mm512_mul_ps(o[g][i], s));
        }
    }
}

SY_GROUP_ROWS(group_row_zmm_, SY_ATTN_ZMM_TARGET, group_row_zmm_typed)

/* The instantiation for a cache type, a number of heads (1..SY_ATTN_HEADS) and a head size: the
   512-bit kernel for multiples of 64 on CPUs with AVX-512, else the 256-bit one. */
static group_row_fn group_row_avx2(int half, int nh, int hd) {
    static const group_row_fn table[2][SY_ATTN_HEADS] = {
        { group_row_f32_1, group_row_f32_2, group_row_f32_3, group_row_f32_4 },
        { group_row_f16_1, group_row_f16_2, group_row_f16_3, group_row_f16_4 },
    };
    static const group_row_fn wide[2][SY_ATTN_HEADS] = {
        { group_row_zmm_f32_1, group_row_zmm_f32_2, group_row_zmm_f32_3, group_row_zmm_f32_4 },
        { group_row_zmm_f16_1, group_row_zmm_f16_2, group_row_zmm_f16_3, group_row_zmm_f16_4 },
    };
    return (hd % 64 == 0 && sy_kernels_have_avx512vl() ? wide : table)[half != 0][nh - 1];
}

/* Eight floats rounded to halves (nearest, ties to even). */
__attribute__((target("avx2,f16c")))
static void store8_half(uint16_t *y, const float *x) {
    _mm_storeu_si128((__m128i *)y, _mm256_cvtps_ph(_mm256_loadu_ps(x), _MM_FROUND_TO_NEAREST_INT));
}

/* `count` halves widened to floats (exact). */
__attribute__((target("avx2,f16c")))
static void widen_halves(const uint16_t *x, size_t count, float *y) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < count; i++) y[i] = sy_half_to_float(x[i]);
}

/* Rows [r0, r1) of heads h0 ..< h0+nh (KV head `kv`) as two matrix products over the chunk's keys
   [first_key(start + r0), start + r1 − 1]: S = scale · Q·Kᵀ (all rows and heads at once), each
   row's keys outside its causal window zeroed after its softmax, out = P·V / Σ. */
static void attn_rows_blas(const attn_job *j, int kv, int h0, int nh, int r0, int r1) {
    const int R = r1 - r0, hd = j->hd, M = nh * R;
    const int first = first_key(j->start + r0, j->window), count = j->start + r1 - first;
    const float *K = j->wide_keys + (size_t)kv * j->wide_stride + (size_t)first * hd;
    const float *V = j->wide_values + (size_t)kv * j->wide_stride + (size_t)first * hd;
    /* One buffer: the gathered queries, the outputs (M × hd each), the scores (M × count). */
    float *qs = (float *)malloc(sizeof(float) * (size_t)M * (2 * (size_t)hd + (size_t)count));
    if (!qs) abort();  /* a few hundred KB; nothing sensible to return mid-forward */
    float *o = qs + (size_t)M * hd, *s = o + (size_t)M * hd, inv[SY_ATTN_HEADS * SY_ATTN_LONG_CHUNK];
    /* Row g·R + r of Q: head h0 + g of query row r0 + r. */
    for (int g = 0; g < nh; g++)
        for (int r = 0; r < R; r++)
            memcpy(qs + ((size_t)g * R + r) * hd, j->q + (size_t)(r0 + r) * j->q_stride + (size_t)(h0 + g) * hd,
                   sizeof(float) * (size_t)hd);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, count, hd, j->scale, qs, hd, K, hd, 0.f, s, count);
    for (int g = 0; g < nh; g++)
        for (int r = 0; r < R; r++) {
            const int pos = j->start + r0 + r, lo = first_key(pos, j->window) - first, hi = pos - first;
            float *row = s + ((size_t)g * R + r) * count;
            inv[g * R + r] = 1.f / exp_shifted_avx2(row + lo, hi - lo + 1, NULL);
            memset(row, 0, sizeof(float) * (size_t)lo);
            memset(row + hi + 1, 0, sizeof(float) * (size_t)(count - hi - 1));
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, hd, count, 1.f, s, count, V, hd, 0.f, o, hd);
    for (int g = 0; g < nh; g++)
        for (int r = 0; r < R; r++) {
            float *out = j->out + (size_t)(r0 + r) * j->out_stride + (size_t)(h0 + g) * hd;
            const float *src = o + ((size_t)g * R + r) * hd, f = inv[g * R + r];
            for (int i = 0; i < hd; i++) out[i] = src[i] * f;
        }
    free(qs);
}

#endif /* SY_X86_SIMD */

/* The kv head `kv` of a cache buffer, `head_stride` elements per head. */
static inline const void *kv_head(const void *base, int kv, size_t head_stride, int half) {
    return half ? (const void *)((const uint16_t *)base + (size_t)kv * head_stride)
                : (const void *)((const float *)base + (size_t)kv * head_stride);
}

/* Task `index`: KV head `kv`, its `part`-th slice of up to `slice` query heads, one chunk of rows,
   and of a split sequence one key range of them. */
static void attn_task(void *ctx, int index) {
    const attn_job *j = (const attn_job *)ctx;
    const int range = index % j->splits;
    index /= j->splits;
    const int chunk = index % j->chunks, unit = index / j->chunks;
    const int kv = unit / j->slices, part = unit % j->slices;
    const int h0 = kv * j->group + part * j->slice;
    const int nh = j->group - part * j->slice < j->slice ? j->group - part * j->slice : j->slice;
    const int r0 = chunk * j->chunk_rows, r1 = r0 + j->chunk_rows < j->n ? r0 + j->chunk_rows : j->n;
#if SY_X86_SIMD
    if (j->wide_keys && r1 - r0 >= SY_ATTN_BLAS_ROWS) {
        attn_rows_blas(j, kv, h0, nh, r0, r1);
        return;
    }
#endif
    const void *K = kv_head(j->keys, kv, j->head_stride, j->kv_half), *V = kv_head(j->values, kv, j->head_stride, j->kv_half);
    /* This task's keys: all (up to its last row's position), or its range of a split sequence. */
    const int k0 = range * SY_ATTN_SPLIT_KEYS;
    const int k1 = j->splits > 1 ? k0 + SY_ATTN_SPLIT_KEYS - 1 : j->start + r1 - 1;
    float *scores = (float *)sy_scratch_take(SY_SCRATCH_SCORES, sizeof(float) * (size_t)nh * (size_t)(k1 - k0 + 1));
    if (!scores) abort();  /* a few KB to a few MB; nothing sensible to return mid-forward */
    for (int r = r0; r < r1; r++) {
        const int pos = j->start + r;
        const float *q = j->q + (size_t)r * j->q_stride + (size_t)h0 * j->hd;
        float *out = j->out + (size_t)r * j->out_stride + (size_t)h0 * j->hd;
        int first = first_key(pos, j->window), last = pos;
        float *mx = NULL, *sums = NULL;
        if (j->splits > 1) {
            float *block = j->partial + ((size_t)r * (size_t)j->splits + (size_t)range) * j->split_block;
            out = block + (size_t)h0 * j->hd;
            mx = block + (size_t)j->num_heads * j->hd + h0;
            sums = mx + j->num_heads;
            if (first < k0) first = k0;
            if (last > k1) last = k1;
            if (first > last) {  /* none of this range's keys is visible to the row: it weighs 0 */
                for (int g = 0; g < nh; g++) { mx[g] = -INFINITY; sums[g] = 0.f; }
                continue;
            }
        }
#if SY_X86_SIMD
        if (j->avx2) {
            group_row_avx2(j->kv_half, nh, j->hd)(q, K, V, first, last, j->hd, j->scale, scores, out, mx, sums);
            continue;
        }
#endif
        for (int g = 0; g < nh; g++)
            row_portable(q + (size_t)g * j->hd, K, V, j->kv_half, first, last, j->hd, j->scale, scores,
                         out + (size_t)g * j->hd, mx ? mx + g : NULL, sums ? sums + g : NULL);
    }
    sy_scratch_give(SY_SCRATCH_SCORES, scores);
}

/* The outputs of a split sequence's rows from its key ranges: each range's normalised output
   weighted by its share of the row's softmax, sum · exp(max − the row's max). */
static void combine_splits(const attn_job *j) {
    const int hd = j->hd, heads = j->num_heads;
    for (int r = 0; r < j->n; r++) {
        const float *blocks = j->partial + (size_t)r * (size_t)j->splits * j->split_block;
        for (int h = 0; h < heads; h++) {
            float top = -INFINITY;
            for (int s = 0; s < j->splits; s++) {
                const float *b = blocks + (size_t)s * j->split_block + (size_t)heads * hd;
                if (b[heads + h] > 0.f && b[h] > top) top = b[h];
            }
            float *out = j->out + (size_t)r * j->out_stride + (size_t)h * hd;
            float total = 0.f;
            for (int i = 0; i < hd; i++) out[i] = 0.f;
            for (int s = 0; s < j->splits; s++) {
                const float *b = blocks + (size_t)s * j->split_block;
                const float sum = b[(size_t)heads * hd + heads + h];
                if (!(sum > 0.f)) continue;
                const float w = sum * expf(b[(size_t)heads * hd + h] - top), *o = b + (size_t)h * hd;
                total += w;
                for (int i = 0; i < hd; i++) out[i] += w * o[i];
            }
            const float inv = 1.f / total;
            for (int i = 0; i < hd; i++) out[i] *= inv;
        }
    }
}

/* A batch's tasks: sequence i owns tasks [first[i], first[i + 1]). */
typedef struct {
    const attn_job *jobs;
    const int *first;
} attn_batch;

static void attn_batch_task(void *ctx, int index) {
    const attn_batch *b = (const attn_batch *)ctx;
    int i = 0;
    while (index >= b->first[i + 1]) i++;
    attn_task((void *)&b->jobs[i], index - b->first[i]);
}

void sy_causal_attention_batch(const sy_attention_sequence *seqs, int count, int q_stride, int out_stride,
                               int num_heads, int num_kv_heads, int hd, int window, float scale, int portable) {
    if (count <= 0 || num_heads <= 0 || num_kv_heads <= 0 || num_heads % num_kv_heads != 0) return;
    const int group = num_heads / num_kv_heads;
    /* Slices of the group as even as possible: 3 → 3, 6 → 3+3, 8 → 4+4, 5 → 3+2. */
    const int slices = (group + SY_ATTN_HEADS - 1) / SY_ATTN_HEADS, slice = (group + slices - 1) / slices;
    const int avx2 = !portable && hd % 8 == 0 && sy_kernels_have_avx2();
    attn_job *jobs = (attn_job *)malloc(sizeof(attn_job) * (size_t)count);
    int *first = (int *)malloc(sizeof(int) * ((size_t)count + 1));
    if (!jobs || !first) abort();  /* a few hundred bytes; nothing sensible to return mid-forward */
    first[0] = 0;
    for (int i = 0; i < count; i++) {
        const sy_attention_sequence *s = &seqs[i];
        const int n = s->n > 0 ? s->n : 0;
        const int rows = avx2 && n >= SY_ATTN_LONG_ROWS ? SY_ATTN_LONG_CHUNK : SY_ATTN_CHUNK;
        attn_job job = { s->q, n, s->start, q_stride, num_heads, group, hd, window, s->keys, s->values,
                         s->head_stride, scale, s->out, out_stride, (n + rows - 1) / rows,
                         avx2, s->kv_half != 0, slice, slices, rows, NULL, NULL, 0, NULL, 1, 0, NULL };
#if SY_X86_SIMD
        if (avx2 && n >= SY_ATTN_BLAS_ROWS && s->start + n >= SY_ATTN_BLAS_KEYS) {
            if (!job.kv_half) {
                job.wide_keys = (const float *)s->keys;
                job.wide_values = (const float *)s->values;
                job.wide_stride = s->head_stride;
            } else {
                /* Positions 0 ..< start + n of every KV head, keys then values. */
                const size_t elements = (size_t)(s->start + n) * hd;
                float *w = job.widened = (float *)malloc(sizeof(float) * elements * 2 * (size_t)num_kv_heads);
                if (!w) abort();  /* a few MB at most for these models; nothing sensible to return */
                for (int h = 0; h < num_kv_heads; h++) {
                    widen_halves((const uint16_t *)s->keys + (size_t)h * s->head_stride, elements, w + (size_t)h * elements);
                    widen_halves((const uint16_t *)s->values + (size_t)h * s->head_stride, elements,
                                 w + ((size_t)num_kv_heads + h) * elements);
                }
                job.wide_keys = w;
                job.wide_values = w + (size_t)num_kv_heads * elements;
                job.wide_stride = elements;
            }
        }
#endif
        /* Decode rows (fewer than take the matrix products) of a long sequence: key ranges. */
        const int keys = s->start + n;
        if (n > 0 && n < SY_ATTN_BLAS_ROWS && keys > SY_ATTN_SPLIT_KEYS) {
            job.splits = (keys + SY_ATTN_SPLIT_KEYS - 1) / SY_ATTN_SPLIT_KEYS;
            job.split_block = (size_t)num_heads * ((size_t)hd + 2);
            job.partial = (float *)malloc(sizeof(float) * (size_t)n * (size_t)job.splits * job.split_block);
            if (!job.partial) abort();  /* a few KB per decode row; nothing sensible to return mid-forward */
        }
        jobs[i] = job;
        first[i + 1] = first[i] + num_kv_heads * slices * job.chunks * job.splits;
    }
    attn_batch batch = { jobs, first };
    sy_parallel_for(first[count], attn_batch_task, &batch);
    for (int i = 0; i < count; i++) {
        if (jobs[i].partial) combine_splits(&jobs[i]);
        free(jobs[i].partial);
        free(jobs[i].widened);
    }
    free(first);
    free(jobs);
}

void sy_causal_attention(const float *q, int n, int start, int q_stride, int num_heads, int num_kv_heads, int hd,
                         const void *keys, const void *values, int kv_half, size_t head_stride, int window, float scale,
                         float *out, int out_stride, int portable) {
    const sy_attention_sequence seq = { q, out, keys, values, head_stride, n, start, kv_half };
    sy_causal_attention_batch(&seq, 1, q_stride, out_stride, num_heads, num_kv_heads, hd, window, scale, portable);
}

void sy_kv_store(const float *src, int n, int src_stride, int num_kv_heads, int hd, void *dst, int kv_half,
                 size_t head_stride, int start) {
    for (int j = 0; j < n; j++) {
        for (int h = 0; h < num_kv_heads; h++) {
            const float *x = src + (size_t)j * src_stride + (size_t)h * hd;
            size_t at = (size_t)h * head_stride + (size_t)(start + j) * hd;
            if (!kv_half) {
                memcpy((float *)dst + at, x, sizeof(float) * (size_t)hd);
                continue;
            }
            uint16_t *y = (uint16_t *)dst + at;
            int i = 0;
#if SY_X86_SIMD
            if (sy_kernels_have_avx2())
                for (; i + 8 <= hd; i += 8) store8_half(y + i, x + i);
#endif
            for (; i < hd; i++) y[i] = sy_float_to_half(x[i]);
        }
    }
}
