import Foundation

/// The LoRA weights of one projection: `Δy = scale · B · (A · x)`.
public struct LoRAModule: Sendable, Equatable {
    /// The projection this module adapts.
    public let site: ProjectionSite
    /// `[rank × in]` (PEFT's `lora_A.weight`).
    public var a: Matrix
    /// `[out × rank]` (PEFT's `lora_B.weight`).
    public var b: Matrix
    /// `lora_alpha / r` (or `/ sqrt(r)` with rsLoRA), pattern overrides applied.
    public var scale: Float

    /// A module from its factors; `a.rows` (the rank) must equal `b.cols`.
    public init(site: ProjectionSite, a: Matrix, b: Matrix, scale: Float) {
        precondition(a.rows == b.cols, "LoRA A rows (\(a.rows)) must equal B cols (\(b.cols))")
        self.site = site
        self.a = a
        self.b = b
        self.scale = scale
    }

    /// The module's rank r.
    public var rank: Int { a.rows }
    /// Values in A and B.
    public var parameterCount: Int { a.data.count + b.data.count }

    /// `A = Σ aFactor_i·A_i`, `B = Σ bFactor_i·B_i` over modules of one rank and shape, at scale 1
    /// (PEFT's linear combination and LoraHub's composition).
    static func weightedSum(_ parts: [(module: LoRAModule, aFactor: Float, bFactor: Float)], site: ProjectionSite)
        -> LoRAModule
    {
        let first = parts[0].module
        var a = Matrix(rows: first.rank, cols: first.a.cols), b = Matrix(rows: first.b.rows, cols: first.rank)
        for (m, fa, fb) in parts {
            for i in a.data.indices { a.data[i] += fa * m.a.data[i] }
            for i in b.data.indices { b.data[i] += fb * m.b.data[i] }
        }
        return LoRAModule(site: site, a: a, b: b, scale: 1)
    }

    /// The dense update `scale · B · A`, `[out × in]`.
    public func delta() -> Matrix {
        var out = Matrix(rows: b.rows, cols: a.cols)
        b.data.withUnsafeBufferPointer { bp in
            a.data.withUnsafeBufferPointer { ap in
                out.data.withUnsafeMutableBufferPointer { o in
                    BLAS.gemm(
                        m: b.rows, n: a.cols, k: rank, alpha: scale, a: bp.baseAddress!, lda: rank,
                        b: ap.baseAddress!, ldb: a.cols, c: o.baseAddress!, ldc: a.cols)
                }
            }
        }
        return out
    }
}

/// A PEFT LoRA adapter ("expert"): its configuration and per-projection weights, validated against a
/// base model's shapes.
public struct LoRAAdapter: Sendable {
    /// The expert's name (its registry directory name).
    public var name: String
    /// The parsed `adapter_config.json` (ranks, alphas, targets).
    public var config: AdapterConfig
    /// The adapted projections and their weights.
    public var modules: [ProjectionSite: LoRAModule]
    /// For an adapter written by LoraHub composition, the experts and weights it was composed
    /// from (`name=weight,…`); nil for a trained expert. Stored in the safetensors `__metadata__`
    /// under `compositionMetadataKey` (which PEFT ignores); default composition pools leave
    /// composed adapters out.
    public var composition: String?

    /// The safetensors `__metadata__` key that marks a composed adapter.
    public static let compositionMetadataKey = "switchyard.composed_from"

    /// An adapter from parts already validated against each other (`load` validates files).
    public init(name: String, config: AdapterConfig, modules: [ProjectionSite: LoRAModule], composition: String? = nil)
    {
        self.name = name
        self.config = config
        self.modules = modules
        self.composition = composition
    }

    /// Values in every module's A and B.
    public var parameterCount: Int { modules.values.reduce(0) { $0 + $1.parameterCount } }
    /// Bytes held in memory (Float32).
    public var byteCount: Int { parameterCount * 4 }
    /// Distinct ranks over modules, ascending.
    public var ranks: [Int] { Array(Set(modules.values.map(\.rank))).sorted() }
    /// Projection kinds adapted in at least one layer.
    public var targetKinds: [ProjectionKind] {
        ProjectionKind.allCases.filter { k in modules.keys.contains { $0.kind == k } }
    }

    static let keyPrefix = "base_model.model."

    /// PEFT's tensor name for a module's A or B.
    public static func tensorName(_ site: ProjectionSite, _ which: String) -> String {
        "\(keyPrefix)\(site.description).lora_\(which).weight"
    }

    /// Loads `adapter_config.json` + `adapter_model.safetensors` from `directory` and checks them
    /// against each other and against `base`: every tensor belongs to a targeted module of the base
    /// model, every targeted module has both tensors, and every shape and rank is what the config says.
    public static func load(directory: URL, name: String? = nil, base: ModelConfig) throws -> LoRAAdapter {
        let (config, file, plan) = try validate(directory: directory, base: base)
        return try load(config: config, file: file, plan: plan, name: name ?? directory.lastPathComponent)
    }

