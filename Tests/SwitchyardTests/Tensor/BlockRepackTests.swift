import Foundation
import Testing

@testable import Switchyard

/// Blocks of types without a kernel rewritten at load into native ones (Q5_0 → Q8_0, Q4_K → Q4_1, …, Q6_K → F16) (`QuantizedMatrix.loaded`,
/// CKernels/repack.c), checked against gguf-py's dequantisation of the same random blocks
/// (reference/ggml-blocks.json, Scripts/fixtures/gguf_fixtures.py).
@Suite struct BlockRepackTests {
    static func matrix(_ name: String, _ type: GGMLType, rowOrder: [Int]? = nil) throws -> (QuantizedMatrix?, [Float]) {
        let (bytes, values) = try GGUFTests.blocks(name)
        let cols = type.blockElements == 256 ? 256 : 32
        let q = bytes.withUnsafeBytes {
            QuantizedMatrix.loaded(type: type, rows: values.count / cols, cols: cols, bytes: $0, rowOrder: rowOrder)
        }
        return (q, values)
    }

    /// Q5_0 → Q8_0 is exact: every value gguf-py dequantises, bit for bit, in any row order.
    @Test func q5_0BecomesQ8_0Exactly() throws {
        let (q, values) = try Self.matrix("Q5_0", .q5_0)
        #expect(q?.type == .q8_0)
        #expect(q?.dequantized().data == values)
        let (p, _) = try Self.matrix("Q5_0", .q5_0, rowOrder: [2, 0, 1])
        let rows = (0..<3).map { Array(values[32 * $0..<32 * $0 + 32]) }
        #expect(p?.dequantized().data == rows[2] + rows[0] + rows[1])
    }

    /// IQ4_NL → Q8_0 is exact (the table's values as signed bytes); IQ4_XS → Q8_0 moves a value by
    /// at most 2^-11 of its 32-value sub-block's largest |w| (d·(ls − 32) rounded to half).
    @Test func iq4TypesBecomeQ8_0() throws {
        let (nl, nlValues) = try Self.matrix("IQ4_NL", .iq4_NL)
        #expect(nl?.type == .q8_0 && nl?.hasBlockOffsets == false)
        #expect(nl?.dequantized().data == nlValues)
        let (xs, values) = try Self.matrix("IQ4_XS", .iq4_XS)
        #expect(xs?.type == .q8_0)
        guard let got = xs?.dequantized().data else { return }
        for b in 0..<values.count / 32 {
            let block = values[32 * b..<32 * b + 32], largest = block.map(abs).max()!
            for i in block.indices {
                #expect(abs(got[i] - values[i]) <= largest / 2048, "IQ4_XS value \(i): \(got[i]) vs \(values[i])")
            }
        }
    }

