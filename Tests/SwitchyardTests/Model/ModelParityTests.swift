import Foundation
import Testing

@testable import Switchyard

/// Parity with transformers on the fixture models (references from Scripts/fixtures/make_fixtures.py).
@Suite struct ModelParityTests {
    static let modelNames = ["llama-gqa", "qwen2-tied", "mistral-swa", "llama3-rope", "linear-rope"]

    struct Reference {
        var prompts: [[Int]]
        var greedy: [[Int]]
        var logits: [Matrix]
    }

    static func reference(_ name: String) throws -> Reference {
        let json = try FixturePaths.json("reference/\(name).json")
        let prompts = json["prompts"] as! [[String: Any]]
        let file = try SafeTensorsFile(url: FixturePaths.url("reference/\(name).safetensors"))
        return Reference(
            prompts: prompts.map { $0["ids"] as! [Int] },
            greedy: prompts.map { $0["greedy"] as! [Int] },
            logits: try prompts.indices.map { try file.matrix("logits.\($0)") })
    }

    static func model(_ name: String) throws -> LlamaModel {
        try LlamaModel.load(directory: FixturePaths.url("models/\(name)"))
    }

    @Test(arguments: modelNames)
    func logitsMatchTransformers(name: String) throws {
        let model = try Self.model(name)
        let ref = try Self.reference(name)
        for (i, ids) in ref.prompts.enumerated() {
            let logits = try model.forward([SequenceInput(tokens: ids, cache: model.makeCache())], logits: .all)[0]
            #expect(logits.shape == ref.logits[i].shape)
            // fp32 end to end: 1e-4 absolute is the agreed bar for logits of magnitude ~1–10.
            let diff = maxAbsDifference(logits.data, ref.logits[i].data)
            #expect(diff <= 1e-4, "\(name) prompt \(i): max |Δ| = \(diff)")
        }
    }

    @Test(arguments: modelNames)
    func greedyContinuationMatchesTransformers(name: String) throws {
        let model = try Self.model(name)
        let ref = try Self.reference(name)
        for (i, ids) in ref.prompts.enumerated() {
            let out = try Generator(model: model).generate(GenerationRequest(promptTokens: ids, maxNewTokens: 32))
            #expect(out == ref.greedy[i], "\(name) prompt \(i)")
        }
    }

    @Test(arguments: modelNames)
    func batchedDecodeEqualsUnbatched(name: String) throws {
        let model = try Self.model(name)
        let prompts = try Self.reference(name).prompts
        let requests = prompts.map { GenerationRequest(promptTokens: $0, maxNewTokens: 12) }
        let batched = try Generator(model: model).generateBatch(requests)
        for (i, r) in requests.enumerated() {
            #expect(batched[i] == (try Generator(model: model).generate(r)), "\(name) sequence \(i)")
        }
        // Logits of one mixed decode step (sequences of different lengths) vs one at a time.
        let caches = prompts.map { _ in model.makeCache() }
        _ = try model.forward(zip(prompts, caches).map { SequenceInput(tokens: $0, cache: $1) })
        let step = try model.forward(caches.map { SequenceInput(tokens: [5], cache: $0) })
        for (i, p) in prompts.enumerated() {
            let single = try model.forward([SequenceInput(tokens: p + [5], cache: model.makeCache())])[0]
            // Same math, different BLAS blocking (GEMM vs GEMV): float rounding only.
            #expect(maxAbsDifference(step[i].data, single.data) <= 1e-4)
        }
    }

    @Test func chunkedPrefillEqualsOneShot() throws {
        let model = try Self.model("llama-gqa")
        let ids = try Self.reference("llama-gqa").prompts.max { $0.count < $1.count }!
        let whole = try model.forward([SequenceInput(tokens: ids, cache: model.makeCache())], logits: .all)[0]
        let cache = model.makeCache(initialCapacity: 2)
        let cut = ids.count / 3
        let a = try model.forward([SequenceInput(tokens: Array(ids[..<cut]), cache: cache)], logits: .all)[0]
        let b = try model.forward([SequenceInput(tokens: Array(ids[cut...]), cache: cache)], logits: .all)[0]
        #expect(maxAbsDifference(a.data + b.data, whole.data) <= 1e-4)
        #expect(cache.length == ids.count)
    }

    @Test func generationStopsAtTheEndOfTheContext() throws {
        let model = try Self.model("llama-gqa")
        let limit = model.config.maxPositionEmbeddings
        let out = try Generator(model: model).generate(
            GenerationRequest(promptTokens: Array(repeating: 5, count: limit - 3), maxNewTokens: 50))
        #expect(out.count == 3)
        #expect(throws: SwitchyardError.self) {
            try Generator(model: model).generate(
                GenerationRequest(promptTokens: Array(repeating: 5, count: limit), maxNewTokens: 1))
        }
    }

    @Test func rejectsBadInputs() throws {
        let model = try Self.model("llama-gqa")
        #expect(throws: SwitchyardError.self) { try model.forward([]) }
        #expect(throws: SwitchyardError.self) {
            try model.forward([SequenceInput(tokens: [], cache: model.makeCache())])
        }
        #expect(throws: SwitchyardError.self) {
            try model.forward([SequenceInput(tokens: [model.config.vocabSize], cache: model.makeCache())])
        }
        let shared = model.makeCache()
        #expect(throws: SwitchyardError.self) {
            try model.forward([SequenceInput(tokens: [3], cache: shared), SequenceInput(tokens: [4], cache: shared)])
        }
        let long = [Int](repeating: 3, count: model.config.maxPositionEmbeddings + 1)
        #expect(throws: SwitchyardError.self) {
            try model.forward([SequenceInput(tokens: long, cache: model.makeCache())])
        }
    }
}
