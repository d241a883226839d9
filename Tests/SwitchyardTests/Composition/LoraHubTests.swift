import Foundation
import Testing

@testable import Switchyard

@Suite struct LoraHubTests {
    @Test func cmaesMinimisesAShiftedQuadratic() {
        let target: [Float] = [0.7, -1.1, 0.3, 1.2, -0.4]
        let cma = SeparableCMAES(dimension: 5, initialStep: 0.5, seed: 3)
        let result = cma.minimize(start: [Float](repeating: 0, count: 5), budget: 600) { x in
            zip(x, target).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        }
        #expect(result.bestValue < 1e-3, "best \(result.bestValue)")
        #expect(result.evaluations == 600 && result.history.count == 600, "the whole budget is spent")
        #expect(result.history == result.history.sorted(by: >), "best-so-far never increases")
        // A budget that ends mid-generation is still spent (40 = 1 + 3 generations of 11 + 6).
        var calls = 0
        let partial = cma.minimize(start: [Float](repeating: 0, count: 5), budget: 40) { x in
            calls += 1; return x.reduce(0) { $0 + $1 * $1 }
        }
        #expect(partial.evaluations == 40 && calls == 40)
        // Bounds are respected.
        let bounded = SeparableCMAES(dimension: 1, bounds: -1...1, seed: 1).minimize(start: [0], budget: 200) { x in
            abs(x[0] - 3)
        }
        #expect(bounded.best == [1])
    }

    static func setup() throws -> (LlamaModel, [LoRAAdapter], [FewShotExample]) {
        let model = try LlamaModel.load(directory: FixturePaths.url("models/llama-gqa"))
        let experts = try ["attn-r4", "attn-r4b", "layers-list"].map {
            try LoRAAdapter.load(directory: FixturePaths.url("adapters/\($0)"), base: model.config)
        }
        // A "new task": what attn-r4 itself generates after a few prompts.
        var rng = SeededRandom(seed: 9)
        let examples = try (0..<4).map { _ -> FewShotExample in
            let prompt = (0..<6).map { _ in 3 + Int(rng.next() % 590) }
            let completion = try Generator(model: model).generate(
                GenerationRequest(promptTokens: prompt, maxNewTokens: 4),
                routing: .experts([experts[0]]))
            return FewShotExample(prompt: prompt, completion: completion)
        }
        return (model, experts, examples)
    }

