import Foundation

/// How the next token is chosen from logits. Defaults give greedy decoding.
///
/// Order of operations follows transformers' `generate`: repetition penalty, then temperature,
/// top-k, top-p, then a draw. `temperature == 0` means greedy (argmax after the penalty; ties go to
/// the lower id, like `torch.argmax`).
public struct SamplingParameters: Sendable, Equatable {
    /// 0: greedy (argmax); otherwise logits are divided by it before softmax.
    public var temperature: Float
    /// Keep only the k most likely tokens (0: off).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches p (1: off).
    public var topP: Float
    /// > 1 discourages tokens already present in the context (CTRL / transformers semantics:
    /// a positive logit is divided by the penalty, a negative one multiplied).
    public var repetitionPenalty: Float
    /// Seed of the sampling generator (same seed, same tokens).
    public var seed: UInt64

    /// Sampling settings; the defaults are greedy decoding.
    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, repetitionPenalty: Float = 1, seed: UInt64 = 0)
    {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    /// Greedy decoding (argmax, no penalty).
    public static let greedy = SamplingParameters()

    /// Rejects values that have no meaning (negative temperature, p outside (0, 1], …).
    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else {
            throw SwitchyardError.invalidArgument("temperature must be ≥ 0, found \(temperature)")
        }
        guard topK >= 0 else { throw SwitchyardError.invalidArgument("top-k must be ≥ 0, found \(topK)") }
        guard topP > 0, topP <= 1 else {
            throw SwitchyardError.invalidArgument("top-p must be in (0, 1], found \(topP)")
        }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw SwitchyardError.invalidArgument("repetition penalty must be > 0, found \(repetitionPenalty)")
        }
    }
}

/// Draws tokens according to `SamplingParameters`, with its own seeded random stream.
public struct Sampler: Sendable {
    /// The settings this sampler applies.
    public let parameters: SamplingParameters
    private var rng: SeededRandom

    /// A sampler with its own seeded generator.
    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SeededRandom(seed: parameters.seed)
    }

    /// The next token for one row of logits; `context` is every token so far (prompt included),
    /// used by the repetition penalty.
    public mutating func next(logits input: [Float], context: [Int]) -> Int {
        var logits = input
        let p = parameters
        if p.repetitionPenalty != 1 {
            for t in Set(context) where t >= 0 && t < logits.count {
                logits[t] = logits[t] > 0 ? logits[t] / p.repetitionPenalty : logits[t] * p.repetitionPenalty
            }
        }
        if p.temperature == 0 { return Self.argmax(logits) }
        let inv = 1 / p.temperature
        let scaled = logits.map { $0 * inv }
        // A temperature so small that logits / temperature overflow: its limit, greedy.
        return scaled.withUnsafeBufferPointer { draw(from: $0) } ?? Self.argmax(logits)
    }

    /// The draw over `scaled` (logits / temperature), most likely first (ties: lower id first):
    /// top-k, then the smallest prefix whose probability reaches top-p, then a uniform draw walked
    /// down that prefix. Only the prefix the walk needs is ordered (`LogitOrder`, a heap), not the
    /// whole vocabulary: sorting 49,152 logits per token cost about 7 ms, more than the model's step.
    /// nil when the largest scaled logit is infinite (no distribution to draw from).
    private mutating func draw(from scaled: UnsafeBufferPointer<Float>) -> Int? {
        let p = parameters, n = scaled.count
        var order = LogitOrder(scaled)
        let limit = p.topK > 0 ? min(p.topK, n) : n
        // (id, probability up to the normaliser) in order, popped as the walks below need them.
        var ranked: [(id: Int, weight: Float)] = []
        let m = scaled[order.peek()]
        guard m < .infinity else { return nil }
        func ensure(_ count: Int) {
            while ranked.count < min(count, limit), let id = order.pop() {
                ranked.append((id, Foundation.exp(scaled[id] - m)))
            }
        }
        let total: Float
        if limit < n {
            ensure(limit)
            total = ranked.reduce(0) { $0 + $1.weight }
        } else {
            total = Float(Ops.sumExp(scaled, shift: m))
        }
        // Top-p: the smallest prefix reaching p of the mass (all `limit` when p is 1).
        var keep = limit, kept: Float = 1
        if p.topP < 1 {
            var cumulative: Float = 0
            var i = 0
            while i < limit {
                ensure(i + 1)
                cumulative += ranked[i].weight / total
                i += 1
                if cumulative >= p.topP { break }
            }
            keep = i
            kept = cumulative
        } else if limit < n {
            kept = ranked.reduce(0) { $0 + $1.weight / total }
        }
        var u = rng.nextUnitFloat() * kept
        var i = 0
        while i < keep {
            ensure(i + 1)
            u -= ranked[i].weight / total
            if u < 0 { return ranked[i].id }
            i += 1
        }
        ensure(keep)
        return ranked[keep - 1].id
    }

    /// Index of the largest value (first on ties; NaNs never win, but a NaN first value is
    /// returned, 0, as nothing compares greater than it): `Ops.argmax`.
    public static func argmax(_ x: [Float]) -> Int {
        x.withUnsafeBufferPointer { Ops.argmax($0) }
    }
}

/// The ids of a row of logits, most likely first (ties: the lower id first, as a stable sort by
/// descending logit orders them), produced lazily: a binary max-heap built in O(n), each `pop`
/// O(log n). Only the ids within `gap` of the largest value enter the heap at first (for a
/// model's logits, a few hundred of 49,152: their probabilities relative to the largest are at
/// least e^−gap); the rest, all below them, are heaped only if those run out, so the order is
/// exact either way. Reads `values` (which must outlive it) without copying them.
struct LogitOrder {
    private let values: UnsafeBufferPointer<Float>
    private var heap: [Int32] = []
    /// Ids below the first heap's threshold (or not comparable: NaN), in id order.
    private var rest: [Int32] = []

    /// The order of `values` (1 ..< 2^31 of them; traps otherwise).
    init(_ values: UnsafeBufferPointer<Float>, gap: Float = 16) {
        precondition(!values.isEmpty && values.count <= Int(Int32.max), "LogitOrder: 1 ... 2^31 − 1 logits")
        self.values = values
        let threshold = Ops.max(values) - gap
        for i in values.indices {
            if values[i] >= threshold { heap.append(Int32(i)) } else { rest.append(Int32(i)) }
        }
        if heap.isEmpty { swap(&heap, &rest) }  // the largest is infinite or NaN: one heap of all
        heapify()
    }

    private mutating func heapify() {
        var i = heap.count / 2 - 1
        while i >= 0 {
            siftDown(i)
            i -= 1
        }
    }

    /// Whether id `a` comes before id `b`.
    @inline(__always)
    private func before(_ a: Int32, _ b: Int32) -> Bool {
        let x = values[Int(a)], y = values[Int(b)]
        return x > y || (x == y && a < b)
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let count = heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < count, before(heap[l], heap[best]) { best = l }
            if r < count, before(heap[r], heap[best]) { best = r }
            if best == i { return }
            heap.swapAt(i, best)
            i = best
        }
    }

    /// The first id not yet popped (there is one before the first pop).
    func peek() -> Int { Int(heap[0]) }

    /// The next id in order, or nil when all have been popped.
    mutating func pop() -> Int? {
        if heap.isEmpty {
            guard !rest.isEmpty else { return nil }
            swap(&heap, &rest)
            heapify()
        }
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return Int(top)
    }
}
