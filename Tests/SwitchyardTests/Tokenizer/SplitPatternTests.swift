import Testing

@testable import Switchyard

@Suite struct SplitPatternTests {
    private func pieces(_ pattern: any SplitPattern, _ text: String) throws -> [String] {
        let scalars = Array(text.unicodeScalars)
        return try pattern.matches(in: scalars).map { String(String.UnicodeScalarView(scalars[$0])) }
    }

    @Test func gpt2Regex() throws {
        let gpt2 = ScannedPattern(flavor: .gpt2)
        #expect(
            try pieces(gpt2, "I don't   know, 'LL 123abc!!\n\n x  ") == [
                "I", " don", "'t", "  ", " know", ",", " '", "LL", " 123", "abc", "!!", "\n\n", " x", "  "
            ])
        #expect(try pieces(gpt2, "e\u{301}t\u{e9}") == ["e", "\u{301}", "t\u{e9}"])  // scalars, not graphemes
    }

    @Test func llama3Regex() throws {
        let llama3 = ScannedPattern(pattern: ScannedPattern.llama3Pattern)!
        #expect(
            try pieces(llama3, "I DON'T know 1234567 ...\n\n  x\r\n\ty") == [
                "I", " DON", "'T", " know", " ", "123", "456", "7", " ...\n\n", " ", " x", "\r\n", "\ty"
            ])
        let qwen2 = ScannedPattern(pattern: ScannedPattern.qwen2Pattern)!
        #expect(try pieces(qwen2, "x 123") == ["x", " ", "1", "2", "3"])
        #expect(ScannedPattern(pattern: "\\s+") == nil)
    }

    /// The hand-written scanners agree with ICU running the same regex, on random text over an
    /// alphabet chosen to hit every branch (contractions in both cases, `ſ`, every whitespace
    /// kind including CR/LF/NEL/NBSP, letters and numbers of several scripts, marks, emoji).
    @Test(arguments: [ScannedPattern.gpt2Pattern, ScannedPattern.llama3Pattern, ScannedPattern.qwen2Pattern])
    func scannersAgreeWithICU(pattern: String) throws {
        let scanner = try #require(ScannedPattern(pattern: pattern))
        let icu = try ICURegexPattern(pattern: pattern, path: "test", source: "test")
        let alphabet: [Unicode.Scalar] = Array(
            "aZé'sStTrReEvVlLmMdDſ0９²Ⅻ \t\n\r\u{0B}\u{0C}\u{85}\u{A0}\u{2028}\u{3000}\u{1C}.,!?-_\u{301}\u{200D}日本😀👍🏽Ωж"
                .unicodeScalars)
        var generator = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            let length = Int(generator.next() % 24)
            let text = (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            let expected = try icu.matches(in: text)
            #expect(
                try scanner.matches(in: text) == expected, "\(String(String.UnicodeScalarView(text)).debugDescription)")
        }
    }

    /// HF's documented example for each `SplitDelimiterBehavior`.
    @Test func splitBehaviors() throws {
        let dash = try makeSplitPattern(literal: "-", path: "p", source: "s")
        func split(_ behavior: SplitBehavior, invert: Bool = false) throws -> [String] {
            try SplitPreTokenizer(pattern: dash, behavior: behavior, invert: invert)
                .preTokenize([Array("the-final--countdown".unicodeScalars)])
                .map { String(String.UnicodeScalarView($0)) }
        }
        #expect(try split(.removed) == ["the", "final", "countdown"])
        #expect(try split(.isolated) == ["the", "-", "final", "-", "-", "countdown"])
        #expect(try split(.mergedWithPrevious) == ["the-", "final-", "-", "countdown"])
        #expect(try split(.mergedWithNext) == ["the", "-final", "-", "-countdown"])
        #expect(try split(.contiguous) == ["the", "-", "final", "--", "countdown"])
        #expect(try split(.removed, invert: true) == ["-", "-", "-"])
        #expect(SplitBehavior(name: "merged_with_previous") == .mergedWithPrevious)
        #expect(SplitBehavior(name: "MergedWithNext") == .mergedWithNext)
        #expect(SplitBehavior(name: "sideways") == nil)
    }

    @Test func digits() throws {
        func split(_ individual: Bool, _ text: String) throws -> [String] {
            try DigitsPreTokenizer(individualDigits: individual).preTokenize([Array(text.unicodeScalars)])
                .map { String(String.UnicodeScalarView($0)) }
        }
        #expect(try split(true, "a123b４5") == ["a", "1", "2", "3", "b", "４", "5"])
        #expect(try split(false, "a123b４5") == ["a", "123", "b", "４5"])
    }

    /// ICU reports UTF-16 offsets; they are mapped back to scalar offsets.
    @Test func icuOffsetsAreScalarOffsets() throws {
        let pattern = try ICURegexPattern(pattern: "b+", path: "p", source: "s")
        let text = Array("😀bb👍🏽b".unicodeScalars)
        #expect(try pattern.matches(in: text) == [1..<3, 5..<6])
    }
}

/// Small deterministic generator for reproducible random tests.
private struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
