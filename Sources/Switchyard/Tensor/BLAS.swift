import CBLAS

/// Thin wrappers over OpenBLAS. All matrix products in Switchyard go through here.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for every following call.
    public static func setThreadCount(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// `C[m×n] = alpha · A[m×k] · B[n×k]ᵀ + beta · C` (row-major; B is stored like a PyTorch
    /// `Linear` weight `[out, in]`). `lda`, `ldb`, `ldc` are row strides in elements.
    /// Uses GEMV when `m == 1` (OpenBLAS's GEMM is slower for a single row).
    @inline(__always)
    public static func gemmTransB(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if m == 1 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb),
                        a, 1, beta, c, 1)
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
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
        if m == 1 {
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb),
                        a, 1, beta, c, 1)
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
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
                    BLAS.gemmTransB(m: rows, n: other.rows, k: cols, a: a.baseAddress!, lda: cols,
                                    b: b.baseAddress!, ldb: other.cols, c: c.baseAddress!, ldc: other.rows)
                }
            }
        }
        return out
    }
}
