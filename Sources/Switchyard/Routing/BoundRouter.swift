import Foundation

/// A router ready to run: its spec checked against the base model and bound to loaded experts
/// (in the spec's order). Immutable and shareable; per-request state lives in the deltas it makes.
public final class BoundRouter: @unchecked Sendable {
    /// The spec this router was compiled from, unchanged.
    public let spec: RouterSpec
    /// The base model the gates were checked against and read hidden states from.
    public let model: LlamaModel
    /// The router's experts, in the spec's order.
    public let experts: [LoRAAdapter]
    /// `spec.effectiveSelection`: the selection with defaults applied, checked against the gate kind.
    public let selection: Selection

    /// Compiled gate parameters.
    enum Compiled {
        case sentence(
            featureLayer: Int, pooling: RouterSpec.Pooling,
            layers: [(w: Matrix, b: [Float]?, act: DenseLayer.Activation)])
        case token(
            gates: [Int: (experts: [Int], w: Matrix, b: [Float]?)], global: Bool, sourceLayer: Int,
            context: RouterSpec.CentroidContext)
        case centroid(layer: Int, centroids: CentroidTable, context: RouterSpec.CentroidContext)
        case rank(modules: [ProjectionSite: RankModule], activation: RouterSpec.RankActivation)
    }
    let compiled: Compiled

    /// Binds `spec` to experts loaded by the caller (same order and count as `spec.experts`).
    public init(spec: RouterSpec, model: LlamaModel, experts: [LoRAAdapter]) throws {
        self.spec = spec
        self.model = model
        self.experts = experts
        selection = spec.effectiveSelection
        compiled = try Self.compile(spec, config: model.config, expertCount: experts.count)
        try Self.checkSelection(selection, spec: spec)
    }

    /// Loads the router's experts from `registry`, checking that each exists and that its weights
    /// have the sha256 the router was built for. The lease pins them while the router is in use.
    /// Rank-level (SMoRA) routers carry their own LoRA; their expert list is informational (where
    /// the ranks came from) and is not loaded.
    public static func bind(_ spec: RouterSpec, model: LlamaModel, registry: ExpertRegistry) throws -> (
        BoundRouter, ExpertLease
    ) {
        if spec.granularity == .rank {
            return (try BoundRouter(spec: spec, model: model, experts: []), try registry.acquire([]))
        }
        for ref in spec.experts {
            let entry: ExpertRegistry.Entry
            do { entry = try registry.entry(ref.name) } catch {
                throw RouterError.expertMismatch(expert: ref.name, reason: "not in registry \(registry.directory.path)")
            }
            if !ref.sha256.isEmpty, ref.sha256.lowercased() != entry.sha256 {
                throw RouterError.expertMismatch(
                    expert: ref.name,
                    reason:
                        "weights have sha256 \(entry.sha256), the router was built for \(EscapedText.quoted(ref.sha256, limit: 80))"
                )
            }
        }
        let lease = try registry.acquire(spec.experts.map(\.name))
        return (try BoundRouter(spec: spec, model: model, experts: lease.adapters), lease)
    }

    static func checkSelection(_ s: Selection, spec: RouterSpec) throws {
        guard s.temperature > 0, s.temperature.isFinite else {
            throw RouterError.invalid(field: "selection.temperature", reason: "must be > 0")
        }
        if s.mode == .topP {
            guard s.topP > 0, s.topP <= 1 else {
                throw RouterError.invalid(field: "selection.top_p", reason: "must be in (0, 1], found \(s.topP)")
            }
        }
        if s.mode == .threshold {
            guard s.threshold >= 0, s.threshold <= 1 else {
                throw RouterError.invalid(field: "selection.threshold", reason: "must be in [0, 1]")
            }
        }
        guard s.everyN >= 0 else { throw RouterError.invalid(field: "selection.every_n", reason: "must be ≥ 0") }
        if s.everyN > 1, spec.granularity != .token {
            throw RouterError.invalid(
                field: "selection.every_n",
                reason: "\(s.everyN) is set, but only token-level gates keep a decision for N positions")
        }
        if spec.granularity == .rank, s.mode == .topP || s.mode == .threshold {
            throw RouterError.invalid(
                field: "selection.mode",
                reason:
                    "a rank-level (SMoRA) router keeps the top_k ranks (TOP_K) or all of them (DENSE); \(s.mode == .topP ? "TOP_P" : "THRESHOLD") is not defined for ranks"
            )
        }
        if s.contextWindow > 0 {
            // Defined for means only: a gate with context MEAN, or a rank gate's whole prompt.
            let defined: Bool
            switch spec.gate {
            case let .token(_, global, _, context): defined = global && context == .mean
            case let .centroid(_, _, context, _): defined = context == .mean
            case .rank: defined = s.promptRouting == .whole
            default: defined = false
            }
            guard defined else {
                throw RouterError.invalid(
                    field: "selection.context_window",
                    reason:
                        "\(s.contextWindow) is set, but only gates with context MEAN and rank gates with PROMPT_ROUTING_WHOLE read a window"
                )
            }
        }
        if s.promptRouting == .whole {
            switch spec.gate {
            case .token, .centroid, .rank: break
            default:
                throw RouterError.invalid(
                    field: "selection.prompt_routing",
                    reason: "PROMPT_ROUTING_WHOLE applies to token, centroid and rank gates only")
            }
        }
    }

