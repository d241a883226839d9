import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Element types a safetensors file can declare. Switchyard computes in Float32 and converts
/// `F16`/`BF16` once at load; other types are listed but cannot be read as floats.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"

    /// Bytes per element (1 for the 8-bit types and `BOOL`).
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }
}

/// Where one tensor lives in a safetensors file.
public struct SafeTensorInfo: Sendable, Equatable {
    /// The tensor's key in the header (Hugging Face naming, e.g. `model.layers.0.self_attn.q_proj.weight`).
    public let name: String
    /// How the elements are stored.
    public let dtype: SafeTensorsDType
    /// Dimensions, outermost first (row-major), as declared in the header.
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let dataRange: Range<Int>
    /// The product of `shape` (1 for a scalar `[]`).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped safetensors file with a fully validated header.
///
/// Validation (each failure is a `SwitchyardError.safetensors` naming the file and tensor):
/// the 8-byte header length fits the file and is below `maxHeaderBytes`; the header is strict JSON
/// (no duplicate names); every dtype is known; shapes are non-negative and their byte size
/// (dtype × product, overflow-checked) equals the offset range; every range lies inside the data
/// section; ranges do not overlap. Truncated or hostile files raise errors, never crash.
///
/// Memory: the mapping is owned by this object and unmapped in `deinit`; `floats(_:)` copies out.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Headers larger than this are refused (the format's reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// The file's path, as given (named in every error).
    public let path: String
    /// Tensors by name.
    public let tensors: [String: SafeTensorInfo]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    private let base: UnsafeMutableRawPointer?
    private let mappedSize: Int
    private let dataOffset: Int

    /// Maps the file read-only and validates its header; throws `SwitchyardError` (`.io` when it
    /// cannot be opened, `.safetensors` for a malformed file) naming the file and tensor.
    public init(url: URL) throws {
        path = url.path
        // O_NONBLOCK: a FIFO planted under the name must not block the open; it is refused below.
        let fd = open(url.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw SwitchyardError.io(path: url.path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SwitchyardError.io(path: url.path, reason: "cannot stat") }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw SwitchyardError.io(path: url.path, reason: "not a regular file")
        }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw SwitchyardError.safetensors(
                path: url.path, tensor: nil,
                reason: "file is \(size) bytes, too short for a header")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw SwitchyardError.io(path: url.path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = mapped
        mappedSize = size
        do {
            let parsed = try Self.parseHeader(base: UnsafeRawPointer(mapped), size: size, path: url.path)
            tensors = parsed.tensors
            metadata = parsed.metadata
            dataOffset = parsed.dataOffset
        } catch {
            munmap(mapped, size)
            throw error
        }
    }

    deinit {
        if let base { munmap(base, mappedSize) }
    }

    /// Tensor names, sorted.
    public var names: [String] { tensors.keys.sorted() }

    /// Size of the file in bytes.
    public var fileBytes: Int { mappedSize }

    /// Raw bytes of a tensor (valid while `self` is alive).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let info = tensors[name] else { throw SwitchyardError.missingTensor(path: path, tensor: name) }
        let start = UnsafeRawPointer(base!).advanced(by: dataOffset + info.dataRange.lowerBound)
        return try body(UnsafeRawBufferPointer(start: start, count: info.dataRange.count))
    }

