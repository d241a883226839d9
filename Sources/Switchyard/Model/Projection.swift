/// The seven projections of a Llama-family decoder layer that LoRA adapters target.
public enum ProjectionKind: String, CaseIterable, Sendable, Hashable, Codable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// The module path inside a decoder layer, as Hugging Face names it (`self_attn.q_proj`).
    public var modulePath: String {
        switch self {
        case .q, .k, .v, .o: return "self_attn.\(rawValue)"
        case .gate, .up, .down: return "mlp.\(rawValue)"
        }
    }
}

/// One adapted projection in the model: a layer index and a projection kind.
public struct ProjectionSite: Hashable, Sendable, CustomStringConvertible {
    /// Decoder layer index, 0-based.
    public let layer: Int
    /// Which of the layer's seven projections.
    public let kind: ProjectionKind
    /// The site of projection `kind` in layer `layer` (not checked against any model).
    public init(layer: Int, kind: ProjectionKind) {
        self.layer = layer
        self.kind = kind
    }
    /// `model.layers.3.self_attn.q_proj`
    public var description: String { "model.layers.\(layer).\(kind.modulePath)" }
}

/// A hook that adds per-row corrections to projection outputs during a forward pass: the single
/// place where LoRA experts, mixtures and routers enter the model. The model code never changes
/// when a new kind of mixing is added.
///
/// Rows are the rows of the forward batch, in order: the new tokens of the first sequence, then
/// those of the second, and so on (see `LlamaModel.forward`). An implementation knows, for each
/// row, which experts apply with which weights.
public protocol ProjectionDelta {
    /// Called at the start of each decoder layer with the layer's input hidden states
    /// `[rows × hidden]` (before the attention RMSNorm). Token-level routers compute their gates here.
    func beginLayer(_ layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int)

    /// Called after `output = input · Wᵀ + bias` for one projection. `input` is
    /// `[rows × inFeatures]`, `output` is `[rows × outFeatures]`, both row-major and contiguous.
    /// Add the correction into `output`.
    func addDelta(
        at site: ProjectionSite, input: UnsafePointer<Float>, inFeatures: Int,
        output: UnsafeMutablePointer<Float>, outFeatures: Int, rows: Int)
}

extension ProjectionDelta {
    /// Default: nothing to do at a layer's start (deltas that do not route per layer).
    public func beginLayer(_ layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int) {}
}

/// A linear projection `y = x · Wᵀ + b` with the Hugging Face weight layout `[out, in]`.
///
/// Every matrix product of the decoder goes through `forward`, which then offers the output to the
/// `ProjectionDelta`, if any.
public struct Linear: Sendable {
    /// Where this projection sits: the site passed to `ProjectionDelta.addDelta`.
    public let site: ProjectionSite
    /// `[outFeatures × inFeatures]`. Mutable so that an expert can be merged in (and out) exactly.
    /// Empty (0×0) when the weights are kept quantised (`quantized`).
    public var weight: Matrix
    /// The weights in a llama.cpp block format, multiplied natively; nil: `weight` (Float32).
    public var quantized: QuantizedMatrix?
    /// `[outFeatures]` added to every output row; nil: no bias.
    public var bias: [Float]?

    /// A Float32 projection; `weight` is `[out × in]` and `bias` (if any) `[out]` (traps otherwise).
    public init(site: ProjectionSite, weight: Matrix, bias: [Float]? = nil) {
        precondition(bias == nil || bias!.count == weight.rows, "bias length must equal out features")
        self.site = site
        self.weight = weight
        self.bias = bias
    }

    /// A projection whose weights stay in a block format.
    public init(site: ProjectionSite, quantized: QuantizedMatrix, bias: [Float]? = nil) {
        precondition(bias == nil || bias!.count == quantized.rows, "bias length must equal out features")
        self.site = site
        weight = Matrix(rows: 0, cols: 0)
        self.quantized = quantized
        self.bias = bias
    }

    /// Width of an input row (columns of the weight).
    public var inFeatures: Int { quantized?.cols ?? weight.cols }
    /// Width of an output row (rows of the weight).
    public var outFeatures: Int { quantized?.rows ?? weight.rows }

    /// The weights as Float32 (widened when quantised).
    public var floatWeight: Matrix { quantized?.dequantized() ?? weight }

    /// `output[rows × out] = input[rows × in] · Wᵀ + b (+ delta)`.
    @inline(__always)
    public func forward(
        _ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
        delta: (any ProjectionDelta)?
    ) {
        let n = outFeatures, k = inFeatures
        if let quantized {
            quantized.multiply(input, rows: rows, into: output)
        } else {
            weight.data.withUnsafeBufferPointer { w in
                BLAS.gemmTransB(m: rows, n: n, k: k, a: input, lda: k, b: w.baseAddress!, ldb: k, c: output, ldc: n)
            }
        }
        finish(input, rows: rows, output: output, delta: delta)
    }

    /// `forward` for projections that read the same input (a layer's q, k, v; gate, up), output `i`
    /// from projection `i`. Quantised weights of one type are multiplied in one pool job on one
    /// quantised copy of the input (`QuantizedMatrix.fused`); then each projection's bias and delta,
    /// in order, exactly as `forward` applies them. Other weights: `forward` one by one.
    public static func forward(
        _ projections: [Linear], _ input: UnsafePointer<Float>, rows: Int,
        into outputs: [UnsafeMutablePointer<Float>], delta: (any ProjectionDelta)?
    ) {
        precondition(projections.count == outputs.count, "one output per projection")
        let matrices = projections.compactMap(\.quantized)
        guard matrices.count == projections.count, QuantizedMatrix.canFuse(matrices) else {
            for (p, out) in zip(projections, outputs) { p.forward(input, rows: rows, into: out, delta: delta) }
            return
        }
        QuantizedMatrix.fused(matrices, input, rows: rows, into: outputs)
        for (p, out) in zip(projections, outputs) { p.finish(input, rows: rows, output: out, delta: delta) }
    }

    /// The bias and the delta, after the product.
    @inline(__always)
    private func finish(
        _ input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>,
        delta: (any ProjectionDelta)?
    ) {
        let n = outFeatures, k = inFeatures
        if let bias {
            bias.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    let row = output + r * n
                    for j in 0..<n { row[j] += b[j] }
                }
            }
        }
        delta?.addDelta(at: site, input: input, inFeatures: k, output: output, outFeatures: n, rows: rows)
    }
}
