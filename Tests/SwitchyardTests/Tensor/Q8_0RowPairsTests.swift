import CKernels
import Foundation
import Testing

@testable import Switchyard

/// Q8_0 kept in row pairs (`SY_Q8_0_PAIRS`, q8pairs.c): the layout gives back every row exactly,
/// every path that reads it (widening, the non-finite scan, the Float32 products) gives the bits it
/// gives on the Q8_0 rows, and the two pair kernels give the Q8_0 kernels' values: the batched one
/// bit for bit (sy_q8x8_rows, both with 8-bit dot products and portable), the one-row one within
/// rounding (sy_qgemv_rows). Row ranges start and end on odd rows (the paths off the kernels), and
/// on pairs with tails of 8, 4 and 2 rows (the kernel's steps).
@Suite struct Q8_0RowPairsTests {
    /// `rows` Q8_0 rows of `bytes` as pairs.
    static func pairs(_ bytes: [UInt8], rows: Int, cols: Int) -> [UInt8] {
        let rowBytes = cols / 32 * 34
        var out = [UInt8](repeating: 0, count: bytes.count)
        bytes.withUnsafeBytes { b in
            out.withUnsafeMutableBytes { o in
                for h in 0..<rows / 2 {
                    sy_q8_0_pack_pair(
                        b.baseAddress! + 2 * h * rowBytes, b.baseAddress! + (2 * h + 1) * rowBytes, Int32(cols),
                        o.baseAddress! + 2 * h * rowBytes)
                }
            }
        }
        return out
    }

    static let pairsType = Int32(SY_Q8_0_PAIRS), q8 = Int32(GGMLType.q8_0.rawValue)

