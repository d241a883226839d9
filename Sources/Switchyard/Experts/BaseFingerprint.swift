import Foundation

/// What identifies the base model an adapter was trained on, the same whether the base is held
/// as F32/BF16 safetensors or as a Q8_0/Q4 GGUF quantised from them.
///
/// Text form: `sy1-<architecture: 16 hex>-<signature: 32 hex>`.
///
/// - **architecture**: the first 64 bits of the SHA-256 of the shape-defining fields (vocabulary,
///   hidden and intermediate sizes, layers, heads, KV heads, head size, tied head, biases). These
///   fix every tensor name and shape of the Llama layout, so they stand for "config + tensor
///   names and shapes". They must be equal.
/// - **signature**: a 128-bit SimHash (Charikar's random-hyperplane hash) of the weights as
///   Float32: bit i is the sign of the dot product of 8 rows, drawn by a fixed seed from the
///   embedding and every layer's seven projections, with fixed pseudo-random ±1 vectors. Two
///   fingerprints match when at most `maximumSignatureDistance` bits differ.
///
/// Why not a hash of the stored bytes: the same weights stored as BF16 safetensors and as a
/// Q4_1 GGUF share no byte, yet an adapter trained on one runs correctly on the other. Rounding
/// values before hashing does not help either: quantisation moves some value across any rounding
/// boundary. A sign of a long random projection moves only when the quantisation noise projected
/// on it (~9% of the signal for Q4_1, under 1% for Q8_0) outweighs the signal: a few bits of 128
/// differ between storage types of one model, about half between unrelated models (64 ± 6). The
/// threshold of 24 sits far from both.
///
/// The cost of that choice: a fine-tune that moved the weights less than 4-bit quantisation does
/// (a light instruction tune of the same base) may read as the same base. Cheap: 1,024 rows are
/// widened, whatever the model size.
public struct BaseFingerprint: Sendable, Hashable, CustomStringConvertible {
    /// Leading 64 bits of the SHA-256 of `architectureText`.
    public let architecture: UInt64
    /// The 128 SimHash bits (high word first).
    public let signature: (UInt64, UInt64)

    /// Signature bits that may differ for two fingerprints of one base (storage types, float
    /// summation order); unrelated weights differ in about 64.
    public static let maximumSignatureDistance = 24
    static let bitsPerSignature = 128
    static let rowsPerBit = 8
    static let seed: UInt64 = 0x5357_4241_5345_3031  // "SWBASE01"

    /// A fingerprint from its parts (as parsed from the text form).
    public init(architecture: UInt64, signature: (UInt64, UInt64)) {
        self.architecture = architecture
        self.signature = signature
    }

    /// The fingerprint of a loaded model (its weights as they are held, widened row by row).
    public init(model: LlamaModel) {
        architecture = Self.architectureDigest(model.config)
        var rows = RowSource(model: model)
        var rng = SeededRandom(seed: Self.seed)
        var words: (UInt64, UInt64) = (0, 0)
        for bit in 0..<Self.bitsPerSignature {
            var sum = 0.0
            for _ in 0..<Self.rowsPerBit {
                let tensor = Int(rng.next() % UInt64(rows.tensorCount))
                let row = Int(rng.next() % UInt64(rows.rowCount(tensor)))
                let values = rows.row(tensor, row)
                var signs = 0 as UInt64
                for (c, v) in values.enumerated() {
                    if c % 64 == 0 { signs = rng.next() }
                    sum += signs & 1 == 1 ? Double(v) : -Double(v)
                    signs >>= 1
                }
            }
            if sum > 0 {
                if bit < 64 { words.0 |= 1 << UInt64(63 - bit) } else { words.1 |= 1 << UInt64(127 - bit) }
            }
        }
        signature = words
    }

