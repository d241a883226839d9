/// A grow-only Float32 scratch buffer. Memory is owned here and freed in `deinit`.
final class ScratchBuffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = .allocate(capacity: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// A pointer to at least `count` floats (contents undefined after growth).
    @inline(__always)
    func get(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = max(count, capacity * 2)
            pointer = .allocate(capacity: capacity)
        }
        return pointer
    }
}

/// Scratch memory for forward passes, reused across decode steps so the decode loop allocates
/// nothing per token. One workspace serves one forward call at a time (not thread-safe); a
/// generator or a server worker owns one.
public final class ForwardWorkspace {
    let hidden = ScratchBuffer()
    let normed = ScratchBuffer()
    let q = ScratchBuffer()
    let k = ScratchBuffer()
    let v = ScratchBuffer()
    let attention = ScratchBuffer()
    let projected = ScratchBuffer()
    let gate = ScratchBuffer()
    let up = ScratchBuffer()
    let ropeCos = ScratchBuffer()
    let ropeSin = ScratchBuffer()
    let gathered = ScratchBuffer()
    /// The LM head's output for the whole batch, copied out per sequence (up to
    /// `LlamaModel.workspaceLogitsLimit` values).
    let logits = ScratchBuffer()

    /// An empty workspace; buffers grow on first use to the largest batch seen and are freed with it.
    public init() {}
}
