import Foundation

/// One few-shot example of a new task: prompt and completion token ids.
public struct FewShotExample: Sendable, Equatable {
    /// The input's token ids (non-empty); conditions the completion but is not scored.
    public var prompt: [Int]
    /// The expected output's token ids (non-empty); the loss is their cross-entropy.
    public var completion: [Int]
    /// An example of `prompt` followed by `completion`.
    public init(prompt: [Int], completion: [Int]) {
        self.prompt = prompt
        self.completion = completion
    }
}

/// The gradient-free optimisers composition can use.
public enum CompositionOptimizer: String, CaseIterable, Sendable {
    /// COBYLA, deterministic trust region (what nevergrad's `NGOpt` runs for LoraHub): the default.
    case cobyla
    /// Separable CMA-ES (seeded; needs a few hundred evaluations to catch up).
    case cmaes
}

/// Where composition's search starts.
public enum CompositionStart: String, CaseIterable, Sendable {
    /// w = 0, the base model (LoraHub's start).
    case zero
    /// Each expert alone at weight 1 first (one evaluation each, within the budget), then the
    /// search from the best of them: the default.
    case bestSingle = "best-single"
}

/// How composition turns weights w over experts into one adapter.
public enum CompositionCombination: String, CaseIterable, Sendable {
    /// LoraHub's: the factors are mixed, `A = Σ w_i·√s_i·A_i`, `B = Σ w_i·√s_i·B_i` (scale 1; equal
    /// to LoraHub's `s·(Σ w_i A_i)(Σ w_i B_i)` when the experts share a scale). Ranks must agree.
    /// The delta is `Σ_i Σ_j w_i·w_j·√(s_i·s_j)·B_i·A_j`: each expert enters as w², and the cross
    /// terms `B_i·A_j` of independently trained experts are not any expert's update.
    case lorahub
    /// PEFT's `cat` (`LoRAAdapter.combine(type: .cat)`): the ranks of the experts of nonzero weight
    /// concatenated, the delta exactly
    /// `Σ w_i·s_i·B_i·A_i` — what mixing the experts at inference (`--expert a=w …`) applies.
    case cat

    /// The combination `switchyard compose` and the server's `Compose` use when none is named:
    /// `cat`, measured better on the demo's held-out tasks (README.md, "Composition").
    public static let `default`: CompositionCombination = .cat
}

/// How composition settles on its weights once the search has spent its budget.
public enum CompositionSelection: String, CaseIterable, Sendable {
    /// The search's best by the objective, as LoraHub returns it.
    case objective
    /// The search's best or one expert alone, whichever completes the most examples exactly
    /// (greedy decoding). On a tie the expert alone wins, unless the search's best completes every
    /// example or neither completes any; between experts alone, the lower objective. The few-shot
    /// cross-entropy rewards weights that hedge over examples an expert gets confidently wrong,
    /// and hedging can lose the examples it got right: on the demo's spell_backwards the search
    /// moved off the reverse expert (2 of the 5 shots exact, 58% on the test split) to a mix with
    /// a lower objective (1 of 5, 18%). Where the two complete as many examples, the mix is the
    /// one fitted to them (the lowest of 40 noisy objectives) and the expert the one trained for a
    /// skill: over seven shot draws of every held-out task (dev splits) preferring the expert
    /// changed only spell_backwards, two draws from 36% and 38% to 50%. The default.
    case exactMatch = "exact-match"

    /// The selection `switchyard compose` and the server's `Compose` use.
    public static let `default`: CompositionSelection = .exactMatch
}

/// The weights composition settles on (`LoraHubComposer.select`).
public struct CompositionChoice: Sendable, Equatable {
    /// The chosen weights, one per expert.
    public var weights: [Float]
    /// LoraHub's objective at `weights`.
    public var objective: Float
    /// Examples `weights` completes exactly (nil when selected by the objective).
    public var exactMatches: Int?
    /// Examples the search's best completes exactly (nil when selected by the objective).
    public var searchExactMatches: Int?
}

