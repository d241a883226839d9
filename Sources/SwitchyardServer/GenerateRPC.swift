import Foundation
import Switchyard

extension InferenceServer {
    /// `Generate`: validates, resolves the routing, queues the request on the engine and streams
    /// one event per token, then a summary event and the status.
    func generate(_ m: WireMessage, call: ServerCall) throws {
        let prompt = try promptTokens(m)
        let maxTokens = m.uint("max_tokens") == 0 ? options.defaultMaxTokens : Int(clamping: m.uint("max_tokens"))
        guard maxTokens <= options.maxTokensLimit else {
            throw GRPCStatus(
                .invalidArgument,
                "max_tokens: \(maxTokens) is over this server's limit (--max-tokens-limit \(options.maxTokensLimit))")
        }
        let topP = Float(m.double("top_p")), penalty = Float(m.double("repetition_penalty"))
        let sampling = SamplingParameters(
            temperature: Float(m.double("temperature")), topK: Int(clamping: m.uint("top_k")),
            topP: topP == 0 ? 1 : topP, repetitionPenalty: penalty == 0 ? 1 : penalty,
            seed: m.uint("seed"))
        do { try sampling.validate() } catch { throw GRPCStatus(.invalidArgument, "\(error)") }
        let stopTokens = m.bool("ignore_eos") ? [] : StopTokens.of(model: model, tokenizer: tokenizer)
        let stops = m.strings("stop")
        if let empty = stops.firstIndex(where: \.isEmpty) {
            throw GRPCStatus(.invalidArgument, "stop[\(empty)]: empty stop string")
        }
        if !stops.isEmpty, tokenizer == nil {
            throw GRPCStatus(.invalidArgument, "stop: this server has no tokenizer to match stop strings")
        }
        var request = GenerationRequest(
            promptTokens: prompt, maxNewTokens: maxTokens, sampling: sampling, stopTokens: stopTokens)
        try loop.validate(&request)
        let routing = try resolveRouting(m)
        let trace = m.bool("trace") ? RoutingTrace() : nil
        let id = m.string("request_id").isEmpty ? UUID().uuidString.lowercased() : m.string("request_id")
        let stream = GenerationStream(
            server: self, call: call, id: id, routing: routing, stops: stops, promptTokens: prompt.count)
        counters.started(targets: routing.targets)
        let ticket: Int
        do {
            ticket = try loop.submit(
                EngineLoop.Job(
                    request: request, routing: routing.routing, router: routing.router, trace: trace,
                    keepAlive: routing.lease, sink: { stream.handle($1, ticket: $0) }))
        } catch let s as GRPCStatus {
            if s.code == .resourceExhausted { counters.count(rejected: true) }
            throw s
        }
        call.onClose { [loop] cancelled in if cancelled { loop.cancel(ticket) } }
    }

    /// `Score`: log-probabilities of the given tokens under a routing choice (one forward pass).
    func score(_ m: WireMessage) throws -> WireMessage {
        let tokens = try promptTokens(m)
        guard tokens.count >= 2 else {
            throw GRPCStatus(.invalidArgument, "token_ids: need at least 2 tokens to score, found \(tokens.count)")
        }
        guard tokens.count <= model.config.maxPositionEmbeddings else {
            throw GRPCStatus(
                .invalidArgument,
                "token_ids: \(tokens.count) tokens; the model's context is \(model.config.maxPositionEmbeddings)")
        }
        let resolved = try resolveRouting(m)
        defer { resolved.lease?.release() }
        let routing = try resolved.router.map { try $0.routing(prompt: tokens) } ?? resolved.routing
        let logprobs = try model.scoreLogProbs(tokens, routing: routing)
        return WireMessage(
            InferenceWire.scoreResponse,
            [
                "token_ids": .list(tokens.map { .uint(UInt64($0)) }),
                "logprobs": .list(logprobs.map { .double(Double($0)) }),
                "total_logprob": .double(logprobs.reduce(0) { $0 + Double($1) })
            ])
    }
}

/// The response side of one Generate call: turns engine events into GenerateEvents (UTF-8-safe
/// text, stop strings held back until they can no longer match), ends the call with the right
/// status and writes the request's log line. Events arrive on the engine thread, one at a time.
final class GenerationStream: @unchecked Sendable {
    private unowned let server: InferenceServer
    private let call: ServerCall
    private let id: String
    private let routing: ResolvedRouting
    private let stops: [String]
    private let promptTokens: Int
    private var decoder: StreamingDecoder?
    /// Decoded text not yet sent (it may be the start of a stop string).
    private var held = ""
    private var stopped = false
    private var index = 0

