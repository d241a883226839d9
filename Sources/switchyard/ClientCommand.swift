import Foundation
import Switchyard
import SwitchyardServer

/// `switchyard client`: talks to a running `switchyard serve` and prints like the local commands.
enum ClientCommand: CommandGroup {
    static let name = "client"
    static let summary = "Call a running switchyard server (generate, experts, routers, compose, info, health)"
    static let discussion = "gRPC errors print `error: CODE: message` and exit 1."
    static var subcommands: [any CommandEntry.Type] {
        [
            ClientGenerate.self, ClientExperts.self, ClientRouters.self, ClientCompose.self, ClientInfo.self,
            ClientHealth.self
        ]
    }

    /// `--server`, `--token`, `--timeout`: every client subcommand's connection.
    struct Connection: ParsableArguments {
        @Option(placeholder: "HOST:PORT", help: "The server. Default: $SWITCHYARD_SERVER, else 127.0.0.1:50051.")
        var server: String?
        @Option(placeholder: "T", help: "Sent as `authorization: Bearer T`. Default: $SWITCHYARD_TOKEN.")
        var token: String?
        @Option(placeholder: "S", help: "Deadline for the call in seconds. Default: none.")
        var timeout: Float?

        func validate() throws {
            if let timeout {
                guard timeout > 0 else { throw UsageError("--timeout must be > 0 seconds, got \(timeout)") }
            }
            let env = ProcessInfo.processInfo.environment["SWITCHYARD_SERVER"]
            let (target, source) = server.map { ($0, "--server") } ?? (env, "$SWITCHYARD_SERVER")
            if let target { try PathChecks.hostPort(target, option: source, target: true) }
        }

        func client() -> SwitchyardClient {
            let env = ProcessInfo.processInfo.environment
            return SwitchyardClient(
                target: server ?? env["SWITCHYARD_SERVER"] ?? "127.0.0.1:50051",
                token: token ?? env["SWITCHYARD_TOKEN"], timeout: timeout.map(Double.init))
        }
    }

    /// Runs an async call to completion from the synchronous CLI, rethrowing its error.
    static func blocking(_ body: @escaping @Sendable () async throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = UncheckedResult()
        Task {
            do { try await body() } catch { outcome.set(error) }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
    }
}

enum ClientGenerate: Command {
    static let name = "generate"
    static let summary = "Stream a generation to standard output"
    static let discussion = """
        Streams the generation to standard output (json: one object at the end, like
        `switchyard generate --format json`, with finish_reason and replica).
        """

    struct Options: ParsableArguments {
        @Argument(help: "The prompt text.")
        var prompt: String
        @Option(help: "Apply this expert (weight 1 by default; comma-separated lists work too).")
        var expert: [WeightedExperts]
        @Option(placeholder: "NAME", help: "Route with this router held by the server.")
        var router: String?
        @OptionGroup var sampling: SamplingOptions
        @Option(placeholder: "STR", help: "Stop when the text contains STR.")
        var stop: [String]
        @Flag(help: "Print each token's routing decisions on standard error.")
        var trace: Bool
        @OptionGroup var chat: ChatOptions
        @OptionGroup var output: FormatOption
        @OptionGroup var connection: ClientCommand.Connection
    }

    struct JSONOutput: Encodable {
        var ids: [Int]
        var text: String
        var finishReason: String
        var replica: String

        enum CodingKeys: String, CodingKey {
            case ids, text, replica, finishReason = "finish_reason"
        }
    }