    static func compile(_ spec: RouterSpec, config c: ModelConfig, expertCount: Int) throws -> Compiled {
        guard spec.experts.count == expertCount || spec.granularity == .rank else {
            throw RouterError.invalid(
                field: "experts", reason: "router lists \(spec.experts.count) experts, \(expertCount) were bound")
        }
        func layerOK(_ l: Int, _ field: String) throws {
            guard l >= 0, l < c.numLayers else {
                throw RouterError.invalid(field: field, reason: "layer \(l) outside 0..<\(c.numLayers)")
            }
        }
        switch spec.gate {
        case .none:
            throw RouterError.invalid(field: "gate", reason: "no gate set")
        case let .sentence(featureLayer, pooling, layers):
            guard spec.granularity == .sentence else {
                throw RouterError.invalid(field: "granularity", reason: "a sentence gate needs GRANULARITY_SENTENCE")
            }
            // feature_layer == num_layers reads the state after the last layer (before the final norm).
            guard featureLayer >= 0, featureLayer <= c.numLayers else {
                throw RouterError.invalid(
                    field: "sentence.feature_layer",
                    reason: "layer \(featureLayer) outside 0...\(c.numLayers) (\(c.numLayers): after the last layer)")
            }
            guard !layers.isEmpty else { throw RouterError.invalid(field: "sentence.layers", reason: "empty MLP") }
            var width = c.hiddenSize
            var compiled: [(Matrix, [Float]?, DenseLayer.Activation)] = []
            for (i, l) in layers.enumerated() {
                let w = try l.weight.matrix(cols: width, field: "sentence.layers[\(i)].weight")
                let b = try l.bias.map { try $0.vector(count: w.rows, field: "sentence.layers[\(i)].bias") }
                compiled.append((w, b, l.activation))
                width = w.rows
            }
            guard width == expertCount else {
                throw RouterError.invalid(
                    field: "sentence.layers[\(layers.count - 1)].weight",
                    reason: "outputs \(width) scores for \(expertCount) experts")
            }
            return .sentence(
                featureLayer: featureLayer, pooling: pooling, layers: compiled.map { (w: $0.0, b: $0.1, act: $0.2) })
        case let .token(layers, global, sourceLayer, context):
            guard spec.granularity == .token else {
                throw RouterError.invalid(field: "granularity", reason: "a token gate needs GRANULARITY_TOKEN")
            }
            guard !layers.isEmpty else { throw RouterError.invalid(field: "token.layers", reason: "no layer gates") }
            var gates: [Int: (experts: [Int], w: Matrix, b: [Float]?)] = [:]
            for (i, g) in layers.enumerated() {
                try layerOK(g.layer, "token.layers[\(i)].layer")
                guard gates[g.layer] == nil else {
                    throw RouterError.invalid(
                        field: "token.layers[\(i)].layer", reason: "layer \(g.layer) has two gates")
                }
                guard !g.experts.isEmpty, g.experts.allSatisfy({ $0 >= 0 && $0 < expertCount }),
                    Set(g.experts).count == g.experts.count
                else {
                    throw RouterError.invalid(
                        field: "token.layers[\(i)].experts",
                        reason: "must be distinct indices into the \(expertCount) experts, found \(g.experts)")
                }
                let w = try g.weight.matrix(
                    rows: g.experts.count, cols: c.hiddenSize, field: "token.layers[\(i)].weight")
                let b = try g.bias.map { try $0.vector(count: g.experts.count, field: "token.layers[\(i)].bias") }
                gates[g.layer] = (g.experts, w, b)
            }
            if global {
                guard layers.count == 1, layers[0].layer == sourceLayer else {
                    throw RouterError.invalid(
                        field: "token.layers",
                        reason: "a global gate has exactly one layer gate, at source_layer \(sourceLayer)")
                }
            }
            guard context == .token || global else {
                throw RouterError.invalid(field: "token.context", reason: "context MEAN needs a global gate")
            }
            return .token(gates: gates, global: global, sourceLayer: sourceLayer, context: context)
        case let .centroid(layer, centroids, context, centroidExperts):
            guard spec.granularity == .token else {
                throw RouterError.invalid(field: "granularity", reason: "a centroid gate needs GRANULARITY_TOKEN")
            }
            try layerOK(layer, "centroid.layer")
            let table = try CentroidTable(
                centroids: centroids, owners: centroidExperts, expertCount: expertCount, hidden: c.hiddenSize)
            return .centroid(layer: layer, centroids: table, context: context)
        case let .rank(modules, activation):
            guard spec.granularity == .rank else {
                throw RouterError.invalid(field: "granularity", reason: "a rank gate needs GRANULARITY_RANK")
            }
            guard !modules.isEmpty else { throw RouterError.invalid(field: "rank.modules", reason: "empty") }
            var out: [ProjectionSite: RankModule] = [:]
            for (i, m) in modules.enumerated() {
                let f = "rank.modules[\(i)]"
                try layerOK(m.layer, f + ".layer")
                guard let kind = ProjectionKind(rawValue: m.module) else {
                    throw RouterError.invalid(
                        field: f + ".module",
                        reason:
                            "unknown projection \(EscapedText.quoted(m.module)) (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)"
                    )
                }
                let site = ProjectionSite(layer: m.layer, kind: kind)
                guard out[site] == nil else { throw RouterError.invalid(field: f, reason: "\(site) appears twice") }
                let (o, inF) = c.projectionShape(kind)
                let a = try m.a.matrix(cols: inF, field: f + ".a")
                let b = try m.b.matrix(rows: o, cols: a.rows, field: f + ".b")
                let g = try m.gate.matrix(rows: a.rows, cols: inF, field: f + ".gate")
                guard m.scale.isFinite else { throw RouterError.invalid(field: f + ".scale", reason: "not finite") }
                out[site] = RankModule(a: a, bTransposed: b.transposed(), gate: g, scale: m.scale)
            }
            return .rank(modules: out, activation: activation)
        }
    }

