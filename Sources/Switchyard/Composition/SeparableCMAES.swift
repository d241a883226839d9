import Foundation

/// A gradient-free minimiser: separable CMA-ES (Ros & Hansen 2008), the diagonal-covariance form of
/// CMA-ES — the family LoraHub uses through nevergrad. Each generation samples λ candidates from
/// N(m, σ²·diag(c)), ranks them by the objective, and moves the mean towards the best μ, adapting
/// the step size σ (cumulative path length) and the per-coordinate variances c (rank-one and
/// rank-μ updates). Candidates are clipped to `bounds`. Deterministic for a seed. Spends exactly
/// the budget: a last, partial generation is evaluated without updating the distribution.
public struct SeparableCMAES: Sendable {

    /// Number of variables (the length of `start`).
    public var dimension: Int
    /// λ, candidates per generation (default 4 + ⌊3 ln dimension⌋).
    public var populationSize: Int
    /// σ at the start, in the variables' units (default 0.5).
    public var initialStep: Float
    /// The box candidates are clipped to (default -1.5...1.5, LoraHub's weight range).
    public var bounds: ClosedRange<Float>
    /// Seeds the candidate sampling: the same seed gives the same run.
    public var seed: UInt64

    /// An optimiser over `dimension` variables; `populationSize` nil uses the standard default.
    public init(
        dimension: Int, initialStep: Float = 0.5, bounds: ClosedRange<Float> = -1.5...1.5,
        populationSize: Int? = nil, seed: UInt64 = 0
    ) {
        self.dimension = dimension
        self.initialStep = initialStep
        self.bounds = bounds
        self.populationSize = populationSize ?? (4 + Int(3 * Foundation.log(Double(max(dimension, 1)))))
        self.seed = seed
    }

    /// Minimises `objective` from `start` with exactly `budget` evaluations, calling
    /// `onEvaluation(evaluations, best)` after each.
    public func minimize(
        start: [Float], budget: Int, objective: ([Float]) throws -> Float,
        onEvaluation: ((Int, Float) -> Void)? = nil
    ) rethrows -> OptimizationResult {
        var ledger = EvaluationLedger(budget: budget, onEvaluation: onEvaluation)
        try minimize(start: start, ledger: &ledger, objective: objective)
        return ledger.result
    }

    /// Minimises from `start` until `ledger`'s budget is spent, recording into it (a ledger that
    /// already holds evaluations is continued: its count is the budget spent).
    func minimize(start: [Float], ledger: inout EvaluationLedger, objective: ([Float]) throws -> Float) rethrows {
        precondition(start.count == dimension, "start has \(start.count) values, dimension is \(dimension)")
        let n = Double(dimension), lambda = populationSize, mu = lambda / 2
        var weights = (0..<mu).map { Foundation.log(Double(mu) + 0.5) - Foundation.log(Double($0 + 1)) }
        let wsum = weights.reduce(0, +)
        weights = weights.map { $0 / wsum }
        let muEff = 1 / weights.reduce(0) { $0 + $1 * $1 }
        let cSigma = (muEff + 2) / (n + muEff + 5)
        let dSigma = 1 + 2 * max(0, ((muEff - 1) / (n + 1)).squareRoot() - 1) + cSigma
        let cc = (4 + muEff / n) / (n + 4 + 2 * muEff / n)
        // Separable CMA-ES learning rates are larger by (n + 2) / 3.
        let c1 = min(1, 2 / ((n + 1.3) * (n + 1.3) + muEff) * (n + 2) / 3)
        let cMu = min(1 - c1, 2 * (muEff - 2 + 1 / muEff) / ((n + 2) * (n + 2) + muEff) * (n + 2) / 3)
        let chiN = n.squareRoot() * (1 - 1 / (4 * n) + 1 / (21 * n * n))

        var rng = SeededRandom(seed: seed)
        var mean = start.map { Double(min(max($0, bounds.lowerBound), bounds.upperBound)) }
        var sigma = Double(initialStep)
        var variance = [Double](repeating: 1, count: dimension)
        var pSigma = [Double](repeating: 0, count: dimension), pC = pSigma
        func clip(_ x: [Double]) -> [Float] {
            x.map { Float(min(max($0, Double(bounds.lowerBound)), Double(bounds.upperBound))) }
        }

        if !ledger.exhausted { _ = try ledger.evaluate(clip(mean), objective) }
        var generation = 0
        while !ledger.exhausted {
            generation += 1
            var candidates: [(z: [Double], value: Float)] = []
            for _ in 0..<min(lambda, ledger.budget - ledger.evaluations) {
                let z = (0..<dimension).map { _ in Double(rng.nextNormal()) }
                let x = clip((0..<dimension).map { mean[$0] + sigma * variance[$0].squareRoot() * z[$0] })
                candidates.append((z, try ledger.evaluate(x, objective)))
            }
            guard candidates.count == lambda else { break }  // the budget ended mid-generation
            candidates.sort { $0.value < $1.value }
            // Recombine in z-space (clipping is treated as part of the objective).
            var zMean = [Double](repeating: 0, count: dimension)
            for (i, w) in weights.enumerated() { for j in 0..<dimension { zMean[j] += w * candidates[i].z[j] } }
            for j in 0..<dimension { mean[j] += sigma * variance[j].squareRoot() * zMean[j] }
            let normFactor = (cSigma * (2 - cSigma) * muEff).squareRoot()
            for j in 0..<dimension { pSigma[j] = (1 - cSigma) * pSigma[j] + normFactor * zMean[j] }
            let pSigmaNorm = pSigma.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let hSigma: Double =
                pSigmaNorm / (1 - Foundation.pow(1 - cSigma, 2 * Double(generation))).squareRoot() < (1.4 + 2 / (n + 1))
                    * chiN ? 1 : 0
            let ccFactor = (cc * (2 - cc) * muEff).squareRoot()
            for j in 0..<dimension {
                let y = variance[j].squareRoot() * zMean[j]
                pC[j] = (1 - cc) * pC[j] + hSigma * ccFactor * y
                var rankMu = 0.0
                for (i, w) in weights.enumerated() {
                    rankMu += w * variance[j] * candidates[i].z[j] * candidates[i].z[j]
                }
                variance[j] = (1 - c1 - cMu) * variance[j] + c1 * pC[j] * pC[j] + cMu * rankMu
                variance[j] = max(variance[j], 1e-12)
            }
            sigma *= Foundation.exp((cSigma / dSigma) * (pSigmaNorm / chiN - 1))
        }
    }
}
