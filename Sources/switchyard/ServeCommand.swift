import Foundation
import Switchyard
import SwitchyardServer

/// `switchyard serve`: the gRPC inference server.
enum ServeCommand: Command {
    static let name = "serve"
    static let summary = "Serve the model, experts and routers over gRPC (continuous batching)"
    static let discussion = """
        Serves switchyard.v1.Inference (Generate, Score, ListExperts, AddExpert, RemoveExpert,
        ListRouters, AddRouter, Compose, Info) and grpc.health.v1.Health over gRPC. One engine batches
        every running request together, each with its own experts, router or the base model.
        Prints `switchyard serve: listening on HOST:PORT` on standard error when ready; SIGINT or
        SIGTERM stops it (running generations get --shutdown-grace seconds), exit status 0.
        """

    /// The defaults are `ServerOptions`' own.
    struct Options: ParsableArguments {
        private static let defaults = ServerOptions()

        @Option(
            placeholder: "HOST:PORT",
            help:
                "Address to bind (port 0: any free port). Only loopback by default: bind 0.0.0.0 deliberately, with --token."
        )
        var listen = defaults.listen
        @OptionGroup var model: ModelOptions
        @OptionGroup var registry: RegistryOptions
        @Option(
            placeholder: "DIR|none",
            help:
                "Hold every *.pb router in DIR (none: hold no routers). A held router pins its experts in memory (outside the LRU budget). Default: Models/routers when serving the embedded model."
        )
        var routers: String?
        @Option(placeholder: "FILE", help: "Hold this router too.")
        var router: [String]
        @Option(
            placeholder: "T",
            help:
                "Require `authorization: Bearer T` on every Inference call (health checks stay open for probes). Visible in the process list: prefer --token-file or $SWITCHYARD_TOKEN."
        )
        var token: String?
        @Option(placeholder: "FILE", help: "Read the token from FILE (surrounding whitespace trimmed).")
        var tokenFile: String?
        @Option(help: "Requests decoded together (1 disables batching).")
        var maxBatch = defaults.maxBatch
        @Option(help: "Requests waiting for a slot before RESOURCE_EXHAUSTED.")
        var maxQueue = defaults.maxQueue
        @Option(help: "Largest max_tokens a request may ask for.")
        var maxTokensLimit = defaults.maxTokensLimit
        @Option(help: "max_tokens when a request leaves it 0.")
        var defaultMaxTokens = defaults.defaultMaxTokens
        @Option(help: "Prompt tokens prefilled per step.")
        var prefillChunk = defaults.prefillChunk
        @Option(help: "Largest request/response message.")
        var maxMessageBytes = defaults.maxMessageBytes
        @Option(placeholder: "DIR", help: "AddExpert may read adapters under DIR (none by default).")
        var allowExpertDir: [String]
        @Option(help: "Expert weights kept in memory, LRU.")
        var expertCacheBytes = 1 << 30
        @Option(placeholder: "ID", help: "x-switchyard-replica response metadata. Default: hostname:port.")
        var replicaID: String?
        @Option(help: "Per-request log lines on standard error.")
        var logFormat = defaults.logFormat
        @Option(placeholder: "S", help: "Seconds running calls get at shutdown.")
        var shutdownGrace = Float(defaults.shutdownGrace)

        func validate() throws {
            for (name, v) in [
                ("max-batch", maxBatch), ("max-queue", maxQueue), ("max-tokens-limit", maxTokensLimit),
                ("default-max-tokens", defaultMaxTokens), ("prefill-chunk", prefillChunk),
                ("max-message-bytes", maxMessageBytes), ("expert-cache-bytes", expertCacheBytes)
            ] where v <= 0 {
                throw UsageError("--\(name) must be > 0, got \(v)")
            }
            guard shutdownGrace >= 0 else { throw UsageError("--shutdown-grace must be ≥ 0") }
            try PathChecks.hostPort(listen, option: "--listen")
            guard defaultMaxTokens <= maxTokensLimit else {
                throw UsageError(
                    "--default-max-tokens \(defaultMaxTokens) is above --max-tokens-limit \(maxTokensLimit)")
            }
            if let replicaID {
                // A gRPC metadata value: printable ASCII.
                guard !replicaID.isEmpty, replicaID.unicodeScalars.allSatisfy({ (0x20...0x7E).contains($0.value) })
                else {
                    throw UsageError(
                        "--replica-id must be non-empty printable ASCII, got \(EscapedText.quoted(replicaID))")
                }
            }
            guard token == nil || tokenFile == nil else { throw UsageError("give --token or --token-file, not both") }
        }
    }

