import Foundation
import Switchyard

/// `switchyard compose`: LoraHub — weights over existing experts for a new task, from a few examples.
enum ComposeCommand: Command {
    static let name = "compose"
    static let summary = "LoraHub: compose existing experts for a new task from a few examples"
    static let discussion = """
        LoraHub: searches weights w in [-1.5, 1.5] over experts, gradient-free, for the
        composed adapter (by default the experts' updates summed, Σ w·s·B_i·A_i, the ranks of
        those of nonzero weight concatenated; --combination lorahub: LoraHub's A = Σ w·√s·A_i,
        B = Σ w·√s·B_i),
        minimising LoraHub's objective (upstream lorahub/algorithm.py): the base model's mean
        cross-entropy on the examples' completions (+ eos) divided by the number of examples,
        plus l1 · mean|w|. The best is written to the
        registry as a new expert (a PEFT directory), marked as composed in its safetensors metadata
        so that later default pools leave it out. By default the search starts from the best expert
        alone (each is tried at weight 1 first, within the budget); --start zero is LoraHub's start.
        Then, by default, the search's best is kept unless an expert alone completes more of the
        examples exactly (greedy decoding), or as many while the search's best misses some (the
        expert wins ties); --select objective keeps the search's best, as LoraHub.
        """

    struct Options: ParsableArguments {
        @OptionGroup var fewShot: FewShotOptions
        @Option(placeholder: "NAME", help: "Name of the composed expert.")
        var out: String
        @Option(
            help:
                "Experts to compose. Default: every trained expert (with lorahub: of the registry's most common rank); composed experts are left out unless named here."
        )
        var experts: NameList?
        @Option(
            placeholder: "K",
            help:
                "Pool = the K experts a sentence router scores highest on the examples' prompts (probabilities averaged over the examples)."
        )
        var preselect: Int?
        @Option(placeholder: "FILE", help: "The sentence router for --preselect. Default: Models/routers/sentence.pb.")
        var router: String?
        @Option(
            help:
                "cobyla: deterministic trust region, what LoraHub's nevergrad NGOpt runs at this size; cmaes: separable CMA-ES, seeded."
        )
        var optimizer: CompositionOptimizer = .cobyla
        @Option(
            help:
                "best-single: each expert alone at weight 1 first (n of the evaluations), then the search from the best of them; zero: from w = 0, as LoraHub."
        )
        var start: CompositionStart = .bestSingle
        @Option(
            help:
                "lorahub: A = Σ w·√s·A_i, B = Σ w·√s·B_i (LoraHub's; one rank); cat: the ranks of the experts of nonzero weight concatenated, the delta exactly Σ w·s·B_i·A_i (PEFT's cat; what --expert a=w,b=v applies)."
        )
        var combination: CompositionCombination = .default
        @Option(
            name: "select",
            help:
                "exact-match: keep the search's best unless an expert alone completes more of the examples exactly (greedy decoding), or as many, at least one, while the search's best misses some (experts alone: ties to the lower objective); objective: the search's best, as LoraHub."
        )
        var selection: CompositionSelection = .default
        @Option(help: "Objective evaluations, all spent.")
        var budget = 40
        @Option(
            help:
                "COBYLA's initial trust-region radius. Default 0.5, nevergrad's step for these bounds."
        )
        var radius: Float?
        @Option(help: "Weight of mean|w| in the objective (LoraHub's).")
        var l1: Float = 0.05
        @Option(placeholder: "S", help: "CMA-ES seed (COBYLA is deterministic).")
        var seed = 0
        @OptionGroup var model: ModelOptions
        @OptionGroup var registry: RegistryOptions

        func validate() throws {
            if let radius {
                guard optimizer == .cobyla else { throw UsageError("--radius is COBYLA's; CMA-ES steps 0.5") }
                guard radius > 0, radius <= 3 else {
                    throw UsageError("--radius must be in (0, 3] (the bounds are ±1.5), got \(radius)")
                }
            }
            guard budget >= 1 else { throw UsageError("--budget must be ≥ 1, got \(budget)") }
            guard preselect == nil || experts == nil else {
                throw UsageError("--preselect chooses the pool; it cannot be combined with --experts")
            }
            guard router == nil || preselect != nil else {
                throw UsageError("--router is the sentence router of --preselect")
            }
        }
    }

    static func run(_ options: Options) throws {
        let out = options.out, budget = options.budget
        let dir = try options.model.directory()
        let model = try options.model.load(dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let registry = try options.registry.open(model: model, create: true)
        let optimizer = options.optimizer
        let eos = StopTokens.endOfCompletion(model: model, tokenizer: tokenizer)
        let examples = try options.fewShot.read().map { ex in
            FewShotExample(
                prompt: try PromptFormat.encode(ex.prompt, tokenizer),
                completion: try tokenizer.encodeChecked(ex.completion) + (eos.map { [$0] } ?? []))
        }
        var names = options.experts?.names ?? []
        if let k = options.preselect {
            let routerURL =
                options.router.map { URL(fileURLWithPath: $0) }
                ?? ModelLocator.modelsRoot().appendingPathComponent("routers/sentence.pb")
            let (router, routerLease) = try BoundRouter.bind(
                try RouterWire.read(routerURL), model: model, registry: registry)
            defer { routerLease.release() }
            names = try LoraHubComposer.preselect(router: router, prompts: examples.map(\.prompt), count: k)
            print("preselected by \(routerURL.lastPathComponent): \(names.joined(separator: ", "))")
        }
        if names.isEmpty {
            names = LoraHubComposer.defaultExperts(in: registry, combination: options.combination)
            guard !names.isEmpty else { throw UsageError("the registry has no single-rank trained experts to compose") }
        }
        let lease = try registry.acquire(names)
        defer { lease.release() }
        let hub = try LoraHubComposer(
            model: model, experts: lease.adapters, examples: examples, l1: options.l1,
            combination: options.combination)
        let baseLoss = try hub.crossEntropy(nil)
        var bar = ProgressBar(total: budget, label: "compose")
        let result = try hub.search(
            optimizer: optimizer, budget: budget, seed: UInt64(truncatingIfNeeded: options.seed),
            initialRadius: options.radius ?? LoraHubComposer.defaultInitialRadius, start: options.start
        ) { evaluations, best in
            bar.update(evaluations, suffix: String(format: "best %.4f", best))
        }
        let choice = try hub.select(result, by: options.selection)
        let composed = try hub.compose(choice.weights, name: out)
        let entry = try registry.add(composed, name: out)
        print(
            String(
                format: "base model loss %.4f → composed objective %.4f after %d ", baseLoss, result.bestValue,
                result.evaluations)
                + "\(optimizer.rawValue) evaluations on \(examples.count) examples")
        if let matches = choice.exactMatches, let searched = choice.searchExactMatches {
            let n = examples.count
            if choice.weights == result.best {
                let rival = matches > 0 && matches < n ? "as many" : "more"
                print(
                    "the search's best completes \(matches) of \(n) examples exactly; no expert alone completes \(rival)"
                )
            } else {
                // Only experts alone (one weight 1, the rest 0) replace the search's best.
                let what = choice.weights.firstIndex(of: 1).map { "\(names[$0]) alone" } ?? "an expert alone"
                let objective = String(format: "%.4f", choice.objective)
                print(
                    "kept \(what) (objective \(objective)): it completes \(matches) of \(n) examples exactly, "
                        + "the search's best \(searched)")
            }
        }
        let weights = zip(names, choice.weights).map { "\($0)=\(String(format: "%.3f", $1))" }
        print("weights: " + weights.joined(separator: ", "))
        print("wrote \(entry.directory.path)")
    }
}
