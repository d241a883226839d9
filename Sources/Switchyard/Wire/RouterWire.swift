import CProtobufC
import Foundation
import SwitchyardProtos

/// Encodes and decodes `RouterSpec` in the protobuf wire format (`Protos/switchyard/v1/router.proto`)
/// through protobuf-c.
///
/// Decoding treats the bytes as untrusted: size is capped, protobuf-c rejects malformed input,
/// and every tensor's byte length must equal its shape times its element size. Semantic checks
/// (shapes against a model, experts against a registry, finite values) happen when the router is
/// bound (`BoundRouter.bind`, which compiles the spec against the model's config).
public enum RouterWire {
    /// Larger router files are refused before parsing.
    public static let maxBytes = 1 << 30

    /// Reads and decodes a router file. Throws `RouterError.decode` (over `maxBytes`, malformed) or
    /// `SwitchyardError.io` (unreadable), naming the path.
    public static func read(_ url: URL) throws -> RouterSpec {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        if let size = attributes?[.size] as? Int, size > maxBytes {
            throw RouterError.decode(path: url.path, reason: "file is \(size) bytes, over the \(maxBytes)-byte limit")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw SwitchyardError.io(path: url.path, reason: "cannot read router file")
        }
        return try decode([UInt8](data), path: url.path)
    }

    /// Encodes `spec` and writes it atomically (temporary file, then rename); throws on I/O errors.
    public static func write(_ spec: RouterSpec, to url: URL) throws {
        try AtomicFile.write(Data(encode(spec)), to: url)
    }

    // MARK: - Decoding

    /// Decodes a serialised `switchyard.v1.RouterSpec` from untrusted bytes; throws
    /// `RouterError.decode` naming `path` (used only in messages) on malformed input.
    public static func decode(_ bytes: [UInt8], path: String = "<bytes>") throws -> RouterSpec {
        guard bytes.count <= maxBytes else {
            throw RouterError.decode(path: path, reason: "\(bytes.count) bytes is over the limit")
        }
        guard
            let msg = bytes.withUnsafeBufferPointer({
                switchyard__v1__router_spec__unpack(nil, $0.count, $0.baseAddress)
            })
        else {
            throw RouterError.decode(
                path: path, reason: "not a valid switchyard.v1.RouterSpec message (truncated or corrupt)")
        }
        defer { switchyard__v1__router_spec__free_unpacked(msg, nil) }
        do {
            return try convert(msg.pointee)
        } catch let e as RouterError {
            if case let .invalid(field, reason) = e {
                throw RouterError.decode(path: path, reason: "field \(EscapedText.quoted(field)): \(reason)")
            }
            throw e
        }
    }

    static func string(_ p: UnsafeMutablePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

    static func array<T>(_ n: Int, _ p: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?) -> [T] {
        guard let p, n > 0 else { return [] }
        return (0..<n).compactMap { p[$0]?.pointee }
    }

    static func tensor(_ p: UnsafeMutablePointer<Switchyard__V1__Tensor>?, field: String) throws -> WireTensor? {
        guard let t = p?.pointee else { return nil }
        let shape = t.n_shape > 0 ? (0..<t.n_shape).map { Int(t.shape[$0]) } : []
        guard let dtype = WireTensor.DType(rawValue: Int(t.dtype.rawValue)) else {
            throw RouterError.invalid(field: field, reason: "unknown dtype \(t.dtype.rawValue)")
        }
        var count = 1
        for d in shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, c <= maxBytes else {
                throw RouterError.invalid(field: field, reason: "shape \(shape) is too large")
            }
            count = c
        }
        let expected = count * (dtype == .f32 ? 4 : 2)
        guard expected == t.data.len else {
            throw RouterError.invalid(
                field: field, reason: "shape \(shape) of \(dtype) needs \(expected) bytes, data has \(t.data.len)")
        }
        let bytes = t.data.len > 0 ? Array(UnsafeBufferPointer(start: t.data.data, count: t.data.len)) : []
        return WireTensor(shape: shape, dtype: dtype, bytes: bytes)
    }

    static func requiredTensor(_ p: UnsafeMutablePointer<Switchyard__V1__Tensor>?, field: String) throws -> WireTensor {
        guard let t = try tensor(p, field: field) else { throw RouterError.invalid(field: field, reason: "missing") }
        return t
    }

