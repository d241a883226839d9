import CKernels

/// A thin singular value decomposition in double precision (LAPACK's `dgesvd` through CKernels).
struct ThinSVD {
    /// `U` `[m × k]`, column-major (element `(i, r)` at `r·m + i`), `k = min(m, n)`.
    let u: [Double]
    /// The `k` singular values, descending.
    let s: [Double]
    /// `Vᵀ` `[k × n]`, column-major (element `(r, j)` at `j·k + r`).
    let vt: [Double]
    let m: Int, n: Int

    /// Decomposes the row-major `m × n` matrix `a = U·diag(s)·Vᵀ`; throws when LAPACK fails,
    /// naming `what`.
    init(rowMajor a: Matrix, what: @autoclosure () -> String) throws {
        m = a.rows; n = a.cols
        let k = min(m, n)
        var colMajor = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { colMajor[j * m + i] = Double(a[i, j]) } }
        var s = [Double](repeating: 0, count: k), u = [Double](repeating: 0, count: m * k)
        var vt = [Double](repeating: 0, count: k * n)
        let info = sy_svd(Int32(m), Int32(n), &colMajor, &s, &u, &vt)
        guard info == 0 else { throw SwitchyardError.invalidArgument("SVD of \(what()) failed (LAPACK info \(info))") }
        self.u = u; self.s = s; self.vt = vt
    }
}
