/// Dispatches a forward batch's rows to per-request deltas: each segment of consecutive rows
/// (one request's new tokens) gets its own delta, with pointers offset to its rows.
public final class SegmentedDelta: ProjectionDelta {
    public struct Segment {
        public var firstRow: Int
        public var rows: Int
        public var delta: any ProjectionDelta
    }
    public let segments: [Segment]

    public init(segments: [Segment]) { self.segments = segments }

    public func beginLayer(_ layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int) {
        for s in segments { s.delta.beginLayer(layer, hidden: hidden + s.firstRow * width, rows: s.rows, width: width) }
    }

    public func addDelta(at site: ProjectionSite, input: UnsafePointer<Float>, inFeatures: Int,
                         output: UnsafeMutablePointer<Float>, outFeatures: Int, rows: Int) {
        for s in segments {
            s.delta.addDelta(at: site, input: input + s.firstRow * inFeatures, inFeatures: inFeatures,
                             output: output + s.firstRow * outFeatures, outFeatures: outFeatures, rows: s.rows)
        }
    }
}

/// How one request of a batch is routed.
public enum RequestRouting {
    /// The base model alone.
    case base
    /// A fixed mix over `delta`'s experts (given by the caller, or chosen once by a sentence router).
    case fixed(ExpertMix, LoRAMixDelta)
    /// A token- or rank-level router's per-request delta.
    case perToken(RequestRoutingDelta)
}

/// Plans generation steps for requests that each have their own routing: fixed mixes that share
/// a `LoRAMixDelta` are grouped into one kernel call (rows of different requests using the same
/// expert share one GEMM); token-level routers get their own rows. Tracks each request's position.
public final class RoutedPlanner: StepPlanner {
    public let routing: [RequestRouting]
    private var positions: [Int]

    /// `promptOffsets[i]` is the number of tokens request i already has in its cache (usually 0).
    public init(routing: [RequestRouting], promptOffsets: [Int]? = nil) {
        self.routing = routing
        positions = promptOffsets ?? Array(repeating: 0, count: routing.count)
    }

    public func prepare(active: [Int], tokenCounts: [Int]) throws -> (any ProjectionDelta)? {
        var segments: [SegmentedDelta.Segment] = []
        var row = 0
        // Fixed mixes on the same kernel object are planned together as one segment run.
        var shared: [ObjectIdentifier: (delta: LoRAMixDelta, rows: [(Int, Int, ExpertMix)])] = [:]
        for (slot, i) in active.enumerated() {
            let n = tokenCounts[slot]
            switch routing[i] {
            case .base:
                break
            case let .fixed(mix, delta):
                shared[ObjectIdentifier(delta), default: (delta, [])].rows.append((row, n, mix))
            case let .perToken(delta):
                try delta.prepare(positions: Array(positions[i]..<(positions[i] + n)))
                segments.append(.init(firstRow: row, rows: n, delta: delta))
            }
            positions[i] += n
            row += n
        }
        let totalRows = row
        for (_, group) in shared {
            // One kernel over all rows; rows outside this group get the base mix.
            var mixes = [ExpertMix](repeating: .base, count: totalRows)
            for (start, n, mix) in group.rows { for r in start..<(start + n) { mixes[r] = mix } }
            try group.delta.setRowMixes(mixes)
            segments.append(.init(firstRow: 0, rows: totalRows, delta: group.delta))
        }
        if segments.isEmpty { return nil }
        if segments.count == 1, segments[0].firstRow == 0, segments[0].rows == totalRows { return segments[0].delta }
        return SegmentedDelta(segments: segments)
    }
}

extension BoundRouter {
    /// How a request with this prompt is routed: sentence routers decide here, once; token and
    /// rank routers return a fresh per-request delta. Pass the same `kernel` (made over this
    /// router's experts) for requests batched together so their rows share GEMMs.
    public func routing(prompt: [Int], trace: RoutingTrace? = nil, workspace: ForwardWorkspace? = nil,
                        kernel: LoRAMixDelta? = nil) throws -> RequestRouting {
        if spec.granularity == .sentence {
            let (mix, _) = try sentenceMix(prompt: prompt, workspace: workspace)
            trace?.record(position: 0, layer: nil, mix: mix)
            return .fixed(mix, kernel ?? LoRAMixDelta(experts: experts))
        }
        return .perToken(makeRequestDelta(trace: trace)!)
    }
}
