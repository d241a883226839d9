import CKernels
import Foundation
import Testing

@testable import Switchyard

/// `sy_rope_apply` against the rotation written out in Swift (each product rounded, then the sum:
/// PyTorch's float32 order), bit for bit, SIMD and portable: half sizes through the 8-lane blocks
/// and the scalar tail, several rows and heads, a row stride wider than the heads.
@Suite struct RopeKernelTests {
    @Test func rotationMatchesTheReferenceBitForBit() {
        var rng = SeededRandom(seed: 13)
        for hd in [2, 6, 16, 18, 64, 128] {
            let rows = 3, heads = 2, stride = heads * hd + 5, half = hd / 2
            let x = (0..<(rows * stride)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 4 }
            let angles = (0..<(rows * half)).map { _ in rng.nextUnitFloat() * 50 }
            let cos = angles.map { Foundation.cos($0) }, sin = angles.map { Foundation.sin($0) }
            var expected = x
            for r in 0..<rows {
                for h in 0..<heads {
                    let v = r * stride + h * hd
                    for i in 0..<half {
                        let a = x[v + i], b = x[v + i + half], c = cos[r * half + i], s = sin[r * half + i]
                        let ac = a * c, bs = b * s, bc = b * c, as_ = a * s
                        expected[v + i] = ac - bs
                        expected[v + i + half] = bc + as_
                    }
                }
            }
            for portable in [false, true] {
                var out = x
                sy_rope_apply(&out, Int32(rows), Int32(heads), Int32(stride), Int32(hd), cos, sin, portable ? 1 : 0)
                #expect(
                    firstDifference(out, expected) == nil,
                    "head size \(hd) portable \(portable): first difference at \(firstDifference(out, expected) ?? -1)")
            }
        }
    }
}
