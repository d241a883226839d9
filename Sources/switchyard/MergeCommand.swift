import Foundation
import Switchyard

/// `switchyard merge`: combine experts into a new one (PEFT's add_weighted_adapter).
enum MergeCommand: Subcommand {
    static let name = "merge"
    static let summary = "Combine weighted experts into a new expert (linear, cat, svd)"
    static let help = """
    USAGE: switchyard merge --experts a=0.5,b=0.5 --type linear|cat|svd --out NAME [options]

    Builds one adapter from several with PEFT's add_weighted_adapter semantics and writes it into
    the registry as a PEFT directory (PeftModel.from_pretrained loads it unchanged):
      linear  A = Σ √(w·s)·A_i, B = Σ √(w·s)·B_i (ranks must match)
      cat     ranks concatenated: exactly Σ w·s·B_i·A_i
      svd     rank-k truncated SVD of Σ w·s·B_i·A_i (--svd-rank k)

    OPTIONS:
      --model DIR         Base model (default: the embedded model).
      --registry DIR      Registry (default: Models/experts of the embedded models).
      --experts LIST      name=weight pairs, comma-separated.
      --type T            linear, cat or svd.
      --svd-rank K        Rank of the svd result (default: the largest input rank).
      --out NAME          Name of the new expert.
    """

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: ["model", "registry", "experts", "type", "svd-rank", "out"])
        guard let list = args.string("experts") else { throw UsageError("merge needs --experts a=w,b=w") }
        guard let typeName = args.string("type"), let type = CombinationType(rawValue: typeName) else {
            throw UsageError("--type must be linear, cat or svd")
        }
        guard let out = args.string("out") else { throw UsageError("merge needs --out NAME") }
        let specs = try LegacyExpertOptions.parse([list])
        let config = try ModelConfig.load(from: try ModelLocator.modelDirectory(args).appendingPathComponent("config.json"))
        let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: config)
        let lease = try registry.acquire(specs.map(\.name))
        let svdRank = try args.int("svd-rank") ?? lease.adapters.flatMap(\.ranks).max()
        let combined = try LoRAAdapter.combine(lease.adapters, weights: specs.map(\.weight), type: type, svdRank: svdRank, name: out)
        let entry = try registry.add(combined, name: out)
        print("wrote \(entry.directory.path) (rank \(combined.ranks.map(String.init).joined(separator: ",")), \(combined.parameterCount) parameters)")
    }
}
