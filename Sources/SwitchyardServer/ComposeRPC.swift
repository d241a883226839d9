import Foundation
import Switchyard

extension InferenceServer {
    /// Most objective evaluations one Compose call may ask for.
    static let maxComposeBudget = 2000

    /// The string field `field` of `m` as one of `T`'s cases: `fallback` when empty, otherwise
    /// INVALID_ARGUMENT naming the field and the accepted values.
    static func choice<T: RawRepresentable & CaseIterable>(_ m: WireMessage, _ field: String, default fallback: T)
        throws -> T where T.RawValue == String
    {
        let raw = m.string(field)
        if raw.isEmpty { return fallback }
        guard let value = T(rawValue: raw) else {
            throw GRPCStatus(
                .invalidArgument,
                "\(field): \(EscapedText.quoted(raw)) is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        return value
    }

    /// `Compose`: LoraHub from the request's examples — each expert alone first, then COBYLA (or
    /// CMA-ES) from the best, over weights of existing experts, one progress event per objective
    /// evaluation — then the result is written into the registry and is servable at once. Runs on
    /// the RPC work queue, beside the engine.
    func compose(_ m: WireMessage, call: ServerCall) throws {
        let name = m.string("name")
        do { try ExpertRegistry.validateName(name) } catch { throw GRPCStatus(.invalidArgument, "name: \(error)") }
        if registry.rescan(name) { throw GRPCStatus(.alreadyExists, "name: expert '\(name)' already exists") }
        let raw = m.messages("examples")
        guard !raw.isEmpty else { throw GRPCStatus(.invalidArgument, "examples: need at least one example") }
        guard let tokenizer else {
            throw GRPCStatus(.failedPrecondition, "Compose: this server has no tokenizer for the examples' text")
        }
        let eos = StopTokens.endOfCompletion(model: model, tokenizer: tokenizer)
        let examples = try raw.enumerated().map { i, e -> FewShotExample in
            let prompt: [Int], completion: [Int]
            do {
                prompt = try tokenizer.encodeChecked(e.string("prompt"), addSpecialTokens: true)
                completion = try tokenizer.encodeChecked(e.string("completion"))
            } catch { throw GRPCStatus(.invalidArgument, "examples[\(i)]: \(error)") }
            guard !prompt.isEmpty, !completion.isEmpty else {
                throw GRPCStatus(.invalidArgument, "examples[\(i)]: prompt and completion must both be non-empty")
            }
            guard prompt.count + completion.count < model.config.maxPositionEmbeddings else {
                throw GRPCStatus(.invalidArgument, "examples[\(i)]: longer than the model's context")
            }
            return FewShotExample(prompt: prompt, completion: completion + (eos.map { [$0] } ?? []))
        }
        let combination = try Self.choice(m, "combination", default: CompositionCombination.default)
        let selection = try Self.choice(m, "selection", default: CompositionSelection.default)
        var names = m.strings("experts")
        if names.isEmpty { names = LoraHubComposer.defaultExperts(in: registry, combination: combination) }
        guard !names.isEmpty else {
            throw GRPCStatus(.failedPrecondition, "experts: the registry has no single-rank experts to compose")
        }
        let budget = m.uint("budget") == 0 ? 40 : Int(clamping: m.uint("budget"))
        guard budget <= Self.maxComposeBudget else {
            throw GRPCStatus(.invalidArgument, "budget: \(budget) is over the limit \(Self.maxComposeBudget)")
        }
        let l1 = m.double("l1") == 0 ? 0.05 : Float(m.double("l1"))
        guard l1.isFinite, l1 >= 0 else { throw GRPCStatus(.invalidArgument, "l1: must be a finite number ≥ 0") }
        let optimizer = try Self.choice(m, "optimizer", default: CompositionOptimizer.cobyla)
        let lease = try acquire(names, field: "experts")
        defer { lease.release() }
        let hub: LoraHubComposer
        do {
            hub = try LoraHubComposer(
                model: model, experts: lease.adapters, examples: examples, l1: l1, combination: combination)
        } catch {
            throw GRPCStatus(.invalidArgument, "experts: \(error)")
        }
        let started = Date()
        var spent = 0
        let result: OptimizationResult
        do {
            // The caller going away (cancel, deadline, shutdown) stops the search between evaluations.
            result = try hub.search(
                optimizer: optimizer, budget: budget, seed: m.uint("seed"),
                onEvaluation: { evaluations, best in
                    spent = evaluations
                    call.send(
                        WireMessage(
                            InferenceWire.composeEvent,
                            ["evaluations": .uint(UInt64(evaluations)), "best_loss": .double(Double(best))]
                        ).encode())
                }, shouldStop: { call.isCancelled })
        } catch is CancellationError {
            log.write([
                ("rpc", "Compose"), ("expert", name), ("evaluations", spent),
                ("seconds", Date().timeIntervalSince(started)), ("status", "CANCELLED")
            ])
            throw GRPCStatus(.cancelled, "Compose: cancelled after \(spent) of \(budget) evaluations")
        }
        // Selection decodes the examples once per expert: a caller gone by then is told so, and
        // nothing is registered.
        let choice = try hub.select(result, by: selection)
        if call.isCancelled { throw GRPCStatus(.cancelled, "Compose: cancelled") }
        let entry: ExpertRegistry.Entry
        do { entry = try registry.add(try hub.compose(choice.weights, name: name), name: name) } catch {
            throw GRPCStatus(.alreadyExists, "name: \(error)")
        }
        call.send(
            WireMessage(
                InferenceWire.composeEvent,
                [
                    "evaluations": .uint(UInt64(result.evaluations)), "best_loss": .double(Double(choice.objective)),
                    "weights": .list(
                        zip(names, choice.weights).map {
                            .message(
                                WireMessage(
                                    InferenceWire.expertWeight, ["name": .string($0), "weight": .double(Double($1))]))
                        }),
                    "expert": .message(expertInfo(entry))
                ]
            ).encode())
        call.finish()
        log.write([
            ("rpc", "Compose"), ("expert", name), ("examples", examples.count), ("evaluations", result.evaluations),
            ("seconds", Date().timeIntervalSince(started)), ("status", "OK")
        ])
    }
}
