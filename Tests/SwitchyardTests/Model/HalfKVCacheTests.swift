import Foundation
import Testing

@testable import Switchyard

/// A half-precision KV cache (`KVCache.Precision.f16`, the default for GGUF files with native
/// weights) against the Float32 cache on the same model: half the bytes, logits within
/// llama.cpp's test-backend-ops criterion (NMSE ≤ 5e-4) through a prefill and decode steps
/// that read the rounded history.
@Suite struct HalfKVCacheTests {
    static func nmse(_ a: [Float], _ b: [Float]) -> Double {
        let err = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        return err / max(b.reduce(0.0) { $0 + Double($1) * Double($1) }, 1e-30)
    }

    @Test func halfCacheTracksTheFloatCache() throws {
        let model = try LlamaModel.load(directory: HalfPrecisionWeightsTests.demoBase)
        #expect(model.cachePrecision == .f32, "a safetensors checkpoint keeps the exact cache by default")
        let prompt = Array(3..<60)
        func run(_ precision: KVCache.Precision) throws -> (logits: [[Float]], bytes: Int) {
            model.cachePrecision = precision
            defer { model.cachePrecision = .f32 }
            let cache = model.makeCache(initialCapacity: 80)
            #expect(cache.precision == precision)
            var out = [try model.forward([SequenceInput(tokens: prompt, cache: cache)], logits: .all)[0].data]
            for token in [7, 11, 13, 17, 19] {
                out.append(try model.forward([SequenceInput(tokens: [token], cache: cache)])[0].data)
            }
            return (out, cache.byteCount)
        }
        let exact = try run(.f32), half = try run(.f16)
        #expect(half.bytes * 2 == exact.bytes)
        for (i, (h, e)) in zip(half.logits, exact.logits).enumerated() {
            let error = Self.nmse(h, e)
            #expect(error <= 5e-4 && error > 0, "step \(i): NMSE \(error)")
        }
    }

    @Test(.enabled(if: GGUFTests.realModel != nil, Comment(rawValue: GGUFTests.absent)))
    func ggufWithNativeWeightsDefaultsToAHalfCache() throws {
        let path = try #require(GGUFTests.realModel)
        #expect(try LlamaModel.load(path: path).cachePrecision == .f16)
        #expect(try LlamaModel.load(path: path, weights: .f32).cachePrecision == .f32)
    }
}
