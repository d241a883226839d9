import Foundation

/// The tensor element types of GGUF (ggml's `ggml_type`) that Switchyard reads, with their block
/// layouts: `blockElements` values stored in `blockBytes` bytes.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13
    case q6_K = 14, iq4_NL = 20, iq4_XS = 23, bf16 = 30

    /// Values per storage block (1 for F32/F16/BF16, 32 for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/IQ4_NL, 256 for
    /// the K-quants and IQ4_XS);
    /// a row's length must be a multiple of it.
    public var blockElements: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_NL: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_XS: return 256
        }
    }

    /// Bytes per storage block (scales included), as laid out by ggml.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18  // f16 d, 16 bytes of nibbles
        case .q4_1: return 20  // f16 d, f16 m, 16 bytes of nibbles
        case .q5_0: return 22  // f16 d, 4 bytes of fifth bits, 16 bytes of nibbles
        case .q5_1: return 24  // f16 d, f16 m, 4 bytes of fifth bits, 16 bytes of nibbles
        case .q8_0: return 34  // f16 d, 32 int8
        case .q2_K: return 84  // 16 bytes of 4-bit scales/mins, 64 bytes of 2-bit values, f16 d, f16 dmin
        case .q3_K: return 110  // 32 bytes of high bits, 64 of 2-bit values, 12 of 6-bit scales, f16 d
        case .q4_K: return 144  // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
        case .q5_K: return 176  // Q4_K's 144 bytes and 32 bytes of fifth bits
        case .q6_K: return 210  // 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, f16 d
        case .iq4_NL: return 18  // f16 d, 16 bytes of nibbles indexing a 16-value table
        case .iq4_XS: return 136  // f16 d, 6-bit scales (2 + 4 bytes), 128 bytes of IQ4_NL nibbles
        }
    }

    /// ggml's name for the type (`Q4_K`, `BF16`, ...).
    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .iq4_NL: return "IQ4_NL"
        case .iq4_XS: return "IQ4_XS"
        }
    }

    /// Names of ggml types Switchyard does not read, for error messages.
    static func name(_ raw: UInt32) -> String {
        let known: [UInt32: String] = [
            9: "Q8_1", 15: "Q8_K",
            16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 21: "IQ3_S",
            22: "IQ2_S", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M"
        ]
        return known[raw] ?? "type \(raw)"
    }
}

/// A GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
    case int(Int64), uint(UInt64), float(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// A signed or unsigned integer that fits an `Int`; nil otherwise (floats are not truncated).
    public var int: Int? {
        switch self {
        case let .int(v): return Int(exactly: v)
        case let .uint(v): return Int(exactly: v)
        default: return nil
        }
    }
    /// A float, or an integer widened to `Double`; nil for other kinds.
    public var double: Double? {
        switch self {
        case let .float(v): return v
        case let .int(v): return Double(v)
        case let .uint(v): return Double(v)
        default: return nil
        }
    }
    /// The string (validated UTF-8 when read); nil for other kinds.
    public var string: String? { if case let .string(s) = self { return s }; return nil }
    /// The bool; nil for other kinds (integers are not read as bools).
    public var bool: Bool? { if case let .bool(b) = self { return b }; return nil }
    /// The elements of an array value; nil for other kinds.
    public var array: [GGUFValue]? { if case let .array(a) = self { return a }; return nil }
}

/// Where one tensor lives in a GGUF file. `shape` is in Hugging Face order (rows first): GGUF's
/// `ne` reversed, so a projection is `[out, in]`.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's GGUF name (llama.cpp naming, e.g. `blk.0.attn_q.weight`).
    public let name: String
    /// How the elements are stored.
    public let type: GGMLType
    /// Dimensions, outermost first (GGUF's `ne` reversed).
    public let shape: [Int]
    /// Byte range in the file.
    public let range: Range<Int>
    /// The product of `shape`.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped GGUF file (versions 2 and 3) with a strictly validated header.
