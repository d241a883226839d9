import Foundation
import Switchyard

/// The hand-written form of `ExpertOptions`, for commands not yet declared through `Command`.
enum LegacyExpertOptions {
    static let valued: Set<String> = ["registry", "expert"]
    static let help = """
      --registry DIR            Expert registry (default: Models/experts of the embedded models).
      --expert NAME[=WEIGHT]    Apply this expert (repeatable; weight 1 by default). Several
                                experts are mixed: Σ weight · scale · B·A at every projection.
    """

    static func parse(_ specs: [String]) throws -> [(name: String, weight: Float)] {
        try specs.flatMap { spec -> [(name: String, weight: Float)] in
            guard let parsed = WeightedExperts(argument: spec) else {
                throw UsageError("--expert expects \(WeightedExperts.expectation), got \(EscapedText.quoted(spec))")
            }
            return parsed.entries
        }
    }

    static func resolve(_ args: ParsedArguments, model: LlamaModel) throws -> (mix: ExpertMix, lease: ExpertLease)? {
        let specs = try parse(args.options["expert"] ?? [])
        guard !specs.isEmpty else { return nil }
        let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config, create: false)
        let lease = try registry.acquire(specs.map(\.name))
        let mix = ExpertMix(specs.enumerated().map { ExpertMix.Entry(expert: $0.offset, weight: $0.element.weight) })
        return (mix, lease)
    }
}
