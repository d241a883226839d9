import Foundation

/// Rank-as-expert routing (SMoRA) for one request: at each adapted projection, per token, the
/// gate scores every rank (`g = G·x`), the top-k ranks are kept, and only those are computed:
/// `Δy = scale · Σ_{i ∈ topk} act(g)_i · B[:, i] · (A[i, :] · x)`. With a trace, every token's
/// active ranks and values are recorded per projection.
///
/// With PROMPT_ROUTING_WHOLE the rows at positions `0..<prompt.length` take, per projection, the
/// ranks and values chosen once for the whole prompt (`prompt.choices`); later rows choose their
/// own. The choices come from a pass over the prompt with a delta made `choosingPrompt`: at each
/// projection it scores the mean of the input over the prompt's rows (its last
/// `Selection.contextWindow` when set; the prompt's ranks at earlier projections already applied),
/// keeps that choice in `promptChoices` and runs it on every row (`BoundRouter.promptRanks`).
final class RankRoutingDelta: RequestRoutingDelta {
    /// The ranks and activation values chosen at one projection (highest gate score first).
    struct Choice {
        var ranks: [Int]
        var values: [Float]
    }
    let modules: [ProjectionSite: RankModule]
    let activation: RouterSpec.RankActivation
    let selection: Selection
    let trace: RoutingTrace?
    let prompt: (length: Int, choices: [ProjectionSite: Choice])?
    /// True for the pass that chooses a whole prompt's ranks (every row is the prompt).
    let choosingPrompt: Bool
    /// The choices that pass made, per projection.
    private(set) var promptChoices: [ProjectionSite: Choice] = [:]
    private var positions: [Int] = []
    private let gateScores = ScratchBuffer()
    private let chosenValues = ScratchBuffer()
    private var chosenRanks: [Int] = []

    init(
        modules: [ProjectionSite: RankModule], activation: RouterSpec.RankActivation, selection: Selection,
        trace: RoutingTrace?, prompt: (length: Int, choices: [ProjectionSite: Choice])? = nil,
        choosingPrompt: Bool = false
    ) {
        self.modules = modules
        self.activation = activation
        self.selection = selection
        self.trace = trace
        self.prompt = prompt
        self.choosingPrompt = choosingPrompt
    }

    /// The choice for all `rows` of `input` together: the gate applied to their mean input (over
    /// the last `Selection.contextWindow` rows when it is set).
    private func chooseForAll(_ m: RankModule, input: UnsafePointer<Float>, inFeatures: Int, rows: Int) -> Choice {
        let first = selection.contextWindow > 0 ? max(0, rows - selection.contextWindow) : 0
        var mean = [Float](repeating: 0, count: inFeatures)
        for row in first..<rows {
            let x = input + row * inFeatures
            for j in 0..<inFeatures { mean[j] += x[j] }
        }
        for j in 0..<inFeatures { mean[j] /= Float(rows - first) }
        let scores = Matrix(rows: 1, cols: inFeatures, data: mean).matmulTransposed(m.gate).data
        var ranks = [Int](repeating: 0, count: m.rank)
        var values = [Float](repeating: 0, count: m.rank)
        let k = scores.withUnsafeBufferPointer { g in
            ranks.withUnsafeMutableBufferPointer { r in
                values.withUnsafeMutableBufferPointer { v in
                    choose(g.baseAddress!, rank: m.rank, ranks: r.baseAddress!, values: v.baseAddress!)
                }
            }
        }
        return Choice(ranks: Array(ranks[0..<k]), values: Array(values[0..<k]))
    }

    func prepare(positions: [Int]) throws { self.positions = positions }

