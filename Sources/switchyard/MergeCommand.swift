import Foundation
import Switchyard

/// `switchyard merge`: combine experts into a new one (PEFT's add_weighted_adapter).
enum MergeCommand: Command {
    static let name = "merge"
    static let summary = "Combine weighted experts into a new expert (linear, cat, svd)"
    static let discussion = """
        Builds one adapter from several with PEFT's add_weighted_adapter semantics and writes it into
        the registry as a PEFT directory (PeftModel.from_pretrained loads it unchanged):
          linear  A = Σ √(w·s)·A_i, B = Σ √(w·s)·B_i (ranks must match)
          cat     ranks concatenated: exactly Σ w·s·B_i·A_i
          svd     rank-k truncated SVD of Σ w·s·B_i·A_i (--svd-rank k)
        """

    struct Options: ParsableArguments {
        @Option(placeholder: "a=0.5,b=0.5", help: "The experts to combine, with their weights.")
        var experts: WeightedExperts
        @Option(help: "How to combine them.")
        var type: CombinationType
        @Option(placeholder: "K", help: "Rank of the svd result. Default: the largest input rank.")
        var svdRank: Int?
        @Option(placeholder: "NAME", help: "Name of the new expert.")
        var out: String
        @OptionGroup var model: ModelOptions
        @OptionGroup var registry: RegistryOptions

        func validate() throws { try WeightedExperts.requireDistinct(experts.entries, option: "--experts") }
    }

    static func run(_ options: Options) throws {
        let specs = options.experts.entries
        // The base is loaded so the inputs are checked against it and the result records it.
        let model = try options.model.load(try options.model.directory())
        let registry = try options.registry.open(model: model, create: true)
        let lease = try registry.acquire(specs.map(\.name))
        let svdRank = options.svdRank ?? lease.adapters.flatMap(\.ranks).max()
        let combined = try LoRAAdapter.combine(
            lease.adapters, weights: specs.map(\.weight), type: options.type, svdRank: svdRank, name: options.out)
        let entry = try registry.add(combined, name: options.out)
        print(
            "wrote \(entry.directory.path) (rank \(combined.ranks.map(String.init).joined(separator: ",")), \(combined.parameterCount) parameters)"
        )
    }
}
