/// The key/value cache of one sequence: per layer, keys and values laid out
/// `[kvHead][position][headDim]` so that one head's history is contiguous, in Float32 or IEEE
/// half (`Precision`; the attention kernel widens halves as it reads them).
///
/// Owned by one request; not thread-safe. Capacity grows by doubling, so appending a token is
/// amortised O(1) with no per-token allocation.
public final class KVCache {
    /// How keys and values are stored.
    public enum Precision: String, Sendable, CaseIterable {
        /// Float32: exactly what the projections produced (the parity path).
        case f32
        /// IEEE half, rounded to nearest: half the memory, and half the bytes decode reads per
        /// token at depth (as llama.cpp's default F16 cache); about 3 significant digits per value.
        case f16

        /// Bytes per stored value.
        public var elementBytes: Int { self == .f32 ? 4 : 2 }
    }

    /// Decoder layers cached.
    public let numLayers: Int
    /// Key/value heads per layer.
    public let numKVHeads: Int
    /// Values per head.
    public let headDim: Int
    /// Longest sequence this cache accepts (the model's `max_position_embeddings`).
    public let maxLength: Int
    /// How keys and values are stored.
    public let precision: Precision
    /// Tokens stored so far (identical in every layer between forward passes).
    public private(set) var length: Int = 0
    /// Positions allocated (grows by doubling).
    public private(set) var capacity: Int
    /// Per layer, `numKVHeads · capacity · headDim` elements of `precision`.
    private var keys: [UnsafeMutableRawPointer]
    private var values: [UnsafeMutableRawPointer]

    /// An empty cache shaped for `config`.
    public init(config: ModelConfig, precision: Precision = .f32, initialCapacity: Int = 64) {
        numLayers = config.numLayers
        numKVHeads = config.numKVHeads
        headDim = config.headDim
        maxLength = config.maxPositionEmbeddings
        self.precision = precision
        capacity = max(1, min(initialCapacity, maxLength))
        let bytes = numKVHeads * capacity * headDim * precision.elementBytes
        keys = (0..<numLayers).map { _ in .allocate(byteCount: bytes, alignment: 64) }
        values = (0..<numLayers).map { _ in .allocate(byteCount: bytes, alignment: 64) }
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Bytes held for keys and values (all layers, the allocated capacity).
    public var byteCount: Int { 2 * numLayers * numKVHeads * capacity * headDim * precision.elementBytes }

    /// Forgets every token (keeps the memory).
    public func reset() { length = 0 }

    /// Makes room for `newLength` tokens, preserving the stored ones.
    func reserve(_ newLength: Int) throws {
        guard newLength <= maxLength else {
            throw SwitchyardError.invalidArgument(
                "sequence of \(newLength) tokens exceeds the model's max_position_embeddings (\(maxLength))")
        }
        guard newLength > capacity else { return }
        let newCapacity = min(maxLength, max(newLength, capacity * 2))
        let rowBytes = headDim * precision.elementBytes
        func grow(_ old: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
            let fresh = UnsafeMutableRawPointer.allocate(byteCount: numKVHeads * newCapacity * rowBytes, alignment: 64)
            for h in 0..<numKVHeads {
                (fresh + h * newCapacity * rowBytes).copyMemory(
                    from: old + h * capacity * rowBytes, byteCount: length * rowBytes)
            }
            old.deallocate()
            return fresh
        }
        keys = keys.map(grow)
        values = values.map(grow)
        capacity = newCapacity
    }

    /// Stores keys and values of positions `length ..< length + n` of one layer: row `j` of `k`
    /// and `v` (`stride` floats apart, KV heads side by side) is position `length + j`, rounded
    /// to half when `precision` is `.f16`. The caller has reserved the room.
    func store(layer: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, rows n: Int, stride: Int) {
        precondition(length + n <= capacity, "reserve before storing")
        KVStorage.store(
            k, rows: n, stride: stride, heads: numKVHeads, headDim: headDim, into: keys[layer],
            half: precision == .f16, headStride: capacity * headDim, at: length)
        KVStorage.store(
            v, rows: n, stride: stride, heads: numKVHeads, headDim: headDim, into: values[layer],
            half: precision == .f16, headStride: capacity * headDim, at: length)
    }

    /// Keys of one layer (all heads, `capacity · headDim` elements apart), for the attention kernel.
    func keyStorage(layer: Int) -> UnsafeRawPointer { UnsafeRawPointer(keys[layer]) }
    /// Values of one layer, laid out as `keyStorage`.
    func valueStorage(layer: Int) -> UnsafeRawPointer { UnsafeRawPointer(values[layer]) }

    func advance(by n: Int) { length += n }
}
