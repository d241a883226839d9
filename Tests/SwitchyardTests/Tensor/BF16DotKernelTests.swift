import CKernels
import Foundation
import Testing

@testable import Switchyard

/// The bfloat16 dot-product path for BF16 weights (bf16dot.c): the activations' rounding against
/// the library's own bfloat16 conversion, bit for bit on both paths; the AVX-512 BF16 kernel
/// against products computed in Double from the same rounded values, over every remainder
/// (1…17 rows, odd weight rows, several widths); and `QuantizedMatrix.multiply` and `fused`
/// taking it only when asked (`roundsActivationsToBF16`), batches and prefill alike. On a CPU
/// without AVX-512 BF16 the fast path is the portable loop and the same checks hold.
@Suite struct BF16DotKernelTests {
    /// Floats of every kind: ordinary values of many magnitudes, exact rounding ties (odd and even),
    /// the largest finite value (rounds to infinity), infinities, NaNs, zeros and subnormals.
    static func awkwardFloats(_ rng: inout SeededRandom) -> [Float] {
        var v: [Float] = [
            0, -0, 1, -1, .infinity, -.infinity, .nan, Float(bitPattern: 0x7FA0_0001), .greatestFiniteMagnitude,
            -.greatestFiniteMagnitude, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
            Float(bitPattern: 0x3F80_7FFF), Float(bitPattern: 0x3F80_8001), Float(bitPattern: 0x0000_0001),
            Float(bitPattern: 0x8040_0000), .leastNormalMagnitude, -.leastNormalMagnitude
        ]
        while v.count < 32 * 9 + 5 {
            let e = Float(Int(rng.next() % 60) - 30)
            v.append((rng.nextUnitFloat() * 2 - 1) * powf(2, e))
        }
        return v
    }

    @Test func roundingMatchesTheLibraryConversionOnBothPaths() {
        var rng = SeededRandom(seed: 11)
        let x = Self.awkwardFloats(&rng)
        for k in [x.count, 32, 33, 64] {  // a tail after whole vectors, exact vectors
            let m = x.count / k
            var fast = [UInt16](repeating: 0, count: m * k), portable = fast
            sy_bf16_round_rows(x, Int32(m), Int32(k), Int32(k), &fast, 0)
            sy_bf16_round_rows(x, Int32(m), Int32(k), Int32(k), &portable, 1)
            #expect(fast == portable, "k \(k)")
            for i in 0..<(m * k) {
                let v = x[i]
                // Subnormal inputs are zeros of their sign (as vcvtne2ps2bf16 treats them).
                let expected: UInt16 =
                    v.isSubnormal ? (v.sign == .minus ? 0x8000 : 0) : HalfPrecision.floatToBF16(v)
                #expect(portable[i] == expected, "\(v) (0x\(String(v.bitPattern, radix: 16)))")
            }
        }
    }