/// LoraHub-style gradient-free composition: find weights w over K experts such that the adapter
/// they combine into (`CompositionCombination`: LoraHub's factor mix, or the sum of the deltas)
/// minimises LoraHub's objective (`lorahub/algorithm.py`): the base model's mean cross-entropy
/// over the completion tokens of a few examples divided by the number of examples, plus
/// `l1 · mean|w_i|`.
public final class LoraHubComposer {
    /// The base model the loss is measured with (read only; never merged into).
    public let model: LlamaModel
    /// The experts composed, in weight order.
    public let experts: [LoRAAdapter]
    /// The few-shot examples the loss averages over (at least one).
    public let examples: [FewShotExample]
    /// Weight of the `mean|w_i|` regulariser added to the loss (default 0.05, as LoraHub).
    public let l1: Float
    /// How the weights combine the experts into one adapter.
    public let combination: CompositionCombination
    private let workspace = ForwardWorkspace()
    private let rank: Int

    /// An objective over `experts` (each once) on `examples`; `l1` (finite, ≥ 0) weights mean|w|.
    /// `.lorahub` needs experts of one rank; `.cat` takes any single-rank experts.
    public init(
        model: LlamaModel, experts: [LoRAAdapter], examples: [FewShotExample], l1: Float = 0.05,
        combination: CompositionCombination = .default
    ) throws {
        guard !experts.isEmpty else { throw SwitchyardError.invalidArgument("compose: no experts") }
        guard !examples.isEmpty, examples.allSatisfy({ !$0.prompt.isEmpty && !$0.completion.isEmpty }) else {
            throw SwitchyardError.invalidArgument(
                "compose: need at least one example, each with a prompt and a completion")
        }
        if let twice = experts.map(\.name).firstRepeated() {
            throw SwitchyardError.invalidArgument("compose: expert '\(twice)' is in the pool twice")
        }
        guard l1.isFinite, l1 >= 0 else {
            throw SwitchyardError.invalidArgument("compose: l1 must be a finite number ≥ 0, got \(l1)")
        }
        let ranks = Set(experts.flatMap(\.ranks))
        switch combination {
        case .lorahub:
            guard ranks.count == 1 else {
                throw SwitchyardError.invalidArgument(
                    "compose: LoraHub's combination needs experts of one rank; found \(experts.map { "\($0.name): \($0.ranks)" }.joined(separator: ", ")) (cat takes mixed ranks)"
                )
            }
        case .cat:
            if let mixed = experts.first(where: { $0.ranks.count != 1 }) {
                throw SwitchyardError.invalidArgument(
                    "compose: cat needs one rank per expert; \(mixed.name) has \(mixed.ranks) (rank_pattern)")
            }
        }
        self.model = model
        self.experts = experts
        self.examples = examples
        self.l1 = l1
        self.combination = combination
        rank = ranks.max() ?? 0
    }

    /// The composed adapter for weights `w`, marked as composed (`LoRAAdapter.composition`, which
    /// lists every expert's weight). With `cat`, experts of weight exactly 0 are left out of the
    /// concatenation (their rows would be zeros): an expert alone gives an adapter of its own rank,
    /// not the pool's total; if every weight is 0, the first expert's rows (zeros) stand in.
    public func compose(_ w: [Float], name: String) throws -> LoRAAdapter {
        guard w.count == experts.count else {
            throw SwitchyardError.invalidArgument("compose: \(w.count) weights for \(experts.count) experts")
        }
        let composition = zip(experts, w).map { "\($0.name)=\($1)" }.joined(separator: ",")
        if combination == .cat {
            var kept = w.indices.filter { w[$0] != 0 }
            if kept.isEmpty { kept = [0] }
            var adapter = try LoRAAdapter.combine(
                kept.map { experts[$0] }, weights: kept.map { w[$0] }, type: .cat, name: name)
            adapter.composition = composition
            return adapter
        }
        let sites = Set(experts.flatMap { $0.modules.keys })
        var modules: [ProjectionSite: LoRAModule] = [:]
        for site in sites {
            let present = zip(experts, w).compactMap { e, wi in e.modules[site].map { ($0, wi) } }
            modules[site] = LoRAModule.weightedSum(
                present.map { m, wi in
                    let f = wi * m.scale.squareRoot()
                    return (m, f, f)
                }, site: site)
        }
        let kinds = ProjectionKind.allCases.filter { k in sites.contains { $0.kind == k } }
        let layers = Set(sites.map(\.layer)).sorted()
        let config = AdapterConfig(
            rank: rank, alpha: Float(rank), targetModules: .names(kinds.map(\.rawValue)),
            layersToTransform: layers == Array(0..<layers.count) ? nil : layers,
            baseModelNameOrPath: experts[0].config.baseModelNameOrPath)
        return LoRAAdapter(name: name, config: config, modules: modules, composition: composition)
    }

