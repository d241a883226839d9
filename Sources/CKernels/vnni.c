/* Batched decode on integer weights (Q8_0, Q4_0, Q4_1) with 8-bit dot products (AVX-512 VNNI's
   vpdpbusd on 512-bit registers), for CPUs that have them.

   Why: batched decode is bound by multiply-adds, not weight bytes. Widening each weight block to
   floats (sy_wgemm_rows) costs a Float32 FMA per weight per activation row; one vpdpbusd does 32
   byte multiply-adds.

   Activations keep 16 bits. llama.cpp quantises them to 8 (its Q8_1 blocks); on SmolLM2-135M
   that puts the logits 1e-4 to 3.5e-3 (NMSE) from the Float32 model, above the 5e-4 this
   project holds native kernels to. So each activation block becomes 16-bit integers
   v = round(x / dl), dl = max|x| / 32512 (127·256), split exactly into two signed bytes
   v = 256·hi + lo (lo the low byte as signed, -128..127; hi = (v - lo) / 256, -127..127): two
   vpdpbusd per group instead of one, and (s_hi << 8) + s_lo is the 16-bit product.

   Layout: 8 activation rows per block, interleaved: for each pair p of groups of 4 consecutive
   values (values 8p..8p+7), the 8 bytes of every row side by side (sy_block_q8x8.hi[p][row][8],
   and lo alike): 64 bytes, one 512-bit register whose 32-bit lane j holds row j/2's group
   2p + j%2. Each weight block is unpacked once to 32 unsigned bytes (vpdpbusd multiplies unsigned
   by signed bytes); its bytes 8p..8p+7, broadcast as one 64-bit value, put its group 2p in the
   even lanes and 2p+1 in the odd ones, so one vpdpbusd adds 4 multiply-adds to each lane: both
   groups of the pair for all 8 rows. After the block the two lanes of each activation row are
   added (exact integers) and two weight rows share a register, row r in the even lanes and r+1 in
   the odd ones, so one conversion, one multiply and two FMAs apply the block scales to both: 16
   products a register instead of 8 (one thread, Q4_1, 1536 x 576, 8 rows, three runs: 130-136 ->
   145-148 G multiply-adds/s cache-warm, 122-128 -> 135-138 streamed; Q8_0 129-131 -> 137-139).

   Unsigned weights: the Q4 nibbles are 0..15 as stored (Q4_0's -8 and Q4_1's minimum are offset
   terms, multiplied by s = d·Σv); Q8_0's signed bytes are flipped to w + 128, and 128·d_w·s
   subtracted the same way. The integer sums are exact (|S_hi| ≤ 255·127·32, shifted by 8, plus
   |S_lo| ≤ 255·128·32: below 2^29).

   Q8_0 matrices with an even number of rows are kept in row pairs on these CPUs (q8pairs.c),
   which does the flip and the lane pairing once at load; this kernel then runs on Q4_0, Q4_1 and
   the remaining Q8_0 matrices (odd rows, or block offsets). */
#include "CKernels.h"
#include "simd.h"
#include "half.h"
#include "scratch.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


/* ---- activations: 8 rows per block, interleaved -------------------------------------------- */

/* v = 256·hi + lo, lo the signed low byte: exact for |v| ≤ 32512. */
static inline void split16(int v, int8_t *hi, int8_t *lo) {
    int l = (int8_t)(uint8_t)(v & 0xFF);
    *lo = (int8_t)l;
    *hi = (int8_t)((v - l) / 256);
}

/* Row r of block o: all zeros (rows at or past M). */
static void zero_row(sy_block_q8x8 *o, int r) {
    o->d[r] = 0.f;
    o->s[r] = 0.f;
    for (int p = 0; p < 4; p++) { memset(o->hi[p][r], 0, 8); memset(o->lo[p][r], 0, 8); }
}

/* The 32 values at v as row r of block o. */
static void quantize_row_block_portable(const float *v, sy_block_q8x8 *o, int r) {
    float amax = 0.f;
    for (int j = 0; j < 32; j++) { float a = fabsf(v[j]); if (a > amax) amax = a; }
    const float d = amax / 32512.f, id = d != 0.f ? 1.f / d : 0.f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        int q = (int)lrintf(v[j] * id);
        split16(q, &o->hi[j / 8][r][j % 8], &o->lo[j / 8][r][j % 8]);
        sum += q;
    }
    o->d[r] = d;
    o->s[r] = d * (float)sum;
}

