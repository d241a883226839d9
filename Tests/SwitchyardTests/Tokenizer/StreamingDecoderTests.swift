import Foundation
import Testing

@testable import Switchyard

@Suite struct StreamingDecoderTests {
    private func stream(_ tokenizer: Tokenizer, _ ids: [Int], skipSpecialTokens: Bool = false) -> [String] {
        var decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: skipSpecialTokens)
        return ids.map { decoder.append($0) } + [decoder.flush()]
    }

    /// Fed one id at a time, the pieces concatenate to exactly `decode`, and for valid text no
    /// piece ever contains U+FFFD (emoji and CJK are spread over several byte tokens here).
    @Test(arguments: ["gpt2style", "llama3style"])
    func matchesFullDecodeOnCorpus(name: String) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(name)
        for text in try TokenizerFixtures.corpus().texts {
            let ids = tokenizer.encode(text, addSpecialTokens: true)
            for skip in [false, true] {
                let pieces = stream(tokenizer, ids, skipSpecialTokens: skip)
                let full = tokenizer.decode(ids, skipSpecialTokens: skip)
                #expect(pieces.joined().unicodeScalars.elementsEqual(full.unicodeScalars), "\(text.debugDescription)")
                #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") }, "\(text.debugDescription)")
            }
        }
    }

    @Test func holdsBackAnIncompleteCharacter() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("gpt2style")
        let ids = tokenizer.encode("a👍b")
        let pieces = stream(tokenizer, ids)
        #expect(ids.count >= 4)  // 👍 is 4 bytes; the small vocabulary has no token for it
        #expect(pieces.joined() == "a👍b")
        #expect(pieces.contains("👍") || pieces.contains { $0.hasPrefix("👍") })
    }

    /// Broken UTF-8 produces U+FFFD exactly where `decode` puts it, and a dangling lead byte is
    /// released by `flush`.
    @Test func invalidBytesMatchDecode() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("gpt2style")
        func byteID(_ byte: UInt8) -> Int {
            tokenizer.id(forToken: String(ByteLevelAlphabet.scalarForByte[Int(byte)]))!
        }
        let ids = [byteID(0x41), byteID(0xF0), byteID(0x9F), byteID(0x41), byteID(0xE2), byteID(0x82)]
        let pieces = stream(tokenizer, ids)
        #expect(pieces.joined() == tokenizer.decode(ids))
        #expect(pieces.joined() == "A\u{FFFD}A\u{FFFD}")
        #expect(pieces.last == "\u{FFFD}")
    }

    @Test func completePrefixLength() {
        #expect(StreamingDecoder.completePrefixLength([]) == 0)
        #expect(StreamingDecoder.completePrefixLength([0x41]) == 1)
        #expect(StreamingDecoder.completePrefixLength([0x41, 0xF0, 0x9F, 0x91]) == 1)
        #expect(StreamingDecoder.completePrefixLength([0xF0, 0x9F, 0x91, 0x8D]) == 4)
        #expect(StreamingDecoder.completePrefixLength([0x41, 0xE0, 0x80]) == 3)  // overlong: already invalid
        #expect(StreamingDecoder.completePrefixLength([0x41, 0xED, 0xA0]) == 3)  // surrogate: invalid
        #expect(StreamingDecoder.completePrefixLength([0x80, 0x80, 0x80, 0x80]) == 4)
        #expect(StreamingDecoder.completePrefixLength([0xC3]) == 0)
    }

    /// Without a byte-level decoder the generic path (re-decode and diff) is used.
    @Test func genericDecoderPath() throws {
        let json = TokenizerFixtures.makeJSON(extraVocab: ["ab"], merges: ["a b"], preTokenizer: nil, decoder: nil)
        let tokenizer = try Tokenizer(json: json, source: "plain.json")
        let ids = tokenizer.encode("abc") + tokenizer.encode("ab")
        #expect(stream(tokenizer, ids).joined() == tokenizer.decode(ids))
        #expect(tokenizer.decode(ids) == "ab c ab")
    }

    @Test func unknownIDsProduceNothing() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("llama3style")
        #expect(stream(tokenizer, [-1, 99_999, Int.max]).joined() == "")
    }
}
