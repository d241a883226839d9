import CBLAS
import CKernels

/// Thin wrappers over OpenBLAS. All matrix products in Switchyard go through here.
public enum BLAS {
    /// Sets how many threads (caller included) matrix products use. OpenBLAS itself is kept
    /// single-threaded; Switchyard splits products over its own pool (see CKernels).
    public static func setThreadCount(_ n: Int) {
        sy_set_threads(Int32(max(1, n)))
    }

    /// Threads (caller included) matrix products use: the last `setThreadCount`, else the hardware thread count.
    public static var threadCount: Int {
        Int(sy_threads())
    }

    /// The machine's Float32 multiply-add peak (multiply-adds per second), measured for about
    /// `seconds` on every pool thread (`sy_multiply_add_peak`): the roofline of compute-bound work.
    /// Call it when nothing else runs on the pool.
    public static func multiplyAddPeak(seconds: Double = 1) -> Double {
        sy_multiply_add_peak(seconds)
    }

    /// Sets up the pool once, which turns OpenBLAS's own threads off (`sy_set_threads`), before a
    /// product that calls OpenBLAS directly.
    private static let configureOnce: Void = { _ = sy_threads() }()

    /// `C[m×n] = alpha · A[m×k] · B[n×k]ᵀ + beta · C` (row-major; B is stored like a PyTorch
    /// `Linear` weight `[out, in]`). `lda`, `ldb`, `ldc` are row strides in elements.
    /// Split over the thread pool by output column: a SIMD GEMV kernel for one row, a
    /// register-blocked small-batch kernel up to 16 rows (OpenBLAS packs the whole weight for such
    /// thin products, so batched decode would barely beat one row at a time), OpenBLAS above.
    @inline(__always)
    public static func gemmTransB(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        configureOnce
        sy_sgemm_nt(Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `Σ x[i]·y[i]` over `count` contiguous elements.
    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        cblas_sdot(Int32(count), x, 1, y, 1)
    }

    /// `y += alpha · x` over `count` contiguous elements (OpenBLAS made single-threaded first: the
    /// decoder's residual adds run on it, and a long prefill's would otherwise start its threads).
    @inline(__always)
    static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        configureOnce
        cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
    }

    /// `C[m×n] = alpha · A[m×k] · B[k×n] + beta · C` (row-major, no transposes).
    @inline(__always)
    public static func gemm(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        configureOnce
        if m == 1 {
            cblas_sgemv(
                CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb),
                a, 1, beta, c, 1)
            return
        }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Matrix {
    /// `self · otherᵀ`, e.g. activations `[tokens, in]` times a weight `[out, in]`.
    public func matmulTransposed(_ other: Matrix) -> Matrix {
        precondition(cols == other.cols, "inner dimensions differ: \(shape) · \(other.shape)ᵀ")
        var out = Matrix(rows: rows, cols: other.rows)
        data.withUnsafeBufferPointer { a in
            other.data.withUnsafeBufferPointer { b in
                out.data.withUnsafeMutableBufferPointer { c in
                    BLAS.gemmTransB(
                        m: rows, n: other.rows, k: cols, a: a.baseAddress!, lda: cols,
                        b: b.baseAddress!, ldb: other.cols, c: c.baseAddress!, ldc: other.rows)
                }
            }
        }
        return out
    }
}
