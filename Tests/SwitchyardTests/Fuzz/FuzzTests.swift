import Foundation
import Testing

@testable import Switchyard
@testable import SwitchyardServer

/// The fuzz harness: every input format Switchyard reads from users, files or the network,
/// mutated from valid seeds (`Mutator`) and fed to the same code the CLI and server run. Each
/// input must be accepted or refused with an error whose message is one line, within a time
/// limit; a crash (a trap, memory corruption) fails the run. Inputs that parse go one step
/// further: a config runs a small model, a tokenizer encodes and decodes, a router compiles.
///
/// Deterministic: the same seed gives the same inputs. CI runs a small budget (`swift test`); a
/// longer one by hand, e.g.
///
///     SWITCHYARD_FUZZ_ITERATIONS=20000 SWITCHYARD_FUZZ_SEED=7 swift test --filter FuzzTests
///
/// Issue 13 found crashes from config.json (negative `sliding_window`), hangs from tokenizer
/// regexes and multi-line errors from control bytes this way; those inputs are in the seeds' reach.
@Suite struct FuzzTests {
    /// Mutated inputs per format (`SWITCHYARD_FUZZ_ITERATIONS`, default 150: a few seconds in all).
    static let iterations = ProcessInfo.processInfo.environment["SWITCHYARD_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 150
    /// `SWITCHYARD_FUZZ_SEED`, default 13.
    static let seed = ProcessInfo.processInfo.environment["SWITCHYARD_FUZZ_SEED"].flatMap { UInt64($0) } ?? 13
    /// One input may take this long (a regex or a loop bounded by input sizes runs far below it).
    static let timeLimit: TimeInterval = 10

    static func fixture(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: FixturePaths.url(relative)))
    }

    static func gqaConfig() throws -> ModelConfig {
        try ModelConfig.load(from: FixturePaths.url("models/llama-gqa/config.json"))
    }

    /// Runs `body` on `iterations` mutations of `seeds` (round robin). Errors must be one line;
    /// each input must finish within `timeLimit`. Returns how many inputs were accepted.
    @discardableResult
    static func fuzz(
        _ format: String, seeds: [[UInt8]], text: Bool, focus: (([UInt8]) -> Int)? = nil,
        salt: UInt64, _ body: ([UInt8]) throws -> Void
    ) -> Int {
        var mutator = Mutator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ salt)
        var accepted = 0
        for i in 0..<iterations {
            let origin = seeds[i % seeds.count]
            let input = mutator.mutate(origin, text: text, focus: focus?(origin))
            let start = Date()
            do {
                try body(input)
                accepted += 1
            } catch {
                let message = "\(error)"
                if message.contains("\n") || message.contains("\r") || message.isEmpty {
                    Issue.record(
                        "\(format) input \(i) (seed \(seed)): the error is not one line: \(message.debugDescription)")
                }
            }
            let elapsed = Date().timeIntervalSince(start)
            if elapsed > timeLimit {
                Issue.record("\(format) input \(i) (seed \(seed)) took \(elapsed) s")
            }
        }
        print(
            "fuzz: \(format): \(iterations) inputs (seed \(seed)), \(accepted) accepted, \(iterations - accepted) refused"
        )
        return accepted
    }

    /// The header length of a safetensors file plus its 8-byte length prefix (mutations focus there).
    static func safetensorsHeaderEnd(_ b: [UInt8]) -> Int {
        guard b.count >= 8 else { return b.count }
        let n = b.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return min(b.count, 8 + n)
    }

    @Test func safetensorsHeadersAndAdapterWeights() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(
            at: FixturePaths.url("adapters/attn-r4/adapter_config.json"),
            to: dir.appendingPathComponent("adapter_config.json"))
        let weights = dir.appendingPathComponent("adapter_model.safetensors")
        let base = try Self.gqaConfig()
        let seeds = [
            try Self.fixture("adapters/attn-r4/adapter_model.safetensors"),
            try Self.fixture("adapters/attn-r4b/adapter_model.safetensors")
        ]
        Self.fuzz("safetensors", seeds: seeds, text: false, focus: Self.safetensorsHeaderEnd, salt: 1) { input in
            try Data(input).write(to: weights)
            let file = try SafeTensorsFile(url: weights)
            for name in file.names.prefix(4) { _ = try file.floats(name) }
            _ = try LoRAAdapter.load(directory: dir, base: base)
        }
    }

    @Test func modelConfigsAndTheModelsTheyDescribe() throws {
        let seeds = try ["llama-gqa", "mistral-swa", "qwen2-tied", "llama3-rope", "linear-rope"].map {
            try Self.fixture("models/\($0)/config.json")
        }
        Self.fuzz("config.json", seeds: seeds, text: true, salt: 2) { input in
            let config = try ModelConfig.parse(Data(input), path: "fuzz/config.json")
            // A config that validates must run: a small one runs a few steps of a random model
            // (a bad sliding window corrupted attention's buffers this way).
            guard config.parameterCount <= 400_000, config.numLayers <= 4 else { return }
            let model = LlamaModel.random(config: config, seed: 1)
            let prompt = (0..<6).map { $0 % config.vocabSize }
            _ = try Generator(model: model).generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 4))
        }
    }

    @Test func tokenizerFiles() throws {
        let seeds = [
            try Self.fixture("tokenizers/gpt2style/tokenizer.json"),
            try Self.fixture("tokenizers/llama3style/tokenizer.json")
        ]
        Self.fuzz("tokenizer.json", seeds: seeds, text: true, salt: 3) { input in
            let tokenizer = try Tokenizer(json: Data(input), source: "fuzz/tokenizer.json")
            let ids = try tokenizer.encodeChecked(
                "Hello wörld 123 <|im_start|>user\n\t🚀 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", addSpecialTokens: true)
            _ = tokenizer.decode(ids)
        }
    }

    @Test func adapterConfigs() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try Self.gqaConfig()
        let names = ["attn-r4", "all-pattern", "regex-layers", "layers-list", "mlp-r8-rslora"]
        for n in names {
            try FileManager.default.createDirectory(
                at: dir.appendingPathComponent(n), withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: FixturePaths.url("adapters/\(n)/adapter_model.safetensors"),
                to: dir.appendingPathComponent("\(n)/adapter_model.safetensors"))
        }
        let seeds = try names.map { try Self.fixture("adapters/\($0)/adapter_config.json") }
        var i = 0
        Self.fuzz("adapter_config.json", seeds: seeds, text: true, salt: 4) { input in
            defer { i += 1 }
            let adapter = dir.appendingPathComponent(names[i % names.count])  // the seed's own weights
            try Data(input).write(to: adapter.appendingPathComponent("adapter_config.json"))
            _ = try LoRAAdapter.load(directory: adapter, base: base)
        }
    }

    @Test func routerFiles() throws {
        let config = try Self.gqaConfig()
        let names = try FileManager.default.contentsOfDirectory(atPath: FixturePaths.url("routers").path).filter {
            $0.hasSuffix(".pb")
        }.sorted()
        let seeds = try names.map { try Self.fixture("routers/\($0)") }
        #expect(!seeds.isEmpty)
        Self.fuzz("router .pb", seeds: seeds, text: false, salt: 5) { input in
            let spec = try RouterWire.decode(input, path: "fuzz/router.pb")
            _ = try BoundRouter.compile(spec, config: config, expertCount: max(1, spec.experts.count))
        }
    }

    @Test func ggufHeaders() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("fuzz.gguf")
        let seeds = [GGUFTests.Writer.valid(), GGUFTests.llamaFile([:])]
        Self.fuzz("GGUF", seeds: seeds, text: false, salt: 6) { input in
            try Data(input).write(to: url)
            let file = try GGUFFile(url: url)
            for name in file.tensors.keys.sorted().prefix(4) { _ = try file.floats(name) }
            _ = try GGUFModel.config(file)
        }
    }

    /// Every RPC message type decodes random and mutated protobuf as a message or a clear error,
    /// and what it decodes re-encodes to bytes that decode to the same message.
    @Test func rpcMessages() throws {
        let w = InferenceWire.self
        let types: [WireType] = [
            w.generateRequest, w.scoreRequest, w.listExpertsRequest, w.addExpertRequest, w.removeExpertRequest,
            w.listRoutersRequest, w.addRouterRequest, w.composeRequest, w.infoRequest, w.healthCheckRequest,
            w.generateEvent, w.scoreResponse, w.infoResponse, w.composeEvent
        ]
        var generator = Mutator(seed: Self.seed &+ 7)
        let seeds = (0..<32).map { _ in generator.protobuf() }
        var i = 0
        Self.fuzz("protobuf", seeds: seeds, text: false, salt: 7) { input in
            defer { i += 1 }
            let type = types[i % types.count]
            let message = try WireMessage.decode(type, input)
            // Compared as bytes: a NaN double decodes to a value that is not equal to itself.
            let bytes = message.encode()
            #expect(
                try WireMessage.decode(type, bytes).encode() == bytes,
                "\(type.name) input \(i) (seed \(Self.seed)) does not round-trip")
        }
    }
}
