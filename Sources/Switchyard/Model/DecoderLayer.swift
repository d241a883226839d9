/// The weights of one decoder block: pre-norm attention then pre-norm SwiGLU MLP, each with a
/// residual connection.
public struct DecoderLayer: Sendable {
    public let index: Int
    /// RMSNorm weight before attention, `[hidden]`.
    public var inputNorm: [Float]
    public var q: Linear
    public var k: Linear
    public var v: Linear
    public var o: Linear
    /// RMSNorm weight before the MLP, `[hidden]`.
    public var postAttentionNorm: [Float]
    public var gate: Linear
    public var up: Linear
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
    /// Attention for the `n` new rows of one sequence whose first new position is `start`.
    ///
    /// - `q`: `[n × numHeads·headDim]` (rope applied), rows `qStride` apart.
    /// - the cache already holds keys/values for positions `0 ..< start + n` of this layer.
    /// - `out`: `[n × numHeads·headDim]`, rows `qStride` apart.
    /// - `scores`: scratch of at least `n × (start + n)` floats.
    static func run(q: UnsafePointer<Float>, n: Int, start: Int, qStride: Int, cache: KVCache, layer: Int,
                    numHeads: Int, slidingWindow: Int?, scores: UnsafeMutablePointer<Float>,
                    out: UnsafeMutablePointer<Float>) {
        // ModelConfig.validate guarantees both; a window ≤ 0 would index before `scores`.
        precondition(slidingWindow.map { $0 > 0 } ?? true, "sliding window must be positive")
        precondition(numHeads % cache.numKVHeads == 0, "heads must divide into KV groups")
        let hd = cache.headDim
        let total = start + n
        let group = numHeads / cache.numKVHeads
        let scale = 1 / Float(hd).squareRoot()
        if n == 1 && group > 1 {
            // Decode: the query heads sharing a KV head are consecutive in the row, so each group
            // is one [group × hd] block — one product per KV head instead of one per query head.
            let first = slidingWindow.map { max(0, start - $0 + 1) } ?? 0
            for kvHead in 0..<cache.numKVHeads {
                let keys = cache.keyHead(layer: layer, head: kvHead)
                let values = cache.valueHead(layer: layer, head: kvHead)
                let qBlock = q + kvHead * group * hd
                BLAS.gemmTransB(m: group, n: total, k: hd, alpha: scale, a: qBlock, lda: hd,
                                b: keys, ldb: hd, c: scores, ldc: total)
                for g in 0..<group {
                    let row = scores + g * total
                    for t in 0..<first { row[t] = 0 }
                    Ops.softmax(row + first, count: total - first)
                }
                BLAS.gemm(m: group, n: hd, k: total, a: scores, lda: total, b: values, ldb: hd,
                          c: out + kvHead * group * hd, ldc: hd)
            }
            return
        }
        for h in 0..<numHeads {
            let kvHead = h / group
            let keys = cache.keyHead(layer: layer, head: kvHead)
            let values = cache.valueHead(layer: layer, head: kvHead)
            BLAS.gemmTransB(m: n, n: total, k: hd, alpha: scale, a: q + h * hd, lda: qStride,
                            b: keys, ldb: hd, c: scores, ldc: total)
            for j in 0..<n {
                let row = scores + j * total
                let position = start + j
                let first = slidingWindow.map { max(0, position - $0 + 1) } ?? 0
                for t in 0..<first { row[t] = 0 }
                Ops.softmax(row + first, count: position + 1 - first)
                for t in (position + 1)..<total { row[t] = 0 }
            }
            BLAS.gemm(m: n, n: hd, k: total, a: scores, lda: total, b: values, ldb: hd,
                      c: out + h * hd, ldc: qStride)
        }
    }
}