    /// Reads the weights a validated plan names, refusing NaN and infinite values.
    static func load(config: AdapterConfig, file: SafeTensorsFile, plan: [ModulePlan], name: String) throws
        -> LoRAAdapter
    {
        var modules: [ProjectionSite: LoRAModule] = [:]
        for p in plan {
            let a = try file.matrix(p.aKey), b = try file.matrix(p.bKey)
            _ = try FiniteWeights.require(a, path: file.path, tensor: p.aKey)
            _ = try FiniteWeights.require(b, path: file.path, tensor: p.bKey)
            modules[p.site] = LoRAModule(site: p.site, a: a, b: b, scale: p.scale)
        }
        return LoRAAdapter(
            name: name, config: config, modules: modules, composition: file.metadata[compositionMetadataKey])
    }

    /// Throws when an adapter holds a NaN or infinite weight or scale (naming the tensor).
    public func checkFinite(path: String) throws {
        for site in modules.keys.sorted(by: { ($0.layer, $0.kind.rawValue) < ($1.layer, $1.kind.rawValue) }) {
            let m = modules[site]!
            _ = try FiniteWeights.require(m.a, path: path, tensor: Self.tensorName(site, "A"))
            _ = try FiniteWeights.require(m.b, path: path, tensor: Self.tensorName(site, "B"))
            guard m.scale.isFinite else {
                throw SwitchyardError.invalidArgument("\(path): module \(site): scale \(m.scale) is not finite")
            }
        }
    }

    /// What validation learns about an adapter without reading its weights.
    public struct Summary: Sendable, Equatable {
        /// The parsed `adapter_config.json`.
        public var config: AdapterConfig
        /// Distinct module ranks, ascending.
        public var ranks: [Int]
        /// Projection kinds adapted in at least one layer.
        public var targetKinds: [ProjectionKind]
        /// Adapted projections (layer × kind).
        public var moduleCount: Int
        /// Elements of every A and B matrix together (Float32 after load: 4 bytes each).
        public var parameterCount: Int
        /// Size of `adapter_model.safetensors`.
        public var fileBytes: Int
        /// See `LoRAAdapter.composition`.
        public var composition: String?
    }

    /// Validates an adapter directory against `base` (same checks as `load`) reading only headers.
    public static func inspect(directory: URL, base: ModelConfig) throws -> Summary {
        let (config, file, plan) = try validate(directory: directory, base: base)
        return summarize(config: config, file: file, plan: plan)
    }

    /// The summary of a validated adapter.
    static func summarize(config: AdapterConfig, file: SafeTensorsFile, plan: [ModulePlan]) -> Summary {
        Summary(
            config: config, ranks: Array(Set(plan.map(\.rank))).sorted(),
            targetKinds: ProjectionKind.allCases.filter { k in plan.contains { $0.site.kind == k } },
            moduleCount: plan.count, parameterCount: plan.reduce(0) { $0 + $1.parameters }, fileBytes: file.fileBytes,
            composition: file.metadata[compositionMetadataKey])
    }

    struct ModulePlan {
        var site: ProjectionSite
        var aKey: String
        var bKey: String
        var rank: Int
        var scale: Float
        var parameters: Int
    }

