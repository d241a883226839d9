/// A tensor as carried by the wire format: shape, element type and the raw little-endian bytes
/// (kept as read, so a decoded router re-encodes byte for byte).
public struct WireTensor: Sendable, Equatable {
    /// Element type of `bytes`; raw values are the wire enum's numbers (`DTYPE_F32` = 1, ...).
    public enum DType: Int, Sendable { case f32 = 1, f16 = 2, bf16 = 3 }
    /// Dimensions, outermost first (row-major); e.g. `[out, in]` for a gate weight.
    public var shape: [Int]
    /// How each element of `bytes` is encoded (4 bytes for F32, 2 for F16/BF16).
    public var dtype: DType
    /// The elements, row-major and little-endian, exactly as read from the wire.
    public var bytes: [UInt8]

    /// A tensor from raw bytes, taken as given (sizes are checked where the tensor is used).
    public init(shape: [Int], dtype: DType, bytes: [UInt8]) {
        self.shape = shape
        self.dtype = dtype
        self.bytes = bytes
    }

    /// Float32 values stored as F32 (or converted to `dtype`).
    public init(shape: [Int], values: [Float], dtype: DType = .f32) {
        precondition(shape.reduce(1, *) == values.count, "tensor shape \(shape) does not match \(values.count) values")
        self.shape = shape
        self.dtype = dtype
        switch dtype {
        case .f32: bytes = values.withUnsafeBytes { Array($0) }
        case .bf16: bytes = values.map { HalfPrecision.floatToBF16($0).littleEndian }.withUnsafeBytes { Array($0) }
        case .f16: bytes = values.map { HalfPrecision.floatToF16($0).littleEndian }.withUnsafeBytes { Array($0) }
        }
    }

    /// A `[rows, cols]` tensor of the matrix's row-major values, stored as `dtype`.
    public init(_ m: Matrix, dtype: DType = .f32) { self.init(shape: m.shape, values: m.data, dtype: dtype) }

    /// The product of `shape` (1 for a scalar shape `[]`).
    public var elementCount: Int { shape.reduce(1, *) }
    var byteSize: Int { dtype == .f32 ? 4 : 2 }

