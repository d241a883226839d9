import CKernels
import Foundation
import Testing

@testable import Switchyard

/// `sy_silu_multiply` (SwiGLU) against a Double reference, SIMD and portable: values from 1e-8 to
/// ±200 (where exp(-g) overflows Float for g < -88.7), signed zeros, counts off the SIMD width.
@Suite struct ActivationKernelTests {
    @Test func siluMultiplyMatchesTheReference() {
        var rng = SeededRandom(seed: 5)
        var gate: [Float] = [0, -0, 1, -1, 88, -88, 89, -89, 100, -100, 200, -200, 1e-8, -1e-8, 20, -20]
        for _ in 0..<1000 {
            gate.append((rng.nextUnitFloat() * 2 - 1) * Foundation.pow(10, rng.nextUnitFloat() * 3 - 1))
        }
        let up = gate.map { _ in rng.nextUnitFloat() * 4 - 2 }
        for count in [gate.count, 13, 8, 3] {
            let expected = (0..<count).map { i -> Double in
                let g = Double(gate[i])
                return g / (1 + Foundation.exp(-g)) * Double(up[i])
            }
            for portable in [false, true] {
                var out = Array(gate[0..<count])
                sy_silu_multiply(&out, up, Int32(count), portable ? 1 : 0)
                for i in 0..<count {
                    let error = abs(Double(out[i]) - expected[i])
                    #expect(
                        error <= 1e-6 * abs(expected[i]) + 1e-30,
                        "g \(gate[i]) up \(up[i]) portable \(portable): \(out[i]) vs \(expected[i])")
                }
            }
        }
    }

    /// Calls of 4,096 values or more are split over the thread pool (SY_ELEMENTWISE_PARALLEL_MIN):
    /// the result must be the one of serial calls over the same values, bit for bit, including a
    /// count that is not a multiple of the 8-lane width (the tail stays in the last part).
    @Test func pooledCallEqualsSerialCalls() {
        var rng = SeededRandom(seed: 6)
        for count in [4096, 8 * 1536, 12_291] {
            let gate = (0..<count).map { _ in (rng.nextUnitFloat() * 2 - 1) * 12 }
            let up = (0..<count).map { _ in rng.nextUnitFloat() * 4 - 2 }
            for portable in [false, true] {
                var pooled = gate
                sy_silu_multiply(&pooled, up, Int32(count), portable ? 1 : 0)
                // Pieces of 2,048 (a multiple of 8, below the split threshold): each one serial.
                var serial = gate
                serial.withUnsafeMutableBufferPointer { g in
                    up.withUnsafeBufferPointer { u in
                        for start in stride(from: 0, to: count, by: 2048) {
                            let n = Swift.min(2048, count - start)
                            sy_silu_multiply(g.baseAddress! + start, u.baseAddress! + start, Int32(n), portable ? 1 : 0)
                        }
                    }
                }
                #expect(
                    firstDifference(pooled, serial) == nil,
                    "count \(count) portable \(portable): first difference at \(firstDifference(pooled, serial) ?? -1)")
            }
        }
    }
}