    @Test func theLayoutGivesBackEveryRowAndEveryReaderItsBits() {
        var rng = SeededRandom(seed: 41)
        for (n, k) in [(2, 32), (10, 96), (36, 576)] {
            var bytes = QuantizedKernelTests.randomBytes(.q8_0, rows: n, cols: k, rng: &rng)
            let rowBytes = k / 32 * 34
            let packed = Self.pairs(bytes, rows: n, cols: k)
            #expect(packed != bytes)
            packed.withUnsafeBytes { p in
                var row = [UInt8](repeating: 0, count: rowBytes)
                for r in 0..<n {
                    sy_q8_0_pairs_row(p.baseAddress!, rowBytes, Int32(k), Int32(r), &row)
                    #expect(row == Array(bytes[(r * rowBytes)..<((r + 1) * rowBytes)]), "n \(n) k \(k) row \(r)")
                }
            }
            // Widening rows 1..<n-1 (odd first row), and the Float32 products of 3 rows (the pairs'
            // fallback, without memory for the 8-bit kernel's activations, is the portable loop).
            let x = (0..<(3 * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
            func read(_ type: Int32, _ w: [UInt8]) -> ([Float], [Float], Int32) {
                var wide = [Float](repeating: .nan, count: (n - 2) * k), y = [Float](repeating: .nan, count: 3 * n)
                let status = w.withUnsafeBytes { wp in
                    sy_dequantize_rows(type, wp.baseAddress!, rowBytes, Int32(k), 1, Int32(n - 1), &wide)
                        + sy_wgemm_rows(
                            type, wp.baseAddress!, rowBytes, Int32(k), x, 3, Int32(k), 1, Int32(n - 1), &y, Int32(n), 1)
                }
                return (wide, y, status)
            }
            let (wide, y, status) = read(Self.q8, bytes), (pairWide, pairY, pairStatus) = read(Self.pairsType, packed)
            #expect(status == 0 && pairStatus == 0)
            #expect(pairWide == wide, "n \(n) k \(k): widened rows")
            #expect(zip(pairY, y).allSatisfy { $0.bitPattern == $1.bitPattern }, "n \(n) k \(k): Float32 products")
            // A non-finite scale in the second row of a pair is found where the Q8_0 rows have it.
            let at = (n - 1) * rowBytes + 34 * (k / 32 - 1)
            bytes[at] = 0x00
            bytes[at + 1] = 0x7C  // +infinity
            let bad = Self.pairs(bytes, rows: n, cols: k)
            let found = bytes.withUnsafeBytes {
                sy_weights_first_nonfinite(Self.q8, $0.baseAddress!, rowBytes, Int32(k), Int32(n))
            }
            let pairFound = bad.withUnsafeBytes {
                sy_weights_first_nonfinite(Self.pairsType, $0.baseAddress!, rowBytes, Int32(k), Int32(n))
            }
            #expect(found == Int64((n - 1) * k + k - 32) && pairFound == found)
        }
    }

    @Test func theKernelsGiveTheQ8_0KernelsValues() {
        var rng = SeededRandom(seed: 43)
        for (n, k) in [(2, 32), (14, 96), (36, 576), (64, 64)] {
            let bytes = QuantizedKernelTests.randomBytes(.q8_0, rows: n, cols: k, rng: &rng)
            let packed = Self.pairs(bytes, rows: n, cols: k), rowBytes = k / 32 * 34
            for m in [1, 2, 7, 8, 9, 19] {
                let x = (0..<(m * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                let blocks = QuantizedKernelTests.batchedActivations(x, rows: m, cols: k)
                // Ranges: all rows, from an even row to a tail of 8, 4 or 2 rows, odd ends.
                for (lo, hi) in [(0, n), (2, n), (0, n - 4), (0, n - 2), (1, n - 1)] where lo < hi {
                    for portable in [Int32(0), 1] {
                        var y = [Float](repeating: .nan, count: m * n), z = y
                        bytes.withUnsafeBytes { wp in
                            sy_q8x8_rows(
                                Self.q8, wp.baseAddress!, rowBytes, Int32(k), blocks, Int32(m), Int32(lo), Int32(hi),
                                &y,
                                Int32(n), portable, nil)
                        }
                        packed.withUnsafeBytes { wp in
                            sy_q8_0_pairs_rows(
                                wp.baseAddress!, rowBytes, Int32(k), blocks, Int32(m), Int32(lo), Int32(hi), &z,
                                Int32(n),
                                portable)
                        }
                        // +0 and −0 apart (the portable Q8_0 loop adds a zero offset term), the same bits.
                        let same = zip(y, z).allSatisfy { $0.bitPattern == $1.bitPattern || ($0 == 0 && $1 == 0) }
                        #expect(
                            same,
                            "n \(n) k \(k) m \(m) rows \(lo)..<\(hi) portable \(portable): \(firstDifference(y, z))")
                    }
                }
                // One row at a time (int16 activations).
                var q16 = [sy_block_q16](repeating: sy_block_q16(), count: m * k / 32)
                x.withUnsafeBufferPointer { sy_quantize_rows_q16($0.baseAddress!, Int32(m), Int32(k), Int32(k), &q16) }
                var y = [Float](repeating: .nan, count: m * n)
                bytes.withUnsafeBytes {
                    sy_qgemv_rows(
                        Self.q8, $0.baseAddress!, rowBytes, Int32(k), q16, Int32(m), 0, Int32(n), &y, Int32(n), nil)
                }
                for portable in [Int32(0), 1] {
                    for (lo, hi) in [(0, n), (1, n - 1)] {
                        var z = [Float](repeating: .nan, count: m * n)
                        packed.withUnsafeBytes {
                            sy_q8_0_pairs_gemv(
                                $0.baseAddress!, rowBytes, Int32(k), q16, Int32(m), Int32(lo), Int32(hi), &z, Int32(n),
                                portable)
                        }
                        for row in 0..<m {
                            for col in 0..<n {
                                let (a, b) = (y[row * n + col], z[row * n + col])
                                if col < lo || col >= hi {
                                    #expect(b.isNaN, "wrote outside its rows")
                                } else {
                                    #expect(
                                        abs(a - b) <= 1e-5 * max(1, abs(a)), "one row: n \(n) k \(k) m \(m) col \(col)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Weights of −128 and 127 (flipped to 0 and 255) against activations at the block maximum:
    /// neither pair kernel overflows.
    @Test func extremeBlocksDoNotOverflow() {
        let k = 64, n = 4
        for weight: UInt8 in [0x80, 0x7F] {
            var bytes = [UInt8](repeating: weight, count: n * k / 32 * 34)
            for b in 0..<(n * k / 32) {
                bytes[34 * b] = 0x00
                bytes[34 * b + 1] = 0x3C  // d = 1
            }
            let packed = Self.pairs(bytes, rows: n, cols: k), q = Float(Int8(bitPattern: weight))
            for m in [1, 8] {
                let x = [Float](repeating: 1000, count: m * k)
                var y = [Float](repeating: 0, count: m * n), z = y
                packed.withUnsafeBytes { wp in
                    sy_q8_0_pairs_rows(
                        wp.baseAddress!, k / 32 * 34, Int32(k),
                        QuantizedKernelTests.batchedActivations(x, rows: m, cols: k), Int32(m), 0,
                        Int32(n), &y, Int32(n), 0)
                    var q16 = [sy_block_q16](repeating: sy_block_q16(), count: m * k / 32)
                    sy_quantize_rows_q16(x, Int32(m), Int32(k), Int32(k), &q16)
                    sy_q8_0_pairs_gemv(
                        wp.baseAddress!, k / 32 * 34, Int32(k), q16, Int32(m), 0, Int32(n), &z, Int32(n), 0)
                }
                let expected = q * 1000 * Float(k)
                #expect(y.allSatisfy { abs($0 - expected) <= 1e-5 * abs(expected) }, "batched, weight \(q): \(y[0])")
                #expect(z.allSatisfy { abs($0 - expected) <= 1e-5 * abs(expected) }, "one row, weight \(q): \(z[0])")
            }
        }
    }

    /// QuantizedMatrix keeps Q8_0 in pairs where the CPU has VNNI and the rows are even, gives
    /// ggml's bytes back through `withBytes`, and fuses a paired matrix with an unpaired one.
    @Test func matricesKeepPairsWhereTheKernelsRunAndGiveGGMLBytesBack() {
        var rng = SeededRandom(seed: 47)
        let k = 64
        let even = QuantizedKernelTests.randomBytes(.q8_0, rows: 6, cols: k, rng: &rng)
        let odd = QuantizedKernelTests.randomBytes(.q8_0, rows: 5, cols: k, rng: &rng)
        let a = even.withUnsafeBytes { QuantizedMatrix(type: .q8_0, rows: 6, cols: k, bytes: $0) }
        let b = odd.withUnsafeBytes { QuantizedMatrix(type: .q8_0, rows: 5, cols: k, bytes: $0) }
        #expect(a.withBytes { Array($0) } == even && b.withBytes { Array($0) } == odd)
        let vnni = sy_kernels_have_vnni() != 0
        #expect(QuantizedMatrix.keepsRowPairs(.q8_0, rows: 6, hasOffsets: false) == vnni)
        #expect(!QuantizedMatrix.keepsRowPairs(.q8_0, rows: 5, hasOffsets: false))
        #expect(!QuantizedMatrix.keepsRowPairs(.q8_0, rows: 6, hasOffsets: true))
        #expect(!QuantizedMatrix.keepsRowPairs(.q4_1, rows: 6, hasOffsets: false))
        #expect(QuantizedMatrix.canFuse([a, b]))
        // Fused, a paired and an unpaired matrix give what each gives alone.
        let x = (0..<(3 * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        for m in [1, 3] {
            let outputs = [a, b].map { UnsafeMutablePointer<Float>.allocate(capacity: m * $0.rows) }
            defer { outputs.forEach { $0.deallocate() } }
            x.withUnsafeBufferPointer { QuantizedMatrix.fused([a, b], $0.baseAddress!, rows: m, into: outputs) }
            for (w, o) in zip([a, b], outputs) {
                var alone = [Float](repeating: .nan, count: m * w.rows)
                x.withUnsafeBufferPointer { w.multiply($0.baseAddress!, rows: m, into: &alone) }
                #expect(Array(UnsafeBufferPointer(start: o, count: m * w.rows)) == alone, "\(w.rows) rows, m \(m)")
            }
        }
        #expect(a.dequantized().data == even.withUnsafeBytes { GGMLDequantize.floats(.q8_0, $0, count: 6 * k) })
    }
}
