/// A tensor as carried by the wire format: shape, element type and the raw little-endian bytes
/// (kept as read, so a decoded router re-encodes byte for byte).
public struct WireTensor: Sendable, Equatable {
    public enum DType: Int, Sendable { case f32 = 1, f16 = 2, bf16 = 3 }
    public var shape: [Int]
    public var dtype: DType
    public var bytes: [UInt8]

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

    public init(_ m: Matrix, dtype: DType = .f32) { self.init(shape: m.shape, values: m.data, dtype: dtype) }

    public var elementCount: Int { shape.reduce(1, *) }
    var byteSize: Int { dtype == .f32 ? 4 : 2 }

    /// Values as Float32.
    public func floats() -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<elementCount).map { i in
                switch dtype {
                case .f32: return Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                case .bf16: return HalfPrecision.bf16ToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                case .f16: return HalfPrecision.f16ToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            }
        }
    }

    /// As a matrix, requiring `[rows, cols]` (either may be checked by passing it).
    func matrix(rows: Int? = nil, cols: Int? = nil, field: String) throws -> Matrix {
        guard shape.count == 2, rows.map({ $0 == shape[0] }) ?? true, cols.map({ $0 == shape[1] }) ?? true else {
            throw RouterError.invalid(field: field, reason: "expected shape [\(rows.map(String.init) ?? "*"), \(cols.map(String.init) ?? "*")], found \(shape)")
        }
        return Matrix(rows: shape[0], cols: shape[1], data: try finiteFloats(field: field))
    }

    func vector(count: Int, field: String) throws -> [Float] {
        guard shape == [count] else { throw RouterError.invalid(field: field, reason: "expected shape [\(count)], found \(shape)") }
        return try finiteFloats(field: field)
    }

    /// The values, refusing NaN and infinities (they would poison every routing decision).
    func finiteFloats(field: String) throws -> [Float] {
        let values = floats()
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw RouterError.invalid(field: field, reason: "non-finite value \(values[i]) at element \(i) (NaN and infinity are refused)")
        }
        return values
    }
}

/// Errors in router files and router specs, naming the field at fault.
public enum RouterError: Error, CustomStringConvertible, Equatable {
    case decode(path: String, reason: String)
    case invalid(field: String, reason: String)
    case expertMismatch(expert: String, reason: String)

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
    public enum Mode: Int, Sendable { case unspecified = 0, dense = 1, topK = 2, topP = 3, threshold = 4 }
    /// How token-level gates route the prompt's tokens: each from what precedes it (`perToken`),
    /// or all of them once, from a base pass over the whole prompt (`whole`; see router.proto).
    public enum PromptRouting: Int, Sendable { case perToken = 0, whole = 1 }
    public var mode: Mode
    public var topK: Int
    public var topP: Float
    public var threshold: Float
    public var temperature: Float
    /// Token routers: recompute every N-th token (0 or 1: every token).
    public var everyN: Int
    /// Token and centroid gates: how the prompt's tokens are routed.
    public var promptRouting: PromptRouting
    /// Context-MEAN gates: the mean over the last N positions (0: all positions so far).
    public var contextWindow: Int

    public init(mode: Mode = .topK, topK: Int = 1, topP: Float = 0, threshold: Float = 0, temperature: Float = 1, everyN: Int = 0,
                promptRouting: PromptRouting = .perToken, contextWindow: Int = 0) {
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
    public enum Activation: Int, Sendable { case none = 0, relu = 1, tanh = 2, gelu = 3 }
    public var weight: WireTensor
    public var bias: WireTensor?
    public var activation: Activation
    public init(weight: WireTensor, bias: WireTensor?, activation: Activation) {
        self.weight = weight
        self.bias = bias
        self.activation = activation
    }
}

/// A learned gate of one decoder layer over a subset of the router's experts.
public struct LayerGateSpec: Sendable, Equatable {
    public var layer: Int
    public var experts: [Int]
    public var weight: WireTensor
    public var bias: WireTensor?
    public init(layer: Int, experts: [Int], weight: WireTensor, bias: WireTensor?) {
        self.layer = layer
        self.experts = experts
        self.weight = weight
        self.bias = bias
    }
}

/// One adapted projection of a rank-as-expert (SMoRA) LoRA.
public struct RankModuleSpec: Sendable, Equatable {
    public var layer: Int
    public var module: String
    public var a: WireTensor
    public var b: WireTensor
    public var gate: WireTensor
    public var scale: Float
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
    public enum Granularity: Int, Sendable { case unspecified = 0, sentence = 1, token = 2, rank = 3 }
    public enum Pooling: Int, Sendable { case mean = 0, last = 1 }
    public enum RankActivation: Int, Sendable { case softmax = 0, sigmoid = 1, none = 2 }
    /// What a centroid gate (or a global token gate) reads at position p: the token's own hidden
    /// state, or the mean over the request's tokens 0...p (prompt and generated so far).
    public enum CentroidContext: Int, Sendable { case token = 0, mean = 1 }

    public enum Gate: Sendable, Equatable {
        case none
        case sentence(featureLayer: Int, pooling: Pooling, layers: [DenseLayer])
        case token(layers: [LayerGateSpec], global: Bool, sourceLayer: Int, context: CentroidContext = .token)
        case centroid(layer: Int, centroids: WireTensor, context: CentroidContext = .token)
        case rank(modules: [RankModuleSpec], activation: RankActivation)
    }

    public struct ExpertRef: Sendable, Equatable {
        public var name: String
        public var sha256: String
        public init(name: String, sha256: String) {
            self.name = name
            self.sha256 = sha256
        }
    }

    public var name: String
    public var version: Int
    public var granularity: Granularity
    public var experts: [ExpertRef]
    public var selection: Selection?
    public var baseModel: String
    public var metadata: [(key: String, value: String)]
    public var gate: Gate

    public init(name: String, version: Int = 1, granularity: Granularity, experts: [ExpertRef], selection: Selection?,
                baseModel: String = "", metadata: [(key: String, value: String)] = [], gate: Gate) {
        self.name = name
        self.version = version
        self.granularity = granularity
        self.experts = experts
        self.selection = selection
        self.baseModel = baseModel
        self.metadata = metadata
        self.gate = gate
    }

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
