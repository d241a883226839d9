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

    @Test func centroidsAreClassMeans() throws {
        let f = Matrix(rows: 3, cols: 2, data: [1, 2, 3, 4, 10, 10])
        let c = try RouterFitting.centroids(features: f, labels: [0, 0, 1], expertCount: 2)
        #expect(c.data == [2, 3, 10, 10])
        #expect(throws: SwitchyardError.self) {
            try RouterFitting.centroids(features: f, labels: [0, 0, 0], expertCount: 2)
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
