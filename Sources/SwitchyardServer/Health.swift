import Foundation
import Switchyard

/// `grpc.health.v1.Health`: SERVING while the server runs (for the whole server, `""`, and for
/// `switchyard.v1.Inference`), NOT_SERVING once it shuts down. `Watch` streams every change.
/// Health calls need no token, so probes work with `--token` set.
final class HealthState: @unchecked Sendable {
    static let services: Set<String> = ["", "switchyard.v1.Inference"]
    enum Status: Int64 { case unknown = 0, serving = 1, notServing = 2, serviceUnknown = 3 }

    private let lock = NSLock()
    private var serving = false
    private var watchers: [(service: String, call: ServerCall)] = []

    func set(serving s: Bool) {
        let calls = lock.withLock { () -> [(String, ServerCall)] in
            serving = s
            return watchers
        }
        for (service, call) in calls { call.send(response(service).encode()) }
    }

    private func response(_ service: String) -> WireMessage {
        let status: Status =
            Self.services.contains(service) ? (lock.withLock { serving } ? .serving : .notServing) : .serviceUnknown
        return WireMessage(InferenceWire.healthCheckResponse, ["status": .int(status.rawValue)])
    }

    func check(_ request: WireMessage) throws -> WireMessage {
        let service = request.string("service")
        guard Self.services.contains(service) else {
            throw GRPCStatus(.notFound, "service: unknown service '\(service)'")
        }
        return response(service)
    }

    func watch(_ request: WireMessage, call: ServerCall) throws {
        let service = request.string("service")
        lock.withLock { watchers.append((service, call)) }
        call.onClose { [weak self] _ in
            self?.lock.withLock { self?.watchers.removeAll { $0.call === call } }
        }
        call.send(response(service).encode())
    }

    /// Ends every Watch stream (at shutdown, after NOT_SERVING was sent).
    func finishWatchers() {
        let calls = lock.withLock { () -> [ServerCall] in
            defer { watchers = [] }
            return watchers.map(\.call)
        }
        for c in calls { c.finish(GRPCStatus(.unavailable, "server shutting down")) }
    }
}
