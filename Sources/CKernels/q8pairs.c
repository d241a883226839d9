/* Q8_0 weights kept in row pairs (SY_Q8_0_PAIRS), for CPUs with AVX-512 VNNI: the layout, its
   conversions, and its two products (batch 1 on int16 activations, batches and prefill on 8-bit
   dot products).

   Why: the batched 8-bit kernel on ggml's Q8_0 rows (vnni.c) must first unpack every weight
   block, flipping its signed bytes to unsigned (vpdpbusd multiplies unsigned by signed), and, so
   that each 32-bit lane holds one (weight row, activation row) sum, add the lanes of each row's
   neighbouring groups after every block. Both are the same work at every step of decode, so this
   layout does them once, at load: two rows' blocks side by side, their values already + 128 and
   interleaved by groups of 4, so that one 64-bit broadcast straight from the weights holds group g
   of both rows, and every lane of a dot product belongs to one row. The same size as Q8_0 and
   the same products (bit for bit in batches). One thread, Scripts/bench/quant_kernel_rates.c,
   G multiply-adds/s, cache-warm / streamed, three alternated runs on a Zen 5 host:

       1536 x 576, 8 rows   Q8_0 131-135 / 111-120     pairs 158-169 / 137-145
       1536 x 576, 1 row    Q8_0  31-32  /  23-26      pairs  53-57  /  28-30
       576 x 1536, 8 rows   Q8_0 137 / 129             pairs 153 / 144

   (the unpacking kernel's loop without its unpacking ran at about 200: the ceiling of this
   arithmetic). Batch 1 gains too: both rows of a pair take one 512-bit load, and its int16
   arithmetic is sy_qgemv_rows's lane for lane.

   Layout: rows 2h and 2h+1 (A and B) of a matrix of row_bytes = K/32·34 bytes a row (the same size
   as Q8_0) are one run of K/32 pair blocks of 68 bytes at W + 2h·row_bytes; pair block b holds
   A's scale, B's scale (IEEE halves, as stored in Q8_0), then for each group g of 4 values
   (g = 0..7): A's values 4g..4g+3, then B's, each byte q + 128 (q the Q8_0 signed byte). Only a
   matrix with an even number of rows and no block offsets is kept so (QuantizedMatrix). */
#include "CKernels.h"
#include "simd.h"
#include "half.h"
#include "scratch.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { PAIR_BLOCK = 68 };

#define SY_PAIRS_TARGET "avx2,fma,f16c,avx512f,avx512vl,avx512vnni,avx512bw"

void sy_q8_0_pack_pair(const void *a, const void *b, int K, void *dst) {
    const uint8_t *pa = (const uint8_t *)a, *pb = (const uint8_t *)b;
    uint8_t *o = (uint8_t *)dst;
    for (int blk = 0; blk < K / 32; blk++, pa += 34, pb += 34, o += PAIR_BLOCK) {
        memcpy(o, pa, 2);
        memcpy(o + 2, pb, 2);
        for (int g = 0; g < 8; g++)
            for (int j = 0; j < 4; j++) {
                o[4 + 8 * g + j] = pa[2 + 4 * g + j] ^ 0x80;
                o[4 + 8 * g + 4 + j] = pb[2 + 4 * g + j] ^ 0x80;
            }
    }
}

void sy_q8_0_pairs_block(const void *W, size_t row_bytes, int n, int b, void *out) {
    const uint8_t *p = (const uint8_t *)W + (size_t)(n / 2) * 2 * row_bytes + (size_t)PAIR_BLOCK * b;
    const int c = n & 1;
    uint8_t *o = (uint8_t *)out;
    memcpy(o, p + 2 * c, 2);
    for (int g = 0; g < 8; g++)
        for (int j = 0; j < 4; j++) o[2 + 4 * g + j] = p[4 + 8 * g + 4 * c + j] ^ 0x80;
}

void sy_q8_0_pairs_row(const void *W, size_t row_bytes, int K, int n, void *out) {
    for (int b = 0; b < K / 32; b++) sy_q8_0_pairs_block(W, row_bytes, n, b, (uint8_t *)out + 34 * (size_t)b);
}