    @Test func objectiveIsTheCompletionCrossEntropyOfTheComposedAdapter() throws {
        let (model, experts, examples) = try Self.setup()
        let hub = try LoraHubComposer(model: model, experts: experts, examples: examples, l1: 0.1)
        // Weight 1 on one expert reproduces that expert exactly.
        let composed = try hub.compose([1, 0, 0], name: "c")
        let x = [130, 15, 432, 135]
        let a = LoRAMixDelta(experts: [composed]), b = LoRAMixDelta(experts: [experts[0]])
        try a.setRowMixes(Array(repeating: .single(0), count: x.count))
        try b.setRowMixes(Array(repeating: .single(0), count: x.count))
        let la = try model.forward([SequenceInput(tokens: x, cache: model.makeCache())], logits: .all, delta: a)[0]
        let lb = try model.forward([SequenceInput(tokens: x, cache: model.makeCache())], logits: .all, delta: b)[0]
        #expect(maxAbsDifference(la.data, lb.data) <= 1e-5)
        // LoraHub's scaling: cross-entropy / examples + l1 · mean|w|.
        let ce = try hub.crossEntropy(composed)
        #expect(
            abs(
                try hub.objective([1, 0, -0.5])
                    - (try hub.crossEntropy(try hub.compose([1, 0, -0.5], name: "d")) / 4 + 0.1 * 1.5 / 3)) < 1e-5)
        #expect(abs(try hub.objective([1, 0, 0]) - (ce / 4 + 0.1 / 3)) < 1e-5)
        #expect(try hub.crossEntropy(composed) < hub.crossEntropy(nil))
    }

    /// The cross-entropy the objective reads is the mean, over every completion token of every
    /// example, of −log softmax(logits)[token], here computed in Double from the model's logits.
    @Test func crossEntropyIsTheMeanNegativeLogLikelihoodOfTheCompletions() throws {
        let (model, experts, examples) = try Self.setup()
        let hub = try LoraHubComposer(model: model, experts: experts, examples: examples)
        var total = 0.0, count = 0
        for ex in examples {
            let l = try model.forward(
                [SequenceInput(tokens: ex.prompt + ex.completion, cache: model.makeCache())], logits: .all)[0]
            for (j, token) in ex.completion.enumerated() {
                let row = l.row(ex.prompt.count - 1 + j).map(Double.init)
                let m = row.max()!
                total += m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) }) - row[token]
                count += 1
            }
        }
        let expected = total / Double(count)
        #expect(abs(Double(try hub.crossEntropy(nil)) - expected) <= 1e-5 * max(1, expected), "\(expected)")
    }

    /// The logits of `tokens` through `delta` (one row mix for every position).
    static func logits(_ model: LlamaModel, _ tokens: [Int], _ delta: LoRAMixDelta, _ mix: ExpertMix) throws -> [Float]
    {
        try delta.setRowMixes(Array(repeating: mix, count: tokens.count))
        return try model.forward([SequenceInput(tokens: tokens, cache: model.makeCache())], logits: .all, delta: delta)[
            0
        ]
        .data
    }

    @Test func catCombinationIsTheWeightedSumOfTheExperts() throws {
        let (model, experts, examples) = try Self.setup()
        let w: [Float] = [0.8, -0.6, 1.3]
        let x = [130, 15, 432, 135, 7]
        let mixed = try Self.logits(
            model, x, LoRAMixDelta(experts: experts),
            ExpertMix(w.indices.map { ExpertMix.Entry(expert: $0, weight: w[$0]) }))
        let cat = try LoraHubComposer(model: model, experts: experts, examples: examples, combination: .cat)
        let composed = try cat.compose(w, name: "cat")
        #expect(composed.ranks == [experts.map { $0.ranks[0] }.reduce(0, +)])
        let viaCat = try Self.logits(model, x, LoRAMixDelta(experts: [composed]), .single(0))
        #expect(maxAbsDifference(viaCat, mixed) <= 1e-5, "cat applies Σ w·s·B·A, as mixing at inference does")
        // LoraHub's factor mix is another update (w² per expert and cross terms) at the same weights.
        let lorahub = try LoraHubComposer(model: model, experts: experts, examples: examples, combination: .lorahub)
        let viaFactors = try Self.logits(
            model, x, LoRAMixDelta(experts: [try lorahub.compose(w, name: "lh")]), .single(0))
        #expect(maxAbsDifference(viaFactors, mixed) > 1e-3)
        // The objective reads the combination; the composition metadata records the weights.
        #expect(composed.composition == "attn-r4=0.8,attn-r4b=-0.6,layers-list=1.3")
        #expect(abs(try cat.objective(w) - (try cat.crossEntropy(composed) / 4 + 0.05 * 2.7 / 3)) < 1e-5)
    }

    /// Experts of weight 0 are left out of a `cat` composition: an expert alone composes to an
    /// adapter of its own rank with its own logits, a zero weight drops its rank from a mix, and all
    /// zeros give a zero update; the metadata still lists every weight.
    @Test func catCombinationLeavesZeroWeightsOut() throws {
        let (model, experts, examples) = try Self.setup()
        let x = [130, 15, 432, 135, 7]
        let cat = try LoraHubComposer(model: model, experts: experts, examples: examples, combination: .cat)
        let alone = try cat.compose([0, 1, 0], name: "alone")
        #expect(alone.ranks == experts[1].ranks)
        #expect(alone.composition == "attn-r4=0.0,attn-r4b=1.0,layers-list=0.0")
        let direct = try Self.logits(model, x, LoRAMixDelta(experts: [experts[1]]), .single(0))
        let viaAlone = try Self.logits(model, x, LoRAMixDelta(experts: [alone]), .single(0))
        #expect(maxAbsDifference(viaAlone, direct) <= 1e-6)
        let pair = try cat.compose([0.7, 0, -0.4], name: "pair")
        #expect(pair.ranks == [experts[0].ranks[0] + experts[2].ranks[0]])
        let mixed = try Self.logits(
            model, x, LoRAMixDelta(experts: experts),
            ExpertMix([ExpertMix.Entry(expert: 0, weight: 0.7), ExpertMix.Entry(expert: 2, weight: -0.4)]))
        #expect(maxAbsDifference(try Self.logits(model, x, LoRAMixDelta(experts: [pair]), .single(0)), mixed) <= 1e-5)
        let none = try cat.compose([0, 0, 0], name: "none")
        let base = try model.forward([SequenceInput(tokens: x, cache: model.makeCache())], logits: .all)[0].data
        #expect(maxAbsDifference(try Self.logits(model, x, LoRAMixDelta(experts: [none]), .single(0)), base) <= 1e-6)
    }

    @Test(arguments: CompositionOptimizer.allCases)
    func searchFindsWeightsBetterThanTheStart(optimizer: CompositionOptimizer) throws {
        let (model, experts, examples) = try Self.setup()
        let hub = try LoraHubComposer(model: model, experts: experts, examples: examples, l1: 0.01)
        let start = try hub.objective([0, 0, 0])
        let result = try hub.search(optimizer: optimizer, budget: 60, seed: 1)
        #expect(result.evaluations == 60)
        #expect(result.bestValue < start - 0.05 / 4, "search \(result.bestValue) vs start \(start)")
        // (With LoraHub's combination w and −w give the same update for one expert: compare |w|.)
        let magnitude = result.best.map(abs)
        #expect(
            magnitude[0] > magnitude[1] && magnitude[0] > magnitude[2],
            "the generating expert should dominate: \(result.best)")
        // The winner writes out as an ordinary PEFT adapter.
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try hub.compose(result.best, name: "hub").write(to: dir.appendingPathComponent("hub"))
        let reloaded = try LoRAAdapter.load(directory: dir.appendingPathComponent("hub"), base: model.config)
        #expect(try reloaded.modules.count == hub.compose(result.best, name: "hub").modules.count)
        // It is marked as composed (safetensors metadata), with the experts and weights it came from.
        #expect(reloaded.composition == zip(experts, result.best).map { "\($0.name)=\($1)" }.joined(separator: ","))
        #expect(
            try LoRAAdapter.inspect(directory: dir.appendingPathComponent("hub"), base: model.config).composition
                == reloaded.composition)
    }

    @Test(arguments: CompositionOptimizer.allCases)
    func searchStartsFromTheBestSingleExpert(optimizer: CompositionOptimizer) throws {
        let (model, experts, examples) = try Self.setup()
        let hub = try LoraHubComposer(model: model, experts: experts, examples: examples)
        let singles = try experts.indices.map { i in try hub.objective(experts.indices.map { $0 == i ? 1 : 0 }) }
        let bestSingle = singles.min()!
        // A budget of n is the screen alone: the best expert at weight 1, exactly.
        let screen = try hub.search(optimizer: optimizer, budget: experts.count)
        #expect(screen.evaluations == experts.count && screen.bestValue == bestSingle)
        #expect(screen.best == experts.indices.map { $0 == singles.firstIndex(of: bestSingle)! ? 1 : 0 })
        // A larger budget is spent exactly (the search's known first point is not counted again),
        // its history never increases, and it ends no worse than the best single expert.
        var reported: [Int] = []
        let result = try hub.search(optimizer: optimizer, budget: 12) { evaluations, _ in reported.append(evaluations) }
        #expect(result.evaluations == 12 && result.history.count == 12 && reported == Array(1...12))
        #expect(result.history == result.history.sorted(by: >) && result.history[experts.count - 1] == bestSingle)
        let recomputed = try hub.objective(result.best)
        #expect(result.bestValue <= bestSingle && abs(recomputed - result.bestValue) < 1e-6)
        // From zero (LoraHub's start) the first point is w = 0.
        let zero = try hub.search(optimizer: optimizer, budget: 1, start: .zero)
        #expect(zero.best == [0, 0, 0])
    }

    /// Exact-match selection keeps an expert alone that completes more examples exactly than the
    /// search's best, and the search's best otherwise; objective selection keeps the search's best.
    @Test func exactMatchSelectionKeepsAnExpertThatCompletesMoreExamples() throws {
        let (model, experts, examples) = try Self.setup()
        let hub = try LoraHubComposer(model: model, experts: experts, examples: examples)
        // The examples are attn-r4's own greedy completions: it alone completes all four.
        #expect(try hub.exactMatches(experts[0]) == examples.count)
        let other = try hub.exactMatches(experts[1]), base = try hub.exactMatches(nil)
        #expect(other < examples.count && base < examples.count, "attn-r4b \(other), base \(base)")
        // A search that ended on attn-r4b (as a hedging mix can): attn-r4 alone replaces it.
        let elsewhere = OptimizationResult(best: [0, 1, 0], bestValue: 0.1, evaluations: 1, history: [0.1])
        let choice = try hub.select(elsewhere, by: .exactMatch)
        #expect(choice.weights == [1, 0, 0] && choice.exactMatches == examples.count)
        let alone = try hub.objective([1, 0, 0])
        #expect(choice.searchExactMatches == other && abs(choice.objective - alone) < 1e-6)
        #expect(try hub.select(elsewhere, by: .objective) == CompositionChoice(weights: [0, 1, 0], objective: 0.1))
        // A search's best that completes as many as any expert alone stays.
        let mix = OptimizationResult(best: [1, 0.01, 0], bestValue: 0.2, evaluations: 1, history: [0.2])
        let kept = try hub.select(mix, by: .exactMatch)
        #expect(kept.weights == mix.best && kept.objective == 0.2 && kept.exactMatches == examples.count)
    }

    /// Where the search's best misses some examples, an expert alone that completes as many wins
    /// the tie; where neither completes any, the search's best stays.
    @Test func exactMatchSelectionPrefersAnExpertAloneOnATie() throws {
        let (model, experts, all) = try Self.setup()
        // One example no weights complete (its completion is attn-r4's with the last token
        // changed): attn-r4 alone completes the other three, and so does a search's best next to it.
        var examples = all
        let last = examples[3].completion
        examples[3] = FewShotExample(
            prompt: examples[3].prompt, completion: last.dropLast() + [last.last! == 5 ? 6 : 5])
        let hub = try LoraHubComposer(model: model, experts: experts, examples: examples)
        #expect(try hub.exactMatches(experts[0]) == 3)
        let near = OptimizationResult(best: [1, 0.01, 0], bestValue: 0.05, evaluations: 1, history: [0.05])
        let composed = try hub.compose(near.best, name: "near")
        #expect(try hub.exactMatches(composed) == 3)
        let choice = try hub.select(near, by: .exactMatch)
        #expect(choice.weights == [1, 0, 0] && choice.exactMatches == 3 && choice.searchExactMatches == 3)
        // No example complete by anything: the search's best stays.
        let none = examples.map { FewShotExample(prompt: $0.prompt, completion: $0.completion.dropLast() + [7, 7, 7]) }
        let nothing = try LoraHubComposer(model: model, experts: experts, examples: none)
        for expert in experts { #expect(try nothing.exactMatches(expert) == 0) }
        let stays = try nothing.select(near, by: .exactMatch)
        #expect(stays.weights == near.best && stays.exactMatches == 0)
    }

    /// `shouldStop` is asked before every evaluation: answering true stops the search there.
    @Test(arguments: CompositionOptimizer.allCases)
    func searchStopsWhenAsked(optimizer: CompositionOptimizer) throws {
        let (model, experts, examples) = try Self.setup()
        let hub = try LoraHubComposer(model: model, experts: experts, examples: examples)
        var evaluated = 0
        #expect(throws: CancellationError.self) {
            try hub.search(
                optimizer: optimizer, budget: 40, onEvaluation: { n, _ in evaluated = n },
                shouldStop: { evaluated >= 5 })
        }
        #expect(evaluated == 5)
    }

    @Test func defaultPoolsLeaveComposedExpertsOut() throws {
        let (model, experts, examples) = try Self.setup()
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let registry = try ExpertRegistry(directory: dir, base: model.config)
        for name in ["attn-r4", "attn-r4b"] { try registry.add(from: FixturePaths.url("adapters/\(name)"), name: name) }
        #expect(LoraHubComposer.defaultExperts(in: registry) == ["attn-r4", "attn-r4b"])
        // cat takes every rank; LoraHub's factor mix only the most common one.
        try registry.add(from: FixturePaths.url("adapters/mlp-r8-rslora"), name: "mlp-r8-rslora")
        #expect(
            LoraHubComposer.defaultExperts(in: registry, combination: .cat) == ["attn-r4", "attn-r4b", "mlp-r8-rslora"])
        #expect(LoraHubComposer.defaultExperts(in: registry, combination: .lorahub) == ["attn-r4", "attn-r4b"])
        try registry.remove("mlp-r8-rslora")
        let hub = try LoraHubComposer(model: model, experts: Array(experts.prefix(2)), examples: examples)
        let entry = try registry.add(try hub.compose([0.5, -0.25], name: "composed"), name: "composed")
        #expect(entry.summary.composition == "attn-r4=0.5,attn-r4b=-0.25")
        #expect(
            LoraHubComposer.defaultExperts(in: registry) == ["attn-r4", "attn-r4b"],
            "a composed expert is no default pool member")
        // Named explicitly, it composes like any other.
        let lease = try registry.acquire(["attn-r4", "composed"])
        defer { lease.release() }
        #expect(try LoraHubComposer(model: model, experts: lease.adapters, examples: examples).experts.count == 2)
    }

    @Test func preselectTakesTheSentenceRoutersTopExperts() throws {
        let s = try RouterParityTests.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let (router, lease) = try BoundRouter.bind(
            try RouterWire.decode(try RouterParityTests.bytes("sentence-topk")), model: s.model, registry: s.registry)
        defer { lease.release() }
        let names = router.spec.experts.map(\.name)
        for prompt in s.prompts {
            let (mix, scores) = try router.sentenceMix(prompt: prompt)
            let pool = try LoraHubComposer.preselect(router: router, prompts: [prompt], count: 3)
            #expect(pool.count == 3 && Set(pool).count == 3)
            #expect(pool[0] == names[mix.entries[0].expert], "the router's own first choice leads the pool")
            let ranked = scores.indices.sorted { scores[$0] > scores[$1] }.prefix(3).map { names[$0] }
            #expect(pool == ranked)
        }
        // Over several prompts the pool follows the averaged probabilities.
        let all = try LoraHubComposer.preselect(router: router, prompts: s.prompts, count: names.count)
        #expect(Set(all) == Set(names))
        #expect(throws: SwitchyardError.self) {
            try LoraHubComposer.preselect(router: router, prompts: s.prompts, count: 0)
        }
    }

    @Test func refusesAnExpertTwiceAndANegativeL1() throws {
        let (model, experts, examples) = try Self.setup()
        #expect(throws: SwitchyardError.invalidArgument("compose: expert '\(experts[0].name)' is in the pool twice")) {
            try LoraHubComposer(model: model, experts: [experts[0], experts[0]], examples: examples)
        }
        for l1 in [-0.05, Float.nan, Float.infinity] {
            #expect(throws: SwitchyardError.self, "l1 \(l1)") {
                try LoraHubComposer(model: model, experts: experts, examples: examples, l1: l1)
            }
        }
        #expect(throws: Never.self) { try LoraHubComposer(model: model, experts: experts, examples: examples, l1: 0) }
    }

    @Test func refusesMixedRanks() throws {
        let (model, experts, examples) = try Self.setup()
        let mlp = try LoRAAdapter.load(directory: FixturePaths.url("adapters/mlp-r8-rslora"), base: model.config)
        #expect(throws: SwitchyardError.self) {
            try LoraHubComposer(model: model, experts: [experts[0], mlp], examples: examples, combination: .lorahub)
        }
        // cat concatenates ranks, so it takes them mixed.
        let cat = try LoraHubComposer(model: model, experts: [experts[0], mlp], examples: examples, combination: .cat)
        #expect(try cat.compose([1, 1], name: "c").ranks == [12])
    }
}
