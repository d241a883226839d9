/// The mixed-expert LoRA kernel: applies, to every row of a forward batch, its own weighted mix of
/// LoRA experts — `y_t += Σ_e w_{t,e} · s_e · B_e · (A_e · x_t)` — as grouped GEMMs (the CPU form
/// of Punica's SGMV / S-LoRA's batched LoRA): for each expert, gather the rows that use it, one
/// GEMM into the rank space, scale each row by its weight, one GEMM back out, scatter-add.
/// A batch of requests each using a different expert therefore costs about as much as the same
/// batch all on one expert: every expert's weights are read once per step.
///
/// Rows whose mix is identical for the whole batch take a fast path with no gather or scatter.
/// Mixes are set per forward row with `setRowMixes`; per-layer routing can call it from
/// `beginLayer` (see the routers). Scratch memory is owned here and reused between steps.
public final class LoRAMixDelta: ProjectionDelta {
    /// The experts that mixes refer to by index.
    public let experts: [LoRAAdapter]
    /// Per expert, the rows using it and their weights.
    private var groups: [(expert: Int, rows: [Int], weights: [Float])] = []
    /// Set when every row uses the same mix with the same weights: `(expert, weight)` pairs.
    private var uniform: [(expert: Int, weight: Float)]? = nil
    private var rowCount = 0
    private let gathered = ScratchBuffer()
    private let rankSpace = ScratchBuffer()
    private let expanded = ScratchBuffer()

    /// A delta over `experts`; rows choose among them by index (`ExpertMix.Entry.expert`).
    public init(experts: [LoRAAdapter]) {
        self.experts = experts
    }

    /// Sets the mix of every forward row (in forward-batch order). Indices must be valid.
    public func setRowMixes(_ mixes: [ExpertMix]) throws {
        for (row, mix) in mixes.enumerated() {
            for e in mix.entries where e.expert < 0 || e.expert >= experts.count {
                throw SwitchyardError.invalidArgument(
                    "row \(row): expert index \(e.expert) out of range (\(experts.count) experts)")
            }
        }
        rowCount = mixes.count
        if let first = mixes.first, mixes.allSatisfy({ $0 == first }) {
            uniform = first.entries.map { ($0.expert, $0.weight) }
            groups = []
            return
        }
        uniform = nil
        var byExpert: [Int: (rows: [Int], weights: [Float])] = [:]
        for (row, mix) in mixes.enumerated() {
            for e in mix.entries where e.weight != 0 {
                byExpert[e.expert, default: ([], [])].rows.append(row)
                byExpert[e.expert]!.weights.append(e.weight)
            }
        }
        groups = byExpert.keys.sorted().map { ($0, byExpert[$0]!.rows, byExpert[$0]!.weights) }
    }

    /// Convenience: one mix per sequence, repeated over that sequence's new tokens.
    public func setSequenceMixes(_ mixes: [ExpertMix], tokenCounts: [Int]) throws {
        precondition(mixes.count == tokenCounts.count)
        try setRowMixes(zip(mixes, tokenCounts).flatMap { Array(repeating: $0, count: $1) })
    }

