import Foundation

/// The step-level request engine: the one way Switchyard runs requests (the server, and the CLI's
/// generate, eval, demo and route all go through it).
///
/// `admit` queues a request; every `step` is one forward pass over all running requests
/// together — new requests' prompt chunks and running decodes in the same batch (continuous
/// batching) — each row with its own routing (base model, a fixed expert mix, a sentence,
/// token or rank router). Requests join at the next step and leave as soon as they finish or are
/// cancelled, without stalling the others.
///
/// Not thread-safe: one thread owns an engine and calls `admit`, `cancel`, `finish` and `step`
/// (the server's engine loop; the CLI's main thread). The model is only read.
public final class Engine {
    /// Batching limits.
    public struct Options: Sendable {
        /// Most requests in one forward batch (the rest wait in FIFO order).
        public var maxBatch: Int
        /// Most prompt tokens prefilled in one step, over all requests: a long prompt is fed in
        /// chunks so running decodes keep producing a token every step.
        public var prefillChunk: Int

        /// At most `maxBatch` requests per step; prompts are prefilled `prefillChunk` tokens per step.
        public init(maxBatch: Int = 32, prefillChunk: Int = 256) {
            self.maxBatch = max(1, maxBatch)
            self.prefillChunk = max(1, prefillChunk)
        }
    }

    /// The model every request runs on.
    public let model: LlamaModel
    /// The batching limits.
    public let options: Options

    private final class Slot {
        let id: Int
        let request: GenerationRequest
        let admitted: UInt64
        var started: UInt64?
        var firstToken: UInt64?
        /// Set once the request starts: how its rows are adapted.
        var routing: RequestRouting?
        let router: BoundRouter?
        var names: [String]
        let trace: RoutingTrace?
        var traceCursor = 0
        let keepAlive: AnyObject?
        var cache: KVCache?
        var sampler: Sampler
        var context: [Int]
        var generated = 0
        /// Prompt tokens already in the cache.
        var fed = 0
        var nextInput: Int?
        /// Set by `cancel`/`finish`: leaves at the start of the next step.
        var pendingFinish: FinishReason?

        init(
            id: Int, request: GenerationRequest, routing: RequestRouting?, router: BoundRouter?, names: [String],
            trace: RoutingTrace?, keepAlive: AnyObject?
        ) {
            self.id = id
            self.request = request
            self.routing = routing
            self.router = router
            self.names = names
            self.trace = trace
            self.keepAlive = keepAlive
            admitted = DispatchTime.now().uptimeNanoseconds
            sampler = Sampler(request.sampling)
            context = request.promptTokens
        }
    }

    private var waiting: [Slot] = []
    private var running: [Slot] = []
    private var nextID = 1
    private let workspace = ForwardWorkspace()
    private let builder = StepDeltaBuilder()

    /// An engine with no requests.
    public init(model: LlamaModel, options: Options = Options()) {
        self.model = model
        self.options = options
    }

    /// Requests admitted but not yet in the running batch.
    public var waitingCount: Int { waiting.count }
    /// Requests in the running batch.
    public var runningCount: Int { running.count }
    /// True while any request is waiting or running.
    public var hasWork: Bool { !waiting.isEmpty || !running.isEmpty }

    /// Admits a request with a resolved routing (base, a fixed mix, a router's per-request delta).
    /// `keepAlive` (e.g. an `ExpertLease`) is held until the request leaves the engine.
    /// Throws `SwitchyardError.invalidArgument` naming the bad field; nothing is queued then.
    @discardableResult
    public func admit(
        _ request: GenerationRequest, routing: RequestRouting = .base, trace: RoutingTrace? = nil,
        keepAlive: AnyObject? = nil
    ) throws -> Int {
        let names: [String]
        switch routing {
        case let .fixed(mix, experts):
            try Self.checkMix(mix, experts: experts)
            names = experts.map(\.name)
        default: names = []
        }
        return try enqueue(request, routing: routing, router: nil, names: names, trace: trace, keepAlive: keepAlive)
    }

    /// Admits a request routed by `router`. A sentence router decides when the request starts
    /// (in the engine's step, not here); token and rank routers route inside every forward.
    @discardableResult
    public func admit(
        _ request: GenerationRequest, router: BoundRouter, trace: RoutingTrace? = nil,
        keepAlive: AnyObject? = nil
    ) throws -> Int {
        let names =
            router.spec.granularity == .rank
            ? [] : router.experts.map(\.name)
        return try enqueue(request, routing: nil, router: router, names: names, trace: trace, keepAlive: keepAlive)
    }

