import Foundation
import Testing

@testable import Switchyard

/// Adapters written by Switchyard load in PEFT with the same logits: recorded by
/// Scripts/fixtures/roundtrip.py (PEFT loads each directory and compares with `switchyard score`).
/// Here we check the record still applies: today's writer produces byte-identical files.
@Suite struct PEFTRoundTripTests {
    @Test func recordedRoundTripMatchesTodaysWriter() throws {
        let record = try FixturePaths.json("reference/roundtrip.json")
        let adapters = record["adapters"] as! [String: [String: Any]]
        #expect(adapters.count == 6)
        for (name, r) in adapters {
            #expect(r["within_tolerance"] as? Bool == true, "\(name): PEFT disagreed when recorded")
            #expect((r["max_abs_delta"] as? Double ?? 1) <= 1e-4, "\(name)")
        }
        // Router files written by `switchyard router fit-centroids|train` parsed in Python, canonically.
        let routers = record["routers"] as! [String: [String: Any]]
        #expect(Set(routers.keys) == ["fit-centroids", "train"])
        for (name, r) in routers { #expect(r["python_ok"] as? Bool == true, "router \(name) did not parse in Python") }
        let config = try ModelConfig.load(from: FixturePaths.url("models/llama-gqa/config.json"))
        func load(_ n: String) throws -> LoRAAdapter {
            try LoRAAdapter.load(directory: FixturePaths.url("adapters/\(n)"), base: config)
        }
        let rebuilt: [String: LoRAAdapter] = [
            "merge-linear": try .combine(
                [load("attn-r4"), load("attn-r4b")], weights: [0.7, -0.5], type: .linear, name: "merge-linear"),
            "merge-cat": try .combine(
                [load("attn-r4"), load("mlp-r8-rslora")], weights: [0.6, 1.2], type: .cat, name: "merge-cat"),
            "export-all-pattern": try load("all-pattern"),
            "export-regex-layers": try load("regex-layers"),
            "export-layers-list": try load("layers-list")
        ]
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, adapter) in rebuilt {
            let out = dir.appendingPathComponent(name)
            try adapter.write(to: out)
            let weights = try Data(contentsOf: out.appendingPathComponent("adapter_model.safetensors"))
            let cfg = try Data(contentsOf: out.appendingPathComponent("adapter_config.json"))
            #expect(
                SHA256.hex(weights) == adapters[name]?["sha256"] as? String,
                "\(name): weights differ from the recorded round trip; re-run Scripts/fixtures/roundtrip.py")
            #expect(
                SHA256.hex(cfg) == adapters[name]?["config_sha256"] as? String,
                "\(name): config differs from the recorded round trip")
        }
    }
}
