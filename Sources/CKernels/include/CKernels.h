#ifndef SWITCHYARD_CKERNELS_H
#define SWITCHYARD_CKERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// Small-batch matrix product for decode: Y[m][n] = alpha * sum_k X[m][k] * W[n][k]  (+ beta*Y)
/// for output columns n in [n_begin, n_end), all m in [0, M).
///
/// X is [M x K] with row stride ldx, W is [N x K] with row stride ldw (a PyTorch Linear weight),
/// Y is [M x N] with row stride ldy. Reads each weight row once for all M inputs (register-blocked
/// 3 weight rows x 4 inputs), so M decode rows cost about one pass over the weights, which is what
/// makes batched decode fast. beta must be 0 or 1.
/// Uses AVX2+FMA when the CPU has them (checked once at run time), a portable loop otherwise.
void sy_gemm_small_rows(const float *X, int M, int K, int ldx,
                        const float *W, int ldw, int n_begin, int n_end,
                        float *Y, int ldy, float alpha, float beta);

/// A task of a parallel job: called once for each index in [0, count).
typedef void (*sy_task_fn)(void *ctx, int index);

/// Runs fn(ctx, i) for every i in [0, count) on the kernel thread pool (the caller takes part) and
/// returns when all are done. Jobs do not nest: a call made while another job runs (from another
/// thread or from inside a task) runs serially in its caller.
void sy_parallel_for(int count, sy_task_fn fn, void *ctx);

/// Sets how many threads (caller included) parallel jobs use; default: all online CPUs (set on
/// the first sy_threads()). Also makes OpenBLAS single-threaded: it runs inside the pool's tasks.
void sy_set_threads(int n);
/// Threads parallel jobs use.
int sy_threads(void);
/// Online CPUs.
int sy_hardware_threads(void);

/// Y[n] = alpha * dot(W[n], x) (+ beta*Y[n]) for n in [n_begin, n_end): one input row (GEMV),
/// 4 weight rows at a time with two accumulators each to hide FMA latency.
void sy_gemv_rows(const float *x, int K, const float *W, int ldw, int n_begin, int n_end,
                  float *Y, float alpha, float beta);

/// Most rows for which sy_sgemm_nt uses the small-batch kernel instead of OpenBLAS.
#define SY_SMALL_BATCH_ROWS 16

/// C[M x N] = alpha * A[M x K] * B[N x K]^T + beta * C, row-major with row strides lda, ldb, ldc.
/// B is laid out like a PyTorch Linear weight. Splits the N output columns over the thread pool;
/// each part uses the GEMV kernel (M = 1), the small-batch kernel (M <= SY_SMALL_BATCH_ROWS) or a
/// single-threaded OpenBLAS sgemm (larger M).
void sy_sgemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);

/// Makes OpenBLAS single-threaded: Switchyard parallelises around it with its own pool, and two
/// pools spinning on two cores would fight.
void sy_blas_single_threaded(void);

/// Thin SVD of the column-major m x n matrix `a` (overwritten) with LAPACK's dgesvd:
/// a = U diag(s) Vt with U m x k (column-major, ld m), s k values descending, Vt k x n
/// (column-major, ld k), k = min(m, n). Returns LAPACK's info (0 on success).
int sy_svd(int m, int n, double *a, double *s, double *u, double *vt);

/// 1 when the AVX2+FMA path is in use.
int sy_kernels_have_avx2(void);

/// Whether the CPU has AVX-512F and AVX-512VL (and AVX2): kernels whose register blocks need 32
/// vector registers are compiled for it and taken only then.
int sy_kernels_have_avx512vl(void);

/// gate[i] = silu(gate[i]) · up[i] (SwiGLU), silu(g) = g / (1 + exp(-g)): AVX2 with a polynomial
/// exp (relative error ~2e-7, no overflow for any g) where available, else libm's expf one value
/// at a time (`portable` != 0 forces it; tests compare the two). Calls of 4,096 values or more are
/// split over the thread pool, in parts whose values are those of one serial call.
void sy_silu_multiply(float *gate, const float *up, int count, int portable);

/// RMSNorm of `rows` rows of `width` floats: out = x / sqrt(mean(x²) + eps) · weight (Llama's
/// LlamaRMSNorm). The sum of squares is vectorised where available (AVX2: 32 lanes, then added
/// pairwise), else summed in index order (`portable` != 0 forces that; tests compare the two).
/// `out` may not overlap `x` unless it is `x` itself. Calls of 4,096 values or more (two rows or
/// more) split their rows over the thread pool; each row's arithmetic is unchanged.
void sy_rms_norm(const float *x, int rows, int width, const float *weight, float eps, float *out, int portable);

