import Foundation

/// Reading a Llama-family model from a GGUF file (llama.cpp's format): the architecture
/// metadata as a `ModelConfig`, the tensors under their Hugging Face roles.
///
/// llama.cpp's converter (`convert_hf_to_gguf.py`) permutes the rows of `q_proj` and `k_proj`
/// within each head for its rotary layout: Hugging Face row `i·D/2 + j` (half i of the head,
/// pair j) is stored at row `2j + i`. We undo it at load, so the model computes exactly the
/// Hugging Face function and PEFT experts (trained on that layout) apply unchanged.
public enum GGUFModel {
    /// The `llama` architecture's metadata as a config. Refuses other architectures and rope
    /// scaling, naming the key.
    public static func config(_ f: GGUFFile) throws -> ModelConfig {
        func fail(_ key: String, _ reason: String) -> SwitchyardError {
            .config(path: f.path, field: key, reason: reason)
        }
        guard let arch = f.metadata["general.architecture"]?.string else {
            throw fail("general.architecture", "missing")
        }
        guard arch == "llama" else {
            throw SwitchyardError.unsupported(path: f.path, what: "GGUF architecture '\(arch)' (llama is supported)")
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let v = f.metadata["\(arch).\(key)"] else {
                if let value { return value }
                throw fail("\(arch).\(key)", "missing")
            }
            guard let i = v.int, i > 0 else { throw fail("\(arch).\(key)", "must be a positive integer, found \(v)") }
            return i
        }
        func float(_ key: String, default value: Double) throws -> Float {
            guard let v = f.metadata["\(arch).\(key)"] else { return Float(value) }
            guard let d = v.double, d.isFinite, d > 0 else {
                throw fail("\(arch).\(key)", "must be a positive number, found \(v)")
            }
            return Float(d)
        }
        if let scaling = f.metadata["\(arch).rope.scaling.type"]?.string, scaling != "none" {
            throw SwitchyardError.unsupported(path: f.path, what: "\(arch).rope.scaling.type '\(scaling)'")
        }
        let tokens = f.metadata["tokenizer.ggml.tokens"]?.array?.count
        guard let embedding = f.tensors["token_embd.weight"] else {
            throw SwitchyardError.missingTensor(path: f.path, tensor: "token_embd.weight")
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let vocab = try int("vocab_size", default: tokens ?? embedding.shape[0])
        let headDim = try int("attention.key_length", default: hidden / heads)
        guard headDim % 2 == 0 else {
            throw fail("\(arch).attention.key_length", "head dimension \(headDim) must be even (rotary pairs)")
        }
        var eos: [Int] = []
        if let e = f.metadata["tokenizer.ggml.eos_token_id"]?.int { eos.append(e) }
        let config = ModelConfig(
            architecture: .llama, vocabSize: vocab, hiddenSize: hidden,
            intermediateSize: try int("feed_forward_length"),
            numLayers: try int("block_count"), numHeads: heads,
            numKVHeads: try int("attention.head_count_kv", default: heads),
            headDim: headDim, rmsNormEps: try float("attention.layer_norm_rms_epsilon", default: 1e-5),
            ropeTheta: try float("rope.freq_base", default: 10000),
            maxPositionEmbeddings: try int("context_length", default: 2048),
            tieWordEmbeddings: f.tensors["output.weight"] == nil,
            bosTokenID: f.metadata["tokenizer.ggml.bos_token_id"]?.int,
            eosTokenIDs: eos)
        // The same invariants as a config.json (head groups, limits, token ids in the vocabulary);
        // the field names are the Hugging Face ones.
        try config.validate(path: f.path)
        return config
    }

    /// How weights are held after load.
    public enum WeightFormat: String, Sendable, CaseIterable {
        /// Q8_0, Q4_0, Q4_1, F16 and BF16 stay in their storage type (native kernels); Q5_0, Q5_1,
        /// Q5_K, IQ4_NL, IQ4_XS and Q4_K are rewritten as Q8_0 (Q5_1/Q5_K with a Float32 offset per
        /// block) and Q4_1, exactly or with sub-block scales rounded to half, and Q6_K as F16
        /// (`QuantizedMatrix.repackedType`); Q2_K and Q3_K, whose 16-value sub-blocks no 32-value
        /// block holds, Q6_K in a file that is mostly Q6_K (`holdsMostlyQ6_K`: F16 would double its
        /// size), and a tensor whose scales or values a half cannot hold, are requantised to
        /// Q8_0, the nearest type with a native kernel (dequantised, then rounded per block of 32:
        /// ~0.4% error per value); F32 stays F32.
        case native
        /// Everything widened to Float32: the parity path (exactly the dequantised model).
        case f32
    }

    /// Loads the model. With `.native`, projections, the embedding table and the output head
    /// stored as Q8_0/Q4_0/Q4_1/F16/BF16 stay in that type (norms are Float32); `.f32` widens all.
    /// A NaN or infinite weight is refused, naming its tensor and element. With `.native` the
    /// model's KV cache is half precision too (`LlamaModel.cachePrecision`), as llama.cpp's, and
    /// BF16 weights meet activations rounded to bfloat16 in batches (`bf16Activations`); on CPUs
    /// with AVX-512 BF16 an F16 tensor whose every value is exactly a bfloat16 (a file converted
    /// from a bfloat16 checkpoint) is kept as BF16 — the same numbers — so that it does too.
    public static func load(_ f: GGUFFile, weights: WeightFormat = .native) throws -> LlamaModel {
        let c = try config(f), d = c.hiddenSize, hd = c.headDim
        /// The tensor's info, present and of `shape`.
        func tensor(_ name: String, _ shape: [Int]) throws -> GGUFTensorInfo {
            guard let info = f.tensors[name] else { throw SwitchyardError.missingTensor(path: f.path, tensor: name) }
            guard info.shape == shape else {
                throw SwitchyardError.shapeMismatch(path: f.path, tensor: name, expected: shape, found: info.shape)
            }
            return info
        }
        func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> Matrix {
            _ = try tensor(name, [rows, cols])
            return Matrix(
                rows: rows, cols: cols, data: try FiniteWeights.require(f.floats(name), path: f.path, tensor: name))
        }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            _ = try tensor(name, [n])
            return try FiniteWeights.require(f.floats(name), path: f.path, tensor: name)
        }
        let q6KRequantised = holdsMostlyQ6_K(f)
        /// The tensor kept in its blocks, when it is in a natively multiplied type (or one rewritten
        /// into such a type; not Q6_K in a file that is mostly Q6_K).
        func quantized(_ name: String, _ rows: Int, _ cols: Int, unpermuteHeads: Int? = nil) throws -> QuantizedMatrix?
        {
            let info = try tensor(name, [rows, cols])
            if info.type == .q6_K && q6KRequantised { return nil }
            let order = unpermuteHeads.map { rotaryRowOrder(heads: $0, headDim: hd) }
            let loaded = f.withBytes(info) {
                QuantizedMatrix.loaded(type: info.type, rows: rows, cols: cols, bytes: $0, rowOrder: order)
            }
            guard let q = loaded else { return nil }
            return try FiniteWeights.require(q, path: f.path, tensor: name, rowOrder: order)
        }
        /// Whether `name` is in a block type without a native kernel that native weights, having
        /// not kept it (`quantized` returned nil: Q2_K, Q3_K, a rewrite refused, Q6_K in a mostly
        /// Q6_K file), requantise to Q8_0.
        func requantises(_ name: String, cols: Int) -> Bool {
            guard weights == .native, cols % 32 == 0, let type = f.tensors[name]?.type else { return false }
            return type.blockElements > 1 && !QuantizedMatrix.nativeTypes.contains(type)
        }
        let layers = try (0..<c.numLayers).map { l -> DecoderLayer in
            let p = "blk.\(l)."
            func linear(_ kind: ProjectionKind, _ name: String, unpermuteHeads: Int? = nil) throws -> Linear {
                let (out, inF) = c.projectionShape(kind)
                let site = ProjectionSite(layer: l, kind: kind)
                if weights == .native,
                    let q = try quantized(p + name + ".weight", out, inF, unpermuteHeads: unpermuteHeads)
                {
                    return Linear(site: site, quantized: q)
                }
                var w = try matrix(p + name + ".weight", out, inF)
                if let heads = unpermuteHeads { w = unpermuteRotaryRows(w, heads: heads, headDim: hd) }
                if requantises(p + name + ".weight", cols: inF) { return Linear(site: site, quantized: .q8_0(w)) }
                return Linear(site: ProjectionSite(layer: l, kind: kind), weight: w)
            }
            return DecoderLayer(
                index: l, inputNorm: try vector(p + "attn_norm.weight", d),
                q: try linear(.q, "attn_q", unpermuteHeads: c.numHeads),
                k: try linear(.k, "attn_k", unpermuteHeads: c.numKVHeads),
                v: try linear(.v, "attn_v"), o: try linear(.o, "attn_output"),
                postAttentionNorm: try vector(p + "ffn_norm.weight", d),
                gate: try linear(.gate, "ffn_gate"), up: try linear(.up, "ffn_up"), down: try linear(.down, "ffn_down"))
        }
        // The embedding table stays in its blocks too (lookups widen one row); a tied head shares it.
        func kept(_ name: String) throws -> QuantizedMatrix? {
            guard weights == .native else { return nil }
            if let q = try quantized(name, c.vocabSize, d) { return q }
            return requantises(name, cols: d) ? .q8_0(try matrix(name, c.vocabSize, d)) : nil
        }
        let table = try kept("token_embd.weight")
        let head = c.tieWordEmbeddings ? table : try kept("output.weight")
        let model = LlamaModel(
            config: c,
            embedding: table == nil ? try matrix("token_embd.weight", c.vocabSize, d) : Matrix(rows: 0, cols: 0),
            layers: layers, finalNorm: try vector("output_norm.weight", d),
            lmHead: c.tieWordEmbeddings || head != nil ? nil : try matrix("output.weight", c.vocabSize, d),
            outputQuantized: head, embeddingTable: table)
        model.cachePrecision = weights == .native ? .f16 : .f32
        model.bf16Activations = weights == .native ? .bf16 : .f32
        return model
    }

