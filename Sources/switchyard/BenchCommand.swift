import Foundation
import Switchyard

/// `switchyard bench …`: throughput measurements, reported with a baseline run in the same process.
enum BenchCommand: CommandGroup {
    static let name = "bench"
    static let summary = "Measure throughput (build with -c release)"
    static let discussion =
        "Run a release build (swift run -c release switchyard bench …); debug builds are far slower."
    static var subcommands: [any CommandEntry.Type] {
        [DecodeBench.self, LoRABench.self, RouteBench.self, ServeBench.self]
    }
}

/// Shared set-up for benches: the model (a directory, or random weights of a known shape).
struct BenchModel: ParsableArguments {
    @Option(
        placeholder: "DIR|FILE", help: "Benchmark this model (a directory or a GGUF file) instead of random weights.")
    var model: String?
    @OptionGroup var format: WeightsOption
    @Option(placeholder: "NAME", help: "Shape of the random-weight model (available: smollm2-135m).")
    var config = "smollm2-135m"
    @Option(help: "Compute threads. Default: all cores.")
    var threads: Int?
    @Option(placeholder: "S", help: "Seed for the random weights.")
    var seed = 0

    func validate() throws {
        // Above a few threads per core only the thread creation grows (100000 never finished).
        let most = 8 * ProcessInfo.processInfo.activeProcessorCount
        if let t = threads, t <= 0 || t > most {
            throw UsageError("--threads must be in 1...\(most) (8 per core), got \(t)")
        }
        guard config == "smollm2-135m" else {
            throw UsageError("--config: unknown shape \(EscapedText.quoted(config)) (available: smollm2-135m)")
        }
    }

    func load() throws -> (LlamaModel, String) {
        if let t = threads { BLAS.setThreadCount(t) }
        if let dir = model {
            let url = URL(fileURLWithPath: dir)
            let model = try format.load(url)
            return (model, "\(dir) (\(BenchModel.weightTypes(model))\(try BenchModel.storedTypes(url)))")
        }
        let model = LlamaModel.random(config: .smolLM2_135M, seed: UInt64(truncatingIfNeeded: seed))
        format.apply(to: model)
        return (model, "random \(config) (KV cache \(model.cachePrecision.rawValue.uppercased()))")
    }

    /// What the projections, the head and the embedding table are stored as, e.g.
    /// "weights Q4_1 + head Q8_0 + embedding Q8_0 + KV cache F16"; with BF16 weights, how batches
    /// multiply them ("+ BF16 batches on bfloat16 dot products", or "… on Float32 activations");
    /// "+ Q8_0 in row pairs" when a projection or the head is (`QuantizedMatrix.keptInRowPairs`).
    static func weightTypes(_ model: LlamaModel) -> String {
        let kinds = Set(
            model.layers.flatMap { l in ProjectionKind.allCases.map { l[$0].quantized.map { "\($0.type)" } ?? "F32" } })
        let bf16 = hasBF16Weights(model), dot = multipliesBF16WithDotProducts(model)
        let pairs =
            model.layers.contains { l in ProjectionKind.allCases.contains { l[$0].quantized?.keptInRowPairs == true } }
            || model.outputQuantized?.keptInRowPairs == true
        return
            "weights \(kinds.sorted().joined(separator: "/")) + head \(model.outputQuantized.map { "\($0.type)" } ?? "F32")"
            + " + embedding \(model.embeddingTable.map { "\($0.type)" } ?? "F32")"
            + " + KV cache \(model.cachePrecision.rawValue.uppercased())"
            + (bf16 ? " + BF16 batches on \(dot ? "bfloat16 dot products" : "Float32 activations")" : "")
            + (pairs ? " + Q8_0 in row pairs" : "")
    }

    /// For a GGUF file whose matrices are stored in types the kernels do not read as they are
    /// (rewritten or requantised at load, `GGUFModel.WeightFormat.native`): "; file Q4_K/Q5_0/…",
    /// what the file holds beside what ran. Empty otherwise.
    static func storedTypes(_ url: URL) throws -> String {
        guard url.pathExtension.lowercased() == "gguf" else { return "" }
        let file = try GGUFFile(url: url)
        let stored = Set(file.tensors.values.filter { $0.shape.count == 2 }.map(\.type))
        guard !stored.isSubset(of: QuantizedMatrix.nativeTypes.union([.f32])) else { return "" }
        return "; file \(stored.map(\.description).sorted().joined(separator: "/"))"
    }

