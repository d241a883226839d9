/* Matrix products with weights kept in llama.cpp's block formats (Q8_0, Q4_0, Q4_1), read
   directly: activations are quantised once per row to 8-bit blocks of 32 (sy_block_q8, with the
   scale and the scaled sum of the quants), and each weight block meets its activation block as
   an integer dot product (AVX2 maddubs), scaled by the two block scales — llama.cpp's scheme.
   Decode (few rows) is bound by the bytes of weights read, which these formats cut 4-8x. */
#include "CKernels.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

void cblas_sgemm(int order, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else {  /* subnormal: normalise */
            int e = -1;
            do { mant <<= 1; e++; } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000 | (mant << 13);
    else bits = sign | ((exp + 112) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

size_t sy_quant_block_bytes(int type) {
    switch (type) {
    case SY_Q8_0: return 34;
    case SY_Q4_0: return 18;
    case SY_Q4_1: return 20;
    default: return 0;
    }
}

void sy_quantize_rows_q8(const float *x, int M, int K, int ldx, sy_block_q8 *out) {
    int nb = K / 32;
    for (int m = 0; m < M; m++) {
        const float *row = x + (size_t)m * ldx;
        for (int b = 0; b < nb; b++) {
            const float *v = row + 32 * b;
            float amax = 0.f;
            for (int j = 0; j < 32; j++) { float a = fabsf(v[j]); if (a > amax) amax = a; }
            float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
            sy_block_q8 *o = out + (size_t)m * nb + b;
            int sum = 0, sum2 = 0;
            float r[32], rmax = 0.f;
            for (int j = 0; j < 32; j++) {
                int q = (int)lrintf(v[j] * id);
                o->qs[j] = (int8_t)q;
                sum += q;
                r[j] = v[j] - d * (float)q;
                if (fabsf(r[j]) > rmax) rmax = fabsf(r[j]);
            }
            float d2 = rmax / 127.f, id2 = d2 != 0.f ? 1.f / d2 : 0.f;
            for (int j = 0; j < 32; j++) {
                int q = (int)lrintf(r[j] * id2);
                o->qs2[j] = (int8_t)q;
                sum2 += q;
            }
            o->d = d;
            o->d2 = d2;
            o->s = d * (float)sum + d2 * (float)sum2;
        }
    }
}

/* ---- portable dot products (reference and fallback) ---------------------------------------- */

static float dot_ref(int type, const uint8_t *w, const sy_block_q8 *x, int nb) {
    float total = 0.f;
    for (int b = 0; b < nb; b++, x++) {
        int acc = 0, acc2 = 0;
        switch (type) {
        case SY_Q8_0: {
            const uint8_t *p = w + 34 * (size_t)b;
            for (int j = 0; j < 32; j++) { acc += (int8_t)p[2 + j] * x->qs[j]; acc2 += (int8_t)p[2 + j] * x->qs2[j]; }
            total += half_to_float(load_u16(p)) * (x->d * (float)acc + x->d2 * (float)acc2);
            break;
        }
        case SY_Q4_0: {
            const uint8_t *p = w + 18 * (size_t)b;
            for (int j = 0; j < 16; j++) {
                acc += (p[2 + j] & 15) * x->qs[j] + (p[2 + j] >> 4) * x->qs[j + 16];
                acc2 += (p[2 + j] & 15) * x->qs2[j] + (p[2 + j] >> 4) * x->qs2[j + 16];
            }
            float d = half_to_float(load_u16(p));
            total += d * (x->d * (float)acc + x->d2 * (float)acc2) - 8.f * d * x->s;
            break;
        }
        case SY_Q4_1: {
            const uint8_t *p = w + 20 * (size_t)b;
            for (int j = 0; j < 16; j++) {
                acc += (p[4 + j] & 15) * x->qs[j] + (p[4 + j] >> 4) * x->qs[j + 16];
                acc2 += (p[4 + j] & 15) * x->qs2[j] + (p[4 + j] >> 4) * x->qs2[j + 16];
            }
            total += half_to_float(load_u16(p)) * (x->d * (float)acc + x->d2 * (float)acc2) + half_to_float(load_u16(p + 2)) * x->s;
            break;
        }
        }
    }
    return total;
}

float sy_qdot_portable(int type, const void *w, const sy_block_q8 *x, int nb) { return dot_ref(type, (const uint8_t *)w, x, nb); }

/* ---- AVX2 dot products ------------------------------------------------------------------------ */

__attribute__((target("avx2,fma,f16c")))
static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c")))
static inline float f16(const uint8_t *p) { return _cvtsh_ss(load_u16(p)); }

__attribute__((target("avx2,fma,f16c")))
static float dot_avx2(int type, const uint8_t *w, const sy_block_q8 *x, int nb) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    const __m128i low4 = _mm_set1_epi8(15);
    float extra = 0.f;
    for (int b = 0; b < nb; b++, x++) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)x->qs), xv2 = _mm256_loadu_si256((const __m256i *)x->qs2), dot, dot2;
        float d;
        if (type == SY_Q8_0) {
            const uint8_t *p = w + 34 * (size_t)b;
            __m256i wv = _mm256_loadu_si256((const __m256i *)(p + 2)), aw = _mm256_sign_epi8(wv, wv);
            dot = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv));
            dot2 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv2, wv));
            d = f16(p);
        } else {
            const uint8_t *p = w + (type == SY_Q4_0 ? 18 : 20) * (size_t)b;
            const uint8_t *q = p + (type == SY_Q4_0 ? 2 : 4);
            __m128i raw = _mm_loadu_si128((const __m128i *)q);
            __m256i wv = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), low4), _mm_and_si128(raw, low4));
            dot = _mm256_maddubs_epi16(wv, xv);
            dot2 = _mm256_maddubs_epi16(wv, xv2);
            d = f16(p);
            extra += type == SY_Q4_0 ? -8.f * d * x->s : f16(p + 2) * x->s;
        }
        __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(dot, ones)), f2 = _mm256_cvtepi32_ps(_mm256_madd_epi16(dot2, ones));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x->d), f, acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x->d2), f2, acc);
    }
    return hsum(acc) + extra;
}