    static func run(_ options: Options) throws {
        let json = options.output.json
        var request = GenerateRequest(prompt: options.chat.chat ? "" : options.prompt)
        if options.chat.chat { request.messages = options.chat.messages(options.prompt).map { ($0.role, $0.content) } }
        request.experts = options.expert.flatMap(\.entries)
        request.router = options.router ?? ""
        request.maxTokens = options.sampling.maxTokens
        request.sampling = options.sampling.parameters
        request.stop = options.stop
        request.trace = options.trace
        request.ignoreEOS = options.sampling.noStop
        let client = options.connection.client()
        try ClientCommand.blocking { [request] in
            var ids: [Int] = []
            var text = ""
            for try await e in client.generate(request) {
                text += e.text
                if let t = e.tokenID { ids.append(t) }
                if !json { writeOut(e.text) }
                if request.trace, !json, e.tokenID != nil {
                    let mixes = e.routing.map { d in
                        (d.layer.map { "L\($0)" } ?? "all") + " "
                            + d.experts.map { "\($0.name)=\(String(format: "%.2f", $0.weight))" }.joined(separator: ",")
                    }
                    printError("[token \(e.index)] \(mixes.joined(separator: "; "))")
                }
                if let reason = e.finishReason {
                    if json {
                        try JSONOutput(ids: ids, text: text, finishReason: reason, replica: e.replica ?? "").printJSON()
                    } else {
                        writeOut("\n")
                        printError(
                            String(
                                format:
                                    "[%@: %d prompt + %d generated tokens, first token %.1f ms, total %.1f ms, replica %@]",
                                reason, e.promptTokens, e.generatedTokens, e.timeToFirstTokenMilliseconds,
                                e.totalMilliseconds, e.replica ?? "?"))
                    }
                }
            }
        }
    }
}

enum ClientExperts: Command {
    static let name = "experts"
    static let summary = "The server's experts: list (default), add NAME --path DIR, remove NAME"

    struct Options: ParsableArguments {
        @Argument(help: "list, add NAME or remove NAME.")
        var action: [String]
        @Option(
            placeholder: "DIR", help: "add: the adapter directory on the server (under one of its --allow-expert-dir).")
        var path: String?
        @OptionGroup var output: FormatOption
        @OptionGroup var connection: ClientCommand.Connection
    }

    struct Listed: Encodable {
        var name: String
        var sha256: String
        var rank: UInt64
    }

    static func run(_ options: Options) throws {
        let client = options.connection.client()
        let json = options.output.json
        let words = options.action
        switch words.first ?? "list" {
        case "list":
            guard words.count <= 1 else { throw UsageError("client experts list takes no name") }
            try ClientCommand.blocking {
                let experts = try await client.listExperts()
                if json {
                    try experts.map {
                        Listed(name: $0.string("name"), sha256: $0.string("sha256"), rank: $0.uint("rank"))
                    }.printJSON()
                } else {
                    for e in experts {
                        print(
                            "\(e.string("name"))\trank \(e.uint("rank"))\t\(e.strings("target_modules").joined(separator: ","))\t\(e.string("sha256").prefix(12))"
                        )
                    }
                }
            }
        case "add":
            guard words.count == 2, let path = options.path else {
                throw UsageError("client experts add NAME --path DIR")
            }
            try ClientCommand.blocking {
                let r = try await client.addExpert(name: words[1], path: path)
                print("added \(r.message("expert")?.string("name") ?? words[1])")
            }
        case "remove":
            guard words.count == 2 else { throw UsageError("client experts remove NAME") }
            try ClientCommand.blocking {
                try await client.removeExpert(name: words[1])
                print("removed \(words[1])")
            }
        case let other:
            throw UsageError("client experts: unknown action \(EscapedText.quoted(other)) (list, add, remove)")
        }
    }
}

enum ClientRouters: Command {
    static let name = "routers"
    static let summary = "The routers the server holds"

    struct Options: ParsableArguments {
        @OptionGroup var output: FormatOption
        @OptionGroup var connection: ClientCommand.Connection
    }

    struct Listed: Encodable {
        var name: String
        var granularity: String
    }

    static func run(_ options: Options) throws {
        let client = options.connection.client()
        let json = options.output.json
        try ClientCommand.blocking {
            let routers = try await client.listRouters()
            if json {
                try routers.map { Listed(name: $0.string("name"), granularity: $0.string("granularity")) }.printJSON()
            } else {
                for r in routers {
                    print(
                        "\(r.string("name"))\t\(r.string("granularity"))\t\(r.strings("experts").joined(separator: ","))"
                    )
                }
            }
        }
    }
}

enum ClientInfo: Command {
    static let name = "info"
    static let summary = "Model, limits, counters (JSON)"

