import Foundation
import Testing

@testable import Switchyard

/// LoRA experts against PEFT (references from Scripts/fixtures/make_fixtures.py, `make_adapters`).
@Suite struct AdapterParityTests {
    static let llamaAdapters = ["attn-r4", "attn-r4b", "mlp-r8-rslora", "all-pattern", "regex-layers"]

    struct Reference {
        var prompts: [[Int]]
        var json: [String: Any]
        var file: SafeTensorsFile
        func logits(_ name: String) throws -> Matrix { try file.matrix(name) }
    }

    static func reference() throws -> Reference {
        let json = try FixturePaths.json("reference/adapters.json")
        return Reference(
            prompts: json["prompts"] as! [[Int]], json: json,
            file: try SafeTensorsFile(url: FixturePaths.url("reference/adapters.safetensors")))
    }

    static func model(_ name: String) throws -> LlamaModel {
        try LlamaModel.load(directory: FixturePaths.url("models/\(name)"))
    }

    static func adapter(_ name: String, _ model: LlamaModel) throws -> LoRAAdapter {
        try LoRAAdapter.load(directory: FixturePaths.url("adapters/\(name)"), base: model.config)
    }

    /// Logits of every position of each prompt, each prompt its own sequence, with `mixes[i]` on prompt i.
    static func logits(_ model: LlamaModel, _ prompts: [[Int]], experts: [LoRAAdapter], mixes: [ExpertMix]) throws
        -> [Matrix]
    {
        let delta = LoRAMixDelta(experts: experts)
        try delta.setSequenceMixes(mixes, tokenCounts: prompts.map(\.count))
        return try model.forward(
            prompts.map { SequenceInput(tokens: $0, cache: model.makeCache()) }, logits: .all, delta: delta)
    }

    @Test(arguments: llamaAdapters + ["qwen-r4"])
    func singleAdapterMatchesPEFT(name: String) throws {
        let ref = try Self.reference()
        let modelName = name == "qwen-r4" ? "qwen2-tied" : "llama-gqa"
        let model = try Self.model(modelName)
        let adapter = try Self.adapter(name, model)
        let out = try Self.logits(model, ref.prompts, experts: [adapter], mixes: ref.prompts.map { _ in .single(0) })
        let base = try Self.logits(model, ref.prompts, experts: [adapter], mixes: ref.prompts.map { _ in .base })
        for p in ref.prompts.indices {
            let expected = try ref.logits("single.\(name).\(p)")
            // fp32 throughout; 1e-4 absolute on logits of magnitude ~1–10.
            let diff = maxAbsDifference(out[p].data, expected.data)
            #expect(diff <= 1e-4, "\(name) prompt \(p): max |Δ| = \(diff)")
            // The adapter must actually change the output (otherwise this test proves nothing).
            #expect(maxAbsDifference(expected.data, base[p].data) > 1e-2)
        }
    }

    @Test func mixedBatchMatchesPEFTAdapterNames() throws {
        let ref = try Self.reference()
        let model = try Self.model("llama-gqa")
        let names = ref.json["mixed_adapter_names"] as! [String]
        let rows = ref.json["mixed_prompts"] as! [Int]
        let experts = try Self.llamaAdapters.map { try Self.adapter($0, model) }
        let mixes = names.map { n in n == "__base__" ? ExpertMix.base : .single(Self.llamaAdapters.firstIndex(of: n)!) }
        // All rows in one forward pass, so the grouped kernel sees several experts at once.
        let out = try Self.logits(model, rows.map { ref.prompts[$0] }, experts: experts, mixes: mixes)
        for r in rows.indices {
            let diff = maxAbsDifference(out[r].data, try ref.logits("mixed.\(r)").data)
            #expect(diff <= 1e-4, "row \(r) (\(names[r])): max |Δ| = \(diff)")
        }
    }

