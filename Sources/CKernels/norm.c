/* RMSNorm (Llama's LlamaRMSNorm): out = x / sqrt(mean(x²) + eps) · weight, row by row.

   The decoder normalises every row twice per layer on the calling thread while the pool waits.
   A scalar sum of squares is one dependent add chain (576 adds at the add latency per SmolLM2
   row): at batch 8 the norms alone were about 2% of a decode step, with the other thread idle.
   Here the squares are summed in 4 × 8 lanes (then the lanes added pairwise), which changes the
   order of the additions but not their precision (float, as PyTorch's float32 reduction). Calls
   of SY_ELEMENTWISE_PARALLEL_MIN values or more split their rows over the pool. */
#include "CKernels.h"
#include "simd.h"
#include <math.h>

/* One value at a time, in index order: the portable path. */
static void rms_norm_portable(const float *x, int width, const float *weight, float eps, float *out) {
    float sum = 0.f;
    for (int j = 0; j < width; j++) sum += x[j] * x[j];
    const float inv = 1.f / sqrtf(sum / (float)width + eps);
    for (int j = 0; j < width; j++) out[j] = weight[j] * (x[j] * inv);
}

#if SY_X86_SIMD
__attribute__((target("avx2,fma")))
static void rms_norm_avx2(const float *x, int width, const float *weight, float eps, float *out) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int j = 0;
    for (; j + 32 <= width; j += 32) {
        const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + 8);
        const __m256 c = _mm256_loadu_ps(x + j + 16), d = _mm256_loadu_ps(x + j + 24);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
        s2 = _mm256_fmadd_ps(c, c, s2);
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; j + 8 <= width; j += 8) {
        const __m256 a = _mm256_loadu_ps(x + j);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    float sum = sy_hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; j < width; j++) sum += x[j] * x[j];
    const float inv = 1.f / sqrtf(sum / (float)width + eps);
    const __m256 iv = _mm256_set1_ps(inv);
    j = 0;
    /* weight · (x · inv), the reference's order of the two products. */
    for (; j + 8 <= width; j += 8)
        _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_loadu_ps(weight + j), _mm256_mul_ps(_mm256_loadu_ps(x + j), iv)));
    for (; j < width; j++) out[j] = weight[j] * (x[j] * inv);
}
#endif

static void rms_norm_rows(const float *x, int r0, int r1, int width, const float *weight, float eps, float *out,
                          int portable) {
#if SY_X86_SIMD
    if (!portable && sy_kernels_have_avx2()) {
        for (int r = r0; r < r1; r++)
            rms_norm_avx2(x + (size_t)r * width, width, weight, eps, out + (size_t)r * width);
        return;
    }
#endif
    (void)portable;
    for (int r = r0; r < r1; r++)
        rms_norm_portable(x + (size_t)r * width, width, weight, eps, out + (size_t)r * width);
}

/* One thread's part: `per` whole rows (each row's arithmetic is the same in any part). */
typedef struct { const float *x; const float *weight; float *out; float eps; int rows, width, per, portable; } norm_job;

static void norm_task(void *ctx, int index) {
    const norm_job *j = (const norm_job *)ctx;
    const int r0 = index * j->per, r1 = r0 + j->per < j->rows ? r0 + j->per : j->rows;
    rms_norm_rows(j->x, r0, r1, j->width, j->weight, j->eps, j->out, j->portable);
}

void sy_rms_norm(const float *x, int rows, int width, const float *weight, float eps, float *out, int portable) {
    const int threads = sy_threads();
    if (rows < 2 || (long)rows * width < SY_ELEMENTWISE_PARALLEL_MIN || threads < 2) {
        rms_norm_rows(x, 0, rows, width, weight, eps, out, portable);
        return;
    }
    const int parts = rows < threads ? rows : threads, per = (rows + parts - 1) / parts;
    norm_job job = { x, weight, out, eps, rows, width, per, portable };
    sy_parallel_for((rows + per - 1) / per, norm_task, &job);
}
