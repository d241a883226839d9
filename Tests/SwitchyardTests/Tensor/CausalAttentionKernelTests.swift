import CKernels
import Foundation
import Testing
@testable import Switchyard

/// `sy_causal_attention` (SIMD and portable) against a naive Double reference: grouped KV heads,
/// head sizes on and off the SIMD width, row chunks split across tasks, a prefix already cached,
/// and a sliding window.
@Suite struct CausalAttentionKernelTests {
    @Test(arguments: [(8, 4, 2), (64, 9, 3), (12, 2, 1), (32, 6, 2)])
    func matchesTheReference(hd: Int, heads: Int, kvHeads: Int) {
        var rng = SeededRandom(seed: UInt64(hd * 100 + heads))
        for (start, n, window) in [(0, 1, 0), (0, 37, 0), (21, 1, 0), (5, 19, 0), (30, 20, 7), (0, 33, 1)] {
            let total = start + n, capacity = total + 3
            let q = (0..<(n * heads * hd)).map { _ in rng.nextUnitFloat() * 4 - 2 }
            let keys = (0..<(kvHeads * capacity * hd)).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let values = (0..<(kvHeads * capacity * hd)).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let scale = 1 / Float(hd).squareRoot()
            var expected = [Double](repeating: 0, count: n * heads * hd)
            for r in 0..<n {
                let pos = start + r, first = window > 0 ? max(0, pos - window + 1) : 0
                for h in 0..<heads {
                    let kv = h / (heads / kvHeads)
                    let s = (first...pos).map { t in
                        (0..<hd).reduce(0.0) { $0 + Double(q[r * heads * hd + h * hd + $1]) * Double(keys[kv * capacity * hd + t * hd + $1]) } * Double(scale)
                    }
                    let m = s.max()!, e = s.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                    for i in 0..<hd {
                        expected[r * heads * hd + h * hd + i] = zip(first...pos, e).reduce(0.0) { $0 + $1.1 / z * Double(values[kv * capacity * hd + $1.0 * hd + i]) }
                    }
                }
            }
            for portable in [0, 1] {
                var out = [Float](repeating: .nan, count: n * heads * hd)
                sy_causal_attention(q, Int32(n), Int32(start), Int32(heads * hd), Int32(heads), Int32(kvHeads), Int32(hd),
                                    keys, values, capacity * hd, Int32(window), scale, &out, Int32(heads * hd), Int32(portable))
                let worst = zip(out, expected).map { abs(Double($0) - $1) }.max()!
                #expect(worst <= 1e-5, "hd \(hd) heads \(heads)/\(kvHeads) start \(start) n \(n) window \(window) portable \(portable): \(worst)")
            }
        }
    }
}
