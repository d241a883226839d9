import Foundation
import Switchyard

/// `switchyard bench route`: decode cost of each router kind against the base model.
enum RouteBench: Command {
    static let name = "route"
    static let summary = "Cost of each router kind (sentence, token, centroid, SMoRA) over base"
    static let discussion = """
        On one model (random SmolLM2-135M shape by default) with 8 random rank-16 experts on all seven
        projections, measures batch-1 decode tokens/s for the base model and for:
          - a sentence-level router, top-2 (decided once from the prompt);
          - a token-level learned gate in every layer, top-2 per token and layer;
          - a centroid (gradient-free) router at layer 2, top-2, recomputed every 2nd token;
          - SMoRA: one LoRA of rank 64 on all projections with rank gates, top-8 ranks per token.
        Each is reported as overhead over the base model measured in the same run.
        """

    struct Options: ParsableArguments {
        @OptionGroup var bench: BenchModel
        @Option(placeholder: "D", help: "Decode steps measured.")
        var decodeTokens = 32
        @Option(placeholder: "R", help: "Interleaved rounds; each configuration reports its best.")
        var rounds = 2
        @OptionGroup var output: FormatOption

        func validate() throws {
            guard decodeTokens > 0, rounds > 0 else {
                throw UsageError("--decode-tokens and --rounds must be positive")
            }
        }
    }

    static func run(_ options: Options) throws {
        let json = options.output.json
        let decodeTokens = options.decodeTokens, rounds = options.rounds
        BenchModel.warnIfDebug()
        let (model, label) = try options.bench.load()
        let c = model.config
        let experts = (0..<8).map { LoRAAdapter.random(name: "expert\($0)", base: c, rank: 16, seed: UInt64(100 + $0)) }
        var rng = SeededRandom(seed: 9)
        func tensor(_ shape: [Int], std: Float = 0.05) -> WireTensor {
            WireTensor(
                shape: shape, values: (0..<shape.reduce(1, *)).map { _ in (rng.nextUnitFloat() * 2 - 1) * std * 1.732 })
        }
        let refs = experts.map { RouterSpec.ExpertRef(name: $0.name, sha256: "") }
        let top2 = Selection(mode: .topK, topK: 2, temperature: 1)
        let sentence = RouterSpec(
            name: "sentence", granularity: .sentence, experts: refs, selection: top2,
            gate: .sentence(
                featureLayer: 2, pooling: .mean,
                layers: [DenseLayer(weight: tensor([8, c.hiddenSize]), bias: nil, activation: .none)]))
        let token = RouterSpec(
            name: "token", granularity: .token, experts: refs, selection: top2,
            gate: .token(
                layers: (0..<c.numLayers).map {
                    LayerGateSpec(layer: $0, experts: Array(0..<8), weight: tensor([8, c.hiddenSize]), bias: nil)
                },
                global: false, sourceLayer: 0))
        var every2 = top2
        every2.everyN = 2
        every2.temperature = 0.05
        let centroid = RouterSpec(
            name: "centroid", granularity: .token, experts: refs, selection: every2,
            gate: .centroid(layer: 2, centroids: tensor([8, c.hiddenSize], std: 1)))
        let modules = (0..<c.numLayers).flatMap { l in
            ProjectionKind.allCases.map { k -> RankModuleSpec in
                let (o, i) = c.projectionShape(k)
                return RankModuleSpec(
                    layer: l, module: k.rawValue, a: tensor([64, i], std: 0.02), b: tensor([o, 64], std: 0.02),
                    gate: tensor([64, i]), scale: 0.5)
            }
        }
        let smora = RouterSpec(
            name: "smora", granularity: .rank, experts: [], selection: Selection(mode: .topK, topK: 8, temperature: 1),
            gate: .rank(modules: modules, activation: .softmax))
        let routers =
            try [sentence, token, centroid].map { try BoundRouter(spec: $0, model: model, experts: experts) }
            + [try BoundRouter(spec: smora, model: model, experts: [])]
        var prompt = SeededRandom(seed: 7)
        let promptTokens = (0..<32).map { _ in Int(prompt.next() % UInt64(c.vocabSize)) }

        func rate(_ router: BoundRouter?) throws -> Double {
            guard let router else {
                return try decodeRate(model: model, batch: 1, promptTokens: 32, decodeTokens: decodeTokens)
            }
            let routing = try router.routing(prompt: promptTokens)
            return try decodeRate(
                model: model, batch: 1, promptTokens: 32, decodeTokens: decodeTokens, routing: [routing])
        }
        var base = 0.0
        var rates = [Double](repeating: 0, count: routers.count)
        for _ in 0..<rounds {  // interleaved, best of the rounds: drift on a noisy machine hits all alike
            base = max(base, try rate(nil))
            for (i, r) in routers.enumerated() { rates[i] = max(rates[i], try rate(r)) }
        }
        let sentenceDecision = try measure { _ = try routers[0].sentenceMix(prompt: promptTokens) }
        let names = ["sentence_top2", "token_top2_per_layer", "centroid_top2_every2", "smora_r64_k8"]
        let fmt = DecodeBench.fmt
        if json {
            try Report(
                model: label, threads: BLAS.threadCount, base: base.hundredths,
                routers: Dictionary(
                    uniqueKeysWithValues: zip(
                        names, rates.map { (rate: $0.hundredths, overhead: (base / $0 - 1).hundredths) })),
                sentenceDecisionMs: (sentenceDecision * 1000).hundredths
            ).printJSON()
        } else {
            print("model: \(label), 8 experts of rank 16, batch 1, threads \(BLAS.threadCount)")
            print("base:                          \(fmt(base)) tok/s")
            for (n, r) in zip(names, rates) {
                print(
                    n.padding(toLength: 30, withPad: " ", startingAt: 0)
                        + " \(fmt(r)) tok/s  (overhead \(fmt(100 * (base / r - 1)))%)")
            }
            print("sentence routing decision (32-token prompt, once per request): \(fmt(sentenceDecision * 1000)) ms")
        }
    }

    /// `--format json`: base decode rate, then per router `decode_tokens_per_s_<router>` and
    /// `overhead_<router>` (base / routed − 1), and the sentence router's decision time.
    struct Report: Encodable {
        let model: String
        let threads: Int
        let base: Double
        let routers: [String: (rate: Double, overhead: Double)]
        let sentenceDecisionMs: Double

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: JSONKey.self)
            try c.encode(model, forKey: JSONKey("model"))
            try c.encode(threads, forKey: JSONKey("threads"))
            try c.encode(base, forKey: JSONKey("decode_tokens_per_s_base"))
            for (name, r) in routers {
                try c.encode(r.rate, forKey: JSONKey("decode_tokens_per_s_\(name)"))
                try c.encode(r.overhead, forKey: JSONKey("overhead_\(name)"))
            }
            try c.encode(sentenceDecisionMs, forKey: JSONKey("sentence_decision_ms"))
        }
    }
}