/* ---- batch 1: int16 activations (sy_block_q16), as sy_qgemv_rows on Q8_0 rows ----------------- */

/* Block by block (nothing allocated), summed in sy_qdot_portable's order: the same values. */
static void pairs_gemv_portable(const uint8_t *W, size_t row_bytes, int K, const sy_block_q16 *xq, int M, int n_begin,
                                int n_end, float *Y, int ldy) {
    const int nb = K / 32;
    for (int n = n_begin; n < n_end; n++)
        for (int m = 0; m < M; m++) {
            float total = 0.f;
            for (int b = 0; b < nb; b++) {
                uint8_t block[34];
                sy_q8_0_pairs_block(W, row_bytes, n, b, block);
                total += sy_qdot_portable(SY_Q8_0, block, xq + (size_t)m * nb + b, 1);
            }
            Y[(size_t)m * ldy + n] = total;
        }
}

#if SY_X86_SIMD
/* Both rows of each pair at once: the pair block's 64 bytes, flipped back to signed and widened to
   int16, against the activation block with each group of 4 values doubled (built once per call),
   so that vpmaddwd's lanes run A A B B A A B B …; the scales, A's and B's in the same pattern,
   are applied per block (Float32 sums, reduced per row at the end). */
__attribute__((target(SY_PAIRS_TARGET)))
static void pairs_gemv_avx512(const uint8_t *W, size_t row_bytes, int K, const sy_block_q16 *xq, int M, int n_begin,
                              int n_end, float *Y, int ldy) {
    const int nb = K / 32;
    __m512i *xd = (__m512i *)sy_scratch_take(SY_SCRATCH_UNPACKED, (size_t)nb * 2 * sizeof(__m512i));
    if (!xd) { pairs_gemv_portable(W, row_bytes, K, xq, M, n_begin, n_end, Y, ldy); return; }
    int16_t i0[32], i1[32];
    for (int k = 0; k < 32; k++) { i0[k] = (int16_t)((k / 8) * 4 + k % 4); i1[k] = (int16_t)(i0[k] + 16); }
    const __m512i idx0 = _mm512_loadu_si512(i0), idx1 = _mm512_loadu_si512(i1), flip = _mm512_set1_epi8((char)0x80);
    for (int m = 0; m < M; m++) {
        const sy_block_q16 *x = xq + (size_t)m * nb;
        for (int b = 0; b < nb; b++) {
            const __m512i q = _mm512_loadu_si512(x[b].qs);
            xd[2 * b] = _mm512_permutexvar_epi16(idx0, q);
            xd[2 * b + 1] = _mm512_permutexvar_epi16(idx1, q);
        }
        for (int n = n_begin & ~1; n < n_end; n += 2) {
            const uint8_t *p = W + (size_t)(n / 2) * 2 * row_bytes;
            __m512 acc = _mm512_setzero_ps();
            for (int b = 0; b < nb; b++, p += PAIR_BLOCK) {
                const __m512i w = _mm512_xor_si512(_mm512_loadu_si512(p + 4), flip);
                const __m512i w0 = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(w));
                const __m512i w1 = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(w, 1));
                const __m512i t = _mm512_add_epi32(_mm512_madd_epi16(w0, xd[2 * b]), _mm512_madd_epi16(w1, xd[2 * b + 1]));
                uint32_t s;
                memcpy(&s, p, 4);
                const __m512 d = _mm512_permute_ps(_mm512_cvtph_ps(_mm256_set1_epi32((int)s)), 0x50);
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(d, _mm512_set1_ps(x[b].d)), acc);
            }
            /* (A range that starts or ends inside a pair stores only its row.) */
            if (n >= n_begin) Y[(size_t)m * ldy + n] = _mm512_mask_reduce_add_ps(0x3333, acc);
            if (n + 1 < n_end) Y[(size_t)m * ldy + n + 1] = _mm512_mask_reduce_add_ps(0xCCCC, acc);
        }
    }
    sy_scratch_give(SY_SCRATCH_UNPACKED, xd);
}
#endif

