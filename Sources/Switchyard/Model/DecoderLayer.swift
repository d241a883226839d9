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

/// Multi-head attention with grouped-query heads over one sequence's cache.
enum CausalAttention {
    /// Attention for the `n` new rows of one sequence whose first new position is `start`
    /// (`AttentionKernel.causal`: causal and windowed key ranges only, parallel over heads and
    /// chunks of rows).
    ///
    /// - `q`: `[n × numHeads·headDim]` (rope applied), rows `qStride` apart.
    /// - the cache already holds keys/values for positions `0 ..< start + n` of this layer.
    /// - `out`: `[n × numHeads·headDim]`, rows `qStride` apart.
    static func run(
        q: UnsafePointer<Float>, n: Int, start: Int, qStride: Int, cache: KVCache, layer: Int,
        numHeads: Int, slidingWindow: Int?, out: UnsafeMutablePointer<Float>
    ) {
        // ModelConfig.validate guarantees both; a window ≤ 0 would mean no keys at all.
        precondition(slidingWindow.map { $0 > 0 } ?? true, "sliding window must be positive")
        precondition(numHeads % cache.numKVHeads == 0, "heads must divide into KV groups")
        precondition(start + n <= cache.capacity, "the cache must hold the new rows")
        let hd = cache.headDim
        AttentionKernel.causal(
            q: q, n: n, start: start, qStride: qStride, numHeads: numHeads,
            numKVHeads: cache.numKVHeads, headDim: hd,
            keys: cache.keyStorage(layer: layer), values: cache.valueStorage(layer: layer),
            half: cache.precision == .f16,
            headStride: cache.capacity * hd, window: slidingWindow ?? 0,
            scale: 1 / Float(hd).squareRoot(), out: out, outStride: qStride)
    }
}