#if SY_X86_SIMD
/* The portable loop's arithmetic on 512-bit registers (AVX-512BW), where the 8-bit kernel runs
   (the only callers outside the tests): the same d, id and products, rounded to nearest-even by
   vcvtps2dq as lrintf rounds, and the low bytes and the high parts narrowed by vpmovdb, which
   keeps the values in order, so no lane permutation or byte copies are needed (an AVX2 form with
   them was 2.5% of both threads' time in a batch-8 decode step). */
__attribute__((target("avx2,fma,avx512f,avx512vl,avx512bw")))
static void quantize_row_block_avx512(const float *v, sy_block_q8x8 *o, int r) {
    const __m512 x0 = _mm512_loadu_ps(v), x1 = _mm512_loadu_ps(v + 16);
    const __m512 amax = _mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1));
    const float d = _mm512_reduce_max_ps(amax) / 32512.f, id = d != 0.f ? 1.f / d : 0.f;
    const __m512 idv = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, idv)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, idv));
    /* lo the signed low byte (vpmovdb truncates to it), hi = (q - lo) / 256 exactly. */
    const __m512i l0 = _mm512_srai_epi32(_mm512_slli_epi32(q0, 24), 24), l1 = _mm512_srai_epi32(_mm512_slli_epi32(q1, 24), 24);
    const __m128i h0 = _mm512_cvtepi32_epi8(_mm512_srai_epi32(_mm512_sub_epi32(q0, l0), 8));
    const __m128i h1 = _mm512_cvtepi32_epi8(_mm512_srai_epi32(_mm512_sub_epi32(q1, l1), 8));
    const __m128i b0 = _mm512_cvtepi32_epi8(q0), b1 = _mm512_cvtepi32_epi8(q1);
    _mm_storel_epi64((__m128i *)o->hi[0][r], h0);
    _mm_storel_epi64((__m128i *)o->hi[1][r], _mm_unpackhi_epi64(h0, h0));
    _mm_storel_epi64((__m128i *)o->hi[2][r], h1);
    _mm_storel_epi64((__m128i *)o->hi[3][r], _mm_unpackhi_epi64(h1, h1));
    _mm_storel_epi64((__m128i *)o->lo[0][r], b0);
    _mm_storel_epi64((__m128i *)o->lo[1][r], _mm_unpackhi_epi64(b0, b0));
    _mm_storel_epi64((__m128i *)o->lo[2][r], b1);
    _mm_storel_epi64((__m128i *)o->lo[3][r], _mm_unpackhi_epi64(b1, b1));
    o->d[r] = d;
    o->s[r] = d * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
}
#endif

void sy_quantize_rows_q8x8(const float *X, int M, int ldx, int m0, int K, sy_block_q8x8 *out) {
    void (*row_block)(const float *, sy_block_q8x8 *, int) = quantize_row_block_portable;
#if SY_X86_SIMD
    if (sy_kernels_have_vnni()) row_block = quantize_row_block_avx512;
#endif
    for (int b = 0; b < K / 32; b++)
        for (int r = 0; r < 8; r++) {
            if (m0 + r >= M) zero_row(out + b, r);
            else row_block(X + (size_t)(m0 + r) * ldx + 32 * b, out + b, r);
        }
}

/* ---- the reference: the same integer arithmetic, one lane at a time ------------------------ */

/* Weight block p's 32 integer values (signed; the Q4 nibbles 0..15), its scale d and the scale
   of its offset term: Q4_1 its minimum, Q4_0 -8·d, Q8_0 none. */
static void unpack_signed(int type, const uint8_t *p, int8_t w[32], float *d, float *offset) {
    *d = sy_half_to_float(sy_load_u16(p));
    switch (type) {
    case SY_Q8_0:
        for (int j = 0; j < 32; j++) w[j] = (int8_t)p[2 + j];
        *offset = 0.f;
        break;
    case SY_Q4_0:
        for (int j = 0; j < 16; j++) { w[j] = (int8_t)(p[2 + j] & 15); w[j + 16] = (int8_t)(p[2 + j] >> 4); }
        *offset = -8.f * *d;
        break;
    default:
        for (int j = 0; j < 16; j++) { w[j] = (int8_t)(p[4 + j] & 15); w[j + 16] = (int8_t)(p[4 + j] >> 4); }
        *offset = sy_half_to_float(sy_load_u16(p + 2));
        break;
    }
}

