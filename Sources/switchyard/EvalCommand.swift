import Foundation
import Switchyard

/// `switchyard eval`: exact-match accuracy of greedy generation on a task's examples.
enum EvalCommand: Command {
    static let name = "eval"
    static let summary = "Exact-match accuracy on a task (base, experts, or a router)"
    static let discussion = """
        Generates greedily for every example of the task and counts exact matches: the generated
        text up to the end-of-sequence token, stripped of surrounding whitespace, must equal the
        example's completion (also stripped). Examples are JSONL lines {"prompt": …, "completion": …}.
        Without --expert, --router, --uniform or --oracle, the base model alone.
        With --format json: {"task":…, "method":…, "examples":N, "correct":N, "accuracy":…}.
        """

    struct Options: ParsableArguments {
        @Option(placeholder: "NAME|FILE", help: "A task under Models/tasks (uses its --split file) or a JSONL file.")
        var task: String
        @Option(placeholder: "S", help: "train, dev or test.")
        var split = "test"
        @Option(placeholder: "FILE", help: "Route every example with this router (.pb).")
        var router: String?
        @Flag(help: "Every expert in the registry at weight 1/N (a uniform merge).")
        var uniform: Bool
        @Flag(help: "Each example's own expert: its \"task\" field (mixed sets) or the task name.")
        var oracle: Bool
        @Option(help: "Only the first N examples.")
        var limit: Int?
        @Option(help: "Most new tokens per example. Default: the longest completion + 8.")
        var maxTokens: Int?
        @Option(help: "Examples decoded together.")
        var batch = 8
        @OptionGroup var model: ModelOptions
        @OptionGroup var experts: ExpertOptions
        @OptionGroup var output: FormatOption

        func validate() throws {
            let methods = [router != nil, uniform, oracle, !experts.specs.isEmpty].filter { $0 }.count
            guard methods <= 1 else { throw UsageError("give one of --expert, --router, --uniform and --oracle") }
            guard batch > 0 else { throw UsageError("--batch must be > 0, got \(batch)") }
            if let limit { guard limit > 0 else { throw UsageError("--limit must be > 0, got \(limit)") } }
        }
    }

    struct JSONOutput: Encodable {
        var task: String
        var method: String
        var examples: Int
        var correct: Int
        var accuracy: Double
    }

    /// One line of a task file.
    struct Example: Decodable {
        var prompt: String
        var completion: String
        /// The task the example comes from (mixed sets), if given.
        var task: String?
    }

    static func run(_ options: Options) throws {
        let task = options.task
        let file = taskFile(task, split: options.split)
        var examples = try readExamples(file)
        if let limit = options.limit { examples = Array(examples.prefix(limit)) }
        let dir = try options.model.directory()
        let model = try options.model.load(dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let taskName = URL(fileURLWithPath: task).deletingPathExtension().lastPathComponent
        let method = try EvalMethod.make(options, model: model, oracleTasks: Set(examples.map { $0.task ?? taskName }))
        let maxTokens =
            try options.maxTokens ?? (examples.map { try tokenizer.encodeChecked($0.completion).count }.max() ?? 16) + 8
        let stops = StopTokens.of(model: model, tokenizer: tokenizer)
        var correct = 0
        var bar = ProgressBar(total: examples.count, label: "eval \(taskName)")
        let generator = Generator(model: model)
        for start in stride(from: 0, to: examples.count, by: options.batch) {
            let chunk = Array(examples[start..<min(examples.count, start + options.batch)])
            let prompts = try chunk.map { try PromptFormat.encode($0.prompt, tokenizer) }
            let requests = prompts.map {
                GenerationRequest(promptTokens: $0, maxNewTokens: maxTokens, stopTokens: stops)
            }
            let routing = try zip(prompts, chunk).map { try method.routing(prompt: $0, task: $1.task ?? taskName) }
            let outputs = try generator.generateBatch(requests, routing: routing)
            for (ex, out) in zip(chunk, outputs) where isCorrect(out, ex, tokenizer) { correct += 1 }
            let done = min(examples.count, start + options.batch)
            bar.update(done, suffix: String(format: "acc %.3f", Double(correct) / Double(done)))
        }
        let accuracy = examples.isEmpty ? 0 : Double(correct) / Double(examples.count)
        if options.output.json {
            try JSONOutput(
                task: task, method: method.label, examples: examples.count, correct: correct,
                accuracy: (accuracy * 10000).rounded() / 10000
            ).printJSON()
        } else {
            print(
                "\(task) [\(method.label)]: \(correct)/\(examples.count) exact match (\(String(format: "%.1f", 100 * accuracy))%)"
            )
        }
    }

    static func isCorrect(_ output: [Int], _ ex: Example, _ tokenizer: Tokenizer) -> Bool {
        tokenizer.decode(output, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
            == ex.completion.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `Models/tasks/<name>/<split>.jsonl` for a task name, or the path itself.
    static func taskFile(_ task: String, split: String) -> String {
        if task.hasSuffix(".jsonl") || FileManager.default.fileExists(atPath: task) { return task }
        return ModelLocator.modelsRoot().appendingPathComponent("tasks/\(task)/\(split).jsonl").path
    }

    static func readExamples(_ path: String) throws -> [Example] {
        try JSONLines.read(path, as: Example.self, expected: "{\"prompt\": \"…\", \"completion\": \"…\"}")
    }
}

/// What an evaluation (or the demo) runs: the base model, fixed experts, or a router.
struct EvalMethod {
    let label: String
    let routing: (_ prompt: [Int], _ task: String) throws -> Generator.Routing
    /// Keeps leased experts pinned for the method's lifetime.
    let lease: ExpertLease?

    func routing(prompt: [Int], task: String) throws -> Generator.Routing { try routing(prompt, task) }

    static func make(_ options: EvalCommand.Options, model: LlamaModel, oracleTasks: Set<String> = []) throws
        -> EvalMethod
    {
        let registry = { try options.experts.registry.open(model: model) }
        if options.oracle {
            let names = oracleTasks.sorted()
            let lease = try registry().acquire(names)
            return EvalMethod(
                label: "oracle expert",
                routing: { _, task in .resolved(.fixed(.single(names.firstIndex(of: task)!), experts: lease.adapters))
                }, lease: lease)
        }
        if let routerPath = options.router {
            let spec = try RouterWire.read(URL(fileURLWithPath: routerPath))
            let (router, lease) = try BoundRouter.bind(spec, model: model, registry: try registry())
            return EvalMethod(
                label: "router \(spec.name)", routing: { _, _ in .router(router, trace: nil) }, lease: lease)
        }
        if options.uniform {
            let registry = try registry()
            let names = registry.list().map(\.name)
            guard !names.isEmpty else { throw UsageError("--uniform: the registry has no experts") }
            let lease = try registry.acquire(names)
            let mix = ExpertMix(names.indices.map { .init(expert: $0, weight: 1 / Float(names.count)) })
            return EvalMethod(
                label: "uniform over \(names.count) experts",
                routing: { _, _ in .resolved(.fixed(mix, experts: lease.adapters)) }, lease: lease)
        }
        if let experts = try options.experts.resolve(model: model) {
            let label = "experts " + options.experts.specs.map { "\($0.name)=\($0.weight)" }.joined(separator: ",")
            return EvalMethod(
                label: label, routing: { _, _ in .resolved(.fixed(experts.mix, experts: experts.lease.adapters)) },
                lease: experts.lease)
        }
        return EvalMethod(label: "base", routing: { _, _ in .resolved(.base) }, lease: nil)
    }
}
