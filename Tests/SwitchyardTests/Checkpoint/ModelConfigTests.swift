import Foundation
import Testing
@testable import Switchyard

@Suite struct ModelConfigTests {
    static var base: [String: Any] { [
        "architectures": ["LlamaForCausalLM"], "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
    ] }

    static func parse(_ changes: [String: Any]) throws -> ModelConfig {
        try ModelConfig.parse(base.merging(changes) { $1 }, path: "cfg.json")
    }

    static func failure(_ changes: [String: Any]) -> String {
        do { _ = try parse(changes); return "no error" } catch { return "\(error)" }
    }

    @Test func readsTheFixtureConfigs() throws {
        let llama = try ModelConfig.load(from: FixturePaths.url("models/llama-gqa/config.json"))
        #expect(llama.architecture == .llama && llama.numKVHeads == 2 && llama.headDim == 16 && !llama.tieWordEmbeddings)
        let qwen = try ModelConfig.load(from: FixturePaths.url("models/qwen2-tied/config.json"))
        #expect(qwen.architecture == .qwen2 && qwen.qkvBias && !qwen.outputBias && qwen.tieWordEmbeddings)
        #expect(qwen.ropeTheta == 1_000_000)
    }

    @Test func defaultsFollowTransformers() throws {
        let c = try Self.parse(["num_key_value_heads": NSNull()])
        #expect(c.numKVHeads == 4 && c.headDim == 8 && c.ropeTheta == 10000 && c.slidingWindow == nil)
        let mistral = try Self.parse(["architectures": ["MistralForCausalLM"], "sliding_window": 4096])
        #expect(mistral.slidingWindow == 4096)
        let llamaBias = try Self.parse(["attention_bias": true])
        #expect(llamaBias.qkvBias && llamaBias.outputBias)
    }

    @Test func refusesWhatItCannotRun() {
        #expect(Self.failure(["architectures": ["GPT2LMHeadModel"]]).contains("GPT2LMHeadModel"))
        #expect(Self.failure(["rope_scaling": ["type": "yarn", "factor": 4]]).contains("yarn"))
        #expect(Self.failure(["rope_parameters": ["rope_type": "llama3", "rope_theta": 5e5]]).contains("factor"))
        #expect(Self.failure(["rope_parameters": ["rope_type": "dynamic", "factor": 2]]).contains("dynamic"))
        #expect(Self.failure(["rope_parameters": ["rope_type": "default", "partial_rotary_factor": 0.5]]).contains("partial_rotary_factor"))
        #expect(Self.failure(["hidden_act": "gelu"]).contains("gelu"))
        #expect(Self.failure(["mlp_bias": true]).contains("mlp_bias"))
        #expect(Self.failure(["hidden_size": NSNull()]).contains("'hidden_size': missing"))
        #expect(Self.failure(["num_key_value_heads": 3]).contains("num_key_value_heads"))
        #expect(Self.failure(["vocab_size": "big"]).contains("vocab_size"))
    }

    @Test func readsTransformers5RopeParameters() throws {
        let c = try Self.parse(["rope_parameters": ["rope_type": "default", "rope_theta": 500000.0]])
        #expect(c.ropeTheta == 500000)
    }

    @Test func missingCheckpointIsAClearError() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: FixturePaths.url("models/llama-gqa/config.json"), to: dir.appendingPathComponent("config.json"))
        try Data([0]).write(to: dir.appendingPathComponent("pytorch_model.bin"))
        do {
            _ = try LlamaModel.load(directory: dir)
            Issue.record("loading without safetensors must fail")
        } catch {
            #expect("\(error)".contains("pickle"))
        }
    }

    @Test func shapeMismatchNamesTheTensor() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var cfg = try FixturePaths.json("models/llama-gqa/config.json")
        cfg["intermediate_size"] = 96
        try JSONSerialization.data(withJSONObject: cfg).write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: FixturePaths.url("models/llama-gqa/model.safetensors"),
                                         to: dir.appendingPathComponent("model.safetensors"))
        do {
            _ = try LlamaModel.load(directory: dir)
            Issue.record("loading with a wrong intermediate_size must fail")
        } catch {
            #expect("\(error)".contains("model.layers.0.mlp.gate_proj.weight"))
        }
    }
}
