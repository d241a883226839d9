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
