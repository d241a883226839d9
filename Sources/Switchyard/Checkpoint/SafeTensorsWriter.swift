import Foundation

/// Writes safetensors files (F32, F16 or BF16) compatible with the `safetensors` Python library.
///
/// The header is padded with spaces to a multiple of 8 bytes, tensors are laid out in the order
/// given, and the file is written to a temporary name and renamed into place, so an existing file
/// is never left half-written.
struct SafeTensorsWriter {
    /// One tensor to write: values are Float32 and converted to `dtype` on write.
    struct Entry {
        var name: String
        var shape: [Int]
        var values: [Float]
        var dtype: SafeTensorsDType
        init(name: String, shape: [Int], values: [Float], dtype: SafeTensorsDType = .f32) {
            self.name = name
            self.shape = shape
            self.values = values
            self.dtype = dtype
        }
    }

    static func write(_ entries: [Entry], metadata: [String: String] = [:], to url: URL) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        var seen = Set<String>()
        for e in entries {
            guard seen.insert(e.name).inserted else {
                throw SwitchyardError.safetensors(path: url.path, tensor: e.name, reason: "duplicate tensor name")
            }
            guard [.f32, .f16, .bf16].contains(e.dtype) else {
                throw SwitchyardError.safetensors(
                    path: url.path, tensor: e.name, reason: "cannot write dtype \(e.dtype.rawValue)")
            }
            guard e.shape.reduce(1, *) == e.values.count else {
                throw SwitchyardError.safetensors(
                    path: url.path, tensor: e.name,
                    reason: "shape \(e.shape) does not match \(e.values.count) values")
            }
            let bytes = e.values.count * e.dtype.byteSize
            header[e.name] =
                ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while headerData.count % 8 != 0 { headerData.append(0x20) }
        var out = Data(capacity: 8 + headerData.count + offset)
        withUnsafeBytes(of: UInt64(headerData.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(headerData)
        for e in entries {
            switch e.dtype {
            case .f32:
                e.values.withUnsafeBytes { out.append(contentsOf: $0) }
            case .bf16:
                let halves = e.values.map { HalfPrecision.floatToBF16($0).littleEndian }
                halves.withUnsafeBytes { out.append(contentsOf: $0) }
            default:
                let halves = e.values.map { HalfPrecision.floatToF16($0).littleEndian }
                halves.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        try AtomicFile.write(out, to: url)
    }
}
