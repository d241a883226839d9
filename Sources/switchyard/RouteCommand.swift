import Foundation
import Switchyard

/// `switchyard route`: generate with a router and show its decisions.
enum RouteCommand: Command {
    static let name = "route"
    static let summary = "Generate with a router and show which experts it chose"
    static let discussion = """
        Routes the prompt (and every generated token, for token- and rank-level routers) and prints
        the decisions as JSON: per token (and per layer, for per-layer gates) the experts with weights.
        Rank-level (SMoRA) routers: with --trace, per token and projection the active ranks and their
        gate values, and the expert each rank came from where the router concatenates listed experts
        (`router concat`); per token the share of gate mass per source expert; the heatmap shows
        source experts, or ranks (how often each is active) for trained ranks.
        """

    struct Options: ParsableArguments {
        @Argument(help: "The prompt text.")
        var prompt: String
        @Option(placeholder: "FILE", help: "Router file (.pb, switchyard.v1.RouterSpec).")
        var router: String
        @Option(help: "New tokens to generate.")
        var maxTokens = 32
        @Flag(help: "Every decision (each token, each layer); otherwise one line per token.")
        var trace: Bool
        @Option(
            placeholder: "FILE",
            help: "Write an SVG heatmap: tokens × experts, shaded by weight (averaged over layers).")
        var heatmap: String?
        @OptionGroup var model: ModelOptions
        @OptionGroup var registry: RegistryOptions
        @OptionGroup var chat: ChatOptions

        func validate() throws {
            guard maxTokens >= 0 else { throw UsageError("--max-tokens must be ≥ 0, got \(maxTokens)") }
        }
    }

    /// What route prints.
    struct Output: Encodable {
        var router: String
        var granularity: String
        var experts: [String]
        var output: String
        var tokens: [Token]
    }

    struct Token: Encodable {
        var position: Int
        var token: Int
        var text: String
        var generated: Bool
        /// With --trace: every decision for this token.
        var decisions: [Decision]?
        /// Without --trace: the mix averaged over the layers that decided for this token (rank
        /// routers: each source expert's share of the gate mass, averaged over projections).
        var experts: [Weight]?
        /// With --trace, rank-level routers: the active ranks at every adapted projection.
        var ranks: [RankChoice]?
    }

    struct RankChoice: Encodable {
        var layer: Int
        var module: String
        var ranks: [Int]
        var values: [Float]
        /// The source expert of each rank (routers made by `router concat`); nil otherwise.
        var experts: [String]?
    }

    struct Decision: Encodable {
        var layer: Int?
        var experts: [Weight]

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(layer, forKey: .layer)  // null for whole-model decisions
            try c.encode(experts, forKey: .experts)
        }

