import Foundation
import Switchyard

/// Runs one `Engine` on its own thread for concurrent callers (the server's RPC handlers): jobs
/// are submitted from any thread, admitted at the next step, and each job's events go to its
/// sink, called on the engine thread (sinks must not block; they may call `finish`/`cancel`).
///
/// Admission control: at most `maxQueue` jobs wait (submitted but not yet in the running batch);
/// beyond that `submit` throws RESOURCE_EXHAUSTED at once instead of queueing without bound.
final class EngineLoop: @unchecked Sendable {
    struct Job {
        var request: GenerationRequest
        /// Resolved routing, or nil with `router` set.
        var routing: RequestRouting
        var router: BoundRouter?
        var trace: RoutingTrace?
        /// Held until the job leaves the engine (expert leases).
        var keepAlive: AnyObject?
        /// Called on the engine thread with the job's ticket and each event.
        var sink: (Int, EngineEvent) -> Void
    }

    /// What the loop is doing, for Info and the soak test.
    struct Snapshot: Sendable, Equatable {
        var waiting = 0
        var running = 0
        var lastBatch = 0
        var steps: UInt64 = 0
    }

    private let engine: Engine
    private let maxQueue: Int
    private let maxBatch: Int
    private let condition = NSCondition()
    private var inbox: [(ticket: Int, job: Job)] = []
    private var endings: [(ticket: Int, reason: FinishReason)] = []
    private var tickets: [Int: Int] = [:]  // ticket → engine id (engine thread only)
    private var sinks: [Int: (ticket: Int, sink: (Int, EngineEvent) -> Void)] = [:]  // engine id → sink
    private var nextTicket = 1
    private var stopping = false
    private var stopped = false
    private var snapshot = Snapshot()
    private var thread: Thread?

    init(engine: Engine, maxQueue: Int) {
        self.engine = engine
        self.maxQueue = max(1, maxQueue)
        maxBatch = engine.options.maxBatch
        let thread = Thread { [self] in run() }
        thread.name = "switchyard.engine"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Checks a request against the model (clamping max tokens); throws INVALID_ARGUMENT.
    func validate(_ request: inout GenerationRequest) throws {
        do { try engine.validate(&request) } catch { throw GRPCStatus(.invalidArgument, "\(error)") }
    }

    /// Queues a job; returns its ticket. Throws RESOURCE_EXHAUSTED when the queue is full and
    /// UNAVAILABLE while shutting down.
    func submit(_ job: Job) throws -> Int {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw GRPCStatus(.unavailable, "the server is shutting down") }
        // Jobs that will find a free batch slot at the next step do not count as waiting.
        let waiting = inbox.count + snapshot.waiting - max(0, maxBatch - snapshot.running)
        guard waiting < maxQueue else {
            throw GRPCStatus(
                .resourceExhausted,
                "queue full: \(waiting) requests waiting for a batch slot (--max-queue \(maxQueue)); retry later")
        }
        let ticket = nextTicket
        nextTicket += 1
        inbox.append((ticket, job))
        condition.signal()
        return ticket
    }

    /// Cancels a job (client cancellation, deadline): it finishes with `.cancelled`.
    func cancel(_ ticket: Int) { finish(ticket, reason: .cancelled) }

    /// Ends a job at the next step with `reason`.
    func finish(_ ticket: Int, reason: FinishReason) {
        condition.lock()
        endings.append((ticket, reason))
        condition.signal()
        condition.unlock()
    }

    var state: Snapshot { condition.withLock { snapshot } }

    /// Cancels every job, waits for the engine to drain, and stops the thread.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while inbox.isEmpty && endings.isEmpty && !engine.hasWork && !stopping { condition.wait() }
            let jobs = inbox, ends = endings, stop = stopping
            inbox = []
            endings = []
            condition.unlock()

            for (ticket, job) in jobs {
                do {
                    let id: Int
                    if let router = job.router {
                        id = try engine.admit(job.request, router: router, trace: job.trace, keepAlive: job.keepAlive)
                    } else {
                        id = try engine.admit(
                            job.request, routing: job.routing, trace: job.trace, keepAlive: job.keepAlive)
                    }
                    tickets[ticket] = id
                    sinks[id] = (ticket, job.sink)
                } catch {
                    job.sink(ticket, EngineEvent(request: -1, kind: .failed("\(error)")))
                }
            }
            for (ticket, reason) in ends { if let id = tickets[ticket] { engine.finish(id, reason: reason) } }
            if stop { for id in sinks.keys { engine.cancel(id) } }

            let events = engine.hasWork ? engine.step() : []
            for e in events {
                guard let (ticket, sink) = sinks[e.request] else { continue }
                sink(ticket, e)
                switch e.kind {
                case .finished, .failed:
                    sinks[e.request] = nil
                    tickets[ticket] = nil
                case .token:
                    break
                }
            }
            condition.lock()
            snapshot.waiting = engine.waitingCount
            snapshot.running = engine.runningCount
            if !events.isEmpty {
                snapshot.steps += 1
                snapshot.lastBatch = engine.runningCount
            }
            if stop && !engine.hasWork && inbox.isEmpty {
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            condition.unlock()
        }
    }
}
