import Foundation
import Testing

@testable import Switchyard

/// Adapters Switchyard must refuse, each with an error naming what is wrong.
@Suite struct AdapterValidationTests {
    static func failure(_ name: String, model: String = "llama-gqa") throws -> String {
        let config = try ModelConfig.load(from: FixturePaths.url("models/\(model)/config.json"))
        do {
            _ = try LoRAAdapter.load(directory: FixturePaths.url("adapters/invalid/\(name)"), base: config)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test(arguments: [
        ("dora", "use_dora"),
        ("modules-to-save", "modules_to_save"),
        ("bad-shape", "lora_A.weight"),
        ("missing-tensor", "lora_B.weight"),
        ("unknown-module", "qkv_proj"),
        ("pickle-only", "adapter_model.bin"),
        ("wrong-rank", "shape")
    ])
    func refusesInvalidAdapters(name: String, expected: String) throws {
        let message = try Self.failure(name)
        #expect(message.contains(expected), "\(name): \(message)")
        #expect(message.contains("adapters/invalid/\(name)"), "the error must name the file: \(message)")
    }

    @Test func refusesAnAdapterForAnotherBaseModel() throws {
        let qwen = try ModelConfig.load(from: FixturePaths.url("models/qwen2-tied/config.json"))
        #expect(throws: SwitchyardError.self) {
            try LoRAAdapter.load(directory: FixturePaths.url("adapters/attn-r4"), base: qwen)
        }
    }

    @Test func configParsingFollowsPEFT() throws {
        let c = try AdapterConfig.parse(
            Data(
                """
                {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "down_proj"],
                 "rank_pattern": {"q_proj": 4, "model.layers.1.mlp.down_proj": 2}, "alpha_pattern": {"down_proj": 32},
                 "use_rslora": false, "layers_to_transform": [0, 2], "use_dora": false, "lora_ga_config": null,
                 "alora_invocation_tokens": null, "arrow_config": null, "loftq_config": {}}
                """.utf8), path: "c.json")
        #expect(try c.rank(forModule: "model.layers.0.self_attn.q_proj") == 4)
        #expect(try c.rank(forModule: "model.layers.1.mlp.down_proj") == 2)
        #expect(try c.rank(forModule: "model.layers.0.mlp.down_proj") == 8)
        #expect(try c.scale(forModule: "model.layers.0.mlp.down_proj") == 4)
        #expect(try c.scale(forModule: "model.layers.1.mlp.down_proj") == 16)
        #expect(try c.targets(layer: 0, moduleName: "model.layers.0.self_attn.q_proj"))
        #expect(try !c.targets(layer: 1, moduleName: "model.layers.1.self_attn.q_proj"))
        #expect(try !c.targets(layer: 0, moduleName: "model.layers.0.self_attn.k_proj"))
        let rs = try AdapterConfig.parse(
            Data(#"{"r": 16, "lora_alpha": 8, "use_rslora": true, "target_modules": ".*q_proj"}"#.utf8), path: "c.json")
        #expect(try rs.scale(forModule: "model.layers.0.self_attn.q_proj") == 2)
        #expect(try rs.targets(layer: 3, moduleName: "model.layers.3.self_attn.q_proj"))
        #expect(try !rs.targets(layer: 3, moduleName: "model.layers.3.self_attn.v_proj"))
        for (key, value) in [
            ("alora_invocation_tokens", "[1, 2]"), ("lora_ga_config", #"{"x": 1}"#), ("arrow_config", #"{"top_k": 2}"#),
            ("use_dora", "true"), ("bias", #""all""#), ("some_future_feature", "true")
        ] {
            let json = #"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "\#(key)": \#(value)}"#
            #expect(throws: SwitchyardError.self, "\(key) switched on must be refused") {
                try AdapterConfig.parse(Data(json.utf8), path: "c.json")
            }
        }
    }
}
