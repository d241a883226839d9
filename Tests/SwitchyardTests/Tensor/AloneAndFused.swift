@testable import Switchyard

/// `x`'s `m` rows through `q` alone (`multiply`), and through `q` and `other` fused in one call
/// (`QuantizedMatrix.fused`): (alone, q's fused output, other's fused output).
func aloneAndFused(
    _ q: QuantizedMatrix, _ other: QuantizedMatrix, _ x: [Float], rows m: Int
) -> (alone: [Float], fused: [Float], other: [Float]) {
    var alone = [Float](repeating: 0, count: m * q.rows), fused = alone
    var second = [Float](repeating: 0, count: m * other.rows)
    x.withUnsafeBufferPointer { xp in
        alone.withUnsafeMutableBufferPointer { q.multiply(xp.baseAddress!, rows: m, into: $0.baseAddress!) }
        fused.withUnsafeMutableBufferPointer { a in
            second.withUnsafeMutableBufferPointer { b in
                QuantizedMatrix.fused([q, other], xp.baseAddress!, rows: m, into: [a.baseAddress!, b.baseAddress!])
            }
        }
    }
    return (alone, fused, second)
}
