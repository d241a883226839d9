extension RouterSpec {
    /// A rank-as-expert (SMoRA) router made from K experts concatenated along the rank: module by
    /// module `A = [s_1·A_1; …; s_K·A_K]`, `B = [B_1, …, B_K]` (each expert's scale folded into its A
    /// rows; an expert without the module contributes zero rows), total rank R = Σ r_k.
    ///
    /// With `gates` nil every gate is zero, the activation is sigmoid and the scale 2, so each rank's
    /// gate value is exactly 1: with `topK` = R this router equals all K experts at weight 1 (the
    /// `cat` combination). Train or supply gates (`[R × in]` per site) to make ranks compete. `topK`
    /// must be in 1...R and each expert given once.
    public static func rankRouter(
        concatenating experts: [LoRAAdapter], name: String, topK: Int,
        gates: [ProjectionSite: Matrix]? = nil
    ) throws -> RouterSpec {
        guard !experts.isEmpty else { throw SwitchyardError.invalidArgument("rankRouter: no experts") }
        if let twice = experts.map(\.name).firstRepeated() {
            throw SwitchyardError.invalidArgument("rankRouter: expert '\(twice)' is given twice")
        }
        let totalRank = experts.reduce(0) { $0 + ($1.ranks.max() ?? 0) }
        guard topK >= 1, topK <= totalRank else {
            throw SwitchyardError.invalidArgument(
                "rankRouter: top-k must be in 1...\(totalRank) (the experts' ranks together), got \(topK)")
        }
        let sites = Set(experts.flatMap { $0.modules.keys }).sorted {
            ($0.layer, $0.kind.rawValue) < ($1.layer, $1.kind.rawValue)
        }
        var modules: [RankModuleSpec] = []
        for site in sites {
            let present = experts.compactMap { $0.modules[site] }
            let (out, inF) = (present[0].b.rows, present[0].a.cols)
            let total = experts.reduce(0) { $0 + ($1.ranks.max() ?? 0) }
            var a = Matrix(rows: total, cols: inF), b = Matrix(rows: out, cols: total)
            var offset = 0
            for e in experts {
                let r = e.ranks.max() ?? 0
                if let m = e.modules[site] {
                    for i in 0..<m.rank { for j in 0..<inF { a[offset + i, j] = m.scale * m.a[i, j] } }
                    for o in 0..<out { for i in 0..<m.rank { b[o, offset + i] = m.b[o, i] } }
                }
                offset += r
            }
            let gate = gates?[site] ?? Matrix(rows: total, cols: inF)
            guard gate.shape == [total, inF] else {
                throw SwitchyardError.shapeMismatch(
                    path: name, tensor: "gate of \(site)", expected: [total, inF], found: gate.shape)
            }
            modules.append(
                RankModuleSpec(
                    layer: site.layer, module: site.kind.rawValue, a: WireTensor(a), b: WireTensor(b),
                    gate: WireTensor(gate), scale: gates == nil ? 2 : 1))
        }
        return RouterSpec(
            name: name, granularity: .rank, experts: experts.map { ExpertRef(name: $0.name, sha256: "") },
            selection: Selection(mode: .topK, topK: topK, temperature: 1),
            gate: .rank(modules: modules, activation: gates == nil ? .sigmoid : .softmax))
    }
}

extension RouterSpec {
    /// Where a rank-level router's ranks came from: with `sourceRanks[k]` the rank of the k-th
    /// listed expert, rank i of a module belongs to the expert whose block (in list order, as
    /// `rankRouter(concatenating:)` lays them out) holds i. nil when the router is not rank-level,
    /// lists no experts, or the blocks do not add up to every module's rank (trained ranks).
    public func rankBlocks(sourceRanks: [Int]) -> [Range<Int>]? {
        guard case let .rank(modules, _) = gate, !experts.isEmpty, sourceRanks.count == experts.count,
            sourceRanks.allSatisfy({ $0 > 0 })
        else { return nil }
        let total = sourceRanks.reduce(0, +)
        guard modules.allSatisfy({ $0.a.shape.first == total }) else { return nil }
        var start = 0
        return sourceRanks.map { r in
            defer { start += r }; return start..<(start + r)
        }
    }
}
