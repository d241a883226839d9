import Foundation

/// The architecture families Switchyard runs. All three share the Llama decoder; they differ in
/// attention bias and sliding-window defaults.
public enum ModelArchitecture: String, Sendable, CaseIterable {
    case llama = "LlamaForCausalLM"
    case mistral = "MistralForCausalLM"
    case qwen2 = "Qwen2ForCausalLM"
}

/// The subset of a Hugging Face `config.json` a Llama-family decoder needs.
///
/// Read field by field so that a missing or mistyped field is reported by name. Anything that would
/// change the computation but is not implemented (another architecture, a rope scaling type, an
/// activation other than SiLU, an MLP bias) is refused rather than silently ignored.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: ModelArchitecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    /// Rotary frequency scaling (`rope_scaling` / `rope_parameters` with a non-default type).
    public var ropeScaling: RopeScaling = .none
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    /// Bias on the q, k and v projections (Qwen2 always; Llama when `attention_bias`).
    public var qkvBias: Bool
    /// Bias on the o projection (Llama's `attention_bias` only).
    public var outputBias: Bool
    /// Attention looks back at most this many positions (Mistral); nil for full attention.
    public var slidingWindow: Int?
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]

    public init(architecture: ModelArchitecture, vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
                numLayers: Int, numHeads: Int, numKVHeads: Int, headDim: Int? = nil,
                rmsNormEps: Float = 1e-5, ropeTheta: Float = 10000, maxPositionEmbeddings: Int = 2048,
                tieWordEmbeddings: Bool = false, qkvBias: Bool = false, outputBias: Bool = false,
                slidingWindow: Int? = nil, bosTokenID: Int? = nil, eosTokenIDs: [Int] = []) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim ?? hiddenSize / numHeads
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings
        self.qkvBias = qkvBias
        self.outputBias = outputBias
        self.slidingWindow = slidingWindow
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
    }

    /// SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads, 3 kv heads, vocab 49152): the
    /// reference model for `switchyard bench`.
    public static let smolLM2_135M = ModelConfig(
        architecture: .llama, vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numLayers: 30,
        numHeads: 9, numKVHeads: 3, headDim: 64, rmsNormEps: 1e-5, ropeTheta: 100000,
        maxPositionEmbeddings: 8192, tieWordEmbeddings: true)

    /// `(out, in)` features of a projection.
    public func projectionShape(_ kind: ProjectionKind) -> (out: Int, in: Int) {
        switch kind {
        case .q: return (numHeads * headDim, hiddenSize)
        case .k, .v: return (numKVHeads * headDim, hiddenSize)
        case .o: return (hiddenSize, numHeads * headDim)
        case .gate, .up: return (intermediateSize, hiddenSize)
        case .down: return (hiddenSize, intermediateSize)
        }
    }

    /// Parameters in the model (embeddings counted once when tied).
    public var parameterCount: Int {
        let attn = hiddenSize * headDim * (2 * numHeads + 2 * numKVHeads)
        let mlp = 3 * hiddenSize * intermediateSize
        let perLayer = attn + mlp + 2 * hiddenSize
        let embed = vocabSize * hiddenSize
        return numLayers * perLayer + embed * (tieWordEmbeddings ? 1 : 2) + hiddenSize
    }

    /// Checks the invariants the forward pass relies on.
    public func validate(path: String) throws {
        func positive(_ v: Int, _ field: String) throws {
            guard v > 0 else { throw SwitchyardError.config(path: path, field: field, reason: "must be positive, found \(v)") }
        }
        try positive(vocabSize, "vocab_size")
        try positive(hiddenSize, "hidden_size")
        try positive(intermediateSize, "intermediate_size")
        try positive(numLayers, "num_hidden_layers")
        try positive(numHeads, "num_attention_heads")
        try positive(numKVHeads, "num_key_value_heads")
        try positive(headDim, "head_dim")
        try positive(maxPositionEmbeddings, "max_position_embeddings")
        guard numHeads % numKVHeads == 0 else {
            throw SwitchyardError.config(path: path, field: "num_key_value_heads",
                                         reason: "\(numKVHeads) does not divide num_attention_heads \(numHeads)")
        }
        guard headDim % 2 == 0 else {
            throw SwitchyardError.config(path: path, field: "head_dim", reason: "must be even for rotary embeddings, found \(headDim)")
        }
        guard rmsNormEps > 0, ropeTheta > 0 else {
            throw SwitchyardError.config(path: path, field: "rms_norm_eps/rope_theta", reason: "must be positive")
        }
    }

    /// Reads `config.json`.
    public static func load(from url: URL) throws -> ModelConfig {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw SwitchyardError.io(path: path, reason: "not found (is \(url.deletingLastPathComponent().path) a Hugging Face model directory?)")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SwitchyardError.io(path: path, reason: "cannot read config.json: \(error.localizedDescription)")
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SwitchyardError.config(path: path, field: "(root)", reason: "not a JSON object")
        }
        return try parse(obj, path: path)
    }

    static func parse(_ obj: [String: Any], path: String) throws -> ModelConfig {
        func int(_ key: String) throws -> Int? {
            guard let v = obj[key], !(v is NSNull) else { return nil }
            if !(type(of: v) == Bool.self), let n = v as? NSNumber, let i = Int(exactly: n.doubleValue) { return i }
            throw SwitchyardError.config(path: path, field: key, reason: "expected an integer, found \(v)")
        }
        func required(_ key: String) throws -> Int {
            guard let v = try int(key) else { throw SwitchyardError.config(path: path, field: key, reason: "missing") }
            return v
        }
        func double(_ key: String) throws -> Double? {
            guard let v = obj[key], !(v is NSNull) else { return nil }
            if let n = v as? NSNumber { return n.doubleValue }
            throw SwitchyardError.config(path: path, field: key, reason: "expected a number, found \(v)")
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = obj[key], !(v is NSNull) else { return nil }
            if type(of: v) == Bool.self || String(describing: type(of: v)).contains("Bool"), let b = v as? Bool { return b }
            throw SwitchyardError.config(path: path, field: key, reason: "expected true or false, found \(v)")
        }

        let archName = (obj["architectures"] as? [String])?.first
        let modelType = obj["model_type"] as? String
        let architecture: ModelArchitecture
        if let archName {
            guard let a = ModelArchitecture(rawValue: archName) else {
                throw SwitchyardError.unsupported(path: path, what: "architecture '\(archName)' (supported: \(ModelArchitecture.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            architecture = a
        } else {
            switch modelType {
            case "llama": architecture = .llama
            case "mistral": architecture = .mistral
            case "qwen2": architecture = .qwen2
            default:
                throw SwitchyardError.unsupported(path: path, what: "model_type '\(modelType ?? "(missing)")' without a supported 'architectures' entry")
            }
        }
        if let act = obj["hidden_act"] as? String, act != "silu" {
            throw SwitchyardError.unsupported(path: path, what: "hidden_act '\(act)' (only 'silu')")
        }
        if try bool("mlp_bias") == true {
            throw SwitchyardError.unsupported(path: path, what: "mlp_bias true")
        }
        // transformers ≤4 writes `rope_scaling` + `rope_theta`; transformers 5 writes `rope_parameters`.
        var theta = try double("rope_theta")
        var scaling = RopeScaling.none
        for key in ["rope_scaling", "rope_parameters"] {
            guard let v = obj[key], !(v is NSNull) else { continue }
            guard let params = v as? [String: Any] else {
                throw SwitchyardError.config(path: path, field: key, reason: "expected an object")
            }
            if let t = params["rope_theta"] as? NSNumber { theta = t.doubleValue }
            scaling = try RopeScaling.parse(params, field: key, path: path)
        }

        let hidden = try required("hidden_size")
        let heads = try required("num_attention_heads")
        var sliding: Int? = nil
        switch architecture {
        case .mistral: sliding = try int("sliding_window")
        case .qwen2: if try bool("use_sliding_window") == true { sliding = try int("sliding_window") }
        case .llama: break
        }
        if architecture == .qwen2, try bool("use_sliding_window") == true {
            throw SwitchyardError.unsupported(path: path, what: "Qwen2 use_sliding_window true (per-layer windows)")
        }
        let attentionBias = try bool("attention_bias") ?? false
        var eos: [Int] = []
        if let e = obj["eos_token_id"] as? NSNumber { eos = [e.intValue] }
        else if let e = obj["eos_token_id"] as? [NSNumber] { eos = e.map(\.intValue) }

        let config = ModelConfig(
            architecture: architecture,
            vocabSize: try required("vocab_size"),
            hiddenSize: hidden,
            intermediateSize: try required("intermediate_size"),
            numLayers: try required("num_hidden_layers"),
            numHeads: heads,
            numKVHeads: try int("num_key_value_heads") ?? heads,
            headDim: try int("head_dim") ?? (heads > 0 ? hidden / heads : 0),
            rmsNormEps: Float(try double("rms_norm_eps") ?? 1e-6),
            ropeTheta: Float(theta ?? 10000),
            maxPositionEmbeddings: try int("max_position_embeddings") ?? 2048,
            tieWordEmbeddings: try bool("tie_word_embeddings") ?? false,
            qkvBias: architecture == .qwen2 || attentionBias,
            outputBias: architecture != .qwen2 && attentionBias,
            slidingWindow: sliding,
            bosTokenID: try int("bos_token_id"),
            eosTokenIDs: eos)
        var result = config
        result.ropeScaling = scaling
        try result.validate(path: path)
        return result
    }
}

/// Rotary-embedding frequency scaling, as transformers computes it (`modeling_rope_utils`).
public enum RopeScaling: Sendable, Equatable {
    case none
    /// `inv_freq / factor` (position interpolation).
    case linear(factor: Float)
    /// Llama 3.1: long wavelengths divided by `factor`, short ones kept, a smooth blend between.
    case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalMaxPositions: Int)

    static func parse(_ p: [String: Any], field: String, path: String) throws -> RopeScaling {
        let type = (p["rope_type"] as? String) ?? (p["type"] as? String) ?? "default"
        func number(_ key: String) throws -> Float {
            guard let n = p[key] as? NSNumber else {
                throw SwitchyardError.config(path: path, field: "\(field).\(key)", reason: "missing (needed for rope type '\(type)')")
            }
            return n.floatValue
        }
        if let partial = p["partial_rotary_factor"] as? NSNumber, partial.doubleValue != 1 {
            throw SwitchyardError.unsupported(path: path, what: "\(field).partial_rotary_factor \(partial)")
        }
        switch type {
        case "default": return .none
        case "linear": return .linear(factor: try number("factor"))
        case "llama3":
            return .llama3(factor: try number("factor"), lowFrequencyFactor: try number("low_freq_factor"),
                           highFrequencyFactor: try number("high_freq_factor"),
                           originalMaxPositions: Int(try number("original_max_position_embeddings")))
        default:
            throw SwitchyardError.unsupported(path: path, what: "\(field) type '\(type)' (supported: default, linear, llama3)")
        }
    }

    /// Applies the scaling to the default inverse frequencies (Float32 arithmetic, as transformers).
    func apply(_ inv: [Float]) -> [Float] {
        switch self {
        case .none: return inv
        case let .linear(factor): return inv.map { $0 / factor }
        case let .llama3(factor, low, high, original):
            let old = Float(original)
            let lowWavelen = old / low, highWavelen = old / high
            return inv.map { f in
                let wavelen = Float(2 * Double.pi) / f
                let scaled = wavelen > lowWavelen ? f / factor : f
                let smooth = (old / wavelen - low) / (high - low)
                let smoothed = (1 - smooth) * scaled / factor + smooth * scaled
                let medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen)
                return medium ? smoothed : scaled
            }
        }
    }
}
