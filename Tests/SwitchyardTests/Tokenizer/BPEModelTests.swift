import Foundation
import Testing

@testable import Switchyard

@Suite struct BPEModelTests {
    private func tokenizer(
        extraVocab: [String], merges: [Any], model: [String: Any] = [:], preTokenizer: [String: Any]? = nil
    ) throws -> Tokenizer {
        try Tokenizer(
            json: TokenizerFixtures.makeJSON(
                extraVocab: extraVocab, merges: merges, model: model, preTokenizer: preTokenizer,
                decoder: nil),
            source: "test.json")
    }

    private func tokens(_ tokenizer: Tokenizer, _ text: String) -> [String] {
        tokenizer.encode(text).compactMap { tokenizer.token(forID: $0) }
    }

    @Test func mergesParseInBothForms() throws {
        let strings = try tokenizer(extraVocab: ["ab", "abc"], merges: ["a b", "ab c"])
        let pairs = try tokenizer(extraVocab: ["ab", "abc"], merges: [["a", "b"], ["ab", "c"]])
        #expect(tokens(strings, "abcab") == ["abc", "ab"])
        #expect(strings.encode("abcab") == pairs.encode("abcab"))
        let fromString = try BPEModel.parseMerge("Ġ t", index: 0, source: "x")
        #expect(fromString.0 == "Ġ" && fromString.1 == "t")
        // The pair form can carry spaces (non-byte-level vocabularies).
        let fromPair = try BPEModel.parseMerge(["a b", "c"], index: 0, source: "x")
        #expect(fromPair.0 == "a b" && fromPair.1 == "c")
    }

    /// Lowest rank first; among equal pairs the leftmost merges first ("aaa" → "aa" + "a").
    @Test func mergesApplyByRankThenLeftmost() throws {
        let tok = try tokenizer(extraVocab: ["aa", "bc", "ab"], merges: ["a a", "b c", "a b"])
        #expect(tokens(tok, "aaa") == ["aa", "a"])
        #expect(tokens(tok, "aaaa") == ["aa", "aa"])
        // "b c" (rank 1) wins over "a b" (rank 2) in "abc".
        #expect(tokens(tok, "abc") == ["a", "bc"])
        #expect(tokens(tok, "abd") == ["ab", "d"])
        #expect(tok.encode("") == [])
    }

    /// `ignore_merges`: a word that is itself a vocabulary entry is emitted whole, even when the
    /// merges would not build it.
    @Test func ignoreMergesEmitsWholeWords() throws {
        let withFlag = try tokenizer(extraVocab: ["xyz"], merges: [], model: ["ignore_merges": true])
        let without = try tokenizer(extraVocab: ["xyz"], merges: [])
        #expect(tokens(withFlag, "xyz") == ["xyz"])
        #expect(tokens(without, "xyz") == ["x", "y", "z"])
    }

    /// Characters missing from the vocabulary become `unk_token` (fused when `fuse_unk`), or are
    /// dropped when there is no unk token, as in HF.
    @Test func unknownCharacters() throws {
        let vocab: [String: Any] = ["[UNK]": 0, "a": 1, "b": 2, "ab": 3]
        func make(_ extra: [String: Any]) throws -> Tokenizer {
            var model: [String: Any] = ["type": "BPE", "vocab": vocab, "merges": ["a b"]]
            for (k, v) in extra { model[k] = v }
            let json = try JSONSerialization.data(withJSONObject: ["model": model])
            return try Tokenizer(json: json, source: "unk.json")
        }
        #expect(try make(["unk_token": "[UNK]"]).encode("abxyb") == [3, 0, 0, 2])
        #expect(try make(["unk_token": "[UNK]", "fuse_unk": true]).encode("abxyb") == [3, 0, 2])
        #expect(try make([:]).encode("abxyb") == [3, 2])
        #expect(try make([:]).decode([3, 0, 2]) == "ab [UNK] b")  // no decoder: joined with spaces
    }

    /// A word made of canonically equivalent but different scalars is a different word:
    /// "\u{212A}" (KELVIN SIGN) is not "K" (Swift's String == would say it is).
    @Test func lookupsAreExactNotCanonical() throws {
        let vocab: [String: Any] = ["K": 0, "a": 1]
        let json = try JSONSerialization.data(withJSONObject: [
            "model": ["type": "BPE", "vocab": vocab, "merges": [String](), "ignore_merges": true]
        ])
        let tok = try Tokenizer(json: json, source: "kelvin.json")
        #expect(tok.encode("K") == [0])
        #expect(tok.encode("\u{212A}") == [])  // not in the vocabulary, no unk: dropped
        #expect(tok.id(forToken: "\u{212A}") == nil)
        #expect(tok.encode("K") == [0])  // the cache must not confuse the two either
    }
}