    static func run(_ o: Options) throws {
        var options = ServerOptions()
        options.listen = o.listen
        options.maxBatch = o.maxBatch
        options.maxQueue = o.maxQueue
        options.maxTokensLimit = o.maxTokensLimit
        options.defaultMaxTokens = o.defaultMaxTokens
        options.prefillChunk = o.prefillChunk
        options.maxMessageBytes = o.maxMessageBytes
        if let file = o.tokenFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw UsageError("--token-file: cannot read \(file)")
            }
            options.token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            options.token = o.token ?? ProcessInfo.processInfo.environment["SWITCHYARD_TOKEN"]
        }
        if let t = options.token, t.isEmpty || t.contains(where: { $0.isNewline || $0 == " " }) {
            throw UsageError("the token is empty or contains spaces/newlines")
        }
        options.replicaID = o.replicaID
        if let missing = o.allowExpertDir.first(where: { !PathChecks.isDirectory($0) }) {
            throw UsageError("--allow-expert-dir: \(missing) is not a directory")
        }
        options.allowedExpertRoots = o.allowExpertDir.map { URL(fileURLWithPath: $0) }
        options.logFormat = o.logFormat
        options.shutdownGrace = Double(o.shutdownGrace)

        let host = options.listen.split(separator: ":").dropLast().joined(separator: ":")
        if options.token == nil, !["127.0.0.1", "localhost", "[::1]", "::1"].contains(host) && !host.hasPrefix("127.") {
            printError(
                "switchyard serve: warning: listening on \(options.listen) without --token: anyone who can reach it can generate, add and remove experts"
            )
        }
        let dir = try o.model.directory()
        let model = try o.model.load(dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let registry = try o.registry.open(model: model, create: true, budgetBytes: o.expertCacheBytes)
        for (name, problem) in registry.problems.sorted(by: { $0.key < $1.key }) {
            printError("switchyard serve: warning: expert '\(name)' not served: \(problem)")
        }
        var files: [URL] = o.router.map { URL(fileURLWithPath: $0) }
        let routersDir =
            o.routers == "none"
            ? nil
            : o.routers.map { URL(fileURLWithPath: $0) }
                ?? (o.model.model == nil ? ModelLocator.modelsRoot().appendingPathComponent("routers") : nil)
        if let routersDir {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: routersDir.path)) ?? []
            if o.routers != nil, names.isEmpty, !FileManager.default.fileExists(atPath: routersDir.path) {
                throw UsageError("--routers: no directory \(routersDir.path)")
            }
            files += names.filter { $0.hasSuffix(".pb") }.sorted().map { routersDir.appendingPathComponent($0) }
        }
        var routers: [(BoundRouter, ExpertLease)] = []
        for file in files {
            let spec = try RouterWire.read(file)
            do { routers.append(try BoundRouter.bind(spec, model: model, registry: registry)) } catch {
                throw SwitchyardError.invalidArgument("router \(file.path): \(error)")
            }
        }
        var chatTemplate: ChatTemplate? = nil
        do { chatTemplate = try ChatTemplate.load(model: dir) } catch {
            printError(
                "switchyard serve: warning: chat template not usable, `messages` requests will be refused: \(error)")
        }
        let server = try InferenceServer(
            model: model, tokenizer: tokenizer, registry: registry, routers: routers,
            options: options, modelDescription: dir.path, chatTemplate: chatTemplate)
        printError(
            "switchyard serve: listening on \(server.boundAddress) (replica \(server.replicaID); \(registry.list().count) experts; routers: \(routers.map { $0.0.spec.name }.joined(separator: ", ")); max batch \(options.maxBatch)\(options.token == nil ? "" : "; token required"))"
        )

        // SIGINT / SIGTERM: stop accepting, let running calls finish (or cancel them), exit 0.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let stop = DispatchSemaphore(value: 0)
        let sources = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { stop.signal() }
            s.resume()
            return s
        }
        stop.wait()
        printError("switchyard serve: shutting down")
        server.shutdown()
        sources.forEach { $0.cancel() }
    }
}