    /// Whether Q6_K holds more than half of the file's matrix values (a "Q6_K" file; in the K-quant
    /// mixes it is a few tensors, e.g. 9% of SmolLM2-135M's Q4_K_M). Native weights then requantise
    /// Q6_K to Q8_0 (8.5 bits a value, the file's size within 1.3×) rather than rewrite it as F16
    /// (16 bits: near-exact, but 2.4× the file's bytes and half its decode speed on such a file).
    static func holdsMostlyQ6_K(_ f: GGUFFile) -> Bool {
        var q6K = 0, all = 0
        for info in f.tensors.values where info.shape.count == 2 {
            let n = info.shape.reduce(1, *)
            all += n
            if info.type == .q6_K { q6K += n }
        }
        return 2 * q6K > all
    }

    /// For each Hugging Face row of a q/k projection, the GGUF row it is stored at.
    static func rotaryRowOrder(heads: Int, headDim: Int) -> [Int] {
        var order = [Int](repeating: 0, count: heads * headDim)
        let half = headDim / 2
        for h in 0..<heads {
            for i in 0..<2 { for j in 0..<half { order[h * headDim + i * half + j] = h * headDim + 2 * j + i } }
        }
        return order
    }

    /// Undoes llama.cpp's q/k row permutation: within each head of `headDim` rows, GGUF row
    /// `2j + i` goes back to Hugging Face row `i·headDim/2 + j`.
    public static func unpermuteRotaryRows(_ w: Matrix, heads: Int, headDim: Int) -> Matrix {
        precondition(w.rows == heads * headDim, "rows \(w.rows) != \(heads) heads × \(headDim)")
        var out = Matrix(rows: w.rows, cols: w.cols)
        let cols = w.cols
        w.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                for (to, from) in rotaryRowOrder(heads: heads, headDim: headDim).enumerated() {
                    (dst.baseAddress! + to * cols).update(from: src.baseAddress! + from * cols, count: cols)
                }
            }
        }
        return out
    }
}

extension LlamaModel {
    /// Loads a model from a Hugging Face directory or a `.gguf` file (recognised by its magic).
    /// `weights` applies to GGUF files (Hugging Face checkpoints are Float32 in memory).
    public static func load(path: URL, weights: GGUFModel.WeightFormat = .native) throws -> LlamaModel {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            guard GGUFFile.isGGUF(path) else {
                throw SwitchyardError.unsupported(
                    path: path.path,
                    what: "a model file that is not GGUF (give a GGUF file or a Hugging Face directory)")
            }
            return try GGUFModel.load(GGUFFile(url: path), weights: weights)
        }
        return try load(directory: path, weights: weights)
    }
}
