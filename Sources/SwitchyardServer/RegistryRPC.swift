import Foundation
import Switchyard

extension InferenceServer {
    func expertInfo(_ e: ExpertRegistry.Entry) -> WireMessage {
        WireMessage(
            InferenceWire.expertInfo,
            [
                "name": .string(e.name), "sha256": .string(e.sha256), "rank": .uint(UInt64(e.summary.ranks.max() ?? 0)),
                "target_modules": .list(e.summary.targetKinds.map { .string($0.rawValue) }),
                "parameter_bytes": .uint(UInt64(e.summary.parameterCount * 4)),
                "resident": .bool(registry.isResident(e.name))
            ])
    }

    func routerInfo(_ r: BoundRouter) -> WireMessage {
        WireMessage(
            InferenceWire.routerInfo,
            [
                "name": .string(r.spec.name), "granularity": .string("\(r.spec.granularity)"),
                "experts": .list(r.spec.experts.map { .string($0.name) })
            ])
    }

    /// `ListExperts`: the registry directory as it is now (re-read, so experts other replicas
    /// added or removed show up).
    func listExperts() -> WireMessage {
        registry.refresh()
        return WireMessage(
            InferenceWire.listExpertsResponse, ["experts": .list(registry.list().map { .message(expertInfo($0)) })])
    }

    /// `AddExpert`: copies a PEFT adapter directory from under an allowed root into the registry,
    /// validated against the base model first; servable at once.
    func addExpert(_ m: WireMessage) throws -> WireMessage {
        let name = m.string("name"), path = m.string("path")
        do { try ExpertRegistry.validateName(name) } catch { throw GRPCStatus(.invalidArgument, "name: \(error)") }
        guard !path.isEmpty else { throw GRPCStatus(.invalidArgument, "path: empty") }
        let source = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        let roots = options.allowedExpertRoots.map { $0.standardizedFileURL.resolvingSymlinksInPath().path }
        let isUnderARoot = { (p: String) in roots.contains { p == $0 || p.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }
        }
        guard isUnderARoot(source.path) else {
            throw GRPCStatus(
                .permissionDenied,
                "path: '\(path)' is outside the directories this server reads experts from"
                    + (roots.isEmpty
                        ? " (none: start the server with --allow-expert-dir DIR)"
                        : " (\(roots.joined(separator: ", ")))"))
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isDir), isDir.boolValue else {
            throw GRPCStatus(.notFound, "path: no adapter directory at '\(path)'")
        }
        // The files are read (and copied) too: one that links outside the roots is refused.
        let entries = (try? FileManager.default.contentsOfDirectory(at: source, includingPropertiesForKeys: nil)) ?? []
        if let escaping = entries.first(where: { !isUnderARoot($0.resolvingSymlinksInPath().path) }) {
            throw GRPCStatus(
                .permissionDenied,
                "path: '\(escaping.lastPathComponent)' in '\(path)' links outside the directories this server reads experts from"
            )
        }
        if registry.rescan(name) {
            throw GRPCStatus(
                .alreadyExists, "name: expert '\(name)' already exists; remove it first or pick another name")
        }
        do {
            let entry = try registry.add(from: source, name: name)
            log.write([("rpc", "AddExpert"), ("expert", name), ("path", source.path), ("status", "OK")])
            return WireMessage(InferenceWire.addExpertResponse, ["expert": .message(expertInfo(entry))])
        } catch let e as SwitchyardError {
            if case let .invalidArgument(message) = e, message.contains("already exists") {
                throw GRPCStatus(.alreadyExists, "name: \(message)")
            }
            throw GRPCStatus(.invalidArgument, "path: \(e)")
        }
    }

    /// `RemoveExpert`: deletes it from the registry; requests holding it finish unharmed.
    func removeExpert(_ m: WireMessage) throws -> WireMessage {
        let name = m.string("name")
        do { try ExpertRegistry.validateName(name) } catch { throw GRPCStatus(.invalidArgument, "name: \(error)") }
        guard registry.rescan(name) else { throw GRPCStatus(.notFound, "name: unknown expert '\(name)'") }
        do { try registry.remove(name) } catch {
            registry.refresh()
            throw GRPCStatus(.notFound, "name: \(error)")
        }
        log.write([("rpc", "RemoveExpert"), ("expert", name), ("status", "OK")])
        return WireMessage(InferenceWire.removeExpertResponse)
    }

    func listRouters() -> WireMessage {
        WireMessage(InferenceWire.listRoutersResponse, ["routers": .list(routers.all.map { .message(routerInfo($0)) })])
    }

    /// `AddRouter`: a serialised RouterSpec, checked against the model and bound to the
    /// registry's experts (names and sha256); held under its name from then on.
    func addRouter(_ m: WireMessage) throws -> WireMessage {
        let bytes = m.bytes("router_spec")
        guard !bytes.isEmpty else { throw GRPCStatus(.invalidArgument, "router_spec: empty") }
        let (router, lease) = try bindRouter(bytes, field: "router_spec")
        guard !router.spec.name.isEmpty else {
            throw GRPCStatus(.invalidArgument, "router_spec: the router has no name")
        }
        try routers.add(router, lease: lease)
        log.write([("rpc", "AddRouter"), ("router", router.spec.name), ("status", "OK")])
        return WireMessage(InferenceWire.addRouterResponse, ["router": .message(routerInfo(router))])
    }

    func info() -> WireMessage {
        let c = counters.snapshot, s = loop.state, r = registry.statistics, cfg = model.config
        return WireMessage(
            InferenceWire.infoResponse,
            [
                "version": .string(Self.version), "model": .string(modelDescription),
                "architecture": .string("\(cfg.architecture)"),
                "vocabulary_size": .uint(UInt64(cfg.vocabSize)), "hidden_size": .uint(UInt64(cfg.hiddenSize)),
                "layers": .uint(UInt64(cfg.numLayers)),
                "experts": .list(registry.names().map { .string($0) }),
                "routers": .list(routers.names.map { .string($0) }),
                "limits": .message(
                    WireMessage(
                        InferenceWire.limits,
                        [
                            "max_batch": .uint(UInt64(options.maxBatch)), "max_queue": .uint(UInt64(options.maxQueue)),
                            "max_tokens_limit": .uint(UInt64(options.maxTokensLimit)),
                            "context_length": .uint(UInt64(cfg.maxPositionEmbeddings)),
                            "max_message_bytes": .uint(UInt64(options.maxMessageBytes))
                        ])),
                "replica_id": .string(replicaID), "requests_total": .uint(c.requests),
                "generated_tokens_total": .uint(c.tokens),
                "queue_depth": .uint(UInt64(s.waiting)), "active_requests": .uint(UInt64(s.running)),
                "expert_counters": .list(
                    c.perTarget.map {
                        .message(
                            WireMessage(
                                InferenceWire.expertCounters,
                                [
                                    "name": .string($0.0), "requests": .uint($0.1), "generated_tokens": .uint($0.2)
                                ]))
                    }),
                "rejected_total": .uint(c.rejected), "cancelled_total": .uint(c.cancelled),
                "failed_total": .uint(c.failed),
                "last_batch_size": .uint(UInt64(s.lastBatch)), "steps_total": .uint(s.steps),
                "expert_cache_hits": .uint(UInt64(r.hits)), "expert_cache_misses": .uint(UInt64(r.misses)),
                "expert_cache_evictions": .uint(UInt64(r.evictions)),
                "expert_cache_resident_bytes": .uint(UInt64(r.residentBytes))
            ])
    }
}
