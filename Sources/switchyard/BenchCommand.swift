import Foundation
import Switchyard

/// `switchyard bench …`: throughput measurements, reported with a baseline run in the same process.
enum BenchCommand: CommandGroup {
    static let name = "bench"
    static let summary = "Measure throughput (build with -c release)"
    static let discussion = "Run a release build (swift run -c release switchyard bench …); debug builds are far slower."
    static var subcommands: [any CommandEntry.Type] { [DecodeBench.self, LoRABench.self, RouteBench.self, ServeBench.self] }
}

/// Shared set-up for benches: the model (a directory, or random weights of a known shape).
struct BenchModel: ParsableArguments {
    @Option(placeholder: "DIR|FILE", help: "Benchmark this model (a directory or a GGUF file) instead of random weights.")
    var model: String?
    @OptionGroup var format: WeightsOption
    @Option(placeholder: "NAME", help: "Shape of the random-weight model (available: smollm2-135m).")
    var config = "smollm2-135m"
    @Option(help: "Compute threads. Default: all cores.")
    var threads: Int?
    @Option(placeholder: "S", help: "Seed for the random weights.")
    var seed = 0

    func validate() throws {
        if let t = threads, t <= 0 { throw UsageError("--threads must be positive, got \(t)") }
        guard config == "smollm2-135m" else { throw UsageError("--config: unknown shape \(EscapedText.quoted(config)) (available: smollm2-135m)") }
    }

    func load() throws -> (LlamaModel, String) {
        if let t = threads { BLAS.setThreadCount(t) }
        if let dir = model {
            let model = try LlamaModel.load(path: URL(fileURLWithPath: dir), weights: format.weights)
            return (model, "\(dir) (\(BenchModel.weightTypes(model)))")
        }
        return (LlamaModel.random(config: .smolLM2_135M, seed: UInt64(truncatingIfNeeded: seed)), "random \(config)")
    }

    /// What the projections and the head are stored as, e.g. "weights Q4_1 + head Q8_0".
    static func weightTypes(_ model: LlamaModel) -> String {
        let kinds = Set(model.layers.flatMap { l in ProjectionKind.allCases.map { l[$0].quantized.map { "\($0.type)" } ?? "F32" } })
        return "weights \(kinds.sorted().joined(separator: "/")) + head \(model.outputQuantized.map { "\($0.type)" } ?? "F32")"
    }

    static func warnIfDebug() {
        #if DEBUG
        printError("warning: this is a debug build; run `swift run -c release switchyard bench …` for real figures")
        #endif
    }
}

/// Seconds elapsed while running `body`.
func measure(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

enum DecodeBench: Command {
    static let name = "decode"
    static let summary = "Prefill and decode tokens/s at batch 1 and batch N"
    static let discussion = """
    Measures, on one model in one process: prefill tokens/s (one prompt), decode tokens/s at
    batch 1, and decode tokens/s at batch N (N sequences of different prompt lengths decoded
    together), and the ratio batch-N / batch-1. JSON keys: prefill_tokens_per_s,
    decode_tokens_per_s_b1, decode_tokens_per_s_b8 (batch N), batch_speedup, …
    """

    struct Options: ParsableArguments {
        @OptionGroup var bench: BenchModel
        @Option(placeholder: "P", help: "Prompt length.")
        var promptTokens = 64
        @Option(placeholder: "D", help: "Decode steps measured.")
        var decodeTokens = 32
        @Option(help: "Batch size for the batched figure.")
        var batch = 8
        @OptionGroup var output: FormatOption

        func validate() throws {
            guard promptTokens > 0, decodeTokens > 0, batch > 0 else { throw UsageError("--prompt-tokens, --decode-tokens and --batch must be positive") }
        }
    }

    static func run(_ options: Options) throws {
        let json = options.output.json
        let promptTokens = options.promptTokens, decodeTokens = options.decodeTokens, batch = options.batch
        BenchModel.warnIfDebug()
        let (model, label) = try options.bench.load()
        let vocab = model.config.vocabSize
        var rng = SeededRandom(seed: 7)
        func prompt(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) } }
        let ws = ForwardWorkspace()

        // Prefill: best of 3.
        var prefill = Double.infinity
        for _ in 0..<3 {
            let cache = model.makeCache(initialCapacity: promptTokens)
            let p = prompt(promptTokens)
            prefill = min(prefill, try measure { _ = try model.forward([SequenceInput(tokens: p, cache: cache)], workspace: ws) })
        }

        let b1 = try decodeRate(model: model, batch: 1, promptTokens: promptTokens, decodeTokens: decodeTokens)
        let bn = try decodeRate(model: model, batch: batch, promptTokens: promptTokens, decodeTokens: decodeTokens)
        let prefillRate = Double(promptTokens) / prefill
        if json {
            print("""
            {"model":\(JSONText.string(label)),"parameters":\(model.config.parameterCount),"threads":\(BLAS.threadCount),\
            "prompt_tokens":\(promptTokens),"decode_tokens":\(decodeTokens),"batch":\(batch),\
            "prefill_tokens_per_s":\(fmt(prefillRate)),"decode_tokens_per_s_b1":\(fmt(b1)),\
            "decode_tokens_per_s_b8":\(fmt(bn)),"batch_speedup":\(fmt(bn / b1))}
            """)
        } else {
            print("model: \(label) (\(model.config.parameterCount) parameters), threads: \(BLAS.threadCount)")
            print("prefill (\(promptTokens) tokens):   \(fmt(prefillRate)) tokens/s")
            print("decode batch 1:           \(fmt(b1)) tokens/s")
            print("decode batch \(batch):           \(fmt(bn)) tokens/s  (\(fmt(bn / b1))× batch 1)")
        }
    }

    static func fmt(_ x: Double) -> String { String(format: "%.2f", x) }
}
