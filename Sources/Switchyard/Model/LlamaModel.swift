import Foundation

/// Which logits a forward pass returns.
public enum LogitsRequest: Sendable {
    /// No logits (prefill only).
    case none
    /// One row per sequence: the logits after its last new token.
    case last
    /// One row per new token of every sequence.
    case all
}

/// The new tokens of one sequence in a forward batch, with the cache that holds its history.
public struct SequenceInput {
    /// The token ids to feed after the cache's history, each in `0..<vocabSize`.
    public var tokens: [Int]
    /// The sequence's history (appended to by the forward pass).
    public var cache: KVCache
    /// New `tokens` of the sequence whose history is `cache`.
    public init(tokens: [Int], cache: KVCache) {
        self.tokens = tokens
        self.cache = cache
    }
}

/// A Llama-family decoder (Llama, Mistral, Qwen2): embeddings, decoder layers, final RMSNorm and
/// a tied or separate LM head.
///
/// Immutable after load apart from explicit weight edits (merging an expert), and shared between
/// requests; per-request state lives in `KVCache` and `ForwardWorkspace`.
public final class LlamaModel: @unchecked Sendable {
    /// The shape and hyper-parameters the weights were loaded (and checked) against.
    public let config: ModelConfig
    /// `[vocab × hidden]` in Float32; empty (0×0) when the table is kept in its storage type
    /// (`embeddingTable`).
    public let embedding: Matrix
    /// The embedding table kept in its storage type (a GGUF's Q8_0/Q4 blocks, a safetensors
    /// BF16/F16 table); lookups widen one row per token. Shared with `outputQuantized` when the
    /// head is tied, so the table is held once.
    public let embeddingTable: QuantizedMatrix?
    /// The decoder layers, `config.numLayers` of them in order (changed only by merging an expert).
    public internal(set) var layers: [DecoderLayer]
    /// Final RMSNorm weight, `[hidden]`.
    public let finalNorm: [Float]
    /// `[vocab × hidden]`; nil when tied to `embedding`.
    public let lmHead: Matrix?
    /// Rotary position embedding of every layer's queries and keys (from `config`).
    public let rotary: RotaryEmbedding

    /// The output projection kept in a block format (a quantised GGUF's head or tied
    /// embedding), multiplied natively; nil: `outputWeight` in Float32.
    public let outputQuantized: QuantizedMatrix?

