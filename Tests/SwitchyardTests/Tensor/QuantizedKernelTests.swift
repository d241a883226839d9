import CKernels
import Foundation
import Testing
@testable import Switchyard

/// The Q8_0/Q4_0/Q4_1 kernels against naive references, over every path: one row (integer dot
/// products), small batches (widened tiles, small-batch kernel), large batches (widened tiles +
/// BLAS), and the SIMD integer dot against the portable one.
@Suite struct QuantizedKernelTests {
    /// Random blocks of `type` with finite scales.
    static func randomBlocks(_ type: GGMLType, rows: Int, cols: Int, rng: inout SeededRandom) -> [UInt8] {
        let size = type.blockBytes, perRow = cols / 32
        var bytes = (0..<(rows * perRow * size)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for b in 0..<(rows * perRow) {
            let halves = type == .q4_1 ? [0, 2] : [0]
            for off in halves {
                let h = HalfPrecision.floatToF16((rng.nextUnitFloat() * 2 - 1) * 0.05)
                bytes[b * size + off] = UInt8(h & 0xFF)
                bytes[b * size + off + 1] = UInt8(h >> 8)
            }
        }
        return bytes
    }

    /// y = W·x with x quantised exactly as the kernel does, in Double.
    static func reference(_ w: Matrix, _ x: [Float], m: Int) -> [Double] {
        let k = w.cols
        var out = [Double](repeating: 0, count: m * w.rows)
        for r in 0..<m {
            var xq = [Double](repeating: 0, count: k)
            for b in 0..<(k / 32) {
                let v = x[(r * k + 32 * b)..<(r * k + 32 * b + 32)]
                // Two int8 planes: x ≈ d·q + d2·q2 (q2 quantises the residual), as the kernel does.
                let amax = v.map { abs($0) }.max()!, d = amax / 127, id = d != 0 ? 1 / d : 0
                let q = v.map { Float(Int(lrintf($0 * id))) }
                let r = zip(v, q).map { $0 - d * $1 }
                let rmax = r.map { abs($0) }.max()!, d2 = rmax / 127, id2 = d2 != 0 ? 1 / d2 : 0
                for j in 0..<32 { xq[32 * b + j] = Double(d) * Double(q[j]) + Double(d2) * Double(Float(Int(lrintf(r[j] * id2)))) }
            }
            for n in 0..<w.rows {
                var s = 0.0
                for c in 0..<k { s += Double(w[n, c]) * xq[c] }
                out[r * w.rows + n] = s
            }
        }
        return out
    }

    @Test(arguments: [GGMLType.q8_0, .q4_0, .q4_1])
    func productsMatchTheReferenceOnEveryPath(type: GGMLType) {
        var rng = SeededRandom(seed: 3)
        for (n, k) in [(1, 32), (7, 96), (33, 576), (100, 64)] {
            let bytes = Self.randomBlocks(type, rows: n, cols: k, rng: &rng)
            let q = bytes.withUnsafeBytes { QuantizedMatrix(type: type, rows: n, cols: k, bytes: $0) }
            let w = q.dequantized()
            #expect(w.data == bytes.withUnsafeBytes { GGMLDequantize.floats(type, $0, count: n * k) })
            for m in [1, 2, 3, 5, 16, 17, 40] {
                let x = (0..<(m * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                var y = [Float](repeating: 0, count: m * n)
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { q.multiply(xp.baseAddress!, rows: m, into: $0.baseAddress!) } }
                // One row: the activations are quantised (compare with the quantised reference,
                // float summation order apart); more rows: widened weights, Float32 (W·x).
                let expected: [Double]
                if m == 1 { expected = Self.reference(w, x, m: m) } else {
                    expected = (0..<(m * n)).map { i in (0..<k).reduce(0.0) { $0 + Double(w[i % n, $1]) * Double(x[(i / n) * k + $1]) } }
                }
                let scale = max(1, expected.map(abs).max()!)
                let worst = zip(y, expected).map { abs(Double($0) - $1) }.max()!
                #expect(worst <= 1e-4 * scale, "\(type) n \(n) k \(k) m \(m): worst \(worst)")
            }
            // The SIMD dot equals the portable one, for one and for several activation rows.
            for rowsOfX in [1, 3, 6] {
                let x = (0..<(rowsOfX * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                var blocks = [sy_block_q8](repeating: sy_block_q8(), count: rowsOfX * k / 32)
                x.withUnsafeBufferPointer { sy_quantize_rows_q8($0.baseAddress!, Int32(rowsOfX), Int32(k), Int32(k), &blocks) }
                var simd = [Float](repeating: 0, count: rowsOfX * n)
                bytes.withUnsafeBytes { wp in
                    sy_qgemv_rows(Int32(type.rawValue), wp.baseAddress!, q.rowBytes, Int32(k), blocks, Int32(rowsOfX), 0, Int32(n), &simd, Int32(n))
                    blocks.withUnsafeBufferPointer { bp in
                        for m in 0..<rowsOfX {
                            for r in 0..<n {
                                let portable = sy_qdot_portable(Int32(type.rawValue), wp.baseAddress! + r * q.rowBytes, bp.baseAddress! + m * (k / 32), Int32(k / 32))
                                #expect(abs(portable - simd[m * n + r]) <= 1e-4 * max(1, abs(portable)), "\(type) x row \(m) weight row \(r)")
                            }
                        }
                    }
                }
            }
        }
    }
}
