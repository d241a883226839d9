import Foundation
import Testing

@testable import Switchyard

/// `sy_causal_attention` (SIMD and portable) against a naive Double reference: grouped KV heads,
/// groups of 1 to 9 query heads (split into slices of up to 4 per task: 8 = 4+4, 5 = 3+2, 9 = 3+3+3),
/// head sizes on and off the SIMD width (multiples of 64 take the 512-bit kernel with AVX-512), row chunks split across tasks, a prefix already cached,
/// a sliding window, sequences long enough for the prefill's matrix products, and decode rows deep
/// enough for their keys to split into ranges combined after the join; over a Float32
/// cache and a half cache (written by `sy_kv_store`, the
/// reference reading the same rounded values).
@Suite struct CausalAttentionKernelTests {
    @Test(arguments: [
        (8, 4, 2), (64, 9, 3), (12, 2, 1), (32, 6, 2), (16, 8, 1), (24, 5, 1), (8, 3, 3), (64, 9, 1), (64, 8, 2),
        (128, 4, 2)
    ])
    func matchesTheReference(hd: Int, heads: Int, kvHeads: Int) {
        var rng = SeededRandom(seed: UInt64(hd * 100 + heads))
        // Past 256 positions a chunk of 8+ rows takes the matrix products (SIMD builds), past
        // 256 new rows in chunks of 64: the last cases, the longest for the smallest heads.
        // Decode rows (under 8) past 1,024 positions split their keys into ranges of 1,024:
        // a last range of a few keys, rows whose later range is past their position, and a
        // window that leaves the first ranges empty.
        let long =
            (hd == 8 ? [(0, 270, 0)] : [])
            + (hd == 64 || hd == 12 ? [(1025, 1, 0), (1020, 6, 0), (1300, 2, 200)] : [])
        let cases =
            [(0, 1, 0), (0, 37, 0), (21, 1, 0), (5, 19, 0), (30, 20, 7), (0, 33, 1), (236, 20, 0), (245, 12, 50)] + long
        Self.check(hd: hd, heads: heads, kvHeads: kvHeads, cases: cases, queryRange: 2, tolerance: 1e-5, rng: &rng)
    }

    /// Scores hundreds apart (queries up to ±200): the softmax must shift by the true maximum of
    /// each row, or exp overflows to infinity and the outputs become NaN. Decode rows at depths
    /// that are not multiples of the vectorised maximum's 16 lanes, and a prefill chunk. Scores
    /// of a few hundred carry rounding errors of ~1e-4 in Float32, which the weights inherit, so
    /// the bound here is 5e-4 (a maximum missed by one lane gives NaN or errors of order 1).
    @Test(arguments: [(64, 9, 3), (32, 6, 2)])
    func scoresFarApartNeedTheTrueMaximum(hd: Int, heads: Int, kvHeads: Int) {
        var rng = SeededRandom(seed: UInt64(hd + heads))
        Self.check(
            hd: hd, heads: heads, kvHeads: kvHeads, cases: [(40, 1, 0), (77, 1, 0), (113, 1, 0), (0, 37, 0)],
            queryRange: 200, tolerance: 5e-4, rng: &rng)
    }