/* ---- products ----------------------------------------------------------------------------- */

void sy_qgemv_rows(int type, const void *W, size_t row_bytes, int K, const sy_block_q8 *xq, int M,
                   int n_begin, int n_end, float *Y, int ldy) {
    int nb = K / 32, avx2 = sy_kernels_have_avx2();
    for (int n = n_begin; n < n_end; n++) {
        const uint8_t *w = (const uint8_t *)W + (size_t)n * row_bytes;
        for (int m = 0; m < M; m++) {
            const sy_block_q8 *x = xq + (size_t)m * nb;
            Y[(size_t)m * ldy + n] = avx2 ? dot_avx2(type, w, x, nb) : dot_ref(type, w, x, nb);
        }
    }
}

void sy_dequantize_rows(int type, const void *W, size_t row_bytes, int K, int n_begin, int n_end, float *out) {
    for (int n = n_begin; n < n_end; n++) {
        const uint8_t *w = (const uint8_t *)W + (size_t)n * row_bytes;
        float *o = out + (size_t)(n - n_begin) * K;
        for (int b = 0; b < K / 32; b++) {
            float *y = o + 32 * b;
            switch (type) {
            case SY_Q8_0: {
                const uint8_t *p = w + 34 * (size_t)b;
                float d = half_to_float(load_u16(p));
                for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)p[2 + j];
                break;
            }
            case SY_Q4_0: {
                const uint8_t *p = w + 18 * (size_t)b;
                float d = half_to_float(load_u16(p));
                for (int j = 0; j < 16; j++) { y[j] = ((p[2 + j] & 15) - 8) * d; y[j + 16] = ((p[2 + j] >> 4) - 8) * d; }
                break;
            }
            case SY_Q4_1: {
                const uint8_t *p = w + 20 * (size_t)b;
                float d = half_to_float(load_u16(p)), mn = half_to_float(load_u16(p + 2));
                for (int j = 0; j < 16; j++) { y[j] = (p[4 + j] & 15) * d + mn; y[j + 16] = (p[4 + j] >> 4) * d + mn; }
                break;
            }
            }
        }
    }
}

typedef struct {
    int type, M, N, K, lda, ldc, chunk;
    size_t row_bytes;
    const void *W;
    const float *A;
    const sy_block_q8 *xq;
    float *C;
} qgemm_job;

static void qgemm_task(void *ctx, int t) {
    const qgemm_job *j = (const qgemm_job *)ctx;
    int lo = t * j->chunk, hi = lo + j->chunk;
    if (hi > j->N) hi = j->N;
    if (lo >= hi) return;
    if (j->xq) {
        sy_qgemv_rows(j->type, j->W, j->row_bytes, j->K, j->xq, j->M, lo, hi, j->C, j->ldc);
        return;
    }
    /* Several rows: widen this chunk of weight rows to float (the weights are still read from
       memory in their blocks) and multiply in float: the small-batch kernel for decode batches,
       one sgemm for prefill. */
    float *tile = (float *)malloc((size_t)(hi - lo) * j->K * sizeof(float));
    if (!tile) return;
    sy_dequantize_rows(j->type, j->W, j->row_bytes, j->K, lo, hi, tile);
    if (j->M <= SY_SMALL_BATCH_ROWS)
        sy_gemm_small_rows(j->A, j->M, j->K, j->lda, tile, j->K, 0, hi - lo, j->C + lo, j->ldc, 1.f, 0.f);
    else
        cblas_sgemm(101, 111, 112, j->M, hi - lo, j->K, 1.f, j->A, j->lda, tile, j->K, 0.f, j->C + lo, j->ldc);
    free(tile);
}

int sy_qgemm_nt(int type, int M, int N, int K, const float *A, int lda, const void *W, size_t row_bytes,
                float *C, int ldc, sy_block_q8 *scratch) {
    if (M <= 0 || N <= 0) return 0;
    if (K % 32 != 0 || sy_quant_block_bytes(type) == 0) return -1;
    qgemm_job job = { type, M, N, K, lda, ldc, 0, row_bytes, W, A, NULL, C };
    int threads = sy_threads(), tasks;
    if (M == 1) {
        sy_quantize_rows_q8(A, M, K, lda, scratch);
        job.xq = scratch;
        tasks = threads * 4;
        if (tasks > N / 16) tasks = N / 16 > 0 ? N / 16 : 1;
    } else {
        tasks = (N + 63) / 64;
    }
    job.chunk = (N + tasks - 1) / tasks;
    sy_parallel_for(tasks, qgemm_task, &job);
    return 0;
}
