import Foundation
import Switchyard

/// A Switchyard request (`switchyard.v1.GenerateRequest`): a prompt (text or token ids), at
/// most one routing choice, sampling, limits.
public struct GenerateRequest: Sendable {
    /// The prompt text, encoded with the server model's tokenizer. Set exactly one of `prompt`,
    /// `tokenIDs` and `messages`: the server refuses several (INVALID_ARGUMENT).
    public var prompt = ""
    /// Instead of `prompt`: the prompt as token ids of the server's vocabulary (negative ids are sent as 0).
    public var tokenIDs: [Int] = []
    /// A fixed weighted mix of registry experts.
    public var experts: [(name: String, weight: Float)] = []
    /// A router the server holds, by name.
    public var router = ""
    /// An inline serialised RouterSpec.
    public var routerSpec: [UInt8] = []
    /// 0: the server's default.
    public var maxTokens = 0
    /// Temperature (0: greedy, the default), top-k, top-p, repetition penalty and seed.
    public var sampling = SamplingParameters()
    /// Stop strings: generation ends (reason "stop") once the generated text contains one.
    public var stop: [String] = []
    /// Ask for the routing decisions of every token in the events (`GenerateEvent.routing`).
    public var trace = false
    /// Keep generating past the end-of-sequence token (up to `maxTokens`).
    public var ignoreEOS = false
    /// Echoed in the server's logs; empty: the server assigns one.
    public var requestID = ""
    /// Instead of `prompt`: a conversation, rendered with the server model's chat template.
    public var messages: [(role: String, content: String)] = []

    /// A base-model request with default sampling; set the other fields before sending.
    public init(prompt: String = "", tokenIDs: [Int] = []) {
        self.prompt = prompt
        self.tokenIDs = tokenIDs
    }

    var wire: WireMessage {
        WireMessage(
            InferenceWire.generateRequest,
            [
                "prompt": .string(prompt), "token_ids": .list(tokenIDs.map { .uint(UInt64(max(0, $0))) }),
                "experts": .list(
                    experts.map {
                        .message(
                            WireMessage(
                                InferenceWire.expertWeight,
                                ["name": .string($0.name), "weight": .double(Double($0.weight))]))
                    }),
                "router": .string(router), "router_spec": .bytes(routerSpec),
                "max_tokens": .uint(UInt64(max(0, maxTokens))),
                "temperature": .double(Double(sampling.temperature)), "top_k": .uint(UInt64(max(0, sampling.topK))),
                "top_p": .double(Double(sampling.topP)),
                "repetition_penalty": .double(Double(sampling.repetitionPenalty)),
                "seed": .uint(sampling.seed), "stop": .list(stop.map { .string($0) }), "trace": .bool(trace),
                "ignore_eos": .bool(ignoreEOS), "request_id": .string(requestID),
                "messages": .list(
                    messages.map {
                        .message(
                            WireMessage(
                                InferenceWire.chatMessage, ["role": .string($0.role), "content": .string($0.content)]))
                    })
            ])
    }

    /// The balancer's affinity key (`x-switchyard-expert`): the single expert, the largest-weight
    /// expert of a mix, or the router's name; nil for the base model.
    public var affinityKey: String? {
        if let top = experts.max(by: { $0.weight < $1.weight }) { return top.name }
        if !router.isEmpty { return router }
        if !routerSpec.isEmpty, let spec = try? RouterWire.decode(routerSpec) { return spec.name }
        return nil
    }
}

/// One event of a Generate stream: a token, or (last) the summary with `finishReason` set.
public struct GenerateEvent: Sendable {
    /// New text since the previous event; UTF-8 safe (a partial character waits for the next token).
    public var text: String
    /// The token (nil on the summary event, which may still carry trailing `text`).
    public var tokenID: Int?
    /// Natural-log probability of `tokenID` under the logits it was sampled from (0 on the summary).
    public var logprob: Float
    /// 0-based index of the generated token.
    public var index: Int
    /// With `trace`: the experts chosen for this token, per layer (nil: all layers).
    public var routing: [RoutedExperts]
    /// Last event only: "stop", "length" or "cancelled".
    public var finishReason: String?
    /// Summary event only: tokens in the prompt (0 on token events).
    public var promptTokens: Int
    /// Summary event only: tokens generated (0 on token events).
    public var generatedTokens: Int
    /// Summary event only: ms from admission to first scheduling.
    public var queueMilliseconds: Double
    /// Summary event only: ms from admission to the first generated token.
    public var timeToFirstTokenMilliseconds: Double
    /// Summary event only: ms from admission to the last event.
    public var totalMilliseconds: Double
    /// The replica that answered (`x-switchyard-replica`).
    public var replica: String?

