import Foundation
import Switchyard
import SwitchyardServer

/// `switchyard serve`: the gRPC inference server.
enum ServeCommand: Subcommand {
    static let name = "serve"
    static let summary = "Serve the model, experts and routers over gRPC (continuous batching)"
    static let help = """
    USAGE: switchyard serve [options]

    Serves switchyard.v1.Inference (Generate, Score, ListExperts, AddExpert, RemoveExpert,
    ListRouters, AddRouter, Compose, Info) and grpc.health.v1.Health over gRPC. One engine batches
    every running request together, each with its own experts, router or the base model.
    Prints `switchyard serve: listening on HOST:PORT` on standard error when ready; SIGINT or
    SIGTERM stops it (running generations get --shutdown-grace seconds), exit status 0.

    OPTIONS:
      --listen HOST:PORT        Address to bind (default 127.0.0.1:50051; port 0: any free port).
                                Only loopback by default: bind 0.0.0.0 deliberately, with --token.
      --model DIR|FILE          Base model: a Hugging Face directory or a GGUF file (default:
                                the embedded model).
    \(ModelLocator.weightsHelp)
      --registry DIR            Expert registry (default: Models/experts).
      --routers DIR|none        Hold every *.pb router in DIR (default: Models/routers when
                                serving the embedded model; none: hold no routers). A held
                                router pins its experts in memory (outside the LRU budget).
      --router FILE             Hold this router too (repeatable).
      --token T                 Require `authorization: Bearer T` on every Inference call
                                (health checks stay open for probes). Visible in the process
                                list: prefer --token-file or $SWITCHYARD_TOKEN.
      --token-file FILE         Read the token from FILE (surrounding whitespace trimmed).
      --max-batch N             Requests decoded together (default 32; 1 disables batching).
      --max-queue N             Requests waiting for a slot before RESOURCE_EXHAUSTED (default 256).
      --max-tokens-limit N      Largest max_tokens a request may ask for (default 4096).
      --default-max-tokens N    max_tokens when a request leaves it 0 (default 64).
      --prefill-chunk N         Prompt tokens prefilled per step (default 256).
      --max-message-bytes N     Largest request/response message (default 4194304).
      --allow-expert-dir DIR    AddExpert may read adapters under DIR (repeatable; default none).
      --expert-cache-bytes N    Expert weights kept in memory, LRU (default 1073741824).
      --replica-id ID           x-switchyard-replica response metadata (default hostname:port).
      --log-format text|json|off  Per-request log lines on standard error (default text).
      --shutdown-grace S        Seconds running calls get at shutdown (default 10).
    """

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: ["listen", "model", "registry", "routers", "router", "token", "max-batch", "max-queue",
                                                      "max-tokens-limit", "default-max-tokens", "prefill-chunk", "max-message-bytes",
                                                      "allow-expert-dir", "replica-id", "log-format", "shutdown-grace", "token-file",
                                                      "expert-cache-bytes"])
        guard args.positionals.isEmpty else { throw UsageError("serve takes no positional arguments") }
        var options = ServerOptions()
        if let v = args.string("listen") { options.listen = v }
        func positive(_ name: String, _ keyPath: WritableKeyPath<ServerOptions, Int>) throws {
            guard let v = try args.int(name) else { return }
            guard v > 0 else { throw UsageError("--\(name) must be > 0") }
            options[keyPath: keyPath] = v
        }
        try positive("max-batch", \.maxBatch)
        try positive("max-queue", \.maxQueue)
        try positive("max-tokens-limit", \.maxTokensLimit)
        try positive("default-max-tokens", \.defaultMaxTokens)
        try positive("prefill-chunk", \.prefillChunk)
        try positive("max-message-bytes", \.maxMessageBytes)
        if let file = args.string("token-file") {
            guard args.string("token") == nil else { throw UsageError("give --token or --token-file, not both") }
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw UsageError("--token-file: cannot read \(file)") }
            options.token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            options.token = args.string("token") ?? ProcessInfo.processInfo.environment["SWITCHYARD_TOKEN"]
        }
        if let t = options.token, t.isEmpty || t.contains(where: { $0.isNewline || $0 == " " }) {
            throw UsageError("the token is empty or contains spaces/newlines")
        }
        options.replicaID = args.string("replica-id")
        options.allowedExpertRoots = (args.options["allow-expert-dir"] ?? []).map { URL(fileURLWithPath: $0) }
        if let f = args.string("log-format") {
            guard let v = ServerOptions.LogFormat(rawValue: f) else { throw UsageError("--log-format must be text, json or off") }
            options.logFormat = v
        }
        if let g = try args.float("shutdown-grace") {
            guard g >= 0 else { throw UsageError("--shutdown-grace must be ≥ 0") }
            options.shutdownGrace = Double(g)
        }

        let host = options.listen.split(separator: ":").dropLast().joined(separator: ":")
        if options.token == nil, !["127.0.0.1", "localhost", "[::1]", "::1"].contains(host) && !host.hasPrefix("127.") {
            printError("switchyard serve: warning: listening on \(options.listen) without --token: anyone who can reach it can generate, add and remove experts")
        }
        let dir = try ModelLocator.modelDirectory(args)
        let model = try ModelLocator.loadModel(args, path: dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let cacheBytes = try args.int("expert-cache-bytes") ?? (1 << 30)
        guard cacheBytes > 0 else { throw UsageError("--expert-cache-bytes must be > 0") }
        let registry = try ExpertRegistry(directory: ModelLocator.registryDirectory(args), base: model.config, budgetBytes: cacheBytes)
        for (name, problem) in registry.problems.sorted(by: { $0.key < $1.key }) {
            printError("switchyard serve: warning: expert '\(name)' not served: \(problem)")
        }
        var files: [URL] = (args.options["router"] ?? []).map { URL(fileURLWithPath: $0) }
        let routersDir = args.string("routers") == "none" ? nil : args.string("routers").map { URL(fileURLWithPath: $0) }
            ?? (args.string("model") == nil ? ModelLocator.modelsRoot().appendingPathComponent("routers") : nil)
        if let routersDir {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: routersDir.path)) ?? []
            if args.string("routers") != nil, names.isEmpty, !FileManager.default.fileExists(atPath: routersDir.path) {
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
            printError("switchyard serve: warning: chat template not usable, `messages` requests will be refused: \(error)")
        }
        let server = try InferenceServer(model: model, tokenizer: tokenizer, registry: registry, routers: routers,
                                         options: options, modelDescription: dir.path, chatTemplate: chatTemplate)
        printError("switchyard serve: listening on \(server.boundAddress) (replica \(server.replicaID); \(registry.list().count) experts; routers: \(routers.map { $0.0.spec.name }.joined(separator: ", ")); max batch \(options.maxBatch)\(options.token == nil ? "" : "; token required"))")

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
