import CKernels

/// Scaled dot-product attention over raw head-major key/value storage (the CKernels edge for
/// `sy_causal_attention`; `CausalAttention` in Model/ binds it to a `KVCache`).
enum AttentionKernel {
    /// Causal attention for `n` query rows whose first position is `start`: row `i` attends to
    /// keys `0 ... start + i`, or only the last `window` of them when `window > 0`.
    ///
    /// - `q`: `[n × numHeads·headDim]`, rows `qStride` apart (rope applied).
    /// - `keys`/`values`: KV head `h` starts at `h · headStride` elements; within a head,
    ///   position `p` is the `headDim` values at `p · headDim`; elements are Float32, or IEEE
    ///   half when `half`. Query head `i` reads KV head `i / (numHeads / numKVHeads)`
    ///   (grouped-query attention).
    /// - `out`: `[n × numHeads·headDim]`, rows `outStride` apart.
    /// - `portable`: force the portable C path (tests compare it against the SIMD one).
    /// Split over the thread pool by (KV head with up to 4 of its query heads, chunk of 16 rows).
    static func causal(
        q: UnsafePointer<Float>, n: Int, start: Int, qStride: Int, numHeads: Int, numKVHeads: Int, headDim: Int,
        keys: UnsafeRawPointer, values: UnsafeRawPointer, half: Bool, headStride: Int, window: Int, scale: Float,
        out: UnsafeMutablePointer<Float>, outStride: Int, portable: Bool = false
    ) {
        sy_causal_attention(
            q, Int32(n), Int32(start), Int32(qStride), Int32(numHeads), Int32(numKVHeads),
            Int32(headDim), keys, values, half ? 1 : 0, headStride, Int32(window), scale,
            out, Int32(outStride), portable ? 1 : 0)
    }

    /// One sequence of a batched call: its `n` query rows from position `start`, its output rows,
    /// and its own cache buffers laid out as for `causal` above.
    struct Sequence {
        let q: UnsafePointer<Float>
        let out: UnsafeMutablePointer<Float>
        let n: Int
        let start: Int
        let keys: UnsafeRawPointer
        let values: UnsafeRawPointer
        let half: Bool
        let headStride: Int
    }

    /// `causal` for every sequence of a batch as one job on the thread pool
    /// (`sy_causal_attention_batch`): rows of every sequence `qStride` / `outStride` apart.
    static func causal(
        _ sequences: [Sequence], qStride: Int, outStride: Int, numHeads: Int, numKVHeads: Int, headDim: Int,
        window: Int, scale: Float, portable: Bool = false
    ) {
        let c = sequences.map {
            sy_attention_sequence(
                q: $0.q, out: $0.out, keys: $0.keys, values: $0.values, head_stride: $0.headStride, n: Int32($0.n),
                start: Int32($0.start), kv_half: $0.half ? 1 : 0)
        }
        sy_causal_attention_batch(
            c, Int32(c.count), Int32(qStride), Int32(outStride), Int32(numHeads), Int32(numKVHeads), Int32(headDim),
            Int32(window), scale, portable ? 1 : 0)
    }
}

/// Writes keys/values into a cache buffer laid out for `AttentionKernel` (`sy_kv_store`).
enum KVStorage {
    /// Row `j` of `source` (`stride` floats apart, `heads` heads of `headDim` side by side) goes to
    /// position `at + j` of every head of `destination` (heads `headStride` elements apart),
    /// rounded to IEEE half (nearest, ties to even) when `half`.
    static func store(
        _ source: UnsafePointer<Float>, rows: Int, stride: Int, heads: Int, headDim: Int,
        into destination: UnsafeMutableRawPointer, half: Bool, headStride: Int, at: Int
    ) {
        sy_kv_store(
            source, Int32(rows), Int32(stride), Int32(heads), Int32(headDim), destination, half ? 1 : 0,
            headStride, Int32(at))
    }
}