    struct Options: ParsableArguments {
        @OptionGroup var connection: ClientCommand.Connection
    }

    static func run(_ options: Options) throws {
        let client = options.connection.client()
        try ClientCommand.blocking { print(ClientCommand.describe(try await client.info())) }
    }
}

enum ClientHealth: Command {
    static let name = "health"
    static let summary = "Exit 0 when SERVING"

    struct Options: ParsableArguments {
        @Option(placeholder: "S", help: "The service to ask about. Default: the whole server.")
        var service = ""
        @OptionGroup var connection: ClientCommand.Connection
    }

    static func run(_ options: Options) throws {
        let client = options.connection.client()
        let service = options.service
        try ClientCommand.blocking {
            let status = try await client.health(service: service)
            print(status == 1 ? "SERVING" : status == 2 ? "NOT_SERVING" : "UNKNOWN(\(status))")
            if status != 1 { throw GRPCStatus(.unavailable, "not serving") }
        }
    }
}

enum ClientCompose: Command {
    static let name = "compose"
    static let summary = "LoraHub composition on the server"

    struct Options: ParsableArguments {
        @OptionGroup var fewShot: FewShotOptions
        @Option(placeholder: "NAME", help: "Name of the composed expert.")
        var out: String
        @Option(help: "Experts to compose. Default: the server's choice.")
        var experts: NameList?
        @Option(help: "Objective evaluations. Default: the server's (40).")
        var budget: Int?
        @Option(help: "cobyla or cmaes (see `switchyard compose --help`). Default: the server's (cobyla).")
        var optimizer: CompositionOptimizer?
        @Option(help: "lorahub or cat (see `switchyard compose --help`). Default: the server's.")
        var combination: CompositionCombination?
        @Option(
            name: "select",
            help: "exact-match or objective (see `switchyard compose --help`). Default: the server's (exact-match).")
        var selection: CompositionSelection?
        @Option(help: "CMA-ES seed.")
        var seed = 0
        @Option(help: "Weight of mean|w| in the objective. Default: the server's (0.05).")
        var l1: Float?
        @OptionGroup var connection: ClientCommand.Connection

        func validate() throws {
            if let l1, !(l1.isFinite && l1 >= 0) { throw UsageError("--l1 must be a finite number ≥ 0, found \(l1)") }
        }
    }

    static func run(_ options: Options) throws {
        let examples = Array(
            try options.fewShot.read().map {
                (prompt: $0.prompt, completion: $0.completion)
            })
        let client = options.connection.client()
        let (out, experts, budget) = (options.out, options.experts?.names ?? [], options.budget ?? 0)
        let (optimizer, seed, l1) = (
            options.optimizer?.rawValue ?? "", UInt64(truncatingIfNeeded: options.seed), options.l1 ?? 0
        )
        let combination = options.combination?.rawValue ?? "", selection = options.selection?.rawValue ?? ""
        try ClientCommand.blocking {
            for try await e in client.compose(
                name: out, examples: examples, experts: experts, budget: budget,
                seed: seed, optimizer: optimizer, l1: l1, combination: combination, selection: selection)
            {
                if let expert = e.message("expert") {
                    print(
                        String(
                            format: "composed objective %.4f after %d evaluations", e.double("best_loss"),
                            e.uint("evaluations")))
                    print(
                        "weights: "
                            + e.messages("weights").map {
                                "\($0.string("name"))=\(String(format: "%.3f", $0.double("weight")))"
                            }.joined(separator: ", "))
                    print("registered \(expert.string("name")) (sha256 \(expert.string("sha256").prefix(12)))")
                } else {
                    printError(
                        String(
                            format: "compose: %d evaluations, best %.4f", e.uint("evaluations"), e.double("best_loss")))
                }
            }
        }
    }
}

extension ClientCommand {
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
        return "{"
            + m.fields.keys.sorted().map { "\(JSONText.string($0)):\(value(m.fields[$0]!))" }.joined(separator: ",")
            + "}"
    }
}

/// The first error of an async run, handed back to the synchronous CLI.
final class UncheckedResult: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?
    func set(_ e: Error) { lock.withLock { if error == nil { error = e } } }
}
