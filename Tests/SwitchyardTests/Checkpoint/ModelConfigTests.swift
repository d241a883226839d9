import Foundation
import Testing

@testable import Switchyard

@Suite struct ModelConfigTests {
    static var base: [String: Any] {
        [
            "architectures": ["LlamaForCausalLM"], "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5
        ]
    }

    static func parse(_ changes: [String: Any]) throws -> ModelConfig {
        let data = try JSONSerialization.data(withJSONObject: base.merging(changes) { $1 })
        return try ModelConfig.parse(data, path: "cfg.json")
    }

    static func failure(_ changes: [String: Any]) -> String {
        do { _ = try parse(changes); return "no error" } catch { return "\(error)" }
    }

    /// The bench's roofline divides by this count: every projection's out × in (from
    /// `projectionShape`), scores and weighted values over depth + 1 positions per query head, and
    /// the head, for SmolLM2-135M's shape (9 query heads over 3 KV heads: the KV grouping must not
    /// shrink the attention term).
    @Test func multiplyAddsPerTokenCountsProjectionsAttentionAndHead() {
        let c = ModelConfig.smolLM2_135M
        let projections = ProjectionKind.allCases.reduce(0) {
            $0 + c.projectionShape($1).out * c.projectionShape($1).in
        }
        #expect(projections == 576 * 576 * 2 + 576 * 192 * 2 + 3 * 576 * 1536)
        for depth in [0, 63, 2048] {
            let attention = 2 * 9 * 64 * (depth + 1)
            #expect(c.multiplyAddsPerToken(depth: depth) == 30 * (projections + attention) + 49152 * 576)
        }
    }

