import Foundation
import Testing

@testable import Switchyard

/// GGUF: header validation on hostile files, block dequantisation against gguf-py (llama.cpp's
/// reference), and the real SmolLM2-135M-Instruct Q4_1 file against transformers (skipped when
/// the file is absent: run Scripts/models/fetch-smollm2-gguf).
@Suite struct GGUFTests {
    // MARK: A tiny writer for hostile-header tests

    struct Writer {
        var bytes: [UInt8] = []
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
        /// A valid file with one F32 tensor `t` of `n` values and one string key.
        static func valid(n: Int = 4) -> [UInt8] {
            var w = Writer()
            w.u32(GGUFFile.magic); w.u32(3); w.u64(1); w.u64(1)
            w.string("general.architecture"); w.u32(8); w.string("llama")
            w.string("t"); w.u32(1); w.u64(UInt64(n)); w.u32(0); w.u64(0)
            while w.bytes.count % 32 != 0 { w.bytes.append(0) }
            for i in 0..<n { withUnsafeBytes(of: Float(i).bitPattern.littleEndian) { w.bytes += $0 } }
            return w.bytes
        }
    }

    static func open(_ bytes: [UInt8]) throws -> GGUFFile {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-\(UUID().uuidString).gguf")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try GGUFFile(url: url)
    }

    static func failure(_ bytes: [UInt8]) -> String {
        do { _ = try open(bytes); return "" } catch { return "\(error)" }
    }

    /// A llama GGUF whose metadata has `overrides` (uint32 values) and one F32 token_embd of
    /// [hidden 8 × vocab 10].
    static func llamaFile(_ overrides: [String: UInt32]) -> [UInt8] {
        var meta: [String: UInt32] = [
            "llama.embedding_length": 8, "llama.attention.head_count": 2, "llama.attention.head_count_kv": 2,
            "llama.feed_forward_length": 16, "llama.block_count": 1, "llama.vocab_size": 10
        ]
        meta.merge(overrides) { $1 }
        var w = Writer()
        w.u32(GGUFFile.magic); w.u32(3); w.u64(1); w.u64(UInt64(meta.count + 1))
        w.string("general.architecture"); w.u32(8); w.string("llama")
        for (key, value) in meta.sorted(by: { $0.key < $1.key }) { w.string(key); w.u32(4); w.u32(value) }
        w.string("token_embd.weight"); w.u32(2); w.u64(8); w.u64(10); w.u32(0); w.u64(0)
        while w.bytes.count % 32 != 0 { w.bytes.append(0) }
        w.bytes += [UInt8](repeating: 0, count: 8 * 10 * 4)
        return w.bytes
    }

