import CKernels
import Foundation
import Testing

@testable import Switchyard

/// `sy_argmax` (SIMD and portable) against the scalar rule it replaced (`x[i] > x[best]`, from
/// best = 0): ties in different lanes and in the tail, NaNs (first, inside, all), ±∞, lengths
/// off the SIMD width, a vocabulary-sized row.
@Suite struct ArgmaxKernelTests {
    static func scalarRule(_ x: [Float]) -> Int {
        var best = 0
        for i in x.indices where x[i] > x[best] { best = i }
        return best
    }

    @Test func matchesTheScalarRule() {
        var rng = SeededRandom(seed: 3)
        let nan = Float.nan, inf = Float.infinity
        var rows: [[Float]] = [
            [1], [2, 2], [1, 3, 3], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            (0..<20).map { $0 == 13 || $0 == 5 ? 9 : 1 },  // tie across lanes: 5 wins
            (0..<20).map { $0 == 17 || $0 == 18 ? 9 : 1 },  // tie in the tail: 17 wins
            (0..<20).map { $0 == 3 || $0 == 11 ? 9 : 1 },  // tie within a lane (3 and 11): 3 wins
            [nan, 5, 6, 7, 8, 9, 10, 11, 12, 13],  // NaN first: nothing beats it
            [1, nan, 5, nan, 2, 3, 4, 5, 6, 1, nan, 0],
            [Float](repeating: nan, count: 17),
            [-inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
            [-inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -3],
            [1, 2, 3, 4, 5, 6, 7, 8, inf, 9, inf],
            (0..<49157).map { _ in rng.nextUnitFloat() * 30 - 15 }
        ]
        var big = (0..<49152).map { _ in Float(Int(rng.next() % 1000)) }
        big[40000] = 2000
        big[777] = 2000
        rows.append(big)
        for x in rows {
            let expected = Self.scalarRule(x)
            for portable in [false, true] {
                let got = Int(sy_argmax(x, Int32(x.count), portable ? 1 : 0))
                #expect(got == expected, "\(x.count) values, portable \(portable): \(got) vs \(expected)")
            }
        }
        #expect(sy_argmax(nil, 0, 0) == 0)
        #expect(Sampler.argmax(big) == 777)
    }
}
