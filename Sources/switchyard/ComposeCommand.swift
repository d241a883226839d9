import Foundation
import Switchyard

/// `switchyard compose`: LoraHub — weights over existing experts for a new task, from a few examples.
enum ComposeCommand: Subcommand {
    static let name = "compose"
    static let summary = "LoraHub: compose existing experts for a new task from a few examples"
    static let help = """
    USAGE: switchyard compose --examples FILE --out NAME [--experts a,b,… | --preselect K] [options]

    LoraHub: searches weights w in [-1.5, 1.5] over experts, gradient-free from w = 0, for the
    composed adapter A = Σ w·√s·A_i, B = Σ w·√s·B_i, minimising LoraHub's objective (upstream
    lorahub/algorithm.py): the base model's mean cross-entropy on the examples' completions
    (+ eos) divided by the number of examples, plus l1 · mean|w|. The best is written to the
    registry as a new expert (a PEFT directory), marked as composed in its safetensors metadata
    so that later default pools leave it out.

    OPTIONS:
      --examples FILE     JSONL {"prompt": …, "completion": …} (e.g. a held-out task's train.jsonl).
      --shots N           Use the first N examples (default 5).
      --experts LIST      Experts to compose (default: every trained expert of the registry's most
                          common rank; composed experts are left out unless named here).
      --preselect K       Pool = the K experts a sentence router scores highest on the examples'
                          prompts (probabilities averaged over the examples).
      --router FILE       The sentence router for --preselect (default: Models/routers/sentence.pb).
      --optimizer NAME    cobyla (default: deterministic trust region, what LoraHub's nevergrad
                          NGOpt runs at this size) or cmaes (separable CMA-ES, seeded).
      --budget N          Objective evaluations, all spent (default 40).
      --l1 X              Weight of mean|w| in the objective (default 0.05, LoraHub's).
      --seed S            CMA-ES seed (default 0; COBYLA is deterministic).
      --out NAME          Name of the composed expert.
      --model DIR, --registry DIR
    """

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: ["examples", "shots", "experts", "preselect", "router", "optimizer", "budget", "l1", "seed", "out", "model", "registry"])
        guard let file = args.string("examples") else { throw UsageError("compose needs --examples FILE.jsonl") }
        guard let out = args.string("out") else { throw UsageError("compose needs --out NAME") }
        let dir = try ModelLocator.modelDirectory(args)
        let model = try ModelLocator.loadModel(args, path: dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config)
        let optimizerName = args.string("optimizer") ?? CompositionOptimizer.cobyla.rawValue
        guard let optimizer = CompositionOptimizer(rawValue: optimizerName) else {
            throw UsageError("--optimizer must be one of \(CompositionOptimizer.allCases.map(\.rawValue).joined(separator: ", ")), got \(EscapedText.quoted(optimizerName))")
        }
        let budget = try args.int("budget") ?? 40
        guard budget >= 1 else { throw UsageError("--budget must be ≥ 1, got \(budget)") }
        let eos = tokenizer.eosTokenID ?? model.config.eosTokenIDs.first
        let shots = max(1, try args.int("shots") ?? 5)
        let examples = try EvalCommand.readExamples(file).prefix(shots).map { ex in
            FewShotExample(prompt: try PromptFormat.encode(ex.prompt, tokenizer),
                           completion: try tokenizer.encodeChecked(ex.completion) + (eos.map { [$0] } ?? []))
        }
        var names = args.string("experts")?.split(separator: ",").map(String.init) ?? []
        if let k = try args.int("preselect") {
            guard names.isEmpty else { throw UsageError("--preselect chooses the pool; it cannot be combined with --experts") }
            let routerURL = args.string("router").map { URL(fileURLWithPath: $0) }
                ?? ModelLocator.modelsRoot().appendingPathComponent("routers/sentence.pb")
            let (router, routerLease) = try BoundRouter.bind(try RouterWire.read(routerURL), model: model, registry: registry)
            defer { routerLease.release() }
            names = try LoraHubComposer.preselect(router: router, prompts: examples.map(\.prompt), count: k)
            print("preselected by \(routerURL.lastPathComponent): \(names.joined(separator: ", "))")
        } else if args.string("router") != nil {
            throw UsageError("--router is the sentence router of --preselect")
        }
        if names.isEmpty {
            names = LoraHubComposer.defaultExperts(in: registry)
            guard !names.isEmpty else { throw UsageError("the registry has no single-rank trained experts to compose") }
        }
        let lease = try registry.acquire(names)
        defer { lease.release() }
        let hub = try LoraHubComposer(model: model, experts: lease.adapters, examples: examples, l1: try args.float("l1") ?? 0.05)
        let baseLoss = try hub.crossEntropy(nil)
        var bar = ProgressBar(total: budget, label: "compose")
        let result = try hub.search(optimizer: optimizer, budget: budget, seed: UInt64(truncatingIfNeeded: try args.int("seed") ?? 0)) { evaluations, best in
            bar.update(evaluations, suffix: String(format: "best %.4f", best))
        }
        let composed = hub.compose(result.best, name: out)
        let entry = try registry.add(composed, name: out)
        print(String(format: "base model loss %.4f → composed objective %.4f after %d ", baseLoss, result.bestValue, result.evaluations)
              + "\(optimizer.rawValue) evaluations on \(examples.count) examples")
        print("weights: " + zip(names, result.best).map { "\($0)=\(String(format: "%.3f", $1))" }.joined(separator: ", "))
        print("wrote \(entry.directory.path)")
    }
}
