import Testing

@testable import Switchyard

@Suite struct RouterFittingTests {
    /// Three well-separated Gaussian clusters in 10 dimensions.
    static func clusters(perClass: Int = 40) -> (Matrix, [Int]) {
        var rng = SeededRandom(seed: 1)
        var rows: [Float] = [], labels: [Int] = []
        for c in 0..<3 {
            for _ in 0..<perClass {
                for j in 0..<10 { rows.append((j == c ? 4 : 0) + 0.5 * rng.nextNormal() + 10) }
                labels.append(c)
            }
        }
        return (Matrix(rows: labels.count, cols: 10, data: rows), labels)
    }

    /// The rows a context-MEAN router is fitted on are the means it reads: at the prompt's end and
    /// at every completion token, over the last `window` positions (all with 0); without a
    /// completion or window exactly the pooled prompt features.
    @Test func contextFeaturesAreTheWindowedMeansTheRouterReads() throws {
        let config = try LlamaModel.load(directory: BaseFingerprintTests.demoBase).config
        let model = LlamaModel.random(config: config, seed: 5)
        let examples = [
            RoutingExample(tokens: [1, 40, 41, 42, 43, 44], expert: 1, completion: [50, 51, 52]),
            RoutingExample(tokens: [1, 60], expert: 0, completion: []),
            RoutingExample(tokens: [1, 70, 71], expert: 2, completion: [72])
        ]
        for window in [0, 1, 3, 50] {
            let (f, labels) = try RouterFitting.contextFeatures(
                model: model, examples: examples, layer: 1, window: window)
            #expect(labels == [1, 1, 1, 1, 0, 2, 2])
            var row = 0
            for ex in examples {
                let h = try model.residualStream(ex.tokens + ex.completion, enteringLayer: 1)
                for end in (ex.tokens.count - 1)..<h.rows {
                    let first = window == 0 ? 0 : max(0, end + 1 - window)
                    for j in 0..<h.cols {
                        let mean = (first...end).map { Double(h[$0, j]) }.reduce(0, +) / Double(end + 1 - first)
                        #expect(
                            abs(Double(f[row, j]) - mean) <= 1e-5 * max(1, abs(mean)), "window \(window) row \(row)")
                    }
                    row += 1
                }
            }
            #expect(row == f.rows)
        }
        let prompts = examples.map { RoutingExample(tokens: $0.tokens, expert: $0.expert) }
        let pooled = try RouterFitting.features(model: model, examples: prompts, layer: 1, pooling: .mean)
        let context = try RouterFitting.contextFeatures(model: model, examples: prompts, layer: 1, window: 0)
        #expect(context.features.data == pooled.data && context.labels == [1, 0, 2])
    }

    @Test func centroidsAreClassMeans() throws {
        let f = Matrix(rows: 3, cols: 2, data: [1, 2, 3, 4, 10, 10])
        let c = try RouterFitting.centroids(features: f, labels: [0, 0, 1], expertCount: 2)
        #expect(c.data == [2, 3, 10, 10])
        #expect(throws: SwitchyardError.self) {
            try RouterFitting.centroids(features: f, labels: [0, 0, 0], expertCount: 2)
        }
    }

    /// Expert 0's examples form two directions, expert 1's one: one mean per expert blurs
    /// expert 0 towards expert 1 (a point of expert 0 is nearer expert 1's mean), two centroids
    /// per expert keep both of expert 0's families and route every example right.
    @Test func clusteredCentroidsKeepEachFamily() throws {
        var rows: [Float] = [], labels: [Int] = []
        var rng = SeededRandom(seed: 3)
        for (direction, expert) in [([1, 0, 0], 0), ([0, 1, 0], 0), ([0.9, 0.3, 0.3], 1)] as [([Float], Int)] {
            for _ in 0..<20 {
                rows += direction.map { $0 + 0.05 * rng.nextNormal() }
                labels.append(expert)
            }
        }
        let f = Matrix(rows: labels.count, cols: 3, data: rows)
        let (one, oneOwners) = try RouterFitting.clusteredCentroids(
            features: f, labels: labels, expertCount: 2, perExpert: 1)
        #expect(one.data == (try RouterFitting.centroids(features: f, labels: labels, expertCount: 2)).data)
        #expect(oneOwners == [0, 1])
        let (two, owners) = try RouterFitting.clusteredCentroids(
            features: f, labels: labels, expertCount: 2, perExpert: 2, seed: 7)
        #expect(owners == [0, 0, 1, 1])  // grouped by expert...
        let again = try RouterFitting.clusteredCentroids(
            features: f, labels: labels, expertCount: 2, perExpert: 2, seed: 7)
        #expect(again.centroids.data == two.data && again.experts == owners)  // ...and the fit is reproducible

        func accuracy(_ centroids: Matrix, _ owners: [Int]) throws -> Int {
            let table = try CentroidTable(
                centroids: WireTensor(centroids), owners: owners == [0, 1] ? [] : owners, expertCount: 2, hidden: 3)
            let scores = f.data.withUnsafeBufferPointer { table.scores($0.baseAddress!, rows: f.rows) }
            return scores.indices.filter { Sampler.argmax(scores[$0]) == labels[$0] }.count
        }
        #expect(try accuracy(two, owners) == labels.count)
        #expect(try accuracy(one, oneOwners) < labels.count)
        #expect(throws: SwitchyardError.self) {
            try RouterFitting.clusteredCentroids(features: f, labels: labels, expertCount: 2, perExpert: 0)
        }
    }

    /// A centroid table names what is wrong: an owner out of range, an expert without a centroid,
    /// a row count that disagrees with the owners.
    @Test func centroidTableRefusesBadOwners() throws {
        let t = WireTensor(shape: [3, 2], values: [1, 0, 0, 1, 1, 1])
        #expect(throws: Never.self) { try CentroidTable(centroids: t, owners: [0, 1, 0], expertCount: 2, hidden: 2) }
        for (owners, field) in [
            ([0, 2, 1], "centroid.centroid_experts[1]"), ([0, 0, 0], "centroid.centroid_experts"),
            ([0, 1], "centroid.centroids"), ([], "centroid.centroids")
        ] {
            do {
                _ = try CentroidTable(centroids: t, owners: owners, expertCount: 2, hidden: 2)
                Issue.record("\(owners) accepted")
            } catch {
                #expect("\(error)".contains(field), "\(owners): \(error)")
            }
        }
    }

    @Test func trainedGateSeparatesClustersAndFoldsStandardisation() throws {
        let (features, labels) = Self.clusters()
        var rng = SeededRandom(seed: 2)
        let order = Array(labels.indices).shuffled(using: &rng)
        let heldOut = Array(order[..<24]), train = Array(order[24...])
        var options = RouterFitting.TrainingOptions()
        options.hidden = 8
        options.epochs = 150
        var lastAccuracy: Float = 0
        let layers = RouterFitting.trainGate(
            features: features, labels: labels, expertCount: 3, train: train, heldOut: heldOut,
            options: options
        ) { _, _, acc in lastAccuracy = acc }
        #expect(lastAccuracy >= 0.95)
        // The exported layers take raw features (standardisation folded in) and agree with training.
        let w1 = try layers[0].weight.matrix(field: "w1"), w2 = try layers[1].weight.matrix(field: "w2")
        let b1 = layers[0].bias!.floats(), b2 = layers[1].bias!.floats()
        var right = 0
        for i in heldOut {
            let hidden = BoundRouter.dense(features.row(i), w1, b1, .relu)
            let scores = BoundRouter.dense(hidden, w2, b2, .none)
            if Sampler.argmax(scores) == labels[i] { right += 1 }
        }
        #expect(Float(right) / Float(heldOut.count) == lastAccuracy)
    }
}
