import CKernels
import Foundation
import Testing

@testable import Switchyard

/// `sy_log_softmax_at` (SIMD and portable) against a Double reference: a vocabulary-sized row off
/// the SIMD width, tiny rows, logits spread over 200 (terms that underflow), every index kind.
@Suite struct LogSoftmaxKernelTests {
    @Test func matchesTheReference() {
        var rng = SeededRandom(seed: 11)
        let rows: [[Float]] = [
            (0..<49157).map { _ in rng.nextUnitFloat() * 30 - 15 },
            (0..<1000).map { _ in rng.nextUnitFloat() * 200 - 100 },
            [3], [1, 2, 3, 4, 5, 6, 7], (0..<9).map { Float($0) }, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        ]
        for x in rows {
            let m = Double(x.max()!)
            let logTotal = Foundation.log(x.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) })
            for index in Set([0, x.count - 1, x.count / 2, x.firstIndex(of: x.max()!)!, x.firstIndex(of: x.min()!)!]) {
                let expected = Double(x[index]) - m - logTotal
                for portable in [false, true] {
                    let got = sy_log_softmax_at(x, Int32(x.count), Int32(index), portable ? 1 : 0)
                    #expect(
                        abs(Double(got) - expected) <= 1e-5 + 1e-6 * abs(expected),
                        "\(x.count) logits, index \(index), portable \(portable): \(got) vs \(expected)")
                }
            }
        }
    }
}
