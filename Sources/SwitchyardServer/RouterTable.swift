import Foundation
import Switchyard

/// The routers a server holds, by their `RouterSpec` name, each with the lease that pins its
/// experts. Thread-safe.
final class RouterTable: @unchecked Sendable {
    private let lock = NSLock()
    private var routers: [String: (router: BoundRouter, lease: ExpertLease)] = [:]

    func add(_ router: BoundRouter, lease: ExpertLease) throws {
        try lock.withLock {
            guard routers[router.spec.name] == nil else {
                throw GRPCStatus(.alreadyExists, "router_spec: a router named '\(router.spec.name)' is already held")
            }
            routers[router.spec.name] = (router, lease)
        }
    }

    func router(_ name: String) -> BoundRouter? { lock.withLock { routers[name]?.router } }

    var names: [String] { lock.withLock { routers.keys.sorted() } }

    var all: [BoundRouter] { lock.withLock { routers.keys.sorted().map { routers[$0]!.router } } }
}

/// Request and token counters since start, per routing target too. Thread-safe.
final class ServerCounters: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var requests: UInt64 = 0
    private(set) var tokens: UInt64 = 0
    private(set) var rejected: UInt64 = 0
    private(set) var cancelled: UInt64 = 0
    private(set) var failed: UInt64 = 0
    private var perTarget: [String: (requests: UInt64, tokens: UInt64)] = [:]

    func started(targets: [String]) {
        lock.withLock {
            requests += 1
            for t in Set(targets) { perTarget[t, default: (0, 0)].requests += 1 }
        }
    }

    func generated(_ n: Int, targets: [String]) {
        lock.withLock {
            tokens += UInt64(n)
            for t in Set(targets) { perTarget[t, default: (0, 0)].tokens += UInt64(n) }
        }
    }

    func count(rejected r: Bool = false, cancelled c: Bool = false, failed f: Bool = false) {
        lock.withLock {
            if r { rejected += 1 }
            if c { cancelled += 1 }
            if f { failed += 1 }
        }
    }

    var snapshot:
        (
            requests: UInt64, tokens: UInt64, rejected: UInt64, cancelled: UInt64, failed: UInt64,
            perTarget: [(String, UInt64, UInt64)]
        )
    {
        lock.withLock {
            (
                requests, tokens, rejected, cancelled, failed,
                perTarget.keys.sorted().map { ($0, perTarget[$0]!.requests, perTarget[$0]!.tokens) }
            )
        }
    }
}
