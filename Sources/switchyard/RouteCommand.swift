import Foundation
import Switchyard

/// `switchyard route`: generate with a router and show its decisions.
enum RouteCommand: Subcommand {
    static let name = "route"
    static let summary = "Generate with a router and show which experts it chose"
    static let help = """
    USAGE: switchyard route --router FILE [--model DIR] [--registry DIR] [--trace] [--heatmap out.svg] "prompt"

    Routes the prompt (and every generated token, for token- and rank-level routers) and prints
    the decisions as JSON: per token (and per layer, for per-layer gates) the experts with weights.

    OPTIONS:
      --router FILE       Router file (.pb, switchyard.v1.RouterSpec).
      --model DIR         Base model (default: the embedded model).
      --registry DIR      Registry holding the router's experts (default: Models/experts).
      --max-tokens N      New tokens to generate (default 32).
      --trace             Every decision (each token, each layer); otherwise one line per token.
      --heatmap FILE      Write an SVG heatmap: tokens × experts, shaded by weight (averaged over layers).
    \(ChatPrompt.help)
    """

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: Set(["router", "model", "registry", "max-tokens", "heatmap"]).union(ChatPrompt.valued),
                                       switches: Set(["trace"]).union(ChatPrompt.switches))
        guard args.positionals.count == 1 else { throw UsageError("route expects one prompt argument") }
        guard let routerPath = args.string("router") else { throw UsageError("route needs --router FILE") }
        let dir = try ModelLocator.modelDirectory(args)
        let model = try ModelLocator.loadModel(args, path: dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config, create: false)
        let spec = try RouterWire.read(URL(fileURLWithPath: routerPath))
        let (router, lease) = try BoundRouter.bind(spec, model: model, registry: registry)
        defer { lease.release() }
        let prompt = try ChatPrompt.encode(args.positionals[0], args: args, modelPath: dir, tokenizer: tokenizer)
        guard !prompt.isEmpty else { throw UsageError("the prompt encodes to no tokens") }
        let trace = RoutingTrace()
        var stops = Set(model.config.eosTokenIDs)
        if let eos = tokenizer.eosTokenID { stops.insert(eos) }
        let request = GenerationRequest(promptTokens: prompt, maxNewTokens: try args.int("max-tokens") ?? 32, stopTokens: stops)
        let output = try Generator(model: model).generate(request, router: router, trace: trace)
        let tokens = prompt + output
        let names = spec.experts.map(\.name)
        func mixJSON(_ mix: ExpertMix) -> String {
            "[" + mix.entries.map { "{\"expert\":\(JSONText.string(names.indices.contains($0.expert) ? names[$0.expert] : "#\($0.expert)")),\"weight\":\(JSONText.number($0.weight))}" }.joined(separator: ",") + "]"
        }
        var entries: [String] = []
        let decisions = trace.decisions
        for (p, t) in tokens.enumerated() {
            let mine = spec.granularity == .sentence ? decisions : decisions.filter { $0.position == p }
            var e = "{\"position\":\(p),\"token\":\(t),\"text\":\(JSONText.string(tokenizer.decode([t]))),\"generated\":\(p >= prompt.count)"
            if args.flag("trace") {
                e += ",\"decisions\":[" + mine.map { d in
                    "{\"layer\":\(d.layer.map(String.init) ?? "null"),\"experts\":\(mixJSON(d.mix))}"
                }.joined(separator: ",") + "]"
            } else if !mine.isEmpty {
                // Averaged over the layers that decided for this token.
                var weights: [Int: Float] = [:]
                for d in mine { for x in d.mix.entries { weights[x.expert, default: 0] += x.weight / Float(mine.count) } }
                let averaged = ExpertMix(weights.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                    .map { ExpertMix.Entry(expert: $0.key, weight: $0.value) })
                e += ",\"experts\":\(mixJSON(averaged))"
            }
            entries.append(e + "}")
        }
        print("{\"router\":\(JSONText.string(spec.name)),\"granularity\":\(JSONText.string("\(spec.granularity)")),"
              + "\"experts\":[\(names.map(JSONText.string).joined(separator: ","))],"
              + "\"output\":\(JSONText.string(tokenizer.decode(output, skipSpecialTokens: true))),\"tokens\":[\n"
              + entries.joined(separator: ",\n") + "\n]}")
        if let path = args.string("heatmap") {
            let weights = tokens.indices.map { p -> [Float] in
                let mine = spec.granularity == .sentence ? decisions : decisions.filter { $0.position == p }
                var row = [Float](repeating: 0, count: names.count)
                for d in mine { for e in d.mix.entries where e.expert < names.count { row[e.expert] += e.weight / Float(max(1, mine.count)) } }
                return row
            }
            let svg = Heatmap.svg(rowLabels: tokens.map { tokenizer.decode([$0]) }, columnLabels: names, weights: weights,
                                  generatedFrom: prompt.count, title: "\(spec.name): experts per token")
            try AtomicFile.write(Data(svg.utf8), to: URL(fileURLWithPath: path))
            printError("wrote \(path)")
        }
    }
}

/// A tokens × experts heatmap as a standalone SVG (readable in any browser).
enum Heatmap {
    static func xml(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Token text made visible: spaces and newlines shown as ␣ and ⏎.
    static func escape(_ s: String) -> String {
        xml(s).replacingOccurrences(of: "\n", with: "⏎").replacingOccurrences(of: " ", with: "␣")
    }

    static func svg(rowLabels: [String], columnLabels: [String], weights: [[Float]], generatedFrom: Int, title: String) -> String {
        let cell = 22, left = 120, top = 110
        let width = left + cell * columnLabels.count + 100, height = top + cell * rowLabels.count + 20
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"monospace\" font-size=\"11\">\n"
        s += "<text x=\"8\" y=\"16\" font-size=\"13\">\(xml(title))</text>\n"
        for (j, name) in columnLabels.enumerated() {
            let x = left + j * cell + cell / 2
            s += "<text transform=\"translate(\(x),\(top - 6)) rotate(-60)\">\(escape(name))</text>\n"
        }
        for (i, label) in rowLabels.enumerated() {
            let y = top + i * cell
            let color = i >= generatedFrom ? "#1a5fb4" : "#222"
            s += "<text x=\"\(left - 6)\" y=\"\(y + cell - 7)\" text-anchor=\"end\" fill=\"\(color)\">\(escape(label))</text>\n"
            for (j, w) in weights[i].enumerated() {
                let shade = Int(255 - min(1, max(0, w)) * 200)
                s += "<rect x=\"\(left + j * cell)\" y=\"\(y)\" width=\"\(cell - 1)\" height=\"\(cell - 1)\" fill=\"rgb(\(shade),\(shade),255)\"><title>\(escape(label)) → \(escape(columnLabels[j])): \(String(format: "%.3f", w))</title></rect>\n"
            }
        }
        return s + "</svg>\n"
    }
}