    /// Y = W·Xbᵀ in Double from the bfloat16 values themselves.
    static func reference(_ w: [UInt16], _ xb: [UInt16], n: Int, m: Int, k: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        for r in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for c in 0..<k {
                    s +=
                        Double(HalfPrecision.bf16ToFloat(w[j * k + c]))
                        * Double(HalfPrecision.bf16ToFloat(xb[r * k + c]))
                }
                out[r * n + j] = s
            }
        }
        return out
    }

    @Test func kernelMatchesTheReferenceOnEveryRemainder() {
        var rng = SeededRandom(seed: 5)
        for (n, k) in [(1, 32), (2, 64), (7, 96), (33, 576)] {
            let w = (0..<(n * k)).map { _ in HalfPrecision.floatToBF16((rng.nextUnitFloat() * 2 - 1) * 0.5) }
            for m in [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17] {
                let x = (0..<(m * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                var xb = [UInt16](repeating: 0, count: m * k)
                sy_bf16_round_rows(x, Int32(m), Int32(k), Int32(k), &xb, 0)
                let expected = Self.reference(w, xb, n: n, m: m, k: k)
                let scale = max(1, expected.map(abs).max()!)
                for portable: Int32 in [0, 1] {
                    // Outputs in a wider row (ldy n + 3) whose spare columns must stay untouched.
                    let ldy = n + 3
                    var y = [Float](repeating: 99, count: m * ldy)
                    w.withUnsafeBytes { wp in
                        sy_bf16dot_rows(
                            wp.baseAddress!, 2 * k, Int32(k), xb, Int32(m), 0, Int32(n), &y, Int32(ldy), portable)
                    }
                    var worst = 0.0
                    for r in 0..<m {
                        for j in 0..<n { worst = max(worst, abs(Double(y[r * ldy + j]) - expected[r * n + j])) }
                        #expect(y[(r * ldy + n)..<((r + 1) * ldy)].allSatisfy { $0 == 99 }, "spare columns, row \(r)")
                    }
                    #expect(worst <= 1e-5 * scale, "n \(n) k \(k) m \(m) portable \(portable): worst \(worst)")
                }
                // A range of rows that starts past 0 and ends on an odd row.
                if n >= 7 {
                    var y = [Float](repeating: 99, count: m * n)
                    w.withUnsafeBytes { wp in
                        sy_bf16dot_rows(wp.baseAddress!, 2 * k, Int32(k), xb, Int32(m), 2, 5, &y, Int32(n), 0)
                    }
                    for r in 0..<m {
                        for j in 0..<n {
                            let v = Double(y[r * n + j])
                            if (2..<5).contains(j) {
                                #expect(abs(v - expected[r * n + j]) <= 1e-5 * scale, "row range, m \(m) j \(j)")
                            } else {
                                #expect(v == 99, "outside the row range, m \(m) j \(j)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// `multiply` and `fused` on BF16 weights: rounded activations only with
    /// `roundsActivationsToBF16` and more than one row (and AVX-512 BF16); exact otherwise.
    @Test func matrixTakesTheDotProductsOnlyWhenAsked() {
        var rng = SeededRandom(seed: 9)
        let (n, k) = (40, 96)
        let w = (0..<(n * k)).map { _ in HalfPrecision.floatToBF16((rng.nextUnitFloat() * 2 - 1) * 0.5) }
        let q = w.withUnsafeBytes { QuantizedMatrix(type: .bf16, rows: n, cols: k, bytes: $0) }
        let q2 = w.withUnsafeBytes { QuantizedMatrix(type: .bf16, rows: n, cols: k, bytes: $0) }
        #expect(!q.roundsActivationsToBF16, "exact unless asked")
        let dot = QuantizedMatrix.bf16DotProductsAvailable
        for m in [1, 3, 8, 17, 70] {  // one row, batches, prefill (past 16 rows and past 64)
            let x = (0..<(m * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
            var xb = [UInt16](repeating: 0, count: m * k)
            sy_bf16_round_rows(x, Int32(m), Int32(k), Int32(k), &xb, 1)
            let rounded = Self.reference(w, xb, n: n, m: m, k: k)
            let wide = q.dequantized()
            var exactOut = [Double](repeating: 0, count: m * n)
            for r in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for c in 0..<k { s += Double(wide[j, c]) * Double(x[r * k + c]) }
                    exactOut[r * n + j] = s
                }
            }
            for asked in [false, true] {
                q.roundsActivationsToBF16 = asked
                q2.roundsActivationsToBF16 = asked
                let (y, f0, f1) = aloneAndFused(q, q2, x, rows: m)
                let expected = asked && dot && m > 1 ? rounded : exactOut
                let other = asked && dot && m > 1 ? exactOut : rounded
                let scale = max(1, expected.map(abs).max()!)
                for (label, out) in [("multiply", y), ("fused 0", f0), ("fused 1", f1)] {
                    let worst = maxAbsDifference(out, expected)
                    #expect(worst <= 1e-5 * scale, "\(label) m \(m) asked \(asked): worst \(worst)")
                    // The two roundings are told apart: the check above could fail.
                    let apart = maxAbsDifference(out, other)
                    #expect(apart > 1e-4 * scale, "\(label) m \(m) asked \(asked): both roundings agree (\(apart))")
                }
            }
        }
    }
}
