import CKernels
import Foundation
import Testing

@testable import Switchyard

/// `LlamaModel.bf16Activations`: BF16 weights multiplied with bfloat16 dot products on activations
/// rounded to bfloat16 (`.bf16`, the default for GGUF files with native weights) against the
/// same weights on Float32 activations (`.f32`, the default for safetensors): prefill and the
/// batched decode within llama.cpp's test-backend-ops criterion (logits NMSE ≤ 5e-4; a single
/// decode step within twice that), batch-1 decode identical
/// (one row always keeps its activations Float32). On a CPU without AVX-512 BF16 both settings
/// run the same kernels and the logits are identical.
@Suite struct BF16ActivationsTests {
    static func nmse(_ a: [Float], _ b: [Float]) -> Double {
        let err = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        return err / max(b.reduce(0.0) { $0 + Double($1) * Double($1) }, 1e-30)
    }

    /// Logits of a batched prefill of `prompts` (every position), then `steps` batched decode
    /// steps (each sequence's next token fixed), and of one sequence fed a token at a time from an
    /// empty cache (batch 1 throughout), under `setting`.
    static func run(_ model: LlamaModel, _ setting: BF16Activations, prompts: [[Int]], steps: Int) throws -> (
        prefill: [[Float]], decode: [[Float]], single: [Float]
    ) {
        let before = model.bf16Activations
        model.bf16Activations = setting
        defer { model.bf16Activations = before }
        let caches = prompts.map { _ in model.makeCache() }
        let prefill = try model.forward(zip(prompts, caches).map { SequenceInput(tokens: $0, cache: $1) }, logits: .all)
            .map(\.data)
        var decode: [[Float]] = []
        for s in 0..<steps {
            let out = try model.forward(
                caches.indices.map { SequenceInput(tokens: [(7 * s + $0) % 50 + 3], cache: caches[$0]) })
            decode.append(out.flatMap(\.data))
        }
        let cache = model.makeCache()
        let single = try prompts[0].prefix(6).flatMap {
            try model.forward([SequenceInput(tokens: [$0], cache: cache)])[0].data
        }
        return (prefill, decode, single)
    }