    static func convert(_ m: Switchyard__V1__RouterSpec) throws -> RouterSpec {
        guard let granularity = RouterSpec.Granularity(rawValue: Int(m.granularity.rawValue)) else {
            throw RouterError.invalid(field: "granularity", reason: "unknown value \(m.granularity.rawValue)")
        }
        let experts = array(m.n_experts, m.experts).map {
            RouterSpec.ExpertRef(name: string($0.name), sha256: string($0.sha256))
        }
        var selection: Selection? = nil
        if let s = m.selection?.pointee {
            guard let mode = Selection.Mode(rawValue: Int(s.mode.rawValue)) else {
                throw RouterError.invalid(field: "selection.mode", reason: "unknown value \(s.mode.rawValue)")
            }
            guard let prompt = Selection.PromptRouting(rawValue: Int(s.prompt_routing.rawValue)) else {
                throw RouterError.invalid(
                    field: "selection.prompt_routing", reason: "unknown value \(s.prompt_routing.rawValue)")
            }
            selection = Selection(
                mode: mode, topK: Int(s.top_k), topP: s.top_p, threshold: s.threshold,
                temperature: s.temperature, everyN: Int(s.every_n), promptRouting: prompt,
                contextWindow: Int(s.context_window))
        }
        let metadata = array(m.n_metadata, m.metadata).map { (key: string($0.key), value: string($0.value)) }
        var gate = RouterSpec.Gate.none
        switch m.gate_case {
        case SWITCHYARD__V1__ROUTER_SPEC__GATE_SENTENCE:
            let g = m.sentence.pointee
            guard let pooling = RouterSpec.Pooling(rawValue: Int(g.pooling.rawValue)) else {
                throw RouterError.invalid(field: "sentence.pooling", reason: "unknown value \(g.pooling.rawValue)")
            }
            let layers = try array(g.n_layers, g.layers).enumerated().map { i, d -> DenseLayer in
                guard let act = DenseLayer.Activation(rawValue: Int(d.activation.rawValue)) else {
                    throw RouterError.invalid(
                        field: "sentence.layers[\(i)].activation", reason: "unknown value \(d.activation.rawValue)")
                }
                return DenseLayer(
                    weight: try requiredTensor(d.weight, field: "sentence.layers[\(i)].weight"),
                    bias: try tensor(d.bias, field: "sentence.layers[\(i)].bias"), activation: act)
            }
            gate = .sentence(featureLayer: Int(g.feature_layer), pooling: pooling, layers: layers)
        case SWITCHYARD__V1__ROUTER_SPEC__GATE_TOKEN:
            let g = m.token.pointee
            let layers = try array(g.n_layers, g.layers).enumerated().map { i, l in
                LayerGateSpec(
                    layer: Int(l.layer), experts: l.n_experts > 0 ? (0..<l.n_experts).map { Int(l.experts[$0]) } : [],
                    weight: try requiredTensor(l.weight, field: "token.layers[\(i)].weight"),
                    bias: try tensor(l.bias, field: "token.layers[\(i)].bias"))
            }
            guard let context = RouterSpec.CentroidContext(rawValue: Int(g.context.rawValue)) else {
                throw RouterError.invalid(field: "token.context", reason: "unknown value \(g.context.rawValue)")
            }
            gate = .token(layers: layers, global: g.global != 0, sourceLayer: Int(g.source_layer), context: context)
        case SWITCHYARD__V1__ROUTER_SPEC__GATE_CENTROID:
            let g = m.centroid.pointee
            guard let context = RouterSpec.CentroidContext(rawValue: Int(g.context.rawValue)) else {
                throw RouterError.invalid(field: "centroid.context", reason: "unknown value \(g.context.rawValue)")
            }
            gate = .centroid(
                layer: Int(g.layer), centroids: try requiredTensor(g.centroids, field: "centroid.centroids"),
                context: context, centroidExperts: (0..<g.n_centroid_experts).map { Int(g.centroid_experts[$0]) })
        case SWITCHYARD__V1__ROUTER_SPEC__GATE_RANK:
            let g = m.rank.pointee
            guard let act = RouterSpec.RankActivation(rawValue: Int(g.activation.rawValue)) else {
                throw RouterError.invalid(field: "rank.activation", reason: "unknown value \(g.activation.rawValue)")
            }
            let modules = try array(g.n_modules, g.modules).enumerated().map { i, r in
                RankModuleSpec(
                    layer: Int(r.layer), module: string(r.module),
                    a: try requiredTensor(r.a, field: "rank.modules[\(i)].a"),
                    b: try requiredTensor(r.b, field: "rank.modules[\(i)].b"),
                    gate: try requiredTensor(r.gate, field: "rank.modules[\(i)].gate"), scale: r.scale)
            }
            gate = .rank(modules: modules, activation: act)
        default:
            gate = .none
        }
        return RouterSpec(
            name: string(m.name), version: Int(m.version), granularity: granularity, experts: experts,
            selection: selection, baseModel: string(m.base_model), metadata: metadata, gate: gate)
    }