    /// Mean cross-entropy of the completion tokens under `adapter` (nil: the base model).
    public func crossEntropy(_ adapter: LoRAAdapter?) throws -> Float {
        let inputs = examples.map {
            SequenceInput(
                tokens: $0.prompt + $0.completion,
                cache: model.makeCache(initialCapacity: $0.prompt.count + $0.completion.count))
        }
        var delta: LoRAMixDelta? = nil
        if let adapter {
            delta = LoRAMixDelta(experts: [adapter])
            try delta!.setRowMixes(Array(repeating: .single(0), count: inputs.reduce(0) { $0 + $1.tokens.count }))
        }
        let logits = try model.forward(inputs, logits: .all, delta: delta, workspace: workspace)
        var total: Float = 0, count = 0
        for (ex, l) in zip(examples, logits) {
            l.data.withUnsafeBufferPointer { all in
                for (j, target) in ex.completion.enumerated() {
                    let r = ex.prompt.count - 1 + j  // the row of logits predicting completion token j
                    let row = UnsafeBufferPointer(rebasing: all[(r * l.cols)..<((r + 1) * l.cols)])
                    total -= Ops.logSoftmax(row, at: target)
                }
            }
            count += ex.completion.count
        }
        return total / Float(count)
    }

    /// How many examples `adapter` (nil: the base model) completes exactly: greedy decoding from
    /// each prompt gives the completion's tokens (its end-of-sequence token included when the
    /// caller appended one).
    public func exactMatches(_ adapter: LoRAAdapter?) throws -> Int {
        let requests = examples.map { GenerationRequest(promptTokens: $0.prompt, maxNewTokens: $0.completion.count) }
        let routing = adapter.map { RequestRouting.experts([$0]) } ?? .base
        let outputs = try Generator(model: model).generateBatch(
            requests, routing: Array(repeating: .resolved(routing), count: requests.count))
        return zip(outputs, examples).filter { $0 == $1.completion }.count
    }

    /// The weights to keep after a search (`CompositionSelection`): with `.objective` the search's
    /// best; with `.exactMatch` the search's best unless an expert alone (weight 1) completes more
    /// examples exactly, or as many (at least one) while the search's best does not complete them
    /// all; among such experts the most matches, then the lower objective. Costs one greedy
    /// decoding of the examples for the search's best and, unless it completes them all, one per
    /// expert, and one objective per expert kept as a candidate.
    public func select(_ result: OptimizationResult, by selection: CompositionSelection = .default) throws
        -> CompositionChoice
    {
        var choice = CompositionChoice(weights: result.best, objective: result.bestValue)
        guard selection == .exactMatch else { return choice }
        let searched = try exactMatches(try compose(result.best, name: "candidate"))
        choice.exactMatches = searched
        choice.searchExactMatches = searched
        guard searched < examples.count else { return choice }
        var alone: CompositionChoice?
        for i in experts.indices {
            let weights = experts.indices.map { Float($0 == i ? 1 : 0) }
            guard weights != result.best else { continue }
            let matches = try exactMatches(try compose(weights, name: "candidate"))
            guard matches > 0, matches >= searched, matches >= alone?.exactMatches ?? 0 else { continue }
            let value = try objective(weights)
            if let kept = alone, matches == kept.exactMatches, value >= kept.objective { continue }
            alone = CompositionChoice(
                weights: weights, objective: value, exactMatches: matches, searchExactMatches: searched)
        }
        return alone ?? choice
    }

    /// LoraHub's objective for weights `w`: `crossEntropy / examples + l1 · mean|w|`, the scaling
    /// of upstream `algorithm.py` (`default_get_loss` divides the batch's mean token loss by the
    /// number of examples; `default_l1_regularization` is `0.05 · Σ|w| / K`).
    public func objective(_ w: [Float]) throws -> Float {
        try crossEntropy(try compose(w, name: "candidate")) / Float(examples.count) + l1 * w.reduce(0) { $0 + abs($1) }
            / Float(w.count)
    }

