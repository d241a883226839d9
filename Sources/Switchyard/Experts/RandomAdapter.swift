extension LoRAAdapter {
    /// An adapter with random weights (uniform, std `std`) on the given projections of every layer,
    /// e.g. for benchmarks. Deterministic for a seed.
    public static func random(
        name: String, base: ModelConfig, rank: Int, alpha: Float? = nil,
        kinds: [ProjectionKind] = ProjectionKind.allCases, seed: UInt64, std: Float = 0.02
    ) -> LoRAAdapter {
        var rng = SeededRandom(seed: seed)
        let bound = std * Float(3).squareRoot()
        func matrix(_ r: Int, _ c: Int) -> Matrix {
            Matrix(rows: r, cols: c, data: (0..<(r * c)).map { _ in (rng.nextUnitFloat() * 2 - 1) * bound })
        }
        let config = AdapterConfig(
            rank: rank, alpha: alpha ?? Float(2 * rank), targetModules: .names(kinds.map(\.rawValue)))
        var modules: [ProjectionSite: LoRAModule] = [:]
        for layer in 0..<base.numLayers {
            for kind in kinds {
                let site = ProjectionSite(layer: layer, kind: kind)
                let (out, inF) = base.projectionShape(kind)
                // No patterns in this config: the scale is alpha / r.
                modules[site] = LoRAModule(
                    site: site, a: matrix(rank, inF), b: matrix(out, rank),
                    scale: config.alpha / Float(rank))
            }
        }
        return LoRAAdapter(name: name, config: config, modules: modules)
    }
}
