/// The original weights of projections that an expert was merged into; `LlamaModel.unmerge`
/// puts them back bit for bit.
public struct MergedWeights: Sendable {
    /// Name of the expert that was merged (the one `unmerge` takes back out).
    public let expert: String
    let originals: [ProjectionSite: Linear]
}

extension LlamaModel {
    /// Merges `weight · scale · B · A` of every adapted projection into the base weights (the
    /// single-expert fast path: afterwards the expert costs nothing per token). Not safe while a
    /// forward pass runs on this model. Exactly reversible with `unmerge`. A projection kept in a
    /// quantised block format is widened to Float32 to take the merge (it is not requantised:
    /// that would lose the expert in rounding); `unmerge` restores the quantised original.
    public func merge(_ adapter: LoRAAdapter, weight: Float = 1) -> MergedWeights {
        var originals: [ProjectionSite: Linear] = [:]
        for (site, module) in adapter.modules {
            var linear = layers[site.layer][site.kind]
            originals[site] = linear
            if let q = linear.quantized {
                linear.weight = q.dequantized()
                linear.quantized = nil
            }
            let (out, inF) = (linear.outFeatures, linear.inFeatures)
            module.b.data.withUnsafeBufferPointer { b in
                module.a.data.withUnsafeBufferPointer { a in
                    linear.weight.data.withUnsafeMutableBufferPointer { w in
                        BLAS.gemm(
                            m: out, n: inF, k: module.rank, alpha: weight * module.scale, a: b.baseAddress!,
                            lda: module.rank,
                            b: a.baseAddress!, ldb: inF, beta: 1, c: w.baseAddress!, ldc: inF)
                    }
                }
            }
            setProjection(linear)
        }
        return MergedWeights(expert: adapter.name, originals: originals)
    }

    /// Restores the weights saved by `merge` (exactly: the saved matrices, not a subtraction).
    public func unmerge(_ merged: MergedWeights) {
        for (_, original) in merged.originals { setProjection(original) }
    }
}

/// How `LoRAAdapter.combine` builds one adapter from several (PEFT's `add_weighted_adapter`).
public enum CombinationType: String, Sendable, CaseIterable {
    /// `A = Σ sign(w·s)·√|w·s|·A_i`, `B = Σ √|w·s|·B_i`: a weighted average in weight space; ranks must match.
    /// Not the sum of the deltas (cross terms appear), exactly as in PEFT.
    case linear
    /// `A = [w_1·s_1·A_1; w_2·s_2·A_2; …]`, `B = [B_1, B_2, …]`: rank = Σ ranks, exactly the
    /// weighted sum of the deltas.
    case cat
    /// Rank-k truncated SVD of `Σ w_i·s_i·B_i·A_i`: `B = U_k·diag(S_k)`, `A = V_kᵀ`.
    case svd
}

