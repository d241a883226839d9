/// Token-level routing inside the forward pass, for one request: learned per-layer gates
/// (X-LoRA / MoLE / MeteoRA style, optionally one global gate) or centroid similarity (gradient-free).
///
/// At the start of each decoder layer it scores every row's hidden state, selects experts, and
/// configures the mixed-expert LoRA kernel for that layer's projections. A gate reading layer L
/// applies from layer L on; earlier layers run without experts. With `every_n = N`, the token at
/// position p reuses the mix computed at position p − (p mod N) (per layer for per-layer gates).
///
/// With PROMPT_ROUTING_WHOLE the prompt's mixes are decided before it is fed
/// (`BoundRouter.promptMixes`): rows at positions before the prompt's length take them — a global
/// or centroid gate's mix at every layer, a per-layer gate's at its layer — and so does a
/// generated token whose every-N anchor lies in the prompt.
final class TokenRoutingDelta: RequestRoutingDelta {
    let router: BoundRouter
    let kernel: LoRAMixDelta
    let trace: RoutingTrace?
    private var positions: [Int] = []
    /// Mixes computed at the source layer for the current rows (global and centroid gates).
    private var current: [ExpertMix] = []
    /// The last recomputed mix, carried across steps for every-N reuse (key: a per-layer gate's
    /// layer; nil for a global or centroid gate).
    private var carried: [Int?: (position: Int, mix: ExpertMix)] = [:]
    private let scores = ScratchBuffer()
    /// Centroid gates with context `mean`: the sum of the hidden states entering the centroid
    /// layer at this request's positions before `nextPosition` (cosine similarity is scale-free,
    /// so the sum stands for the mean), and the per-row prefix sums of the current step.
    private var contextSum: [Float] = []
    private var nextPosition = 0
    /// How many positions the running sum holds, and per row of the current step; with a
    /// context window, the rows it holds (oldest first), subtracted as they leave it.
    private var contextRows: [[Float]] = []
    private var contextCount = 0
    private var prefixCounts: [Int] = []
    private let prefixSums = ScratchBuffer()
    /// PROMPT_ROUTING_WHOLE: the prompt's length and its mixes (key: a per-layer gate's layer; nil
    /// for a global or centroid gate).
    private let prompt: (length: Int, mixes: [Int?: ExpertMix])?

    init(router: BoundRouter, trace: RoutingTrace?, prompt: (length: Int, mixes: [Int?: ExpertMix])? = nil) {
        self.router = router
        self.trace = trace
        self.prompt = prompt
        kernel = LoRAMixDelta(experts: router.experts)
    }

    func prepare(positions: [Int]) throws {
        self.positions = positions
        current = []
    }

    func beginLayer(_ layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int) {
        precondition(rows == positions.count, "routing delta prepared for \(positions.count) rows, forward has \(rows)")
        let base = [ExpertMix](repeating: .base, count: rows)
        switch router.compiled {
        case let .token(gates, global, sourceLayer, context):
            if global {
                if layer == sourceLayer, let g = gates[layer] {
                    let features = context == .mean ? runningMeans(hidden, rows: rows, width: width) : hidden
                    current = everyN(
                        promptOverride(
                            score(features, rows: rows, width: width, w: g.w, b: g.b, experts: g.experts), layer: nil))
                    record(layer: nil)
                }
                try? kernel.setRowMixes(
                    layer >= sourceLayer && !current.isEmpty ? current : promptOverride(base, layer: nil))
            } else if let g = gates[layer] {
                current = everyN(
                    promptOverride(
                        score(hidden, rows: rows, width: width, w: g.w, b: g.b, experts: g.experts), layer: layer),
                    gate: layer)
                record(layer: layer)
                try? kernel.setRowMixes(current)
            } else {
                try? kernel.setRowMixes(base)
            }
        case let .centroid(source, centroids, context):
            if layer == source {
                let features = context == .mean ? runningSums(hidden, rows: rows, width: width) : hidden
                let mixes = centroids.scores(features, rows: rows).map { router.selection.select($0) }
                current = everyN(promptOverride(mixes, layer: nil))
                record(layer: nil)
            }
            try? kernel.setRowMixes(layer >= source && !current.isEmpty ? current : promptOverride(base, layer: nil))
        default:
            try? kernel.setRowMixes(base)
        }
    }

    func addDelta(
        at site: ProjectionSite, input: UnsafePointer<Float>, inFeatures: Int,
        output: UnsafeMutablePointer<Float>, outFeatures: Int, rows: Int
    ) {
        kernel.addDelta(
            at: site, input: input, inFeatures: inFeatures, output: output, outFeatures: outFeatures, rows: rows)
    }