    static func validate(directory: URL, base: ModelConfig) throws -> (AdapterConfig, SafeTensorsFile, [ModulePlan]) {
        let fm = FileManager.default
        let configURL = directory.appendingPathComponent("adapter_config.json")
        let weightsURL = directory.appendingPathComponent("adapter_model.safetensors")
        guard let configData = fm.contents(atPath: configURL.path) else {
            throw SwitchyardError.io(
                path: configURL.path,
                reason: "cannot read adapter_config.json (is \(directory.path) a PEFT adapter directory?)")
        }
        let config = try AdapterConfig.parse(configData, path: configURL.path)
        guard fm.fileExists(atPath: weightsURL.path) else {
            let others = ((try? fm.contentsOfDirectory(atPath: directory.path)) ?? []).filter {
                $0.hasSuffix(".bin") || $0.hasSuffix(".pt")
            }
            let hint =
                others.isEmpty
                ? ""
                : " (found \(others.sorted().joined(separator: ", ")): pickle weights are not loaded; save with safe_serialization)"
            throw SwitchyardError.io(path: weightsURL.path, reason: "missing adapter_model.safetensors\(hint)")
        }
        let file = try SafeTensorsFile(url: weightsURL)
        let path = weightsURL.path

        var found: [ProjectionSite: (a: String?, b: String?)] = [:]
        for key in file.names {
            guard let (site, which) = parseKey(key, numLayers: base.numLayers) else {
                throw SwitchyardError.unsupported(
                    path: path,
                    what:
                        "tensor \(EscapedText.quoted(key)) is not a LoRA A/B weight of a Llama decoder projection with a layer index below \(base.numLayers) (found keys: \(file.names.prefix(6).map { EscapedText.quoted($0, limit: 80) }.joined(separator: ", "))\(file.names.count > 6 ? ", …" : ""))"
                )
            }
            if which == "A" {
                found[site, default: (nil, nil)].a = key
            } else {
                found[site, default: (nil, nil)].b = key
            }
        }
        var plan: [ModulePlan] = []
        for layer in 0..<base.numLayers {
            for kind in ProjectionKind.allCases {
                let site = ProjectionSite(layer: layer, kind: kind)
                let targeted = try config.targets(layer: layer, moduleName: site.description)
                guard let keys = found[site] else {
                    if targeted {
                        throw SwitchyardError.missingTensor(
                            path: path, tensor: tensorName(site, "A") + " (the config targets \(site))")
                    }
                    continue
                }
                guard targeted else {
                    throw SwitchyardError.config(
                        path: configURL.path, field: "target_modules",
                        reason: "the weights adapt \(site) but the config does not target it")
                }
                guard let aKey = keys.a else {
                    throw SwitchyardError.missingTensor(path: path, tensor: tensorName(site, "A"))
                }
                guard let bKey = keys.b else {
                    throw SwitchyardError.missingTensor(path: path, tensor: tensorName(site, "B"))
                }
                let (out, inF) = base.projectionShape(kind)
                let r = try config.rank(forModule: site.description)
                for (key, expected) in [(aKey, [r, inF]), (bKey, [out, r])] {
                    let info = file.tensors[key]!
                    guard info.shape == expected else {
                        throw SwitchyardError.shapeMismatch(
                            path: path, tensor: key, expected: expected, found: info.shape)
                    }
                    guard [.f32, .f16, .bf16].contains(info.dtype) else {
                        throw SwitchyardError.safetensors(
                            path: path, tensor: key,
                            reason: "dtype \(info.dtype.rawValue) (F32, F16, BF16 are supported)")
                    }
                }
                plan.append(
                    ModulePlan(
                        site: site, aKey: aKey, bKey: bKey, rank: r,
                        scale: try config.scale(forModule: site.description), parameters: r * (inF + out)))
            }
        }
        guard !plan.isEmpty else {
            throw SwitchyardError.config(
                path: configURL.path, field: "target_modules",
                reason: "the adapter adapts no projection of the base model")
        }
        return (config, file, plan)
    }

    /// `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight` → (site, "A"). The layer
    /// index is written as PEFT writes it: decimal digits, no sign, no leading zero (`layers.+3`,
    /// `layers.-0`, `layers.03` name no module).
    static func parseKey(_ key: String, numLayers: Int) -> (ProjectionSite, String)? {
        guard key.hasPrefix(keyPrefix + "model.layers.") else { return nil }
        var rest = key.dropFirst((keyPrefix + "model.layers.").count)
        guard let dot = rest.firstIndex(of: ".") else { return nil }
        let digits = rest[..<dot]
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            digits == "0" || digits.first != "0",
            let layer = Int(digits), layer < numLayers
        else { return nil }
        rest = rest[rest.index(after: dot)...]
        for which in ["A", "B"] {
            let suffix = ".lora_\(which).weight"
            guard rest.hasSuffix(suffix) else { continue }
            let module = String(rest.dropLast(suffix.count))
            guard let kind = ProjectionKind.allCases.first(where: { $0.modulePath == module }) else { return nil }
            return (ProjectionSite(layer: layer, kind: kind), which)
        }
        return nil
    }

    /// Writes a PEFT adapter directory (`adapter_config.json`, `adapter_model.safetensors`) that
    /// `PeftModel.from_pretrained` loads unchanged. Files are replaced atomically.
    public func write(to directory: URL) throws {
        // A NaN or infinity (an overflowing merge weight, a diverged composition) is refused
        // before anything is written: loading would refuse it anyway.
        try checkFinite(path: directory.path)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw SwitchyardError.io(
                path: directory.path, reason: "cannot create directory: \(error.localizedDescription)")
        }
        var entries: [SafeTensorsWriter.Entry] = []
        for site in modules.keys.sorted(by: { ($0.layer, $0.kind.rawValue) < ($1.layer, $1.kind.rawValue) }) {
            let m = modules[site]!
            entries.append(.init(name: Self.tensorName(site, "A"), shape: m.a.shape, values: m.a.data))
            entries.append(.init(name: Self.tensorName(site, "B"), shape: m.b.shape, values: m.b.data))
        }
        var metadata = ["format": "pt"]
        if let composition { metadata[Self.compositionMetadataKey] = composition }
        try SafeTensorsWriter.write(
            entries, metadata: metadata, to: directory.appendingPathComponent("adapter_model.safetensors"))
        let json = try JSONSerialization.data(withJSONObject: config.peftJSON(), options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json, to: directory.appendingPathComponent("adapter_config.json"))
    }
}