    // MARK: - Encoding

    /// Owns the C memory of a message being built; freed when the arena goes away.
    final class Arena {
        private var blocks: [UnsafeMutableRawPointer] = []
        deinit { blocks.forEach { free($0) } }

        func make<T>(_ type: T.Type, _ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
            let p = calloc(1, MemoryLayout<T>.stride)!
            blocks.append(p)
            let typed = p.bindMemory(to: T.self, capacity: 1)
            initialize(typed)
            return typed
        }

        func array<T>(_ items: [T]) -> UnsafeMutablePointer<T>? {
            guard !items.isEmpty else { return nil }
            let p = calloc(items.count, MemoryLayout<T>.stride)!
            blocks.append(p)
            let typed = p.bindMemory(to: T.self, capacity: items.count)
            for (i, item) in items.enumerated() { (typed + i).initialize(to: item) }
            return typed
        }

        func string(_ s: String) -> UnsafeMutablePointer<CChar> {
            let p = strdup(s)!
            blocks.append(UnsafeMutableRawPointer(p))
            return p
        }

        func bytes(_ b: [UInt8]) -> ProtobufCBinaryData {
            guard !b.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
            let p = malloc(b.count)!
            blocks.append(p)
            b.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: b.count) }
            return ProtobufCBinaryData(len: b.count, data: p.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// `spec` in protobuf wire format; a decoded spec re-encodes to the same bytes (tensors are kept raw).
    public static func encode(_ spec: RouterSpec) -> [UInt8] {
        let arena = Arena()
        func tensor(_ t: WireTensor?) -> UnsafeMutablePointer<Switchyard__V1__Tensor>? {
            guard let t else { return nil }
            return arena.make(Switchyard__V1__Tensor.self) { p in
                switchyard__v1__tensor__init(p)
                p.pointee.n_shape = t.shape.count
                p.pointee.shape = arena.array(t.shape.map { UInt32($0) })
                p.pointee.dtype = Switchyard__V1__DType(rawValue: UInt32(t.dtype.rawValue))
                p.pointee.data = arena.bytes(t.bytes)
            }
        }
        let msg = arena.make(Switchyard__V1__RouterSpec.self) { switchyard__v1__router_spec__init($0) }
        msg.pointee.name = arena.string(spec.name)
        msg.pointee.version = UInt32(spec.version)
        msg.pointee.granularity = Switchyard__V1__Granularity(rawValue: UInt32(spec.granularity.rawValue))
        let experts = spec.experts.map { e in
            Optional(
                arena.make(Switchyard__V1__ExpertRef.self) { p in
                    switchyard__v1__expert_ref__init(p)
                    p.pointee.name = arena.string(e.name)
                    p.pointee.sha256 = arena.string(e.sha256)
                })
        }
        msg.pointee.n_experts = experts.count
        msg.pointee.experts = arena.array(experts)
        if let s = spec.selection {
            msg.pointee.selection = arena.make(Switchyard__V1__Selection.self) { p in
                switchyard__v1__selection__init(p)
                p.pointee.mode = Switchyard__V1__SelectionMode(rawValue: UInt32(s.mode.rawValue))
                p.pointee.top_k = UInt32(s.topK)
                p.pointee.top_p = s.topP
                p.pointee.threshold = s.threshold
                p.pointee.temperature = s.temperature
                p.pointee.every_n = UInt32(s.everyN)
                p.pointee.prompt_routing = Switchyard__V1__PromptRouting(rawValue: UInt32(s.promptRouting.rawValue))
                p.pointee.context_window = UInt32(s.contextWindow)
            }
        }
        msg.pointee.base_model = arena.string(spec.baseModel)
        let metadata = spec.metadata.map { kv in
            Optional(
                arena.make(Switchyard__V1__Metadata.self) { p in
                    switchyard__v1__metadata__init(p)
                    p.pointee.key = arena.string(kv.key)
                    p.pointee.value = arena.string(kv.value)
                })
        }
        msg.pointee.n_metadata = metadata.count
        msg.pointee.metadata = arena.array(metadata)
        switch spec.gate {
        case .none:
            msg.pointee.gate_case = SWITCHYARD__V1__ROUTER_SPEC__GATE__NOT_SET
        case let .sentence(featureLayer, pooling, layers):
            msg.pointee.gate_case = SWITCHYARD__V1__ROUTER_SPEC__GATE_SENTENCE
            let dense = layers.map { l in
                Optional(
                    arena.make(Switchyard__V1__Dense.self) { p in
                        switchyard__v1__dense__init(p)
                        p.pointee.weight = tensor(l.weight)
                        p.pointee.bias = tensor(l.bias)
                        p.pointee.activation = Switchyard__V1__Activation(rawValue: UInt32(l.activation.rawValue))
                    })
            }
            msg.pointee.sentence = arena.make(Switchyard__V1__SentenceGate.self) { p in
                switchyard__v1__sentence_gate__init(p)
                p.pointee.feature_layer = UInt32(featureLayer)
                p.pointee.pooling = Switchyard__V1__Pooling(rawValue: UInt32(pooling.rawValue))
                p.pointee.n_layers = dense.count
                p.pointee.layers = arena.array(dense)
            }
        case let .token(layers, global, sourceLayer, context):
            msg.pointee.gate_case = SWITCHYARD__V1__ROUTER_SPEC__GATE_TOKEN
            let gates = layers.map { l in
                Optional(
                    arena.make(Switchyard__V1__LayerGate.self) { p in
                        switchyard__v1__layer_gate__init(p)
                        p.pointee.layer = UInt32(l.layer)
                        p.pointee.n_experts = l.experts.count
                        p.pointee.experts = arena.array(l.experts.map { UInt32($0) })
                        p.pointee.weight = tensor(l.weight)
                        p.pointee.bias = tensor(l.bias)
                    })
            }
            msg.pointee.token = arena.make(Switchyard__V1__TokenGate.self) { p in
                switchyard__v1__token_gate__init(p)
                p.pointee.n_layers = gates.count
                p.pointee.layers = arena.array(gates)
                p.pointee.global = global ? 1 : 0
                p.pointee.source_layer = UInt32(sourceLayer)
                p.pointee.context = Switchyard__V1__CentroidContext(rawValue: UInt32(context.rawValue))
            }
        case let .centroid(layer, centroids, context, centroidExperts):
            msg.pointee.gate_case = SWITCHYARD__V1__ROUTER_SPEC__GATE_CENTROID
            msg.pointee.centroid = arena.make(Switchyard__V1__CentroidGate.self) { p in
                switchyard__v1__centroid_gate__init(p)
                p.pointee.layer = UInt32(layer)
                p.pointee.centroids = tensor(centroids)
                p.pointee.context = Switchyard__V1__CentroidContext(rawValue: UInt32(context.rawValue))
                p.pointee.n_centroid_experts = centroidExperts.count
                p.pointee.centroid_experts = arena.array(centroidExperts.map { UInt32($0) })
            }
        case let .rank(modules, activation):
            msg.pointee.gate_case = SWITCHYARD__V1__ROUTER_SPEC__GATE_RANK
            let ms = modules.map { r in
                Optional(
                    arena.make(Switchyard__V1__RankModule.self) { p in
                        switchyard__v1__rank_module__init(p)
                        p.pointee.layer = UInt32(r.layer)
                        p.pointee.module = arena.string(r.module)
                        p.pointee.a = tensor(r.a)
                        p.pointee.b = tensor(r.b)
                        p.pointee.gate = tensor(r.gate)
                        p.pointee.scale = r.scale
                    })
            }
            msg.pointee.rank = arena.make(Switchyard__V1__RankGate.self) { p in
                switchyard__v1__rank_gate__init(p)
                p.pointee.n_modules = ms.count
                p.pointee.modules = arena.array(ms)
                p.pointee.activation = Switchyard__V1__RankActivation(rawValue: UInt32(activation.rawValue))
            }
        }
        let size = switchyard__v1__router_spec__get_packed_size(msg)
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBufferPointer { switchyard__v1__router_spec__pack(msg, $0.baseAddress) }
        precondition(written == size, "protobuf-c packed \(written) bytes, expected \(size)")
        return out
    }
}
