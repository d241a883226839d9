import Foundation

extension Selection {
    /// Probabilities `softmax(scores / temperature)` (temperature 0 reads as 1).
    public func probabilities(_ scores: [Float]) -> [Float] {
        let t = temperature == 0 ? 1 : temperature
        var p = scores.map { $0 / t }
        p.withUnsafeMutableBufferPointer { Ops.softmax($0.baseAddress!, count: $0.count) }
        return p
    }

    /// Picks experts from gate scores: `softmax(scores / T)`, then the mode (see
    /// router.proto): top-k, top-p, threshold (renormalised over the chosen) or dense.
    /// Ties are broken by the lower index. Returned entries use indices into `scores`, in
    /// selection order (most probable first), with `expertMap` applied when given.
    public func select(_ scores: [Float], expertMap: [Int]? = nil) -> ExpertMix {
        guard !scores.isEmpty else { return .base }
        let p = probabilities(scores)
        let order = p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
        var chosen: [Int]
        switch mode {
        case .dense:
            chosen = Array(p.indices)
        case .topK, .unspecified:
            chosen = Array(order.prefix(max(1, topK)))
        case .topP:
            chosen = []
            var cumulative: Float = 0
            for i in order {
                chosen.append(i)
                cumulative += p[i]
                if cumulative >= topP { break }
            }
        case .threshold:
            chosen = order.filter { p[$0] >= threshold }
            if chosen.isEmpty { chosen = [order[0]] }
        }
        let total = mode == .dense ? 1 : chosen.reduce(Float(0)) { $0 + p[$1] }
        return ExpertMix(chosen.map { ExpertMix.Entry(expert: expertMap?[$0] ?? $0, weight: p[$0] / total) })
    }
}
