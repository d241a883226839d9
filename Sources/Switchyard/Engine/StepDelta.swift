/// Dispatches a forward batch's rows to per-request deltas: each segment of consecutive rows
/// (one request's new tokens) gets its own delta, with pointers offset to its rows.
final class SegmentedDelta: ProjectionDelta {
    struct Segment {
        var firstRow: Int
        var rows: Int
        var delta: any ProjectionDelta
    }
    let segments: [Segment]

    init(segments: [Segment]) { self.segments = segments }

    func beginLayer(_ layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int) {
        for s in segments { s.delta.beginLayer(layer, hidden: hidden + s.firstRow * width, rows: s.rows, width: width) }
    }

    func addDelta(
        at site: ProjectionSite, input: UnsafePointer<Float>, inFeatures: Int,
        output: UnsafeMutablePointer<Float>, outFeatures: Int, rows: Int
    ) {
        for s in segments {
            s.delta.addDelta(
                at: site, input: input + s.firstRow * inFeatures, inFeatures: inFeatures,
                output: output + s.firstRow * outFeatures, outFeatures: outFeatures, rows: s.rows)
        }
    }
}

/// How one request's rows are adapted, once its routing is resolved.
public enum RequestRouting {
    /// The base model alone.
    case base
    /// A fixed mix over `experts` (given by the caller, or chosen once by a sentence router);
    /// the mix's indices refer to `experts`.
    case fixed(ExpertMix, experts: [LoRAAdapter])
    /// A token- or rank-level router's per-request delta (it keeps per-request state).
    case perToken(RequestRoutingDelta)
}

/// Builds the one `ProjectionDelta` of a forward pass whose rows belong to requests that each have
/// their own routing. Every fixed-mix row of the batch goes through one mixed-expert kernel over
/// the union of their experts, so rows of different requests that use the same expert share one
/// GEMM; token- and rank-level routers get their own rows. The kernel (and its scratch memory) is
/// reused while the union of experts does not change. One builder serves one forward at a time.
public final class StepDeltaBuilder {
    /// One request's new tokens in the forward batch, in row order.
    public struct Rows {
        /// How these rows are adapted.
        public var routing: RequestRouting
        /// Absolute position of the first new token (tokens already in the request's cache).
        public var firstPosition: Int
        /// Rows (new tokens) of this request in the batch, following the previous request's rows.
        public var count: Int
        /// One request's `count` rows starting at absolute position `firstPosition`.
        public init(routing: RequestRouting, firstPosition: Int, count: Int) {
            self.routing = routing
            self.firstPosition = firstPosition
            self.count = count
        }
    }

    private var kernel: (experts: [AdapterIdentity], delta: LoRAMixDelta)?

    /// Tells adapters apart without comparing weights: the name and the address of the storage
    /// of one module's `A` (copies of an adapter share it; an expert removed and re-added under
    /// the same name does not). Valid while the adapters are held, as they are during a build.
    struct AdapterIdentity: Hashable {
        var name: String
        var storage: UInt
        init(_ adapter: LoRAAdapter) {
            name = adapter.name
            storage =
                adapter.modules.values.first.map { m in
                    m.a.data.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
                } ?? 0
        }
    }

    /// A builder with no kernel yet (the first `build` with fixed mixes makes one).
    public init() {}