/// Rotary position embeddings in place (Hugging Face's rotate_half form): in each of `rows` rows
/// (`stride` floats apart), `heads` consecutive heads of `hd` floats, pair (x[i], x[i + hd/2]) for
/// i < hd/2 becomes (a·cos − b·sin, b·cos + a·sin) with cos/sin[r · hd/2 + i] (rows × hd/2). Each
/// product is rounded before the sum (no fused multiply-add), as PyTorch's float32 is; AVX2 where
/// available, bit-identical to the portable loop (`portable` != 0 forces it).
void sy_rope_apply(float *x, int rows, int heads, int stride, int hd, const float *cos, const float *sin,
                   int portable);

/// log softmax(x[0..<n])[index] = (x[index] − m) − log Σ exp(x[i] − m), m = max x, for finite x
/// (n ≥ 1, 0 ≤ index < n): AVX2 with a polynomial exp (relative error ~2e-7 per term) summed in
/// double where available, else libm's double exp one term at a time (`portable` != 0 forces it).
float sy_log_softmax_at(const float *x, int n, int index, int portable);

/// max x[0..<n] (-inf for n = 0), vectorised where available.
float sy_max(const float *x, int n, int portable);

/// The index of the largest of x[0..<n], the first on ties; NaNs never win, except that a NaN
/// x[0] is returned (0) as nothing compares greater than it; 0 for n ≤ 0. Vectorised where
/// available (`portable` != 0 forces the scalar loop; tests compare the two).
int sy_argmax(const float *x, int n, int portable);

/// Σ exp(x[i] − shift) over x[0..<n] for x[i] ≤ shift (finite), summed in double: the softmax
/// normaliser with shift = max x (the same exp as sy_log_softmax_at).
double sy_sum_exp(const float *x, int n, float shift, int portable);

/// The machine's Float32 multiply-add peak in multiply-adds per second, measured for about
/// `seconds` on every pool thread at once (independent 16-lane FMAs with AVX-512, 8-lane with
/// AVX2+FMA, scalar otherwise): the roofline a compute-bound kernel approaches. Not thread-safe
/// against other pool jobs' timing.
double sy_multiply_add_peak(double seconds);

// ---- Quantised weights (llama.cpp block formats) ------------------------------------------

#include <stddef.h>
#include <stdint.h>

// ---- Weight memory ---------------------------------------------------------------------

/// `bytes` of memory for weights that live as long as a model (64-byte aligned), advised to use
/// transparent huge pages (weightmem.c: decode streams every weight each step); NULL when there
/// is no memory. Thread-safe. Free with sy_weight_free, never with free().
void *sy_weight_alloc(size_t bytes);

/// Returns memory from sy_weight_alloc (NULL: nothing). Thread-safe.
void sy_weight_free(void *p);

/// Causal self-attention for `n` new query rows at positions start ..< start+n:
/// out[r][h] = Σ_t softmax_t(scale · q[r][h]·K[h/group][t]) · V[h/group][t] over
/// t in [max(0, pos − window + 1), pos] (window 0: no window). q rows are `q_stride` floats apart
/// (heads of `hd` floats side by side), out rows `out_stride`. keys/values hold one KV head after
/// another, `head_stride` elements apart, each [positions × hd], already including the new rows;
/// elements are float, or IEEE half when `kv_half` != 0 (widened as they are read).
/// Split over the thread pool by (KV head with up to 4 of its query heads, which share every
/// key/value load; chunk of 16 rows, 64 past 256 new rows); AVX2 when hd is a multiple of 8,
/// portable otherwise or when `portable` != 0 (tests compare the two). With AVX2, a chunk of 8 or
/// more rows (prefill) of a sequence of 256 or more positions runs as two OpenBLAS products, Q·Kᵀ then P·V, over its rows and heads at
/// once (a half cache widened to floats once per call for them); decode rows take the row kernel.
void sy_causal_attention(const float *q, int n, int start, int q_stride, int num_heads, int num_kv_heads, int hd,
                         const void *keys, const void *values, int kv_half, size_t head_stride, int window, float scale,
                         float *out, int out_stride, int portable);

