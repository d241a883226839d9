import Foundation
import Testing

@testable import Switchyard

/// Q5_0 and Q4_K blocks rewritten at load into the native Q8_0 and Q4_1 (`QuantizedMatrix.loaded`,
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

    /// A Q4_K scale past the half range is not rewritten (the loader requantises that tensor).
    @Test func q4_KScalePastHalfRangeIsNotRewritten() throws {
        var (bytes, _) = try GGUFTests.blocks("Q4_K")
        bytes = Array(bytes[0..<144])
        withUnsafeBytes(of: Float16(60000).bitPattern.littleEndian) { bytes.replaceSubrange(0..<2, with: $0) }
        bytes[4] = 63  // sub-block 0's scale: 63 · 60000 is no half
        let q = bytes.withUnsafeBytes { QuantizedMatrix.loaded(type: .q4_K, rows: 1, cols: 256, bytes: $0) }
        #expect(q == nil)
        #expect(QuantizedMatrix.repackedType(.q5_1) == nil && QuantizedMatrix.repackedType(.q6_K) == nil)
    }
}
