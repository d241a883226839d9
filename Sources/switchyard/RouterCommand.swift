import Foundation
import Switchyard

/// `switchyard router …`: fit and inspect routers.
enum RouterCommand: CommandGroup {
    static let name = "router"
    static let summary = "Fit (centroids, sentence gate), build (SMoRA concat) and inspect routers"
    static var subcommands: [any CommandEntry.Type] {
        [FitCentroidsRouter.self, TrainRouter.self, ConcatRouter.self, InspectRouter.self]
    }

    /// What fit-centroids and train share: the model, the experts, the examples and the output.
    struct Fitting: ParsableArguments {
        @Option(placeholder: "FILE", help: "JSONL, one {\"text\": \"...\", \"expert\": \"name\"} per line.")
        var examples: String
        @Option(placeholder: "FILE", help: "Router file to write (.pb).")
        var out: String
        @Option(placeholder: "NAME", help: "Router name. Default: the output file's stem.")
        var name: String?
        @Option(placeholder: "L", help: "Feature layer: hidden state entering decoder layer L.")
        var layer = 1
        @Option(placeholder: "P", help: "Use top-p selection instead of top-k.")
        var topP: Float?
        @Option(placeholder: "T", help: "Softmax temperature (0.05 suits cosine scores).")
        var temperature: Float = 1
        @OptionGroup var model: ModelOptions
        @OptionGroup var registry: RegistryOptions

        func validate() throws {
            // The wire reads temperature 0 as 1 (router.proto), so 0 would silently become 1.
            guard temperature > 0 else { throw UsageError("--temperature must be > 0, got \(temperature)") }
            if let topP {
                guard topP > 0, topP <= 1 else { throw UsageError("--top-p must be in (0, 1], got \(topP)") }
            }
        }
    }

    /// The examples and model loaded, features computed: what both fitting commands start from.
    struct Prepared {
        var model: LlamaModel
        var registry: ExpertRegistry
        var expertNames: [String]
        var refs: [RouterSpec.ExpertRef]
        var examples: [RoutingExample]
        /// One row per example, or per position read (`FeatureReading.context`).
        var features: Matrix
        /// The expert of each feature row.
        var labels: [Int]
        var selection: Selection
        var name: String
    }

    /// How the features are read: pooled over each prompt (`pooling`), or, with `context`, as a
    /// context-MEAN router reads them (`RouterFitting.contextFeatures`: the mean of the last
    /// `window` positions so far, 0 = all, at the prompt's end and, with `completions`, at every
    /// completion token).
    struct FeatureReading {
        var pooling: RouterSpec.Pooling = .mean
        var context = false
        var window = 0
        var completions = false
    }