    private func enqueue(
        _ request: GenerationRequest, routing: RequestRouting?, router: BoundRouter?, names: [String],
        trace: RoutingTrace?, keepAlive: AnyObject?
    ) throws -> Int {
        var request = request
        try validate(&request)
        let slot = Slot(
            id: nextID, request: request, routing: routing, router: router, names: names, trace: trace,
            keepAlive: keepAlive)
        nextID += 1
        waiting.append(slot)
        return slot.id
    }

    /// Checks a fixed mix: every entry names one of `experts`, and its weight times each module's
    /// scale is finite (`--expert x=1e38` overflows to infinity and would poison every logit).
    public static func checkMix(_ mix: ExpertMix, experts: [LoRAAdapter]) throws {
        for e in mix.entries {
            guard experts.indices.contains(e.expert) else {
                throw SwitchyardError.invalidArgument(
                    "experts: mix entry \(e.expert) is not one of the \(experts.count) experts")
            }
            let adapter = experts[e.expert]
            let name = EscapedText.quoted(adapter.name)
            guard e.weight.isFinite else {
                throw SwitchyardError.invalidArgument("experts: weight \(e.weight) of \(name) is not a finite number")
            }
            let largest = adapter.modules.values.map { abs($0.scale) }.max() ?? 0
            guard (e.weight * largest).isFinite else {
                throw SwitchyardError.invalidArgument(
                    "experts: weight \(e.weight) of \(name) times its scale \(largest) is not a finite number")
            }
        }
    }

    /// Checks a request against the model; clamps `maxNewTokens` to the context left.
    public func validate(_ r: inout GenerationRequest) throws {
        try r.sampling.validate()
        let limit = model.config.maxPositionEmbeddings, vocab = model.config.vocabSize
        guard !r.promptTokens.isEmpty else { throw SwitchyardError.invalidArgument("prompt: empty (no tokens)") }
        guard r.maxNewTokens >= 0 else { throw SwitchyardError.invalidArgument("max_tokens: must be ≥ 0") }
        if let bad = r.promptTokens.first(where: { $0 < 0 || $0 >= vocab }) {
            throw SwitchyardError.invalidArgument("token_ids: token id \(bad) is outside the vocabulary (0..<\(vocab))")
        }
        guard r.promptTokens.count < limit else {
            throw SwitchyardError.invalidArgument(
                "prompt: \(r.promptTokens.count) tokens; the model's context (max_position_embeddings) is \(limit)")
        }
        // Generation stops at the end of the context rather than failing there.
        r.maxNewTokens = min(r.maxNewTokens, limit - r.promptTokens.count)
    }

    /// Cancels a request: it leaves at the next step with `FinishReason.cancelled`. Unknown or
    /// finished ids are ignored.
    public func cancel(_ id: Int) { finish(id, reason: .cancelled) }

    /// Ends a request at the next step with `reason` (e.g. `.stop` when the caller matched a
    /// stop string). The first reason given wins.
    public func finish(_ id: Int, reason: FinishReason) {
        if let s = running.first(where: { $0.id == id }) ?? waiting.first(where: { $0.id == id }),
            s.pendingFinish == nil
        {
            s.pendingFinish = reason
        }
    }

