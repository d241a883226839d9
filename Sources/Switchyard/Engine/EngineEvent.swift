/// Why a request left the engine.
public enum FinishReason: String, Sendable, Equatable {
    /// A stop token (end of sequence) was generated, or the caller stopped it (a stop string).
    case stop
    /// `maxNewTokens` were generated, or the context is full.
    case length
    /// Cancelled by the caller (client cancellation, deadline, shutdown).
    case cancelled
}

/// The experts that acted on one token, by name: at one decoder layer, or at every layer
/// (`layer == nil`: fixed mixes, sentence routers, global and centroid gates).
public struct RoutedExperts: Sendable, Equatable {
    /// The layer the choice applies to; nil: every layer.
    public var layer: Int?
    /// The experts chosen and their weights.
    public var experts: [(name: String, weight: Float)]

    /// A routing choice for `layer` (nil: all layers).
    public init(layer: Int?, experts: [(name: String, weight: Float)]) {
        self.layer = layer
        self.experts = experts
    }

    /// Same layer, same names and weights in order.
    public static func == (a: RoutedExperts, b: RoutedExperts) -> Bool {
        a.layer == b.layer && a.experts.count == b.experts.count
            && zip(a.experts, b.experts).allSatisfy { $0.name == $1.name && $0.weight == $1.weight }
    }
}

/// A request's totals and timings, reported when it finishes. Times are seconds since admission.
public struct RequestSummary: Sendable, Equatable {
    /// Tokens of the prompt.
    public var promptTokens: Int
    /// Tokens generated.
    public var generatedTokens: Int
    /// Admission to the first forward pass that included the request.
    public var queueSeconds: Double
    /// Admission to the first generated token (nil when none was generated).
    public var timeToFirstTokenSeconds: Double?
    /// Admission to the end.
    public var totalSeconds: Double
}

/// What one engine step produced for one request.
public struct EngineEvent: Sendable {
    /// What happened.
    public enum Kind: Sendable {
        /// A new token; `logprob` is its log-probability under the model's logits (before
        /// temperature, top-k/p and repetition penalty); `routing` is set for traced requests.
        case token(id: Int, logprob: Float, routing: [RoutedExperts])
        /// The request is done; no more events follow for it.
        case finished(FinishReason, RequestSummary)
        /// The request failed (its routing could not be resolved, or its forward pass threw).
        case failed(String)
    }
    /// The request's id (as returned by `admit`).
    public var request: Int
    /// What happened to it.
    public var kind: Kind
    /// An event of `request`.
    public init(request: Int, kind: Kind) {
        self.request = request
        self.kind = kind
    }
}
