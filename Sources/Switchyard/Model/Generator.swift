/// What to generate for one prompt.
public struct GenerationRequest: Sendable {
    public var promptTokens: [Int]
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// Generation stops after emitting any of these (the stop token is included in the output).
    public var stopTokens: Set<Int>

    public init(promptTokens: [Int], maxNewTokens: Int, sampling: SamplingParameters = .greedy, stopTokens: Set<Int> = []) {
        self.promptTokens = promptTokens
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
    }
}

/// Decides, before each forward pass of a batched generation, which `ProjectionDelta` applies to
/// which rows (experts per request, routers). `active` are the indices of the requests in this pass
/// (in row order) and `tokenCounts` their new tokens.
public protocol StepPlanner {
    func prepare(active: [Int], tokenCounts: [Int]) throws -> (any ProjectionDelta)?
}

/// The same delta (or none) for every step.
public struct ConstantDelta: StepPlanner {
    public let delta: (any ProjectionDelta)?
    public init(_ delta: (any ProjectionDelta)?) { self.delta = delta }
    public func prepare(active: [Int], tokenCounts: [Int]) throws -> (any ProjectionDelta)? { delta }
}

/// Autoregressive generation on a `LlamaModel`: one request, or several decoded together in one
/// batch (each with its own cache, prompt length and sampler).
public struct Generator {
    public let model: LlamaModel

    public init(model: LlamaModel) { self.model = model }

    /// Generates for one request. `onToken` is called with each new token; return false to stop.
    public func generate(_ request: GenerationRequest, delta: (any ProjectionDelta)? = nil,
                         onToken: (Int) -> Bool = { _ in true }) throws -> [Int] {
        try generate(request, planner: ConstantDelta(delta), onToken: onToken)
    }

    /// Generates for one request with a step planner (e.g. experts chosen by a router).
    public func generate(_ request: GenerationRequest, planner: any StepPlanner,
                         onToken: (Int) -> Bool = { _ in true }) throws -> [Int] {
        var stop = false
        return try generateBatch([request], planner: planner) { _, token in
            if stop { return false }
            stop = !onToken(token)
            return !stop
        }[0]
    }

    /// Generates for several requests at once: prompts are prefilled together, then each decode step
    /// is one forward pass over every sequence still running. `onToken(i, token)` returns false to
    /// stop request i.
    public func generateBatch(_ requests: [GenerationRequest], delta: (any ProjectionDelta)? = nil,
                              onToken: (Int, Int) -> Bool = { _, _ in true }) throws -> [[Int]] {
        try generateBatch(requests, planner: ConstantDelta(delta), onToken: onToken)
    }

    /// Batched generation where `planner` sets up the delta before every forward pass.
    public func generateBatch(_ requests: [GenerationRequest], planner: any StepPlanner,
                              onToken: (Int, Int) -> Bool = { _, _ in true }) throws -> [[Int]] {
        let limit = model.config.maxPositionEmbeddings
        var requests = requests
        for i in requests.indices {
            let r = requests[i]
            try r.sampling.validate()
            guard !r.promptTokens.isEmpty else { throw SwitchyardError.invalidArgument("generate: empty prompt") }
            guard r.maxNewTokens >= 0 else { throw SwitchyardError.invalidArgument("generate: max tokens must be ≥ 0") }
            guard r.promptTokens.count < limit else {
                throw SwitchyardError.invalidArgument("generate: the prompt has \(r.promptTokens.count) tokens; the model's context (max_position_embeddings) is \(limit)")
            }
            // Generation stops at the end of the context rather than failing there.
            requests[i].maxNewTokens = min(r.maxNewTokens, limit - r.promptTokens.count)
        }
        let workspace = ForwardWorkspace()
        let caches = requests.map { model.makeCache(initialCapacity: $0.promptTokens.count + $0.maxNewTokens) }
        var samplers = requests.map { Sampler($0.sampling) }
        var outputs = [[Int]](repeating: [], count: requests.count)
        var context = requests.map(\.promptTokens)
        var active = requests.indices.filter { requests[$0].maxNewTokens > 0 }
        var pending = active.map { requests[$0].promptTokens }
        while !active.isEmpty {
            let inputs = zip(active, pending).map { SequenceInput(tokens: $1, cache: caches[$0]) }
            let delta = try planner.prepare(active: active, tokenCounts: pending.map(\.count))
            let logits = try model.forward(inputs, logits: .last, delta: delta, workspace: workspace)
            var still: [Int] = []
            var next: [[Int]] = []
            for (slot, i) in active.enumerated() {
                let token = samplers[i].next(logits: logits[slot].data, context: context[i])
                outputs[i].append(token)
                context[i].append(token)
                let keepGoing = onToken(i, token)
                if keepGoing, !requests[i].stopTokens.contains(token), outputs[i].count < requests[i].maxNewTokens {
                    still.append(i)
                    next.append([token])
                }
            }
            active = still
            pending = next
        }
        return outputs
    }
}