    private func record(layer: Int?) {
        guard let trace else { return }
        for (i, mix) in current.enumerated() { trace.record(position: positions[i], layer: layer, mix: mix) }
    }

    /// Learned gate: `scores = hidden · Wᵀ + b` per row, then selection over `experts`.
    private func score(_ hidden: UnsafePointer<Float>, rows: Int, width: Int, w: Matrix, b: [Float]?, experts: [Int])
        -> [ExpertMix]
    {
        let e = w.rows
        let s = scores.get(rows * e)
        w.data.withUnsafeBufferPointer { wp in
            BLAS.gemmTransB(
                m: rows, n: e, k: width, a: hidden, lda: width, b: wp.baseAddress!, ldb: width, c: s, ldc: e)
        }
        return (0..<rows).map { r in
            var row = Array(UnsafeBufferPointer(start: s + r * e, count: e))
            if let b { for j in 0..<e { row[j] += b[j] } }
            return router.selection.select(row, expertMap: experts)
        }
    }

    /// PROMPT_ROUTING_WHOLE: rows inside the prompt take the prompt's mix for `layer`.
    private func promptOverride(_ mixes: [ExpertMix], layer: Int?) -> [ExpertMix] {
        guard let prompt, let mix = prompt.mixes[layer] else { return mixes }
        var out = mixes
        for (i, p) in positions.enumerated() where p < prompt.length { out[i] = mix }
        return out
    }

    /// Row r → the mean of the hidden states of this request's positions 0...positions[r] (the
    /// running sums below divided by how many positions they hold).
    private func runningMeans(_ hidden: UnsafePointer<Float>, rows: Int, width: Int) -> UnsafePointer<Float> {
        let sums = UnsafeMutablePointer(mutating: runningSums(hidden, rows: rows, width: width))
        for r in 0..<rows {
            let n = Float(prefixCounts[r])
            for j in 0..<width { sums[r * width + j] /= n }
        }
        return UnsafePointer(sums)
    }

    /// Row r → the sum of the hidden states of this request's positions 0...positions[r] (the
    /// last `Selection.contextWindow` of them when it is set), continuing the sum carried from earlier steps. A row at position 0 starts a new sum; a
    /// row that does not continue the carried positions (a cache reused without its routing
    /// state) restarts the sum from itself.
    private func runningSums(_ hidden: UnsafePointer<Float>, rows: Int, width: Int) -> UnsafePointer<Float> {
        let out = prefixSums.get(rows * width)
        if contextSum.count != width { contextSum = [Float](repeating: 0, count: width); nextPosition = 0 }
        prefixCounts = [Int](repeating: 0, count: rows)
        for r in 0..<rows {
            if positions[r] != nextPosition {  // a new request at 0, or a broken sequence
                for j in 0..<width { contextSum[j] = 0 }
                contextCount = 0
                contextRows = []
            }
            let h = hidden + r * width, o = out + r * width
            for j in 0..<width { contextSum[j] += h[j] }
            contextCount += 1
            let window = router.selection.contextWindow
            if window > 0 {
                contextRows.append(Array(UnsafeBufferPointer(start: h, count: width)))
                if contextRows.count > window {
                    let old = contextRows.removeFirst()
                    for j in 0..<width { contextSum[j] -= old[j] }
                    contextCount -= 1
                }
            }
            prefixCounts[r] = contextCount
            for j in 0..<width { o[j] = contextSum[j] }
            nextPosition = positions[r] + 1
        }
        return UnsafePointer(out)
    }

    /// Applies every-N reuse: rows whose position is not a multiple of N take the mix of the
    /// anchor position (earlier in this batch, or carried from the previous step).
    /// `gate`: the per-layer gate's layer (each layer anchors its own mixes), nil for the one
    /// global or centroid gate.
    private func everyN(_ fresh: [ExpertMix], gate: Int? = nil) -> [ExpertMix] {
        let n = router.selection.everyN
        guard n > 1 else { return fresh }
        var out = fresh
        for (i, p) in positions.enumerated() {
            let anchor = p - p % n
            if anchor == p {
                carried[gate] = (p, fresh[i])
            } else if let j = positions.firstIndex(of: anchor) {
                out[i] = fresh[j]
            } else if let c = carried[gate], c.position == anchor {
                out[i] = c.mix
            }
            // Otherwise (the anchor was never seen: a cache reused without its routing state)
            // the row keeps its fresh mix.
        }
        return out
    }
}