    /// A tensor converted to Float32 (F32, F16 and BF16 only), in row-major order.
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw SwitchyardError.missingTensor(path: path, tensor: name) }
        let n = info.elementCount
        return try withRawBytes(name) { raw in
            var out = [Float](repeating: 0, count: n)
            try out.withUnsafeMutableBufferPointer { dst in
                switch info.dtype {
                case .f32:
                    if n > 0 { memcpy(dst.baseAddress!, raw.baseAddress!, n * 4) }
                case .bf16:
                    for i in 0..<n {
                        dst[i] = HalfPrecision.bf16ToFloat(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    }
                case .f16:
                    for i in 0..<n {
                        dst[i] = HalfPrecision.f16ToFloat(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    }
                default:
                    throw SwitchyardError.safetensors(
                        path: path, tensor: name,
                        reason: "dtype \(info.dtype.rawValue) cannot be read as floats (F32, F16, BF16 are supported)")
                }
            }
            return out
        }
    }

    /// A 2-D tensor as a `Matrix`, checking its shape when `expected` is given.
    public func matrix(_ name: String, expected: [Int]? = nil) throws -> Matrix {
        guard let info = tensors[name] else { throw SwitchyardError.missingTensor(path: path, tensor: name) }
        if let expected, info.shape != expected {
            throw SwitchyardError.shapeMismatch(path: path, tensor: name, expected: expected, found: info.shape)
        }
        guard info.shape.count == 2 else {
            throw SwitchyardError.safetensors(
                path: path, tensor: name, reason: "expected a 2-D tensor, found shape \(info.shape)")
        }
        return Matrix(rows: info.shape[0], cols: info.shape[1], data: try floats(name))
    }

    /// A 1-D tensor, checking its length when `expected` is given.
    public func vector(_ name: String, expected: Int? = nil) throws -> [Float] {
        guard let info = tensors[name] else { throw SwitchyardError.missingTensor(path: path, tensor: name) }
        if let expected, info.shape != [expected] {
            throw SwitchyardError.shapeMismatch(path: path, tensor: name, expected: [expected], found: info.shape)
        }
        return try floats(name)
    }

    // MARK: - Header validation

    private struct ParsedHeader {
        var tensors: [String: SafeTensorInfo]
        var metadata: [String: String]
        var dataOffset: Int
    }

    private static func parseHeader(base: UnsafeRawPointer, size: Int, path: String) throws -> ParsedHeader {
        func bad(_ reason: String, _ tensor: String? = nil) -> SwitchyardError {
            .safetensors(path: path, tensor: tensor, reason: reason)
        }
        let headerLength = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(maxHeaderBytes) else {
            throw bad("header length \(headerLength) exceeds the \(maxHeaderBytes)-byte limit")
        }
        guard headerLength <= UInt64(size - 8) else {
            throw bad("header length \(headerLength) runs past the end of the file (\(size) bytes): truncated?")
        }
        let hlen = Int(headerLength)
        let headerBytes = UnsafeBufferPointer(
            start: base.advanced(by: 8).assumingMemoryBound(to: UInt8.self), count: hlen)
        let json: StrictJSON.Value
        do { json = try StrictJSON.parse(headerBytes) } catch {
            throw bad("header is not valid JSON (\(error))")
        }
        guard let entries = json.objectEntries else { throw bad("header is not a JSON object") }
        let dataSize = size - 8 - hlen
        var tensors: [String: SafeTensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in entries {
            if name == "__metadata__" {
                guard let m = value.objectEntries else { throw bad("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw bad("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let fields = value.objectEntries else { throw bad("entry is not an object", name) }
            let dict = Dictionary(fields, uniquingKeysWith: { a, _ in a })
            guard let dtypeName = dict["dtype"]?.stringValue else { throw bad("missing 'dtype'", name) }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw bad("unknown dtype '\(dtypeName)'", name)
            }
            guard let shapeValues = dict["shape"]?.arrayValue else { throw bad("missing 'shape'", name) }
            var shape: [Int] = []
            var count = 1
            for dim in shapeValues {
                guard let d = dim.intValue, d >= 0, d < Int64(Int32.max) else {
                    throw bad("shape entries must be non-negative integers", name)
                }
                shape.append(Int(d))
                let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
                guard !overflow else { throw bad("shape \(shape) overflows", name) }
                count = product
            }
            guard let offsets = dict["data_offsets"]?.arrayValue, offsets.count == 2,
                let start = offsets[0].intValue, let end = offsets[1].intValue,
                start >= 0, end >= start
            else { throw bad("'data_offsets' must be two increasing non-negative integers", name) }
            guard end <= Int64(dataSize) else {
                throw bad(
                    "data_offsets [\(start), \(end)] run past the data section (\(dataSize) bytes): truncated?", name)
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, bytes == Int(end - start) else {
                throw bad(
                    "\(dtype.rawValue) × shape \(shape) needs \(overflow ? "too many" : String(bytes)) bytes but data_offsets span \(end - start)",
                    name)
            }
            tensors[name] = SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: Int(start)..<Int(end))
        }
        let sorted = tensors.values.filter { !$0.dataRange.isEmpty }.sorted {
            $0.dataRange.lowerBound < $1.dataRange.lowerBound
        }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.dataRange.upperBound > b.dataRange.lowerBound {
            throw bad("data overlaps tensor '\(a.name)'", b.name)
        }
        return ParsedHeader(tensors: tensors, metadata: metadata, dataOffset: 8 + hlen)
    }
}