    @Test func readsTheFixtureConfigs() throws {
        let llama = try ModelConfig.load(from: FixturePaths.url("models/llama-gqa/config.json"))
        #expect(
            llama.architecture == .llama && llama.numKVHeads == 2 && llama.headDim == 16 && !llama.tieWordEmbeddings)
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
        #expect(
            Self.failure(["rope_parameters": ["rope_type": "default", "partial_rotary_factor": 0.5]]).contains(
                "partial_rotary_factor"))
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
        try FileManager.default.copyItem(
            at: FixturePaths.url("models/llama-gqa/config.json"), to: dir.appendingPathComponent("config.json"))
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
        try FileManager.default.copyItem(
            at: FixturePaths.url("models/llama-gqa/model.safetensors"),
            to: dir.appendingPathComponent("model.safetensors"))
        do {
            _ = try LlamaModel.load(directory: dir)
            Issue.record("loading with a wrong intermediate_size must fail")
        } catch {
            #expect("\(error)".contains("model.layers.0.mlp.gate_proj.weight"))
        }
    }

    /// Writes `json` (text, so that `true`, `16.5` and duplicate keys reach the parser as
    /// written) as config.json in a fresh directory and loads it.
    static func loadFailure(_ json: String) throws -> String {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.json")
        try Data(json.utf8).write(to: url)
        do { _ = try ModelConfig.load(from: url); return "no error" } catch {
            let message = "\(error)"
            #expect(message.hasPrefix(url.path + ": "), "error must name the file: \(message)")
            #expect(!message.contains("\n"), "one line: \(message)")
            return message
        }
    }

    /// The base config as JSON text with `fields` replacing or adding members (values as JSON text).
    static func json(_ fields: [String: String]) -> String {
        var members: [String: String] = [
            "architectures": #"["MistralForCausalLM"]"#, "vocab_size": "100", "hidden_size": "32",
            "intermediate_size": "64", "num_hidden_layers": "2", "num_attention_heads": "4",
            "num_key_value_heads": "2", "rms_norm_eps": "1e-5", "sliding_window": "8"
        ]
        members.merge(fields) { $1 }
        return "{" + members.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
            + "}"
    }

    @Test func validConfigFileLoads() throws {
        #expect(try Self.loadFailure(Self.json([:])) == "no error")
        #expect(try Self.loadFailure(Self.json(["sliding_window": "null"])) == "no error")
    }

    /// Each bad value is refused, and the message names the field (issue 13: a negative Mistral
    /// sliding window wrote past attention's score buffer; `true` was read as 1).
    @Test(arguments: [
        ("sliding_window", "-1000", "must be positive"),
        ("sliding_window", "-1", "must be positive"),
        ("sliding_window", "0", "must be positive"),
        ("sliding_window", "4.5", "expected an integer"),
        ("num_hidden_layers", "true", "expected an integer, found true"),
        ("num_hidden_layers", "0", "must be positive"),
        ("num_hidden_layers", "2.0e0", "expected an integer"),
        ("num_hidden_layers", "1000000000", "larger than the supported maximum"),
        ("vocab_size", "-5", "must be positive"),
        ("vocab_size", "99999999999999999999", "expected an integer"),
        ("hidden_size", "\"32\"", "expected an integer"),
        ("intermediate_size", "false", "expected an integer"),
        ("num_attention_heads", "0", "must be positive"),
        ("num_attention_heads", "5", "does not divide hidden_size"),
        ("num_key_value_heads", "3", "does not divide num_attention_heads"),
        ("num_key_value_heads", "-2", "must be positive"),
        ("head_dim", "7", "must be even"),
        ("head_dim", "0", "must be positive"),
        ("max_position_embeddings", "0", "must be positive"),
        ("rms_norm_eps", "0", "rms_norm_eps"),
        ("rms_norm_eps", "-1e-5", "rms_norm_eps"),
        ("rms_norm_eps", "1e999", "finite"),
        ("rope_theta", "-10000", "rope_theta"),
        ("rope_theta", "true", "expected a number"),
        ("tie_word_embeddings", "1", "expected true or false"),
        ("attention_bias", "\"no\"", "expected true or false"),
        ("bos_token_id", "-1", "not a token id"),
        ("bos_token_id", "100", "not a token id"),
        ("eos_token_id", "[1, -1]", "not a token id"),
        ("eos_token_id", "[1, true]", "expected an integer or a list"),
        ("eos_token_id", "2.5", "expected an integer"),
        ("hidden_act", "5", "expected a string"),
        ("architectures", "\"MistralForCausalLM\"", "expected a list"),
        ("rope_scaling", "5", "expected an object"),
        ("rope_scaling", #"{"rope_type": 5}"#, "rope_scaling.rope_type"),
        ("rope_scaling", #"{"type": 5}"#, "rope_scaling.type"),
        ("rope_scaling", #"{"rope_type": "magic"}"#, "magic"),
        ("rope_scaling", #"{"rope_type": "linear", "factor": 0}"#, "rope_scaling.factor"),
        ("rope_scaling", #"{"rope_type": "linear", "factor": "2"}"#, "rope_scaling.factor"),
        (
            "rope_parameters",
            #"{"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 4, "original_max_position_embeddings": 32}"#,
            "high_freq_factor"
        ),
        (
            "rope_parameters",
            #"{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 1e300}"#,
            "original_max_position_embeddings"
        ),
        (
            "rope_parameters",
            #"{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": -3}"#,
            "original_max_position_embeddings"
        ),
        ("rope_parameters", #"{"rope_type": "default", "rope_theta": -1}"#, "rope_theta")
    ])
    func badValuesAreRefusedNamingTheField(field: String, value: String, expected: String) throws {
        let message = try Self.loadFailure(Self.json([field: value]))
        #expect(message.contains(field), "\(field)=\(value): \(message)")
        #expect(message.contains(expected), "\(field)=\(value): \(message)")
    }

    @Test func malformedFilesAreClearErrors() throws {
        #expect(try Self.loadFailure("[1, 2]").contains("not a JSON object"))
        #expect(try Self.loadFailure("{\"vocab_size\": 1, \"vocab_size\": 2}").contains("duplicate key"))
        #expect(try Self.loadFailure("{").contains("(root)"))
        let hostile = try Self.loadFailure(Self.json(["architectures": #"["Evil\nArch\u001b[31m"]"#]))
        #expect(hostile.contains("Evil\\nArch\\u{1B}[31m"), "\(hostile)")
    }

    /// The attention kernel itself refuses a non-positive window rather than indexing before
    /// its buffer (defence in depth behind validation).
    @Test func validatedConfigsNeverReachAttentionWithABadWindow() {
        var config = ModelConfig(
            architecture: .mistral, vocabSize: 10, hiddenSize: 8, intermediateSize: 8,
            numLayers: 1, numHeads: 2, numKVHeads: 1, slidingWindow: -3)
        #expect(throws: SwitchyardError.self) { try config.validate(path: "p") }
        config.slidingWindow = 3
        #expect(throws: Never.self) { try config.validate(path: "p") }
        config.numHeads = 0
        #expect(throws: SwitchyardError.self) { try config.validate(path: "p") }
    }
}