    /// Sentence-level routing: the mix for a whole request, from its prompt.
    public func sentenceMix(prompt: [Int], workspace: ForwardWorkspace? = nil) throws -> (
        mix: ExpertMix, scores: [Float]
    ) {
        guard case let .sentence(featureLayer, pooling, layers) = compiled else {
            throw RouterError.invalid(
                field: "granularity", reason: "router \(EscapedText.quoted(spec.name)) is not sentence-level")
        }
        guard !prompt.isEmpty else { throw SwitchyardError.invalidArgument("routing an empty prompt") }
        let hidden = try model.residualStream(prompt, enteringLayer: featureLayer, workspace: workspace)
        var x: [Float]
        switch pooling {
        case .last: x = hidden.row(hidden.rows - 1)
        case .mean:
            x = [Float](repeating: 0, count: hidden.cols)
            for r in 0..<hidden.rows { for j in 0..<hidden.cols { x[j] += hidden[r, j] } }
            x = x.map { $0 / Float(hidden.rows) }
        }
        for l in layers {
            x = Self.dense(x, l.w, l.b, l.act)
        }
        return (selection.select(x), x)
    }

    static func dense(_ x: [Float], _ w: Matrix, _ b: [Float]?, _ act: DenseLayer.Activation) -> [Float] {
        var y = Matrix(rows: 1, cols: x.count, data: x).matmulTransposed(w).data
        if let b { for i in y.indices { y[i] += b[i] } }
        switch act {
        case .none: break
        case .relu: y = y.map { max(0, $0) }
        case .tanh: y = y.map { Foundation.tanh($0) }
        case .gelu:
            y = y.map { v in 0.5 * v * (1 + Foundation.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) }
        }
        return y
    }

