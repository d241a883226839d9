import Foundation
import Switchyard

/// `switchyard router …`: fit and inspect routers.
enum RouterCommand: Subcommand {
    static let name = "router"
    static let summary = "Fit (centroids, sentence gate) and inspect routers"
    static let help = """
    USAGE: switchyard router <fit-centroids|train|concat|inspect> [options]

      fit-centroids   Gradient-free token router: one centroid per expert, the mean over that
                      expert's examples of their mean hidden state entering --layer.
      train           Sentence-level MLP gate on pooled prompt features (cross-entropy, Adam);
                      prints held-out accuracy per epoch.
      concat          A rank-as-expert (SMoRA) router from experts concatenated along the rank
                      (--experts a,b,… --top-k K --out FILE); with zero gates every active rank
                      counts fully, so --top-k = total rank reproduces the experts' sum.
      inspect FILE    Summary of a router file.

    OPTIONS (fit-centroids, train):
      --model DIR           Base model (default: the embedded model).
      --registry DIR        Registry holding the experts (default: Models/experts).
      --examples FILE       JSONL, one {"text": "...", "expert": "name"} per line.
      --layer L             Feature layer: hidden state entering decoder layer L (default 1).
      --out FILE            Router file to write (.pb).
      --name NAME           Router name (default: the output file's stem).
      --top-k K             Experts per decision (default 1 for train, 2 for centroids).
      --top-p P             Use top-p selection instead of top-k.
      --temperature T       Softmax temperature (default 1; 0.05 suits cosine scores).
      --every-n N           fit-centroids: recompute every N-th token (default 2).
      --context mean|token  fit-centroids: compare the centroids with the mean hidden state of
                            the tokens so far (default, like the fitted features) or with each
                            token's own hidden state.
      --prompt per-token|whole
                            fit-centroids: route the prompt's tokens each from the text before
                            it (default) or all at once from the whole prompt (a base pass,
                            like the sentence router), generated tokens per token either way.
      --pooling mean|last   train: pooling over the prompt (default mean).
      --hidden H            train: hidden units (default 64).
      --epochs N            train: epochs (default 60).
      --learning-rate LR    train: Adam step size (default 0.003).
      --held-out F          train: fraction held out for accuracy (default 0.1).
    """

