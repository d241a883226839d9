import Foundation
import Testing

@testable import Switchyard

/// Ids must be identical to HF `tokenizers` on the fixture corpus (multilingual text, emoji
/// sequences, code, whitespace runs, added and special tokens written in the text).
@Suite struct TokenizerParityTests {
    @Test(arguments: [
        ("gpt2style", "gpt2style", false),
        ("llama3style", "llama3style", false),
        ("llama3style", "llama3style_with_special", true)
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
        #expect(ids.first == 0)  // <|bos|> from the template
        #expect(ids.contains(1))  // <|eos|> written in the text
        #expect(ids.last == 600)  // <tool>, an added non-special token
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
        let tokenizer = try Tokenizer.load(
            modelDirectory: TokenizerFixtures.directory.appendingPathComponent("gpt2style"))
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

    /// The same split regex run by ICU (a spelling the scanner does not recognise) gives the
    /// same ids as the hand-written scanner, also with many threads sharing one regex.
    @Test func icuPathMatchesScannerUnderConcurrency() async throws {
        let url = TokenizerFixtures.directory.appendingPathComponent("llama3style/tokenizer.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        json["pre_tokenizer"] = [
            "type": "Sequence",
            "pretokenizers": [
                [
                    "type": "Split", "pattern": ["Regex": "(?:\(ScannedPattern.llama3Pattern))"],
                    "behavior": "Isolated", "invert": false
                ],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]
            ]
        ]
        let icu = try Tokenizer(json: JSONSerialization.data(withJSONObject: json), source: "icu.json")
        let corpus = try TokenizerFixtures.corpus()
        let expected = corpus.ids["llama3style"]!
        let allMatch = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { zip(corpus.texts, expected).allSatisfy { icu.encode($0) == $1 } }
            }
            return await group.reduce(true) { $0 && $1 }
        }
        #expect(allMatch)
    }

    /// `load(modelDirectory:)` takes BOS/EOS from `tokenizer_config.json` when there is one.
    @Test func bosAndEOSFromTokenizerConfig() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchyard-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(
            at: TokenizerFixtures.directory.appendingPathComponent("gpt2style/tokenizer.json"),
            to: directory.appendingPathComponent("tokenizer.json"))
        let plain = try Tokenizer.load(modelDirectory: directory)
        #expect(plain.bosTokenID == 0 && plain.eosTokenID == 1)  // by name: <|bos|>, <|eos|>
        let config = #"{"bos_token": {"content": "<|pad|>"}, "eos_token": "<|bos|>"}"#
        try Data(config.utf8).write(to: directory.appendingPathComponent("tokenizer_config.json"))
        let configured = try Tokenizer.load(modelDirectory: directory)
        #expect(configured.bosTokenID == 2 && configured.eosTokenID == 0)
    }
}