/* (SY_Q8_0_PAIRS: each block unpacked to Q8_0 first, q8pairs.c's reference.) */
static void q8x8_rows_portable(int type, const uint8_t *W, size_t row_bytes, int K, const sy_block_q8x8 *x, int M,
                               int n_begin, int n_end, float *Y, int ldy, const float *offsets) {
    const int pairs = type == SY_Q8_0_PAIRS;
    if (pairs) type = SY_Q8_0;
    const size_t bb = sy_weight_block_bytes(type);
    const int nb = K / 32;
    uint8_t unpacked[34];
    for (int n = n_begin; n < n_end; n++) {
        for (int m0 = 0; m0 < M; m0 += 8) {
            const sy_block_q8x8 *xg = x + (size_t)(m0 / 8) * nb;
            float acc[8] = { 0 };
            for (int b = 0; b < nb; b++) {
                int8_t w[32];
                float d, offset;
                const uint8_t *p = W + (size_t)n * row_bytes + bb * (size_t)b;
                if (pairs) {
                    sy_q8_0_pairs_block(W, row_bytes, n, b, unpacked);
                    p = unpacked;
                }
                unpack_signed(type, p, w, &d, &offset);
                if (offsets) offset += offsets[(size_t)n * nb + b];
                for (int r = 0; r < 8; r++) {
                    int dot = 0;
                    for (int j = 0; j < 32; j++) {
                        int v = 256 * xg[b].hi[j / 8][r][j % 8] + xg[b].lo[j / 8][r][j % 8];
                        dot += w[j] * v;
                    }
                    acc[r] += d * xg[b].d[r] * (float)dot + offset * xg[b].s[r];
                }
            }
            for (int r = 0; r < 8 && m0 + r < M; r++) Y[(size_t)(m0 + r) * ldy + n] = acc[r];
        }
    }
}

/* ---- AVX-512 VNNI (512-bit registers) ------------------------------------------------------- */

#if SY_X86_SIMD
static int have_vnni = -1;

int sy_kernels_have_vnni(void) {
    if (have_vnni < 0) {
        __builtin_cpu_init();
        have_vnni = sy_kernels_have_avx512vl() && __builtin_cpu_supports("avx512vnni");
    }
    return have_vnni;
}

#define SY_VNNI_TARGET "avx2,fma,f16c,avx512f,avx512vl,avx512vnni,avx512bw"

/* Weight blocks p and q (of two rows) as 32 unsigned bytes each at u and u + 32: the Q4 nibbles
   as they are (both rows' nibbles split in one 256-bit register), Q8_0's bytes + 128. */
