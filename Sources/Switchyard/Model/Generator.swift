/// What to generate for one prompt.
public struct GenerationRequest: Sendable {
    /// The prompt's token ids (special tokens included as the caller wants them).
    public var promptTokens: [Int]
    /// Most tokens to generate.
    public var maxNewTokens: Int
    /// How each token is chosen.
    public var sampling: SamplingParameters
    /// Generation stops after emitting any of these (the stop token is included in the output).
    public var stopTokens: Set<Int>

    /// A request; generation stops at `maxNewTokens` or at a token of `stopTokens`.
    public init(
        promptTokens: [Int], maxNewTokens: Int, sampling: SamplingParameters = .greedy, stopTokens: Set<Int> = []
    ) {
        self.promptTokens = promptTokens
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
    }
}

/// Runs a closed set of requests to completion on an `Engine` (the CLI's generate, eval, demo and
/// route): every request is admitted at once and the engine steps until all have finished.
public struct Generator {
    /// The model generated from.
    public let model: LlamaModel
    /// Batching options of the engine each call runs.
    public let options: Engine.Options

    /// A generator over `model`.
    public init(model: LlamaModel, options: Engine.Options = Engine.Options()) {
        self.model = model
        self.options = options
    }

    /// One routing choice for a request: resolved, or a router that decides when it starts.
    public enum Routing {
        case resolved(RequestRouting)
        case router(BoundRouter, trace: RoutingTrace?)
    }

    /// Generates for one request. `onToken` is called with each new token; return false to stop.
    public func generate(
        _ request: GenerationRequest, routing: RequestRouting = .base,
        onToken: (Int) -> Bool = { _ in true }
    ) throws -> [Int] {
        try generateBatch([request], routing: [.resolved(routing)]) { _, t in onToken(t) }[0]
    }

    /// Generates for one request routed by `router`.
    public func generate(
        _ request: GenerationRequest, router: BoundRouter, trace: RoutingTrace? = nil,
        onToken: (Int) -> Bool = { _ in true }
    ) throws -> [Int] {
        try generateBatch([request], routing: [.router(router, trace: trace)]) { _, t in onToken(t) }[0]
    }

    /// Generates for several requests together (continuous batching on one engine; each with its
    /// own routing, base model by default). `onToken(i, token)` returns false to stop request i.
    public func generateBatch(
        _ requests: [GenerationRequest], routing: [Routing]? = nil,
        onToken: (Int, Int) -> Bool = { _, _ in true }
    ) throws -> [[Int]] {
        let routing = routing ?? Array(repeating: .resolved(.base), count: requests.count)
        precondition(routing.count == requests.count, "one routing per request")
        let engine = Engine(model: model, options: options)
        var index: [Int: Int] = [:]
        for (i, r) in requests.enumerated() {
            let id: Int
            switch routing[i] {
            case let .resolved(rr): id = try engine.admit(r, routing: rr)
            case let .router(router, trace): id = try engine.admit(r, router: router, trace: trace)
            }
            index[id] = i
        }
        var outputs = [[Int]](repeating: [], count: requests.count)
        while engine.hasWork {
            for event in engine.step() {
                let i = index[event.request]!
                switch event.kind {
                case let .token(token, _, _):
                    outputs[i].append(token)
                    if !onToken(i, token) { engine.finish(event.request, reason: .stop) }
                case .finished:
                    break
                case let .failed(message):
                    throw SwitchyardError.invalidArgument("request \(i): \(message)")
                }
            }
        }
        return outputs
    }
}