void sy_q8_0_pairs_gemv(const void *W, size_t row_bytes, int K, const sy_block_q16 *xq, int M, int n_begin, int n_end,
                        float *Y, int ldy, int portable) {
#if SY_X86_SIMD
    if (!portable && sy_kernels_have_vnni()) {
        pairs_gemv_avx512((const uint8_t *)W, row_bytes, K, xq, M, n_begin, n_end, Y, ldy);
        return;
    }
#endif
    (void)portable;
    pairs_gemv_portable((const uint8_t *)W, row_bytes, K, xq, M, n_begin, n_end, Y, ldy);
}

#if SY_X86_SIMD
/* P pairs of weight rows from row n (P ≤ 4, a constant after inlining) against every group of 8
   activation rows. The block scales of the P pairs are converted once for all groups into sc
   (per block: 8 scales, A0 B0 A1 B1 …, then 8 offset scales −128·d for the flip to unsigned).
   Each group of 4 weight bytes of both rows of a pair is one 64-bit broadcast straight from the
   weights; lane 2i of its dot products is (activation row i, row A), lane 2i + 1 (i, row B), so
   one vpdpbusd adds 4 multiply-adds to each of 16 (weight row, activation row) sums, and nothing
   is unpacked or paired after a block: the same integers and the same Float32 arithmetic as
   vnni.c's Q8_0 kernel, so the same bits. */
__attribute__((target(SY_PAIRS_TARGET), always_inline))
static inline void pairs_step_vnni(const int P, const uint8_t *W, size_t row_bytes, int K, const sy_block_q8x8 *x,
                                   int M, int n, int n_begin, int n_end, float *Y, int ldy, float *sc) {
    const int nb = K / 32;
    const size_t pair_bytes = 2 * row_bytes;
    const uint8_t *wp[4];
    for (int h = 0; h < 4; h++) wp[h] = W + (size_t)(n / 2 + (h < P ? h : 0)) * pair_bytes;
    for (int b = 0; b < nb; b++) {
        uint32_t s[4] = { 0, 0, 0, 0 };
        for (int h = 0; h < P; h++) memcpy(&s[h], wp[h] + (size_t)PAIR_BLOCK * b, 4);
        const __m256 d = _mm256_cvtph_ps(_mm_setr_epi32((int)s[0], (int)s[1], (int)s[2], (int)s[3]));
        _mm256_store_ps(sc + 16 * b, d);
        _mm256_store_ps(sc + 16 * b + 8, _mm256_mul_ps(d, _mm256_set1_ps(-128.f)));
    }
    /* Lanes 2i and 2i+1 of a 512-bit register: activation row i's scale. */
    const __m512i rows2 = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int m0 = 0; m0 < M; m0 += 8) {
        const sy_block_q8x8 *xg = x + (size_t)(m0 / 8) * nb;
        __m512 acc[4];
        for (int h = 0; h < P; h++) acc[h] = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const sy_block_q8x8 *xb = xg + b;
            const size_t at = (size_t)PAIR_BLOCK * b;
            if (m0 == 0)
                /* The pairs two steps on, fetched while this one computes (as vnni.c). */
                for (int h = 0; h < P; h++) _mm_prefetch((const char *)(wp[h] + at + 2 * P * pair_bytes), _MM_HINT_T0);
            __m512i sh[4], sl[4];
            for (int h = 0; h < P; h++) sh[h] = sl[h] = _mm512_setzero_si512();
            for (int g = 0; g < 8; g++) {
                /* Row i's group g in lanes 2i and 2i+1: in-lane copies of the lane pair holding
                   row i's groups g and g ^ 1 (a shuffle costs less than a second, doubled copy
                   of the activations, which leaves L1 for K = 1536: 130 against 153 G/s). */
                const __m512i xh = g & 1 ? _mm512_shuffle_epi32(_mm512_loadu_si512(xb->hi[g / 2]), _MM_PERM_DDBB)
                                         : _mm512_shuffle_epi32(_mm512_loadu_si512(xb->hi[g / 2]), _MM_PERM_CCAA);
                const __m512i xl = g & 1 ? _mm512_shuffle_epi32(_mm512_loadu_si512(xb->lo[g / 2]), _MM_PERM_DDBB)
                                         : _mm512_shuffle_epi32(_mm512_loadu_si512(xb->lo[g / 2]), _MM_PERM_CCAA);
                for (int h = 0; h < P; h++) {
                    int64_t v;
                    memcpy(&v, wp[h] + at + 4 + 8 * g, 8);
                    const __m512i wv = _mm512_set1_epi64(v);
                    sh[h] = _mm512_dpbusd_epi32(sh[h], wv, xh);
                    sl[h] = _mm512_dpbusd_epi32(sl[h], wv, xl);
                }
            }
            const __m512 dx = _mm512_permutexvar_ps(rows2, _mm512_castps256_ps512(_mm256_loadu_ps(xb->d)));
            const __m512 sx = _mm512_permutexvar_ps(rows2, _mm512_castps256_ps512(_mm256_loadu_ps(xb->s)));
            for (int h = 0; h < P; h++) {
                int64_t d2, o2;
                memcpy(&d2, sc + 16 * b + 2 * h, 8);
                memcpy(&o2, sc + 16 * b + 8 + 2 * h, 8);
                const __m512 dw = _mm512_castsi512_ps(_mm512_set1_epi64(d2));
                const __m512 ow = _mm512_castsi512_ps(_mm512_set1_epi64(o2));
                const __m512i t = _mm512_add_epi32(_mm512_slli_epi32(sh[h], 8), sl[h]);
                acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(dw, dx), acc[h]);
                acc[h] = _mm512_fmadd_ps(ow, sx, acc[h]);
            }
        }
        float out[64] __attribute__((aligned(64)));
        for (int h = 0; h < P; h++) _mm512_store_ps(out + 16 * h, acc[h]);
        for (int h = 0; h < P; h++)
            for (int c = 0; c < 2; c++) {
                const int col = n + 2 * h + c;
                if (col < n_begin || col >= n_end) continue;  /* the other row of a pair cut by the range */
                for (int i = 0; i < 8 && m0 + i < M; i++) Y[(size_t)(m0 + i) * ldy + col] = out[16 * h + 2 * i + c];
            }
    }
}

