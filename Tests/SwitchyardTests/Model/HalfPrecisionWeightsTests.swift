import Foundation
import Testing

@testable import Switchyard

/// Half-precision safetensors weights kept half (`.native`, the default) against the same
/// checkpoint widened to Float32 at load (`.f32`, the parity path): the values are identical
/// (F16/BF16 widen exactly), only the order of the float sums differs.
@Suite struct HalfPrecisionWeightsTests {
    /// The demo base model, stored BF16.
    static var demoBase: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models/base")
    }

    @Test func bf16CheckpointStaysHalfAndMatchesTheWidenedModel() throws {
        let native = try LlamaModel.load(directory: Self.demoBase)
        let wide = try LlamaModel.load(directory: Self.demoBase, weights: .f32)
        #expect(native.layers.allSatisfy { l in ProjectionKind.allCases.allSatisfy { l[$0].quantized?.type == .bf16 } })
        #expect(native.embeddingTable?.type == .bf16 && native.outputQuantized === native.embeddingTable)
        #expect(wide.embeddingTable == nil && wide.layers[0].q.quantized == nil)
        let prompt = Array(3..<40)
        // Prefill (sgemm over widened tiles), then one-token decode steps (the register kernel).
        let a = try native.forward([SequenceInput(tokens: prompt, cache: native.makeCache())], logits: .all)[0]
        let b = try wide.forward([SequenceInput(tokens: prompt, cache: wide.makeCache())], logits: .all)[0]
        #expect(maxAbsDifference(a.data, b.data) <= 1e-4)
        let request = GenerationRequest(promptTokens: prompt, maxNewTokens: 16)
        #expect(try Generator(model: native).generate(request) == Generator(model: wide).generate(request))
        // A batch of 3 (the small-batch kernel) gives what each alone gives.
        let requests = [prompt, Array(prompt.prefix(7)), Array(prompt.suffix(11))].map {
            GenerationRequest(promptTokens: $0, maxNewTokens: 8)
        }
        let batched = try Generator(model: native).generateBatch(requests)
        for (i, r) in requests.enumerated() {
            #expect(batched[i] == (try Generator(model: wide).generate(r)), "sequence \(i)")
        }
    }
}
