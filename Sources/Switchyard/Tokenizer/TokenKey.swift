/// A token string compared byte for byte.
///
/// Swift's `String` equality and hashing follow Unicode canonical equivalence, so as dictionary
/// keys `"\u{212A}"` (KELVIN SIGN) and `"K"`, or `"é"` and `"e\u{301}"`, are the same key. Token
/// vocabularies (and HF) distinguish them, so every token lookup goes through this key, which
/// compares UTF-8 bytes exactly.
struct TokenKey: Hashable, Sendable {
    let string: String

    init(_ string: String) { self.string = string }

    init(_ scalars: [Unicode.Scalar]) {
        var string = String()
        string.unicodeScalars.append(contentsOf: scalars)
        self.string = string
    }

    static func == (lhs: TokenKey, rhs: TokenKey) -> Bool {
        lhs.string.utf8.elementsEqual(rhs.string.utf8)
    }

    func hash(into hasher: inout Hasher) {
        var copy = string
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
