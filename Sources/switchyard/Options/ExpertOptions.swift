import Foundation
import Switchyard

/// `--registry DIR --expert NAME[=WEIGHT] …`, shared by generate, score and eval.
struct ExpertOptions: ParsableArguments {
    @OptionGroup var registry: RegistryOptions
    @Option(
        help:
            "Apply this expert (weight 1 by default; comma-separated lists work too). Several experts are mixed: Σ weight · scale · B·A at every projection."
    )
    var expert: [WeightedExperts]

    func validate() throws { try WeightedExperts.requireDistinct(specs, option: "--expert") }

    /// Every expert named, with its weight, in order.
    var specs: [(name: String, weight: Float)] { expert.flatMap(\.entries) }

    /// The experts named, loaded from the registry (the lease's adapters, in order) and their mix
    /// (nil when no `--expert` was given). The lease keeps them pinned.
    func resolve(model: LlamaModel) throws -> (mix: ExpertMix, lease: ExpertLease)? {
        let specs = specs
        guard !specs.isEmpty else { return nil }
        let lease = try registry.open(model: model).acquire(specs.map(\.name))
        let mix = ExpertMix(specs.enumerated().map { ExpertMix.Entry(expert: $0.offset, weight: $0.element.weight) })
        return (mix, lease)
    }
}
