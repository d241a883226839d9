import Foundation
import Testing

@testable import Switchyard

/// The real SmolLM2-135M-Instruct as users download it quantised by llama.cpp (Q4_K_M: Q5_0 for
/// its 576-wide rows, Q4_K, Q6_K, Q8_0; Q5_K_M: Q5_1, Q5_K, Q6_K, Q8_0), derived by
/// `Scripts/bench/compare_llamacpp.py --types q4_k_m,q5_k_m` (llama.cpp's own quantiser) into the
/// cache; skipped when absent. Native weights against the file dequantised to Float32, on every
/// reference prompt prefilled together and then decoded one token at a time, and the same greedy
/// continuation. Q5_0, Q5_1, Q5_K and Q4_K are rewritten into native blocks (exactly, or with
/// sub-block scales rounded to half); only the 14 Q6_K tensors (ffn_down of half the layers) are
/// requantised to Q8_0 (weight NMSE 3.1e-5), and they are all of the difference: with those
/// tensors exact, prompt 1's logits NMSE is 4.6e-7 (Q4_K_M) and 1.8e-6 (Q5_K_M) (measured
/// 2026-12-07). As loaded, Q4_K_M stays ≤ 5e-4, the bar of the native kernels; Q5_K_M reaches
/// 1.7e-3 on prompt 1 (7e-5…9e-5 on the others) and is held to 2.5e-3, what requantising Q6_K
/// costs on that file, not a kernel's error.
@Suite struct KQuantMixTests {
    static func file(_ mix: String) -> URL? {
        let env = ProcessInfo.processInfo.environment
        let url = URL(
            fileURLWithPath: (env["SWITCHYARD_CACHE"] ?? (NSHomeDirectory() + "/.cache/switchyard"))
                + "/SmolLM2-135M-Instruct.\(mix).gguf")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }
    static let absent =
        "the SmolLM2-135M-Instruct Q4_K_M/Q5_K_M files are absent: run Scripts/bench/compare_llamacpp.py --types q4_k_m,q5_k_m --rounds 1"

    static func nmse(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            / b.reduce(0.0) { $0 + Double($1) * Double($1) }
    }

    @Test(
        .enabled(if: file("Q4_K_M") != nil && file("Q5_K_M") != nil, Comment(rawValue: absent)),
        arguments: [("Q4_K_M", 5e-4), ("Q5_K_M", 2.5e-3)])
    func nativeWeightsTrackTheDequantisedFile(_ mix: String, bound: Double) throws {
        let url = try #require(Self.file(mix))
        let native = try LlamaModel.load(path: url), wide = try LlamaModel.load(path: url, weights: .f32)
        if mix == "Q4_K_M" {
            let types = Set(native.layers.flatMap { l in ProjectionKind.allCases.map { l[$0].quantized?.type } })
            #expect(types == [.q4_1, .q8_0], "\(types)")
        }
        let prompts = try FixturePaths.json("reference/smollm2-gguf.json")["prompts"] as! [[Int]]
        let cachesA = prompts.map { _ in native.makeCache() }, cachesB = prompts.map { _ in wide.makeCache() }
        let a = try native.forward(zip(prompts, cachesA).map { SequenceInput(tokens: $0, cache: $1) }, logits: .all)
        let b = try wide.forward(zip(prompts, cachesB).map { SequenceInput(tokens: $0, cache: $1) }, logits: .all)
        for i in prompts.indices {
            let e = Self.nmse(a[i].data, b[i].data)
            print("\(mix) native vs dequantised, prompt \(i) prefill: NMSE \(e)")
            #expect(e <= bound, "\(mix) prompt \(i) prefill: NMSE \(e)")
        }
        for (i, prompt) in prompts.enumerated() {
            let cacheA = native.makeCache(), cacheB = wide.makeCache()
            var x: [Float] = [], y: [Float] = []
            for t in prompt {
                x += try native.forward([SequenceInput(tokens: [t], cache: cacheA)])[0].data
                y += try wide.forward([SequenceInput(tokens: [t], cache: cacheB)])[0].data
            }
            let e = Self.nmse(x, y)
            print("\(mix) native vs dequantised, prompt \(i) one token at a time: NMSE \(e)")
            #expect(e <= bound, "\(mix) prompt \(i) decode: NMSE \(e)")
        }
        let request = GenerationRequest(promptTokens: prompts[0], maxNewTokens: 24)
        let p = try Generator(model: native).generate(request), q = try Generator(model: wide).generate(request)
        #expect(p == q, "\(mix): first divergence at \(Array(zip(p, q)).firstIndex { $0.0 != $0.1 } ?? -1)")
    }
}
