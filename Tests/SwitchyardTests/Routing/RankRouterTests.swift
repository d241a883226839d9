import Foundation
import Testing
@testable import Switchyard

@Suite struct RankRouterTests {
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
        try sum.setRowMixes(Array(repeating: ExpertMix([.init(expert: 0, weight: 1), .init(expert: 1, weight: 1)]), count: prompt.count))
        let expected = try model.forward([SequenceInput(tokens: prompt, cache: model.makeCache())], logits: .all, delta: sum)[0]
        #expect(maxAbsDifference(routed.data, expected.data) <= 1e-4)
        // With fewer active ranks the output differs (the gate really selects).
        var partial = decoded
        partial.selection?.topK = 3
        let (fewer, _) = try RouterParityTests.run(try BoundRouter(spec: partial, model: model, experts: []), model, prompt)
        #expect(maxAbsDifference(fewer.data, expected.data) > 1e-3)
    }
}
