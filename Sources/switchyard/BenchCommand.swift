import Foundation
import Switchyard

/// `switchyard bench …`: throughput measurements, reported with a baseline run in the same process.
enum BenchCommand: Subcommand {
    static let name = "bench"
    static let summary = "Measure throughput (build with -c release)"
    static let help = """
    USAGE: switchyard bench <decode|lora|route|serve> [options]

    SUBCOMMANDS:
      decode    Prefill and decode tokens/s at batch 1 and batch 8.
      lora      Cost of experts: unmerged vs base, mixed-expert batches, the registry.
      route     Cost of each router kind (sentence, token, centroid, SMoRA) over base.
      serve     The gRPC server under closed-loop load: throughput and latency per concurrency;
                with --server HOST:PORT a running server or balancer (replica spread, cache hits).

    Run a release build (swift run -c release switchyard bench …); debug builds are far slower.
    """

    static func run(_ argv: [String]) throws {
        guard let sub = argv.first else { throw UsageError("bench needs a subcommand: decode") }
        let rest = Array(argv.dropFirst())
        if rest.contains("--help") || rest.contains("-h") {
            print(sub == "decode" ? DecodeBench.help : sub == "lora" ? LoRABench.help : sub == "route" ? RouteBench.help : sub == "serve" ? ServeBench.help : help)
            return
        }
        switch sub {
        case "decode": try DecodeBench.run(rest)
        case "lora": try LoRABench.run(rest)
        case "route": try RouteBench.run(rest)
        case "serve": try ServeBench.run(rest)
        default: throw UsageError("unknown bench '\(sub)' (available: decode, lora, route, serve)")
        }
    }
}

/// Shared set-up for benches: the model (a directory, or random weights of a known shape).
enum BenchModel {
    static let options: Set<String> = ["model", "config", "threads", "seed", "weights"]
    static let optionsHelp = """
      --model DIR|FILE    Benchmark this model (a directory or a GGUF file) instead of random weights.
      --weights native|f32  GGUF: native block kernels (default) or widened to Float32.
      --config NAME       Shape of the random-weight model (default smollm2-135m).
      --threads N         Compute threads (default: all cores).
      --seed S            Seed for the random weights (default 0).
    """

    static func load(_ args: ParsedArguments) throws -> (LlamaModel, String) {
        if let t = try args.int("threads") {
            guard t > 0 else { throw UsageError("--threads must be positive") }
            BLAS.setThreadCount(t)
        }
        if let dir = args.string("model") {
            let model = try ModelLocator.loadModel(args, path: URL(fileURLWithPath: dir))
            return (model, "\(dir) (\(weightTypes(model)))")
        }
        let name = args.string("config") ?? "smollm2-135m"
        guard name == "smollm2-135m" else { throw UsageError("--config: unknown shape '\(name)' (available: smollm2-135m)") }
        let seed = UInt64(truncatingIfNeeded: try args.int("seed") ?? 0)
        return (LlamaModel.random(config: .smolLM2_135M, seed: seed), "random \(name)")
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

enum DecodeBench {
    static let help = """
    USAGE: switchyard bench decode [options]

    Measures, on one model in one process: prefill tokens/s (one prompt), decode tokens/s at
    batch 1, and decode tokens/s at batch N (N sequences of different prompt lengths decoded
    together), and the ratio batch-N / batch-1.

    OPTIONS:
    \(BenchModel.optionsHelp)
      --prompt-tokens P   Prompt length (default 64).
      --decode-tokens D   Decode steps measured (default 32).
      --batch N           Batch size for the batched figure (default 8).
      --format text|json  json keys: prefill_tokens_per_s, decode_tokens_per_s_b1,
                          decode_tokens_per_s_b8 (batch N), batch_speedup, …
    """

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: BenchModel.options.union(["prompt-tokens", "decode-tokens", "batch", "format"]))
        let json = try args.wantsJSON()
        let promptTokens = try args.int("prompt-tokens") ?? 64
        let decodeTokens = try args.int("decode-tokens") ?? 32
        let batch = try args.int("batch") ?? 8
        guard promptTokens > 0, decodeTokens > 0, batch > 0 else { throw UsageError("--prompt-tokens, --decode-tokens and --batch must be positive") }
        BenchModel.warnIfDebug()
        let (model, label) = try BenchModel.load(args)
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