    static func prepare(_ o: Fitting, topK: Int, reading: FeatureReading) throws -> Prepared {
        let dir = try o.model.directory()
        let model = try o.model.load(dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let registry = try o.registry.open(model: model)
        let (texts, names, answers) = try readExamples(o.examples)
        var expertNames: [String] = []
        for n in names where !expertNames.contains(n) { expertNames.append(n) }
        let refs = try expertNames.map { n in RouterSpec.ExpertRef(name: n, sha256: try registry.entry(n).sha256) }
        if reading.completions, let missing = answers.firstIndex(where: { $0 == nil }) {
            throw SwitchyardError.invalidArgument(
                "\(o.examples): line \(missing + 1) has no \"completion\", which --completions fits on")
        }
        let examples = try texts.indices.map { i in
            RoutingExample(
                tokens: try PromptFormat.encode(texts[i], tokenizer), expert: expertNames.firstIndex(of: names[i])!,
                completion: reading.completions ? try tokenizer.encodeChecked(answers[i]!) : [])
        }
        if let empty = examples.firstIndex(where: { $0.tokens.isEmpty }) {
            throw SwitchyardError.invalidArgument("\(o.examples): line \(empty + 1) encodes to no tokens")
        }
        guard topK >= 1, topK <= expertNames.count else {
            throw UsageError(
                "--top-k must be in 1...\(expertNames.count) (the experts \(o.examples) names), got \(topK)")
        }
        guard o.layer >= 0, o.layer < model.config.numLayers else {
            throw UsageError("--layer must be in 0..<\(model.config.numLayers), got \(o.layer)")
        }
        var bar = ProgressBar(total: examples.count, label: "features")
        let features: Matrix, labels: [Int]
        if reading.context {
            (features, labels) = try RouterFitting.contextFeatures(
                model: model, examples: examples, layer: o.layer, window: reading.window
            ) { bar.update($0) }
        } else {
            features = try RouterFitting.features(
                model: model, examples: examples, layer: o.layer, pooling: reading.pooling
            ) { bar.update($0) }
            labels = examples.map(\.expert)
        }
        var selection = Selection(mode: .topK, topK: topK, temperature: o.temperature)
        if let p = o.topP { selection.mode = .topP; selection.topP = p }
        let name = o.name ?? URL(fileURLWithPath: o.out).deletingPathExtension().lastPathComponent
        return Prepared(
            model: model, registry: registry, expertNames: expertNames, refs: refs, examples: examples,
            features: features, labels: labels, selection: selection, name: name)
    }

    /// Checks that the router binds to its experts, writes it and describes it.
    static func finish(_ spec: RouterSpec, _ p: Prepared, out: String) throws {
        _ = try BoundRouter(spec: spec, model: p.model, experts: try p.registry.acquire(p.expertNames).adapters)
        try RouterWire.write(spec, to: URL(fileURLWithPath: out))
        print("wrote \(out)\n" + describe(spec))
    }

    static func describe(_ s: RouterSpec) -> String {
        var lines = [
            "router \(s.name) v\(s.version), granularity \(s.granularity)",
            "experts: " + s.experts.map { "\($0.name) (\($0.sha256.prefix(12)))" }.joined(separator: ", ")
        ]
        let sel = s.effectiveSelection
        lines.append(
            "selection: \(sel.mode) k=\(sel.topK) p=\(sel.topP) threshold=\(sel.threshold) T=\(sel.temperature) every_n=\(sel.everyN) prompt=\(sel.promptRouting == .whole ? "whole" : "per-token")"
                + (sel.contextWindow > 0 ? " window=\(sel.contextWindow)" : "")
        )
        switch s.gate {
        case .none: lines.append("gate: none")
        case let .sentence(l, pooling, layers):
            lines.append(
                "gate: sentence MLP \(layers.map { "\($0.weight.shape)" }.joined(separator: " → ")) on layer \(l) (\(pooling))"
            )
        case let .token(layers, global, source, context):
            lines.append(
                "gate: token, \(global ? "global from layer \(source)\(context == .mean ? ", context mean of the tokens so far" : "")" : "per layer") "
                    + layers.map { "L\($0.layer):\($0.experts.count)" }.joined(separator: " "))
        case let .centroid(l, c, context, owners):
            let perExpert = owners.isEmpty ? "one per expert" : "\(owners.count) for \(Set(owners).count) experts"
            lines.append(
                "gate: centroids \(c.shape) (\(perExpert)) at layer \(l), context \(context == .mean ? "mean of the tokens so far" : "the token alone")"
            )
        case let .rank(modules, act):
            lines.append(
                "gate: rank (SMoRA), \(modules.count) modules, rank \(modules.first?.a.shape.first ?? 0), \(act)")
        }
        return lines.joined(separator: "\n")
    }

    /// One line of a routing examples file: `{"text": …, "expert": …}` ("prompt" and "task"
    /// accepted too, so task files with a task field serve as they are), with an optional
    /// "completion" (the answer, read by `fit-centroids --completions`).
    struct Example: Decodable {
        var text: String
        var expert: String
        var completion: String?

        enum CodingKeys: String, CodingKey { case text, prompt, expert, task, completion }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            text = try Self.either(c, .text, .prompt)
            expert = try Self.either(c, .expert, .task)
            completion = try c.decodeIfPresent(String.self, forKey: .completion)
        }

        /// The string under `key`, else under `alternative`; missing both is reported as `key`.
        private static func either(
            _ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, _ alternative: CodingKeys
        ) throws -> String {
            if !c.contains(key), c.contains(alternative) { return try c.decode(String.self, forKey: alternative) }
            return try c.decode(String.self, forKey: key)
        }
    }

