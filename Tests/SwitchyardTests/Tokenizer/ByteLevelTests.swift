import Testing

@testable import Switchyard

@Suite struct ByteLevelTests {
    @Test func alphabetIsABijectionOfPrintableScalars() {
        let scalars = ByteLevelAlphabet.scalarForByte
        #expect(Set(scalars).count == 256)
        for byte in 0..<256 {
            #expect(ByteLevelAlphabet.byte(for: scalars[byte]) == UInt8(byte))
            #expect(!scalars[byte].properties.isWhitespace)
        }
        #expect(scalars[0x20] == "Ġ")
        #expect(scalars[0x0A] == "Ċ")
        #expect(scalars[0x00] == "\u{100}")
        #expect(scalars[0x41] == "A")
        #expect(scalars[0xE9] == "é")
        #expect(scalars[0xAD] == "\u{143}")  // soft hyphen byte, the last remapped one
        #expect(ByteLevelAlphabet.byte(for: " ") == nil)
        #expect(ByteLevelAlphabet.byte(for: "\u{144}") == nil)
        #expect(ByteLevelAlphabet.byte(for: "😀") == nil)
    }

    @Test func encodesUTF8BytesAndDecodesThemBack() {
        let text = " héllo\n👍"
        let mapped = ByteLevelAlphabet.encode(Array(text.unicodeScalars))
        #expect(mapped.count == text.utf8.count)
        #expect(String(String.UnicodeScalarView(mapped)) == "ĠhÃ©lloĊðŁĳį")
        var bytes: [UInt8] = []
        ByteLevelAlphabet.decodeBytes(of: String(String.UnicodeScalarView(mapped)), into: &bytes)
        #expect(bytes == Array(text.utf8))
    }

    /// A token with a character outside the alphabet (an added token with a plain space)
    /// contributes its own UTF-8 bytes, as HF's ByteLevel decoder does.
    @Test func tokensOutsideTheAlphabetDecodeAsThemselves() {
        var bytes: [UInt8] = [0x41]
        ByteLevelAlphabet.decodeBytes(of: "<my token>", into: &bytes)
        #expect(bytes == [0x41] + Array("<my token>".utf8))
        #expect(ByteLevelDecoder().decode(["Ġa", "<my token>", "Ġb"]) == " a<my token> b")
    }

    /// Invalid UTF-8 becomes one U+FFFD per maximal invalid subsequence (Rust's from_utf8_lossy).
    @Test func invalidBytesDecodeLossily() {
        let tokens = [
            "a", String(ByteLevelAlphabet.scalarForByte[0xE2]), String(ByteLevelAlphabet.scalarForByte[0x82]), "b",
            String(ByteLevelAlphabet.scalarForByte[0xFF])
        ]
        #expect(ByteLevelDecoder().decode(tokens) == "a\u{FFFD}b\u{FFFD}")
    }
}