extension LoRAAdapter {
    /// Combines adapters into a new one with PEFT's `add_weighted_adapter` semantics. The result
    /// has scale 1 (`lora_alpha = r`), so the weights and scales of the inputs are folded into
    /// its tensors; it covers the union of the inputs' modules. (PEFT copies `use_rslora` from the
    /// first input, which would rescale the result by √r when that input used rsLoRA; Switchyard
    /// always writes `use_rslora: false`, so the written adapter means what was computed.)
    public static func combine(
        _ adapters: [LoRAAdapter], weights: [Float], type: CombinationType,
        svdRank: Int? = nil, name: String
    ) throws -> LoRAAdapter {
        guard !adapters.isEmpty, adapters.count == weights.count else {
            throw SwitchyardError.invalidArgument(
                "combine: need as many weights (\(weights.count)) as adapters (\(adapters.count)), at least one")
        }
        let sites = Set(adapters.flatMap { $0.modules.keys })
        var modules: [ProjectionSite: LoRAModule] = [:]
        var newRank: Int
        switch type {
        case .linear:
            let ranks = Set(adapters.flatMap(\.ranks))
            guard ranks.count == 1, let r = ranks.first else {
                throw SwitchyardError.invalidArgument(
                    "combine linear: all adapters must have one and the same rank; found \(adapters.map { "\($0.name): \($0.ranks)" }.joined(separator: ", ")) (use cat or svd)"
                )
            }
            newRank = r
        case .cat:
            newRank = adapters.map { $0.ranks.max() ?? 0 }.reduce(0, +)
            guard adapters.allSatisfy({ $0.ranks.count == 1 }) else {
                throw SwitchyardError.invalidArgument(
                    "combine cat: adapters with per-module ranks (rank_pattern) are not supported")
            }
        case .svd:
            guard let k = svdRank, k > 0 else {
                throw SwitchyardError.invalidArgument("combine svd: a positive svd rank is required")
            }
            newRank = k
        }
        for site in sites {
            let present = zip(adapters, weights).compactMap { ad, w in ad.modules[site].map { ($0, w) } }
            let (out, inF) = (present[0].0.b.rows, present[0].0.a.cols)
            switch type {
            case .linear:
                // PEFT's task arithmetic: ws = w·s; A gets sign(ws)·√|ws|, B gets √|ws|.
                modules[site] = LoRAModule.weightedSum(
                    present.map { m, w in
                        let ws = w * m.scale, root = abs(ws).squareRoot()
                        return (m, ws < 0 ? -root : root, root)
                    }, site: site)
            case .cat:
                var a = Matrix(rows: newRank, cols: inF), b = Matrix(rows: out, cols: newRank)
                // Rows are packed in adapter order, skipping adapters this module lacks (as PEFT
                // does); the unused tail stays zero.
                var offset = 0
                for (m, w) in present {
                    let f = w * m.scale
                    for i in 0..<m.rank { for j in 0..<inF { a[offset + i, j] = f * m.a[i, j] } }
                    for o in 0..<out { for i in 0..<m.rank { b[o, offset + i] = m.b[o, i] } }
                    offset += m.rank
                }
                modules[site] = LoRAModule(site: site, a: a, b: b, scale: 1)
            case .svd:
                var delta = Matrix(rows: out, cols: inF)
                for (m, w) in present {
                    let d = m.delta()
                    for i in delta.data.indices { delta.data[i] += w * d.data[i] }
                }
                modules[site] = try truncatedSVD(delta, rank: min(newRank, out, inF), site: site)
            }
        }
        if type == .svd { newRank = modules.values.map(\.rank).max() ?? newRank }
        let kinds = ProjectionKind.allCases.filter { k in sites.contains { $0.kind == k } }
        var rankPattern: [String: Int] = [:]
        for (site, m) in modules where m.rank != newRank { rankPattern[site.description] = m.rank }
        var alphaPattern: [String: Float] = [:]
        for (site, m) in modules where m.rank != newRank { alphaPattern[site.description] = Float(m.rank) }
        let layers = Set(sites.map(\.layer)).sorted()
        let contiguousFromZero = layers == Array(0..<layers.count)
        let config = AdapterConfig(
            rank: newRank, alpha: Float(newRank), targetModules: .names(kinds.map(\.rawValue)),
            rankPattern: rankPattern, alphaPattern: alphaPattern,
            layersToTransform: contiguousFromZero ? nil : layers,
            baseModelNameOrPath: adapters[0].config.baseModelNameOrPath)
        // Modules of a targeted kind that no input adapts must not be claimed by the config.
        let missing = kinds.flatMap { k in layersOf(sites, k) }
        guard missing.isEmpty else {
            throw SwitchyardError.invalidArgument(
                "combine: the inputs adapt \(kinds.map(\.rawValue)) in only some layers (\(missing.prefix(4).map(\.description).joined(separator: ", ")) missing); PEFT's add_weighted_adapter cannot express that either"
            )
        }
        return LoRAAdapter(name: name, config: config, modules: modules)
    }

    /// Sites of kind `k` absent from `sites` in layers where another site of `sites` exists.
    private static func layersOf(_ sites: Set<ProjectionSite>, _ k: ProjectionKind) -> [ProjectionSite] {
        let layers = Set(sites.map(\.layer))
        return layers.sorted().map { ProjectionSite(layer: $0, kind: k) }.filter { !sites.contains($0) }
    }

    /// `B = U_k·diag(S_k)`, `A = V_kᵀ` from a double-precision SVD of `delta` `[out × in]`.
    static func truncatedSVD(_ delta: Matrix, rank k: Int, site: ProjectionSite) throws -> LoRAModule {
        let svd = try ThinSVD(rowMajor: delta, what: site.description)
        let m = svd.m, n = svd.n, kk = min(m, n), u = svd.u, s = svd.s, vt = svd.vt
        var a = Matrix(rows: k, cols: n), b = Matrix(rows: m, cols: k)
        for r in 0..<k {
            for i in 0..<m { b[i, r] = Float(u[r * m + i] * s[r]) }
            for j in 0..<n { a[r, j] = Float(vt[j * kk + r]) }
        }
        return LoRAModule(site: site, a: a, b: b, scale: 1)
    }
}
