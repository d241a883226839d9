import Foundation
import Switchyard

/// `switchyard compose`: LoraHub — weights over existing experts for a new task, from a few examples.
enum ComposeCommand: Subcommand {
    static let name = "compose"
    static let summary = "LoraHub: compose existing experts for a new task from a few examples"
    static let help = """
    USAGE: switchyard compose --examples FILE --out NAME [--experts a,b,…] [options]

    Searches weights w over experts (gradient-free, separable CMA-ES, as LoraHub does with
    nevergrad) minimising the base model's cross-entropy on the examples' completions (+ eos) with
    the composed adapter A = Σ w·√s·A_i, B = Σ w·√s·B_i, plus l1·Σ|w|; the best is written to the
    registry as a new expert (a PEFT directory).

    OPTIONS:
      --examples FILE     JSONL {"prompt": …, "completion": …} (e.g. a held-out task's train.jsonl).
      --shots N           Use the first N examples (default 5).
      --experts LIST      Experts to compose (default: every expert of the registry's most common rank).
      --budget N          Objective evaluations (default 40).
      --l1 X              L1 penalty on the weights (default 0.05).
      --seed S            Optimiser seed (default 0).
      --out NAME          Name of the composed expert.
      --model DIR, --registry DIR
    """

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: ["examples", "shots", "experts", "budget", "l1", "seed", "out", "model", "registry"])
        guard let file = args.string("examples") else { throw UsageError("compose needs --examples FILE.jsonl") }
        guard let out = args.string("out") else { throw UsageError("compose needs --out NAME") }
        let dir = try ModelLocator.modelDirectory(args)
        let model = try ModelLocator.loadModel(args, path: dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config)
        var names = args.string("experts")?.split(separator: ",").map(String.init) ?? []
        if names.isEmpty {
            names = LoraHubComposer.defaultExperts(in: registry)
            guard !names.isEmpty else { throw UsageError("the registry has no single-rank experts to compose") }
        }
        let lease = try registry.acquire(names)
        defer { lease.release() }
        let eos = tokenizer.eosTokenID ?? model.config.eosTokenIDs.first
        let shots = max(1, try args.int("shots") ?? 5)
        let examples = try EvalCommand.readExamples(file).prefix(shots).map { ex in
            FewShotExample(prompt: try PromptFormat.encode(ex.prompt, tokenizer),
                           completion: try tokenizer.encodeChecked(ex.completion) + (eos.map { [$0] } ?? []))
        }
        let hub = try LoraHubComposer(model: model, experts: lease.adapters, examples: examples, l1: try args.float("l1") ?? 0.05)
        let budget = try args.int("budget") ?? 40
        let baseLoss = try hub.crossEntropy(nil)
        var bar = ProgressBar(total: budget, label: "compose")
        let result = try hub.search(budget: budget, seed: UInt64(truncatingIfNeeded: try args.int("seed") ?? 0)) { evaluations, best in
            bar.update(evaluations, suffix: String(format: "best %.4f", best))
        }
        let composed = hub.compose(result.best, name: out)
        let entry = try registry.add(composed, name: out)
        print(String(format: "base model loss %.4f → composed objective %.4f after %d evaluations on %d examples", baseLoss, result.bestValue, result.evaluations, examples.count))
        print("weights: " + zip(names, result.best).map { "\($0)=\(String(format: "%.3f", $1))" }.joined(separator: ", "))
        print("wrote \(entry.directory.path)")
    }
}
