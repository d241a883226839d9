import CKernels
import Foundation
import Testing

@testable import Switchyard

/// The kernels for weights kept in their storage type (Q8_0, Q4_0, Q4_1, F16, BF16) against naive
/// references, over every path: one row (integer dot products on int16 activations; float for
/// the half types), several rows of the integer types on CPUs with VNNI (8-bit dot products on
/// activations split into two bytes, 8 rows per group), small batches elsewhere (blocks widened in
/// registers, 8/4/2/1-row groups), large batches elsewhere (widened tiles + BLAS), and each SIMD
/// kernel against its portable twin.
@Suite struct QuantizedKernelTests {
    static let types: [GGMLType] = [.q8_0, .q4_0, .q4_1, .f16, .bf16]

    /// Random weights of `type` with finite values (scales of the block formats in ±0.05).
    static func randomBytes(_ type: GGMLType, rows: Int, cols: Int, rng: inout SeededRandom) -> [UInt8] {
        if type == .f16 || type == .bf16 {
            return (0..<(rows * cols)).flatMap { _ -> [UInt8] in
                let v = (rng.nextUnitFloat() * 2 - 1) * 0.5
                let h = type == .f16 ? HalfPrecision.floatToF16(v) : HalfPrecision.floatToBF16(v)
                return [UInt8(h & 0xFF), UInt8(h >> 8)]
            }
        }
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

    /// x as the integer kernels see it: per block of 32, d = max|x|/`levels`, q = round(x/d);
    /// 32767 for the one-row kernel, 32512 (127·256, split into two bytes) for the batched one.
    static func quantisedActivations(_ x: ArraySlice<Float>, levels: Float) -> [Double] {
        var out: [Double] = []
        for b in stride(from: x.startIndex, to: x.endIndex, by: 32) {
            let v = x[b..<(b + 32)]
            let amax = v.map { abs($0) }.max()!, d = amax / levels, id = d != 0 ? 1 / d : 0
            out += v.map { Double(d) * Double(Float(Int(lrintf($0 * id)))) }
        }
        return out
    }

    /// `rows` rows of `cols` values as the batched 8-bit kernel reads them: (rows + 7) / 8 groups of
    /// cols/32 blocks (sy_quantize_rows_q8x8).
    static func batchedActivations(_ x: [Float], rows: Int, cols: Int) -> [sy_block_q8x8] {
        let groups = (rows + 7) / 8
        var blocks = [sy_block_q8x8](repeating: sy_block_q8x8(), count: groups * cols / 32)
        x.withUnsafeBufferPointer { xp in
            blocks.withUnsafeMutableBufferPointer { bp in
                for g in 0..<groups {
                    sy_quantize_rows_q8x8(
                        xp.baseAddress!, Int32(rows), Int32(cols), Int32(8 * g), Int32(cols),
                        bp.baseAddress! + g * cols / 32)
                }
            }
        }
        return blocks
    }

    /// How the product's activations are quantised for `m` rows of an integer `type`: 32767
    /// levels for one row, 32512 for more on a CPU with 8-bit dot products (sy_kernels_have_vnni),
    /// else not at all (weights widened to Float32).
    static func activationLevels(_ type: GGMLType, m: Int) -> Float? {
        guard QuantizedMatrix.integerTypes.contains(type) else { return nil }
        if m == 1 { return 32767 }
        return sy_kernels_have_vnni() != 0 ? 32512 : nil
    }

    /// y = W·x in Double, with x quantised to `levels` per block as the integer kernels do.
    static func reference(_ w: Matrix, _ x: [Float], m: Int, levels: Float?) -> [Double] {
        let k = w.cols
        var out = [Double](repeating: 0, count: m * w.rows)
        for r in 0..<m {
            let row = x[(r * k)..<((r + 1) * k)]
            let xs = levels.map { quantisedActivations(row, levels: $0) } ?? row.map { Double($0) }
            for n in 0..<w.rows {
                var s = 0.0
                for c in 0..<k { s += Double(w[n, c]) * xs[c] }
                out[r * w.rows + n] = s
            }
        }
        return out
    }

    @Test(arguments: types)
    func productsMatchTheReferenceOnEveryPath(type: GGMLType) {
        var rng = SeededRandom(seed: 3)
        let integer = type != .f16 && type != .bf16
        for (n, k) in [(1, 32), (7, 96), (33, 576), (100, 64)] {
            let bytes = Self.randomBytes(type, rows: n, cols: k, rng: &rng)
            let q = bytes.withUnsafeBytes { QuantizedMatrix(type: type, rows: n, cols: k, bytes: $0) }
            let w = q.dequantized()
            #expect(w.data == bytes.withUnsafeBytes { GGMLDequantize.floats(type, $0, count: n * k) })
            // 1: one row; 2…16: every remainder of the 8/4/2/1-row groups (or of the 8-row groups
            // with VNNI); 17, 40, 70: prefill, as tiles + BLAS or, with VNNI (integer formats) or
            // AVX-512VL (half precision), as several 8-row groups (70: and a remainder of 4 + 2).
            for m in [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 40, 70] {
                let x = (0..<(m * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                var y = [Float](repeating: 0, count: m * n)
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { q.multiply(xp.baseAddress!, rows: m, into: $0.baseAddress!) }
                }
                let expected = Self.reference(w, x, m: m, levels: Self.activationLevels(type, m: m))
                let scale = max(1, expected.map(abs).max()!)
                let worst = maxAbsDifference(y, expected)
                #expect(worst <= 1e-4 * scale, "\(type) n \(n) k \(k) m \(m): worst \(worst)")
                // The SIMD small-batch kernel equals its portable twin.
                if m <= 16 {
                    var simd = [Float](repeating: 0, count: m * n), portable = simd
                    let status = bytes.withUnsafeBytes { wp in
                        (
                            sy_wgemm_rows(
                                Int32(type.rawValue), wp.baseAddress!, q.rowBytes, Int32(k), x, Int32(m), Int32(k), 0,
                                Int32(n), &simd, Int32(n), 0),
                            sy_wgemm_rows(
                                Int32(type.rawValue), wp.baseAddress!, q.rowBytes, Int32(k), x, Int32(m), Int32(k), 0,
                                Int32(n), &portable, Int32(n), 1)
                        )
                    }
                    #expect(status == (0, 0))
                    let diff = maxAbsDifference(simd, portable)
                    #expect(diff <= 1e-5 * Float(scale), "\(type) n \(n) k \(k) m \(m): SIMD vs portable \(diff)")
                }
            }
            guard integer else { continue }
            // The SIMD integer dot equals the portable one, for one and several activation rows.
            for rowsOfX in [1, 3, 6] {
                let x = (0..<(rowsOfX * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                var blocks = [sy_block_q16](repeating: sy_block_q16(), count: rowsOfX * k / 32)
                x.withUnsafeBufferPointer {
                    sy_quantize_rows_q16($0.baseAddress!, Int32(rowsOfX), Int32(k), Int32(k), &blocks)
                }
                var simd = [Float](repeating: 0, count: rowsOfX * n)
                bytes.withUnsafeBytes { wp in
                    sy_qgemv_rows(
                        Int32(type.rawValue), wp.baseAddress!, q.rowBytes, Int32(k), blocks, Int32(rowsOfX), 0,
                        Int32(n), &simd, Int32(n), nil)
                    blocks.withUnsafeBufferPointer { bp in
                        for m in 0..<rowsOfX {
                            for r in 0..<n {
                                let portable = sy_qdot_portable(
                                    Int32(type.rawValue), wp.baseAddress! + r * q.rowBytes,
                                    bp.baseAddress! + m * (k / 32), Int32(k / 32))
                                #expect(
                                    abs(portable - simd[m * n + r]) <= 1e-4 * max(1, abs(portable)),
                                    "\(type) x row \(m) weight row \(r)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// A type the kernels do not know is refused, not read with another type's block layout.
    @Test func unknownWeightTypesAreRefused() {
        let bytes = [UInt8](repeating: 0x3C, count: 64), x = [Float](repeating: 1, count: 32)
        var y = [Float](repeating: 7, count: 1)
        for type: Int32 in [0, 6, 12, 31] {
            let widened = bytes.withUnsafeBytes {
                sy_wgemm_rows(type, $0.baseAddress!, 64, 32, x, 1, 32, 0, 1, &y, 1, 0)
            }
            let dequantised = bytes.withUnsafeBytes { sy_dequantize_rows(type, $0.baseAddress!, 64, 32, 0, 1, &y) }
            #expect(widened == -1 && dequantised == -1, "type \(type)")
            #expect(y == [7], "type \(type): nothing written")
        }
    }

    /// Activation quantisation (AVX2 where available) is exactly its documented rule: per block
    /// d = max|x| / 32767, q = x · (1/d) rounded to nearest even, s = d · Σq; zero blocks, ties
    /// and the block maximum included.
    @Test func activationQuantisationFollowsItsRule() {
        var rng = SeededRandom(seed: 5)
        let k = 128, rows = 3
        var x = (0..<(rows * k)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 3 }
        for j in 32..<64 { x[j] = 0 }  // a zero block
        for j in 64..<96 { x[j] = Float(j - 80) * 0.5 }  // halves: ties after scaling by 1/d
        var blocks = [sy_block_q16](repeating: sy_block_q16(), count: rows * k / 32)
        x.withUnsafeBufferPointer { sy_quantize_rows_q16($0.baseAddress!, Int32(rows), Int32(k), Int32(k), &blocks) }
        for (b, block) in blocks.enumerated() {
            let v = x[(32 * b)..<(32 * b + 32)]
            let amax = v.map { abs($0) }.max()!, d = amax / 32767, id: Float = d != 0 ? 1 / d : 0
            let q = v.map { Int16(($0 * id).rounded(.toNearestOrEven)) }
            let qs = withUnsafeBytes(of: block.qs) { Array($0.bindMemory(to: Int16.self)) }
            #expect(block.d == d && qs == q, "block \(b)")
            #expect(block.s == d * Float(q.reduce(0) { $0 + Int($1) }), "block \(b): s")
        }
    }

    /// The batched kernel's activations (AVX-512 where the 8-bit kernel runs) are exactly their
    /// documented rule and layout: per row and block d = max|x| / 32512, v = round-to-nearest-even(x · (1/d)),
    /// s = d · Σv, v = 256·hi + lo with lo the signed low byte, values 8p…8p+7 of row r at
    /// hi[p][r] and lo[p][r]; rows at or past M are zeros.
    @Test func batchedActivationsFollowTheirRuleAndLayout() {
        var rng = SeededRandom(seed: 7)
        let k = 96, rows = 11
        var x = (0..<(rows * k)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 3 }
        for j in 32..<64 { x[j] = 0 }  // a zero block
        for j in (k + 64)..<(k + 96) { x[j] = Float(j - k - 80) * 0.5 }  // ties after scaling by 1/d
        for m0 in [0, 8] {
            var blocks = [sy_block_q8x8](repeating: sy_block_q8x8(), count: k / 32)
            x.withUnsafeBufferPointer {
                sy_quantize_rows_q8x8($0.baseAddress!, Int32(rows), Int32(k), Int32(m0), Int32(k), &blocks)
            }
            for (b, block) in blocks.enumerated() {
                let his = withUnsafeBytes(of: block.hi) { Array($0.bindMemory(to: Int8.self)) }
                let los = withUnsafeBytes(of: block.lo) { Array($0.bindMemory(to: Int8.self)) }
                let ds = withUnsafeBytes(of: block.d) { Array($0.bindMemory(to: Float.self)) }
                let sums = withUnsafeBytes(of: block.s) { Array($0.bindMemory(to: Float.self)) }
                for r in 0..<8 {
                    let at = (0..<32).map { j in (j / 8) * 64 + r * 8 + j % 8 }
                    let hi = at.map { Int(his[$0]) }, lo = at.map { Int(los[$0]) }
                    guard m0 + r < rows else {
                        #expect(hi.allSatisfy { $0 == 0 } && lo.allSatisfy { $0 == 0 } && ds[r] == 0 && sums[r] == 0)
                        continue
                    }
                    let v = x[((m0 + r) * k + 32 * b)..<((m0 + r) * k + 32 * b + 32)]
                    let amax = v.map { abs($0) }.max()!, d = amax / 32512, id: Float = d != 0 ? 1 / d : 0
                    let q = v.map { Int(($0 * id).rounded(.toNearestOrEven)) }
                    #expect(ds[r] == d && zip(hi, lo).map { 256 * $0 + $1 } == q, "row \(m0 + r) block \(b)")
                    #expect(hi.allSatisfy { abs($0) <= 127 }, "row \(m0 + r) block \(b): hi")
                    #expect(sums[r] == d * Float(q.reduce(0, +)), "row \(m0 + r) block \(b): s")
                }
            }
        }
    }

    /// The batched integer kernel (8-bit dot products where the CPU has VNNI) equals its portable
    /// twin, which is the reference product of the quantised activations; every row count up to
    /// 8, several groups of 8 (11, 20), and the four-row step with each remainder (column ranges
    /// of 1, 5, 7, 11, 16, 23 and 34 rows). Q8_0 also with per-block offsets (Q5_1/Q5_K rewritten as
    /// Q8_0), against the portable loop's offsets.
    @Test(arguments: [GGMLType.q8_0, .q4_0, .q4_1])
    func batchedIntegerKernelMatchesItsPortableTwin(type: GGMLType) {
        var rng = SeededRandom(seed: 11)
        for (n, k) in [(1, 32), (7, 96), (34, 576), (16, 64)] {
            let bytes = Self.randomBytes(type, rows: n, cols: k, rng: &rng)
            let q = bytes.withUnsafeBytes { QuantizedMatrix(type: type, rows: n, cols: k, bytes: $0) }
            let w = q.dequantized()
            for r in Array(1...8) + [11, 20] {
                let x = (0..<(r * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                let blocks = Self.batchedActivations(x, rows: r, cols: k)
                let expected = Self.reference(w, x, m: r, levels: 32512)
                let scale = max(1, expected.map(abs).max()!)
                for (lo, hi) in [(0, n), (n / 3, n)] where lo < hi {
                    var simd = [Float](repeating: .nan, count: r * n), portable = simd
                    var withOffsets = (simd, portable)
                    let offsets = (0..<(n * k / 32)).map { _ in rng.nextUnitFloat() - 0.5 }
                    bytes.withUnsafeBytes { wp in
                        for (out, flag) in [(0, Int32(0)), (1, Int32(1))] {
                            var y = [Float](repeating: .nan, count: r * n), z = y
                            sy_q8x8_rows(
                                Int32(type.rawValue), wp.baseAddress!, q.rowBytes, Int32(k), blocks, Int32(r),
                                Int32(lo), Int32(hi), &y, Int32(n), flag, nil)
                            if type == .q8_0 {
                                sy_q8x8_rows(
                                    Int32(type.rawValue), wp.baseAddress!, q.rowBytes, Int32(k), blocks, Int32(r),
                                    Int32(lo), Int32(hi), &z, Int32(n), flag, offsets)
                            }
                            if out == 0 { (simd, withOffsets.0) = (y, z) } else { (portable, withOffsets.1) = (y, z) }
                        }
                    }
                    for row in 0..<r {
                        for col in 0..<n {
                            let i = row * n + col
                            guard col >= lo else {
                                #expect(simd[i].isNaN && portable[i].isNaN, "wrote outside its columns")
                                continue
                            }
                            #expect(
                                abs(Double(portable[i]) - expected[i]) <= 1e-4 * scale, "\(type) n \(n) k \(k) r \(r)")
                            #expect(abs(simd[i] - portable[i]) <= 1e-5 * Float(scale), "\(type) n \(n) k \(k) r \(r)")
                            if type == .q8_0 {
                                let (a, b) = (withOffsets.0[i], withOffsets.1[i])
                                #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "offsets: n \(n) k \(k) r \(r)")
                                #expect(abs(b - portable[i]) > 1e-6, "the offsets must change the product")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Extreme activations and weights: neither the one-row integer kernel nor the batched one
    /// may overflow (Q8_0 weights of −128 and 127 from a hostile file, activations at the
    /// block maximum, 1 and 8 rows).
    @Test func extremeBlocksDoNotOverflow() {
        let k = 64
        for weight: UInt8 in [0x80, 0x7F] {  // q = −128, 127 everywhere
            var bytes = [UInt8](repeating: weight, count: 2 * 34)
            for b in 0..<2 {
                let h = HalfPrecision.floatToF16(1); bytes[34 * b] = UInt8(h & 0xFF); bytes[34 * b + 1] = UInt8(h >> 8)
            }
            let q = bytes.withUnsafeBytes { QuantizedMatrix(type: .q8_0, rows: 1, cols: k, bytes: $0) }
            let exact = Float(Int8(bitPattern: weight)) * 1000 * Float(k)
            for m in [1, 8] {
                let x = [Float](repeating: 1000, count: m * k)
                var y = [Float](repeating: 0, count: m)
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { q.multiply(xp.baseAddress!, rows: m, into: $0.baseAddress!) }
                }
                #expect(y.allSatisfy { abs($0 - exact) <= 1e-3 * abs(exact) }, "weights \(weight), \(m) rows: \(y)")
            }
        }
    }

    /// A fused product (a layer's q, k, v read one input) gives every matrix exactly what its own
    /// call gives, on every path (1, 3, 8, 20 and 70 rows), for widths of 1 to 200 rows; matrices
    /// of different types or widths are not fused, and `Linear.forward` on them falls back to one
    /// call each with the same results.
    @Test(arguments: types)
    func fusedProductsEqualSeparateOnes(type: GGMLType) {
        var rng = SeededRandom(seed: UInt64(type.rawValue) + 40)
        let k = 96
        let matrices = [200, 24, 1].map { n in
            QuantizedKernelTests.randomBytes(type, rows: n, cols: k, rng: &rng).withUnsafeBytes {
                QuantizedMatrix(type: type, rows: n, cols: k, bytes: $0)
            }
        }
        #expect(QuantizedMatrix.canFuse(matrices))
        for m in [1, 3, 8, 20, 70] {
            let x = (0..<(m * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let separate = matrices.map { w in
                var y = [Float](repeating: .nan, count: m * w.rows)
                x.withUnsafeBufferPointer { w.multiply($0.baseAddress!, rows: m, into: &y) }
                return y
            }
            let outputs = matrices.map { UnsafeMutablePointer<Float>.allocate(capacity: m * $0.rows) }
            defer { outputs.forEach { $0.deallocate() } }
            for (o, w) in zip(outputs, matrices) { o.initialize(repeating: .nan, count: m * w.rows) }
            x.withUnsafeBufferPointer { QuantizedMatrix.fused(matrices, $0.baseAddress!, rows: m, into: outputs) }
            for (i, w) in matrices.enumerated() {
                let fused = Array(UnsafeBufferPointer(start: outputs[i], count: m * w.rows))
                #expect(fused == separate[i], "\(type) \(m) rows, matrix \(i) (\(w.rows) rows)")
            }
        }
        let other = type == .q8_0 ? GGMLType.q4_0 : .q8_0
        let odd = QuantizedKernelTests.randomBytes(other, rows: 8, cols: k, rng: &rng).withUnsafeBytes {
            QuantizedMatrix(type: other, rows: 8, cols: k, bytes: $0)
        }
        let wide = QuantizedKernelTests.randomBytes(type, rows: 8, cols: 2 * k, rng: &rng).withUnsafeBytes {
            QuantizedMatrix(type: type, rows: 8, cols: 2 * k, bytes: $0)
        }
        #expect(!QuantizedMatrix.canFuse([matrices[0], odd]))
        #expect(!QuantizedMatrix.canFuse([matrices[0], wide]))
        #expect(!QuantizedMatrix.canFuse(Array(repeating: matrices[2], count: 5)))
        let site = ProjectionSite(layer: 0, kind: .q)
        let mixed = [Linear(site: site, quantized: matrices[1]), Linear(site: site, quantized: odd)]
        let m = 8, x = (0..<(m * k)).map { _ in rng.nextUnitFloat() }
        var a = [Float](repeating: .nan, count: m * 24), b = [Float](repeating: .nan, count: m * 8)
        var expectedA = a, expectedB = b
        x.withUnsafeBufferPointer { xp in
            a.withUnsafeMutableBufferPointer { ap in
                b.withUnsafeMutableBufferPointer { bp in
                    Linear.forward(
                        mixed, xp.baseAddress!, rows: m, into: [ap.baseAddress!, bp.baseAddress!], delta: nil)
                }
            }
            matrices[1].multiply(xp.baseAddress!, rows: m, into: &expectedA)
            odd.multiply(xp.baseAddress!, rows: m, into: &expectedB)
        }
        #expect(a == expectedA && b == expectedB, "\(type) with \(other): one call each")
    }
}
