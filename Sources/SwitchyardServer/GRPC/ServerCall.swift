import CGRPCShim
import Foundation

/// A call the server received: its method and request metadata, and the response side as a
/// queue. Server streaming allows one SEND_MESSAGE in flight per call, so `send` queues and a
/// send completion starts the next; `finish` sends the status after the queue drains (in the
/// same batch as the last message). Thread-safe: any thread may send, finish or cancel.
///
/// The C call is released in `deinit`, after the last batch holding this object has completed.
final class ServerCall: @unchecked Sendable {
    let raw: OpaquePointer
    /// `/package.Service/Method`.
    let method: String
    /// Request metadata (lower-case keys).
    let metadata: [(String, String)]
    /// Milliseconds left until the client's deadline when the call arrived (nil: none).
    let deadlineMilliseconds: Int64?

    private let lock = NSLock()
    private var responseMetadata: [(String, String)]
    private var initialSent = false
    private var queue: [[UInt8]] = []
    private var inFlight = false
    private var finalStatus: GRPCStatus?
    private var statusSent = false
    private var dead = false
    private var closed = false
    private var cancelledFlag = false
    private var onClose: [(Bool) -> Void] = []

    /// Shared with the server: once it is shut down, no batch may start (its completion queue
    /// is gone); sends and finishes are dropped instead.
    final class Liveness: @unchecked Sendable {
        private let lock = NSLock()
        private var alive = true
        var isAlive: Bool { lock.withLock { alive } }
        func end() { lock.withLock { alive = false } }
    }
    private let liveness: Liveness

    init(raw: OpaquePointer, responseMetadata: [(String, String)], liveness: Liveness) {
        self.raw = raw
        self.liveness = liveness
        self.responseMetadata = responseMetadata
        var n = 0
        let m = sy_call_method(raw, &n)
        method = Batch.text(m, n)
        metadata = (0..<sy_call_metadata_count(raw)).map { i in
            var kn = 0, vn = 0
            let k = sy_call_metadata_key(raw, i, &kn), v = sy_call_metadata_value(raw, i, &vn)
            return (Batch.text(k, kn).lowercased(), Batch.text(v, vn))
        }
        let left = sy_call_deadline_remaining_ms(raw)
        deadlineMilliseconds = left < 0 ? nil : left
    }

    deinit { sy_call_destroy(raw) }

    /// The first value of request metadata `key` (lower case).
    func metadata(_ key: String) -> String? { metadata.first { $0.0 == key }?.1 }

    /// True once the client cancelled, the deadline passed or the connection dropped.
    var isCancelled: Bool { lock.withLock { cancelledFlag } }

    /// Posts RECV_CLOSE_ON_SERVER: it completes when the call ends; `cancelled` reports client
    /// cancellation, deadlines and lost connections. Call once, first.
    func watchClose() {
        let batch = Batch()
        batch.receiveClose()
        let started = batch.start(on: raw) { [self] b, _ in
            let handlers = lock.withLock { () -> [(Bool) -> Void] in
                closed = true
                cancelledFlag = b.cancelled
                if b.cancelled { dead = true; queue.removeAll() }
                defer { onClose = [] }
                return onClose
            }
            let cancelled = isCancelled
            handlers.forEach { $0(cancelled) }
        }
        if !started {
            lock.withLock {
                dead = true; closed = true; cancelledFlag = true
            }
        }
    }

    /// Runs `handler(cancelled)` when the call ends (at once if it already has).
    func onClose(_ handler: @escaping (Bool) -> Void) {
        let now = lock.withLock { () -> Bool? in
            if closed { return cancelledFlag }
            onClose.append(handler)
            return nil
        }
        if let now { handler(now) }
    }

    /// Reads the one request message (nil when the client sent none or the call died).
    func receiveMessage(_ done: @escaping ([UInt8]?) -> Void) {
        let batch = Batch()
        batch.receiveMessage()
        if !liveness.isAlive || !batch.start(on: raw, { b, ok in done(ok ? b.message : nil) }) { done(nil) }
    }

    /// Adds response initial metadata (before the first send).
    func addResponseMetadata(_ key: String, _ value: String) {
        lock.withLock { if !initialSent { responseMetadata.append((key, value)) } }
    }

    /// Queues one response message.
    func send(_ message: [UInt8]) {
        lock.withLock {
            guard !dead, finalStatus == nil else { return }
            queue.append(message)
        }
        pump()
    }

    /// Sends the final status once queued messages are out. Later sends and finishes are ignored.
    func finish(_ status: GRPCStatus = GRPCStatus(.ok, "")) {
        lock.withLock {
            guard finalStatus == nil else { return }
            finalStatus = status
        }
        pump()
    }

    /// Unary reply: one message and OK.
    func reply(_ message: [UInt8]) {
        send(message)
        finish()
    }

    /// Cancels the call (e.g. at shutdown).
    func cancel() { sy_call_cancel(raw) }

    private func pump() {
        let batch = Batch()
        let go = lock.withLock { () -> Bool in
            guard !inFlight, !dead, !statusSent, liveness.isAlive else { return false }
            var any = false
            if !initialSent {
                batch.sendInitialMetadata(responseMetadata)
                initialSent = true
                any = true
            }
            if !queue.isEmpty {
                batch.sendMessage(queue.removeFirst())
                any = true
            }
            if queue.isEmpty, let s = finalStatus {
                batch.sendStatus(s.code, s.message)
                statusSent = true
                any = true
            }
            if any { inFlight = true }
            return any
        }
        guard go else { return }
        let started = batch.start(on: raw) { [self] _, ok in
            lock.withLock {
                inFlight = false
                if !ok { dead = true; queue.removeAll() }
            }
            pump()
        }
        if !started {
            lock.withLock {
                inFlight = false; dead = true; queue.removeAll()
            }
        }
    }
}
