import Foundation
import Testing

@testable import Switchyard

/// Every router kind against the PyTorch reference in Scripts/fixtures (make_fixtures.py, routers).
@Suite(.serialized) struct RouterParityTests {
    static let routers = [
        "sentence-topk", "sentence-topp", "sentence-threshold", "sentence-final", "token-layers", "token-layers-every2",
        "token-global",
        "centroid-every2", "centroid-context", "token-layers-whole", "token-global-whole", "centroid-whole",
        "centroid-window", "centroid-multi", "centroid-multi-whole", "smora", "smora-sigmoid", "smora-whole",
        "smora-whole-window"
    ]
    static let expertNames = ["attn-r4", "attn-r4b", "mlp-r8-rslora", "all-pattern", "regex-layers", "layers-list"]

    struct Setup {
        var model: LlamaModel
        var registry: ExpertRegistry
        var directory: URL
        var json: [String: Any]
        var logits: SafeTensorsFile
        var prompts: [[Int]] { json["prompts"] as! [[Int]] }
    }

    static func setup() throws -> Setup {
        let model = try LlamaModel.load(directory: FixturePaths.url("models/llama-gqa"))
        let dir = try FixturePaths.temporaryDirectory()
        let registry = try ExpertRegistry(directory: dir, base: model.config)
        for n in expertNames { try registry.add(from: FixturePaths.url("adapters/\(n)"), name: n) }
        return Setup(
            model: model, registry: registry, directory: dir, json: try FixturePaths.json("reference/routers.json"),
            logits: try SafeTensorsFile(url: FixturePaths.url("reference/routers.safetensors")))
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: FixturePaths.url("routers/\(name).pb")))
    }

    /// Logits over the whole prompt, routed by `router`, plus the recorded decisions.
    static func run(_ router: BoundRouter, _ model: LlamaModel, _ prompt: [Int]) throws -> (Matrix, RoutingTrace) {
        let trace = RoutingTrace()
        let logits = try model.scoreLogits(prompt, routing: try router.routing(prompt: prompt, trace: trace))
        return (logits, trace)
    }

    /// Logits of `ids` where only `ids[..<promptLength]` is the prompt: the prompt in one
    /// forward, then each remaining token alone (as decoding feeds them), with the request's
    /// routing state carried across the calls.
    static func runAsGenerated(_ router: BoundRouter, _ model: LlamaModel, _ ids: [Int], promptLength: Int) throws -> (
        Matrix, RoutingTrace
    ) {
        let trace = RoutingTrace()
        let routing = try router.routing(prompt: Array(ids[..<promptLength]), trace: trace)
        let builder = StepDeltaBuilder()
        let cache = model.makeCache()
        var data: [Float] = []
        var start = 0
        for n in [promptLength] + Array(repeating: 1, count: ids.count - promptLength) {
            let delta = try builder.build([.init(routing: routing, firstPosition: start, count: n)])
            data += try model.forward(
                [SequenceInput(tokens: Array(ids[start..<(start + n)]), cache: cache)],
                logits: .all, delta: delta)[0].data
            start += n
        }
        return (Matrix(rows: ids.count, cols: data.count / ids.count, data: data), trace)
    }

    @Test(arguments: routers)
    func goldenBytesRoundTripExactly(name: String) throws {
        let bytes = try Self.bytes(name)
        let spec = try RouterWire.decode(bytes)
        #expect(spec.name == name)
        #expect(RouterWire.encode(spec) == bytes, "Swift re-encoding differs from Python's bytes")
    }

    @Test(arguments: routers)
    func logitsAndChoicesMatchPyTorch(name: String) throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let (router, lease) = try BoundRouter.bind(
            try RouterWire.decode(try Self.bytes(name)), model: s.model, registry: s.registry)
        defer { lease.release() }
        let reference = ((s.json["routers"] as! [String: Any])[name] as! [String: Any])
        let perPrompt = reference["per_prompt"] as! [Any]
        let promptLengths = reference["prompt_lengths"] as? [Int]
        for (p, prompt) in s.prompts.enumerated() {
            let (logits, trace) =
                try promptLengths.map { try Self.runAsGenerated(router, s.model, prompt, promptLength: $0[p]) }
                ?? Self.run(router, s.model, prompt)
            let expected = try s.logits.matrix("logits.\(name).\(p)")
            let diff = maxAbsDifference(logits.data, expected.data)
            // fp32 throughout; the same 1e-4 bar as the base model and PEFT parity.
            #expect(diff <= 1e-4, "\(name) prompt \(p): max |Δ| = \(diff)")
            switch router.spec.granularity {
            case .sentence:
                let ref = perPrompt[p] as! [String: Any]
                let mix = trace.decisions[0].mix
                #expect(mix.entries.map(\.expert) == ref["experts"] as! [Int], "\(name) prompt \(p)")
                let weights = (ref["weights"] as! [Double]).map(Float.init)
                #expect(maxAbsDifference(mix.entries.map(\.weight), weights) <= 1e-5)
            case .token:
                let tokens = perPrompt[p] as! [[String: [String: Any]]]
                for (t, layers) in tokens.enumerated() {
                    for (layerKey, choice) in layers {
                        let layer = Int(layerKey)!
                        let decision = trace.decisions.first { d in
                            d.position == t && (d.layer == layer || d.layer == nil)
                        }
                        #expect(
                            decision?.mix.entries.map(\.expert) == choice["experts"] as? [Int],
                            "\(name) prompt \(p) token \(t) layer \(layer)")
                        if let d = decision {
                            let weights = (choice["weights"] as! [Double]).map(Float.init)
                            #expect(maxAbsDifference(d.mix.entries.map(\.weight), weights) <= 1e-5)
                        }
                    }
                }
            case .rank:
                // The trace records each token's active ranks and values at every projection;
                // the reference records them for a few modules.
                let recorded = perPrompt[p] as! [String: [[String: Any]]]
                #expect(Set(trace.rankDecisions.map(\.position)) == Set(prompt.indices))
                for (key, perToken) in recorded {
                    let parts = key.split(separator: ".")
                    let site = ProjectionSite(layer: Int(parts[0])!, kind: ProjectionKind(rawValue: String(parts[1]))!)
                    let mine = trace.rankDecisions.filter { $0.site == site }.sorted { $0.position < $1.position }
                    #expect(mine.count == perToken.count, "\(name) \(key)")
                    for (t, (d, ref)) in zip(mine, perToken).enumerated() {
                        #expect(d.ranks == ref["ranks"] as? [Int], "\(name) prompt \(p) token \(t) \(key)")
                        #expect(maxAbsDifference(d.values, (ref["activations"] as! [Double]).map(Float.init)) <= 1e-5)
                    }
                }
            default:
                break
            }
        }
    }

    @Test func routedGreedyGenerationMatchesPyTorch() throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let reference = (s.json["routers"] as! [String: Any])["token-layers"] as! [String: Any]
        guard let greedy = reference["greedy"] as? [Int] else { Issue.record("no greedy reference"); return }
        let prompt = s.prompts[(reference["greedy_prompt"] as? Int) ?? 0]
        let (router, lease) = try BoundRouter.bind(
            try RouterWire.decode(try Self.bytes("token-layers")), model: s.model, registry: s.registry)
        defer { lease.release() }
        let out = try Generator(model: s.model).generate(
            GenerationRequest(promptTokens: prompt, maxNewTokens: greedy.count),
            router: router)
        #expect(out == greedy)
    }

    /// The context-mean centroid router carries its running sum across forward calls: the prompt
    /// fed in pieces (3 tokens, then one at a time, as decoding does) gives the one-shot logits;
    /// comparing each token alone instead changes them (the context really is used).
    @Test func contextMeanCentroidsCarryAcrossSteps() throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let spec = try RouterWire.decode(try Self.bytes("centroid-context"))
        let (router, lease) = try BoundRouter.bind(spec, model: s.model, registry: s.registry)
        defer { lease.release() }
        let prompt = s.prompts.max { $0.count < $1.count }!
        let (whole, _) = try Self.run(router, s.model, prompt)
        #expect(maxAbsDifference(try Self.runPieced(router, s.model, prompt), whole.data) <= 1e-4)
        var tokenOnly = spec
        if case let .centroid(layer, centroids, _, owners) = spec.gate {
            tokenOnly.gate = .centroid(layer: layer, centroids: centroids, context: .token, centroidExperts: owners)
        }
        let (alone, _) = try Self.run(
            try BoundRouter(spec: tokenOnly, model: s.model, experts: router.experts), s.model, prompt)
        #expect(maxAbsDifference(alone.data, whole.data) > 1e-3)
    }

    /// The prompt fed 3 tokens, then one at a time (as decoding does); the logits of every position.
    static func runPieced(_ router: BoundRouter, _ model: LlamaModel, _ prompt: [Int]) throws -> [Float] {
        let routing = try router.routing(prompt: prompt)
        let builder = StepDeltaBuilder()
        let cache = model.makeCache()
        var pieced: [Float] = []
        var start = 0
        for n in [3] + Array(repeating: 1, count: prompt.count - 3) {
            let delta = try builder.build([.init(routing: routing, firstPosition: start, count: n)])
            pieced += try model.forward(
                [SequenceInput(tokens: Array(prompt[start..<(start + n)]), cache: cache)],
                logits: .all, delta: delta)[0].data
            start += n
        }
        return pieced
    }

    /// A rank gate with PROMPT_ROUTING_WHOLE chooses the prompt's ranks once, before the prompt
    /// is fed: fed in pieces (as chunked prefill feeds it) it gives the one-shot logits, every
    /// prompt token runs the same ranks per projection, and the same file routed per token gives
    /// other logits.
    @Test func wholePromptRanksAreChosenOncePerProjection() throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let spec = try RouterWire.decode(try Self.bytes("smora-whole"))
        let (router, lease) = try BoundRouter.bind(spec, model: s.model, registry: s.registry)
        defer { lease.release() }
        let prompt = s.prompts.max { $0.count < $1.count }!
        let (whole, trace) = try Self.run(router, s.model, prompt)
        #expect(maxAbsDifference(try Self.runPieced(router, s.model, prompt), whole.data) <= 1e-4)
        for site in Set(trace.rankDecisions.map(\.site)) {
            let chosen = trace.rankDecisions.filter { $0.site == site }
            #expect(chosen.count == prompt.count)
            #expect(Set(chosen.map(\.ranks)).count == 1, "\(site): one choice for the whole prompt")
        }
        var perToken = spec
        perToken.selection?.promptRouting = .perToken
        let (alone, _) = try Self.run(
            try BoundRouter(spec: perToken, model: s.model, experts: router.experts), s.model, prompt)
        #expect(maxAbsDifference(alone.data, whole.data) > 1e-3)
    }

    /// Per-layer token gates honour every_n (each layer anchors its own mixes), also when the
    /// anchor was computed in an earlier step; with every_n 1 the same gates give other logits.
    @Test func perLayerGatesHonourEveryN() throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let spec = try RouterWire.decode(try Self.bytes("token-layers-every2"))
        let (router, lease) = try BoundRouter.bind(spec, model: s.model, registry: s.registry)
        defer { lease.release() }
        for prompt in s.prompts {
            let (whole, _) = try Self.run(router, s.model, prompt)
            #expect(maxAbsDifference(try Self.runPieced(router, s.model, prompt), whole.data) <= 1e-4)
            var everyToken = spec
            everyToken.selection?.everyN = 1
            let (fresh, _) = try Self.run(
                try BoundRouter(spec: everyToken, model: s.model, experts: router.experts), s.model, prompt)
            #expect(maxAbsDifference(fresh.data, whole.data) > 1e-3, "every_n 2 must change some layer's mix")
        }
    }

    /// A sentence gate may read the state after the last layer (feature_layer == num_layers,
    /// parity above); one layer further is refused, naming the field.
    @Test func sentenceFeatureLayerReachesTheLastLayersOutput() throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        var spec = try RouterWire.decode(try Self.bytes("sentence-final"))
        guard case let .sentence(layer, pooling, layers) = spec.gate else {
            Issue.record("not a sentence gate"); return
        }
        #expect(layer == s.model.config.numLayers)
        spec.gate = .sentence(featureLayer: layer + 1, pooling: pooling, layers: layers)
        do {
            _ = try BoundRouter.bind(spec, model: s.model, registry: s.registry);
            Issue.record("feature_layer \(layer + 1) accepted")
        } catch {
            #expect("\(error)".contains("sentence.feature_layer"))
        }
    }

    /// PROMPT_ROUTING_WHOLE is defined for token, centroid and rank gates, context MEAN for global
    /// token gates, context_window for means (context MEAN, a rank gate's whole prompt); elsewhere
    /// they are refused, naming the field.
    @Test func promptRoutingAndTokenContextAreRefusedWhereUndefined() throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        func failure(_ spec: RouterSpec) -> String {
            do { _ = try BoundRouter.bind(spec, model: s.model, registry: s.registry); return "no error" } catch {
                return "\(error)"
            }
        }
        /// The fixture `name`, edited, bound: the error it gives, or "no error".
        func failure(_ name: String, editing edit: (inout RouterSpec) -> Void) throws -> String {
            var spec = try RouterWire.decode(try Self.bytes(name))
            edit(&spec)
            return failure(spec)
        }
        var perLayerMean = try RouterWire.decode(try Self.bytes("token-layers"))
        if case let .token(layers, global, source, _) = perLayerMean.gate {
            perLayerMean.gate = .token(layers: layers, global: global, sourceLayer: source, context: .mean)
        }
        #expect(failure(perLayerMean).contains("token.context"))
        #expect(
            try failure("sentence-topk") { $0.selection?.promptRouting = .whole }.contains("selection.prompt_routing"))
        #expect(try failure("token-global-whole") { _ in } == "no error")
        #expect(try failure("smora-whole") { _ in } == "no error")
        #expect(try failure("smora-whole-window") { _ in } == "no error")
        // A window where nothing reads one is refused, not ignored.
        #expect(
            try failure("smora-whole-window") { $0.selection?.promptRouting = .perToken }
                .contains("selection.context_window"))
        #expect(try failure("sentence-topk") { $0.selection?.contextWindow = 8 }.contains("selection.context_window"))
        #expect(try failure("token-layers") { $0.selection?.contextWindow = 8 }.contains("selection.context_window"))
        // every_n above 1 where no decision is kept for N positions is refused, not ignored.
        #expect(try failure("smora") { $0.selection?.everyN = 2 }.contains("selection.every_n"))
        #expect(try failure("sentence-topk") { $0.selection?.everyN = 2 }.contains("selection.every_n"))
    }

    @Test func invalidRouterFilesAreClearErrors() throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        func failure(_ file: String) -> String {
            do {
                let spec = try RouterWire.read(FixturePaths.url("routers/invalid/\(file).pb"))
                _ = try BoundRouter.bind(spec, model: s.model, registry: s.registry)
                return "no error"
            } catch { return "\(error)" }
        }
        #expect(failure("truncated").contains("cannot decode"))
        #expect(failure("bad-shape").contains("bytes"))
        #expect(failure("wrong-sha").contains("sha256"))
        #expect(failure("unknown-expert").contains("not in registry"))
    }

    @Test func shapesAreCheckedAgainstTheModel() throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        var spec = try RouterWire.decode(try Self.bytes("sentence-topk"))
        if case let .sentence(_, pooling, layers) = spec.gate {
            spec.gate = .sentence(featureLayer: 7, pooling: pooling, layers: layers)
        }
        #expect(throws: RouterError.self) { try BoundRouter.bind(spec, model: s.model, registry: s.registry) }
        var qwen = try RouterWire.decode(try Self.bytes("token-global"))
        qwen.granularity = .sentence
        #expect(throws: RouterError.self) { try BoundRouter.bind(qwen, model: s.model, registry: s.registry) }
    }
}
