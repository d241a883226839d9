import Foundation
import Testing

@testable import Switchyard

/// The step-level engine: continuous batching must not change what any request generates.
@Suite(.serialized) struct EngineTests {
    /// Runs the engine until idle, collecting tokens and finish reasons per request id.
    static func drain(
        _ engine: Engine, tokens: inout [Int: [Int]], reasons: inout [Int: FinishReason],
        onStep: (Int) -> Void = { _ in }
    ) {
        var step = 0
        while engine.hasWork {
            onStep(step)
            for e in engine.step() {
                switch e.kind {
                case let .token(t, _, _): tokens[e.request, default: []].append(t)
                case let .finished(r, _): reasons[e.request] = r
                case let .failed(m): Issue.record("request \(e.request) failed: \(m)")
                }
            }
            step += 1
        }
    }

    @Test func requestsJoiningMidStreamGenerateWhatTheyGenerateAlone() throws {
        let s = try RouterParityTests.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let lease = try s.registry.acquire(["attn-r4", "mlp-r8-rslora"])
        let (router, routerLease) = try BoundRouter.bind(
            try RouterWire.decode(try RouterParityTests.bytes("token-layers")),
            model: s.model, registry: s.registry)
        defer { lease.release(); routerLease.release() }
        let routings: [Generator.Routing] = [
            .resolved(.base), .resolved(.experts([lease.adapters[0]])),
            .resolved(.experts(lease.adapters, weights: [0.7, 0.4])), .router(router, trace: nil)
        ]
        let requests = (0..<4).map {
            GenerationRequest(promptTokens: s.prompts[$0 % s.prompts.count], maxNewTokens: 10)
        }
        let alone = try requests.indices.map {
            try Generator(model: s.model).generateBatch([requests[$0]], routing: [routings[$0]])[0]
        }
        // Small prefill chunks and a batch of 3: requests wait, join at different steps, and their
        // prompts are fed in pieces while others decode.
        let engine = Engine(model: s.model, options: .init(maxBatch: 3, prefillChunk: 3))
        var ids: [Int] = []
        var tokens: [Int: [Int]] = [:], reasons: [Int: FinishReason] = [:]
        func admit(_ i: Int) throws {
            switch routings[i] {
            case let .resolved(r): ids.append(try engine.admit(requests[i], routing: r))
            case let .router(b, _): ids.append(try engine.admit(requests[i], router: b))
            }
        }
        try admit(0); try admit(1)
        Self.drain(engine, tokens: &tokens, reasons: &reasons) { step in
            if step == 2 { try? admit(2) }
            if step == 5 { try? admit(3) }
        }
        #expect(ids.count == 4)
        for (i, id) in ids.enumerated() {
            #expect(tokens[id] == alone[i], "request \(i)")
            #expect(reasons[id] == .length)
        }
        #expect(engine.runningCount == 0 && engine.waitingCount == 0)
    }

    @Test func cancelAndFinishLeaveWithoutDisturbingOthers() throws {
        let model = try LlamaModel.load(directory: FixturePaths.url("models/llama-gqa"))
        let prompt = [5, 9, 17, 33, 2]
        let alone = try Generator(model: model).generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 12))
        let engine = Engine(model: model)
        let a = try engine.admit(GenerationRequest(promptTokens: prompt, maxNewTokens: 12))
        let b = try engine.admit(GenerationRequest(promptTokens: prompt, maxNewTokens: 12))
        let c = try engine.admit(GenerationRequest(promptTokens: [1, 2, 3], maxNewTokens: 12))
        var tokens: [Int: [Int]] = [:], reasons: [Int: FinishReason] = [:]
        Self.drain(engine, tokens: &tokens, reasons: &reasons) { step in
            if step == 3 { engine.cancel(b) }
            if step == 4 { engine.finish(c, reason: .stop) }
        }
        #expect(tokens[a] == alone)
        #expect(reasons[a] == .length)
        #expect(reasons[b] == .cancelled && tokens[b]!.count == 3)
        #expect(reasons[c] == .stop && tokens[c]!.count == 4)
    }

    @Test func stopTokensAndZeroTokensAndLogprobs() throws {
        let model = try LlamaModel.load(directory: FixturePaths.url("models/llama-gqa"))
        let prompt = [7, 8, 9, 10]
        let free = try Generator(model: model).generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 6))
        let engine = Engine(model: model)
        let stopping = try engine.admit(GenerationRequest(promptTokens: prompt, maxNewTokens: 6, stopTokens: [free[2]]))
        let none = try engine.admit(GenerationRequest(promptTokens: prompt, maxNewTokens: 0))
        var logprobs: [Float] = []
        var reasons: [Int: FinishReason] = [:]
        var got: [Int] = []
        while engine.hasWork {
            for e in engine.step() {
                if case let .token(t, lp, _) = e.kind, e.request == stopping { got.append(t); logprobs.append(lp) }
                if case let .finished(r, summary) = e.kind {
                    reasons[e.request] = r
                    if e.request == stopping {
                        #expect(summary.generatedTokens == got.count && summary.promptTokens == prompt.count)
                    }
                }
            }
        }
        #expect(got == Array(free.prefix(3)))
        #expect(reasons[stopping] == .stop && reasons[none] == .length)
        // Each token's logprob is the log-softmax of the logits that produced it.
        let scored = try model.scoreLogProbs(prompt + got)
        for (i, lp) in logprobs.enumerated() { #expect(abs(lp - scored[prompt.count - 1 + i]) <= 1e-4) }
    }

    @Test func invalidRequestsAreRefusedNamingTheField() throws {
        let model = try LlamaModel.load(directory: FixturePaths.url("models/llama-gqa"))
        let engine = Engine(model: model)
        func message(_ r: GenerationRequest) -> String {
            do { try engine.admit(r); return "" } catch { return "\(error)" }
        }
        #expect(message(GenerationRequest(promptTokens: [], maxNewTokens: 1)).contains("prompt"))
        #expect(
            message(GenerationRequest(promptTokens: [model.config.vocabSize], maxNewTokens: 1)).contains("token_ids"))
        #expect(
            message(GenerationRequest(promptTokens: [1], maxNewTokens: 1, sampling: .init(temperature: -1))).contains(
                "temperature"))
        #expect(
            message(
                GenerationRequest(
                    promptTokens: Array(repeating: 1, count: model.config.maxPositionEmbeddings), maxNewTokens: 1)
            ).contains("context"))
        #expect(!engine.hasWork)
    }
}
