import CGRPCShim
import Foundation

/// A gRPC server on the C core: binds an address, accepts calls on one completion-queue thread,
/// reads each call's request message and hands `(call, request bytes)` to the handler registered
/// for its method on a concurrent work queue (handlers may block; the queue thread never does).
/// Every method here is unary-request (unary or server-streaming response). `responseMetadata`
/// is sent as every call's initial metadata.
final class GRPCServer: @unchecked Sendable {
    typealias Handler = @Sendable (ServerCall, [UInt8]) -> Void

    /// Decides whether a call may proceed (e.g. authentication); a status refuses it.
    typealias Gate = @Sendable (ServerCall) -> GRPCStatus?

    private let cq: CompletionQueue
    private let server: OpaquePointer
    private let handlers: [String: Handler]
    private let gate: Gate
    private let responseMetadata: @Sendable () -> [(String, String)]
    private let work = DispatchQueue(label: "switchyard.rpc", qos: .userInitiated, attributes: .concurrent)
    private let lock = NSLock()
    private var shuttingDown = false
    private let liveness = ServerCall.Liveness()
    /// The bound port.
    let port: Int

    /// Binds `address` (`host:port`, port 0 picks one). `maxMessageBytes` caps requests and
    /// responses (the core answers RESOURCE_EXHAUSTED over it). Throws when it cannot bind.
    init(
        address: String, maxMessageBytes: Int, responseMetadata: @escaping @Sendable () -> [(String, String)],
        handlers: [String: Handler],
        gate: @escaping Gate = { _ in nil }
    ) throws {
        try HostPort.check(address)
        cq = CompletionQueue(name: "switchyard.grpc.server")
        server = sy_server_create(cq.raw, Int32(clamping: maxMessageBytes), Int32(clamping: maxMessageBytes))
        let bound = sy_server_add_port(server, address)
        guard bound > 0 else {
            sy_server_shutdown(server, CompletionQueue.tag { _ in })
            sy_server_destroy(server)
            cq.shutdownAndWait()
            throw GRPCStatus(
                .unavailable, "cannot listen on \(address) (address in use, or not a HOST:PORT this machine has)")
        }
        port = Int(bound)
        self.handlers = handlers
        self.gate = gate
        self.responseMetadata = responseMetadata
        sy_server_start(server)
        // Several calls may arrive together; each accepted call posts a new request.
        for _ in 0..<4 { requestCall() }
    }

    /// Holds the C call between posting a request and its completion.
    private final class Pending: @unchecked Sendable {
        let lock = NSLock()
        var raw: OpaquePointer?
    }

    private func requestCall() {
        let pending = Pending()
        pending.lock.lock()
        defer { pending.lock.unlock() }
        let tag = CompletionQueue.tag { [self] ok in
            let raw = pending.lock.withLock { pending.raw }
            guard let raw else { return }
            guard ok else { sy_call_destroy(raw); return }
            if !lock.withLock({ shuttingDown }) { requestCall() }
            accept(ServerCall(raw: raw, responseMetadata: responseMetadata(), liveness: liveness))
        }
        guard let raw = sy_server_request_call(server, tag) else {
            CompletionQueue.dropTag(tag)
            return
        }
        pending.raw = raw
    }

    private func accept(_ call: ServerCall) {
        call.watchClose()
        guard let handler = handlers[call.method] else {
            call.finish(GRPCStatus(.unimplemented, "unknown method \(call.method)"))
            return
        }
        if let refused = gate(call) {
            call.finish(refused)
            return
        }
        call.receiveMessage { [work] bytes in
            guard let bytes else {
                call.finish(GRPCStatus(.invalidArgument, "\(call.method): no request message"))
                return
            }
            work.async { handler(call, bytes) }
        }
    }

    /// Stops accepting calls, gives running calls `grace` seconds to finish, cancels the rest,
    /// and frees the server. Call once.
    func shutdown(grace: TimeInterval) {
        lock.withLock { shuttingDown = true }
        let done = DispatchSemaphore(value: 0)
        sy_server_shutdown(server, CompletionQueue.tag { _ in done.signal() })
        if done.wait(timeout: .now() + grace) == .timedOut {
            sy_server_cancel_all(server)
            done.wait()
        }
        // Calls still held (a Compose running on the work queue) must not start batches on the
        // queue about to be destroyed.
        liveness.end()
        sy_server_destroy(server)
        cq.shutdownAndWait()
    }
}
