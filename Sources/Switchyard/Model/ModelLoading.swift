import Foundation

extension LlamaModel {
    /// Loads a Hugging Face model directory (`config.json` + safetensors, single or sharded).
    /// Every tensor's shape is checked against the config. With `.native` (the default), F16/BF16
    /// projections and embedding table stay half precision (`QuantizedMatrix.loaded`: F16 whose
    /// values are all bfloat16 is kept as BF16 where bfloat16 dot products run); `.f32` converts
    /// them to Float32 once, here. Norms, biases and F32
    /// tensors are Float32 either way. A NaN or infinite weight is refused, naming its tensor.
    public static func load(directory: URL, weights: GGUFModel.WeightFormat = .native) throws -> LlamaModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            throw SwitchyardError.io(
                path: directory.path,
                reason: "no such file or directory (give a Hugging Face model directory or a GGUF file)")
        }
        guard isDirectory.boolValue else {
            throw SwitchyardError.io(path: directory.path, reason: "not a model directory")
        }
        let config = try ModelConfig.load(from: directory.appendingPathComponent("config.json"))
        let ckpt = try CheckpointDirectory(directory: directory)
        let c = config, d = c.hiddenSize, hd = c.headDim
        /// The tensor kept half precision, when `weights` is native and it is stored F16/BF16.
        func kept(_ name: String, _ shape: [Int]) throws -> QuantizedMatrix? {
            guard weights == .native else { return nil }
            let file = try ckpt.file(for: name)
            guard let info = file.tensors[name] else {
                throw SwitchyardError.missingTensor(path: file.path, tensor: name)
            }
            let type: GGMLType
            switch info.dtype {
            case .f16: type = .f16
            case .bf16: type = .bf16
            default: return nil
            }
            guard info.shape == shape else {
                throw SwitchyardError.shapeMismatch(path: file.path, tensor: name, expected: shape, found: info.shape)
            }
            let loaded = try file.withRawBytes(name) {
                QuantizedMatrix.loaded(type: type, rows: shape[0], cols: shape[1], bytes: $0)
            }
            guard let q = loaded else { return nil }
            return try FiniteWeights.require(q, path: file.path, tensor: name)
        }
        let table = try kept("model.embed_tokens.weight", [c.vocabSize, d])
        let embedding =
            table == nil
            ? try ckpt.matrix("model.embed_tokens.weight", expected: [c.vocabSize, d]) : Matrix(rows: 0, cols: 0)
        var layers: [DecoderLayer] = []
        for l in 0..<c.numLayers {
            let p = "model.layers.\(l)."
            func linear(_ kind: ProjectionKind, out: Int, in inF: Int, bias: Bool) throws -> Linear {
                let name = p + kind.modulePath
                let b = bias ? try ckpt.vector(name + ".bias", expected: out) : nil
                if let q = try kept(name + ".weight", [out, inF]) {
                    return Linear(site: ProjectionSite(layer: l, kind: kind), quantized: q, bias: b)
                }
                let w = try ckpt.matrix(name + ".weight", expected: [out, inF])
                return Linear(site: ProjectionSite(layer: l, kind: kind), weight: w, bias: b)
            }
            layers.append(
                DecoderLayer(
                    index: l,
                    inputNorm: try ckpt.vector(p + "input_layernorm.weight", expected: d),
                    q: try linear(.q, out: c.numHeads * hd, in: d, bias: c.qkvBias),
                    k: try linear(.k, out: c.numKVHeads * hd, in: d, bias: c.qkvBias),
                    v: try linear(.v, out: c.numKVHeads * hd, in: d, bias: c.qkvBias),
                    o: try linear(.o, out: d, in: c.numHeads * hd, bias: c.outputBias),
                    postAttentionNorm: try ckpt.vector(p + "post_attention_layernorm.weight", expected: d),
                    gate: try linear(.gate, out: c.intermediateSize, in: d, bias: false),
                    up: try linear(.up, out: c.intermediateSize, in: d, bias: false),
                    down: try linear(.down, out: d, in: c.intermediateSize, bias: false)))
        }
        let norm = try ckpt.vector("model.norm.weight", expected: d)
        var head: Matrix? = nil
        var keptHead: QuantizedMatrix? = c.tieWordEmbeddings ? table : nil
        if !c.tieWordEmbeddings {
            keptHead = try kept("lm_head.weight", [c.vocabSize, d])
            if keptHead == nil { head = try ckpt.matrix("lm_head.weight", expected: [c.vocabSize, d]) }
        }
        return LlamaModel(
            config: config, embedding: embedding, layers: layers, finalNorm: norm, lmHead: head,
            outputQuantized: keptHead, embeddingTable: table)
    }

    /// A model with random weights (normal, std `std`; norms 1), e.g. for `switchyard bench`.
    /// Deterministic for a given seed.
    public static func random(config: ModelConfig, seed: UInt64 = 0, std: Float = 0.02) -> LlamaModel {
        var rng = SeededRandom(seed: seed)
        func matrix(_ rows: Int, _ cols: Int) -> Matrix {
            var m = Matrix(rows: rows, cols: cols)
            // Uniform with matching std is much cheaper than Box-Muller for 100M+ values.
            let a = std * Float(3).squareRoot()
            for i in 0..<m.data.count { m.data[i] = (rng.nextUnitFloat() * 2 - 1) * a }
            return m
        }
        let c = config, d = c.hiddenSize, hd = c.headDim
        let layers = (0..<c.numLayers).map { l -> DecoderLayer in
            func linear(_ kind: ProjectionKind, _ out: Int, _ inF: Int, bias: Bool) -> Linear {
                Linear(
                    site: ProjectionSite(layer: l, kind: kind), weight: matrix(out, inF),
                    bias: bias ? [Float](repeating: 0, count: out) : nil)
            }
            return DecoderLayer(
                index: l, inputNorm: [Float](repeating: 1, count: d),
                q: linear(.q, c.numHeads * hd, d, bias: c.qkvBias),
                k: linear(.k, c.numKVHeads * hd, d, bias: c.qkvBias),
                v: linear(.v, c.numKVHeads * hd, d, bias: c.qkvBias),
                o: linear(.o, d, c.numHeads * hd, bias: c.outputBias),
                postAttentionNorm: [Float](repeating: 1, count: d),
                gate: linear(.gate, c.intermediateSize, d, bias: false),
                up: linear(.up, c.intermediateSize, d, bias: false),
                down: linear(.down, d, c.intermediateSize, bias: false))
        }
        return LlamaModel(
            config: config, embedding: matrix(c.vocabSize, d), layers: layers,
            finalNorm: [Float](repeating: 1, count: d),
            lmHead: c.tieWordEmbeddings ? nil : matrix(c.vocabSize, d))
    }
}