///
/// Every count, string length, array length, dimension and offset is checked against the file
/// before use (overflow-checked); strings must be UTF-8; tensor types must be ones Switchyard
/// reads; tensor data must lie inside the data section, aligned, without overlap. A truncated or
/// hostile file raises `SwitchyardError.unsupported`/`.safetensors`-style errors naming the file
/// and the key or tensor; it never crashes.
public final class GGUFFile: @unchecked Sendable {
    /// The file's first four bytes, "GGUF", read as a little-endian `UInt32`.
    public static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    /// Caps on header sizes that no real file approaches.
    static let maxCount = 1 << 24, maxStringBytes = 1 << 26, maxDims = 4

    /// The file's path, as given (named in every error).
    public let path: String
    /// The GGUF format version: 2 or 3.
    public let version: UInt32
    /// Header key/value pairs by key (e.g. `general.architecture`, `llama.block_count`).
    public let metadata: [String: GGUFValue]
    /// Every tensor by name.
    public let tensors: [String: GGUFTensorInfo]
    /// Tensor names in file order.
    public let tensorOrder: [String]
    private let data: Data

    /// True when the file at `url` starts with the GGUF magic.
    public static func isGGUF(_ url: URL) -> Bool {
        guard let h = FileHandle(forReadingAtPath: url.path) else { return false }
        defer { try? h.close() }
        guard let head = try? h.read(upToCount: 4), head.count == 4 else { return false }
        return head.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } == magic
    }

    /// Maps the file and validates its whole header. Throws `SwitchyardError` naming the file
    /// (and the key or tensor) when it cannot be read or the header is malformed or unsupported.
    public init(url: URL) throws {
        path = url.path
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw SwitchyardError.io(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        var r = Reader(data: data, path: url.path)
        guard try r.u32("magic") == Self.magic else { throw r.fail("not a GGUF file (bad magic)") }
        version = try r.u32("version")
        guard version == 2 || version == 3 else {
            throw r.fail("GGUF version \(version) is not supported (2 and 3 are)")
        }
        let tensorCount = try r.count("tensor_count")
        let kvCount = try r.count("metadata_kv_count")
        var meta: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try r.string("metadata key")
            guard meta[key] == nil else { throw r.fail("metadata key '\(key)' appears twice") }
            let type = try r.u32("type of \(key)")
            meta[key] = try r.value(type: type, key: key, depth: 0)
        }
        metadata = meta
        var infos: [(name: String, type: GGMLType, ne: [Int], offset: Int)] = []
        var seen = Set<String>()
        for _ in 0..<tensorCount {
            let name = try r.string("tensor name")
            guard seen.insert(name).inserted else { throw r.fail("tensor '\(name)' appears twice") }
            let nDims = Int(try r.u32("n_dims of \(name)"))
            guard nDims >= 1, nDims <= Self.maxDims else {
                throw r.fail("tensor '\(name)': \(nDims) dimensions (1–\(Self.maxDims) allowed)")
            }
            var ne: [Int] = []
            for _ in 0..<nDims {
                let d = try r.u64("dimension of \(name)")
                guard d > 0, d < UInt64(Int32.max) else {
                    throw r.fail("tensor '\(name)': dimension \(d) out of range")
                }
                ne.append(Int(d))
            }
            let rawType = try r.u32("type of \(name)")
            guard let type = GGMLType(rawValue: rawType) else {
                throw r.fail(
                    "tensor '\(name)' has ggml type \(GGMLType.name(rawType)), which Switchyard does not read (\(GGMLType.allCases.map(\.description).joined(separator: ", ")))"
                )
            }
            let offset = try r.u64("offset of \(name)")
            guard offset < UInt64(Int.max / 2) else { throw r.fail("tensor '\(name)': offset \(offset) out of range") }
            infos.append((name, type, ne, Int(offset)))
        }
        let alignment = meta["general.alignment"]?.int ?? 32
        guard alignment > 0, alignment <= 1 << 16, alignment & (alignment - 1) == 0 else {
            throw r.fail("general.alignment \(alignment) must be a power of two")
        }
        let dataStart = (r.offset + alignment - 1) / alignment * alignment
        var table: [String: GGUFTensorInfo] = [:]
        var spans: [(Range<Int>, String)] = []
        for t in infos {
            guard t.ne[0] % t.type.blockElements == 0 else {
                throw r.fail(
                    "tensor '\(t.name)': row length \(t.ne[0]) is not a multiple of the \(t.type) block (\(t.type.blockElements))"
                )
            }
            var bytes = t.ne[0] / t.type.blockElements * t.type.blockBytes
            for d in t.ne.dropFirst() {
                let (m, o) = bytes.multipliedReportingOverflow(by: d)
                guard !o else { throw r.fail("tensor '\(t.name)': size overflows") }
                bytes = m
            }
            guard t.offset % alignment == 0 else {
                throw r.fail("tensor '\(t.name)': offset \(t.offset) is not aligned to \(alignment)")
            }
            let start = dataStart + t.offset
            guard start <= data.count, bytes <= data.count - start else {
                throw r.fail(
                    "tensor '\(t.name)': data [\(start), \(start + bytes)) lies outside the file (\(data.count) bytes; truncated?)"
                )
            }
            let range = start..<(start + bytes)
            table[t.name] = GGUFTensorInfo(name: t.name, type: t.type, shape: t.ne.reversed(), range: range)
            spans.append((range, t.name))
        }
        spans.sort { $0.0.lowerBound < $1.0.lowerBound }
        for (a, b) in zip(spans, spans.dropFirst())
        where a.0.upperBound > b.0.lowerBound && !a.0.isEmpty && !b.0.isEmpty {
            throw r.fail("tensors '\(a.1)' and '\(b.1)' overlap")
        }
        tensors = table
        tensorOrder = infos.map(\.name)
    }

    /// A tensor's raw bytes (the mapping stays valid while this object lives).
    public func withBytes<T>(_ info: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try data.withUnsafeBytes { all in try body(UnsafeRawBufferPointer(rebasing: all[info.range])) }
    }

    /// A tensor dequantised to Float32, row-major in `shape` order.
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw SwitchyardError.missingTensor(path: path, tensor: name) }
        return withBytes(info) { GGMLDequantize.floats(info.type, $0, count: info.elementCount) }
    }

    /// Parses the header with every read bounds-checked.
    struct Reader {
        let data: Data
        let path: String
        var offset = 0

        func fail(_ reason: String) -> SwitchyardError { .unsupported(path: path, what: "GGUF: \(reason)") }

        mutating func bytes(_ n: Int, _ what: String) throws -> Data {
            guard n >= 0, offset <= data.count, n <= data.count - offset else {
                throw fail("truncated while reading \(what)")
            }
            defer { offset += n }
            return data.subdata(in: (data.startIndex + offset)..<(data.startIndex + offset + n))
        }

        mutating func scalar<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
            let b = try bytes(MemoryLayout<T>.size, what)
            return T(littleEndian: b.withUnsafeBytes { $0.loadUnaligned(as: T.self) })
        }

        mutating func u32(_ what: String) throws -> UInt32 { try scalar(UInt32.self, what) }
        mutating func u64(_ what: String) throws -> UInt64 { try scalar(UInt64.self, what) }

        mutating func count(_ what: String) throws -> Int {
            let n = try u64(what)
            guard n <= UInt64(GGUFFile.maxCount) else { throw fail("\(what) \(n) is implausibly large") }
            return Int(n)
        }

        mutating func string(_ what: String) throws -> String {
            let n = try u64("length of \(what)")
            guard n <= UInt64(GGUFFile.maxStringBytes) else { throw fail("\(what): string of \(n) bytes") }
            let b = try bytes(Int(n), what)
            guard let s = String(data: b, encoding: .utf8) else { throw fail("\(what) is not UTF-8") }
            return s
        }

        mutating func value(type: UInt32, key: String, depth: Int) throws -> GGUFValue {
            switch type {
            case 0: return .uint(UInt64(try scalar(UInt8.self, key)))
            case 1: return .int(Int64(try scalar(Int8.self, key)))
            case 2: return .uint(UInt64(try scalar(UInt16.self, key)))
            case 3: return .int(Int64(try scalar(Int16.self, key)))
            case 4: return .uint(UInt64(try u32(key)))
            case 5: return .int(Int64(try scalar(Int32.self, key)))
            case 6: return .float(Double(Float(bitPattern: try u32(key))))
            case 7:
                let b = try scalar(UInt8.self, key)
                guard b <= 1 else { throw fail("metadata '\(key)': bool byte \(b)") }
                return .bool(b == 1)
            case 8: return .string(try string("metadata '\(key)'"))
            case 9:
                guard depth == 0 else { throw fail("metadata '\(key)': nested arrays are not supported") }
                let elementType = try u32("element type of \(key)")
                let n = try count("length of \(key)")
                var items: [GGUFValue] = []
                items.reserveCapacity(n)
                for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
                return .array(items)
            case 10: return .uint(try u64(key))
            case 11: return .int(try scalar(Int64.self, key))
            case 12: return .float(Double(bitPattern: try u64(key)))
            default: throw fail("metadata '\(key)': unknown value type \(type)")
            }
        }
    }
}

