import Switchyard

/// The weight products of one decode step on their own: every layer's projections, grouped as
/// the model groups them (q/k/v and gate/up each one fused product), and the output head, on
/// `rows` rows of random activations. No attention, norms, activations or sampling: the floor
/// under a step of `rows` sequences with these kernels, whatever the rest of the step costs.
enum WeightProducts {
    /// Seconds per step (best of `rounds`, after one warm-up) for `rows` rows.
    static func secondsPerStep(model: LlamaModel, rows: Int, rounds: Int = 5) -> Double {
        let c = model.config, d = c.hiddenSize
        let widest = max(d, c.intermediateSize, c.numHeads * c.headDim)
        var rng = SeededRandom(seed: 11)
        let input = (0..<rows * widest).map { _ in rng.nextUnitFloat() - 0.5 }
        // Large enough for any group's outputs (q, k, v side by side; gate and up; the head).
        var output = [Float](repeating: 0, count: rows * max(2 * c.intermediateSize, 3 * widest, c.vocabSize))
        func step() {
            input.withUnsafeBufferPointer { x in
                output.withUnsafeMutableBufferPointer { y in
                    let x = x.baseAddress!, y = y.baseAddress!
                    for layer in model.layers {
                        for group in [[layer.q, layer.k, layer.v], [layer.o], [layer.gate, layer.up], [layer.down]] {
                            var outputs: [UnsafeMutablePointer<Float>] = []
                            var offset = 0
                            for p in group {
                                outputs.append(y + offset)
                                offset += rows * p.outFeatures
                            }
                            Linear.forward(group, x, rows: rows, into: outputs, delta: nil)
                        }
                    }
                    if let head = model.outputQuantized {
                        head.multiply(x, rows: rows, into: y)
                    } else {
                        model.outputWeight.data.withUnsafeBufferPointer { w in
                            BLAS.gemmTransB(
                                m: rows, n: c.vocabSize, k: d, a: x, lda: d, b: w.baseAddress!, ldb: d, c: y,
                                ldc: c.vocabSize)
                        }
                    }
                }
            }
        }
        step()
        var best = Double.infinity
        for _ in 0..<rounds { best = min(best, measure(step)) }
        return best
    }
}