/// One sequence of sy_causal_attention_batch: its `n` new query rows at positions
/// start ..< start+n (q, out, rows q_stride / out_stride apart as in sy_causal_attention) and its
/// own cache (keys, values, head_stride, kv_half).
typedef struct {
    const float *q;
    float *out;
    const void *keys, *values;
    size_t head_stride;
    int n, start, kv_half;
} sy_attention_sequence;

/// sy_causal_attention for every sequence of a batch (the model's shape shared), as one job on the
/// pool: a decode step of 8 sequences waits on one join instead of 8, and its 8 × (KV heads) tasks
/// balance over the threads where 3 tasks of one sequence on 2 threads leave one idle a third of the time.
void sy_causal_attention_batch(const sy_attention_sequence *seqs, int count, int q_stride, int out_stride,
                               int num_heads, int num_kv_heads, int hd, int window, float scale, int portable);

/// Writes `n` rows of keys (or values) into a cache laid out as sy_causal_attention reads it: row
/// j of `src` (`src_stride` floats apart, KV heads of `hd` side by side) goes to position
/// start + j of every head. With `kv_half`, rounded to IEEE half (nearest, ties to even).
void sy_kv_store(const float *src, int n, int src_stride, int num_kv_heads, int hd, void *dst, int kv_half,
                 size_t head_stride, int start);

/// Weight storage types read directly by the kernels, numbered as ggml's `ggml_type`, all in
/// blocks of 32 values along a row. Q8_0 = {f16 d; int8 q[32]} (34 bytes, w = d·q);
/// Q4_0 = {f16 d; 16 bytes of nibbles} (w = d·(q − 8)); Q4_1 = {f16 d; f16 m; 16 bytes of
/// nibbles} (w = d·q + m): nibble j of a block holds value j (low nibbles) and value j + 16 (high
/// nibbles). F16 and BF16: 32 half-precision values (64 bytes).
enum { SY_F16 = 1, SY_Q4_0 = 2, SY_Q4_1 = 3, SY_Q8_0 = 8, SY_BF16 = 30 };

/// Q5_0 blocks ({f16 d; 4 bytes of fifth bits; 16 bytes of nibbles}, w = d·(q − 16), q 5-bit)
/// rewritten as Q8_0 blocks, exactly: the same d, q − 16 as signed bytes. `blocks` blocks of 22
/// bytes at `src`, of 34 at `dst`.
void sy_q5_0_to_q8_0(const void *src, size_t blocks, void *dst);

/// Q4_K super-blocks (256 values, 144 bytes: f16 d, f16 dmin, 6-bit scales sc_j and minimums m_j
/// of 8 sub-blocks, nibbles) rewritten as 8 Q4_1 blocks each (20 bytes): the same nibbles, with
/// d_j = d·sc_j and m = −dmin·m_j rounded to half (nearest, ties to even; relative error ≤ 2^-11
/// for normal halves; a product of a subnormal d is exact). Returns -1, or the index of the first
/// super-block where those roundings would move a value by more than 2^-10 of the super-block's
/// largest 15·|d_j| + |m_j| (in practice: a scale past the half range), leaving `dst` partly
/// written.
long sy_q4_K_to_q4_1(const void *src, size_t blocks, void *dst);

/// Q5_1 blocks ({f16 d; f16 m; fifth bits; nibbles}, w = d·q + m, q 5-bit) rewritten as Q8_0
/// blocks at `dst` plus one Float32 offset per block at `offsets`: w = d·(q + c) + r, the same d,
/// c = round(m/d) (kept so that q + c is a signed byte), r = m − c·d. Exact up to r's Float32
/// rounding; products add r times the block's sum of the input. Returns -1, or the first block
/// whose d or m is not finite.
long sy_q5_1_to_q8_0(const void *src, size_t blocks, void *dst, float *offsets);

/// Q5_K super-blocks (256 values, 176 bytes: Q4_K's scales and minimums, fifth bits, nibbles)
/// rewritten as 8 Q8_0 blocks each plus 8 offsets, as sy_q5_1_to_q8_0 does with d = half(d·sc_j)
/// (≤ 2^-11 relative) and m = −dmin·m_j (exact). Returns -1, or the first super-block with a
/// scale past the half range.
long sy_q5_K_to_q8_0(const void *src, size_t blocks, void *dst, float *offsets);