    /// The selected ranks and their activation values for one row's gate scores, written to
    /// `ranks[0..<k]` and `values[0..<k]` (k = min(topK, rank), at least 1; every rank with DENSE); returns k. Ranks are
    /// ordered by score, highest first, ties broken by lower index (as a stable descending sort).
    /// Allocation-free: it runs once per token per adapted projection.
    func choose(
        _ g: UnsafePointer<Float>, rank: Int, ranks: UnsafeMutablePointer<Int>,
        values: UnsafeMutablePointer<Float>
    ) -> Int {
        let k = selection.mode == .dense ? rank : min(max(1, selection.topK), rank)
        var count = 0
        for i in 0..<rank {
            let s = g[i]
            if count == k && !(s > g[ranks[k - 1]]) { continue }
            // Insert after every selected rank with a score >= s (earlier index wins ties).
            var p = min(count, k - 1)
            while p > 0 && g[ranks[p - 1]] < s {
                ranks[p] = ranks[p - 1]
                p -= 1
            }
            ranks[p] = i
            if count < k { count += 1 }
        }
        switch activation {
        case .none:
            for j in 0..<k { values[j] = g[ranks[j]] }
        case .sigmoid:
            for j in 0..<k { values[j] = 1 / (1 + Foundation.exp(-g[ranks[j]])) }
        case .softmax:
            let t = selection.temperature == 0 ? 1 : selection.temperature
            let m = g[ranks[0]] / t  // the largest score comes first
            var total: Float = 0
            for j in 0..<k {
                values[j] = Foundation.exp(g[ranks[j]] / t - m)
                total += values[j]
            }
            for j in 0..<k { values[j] /= total }
        }
        return k
    }

    func addDelta(
        at site: ProjectionSite, input: UnsafePointer<Float>, inFeatures: Int,
        output: UnsafeMutablePointer<Float>, outFeatures: Int, rows: Int
    ) {
        guard let m = modules[site] else { return }
        let r = m.rank
        var fixed = prompt.flatMap { p in p.choices[site].map { (length: p.length, choice: $0) } }
        if choosingPrompt, rows > 0 {
            let choice = chooseForAll(m, input: input, inFeatures: inFeatures, rows: rows)
            promptChoices[site] = choice
            fixed = (Int.max, choice)
        }
        let g = gateScores.get(rows * r)
        // Per-token gate scores only when some row chooses its own (not for a prompt's rows,
        // which all run the prompt's choice).
        if fixed.map({ f in positions.prefix(rows).contains { $0 >= f.length } }) ?? true {
            m.gate.data.withUnsafeBufferPointer { gp in
                BLAS.gemmTransB(
                    m: rows, n: r, k: inFeatures, a: input, lda: inFeatures, b: gp.baseAddress!, ldb: inFeatures,
                    c: g, ldc: r)
            }
        }
        if chosenRanks.count < r { chosenRanks = [Int](repeating: 0, count: r) }
        let values = chosenValues.get(r)
        m.a.data.withUnsafeBufferPointer { a in
            m.bTransposed.data.withUnsafeBufferPointer { bt in
                chosenRanks.withUnsafeMutableBufferPointer { ranks in
                    for row in 0..<rows {
                        let x = input + row * inFeatures, y = output + row * outFeatures
                        let k: Int
                        if let fixed, positions[row] < fixed.length {
                            k = fixed.choice.ranks.count
                            for j in 0..<k {
                                ranks[j] = fixed.choice.ranks[j]
                                values[j] = fixed.choice.values[j]
                            }
                        } else {
                            k = choose(g + row * r, rank: r, ranks: ranks.baseAddress!, values: values)
                        }
                        trace?.record(
                            position: positions[row], site: site, ranks: Array(ranks[0..<k]),
                            values: Array(UnsafeBufferPointer(start: values, count: k)))
                        for j in 0..<k {
                            let i = ranks[j]
                            let t = BLAS.dot(a.baseAddress! + i * inFeatures, x, count: inFeatures)
                            BLAS.axpy(m.scale * values[j] * t, bt.baseAddress! + i * outFeatures, y, count: outFeatures)
                        }
                    }
                }
            }
        }
    }
}
