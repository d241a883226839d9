/// Plans each generation step for requests that each carry a fixed `ExpertMix` (chosen by the
/// caller or once per prompt by a sentence-level router): every row of a request gets its mix.
public struct FixedMixPlanner: StepPlanner {
    public let delta: LoRAMixDelta
    /// One mix per request, in request order.
    public let mixes: [ExpertMix]

    public init(delta: LoRAMixDelta, mixes: [ExpertMix]) {
        self.delta = delta
        self.mixes = mixes
    }

    public func prepare(active: [Int], tokenCounts: [Int]) throws -> (any ProjectionDelta)? {
        let chosen = active.map { mixes[$0] }
        if chosen.allSatisfy({ $0.entries.isEmpty }) { return nil }
        try delta.setSequenceMixes(chosen, tokenCounts: tokenCounts)
        return delta
    }
}
