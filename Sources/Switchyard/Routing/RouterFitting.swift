import Foundation

/// One labelled example for fitting a router: a text and the expert that should handle it.
public struct RoutingExample: Sendable, Equatable {
    /// The text's token ids (at least one).
    public var tokens: [Int]
    /// The label: index of the expert in the router's expert list, `0..<expertCount`.
    public var expert: Int
    /// The answer's token ids, teacher-forced after `tokens` (may be empty): the text a router
    /// that re-decides while generating reads at those positions.
    public var completion: [Int]
    /// An example labelled with expert index `expert`.
    public init(tokens: [Int], expert: Int, completion: [Int] = []) {
        self.tokens = tokens
        self.expert = expert
        self.completion = completion
    }
}

/// Fits routers from labelled examples without Python: centroids (gradient-free) and the
/// sentence-level MLP gate (cross-entropy, Adam).
public enum RouterFitting {
    /// Pooled residual stream entering `layer` for each example (the features both fitters use).
    public static func features(
        model: LlamaModel, examples: [RoutingExample], layer: Int, pooling: RouterSpec.Pooling,
        progress: ((Int) -> Void)? = nil
    ) throws -> Matrix {
        let ws = ForwardWorkspace()
        var out = Matrix(rows: examples.count, cols: model.config.hiddenSize)
        for (i, ex) in examples.enumerated() {
            let h = try model.residualStream(ex.tokens, enteringLayer: layer, workspace: ws)
            for j in 0..<h.cols {
                switch pooling {
                case .last: out[i, j] = h[h.rows - 1, j]
                case .mean:
                    var s: Float = 0
                    for r in 0..<h.rows { s += h[r, j] }
                    out[i, j] = s / Float(h.rows)
                }
            }
            progress?(i + 1)
        }
        return out
    }

    /// What a router with context MEAN reads, at every position it decides for: per example, the
    /// mean of the residual stream entering `layer` over the text so far (its last `window`
    /// positions when `window` > 0) at the prompt's last token (the whole prompt's decision) and
    /// at each of the completion's tokens (the decisions while generating it, teacher-forced).
    /// Returns one feature row per such position, `[Σ (1 + completion.count), hidden]`, and each
    /// row's expert. Without completions and window this is `features(…, pooling: .mean)`.
    public static func contextFeatures(
        model: LlamaModel, examples: [RoutingExample], layer: Int, window: Int,
        progress: ((Int) -> Void)? = nil
    ) throws -> (features: Matrix, labels: [Int]) {
        precondition(window >= 0, "a context window is a count of positions")
        let ws = ForwardWorkspace()
        let width = model.config.hiddenSize
        var rows: [Float] = [], labels: [Int] = []
        rows.reserveCapacity(examples.reduce(0) { $0 + 1 + $1.completion.count } * width)
        for (i, ex) in examples.enumerated() {
            let h = try model.residualStream(ex.tokens + ex.completion, enteringLayer: layer, workspace: ws)
            for end in (ex.tokens.count - 1)..<h.rows {
                let first = window > 0 ? max(0, end + 1 - window) : 0
                var x = [Float](repeating: 0, count: width)
                for r in first...end { for j in 0..<width { x[j] += h[r, j] } }
                rows += x.map { $0 / Float(end + 1 - first) }
                labels.append(ex.expert)
            }
            progress?(i + 1)
        }
        return (Matrix(rows: labels.count, cols: width, data: rows), labels)
    }

    /// Per expert, the mean of its examples' features (every expert needs at least one example).
    public static func centroids(features: Matrix, labels: [Int], expertCount: Int) throws -> Matrix {
        var sums = Matrix(rows: expertCount, cols: features.cols)
        var counts = [Int](repeating: 0, count: expertCount)
        for (i, e) in labels.enumerated() {
            counts[e] += 1
            for j in 0..<features.cols { sums[e, j] += features[i, j] }
        }
        if let missing = counts.firstIndex(of: 0) {
            throw SwitchyardError.invalidArgument(
                "expert #\(missing) has no examples: every expert needs at least one to fit a centroid")
        }
        for e in 0..<expertCount { for j in 0..<features.cols { sums[e, j] /= Float(counts[e]) } }
        return sums
    }

