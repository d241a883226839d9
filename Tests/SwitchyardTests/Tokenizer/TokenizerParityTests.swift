import Foundation
import Testing
@testable import Switchyard

/// Ids must be identical to HF `tokenizers` on the fixture corpus (multilingual text, emoji
/// sequences, code, whitespace runs, added and special tokens written in the text).
@Suite struct TokenizerParityTests {
    @Test(arguments: [
        ("gpt2style", "gpt2style", false),
        ("llama3style", "llama3style", false),
        ("llama3style", "llama3style_with_special", true),
    ])
    func idsMatchHuggingFace(tokenizerName: String, listName: String, addSpecialTokens: Bool) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(tokenizerName)
        let corpus = try TokenizerFixtures.corpus()
        let expected = try #require(corpus.ids[listName])
        #expect(expected.count == corpus.texts.count)
        for (text, reference) in zip(corpus.texts, expected) {
            let ids = tokenizer.encode(text, addSpecialTokens: addSpecialTokens)
            #expect(ids == reference, "\(listName): \(text.debugDescription)")
        }
    }

    @Test func gpt2StyleRoundTripsEveryText() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("gpt2style")
        for text in try TokenizerFixtures.corpus().texts {
            #expect(tokenizer.decode(tokenizer.encode(text)) == text, "\(text.debugDescription)")
        }
    }

    /// llama3style normalizes to NFC, so decoding gives the NFC form of the input back.
    @Test func llama3StyleRoundTripsToNFC() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("llama3style")
        for text in try TokenizerFixtures.corpus().texts {
            let nfc = text.precomposedStringWithCanonicalMapping
            let decoded = tokenizer.decode(tokenizer.encode(text))
            #expect(decoded.unicodeScalars.elementsEqual(nfc.unicodeScalars), "\(text.debugDescription)")
        }
    }

    @Test func specialTokensAreRecognisedAndSkippable() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("llama3style")
        let ids = tokenizer.encode("before<|eos|>after<tool>", addSpecialTokens: true)
        #expect(ids.first == 0)           // <|bos|> from the template
        #expect(ids.contains(1))          // <|eos|> written in the text
        #expect(ids.last == 600)          // <tool>, an added non-special token
        #expect(tokenizer.decode(ids) == "<|bos|>before<|eos|>after<tool>")
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == "beforeafter<tool>")
        #expect(tokenizer.specialTokenIDs == [0, 1, 2])
        #expect(tokenizer.bosTokenID == 0)
        #expect(tokenizer.eosTokenID == 1)
        #expect(tokenizer.vocabularySize == 601)
        #expect(tokenizer.id(forToken: "<tool>") == 600)
        #expect(tokenizer.token(forID: 600) == "<tool>")
        #expect(tokenizer.id(forToken: "Ġ") == tokenizer.encode(" ").first)
        #expect(tokenizer.token(forID: 123_456) == nil)
    }

    @Test func unknownIDsAreSkippedWhenDecoding() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("gpt2style")
        let ids = tokenizer.encode("hi there")
        #expect(tokenizer.decode([-5] + ids + [1_000_000, Int.max, Int.min]) == "hi there")
    }

    @Test func loadFromModelDirectory() throws {
        let tokenizer = try Tokenizer.load(modelDirectory: TokenizerFixtures.directory.appendingPathComponent("gpt2style"))
        #expect(tokenizer.encode("Hello, world!") == (try TokenizerFixtures.corpus().ids["gpt2style"]![0]))
        #expect(tokenizer.source.hasSuffix("gpt2style/tokenizer.json"))
    }

    /// Many threads sharing one tokenizer (and its cache) get the same ids as one thread.
    @Test func concurrentEncodingIsConsistent() async throws {
        let tokenizer = try TokenizerFixtures.tokenizer("llama3style")
        let corpus = try TokenizerFixtures.corpus()
        let expected = corpus.ids["llama3style"]!
        let allMatch = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    zip(corpus.texts, expected).allSatisfy { tokenizer.encode($0) == $1 }
                }
            }
            return await group.reduce(true) { $0 && $1 }
        }
        #expect(allMatch)
    }
}