    /// Runs one forward pass over the running requests (admitting waiting ones first) and returns
    /// what happened to each: new tokens, finished and failed requests. Returns no events when
    /// there is nothing to do.
    public func step() -> [EngineEvent] {
        var events: [EngineEvent] = []
        // Requests ended by the caller leave first, whether running or still waiting.
        for s in running + waiting where s.pendingFinish != nil {
            events.append(finished(s, s.pendingFinish!))
        }
        running.removeAll { $0.pendingFinish != nil }
        waiting.removeAll { $0.pendingFinish != nil }
        // Admit waiting requests into free batch slots, resolving their routing.
        while running.count < options.maxBatch, !waiting.isEmpty {
            let s = waiting.removeFirst()
            do {
                try start(s)
                if s.request.maxNewTokens == 0 {
                    events.append(finished(s, .length))
                    continue
                }
                running.append(s)
            } catch {
                events.append(EngineEvent(request: s.id, kind: .failed("\(error)")))
            }
        }
        // This step's batch: one token per decoding request, prompt chunks within the budget.
        var budget = options.prefillChunk
        var batch: [(slot: Slot, tokens: [Int])] = []
        for s in running {
            if s.fed < s.request.promptTokens.count {
                let n = min(s.request.promptTokens.count - s.fed, budget)
                guard n > 0 else { continue }
                budget -= n
                batch.append((s, Array(s.request.promptTokens[s.fed..<(s.fed + n)])))
            } else if let t = s.nextInput {
                batch.append((s, [t]))
            }
        }
        guard !batch.isEmpty else { return events }
        let logits: [Matrix]
        do {
            let rows = batch.map {
                StepDeltaBuilder.Rows(
                    routing: $0.slot.routing ?? .base, firstPosition: $0.slot.cache!.length, count: $0.tokens.count)
            }
            let delta = try builder.build(rows)
            logits = try model.forward(
                batch.map { SequenceInput(tokens: $0.tokens, cache: $0.slot.cache!) }, logits: .last,
                delta: delta, workspace: workspace)
        } catch {
            // The whole step failed: every request in it fails (their caches are inconsistent).
            let failed = Set(batch.map { ObjectIdentifier($0.slot) })
            for (s, _) in batch { events.append(EngineEvent(request: s.id, kind: .failed("\(error)"))) }
            running.removeAll { failed.contains(ObjectIdentifier($0)) }
            return events
        }
        var done: Set<ObjectIdentifier> = []
        let now = DispatchTime.now().uptimeNanoseconds
        for (i, (s, tokens)) in batch.enumerated() {
            let prefilling = s.fed < s.request.promptTokens.count
            if prefilling { s.fed += tokens.count }
            if s.fed < s.request.promptTokens.count { continue }  // more prompt to feed
            let row = logits[i].data
            // A NaN or infinite logit means something overflowed (an extreme expert weight, a
            // hostile checkpoint): fail the request rather than sample garbage from it.
            if row.contains(where: { !$0.isFinite }) {
                events.append(
                    EngineEvent(
                        request: s.id,
                        kind: .failed(
                            "non-finite logits at position \(s.cache!.length - 1): the weights or the expert mix overflow Float32"
                        )))
                s.cache = nil
                done.insert(ObjectIdentifier(s))
                continue
            }
            let token = s.sampler.next(logits: row, context: s.context)
            s.context.append(token)
            s.generated += 1
            if s.firstToken == nil { s.firstToken = now }
            s.nextInput = token
            events.append(
                EngineEvent(
                    request: s.id,
                    kind: .token(
                        id: token, logprob: Self.logSoftmax(row, at: token),
                        routing: decisions(s, position: s.cache!.length - 1))))
            if s.request.stopTokens.contains(token) {
                events.append(finished(s, .stop))
                done.insert(ObjectIdentifier(s))
            } else if s.generated >= s.request.maxNewTokens {
                events.append(finished(s, .length))
                done.insert(ObjectIdentifier(s))
            }
        }
        running.removeAll { done.contains(ObjectIdentifier($0)) }
        return events
    }

    /// Resolves a request's routing and allocates its cache when it enters the batch.
    private func start(_ s: Slot) throws {
        s.started = DispatchTime.now().uptimeNanoseconds
        if let router = s.router {
            s.routing = try router.routing(prompt: s.request.promptTokens, trace: s.trace, workspace: workspace)
        }
        s.cache = model.makeCache(initialCapacity: s.request.promptTokens.count + s.request.maxNewTokens)
    }

    private func finished(_ s: Slot, _ reason: FinishReason) -> EngineEvent {
        let now = DispatchTime.now().uptimeNanoseconds
        func seconds(_ t: UInt64?) -> Double? { t.map { Double($0 &- s.admitted) / 1e9 } }
        let summary = RequestSummary(
            promptTokens: s.request.promptTokens.count, generatedTokens: s.generated,
            queueSeconds: seconds(s.started ?? now)!, timeToFirstTokenSeconds: seconds(s.firstToken),
            totalSeconds: seconds(now)!)
        s.cache = nil
        return EngineEvent(request: s.id, kind: .finished(reason, summary))
    }

    /// The routing decisions that produced the token sampled after `position` (traced requests).
    private func decisions(_ s: Slot, position: Int) -> [RoutedExperts] {
        guard let trace = s.trace else { return [] }
        func named(_ mix: ExpertMix) -> [(name: String, weight: Float)] {
            mix.entries.map {
                (name: $0.expert < s.names.count ? s.names[$0.expert] : "rank\($0.expert)", weight: $0.weight)
            }
        }
        if case let .fixed(mix, _) = s.routing { return [RoutedExperts(layer: nil, experts: named(mix))] }
        var out: [RoutedExperts] = []
        let all = trace.decisions
        while s.traceCursor < all.count {
            let d = all[s.traceCursor]
            if d.position == position { out.append(RoutedExperts(layer: d.layer, experts: named(d.mix))) }
            s.traceCursor += 1
        }
        return out
    }

    /// `log softmax(logits)[index]`, computed stably (`Ops.logSoftmax`: vectorised, summed in
    /// double) for finite logits.
    static func logSoftmax(_ logits: [Float], at index: Int) -> Float {
        logits.withUnsafeBufferPointer { Ops.logSoftmax($0, at: index) }
    }
}