    init(_ m: WireMessage, replica: String?) {
        text = m.string("text")
        let reason = m.string("finish_reason")
        finishReason = reason.isEmpty ? nil : reason
        tokenID = reason.isEmpty ? Int(m.uint("token_id")) : nil
        logprob = Float(m.double("logprob"))
        index = Int(m.uint("index"))
        routing = m.messages("routing").map { d in
            let layer = Int(d.int("layer"))
            return RoutedExperts(
                layer: layer < 0 ? nil : layer,
                experts: d.messages("experts").map { (name: $0.string("name"), weight: Float($0.double("weight"))) })
        }
        promptTokens = Int(m.uint("prompt_tokens"))
        generatedTokens = Int(m.uint("generated_tokens"))
        let t = m.message("timings")
        queueMilliseconds = t?.double("queue_ms") ?? 0
        timeToFirstTokenMilliseconds = t?.double("time_to_first_token_ms") ?? 0
        totalMilliseconds = t?.double("total_ms") ?? 0
        self.replica = replica
    }
}

/// The Swift client of a Switchyard server (over the same gRPC shim as the server). Every call
/// throws `GRPCStatus` on a non-OK status. Thread-safe; one HTTP/2 connection.
public final class SwitchyardClient: @unchecked Sendable {
    /// The connection every call goes over (its `target` is the server's `host:port`).
    public let channel: GRPCChannel
    /// Sent as `authorization: Bearer <token>` when set.
    public let token: String?
    /// Deadline for every call, in seconds (nil: none).
    public var timeout: Double?

    /// A client of the server at `target` (`host:port`, insecure HTTP/2). Connects lazily: a
    /// server that is down surfaces as a `GRPCStatus` thrown by the first call.
    public init(target: String, token: String? = nil, timeout: Double? = nil) {
        channel = GRPCChannel(target: target)
        self.token = token
        self.timeout = timeout
    }

    private func metadata(affinity: String? = nil) -> [(String, String)] {
        var m: [(String, String)] = []
        if let token { m.append(("authorization", "Bearer \(token)")) }
        if let affinity { m.append(("x-switchyard-expert", affinity)) }
        return m
    }

    /// Streams a generation: one event per token, then the summary event.
    public func generate(_ request: GenerateRequest) -> AsyncThrowingStream<GenerateEvent, Error> {
        let replica = UncheckedBox<String?>(nil)
        let raw = channel.serverStream(
            InferenceWire.method("Generate"), request.wire.encode(), metadata: metadata(affinity: request.affinityKey),
            timeout: timeout
        ) { md in replica.value = md.first { $0.0 == "x-switchyard-replica" }?.1 }
        return Self.decoded(raw) {
            GenerateEvent(try WireMessage.decode(InferenceWire.generateEvent, $0), replica: replica.value)
        }
    }

