/// GPT-2's reversible byte ↔ printable-character alphabet ("bytes_to_unicode").
///
/// Byte-level BPE never sees raw bytes: each UTF-8 byte of the input is replaced by one printable
/// Unicode scalar, so that the vocabulary can be stored as JSON strings. Printable Latin-1 bytes
/// (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) map to themselves; the other 68 bytes (controls, space, DEL,
/// NBSP, soft hyphen) map to U+0100, U+0101, … in byte order. So space (0x20) becomes `Ġ` (U+0120)
/// and newline (0x0A) becomes `Ċ` (U+010A).
enum ByteLevelAlphabet {
    /// `scalarForByte[b]` is the alphabet character that stands for byte `b`.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(UInt8(byte)) {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarForByte`, indexed by scalar value; -1 where a scalar is not in the alphabet.
    /// All alphabet scalars are below U+0144, so a flat table is enough.
    private static let byteForScalarTable: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalarForByte.enumerated() {
            table[Int(scalar.value)] = Int16(byte)
        }
        return table
    }()

    /// The byte that alphabet character `scalar` stands for, or nil if it is not in the alphabet.
    @inline(__always)
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let value = Int(scalar.value)
        guard value < byteForScalarTable.count else { return nil }
        let byte = byteForScalarTable[value]
        return byte < 0 ? nil : UInt8(byte)
    }

    /// Bytes GPT-2 keeps as themselves: `!`…`~`, `¡`…`¬`, `®`…`ÿ`.
    @inline(__always)
    static func isPrintable(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// Replaces every UTF-8 byte of `text` by its alphabet character (what the ByteLevel
    /// pre-tokenizer does to each piece).
    static func encode(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for scalar in text {
            if scalar.value < 0x80 {
                out.append(scalarForByte[Int(scalar.value)])
            } else {
                for byte in UTF8.encode(scalar)! {
                    out.append(scalarForByte[Int(byte)])
                }
            }
        }
        return out
    }

    /// The bytes a token stands for, as the ByteLevel decoder computes them: if every character
    /// of `token` is in the alphabet, the bytes it encodes; otherwise (for example an added token
    /// containing a plain space) the token's own UTF-8 bytes, unchanged.
    static func decodeBytes(of token: String, into bytes: inout [UInt8]) {
        let start = bytes.count
        for scalar in token.unicodeScalars {
            guard let byte = byte(for: scalar) else {
                bytes.removeSubrange(start...)
                bytes.append(contentsOf: token.utf8)
                return
            }
            bytes.append(byte)
        }
    }
}