    static func run(_ argv: [String]) throws {
        guard let sub = argv.first else { throw UsageError("router needs a subcommand: fit-centroids, train, inspect") }
        let args = try ParsedArguments(Array(argv.dropFirst()), valued: [
            "model", "registry", "examples", "layer", "out", "name", "top-k", "top-p", "temperature", "every-n",
            "pooling", "hidden", "epochs", "learning-rate", "held-out", "format", "experts", "context", "prompt",
        ])
        switch sub {
        case "inspect":
            guard args.positionals.count == 1 else { throw UsageError("router inspect takes one router file") }
            print(describe(try RouterWire.read(URL(fileURLWithPath: args.positionals[0]))))
        case "concat":
            guard let list = args.string("experts"), let out = args.string("out") else { throw UsageError("router concat needs --experts a,b,… and --out FILE") }
            let config = try ModelConfig.load(from: try ModelLocator.modelDirectory(args).appendingPathComponent("config.json"))
            let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: config, create: false)
            let names = list.split(separator: ",").map(String.init)
            let lease = try registry.acquire(names)
            let total = lease.adapters.reduce(0) { $0 + ($1.ranks.max() ?? 0) }
            var spec = try RouterSpec.rankRouter(concatenating: lease.adapters, name: args.string("name") ?? URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent,
                                                 topK: try args.int("top-k") ?? total)
            spec.experts = try names.map { RouterSpec.ExpertRef(name: $0, sha256: try registry.entry($0).sha256) }
            try RouterWire.write(spec, to: URL(fileURLWithPath: out))
            print("wrote \(out)\n" + describe(spec))
        case "fit-centroids", "train":
            try fit(sub, args)
        default:
            throw UsageError("unknown router subcommand \(EscapedText.quoted(sub)) (fit-centroids, train, concat, inspect)")
        }
    }

    static func describe(_ s: RouterSpec) -> String {
        var lines = ["router \(s.name) v\(s.version), granularity \(s.granularity)", "experts: " + s.experts.map { "\($0.name) (\($0.sha256.prefix(12)))" }.joined(separator: ", ")]
        let sel = s.effectiveSelection
        lines.append("selection: \(sel.mode) k=\(sel.topK) p=\(sel.topP) threshold=\(sel.threshold) T=\(sel.temperature) every_n=\(sel.everyN) prompt=\(sel.promptRouting == .whole ? "whole" : "per-token")")
        switch s.gate {
        case .none: lines.append("gate: none")
        case let .sentence(l, pooling, layers): lines.append("gate: sentence MLP \(layers.map { "\($0.weight.shape)" }.joined(separator: " → ")) on layer \(l) (\(pooling))")
        case let .token(layers, global, source, context): lines.append("gate: token, \(global ? "global from layer \(source)\(context == .mean ? ", context mean of the tokens so far" : "")" : "per layer") " + layers.map { "L\($0.layer):\($0.experts.count)" }.joined(separator: " "))
        case let .centroid(l, c, context): lines.append("gate: centroids \(c.shape) at layer \(l), context \(context == .mean ? "mean of the tokens so far" : "the token alone")")
        case let .rank(modules, act): lines.append("gate: rank (SMoRA), \(modules.count) modules, rank \(modules.first?.a.shape.first ?? 0), \(act)")
        }
        return lines.joined(separator: "\n")
    }

    static func fit(_ sub: String, _ args: ParsedArguments) throws {
        guard let examplesPath = args.string("examples") else { throw UsageError("\(sub) needs --examples FILE.jsonl") }
        guard let out = args.string("out") else { throw UsageError("\(sub) needs --out FILE.pb") }
        let dir = try ModelLocator.modelDirectory(args)
        let model = try ModelLocator.loadModel(args, path: dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config, create: false)
        let (texts, names) = try readExamples(examplesPath)
        var expertNames: [String] = []
        for n in names where !expertNames.contains(n) { expertNames.append(n) }
        let refs = try expertNames.map { n in RouterSpec.ExpertRef(name: n, sha256: try registry.entry(n).sha256) }
        let examples = try zip(texts, names).map { RoutingExample(tokens: try PromptFormat.encode($0, tokenizer), expert: expertNames.firstIndex(of: $1)!) }
        if let empty = examples.firstIndex(where: { $0.tokens.isEmpty }) { throw SwitchyardError.invalidArgument("\(examplesPath): line \(empty + 1) encodes to no tokens") }
        let layer = try args.int("layer") ?? 1
        guard layer >= 0, layer < model.config.numLayers else { throw UsageError("--layer must be in 0..<\(model.config.numLayers)") }
        let pooling: RouterSpec.Pooling = args.string("pooling") == "last" ? .last : .mean
        var bar = ProgressBar(total: examples.count, label: "features")
        let features = try RouterFitting.features(model: model, examples: examples, layer: layer, pooling: sub == "train" ? pooling : .mean) { bar.update($0) }
        let labels = examples.map(\.expert)
        var selection = Selection(mode: .topK, topK: try args.int("top-k") ?? (sub == "train" ? 1 : 2),
                                  temperature: try args.float("temperature") ?? 1)
        if let p = try args.float("top-p") { selection.mode = .topP; selection.topP = p }
        let name = args.string("name") ?? URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent
        let spec: RouterSpec
        if sub == "fit-centroids" {
            selection.everyN = try args.int("every-n") ?? 2
            let context: RouterSpec.CentroidContext
            switch args.string("context") ?? "mean" {
            case "mean": context = .mean
            case "token": context = .token
            case let other: throw UsageError("--context must be mean or token, found \(EscapedText.quoted(other))")
            }
            switch args.string("prompt") ?? "per-token" {
            case "per-token": selection.promptRouting = .perToken
            case "whole": selection.promptRouting = .whole
            case let other: throw UsageError("--prompt must be per-token or whole, found \(EscapedText.quoted(other))")
            }
            let c = try RouterFitting.centroids(features: features, labels: labels, expertCount: expertNames.count)
            spec = RouterSpec(name: name, granularity: .token, experts: refs, selection: selection,
                              gate: .centroid(layer: layer, centroids: WireTensor(c), context: context))
        } else {
            var options = RouterFitting.TrainingOptions()
            options.hidden = try args.int("hidden") ?? 64
            options.epochs = try args.int("epochs") ?? 60
            options.learningRate = try args.float("learning-rate") ?? 3e-3
            let fraction = try args.float("held-out") ?? 0.1
            var rng = SeededRandom(seed: 11)
            let shuffled = Array(examples.indices).shuffled(using: &rng)
            let cut = Int(Float(shuffled.count) * fraction)
            let heldOut = Array(shuffled[..<cut]), train = Array(shuffled[cut...])
            var epochBar = ProgressBar(total: options.epochs, label: "training")
            let layers = RouterFitting.trainGate(features: features, labels: labels, expertCount: expertNames.count,
                                                 train: train, heldOut: heldOut, options: options) { epoch, loss, acc in
                epochBar.update(epoch, suffix: String(format: "loss %.4f held-out acc %.3f", loss, acc))
                if epoch == options.epochs || epoch % 10 == 0 {
                    printError(String(format: "epoch %d: loss %.4f, held-out accuracy %.3f (%d examples)", epoch, loss, acc, heldOut.count))
                }
            }
            spec = RouterSpec(name: name, granularity: .sentence, experts: refs, selection: selection,
                              gate: .sentence(featureLayer: layer, pooling: pooling, layers: layers))
        }
        _ = try BoundRouter(spec: spec, model: model, experts: try registry.acquire(expertNames).adapters)
        try RouterWire.write(spec, to: URL(fileURLWithPath: out))
        print("wrote \(out)\n" + describe(spec))
    }

    /// Reads `{"text": …, "expert": …}` lines (also accepts "prompt" for text).
    static func readExamples(_ path: String) throws -> ([String], [String]) {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw SwitchyardError.io(path: path, reason: "cannot read examples")
        }
        var texts: [String] = [], names: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  let t = (obj["text"] ?? obj["prompt"]) as? String, let e = (obj["expert"] ?? obj["task"]) as? String
            else { throw SwitchyardError.invalidArgument("\(path):\(n + 1): expected {\"text\": \"…\", \"expert\": \"…\"}") }
            texts.append(t)
            names.append(e)
        }
        guard !texts.isEmpty else { throw SwitchyardError.invalidArgument("\(path): no examples") }
        return (texts, names)
    }
}

/// How prompts become token ids everywhere in the CLI: the tokenizer's own post-processor
/// (which prepends BOS when the tokenizer.json template says so).
enum PromptFormat {
    static func encode(_ text: String, _ tokenizer: Tokenizer) throws -> [Int] {
        try tokenizer.encodeChecked(text, addSpecialTokens: true)
    }
}