    /// A stream of raw response messages, each decoded by `decode`; dropping the result cancels the call.
    private static func decoded<T: Sendable>(
        _ raw: AsyncThrowingStream<[UInt8], Error>,
        _ decode: @escaping @Sendable ([UInt8]) throws -> T
    ) -> AsyncThrowingStream<T, Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await bytes in raw { continuation.yield(try decode(bytes)) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// A unary Inference call: `name` is the method, the response decoded as `response`.
    public func call(_ name: String, _ request: WireMessage, response: WireType, affinity: String? = nil) async throws
        -> WireMessage
    {
        let (bytes, _) = try await channel.unary(
            InferenceWire.method(name), request.encode(), metadata: metadata(affinity: affinity), timeout: timeout)
        return try WireMessage.decode(response, bytes)
    }

    /// `Score`: log p(token i+1 | tokens ≤ i) under the request's routing (its prompt, or
    /// token ids, and experts/router fields; sampling fields are ignored).
    public func score(_ request: GenerateRequest) async throws -> [Float] {
        var m = WireMessage(InferenceWire.scoreRequest)
        let g = request.wire
        for k in ["prompt", "token_ids", "experts", "router", "router_spec"] { m[k] = g[k] }
        return try await call("Score", m, response: InferenceWire.scoreResponse, affinity: request.affinityKey).doubles(
            "logprobs"
        ).map { Float($0) }
    }

    /// `ListExperts`: every registered expert as an `InferenceWire.expertInfo` message.
    public func listExperts() async throws -> [WireMessage] {
        try await call(
            "ListExperts", WireMessage(InferenceWire.listExpertsRequest), response: InferenceWire.listExpertsResponse
        ).messages("experts")
    }

    /// Registers a PEFT adapter directory on the server's disk (under an allowed root).
    @discardableResult
    public func addExpert(name: String, path: String) async throws -> WireMessage {
        try await call(
            "AddExpert", WireMessage(InferenceWire.addExpertRequest, ["name": .string(name), "path": .string(path)]),
            response: InferenceWire.addExpertResponse, affinity: name)
    }

    /// `RemoveExpert`: unregisters `name` (requests already holding it finish with it).
    public func removeExpert(name: String) async throws {
        _ = try await call(
            "RemoveExpert", WireMessage(InferenceWire.removeExpertRequest, ["name": .string(name)]),
            response: InferenceWire.removeExpertResponse, affinity: name)
    }

    /// `ListRouters`: every router the server holds as an `InferenceWire.routerInfo` message.
    public func listRouters() async throws -> [WireMessage] {
        try await call(
            "ListRouters", WireMessage(InferenceWire.listRoutersRequest), response: InferenceWire.listRoutersResponse
        ).messages("routers")
    }

    /// `AddRouter`: a serialised `RouterSpec` (see `RouterWire.encode`), held under its name;
    /// returns the `AddRouterResponse` (its `router` field describes it).
    @discardableResult
    public func addRouter(_ spec: [UInt8]) async throws -> WireMessage {
        try await call(
            "AddRouter", WireMessage(InferenceWire.addRouterRequest, ["router_spec": .bytes(spec)]),
            response: InferenceWire.addRouterResponse)
    }

    /// `Info`: the server's `InferenceWire.infoResponse` (model, experts, routers, limits, counters).
    public func info() async throws -> WireMessage {
        try await call("Info", WireMessage(InferenceWire.infoRequest), response: InferenceWire.infoResponse)
    }

    /// `Compose`: progress events, the last one with `expert` set (the registered result).
    /// Zero/empty `experts`, `budget`, `optimizer`, `l1`, `combination` and `selection` take the
    /// server's defaults (`ComposeRequest` in inference.proto: its trained experts, 40, cobyla, 0.05,
    /// `CompositionCombination.default`, `CompositionSelection.default`).
    public func compose(
        name: String, examples: [(prompt: String, completion: String)], experts: [String] = [],
        budget: Int = 0, seed: UInt64 = 0, optimizer: String = "", l1: Float = 0, combination: String = "",
        selection: String = ""
    ) -> AsyncThrowingStream<WireMessage, Error> {
        let request = WireMessage(
            InferenceWire.composeRequest,
            [
                "name": .string(name), "experts": .list(experts.map { .string($0) }),
                "budget": .uint(UInt64(max(0, budget))),
                "seed": .uint(seed), "optimizer": .string(optimizer), "l1": .double(Double(l1)),
                "combination": .string(combination), "selection": .string(selection),
                "examples": .list(
                    examples.map {
                        .message(
                            WireMessage(
                                InferenceWire.composeExample,
                                ["prompt": .string($0.prompt), "completion": .string($0.completion)]))
                    })
            ])
        let raw = channel.serverStream(
            InferenceWire.method("Compose"), request.encode(), metadata: metadata(affinity: name), timeout: timeout)
        return Self.decoded(raw) { try WireMessage.decode(InferenceWire.composeEvent, $0) }
    }

    /// `grpc.health.v1.Health/Check`: 1 SERVING, 2 NOT_SERVING.
    public func health(service: String = "") async throws -> Int {
        let (bytes, _) = try await channel.unary(
            InferenceWire.healthCheck,
            WireMessage(InferenceWire.healthCheckRequest, ["service": .string(service)]).encode(),
            metadata: metadata(), timeout: timeout)
        return Int(try WireMessage.decode(InferenceWire.healthCheckResponse, bytes).int("status"))
    }
}
