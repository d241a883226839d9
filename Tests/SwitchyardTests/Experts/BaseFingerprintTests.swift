import Foundation
import Testing

@testable import Switchyard

/// The base-model guard: fingerprints identify one base across storage types and tell unrelated
/// weights apart; the registry accepts experts recorded for the loaded base and experts with no
/// record, and refuses experts recorded for another base (naming both) or whose record
/// describes other weights.
@Suite struct BaseFingerprintTests {
    static var demoBase: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Models/base")
    }

    /// One row quantised as llama.cpp's reference quantiser does (`quantize_row_q8_0_ref`,
    /// `quantize_row_q4_1_ref`): Q8_0 = f16 scale + 32 int8; Q4_1 = f16 scale, f16 minimum,
    /// 16 bytes of nibbles (element j low, j+16 high).
    static func quantize(_ row: ArraySlice<Float>, _ type: GGMLType) -> [UInt8] {
        var out: [UInt8] = []
        func half(_ v: Float) { let h = HalfPrecision.floatToF16(v); out += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        for b in stride(from: row.startIndex, to: row.endIndex, by: 32) {
            let x = Array(row[b..<(b + 32)])
            switch type {
            case .q8_0:
                let d = x.map(abs).max()! / 127, id: Float = d != 0 ? 1 / d : 0
                half(d)
                out += x.map { UInt8(bitPattern: Int8(max(-127, min(127, ($0 * id).rounded())))) }
            case .q4_1:
                let lo = x.min()!, d = (x.max()! - lo) / 15, id: Float = d != 0 ? 1 / d : 0
                half(d)
                half(lo)
                let q = x.map { UInt8(min(15, max(0, Int(($0 - lo) * id + 0.5)))) }
                out += (0..<16).map { q[$0] | q[$0 + 16] << 4 }
            default:
                preconditionFailure("test quantiser: \(type)")
            }
        }
        return out
    }

    static func quantized(_ m: Matrix, _ type: GGMLType) -> QuantizedMatrix {
        let bytes = (0..<m.rows).flatMap { r in quantize(m.data[(r * m.cols)..<((r + 1) * m.cols)], type) }
        return bytes.withUnsafeBytes { QuantizedMatrix(type: type, rows: m.rows, cols: m.cols, bytes: $0) }
    }

    /// `model` with every projection and the (tied) embedding table stored as `type` blocks, as
    /// a GGUF converted from the same checkpoint holds them.
    static func requantized(_ model: LlamaModel, _ type: GGMLType) -> LlamaModel {
        var layers = model.layers
        for l in layers.indices {
            for kind in ProjectionKind.allCases {
                let linear = layers[l][kind]
                layers[l][kind] = Linear(
                    site: linear.site, quantized: quantized(linear.floatWeight, type), bias: linear.bias)
            }
        }
        let table = quantized(model.embeddingTable?.dequantized() ?? model.embedding, type)
        precondition(model.config.tieWordEmbeddings, "the demo base ties its head")
        return LlamaModel(
            config: model.config, embedding: Matrix(rows: 0, cols: 0), layers: layers, finalNorm: model.finalNorm,
            lmHead: nil, outputQuantized: table, embeddingTable: table)
    }

    @Test func oneBaseAcrossStorageTypesAndUnrelatedWeightsApart() throws {
        let base = try LlamaModel.load(directory: Self.demoBase)
        let f32 = BaseFingerprint(model: base)
        // Deterministic.
        #expect(BaseFingerprint(model: base) == f32)
        // The same weights quantised (what a GGUF of the demo base would hold): a few bits move.
        for type in [GGMLType.q8_0, .q4_1] {
            let q = BaseFingerprint(model: Self.requantized(base, type))
            #expect(q.architecture == f32.architecture)
            #expect(q.matches(f32), "\(type): \(q.difference(from: f32))")
            #expect(q.signatureDistance(to: f32) <= 8, "\(type): \(q.signatureDistance(to: f32)) bits")
        }
        // Same shapes, other weights: about half the bits differ.
        for seed in [1, 2, 3] as [UInt64] {
            let other = BaseFingerprint(model: LlamaModel.random(config: base.config, seed: seed))
            #expect(!other.matches(f32))
            #expect(other.signatureDistance(to: f32) >= 40, "seed \(seed): \(other.signatureDistance(to: f32)) bits")
        }
        // Another shape: the architecture part differs.
        var wider = base.config
        wider.intermediateSize += 32
        let shaped = BaseFingerprint(model: LlamaModel.random(config: wider, seed: 1))
        #expect(shaped.architecture != f32.architecture && !shaped.matches(f32))
        #expect(shaped.difference(from: f32) == "the architecture differs")
    }

    @Test func textFormRoundTripsAndRefusesAnythingElse() {
        let f = BaseFingerprint(architecture: 0x0123_4567_89ab_cdef, signature: (1, 0xffff_ffff_ffff_ffff))
        #expect(f.description == "sy1-0123456789abcdef-0000000000000001ffffffffffffffff")
        #expect(BaseFingerprint(f.description) == f)
        for bad in [
            "", "sy1", "sy2-0123456789abcdef-0000000000000001ffffffffffffffff",
            "sy1-0123456789ABCDEF-0000000000000001ffffffffffffffff",
            "sy1-+123456789abcdef-0000000000000001ffffffffffffffff",
            "sy1-0123456789abcdef-0000000000000001ffffffffffffffff-",
            "sy1-0123456789abcdef-0000000000000001fffffffffffffff"
        ] {
            #expect(BaseFingerprint(bad) == nil, "\(bad)")
        }
    }

    // MARK: The registry's guard

    static func fixtureModel() throws -> LlamaModel {
        try LlamaModel.load(directory: FixturePaths.url("models/llama-gqa"))
    }

    /// A registry of the fixture model holding the `attn-r4` adapter as "a" (no base record).
    static func registry(_ model: LlamaModel, allow: Bool = false) throws -> (ExpertRegistry, URL) {
        let dir = try FixturePaths.temporaryDirectory()
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("a"), withIntermediateDirectories: true)
        for f in ["adapter_config.json", "adapter_model.safetensors"] {
            try FileManager.default.copyItem(
                at: FixturePaths.url("adapters/attn-r4/\(f)"), to: dir.appendingPathComponent("a/\(f)"))
        }
        return (try ExpertRegistry(directory: dir, model: model, allowBaseMismatch: allow, create: false), dir)
    }

    @Test func absentRecordIsAcceptedAndMatchingRecordLoads() throws {
        let model = try Self.fixtureModel()
        let (reg, dir) = try Self.registry(model)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try reg.entry("a").baseRecord == nil)
        _ = try reg.acquire(["a"])
        let record = try BaseRecord.stamp(
            directory: dir.appendingPathComponent("a"), base: BaseFingerprint(model: model))
        #expect(try reg.entry("a").baseRecord == record)
        #expect(try reg.acquire(["a"]).adapters.count == 1)
    }

    @Test func recordForAnotherBaseIsRefusedNamingBoth() throws {
        let model = try Self.fixtureModel()
        let other = BaseFingerprint(model: LlamaModel.random(config: model.config, seed: 9))
        let (reg, dir) = try Self.registry(model)
        defer { try? FileManager.default.removeItem(at: dir) }
        try BaseRecord.stamp(directory: dir.appendingPathComponent("a"), base: other)
        let mine = BaseFingerprint(model: model)
        #expect { _ = try reg.entry("a") } throws: { error in
            let text = "\(error)"
            return text.contains(other.description) && text.contains(mine.description)
                && text.contains("--allow-base-mismatch")
        }
        #expect(throws: SwitchyardError.self) { _ = try reg.acquire(["a"]) }
        #expect(reg.problems["a"]?.contains(other.description) == true)
        // The override.
        let allowing = try ExpertRegistry(directory: dir, model: model, allowBaseMismatch: true, create: false)
        #expect(try allowing.entry("a").baseRecord?.fingerprint == other)
        #expect(try allowing.acquire(["a"]).adapters.count == 1)
    }

    @Test func staleOrMalformedRecordIsRefused() throws {
        let model = try Self.fixtureModel()
        let (reg, dir) = try Self.registry(model)
        defer { try? FileManager.default.removeItem(at: dir) }
        let expert = dir.appendingPathComponent("a")
        try BaseRecord.stamp(directory: expert, base: BaseFingerprint(model: model))
        // Weights replaced after stamping (a retrain into the same directory).
        let weights = expert.appendingPathComponent("adapter_model.safetensors")
        try FileManager.default.removeItem(at: weights)
        try FileManager.default.copyItem(
            at: FixturePaths.url("adapters/attn-r4b/adapter_model.safetensors"), to: weights)
        #expect { _ = try reg.entry("a") } throws: { "\($0)".contains("adapter_model_sha256") }
        // Malformed records name the field.
        let record = expert.appendingPathComponent(BaseRecord.fileName)
        for (text, field) in [
            (
                "{\"version\": 1, \"base_fingerprint\": \"x\", \"adapter_model_sha256\": \"\(String(repeating: "0", count: 64))\"}",
                "base_fingerprint"
            ),
            ("{\"version\": 2}", "version"), ("[1]", "(root)"),
            (
                "{\"version\": 1, \"base_fingerprint\": \"\(BaseFingerprint(model: model))\", \"adapter_model_sha256\": \"zz\"}",
                "adapter_model_sha256"
            )
        ] {
            try Data(text.utf8).write(to: record)
            #expect { _ = try reg.entry("a") } throws: { "\($0)".contains("field '\(field)'") }
        }
    }

    @Test func adaptersTheRegistryWritesRecordItsBase() throws {
        let model = try Self.fixtureModel()
        let (reg, dir) = try Self.registry(model)
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = LoRAAdapter.random(name: "m", base: model.config, rank: 2, kinds: [.q, .v], seed: 4)
        let entry = try reg.add(adapter, name: "m")
        #expect(entry.baseRecord?.fingerprint == BaseFingerprint(model: model))
        #expect(entry.baseRecord?.weightsSHA256 == entry.sha256)
        // Exported with its record; written without one, a stale record is deleted.
        let out = dir.appendingPathComponent("exported")
        try adapter.write(to: out, base: entry.baseRecord?.fingerprint)
        #expect(try BaseRecord.read(directory: out) == entry.baseRecord)
        try LoRAAdapter.random(name: "n", base: model.config, rank: 2, kinds: [.q], seed: 5).write(to: out, base: nil)
        #expect(try BaseRecord.read(directory: out) == nil)
        // A registry that knows only the config still checks records for staleness, not bases.
        let configOnly = try ExpertRegistry(directory: dir, base: model.config, create: false)
        #expect(try configOnly.entry("m").baseRecord != nil)
    }
}