__attribute__((target(SY_PAIRS_TARGET)))
static void pairs_rows_vnni(const uint8_t *W, size_t row_bytes, int K, const sy_block_q8x8 *x, int M, int n_begin,
                            int n_end, float *Y, int ldy) {
    float *sc = (float *)sy_scratch_take(SY_SCRATCH_UNPACKED, (size_t)(K / 32) * 16 * sizeof(float));
    if (!sc) { sy_q8x8_rows(SY_Q8_0_PAIRS, W, row_bytes, K, x, M, n_begin, n_end, Y, ldy, 1, NULL); return; }
    /* Whole pairs: a range that starts or ends inside one computes it and stores its row. */
    const int end = (n_end + 1) & ~1;
    int n = n_begin & ~1;
    for (; n + 8 <= end; n += 8) pairs_step_vnni(4, W, row_bytes, K, x, M, n, n_begin, n_end, Y, ldy, sc);
    if (n + 4 <= end) { pairs_step_vnni(2, W, row_bytes, K, x, M, n, n_begin, n_end, Y, ldy, sc); n += 4; }
    if (n + 2 <= end) pairs_step_vnni(1, W, row_bytes, K, x, M, n, n_begin, n_end, Y, ldy, sc);
    sy_scratch_give(SY_SCRATCH_UNPACKED, sc);
}
#endif /* SY_X86_SIMD */

void sy_q8_0_pairs_rows(const void *W, size_t row_bytes, int K, const sy_block_q8x8 *x, int M, int n_begin,
                        int n_end, float *Y, int ldy, int portable) {
#if SY_X86_SIMD
    if (!portable && sy_kernels_have_vnni()) {
        pairs_rows_vnni((const uint8_t *)W, row_bytes, K, x, M, n_begin, n_end, Y, ldy);
        return;
    }
#endif
    (void)portable;
    sy_q8x8_rows(SY_Q8_0_PAIRS, W, row_bytes, K, x, M, n_begin, n_end, Y, ldy, 1, NULL);
}
