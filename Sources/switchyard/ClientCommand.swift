import Foundation
import Switchyard
import SwitchyardServer

/// `switchyard client`: talks to a running `switchyard serve` and prints like the local commands.
enum ClientCommand: Subcommand {
    static let name = "client"
    static let summary = "Call a running switchyard server (generate, experts, routers, compose, info, health)"
    static let help = """
    USAGE: switchyard client <generate|experts|routers|compose|info|health> --server HOST:PORT [options]

      generate [--expert NAME[=W]… | --router NAME] [--max-tokens N] [--temperature T] [--top-k K]
               [--top-p P] [--repetition-penalty R] [--seed S] [--stop STR]… [--trace] [--no-stop]
               [--chat [--system TEXT]] [--format text|json] "prompt"
                          Streams the generation to standard output (json: one object at the end,
                          like `switchyard generate --format json`).
      experts [list | add NAME --path DIR | remove NAME] [--format json]
      routers [--format json]
      compose --examples FILE.jsonl --out NAME [--experts a,b,…] [--budget N] [--shots N]
      info                Model, limits, counters (JSON).
      health [--service S]  Exit 0 when SERVING.

    OPTIONS (all):
      --server HOST:PORT  The server (default $SWITCHYARD_SERVER, else 127.0.0.1:50051).
      --token T           Sent as `authorization: Bearer T` (default $SWITCHYARD_TOKEN).
      --timeout S         Deadline for the call in seconds (default: none).

    gRPC errors print `error: CODE: message` and exit 1.
    """