    /// The kernel against the Double reference for each (start, new rows, window) of `cases`,
    /// queries uniform in ±`queryRange`, keys and values in ±1: every output within `tolerance`.
    static func check(
        hd: Int, heads: Int, kvHeads: Int, cases: [(Int, Int, Int)], queryRange: Float, tolerance: Double,
        rng: inout SeededRandom
    ) {
        for half in [false, true] {
            for (start, n, window) in cases {
                let total = start + n, capacity = total + 3
                let q = (0..<(n * heads * hd)).map { _ in (rng.nextUnitFloat() * 2 - 1) * queryRange }
                var keys = (0..<(kvHeads * capacity * hd)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                var values = (0..<(kvHeads * capacity * hd)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                // The cache as the kernel reads it: the floats, or their halves (stored per head,
                // position by position, as the model stores them).
                let elementBytes = half ? 2 : 4
                let keyStore = UnsafeMutableRawPointer.allocate(byteCount: keys.count * elementBytes, alignment: 64)
                let valueStore = UnsafeMutableRawPointer.allocate(byteCount: values.count * elementBytes, alignment: 64)
                defer { keyStore.deallocate(); valueStore.deallocate() }
                for (source, store) in [(keys, keyStore), (values, valueStore)] {
                    // Rows of all KV heads side by side, as the projections produce them.
                    var rows: [Float] = []
                    for p in 0..<capacity {
                        for h in 0..<kvHeads { rows += source[(h * capacity + p) * hd..<(h * capacity + p + 1) * hd] }
                    }
                    KVStorage.store(
                        rows, rows: capacity, stride: kvHeads * hd, heads: kvHeads, headDim: hd, into: store,
                        half: half, headStride: capacity * hd, at: 0)
                }
                if half {
                    keys = (0..<keys.count).map {
                        Float(Float16(bitPattern: keyStore.load(fromByteOffset: 2 * $0, as: UInt16.self)))
                    }
                    values = (0..<values.count).map {
                        Float(Float16(bitPattern: valueStore.load(fromByteOffset: 2 * $0, as: UInt16.self)))
                    }
                }
                let scale = 1 / Float(hd).squareRoot()
                var expected = [Double](repeating: 0, count: n * heads * hd)
                for r in 0..<n {
                    let pos = start + r, first = window > 0 ? max(0, pos - window + 1) : 0
                    for h in 0..<heads {
                        let kv = h / (heads / kvHeads)
                        let s = (first...pos).map { t in
                            (0..<hd).reduce(0.0) {
                                $0 + Double(q[r * heads * hd + h * hd + $1])
                                    * Double(keys[kv * capacity * hd + t * hd + $1])
                            } * Double(scale)
                        }
                        let m = s.max()!, e = s.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                        for i in 0..<hd {
                            expected[r * heads * hd + h * hd + i] = zip(first...pos, e).reduce(0.0) {
                                $0 + $1.1 / z * Double(values[kv * capacity * hd + $1.0 * hd + i])
                            }
                        }
                    }
                }
                for portable in [0, 1] {
                    var out = [Float](repeating: .nan, count: n * heads * hd)
                    AttentionKernel.causal(
                        q: q, n: n, start: start, qStride: heads * hd, numHeads: heads, numKVHeads: kvHeads,
                        headDim: hd, keys: keyStore, values: valueStore, half: half, headStride: capacity * hd,
                        window: window, scale: scale, out: &out, outStride: heads * hd, portable: portable == 1)
                    let worst = maxAbsDifference(out, expected)
                    #expect(
                        worst <= tolerance,
                        "hd \(hd) heads \(heads)/\(kvHeads) start \(start) n \(n) window \(window) portable \(portable) half \(half): \(worst)"
                    )
                }
            }
        }
    }

    /// A batch of sequences in one call (decode of several requests) gives each sequence exactly
    /// what its own call gives: different lengths, starts, windows of the cache and capacities, a
    /// Float32 cache beside half ones, SIMD and portable.
    @Test func batchEqualsOneCallPerSequence() {
        var rng = SeededRandom(seed: 99)
        let hd = 16, heads = 6, kvHeads = 2, width = heads * hd
        // (new rows, start, capacity, half)
        // (1, 1500, …): decode rows whose keys split into ranges (past 1,024 positions).
        let shapes = [
            (1, 0, 4, true), (1, 40, 50, true), (19, 3, 30, false), (1, 7, 8, true), (33, 0, 40, true),
            (1, 1500, 1510, true), (3, 1100, 1103, false)
        ]
        for window in [0, 5] {
            // Per sequence: its queries, then its key and value stores.
            let buffers = shapes.map { n, _, capacity, half in
                let q = UnsafeMutablePointer<Float>.allocate(capacity: n * width)
                for j in 0..<(n * width) { q[j] = rng.nextUnitFloat() * 4 - 2 }
                let stores = (0..<2).map { _ in
                    let rows = (0..<(capacity * kvHeads * hd)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                    let store = UnsafeMutableRawPointer.allocate(byteCount: rows.count * 4, alignment: 64)
                    KVStorage.store(
                        rows, rows: capacity, stride: kvHeads * hd, heads: kvHeads, headDim: hd, into: store,
                        half: half, headStride: capacity * hd, at: 0)
                    return store
                }
                return (q: q, keys: stores[0], values: stores[1])
            }
            defer {
                buffers.forEach {
                    $0.q.deallocate(); $0.keys.deallocate(); $0.values.deallocate()
                }
            }
            let scale = 1 / Float(hd).squareRoot()
            for portable in [false, true] {
                let outs = shapes.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.0 * width) }
                defer { outs.forEach { $0.deallocate() } }
                let sequences = shapes.enumerated().map { i, shape in
                    AttentionKernel.Sequence(
                        q: buffers[i].q, out: outs[i], n: shape.0, start: shape.1, keys: buffers[i].keys,
                        values: buffers[i].values, half: shape.3, headStride: shape.2 * hd)
                }
                AttentionKernel.causal(
                    sequences, qStride: width, outStride: width, numHeads: heads, numKVHeads: kvHeads,
                    headDim: hd, window: window, scale: scale, portable: portable)
                for (i, (n, start, capacity, half)) in shapes.enumerated() {
                    var alone = [Float](repeating: .nan, count: n * width)
                    AttentionKernel.causal(
                        q: buffers[i].q, n: n, start: start, qStride: width, numHeads: heads, numKVHeads: kvHeads,
                        headDim: hd, keys: buffers[i].keys, values: buffers[i].values, half: half,
                        headStride: capacity * hd, window: window, scale: scale, out: &alone, outStride: width,
                        portable: portable)
                    let batched = Array(UnsafeBufferPointer(start: outs[i], count: n * width))
                    #expect(batched == alone, "sequence \(i) window \(window) portable \(portable)")
                }
            }
        }
    }