    /// Q6_K → F16: every value gguf-py dequantises, rounded to half (nearest): within 2^-11 of
    /// itself, or 2^-25 absolute below the normal halves.
    @Test func q6_KBecomesF16WithinHalfRounding() throws {
        let (q, values) = try Self.matrix("Q6_K", .q6_K)
        #expect(q?.type == .f16 && q?.hasBlockOffsets == false)
        guard let got = q?.dequantized().data else { return }
        #expect(got.count == values.count)
        let outside = values.indices.filter { abs(got[$0] - values[$0]) > max(abs(values[$0]) / 2048, 0x1p-25) }
        #expect(
            outside.isEmpty,
            "\(outside.count) values off, first \(outside.first.map { "\(got[$0]) vs \(values[$0])" } ?? "")")
        #expect(zip(got, values).contains { $0 != $1 }, "F16 rounding changed no value: is Q6_K still read as F32?")
    }

    /// Q4_K → Q4_1: the same nibbles; the sub-block scale and minimum rounded to half move each
    /// value by at most (15·|d·sc| + |dmin·m|)·2^-11, which is at most 2^-10 of its super-block's
    /// largest |w|; ~100× closer (NMSE) than requantising the dequantised values to Q8_0.
    @Test func q4_KBecomesQ4_1WithinHalfRounding() throws {
        let (q, values) = try Self.matrix("Q4_K", .q4_K)
        #expect(q?.type == .q4_1)
        guard let got = q?.dequantized().data else { return }
        for b in 0..<values.count / 256 {
            let block = values[256 * b..<256 * b + 256]
            let largest = block.map(abs).max()!
            for i in block.indices {
                #expect(abs(got[i] - values[i]) <= largest * 2 / 2048, "value \(i): \(got[i]) vs \(values[i])")
            }
        }
        func nmse(_ a: [Float]) -> Double {
            zip(a, values).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
                / values.reduce(0.0) { $0 + Double($1) * Double($1) }
        }
        let requantised = QuantizedMatrix.q8_0(Matrix(rows: values.count / 256, cols: 256, data: values))
        let repacked = nmse(got), q8 = nmse(requantised.dequantized().data)
        #expect(repacked > 0 && repacked * 100 < q8, "NMSE repacked \(repacked), requantised to Q8_0 \(q8)")
        let (p, _) = try Self.matrix("Q4_K", .q4_K, rowOrder: [1, 2, 0])
        #expect(p?.dequantized().data == Array(got[256..<768] + got[0..<256]))
    }

    /// Q5_1 → Q8_0 plus a Float32 offset per block: the same values up to Float32 rounding;
    /// Q5_K → the same with d·sc rounded to half (at most 2^-10 of the super-block's largest |w|).
    @Test(arguments: [("Q5_1", GGMLType.q5_1), ("Q5_K", .q5_K)])
    func fiveBitTypesBecomeQ8_0WithOffsets(_ name: String, _ type: GGMLType) throws {
        let (q, values) = try Self.matrix(name, type)
        #expect(q?.type == .q8_0 && q?.hasBlockOffsets == true)
        guard let q else { return }
        let got = q.dequantized().data, width = type.blockElements == 256 ? 256 : 32
        for b in 0..<values.count / width {
            let block = values[width * b..<width * (b + 1)], largest = block.map(abs).max()!
            let bound = type == .q5_1 ? largest * 1e-6 : largest / 1024
            for i in block.indices {
                #expect(abs(got[i] - values[i]) <= bound, "\(name) value \(i): \(got[i]) vs \(values[i])")
            }
        }
        var row = [Float](repeating: 0, count: q.cols)
        row.withUnsafeMutableBufferPointer { q.row(1, into: $0.baseAddress!) }
        #expect(row == Array(got[q.cols..<2 * q.cols]))
    }

    /// Products of a matrix with offsets — one row, small batches (8-bit dot products where the
    /// CPU has them, which add the offsets themselves), prefill-sized ones, and fused beside a
    /// plain Q8_0 matrix — equal the product with its widened values (Float32 reference, Double
    /// sums) within the kernels' int16-activation error.
    @Test func productsIncludeTheOffsets() throws {
        var rng = SeededRandom(seed: 5)
        let rows = 13, cols = 256  // an odd count: the 8-bit kernel's last row alone
        // Q5_1 blocks with finite half d and m, the rest random: rows × cols / 32 blocks.
        var bytes: [UInt8] = []
        for _ in 0..<(rows * cols / 32) {
            var block = (0..<24).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            withUnsafeBytes(of: Float16(0.01 + 0.02 * rng.nextUnitFloat()).bitPattern.littleEndian) {
                block.replaceSubrange(0..<2, with: $0)
            }
            withUnsafeBytes(of: Float16(-0.3 + 0.2 * rng.nextUnitFloat()).bitPattern.littleEndian) {
                block.replaceSubrange(2..<4, with: $0)
            }
            bytes += block
        }
        let q = try #require(
            bytes.withUnsafeBytes { QuantizedMatrix.loaded(type: .q5_1, rows: rows, cols: cols, bytes: $0) })
        let plain = QuantizedMatrix.q8_0(
            Matrix(rows: rows, cols: cols, data: (0..<rows * cols).map { _ in rng.nextUnitFloat() - 0.5 }))
        let w = q.dequantized(), v = plain.dequantized()
        for m in [1, 3, 8, 20, 70] {
            let x = (0..<m * cols).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let (y, y2, z) = aloneAndFused(q, plain, x, rows: m)
            for i in 0..<m {
                for n in 0..<rows {
                    var e = 0.0, f = 0.0, scale = 0.0
                    for k in 0..<cols {
                        e += Double(x[i * cols + k]) * Double(w.data[n * cols + k])
                        f += Double(x[i * cols + k]) * Double(v.data[n * cols + k])
                        scale += abs(Double(x[i * cols + k]) * Double(w.data[n * cols + k]))
                    }
                    let tolerance = 1e-3 * scale + 1e-5
                    #expect(
                        abs(Double(y[i * rows + n]) - e) <= tolerance,
                        "m \(m) row \(i) col \(n): \(y[i * rows + n]) vs \(e)")
                    #expect(abs(Double(y2[i * rows + n]) - e) <= tolerance, "fused, m \(m) row \(i) col \(n)")
                    #expect(abs(Double(z[i * rows + n]) - f) <= 1e-3 * scale + 1e-3, "fused plain, m \(m)")
                }
            }
        }
    }

    /// A Q4_K scale past the half range is not rewritten (the loader requantises that tensor).
    @Test func q4_KScalePastHalfRangeIsNotRewritten() throws {
        var (bytes, _) = try GGUFTests.blocks("Q4_K")
        bytes = Array(bytes[0..<144])
        withUnsafeBytes(of: Float16(60000).bitPattern.littleEndian) { bytes.replaceSubrange(0..<2, with: $0) }
        bytes[4] = 63  // sub-block 0's scale: 63 · 60000 is no half
        let q = bytes.withUnsafeBytes { QuantizedMatrix.loaded(type: .q4_K, rows: 1, cols: 256, bytes: $0) }
        #expect(q == nil)
        for type in [GGMLType.q2_K, .q3_K, .q8_0] { #expect(QuantizedMatrix.repackedType(type) == nil) }
    }

    /// A Q6_K value past the half range is not rewritten as F16 (the loader requantises that
    /// tensor to Q8_0).
    @Test func q6_KValuePastHalfRangeIsNotRewritten() throws {
        var (bytes, _) = try GGUFTests.blocks("Q6_K")
        bytes = Array(bytes[0..<210])
        withUnsafeBytes(of: Float16(60000).bitPattern.littleEndian) { bytes.replaceSubrange(208..<210, with: $0) }
        bytes[192] = 100  // the first 16 values' scale: 100 · 60000 · (q − 32) is no half unless q = 32
        bytes[0] = 0  // value 0: q = 0, −32 · 100 · 60000
        let q = bytes.withUnsafeBytes { QuantizedMatrix.loaded(type: .q6_K, rows: 1, cols: 256, bytes: $0) }
        #expect(q == nil)
    }
}