    static func run(_ argv: [String]) throws {
        guard let sub = argv.first else { throw UsageError("client needs a subcommand: generate, experts, routers, compose, info, health") }
        let args = try ParsedArguments(Array(argv.dropFirst()), valued: Set(["server", "token", "timeout", "router", "max-tokens", "temperature", "top-k",
                                                                         "top-p", "repetition-penalty", "seed", "stop", "format", "path", "examples",
                                                                         "out", "experts", "budget", "shots", "service", "system"]).union(LegacyExpertOptions.valued),
                                       switches: ["trace", "no-stop", "chat"])
        let env = ProcessInfo.processInfo.environment
        let server = args.string("server") ?? env["SWITCHYARD_SERVER"] ?? "127.0.0.1:50051"
        let client = SwitchyardClient(target: server, token: args.string("token") ?? env["SWITCHYARD_TOKEN"],
                                      timeout: try args.float("timeout").map(Double.init))
        let json = try args.wantsJSON()
        let done = DispatchSemaphore(value: 0)
        let outcome = UncheckedResult()
        Task {
            do {
                switch sub {
                case "generate": try await generate(client, args, json: json)
                case "experts": try await experts(client, args, json: json)
                case "routers":
                    let routers = try await client.listRouters()
                    if json { print("[" + routers.map { "{\"name\":\(JSONText.string($0.string("name"))),\"granularity\":\(JSONText.string($0.string("granularity")))}" }.joined(separator: ",") + "]") }
                    else { for r in routers { print("\(r.string("name"))\t\(r.string("granularity"))\t\(r.strings("experts").joined(separator: ","))") } }
                case "compose": try await compose(client, args)
                case "info": print(describe(try await client.info()))
                case "health":
                    let status = try await client.health(service: args.string("service") ?? "")
                    print(status == 1 ? "SERVING" : status == 2 ? "NOT_SERVING" : "UNKNOWN(\(status))")
                    if status != 1 { outcome.set(GRPCStatus(.unavailable, "not serving")) }
                default: throw UsageError("unknown client subcommand '\(sub)' (generate, experts, routers, compose, info, health)")
                }
            } catch { outcome.set(error) }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
    }

    static func generate(_ client: SwitchyardClient, _ args: ParsedArguments, json: Bool) async throws {
        guard args.positionals.count == 1 else { throw UsageError("client generate expects exactly one prompt argument") }
        var request = GenerateRequest(prompt: args.flag("chat") ? "" : args.positionals[0])
        if args.flag("chat") {
            request.messages = (args.string("system").map { [("system", $0)] } ?? []) + [("user", args.positionals[0])]
        }
        request.experts = try LegacyExpertOptions.parse(args.options["expert"] ?? [])
        request.router = args.string("router") ?? ""
        request.maxTokens = try args.int("max-tokens") ?? 64
        request.sampling = SamplingParameters(temperature: try args.float("temperature") ?? 0, topK: try args.int("top-k") ?? 0,
                                              topP: try args.float("top-p") ?? 1, repetitionPenalty: try args.float("repetition-penalty") ?? 1,
                                              seed: UInt64(truncatingIfNeeded: try args.int("seed") ?? 0))
        request.stop = args.options["stop"] ?? []
        request.trace = args.flag("trace")
        request.ignoreEOS = args.flag("no-stop")
        var ids: [Int] = []
        var text = ""
        for try await e in client.generate(request) {
            text += e.text
            if let t = e.tokenID { ids.append(t) }
            if !json { writeOut(e.text) }
            if request.trace, !json, e.tokenID != nil {
                let mixes = e.routing.map { d in (d.layer.map { "L\($0)" } ?? "all") + " " + d.experts.map { "\($0.name)=\(String(format: "%.2f", $0.weight))" }.joined(separator: ",") }
                printError("[token \(e.index)] \(mixes.joined(separator: "; "))")
            }
            if let reason = e.finishReason {
                if json {
                    print("{\"ids\":\(JSONText.array(ids)),\"text\":\(JSONText.string(text)),\"finish_reason\":\(JSONText.string(reason)),\"replica\":\(JSONText.string(e.replica ?? ""))}")
                } else {
                    writeOut("\n")
                    printError(String(format: "[%@: %d prompt + %d generated tokens, first token %.1f ms, total %.1f ms, replica %@]",
                                      reason, e.promptTokens, e.generatedTokens, e.timeToFirstTokenMilliseconds, e.totalMilliseconds, e.replica ?? "?"))
                }
            }
        }
    }

    static func experts(_ client: SwitchyardClient, _ args: ParsedArguments, json: Bool) async throws {
        let action = args.positionals.first ?? "list"
        switch action {
        case "list":
            let experts = try await client.listExperts()
            if json {
                print("[" + experts.map { "{\"name\":\(JSONText.string($0.string("name"))),\"sha256\":\(JSONText.string($0.string("sha256"))),\"rank\":\($0.uint("rank"))}" }.joined(separator: ",") + "]")
            } else {
                for e in experts { print("\(e.string("name"))\trank \(e.uint("rank"))\t\(e.strings("target_modules").joined(separator: ","))\t\(e.string("sha256").prefix(12))") }
            }
        case "add":
            guard args.positionals.count == 2, let path = args.string("path") else { throw UsageError("client experts add NAME --path DIR") }
            let r = try await client.addExpert(name: args.positionals[1], path: path)
            print("added \(r.message("expert")?.string("name") ?? args.positionals[1])")
        case "remove":
            guard args.positionals.count == 2 else { throw UsageError("client experts remove NAME") }
            try await client.removeExpert(name: args.positionals[1])
            print("removed \(args.positionals[1])")
        default:
            throw UsageError("client experts: unknown action '\(action)' (list, add, remove)")
        }
    }

    static func compose(_ client: SwitchyardClient, _ args: ParsedArguments) async throws {
        guard let file = args.string("examples"), let out = args.string("out") else { throw UsageError("client compose needs --examples FILE and --out NAME") }
        let shots = max(1, try args.int("shots") ?? 5)
        let examples = try EvalCommand.readExamples(file).prefix(shots).map { (prompt: $0.prompt, completion: $0.completion) }
        let experts = args.string("experts")?.split(separator: ",").map(String.init) ?? []
        for try await e in client.compose(name: out, examples: Array(examples), experts: experts, budget: try args.int("budget") ?? 0) {
            if let expert = e.message("expert") {
                print(String(format: "composed objective %.4f after %d evaluations", e.double("best_loss"), e.uint("evaluations")))
                print("weights: " + e.messages("weights").map { "\($0.string("name"))=\(String(format: "%.3f", $0.double("weight")))" }.joined(separator: ", "))
                print("registered \(expert.string("name")) (sha256 \(expert.string("sha256").prefix(12)))")
            } else {
                printError(String(format: "compose: %d evaluations, best %.4f", e.uint("evaluations"), e.double("best_loss")))
            }
        }
    }

    /// A message as JSON (field names as in the .proto).
    static func describe(_ m: WireMessage) -> String {
        func value(_ v: WireMessage.Value) -> String {
            switch v {
            case let .int(i): return String(i)
            case let .uint(u): return String(u)
            case let .double(d): return JSONText.number(Float(d))
            case let .bool(b): return b ? "true" : "false"
            case let .string(s): return JSONText.string(s)
            case let .bytes(b): return String(b.count)
            case let .message(m): return describe(m)
            case let .list(l): return "[" + l.map(value).joined(separator: ",") + "]"
            }
        }
        return "{" + m.fields.keys.sorted().map { "\(JSONText.string($0)):\(value(m.fields[$0]!))" }.joined(separator: ",") + "}"
    }
}

/// The first error of an async run, handed back to the synchronous CLI.
final class UncheckedResult: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?
    func set(_ e: Error) { lock.withLock { if error == nil { error = e } } }
}
