import CBLAS
import Foundation

/// Rank-as-expert routing (SMoRA) for one request: at each adapted projection, per token, the
/// gate scores every rank (`g = G·x`), the top-k ranks are kept, and only those are computed:
/// `Δy = scale · Σ_{i ∈ topk} act(g)_i · B[:, i] · (A[i, :] · x)`.
final class RankRoutingDelta: RequestRoutingDelta {
    let modules: [ProjectionSite: RankModule]
    let activation: RouterSpec.RankActivation
    let selection: Selection
    let trace: RoutingTrace?
    private var positions: [Int] = []
    private let gateScores = ScratchBuffer()

    init(modules: [ProjectionSite: RankModule], activation: RouterSpec.RankActivation, selection: Selection, trace: RoutingTrace?) {
        self.modules = modules
        self.activation = activation
        self.selection = selection
        self.trace = trace
    }

    func prepare(positions: [Int]) throws { self.positions = positions }

    /// The selected ranks and their activation values for one row's gate scores.
    func choose(_ g: UnsafePointer<Float>, rank: Int) -> [(Int, Float)] {
        let k = min(max(1, selection.topK), rank)
        let order = (0..<rank).sorted { g[$0] != g[$1] ? g[$0] > g[$1] : $0 < $1 }.prefix(k)
        switch activation {
        case .none:
            return order.map { ($0, g[$0]) }
        case .sigmoid:
            return order.map { ($0, 1 / (1 + Foundation.exp(-g[$0]))) }
        case .softmax:
            let t = selection.temperature == 0 ? 1 : selection.temperature
            let m = order.map { g[$0] / t }.max()!
            let e = order.map { Foundation.exp(g[$0] / t - m) }
            let total = e.reduce(0, +)
            return zip(order, e).map { ($0, $1 / total) }
        }
    }

    func addDelta(at site: ProjectionSite, input: UnsafePointer<Float>, inFeatures: Int,
                  output: UnsafeMutablePointer<Float>, outFeatures: Int, rows: Int) {
        guard let m = modules[site] else { return }
        let r = m.rank
        let g = gateScores.get(rows * r)
        m.gate.data.withUnsafeBufferPointer { gp in
            BLAS.gemmTransB(m: rows, n: r, k: inFeatures, a: input, lda: inFeatures, b: gp.baseAddress!, ldb: inFeatures, c: g, ldc: r)
        }
        m.a.data.withUnsafeBufferPointer { a in
            m.bTransposed.data.withUnsafeBufferPointer { bt in
                for row in 0..<rows {
                    let x = input + row * inFeatures, y = output + row * outFeatures
                    for (i, act) in choose(g + row * r, rank: r) {
                        let t = cblas_sdot(Int32(inFeatures), a.baseAddress! + i * inFeatures, 1, x, 1)
                        cblas_saxpy(Int32(outFeatures), m.scale * act * t, bt.baseAddress! + i * outFeatures, 1, y, 1)
                    }
                }
            }
        }
    }
}
