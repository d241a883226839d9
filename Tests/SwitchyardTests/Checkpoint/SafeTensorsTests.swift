import Foundation
import Testing

@testable import Switchyard

@Suite struct SafeTensorsTests {
    /// Builds a raw safetensors file from a header string and a data section.
    static func raw(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> Data {
        var out = Data()
        let h = Array(header.utf8)
        withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(contentsOf: data)
        return out
    }

    /// Writes `data` to a temp file, opens it, and returns the error description (nil if it opened).
    static func openError(_ data: Data) throws -> String? {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("bad.safetensors")
        try data.write(to: url)
        do {
            _ = try SafeTensorsFile(url: url)
            return nil
        } catch let e as SwitchyardError {
            #expect(e.description.contains(url.path), "error must name the file: \(e)")
            return e.description
        }
    }

    @Test func roundTripsEveryWritableDType() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let values: [Float] = [0, 1, -2.5, 3.140625, 1e-3, -65504, 0.333333]
        let url = dir.appendingPathComponent("t.safetensors")
        try SafeTensorsWriter.write(
            [
                .init(name: "a.f32", shape: [7], values: values, dtype: .f32),
                .init(name: "b.f16", shape: [7, 1], values: values, dtype: .f16),
                .init(name: "c.bf16", shape: [1, 7], values: values, dtype: .bf16)
            ], metadata: ["format": "pt"], to: url)
        let file = try SafeTensorsFile(url: url)
        #expect(file.metadata["format"] == "pt")
        #expect(try file.floats("a.f32") == values)
        #expect(file.tensors["b.f16"]?.shape == [7, 1])
        // Half formats are lossy; each value must equal its own rounding.
        #expect(try file.floats("b.f16") == values.map { Float(Float16($0)) })
        #expect(try file.floats("c.bf16") == values.map { HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16($0)) })
        #expect(HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16(3.140625)) == 3.140625)
    }

    @Test func bf16RoundsToNearestEven() {
        // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to even (1).
        #expect(HalfPrecision.floatToBF16(1 + 1.0 / 256) == HalfPrecision.floatToBF16(1))
        #expect(HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16(1 + 3.0 / 256)) == 1 + 4.0 / 256)
        #expect(HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16(.nan)).isNaN)
    }

    @Test func rejectsMalformedHeaders() throws {
        let four: [UInt8] = [0, 0, 128, 63]
        func t(_ name: String, _ dtype: String, _ shape: String, _ a: Int, _ b: Int) -> String {
            "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(a),\(b)]}"
        }
        let cases: [(Data, String)] = [
            (Data([1, 2, 3]), "too short"),
            (Self.raw(header: "{}", data: [], declaredLength: 1000), "past the end"),
            (Self.raw(header: "{}", data: [], declaredLength: UInt64.max), "limit"),
            (Self.raw(header: "{not json", data: []), "not valid JSON"),
            (Self.raw(header: "[1,2]", data: []), "not a JSON object"),
            (
                Self.raw(header: "{\(t("x", "F32", "[1]", 0, 4)),\(t("x", "F32", "[1]", 0, 4))}", data: four),
                "duplicate"
            ),
            (Self.raw(header: "{\(t("x", "Q4", "[1]", 0, 4))}", data: four), "unknown dtype"),
            (Self.raw(header: "{\(t("x", "F32", "[2]", 0, 4))}", data: four), "needs 8 bytes"),
            (Self.raw(header: "{\(t("x", "F32", "[1]", 4, 8))}", data: four), "run past the data section"),
            (Self.raw(header: "{\(t("x", "F32", "[-1]", 0, 4))}", data: four), "non-negative"),
            (Self.raw(header: "{\(t("x", "F32", "[1]", 4, 0))}", data: four), "increasing"),
            (Self.raw(header: "{\(t("x", "F16", "[2]", 0, 4)),\(t("y", "F16", "[1]", 2, 4))}", data: four), "overlaps"),
            (Self.raw(header: "{\(t("x", "F32", "[4294967295,4294967295,4294967295]", 0, 4))}", data: four), "shape"),
            (Self.raw(header: "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", data: four), "data_offsets")
        ]
        for (data, expected) in cases {
            let message = try Self.openError(data)
            #expect(message?.contains(expected) == true, "expected '\(expected)', got \(message ?? "no error")")
        }
    }

    @Test func errorsNameTheTensor() throws {
        let message = try Self.openError(
            Self.raw(
                header: "{\"layer.7.w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]))
        #expect(message?.contains("layer.7.w") == true)
    }

    @Test func everyTruncationFailsCleanly() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("full.safetensors")
        try SafeTensorsWriter.write(
            [
                .init(name: "w", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]),
                .init(name: "b", shape: [3], values: [7, 8, 9], dtype: .bf16)
            ], to: url)
        let full = try Data(contentsOf: url)
        for n in 0..<full.count {
            #expect(try Self.openError(full.prefix(n)) != nil, "truncated to \(n) bytes must fail")
        }
        #expect(try Self.openError(full) == nil)
    }

    @Test func readingAMissingOrNonFloatTensorIsAnError() throws {
        let file = try SafeTensorsFile(url: FixturePaths.url("models/llama-gqa/model.safetensors"))
        #expect(throws: SwitchyardError.missingTensor(path: file.path, tensor: "nope")) { try file.floats("nope") }
        #expect(throws: SwitchyardError.self) { try file.matrix("model.norm.weight") }
    }
}
