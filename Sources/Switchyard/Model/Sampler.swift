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
        var candidates = logits.indices.map { ($0, logits[$0] * inv) }
        candidates.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        if p.topK > 0, p.topK < candidates.count { candidates.removeSubrange(p.topK...) }
        let m = candidates[0].1
        var probs = candidates.map { Foundation.exp($0.1 - m) }
        let total = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= total }
        var keep = probs.count
        if p.topP < 1 {
            var cumulative: Float = 0
            for (i, q) in probs.enumerated() {
                cumulative += q
                if cumulative >= p.topP { keep = i + 1; break }
            }
        }
        let kept = probs[0..<keep].reduce(0, +)
        var u = rng.nextUnitFloat() * kept
        for i in 0..<keep {
            u -= probs[i]
            if u < 0 { return candidates[i].0 }
        }
        return candidates[keep - 1].0
    }

    /// Index of the largest value (first on ties).
    public static func argmax(_ x: [Float]) -> Int {
        var best = 0
        for i in x.indices where x[i] > x[best] { best = i }
        return best
    }
}