    /// Values as Float32.
    public func floats() -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<elementCount).map { i in
                switch dtype {
                case .f32:
                    return Float(
                        bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                case .bf16:
                    return HalfPrecision.bf16ToFloat(
                        UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                case .f16:
                    return HalfPrecision.f16ToFloat(
                        UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            }
        }
    }

    /// As a matrix, requiring `[rows, cols]` (either may be checked by passing it).
    func matrix(rows: Int? = nil, cols: Int? = nil, field: String) throws -> Matrix {
        guard shape.count == 2, rows.map({ $0 == shape[0] }) ?? true, cols.map({ $0 == shape[1] }) ?? true else {
            throw RouterError.invalid(
                field: field,
                reason:
                    "expected shape [\(rows.map(String.init) ?? "*"), \(cols.map(String.init) ?? "*")], found \(shape)")
        }
        return Matrix(rows: shape[0], cols: shape[1], data: try finiteFloats(field: field))
    }

    func vector(count: Int, field: String) throws -> [Float] {
        guard shape == [count] else {
            throw RouterError.invalid(field: field, reason: "expected shape [\(count)], found \(shape)")
        }
        return try finiteFloats(field: field)
    }

    /// The values, refusing NaN and infinities (they would poison every routing decision).
    func finiteFloats(field: String) throws -> [Float] {
        let values = floats()
        if let i = FiniteValues.firstNonFinite(values) {
            throw RouterError.invalid(
                field: field, reason: "non-finite value \(values[i]) at element \(i) (NaN and infinity are refused)")
        }
        return values
    }
}

/// Errors in router files and router specs, naming the field at fault.
public enum RouterError: Error, CustomStringConvertible, Equatable {
    case decode(path: String, reason: String)
    case invalid(field: String, reason: String)
    case expertMismatch(expert: String, reason: String)

    /// One line naming the file, field or expert at fault and why (user text escaped).
    public var description: String {
        let message: String
        switch self {
        case let .decode(path, reason): message = "\(path): cannot decode router: \(reason)"
        case let .invalid(field, reason): message = "router field \(EscapedText.quoted(field)): \(reason)"
        case let .expertMismatch(expert, reason): message = "router expert \(EscapedText.quoted(expert)): \(reason)"
        }
        return EscapedText.oneLine(message)
    }
}

/// How a router picks experts from its scores (the `Selection` message).
public struct Selection: Sendable, Equatable {
    /// Which experts to keep from `softmax(scores / temperature)`: every one weighted (`dense`),
    /// the `topK` most probable, the smallest set reaching `topP`, or every one at or above
    /// `threshold` (at least the best); kept weights are renormalised. `unspecified` reads as `topK`.
    public enum Mode: Int, Sendable { case unspecified = 0, dense = 1, topK = 2, topP = 3, threshold = 4 }
    /// How token-level gates route the prompt's tokens: each from what precedes it (`perToken`),
    /// or all of them once, from a base pass over the whole prompt (`whole`; see router.proto).
    public enum PromptRouting: Int, Sendable { case perToken = 0, whole = 1 }
    /// The selection rule (see `Mode`).
    public var mode: Mode
    /// `topK` mode: how many experts to keep (ties go to the lower index); 0 reads as 1.
    public var topK: Int
    /// `topP` mode: the cumulative probability, in (0, 1], the kept experts must reach.
    public var topP: Float
    /// `threshold` mode: the minimum probability, in [0, 1], for an expert to be kept.
    public var threshold: Float
    /// Softmax temperature dividing the scores (> 0; lower is sharper); 0 reads as 1.
    public var temperature: Float
    /// Token routers: recompute every N-th token (0 or 1: every token).
    public var everyN: Int
    /// Token and centroid gates: how the prompt's tokens are routed.
    public var promptRouting: PromptRouting
    /// Context-MEAN gates: the mean over the last N positions (0: all positions so far).
    public var contextWindow: Int

    /// A selection; the defaults are top-1 at temperature 1, every token, prompt routed per token.
    public init(
        mode: Mode = .topK, topK: Int = 1, topP: Float = 0, threshold: Float = 0, temperature: Float = 1,
        everyN: Int = 0,
        promptRouting: PromptRouting = .perToken, contextWindow: Int = 0
    ) {
        self.mode = mode
        self.topK = topK
        self.topP = topP
        self.threshold = threshold
        self.temperature = temperature
        self.everyN = everyN
        self.promptRouting = promptRouting
        self.contextWindow = contextWindow
    }
}

/// One dense layer of a gate MLP: `activation(x · Wᵀ + b)`.
public struct DenseLayer: Sendable, Equatable {
    /// The non-linearity after the affine map (`gelu` is the tanh approximation).
    public enum Activation: Int, Sendable { case none = 0, relu = 1, tanh = 2, gelu = 3 }
    /// `[out, in]` weight.
    public var weight: WireTensor
    /// `[out]` bias; nil: no bias.
    public var bias: WireTensor?
    /// Applied element-wise to the layer's output.
    public var activation: Activation
    /// A layer from its tensors; shapes are checked when a router is bound to a model.
    public init(weight: WireTensor, bias: WireTensor?, activation: Activation) {
        self.weight = weight
        self.bias = bias
        self.activation = activation
    }
}

/// A learned gate of one decoder layer over a subset of the router's experts.
public struct LayerGateSpec: Sendable, Equatable {
    /// The decoder layer (0-based) whose entering hidden state the gate reads and whose
    /// projections it routes.
    public var layer: Int
    /// Indices into `RouterSpec.experts` this gate scores, in the order of the weight's rows.
    public var experts: [Int]
    /// `[experts.count, hidden]`: scores = hidden · weightᵀ + bias.
    public var weight: WireTensor
    /// `[experts.count]`; nil: no bias.
    public var bias: WireTensor?
    /// A gate from its tensors; shapes are checked when a router is bound to a model.
    public init(layer: Int, experts: [Int], weight: WireTensor, bias: WireTensor?) {
        self.layer = layer
        self.experts = experts
        self.weight = weight
        self.bias = bias
    }
}

/// One adapted projection of a rank-as-expert (SMoRA) LoRA.
public struct RankModuleSpec: Sendable, Equatable {
    /// The decoder layer (0-based) of the adapted projection.
    public var layer: Int
    /// The projection's PEFT name: `q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`,
    /// `up_proj` or `down_proj`.
    public var module: String
    /// LoRA A, `[rank, in]`.
    public var a: WireTensor
    /// LoRA B, `[out, rank]`.
    public var b: WireTensor
    /// Rank gate, `[rank, in]`: one score per rank, `gate · x`.
    public var gate: WireTensor
    /// Multiplies the delta: Δy = scale · Σ over selected ranks i of gᵢ · B[:, i] · (A[i, :] · x).
    public var scale: Float
    /// A module from its tensors; shapes are checked when a router is bound to a model.
    public init(layer: Int, module: String, a: WireTensor, b: WireTensor, gate: WireTensor, scale: Float) {
        self.layer = layer
        self.module = module
        self.a = a
        self.b = b
        self.gate = gate
        self.scale = scale
    }
}

/// The Swift form of `switchyard.v1.RouterSpec` (see Protos/switchyard/v1/router.proto for the
/// meaning of every field).
public struct RouterSpec: Sendable, Equatable {
    /// When the router decides: once per prompt (`sentence`), per token (and per layer for layer
    /// gates), or per token per rank of one LoRA (`rank`, SMoRA).
    public enum Granularity: Int, Sendable { case unspecified = 0, sentence = 1, token = 2, rank = 3 }
    /// How a sentence gate reduces the prompt's hidden states to one feature vector.
    public enum Pooling: Int, Sendable { case mean = 0, last = 1 }
    /// How selected rank scores become weights: softmax over the selected scores / temperature,
    /// the sigmoid of each, or the raw score.
    public enum RankActivation: Int, Sendable { case softmax = 0, sigmoid = 1, none = 2 }
    /// What a centroid gate (or a global token gate) reads at position p: the token's own hidden
    /// state, or the mean over the request's tokens 0...p (prompt and generated so far).
    public enum CentroidContext: Int, Sendable { case token = 0, mean = 1 }

    /// The gate's parameters (the proto's `oneof gate`). `sentence`: an MLP over the base model's
    /// pooled hidden state after `featureLayer` layers; `token`: learned per-layer gates (or one
    /// `global` gate at `sourceLayer`); `centroid`: cosine similarity to `[experts, hidden]`
    /// centroids at `layer` — or, with `centroidExperts` (the expert of each centroid row), to
    /// several centroids per expert, an expert scoring its best centroid; `rank`: SMoRA rank gates.
    /// `none`: no gate (refused when bound).
    public enum Gate: Sendable, Equatable {
        case none
        case sentence(featureLayer: Int, pooling: Pooling, layers: [DenseLayer])
        case token(layers: [LayerGateSpec], global: Bool, sourceLayer: Int, context: CentroidContext = .token)
        case centroid(layer: Int, centroids: WireTensor, context: CentroidContext = .token, centroidExperts: [Int] = [])
        case rank(modules: [RankModuleSpec], activation: RankActivation)
    }

    /// An expert the router's outputs refer to by position in `experts`.
    public struct ExpertRef: Sendable, Equatable {
        /// The expert's name in the registry.
        public var name: String
        /// Hex SHA-256 (any case) of the expert's `adapter_model.safetensors`, checked against the
        /// registry when the router is bound; empty: not checked.
        public var sha256: String
        /// A reference; pass an empty `sha256` to skip the check.
        public init(name: String, sha256: String) {
            self.name = name
            self.sha256 = sha256
        }
    }

    /// The router's name, by which requests and the registry refer to it.
    public var name: String
    /// Version of this router (not of the format, which is the proto package's `v1`).
    public var version: Int
    /// When the router decides (should agree with the kind of `gate`).
    public var granularity: Granularity
    /// The experts, in the order the gates' outputs (and `LayerGateSpec.experts`) index them.
    public var experts: [ExpertRef]
    /// How experts are picked from the scores; nil: the message was absent (see `effectiveSelection`).
    public var selection: Selection?
    /// Informational: the base model the gates were trained on; empty when unknown.
    public var baseModel: String
    /// Free-form key/value pairs, in file order (keys may repeat).
    public var metadata: [(key: String, value: String)]
    /// The gate's parameters.
    public var gate: Gate

    /// A router spec; nothing is validated until it is bound to a model and registry.
    public init(
        name: String, version: Int = 1, granularity: Granularity, experts: [ExpertRef], selection: Selection?,
        baseModel: String = "", metadata: [(key: String, value: String)] = [], gate: Gate
    ) {
        self.name = name
        self.version = version
        self.granularity = granularity
        self.experts = experts
        self.selection = selection
        self.baseModel = baseModel
        self.metadata = metadata
        self.gate = gate
    }

    /// Field-wise equality, `metadata` compared pair by pair in order.
    public static func == (l: RouterSpec, r: RouterSpec) -> Bool {
        l.name == r.name && l.version == r.version && l.granularity == r.granularity && l.experts == r.experts
            && l.selection == r.selection && l.baseModel == r.baseModel && l.gate == r.gate
            && l.metadata.map(\.key) == r.metadata.map(\.key) && l.metadata.map(\.value) == r.metadata.map(\.value)
    }

    /// The selection with defaults applied (absent message → top-1; k 0 → 1; temperature 0 → 1).
    public var effectiveSelection: Selection {
        var s = selection ?? Selection(mode: .topK, topK: 1, temperature: 1)
        if s.mode == .unspecified { s.mode = .topK }
        if s.topK == 0 { s.topK = 1 }
        if s.temperature == 0 { s.temperature = 1 }
        return s
    }
}
