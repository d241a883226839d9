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
        #expect(result.evaluations <= 600)
        #expect(result.history == result.history.sorted(by: >), "best-so-far never increases")
        // Bounds are respected.
        let bounded = SeparableCMAES(dimension: 1, bounds: -1...1, seed: 1).minimize(start: [0], budget: 200) { x in abs(x[0] - 3) }
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
            let completion = try Generator(model: model).generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 4),
                                                                  routing: .experts([experts[0]]))
            return FewShotExample(prompt: prompt, completion: completion)
        }
        return (model, experts, examples)
    }

    @Test func objectiveIsTheCompletionCrossEntropyOfTheComposedAdapter() throws {
        let (model, experts, examples) = try Self.setup()
        let hub = try LoraHubComposer(model: model, experts: experts, examples: examples, l1: 0.1)
        // Weight 1 on one expert reproduces that expert exactly.
        let composed = hub.compose([1, 0, 0], name: "c")
        let x = [130, 15, 432, 135]
        let a = LoRAMixDelta(experts: [composed]), b = LoRAMixDelta(experts: [experts[0]])
        try a.setRowMixes(Array(repeating: .single(0), count: x.count))
        try b.setRowMixes(Array(repeating: .single(0), count: x.count))
        let la = try model.forward([SequenceInput(tokens: x, cache: model.makeCache())], logits: .all, delta: a)[0]
        let lb = try model.forward([SequenceInput(tokens: x, cache: model.makeCache())], logits: .all, delta: b)[0]
        #expect(maxAbsDifference(la.data, lb.data) <= 1e-5)
        // The objective adds the L1 penalty to the cross-entropy.
        let ce = try hub.crossEntropy(composed)
        #expect(abs(try hub.objective([1, 0, 0]) - (ce + 0.1)) < 1e-5)
        #expect(try hub.crossEntropy(composed) < hub.crossEntropy(nil))
    }

    @Test func searchFindsWeightsBetterThanTheStart() throws {
        let (model, experts, examples) = try Self.setup()
        let hub = try LoraHubComposer(model: model, experts: experts, examples: examples, l1: 0.01)
        let start = try hub.objective([0, 0, 0])
        let result = try hub.search(budget: 60, seed: 1)
        #expect(result.bestValue < start - 0.05, "search \(result.bestValue) vs start \(start)")
        // A = Σ w·√s·A and B = Σ w·√s·B, so w and −w give the same update for one expert: compare |w|.
        let magnitude = result.best.map(abs)
        #expect(magnitude[0] > magnitude[1] && magnitude[0] > magnitude[2], "the generating expert should dominate: \(result.best)")
        // The winner writes out as an ordinary PEFT adapter.
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try hub.compose(result.best, name: "hub").write(to: dir.appendingPathComponent("hub"))
        let reloaded = try LoRAAdapter.load(directory: dir.appendingPathComponent("hub"), base: model.config)
        #expect(reloaded.modules.count == hub.compose(result.best, name: "hub").modules.count)
    }

    @Test func refusesMixedRanks() throws {
        let (model, experts, examples) = try Self.setup()
        let mlp = try LoRAAdapter.load(directory: FixturePaths.url("adapters/mlp-r8-rslora"), base: model.config)
        #expect(throws: SwitchyardError.self) { try LoraHubComposer(model: model, experts: [experts[0], mlp], examples: examples) }
    }
}
