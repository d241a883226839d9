import Foundation
import Switchyard

/// The Switchyard gRPC server: `switchyard.v1.Inference` and `grpc.health.v1.Health` on the gRPC
/// C core, over one `Engine` that batches every running request together (continuous batching),
/// each with its own routing (base model, expert mix, a held or inline router).
///
/// Thread safety: RPC handlers run concurrently on a work queue; the engine runs on its own
/// thread; the model is never mutated while serving; the registry, router table and counters are
/// lock-protected. Starts serving in `init`; `shutdown` stops it.
public final class InferenceServer: @unchecked Sendable {
    /// The base model every request runs on (shared, never mutated while serving).
    public let model: LlamaModel
    /// nil: a token-only server (prompts as `token_ids`, events without text; benches).
    public let tokenizer: Tokenizer?
    /// The experts requests can name; `AddExpert`/`RemoveExpert` change it while serving.
    public let registry: ExpertRegistry
    /// The options the server was started with (fixed for its lifetime).
    public let options: ServerOptions
    /// Renders `messages` requests (nil: the model has none; such requests are refused).
    public let chatTemplate: ChatTemplate?
    /// What `Info.model` reports (the model's path).
    public let modelDescription: String
    /// The port the server listens on.
    public private(set) var port = 0
    /// This replica's id, sent as `x-switchyard-replica` and in `Info`: `options.replicaID`, else
    /// `host:port` once listening.
    public private(set) var replicaID = ""

    /// The server version `Info` reports.
    public static let version = "0.5.0"

    let loop: EngineLoop
    let routers = RouterTable()
    let counters = ServerCounters()
    let health = HealthState()
    let log: RequestLog
    private var grpc: GRPCServer?
    private let shutdownLock = NSLock()
    private var isShutDown = false

    /// Loads nothing itself: give it a loaded model, its tokenizer, a registry over the same base
    /// and the routers to hold (bound, with their leases). Binds `options.listen` and serves.
    public init(
        model: LlamaModel, tokenizer: Tokenizer?, registry: ExpertRegistry, routers: [(BoundRouter, ExpertLease)] = [],
        options: ServerOptions = ServerOptions(), modelDescription: String = "", chatTemplate: ChatTemplate? = nil
    ) throws {
        self.chatTemplate = chatTemplate
        self.model = model
        self.tokenizer = tokenizer
        self.registry = registry
        self.options = options
        self.modelDescription = modelDescription
        log = RequestLog(format: options.logFormat)
        for (router, lease) in routers { try self.routers.add(router, lease: lease) }
        loop = EngineLoop(
            engine: Engine(
                model: model, options: .init(maxBatch: options.maxBatch, prefillChunk: options.prefillChunk)),
            maxQueue: options.maxQueue)
        let replica = UncheckedBox<String>("")
        var handlers: [String: GRPCServer.Handler] = [:]
        func unary(
            _ name: String, _ type: WireType,
            _ body: @escaping @Sendable (InferenceServer, WireMessage, ServerCall) throws -> WireMessage
        ) {
            handlers[InferenceWire.method(name)] = { [weak self] call, bytes in
                guard let self else { return call.finish(GRPCStatus(.unavailable, "server stopped")) }
                do {
                    let request = try Self.decode(type, bytes, method: name)
                    call.reply(try body(self, request, call).encode())
                } catch {
                    call.finish(Self.status(error))
                }
            }
        }
        func stream(
            _ name: String, _ type: WireType,
            _ body: @escaping @Sendable (InferenceServer, WireMessage, ServerCall) throws -> Void
        ) {
            handlers[InferenceWire.method(name)] = { [weak self] call, bytes in
                guard let self else { return call.finish(GRPCStatus(.unavailable, "server stopped")) }
                do { try body(self, try Self.decode(type, bytes, method: name), call) } catch {
                    call.finish(Self.status(error))
                }
            }
        }
        stream("Generate", InferenceWire.generateRequest) { s, m, c in try s.generate(m, call: c) }
        unary("Score", InferenceWire.scoreRequest) { s, m, _ in try s.score(m) }
        unary("ListExperts", InferenceWire.listExpertsRequest) { s, _, _ in s.listExperts() }
        unary("AddExpert", InferenceWire.addExpertRequest) { s, m, _ in try s.addExpert(m) }
        unary("RemoveExpert", InferenceWire.removeExpertRequest) { s, m, _ in try s.removeExpert(m) }
        unary("ListRouters", InferenceWire.listRoutersRequest) { s, _, _ in s.listRouters() }
        unary("AddRouter", InferenceWire.addRouterRequest) { s, m, _ in try s.addRouter(m) }
        stream("Compose", InferenceWire.composeRequest) { s, m, c in try s.compose(m, call: c) }
        unary("Info", InferenceWire.infoRequest) { s, _, _ in s.info() }
        unary("Check", InferenceWire.healthCheckRequest) { s, m, _ in try s.health.check(m) }
        handlers[InferenceWire.healthCheck] = handlers.removeValue(forKey: InferenceWire.method("Check"))
        stream("Watch", InferenceWire.healthCheckRequest) { s, m, c in try s.health.watch(m, call: c) }
        handlers[InferenceWire.healthWatch] = handlers.removeValue(forKey: InferenceWire.method("Watch"))

        let token = options.token
        let server = try GRPCServer(
            address: options.listen, maxMessageBytes: options.maxMessageBytes,
            responseMetadata: { [("x-switchyard-replica", replica.value)] }, handlers: handlers,
            gate: { call in
                guard let token, !call.method.hasPrefix("/grpc.health.v1.Health/") else { return nil }
                guard call.metadata("authorization") == "Bearer \(token)" else {
                    return GRPCStatus(
                        .unauthenticated, "\(call.method): missing or wrong 'authorization: Bearer <token>' metadata")
                }
                return nil
            })
        port = server.port
        let host = ProcessInfo.processInfo.hostName
        replicaID = options.replicaID ?? "\(host):\(port)"
        replica.value = replicaID
        grpc = server
        health.set(serving: true)
    }