    /// Adds Σₑ wₑ · scaleₑ · (x · Aₑᵀ) · Bₑᵀ for each row's mix into `output`; experts without a
    /// module at `site` add nothing. `rows` must equal the rows the mixes were set for (traps otherwise).
    public func addDelta(
        at site: ProjectionSite, input: UnsafePointer<Float>, inFeatures: Int,
        output: UnsafeMutablePointer<Float>, outFeatures: Int, rows: Int
    ) {
        precondition(rows == rowCount, "LoRAMixDelta: mixes were set for \(rowCount) rows, forward has \(rows)")
        if let uniform {
            let active = uniform.compactMap { e, w in w == 0 ? nil : experts[e].modules[site].map { ($0, w) } }
            if active.count == 1 {
                apply(
                    active[0].0, weight: active[0].1, input: input, inFeatures: inFeatures, output: output,
                    outFeatures: outFeatures, rows: rows)
            } else if active.count > 1 {
                // Several experts on every row: each expert on its own thread into its own buffer
                // (each reads its own weights, the dominant cost), then summed in order.
                let ys = expanded.get(active.count * rows * outFeatures)
                let ts = rankSpace.get(active.reduce(0) { $0 + rows * $1.0.rank })
                var tOffsets: [Int] = [], offset = 0
                for (m, _) in active { tOffsets.append(offset); offset += rows * m.rank }
                let work = rows * active.reduce(0) { $0 + $1.0.rank * (inFeatures + outFeatures) }
                Parallel.forEach(active.count, work: work) { i in
                    let (m, w) = active[i]
                    let y = ys + i * rows * outFeatures
                    y.update(repeating: 0, count: rows * outFeatures)
                    apply(
                        m, weight: w, input: input, inFeatures: inFeatures, output: y, outFeatures: outFeatures,
                        rows: rows,
                        scratch: ts + tOffsets[i])
                }
                for i in active.indices { Ops.add(output, ys + i * rows * outFeatures, count: rows * outFeatures) }
            }
            return
        }
        // Groups run in parallel (each reads its own expert's weights, the dominant cost when
        // every row uses a different expert); each writes its own slice of scratch, and the
        // scatter-add into `output` happens afterwards, serially, so rows shared by several
        // experts are summed without races.
        let active = groups.compactMap { g in experts[g.expert].modules[site].map { (g, $0) } }
        guard !active.isEmpty else { return }
        var xOffsets: [Int] = [], tOffsets: [Int] = [], yOffsets: [Int] = []
        var xTotal = 0, tTotal = 0, yTotal = 0
        for (g, m) in active {
            xOffsets.append(xTotal); tOffsets.append(tTotal); yOffsets.append(yTotal)
            xTotal += g.rows.count * inFeatures
            tTotal += g.rows.count * m.rank
            yTotal += g.rows.count * outFeatures
        }
        let xs = gathered.get(xTotal), ts = rankSpace.get(tTotal), ys = expanded.get(yTotal)
        let work = active.reduce(0) { $0 + $1.0.rows.count * $1.1.rank * (inFeatures + outFeatures) }
        Parallel.forEach(active.count, work: work) { i in
            let (g, m) = active[i]
            let n = g.rows.count
            let x = xs + xOffsets[i], t = ts + tOffsets[i], y = ys + yOffsets[i]
            for (j, r) in g.rows.enumerated() {
                (x + j * inFeatures).update(from: input + r * inFeatures, count: inFeatures)
            }
            m.a.data.withUnsafeBufferPointer { a in
                BLAS.gemmTransB(
                    m: n, n: m.rank, k: inFeatures, a: x, lda: inFeatures, b: a.baseAddress!, ldb: inFeatures,
                    c: t, ldc: m.rank)
            }
            for (j, w) in g.weights.enumerated() {
                let row = t + j * m.rank, s = w * m.scale
                for c in 0..<m.rank { row[c] *= s }
            }
            m.b.data.withUnsafeBufferPointer { b in
                BLAS.gemmTransB(
                    m: n, n: outFeatures, k: m.rank, a: t, lda: m.rank, b: b.baseAddress!, ldb: m.rank,
                    c: y, ldc: outFeatures)
            }
        }
        for (i, (g, _)) in active.enumerated() {
            for (j, r) in g.rows.enumerated() {
                Ops.add(output + r * outFeatures, ys + yOffsets[i] + j * outFeatures, count: outFeatures)
            }
        }
    }

    /// All rows, one expert module, one weight: two GEMMs straight into the output.
    private func apply(
        _ m: LoRAModule, weight: Float, input: UnsafePointer<Float>, inFeatures: Int,
        output: UnsafeMutablePointer<Float>, outFeatures: Int, rows: Int,
        scratch: UnsafeMutablePointer<Float>? = nil
    ) {
        let t = scratch ?? rankSpace.get(rows * m.rank)
        m.a.data.withUnsafeBufferPointer { a in
            BLAS.gemmTransB(
                m: rows, n: m.rank, k: inFeatures, a: input, lda: inFeatures, b: a.baseAddress!, ldb: inFeatures,
                c: t, ldc: m.rank)
        }
        m.b.data.withUnsafeBufferPointer { b in
            BLAS.gemmTransB(
                m: rows, n: outFeatures, k: m.rank, alpha: weight * m.scale, a: t, lda: m.rank,
                b: b.baseAddress!, ldb: m.rank, beta: 1, c: output, ldc: outFeatures)
        }
    }
}