    /// PROMPT_ROUTING_WHOLE: each gate's decision for the whole prompt, from a base pass (no
    /// experts) over it: the state entering the gate's layer at the prompt's last token, or with
    /// context MEAN the mean of those states over the prompt (its last `context_window`). Keys: the layer of a per-layer
    /// gate; nil for a global or centroid gate (its mix then covers every layer).
    func promptMixes(prompt: [Int], workspace: ForwardWorkspace?) throws -> [Int?: ExpertMix] {
        func feature(_ layer: Int, mean: Bool) throws -> [Float] {
            let h = try model.residualStream(prompt, enteringLayer: layer, workspace: workspace)
            guard mean else { return h.row(h.rows - 1) }
            let first = selection.contextWindow > 0 ? max(0, h.rows - selection.contextWindow) : 0
            var x = [Float](repeating: 0, count: h.cols)
            for r in first..<h.rows { for j in 0..<h.cols { x[j] += h[r, j] } }
            return x.map { $0 / Float(h.rows - first) }
        }
        func linear(_ x: [Float], _ g: (experts: [Int], w: Matrix, b: [Float]?)) -> ExpertMix {
            var s = Matrix(rows: 1, cols: x.count, data: x).matmulTransposed(g.w).data
            if let b = g.b { for j in s.indices { s[j] += b[j] } }
            return selection.select(s, expertMap: g.experts)
        }
        switch compiled {
        case let .token(gates, global, sourceLayer, context):
            if global, let g = gates[sourceLayer] {
                return [nil: linear(try feature(sourceLayer, mean: context == .mean), g)]
            }
            var out: [Int?: ExpertMix] = [:]
            for (layer, g) in gates { out[layer] = linear(try feature(layer, mean: false), g) }
            return out
        case let .centroid(layer, centroids, context):
            let x = try feature(layer, mean: context == .mean)
            return [nil: selection.select(x.withUnsafeBufferPointer { centroids.scores($0.baseAddress!, rows: 1)[0] })]
        default:
            return [:]
        }
    }

    /// PROMPT_ROUTING_WHOLE for a rank gate: one pass over the prompt (its own cache, dropped)
    /// chooses each projection's ranks and activation values for the whole prompt from the gate
    /// applied to the mean of that projection's input over the prompt's tokens, the prompt's ranks
    /// at earlier projections applied; every prompt token then runs them, however the prompt is
    /// later fed (one forward or chunks).
    func promptRanks(
        prompt: [Int], modules: [ProjectionSite: RankModule], activation: RouterSpec.RankActivation,
        workspace: ForwardWorkspace?
    ) throws -> [ProjectionSite: RankRoutingDelta.Choice] {
        let chooser = RankRoutingDelta(
            modules: modules, activation: activation, selection: selection, trace: nil, choosingPrompt: true)
        try chooser.prepare(positions: Array(prompt.indices))
        let cache = model.makeCache(initialCapacity: prompt.count)
        _ = try model.forward(
            [SequenceInput(tokens: prompt, cache: cache)], logits: .none, delta: chooser, workspace: workspace)
        return chooser.promptChoices
    }

    /// A fresh per-request delta for token- and rank-level routers (nil for sentence routers).
    public func makeRequestDelta(trace: RoutingTrace? = nil) -> RequestRoutingDelta? {
        switch compiled {
        case .sentence: return nil
        case .token, .centroid: return TokenRoutingDelta(router: self, trace: trace)
        case let .rank(modules, activation):
            return RankRoutingDelta(modules: modules, activation: activation, selection: selection, trace: trace)
        }
    }
}

/// One compiled SMoRA module: `A [R × in]`, `Bᵀ [R × out]` (columns of B made contiguous), the
/// rank gate `[R × in]` and the scale.
struct RankModule {
    var a: Matrix
    var bTransposed: Matrix
    var gate: Matrix
    var scale: Float
    var rank: Int { a.rows }
}

/// The per-request delta of a token- or rank-level router. Before each forward pass it is told the
/// absolute positions of the request's new tokens (rows).
public protocol RequestRoutingDelta: AnyObject, ProjectionDelta {
    func prepare(positions: [Int]) throws
}
