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
    /// The decoder family (`architectures[0]`, or `model_type` when that list is absent).
    public var architecture: ModelArchitecture
    /// Rows of the embedding and the LM head: valid token ids are `0..<vocabSize` (`vocab_size`).
    public var vocabSize: Int
    /// Width of the residual stream (`hidden_size`).
    public var hiddenSize: Int
    /// Width of the SwiGLU MLP's gate/up outputs (`intermediate_size`).
    public var intermediateSize: Int
    /// Decoder layers (`num_hidden_layers`).
    public var numLayers: Int
    /// Query heads (`num_attention_heads`).
    public var numHeads: Int
    /// Key/value heads (`num_key_value_heads`; `numHeads` is a multiple of it, grouped-query attention).
    public var numKVHeads: Int
    /// Features per attention head (`head_dim`; default `hiddenSize / numHeads`); even, for rotary.
    public var headDim: Int
    /// Epsilon added to the mean square in every RMSNorm (`rms_norm_eps`), in (0, 1].
    public var rmsNormEps: Float
    /// Rotary base θ (`rope_theta`): inverse frequencies are θ^(-2i/headDim).
    public var ropeTheta: Float
    /// Rotary frequency scaling (`rope_scaling` / `rope_parameters` with a non-default type).
    public var ropeScaling: RopeScaling = .none
    /// The context length the model was trained for (`max_position_embeddings`): positions are
    /// `0..<maxPositionEmbeddings`.
    public var maxPositionEmbeddings: Int
    /// The LM head reuses the embedding matrix (`tie_word_embeddings`; no `lm_head.weight`).
    public var tieWordEmbeddings: Bool
    /// Bias on the q, k and v projections (Qwen2 always; Llama when `attention_bias`).
    public var qkvBias: Bool
    /// Bias on the o projection (Llama's `attention_bias` only).
    public var outputBias: Bool
    /// Attention looks back at most this many positions (Mistral); nil for full attention.
    public var slidingWindow: Int?
    /// Beginning-of-sequence token (`bos_token_id`), nil when the config has none.
    public var bosTokenID: Int?
    /// Tokens that end generation (`eos_token_id`, an integer or a list); may be empty.
    public var eosTokenIDs: [Int]

    /// A config from its sizes (`headDim` nil: `hiddenSize / numHeads`). Not validated: call
    /// `validate(path:)` before building a model from untrusted values.
    public init(
        architecture: ModelArchitecture, vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
        numLayers: Int, numHeads: Int, numKVHeads: Int, headDim: Int? = nil,
        rmsNormEps: Float = 1e-5, ropeTheta: Float = 10000, maxPositionEmbeddings: Int = 2048,
        tieWordEmbeddings: Bool = false, qkvBias: Bool = false, outputBias: Bool = false,
        slidingWindow: Int? = nil, bosTokenID: Int? = nil, eosTokenIDs: [Int] = []
    ) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim ?? (numHeads > 0 ? hiddenSize / numHeads : 0)
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
        let perLayer = projectionWeightsPerLayer + 2 * hiddenSize
        let embed = vocabSize * hiddenSize
        return numLayers * perLayer + embed * (tieWordEmbeddings ? 1 : 2) + hiddenSize
    }

    /// Multiply-adds of one token's forward pass at KV depth `depth` (the token attends to `depth`
    /// earlier positions and itself): every projection, the attention scores and weighted values,
    /// and the output head. Norms, activations and RoPE are left out (a few per value, not per
    /// weight). The count a decode step's time is compared with against the machine's peak.
    public func multiplyAddsPerToken(depth: Int) -> Int {
        let scores = 2 * numHeads * headDim * (depth + 1)
        return numLayers * (projectionWeightsPerLayer + scores) + vocabSize * hiddenSize
    }

    /// Weights of one layer's seven projections (q, k, v, o, gate, up, down).
    private var projectionWeightsPerLayer: Int {
        hiddenSize * headDim * (2 * numHeads + 2 * numKVHeads) + 3 * hiddenSize * intermediateSize
    }

    /// Largest values accepted for each size. Far above any released model, low enough that every
    /// size product the model computes (weights per layer, parameter counts, KV cache offsets) fits
    /// in an `Int` — a hostile config must not turn into an overflow or a giant allocation.
    enum Limits {
        static let vocabSize = 1 << 24
        static let hiddenSize = 1 << 18
        static let intermediateSize = 1 << 20
        static let numLayers = 1 << 12
        static let numHeads = 1 << 12
        static let headDim = 1 << 12
        static let maxPositionEmbeddings = 1 << 26
    }

    /// Checks the invariants the forward pass relies on: every size positive and within
    /// `Limits`, heads divisible into key/value groups, an even head dimension, finite positive
    /// epsilon and rope base, a positive sliding window, token ids inside the vocabulary, rope
    /// scaling parameters in their ranges. Errors name `path` and the config field.
    public func validate(path: String) throws {
        func bad(_ field: String, _ reason: String) -> SwitchyardError {
            .config(path: path, field: field, reason: reason)
        }
        func inRange(_ v: Int, _ field: String, max: Int) throws {
            guard v > 0 else { throw bad(field, "must be positive, found \(v)") }
            guard v <= max else { throw bad(field, "\(v) is larger than the supported maximum \(max)") }
        }
        try inRange(vocabSize, "vocab_size", max: Limits.vocabSize)
        try inRange(hiddenSize, "hidden_size", max: Limits.hiddenSize)
        try inRange(intermediateSize, "intermediate_size", max: Limits.intermediateSize)
        try inRange(numLayers, "num_hidden_layers", max: Limits.numLayers)
        try inRange(numHeads, "num_attention_heads", max: Limits.numHeads)
        try inRange(numKVHeads, "num_key_value_heads", max: Limits.numHeads)
        try inRange(headDim, "head_dim", max: Limits.headDim)
        try inRange(maxPositionEmbeddings, "max_position_embeddings", max: Limits.maxPositionEmbeddings)
        guard numHeads % numKVHeads == 0 else {
            throw bad("num_key_value_heads", "\(numKVHeads) does not divide num_attention_heads \(numHeads)")
        }
        guard headDim % 2 == 0 else { throw bad("head_dim", "must be even for rotary embeddings, found \(headDim)") }
        guard rmsNormEps.isFinite, rmsNormEps > 0, rmsNormEps <= 1 else {
            throw bad("rms_norm_eps", "must be a number in (0, 1], found \(rmsNormEps)")
        }
        guard ropeTheta.isFinite, ropeTheta > 0 else {
            throw bad("rope_theta", "must be a positive finite number, found \(ropeTheta)")
        }
        if let window = slidingWindow {
            guard window > 0 else {
                throw bad("sliding_window", "must be positive (or null for full attention), found \(window)")
            }
        }
        if let bos = bosTokenID, !(0..<vocabSize).contains(bos) {
            throw bad("bos_token_id", "\(bos) is not a token id below vocab_size \(vocabSize)")
        }
        for eos in eosTokenIDs where !(0..<vocabSize).contains(eos) {
            throw bad("eos_token_id", "\(eos) is not a token id below vocab_size \(vocabSize)")
        }
        try ropeScaling.validate(path: path)
    }

    /// Reads `config.json`.
    public static func load(from url: URL) throws -> ModelConfig {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw SwitchyardError.io(
                path: path,
                reason: "not found (is \(url.deletingLastPathComponent().path) a Hugging Face model directory?)")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SwitchyardError.io(path: path, reason: "cannot read config.json: \(error.localizedDescription)")
        }
        return try parse(data, path: path)
    }

    /// Parses the bytes of a `config.json`; `path` names the file in errors.
    public static func parse(_ data: Data, path: String) throws -> ModelConfig {
        try parse(JSONFields(data: data, path: path))
    }

    static func parse(_ obj: JSONFields) throws -> ModelConfig {
        let path = obj.path
        var archName: String? = nil
        if let list = try obj.array("architectures") {
            guard list.allSatisfy({ $0.stringValue != nil }) else {
                throw obj.error("architectures", "expected a list of strings")
            }
            archName = list.first?.stringValue
        }
        let modelType = try obj.string("model_type")
        let architecture: ModelArchitecture
        if let archName {
            guard let a = ModelArchitecture(rawValue: archName) else {
                throw SwitchyardError.unsupported(
                    path: path,
                    what:
                        "architecture \(EscapedText.quoted(archName)) (supported: \(ModelArchitecture.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            architecture = a
        } else {
            switch modelType {
            case "llama": architecture = .llama
            case "mistral": architecture = .mistral
            case "qwen2": architecture = .qwen2
            default:
                throw SwitchyardError.unsupported(
                    path: path,
                    what:
                        "model_type \(modelType.map { EscapedText.quoted($0) } ?? "(missing)") without a supported 'architectures' entry"
                )
            }
        }
        if let act = try obj.string("hidden_act"), act != "silu" {
            throw SwitchyardError.unsupported(path: path, what: "hidden_act \(EscapedText.quoted(act)) (only 'silu')")
        }
        if try obj.bool("mlp_bias") == true {
            throw SwitchyardError.unsupported(path: path, what: "mlp_bias true")
        }
        // transformers ≤4 writes `rope_scaling` + `rope_theta`; transformers 5 writes `rope_parameters`.
        var theta = try obj.double("rope_theta")
        var scaling = RopeScaling.none
        for key in ["rope_scaling", "rope_parameters"] {
            guard let params = try obj.object(key) else { continue }
            if let t = try params.double("rope_theta") {
                guard t > 0 else { throw params.error("rope_theta", "must be a positive finite number, found \(t)") }
                theta = t
            }
            scaling = try RopeScaling.parse(params)
        }

        let hidden = try obj.requiredInt("hidden_size")
        let heads = try obj.requiredInt("num_attention_heads")
        var sliding: Int? = nil
        switch architecture {
        case .mistral: sliding = try obj.int("sliding_window")
        case .qwen2:
            if try obj.bool("use_sliding_window") == true {
                throw SwitchyardError.unsupported(path: path, what: "Qwen2 use_sliding_window true (per-layer windows)")
            }
        case .llama: break
        }
        let attentionBias = try obj.bool("attention_bias") ?? false
        var eos: [Int] = []
        if let v = obj.value("eos_token_id") {
            if let list = v.arrayValue {
                eos = try list.map { item in
                    guard let i = JSONFields.integer(item) else {
                        throw obj.error(
                            "eos_token_id", "expected an integer or a list of integers, found \(JSONFields.describe(v))"
                        )
                    }
                    return i
                }
            } else {
                eos = [try obj.requiredInt("eos_token_id")]
            }
        }
        let headDim: Int
        if let explicit = try obj.int("head_dim") {
            headDim = explicit
        } else {
            // transformers: hidden_size // num_attention_heads. Refuse a remainder rather than
            // silently dropping columns.
            guard heads > 0 else { throw obj.error("num_attention_heads", "must be positive, found \(heads)") }
            guard hidden % heads == 0 else {
                throw obj.error(
                    "num_attention_heads", "\(heads) does not divide hidden_size \(hidden) (and no head_dim is given)")
            }
            headDim = hidden / heads
        }
        let rmsNormEps = try obj.double("rms_norm_eps") ?? 1e-6
        let ropeTheta = theta ?? 10000
        var config = ModelConfig(
            architecture: architecture,
            vocabSize: try obj.requiredInt("vocab_size"),
            hiddenSize: hidden,
            intermediateSize: try obj.requiredInt("intermediate_size"),
            numLayers: try obj.requiredInt("num_hidden_layers"),
            numHeads: heads,
            numKVHeads: try obj.int("num_key_value_heads") ?? heads,
            headDim: headDim,
            rmsNormEps: Float(rmsNormEps),
            ropeTheta: Float(ropeTheta),
            maxPositionEmbeddings: try obj.int("max_position_embeddings") ?? 2048,
            tieWordEmbeddings: try obj.bool("tie_word_embeddings") ?? false,
            qkvBias: architecture == .qwen2 || attentionBias,
            outputBias: architecture != .qwen2 && attentionBias,
            slidingWindow: sliding,
            bosTokenID: try obj.int("bos_token_id"),
            eosTokenIDs: eos)
        config.ropeScaling = scaling
        try config.validate(path: path)
        return config
    }
}

/// Rotary-embedding frequency scaling, as transformers computes it (`modeling_rope_utils`).
public enum RopeScaling: Sendable, Equatable {
    case none
    /// `inv_freq / factor` (position interpolation).
    case linear(factor: Float)
    /// Llama 3.1: long wavelengths divided by `factor`, short ones kept, a smooth blend between.
    case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalMaxPositions: Int)

    static func parse(_ p: JSONFields) throws -> RopeScaling {
        // transformers reads `rope_type`, falling back to the older `type`.
        let typeKey = p.contains("rope_type") ? "rope_type" : "type"
        let type = try p.string(typeKey) ?? "default"
        func number(_ key: String) throws -> Double {
            guard let n = try p.double(key) else { throw p.error(key, "missing (needed for rope type '\(type)')") }
            return n
        }
        if let partial = try p.double("partial_rotary_factor"), partial != 1 {
            throw SwitchyardError.unsupported(path: p.path, what: "\(p.field("partial_rotary_factor")) \(partial)")
        }
        let scaling: RopeScaling
        switch type {
        case "default": scaling = .none
        case "linear": scaling = .linear(factor: Float(try number("factor")))
        case "llama3":
            let factor = try number("factor"), low = try number("low_freq_factor"),
                high = try number("high_freq_factor")
            guard let original = try p.int("original_max_position_embeddings") else {
                throw p.error("original_max_position_embeddings", "missing (needed for rope type 'llama3')")
            }
            scaling = .llama3(
                factor: Float(factor), lowFrequencyFactor: Float(low), highFrequencyFactor: Float(high),
                originalMaxPositions: original)
        default:
            throw SwitchyardError.unsupported(
                path: p.path,
                what: "\(p.field(typeKey)) \(EscapedText.quoted(type)) (supported: default, linear, llama3)")
        }
        try scaling.validate(path: p.path, prefix: p.prefix)
        return scaling
    }

    /// Checks the parameters' ranges: a factor of at least 1, a high frequency factor above the
    /// low one (their difference divides), a positive original context.
    func validate(path: String, prefix: String = "rope_scaling.") throws {
        func bad(_ key: String, _ reason: String) -> SwitchyardError {
            .config(path: path, field: prefix + key, reason: reason)
        }
        switch self {
        case .none: break
        case let .linear(factor):
            guard factor.isFinite, factor >= 1 else {
                throw bad("factor", "must be a finite number ≥ 1, found \(factor)")
            }
        case let .llama3(factor, low, high, original):
            guard factor.isFinite, factor >= 1 else {
                throw bad("factor", "must be a finite number ≥ 1, found \(factor)")
            }
            guard low.isFinite, low > 0 else { throw bad("low_freq_factor", "must be a positive number, found \(low)") }
            guard high.isFinite, high > low else {
                throw bad("high_freq_factor", "must be a finite number above low_freq_factor \(low), found \(high)")
            }
            guard original > 0, original <= ModelConfig.Limits.maxPositionEmbeddings else {
                throw bad(
                    "original_max_position_embeddings",
                    "must be in 1...\(ModelConfig.Limits.maxPositionEmbeddings), found \(original)")
            }
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
