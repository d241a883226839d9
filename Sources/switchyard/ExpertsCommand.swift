import Foundation
import Switchyard

/// `switchyard experts list|inspect|validate|add|remove`: manage an expert registry.
enum ExpertsCommand: Subcommand {
    static let name = "experts"
    static let summary = "List, inspect, validate, add and remove experts in a registry"
    static let help = """
    USAGE: switchyard experts <list|inspect|validate|add|remove> [options]

      list                        Every expert: ranks, targets, parameters, bytes, sha256.
      inspect NAME                One expert in detail (config, per-module ranks and scales).
      validate [NAME…]            Check experts (all by default) against the base model;
                                  --path DIR checks a PEFT directory that is not in the registry.
      add DIR --name NAME         Validate a PEFT adapter directory and copy it in as NAME.
      remove NAME                 Delete an expert.
      export NAME --out DIR       Write the expert as Switchyard writes adapters (a PEFT directory).

    OPTIONS:
      --registry DIR        Registry directory (default: Models/experts of the embedded models).
      --model DIR           Base model the experts must fit (default: the embedded model).
      --format text|json    Output format (default text).
    """

    static func run(_ argv: [String]) throws {
        guard let sub = argv.first else { throw UsageError("experts needs a subcommand: list, inspect, validate, add, remove") }
        let args = try ParsedArguments(Array(argv.dropFirst()), valued: ["registry", "model", "format", "name", "path", "out"])
        let json = try args.wantsJSON()
        let config = try ModelConfig.load(from: try ModelLocator.modelDirectory(args).appendingPathComponent("config.json"))
        let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: config, create: sub == "add")
        switch sub {
        case "list":
            let entries = registry.list()
            if json {
                print("[" + entries.map(entryJSON).joined(separator: ",") + "]")
            } else {
                print("NAME".padding(toLength: 24, withPad: " ", startingAt: 0) + "RANKS    TARGETS                                    PARAMS     BYTES      SHA256")
                for e in entries {
                    let s = e.summary
                    print(e.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                          + s.ranks.map(String.init).joined(separator: ",").padding(toLength: 9, withPad: " ", startingAt: 0)
                          + s.targetKinds.map(\.rawValue).joined(separator: ",").padding(toLength: 43, withPad: " ", startingAt: 0)
                          + String(s.parameterCount).padding(toLength: 11, withPad: " ", startingAt: 0)
                          + String(s.fileBytes).padding(toLength: 11, withPad: " ", startingAt: 0)
                          + String(e.sha256.prefix(16)))
                }
                if entries.isEmpty { print("(no experts in \(registry.directory.path))") }
            }
            for (name, problem) in registry.problems.sorted(by: { $0.key < $1.key }) {
                printError("warning: skipped \(EscapedText.quoted(name)): \(EscapedText.oneLine(problem))")
            }
        case "inspect":
            guard args.positionals.count == 1 else { throw UsageError("experts inspect takes one expert name") }
            let e = try registry.entry(args.positionals[0])
            if json { print(entryJSON(e)); return }
            let adapter = try registry.acquire([e.name]).adapters[0]
            let c = e.summary.config
            print("name:        \(e.name)")
            print("directory:   \(e.directory.path)")
            print("sha256:      \(e.sha256)")
            print("r / alpha:   \(c.rank) / \(c.alpha)\(c.useRSLoRA ? " (rsLoRA: alpha/sqrt(r))" : "")")
            print("targets:     \(e.summary.targetKinds.map(\.rawValue).joined(separator: ", ")) in \(Set(adapter.modules.keys.map(\.layer)).count) layers")
            print("parameters:  \(e.summary.parameterCount) (\(e.summary.fileBytes) bytes on disk)")
            print("modules:")
            for site in adapter.modules.keys.sorted(by: { ($0.layer, $0.kind.rawValue) < ($1.layer, $1.kind.rawValue) }) {
                let m = adapter.modules[site]!
                print("  \(site): rank \(m.rank), scale \(m.scale)")
            }
        case "validate":
            if let path = args.string("path") {
                let s = try LoRAAdapter.inspect(directory: URL(fileURLWithPath: path), base: config)
                print(json ? "{\"ok\":true,\"modules\":\(s.moduleCount)}" : "ok: \(path) (\(s.moduleCount) modules, ranks \(s.ranks))")
                return
            }
            // Every expert by default (valid and invalid); named ones report their own error.
            let names = args.positionals.isEmpty
                ? (registry.list().map(\.name) + registry.problems.keys).sorted() : args.positionals
            var failed = 0
            for n in names {
                do {
                    _ = try registry.entry(n)
                    print(json ? "{\"name\":\(JSONText.string(n)),\"ok\":true}" : "ok: \(EscapedText.escaped(n))")
                } catch {
                    failed += 1
                    print(json ? "{\"name\":\(JSONText.string(n)),\"ok\":false,\"error\":\(JSONText.string("\(error)"))}"
                               : "invalid: \(EscapedText.escaped(n)): \(error)")
                }
            }
            if failed > 0 { throw SwitchyardError.invalidArgument("\(failed) invalid expert(s) in \(registry.directory.path)") }
        case "add":
            guard args.positionals.count == 1 else { throw UsageError("experts add takes one adapter directory") }
            let source = URL(fileURLWithPath: args.positionals[0])
            let name = args.string("name") ?? source.lastPathComponent
            let e = try registry.add(from: source, name: name)
            print(json ? entryJSON(e) : "added \(e.name) (sha256 \(e.sha256.prefix(16)), \(e.summary.parameterCount) parameters)")
        case "export":
            guard args.positionals.count == 1, let out = args.string("out") else { throw UsageError("experts export takes one expert name and --out DIR") }
            let lease = try registry.acquire([args.positionals[0]])
            try lease.adapters[0].write(to: URL(fileURLWithPath: out))
            print(json ? "{\"exported\":\(JSONText.string(out))}" : "wrote \(out)")
        case "remove":
            guard args.positionals.count == 1 else { throw UsageError("experts remove takes one expert name") }
            try registry.remove(args.positionals[0])
            print(json ? "{\"removed\":\(JSONText.string(args.positionals[0]))}" : "removed \(args.positionals[0])")
        default:
            throw UsageError("unknown experts subcommand \(EscapedText.quoted(sub)) (list, inspect, validate, add, remove, export)")
        }
    }

    static func entryJSON(_ e: ExpertRegistry.Entry) -> String {
        let s = e.summary
        return "{\"name\":\(JSONText.string(e.name)),\"ranks\":\(JSONText.array(s.ranks)),"
            + "\"targets\":[\(s.targetKinds.map { JSONText.string($0.rawValue) }.joined(separator: ","))],"
            + "\"modules\":\(s.moduleCount),\"parameters\":\(s.parameterCount),\"bytes\":\(s.fileBytes),"
            + "\"r\":\(s.config.rank),\"lora_alpha\":\(JSONText.number(s.config.alpha)),\"use_rslora\":\(s.config.useRSLoRA),"
            + "\"sha256\":\(JSONText.string(e.sha256))}"
    }
}
