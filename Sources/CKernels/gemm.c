#include "CKernels.h"
#include <cblas.h>  /* OpenBLAS's, found through the CBLAS system-library target (pkg-config) */
#include <stddef.h>

typedef struct {
    int M, N, K, lda, ldb, ldc, chunk;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_task(void *ctx, int t) {
    const gemm_job *j = (const gemm_job *)ctx;
    int lo = t * j->chunk, hi = lo + j->chunk;
    if (hi > j->N) hi = j->N;
    if (lo >= hi) return;
    if (j->M == 1) {
        sy_gemv_rows(j->A, j->K, j->B, j->ldb, lo, hi, j->C, j->alpha, j->beta);
    } else if (j->M <= SY_SMALL_BATCH_ROWS) {
        sy_gemm_small_rows(j->A, j->M, j->K, j->lda, j->B, j->ldb, lo, hi, j->C, j->ldc, j->alpha, j->beta);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->M, hi - lo, j->K, j->alpha, j->A, j->lda,
                    j->B + (size_t)lo * j->ldb, j->ldb, j->beta, j->C + lo, j->ldc);
    }
}

void sy_sgemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (beta != 0.f && beta != 1.f && M <= SY_SMALL_BATCH_ROWS) {
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) C[(size_t)m * ldc + n] *= beta;
        beta = 1.f;
    }
    int threads = sy_threads(), tasks = threads;
    /* Below ~16K multiply-adds the fork-join costs more than it saves. Large products are cut
       into a few chunks per thread, handed out dynamically, so a core taken by another process
       (these machines are shared) delays one small chunk rather than half the product. */
    if ((long)M * N * K < 16384L) tasks = 1;
    else if ((long)M * N * K >= (1L << 20)) tasks = threads * 4;
    if (tasks > N / 12) tasks = N / 12 > 0 ? N / 12 : 1;
    gemm_job job = { M, N, K, lda, ldb, ldc, 0, alpha, beta, A, B, C };
    /* Chunks are multiples of 12 columns so both kernels' register blocks (3 and 4 rows) stay whole. */
    job.chunk = ((N + tasks - 1) / tasks + 11) / 12 * 12;
    sy_parallel_for(tasks, gemm_task, &job);
}

void sy_blas_single_threaded(void) { openblas_set_num_threads(1); }