    /// The fields that fix the tensor layout, one canonical line.
    static func architectureText(_ c: ModelConfig) -> String {
        "llama-layout vocab=\(c.vocabSize) hidden=\(c.hiddenSize) intermediate=\(c.intermediateSize) "
            + "layers=\(c.numLayers) heads=\(c.numHeads) kv_heads=\(c.numKVHeads) head_dim=\(c.headDim) "
            + "tied=\(c.tieWordEmbeddings) qkv_bias=\(c.qkvBias) output_bias=\(c.outputBias)"
    }

    static func architectureDigest(_ c: ModelConfig) -> UInt64 {
        UInt64(SHA256.hex(Array(architectureText(c).utf8)).prefix(16), radix: 16)!
    }

    /// Number of signature bits that differ.
    public func signatureDistance(to other: BaseFingerprint) -> Int {
        (signature.0 ^ other.signature.0).nonzeroBitCount + (signature.1 ^ other.signature.1).nonzeroBitCount
    }

    /// Same architecture and signatures within `maximumSignatureDistance` bits.
    public func matches(_ other: BaseFingerprint) -> Bool {
        architecture == other.architecture && signatureDistance(to: other) <= Self.maximumSignatureDistance
    }

    /// How two fingerprints differ, for error messages ("architecture differs", "41 of 128
    /// signature bits differ").
    public func difference(from other: BaseFingerprint) -> String {
        architecture != other.architecture
            ? "the architecture differs"
            : "\(signatureDistance(to: other)) of \(Self.bitsPerSignature) signature bits differ (at most \(Self.maximumSignatureDistance) for one base)"
    }

    /// `sy1-<16 hex>-<32 hex>`.
    public var description: String {
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return "sy1-\(hex(architecture))-\(hex(signature.0))\(hex(signature.1))"
    }

    /// Parses the text form; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "sy1", parts[1].utf8.count == 16, parts[2].utf8.count == 32,
            (parts[1] + parts[2]).utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
            let a = UInt64(parts[1], radix: 16), let hi = UInt64(parts[2].prefix(16), radix: 16),
            let lo = UInt64(parts[2].suffix(16), radix: 16)
        else { return nil }
        self.init(architecture: a, signature: (hi, lo))
    }

    /// Exact equality of both parts (`matches` is the tolerant comparison).
    public static func == (l: BaseFingerprint, r: BaseFingerprint) -> Bool {
        l.architecture == r.architecture && l.signature == r.signature
    }

    /// Hashes both parts (consistent with `==`).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(architecture)
        hasher.combine(signature.0)
        hasher.combine(signature.1)
    }

    /// Rows of the sampled tensors as Float32, whatever their storage: the embedding table, then
    /// each layer's q, k, v, o, gate, up, down (q/k rows are in Hugging Face order for GGUF
    /// files too: they are un-permuted at load).
    private struct RowSource {
        let model: LlamaModel
        var buffer: [Float] = []

        init(model: LlamaModel) { self.model = model }

        var tensorCount: Int { 1 + model.layers.count * ProjectionKind.allCases.count }

        func linear(_ t: Int) -> Linear {
            let i = t - 1, kinds = ProjectionKind.allCases
            return model.layers[i / kinds.count][kinds[i % kinds.count]]
        }

        func rowCount(_ t: Int) -> Int { t == 0 ? model.config.vocabSize : linear(t).outFeatures }

        mutating func row(_ t: Int, _ r: Int) -> [Float] {
            if t == 0 {
                if let table = model.embeddingTable {
                    buffer = [Float](repeating: 0, count: table.cols)
                    buffer.withUnsafeMutableBufferPointer { table.row(r, into: $0.baseAddress!) }
                    return buffer
                }
                let e = model.embedding
                return Array(e.data[(r * e.cols)..<((r + 1) * e.cols)])
            }
            let l = linear(t)
            if let q = l.quantized {
                buffer = [Float](repeating: 0, count: q.cols)
                buffer.withUnsafeMutableBufferPointer { q.row(r, into: $0.baseAddress!) }
                return buffer
            }
            return Array(l.weight.data[(r * l.weight.cols)..<((r + 1) * l.weight.cols)])
        }
    }
}