    /// A model from loaded weights (the loaders in `Checkpoint/` call this). The embedding (or
    /// `embeddingTable`) must be `[vocab × hidden]` and a tied head over a kept table must come as
    /// `outputQuantized`; violations trap (they are programming errors, not user input).
    public init(
        config: ModelConfig, embedding: Matrix, layers: [DecoderLayer], finalNorm: [Float], lmHead: Matrix?,
        outputQuantized: QuantizedMatrix? = nil, embeddingTable: QuantizedMatrix? = nil
    ) {
        precondition(
            embeddingTable.map { $0.rows == config.vocabSize && $0.cols == config.hiddenSize }
                ?? (embedding.rows == config.vocabSize && embedding.cols == config.hiddenSize),
            "the embedding table must be [vocab × hidden]")
        precondition(
            lmHead != nil || outputQuantized != nil || embeddingTable == nil,
            "a tied head over a kept embedding table must be given as outputQuantized")
        self.outputQuantized = outputQuantized
        self.embeddingTable = embeddingTable
        self.config = config
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.lmHead = lmHead
        self.rotary = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling)
    }

    /// The output projection `[vocab × hidden]` (the embedding when tied).
    public var outputWeight: Matrix { lmHead ?? embedding }

    /// A fresh, empty cache sized for this model, in `cachePrecision`.
    public func makeCache(initialCapacity: Int = 64) -> KVCache {
        KVCache(config: config, precision: cachePrecision, initialCapacity: initialCapacity)
    }

    /// How `makeCache` stores keys and values: `.f32` unless set. `GGUFModel.load` sets `.f16`
    /// with native weights (llama.cpp's default cache for the same files: decode at depth reads
    /// half the bytes); the CLI's and server's `--kv-cache` override it. Set it before serving,
    /// not while a forward pass runs.
    public var cachePrecision: KVCache.Precision = .f32

    /// How activations meet BF16 weights in products of more than one row (batched decode,
    /// prefill): `.f32` unless set. `GGUFModel.load` sets `.bf16` with native weights (llama.cpp's
    /// arithmetic for the same files); the CLI's and server's `--bf16-activations` override it.
    /// Only BF16 weights on CPUs with AVX-512 BF16 are affected. Set it before serving, not while
    /// a forward pass runs.
    public var bf16Activations: BF16Activations = .f32 {
        didSet {
            for l in layers.indices { for kind in ProjectionKind.allCases { applyBF16Activations(layers[l][kind]) } }
            outputQuantized?.roundsActivationsToBF16 = bf16Activations == .bf16
        }
    }

    private func applyBF16Activations(_ linear: Linear) {
        linear.quantized?.roundsActivationsToBF16 = bf16Activations == .bf16
    }

    /// Replaces one projection (used to merge and unmerge experts), its weights multiplied as
    /// `bf16Activations` says. Not safe while a forward pass runs on this model.
    public func setProjection(_ linear: Linear) {
        applyBF16Activations(linear)
        layers[linear.site.layer][linear.site.kind] = linear
    }

    /// Runs the decoder over a batch of sequences, appending their new tokens to their caches.
    ///
    /// All new tokens are stacked into one `[rows × hidden]` activation (sequence 0's tokens, then
    /// sequence 1's, …) so every projection is one GEMM over the whole batch; attention runs per
    /// sequence against its own cache. This covers batched prefill, batched decode over
    /// sequences of different lengths, and mixtures of both.
    ///
    /// - Returns: per sequence, a `[1 × vocab]` (`.last`) or `[tokens × vocab]` (`.all`) matrix;
    ///   empty for `.none`.
    public func forward(
        _ batch: [SequenceInput], logits request: LogitsRequest = .last,
        delta: (any ProjectionDelta)? = nil,
        workspace: ForwardWorkspace? = nil
    ) throws -> [Matrix] {
        let ws = workspace ?? ForwardWorkspace()
        let rowStarts = try runLayers(batch, delta: delta, workspace: ws, stopBefore: config.numLayers)
        let c = config, d = c.hiddenSize
        let h = ws.hidden.pointer, xn = ws.normed.pointer
        let rows = batch.reduce(0) { $0 + $1.tokens.count }
        switch request {
        case .none:
            return []
        case .last:
            let selected = ws.gathered.get(batch.count * d)
            for (i, item) in batch.enumerated() {
                (selected + i * d).update(from: h + (rowStarts[i] + item.tokens.count - 1) * d, count: d)
            }
            return withLogitsBuffer(rows: batch.count, workspace: ws) { all in
                outputLogits(selected, rows: batch.count, scratch: xn, into: all)
                return (0..<batch.count).map { i in Self.rows(all + i * c.vocabSize, count: 1, cols: c.vocabSize) }
            }
        case .all:
            return withLogitsBuffer(rows: rows, workspace: ws) { all in
                outputLogits(h, rows: rows, scratch: xn, into: all)
                return batch.enumerated().map { i, item in
                    Self.rows(all + rowStarts[i] * c.vocabSize, count: item.tokens.count, cols: c.vocabSize)
                }
            }
        }
    }

    /// The residual stream entering decoder layer `layer` (0: the embeddings; `numLayers`: after
    /// the last layer, before the final norm) for every token of
    /// `tokens`, `[tokens × hidden]`, with no experts and no cache (features for sentence routers).
    public func residualStream(_ tokens: [Int], enteringLayer layer: Int, workspace: ForwardWorkspace? = nil) throws
        -> Matrix
    {
        guard layer >= 0, layer <= config.numLayers else {
            throw SwitchyardError.invalidArgument(
                "feature layer \(layer) is outside 0...\(config.numLayers) (\(config.numLayers): after the last layer)")
        }
        let ws = workspace ?? ForwardWorkspace()
        let cache = makeCache(initialCapacity: tokens.count)
        _ = try runLayers([SequenceInput(tokens: tokens, cache: cache)], delta: nil, workspace: ws, stopBefore: layer)
        return Matrix(
            rows: tokens.count, cols: config.hiddenSize,
            data: Array(UnsafeBufferPointer(start: ws.hidden.pointer, count: tokens.count * config.hiddenSize)))
    }

    /// Embeds the batch and runs decoder layers `0..<stopBefore`, leaving the residual stream in
    /// `ws.hidden`. Advances the caches only when every layer ran. Returns each sequence's first row.
    private func runLayers(
        _ batch: [SequenceInput], delta: (any ProjectionDelta)?, workspace ws: ForwardWorkspace,
        stopBefore: Int
    ) throws -> [Int] {
        try validate(batch)
        let c = config
        let d = c.hiddenSize, hd = c.headDim
        let qWidth = c.numHeads * hd, kvWidth = c.numKVHeads * hd, inter = c.intermediateSize
        var positions: [Int] = []
        var rowStarts: [Int] = []
        for item in batch {
            try item.cache.reserve(item.cache.length + item.tokens.count)
            rowStarts.append(positions.count)
            positions.append(contentsOf: item.cache.length..<(item.cache.length + item.tokens.count))
        }
        let rows = positions.count

        let h = ws.hidden.get(rows * d)
        let xn = ws.normed.get(rows * d)
        let qb = ws.q.get(rows * qWidth), kb = ws.k.get(rows * kvWidth), vb = ws.v.get(rows * kvWidth)
        let attn = ws.attention.get(rows * qWidth)
        let proj = ws.projected.get(rows * d)
        let gb = ws.gate.get(rows * inter), ub = ws.up.get(rows * inter)
        let cosT = ws.ropeCos.get(rows * hd / 2), sinT = ws.ropeSin.get(rows * hd / 2)

        if let table = embeddingTable {
            var r = 0
            for item in batch {
                for t in item.tokens {
                    table.row(t, into: h + r * d)
                    r += 1
                }
            }
        } else {
            embedding.data.withUnsafeBufferPointer { e in
                var r = 0
                for item in batch {
                    for t in item.tokens {
                        (h + r * d).update(from: e.baseAddress! + t * d, count: d)
                        r += 1
                    }
                }
            }
        }
        rotary.tables(positions: positions, cos: cosT, sin: sinT)

        for layer in layers[0..<stopBefore] {
            let l = layer.index
            delta?.beginLayer(l, hidden: h, rows: rows, width: d)
            layer.inputNorm.withUnsafeBufferPointer {
                Ops.rmsNorm(h, rows: rows, width: d, weight: $0.baseAddress!, eps: c.rmsNormEps, into: xn)
            }
            Linear.forward([layer.q, layer.k, layer.v], xn, rows: rows, into: [qb, kb, vb], delta: delta)
            // Each sequence's rows rotated and its keys and values stored in its own cache, the
            // sequences in parallel: at batch 8 this was ~2% of a step on the calling thread alone.
            Parallel.forEach(batch.count) { i in
                let n = batch[i].tokens.count, r0 = rowStarts[i], angles = r0 * hd / 2
                rotary.apply(
                    qb + r0 * qWidth, rows: n, heads: c.numHeads, stride: qWidth, cos: cosT + angles, sin: sinT + angles
                )
                rotary.apply(
                    kb + r0 * kvWidth, rows: n, heads: c.numKVHeads, stride: kvWidth, cos: cosT + angles,
                    sin: sinT + angles)
                batch[i].cache.store(
                    layer: l, keys: kb + r0 * kvWidth, values: vb + r0 * kvWidth, rows: n, stride: kvWidth)
            }
            let attentionRows = batch.enumerated().map { i, item in
                let cache = item.cache, n = item.tokens.count, r0 = rowStarts[i]
                return CausalAttention.Rows(
                    q: qb + r0 * qWidth, out: attn + r0 * qWidth, n: n, start: cache.length, cache: cache)
            }
            CausalAttention.run(
                attentionRows, layer: l, qStride: qWidth, numHeads: c.numHeads, slidingWindow: c.slidingWindow)
            layer.o.forward(attn, rows: rows, into: proj, delta: delta)
            Ops.add(h, proj, count: rows * d)

            layer.postAttentionNorm.withUnsafeBufferPointer {
                Ops.rmsNorm(h, rows: rows, width: d, weight: $0.baseAddress!, eps: c.rmsNormEps, into: xn)
            }
            Linear.forward([layer.gate, layer.up], xn, rows: rows, into: [gb, ub], delta: delta)
            Ops.siluMultiply(gb, ub, count: rows * inter)
            layer.down.forward(gb, rows: rows, into: proj, delta: delta)
            Ops.add(h, proj, count: rows * d)
        }
        if stopBefore == layers.count {
            for item in batch { item.cache.advance(by: item.tokens.count) }
        }
        return rowStarts
    }

    /// Logits of at most this many values (16 MiB: 85 rows of a 49,152-token vocabulary) are
    /// written into the workspace; more (prefill with `.all`) into a buffer freed after the copy,
    /// so that a long scoring call leaves no large buffer behind.
    static let workspaceLogitsLimit = 1 << 22

    /// `body` over a buffer for `rows × vocabSize` logits: the workspace's, or a temporary one.
    private func withLogitsBuffer<T>(
        rows: Int, workspace ws: ForwardWorkspace, _ body: (UnsafeMutablePointer<Float>) -> T
    ) -> T {
        let n = rows * config.vocabSize
        guard n > Self.workspaceLogitsLimit else { return body(ws.logits.get(n)) }
        let temporary = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { temporary.deallocate() }
        return body(temporary)
    }

    /// Final norm and LM head over `rows` hidden states, into `out` (`rows × vocabSize`).
    private func outputLogits(
        _ hidden: UnsafePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>,
        into out: UnsafeMutablePointer<Float>
    ) {
        let d = config.hiddenSize
        finalNorm.withUnsafeBufferPointer {
            Ops.rmsNorm(hidden, rows: rows, width: d, weight: $0.baseAddress!, eps: config.rmsNormEps, into: scratch)
        }
        if let q = outputQuantized {
            q.multiply(scratch, rows: rows, into: out)
            return
        }
        outputWeight.data.withUnsafeBufferPointer { wp in
            BLAS.gemmTransB(
                m: rows, n: config.vocabSize, k: d, a: scratch, lda: d,
                b: wp.baseAddress!, ldb: d, c: out, ldc: config.vocabSize)
        }
    }

    /// `count` rows of `cols` logits from `source` as a matrix of their own, copied once into
    /// uninitialised storage (a batch-8 decode step's 8 × 49,152 logits were zero-filled, written
    /// and then copied again: about 2% of the step).
    private static func rows(_ source: UnsafePointer<Float>, count: Int, cols: Int) -> Matrix {
        let n = count * cols
        return Matrix(
            rows: count, cols: cols,
            data: [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
                buffer.baseAddress!.initialize(from: source, count: n)
                initialized = n
            })
    }

    private func validate(_ batch: [SequenceInput]) throws {
        guard !batch.isEmpty else { throw SwitchyardError.invalidArgument("forward: empty batch") }
        var seen = Set<ObjectIdentifier>()
        for (i, item) in batch.enumerated() {
            guard !item.tokens.isEmpty else {
                throw SwitchyardError.invalidArgument("forward: sequence \(i) has no new tokens")
            }
            guard seen.insert(ObjectIdentifier(item.cache)).inserted else {
                throw SwitchyardError.invalidArgument(
                    "forward: sequence \(i) shares its KV cache with another sequence of the batch")
            }
            let cache = item.cache
            guard cache.numLayers == config.numLayers, cache.numKVHeads == config.numKVHeads,
                cache.headDim == config.headDim
            else {
                throw SwitchyardError.invalidArgument(
                    "forward: sequence \(i)'s KV cache was made for a different model")
            }
            if let bad = item.tokens.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw SwitchyardError.invalidArgument(
                    "token id \(bad) is outside the vocabulary (0..<\(config.vocabSize))")
            }
        }
    }
}