/// IQ4_NL blocks ({f16 d; 16 bytes of nibbles}, w = d·v[q], v ggml's 16-value kvalues_iq4nl in
/// −127…113) rewritten as Q8_0 blocks, exactly: the same d, v[q] as signed bytes.
void sy_iq4_nl_to_q8_0(const void *src, size_t blocks, void *dst);

/// IQ4_XS super-blocks (256 values, 136 bytes: f16 d, a 6-bit scale ls per 32 values, IQ4_NL
/// nibbles) rewritten as 8 Q8_0 blocks each: d·(ls − 32) rounded to half (≤ 2^-11 relative),
/// v[q] as signed bytes. Returns -1, or the first super-block with a scale past the half range.
long sy_iq4_xs_to_q8_0(const void *src, size_t blocks, void *dst);

/// An activation block for the integer formats: 32 values as int16, x ≈ d·q with
/// d = max|x|/32767, and s = d·Σq (the term the weight offsets of Q4_0/Q4_1 multiply).
/// 16 bits rather than llama.cpp's 8: the same instructions per block (AVX2 madd_epi16), and the
/// logits track the Float32 model within llama.cpp's per-op error bound end to end.
typedef struct { float d; float s; int16_t qs[32]; } sy_block_q16;

/// Bytes of one 32-value block of `type` (0 for types these kernels do not read).
size_t sy_weight_block_bytes(int type);

/// Quantises M rows of K floats (K a multiple of 32, row stride ldx) into M·K/32 blocks:
/// per block d = max|x|/32767, q = round(x/d).
void sy_quantize_rows_q16(const float *x, int M, int K, int ldx, sy_block_q16 *out);

/// Y[m][n] = dot(W row n, x_m) for n in [n_begin, n_end), m < M, from quantised activations
/// (M·K/32 blocks), integer types only. W rows are `row_bytes` apart. AVX2 when available.
/// `offsets` (NULL: none), as in sy_qgemm_output: each block's offset times the activations' s.
void sy_qgemv_rows(int type, const void *W, size_t row_bytes, int K, const sy_block_q16 *xq, int M,
                   int n_begin, int n_end, float *Y, int ldy, const float *offsets);

/// The portable (non-SIMD) integer dot product of one weight row (nb blocks) with quantised
/// activations: the reference the AVX2 path is tested against (0 for half types).
float sy_qdot_portable(int type, const void *w, const sy_block_q16 *x, int nb);

/// Y[m][n] = dot(W row n, X row m) in Float32 for n in [n_begin, n_end), m < M (X row stride ldx):
/// each weight block is widened in registers once and used for up to 8 activation rows.
/// `portable` != 0 forces the portable loop (tests compare the two).
/// Returns 0, or -1 (nothing written) when `type` is none of the five SY_ types above.
int sy_wgemm_rows(int type, const void *W, size_t row_bytes, int K, const float *X, int M, int ldx,
                  int n_begin, int n_end, float *Y, int ldy, int portable);

/// One block of 32 values of 8 activation rows for the batched 8-bit kernel: per row 16-bit
/// integers v = round(x/d), d = max|x|/32512, split exactly into two signed bytes v = 256·hi + lo
/// (lo the low byte), interleaved for 8-bit dot products: hi[p][r] (and lo[p][r]) hold values
/// 8p..8p+7 of row r; s = d·Σv (what the weight offsets of Q4_0/Q4_1/Q8_0 multiply).
/// 576 bytes; no alignment needed.
typedef struct {
    int8_t hi[4][8][8];
    int8_t lo[4][8][8];
    float d[8];
    float s[8];
} sy_block_q8x8;

/// Quantises rows [m0, m0 + 8) of X [M x K] (row stride ldx; rows at or past M become zeros) into
/// K/32 blocks at `out` (K a multiple of 32).
void sy_quantize_rows_q8x8(const float *X, int M, int ldx, int m0, int K, sy_block_q8x8 *out);

/// Y[m][n] = dot(W row n, activation row m) for n in [n_begin, n_end), m < M, from rows quantised
/// by sy_quantize_rows_q8x8: (M + 7) / 8 groups of K/32 blocks, group g holding rows 8g..8g+7.
/// Integer weight types only. Each four weight rows are unpacked once for every group. Uses
/// 8-bit dot products (AVX-512 VNNI on 512-bit registers) where the CPU has them; `portable` != 0
/// forces the portable loop, the same integer arithmetic (tests compare the two). `offsets`
/// (NULL: none), as in sy_qgemm_output: each block's offset times the activations' scaled sum s.
/// SY_Q8_0_PAIRS (no offsets): sy_q8_0_pairs_rows, or with `portable` != 0 this portable loop.
void sy_q8x8_rows(int type, const void *W, size_t row_bytes, int K, const sy_block_q8x8 *x, int M, int n_begin,
                  int n_end, float *Y, int ldy, int portable, const float *offsets);

