import Foundation
import Testing

@testable import Switchyard

@Suite struct AddedTokensTests {
    private typealias F = TokenizerFixtures

    /// Splits `text` on the raw (non-normalized) added tokens; text pieces come back as strings.
    private func segments(_ tokenizer: Tokenizer, _ text: String) -> [String] {
        tokenizer.addedVocabulary.rawMatcher.split(Array(text.unicodeScalars)).map { segment in
            switch segment {
            case .token(let id): return "#\(id)"
            case .text(let scalars): return String(String.UnicodeScalarView(scalars))
            }
        }
    }

    private func tokenizer(_ added: [[String: Any]], normalizer: [String: Any]? = nil) throws -> Tokenizer {
        try Tokenizer(json: F.makeJSON(addedTokens: added, normalizer: normalizer), source: "added.json")
    }

    /// HF's own `options_use_cases` / `test_lstrip_unicode_space` / single-word examples.
    @Test func stripAndSingleWordRules() throws {
        let tok = try tokenizer([
            F.addedToken("<mask>", id: 300, normalized: false, lstrip: true, rstrip: true, singleWord: true),
            F.addedToken("ony", id: 301, normalized: false, singleWord: true),
            F.addedToken("[CLS]", id: 302, special: true)
        ])
        #expect(segments(tok, "Hi <mask> there\t<mask>\t<mask>\u{2000}") == ["Hi", "#256", "there", "#256", "#256"])
        #expect(segments(tok, "[CLS] Anthony ony") == ["#258", " Anthony ", "#257"])
        // `<mask>` glued to a word character is not a single word; marks count as word characters.
        #expect(segments(tok, "A<mask> <mask>B x\u{330}<mask>") == ["A<mask> <mask>B x\u{330}<mask>"])
    }

    /// Ids are assigned like HF: in file order, a token already in the vocabulary keeps its
    /// vocabulary id and later tokens take the next free ids (whatever the file says).
    @Test func idsFollowHuggingFaceAssignment() throws {
        let tok = try tokenizer([
            F.addedToken("<a>", id: 256, special: true),
            F.addedToken("ß", id: 257, normalized: false),  // "ß" is a byte-alphabet vocabulary entry
            F.addedToken("<b>", id: 258),
            F.addedToken("<a>", id: 256, special: true)  // a duplicate changes nothing
        ])
        #expect(tok.id(forToken: "<a>") == 256)
        #expect(tok.id(forToken: "ß") == 0xDF)
        #expect(tok.id(forToken: "<b>") == 257)
        #expect(tok.vocabularySize == 258)
        #expect(tok.specialTokenIDs == [256])
        #expect(tok.encode("x<b>ß<a>") == [Int(UInt8(ascii: "x")), 257, 0xDF, 256])
    }

    /// `normalized: true` tokens are found in the normalized text and decode as their normalized
    /// content (HF's `id_to_token`); `normalized: false` ones only match the raw text.
    @Test func normalizedTokens() throws {
        let tok = try tokenizer(
            [F.addedToken("ABC", id: 256, normalized: true), F.addedToken("XYZ", id: 257, normalized: false)],
            normalizer: ["type": "Lowercase"])
        let abc = 256, xyz = 257
        #expect(tok.encode("ABC abc").filter { $0 >= 256 } == [abc, abc])
        #expect(tok.encode("XYZ xyz").filter { $0 >= 256 } == [xyz])
        #expect(tok.token(forID: abc) == "abc")
        #expect(tok.id(forToken: "ABC") == abc)
        #expect(tok.decode([abc, xyz]) == "abcXYZ")
    }

    @Test func longestMatchWins() throws {
        let tok = try tokenizer([
            F.addedToken("<t>", id: 256, normalized: false), F.addedToken("<t>x", id: 257, normalized: false),
            F.addedToken("t>x<", id: 258, normalized: false)
        ])
        #expect(segments(tok, "a<t>x<t>") == ["a", "#257", "#256"])
    }
}
