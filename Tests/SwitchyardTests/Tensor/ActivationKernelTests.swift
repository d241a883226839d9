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
}