    /// Whether any projection or the head is stored BF16.
    static func hasBF16Weights(_ model: LlamaModel) -> Bool {
        model.layers.contains { l in ProjectionKind.allCases.contains { l[$0].quantized?.type == .bf16 } }
            || model.outputQuantized?.type == .bf16
    }

    /// Whether batches multiply the BF16 weights with bfloat16 dot products here.
    static func multipliesBF16WithDotProducts(_ model: LlamaModel) -> Bool {
        hasBF16Weights(model) && model.bf16Activations == .bf16 && QuantizedMatrix.bf16DotProductsAvailable
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
        Measures, on one model in one process: the resident memory after load, prefill tokens/s
        (one prompt of P tokens), decode tokens/s at batch 1 (at depth P), decode tokens/s at batch N
        (N sequences of different prompt lengths decoded together; skipped when N is 1) and the
        ratio batch-N / batch-1; with --expert, batch-1 decode with that PEFT adapter unmerged and
        its ratio to the base. The weight types that ran are printed with the model.
        Then the roofline: the machine's Float32 multiply-add peak, measured in the same run on the
        same threads (independent FMAs, 16-lane with AVX-512), and the fraction of it each decode figure reaches
        (multiply-adds of the projections, attention and head per token); peak / batch-1 rate is the
        most any batch can speed Float32 decode up on this machine. On CPUs with AVX-512 VNNI the
        batched products of Q8_0/Q4_0/Q4_1 weights run on 8-bit dot products (Q8_0 kept in row
        pairs for them: "+ Q8_0 in row pairs" in the weights line), and on CPUs with
        AVX-512 BF16 those of BF16 weights on bfloat16 dot products (--bf16-activations bf16, the
        default for GGUF files), which that peak does not bound (the line says so).
        JSON keys: weights, resident_bytes_after_load, prefill_tokens_per_s, decode_tokens_per_s_b1,
        decode_tokens_per_s_b8 (batch N), batch_speedup, decode_tokens_per_s_b1_expert,
        expert_vs_base, multiply_add_peak_per_s, decode_b1_of_peak, decode_b8_of_peak (batch N),
        batch_speedup_ceiling, weight_products_ms_b1, weight_products_ms_b8 (batch N),
        weight_products_speedup_ceiling.
        Last, the weight products alone (every layer's projections, fused as the model fuses them,
        and the head, on random activations; best of 5): their time per step at batch 1 and N, and
        the batch-N rate they alone allow as a multiple of the measured batch 1 — no batch N step
        can be shorter, whatever attention, norms and the rest cost.
        """

    struct Options: ParsableArguments {
        @OptionGroup var bench: BenchModel
        @Option(placeholder: "P", help: "Prompt length.")
        var promptTokens = 64
        @Option(placeholder: "D", help: "Decode steps measured.")
        var decodeTokens = 32
        @Option(help: "Batch size for the batched figure (1: skip it).")
        var batch = 8
        @Option(placeholder: "DIR", help: "A PEFT adapter directory: also measure batch-1 decode with it unmerged.")
        var expert: String?
        @OptionGroup var output: FormatOption

        func validate() throws {
            guard promptTokens > 0, decodeTokens > 0, batch > 0 else {
                throw UsageError("--prompt-tokens, --decode-tokens and --batch must be positive")
            }
        }
    }

    static func run(_ options: Options) throws {
        let json = options.output.json
        let promptTokens = options.promptTokens, decodeTokens = options.decodeTokens, batch = options.batch
        BenchModel.warnIfDebug()
        let (model, label) = try options.bench.load()
        let resident = ResidentMemory.bytes()
        let adapter = try options.expert.map {
            try LoRAAdapter.load(directory: URL(fileURLWithPath: $0), base: model.config)
        }
        let vocab = model.config.vocabSize
        var rng = SeededRandom(seed: 7)
        func prompt(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) } }
        let ws = ForwardWorkspace()

        // Prefill: best of 3.
        var prefill = Double.infinity
        for _ in 0..<3 {
            let cache = model.makeCache(initialCapacity: promptTokens)
            let p = prompt(promptTokens)
            prefill = min(
                prefill, try measure { _ = try model.forward([SequenceInput(tokens: p, cache: cache)], workspace: ws) })
        }

        let b1 = try decodeRate(model: model, batch: 1, promptTokens: promptTokens, decodeTokens: decodeTokens)
        let bn =
            batch > 1
            ? try decodeRate(model: model, batch: batch, promptTokens: promptTokens, decodeTokens: decodeTokens) : nil
        let withExpert = try adapter.map {
            try decodeRate(
                model: model, batch: 1, promptTokens: promptTokens, decodeTokens: decodeTokens,
                routing: [.experts([$0])])
        }
        let prefillRate = Double(promptTokens) / prefill
        // The weight products alone at batch 1 and N: batch N cannot pass N / (their time) tokens/s.
        let products1 = WeightProducts.secondsPerStep(model: model, rows: 1)
        let productsN = batch > 1 ? WeightProducts.secondsPerStep(model: model, rows: batch) : nil
        let productsCeiling = productsN.map { Double(batch) / $0 / b1 }
        let roofline = Roofline(
            peak: BLAS.multiplyAddPeak(),
            macsPerToken: Double(model.config.multiplyAddsPerToken(depth: promptTokens + decodeTokens / 2)))
        if json {
            try DecodeReport(
                model: label, weights: BenchModel.weightTypes(model), parameters: model.config.parameterCount,
                threads: BLAS.threadCount, residentBytesAfterLoad: resident, promptTokens: promptTokens,
                decodeTokens: decodeTokens, batch: batch, prefillTokensPerS: prefillRate, decodeTokensPerSB1: b1,
                decodeTokensPerSB8: bn, batchSpeedup: bn.map { $0 / b1 }, decodeTokensPerSB1Expert: withExpert,
                expertVsBase: withExpert.map { $0 / b1 }, multiplyAddPeakPerS: roofline.peak,
                decodeB1OfPeak: roofline.fraction(b1), decodeB8OfPeak: bn.map(roofline.fraction),
                batchSpeedupCeiling: roofline.speedupCeiling(b1), weightProductsMsB1: products1 * 1e3,
                weightProductsMsB8: productsN.map { $0 * 1e3 }, weightProductsSpeedupCeiling: productsCeiling
            ).printJSON()
        } else {
            print("model: \(label) (\(model.config.parameterCount) parameters), threads: \(BLAS.threadCount)")
            if let resident { print("resident after load:      \(resident / 1_048_576) MiB") }
            print("prefill (\(promptTokens) tokens):   \(fmt(prefillRate)) tokens/s")
            print("decode batch 1:           \(fmt(b1)) tokens/s  (at depth \(promptTokens))")
            if let bn { print("decode batch \(batch):           \(fmt(bn)) tokens/s  (\(fmt(bn / b1))× batch 1)") }
            if let withExpert, let adapter {
                print(
                    "decode batch 1, expert \(EscapedText.quoted(adapter.name)) unmerged: \(fmt(withExpert)) tokens/s  (\(fmt(withExpert / b1))× base)"
                )
            }
            let peak = String(format: "%.1f", roofline.peak / 1e9)
            let macs = String(format: "%.1f", roofline.macsPerToken / 1e6)
            print(
                "multiply-add peak:        \(peak) G/s  (measured now, \(BLAS.threadCount) threads; \(macs) M per token)"
            )
            var shares = "decode batch 1 \(percent(roofline.fraction(b1)))"
            if let bn { shares += ", batch \(batch) \(percent(roofline.fraction(bn)))" }
            let ceiling = "\(fmt(roofline.speedupCeiling(b1)))× batch 1"
            // Products that do not run on Float32 FMAs, which the peak does not bound.
            let beyond =
                Self.hasIntegerWeights(model) && QuantizedMatrix.batchedProductsUseVNNI
                ? "the integer weights use 8-bit dot products"
                : BenchModel.multipliesBF16WithDotProducts(model) ? "the BF16 weights use bfloat16 dot products" : nil
            print(
                beyond.map {
                    "share of peak:            \(shares); Float32 ceiling \(ceiling) (batched products of \($0) here, which it does not bound)"
                } ?? "share of peak:            \(shares); no batch can exceed \(ceiling) here"
            )
            let ms = { String(format: "%.2f ms", $0 * 1e3) }
            var products = "weight products alone:    \(ms(products1)) a step at batch 1"
            if let productsN, let productsCeiling {
                products +=
                    ", \(ms(productsN)) at batch \(batch): batch \(batch) cannot pass \(fmt(Double(batch) / productsN)) tokens/s (\(fmt(productsCeiling))× batch 1)"
            }
            print(products)
        }
    }

    /// Whether any projection or the head is stored in an integer block format (Q8_0, Q4_0, Q4_1).
    static func hasIntegerWeights(_ model: LlamaModel) -> Bool {
        let integer = QuantizedMatrix.integerTypes
        return model.layers.contains { l in
            ProjectionKind.allCases.contains { l[$0].quantized.map { integer.contains($0.type) } ?? false }
        }
            || model.outputQuantized.map { integer.contains($0.type) } ?? false
    }

    static func fmt(_ x: Double) -> String { String(format: "%.2f", x) }
    static func percent(_ x: Double) -> String { String(format: "%.0f%%", 100 * x) }

    /// A decode rate against the machine's multiply-add peak: tokens/s × multiply-adds per token is
    /// the work rate, and the peak over batch 1's work rate bounds what batching can add (a batch
    /// reads the weights once, but every row still costs its own multiply-adds).
    struct Roofline {
        /// Multiply-adds per second, measured (`BLAS.multiplyAddPeak`).
        let peak: Double
        /// Multiply-adds of one decoded token (`ModelConfig.multiplyAddsPerToken`).
        let macsPerToken: Double
        func fraction(_ tokensPerSecond: Double) -> Double { tokensPerSecond * macsPerToken / peak }
        func speedupCeiling(_ batchOneTokensPerSecond: Double) -> Double { 1 / fraction(batchOneTokensPerSecond) }
    }
}

extension Double {
    /// Rounded to two decimals, for the benches' JSON figures (as their text prints them).
    var hundredths: Double { (self * 100).rounded() / 100 }
}

extension DecodeBench {

    /// `--format json` (absent figures are omitted).
    struct DecodeReport: Encodable {
        let model, weights: String
        let parameters, threads: Int
        let residentBytesAfterLoad: Int?
        let promptTokens, decodeTokens, batch: Int
        let prefillTokensPerS, decodeTokensPerSB1: Double
        let decodeTokensPerSB8, batchSpeedup, decodeTokensPerSB1Expert, expertVsBase: Double?
        let multiplyAddPeakPerS, decodeB1OfPeak: Double
        let decodeB8OfPeak: Double?
        let batchSpeedupCeiling: Double
        let weightProductsMsB1: Double
        let weightProductsMsB8, weightProductsSpeedupCeiling: Double?

        enum CodingKeys: String, CodingKey {
            case model, weights, parameters, threads, batch
            case residentBytesAfterLoad = "resident_bytes_after_load", promptTokens = "prompt_tokens"
            case decodeTokens = "decode_tokens", prefillTokensPerS = "prefill_tokens_per_s"
            case decodeTokensPerSB1 = "decode_tokens_per_s_b1", decodeTokensPerSB8 = "decode_tokens_per_s_b8"
            case batchSpeedup = "batch_speedup", decodeTokensPerSB1Expert = "decode_tokens_per_s_b1_expert"
            case expertVsBase = "expert_vs_base", multiplyAddPeakPerS = "multiply_add_peak_per_s"
            case decodeB1OfPeak = "decode_b1_of_peak", decodeB8OfPeak = "decode_b8_of_peak"
            case batchSpeedupCeiling = "batch_speedup_ceiling"
            case weightProductsMsB1 = "weight_products_ms_b1", weightProductsMsB8 = "weight_products_ms_b8"
            case weightProductsSpeedupCeiling = "weight_products_speedup_ceiling"
        }
    }
}
