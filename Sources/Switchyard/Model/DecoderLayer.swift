/// The weights of one decoder block: pre-norm attention then pre-norm SwiGLU MLP, each with a
/// residual connection.
public struct DecoderLayer: Sendable {
    /// The layer's position in the model, 0-based (the `N` of `model.layers.N`).
    public let index: Int
    /// RMSNorm weight before attention, `[hidden]`.
    public var inputNorm: [Float]
    /// Query projection, `[heads·headDim × hidden]`.
    public var q: Linear
    /// Key projection, `[kvHeads·headDim × hidden]`.
    public var k: Linear
    /// Value projection, `[kvHeads·headDim × hidden]`.
    public var v: Linear
    /// Attention output projection, `[hidden × heads·headDim]`.
    public var o: Linear
    /// RMSNorm weight before the MLP, `[hidden]`.
    public var postAttentionNorm: [Float]
    /// SwiGLU gate projection, `[intermediate × hidden]` (SiLU applied to its output).
    public var gate: Linear
    /// SwiGLU up projection, `[intermediate × hidden]` (multiplied by the activated gate).
    public var up: Linear
    /// MLP down projection, `[hidden × intermediate]`.
    public var down: Linear

    /// The projection of a given kind.
    public subscript(kind: ProjectionKind) -> Linear {
        get {
            switch kind {
            case .q: return q
            case .k: return k
            case .v: return v
            case .o: return o
            case .gate: return gate
            case .up: return up
            case .down: return down
            }
        }
        set {
            switch kind {
            case .q: q = newValue
            case .k: k = newValue
            case .v: v = newValue
            case .o: o = newValue
            case .gate: gate = newValue
            case .up: up = newValue
            case .down: down = newValue
            }
        }
    }
}

/// Multi-head attention with grouped-query heads, each sequence over its own cache.
enum CausalAttention {
    /// One sequence's rows of a batched attention call: its `n` new rows, the first at position
    /// `start`; `q` `[n × numHeads·headDim]` (rope applied) and `out` alike, rows `qStride` apart.
    /// Its `cache` already holds keys/values for positions `0 ..< start + n` of the layer.
    struct Rows {
        let q: UnsafePointer<Float>
        let out: UnsafeMutablePointer<Float>
        let n: Int
        let start: Int
        let cache: KVCache
    }

    /// Attention for every sequence of a batch at `layer`, as one job on the thread pool
    /// (`AttentionKernel.causal`: causal and windowed key ranges only, parallel over sequences,
    /// heads and chunks of rows).
    static func run(_ batch: [Rows], layer: Int, qStride: Int, numHeads: Int, slidingWindow: Int?) {
        // ModelConfig.validate guarantees both; a window ≤ 0 would mean no keys at all.
        precondition(slidingWindow.map { $0 > 0 } ?? true, "sliding window must be positive")
        guard let first = batch.first else { return }
        let hd = first.cache.headDim, kvHeads = first.cache.numKVHeads
        let sequences = batch.map { r in
            precondition(r.cache.headDim == hd && r.cache.numKVHeads == kvHeads, "one model's caches")
            precondition(numHeads % kvHeads == 0, "heads must divide into KV groups")
            precondition(r.start + r.n <= r.cache.capacity, "the cache must hold the new rows")
            return AttentionKernel.Sequence(
                q: r.q, out: r.out, n: r.n, start: r.start, keys: r.cache.keyStorage(layer: layer),
                values: r.cache.valueStorage(layer: layer), half: r.cache.precision == .f16,
                headStride: r.cache.capacity * hd)
        }
        AttentionKernel.causal(
            sequences, qStride: qStride, outStride: qStride, numHeads: numHeads, numKVHeads: kvHeads,
            headDim: hd, window: slidingWindow ?? 0, scale: 1 / Float(hd).squareRoot())
    }
}
