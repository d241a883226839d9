import Foundation
import Testing

@testable import Switchyard

@Suite struct RankRouterTests {
    /// top-k outside 1...R (R = the ranks together, 4 + 8 here) and an expert given twice are refused.
    @Test func concatenationRefusesTopKOutsideTheRanksAndAnExpertTwice() throws {
        let model = try LlamaModel.load(directory: FixturePaths.url("models/llama-gqa"))
        let experts = try ["attn-r4", "mlp-r8-rslora"].map {
            try LoRAAdapter.load(directory: FixturePaths.url("adapters/\($0)"), base: model.config)
        }
        for k in [0, 13] {
            #expect(throws: SwitchyardError.self, "top-k \(k)") {
                try RouterSpec.rankRouter(concatenating: experts, name: "r", topK: k)
            }
        }
        #expect(throws: SwitchyardError.self) {
            try RouterSpec.rankRouter(concatenating: [experts[0], experts[0]], name: "r", topK: 4)
        }
        _ = try RouterSpec.rankRouter(concatenating: experts, name: "r", topK: 1)
    }

    /// K experts concatenated along the rank with every rank active equal the K experts summed.
    @Test func concatenatedExpertsWithAllRanksEqualTheirSum() throws {
        let model = try LlamaModel.load(directory: FixturePaths.url("models/llama-gqa"))
        let experts = try ["attn-r4", "mlp-r8-rslora"].map {
            try LoRAAdapter.load(directory: FixturePaths.url("adapters/\($0)"), base: model.config)
        }
        let spec = try RouterSpec.rankRouter(concatenating: experts, name: "cat", topK: 12)
        let bytes = RouterWire.encode(spec)
        // SMoRA routers list their source experts informationally; they bind to no LoRA weights.
        let decoded = try RouterWire.decode(bytes)
        #expect(decoded.experts.map(\.name) == ["attn-r4", "mlp-r8-rslora"])
        let router = try BoundRouter(spec: decoded, model: model, experts: [])
        let prompt = [130, 15, 432, 135, 437, 437, 146]
        let (routed, _) = try RouterParityTests.run(router, model, prompt)
        let sum = LoRAMixDelta(experts: experts)
        try sum.setRowMixes(
            Array(repeating: ExpertMix([.init(expert: 0, weight: 1), .init(expert: 1, weight: 1)]), count: prompt.count)
        )
        let expected = try model.forward(
            [SequenceInput(tokens: prompt, cache: model.makeCache())], logits: .all, delta: sum)[0]
        #expect(maxAbsDifference(routed.data, expected.data) <= 1e-4)
        // The ranks' blocks name the experts they came from.
        #expect(decoded.rankBlocks(sourceRanks: [4, 8]) == [0..<4, 4..<12])
        #expect(decoded.rankBlocks(sourceRanks: [4, 4]) == nil, "blocks that do not fill the rank are no mapping")
        // With fewer active ranks the output differs (the gate really selects).
        var partial = decoded
        partial.selection?.topK = 3
        let (fewer, _) = try RouterParityTests.run(
            try BoundRouter(spec: partial, model: model, experts: []), model, prompt)
        #expect(maxAbsDifference(fewer.data, expected.data) > 1e-3)
        // DENSE keeps every rank, whatever top_k says.
        var dense = partial
        dense.selection?.mode = .dense
        let (all, _) = try RouterParityTests.run(try BoundRouter(spec: dense, model: model, experts: []), model, prompt)
        #expect(maxAbsDifference(all.data, expected.data) <= 1e-4)
        // TOP_P and THRESHOLD are not defined for ranks: refused, naming the field.
        for mode in [Selection.Mode.topP, .threshold] {
            var other = decoded
            other.selection?.mode = mode
            other.selection?.topP = 0.5
            other.selection?.threshold = 0.1
            do {
                _ = try BoundRouter(spec: other, model: model, experts: []); Issue.record("\(mode) accepted for ranks")
            } catch {
                #expect("\(error)".contains("selection.mode"), "\(error)")
            }
        }
    }

    /// The per-token rank selection equals a stable descending sort (ties: lower index first),
    /// with many ties, k larger than the rank, and every activation.
    @Test func rankSelectionMatchesAStableSort() {
        var rng = SeededRandom(seed: 7)
        for activation in [RouterSpec.RankActivation.none, .sigmoid, .softmax] {
            for (rank, topK) in [(64, 8), (5, 5), (3, 7), (16, 1)] {
                let delta = RankRoutingDelta(
                    modules: [:], activation: activation,
                    selection: Selection(mode: .topK, topK: topK, temperature: 0.5), trace: nil)
                for _ in 0..<50 {
                    // Scores from a small set of values so that ties are common.
                    let g = (0..<rank).map { _ in Float(Int(rng.nextUnitFloat() * 6)) - 2.5 }
                    let chosen = g.withUnsafeBufferPointer { delta.choose($0.baseAddress!, rank: rank) }
                    let k = min(topK, rank)
                    let want = Array((0..<rank).sorted { g[$0] != g[$1] ? g[$0] > g[$1] : $0 < $1 }.prefix(k))
                    #expect(chosen.map(\.0) == want)
                    let values = chosen.map(\.1)
                    switch activation {
                    case .none: #expect(values == want.map { g[$0] })
                    case .sigmoid: #expect(zip(values, want).allSatisfy { abs($0 - 1 / (1 + exp(-g[$1]))) < 1e-6 })
                    case .softmax:
                        let e = want.map { exp((g[$0] - g[want[0]]) / 0.5) }
                        let total = e.reduce(0, +)
                        #expect(zip(values, e).allSatisfy { abs($0 - $1 / total) < 1e-6 })
                    }
                }
            }
        }
    }
}

extension RankRoutingDelta {
    /// The selected ranks and activation values for one row, as pairs.
    fileprivate func choose(_ g: UnsafePointer<Float>, rank: Int) -> [(Int, Float)] {
        var ranks = [Int](repeating: 0, count: rank)
        var values = [Float](repeating: 0, count: rank)
        let k = choose(g, rank: rank, ranks: &ranks, values: &values)
        return (0..<k).map { (ranks[$0], values[$0]) }
    }
}
