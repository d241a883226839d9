import Foundation
import Switchyard

/// `--registry DIR --expert NAME[=WEIGHT] …`, shared by generate, score and eval.
enum ExpertOptions {
    static let valued: Set<String> = ["registry", "expert"]
    static let help = """
      --registry DIR            Expert registry (default: Models/experts of the embedded models).
      --expert NAME[=WEIGHT]    Apply this expert (repeatable; weight 1 by default). Several
                                experts are mixed: Σ weight · scale · B·A at every projection.
    """

    /// Parses `name=weight` specs.
    static func parse(_ specs: [String]) throws -> [(name: String, weight: Float)] {
        try specs.flatMap { $0.split(separator: ",").map(String.init) }.map { spec in
            let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
            guard let name = parts.first, !name.isEmpty else { throw UsageError("--expert: empty expert name in \(EscapedText.quoted(spec))") }
            guard parts.count == 2 else { return (name, 1) }
            guard let w = Float(parts[1]), w.isFinite else { throw UsageError("--expert: weight \(EscapedText.quoted(parts[1])) of \(EscapedText.quoted(name)) is not a number") }
            return (name, w)
        }
    }

    /// The experts named on the command line, loaded from the registry (the lease's adapters, in
    /// order) and their mix (nil when no `--expert` was given). The lease keeps them pinned.
    static func resolve(_ args: ParsedArguments, model: LlamaModel) throws -> (mix: ExpertMix, lease: ExpertLease)? {
        let specs = try parse(args.options["expert"] ?? [])
        guard !specs.isEmpty else { return nil }
        let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config, create: false)
        let lease = try registry.acquire(specs.map(\.name))
        let mix = ExpertMix(specs.enumerated().map { ExpertMix.Entry(expert: $0.offset, weight: $0.element.weight) })
        return (mix, lease)
    }
}
