import Testing

@testable import Switchyard

/// The hand-written kernels behind `BLAS.gemmTransB` (GEMV, small-batch, OpenBLAS split by
/// column) against a naive double-precision reference, over shapes that hit every remainder path.
@Suite struct GEMMTests {
    static func naive(
        m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int, b: [Float], ldb: Int,
        beta: Float, c: [Float], ldc: Int
    ) -> [Float] {
        var out = c
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for t in 0..<k { s += Double(a[i * lda + t]) * Double(b[j * ldb + t]) }
                out[i * ldc + j] = alpha * Float(s) + beta * c[i * ldc + j]
            }
        }
        return out
    }

    @Test(arguments: [1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 33])
    func matchesNaiveProduct(m: Int) {
        var rng = SeededRandom(seed: UInt64(m))
        for (n, k) in [(1, 1), (7, 9), (37, 70), (300, 576), (25, 1000)] {
            for beta: Float in [0, 1, 0.5] {
                let lda = k + 3, ldb = k + 1, ldc = n + 2
                let a = (0..<(m * lda)).map { _ in rng.nextUnitFloat() - 0.5 }
                let b = (0..<(n * ldb)).map { _ in rng.nextUnitFloat() - 0.5 }
                var c = (0..<(m * ldc)).map { _ in rng.nextUnitFloat() - 0.5 }
                let expected = Self.naive(
                    m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            BLAS.gemmTransB(
                                m: m, n: n, k: k, alpha: 0.75, a: ap.baseAddress!, lda: lda,
                                b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
                        }
                    }
                }
                // Float32 accumulation over up to 1000 products of magnitude ≤ 0.25.
                let diff = maxAbsDifference(c, expected)
                #expect(diff <= 1e-4, "m \(m) n \(n) k \(k) beta \(beta): \(diff)")
            }
        }
    }

    /// Several threads multiplying at once (server workers): the pool runs one job at a time and
    /// the others fall back to serial; every result must still be exact.
    @Test func concurrentCallersGetCorrectResults() async {
        let m = 4, n = 300, k = 576
        var rng = SeededRandom(seed: 77)
        let a = (0..<(m * k)).map { _ in rng.nextUnitFloat() - 0.5 }
        let b = (0..<(n * k)).map { _ in rng.nextUnitFloat() - 0.5 }
        let expected = Self.naive(
            m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: k, beta: 0,
            c: [Float](repeating: 0, count: m * n), ldc: n)
        await withTaskGroup(of: Float.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var worst: Float = 0
                    for _ in 0..<50 {
                        var c = [Float](repeating: 0, count: m * n)
                        a.withUnsafeBufferPointer { ap in
                            b.withUnsafeBufferPointer { bp in
                                c.withUnsafeMutableBufferPointer { cp in
                                    BLAS.gemmTransB(
                                        m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: k,
                                        c: cp.baseAddress!, ldc: n)
                                }
                            }
                        }
                        worst = max(worst, maxAbsDifference(c, expected))
                    }
                    return worst
                }
            }
            for await worst in group { #expect(worst <= 1e-4) }
        }
    }
}