/// Dequantisation of ggml blocks to Float32 (llama.cpp's reference `dequantize_row_*`).
public enum GGMLDequantize {
    /// `count` values of `type` from `bytes` (which holds exactly their blocks).
    public static func floats(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            row(type, bytes.baseAddress!, into: out.baseAddress!, count: count)
            initialized = count
        }
    }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        HalfPrecision.f16ToFloat(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// The 16 values IQ4_NL and IQ4_XS nibbles index (ggml's `kvalues_iq4nl`).
    static let iq4nlValues: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// 32 values `scale · iq4nlValues[q]` into `out` from 16 bytes of nibbles at `qs` (value j in the
    /// low nibble of byte j, value j + 16 in its high nibble): one IQ4_NL block or IQ4_XS sub-block.
    @inline(__always) static func iq4Block(_ qs: UnsafeRawPointer, scale: Float, into out: UnsafeMutablePointer<Float>)
    {
        for j in 0..<16 {
            let q = qs.load(fromByteOffset: j, as: UInt8.self)
            out[j] = scale * Float(iq4nlValues[Int(q & 0x0F)])
            out[j + 16] = scale * Float(iq4nlValues[Int(q >> 4)])
        }
    }

    /// Sub-block `j`'s (0..<8) 6-bit scale and minimum from the 12 packed bytes at `scales` of a
    /// Q4_K or Q5_K block (ggml's `get_scale_min_k4`).
    @inline(__always) static func kQuantScaleMin(_ scales: UnsafeRawPointer, _ j: Int) -> (Float, Float) {
        let s = { scales.load(fromByteOffset: $0, as: UInt8.self) }
        if j < 4 { return (Float(s(j) & 63), Float(s(j + 4) & 63)) }
        return (Float((s(j + 4) & 0x0F) | ((s(j - 4) >> 6) << 4)), Float((s(j + 4) >> 4) | ((s(j) >> 6) << 4)))
    }

    /// Dequantises `count` values (a whole number of blocks) from `src` into `dst`.
    public static func row(_ type: GGMLType, _ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int)
    {
        let blocks = count / type.blockElements
        switch type {
        case .f32:
            for i in 0..<count { dst[i] = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .f16:
            for i in 0..<count { dst[i] = half(src, 2 * i) }
        case .bf16:
            for i in 0..<count {
                dst[i] = HalfPrecision.bf16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            }
        case .q8_0:
            for b in 0..<blocks {
                let p = src + b * 34, y = dst + b * 32
                let d = half(p, 0)
                for j in 0..<32 { y[j] = d * Float(Int8(bitPattern: p.load(fromByteOffset: 2 + j, as: UInt8.self))) }
            }
        case .q4_0:
            for b in 0..<blocks {
                let p = src + b * 18, y = dst + b * 32
                let d = half(p, 0)
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 2 + j, as: UInt8.self)
                    y[j] = Float(Int(q & 0x0F) - 8) * d
                    y[j + 16] = Float(Int(q >> 4) - 8) * d
                }
            }
        case .q4_1:
            for b in 0..<blocks {
                let p = src + b * 20, y = dst + b * 32
                let d = half(p, 0), m = half(p, 2)
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 4 + j, as: UInt8.self)
                    y[j] = Float(q & 0x0F) * d + m
                    y[j + 16] = Float(q >> 4) * d + m
                }
            }
        case .q5_0, .q5_1:
            // Q5_0: {d; qh; qs}, w = d·(q − 16); Q5_1: {d; m; qh; qs}, w = d·q + m. The fifth bit of
            // value j is bit j of the little-endian qh (values 16…31: bits 16…31).
            let size = type.blockBytes, offset = type == .q5_1 ? 4 : 2
            for b in 0..<blocks {
                let p = src + b * size, y = dst + b * 32
                let d = half(p, 0), m = type == .q5_1 ? half(p, 2) : 0, zero = type == .q5_1 ? 0 : 16
                let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: offset + 4 + j, as: UInt8.self)
                    let q0 = Int(UInt32(q & 0x0F) | ((qh >> j) << 4) & 0x10) - zero
                    let q1 = Int(UInt32(q >> 4) | (qh >> (j + 12)) & 0x10) - zero
                    y[j] = Float(q0) * d + m
                    y[j + 16] = Float(q1) * d + m
                }
            }
        case .iq4_NL:
            for b in 0..<blocks {
                let p = src + b * 18
                iq4Block(p + 2, scale: half(p, 0), into: dst + b * 32)
            }
        case .iq4_XS:
            // Sub-block ib's 6-bit scale: 4 bits of scales_l[ib / 2], 2 of the u16 scales_h.
            for b in 0..<blocks {
                let p = src + b * 136, y = dst + b * 256
                let d = half(p, 0), high = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                for ib in 0..<8 {
                    let low = p.load(fromByteOffset: 4 + ib / 2, as: UInt8.self) >> (4 * (ib % 2)) & 0x0F
                    let ls = Int(low) | Int((high >> (2 * ib)) & 3) << 4
                    iq4Block(p + 8 + 16 * ib, scale: d * Float(ls - 32), into: y + 32 * ib)
                }
            }
        case .q2_K:
            // 16 sub-blocks of 16: scale (low nibble) and minimum (high nibble) in scales[is];
            // each 128-value half reads 32 bytes of qs four times, 2 bits at a time.
            for b in 0..<blocks {
                let p = src + b * 84, y = dst + b * 256
                let d = half(p, 80), dmin = half(p, 82)
                var i = 0, sub = 0
                for half in 0..<2 {
                    let q = p + 16 + 32 * half
                    for shift in stride(from: 0, to: 8, by: 2) {
                        for part in 0..<2 {
                            let sc = p.load(fromByteOffset: sub, as: UInt8.self)
                            sub += 1
                            let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                            for l in 0..<16 {
                                let v = q.load(fromByteOffset: 16 * part + l, as: UInt8.self) >> shift & 3
                                y[i] = dl * Float(v) - ml
                                i += 1
                            }
                        }
                    }
                }
            }
        case .q3_K:
            // 16 sub-blocks of 16 with 6-bit scales (less 32) packed in 12 bytes; a value is 2 bits
            // of qs less 4 where its bit of hmask is clear.
            for b in 0..<blocks {
                let p = src + b * 110, y = dst + b * 256
                let d = half(p, 108), hm = p, sc = p + 96
                func s(_ k: Int) -> Int { Int(sc.load(fromByteOffset: k, as: UInt8.self)) }
                let scales = (0..<16).map { j -> Int in
                    let low = j < 8 ? s(j) & 0x0F : s(j - 8) >> 4
                    return (low | (s(8 + j % 4) >> (2 * (j / 4)) & 3) << 4) - 32
                }
                var i = 0, sub = 0, bit: UInt8 = 1
                for half in 0..<2 {
                    let q = p + 32 + 32 * half
                    for shift in stride(from: 0, to: 8, by: 2) {
                        for part in 0..<2 {
                            let dl = d * Float(scales[sub])
                            sub += 1
                            for l in 0..<16 {
                                let v = Int(q.load(fromByteOffset: 16 * part + l, as: UInt8.self) >> shift & 3)
                                let high = hm.load(fromByteOffset: 16 * part + l, as: UInt8.self) & bit
                                y[i] = dl * Float(v - (high != 0 ? 0 : 4))
                                i += 1
                            }
                        }
                        bit <<= 1
                    }
                }
            }
        case .q4_K:
            for b in 0..<blocks {
                let p = src + b * 144, y = dst + b * 256
                let d = half(p, 0), dmin = half(p, 2)
                let q = p + 16
                for chunk in 0..<4 {
                    let (sc1, m1) = kQuantScaleMin(p + 4, 2 * chunk), (sc2, m2) = kQuantScaleMin(p + 4, 2 * chunk + 1)
                    let d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2
                    let qs = q + 32 * chunk, out = y + 64 * chunk
                    for l in 0..<32 {
                        let v = qs.load(fromByteOffset: l, as: UInt8.self)
                        out[l] = d1 * Float(v & 0x0F) - mm1
                        out[l + 32] = d2 * Float(v >> 4) - mm2
                    }
                }
            }
        case .q5_K:
            // Q4_K's scales and minimums, a fifth bit per value from qh: chunk c's two sub-blocks
            // take bits 2c and 2c + 1 of qh[l].
            for b in 0..<blocks {
                let p = src + b * 176, y = dst + b * 256
                let d = half(p, 0), dmin = half(p, 2)
                let qh = p + 16, q = p + 48
                for chunk in 0..<4 {
                    let (sc1, m1) = kQuantScaleMin(p + 4, 2 * chunk), (sc2, m2) = kQuantScaleMin(p + 4, 2 * chunk + 1)
                    let d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2
                    let qs = q + 32 * chunk, out = y + 64 * chunk
                    for l in 0..<32 {
                        let v = qs.load(fromByteOffset: l, as: UInt8.self),
                            h = qh.load(fromByteOffset: l, as: UInt8.self)
                        out[l] = d1 * Float((v & 0x0F) | ((h >> (2 * chunk)) & 1) << 4) - mm1
                        out[l + 32] = d2 * Float((v >> 4) | ((h >> (2 * chunk + 1)) & 1) << 4) - mm2
                    }
                }
            }
        case .q6_K:
            for b in 0..<blocks {
                let p = src + b * 210, y = dst + b * 256
                let d = half(p, 208)
                for half in 0..<2 {
                    let ql = p + 64 * half, qh = p + 128 + 32 * half, sc = p + 192 + 8 * half, out = y + 128 * half
                    func s(_ i: Int) -> Float { Float(Int8(bitPattern: sc.load(fromByteOffset: i, as: UInt8.self))) }
                    for l in 0..<32 {
                        let isc = l / 16
                        let lo0 = ql.load(fromByteOffset: l, as: UInt8.self),
                            lo1 = ql.load(fromByteOffset: l + 32, as: UInt8.self)
                        let hi = qh.load(fromByteOffset: l, as: UInt8.self)
                        let q1 = Int((lo0 & 0x0F) | ((hi & 3) << 4)) - 32
                        let q2 = Int((lo1 & 0x0F) | (((hi >> 2) & 3) << 4)) - 32
                        let q3 = Int((lo0 >> 4) | (((hi >> 4) & 3) << 4)) - 32
                        let q4 = Int((lo1 >> 4) | (((hi >> 6) & 3) << 4)) - 32
                        out[l] = d * s(isc) * Float(q1)
                        out[l + 32] = d * s(isc + 2) * Float(q2)
                        out[l + 64] = d * s(isc + 4) * Float(q3)
                        out[l + 96] = d * s(isc + 6) * Float(q4)
                    }
                }
            }
        }
    }
}