    /// The texts, experts and completions (nil where a line has none) of an examples file.
    static func readExamples(_ path: String) throws -> ([String], [String], [String?]) {
        let examples = try JSONLines.read(path, as: Example.self, expected: "{\"text\": \"…\", \"expert\": \"…\"}")
        guard !examples.isEmpty else { throw SwitchyardError.invalidArgument("\(path): no examples") }
        return (examples.map(\.text), examples.map(\.expert), examples.map(\.completion))
    }
}

enum FitCentroidsRouter: Command {
    static let name = "fit-centroids"
    static let summary = "Gradient-free token router: centroids of each expert's examples"
    static let discussion = """
        One centroid per expert: the mean over that expert's examples of their mean hidden state
        entering --layer (the paper's rule). With --centroids-per-expert K, each expert's examples
        are split into up to K clusters (spherical k-means, seeded by --seed) and an expert scores
        its nearest centroid: experts asked for in many phrasings keep one centroid per family.
        """

    struct Options: ParsableArguments {
        @OptionGroup var fitting: RouterCommand.Fitting
        @Option(placeholder: "K", help: "Experts per decision.")
        var topK = 2
        @Option(help: "Recompute every N-th token.")
        var everyN = 2
        @Option(
            help:
                "Compare the centroids with the mean hidden state of the tokens so far (like the fitted features) or with each token's own hidden state."
        )
        var context: RouterSpec.CentroidContext = .mean
        @Option(
            help:
                "Route the prompt's tokens each from the text before it (per-token) or all at once from the whole prompt (a base pass, like the sentence router); generated tokens per token either way."
        )
        var prompt: Selection.PromptRouting = .perToken
        @Option(placeholder: "K", help: "Centroids per expert (spherical k-means of its examples; 1: their mean).")
        var centroidsPerExpert = 1
        @Option(help: "Seeds the k-means of --centroids-per-expert (same seed, same router).")
        var seed = 0
        @Option(
            placeholder: "N",
            help:
                "With --context mean, read the mean of only the last N tokens so far (0: all of them), at fitting (each example's last N tokens) and at routing alike, so a request whose task changes midway is routed on its recent text."
        )
        var contextWindow = 0
        @Flag(
            help:
                "Fit also on each example's \"completion\", teacher-forced: the mean of the text so far at every answer token, as the router reads it while it generates (the paper's centroids are of whole training texts). With --context mean."
        )
        var completions: Bool

        func validate() throws {
            guard contextWindow >= 0 else { throw UsageError("--context-window must be >= 0, got \(contextWindow)") }
            guard (contextWindow == 0 && !completions) || context == .mean else {
                throw UsageError(
                    "--context-window and --completions need --context mean (a token's own state has no window)")
            }
        }
    }

    static func run(_ options: Options) throws {
        let reading = RouterCommand.FeatureReading(
            context: options.context == .mean, window: options.contextWindow, completions: options.completions)
        let p = try RouterCommand.prepare(options.fitting, topK: options.topK, reading: reading)
        var selection = p.selection
        selection.everyN = options.everyN
        selection.promptRouting = options.prompt
        selection.contextWindow = options.contextWindow
        let (c, owners) = try RouterFitting.clusteredCentroids(
            features: p.features, labels: p.labels, expertCount: p.expertNames.count,
            perExpert: options.centroidsPerExpert, seed: UInt64(truncatingIfNeeded: options.seed))
        let spec = RouterSpec(
            name: p.name, granularity: .token, experts: p.refs, selection: selection,
            gate: .centroid(
                layer: options.fitting.layer, centroids: WireTensor(c), context: options.context,
                centroidExperts: options.centroidsPerExpert == 1 ? [] : owners))
        try RouterCommand.finish(spec, p, out: options.fitting.out)
    }
}

enum TrainRouter: Command {
    static let name = "train"
    static let summary = "Sentence-level MLP gate on pooled prompt features (cross-entropy, Adam)"
    static let discussion = "Prints held-out accuracy per epoch."