        enum CodingKeys: String, CodingKey { case layer, experts }
    }

    struct Weight: Encodable {
        var expert: String
        var weight: Float
    }

    static func run(_ options: Options) throws {
        if let path = options.heatmap {
            // Checked before generating, so a typo in the path does not cost the run.
            let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
            guard PathChecks.isDirectory(parent) else {
                throw UsageError("--heatmap: no directory \(parent) to write \(path) in")
            }
        }
        let dir = try options.model.directory()
        let model = try options.model.load(dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let registry = try options.registry.open(model: model)
        let spec = try RouterWire.read(URL(fileURLWithPath: options.router))
        let (router, lease) = try BoundRouter.bind(spec, model: model, registry: registry)
        defer { lease.release() }
        let prompt = try options.chat.encode(options.prompt, modelPath: dir, tokenizer: tokenizer)
        guard !prompt.isEmpty else { throw UsageError("the prompt encodes to no tokens") }
        let trace = RoutingTrace()
        let request = GenerationRequest(
            promptTokens: prompt, maxNewTokens: options.maxTokens,
            stopTokens: StopTokens.of(model: model, tokenizer: tokenizer))
        let output = try Generator(model: model).generate(request, router: router, trace: trace)
        let tokens = prompt + output
        let names = spec.experts.map(\.name)
        func weights(_ mix: ExpertMix) -> [Weight] {
            mix.entries.map {
                Weight(
                    expert: names.indices.contains($0.expert) ? names[$0.expert] : "#\($0.expert)", weight: $0.weight)
            }
        }
        let allDecisions = trace.decisions
        func decisions(at p: Int) -> [RoutingTrace.Decision] {
            spec.granularity == .sentence ? allDecisions : allDecisions.filter { $0.position == p }
        }
        // Rank-level routers: which source expert each rank belongs to, where known.
        let blocks =
            spec.granularity == .rank
            ? spec.rankBlocks(sourceRanks: names.map { (try? registry.entry($0))?.summary.ranks.max() ?? 0 }) : nil
        func owner(_ rank: Int) -> Int? { blocks?.firstIndex { $0.contains(rank) } }
        let rankDecisions = Dictionary(grouping: trace.rankDecisions, by: \.position)
        /// Rank routers, per token: each source expert's share of |gate value|, averaged over projections.
        func blockShares(_ ds: [RoutingTrace.RankDecision]) -> [Float] {
            var row = [Float](repeating: 0, count: names.count)
            for d in ds {
                let total = d.values.reduce(0) { $0 + abs($1) }
                guard total > 0 else { continue }
                for (r, v) in zip(d.ranks, d.values) {
                    if let e = owner(r) { row[e] += abs(v) / total / Float(ds.count) }
                }
            }
            return row
        }
        let entries = tokens.enumerated().map { p, t -> Token in
            let mine = decisions(at: p)
            var entry = Token(position: p, token: t, text: tokenizer.decode([t]), generated: p >= prompt.count)
            if let ds = rankDecisions[p] {
                if options.trace {
                    entry.ranks = ds.map { d in
                        RankChoice(
                            layer: d.site.layer, module: d.site.kind.rawValue, ranks: d.ranks, values: d.values,
                            experts: blocks == nil ? nil : d.ranks.map { owner($0).map { names[$0] } ?? "?" })
                    }
                } else if blocks != nil {
                    let shares = blockShares(ds)
                    entry.experts = shares.indices.filter { shares[$0] > 0 }.sorted { shares[$0] > shares[$1] }
                        .map { Weight(expert: names[$0], weight: shares[$0]) }
                }
            }
            if options.trace, spec.granularity != .rank {  // rank routers: `ranks` above
                entry.decisions = mine.map { Decision(layer: $0.layer, experts: weights($0.mix)) }
            } else if !mine.isEmpty {
                var averaged: [Int: Float] = [:]
                for d in mine {
                    for x in d.mix.entries { averaged[x.expert, default: 0] += x.weight / Float(mine.count) }
                }
                entry.experts = weights(
                    ExpertMix(
                        averaged.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                            .map { ExpertMix.Entry(expert: $0.key, weight: $0.value) }))
            }
            return entry
        }
        try Output(
            router: spec.name, granularity: "\(spec.granularity)", experts: names,
            output: tokenizer.decode(output, skipSpecialTokens: true), tokens: entries
        ).printJSON()
        if let path = options.heatmap, spec.granularity == .rank {
            // Source experts' share of the gate mass, or for trained ranks how often each rank is active.
            let rank = trace.rankDecisions.map { ($0.ranks.max() ?? 0) + 1 }.max() ?? 0
            let columns = blocks == nil ? (0..<rank).map { "r\($0)" } : names
            let rows = tokens.indices.map { p -> [Float] in
                let ds = rankDecisions[p] ?? []
                if blocks != nil { return blockShares(ds) }
                var row = [Float](repeating: 0, count: rank)
                for d in ds { for r in d.ranks { row[r] += 1 / Float(ds.count) } }
                return row
            }
            let svg = Heatmap.svg(
                rowLabels: tokens.map { tokenizer.decode([$0]) }, columnLabels: columns, weights: rows,
                generatedFrom: prompt.count,
                title: blocks == nil
                    ? "\(spec.name): active ranks per token (share of projections)"
                    : "\(spec.name): source experts' share of the rank gates per token")
            try AtomicFile.write(Data(svg.utf8), to: URL(fileURLWithPath: path))
            printError("wrote \(path)")
        } else if let path = options.heatmap {
            let rows = tokens.indices.map { p -> [Float] in
                let mine = decisions(at: p)
                var row = [Float](repeating: 0, count: names.count)
                for d in mine {
                    for e in d.mix.entries where e.expert < names.count {
                        row[e.expert] += e.weight / Float(max(1, mine.count))
                    }
                }
                return row
            }
            let svg = Heatmap.svg(
                rowLabels: tokens.map { tokenizer.decode([$0]) }, columnLabels: names, weights: rows,
                generatedFrom: prompt.count, title: "\(spec.name): experts per token")
            try AtomicFile.write(Data(svg.utf8), to: URL(fileURLWithPath: path))
            printError("wrote \(path)")
        }
    }
}