    /// Several centroids per expert: each expert's features split into up to `perExpert` clusters
    /// by spherical k-means (cosine assignment, the centroid router's own rule; each centroid the
    /// mean of its members; k-means++ seeding from `seed`; until no assignment changes, at most 100
    /// rounds). Returns the centroids `[C, cols]` and the expert of each row, grouped by expert
    /// (an expert with fewer distinct examples than `perExpert` gets fewer centroids). `perExpert`
    /// 1 gives exactly `centroids(features:labels:expertCount:)`.
    public static func clusteredCentroids(
        features: Matrix, labels: [Int], expertCount: Int, perExpert: Int, seed: UInt64 = 0
    ) throws -> (centroids: Matrix, experts: [Int]) {
        guard perExpert >= 1 else {
            throw SwitchyardError.invalidArgument("centroids per expert must be at least 1, got \(perExpert)")
        }
        let means = try centroids(features: features, labels: labels, expertCount: expertCount)
        if perExpert == 1 { return (means, Array(0..<expertCount)) }
        var rng = SeededRandom(seed: seed)
        var rows: [[Float]] = []
        var owners: [Int] = []
        for e in 0..<expertCount {
            let members = labels.indices.filter { labels[$0] == e }.map { features.row($0) }
            for c in sphericalKMeans(members, k: perExpert, rng: &rng) {
                rows.append(c)
                owners.append(e)
            }
        }
        return (Matrix(rows: rows.count, cols: features.cols, data: rows.flatMap { $0 }), owners)
    }