    /// Stops accepting calls, cancels generations still running after the grace period, and
    /// releases the port. Idempotent.
    public func shutdown() {
        let first = shutdownLock.withLock { () -> Bool in
            defer { isShutDown = true }
            return !isShutDown
        }
        guard first else { return }
        health.set(serving: false)
        health.finishWatchers()
        let grace = options.shutdownGrace
        let deadline = Date().addingTimeInterval(grace)
        // In-flight generations get the grace period, then are cancelled; new ones are refused.
        while loop.state.running + loop.state.waiting > 0 && Date() < deadline { usleep(20_000) }
        loop.stop()
        grpc?.shutdown(grace: max(0.5, deadline.timeIntervalSinceNow))
        grpc = nil
        log.note("stopped")
    }

    deinit { shutdown() }

    /// `HOST:PORT` with the bound port (what `--listen …:0` resolved to).
    public var boundAddress: String { "\(Self.hostPart(options.listen)):\(port)" }

    static func hostPart(_ listen: String) -> String {
        guard let colon = listen.lastIndex(of: ":") else { return listen }
        return String(listen[..<colon])
    }

    // MARK: - Errors

    static func decode(_ type: WireType, _ bytes: [UInt8], method: String) throws -> WireMessage {
        do { return try WireMessage.decode(type, bytes) } catch {
            throw GRPCStatus(.invalidArgument, "\(method): request is \(error)")
        }
    }

    /// The gRPC status for an error thrown while handling a call.
    static func status(_ error: Error) -> GRPCStatus {
        switch error {
        case let s as GRPCStatus: return s
        case let e as SwitchyardError:
            if case .io = e { return GRPCStatus(.internal, e.description) }
            return GRPCStatus(.invalidArgument, e.description)
        case let e as RouterError: return GRPCStatus(.invalidArgument, e.description)
        default: return GRPCStatus(.internal, "\(error)")
        }
    }
}

/// A mutable value shared with `@Sendable` closures, lock-protected.
final class UncheckedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
