import CKernels
import Foundation
import Testing

@testable import Switchyard

/// `sy_rms_norm` against a Double reference, SIMD and portable: widths through every remainder
/// path of the vectorised sum (32-lane blocks, 8-lane blocks, a scalar tail), several rows, large
/// and tiny values, and in place.
@Suite struct RMSNormKernelTests {
    @Test func rmsNormMatchesTheReference() {
        var rng = SeededRandom(seed: 11)
        for width in [1, 7, 8, 31, 32, 45, 576, 577] {
            let rows = 3
            var x = (0..<(rows * width)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 3 }
            x[0] = 1e4  // one large value: the sum is not a sum of similar terms
            if width > 2 { x[width + 1] = 1e-20 }
            let weight = (0..<width).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let eps: Float = 1e-5
            var expected = [Double](repeating: 0, count: rows * width)
            for r in 0..<rows {
                let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
                let inv = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(width) + Double(eps)).squareRoot()
                for j in 0..<width { expected[r * width + j] = Double(weight[j]) * row[j] * inv }
            }
            for portable in [false, true] {
                for inPlace in [false, true] {
                    var out = inPlace ? x : [Float](repeating: .nan, count: rows * width)
                    if inPlace {
                        out.withUnsafeMutableBufferPointer { o in
                            weight.withUnsafeBufferPointer { w in
                                sy_rms_norm(
                                    o.baseAddress!, Int32(rows), Int32(width), w.baseAddress!, eps, o.baseAddress!,
                                    portable ? 1 : 0)
                            }
                        }
                    } else {
                        sy_rms_norm(x, Int32(rows), Int32(width), weight, eps, &out, portable ? 1 : 0)
                    }
                    for i in 0..<(rows * width) {
                        let error = abs(Double(out[i]) - expected[i])
                        #expect(
                            error <= 2e-6 * abs(expected[i]) + 1e-30,
                            "width \(width) element \(i) portable \(portable) in place \(inPlace): \(out[i]) vs \(expected[i])"
                        )
                    }
                }
            }
        }
    }
}