/// 1 when sy_q8x8_rows has its 8-bit dot-product path on this CPU (AVX-512 VNNI and VL).
int sy_kernels_have_vnni(void);

/// Q8_0 weights kept in row pairs for the 8-bit kernels (q8pairs.c; CPUs with AVX-512 VNNI): not a
/// ggml type. Rows 2h and 2h+1 (A, B) of a matrix with row_bytes = K/32·34 (Q8_0's size) are one
/// run of K/32 68-byte pair blocks at W + 2h·row_bytes: A's scale, B's scale (halves), then for
/// each group g of 4 values (g = 0..7) A's values 4g..4g+3 and B's, each byte q + 128 (q the Q8_0
/// signed byte). sy_weight_block_bytes, sy_dequantize_rows, sy_weights_first_nonfinite,
/// sy_qgemv_rows, sy_wgemm_rows (always its portable loop: the pairs reach it only when the 8-bit
/// kernel's activations could not be allocated), sy_qgemm_nt(_fused) (without offsets) take it as
/// `type`; where they fall back from the pair kernels, nothing is allocated.
enum { SY_Q8_0_PAIRS = 108 };

/// Rows a and b (K/32 Q8_0 blocks each) as one run of pair blocks at dst (K/32·68 bytes).
void sy_q8_0_pack_pair(const void *a, const void *b, int K, void *dst);

/// Row n of a SY_Q8_0_PAIRS matrix back in Q8_0 blocks (K/32·34 bytes at out).
void sy_q8_0_pairs_row(const void *W, size_t row_bytes, int K, int n, void *out);

/// Block b of row n of a SY_Q8_0_PAIRS matrix back as one Q8_0 block (34 bytes at out).
void sy_q8_0_pairs_block(const void *W, size_t row_bytes, int n, int b, void *out);

/// Y[m][n] = dot(W row n, activation row m) for n in [n_begin, n_end), m < M, W a SY_Q8_0_PAIRS
/// matrix, from rows quantised by sy_quantize_rows_q8x8 ((M + 7) / 8 groups of K/32 blocks):
/// 8-bit dot products straight from the pair blocks where the CPU has AVX-512 VNNI (the same bits
/// as sy_q8x8_rows on the Q8_0 rows; a range that starts or ends inside a pair computes the pair
/// and stores its row); else, or with `portable` != 0, the portable loop of sy_q8x8_rows.
void sy_q8_0_pairs_rows(const void *W, size_t row_bytes, int K, const sy_block_q8x8 *x, int M, int n_begin,
                        int n_end, float *Y, int ldy, int portable);

/// sy_qgemv_rows for a SY_Q8_0_PAIRS matrix: both rows of a pair at once (AVX-512BW) where the CPU
/// has AVX-512 VNNI (as sy_q8_0_pairs_rows at the ends of the range); else, or with `portable` != 0,
/// sy_qdot_portable row by row.
void sy_q8_0_pairs_gemv(const void *W, size_t row_bytes, int K, const sy_block_q16 *xq, int M, int n_begin, int n_end,
                        float *Y, int ldy, int portable);

/// Rounds M rows of K floats (row stride ldx) to bfloat16, nearest even, into `out` (M·K values,
/// rows contiguous): the activations of sy_bf16dot_rows. `portable` != 0 forces the scalar loop
/// (tests compare the two; both give the same bits).
void sy_bf16_round_rows(const float *X, int M, int K, int ldx, uint16_t *out, int portable);

/// Y[m][n] = dot(W row n, Xb row m) for n in [n_begin, n_end), m < M: BF16 weights (`row_bytes`
/// per row) times activations rounded by sy_bf16_round_rows (row m at Xb + m·K), each product
/// exact, the sums Float32. AVX-512 BF16 (vdpbf16ps) where the CPU has it and K is a multiple of
/// 32, else the portable loop (`portable` != 0 forces it); the two differ only in the order of the
/// sums. Why and at what precision: bf16dot.c.
void sy_bf16dot_rows(const void *W, size_t row_bytes, int K, const uint16_t *Xb, int M, int n_begin, int n_end,
                     float *Y, int ldy, int portable);