    /// Checks `model` (BF16 projections) under both settings.
    static func check(_ model: LlamaModel, prompts: [[Int]], steps: Int, label: String) throws {
        let exact = try run(model, .f32, prompts: prompts, steps: steps)
        let rounded = try run(model, .bf16, prompts: prompts, steps: steps)
        let dot = QuantizedMatrix.bf16DotProductsAvailable
        for (i, (r, e)) in zip(rounded.prefill, exact.prefill).enumerated() {
            let error = nmse(r, e)
            print("\(label): bf16 vs f32 activations, prefill of sequence \(i): NMSE \(error)")
            #expect(error <= 5e-4, "\(label) prefill \(i): NMSE \(error)")
            #expect(
                (error > 0) == dot, "\(label) prefill \(i): the setting changes the products only with AVX-512 BF16")
        }
        // The decode steps' logits as one tensor (as test-backend-ops takes an op's whole output):
        // step by step on SmolLM2 the NMSE spans 5e-6…5.5e-4 and moves tenfold with the summation
        // order of kernels both settings share (the attention's 512-bit kernel moved one step from
        // 4e-5 to 5.5e-4 and another from 2e-4 to 8e-5), so one step is held to twice the bar.
        for (s, (r, e)) in zip(rounded.decode, exact.decode).enumerated() {
            let error = nmse(r, e)
            print("\(label): bf16 vs f32 activations, batched step \(s): NMSE \(error)")
            #expect(error <= 1e-3, "\(label) batched step \(s): NMSE \(error)")
        }
        let decodeError = nmse(rounded.decode.flatMap { $0 }, exact.decode.flatMap { $0 })
        #expect(decodeError <= 5e-4, "\(label) batched decode: NMSE \(decodeError)")
        // One row keeps Float32 activations in both settings.
        #expect(rounded.single == exact.single, "\(label): batch-1 decode")
    }

    @Test func demoBaseKeepsFloatActivationsUnlessAsked() throws {
        let model = try LlamaModel.load(directory: HalfPrecisionWeightsTests.demoBase)
        #expect(model.bf16Activations == .f32, "a safetensors checkpoint keeps exact activations by default")
        #expect(
            model.layers.allSatisfy { l in
                ProjectionKind.allCases.allSatisfy { l[$0].quantized?.roundsActivationsToBF16 == false }
            })
        model.bf16Activations = .bf16
        #expect(
            model.layers.allSatisfy { l in
                ProjectionKind.allCases.allSatisfy { l[$0].quantized?.roundsActivationsToBF16 == true }
            })
        #expect(model.outputQuantized?.roundsActivationsToBF16 == true)
        // A projection put in later (merging) is multiplied as the model says.
        let q = model.layers[0].q
        let copy = q.quantized!.withBytes {
            QuantizedMatrix(type: .bf16, rows: q.outFeatures, cols: q.inFeatures, bytes: $0)
        }
        model.setProjection(Linear(site: q.site, quantized: copy, bias: q.bias))
        #expect(copy.roundsActivationsToBF16)
        model.bf16Activations = .f32
        #expect(!copy.roundsActivationsToBF16 && model.outputQuantized?.roundsActivationsToBF16 == false)
        // Prompts of different lengths: batched prefill rows from several sequences, then a batch of 3.
        try Self.check(model, prompts: [Array(3..<40), Array(5..<12), Array(20..<61)], steps: 4, label: "demo base")
    }

    @Test func ggufWithNativeWeightsDefaultsToBF16Activations() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "switchyard-bf16act-\(UUID().uuidString).gguf")
        try Data(GGUFTests.kQuantModel()).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(try LlamaModel.load(path: url).bf16Activations == .bf16)
        #expect(try LlamaModel.load(path: url, weights: .f32).bf16Activations == .f32)
    }

    /// Every half against the library's own widening: exact in bfloat16 exactly when the float's
    /// low 16 bits are zero, and then those are the bits written.
    @Test func halvesBecomeBF16OnlyWhenExact() {
        for h in 0...UInt16.max {
            let f = HalfPrecision.f16ToFloat(h)
            var out: UInt16 = 0xDEAD
            let first = withUnsafeBytes(of: h.littleEndian) { sy_f16_to_bf16_exact($0.baseAddress!, 1, &out) }
            let exact = f.bitPattern & 0xFFFF == 0
            // NaNs (refused at load anyway): the library quiets them, so only NaN-ness is compared.
            if f.isNaN {
                #expect(first == -1 || first == 0)
                if first == -1 { #expect(HalfPrecision.bf16ToFloat(out).isNaN) }
                continue
            }
            #expect((first == -1) == exact, "half 0x\(String(h, radix: 16))")
            if exact { #expect(out == UInt16(f.bitPattern >> 16), "half 0x\(String(h, radix: 16))") }
        }
        // The index of the first inexact value of a longer run.
        let halves: [UInt16] = [0x3C00, 0x3C08, 0x3C01, 0x0001]
        var out = [UInt16](repeating: 0, count: 4)
        #expect(halves.withUnsafeBytes { sy_f16_to_bf16_exact($0.baseAddress!, 4, &out) } == 2)
    }

    /// An F16 file whose values are all bfloat16 (converted from a bfloat16 checkpoint) keeps them
    /// as BF16 where bfloat16 dot products run (the same numbers: batch-1 logits as the F16 kept
    /// elsewhere give); one with full half mantissas stays F16.
    @Test func f16FileOfBF16ValuesIsKeptAsBF16() throws {
        let dot = QuantizedMatrix.bf16DotProductsAvailable
        for exact in [true, false] {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent(
                "switchyard-f16-\(exact)-\(UUID().uuidString).gguf")
            try Data(GGUFTests.halfModel(exactInBF16: exact)).write(to: url)
            defer { try? FileManager.default.removeItem(at: url) }
            let native = try LlamaModel.load(path: url), wide = try LlamaModel.load(path: url, weights: .f32)
            native.cachePrecision = .f32  // the same cache as the widened model's: only the weights differ
            let expected: GGMLType = exact && dot ? .bf16 : .f16
            #expect(ProjectionKind.allCases.allSatisfy { native.layers[0][$0].quantized?.type == expected })
            #expect(native.embeddingTable?.type == expected && native.outputQuantized === native.embeddingTable)
            // q and k are stored permuted in a GGUF: the conversion keeps the rows' order undone.
            #expect(native.layers[0].q.floatWeight.data == wide.layers[0].q.weight.data, "exact \(exact)")
            #expect(native.layers[0].k.floatWeight.data == wide.layers[0].k.weight.data, "exact \(exact)")
            for token in [1, 5, 9] {
                let a = try native.forward([SequenceInput(tokens: [token], cache: native.makeCache())])[0].data
                let b = try wide.forward([SequenceInput(tokens: [token], cache: wide.makeCache())])[0].data
                #expect(maxAbsDifference(a, b) <= 1e-5, "exact \(exact), token \(token)")
            }
        }
    }

    /// The real SmolLM2-135M-Instruct with its projections rounded to BF16 (the file's Q4_1 weights
    /// dequantised, then rounded: a BF16 checkpoint of the same model): both settings within 5e-4
    /// and the same greedy continuation of the reference prompt, decoded in a batch beside the others.
    @Test(.enabled(if: GGUFTests.realModel != nil, Comment(rawValue: GGUFTests.absent)))
    func realModelInBF16TracksFloatActivations() throws {
        let model = try LlamaModel.load(path: try #require(GGUFTests.realModel), weights: .f32)
        for l in model.layers.indices {
            for kind in ProjectionKind.allCases {
                let p = model.layers[l][kind]
                let bits = p.weight.data.map { HalfPrecision.floatToBF16($0) }
                let q = bits.withUnsafeBytes {
                    QuantizedMatrix(type: .bf16, rows: p.outFeatures, cols: p.inFeatures, bytes: $0)
                }
                model.setProjection(Linear(site: p.site, quantized: q, bias: p.bias))
            }
        }
        let ref = try FixturePaths.json("reference/smollm2-gguf.json")
        let prompts = ref["prompts"] as! [[Int]]
        try Self.check(model, prompts: prompts, steps: 6, label: "SmolLM2 in BF16")
        let first = ref["greedy_prompt"] as! Int, count = (ref["greedy"] as! [Int]).count
        let requests = prompts.map { GenerationRequest(promptTokens: $0, maxNewTokens: count) }
        var outputs: [BF16Activations: [Int]] = [:]
        for setting in [BF16Activations.f32, .bf16] {
            model.bf16Activations = setting
            outputs[setting] = try Generator(model: model).generateBatch(requests)[first]
        }
        let (a, b) = (outputs[.bf16]!, outputs[.f32]!)
        #expect(a == b, "first divergence at \(Array(zip(a, b)).firstIndex { $0.0 != $0.1 } ?? -1)")
    }
}
