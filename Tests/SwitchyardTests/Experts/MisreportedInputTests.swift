import Foundation
import Testing

@testable import Switchyard

/// Bad input that used to be accepted or reported as something else (issue 13, "misreported or
/// accepted bad input"): each is refused with its real reason.
@Suite struct MisreportedInputTests {
    static func config() throws -> ModelConfig {
        try ModelConfig.load(from: FixturePaths.url("models/llama-gqa/config.json"))
    }

    /// A copy of the attn-r4 fixture adapter in a fresh directory, with `edit` applied to its
    /// config JSON text and `tensors` to its weights before writing.
    static func adapter(
        in dir: URL, name: String = "x", configEdit: (String) -> String = { $0 },
        tensors: (inout [SafeTensorsWriter.Entry]) -> Void = { _ in }
    ) throws -> URL {
        let source = FixturePaths.url("adapters/attn-r4")
        let target = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let configText = try String(contentsOf: source.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        try Data(configEdit(configText).utf8).write(to: target.appendingPathComponent("adapter_config.json"))
        let file = try SafeTensorsFile(url: source.appendingPathComponent("adapter_model.safetensors"))
        var entries = try file.names.map { name in
            let info = file.tensors[name]!
            return SafeTensorsWriter.Entry(name: name, shape: info.shape, values: try file.floats(name))
        }
        tensors(&entries)
        try SafeTensorsWriter.write(entries, to: target.appendingPathComponent("adapter_model.safetensors"))
        return target
    }

    static func loadError(_ dir: URL) throws -> String {
        do { _ = try LoRAAdapter.load(directory: dir, base: try config()); return "no error" } catch {
            return "\(error)"
        }
    }

    @Test func theFixtureCopyLoads() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try Self.loadError(try Self.adapter(in: dir)) == "no error")
    }

    /// `r: 16.5` was read as 16, `r: true` as 1; layer lists and patterns had the same problem.
    @Test(arguments: [
        ("r", "4.5", "'r': expected an integer, found 4.5"),
        ("r", "true", "'r': expected an integer, found true"),
        ("r", #""4""#, "'r': expected an integer"),
        ("r", "0", "'r': must be in 1..."),
        ("rank_pattern", #"{"q_proj": 2.5}"#, "rank_pattern.q_proj"),
        ("alpha_pattern", #"{"q_proj": false}"#, "alpha_pattern.q_proj"),
        ("lora_alpha", "1e39", "lora_alpha"),
        ("layers_to_transform", "[0, 1.5]", "layers_to_transform"),
        ("layers_to_transform", "-1", "layers_to_transform"),
        ("use_rslora", "1", "use_rslora"),
        ("target_modules", "[1, 2]", "target_modules")
    ])
    func adapterConfigTypesAreStrict(key: String, value: String, expected: String) throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = try Self.adapter(in: dir) { text in
            // Drop the member from PEFT's config, then append it as raw JSON text.
            var obj = try! JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
            obj[key] = nil
            let rest = String(
                decoding: try! JSONSerialization.data(withJSONObject: obj, options: .sortedKeys), as: UTF8.self)
            return String(rest.dropLast()) + ", \"\(key)\": \(value)}"
        }
        let message = try Self.loadError(adapter)
        #expect(message.contains(expected), "\(key): \(value): \(message)")
        #expect(message.contains("adapter_config.json"), "\(message)")
    }

    /// `layers.+3`, `layers.-0`, `layers.01` parsed as layers 3, 0 and 1.
    @Test(arguments: ["+0", "-0", "00", "01", " 1", "1 ", "٣", "0x1", ""])
    func tensorNamesWithNonCanonicalLayerIndicesAreRefused(index: String) throws {
        let key = "base_model.model.model.layers.\(index).self_attn.q_proj.lora_A.weight"
        #expect(LoRAAdapter.parseKey(key, numLayers: 2) == nil, "\(index)")
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = try Self.adapter(in: dir) {
            $0
        } tensors: { entries in
            let i = entries.firstIndex { $0.name.contains("layers.0.self_attn.q_proj.lora_A") }!
            entries[i].name = key
        }
        let message = try Self.loadError(adapter)
        #expect(message.contains("is not a LoRA A/B weight"), "\(index): \(message)")
    }

    @Test func canonicalLayerIndicesParse() {
        let key = { (i: String) in "base_model.model.model.layers.\(i).mlp.down_proj.lora_B.weight" }
        #expect(LoRAAdapter.parseKey(key("0"), numLayers: 12)?.0 == ProjectionSite(layer: 0, kind: .down))
        #expect(LoRAAdapter.parseKey(key("10"), numLayers: 12)?.0 == ProjectionSite(layer: 10, kind: .down))
        #expect(LoRAAdapter.parseKey(key("12"), numLayers: 12) == nil)
        #expect(LoRAAdapter.parseKey(key("99999999999999999999"), numLayers: 12) == nil)
    }

    /// NaN and infinite weights were accepted; the error names the tensor.
    @Test(arguments: [Float.nan, Float.infinity, -Float.infinity])
    func nonFiniteExpertWeightsAreRefusedNamingTheTensor(bad: Float) throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var poisoned = ""
        let adapter = try Self.adapter(in: dir) {
            $0
        } tensors: { entries in
            let i = entries.firstIndex { $0.name.contains("lora_B") }!
            entries[i].values[3] = bad
            poisoned = entries[i].name
        }
        let message = try Self.loadError(adapter)
        #expect(message.contains(poisoned) && message.contains("non-finite"), "\(message)")
        // Writing such an adapter is refused too (a merge or composition that overflowed).
        var lora = try LoRAAdapter.load(directory: FixturePaths.url("adapters/attn-r4"), base: try Self.config())
        let site = lora.modules.keys.first!
        lora.modules[site]!.a.data[0] = bad
        #expect(throws: SwitchyardError.self) { try lora.write(to: dir.appendingPathComponent("out")) }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }

    /// An expert that fails validation is reported with its validation error, not as unknown.
    @Test func anInvalidExpertIsReportedWithItsRealReason() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(
            at: FixturePaths.url("adapters/invalid/wrong-rank"), to: dir.appendingPathComponent("bad"))
        try FileManager.default.copyItem(
            at: FixturePaths.url("adapters/attn-r4"), to: dir.appendingPathComponent("good"))
        let registry = try ExpertRegistry(directory: dir, base: try Self.config(), create: false)
        for attempt in [{ _ = try registry.entry("bad") }, { _ = try registry.acquire(["good", "bad"]) }] {
            do {
                try attempt()
                Issue.record("an invalid expert must not load")
            } catch {
                let message = "\(error)"
                #expect(message.contains("shape") && message.contains("/bad/"), "\(message)")
                #expect(!message.contains("unknown expert"), "\(message)")
            }
        }
        #expect { try registry.entry("absent") } throws: { "\($0)".contains("unknown expert 'absent'") }
        // A directory whose name is not a valid expert name is a problem, never an expert.
        try FileManager.default.copyItem(
            at: FixturePaths.url("adapters/attn-r4"), to: dir.appendingPathComponent("sp ace"))
        let again = try ExpertRegistry(directory: dir, base: try Self.config(), create: false)
        #expect(again.list().map(\.name) == ["good"])
        #expect(again.problems["sp ace"]?.contains("invalid expert name") == true)
    }

    /// Read-only uses of a registry (`generate --expert`, `experts list`…) do not create it.
    @Test func openingAMissingRegistryReadOnlyCreatesNothing() throws {
        let parent = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: parent) }
        let missing = parent.appendingPathComponent("no-such-registry")
        #expect { _ = try ExpertRegistry(directory: missing, base: try Self.config(), create: false) } throws: {
            error in
            "\(error)".contains(missing.path) && "\(error)".contains("not found")
        }
        #expect(!FileManager.default.fileExists(atPath: missing.path))
        // Adding creates it, as before.
        let created = try ExpertRegistry(directory: missing, base: try Self.config())
        #expect(created.list().isEmpty && FileManager.default.fileExists(atPath: missing.path))
        // A file where the registry should be is an error either way.
        let file = parent.appendingPathComponent("file")
        try Data([1]).write(to: file)
        #expect(throws: SwitchyardError.self) { try ExpertRegistry(directory: file, base: try Self.config()) }
    }

    /// `--expert x=1e38`: finite weight, infinite weight × scale.
    @Test func mixWeightsWhoseProductWithTheScaleOverflowsAreRefused() throws {
        let config = try Self.config()
        let adapter = LoRAAdapter.random(name: "r", base: config, rank: 4, alpha: 16, seed: 1)  // scale 4
        let model = LlamaModel.random(config: config, seed: 3)
        let engine = Engine(model: model)
        let request = GenerationRequest(promptTokens: [1, 2, 3], maxNewTokens: 2)
        for w: Float in [1e38, -1e38, .infinity, .nan] {
            #expect(throws: SwitchyardError.self, "\(w)") {
                try engine.admit(request, routing: .experts([adapter], weights: [w]))
            }
        }
        #expect(throws: SwitchyardError.self) {
            try engine.admit(request, routing: .fixed(ExpertMix([.init(expert: 3, weight: 1)]), experts: [adapter]))
        }
        #expect(engine.waitingCount == 0)
        // A weight whose product with the scale is finite but whose delta overflows: the request
        // fails with a clear message instead of sampling from NaN logits.
        let id = try engine.admit(request, routing: .experts([adapter], weights: [1e37]))
        #expect(engine.waitingCount == 1)
        var failure: String? = nil
        while engine.hasWork {
            for e in engine.step() where e.request == id {
                if case let .failed(m) = e.kind { failure = m }
                if case .token = e.kind { Issue.record("no token may be sampled from non-finite logits") }
            }
        }
        #expect(failure?.contains("non-finite logits") == true, "\(failure ?? "no failure")")
    }
}
