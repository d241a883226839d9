import Foundation
import Testing

@testable import Switchyard

@Suite struct RouterWireTests {
    static func sample() -> RouterSpec {
        RouterSpec(
            name: "t", version: 3, granularity: .token,
            experts: [.init(name: "a", sha256: String(repeating: "ab", count: 32)), .init(name: "b", sha256: "")],
            selection: Selection(mode: .topP, topK: 0, topP: 0.8, temperature: 0.5, everyN: 2),
            baseModel: "llama-gqa", metadata: [("trained", "yes"), ("by", "test")],
            gate: .token(
                layers: [
                    LayerGateSpec(
                        layer: 0, experts: [0, 1], weight: WireTensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]),
                        bias: WireTensor(shape: [2], values: [0.5, -0.5], dtype: .bf16)),
                    LayerGateSpec(
                        layer: 2, experts: [1], weight: WireTensor(shape: [1, 3], values: [7, 8, 9], dtype: .f16),
                        bias: nil)
                ], global: false, sourceLayer: 0))
    }

    /// NaN and infinite router weights are refused when the router is compiled, naming the field.
    @Test func nonFiniteRouterWeightsAreRefused() throws {
        let config = try ModelConfig.load(from: FixturePaths.url("models/llama-gqa/config.json"))
        for bad in [Float.nan, .infinity] {
            var spec = Self.sample()
            spec.gate = .token(
                layers: [
                    LayerGateSpec(
                        layer: 0, experts: [0, 1],
                        weight: WireTensor(
                            shape: [2, config.hiddenSize],
                            values: (0..<(2 * config.hiddenSize)).map { $0 == 5 ? bad : 0.1 }), bias: nil)
                ], global: false, sourceLayer: 0)
            #expect { _ = try BoundRouter.compile(spec, config: config, expertCount: 2) } throws: { error in
                "\(error)".contains("token.layers[0].weight") && "\(error)".contains("non-finite value")
                    && "\(error)".contains("element 5")
            }
        }
    }

    @Test func roundTripsThroughProtobufC() throws {
        let spec = Self.sample()
        let bytes = RouterWire.encode(spec)
        let decoded = try RouterWire.decode(bytes)
        #expect(decoded == spec)
        #expect(RouterWire.encode(decoded) == bytes)
    }

    @Test func everyGateKindRoundTrips() throws {
        let t = WireTensor(shape: [2, 2], values: [1, 2, 3, 4])
        let gates: [(RouterSpec.Granularity, RouterSpec.Gate)] = [
            (
                .sentence,
                .sentence(
                    featureLayer: 1, pooling: .last, layers: [DenseLayer(weight: t, bias: nil, activation: .gelu)])
            ),
            (.token, .centroid(layer: 2, centroids: t)),
            (.token, .centroid(layer: 1, centroids: t, context: .mean)),
            (.token, .centroid(layer: 1, centroids: t, context: .mean, centroidExperts: [1, 0])),
            (
                .rank,
                .rank(
                    modules: [RankModuleSpec(layer: 1, module: "v_proj", a: t, b: t, gate: t, scale: 0.25)],
                    activation: .sigmoid)
            )
        ]
        for (g, gate) in gates {
            let spec = RouterSpec(name: "x", granularity: g, experts: [], selection: nil, gate: gate)
            let bytes = RouterWire.encode(spec)
            #expect(try RouterWire.decode(bytes) == spec)
        }
    }

    @Test func hostileBytesAreErrorsNotCrashes() throws {
        let bytes = RouterWire.encode(Self.sample())
        var rng = SeededRandom(seed: 5)
        for n in 0..<bytes.count {
            // Every truncation either fails cleanly or decodes to something that re-validates.
            _ = try? RouterWire.decode(Array(bytes.prefix(n)))
        }
        for _ in 0..<2000 {
            var corrupt = bytes
            for _ in 0..<3 { corrupt[Int(rng.next() % UInt64(corrupt.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? RouterWire.decode(corrupt)
        }
        #expect(throws: RouterError.self) { try RouterWire.decode([0xFF, 0xFF, 0xFF]) }
    }

    @Test func tensorWithWrongByteLengthIsRejected() throws {
        var spec = Self.sample()
        spec.gate = .centroid(
            layer: 0, centroids: WireTensor(shape: [2, 3], dtype: .f32, bytes: [UInt8](repeating: 0, count: 20)))
        let message = "\((try? RouterWire.decode(RouterWire.encode(spec))).map { _ in "decoded" } ?? "")"
        #expect(message.isEmpty)
        do { _ = try RouterWire.decode(RouterWire.encode(spec)) } catch {
            #expect("\(error)".contains("centroid.centroids") && "\(error)".contains("24 bytes"))
        }
    }
}