    /// GGUF metadata goes through the same validation as config.json.
    @Test func hostileMetadataIsValidatedLikeAConfig() throws {
        #expect(try GGUFModel.config(try Self.open(Self.llamaFile([:]))).numKVHeads == 2)
        for (overrides, field) in [
            (["llama.attention.head_count_kv": 3], "num_key_value_heads"),
            (["llama.block_count": 1 << 30], "num_hidden_layers"),
            (["tokenizer.ggml.eos_token_id": 10], "eos_token_id")
        ] as [([String: UInt32], String)] {
            #expect { _ = try GGUFModel.config(try Self.open(Self.llamaFile(overrides))) } throws: {
                "\($0)".contains(field)
            }
        }
    }

    @Test func readsAValidFile() throws {
        let f = try Self.open(Writer.valid())
        #expect(f.metadata["general.architecture"]?.string == "llama")
        #expect(f.tensors["t"]?.shape == [4] && f.tensors["t"]?.type == .f32)
        #expect(try f.floats("t") == [0, 1, 2, 3])
    }

    @Test func hostileHeadersAreClearErrorsNotCrashes() {
        let valid = Writer.valid()
        #expect(Self.failure(Array(valid.prefix(3))).contains("truncated"))
        var badMagic = valid; badMagic[0] = 0x58
        #expect(Self.failure(badMagic).contains("bad magic"))
        var version = valid; version[4] = 9
        #expect(Self.failure(version).contains("version 9"))
        // Every truncation point fails cleanly.
        for cut in stride(from: 0, to: valid.count, by: 3) {
            #expect(!Self.failure(Array(valid.prefix(cut))).isEmpty, "cut at \(cut)")
        }
        // A huge string length, an unknown tensor type, a tensor past the end.
        var w = Writer(); w.u32(GGUFFile.magic); w.u32(3); w.u64(0); w.u64(1); w.u64(UInt64.max)
        #expect(Self.failure(w.bytes).contains("string of"))
        w = Writer(); w.u32(GGUFFile.magic); w.u32(3); w.u64(1); w.u64(0)
        w.string("t"); w.u32(1); w.u64(256); w.u32(16); w.u64(0)
        #expect(Self.failure(w.bytes).contains("IQ2_XXS"))
        w = Writer(); w.u32(GGUFFile.magic); w.u32(3); w.u64(1); w.u64(0)
        w.string("t"); w.u32(1); w.u64(1 << 20); w.u32(0); w.u64(0)
        #expect(Self.failure(w.bytes).contains("outside the file"))
        w = Writer(); w.u32(GGUFFile.magic); w.u32(3); w.u64(1); w.u64(0)
        w.string("t"); w.u32(1); w.u64(33); w.u32(8); w.u64(0)
        #expect(Self.failure(w.bytes).contains("not a multiple"))
        w = Writer(); w.u32(GGUFFile.magic); w.u32(3); w.u64(0); w.u64(1); w.string("k"); w.u32(99)
        #expect(Self.failure(w.bytes).contains("unknown value type"))
    }

    /// The fixture's blocks of `name` (gguf-py's bytes) and its dequantised values.
    static func blocks(_ name: String) throws -> (bytes: [UInt8], values: [Float]) {
        let entry = try FixturePaths.json("reference/ggml-blocks.json")[name] as! [String: Any]
        let hex = Array((entry["hex"] as! String).utf8)
        let bytes = stride(from: 0, to: hex.count, by: 2).map {
            UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16)!
        }
        return (bytes, (entry["values"] as! [Double]).map { Float($0) })
    }

    /// K-quants have no native kernel: with native weights they are requantised to Q8_0. The
    /// quantiser gives gguf-py's Q8_0 bytes (reference/ggml-q8_0-quantize.json, from
    /// Scripts/fixtures/ggml_quantize_fixtures.py: zero, tiny, large and negative-maximum blocks,
    /// rounding ties), and the K-quant blocks survive it with NMSE ≤ 1e-4.
    @Test func kQuantsRequantiseToQ8_0() throws {
        let reference = try FixturePaths.json("reference/ggml-q8_0-quantize.json")
        let values = (reference["values"] as! [Double]).map { Float($0) }, cols = reference["cols"] as! Int
        let hex = Array((reference["hex"] as! String).utf8)
        let expected = stride(from: 0, to: hex.count, by: 2).map {
            UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16)!
        }
        let quantised = QuantizedMatrix.q8_0(Matrix(rows: values.count / cols, cols: cols, data: values))
        let bytes = quantised.withBytes { Array($0) }
        #expect(bytes.count == expected.count)
        for (i, (a, b)) in zip(bytes, expected).enumerated() where a != b {
            Issue.record("byte \(i) (block \(i / 34), offset \(i % 34)): \(a), gguf-py \(b)")
            break
        }
        for name in ["Q4_K", "Q6_K"] {
            let (_, values) = try Self.blocks(name)
            let q = QuantizedMatrix.q8_0(Matrix(rows: values.count / 256, cols: 256, data: values))
            #expect(q.type == .q8_0)
            let back = q.dequantized().data
            let err = zip(back, values).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let nmse = err / values.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(nmse <= 1e-4, "\(name) → Q8_0: NMSE \(nmse)")
        }
    }

    /// A one-layer llama GGUF (hidden 256, 2 heads, FFN 256, vocab 16) as llama.cpp writes a
    /// Q4_K_M or Q5_K_M file of a small model: projections of random Q4_K, Q5_0, Q5_1 and Q5_K
    /// blocks, `ffn_down` and the tied embedding random Q6_K (finite half scales), the norms F32
    /// ones.
    /// With `allQ6_K`, every projection is Q6_K (a "Q6_K" file of a model whose rows are whole
    /// super-blocks).
    static func kQuantModel(allQ6_K: Bool = false) -> [UInt8] {
        var rng = SeededRandom(seed: 31)
        let meta: [(String, UInt32)] = [
            ("llama.embedding_length", 256), ("llama.attention.head_count", 2), ("llama.attention.head_count_kv", 2),
            ("llama.feed_forward_length", 256), ("llama.block_count", 1), ("llama.vocab_size", 16)
        ]
        let tensors: [(String, GGMLType, [Int])] = [
            ("token_embd.weight", .q6_K, [16, 256]), ("output_norm.weight", .f32, [256]),
            ("blk.0.attn_norm.weight", .f32, [256]), ("blk.0.ffn_norm.weight", .f32, [256]),
            ("blk.0.attn_q.weight", .q4_K, [256, 256]), ("blk.0.attn_k.weight", .q5_0, [256, 256]),
            ("blk.0.attn_v.weight", .q5_1, [256, 256]), ("blk.0.attn_output.weight", .q5_K, [256, 256]),
            ("blk.0.ffn_gate.weight", .q4_K, [256, 256]), ("blk.0.ffn_up.weight", .q5_0, [256, 256]),
            ("blk.0.ffn_down.weight", .q6_K, [256, 256])
        ].map { name, type, shape in (name, allQ6_K && shape.count == 2 ? .q6_K : type, shape) }
        func half(_ x: Float) -> [UInt8] { withUnsafeBytes(of: Float16(x).bitPattern.littleEndian) { Array($0) } }
        var data: [[UInt8]] = []
        for (_, type, shape) in tensors {
            var bytes: [UInt8] = []
            if type == .f32 {
                for _ in 0..<shape[0] { withUnsafeBytes(of: Float(1).bitPattern.littleEndian) { bytes += $0 } }
            } else {
                for _ in 0..<(shape[0] * shape[1] / type.blockElements) {
                    var block = (0..<type.blockBytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    // Finite scales: d leads the block (and dmin or m follows it), Q6_K's d ends it.
                    let d = half(0.002 + rng.nextUnitFloat() * 0.002)
                    switch type {
                    case .q6_K: block.replaceSubrange(208..<210, with: d)
                    case .q5_0: block.replaceSubrange(0..<2, with: half(0.004 + rng.nextUnitFloat() * 0.004))
                    case .q5_1:
                        block.replaceSubrange(0..<2, with: half(0.004 + rng.nextUnitFloat() * 0.004))
                        block.replaceSubrange(2..<4, with: half(-0.06))
                    default:
                        block.replaceSubrange(0..<2, with: d)
                        block.replaceSubrange(2..<4, with: half(0.001))
                    }
                    bytes += block
                }
            }
            data.append(bytes)
        }
        return llamaFile(meta: meta, tensors: tensors, data: data)
    }

    /// A one-layer llama GGUF (hidden 256, 2 heads, FFN 256, vocab 16) whose projections and tied
    /// embedding are random F16 values in ±0.25, each rounded to a bfloat16 first when `exactInBF16`
    /// (as an F16 file converted from a bfloat16 checkpoint holds); the norms F32 ones.
    static func halfModel(exactInBF16: Bool) -> [UInt8] {
        var rng = SeededRandom(seed: 37)
        let meta: [(String, UInt32)] = [
            ("llama.embedding_length", 256), ("llama.attention.head_count", 2), ("llama.attention.head_count_kv", 2),
            ("llama.feed_forward_length", 256), ("llama.block_count", 1), ("llama.vocab_size", 16)
        ]
        var tensors: [(String, GGMLType, [Int])] = [
            ("token_embd.weight", .f16, [16, 256]), ("output_norm.weight", .f32, [256]),
            ("blk.0.attn_norm.weight", .f32, [256]), ("blk.0.ffn_norm.weight", .f32, [256])
        ]
        for name in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
            tensors.append(("blk.0.\(name).weight", .f16, [256, 256]))
        }
        let data = tensors.map { _, type, shape -> [UInt8] in
            guard type == .f16 else {
                return (0..<shape[0]).flatMap { _ in withUnsafeBytes(of: Float(1).bitPattern.littleEndian) { Array($0) }
                }
            }
            return (0..<(shape[0] * shape[1])).flatMap { _ -> [UInt8] in
                var v = (rng.nextUnitFloat() * 2 - 1) * 0.25
                if exactInBF16 { v = HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16(v)) }
                let h = HalfPrecision.floatToF16(v)
                return [UInt8(h & 0xFF), UInt8(h >> 8)]
            }
        }
        return llamaFile(meta: meta, tensors: tensors, data: data)
    }

    /// A GGUF v3 file of architecture llama with these u32 metadata and tensors (data in order).
    static func llamaFile(meta: [(String, UInt32)], tensors: [(String, GGMLType, [Int])], data: [[UInt8]]) -> [UInt8] {
        var w = Writer()
        w.u32(GGUFFile.magic); w.u32(3); w.u64(UInt64(tensors.count)); w.u64(UInt64(meta.count + 1))
        w.string("general.architecture"); w.u32(8); w.string("llama")
        for (key, value) in meta { w.string(key); w.u32(4); w.u32(value) }
        var offset = 0
        for (i, (name, type, shape)) in tensors.enumerated() {
            w.string(name); w.u32(UInt32(shape.count))
            for n in shape.reversed() { w.u64(UInt64(n)) }
            w.u32(type.rawValue); w.u64(UInt64(offset))
            offset += (data[i].count + 31) / 32 * 32
        }
        while w.bytes.count % 32 != 0 { w.bytes.append(0) }
        for bytes in data { w.bytes += bytes; while w.bytes.count % 32 != 0 { w.bytes.append(0) } }
        return w.bytes
    }

    /// A K-quant file loads with native weights on native kernels — Q4_K rewritten as Q4_1,
    /// Q5_0, Q5_1 and Q5_K as Q8_0, Q6_K as F16 — and tracks the dequantised (f32) model: logits
    /// NMSE ≤ 5e-4.
    @Test func kQuantModelRunsOnNativeKernels() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "switchyard-kquant-\(UUID().uuidString).gguf")
        try Data(Self.kQuantModel()).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let native = try LlamaModel.load(path: url), wide = try LlamaModel.load(path: url, weights: .f32)
        let types = ProjectionKind.allCases.map { native.layers[0][$0].quantized?.type }
        #expect(types == [.q4_1, .q8_0, .q8_0, .q8_0, .q4_1, .q8_0, .f16], "\(ProjectionKind.allCases) → \(types)")
        #expect(native.embeddingTable?.type == .f16 && native.outputQuantized === native.embeddingTable)
        #expect(wide.layers[0].q.quantized == nil)
        let tokens = [1, 5, 9, 2, 14, 3]
        let a = try native.forward([SequenceInput(tokens: tokens, cache: native.makeCache())], logits: .all)[0].data
        let b = try wide.forward([SequenceInput(tokens: tokens, cache: wide.makeCache())], logits: .all)[0].data
        let err = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let nmse = err / b.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(nmse <= 5e-4 && nmse > 0, "NMSE \(nmse)")
    }

    /// In a file that is mostly Q6_K, Q6_K is requantised to Q8_0 (the file's size within 1.3×),
    /// not rewritten as F16 (2.4×), and still tracks the dequantised model.
    @Test func mostlyQ6_KFileIsRequantisedToQ8_0() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "switchyard-q6k-\(UUID().uuidString).gguf")
        try Data(Self.kQuantModel(allQ6_K: true)).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let native = try LlamaModel.load(path: url), wide = try LlamaModel.load(path: url, weights: .f32)
        let types = Set(ProjectionKind.allCases.map { native.layers[0][$0].quantized?.type })
        #expect(types == [.q8_0] && native.embeddingTable?.type == .q8_0, "\(types)")
        let tokens = [1, 5, 9, 2, 14, 3]
        let a = try native.forward([SequenceInput(tokens: tokens, cache: native.makeCache())], logits: .all)[0].data
        let b = try wide.forward([SequenceInput(tokens: tokens, cache: wide.makeCache())], logits: .all)[0].data
        let err = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        #expect(err / b.reduce(0.0) { $0 + Double($1) * Double($1) } <= 5e-3)
    }

    @Test func dequantisationMatchesLlamaCppReference() throws {
        let json = try FixturePaths.json("reference/ggml-blocks.json")
        let types: [String: GGMLType] = [
            "Q4_0": .q4_0, "Q4_1": .q4_1, "Q8_0": .q8_0, "Q4_K": .q4_K, "Q6_K": .q6_K, "F16": .f16, "BF16": .bf16,
            "Q5_0": .q5_0, "Q5_1": .q5_1, "Q5_K": .q5_K, "Q2_K": .q2_K, "Q3_K": .q3_K, "IQ4_NL": .iq4_NL,
            "IQ4_XS": .iq4_XS
        ]
        for (name, type) in types {
            let entry = json[name] as! [String: Any]
            let hex = entry["hex"] as! String
            var bytes: [UInt8] = []
            var i = hex.startIndex
            while i < hex.endIndex {
                let j = hex.index(i, offsetBy: 2)
                bytes.append(UInt8(hex[i..<j], radix: 16)!)
                i = j
            }
            let expected = (entry["values"] as! [Double]).map { Float($0) }
            let got = bytes.withUnsafeBytes { GGMLDequantize.floats(type, $0, count: expected.count) }
            // Exact up to float rounding order (scale products): 1e-6 relative.
            let worst = zip(got, expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst <= 1e-6, "\(name): worst relative difference \(worst)")
        }
    }

    @Test func unpermutingRestoresTheHuggingFaceRowOrder() {
        // Apply llama.cpp's permutation (reshape(h, 2, D/2, in).swapaxes(1, 2)) to rows 0..<n, undo it.
        let heads = 3, d = 8, cols = 2
        var permuted = Matrix(rows: heads * d, cols: cols)
        for h in 0..<heads {
            for i in 0..<2 {
                for j in 0..<(d / 2) {
                    let hfRow = h * d + i * (d / 2) + j, ggufRow = h * d + 2 * j + i
                    for c in 0..<cols { permuted[ggufRow, c] = Float(hfRow * cols + c) }
                }
            }
        }
        let restored = GGUFModel.unpermuteRotaryRows(permuted, heads: heads, headDim: d)
        #expect(restored.data == (0..<(heads * d * cols)).map(Float.init))
    }

    // MARK: The real model

    static var realModel: URL? {
        let env = ProcessInfo.processInfo.environment
        let candidates = [
            env["SWITCHYARD_SMOLLM2_GGUF"],
            (env["SWITCHYARD_CACHE"] ?? (NSHomeDirectory() + "/.cache/switchyard")) + "/SmolLM2-135M-Instruct.Q4_1.gguf"
        ]
        return candidates.compactMap { $0 }.map(URL.init(fileURLWithPath:)).first {
            FileManager.default.fileExists(atPath: $0.path)
        }
    }
    static let absent = "the SmolLM2-135M-Instruct GGUF is absent: run Scripts/models/fetch-smollm2-gguf"

    @Test(.enabled(if: realModel != nil, Comment(rawValue: absent)))
    func tokenizerFromMetadataMatchesTransformers() throws {
        let ref = try FixturePaths.json("reference/smollm2-gguf.json")
        let tokenizer = try Tokenizer.load(model: Self.realModel!)
        let corpus = ref["corpus"] as! [String]
        let plain = ref["corpus_ids"] as! [[Int]], special = ref["corpus_ids_special"] as! [[Int]]
        for (i, text) in corpus.enumerated() {
            #expect(tokenizer.encode(text) == plain[i], "\(text.debugDescription)")
            #expect(tokenizer.encode(text, addSpecialTokens: true) == special[i], "\(text.debugDescription) (special)")
            #expect(tokenizer.decode(plain[i]) == text, "round trip \(text.debugDescription)")
        }
        #expect(tokenizer.eosTokenID == ref["eos_token_id"] as? Int)
        #expect(tokenizer.bosTokenID == ref["bos_token_id"] as? Int)
    }

    @Test(.enabled(if: realModel != nil, Comment(rawValue: absent)))
    func dequantisedModelMatchesTransformers() throws {
        let ref = try FixturePaths.json("reference/smollm2-gguf.json")
        let logits = try SafeTensorsFile(url: FixturePaths.url("reference/smollm2-gguf.safetensors"))
        let model = try LlamaModel.load(path: Self.realModel!, weights: .f32)
        let prompts = ref["prompts"] as! [[Int]]
        let expert = try LoRAAdapter.load(directory: FixturePaths.url("adapters/smollm2-qk"), base: model.config)
        for (i, prompt) in prompts.enumerated() {
            for (label, routing) in [("base", RequestRouting.base), ("expert", .experts([expert]))] {
                let expected = try logits.floats("\(label).\(i)")
                let all = try model.scoreLogits(prompt, routing: routing)
                let got = i == 1 ? all.data : all.row(all.rows - 1)
                let diff = maxAbsDifference(got, expected)
                // The usual fp32 bar (measured: 3.6e-5–7.0e-5 over 30 layers).
                #expect(diff <= 1e-4, "\(label) prompt \(i): max |Δ| = \(diff)")
            }
        }
        let greedy = ref["greedy"] as! [Int]
        let out = try Generator(model: model).generate(
            GenerationRequest(promptTokens: prompts[ref["greedy_prompt"] as! Int], maxNewTokens: greedy.count))
        #expect(out == greedy)
    }

    /// Native Q4_1/Q8_0 kernels against the dequantised path on the real model: normalised mean
    /// squared error of the logits ≤ 5e-4 (llama.cpp's test-backend-ops criterion), same greedy text.
    @Test(.enabled(if: realModel != nil, Comment(rawValue: absent)))
    func nativeQuantisedKernelsTrackTheDequantisedModel() throws {
        let ref = try FixturePaths.json("reference/smollm2-gguf.json")
        let native = try LlamaModel.load(path: Self.realModel!, weights: .native)
        let wide = try LlamaModel.load(path: Self.realModel!, weights: .f32)
        #expect(native.layers[0].q.quantized?.type == .q4_1 && native.outputQuantized?.type == .q8_0)
        let prompts = ref["prompts"] as! [[Int]]
        let expert = try LoRAAdapter.load(directory: FixturePaths.url("adapters/smollm2-qk"), base: native.config)
        for (i, prompt) in prompts.enumerated() {
            for routing in [RequestRouting.base, .experts([expert])] {
                // Decode-sized steps (one token at a time) take the integer path.
                let cacheA = native.makeCache(), cacheB = wide.makeCache()
                var se = 0.0, ss = 0.0
                for (p, t) in prompt.enumerated() {
                    let builder = StepDeltaBuilder()
                    let d = try builder.build([.init(routing: routing, firstPosition: p, count: 1)])
                    let a = try native.forward([SequenceInput(tokens: [t], cache: cacheA)], delta: d)[0].data
                    let b = try wide.forward([SequenceInput(tokens: [t], cache: cacheB)], delta: d)[0].data
                    for j in a.indices {
                        se += Double(a[j] - b[j]) * Double(a[j] - b[j]); ss += Double(b[j]) * Double(b[j])
                    }
                }
                let nmse = se / ss
                let label: String = { if case .base = routing { return "base" } else { return "expert" } }()
                print("GGUF native vs dequantised, prompt \(i), \(label): NMSE \(nmse)")
                #expect(nmse <= 5e-4, "prompt \(i): NMSE \(nmse)")
            }
        }
        let greedy = ref["greedy"] as! [Int]
        let out = try Generator(model: native).generate(
            GenerationRequest(promptTokens: prompts[ref["greedy_prompt"] as! Int], maxNewTokens: greedy.count))
        #expect(out == greedy, "first divergence at \(Array(zip(out, greedy)).firstIndex { $0.0 != $0.1 } ?? -1)")
    }

    /// The batched paths (several sequences per step, and every prompt prefilled in one forward:
    /// 8-bit dot products on CPUs with VNNI, else weights widened to Float32) against the
    /// dequantised model on the real file: logits NMSE ≤ 5e-4 per sequence, and the greedy
    /// prompt's continuation, decoded in a batch beside the others, is transformers' greedy text.
    @Test(.enabled(if: realModel != nil, Comment(rawValue: absent)))
    func batchedNativeDecodeTracksTheDequantisedModel() throws {
        let ref = try FixturePaths.json("reference/smollm2-gguf.json")
        let native = try LlamaModel.load(path: Self.realModel!, weights: .native)
        let wide = try LlamaModel.load(path: Self.realModel!, weights: .f32)
        let prompts = ref["prompts"] as! [[Int]]
        let prefillA = try native.forward(
            prompts.map { SequenceInput(tokens: $0, cache: native.makeCache()) }, logits: .all)
        let prefillB = try wide.forward(
            prompts.map { SequenceInput(tokens: $0, cache: wide.makeCache()) }, logits: .all)
        for i in prompts.indices {
            let a = prefillA[i].data, b = prefillB[i].data
            let se = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let nmse = se / b.reduce(0.0) { $0 + Double($1) * Double($1) }
            print("GGUF native vs dequantised, prefill of \(prompts.map(\.count)) tokens, prompt \(i): NMSE \(nmse)")
            #expect(nmse <= 5e-4, "prefill, prompt \(i): NMSE \(nmse)")
        }
        let steps = prompts.map(\.count).min()!
        let cachesA = prompts.map { _ in native.makeCache() }, cachesB = prompts.map { _ in wide.makeCache() }
        var se = [Double](repeating: 0, count: prompts.count), ss = se
        for p in 0..<steps {
            let a = try native.forward(zip(prompts, cachesA).map { SequenceInput(tokens: [$0[p]], cache: $1) })
            let b = try wide.forward(zip(prompts, cachesB).map { SequenceInput(tokens: [$0[p]], cache: $1) })
            for i in prompts.indices {
                for j in a[i].data.indices {
                    let e = Double(a[i].data[j] - b[i].data[j]), r = Double(b[i].data[j])
                    se[i] += e * e; ss[i] += r * r
                }
            }
        }
        for i in prompts.indices {
            print("GGUF native vs dequantised, batch of \(prompts.count), sequence \(i): NMSE \(se[i] / ss[i])")
            #expect(se[i] / ss[i] <= 5e-4, "sequence \(i): NMSE \(se[i] / ss[i])")
        }
        let greedy = ref["greedy"] as! [Int], first = ref["greedy_prompt"] as! Int
        let requests = prompts.map { GenerationRequest(promptTokens: $0, maxNewTokens: greedy.count) }
        let out = try Generator(model: native).generateBatch(requests)[first]
        #expect(out == greedy, "first divergence at \(Array(zip(out, greedy)).firstIndex { $0.0 != $0.1 } ?? -1)")
    }
}