    /// Floats rounded to half by `sy_kv_store` (F16C for whole groups of 8, portable C for the
    /// rest) are Swift's `Float16(x)`: nearest, ties to even, overflow to infinity, subnormals,
    /// signed zeros and NaN.
    @Test func halfRoundingMatchesFloat16() {
        var specials: [Float] = [
            0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e9, .infinity, -.infinity,
            6.1035156e-05, 6.1e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 4.4703484e-08,
            1e-10, -3e-7, 1.00048828125, 1.000732421875, 1.0009765625, 2049, 2051, 0.1, -0.3333
        ]
        var rng = SeededRandom(seed: 7)
        for _ in 0..<4000 {
            let exponent = Float(Int(rng.next() % 50) - 30)
            specials.append((rng.nextUnitFloat() * 2 - 1) * Foundation.pow(2, exponent))
        }
        let hd = 13, rows = (specials.count + hd - 1) / hd
        let source = specials + [Float](repeating: 0, count: rows * hd - specials.count)
        let store = UnsafeMutableRawPointer.allocate(byteCount: rows * hd * 2, alignment: 64)
        defer { store.deallocate() }
        KVStorage.store(
            source, rows: rows, stride: hd, heads: 1, headDim: hd, into: store, half: true, headStride: rows * hd, at: 0
        )
        for (i, x) in source.enumerated() {
            let bits = store.load(fromByteOffset: 2 * i, as: UInt16.self)
            #expect(
                bits == Float16(x).bitPattern,
                "\(x): \(String(bits, radix: 16)) vs \(String(Float16(x).bitPattern, radix: 16))")
        }
        let nan: [Float] = [.nan] + [Float](repeating: 0, count: 7)
        KVStorage.store(nan, rows: 1, stride: 8, heads: 1, headDim: 8, into: store, half: true, headStride: 8, at: 0)
        #expect(Float16(bitPattern: store.load(as: UInt16.self)).isNaN)
    }
}
