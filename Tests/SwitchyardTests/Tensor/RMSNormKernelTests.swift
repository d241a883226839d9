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

    /// Calls of 4,096 values or more split their rows over the thread pool: each row must come out
    /// as a call on that row alone does, bit for bit (8 rows of 577, 3 rows of 2,000, in place too).
    @Test func pooledCallEqualsRowByRowCalls() {
        var rng = SeededRandom(seed: 12)
        for (rows, width) in [(8, 577), (3, 2000), (9, 576)] {
            let x = (0..<(rows * width)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 3 }
            let weight = (0..<width).map { _ in rng.nextUnitFloat() * 2 - 1 }
            for portable in [false, true] {
                var expected = [Float](repeating: 0, count: rows * width)
                expected.withUnsafeMutableBufferPointer { o in
                    x.withUnsafeBufferPointer { xp in
                        for r in 0..<rows {
                            sy_rms_norm(
                                xp.baseAddress! + r * width, 1, Int32(width), weight, 1e-5, o.baseAddress! + r * width,
                                portable ? 1 : 0)
                        }
                    }
                }
                var out = [Float](repeating: .nan, count: rows * width)
                sy_rms_norm(x, Int32(rows), Int32(width), weight, 1e-5, &out, portable ? 1 : 0)
                #expect(
                    firstDifference(out, expected) == nil,
                    "\(rows) x \(width) portable \(portable): first difference at \(firstDifference(out, expected) ?? -1)"
                )
                var inPlace = x
                inPlace.withUnsafeMutableBufferPointer { o in
                    sy_rms_norm(
                        o.baseAddress!, Int32(rows), Int32(width), weight, 1e-5, o.baseAddress!, portable ? 1 : 0)
                }
                #expect(
                    firstDifference(inPlace, expected) == nil,
                    "\(rows) x \(width) portable \(portable), in place: first difference at \(firstDifference(inPlace, expected) ?? -1)"
                )
            }
        }
    }
}
