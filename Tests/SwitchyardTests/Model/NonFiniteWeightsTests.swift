import Foundation
import Testing

@testable import Switchyard

/// Issue 13: a base checkpoint with a NaN or infinite weight loaded silently and turned every
/// output into NaN. It is refused at load, naming the file, the tensor and the element, on every
/// weight path (half kept native, widened to Float32, Float32 vectors, quantised blocks).
@Suite struct NonFiniteWeightsTests {
    /// A copy of the demo base (BF16) with the BF16 value `bits` written at `element` of `tensor`.
    static func corruptedBase(tensor: String, element: Int, bits: UInt16) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nonfinite-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: HalfPrecisionWeightsTests.demoBase, to: dir)
        let file = dir.appendingPathComponent("model.safetensors")
        let info = try #require(try SafeTensorsFile(url: file).tensors[tensor])
        #expect(info.dtype == .bf16)
        var bytes = try Data(contentsOf: file)
        let headerLength = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let at = 8 + headerLength + info.dataRange.lowerBound + 2 * element
        bytes[at] = UInt8(bits & 0xFF)
        bytes[at + 1] = UInt8(bits >> 8)
        try bytes.write(to: file)
        return dir
    }

    @Test(arguments: [
        ("model.layers.1.self_attn.k_proj.weight", 77, UInt16(0x7FC0)),  // NaN
        ("model.layers.0.mlp.down_proj.weight", 0, UInt16(0xFF80)),  // -infinity
        ("model.norm.weight", 5, UInt16(0x7F80)),  // +infinity, a norm
        ("model.embed_tokens.weight", 1000, UInt16(0x7FC0))
    ])
    func checkpointWithANonFiniteWeightIsRefused(tensor: String, element: Int, bits: UInt16) throws {
        let dir = try Self.corruptedBase(tensor: tensor, element: element, bits: bits)
        defer { try? FileManager.default.removeItem(at: dir) }
        for weights in [GGUFModel.WeightFormat.native, .f32] {
            do {
                _ = try LlamaModel.load(directory: dir, weights: weights)
                Issue.record("loaded \(tensor) with a non-finite value (\(weights))")
            } catch let error as SwitchyardError {
                guard case let .nonFinite(path, name, index, value) = error else {
                    Issue.record("wrong error: \(error)")
                    continue
                }
                #expect(path.hasSuffix("model.safetensors") && name == tensor && index == element && !value.isFinite)
                #expect(error.description.contains("non-finite value") && error.description.contains(tensor))
            }
        }
    }

    @Test func firstNonFiniteFloatIsFoundAnywhere() {
        for count in [1, 7, 8, 9, 64, 1001] {
            #expect(FiniteValues.firstNonFinite([Float](repeating: 0.5, count: count)) == nil)
            for at in Set([0, count / 2, count - 1]) {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var x = [Float](repeating: -3, count: count)
                    x[at] = bad
                    if at + 1 < count { x[count - 1] = .nan }
                    #expect(FiniteValues.firstNonFinite(x) == at, "count \(count), at \(at)")
                }
            }
        }
    }

    /// Q8_0/Q4_0/Q4_1 blocks hold a NaN or infinity only through a half scale (or Q4_1's offset);
    /// F16/BF16 through any value.
    @Test func quantisedBlocksWithANonFiniteScaleAreFound() {
        let cols = 64, rows = 3
        let halfInf: UInt16 = 0x7C00, halfNaN: UInt16 = 0x7E00, one: UInt16 = 0x3C00
        for type in [GGMLType.q8_0, .q4_0, .q4_1, .f16, .bf16] {
            // Blocks of 32 values as the kernels see them (a half "block" is 32 values, 64 bytes).
            let blockBytes = type.blockElements == 1 ? 32 * type.blockBytes : type.blockBytes
            let rowBytes = cols / 32 * blockBytes
            var bytes = [UInt8](repeating: 0x11, count: rows * rowBytes)
            func put(_ v: UInt16, at offset: Int) { bytes[offset] = UInt8(v & 0xFF); bytes[offset + 1] = UInt8(v >> 8) }
            let unit: UInt16 = type == .bf16 ? 0x3F80 : one
            // Every scale (or half value) a finite 1.
            for b in 0..<(rows * cols / 32) {
                let p = b * blockBytes
                switch type {
                case .q4_1: put(one, at: p); put(one, at: p + 2)
                case .f16, .bf16: for j in 0..<32 { put(unit, at: p + 2 * j) }
                default: put(one, at: p)
                }
            }
            let clean = bytes.withUnsafeBytes { QuantizedMatrix(type: type, rows: rows, cols: cols, bytes: $0) }
            #expect(clean.firstNonFinite() == nil, "\(type)")
            // The second block of row 2: its scale (Q4_1: its offset) or its value 5.
            let block = 2 * (cols / 32) + 1, p = block * blockBytes
            switch type {
            case .q4_1: put(halfNaN, at: p + 2)
            case .f16: put(halfInf, at: p + 10)
            case .bf16: put(0x7FC0, at: p + 10)
            default: put(halfInf, at: p)
            }
            let bad = bytes.withUnsafeBytes { QuantizedMatrix(type: type, rows: rows, cols: cols, bytes: $0) }
                .firstNonFinite()
            let expected = 2 * cols + 32 + (type == .f16 || type == .bf16 ? 5 : 0)
            #expect(
                bad?.element == expected && bad.map { !$0.value.isFinite } == true,
                "\(type): \(String(describing: bad))")
        }
    }
}