__attribute__((target(SY_VNNI_TARGET), always_inline))
static inline void unpack2_vnni(const int type, const uint8_t *p, const uint8_t *q, uint8_t *u) {
    if (type == SY_Q8_0) {
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        _mm256_store_si256((__m256i *)u, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)), flip));
        _mm256_store_si256((__m256i *)(u + 32), _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q + 2)), flip));
    } else {
        const int at = type == SY_Q4_0 ? 2 : 4;
        const __m256i low4 = _mm256_set1_epi8(15);
        const __m256i raw = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + at))),
                                                    _mm_loadu_si128((const __m128i *)(q + at)), 1);
        const __m256i lo = _mm256_and_si256(raw, low4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        /* [p's low nibbles | q's], [p's high | q's] -> p's 32 values, then q's. */
        _mm256_store_si256((__m256i *)u, _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_store_si256((__m256i *)(u + 32), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
}

/* Weight rows per step of the VNNI kernel: each activation load meets this many. Four against
   two: 75 against 62–68 G multiply-adds/s on one Zen 4 core (Q4_1, 1536 x 576, batch 8; 73
   against 66 streaming a 54 MB matrix from memory); eight is no faster, six slower. With 512-bit
   registers on a Zen 5 host (step_products.c, batch 8, Q4_1): 2 rows 5.6-5.8 ms, 4 rows 4.6-4.8,
   8 rows 5.0-6.5. */
#ifndef SY_VNNI_ROWS
#define SY_VNNI_ROWS 4
#endif
_Static_assert(SY_VNNI_ROWS % 2 == 0, "the block scales are applied to weight rows in pairs");

/* The block scales d of the SY_VNNI_ROWS weight rows (their blocks at byte `at`) into ds[R], and
   their offset scales into os[R] (Q4_1 its minimum, Q4_0 -8·d, Q8_0 -128·d: the flip to
   unsigned), converted together: one vcvtph2ps for all rows instead of a scalar conversion per
   value (a batch-8 step's rows are unpacked for one group of 8 activation rows only, so the
   unpacking's cost per block counts in full). */
__attribute__((target(SY_VNNI_TARGET), always_inline))
static inline void scales_vnni(const int type, const uint8_t *const w[SY_VNNI_ROWS], size_t at, float *ds, float *os) {
    _Static_assert(SY_VNNI_ROWS == 4, "the scales of four rows fill one register");
    uint32_t h[4];
    for (int r = 0; r < 4; r++) {
        if (type == SY_Q4_1) memcpy(&h[r], w[r] + at, 4);  /* the scale and the minimum */
        else h[r] = sy_load_u16(w[r] + at);
    }
    const __m128i halves = _mm_loadu_si128((const __m128i *)h);
    if (type == SY_Q4_1) {
        /* d0 m0 d1 m1 d2 m2 d3 m3 -> d0 d1 d2 d3 | m0 m1 m2 m3, stored as ds then os. */
        const __m256 dm = _mm256_cvtph_ps(halves);
        const __m256 order = _mm256_permutevar8x32_ps(dm, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
        _mm_storeu_ps(ds, _mm256_castps256_ps128(order));
        _mm_storeu_ps(os, _mm256_extractf128_ps(order, 1));
    } else {
        /* Each half in the low 16 bits of its 32: the even halves are the scales. */
        const __m256 d = _mm256_cvtph_ps(halves);
        const __m128 d4 = _mm256_castps256_ps128(_mm256_permutevar8x32_ps(d, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
        _mm_storeu_ps(ds, d4);
        _mm_storeu_ps(os, _mm_mul_ps(d4, _mm_set1_ps(type == SY_Q4_0 ? -8.f : -128.f)));
    }
}

/* The 16-bit dots of SY_VNNI_ROWS weight rows' blocks with activation block xb, (S_hi << 8) +
   S_lo over the block: v[h] holds weight row 2h's dot with activation row i in lane 2i and row
   2h+1's in lane 2i+1. g points at the rows' unpacked blocks (32 unsigned bytes apiece, one after
   another); each pair of groups (8 bytes) is broadcast straight from memory (a load, not a shuffle competing with
   vpdpbusd for the vector ports), and each activation load serves every row. Eight chains (row,
   half), four deep. 512 bits against 256 (one group per step in 8 lanes, as before): on a Zen 5
   host, whose vector units are 512 bits wide, the weight products of a SmolLM2 step
   (Scripts/bench/step_products.c, two threads) at batch 8 6.6-6.8 -> 4.6-4.8 ms (Q4_1) and
   6.5-6.7 -> 4.8-5.2 (Q8_0), prefill of 64 rows 45-46 -> 30-35 (Q4_1). */
__attribute__((target(SY_VNNI_TARGET), always_inline))
static inline void dot16_rows_vnni(const uint8_t *g, const sy_block_q8x8 *xb, __m512i v[SY_VNNI_ROWS / 2]) {
    const __m512i *h = (const __m512i *)xb->hi, *l = (const __m512i *)xb->lo;
    __m512i sh[SY_VNNI_ROWS], sl[SY_VNNI_ROWS];
    for (int r = 0; r < SY_VNNI_ROWS; r++) sh[r] = sl[r] = _mm512_setzero_si512();
    for (int p = 0; p < 4; p++) {
        const __m512i hp = _mm512_loadu_si512(h + p), lp = _mm512_loadu_si512(l + p);
        for (int r = 0; r < SY_VNNI_ROWS; r++) {
            int64_t pair;
            memcpy(&pair, g + 32 * r + 8 * p, 8);
            const __m512i a = _mm512_set1_epi64(pair);
            sh[r] = _mm512_dpbusd_epi32(sh[r], a, hp);
            sl[r] = _mm512_dpbusd_epi32(sl[r], a, lp);
        }
    }
    /* Rows r and r+1 in one register: lane 2i the sum of row r's lanes 2i and 2i+1, lane 2i+1
       row r+1's (exact integers), so that the block scales are applied to two rows at once. */
    for (int r = 0; r < SY_VNNI_ROWS; r += 2) {
        const __m512i t0 = _mm512_add_epi32(_mm512_slli_epi32(sh[r], 8), sl[r]);
        const __m512i t1 = _mm512_add_epi32(_mm512_slli_epi32(sh[r + 1], 8), sl[r + 1]);
        v[r / 2] = _mm512_mask_blend_epi32(0xAAAA, _mm512_add_epi32(t0, _mm512_srli_epi64(t0, 32)),
                                           _mm512_add_epi32(t1, _mm512_slli_epi64(t1, 32)));
    }
}

/* `type` and `has_offsets` are constants after inlining (one instantiation each below).
   SY_VNNI_ROWS weight rows per step (past the end of the range, the last row stands in: computed,
   not stored), unpacked once for every group of 8 activation rows: their bytes (4·K), block scales
   and offset scales, so that the inner loop only loads and broadcasts. With offsets (N x K/32
   Float32, Q8_0 rewritten from Q5_1/Q5_K), each block's offset joins its offset scale. */
__attribute__((target(SY_VNNI_TARGET), always_inline))
static inline void q8x8_rows_vnni_typed(const int type, const int has_offsets, const uint8_t *W, size_t row_bytes,
                                        int K, const sy_block_q8x8 *x, int M, int n_begin, int n_end, float *Y,
                                        int ldy, const float *offsets) {
    enum { R = SY_VNNI_ROWS };
    const size_t bb = type == SY_Q8_0 ? 34 : type == SY_Q4_0 ? 18 : 20;
    const int nb = K / 32;
    /* Per block: R·32 unpacked bytes, then R scales and R offset scales (R·8 bytes), padded to 32. */
    const size_t stride = (40 * R + 31) & ~(size_t)31;
    uint8_t *u = (uint8_t *)sy_scratch_take(SY_SCRATCH_UNPACKED, (size_t)nb * stride);
    /* Lanes 2i and 2i+1 of a 512-bit register: activation row i's scale. */
    const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    if (!u) { q8x8_rows_portable(type, W, row_bytes, K, x, M, n_begin, n_end, Y, ldy, offsets); return; }
    for (int n = n_begin; n < n_end; n += R) {
        size_t row[R];
        const uint8_t *w[R];
        for (int r = 0; r < R; r++) {
            row[r] = (size_t)(n + r < n_end ? n + r : n_end - 1);
            w[r] = W + row[r] * row_bytes;
        }
        for (int b = 0; b < nb; b++) {
            uint8_t *ub = u + stride * (size_t)b;
            float *ds = (float *)(ub + 32 * R), *os = ds + R;
            for (int r = 0; r < R; r += 2) unpack2_vnni(type, w[r] + bb * (size_t)b, w[r + 1] + bb * (size_t)b, ub + 32 * r);
            scales_vnni(type, w, bb * (size_t)b, ds, os);
            if (has_offsets)
                for (int r = 0; r < R; r++) os[r] += offsets[row[r] * nb + b];
        }
        for (int m0 = 0; m0 < M; m0 += 8) {
            const sy_block_q8x8 *xg = x + (size_t)(m0 / 8) * nb;
            __m512 acc[R / 2];  /* rows n+2h and n+2h+1: act row i in lanes 2i and 2i+1 */
            for (int h = 0; h < R / 2; h++) acc[h] = _mm512_setzero_ps();
            for (int b = 0; b < nb; b++) {
                const uint8_t *ub = u + stride * (size_t)b;
                const float *ds = (const float *)(ub + 32 * R), *os = ds + R;
                const sy_block_q8x8 *xb = xg + b;
                if (m0 == 0)
                    /* The weight rows two steps on, fetched while this one computes: the
                       hardware prefetcher alone leaves the unpack waiting on memory (batch 8 of
                       the 1536-wide down projection: 44 → 60 G multiply-adds/s on one thread). */
                    for (int r = 0; r < R; r++) _mm_prefetch((const char *)(w[r] + bb * (size_t)b + 2 * R * row_bytes), _MM_HINT_T0);
                __m512i v[R / 2];
                dot16_rows_vnni(ub, xb, v);
                const __m512 dx = _mm512_permutexvar_ps(pairs, _mm512_castps256_ps512(_mm256_loadu_ps(xb->d)));
                const __m512 sx = _mm512_permutexvar_ps(pairs, _mm512_castps256_ps512(_mm256_loadu_ps(xb->s)));
                for (int h = 0; h < R / 2; h++) {
                    /* The two rows' scales (and offset scales) alternating, as the lanes do. */
                    int64_t d2, o2;
                    memcpy(&d2, ds + 2 * h, 8);
                    memcpy(&o2, os + 2 * h, 8);
                    const __m512 dw = _mm512_castsi512_ps(_mm512_set1_epi64(d2));
                    const __m512 ow = _mm512_castsi512_ps(_mm512_set1_epi64(o2));
                    acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v[h]), _mm512_mul_ps(dw, dx), acc[h]);
                    acc[h] = _mm512_fmadd_ps(ow, sx, acc[h]);
                }
            }
            float out[8 * R] __attribute__((aligned(64)));
            for (int h = 0; h < R / 2; h++) _mm512_store_ps(out + 16 * h, acc[h]);
            for (int r = 0; r < R && n + r < n_end; r++)
                for (int i = 0; i < 8 && m0 + i < M; i++)
                    Y[(size_t)(m0 + i) * ldy + n + r] = out[16 * (r / 2) + 2 * i + (r & 1)];
        }
    }
    sy_scratch_give(SY_SCRATCH_UNPACKED, u);
}

#define SY_Q8X8_TYPED(NAME, TYPE, OFFSETS)                                                                 \
    __attribute__((target(SY_VNNI_TARGET))) static void NAME(const uint8_t *W, size_t row_bytes, int K,     \
                                                             const sy_block_q8x8 *x, int M, int n_begin,   \
                                                             int n_end, float *Y, int ldy,                 \
                                                             const float *offsets) {                       \
        q8x8_rows_vnni_typed(TYPE, OFFSETS, W, row_bytes, K, x, M, n_begin, n_end, Y, ldy, offsets);       \
    }
SY_Q8X8_TYPED(q8x8_rows_vnni_q8_0, SY_Q8_0, 0)
SY_Q8X8_TYPED(q8x8_rows_vnni_q8_0_offsets, SY_Q8_0, 1)
SY_Q8X8_TYPED(q8x8_rows_vnni_q4_0, SY_Q4_0, 0)
SY_Q8X8_TYPED(q8x8_rows_vnni_q4_1, SY_Q4_1, 0)
#else
int sy_kernels_have_vnni(void) { return 0; }
#endif /* SY_X86_SIMD */

void sy_q8x8_rows(int type, const void *W, size_t row_bytes, int K, const sy_block_q8x8 *x, int M, int n_begin,
                  int n_end, float *Y, int ldy, int portable, const float *offsets) {
    const uint8_t *w = (const uint8_t *)W;
    if (type == SY_Q8_0_PAIRS) {
        /* The pairs' 8-bit kernel is q8pairs.c's (which comes back here, portable, without one). */
        if (portable) q8x8_rows_portable(type, w, row_bytes, K, x, M, n_begin, n_end, Y, ldy, NULL);
        else sy_q8_0_pairs_rows(w, row_bytes, K, x, M, n_begin, n_end, Y, ldy, 0);
        return;
    }
#if SY_X86_SIMD
    if (!portable && sy_kernels_have_vnni()) {
        if (offsets && type != SY_Q8_0) {
            q8x8_rows_portable(type, w, row_bytes, K, x, M, n_begin, n_end, Y, ldy, offsets);
            return;
        }
        switch (type) {
        case SY_Q8_0:
            if (offsets) q8x8_rows_vnni_q8_0_offsets(w, row_bytes, K, x, M, n_begin, n_end, Y, ldy, offsets);
            else q8x8_rows_vnni_q8_0(w, row_bytes, K, x, M, n_begin, n_end, Y, ldy, NULL);
            return;
        case SY_Q4_0: q8x8_rows_vnni_q4_0(w, row_bytes, K, x, M, n_begin, n_end, Y, ldy, NULL); return;
        case SY_Q4_1: q8x8_rows_vnni_q4_1(w, row_bytes, K, x, M, n_begin, n_end, Y, ldy, NULL); return;
        }
    }
#endif
    (void)portable;
    q8x8_rows_portable(type, w, row_bytes, K, x, M, n_begin, n_end, Y, ldy, offsets);
}