    @Test(arguments: CombinationType.allCases)
    func weightedCombinationMatchesPEFT(type: CombinationType) throws {
        let ref = try Self.reference()
        let model = try Self.model("llama-gqa")
        let spec = (ref.json["weighted"] as! [String: Any])[type.rawValue] as! [String: Any]
        let inputs = try (spec["adapters"] as! [String]).map { try Self.adapter($0, model) }
        let weights = (spec["weights"] as! [Double]).map(Float.init)
        let combined = try LoRAAdapter.combine(
            inputs, weights: weights, type: type,
            svdRank: spec["svd_rank"] as? Int, name: "combined")
        let out = try Self.logits(model, ref.prompts, experts: [combined], mixes: ref.prompts.map { _ in .single(0) })
        for p in ref.prompts.indices {
            let diff = maxAbsDifference(out[p].data, try ref.logits("weighted.\(type.rawValue).\(p)").data)
            #expect(diff <= 1e-4, "\(type) prompt \(p): max |Δ| = \(diff)")
        }
        // The dense update of every module equals PEFT's combined adapter (sign-free for SVD).
        let peft = try Self.adapter("combined-\(type.rawValue)", model)
        #expect(Set(peft.modules.keys) == Set(combined.modules.keys))
        for (site, m) in peft.modules {
            let diff = maxAbsDifference(m.delta().data, combined.modules[site]!.delta().data)
            #expect(diff <= 1e-5, "\(type) \(site): max |Δ| of scale·B·A = \(diff)")
            if type != .svd {  // SVD factors are defined up to sign; linear and cat are unique
                #expect(maxAbsDifference(m.a.data, combined.modules[site]!.a.data) <= 1e-6, "\(type) \(site) A")
                #expect(maxAbsDifference(m.b.data, combined.modules[site]!.b.data) <= 1e-6, "\(type) \(site) B")
            }
        }
    }

    @Test func linearCombinationWithNegativeWeightsFollowsTaskArithmetic() throws {
        let model = try Self.model("llama-gqa")
        let a = try Self.adapter("attn-r4", model), b = try Self.adapter("attn-r4b", model)
        let c = try LoRAAdapter.combine([a, b], weights: [0.5, -0.25], type: .linear, name: "neg")
        let site = ProjectionSite(layer: 1, kind: .v)
        let (ma, mb) = (a.modules[site]!, b.modules[site]!)
        let (wa, wb) = (0.5 * ma.scale, -0.25 * mb.scale)
        let expectedA = zip(ma.a.data, mb.a.data).map { wa.squareRoot() * $0 - abs(wb).squareRoot() * $1 }
        #expect(maxAbsDifference(c.modules[site]!.a.data, expectedA) <= 1e-6)
        let finite = c.modules[site]!.b.data.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test func mergeMatchesUnmergedAndUnmergeIsExact() throws {
        let ref = try Self.reference()
        let model = try Self.model("llama-gqa")
        let adapter = try Self.adapter("all-pattern", model)
        let before = model.layers.map { l in ProjectionKind.allCases.map { l[$0].weight } }
        let merged = model.merge(adapter)
        for (p, ids) in ref.prompts.enumerated() {
            let out = try model.forward([SequenceInput(tokens: ids, cache: model.makeCache())], logits: .all)[0]
            #expect(maxAbsDifference(out.data, try ref.logits("single.all-pattern.\(p)").data) <= 1e-4)
        }
        model.unmerge(merged)
        let after = model.layers.map { l in ProjectionKind.allCases.map { l[$0].weight } }
        #expect(before == after, "unmerge must restore the base weights bit for bit")
    }

    @Test func writtenAdapterReloadsIdentically() throws {
        let model = try Self.model("llama-gqa")
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["all-pattern", "regex-layers"] {
            let adapter = try Self.adapter(name, model)
            try adapter.write(to: dir.appendingPathComponent(name))
            let again = try LoRAAdapter.load(directory: dir.appendingPathComponent(name), base: model.config)
            #expect(again.modules == adapter.modules, "\(name)")
        }
    }
}
