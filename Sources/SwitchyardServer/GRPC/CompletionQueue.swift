import CGRPCShim
import Foundation

/// A gRPC completion queue and the thread that drains it. Every batch started on a call names a
/// handler; the thread runs the handler when the batch completes (`ok == false` when the call
/// died or the server is shutting down). Handlers run on this one thread, so they must not block.
final class CompletionQueue: @unchecked Sendable {
    let raw: OpaquePointer
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    /// The tag of a batch: the handler, kept alive (with whatever it captures) until completion.
    final class Tag {
        let handler: (Bool) -> Void
        init(_ handler: @escaping (Bool) -> Void) { self.handler = handler }
    }

    init(name: String) {
        sy_grpc_init()
        raw = sy_cq_create()
        let queue = UncheckedSendable(raw)
        let thread = Thread { [finished] in
            let raw = queue.value
            var tag: UnsafeMutableRawPointer? = nil
            var ok: Int32 = 0
            while true {
                let r = sy_cq_next(raw, -1, &tag, &ok)
                if r < 0 { break }
                if r == 1, let t = tag {
                    Unmanaged<Tag>.fromOpaque(t).takeRetainedValue().handler(ok != 0)
                }
            }
            finished.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// A tag for `handler`: retained until the completion comes out of the queue.
    static func tag(_ handler: @escaping (Bool) -> Void) -> UnsafeMutableRawPointer {
        Unmanaged.passRetained(Tag(handler)).toOpaque()
    }

    /// Releases a tag whose batch could not be started (it will never complete).
    static func dropTag(_ tag: UnsafeMutableRawPointer) {
        Unmanaged<Tag>.fromOpaque(tag).release()
    }

    /// Shuts the queue down and waits until the thread has drained it; then frees it.
    func shutdownAndWait() {
        sy_cq_shutdown(raw)
        finished.wait()
        sy_cq_destroy(raw)
    }
}

/// One batch of operations on a call (see CGRPCShim.h): built, started with a completion
/// handler, then read. Owns its C memory until it is released after completion.
final class Batch {
    let raw: OpaquePointer

    init() { raw = sy_op_new() }
    deinit { sy_op_free(raw) }

    func sendInitialMetadata(_ metadata: [(String, String)]) {
        sy_op_send_initial_metadata(raw)
        for (k, v) in metadata { sy_op_add_initial_metadata(raw, k, v) }
    }
    func sendMessage(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { sy_op_send_message(raw, $0.baseAddress, $0.count) }
    }
    func sendClose() { sy_op_send_close(raw) }
    func sendStatus(_ code: GRPCStatusCode, _ message: String) { sy_op_send_status(raw, code.rawValue, message) }
    func receiveInitialMetadata() { sy_op_recv_initial_metadata(raw) }
    func receiveMessage() { sy_op_recv_message(raw) }
    func receiveStatus() { sy_op_recv_status(raw) }
    func receiveClose() { sy_op_recv_close(raw) }

    /// Starts the batch; `done(batch, ok)` runs on the queue's thread. Returns false (and never
    /// calls `done`) when the core refuses the batch.
    @discardableResult
    func start(on call: OpaquePointer, _ done: @escaping (Batch, Bool) -> Void) -> Bool {
        let tag = CompletionQueue.tag { [self] ok in done(self, ok) }
        if sy_op_start(call, raw, tag) != 0 {
            CompletionQueue.dropTag(tag)
            return false
        }
        return true
    }

    var cancelled: Bool { sy_op_cancelled(raw) != 0 }

    /// The received message, or nil when the stream had ended.
    var message: [UInt8]? {
        guard sy_op_has_message(raw) != 0 else { return nil }
        let n = sy_op_message_length(raw)
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { sy_op_message_copy(raw, $0.baseAddress) }
        return out
    }

    var status: GRPCStatus {
        var n = 0
        let p = sy_op_status_details(raw, &n)
        return GRPCStatus(GRPCStatusCode(rawValue: sy_op_status(raw)) ?? .unknown, Self.text(p, n))
    }

    var initialMetadata: [(String, String)] {
        (0..<sy_op_initial_metadata_count(raw)).map { i in
            var kn = 0, vn = 0
            let k = sy_op_initial_metadata_key(raw, i, &kn), v = sy_op_initial_metadata_value(raw, i, &vn)
            return (Self.text(k, kn), Self.text(v, vn))
        }
    }

    static func text(_ p: UnsafePointer<CChar>?, _ n: Int) -> String {
        guard let p, n > 0 else { return "" }
        return p.withMemoryRebound(to: UInt8.self, capacity: n) {
            String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
        }
    }
}

/// Carries a C handle into a thread's closure; the C core's objects are thread-safe as used here.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
