import Foundation
import Switchyard

/// `switchyard eval`: exact-match accuracy of greedy generation on a task's examples.
enum EvalCommand: Subcommand {
    static let name = "eval"
    static let summary = "Exact-match accuracy on a task (base, experts, or a router)"
    static let help = """
    USAGE: switchyard eval --task NAME|FILE [--expert NAME[=W]… | --router FILE | --uniform] [options]

    Generates greedily for every example of the task and counts exact matches: the generated
    text up to the end-of-sequence token, stripped of surrounding whitespace, must equal the
    example's completion (also stripped). Examples are JSONL lines {"prompt": …, "completion": …}.

    OPTIONS:
      --task NAME|FILE    A task under Models/tasks (uses its --split file) or a JSONL file.
      --split S           train, dev or test (default test).
      --model DIR         Base model (default: the embedded model).
      --registry DIR      Expert registry (default: Models/experts).
      --expert NAME[=W]   Apply these experts to every example (repeatable).
      --router FILE       Route every example with this router (.pb).
      --uniform           Every expert in the registry at weight 1/N (a uniform merge).
      --oracle            Each example's own expert: its "task" field (mixed sets) or the task name.
      --limit N           Only the first N examples.
      --max-tokens N      Most new tokens per example (default: longest completion + 8).
      --batch N           Examples decoded together (default 8).
      --format text|json  json: {"task":…, "examples":N, "correct":N, "accuracy":…}.
    """

    struct Example {
        var prompt: String
        var completion: String
        /// The task the example comes from (mixed sets), if given.
        var task: String?
    }

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: Set(["task", "split", "model", "router", "limit", "max-tokens", "batch", "format"]).union(LegacyExpertOptions.valued),
                                       switches: ["uniform", "oracle"])
        let json = try args.wantsJSON()
        guard let task = args.string("task") else { throw UsageError("eval needs --task NAME or FILE") }
        let file = taskFile(task, split: args.string("split") ?? "test")
        var examples = try readExamples(file)
        if let limit = try args.int("limit") { examples = Array(examples.prefix(max(0, limit))) }
        let dir = try ModelLocator.modelDirectory(args)
        let model = try ModelLocator.loadModel(args, path: dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let taskName = URL(fileURLWithPath: task).deletingPathExtension().lastPathComponent
        let method = try EvalMethod.make(args, model: model, oracleTasks: Set(examples.map { $0.task ?? taskName }))
        let maxTokens = try args.int("max-tokens") ?? (examples.map { try tokenizer.encodeChecked($0.completion).count }.max() ?? 16) + 8
        let batch = max(1, try args.int("batch") ?? 8)
        var stops = Set(model.config.eosTokenIDs)
        if let eos = tokenizer.eosTokenID { stops.insert(eos) }
        var correct = 0
        var bar = ProgressBar(total: examples.count, label: "eval \(URL(fileURLWithPath: task).deletingPathExtension().lastPathComponent)")
        let generator = Generator(model: model)
        for start in stride(from: 0, to: examples.count, by: batch) {
            let chunk = Array(examples[start..<min(examples.count, start + batch)])
            let prompts = try chunk.map { try PromptFormat.encode($0.prompt, tokenizer) }
            let requests = prompts.map { GenerationRequest(promptTokens: $0, maxNewTokens: maxTokens, stopTokens: stops) }
            let routing = try zip(prompts, chunk).map { try method.routing(prompt: $0, task: $1.task ?? taskName) }
            let outputs = try generator.generateBatch(requests, routing: routing)
            for (ex, out) in zip(chunk, outputs) where isCorrect(out, ex, tokenizer) { correct += 1 }
            bar.update(min(examples.count, start + batch), suffix: String(format: "acc %.3f", Double(correct) / Double(min(examples.count, start + batch))))
        }
        let accuracy = examples.isEmpty ? 0 : Double(correct) / Double(examples.count)
        if json {
            print("{\"task\":\(JSONText.string(task)),\"method\":\(JSONText.string(method.label)),\"examples\":\(examples.count),\"correct\":\(correct),\"accuracy\":\(String(format: "%.4f", accuracy))}")
        } else {
            print("\(task) [\(method.label)]: \(correct)/\(examples.count) exact match (\(String(format: "%.1f", 100 * accuracy))%)")
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
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw SwitchyardError.io(path: path, reason: "cannot read task file")
        }
        return try text.split(separator: "\n").enumerated().compactMap { n, line in
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  let p = obj["prompt"] as? String, let c = obj["completion"] as? String else {
                throw SwitchyardError.invalidArgument("\(path):\(n + 1): expected {\"prompt\": \"…\", \"completion\": \"…\"}")
            }
            return Example(prompt: p, completion: c, task: obj["task"] as? String)
        }
    }
}

/// What an evaluation (or the demo) runs: the base model, fixed experts, or a router.
struct EvalMethod {
    let label: String
    let routing: (_ prompt: [Int], _ task: String) throws -> Generator.Routing
    /// Keeps leased experts pinned for the method's lifetime.
    let lease: ExpertLease?

    func routing(prompt: [Int], task: String) throws -> Generator.Routing { try routing(prompt, task) }

    static func make(_ args: ParsedArguments, model: LlamaModel, oracleTasks: Set<String> = []) throws -> EvalMethod {
        if args.flag("oracle") {
            let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config, create: false)
            let names = oracleTasks.sorted()
            let lease = try registry.acquire(names)
            return EvalMethod(label: "oracle expert", routing: { _, task in .resolved(.fixed(.single(names.firstIndex(of: task)!), experts: lease.adapters)) }, lease: lease)
        }
        if let routerPath = args.string("router") {
            let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config, create: false)
            let spec = try RouterWire.read(URL(fileURLWithPath: routerPath))
            let (router, lease) = try BoundRouter.bind(spec, model: model, registry: registry)
            return EvalMethod(label: "router \(spec.name)", routing: { _, _ in .router(router, trace: nil) }, lease: lease)
        }
        if args.flag("uniform") {
            let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config, create: false)
            let names = registry.list().map(\.name)
            guard !names.isEmpty else { throw UsageError("--uniform: the registry has no experts") }
            let lease = try registry.acquire(names)
            let mix = ExpertMix(names.indices.map { .init(expert: $0, weight: 1 / Float(names.count)) })
            return EvalMethod(label: "uniform over \(names.count) experts", routing: { _, _ in .resolved(.fixed(mix, experts: lease.adapters)) }, lease: lease)
        }
        if let experts = try LegacyExpertOptions.resolve(args, model: model) {
            let label = "experts " + (args.options["expert"] ?? []).joined(separator: ",")
            return EvalMethod(label: label, routing: { _, _ in .resolved(.fixed(experts.mix, experts: experts.lease.adapters)) }, lease: experts.lease)
        }
        return EvalMethod(label: "base", routing: { _, _ in .resolved(.base) }, lease: nil)
    }
}
