import CGRPCShim
import Foundation
import Switchyard

/// A client connection (insecure HTTP/2 channel) with its own completion-queue thread. Unary and
/// server-streaming calls of any method, with request metadata and deadlines. Thread-safe.
public final class GRPCChannel: @unchecked Sendable {
    private let cq: CompletionQueue
    private let channel: OpaquePointer
    /// The server address the channel was made for, `host:port`.
    public let target: String

    /// `target` is `host:port`. `maxMessageBytes` caps messages both ways.
    public init(target: String, maxMessageBytes: Int = 64 << 20) {
        self.target = target
        cq = CompletionQueue(name: "switchyard.grpc.client")
        channel = sy_channel_create(target, Int32(clamping: maxMessageBytes), Int32(clamping: maxMessageBytes))
    }

    deinit {
        sy_channel_destroy(channel)
        cq.shutdownAndWait()
    }

    /// A C call, released when the last batch holding it completes.
    final class Call: @unchecked Sendable {
        let raw: OpaquePointer
        init?(_ channel: OpaquePointer, _ cq: CompletionQueue, method: String, timeout: Double?) {
            let ms = timeout.map { Int64(max(1, ($0 * 1000).rounded())) } ?? 0
            guard let raw = sy_channel_create_call(channel, cq.raw, method, ms) else { return nil }
            self.raw = raw
        }
        deinit { sy_call_destroy(raw) }
        func cancel() { sy_call_cancel(raw) }
    }

    private func makeCall(_ method: String, timeout: Double?) throws -> Call {
        guard let call = Call(channel, cq, method: method, timeout: timeout) else {
            throw GRPCStatus(.internal, "\(method): the gRPC core refused to create the call")
        }
        return call
    }

    /// One request, one response. Throws `GRPCStatus` for any non-OK status.
    public func unary(_ method: String, _ request: [UInt8], metadata: [(String, String)] = [], timeout: Double? = nil)
        async throws
        -> (response: [UInt8], initialMetadata: [(String, String)])
    {
        let call = try makeCall(method, timeout: timeout)
        let batch = Batch()
        batch.sendInitialMetadata(metadata)
        batch.sendMessage(request)
        batch.sendClose()
        batch.receiveInitialMetadata()
        batch.receiveMessage()
        batch.receiveStatus()
        return try await withCheckedThrowingContinuation { continuation in
            let started = batch.start(on: call.raw) { b, ok in
                _ = call  // keep the call alive until completion
                let status = b.status
                guard ok, status.code == .ok else {
                    continuation.resume(throwing: ok ? status : GRPCStatus(.unavailable, "\(method): call failed"))
                    return
                }
                guard let message = b.message else {
                    continuation.resume(
                        throwing: GRPCStatus(.internal, "\(method): OK status without a response message"))
                    return
                }
                continuation.resume(returning: (message, b.initialMetadata))
            }
            if !started { continuation.resume(throwing: GRPCStatus(.internal, "\(method): cannot start the call")) }
        }
    }

    /// One request, a stream of responses. The stream ends normally on OK and throws the
    /// `GRPCStatus` otherwise; cancelling the consuming task (or dropping the stream) cancels the
    /// call. `onMetadata` receives the server's initial metadata before the first message.
    public func serverStream(
        _ method: String, _ request: [UInt8], metadata: [(String, String)] = [], timeout: Double? = nil,
        onMetadata: (@Sendable ([(String, String)]) -> Void)? = nil
    ) -> AsyncThrowingStream<[UInt8], Error> {
        AsyncThrowingStream { continuation in
            let call: Call
            do { call = try makeCall(method, timeout: timeout) } catch {
                continuation.finish(throwing: error)
                return
            }
            let finished = UncheckedBox(false)
            continuation.onTermination = { _ in if !finished.value { call.cancel() } }
            func fail(_ message: String) {
                finished.value = true
                continuation.finish(throwing: GRPCStatus(.internal, "\(method): \(message)"))
            }
            func receiveStatus() {
                let b = Batch()
                b.receiveStatus()
                if !b.start(
                    on: call.raw,
                    { b, _ in
                        finished.value = true
                        let status = b.status
                        if status.code == .ok { continuation.finish() } else { continuation.finish(throwing: status) }
                    })
                {
                    fail("cannot receive the status")
                }
            }
            func receiveNext() {
                let b = Batch()
                b.receiveMessage()
                if !b.start(
                    on: call.raw,
                    { b, ok in
                        if ok, let m = b.message {
                            continuation.yield(m)
                            receiveNext()
                        } else {
                            receiveStatus()
                        }
                    })
                {
                    fail("cannot receive a message")
                }
            }
            let first = Batch()
            first.sendInitialMetadata(metadata)
            first.sendMessage(request)
            first.sendClose()
            first.receiveInitialMetadata()
            if !first.start(
                on: call.raw,
                { b, ok in
                    if ok { onMetadata?(b.initialMetadata) }
                    receiveNext()
                })
            {
                fail("cannot start the call")
            }
        }
    }
}