/// 1 when sy_bf16dot_rows has its AVX-512 BF16 path on this CPU.
int sy_kernels_have_avx512bf16(void);

/// Writes the `count` IEEE halves at `src` (little-endian, any alignment) as bfloat16 into `dst`
/// when every one of them is exactly a bfloat16 (as the halves of a checkpoint trained in bfloat16
/// and saved as F16 are), and returns -1; otherwise returns the index of the first that is not
/// (`dst` is then partly written).
int64_t sy_f16_to_bf16_exact(const void *src, size_t count, uint16_t *dst);

/// Quantises M rows of K floats (K a multiple of 32) to Q8_0 blocks, as ggml's
/// quantize_row_q8_0_ref: per block d = max|x| / 127 (stored as half), q = round(x / d).
/// `out` holds M · K/32 · 34 bytes.
void sy_quantize_rows_q8_0(const float *x, int M, int K, void *out);

/// Index (row·K + column) of the first NaN or infinite value of N rows of `type` blocks, or -1
/// when all are finite (-2 for an unknown type). Integer blocks are only widened when one of their
/// scales is non-finite; F16/BF16 values are checked bit by bit.
int64_t sy_weights_first_nonfinite(int type, const void *W, size_t row_bytes, int K, int N);

/// Index of the first NaN or infinite value of `x[0 ..< count]`, or -1.
int64_t sy_floats_first_nonfinite(const float *x, size_t count);

/// Widens weight rows [n_begin, n_end) to floats, `K` per row, into `out`.
/// Returns 0, or -1 (nothing written) when `type` is none of the five SY_ types above.
int sy_dequantize_rows(int type, const void *W, size_t row_bytes, int K, int n_begin, int n_end, float *out);

/// C[M x N] = A[M x K] · Wᵀ with W [N x K] in `type`'s blocks, over the thread pool.
/// One row of an integer type (decode, compute-bound on two cores): A is quantised into
/// `scratch` (K/32 blocks) and multiplied as integers. Up to SY_SMALL_BATCH_ROWS rows of an
/// integer type on a CPU with VNNI: sy_quantize_rows_q8x8 + sy_q8x8_rows (8 rows at a time; the
/// quantised activations are allocated here). Otherwise up to SY_SMALL_BATCH_ROWS rows (or one row
/// of a half type): sy_wgemm_rows. More (prefill): each task widens its chunk of weight rows to a
/// float tile and calls sgemm. With `bf16_activations` != 0, more than one row of BF16 weights on
/// a CPU with AVX-512 BF16 instead rounds A to bfloat16 once (sy_bf16_round_rows) and multiplies
/// with bfloat16 dot products (sy_bf16dot_rows), batches and prefill alike.
/// Returns 0, or -1 when K is not a multiple of 32 or `type` is not one of the types above.
int sy_qgemm_nt(int type, int M, int N, int K, const float *A, int lda, const void *W, size_t row_bytes,
                float *C, int ldc, sy_block_q16 *scratch, int bf16_activations);

/// Most weight matrices one sy_qgemm_nt_fused call multiplies.
#define SY_QGEMM_MAX_PARTS 4

/// One weight matrix of a fused product: C[M x N] (row stride ldc) = A · Wᵀ, W [N x K] in `type`'s
/// blocks, rows `row_bytes` apart. `offsets` (NULL: none): one Float32 per 32-value block of W
/// (N x K/32, row-major) added to every value of its block (Q8_0 rewritten from Q5_1/Q5_K); the
/// product then adds each block's exact Float32 input sum times it, in the same tasks.
typedef struct {
    int type, N;
    const void *W;
    size_t row_bytes;
    float *C;
    int ldc;
    const float *offsets;
} sy_qgemm_output;

/// sy_qgemm_nt for `count` (1...SY_QGEMM_MAX_PARTS) weight matrices of one type that multiply the
/// same A (a layer's q, k and v; gate and up): A is quantised once and every part's rows are
/// tasks of one job on the pool, so a decode step waits on one join instead of `count`.
/// Returns 0, or -1 when K is not a multiple of 32, the types differ or are not supported, or
/// `count` is out of range.
int sy_qgemm_nt_fused(int M, int K, const float *A, int lda, const sy_qgemm_output *outs, int count,
                      sy_block_q16 *scratch, int bf16_activations);

#ifdef __cplusplus
}
#endif
#endif
