import Testing

@testable import Switchyard

@Suite struct NormalizerTests {
    private func apply(_ normalizer: any Normalizer, _ text: String) -> String {
        String(String.UnicodeScalarView(normalizer.normalize(Array(text.unicodeScalars))))
    }

    @Test func unicodeForms() {
        let text = "e\u{301} ﬁ Å"
        #expect(Array(apply(UnicodeNormalizer(form: .nfc), text).unicodeScalars) == ["é", " ", "ﬁ", " ", "Å"])
        #expect(Array(apply(UnicodeNormalizer(form: .nfkc), text).unicodeScalars) == ["é", " ", "f", "i", " ", "Å"])
        #expect(Array(apply(UnicodeNormalizer(form: .nfd), "é").unicodeScalars) == ["e", "\u{301}"])
        #expect(Array(apply(UnicodeNormalizer(form: .nfkd), "ﬁé").unicodeScalars) == ["f", "i", "e", "\u{301}"])
        #expect(apply(UnicodeNormalizer(form: .nfc), "plain ascii") == "plain ascii")
    }

    /// Per-character lowercase like Rust's `char::to_lowercase`: no final-sigma rule.
    @Test func lowercaseIsPerScalar() {
        let lower = LowercaseNormalizer()
        #expect(apply(lower, "HeLLo ΟΔΟΣ") == "hello οδοσ")
        #expect(Array(apply(lower, "İ").unicodeScalars) == ["i", "\u{307}"])
        #expect(apply(NormalizerSequence(steps: [UnicodeNormalizer(form: .nfkd), lower]), "Ǆ") == "dz\u{30C}")
    }
}
