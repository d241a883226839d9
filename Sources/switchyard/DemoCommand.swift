import Foundation
import Switchyard

/// `switchyard demo`: the embedded setting end to end — a router picks experts for prompts of
/// different tasks; the answers are checked and compared with the base model alone.
enum DemoCommand: Command {
    static let name = "demo"
    static let summary = "Route prompts of different tasks to experts on the embedded models"
    static let discussion = """
        Loads the embedded base model, expert registry and router (Models/, found next to the package
        or through $SWITCHYARD_MODELS), routes one test prompt of every task, and shows for each the
        experts chosen with their weights, the generated answer and whether it is right — then the
        same prompts on the base model alone, for contrast.
        """

    struct Options: ParsableArguments {
        @Option(placeholder: "FILE", help: "Router to use. Default: Models/routers/sentence.pb.")
        var router: String?
        @Option(help: "Prompts per task.")
        var perTask = 1
        @OptionGroup var model: ModelOptions
        @OptionGroup var registry: RegistryOptions

        func validate() throws {
            guard perTask > 0 else { throw UsageError("--per-task must be > 0, got \(perTask)") }
        }
    }

    static func run(_ options: Options) throws {
        let root = ModelLocator.modelsRoot()
        let fm = FileManager.default
        let baseDir = options.model.model.map { URL(fileURLWithPath: $0) } ?? root.appendingPathComponent("base")
        guard fm.fileExists(atPath: baseDir.appendingPathComponent("config.json").path) else {
            throw SwitchyardError.io(
                path: root.path,
                reason:
                    "no embedded models here (expected base/, experts/, tasks/, routers/); set SWITCHYARD_MODELS or run from the package"
            )
        }
        let started = Date()
        let model = try options.model.load(baseDir)
        let tokenizer = try Tokenizer.load(model: baseDir)
        let registry = try options.registry.open(model: model)
        let routerURL =
            options.router.map { URL(fileURLWithPath: $0) } ?? root.appendingPathComponent("routers/sentence.pb")
        let spec = try RouterWire.read(routerURL)
        let (router, lease) = try BoundRouter.bind(spec, model: model, registry: registry)
        defer { lease.release() }
        let perTask = options.perTask

        // A rank-level (SMoRA) router names no experts: its prompts are those of every expert's task.
        let tasks = spec.experts.isEmpty ? registry.list().map(\.name) : spec.experts.map(\.name)
        var prompts: [(task: String, example: EvalCommand.Example)] = []
        for expert in tasks {
            let file = root.appendingPathComponent("tasks/\(expert)/test.jsonl").path
            guard fm.fileExists(atPath: file) else { continue }
            for ex in try EvalCommand.readExamples(file).prefix(perTask) { prompts.append((expert, ex)) }
        }
        guard !prompts.isEmpty else {
            throw SwitchyardError.io(
                path: root.appendingPathComponent("tasks").path, reason: "no test examples for the router's experts")
        }
        let ids = try prompts.map { try PromptFormat.encode($0.example.prompt, tokenizer) }
        let stops = StopTokens.of(model: model, tokenizer: tokenizer)
        let maxTokens = (try prompts.map { try tokenizer.encodeChecked($0.example.completion).count }.max() ?? 16) + 8
        let requests = ids.map { GenerationRequest(promptTokens: $0, maxNewTokens: maxTokens, stopTokens: stops) }
        let traces = prompts.map { _ in RoutingTrace() }
        let generator = Generator(model: model)
        let routed = try generator.generateBatch(requests, routing: traces.map { .router(router, trace: $0) })
        let base = try generator.generateBatch(requests)

        let names = spec.experts.map(\.name)
        print(
            "Switchyard demo: base model \(model.config.parameterCount / 1000)K parameters, \(registry.list().count) experts, router '\(spec.name)' (\(spec.granularity), \(spec.effectiveSelection.mode) k=\(spec.effectiveSelection.topK))\n"
        )
        var routedRight = 0, baseRight = 0
        func answer(_ out: [Int]) -> String {
            tokenizer.decode(out, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for (i, p) in prompts.enumerated() {
            let r = EvalCommand.isCorrect(routed[i], p.example, tokenizer),
                b = EvalCommand.isCorrect(base[i], p.example, tokenizer)
            if r { routedRight += 1 }
            if b { baseRight += 1 }
            let decisions = traces[i].decisions  // averaged over tokens and layers for token routers
            var weights = [Float](repeating: 0, count: names.count)
            for d in decisions {
                for e in d.mix.entries { weights[e.expert] += e.weight / Float(max(1, decisions.count)) }
            }
            let chosen = weights.indices.filter { weights[$0] > 0 }.sorted { weights[$0] > weights[$1] }
                .map { "\(names[$0]) \(String(format: "%.2f", weights[$0]))" }.joined(separator: ", ")
            print("[\(p.task)] \(p.example.prompt.replacingOccurrences(of: "\n", with: " ⏎ "))")
            if spec.granularity == .rank {
                let ranks = traces[i].rankDecisions
                let sites = Set(ranks.map(\.site)).count
                let used = Set(ranks.flatMap { d in d.ranks.map { "\(d.site)#\($0)" } }).count
                print(
                    "    ranks:   \(used) distinct (projection, rank) pairs active; top \(spec.effectiveSelection.topK) per token at each of \(sites) projections"
                )
            } else {
                print("    experts: \(chosen.isEmpty ? "none" : chosen)")
            }
            print(
                "    routed:  \(answer(routed[i]))  \(r ? "✓" : "✗ (expected \(p.example.completion.trimmingCharacters(in: .whitespaces)))")"
            )
            print("    base:    \(answer(base[i]))  \(b ? "✓" : "✗")")
        }
        print(
            "\nrouted: \(routedRight)/\(prompts.count) correct    base model alone: \(baseRight)/\(prompts.count) correct    (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)"
        )
    }
}