    init(
        server: InferenceServer, call: ServerCall, id: String, routing: ResolvedRouting, stops: [String],
        promptTokens: Int
    ) {
        self.server = server
        self.call = call
        self.id = id
        self.routing = routing
        self.stops = stops
        self.promptTokens = promptTokens
        decoder = server.tokenizer.map { StreamingDecoder(tokenizer: $0, skipSpecialTokens: true) }
    }

    /// `ticket` is the job's ticket on the engine loop (to end it on a stop string).
    func handle(_ event: EngineEvent, ticket: Int) {
        switch event.kind {
        case let .token(token, logprob, decisions):
            guard !stopped else { return }
            held += decoder?.append(token) ?? ""
            var text = ""
            if let (range, _) = firstStop(in: held) {
                text = String(held[..<range.lowerBound])
                held = ""
                stopped = true
                server.loop.finish(ticket, reason: .stop)
            } else {
                let keep = holdBack(held)
                text = String(held.dropLast(keep))
                held = String(held.suffix(keep))
            }
            var fields: [String: WireMessage.Value] = [
                "text": .string(text), "token_id": .uint(UInt64(token)), "logprob": .double(Double(logprob)),
                "index": .uint(UInt64(index))
            ]
            if !decisions.isEmpty {
                fields["routing"] = .list(
                    decisions.map { d in
                        .message(
                            WireMessage(
                                InferenceWire.routingDecision,
                                [
                                    "layer": .int(Int64(d.layer ?? -1)),
                                    "experts": .list(
                                        d.experts.map {
                                            .message(
                                                WireMessage(
                                                    InferenceWire.expertWeight,
                                                    ["name": .string($0.name), "weight": .double(Double($0.weight))]))
                                        })
                                ]))
                    })
            }
            index += 1
            call.send(WireMessage(InferenceWire.generateEvent, fields).encode())
        case let .finished(reason, summary):
            if !stopped { held += decoder?.flush() ?? "" }
            // Text held back for stop strings (or a trailing partial character) goes out with the summary.
            let tail = stopped ? "" : held
            held = ""
            let ttft = summary.timeToFirstTokenSeconds.map { $0 * 1000 } ?? 0
            let decodeSeconds = summary.totalSeconds - (summary.timeToFirstTokenSeconds ?? summary.totalSeconds)
            let tps =
                summary.generatedTokens > 1 && decodeSeconds > 0
                ? Double(summary.generatedTokens - 1) / decodeSeconds : 0
            call.send(
                WireMessage(
                    InferenceWire.generateEvent,
                    [
                        "text": .string(tail), "index": .uint(UInt64(index)), "finish_reason": .string(reason.rawValue),
                        "prompt_tokens": .uint(UInt64(summary.promptTokens)),
                        "generated_tokens": .uint(UInt64(summary.generatedTokens)),
                        "timings": .message(
                            WireMessage(
                                InferenceWire.timings,
                                [
                                    "queue_ms": .double(summary.queueSeconds * 1000),
                                    "time_to_first_token_ms": .double(ttft),
                                    "total_ms": .double(summary.totalSeconds * 1000),
                                    "decode_tokens_per_second": .double(tps)
                                ]))
                    ]
                ).encode())
            server.counters.generated(summary.generatedTokens, targets: routing.targets)
            let status: GRPCStatus
            if reason == .cancelled {
                server.counters.count(cancelled: true)
                status = GRPCStatus(.cancelled, "Generate: cancelled")
            } else {
                status = GRPCStatus(.ok, "")
            }
            call.finish(status)
            routing.lease?.release()
            server.log.write([
                ("rpc", "Generate"), ("id", id), ("routing", routing.label), ("prompt_tokens", summary.promptTokens),
                ("generated_tokens", summary.generatedTokens), ("finish", reason.rawValue),
                ("queue_ms", summary.queueSeconds * 1000), ("ttft_ms", ttft), ("total_ms", summary.totalSeconds * 1000),
                ("status", status.code.description)
            ])
        case let .failed(message):
            server.counters.count(failed: true)
            routing.lease?.release()
            call.finish(GRPCStatus(.internal, "Generate: \(message)"))
            server.log.write([
                ("rpc", "Generate"), ("id", id), ("routing", routing.label), ("status", "INTERNAL"), ("error", message)
            ])
        }
    }

    private func firstStop(in text: String) -> (Range<String.Index>, String)? {
        var best: (Range<String.Index>, String)? = nil
        for s in stops {
            if let r = text.range(of: s), best == nil || r.lowerBound < best!.0.lowerBound { best = (r, s) }
        }
        return best
    }

    /// How many trailing characters of `text` could begin a stop string (held back).
    private func holdBack(_ text: String) -> Int {
        var keep = 0
        for s in stops {
            for n in stride(from: min(s.count - 1, text.count), to: keep, by: -1) where text.hasSuffix(s.prefix(n)) {
                keep = n
                break
            }
        }
        return keep
    }
}