    /// Spherical k-means of `points` into at most `k` clusters (fewer when there are fewer distinct
    /// points); clusters that empty keep their last centroid.
    static func sphericalKMeans(_ points: [[Float]], k: Int, rng: inout SeededRandom) -> [[Float]] {
        func unit(_ v: [Float]) -> [Float] {
            let n = max(v.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            return v.map { $0 / n }
        }
        func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
        let units = points.map(unit)
        // k-means++ on the cosine distance 1 - cos.
        var centres: [[Float]] = [points[Int.random(in: 0..<points.count, using: &rng)]]
        while centres.count < k {
            let distance = units.map { u in max(0, 1 - centres.map { dot(u, unit($0)) }.max()!) }
            let total = distance.reduce(0, +)
            if total <= 1e-9 { break }  // every point sits on a centre already
            var pick = Float.random(in: 0..<total, using: &rng)
            var chosen = distance.count - 1
            for (i, d) in distance.enumerated() {
                pick -= d
                if pick < 0 {
                    chosen = i
                    break
                }
            }
            centres.append(points[chosen])
        }
        var assignment = [Int](repeating: -1, count: points.count)
        for _ in 0..<100 {
            let directions = centres.map(unit)
            let next = units.map { u in directions.indices.max { dot(u, directions[$0]) < dot(u, directions[$1]) }! }
            if next == assignment { break }
            assignment = next
            for c in centres.indices {
                let members = points.indices.filter { assignment[$0] == c }
                guard !members.isEmpty else { continue }
                var sum = [Float](repeating: 0, count: points[0].count)
                for i in members { for j in sum.indices { sum[j] += points[i][j] } }
                centres[c] = sum.map { $0 / Float(members.count) }
            }
        }
        return centres
    }

    /// Training options for the sentence-level MLP gate.
    public struct TrainingOptions: Sendable {
        /// Width of the hidden ReLU layer (default 64).
        public var hidden: Int = 64
        /// Passes over the examples (default 60).
        public var epochs: Int = 60
        /// Adam step size (default 3e-3).
        public var learningRate: Float = 3e-3
        /// Examples per Adam step (default 32; the last batch of an epoch may be smaller).
        public var batchSize: Int = 32
        /// Seeds weight initialisation and the per-epoch shuffle (same seed, same router).
        public var seed: UInt64 = 0
        /// The defaults above.
        public init() {}
    }

    /// Trains `features → hidden (ReLU) → experts` with softmax cross-entropy and Adam.
    /// Features are standardised into the first layer (the saved weights take raw features).
    /// Returns the layers and the accuracy on `heldOut` rows (indices into features) after each epoch.
    public static func trainGate(
        features: Matrix, labels: [Int], expertCount: Int, train: [Int], heldOut: [Int],
        options: TrainingOptions, onEpoch: ((Int, Float, Float) -> Void)? = nil
    ) -> [DenseLayer] {
        let d = features.cols, h = options.hidden, e = expertCount
        // Standardise features (folded into layer 1 at the end).
        var mean = [Float](repeating: 0, count: d), std = [Float](repeating: 0, count: d)
        for i in train { for j in 0..<d { mean[j] += features[i, j] } }
        mean = mean.map { $0 / Float(max(1, train.count)) }
        for i in train { for j in 0..<d { let v = features[i, j] - mean[j]; std[j] += v * v } }
        std = std.map { max(($0 / Float(max(1, train.count))).squareRoot(), 1e-6) }
        func x(_ i: Int, _ j: Int) -> Float { (features[i, j] - mean[j]) / std[j] }

        var rng = SeededRandom(seed: options.seed)
        func initMatrix(_ r: Int, _ c: Int) -> [Float] {
            let bound = (6 / Float(r + c)).squareRoot()
            return (0..<(r * c)).map { _ in (rng.nextUnitFloat() * 2 - 1) * bound }
        }
        var params: [[Float]] = [
            initMatrix(h, d), [Float](repeating: 0, count: h), initMatrix(e, h), [Float](repeating: 0, count: e)
        ]
        var m = params.map { [Float](repeating: 0, count: $0.count) }, v = m
        var step = 0
        let (b1, b2, eps): (Float, Float, Float) = (0.9, 0.999, 1e-8)

        func forward(_ i: Int) -> (hidden: [Float], probs: [Float]) {
            var z = [Float](repeating: 0, count: h)
            for a in 0..<h {
                var s = params[1][a]
                for j in 0..<d { s += params[0][a * d + j] * x(i, j) }
                z[a] = max(0, s)
            }
            var o = [Float](repeating: 0, count: e)
            for c in 0..<e {
                var s = params[3][c]
                for a in 0..<h { s += params[2][c * h + a] * z[a] }
                o[c] = s
            }
            o.withUnsafeMutableBufferPointer { Ops.softmax($0.baseAddress!, count: e) }
            return (z, o)
        }
        func accuracy(_ rows: [Int]) -> Float {
            guard !rows.isEmpty else { return .nan }
            let right = rows.filter { i in
                let p = forward(i).probs; return Sampler.argmax(p) == labels[i]
            }.count
            return Float(right) / Float(rows.count)
        }

        var order = train
        for epoch in 1...max(1, options.epochs) {
            order.shuffle(using: &rng)
            var lossSum: Float = 0
            for start in stride(from: 0, to: order.count, by: options.batchSize) {
                let batch = order[start..<min(order.count, start + options.batchSize)]
                var grads = params.map { [Float](repeating: 0, count: $0.count) }
                for i in batch {
                    let (z, p) = forward(i)
                    lossSum -= Foundation.log(max(p[labels[i]], 1e-12))
                    var dOut = p
                    dOut[labels[i]] -= 1
                    var dz = [Float](repeating: 0, count: h)
                    for c in 0..<e {
                        grads[3][c] += dOut[c]
                        for a in 0..<h {
                            grads[2][c * h + a] += dOut[c] * z[a]
                            dz[a] += dOut[c] * params[2][c * h + a]
                        }
                    }
                    for a in 0..<h where z[a] > 0 {
                        grads[1][a] += dz[a]
                        for j in 0..<d { grads[0][a * d + j] += dz[a] * x(i, j) }
                    }
                }
                step += 1
                let scale = 1 / Float(batch.count)
                let c1 = 1 - Foundation.pow(b1, Float(step)), c2 = 1 - Foundation.pow(b2, Float(step))
                for k in params.indices {
                    for n in params[k].indices {
                        let g = grads[k][n] * scale
                        m[k][n] = b1 * m[k][n] + (1 - b1) * g
                        v[k][n] = b2 * v[k][n] + (1 - b2) * g * g
                        params[k][n] -= options.learningRate * (m[k][n] / c1) / ((v[k][n] / c2).squareRoot() + eps)
                    }
                }
            }
            onEpoch?(epoch, lossSum / Float(max(1, order.count)), accuracy(heldOut))
        }
        // Fold the standardisation into layer 1: W' = W / std, b' = b − W' · mean.
        var w1 = params[0], b1v = params[1]
        for a in 0..<h {
            var shift: Float = 0
            for j in 0..<d {
                w1[a * d + j] /= std[j]
                shift += w1[a * d + j] * mean[j]
            }
            b1v[a] -= shift
        }
        return [
            DenseLayer(
                weight: WireTensor(shape: [h, d], values: w1), bias: WireTensor(shape: [h], values: b1v),
                activation: .relu),
            DenseLayer(
                weight: WireTensor(shape: [e, h], values: params[2]), bias: WireTensor(shape: [e], values: params[3]),
                activation: .none)
        ]
    }
}
