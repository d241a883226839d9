import Foundation

@testable import Switchyard

/// Tokenizer fixtures made by `Scripts/fixtures/make_fixtures.py` with HF `tokenizers`:
/// `tokenizers/{gpt2style,llama3style}/tokenizer.json` and `tokenizers/corpus.json`
/// (texts and the ids HF produced for them).
enum TokenizerFixtures {
    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("tokenizers")
    }

    static func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer(contentsOf: directory.appendingPathComponent("\(name)/tokenizer.json"))
    }

    struct Corpus {
        let texts: [String]
        /// Reference ids per list name (`gpt2style`, `llama3style`, `llama3style_with_special`).
        let ids: [String: [[Int]]]
    }

    static func corpus() throws -> Corpus {
        let data = try Data(contentsOf: directory.appendingPathComponent("corpus.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let texts = json["texts"] as! [String]
        var ids: [String: [[Int]]] = [:]
        for (key, value) in json where key != "texts" {
            ids[key] = (value as! [[Any]]).map { $0.map { ($0 as! NSNumber).intValue } }
        }
        return Corpus(texts: texts, ids: ids)
    }

    /// A small tokenizer.json as Data: byte-level alphabet vocab plus `extraVocab` tokens and
    /// `merges`, with the given pipeline parts (nil leaves the key null).
    static func makeJSON(
        extraVocab: [String] = [],
        merges: [Any] = [],
        model: [String: Any] = [:],
        addedTokens: [[String: Any]] = [],
        normalizer: [String: Any]? = nil,
        preTokenizer: [String: Any]? = ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true],
        postProcessor: [String: Any]? = nil,
        decoder: [String: Any]? = ["type": "ByteLevel"]
    ) -> Data {
        var vocab: [String: Int] = [:]
        for byte in 0..<256 {
            vocab[String(ByteLevelAlphabet.scalarForByte[byte])] = byte
        }
        for token in extraVocab where vocab[token] == nil { vocab[token] = vocab.count }
        var modelJSON: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(),
            "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(),
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges
        ]
        for (key, value) in model { modelJSON[key] = value }
        let root: [String: Any] = [
            "version": "1.0",
            "added_tokens": addedTokens,
            "normalizer": normalizer ?? NSNull(),
            "pre_tokenizer": preTokenizer ?? NSNull(),
            "post_processor": postProcessor ?? NSNull(),
            "decoder": decoder ?? NSNull(),
            "model": modelJSON
        ]
        return try! JSONSerialization.data(withJSONObject: root)
    }

    /// An `added_tokens` entry.
    static func addedToken(
        _ content: String, id: Int, special: Bool = false, normalized: Bool? = nil,
        lstrip: Bool = false, rstrip: Bool = false, singleWord: Bool = false
    ) -> [String: Any] {
        [
            "id": id, "content": content, "special": special, "normalized": normalized ?? !special,
            "lstrip": lstrip, "rstrip": rstrip, "single_word": singleWord
        ]
    }

    /// Spells text in the byte alphabet (`" the"` → `"Ġthe"`), as vocabulary entries are written.
    static func byteLevel(_ text: String) -> String {
        String(String.UnicodeScalarView(ByteLevelAlphabet.encode(Array(text.unicodeScalars))))
    }
}