    /// The delta for a forward over `batch` (nil when every row runs on the base model).
    public func build(_ batch: [Rows]) throws -> (any ProjectionDelta)? {
        var segments: [SegmentedDelta.Segment] = []
        var union: [LoRAAdapter] = []
        var unionIndex: [AdapterIdentity: Int] = [:]
        var fixedRows: [(first: Int, count: Int, mix: ExpertMix)] = []
        var row = 0
        for item in batch {
            switch item.routing {
            case .base:
                break
            case let .fixed(mix, experts):
                var mapped = ExpertMix()
                for e in mix.entries where e.weight != 0 {
                    guard e.expert >= 0, e.expert < experts.count else {
                        throw SwitchyardError.invalidArgument(
                            "expert index \(e.expert) out of range (\(experts.count) experts)")
                    }
                    let id = AdapterIdentity(experts[e.expert])
                    let u: Int
                    if let known = unionIndex[id] {
                        u = known
                    } else {
                        u = union.count
                        unionIndex[id] = u
                        union.append(experts[e.expert])
                    }
                    mapped.entries.append(.init(expert: u, weight: e.weight))
                }
                if !mapped.entries.isEmpty { fixedRows.append((row, item.count, mapped)) }
            case let .perToken(delta):
                try delta.prepare(positions: Array(item.firstPosition..<(item.firstPosition + item.count)))
                segments.append(.init(firstRow: row, rows: item.count, delta: delta))
            }
            row += item.count
        }
        let totalRows = row
        if !fixedRows.isEmpty {
            let ids = union.map(AdapterIdentity.init)
            let delta: LoRAMixDelta
            if let k = kernel, k.experts == ids {
                delta = k.delta
            } else {
                delta = LoRAMixDelta(experts: union)
                kernel = (ids, delta)
            }
            var mixes = [ExpertMix](repeating: .base, count: totalRows)
            for f in fixedRows { for r in f.first..<(f.first + f.count) { mixes[r] = f.mix } }
            try delta.setRowMixes(mixes)
            segments.append(.init(firstRow: 0, rows: totalRows, delta: delta))
        }
        if segments.isEmpty { return nil }
        if segments.count == 1, segments[0].firstRow == 0, segments[0].rows == totalRows { return segments[0].delta }
        return SegmentedDelta(segments: segments)
    }
}

extension RequestRouting {
    /// A weighted mix of `experts` (`weights[i]` for `experts[i]`), as a fixed routing.
    public static func experts(_ experts: [LoRAAdapter], weights: [Float]? = nil) -> RequestRouting {
        let w = weights ?? Array(repeating: 1, count: experts.count)
        precondition(w.count == experts.count, "one weight per expert")
        return .fixed(
            ExpertMix(w.enumerated().map { ExpertMix.Entry(expert: $0.offset, weight: $0.element) }), experts: experts)
    }
}

extension BoundRouter {
    /// How a request with this prompt is routed: sentence routers decide here, once (a forward
    /// over the prompt up to the feature layer); token and rank routers return a fresh
    /// per-request delta (with PROMPT_ROUTING_WHOLE, token gates decide the prompt's mix here from
    /// a base pass over it, rank gates the prompt's ranks from a routed pass: `promptRanks`).
    public func routing(prompt: [Int], trace: RoutingTrace? = nil, workspace: ForwardWorkspace? = nil) throws
        -> RequestRouting
    {
        if spec.granularity == .sentence {
            let (mix, _) = try sentenceMix(prompt: prompt, workspace: workspace)
            trace?.record(position: 0, layer: nil, mix: mix)
            return .fixed(mix, experts: experts)
        }
        if selection.promptRouting == .whole, case let .rank(modules, activation) = compiled {
            guard !prompt.isEmpty else { throw SwitchyardError.invalidArgument("routing an empty prompt") }
            let choices = try promptRanks(
                prompt: prompt, modules: modules, activation: activation, workspace: workspace)
            return .perToken(
                RankRoutingDelta(
                    modules: modules, activation: activation, selection: selection, trace: trace,
                    prompt: (prompt.count, choices)))
        }
        if selection.promptRouting == .whole, spec.granularity == .token {
            guard !prompt.isEmpty else { throw SwitchyardError.invalidArgument("routing an empty prompt") }
            return .perToken(
                TokenRoutingDelta(
                    router: self, trace: trace,
                    prompt: (prompt.count, try promptMixes(prompt: prompt, workspace: workspace))))
        }
        return .perToken(makeRequestDelta(trace: trace)!)
    }
}
