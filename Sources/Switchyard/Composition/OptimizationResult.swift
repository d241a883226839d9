/// What a derivative-free minimiser (`Cobyla`, `SeparableCMAES`) returns.
public struct OptimizationResult: Sendable, Equatable {
    /// The best point evaluated.
    public var best: [Float]
    /// The objective at `best`.
    public var bestValue: Float
    /// Objective evaluations spent: the whole budget.
    public var evaluations: Int
    /// The best value after each evaluation (non-increasing; `history.count == evaluations`).
    public var history: [Float]
}

/// Best-so-far bookkeeping shared by the minimisers: counts evaluations against the budget,
/// keeps the best point and the history, and reports progress after every evaluation.
struct EvaluationLedger {
    let budget: Int
    let onEvaluation: ((Int, Float) -> Void)?
    private(set) var best: [Float] = []
    private(set) var bestValue = Float.infinity
    private(set) var history: [Float] = []
    /// Set by `answerNextFromBest()`: the next evaluation, when it is at `best`, is answered from
    /// the record.
    private var nextFromBest = false

    init(budget: Int, onEvaluation: ((Int, Float) -> Void)?) {
        self.budget = budget
        self.onEvaluation = onEvaluation
    }

    var evaluations: Int { history.count }
    var exhausted: Bool { history.count >= budget }

    /// For a search that continues this ledger from `best`: its next evaluation, if it is at
    /// `best` (minimisers evaluate their start first), returns `bestValue` without calling the
    /// objective, spending budget or reporting. Any other next point is evaluated as usual.
    mutating func answerNextFromBest() { nextFromBest = true }

    /// Evaluates `objective` at `x` and records it. A NaN counts as worse than every number.
    mutating func evaluate(_ x: [Float], _ objective: ([Float]) throws -> Float) rethrows -> Float {
        if nextFromBest {
            nextFromBest = false
            if x == best { return bestValue }
        }
        let value = try objective(x)
        if value < bestValue || best.isEmpty { best = x; bestValue = value.isNaN ? .infinity : value }
        history.append(bestValue)
        onEvaluation?(history.count, bestValue)
        return value.isNaN ? .infinity : value
    }

    var result: OptimizationResult {
        OptimizationResult(best: best, bestValue: bestValue, evaluations: history.count, history: history)
    }
}
