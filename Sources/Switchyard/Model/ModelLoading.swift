import Foundation

extension LlamaModel {
    /// Loads a Hugging Face model directory (`config.json` + safetensors, single or sharded).
    /// Every tensor's shape is checked against the config; F16/BF16 weights are converted to
    /// Float32 once, here.
    public static func load(directory: URL) throws -> LlamaModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SwitchyardError.io(path: directory.path, reason: "model directory not found")
        }
        let config = try ModelConfig.load(from: directory.appendingPathComponent("config.json"))
        let ckpt = try CheckpointDirectory(directory: directory)
        let c = config, d = c.hiddenSize, hd = c.headDim
        let embedding = try ckpt.matrix("model.embed_tokens.weight", expected: [c.vocabSize, d])
        var layers: [DecoderLayer] = []
        for l in 0..<c.numLayers {
            let p = "model.layers.\(l)."
            func linear(_ kind: ProjectionKind, out: Int, in inF: Int, bias: Bool) throws -> Linear {
                let name = p + kind.modulePath
                let w = try ckpt.matrix(name + ".weight", expected: [out, inF])
                let b = bias ? try ckpt.vector(name + ".bias", expected: out) : nil
                return Linear(site: ProjectionSite(layer: l, kind: kind), weight: w, bias: b)
            }
            layers.append(DecoderLayer(
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
        if !c.tieWordEmbeddings {
            head = try ckpt.matrix("lm_head.weight", expected: [c.vocabSize, d])
        }
        return LlamaModel(config: config, embedding: embedding, layers: layers, finalNorm: norm, lmHead: head)
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
                Linear(site: ProjectionSite(layer: l, kind: kind), weight: matrix(out, inF),
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
        return LlamaModel(config: config, embedding: matrix(c.vocabSize, d), layers: layers,
                          finalNorm: [Float](repeating: 1, count: d),
                          lmHead: c.tieWordEmbeddings ? nil : matrix(c.vocabSize, d))
    }
}
