import Foundation
import Switchyard

/// A request's routing choice, resolved against the registry and the router table.
struct ResolvedRouting {
    var routing: RequestRouting = .base
    /// Set for routers (they decide when the request starts).
    var router: BoundRouter? = nil
    /// Pins the experts while the request runs.
    var lease: ExpertLease? = nil
    /// For logs: `base`, `experts reverse=1`, `router token`, `router_spec NAME`.
    var label = "base"
    /// Names counted in Info's per-target counters.
    var targets: [String] = []
}

extension InferenceServer {
    /// Resolves the `experts` / `router` / `router_spec` fields of a Generate or Score request.
    /// At most one may be set. Unknown experts are looked for on disk once (another replica or
    /// `switchyard experts add` may have written them) before NOT_FOUND.
    func resolveRouting(_ m: WireMessage) throws -> ResolvedRouting {
        let experts = m.messages("experts"), routerName = m.string("router"), spec = m.bytes("router_spec")
        let chosen = [
            !experts.isEmpty ? "experts" : nil, !routerName.isEmpty ? "router" : nil,
            !spec.isEmpty ? "router_spec" : nil
        ].compactMap { $0 }
        guard chosen.count <= 1 else {
            throw GRPCStatus(
                .invalidArgument,
                "\(chosen.joined(separator: ", ")): set at most one routing choice (experts, router or router_spec)")
        }
        if !experts.isEmpty {
            var names: [String] = [], weights: [Float] = []
            for (i, e) in experts.enumerated() {
                let name = e.string("name")
                do { try ExpertRegistry.validateName(name) } catch {
                    throw GRPCStatus(.invalidArgument, "experts[\(i)].name: \(error)")
                }
                if let first = names.firstIndex(of: name) {
                    throw GRPCStatus(
                        .invalidArgument, "experts[\(i)].name: '\(name)' is experts[\(first)] too; name an expert once")
                }
                let w = Float(e.double("weight"))
                guard w.isFinite else {
                    throw GRPCStatus(.invalidArgument, "experts[\(i)].weight: not a finite number")
                }
                names.append(name)
                weights.append(w == 0 ? 1 : w)
            }
            let lease = try acquire(names, field: "experts")
            let label = zip(names, weights).map { "\($0)=\($1)" }.joined(separator: ",")
            return ResolvedRouting(
                routing: .experts(lease.adapters, weights: weights), lease: lease, label: "experts \(label)",
                targets: names)
        }
        if !routerName.isEmpty {
            guard let router = routers.router(routerName) else {
                let held = routers.names
                throw GRPCStatus(
                    .notFound,
                    "router: unknown router '\(routerName)' (held: \(held.isEmpty ? "none" : held.joined(separator: ", ")))"
                )
            }
            return ResolvedRouting(router: router, label: "router \(routerName)", targets: ["router:\(routerName)"])
        }
        if !spec.isEmpty {
            let (router, lease) = try bindRouter(spec, field: "router_spec")
            return ResolvedRouting(
                router: router, lease: lease, label: "router_spec \(router.spec.name)",
                targets: ["router:\(router.spec.name)"])
        }
        return ResolvedRouting()
    }

    /// Leases registry experts; NOT_FOUND names the field and the expert.
    func acquire(_ names: [String], field: String) throws -> ExpertLease {
        for (i, name) in names.enumerated() where !registry.rescan(name) || !expertOnDisk(name) {
            let known = registry.names()
            let list = known.prefix(10).joined(separator: ", ") + (known.count > 10 ? ", …" : "")
            throw GRPCStatus(
                .notFound, "\(field)[\(i)]: unknown expert '\(name)' (known: \(known.isEmpty ? "none" : list))")
        }
        do { return try registry.acquire(names) } catch {
            // Listed but unreadable: removed from the shared directory since we listed it.
            registry.refresh()
            throw GRPCStatus(.notFound, "\(field): \(error)")
        }
    }

    /// Whether the expert's directory still exists (another replica sharing the registry may have
    /// removed it; its weights may still be cached here). When it is gone the listing is re-read,
    /// so the name is unknown from then on.
    func expertOnDisk(_ name: String) -> Bool {
        if FileManager.default.fileExists(atPath: registry.directory.appendingPathComponent(name).path) { return true }
        registry.refresh()
        return false
    }

    /// Decodes and binds a serialised RouterSpec against the registry (experts by name and sha256).
    func bindRouter(_ bytes: [UInt8], field: String) throws -> (BoundRouter, ExpertLease) {
        let spec: RouterSpec
        do { spec = try RouterWire.decode(bytes, path: field) } catch {
            throw GRPCStatus(.invalidArgument, "\(error)")
        }
        for e in spec.experts where spec.granularity != .rank { registry.rescan(e.name) }
        do { return try BoundRouter.bind(spec, model: model, registry: registry) } catch let e as RouterError {
            if case let .expertMismatch(_, reason) = e {
                throw GRPCStatus(
                    reason.hasPrefix("not in registry") ? .notFound : .failedPrecondition, "\(field): \(e)")
            }
            throw GRPCStatus(.invalidArgument, "\(field): \(e)")
        } catch {
            throw GRPCStatus(.invalidArgument, "\(field): \(error)")
        }
    }

    /// The prompt of a Generate or Score request as token ids: `prompt` (encoded as the CLI does,
    /// with the tokenizer's special tokens) or `token_ids`, not both.
    func promptTokens(_ m: WireMessage) throws -> [Int] {
        let text = m.string("prompt")
        let ids = m.uints("token_ids"), messages = m.messages("messages")
        let given = [
            !text.isEmpty ? "prompt" : nil, !ids.isEmpty ? "token_ids" : nil, !messages.isEmpty ? "messages" : nil
        ].compactMap { $0 }
        guard given.count <= 1 else {
            throw GRPCStatus(.invalidArgument, "\(given.joined(separator: ", ")): set one, not several")
        }
        if !messages.isEmpty {
            guard let chatTemplate, let tokenizer else {
                throw GRPCStatus(
                    .failedPrecondition, "messages: this model has no chat template; send prompt or token_ids")
            }
            do {
                let rendered = try chatTemplate.render(
                    messages: messages.map {
                        ChatTemplate.Message(role: $0.string("role"), content: $0.string("content"))
                    },
                    addGenerationPrompt: true, tokenizer: tokenizer)
                return try tokenizer.encodeChecked(rendered)
            } catch {
                throw GRPCStatus(.invalidArgument, "messages: \(error)")
            }
        }
        guard !text.isEmpty || !ids.isEmpty else {
            throw GRPCStatus(.invalidArgument, "prompt: empty (set prompt or token_ids)")
        }
        if !text.isEmpty, tokenizer == nil {
            throw GRPCStatus(.invalidArgument, "prompt: this server has no tokenizer; send token_ids")
        }
        let tokens: [Int]
        do {
            tokens =
                ids.isEmpty ? try tokenizer!.encodeChecked(text, addSpecialTokens: true) : ids.map { Int(clamping: $0) }
        } catch {
            throw GRPCStatus(.invalidArgument, "prompt: \(error)")
        }
        guard !tokens.isEmpty else { throw GRPCStatus(.invalidArgument, "prompt: empty (set prompt or token_ids)") }
        if let bad = tokens.first(where: { $0 >= model.config.vocabSize }) {
            throw GRPCStatus(
                .invalidArgument, "token_ids: token id \(bad) is outside the vocabulary (0..<\(model.config.vocabSize))"
            )
        }
        return tokens
    }
}