    struct Options: ParsableArguments {
        @OptionGroup var fitting: RouterCommand.Fitting
        @Option(placeholder: "K", help: "Experts per decision.")
        var topK = 1
        @Option(help: "Pooling over the prompt.")
        var pooling: RouterSpec.Pooling = .mean
        @Option(placeholder: "H", help: "Hidden units.")
        var hidden = 64
        @Option(help: "Training epochs.")
        var epochs = 60
        @Option(placeholder: "LR", help: "Adam step size.")
        var learningRate: Float = 3e-3
        @Option(placeholder: "F", help: "Fraction held out for accuracy.")
        var heldOut: Float = 0.1

        func validate() throws {
            guard hidden > 0, epochs > 0 else { throw UsageError("--hidden and --epochs must be positive") }
            guard (0..<1).contains(heldOut) else { throw UsageError("--held-out must be in [0, 1), got \(heldOut)") }
        }
    }

    static func run(_ o: Options) throws {
        let p = try RouterCommand.prepare(o.fitting, topK: o.topK, reading: .init(pooling: o.pooling))
        var options = RouterFitting.TrainingOptions()
        options.hidden = o.hidden
        options.epochs = o.epochs
        options.learningRate = o.learningRate
        var rng = SeededRandom(seed: 11)
        let shuffled = Array(p.examples.indices).shuffled(using: &rng)
        let cut = Int(Float(shuffled.count) * o.heldOut)
        let heldOut = Array(shuffled[..<cut]), train = Array(shuffled[cut...])
        var epochBar = ProgressBar(total: options.epochs, label: "training")
        let layers = RouterFitting.trainGate(
            features: p.features, labels: p.labels, expertCount: p.expertNames.count,
            train: train, heldOut: heldOut, options: options
        ) { epoch, loss, acc in
            epochBar.update(epoch, suffix: String(format: "loss %.4f held-out acc %.3f", loss, acc))
            if epoch == options.epochs || epoch % 10 == 0 {
                printError(
                    String(
                        format: "epoch %d: loss %.4f, held-out accuracy %.3f (%d examples)", epoch, loss, acc,
                        heldOut.count))
            }
        }
        let spec = RouterSpec(
            name: p.name, granularity: .sentence, experts: p.refs, selection: p.selection,
            gate: .sentence(featureLayer: o.fitting.layer, pooling: o.pooling, layers: layers))
        try RouterCommand.finish(spec, p, out: o.fitting.out)
    }
}

enum ConcatRouter: Command {
    static let name = "concat"
    static let summary = "A rank-as-expert (SMoRA) router from experts concatenated along the rank"
    static let discussion =
        "With zero gates every active rank counts fully, so --top-k = total rank reproduces the experts' sum."

    struct Options: ParsableArguments {
        @Option(help: "The experts to concatenate.")
        var experts: NameList
        @Option(placeholder: "FILE", help: "Router file to write (.pb).")
        var out: String
        @Option(placeholder: "NAME", help: "Router name. Default: the output file's stem.")
        var name: String?
        @Option(placeholder: "K", help: "Active ranks per token. Default: the total rank.")
        var topK: Int?
        @OptionGroup var model: ModelOptions
        @OptionGroup var registry: RegistryOptions
    }

    static func run(_ options: Options) throws {
        let registry = try options.registry.open(base: try options.model.config())
        let names = options.experts.names
        let lease = try registry.acquire(names)
        let total = lease.adapters.reduce(0) { $0 + ($1.ranks.max() ?? 0) }
        var spec = try RouterSpec.rankRouter(
            concatenating: lease.adapters,
            name: options.name ?? URL(fileURLWithPath: options.out).deletingPathExtension().lastPathComponent,
            topK: options.topK ?? total)
        spec.experts = try names.map { RouterSpec.ExpertRef(name: $0, sha256: try registry.entry($0).sha256) }
        try RouterWire.write(spec, to: URL(fileURLWithPath: options.out))
        print("wrote \(options.out)\n" + RouterCommand.describe(spec))
    }
}

enum InspectRouter: Command {
    static let name = "inspect"
    static let summary = "Summary of a router file"

    struct Options: ParsableArguments {
        @Argument(help: "The router file (.pb).")
        var file: String
    }

    static func run(_ options: Options) throws {
        print(RouterCommand.describe(try RouterWire.read(URL(fileURLWithPath: options.file))))
    }
}
