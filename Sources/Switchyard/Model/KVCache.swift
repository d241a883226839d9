/// The key/value cache of one sequence: per layer, keys and values laid out
/// `[kvHead][position][headDim]` so that one head's history is a contiguous `[length × headDim]`
/// matrix (one GEMM per head in attention).
///
/// Owned by one request; not thread-safe. Capacity grows by doubling, so appending a token is
/// amortised O(1) with no per-token allocation.
public final class KVCache {
    /// Decoder layers cached.
    public let numLayers: Int
    /// Key/value heads per layer.
    public let numKVHeads: Int
    /// Values per head.
    public let headDim: Int
    /// Longest sequence this cache accepts (the model's `max_position_embeddings`).
    public let maxLength: Int
    /// Tokens stored so far (identical in every layer between forward passes).
    public private(set) var length: Int = 0
    /// Positions allocated (grows by doubling).
    public private(set) var capacity: Int
    var keys: [UnsafeMutablePointer<Float>]
    var values: [UnsafeMutablePointer<Float>]

    /// An empty cache shaped for `config`.
    public init(config: ModelConfig, initialCapacity: Int = 64) {
        numLayers = config.numLayers
        numKVHeads = config.numKVHeads
        headDim = config.headDim
        maxLength = config.maxPositionEmbeddings
        capacity = max(1, min(initialCapacity, maxLength))
        let size = numKVHeads * capacity * headDim
        keys = (0..<numLayers).map { _ in .allocate(capacity: size) }
        values = (0..<numLayers).map { _ in .allocate(capacity: size) }
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Forgets every token (keeps the memory).
    public func reset() { length = 0 }

    /// Makes room for `newLength` tokens, preserving the stored ones.
    func reserve(_ newLength: Int) throws {
        guard newLength <= maxLength else {
            throw SwitchyardError.invalidArgument("sequence of \(newLength) tokens exceeds the model's max_position_embeddings (\(maxLength))")
        }
        guard newLength > capacity else { return }
        let newCapacity = min(maxLength, max(newLength, capacity * 2))
        func grow(_ old: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
            let fresh = UnsafeMutablePointer<Float>.allocate(capacity: numKVHeads * newCapacity * headDim)
            for h in 0..<numKVHeads {
                (fresh + h * newCapacity * headDim).update(from: old + h * capacity * headDim, count: length * headDim)
            }
            old.deallocate()
            return fresh
        }
        keys = keys.map(grow)
        values = values.map(grow)
        capacity = newCapacity
    }

    /// Pointer to `[length × headDim]` keys of one head in one layer.
    @inline(__always)
    func keyHead(layer: Int, head: Int) -> UnsafeMutablePointer<Float> { keys[layer] + head * capacity * headDim }
    @inline(__always)
    func valueHead(layer: Int, head: Int) -> UnsafeMutablePointer<Float> { values[layer] + head * capacity * headDim }

    func advance(by n: Int) { length += n }
}