    /// The experts to compose when none are named: the trained experts (composed ones are left
    /// out) with one rank each; for `.lorahub`, which sums A and B matrices, only those of the
    /// registry's most common rank. Empty when there are none.
    public static func defaultExperts(
        in registry: ExpertRegistry, combination: CompositionCombination = .default
    ) -> [String] {
        let single = registry.list().filter { $0.summary.ranks.count == 1 && $0.summary.composition == nil }
        if combination == .cat { return single.map(\.name) }
        let counts = Dictionary(grouping: single, by: { $0.summary.ranks[0] }).mapValues(\.count)
        guard let rank = counts.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key })?.key else {
            return []
        }
        return single.filter { $0.summary.ranks == [rank] }.map(\.name)
    }

    /// The `count` experts a sentence router scores highest on the examples' prompts (gate
    /// probabilities averaged over the examples; ties to the router's earlier expert), in that
    /// order: a pool for composition chosen by routing.
    public static func preselect(router: BoundRouter, prompts: [[Int]], count: Int) throws -> [String] {
        guard count > 0 else {
            throw SwitchyardError.invalidArgument("preselect: the pool size must be ≥ 1, found \(count)")
        }
        guard !prompts.isEmpty else { throw SwitchyardError.invalidArgument("preselect: no example prompts") }
        var mean = [Float](repeating: 0, count: router.spec.experts.count)
        for prompt in prompts {
            let p = router.selection.probabilities(try router.sentenceMix(prompt: prompt).scores)
            for i in mean.indices { mean[i] += p[i] / Float(prompts.count) }
        }
        let order = mean.indices.sorted { mean[$0] != mean[$1] ? mean[$0] > mean[$1] : $0 < $1 }
        return order.prefix(count).map { router.spec.experts[$0].name }
    }

    /// Searches the weights within ±1.5 (LoraHub's bounds) with exactly `budget` objective
    /// evaluations and returns the best. `start` `.bestSingle` (the default) first evaluates each
    /// expert alone at weight 1 (n of the evaluations), then searches from the best of them, so the
    /// result is never worse on the examples than the best single expert; `.zero` searches from
    /// w = 0 as LoraHub does. COBYLA starts with radius `initialRadius` (0.5, nevergrad's step for
    /// these bounds); CMA-ES with step 0.5 and `seed`. `shouldStop` is asked before every
    /// evaluation; when it answers true the search throws `CancellationError` (a server stops a
    /// composition whose caller went away).
    public func search(
        optimizer: CompositionOptimizer = .cobyla, budget: Int = 40, seed: UInt64 = 0,
        initialRadius: Float = defaultInitialRadius, start: CompositionStart = .bestSingle,
        onEvaluation: ((Int, Float) -> Void)? = nil, shouldStop: (() -> Bool)? = nil
    ) throws -> OptimizationResult {
        guard budget >= 1 else {
            throw SwitchyardError.invalidArgument("compose: the budget must be at least 1 evaluation, got \(budget)")
        }
        let objective = { (w: [Float]) throws -> Float in
            if let shouldStop, shouldStop() { throw CancellationError() }
            return try self.objective(w)
        }
        let n = experts.count
        var ledger = EvaluationLedger(budget: budget, onEvaluation: onEvaluation)
        var origin = [Float](repeating: 0, count: n)
        if start == .bestSingle {
            for i in 0..<n where !ledger.exhausted {
                _ = try ledger.evaluate((0..<n).map { $0 == i ? 1 : 0 }, objective)
            }
            origin = ledger.best
            // The search evaluates its start first: that value is known, so it costs nothing.
            ledger.answerNextFromBest()
        }
        switch optimizer {
        case .cobyla:
            try Cobyla(dimension: n, initialRadius: initialRadius, bounds: Self.bounds)
                .minimize(start: origin, ledger: &ledger, objective: objective)
        case .cmaes:
            try SeparableCMAES(dimension: n, initialStep: 0.5, bounds: Self.bounds, seed: seed)
                .minimize(start: origin, ledger: &ledger, objective: objective)
        }
        return ledger.result
    }

    /// COBYLA's default initial radius: 0.5, nevergrad's step for LoraHub's bounds.
    public static let defaultInitialRadius: Float = 0.5

    /// LoraHub's bounds on every weight.
    public static let bounds: ClosedRange<Float> = -1.5...1.5
}
